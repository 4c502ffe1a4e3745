//! One folder per flow. Pages render on the server; interactive parts are islands in `components`.

pub mod activity;
pub mod add;
pub(crate) mod common;
pub mod helpdesk;
pub mod home;
pub mod not_found;
pub mod report;
pub mod reset;
pub mod security_info;
pub mod setup;
pub mod signin;
pub mod verify;

/// Sets the HTTP status of the page being rendered (no-op in the browser).
#[cfg(feature = "ssr")]
pub(crate) fn set_status(code: u16) {
    crate::ssr::set_status(code);
}

#[cfg(not(feature = "ssr"))]
pub(crate) fn set_status(_code: u16) {}
