//! The wire contract between browser and server: request/response types and `#[server]` functions.
//! Everything here compiles to wasm; server-only code is reached through `crate::ssr`.

mod activity;
mod helpdesk;
mod report;
mod reset;
mod security;
mod security_info;
mod session;

pub use activity::*;
pub use helpdesk::*;
pub use report::*;
pub use reset::*;
pub use security::*;
pub use security_info::*;
pub use session::*;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Stable error codes users can quote to the helpdesk. The text for each lives in `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    SigninFailed,
    NotSignedIn,
    RequestBlocked,
    Unavailable,
    Internal,
    WrongCode,
    CodeExpired,
    TooManyAttempts,
    MethodLocked,
    ReauthRequired,
    PasskeyFailed,
    PasskeyExists,
    PhoneInvalid,
    EmailInvalid,
    NameInvalid,
    TooManyMethods,
    PinWeak,
    PinLength,
    AnswersInvalid,
    LastMethod,
    DirectoryManaged,
    MethodNotAllowed,
    SetupExpired,
    SnoozeExhausted,
    MessageLimit,
    VoiceUnsupported,
    PasswordTooShort,
    PasswordTooLong,
    PasswordMismatch,
    PasswordCommon,
    PasswordContainsName,
    PasswordHistory,
    PasswordDirectoryPolicy,
    PasswordTooRecent,
    ResetExpired,
    ResetEnded,
    ResetCheckFailed,
    NotLocked,
    ResetUnavailable,
    DirectoryUnavailable,
    AnswersWrong,
    HelpdeskForbidden,
    NotVerified,
    ProtectedAccount,
    OwnAccount,
    VerificationPending,
    VerificationDenied,
    NotBlocked,
    NoAddress,
    ApprovalInvalid,
    TapInvalid,
    StaffMfaRequired,
    TooLarge,
    WrongNumber,
    CallDeclined,
    CallPending,
    ApiTokenInvalid,
    ApiScopeMissing,
    NotFound,
    InvalidRequest,
    IdempotencyConflict,
    NoUsableMethod,
    AccountBlocked,
    TokenInvalid,
    TokenResyncFailed,
    TokenUnavailable,
    RecoveryInvalid,
    /// The right password, but the directory wants it changed first (expired, must change).
    PasswordExpired,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 68] = [
        ErrorCode::SigninFailed,
        ErrorCode::NotSignedIn,
        ErrorCode::RequestBlocked,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::WrongCode,
        ErrorCode::CodeExpired,
        ErrorCode::TooManyAttempts,
        ErrorCode::MethodLocked,
        ErrorCode::ReauthRequired,
        ErrorCode::PasskeyFailed,
        ErrorCode::PasskeyExists,
        ErrorCode::PhoneInvalid,
        ErrorCode::EmailInvalid,
        ErrorCode::NameInvalid,
        ErrorCode::TooManyMethods,
        ErrorCode::PinWeak,
        ErrorCode::PinLength,
        ErrorCode::AnswersInvalid,
        ErrorCode::LastMethod,
        ErrorCode::DirectoryManaged,
        ErrorCode::MethodNotAllowed,
        ErrorCode::SetupExpired,
        ErrorCode::SnoozeExhausted,
        ErrorCode::MessageLimit,
        ErrorCode::VoiceUnsupported,
        ErrorCode::PasswordTooShort,
        ErrorCode::PasswordTooLong,
        ErrorCode::PasswordMismatch,
        ErrorCode::PasswordCommon,
        ErrorCode::PasswordContainsName,
        ErrorCode::PasswordHistory,
        ErrorCode::PasswordDirectoryPolicy,
        ErrorCode::PasswordTooRecent,
        ErrorCode::ResetExpired,
        ErrorCode::ResetEnded,
        ErrorCode::ResetCheckFailed,
        ErrorCode::NotLocked,
        ErrorCode::ResetUnavailable,
        ErrorCode::DirectoryUnavailable,
        ErrorCode::AnswersWrong,
        ErrorCode::HelpdeskForbidden,
        ErrorCode::NotVerified,
        ErrorCode::ProtectedAccount,
        ErrorCode::OwnAccount,
        ErrorCode::VerificationPending,
        ErrorCode::VerificationDenied,
        ErrorCode::NotBlocked,
        ErrorCode::NoAddress,
        ErrorCode::ApprovalInvalid,
        ErrorCode::TapInvalid,
        ErrorCode::StaffMfaRequired,
        ErrorCode::TooLarge,
        ErrorCode::WrongNumber,
        ErrorCode::CallDeclined,
        ErrorCode::CallPending,
        ErrorCode::ApiTokenInvalid,
        ErrorCode::ApiScopeMissing,
        ErrorCode::NotFound,
        ErrorCode::InvalidRequest,
        ErrorCode::IdempotencyConflict,
        ErrorCode::NoUsableMethod,
        ErrorCode::AccountBlocked,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenResyncFailed,
        ErrorCode::TokenUnavailable,
        ErrorCode::RecoveryInvalid,
        ErrorCode::PasswordExpired,
    ];

    /// The code shown to users and written in logs, e.g. `SIG-001`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::SigninFailed => "SIG-001",
            ErrorCode::NotSignedIn => "SES-001",
            ErrorCode::RequestBlocked => "HTTP-403",
            ErrorCode::Unavailable => "SYS-503",
            ErrorCode::Internal => "SYS-500",
            ErrorCode::WrongCode => "MFA-001",
            ErrorCode::CodeExpired => "MFA-002",
            ErrorCode::TooManyAttempts => "MFA-003",
            ErrorCode::MethodLocked => "MFA-004",
            ErrorCode::ReauthRequired => "MFA-005",
            ErrorCode::PasskeyFailed => "KEY-001",
            ErrorCode::PasskeyExists => "KEY-002",
            ErrorCode::PhoneInvalid => "REG-001",
            ErrorCode::EmailInvalid => "REG-002",
            ErrorCode::NameInvalid => "REG-003",
            ErrorCode::TooManyMethods => "REG-004",
            ErrorCode::PinWeak => "REG-005",
            ErrorCode::PinLength => "REG-006",
            ErrorCode::AnswersInvalid => "REG-007",
            ErrorCode::LastMethod => "REG-008",
            ErrorCode::DirectoryManaged => "REG-009",
            ErrorCode::MethodNotAllowed => "REG-010",
            ErrorCode::SetupExpired => "REG-011",
            ErrorCode::SnoozeExhausted => "REG-012",
            ErrorCode::MessageLimit => "MSG-429",
            ErrorCode::VoiceUnsupported => "MSG-501",
            ErrorCode::PasswordTooShort => "PWD-001",
            ErrorCode::PasswordTooLong => "PWD-002",
            ErrorCode::PasswordMismatch => "PWD-003",
            ErrorCode::PasswordCommon => "PWD-004",
            ErrorCode::PasswordContainsName => "PWD-005",
            ErrorCode::PasswordHistory => "PWD-006",
            ErrorCode::PasswordDirectoryPolicy => "PWD-007",
            ErrorCode::PasswordTooRecent => "PWD-008",
            ErrorCode::ResetExpired => "RST-001",
            ErrorCode::ResetEnded => "RST-002",
            ErrorCode::ResetCheckFailed => "RST-003",
            ErrorCode::NotLocked => "RST-004",
            ErrorCode::ResetUnavailable => "RST-005",
            ErrorCode::DirectoryUnavailable => "DIR-503",
            ErrorCode::AnswersWrong => "RST-006",
            ErrorCode::HelpdeskForbidden => "HLP-001",
            ErrorCode::NotVerified => "HLP-002",
            ErrorCode::ProtectedAccount => "HLP-003",
            ErrorCode::OwnAccount => "HLP-004",
            ErrorCode::VerificationPending => "HLP-005",
            ErrorCode::VerificationDenied => "HLP-006",
            ErrorCode::NotBlocked => "HLP-007",
            ErrorCode::NoAddress => "HLP-008",
            ErrorCode::ApprovalInvalid => "HLP-009",
            ErrorCode::TapInvalid => "TAP-001",
            ErrorCode::StaffMfaRequired => "HLP-010",
            ErrorCode::TooLarge => "SYS-413",
            ErrorCode::WrongNumber => "HLP-011",
            ErrorCode::CallDeclined => "MFA-006",
            ErrorCode::CallPending => "MFA-007",
            ErrorCode::ApiTokenInvalid => "API-401",
            ErrorCode::ApiScopeMissing => "API-403",
            ErrorCode::NotFound => "API-404",
            ErrorCode::InvalidRequest => "API-400",
            ErrorCode::IdempotencyConflict => "API-409",
            ErrorCode::NoUsableMethod => "API-422",
            ErrorCode::AccountBlocked => "API-423",
            ErrorCode::TokenInvalid => "TOK-001",
            ErrorCode::TokenResyncFailed => "TOK-002",
            ErrorCode::TokenUnavailable => "TOK-003",
            ErrorCode::RecoveryInvalid => "REC-001",
            ErrorCode::PasswordExpired => "SIG-002",
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
            let t = crate::text::en();
            assert!(!t.for_error(code).is_empty());
            if code != ErrorCode::Internal {
                assert_ne!(
                    t.for_error(code),
                    t.internal_error,
                    "{} has no text",
                    code.code()
                );
            }
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
            "method_added",
            "method_removed",
            "second_factor",
            "code_sent",
            "sessions_revoked",
            "helpdesk_verification_started",
            "helpdesk_verification",
            "helpdesk_action",
            "helpdesk_approval_requested",
            "helpdesk_approval_decided",
            "helpdesk_lookup",
            "audit_exported",
        ] {
            assert_ne!(t.for_event(ev), t.event_other, "{ev}");
        }
        assert_eq!(t.for_event("something_new"), t.event_other);
    }
}
