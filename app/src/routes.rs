//! Paths and test ids shared by the pages, the server's gatekeeping and the end2end tests.

pub const HOME: &str = "/";
pub const SIGNIN: &str = "/signin";
pub const SECURITY_INFO: &str = "/security-info";
pub const ACTIVITY: &str = "/activity";
/// `/report/<token>`: the "This wasn't me" link in security emails.
pub const REPORT: &str = "/report";
pub const REPORT_RECORDED: &str = "/report-recorded";

/// Pages that need a signed-in user; the server redirects anonymous visitors to [`SIGNIN`].
pub const PROTECTED: &[&str] = &[SECURITY_INFO, ACTIVITY];

/// Query parameter the sign-in page reads to show why the last attempt failed.
pub const ERROR_PARAM: &str = "error";
/// Query parameter that refills the username after a failed sign-in.
pub const USERNAME_PARAM: &str = "username";

/// `data-testid` values used by end2end/.
pub mod testid {
    pub const SIGNIN_FORM: &str = "signin-form";
    pub const SIGNIN_ERROR: &str = "signin-error";
    pub const SIGNOUT: &str = "signout";
    pub const USER_NAME: &str = "user-name";
    pub const PASSWORD_TOGGLE: &str = "password-toggle";
    pub const METHOD_LIST: &str = "method-list";
    pub const ACTIVITY_TABLE: &str = "activity-table";
    pub const NOTICE: &str = "notice";
    pub const REPORT_CONFIRM: &str = "report-confirm";
    pub const REPORT_INVALID: &str = "report-invalid";
}
