//! The domain: users, policy, passwords, audit and the flows. No axum, no SQL, no Leptos here —
//! persistence is reached through `crate::store::Store`, time through `crate::clock::Clock`.

pub mod audit;
pub mod error;
pub mod flows;
pub mod oath;
pub mod password;
pub mod password_rules;
pub mod phone;
pub mod policy;
pub mod totp;
pub mod users;

/// `YYYY-MM-DD HH:MM:SS` (UTC), as shown to people.
pub fn format_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}
