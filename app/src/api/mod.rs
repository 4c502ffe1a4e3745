//! The wire contract between browser and server: request/response types and `#[server]` functions.
//! Everything here compiles to wasm; server-only code is reached through `crate::ssr`.

mod activity;
mod report;
mod security_info;
mod session;

pub use activity::*;
pub use report::*;
pub use security_info::*;
pub use session::*;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Stable error codes users can quote to the helpdesk. The text for each lives in `text.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    SigninFailed,
    NotSignedIn,
    RequestBlocked,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 5] = [
        ErrorCode::SigninFailed,
        ErrorCode::NotSignedIn,
        ErrorCode::RequestBlocked,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code shown to users and written in logs, e.g. `SIG-001`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::SigninFailed => "SIG-001",
            ErrorCode::NotSignedIn => "SES-001",
            ErrorCode::RequestBlocked => "HTTP-403",
            ErrorCode::Unavailable => "SYS-503",
            ErrorCode::Internal => "SYS-500",
        }
    }

    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// The error every server function returns. Users see the text for `code`; details stay in the
/// server log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("{}", .0.code())]
    Failed(ErrorCode),
    #[error("server function transport error: {0}")]
    Transport(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Failed(c) => *c,
            ApiError::Transport(_) => ErrorCode::Internal,
        }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::Failed(code)
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
            assert!(seen.insert(code.code()), "duplicate {}", code.code());
            assert!(!crate::text::en().for_error(code).is_empty());
        }
        assert_eq!(ErrorCode::from_code("nope"), None);
    }

    #[test]
    fn every_audit_event_has_a_label() {
        let t = crate::text::en();
        for ev in [
            "signin",
            "signout",
            "session_expired",
            "account_locked",
            "password_set",
            "user_created",
            "user_updated",
        ] {
            assert_ne!(t.for_event(ev), t.event_other, "{ev}");
        }
        assert_eq!(t.for_event("something_new"), t.event_other);
    }
}
