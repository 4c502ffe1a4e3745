//! The messages Converge sends, with their variables. Each variant is one template folder
//! (`templates/email/<locale>/<name>/`); docs/templates.md lists the variables.

use serde::Serialize;
use serde_json::{json, Value};

/// Who a message is about: always a stored user, never an address from a request.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub enum Notice {
    NewUser {
        pin: Option<String>,
    },
    UserEnrollment,
    UpdatedUser {
        changes: Vec<String>,
        changed_at: String,
    },
    VerificationCode {
        code: String,
        expires_minutes: u32,
        /// A sign-in code: the mail carries "Didn't do this? Report it" (fraud report).
        signin: bool,
    },
    PasswordReset {
        code: Option<String>,
        reset_url: Option<String>,
        expires_minutes: u32,
    },
    PasswordChanged {
        changed_at: String,
    },
    MethodAdded {
        method: String,
        changed_at: String,
    },
    MethodRemoved {
        method: String,
        changed_at: String,
    },
    /// A recovery code was used (sign-in or reset): how many are left.
    RecoveryCodeUsed {
        left: u32,
        used_at: String,
    },
    AccountLocked {
        locked_at: String,
        unlock_url: String,
    },
    /// Someone is guessing at the account (`what`: `password` or `second_factor`).
    GuessingAttempts {
        what: String,
        at: String,
        client_ip: String,
        reset_url: String,
    },
    FraudAlert {
        subject: Person,
        reported_at: String,
        source: String,
        client_ip: String,
    },
    HelpdeskVerification {
        code: String,
        agent_name: String,
        expires_minutes: u32,
    },
    /// A helpdesk agent acted on the user's account (reset link, MFA reset, TAP, unlock, …).
    HelpdeskAction {
        agent_name: String,
        action: String,
        done_at: String,
    },
    /// Someone asked to reset the password of an account that cannot reset it by itself.
    ResetNotPossible {
        requested_at: String,
        portal_url: String,
    },
    /// To administrators: a directory sync would disable more users than allowed and waits.
    SyncHeld {
        run_id: String,
        source: String,
        would_disable: u64,
        usernames: Vec<String>,
        started_at: String,
    },
}

pub const MESSAGES: [&str; 16] = [
    "new_user",
    "user_enrollment",
    "updated_user",
    "verification_code",
    "password_reset",
    "password_changed",
    "method_added",
    "method_removed",
    "recovery_code_used",
    "guessing_attempts",
    "account_locked",
    "fraud_alert",
    "helpdesk_verification",
    "helpdesk_action",
    "reset_not_possible",
    "sync_held",
];

impl Notice {
    pub fn name(&self) -> &'static str {
        match self {
            Notice::NewUser { .. } => "new_user",
            Notice::UserEnrollment => "user_enrollment",
            Notice::UpdatedUser { .. } => "updated_user",
            Notice::VerificationCode { .. } => "verification_code",
            Notice::PasswordReset { .. } => "password_reset",
            Notice::PasswordChanged { .. } => "password_changed",
            Notice::MethodAdded { .. } => "method_added",
            Notice::MethodRemoved { .. } => "method_removed",
            Notice::RecoveryCodeUsed { .. } => "recovery_code_used",
            Notice::AccountLocked { .. } => "account_locked",
            Notice::GuessingAttempts { .. } => "guessing_attempts",
            Notice::FraudAlert { .. } => "fraud_alert",
            Notice::HelpdeskVerification { .. } => "helpdesk_verification",
            Notice::HelpdeskAction { .. } => "helpdesk_action",
            Notice::ResetNotPossible { .. } => "reset_not_possible",
            Notice::SyncHeld { .. } => "sync_held",
        }
    }

    /// A code or a reset link the user needs in order to go on (not a notice to skip).
    pub fn carries_code(&self) -> bool {
        matches!(
            self,
            Notice::VerificationCode { .. }
                | Notice::PasswordReset { .. }
                | Notice::HelpdeskVerification { .. }
        )
    }

    /// Security notifications carry a "This wasn't me" link.
    pub fn wants_report_link(&self) -> bool {
        if let Notice::VerificationCode { signin, .. } = self {
            return *signin;
        }
        matches!(
            self,
            Notice::UpdatedUser { .. }
                | Notice::PasswordChanged { .. }
                | Notice::MethodAdded { .. }
                | Notice::MethodRemoved { .. }
                | Notice::RecoveryCodeUsed { .. }
                | Notice::AccountLocked { .. }
                | Notice::GuessingAttempts { .. }
                | Notice::PasswordReset { .. }
                | Notice::ResetNotPossible { .. }
                | Notice::HelpdeskAction { .. }
        )
    }

    /// The message-specific variables.
    pub fn vars(&self) -> Value {
        match self {
            Notice::NewUser { pin } => json!({ "pin": pin }),
            Notice::UserEnrollment => json!({}),
            Notice::UpdatedUser {
                changes,
                changed_at,
            } => json!({ "changes": changes, "changed_at": changed_at }),
            Notice::VerificationCode {
                code,
                expires_minutes,
                ..
            } => {
                json!({ "code": code, "expires_minutes": expires_minutes })
            }
            Notice::PasswordReset {
                code,
                reset_url,
                expires_minutes,
            } => {
                json!({ "code": code, "reset_url": reset_url, "expires_minutes": expires_minutes })
            }
            Notice::PasswordChanged { changed_at } => json!({ "changed_at": changed_at }),
            Notice::MethodAdded { method, changed_at }
            | Notice::MethodRemoved { method, changed_at } => {
                json!({ "method": method, "changed_at": changed_at })
            }
            Notice::RecoveryCodeUsed { left, used_at } => {
                json!({ "left": left, "used_at": used_at })
            }
            Notice::AccountLocked {
                locked_at,
                unlock_url,
            } => json!({ "locked_at": locked_at, "unlock_url": unlock_url }),
            Notice::GuessingAttempts {
                what,
                at,
                client_ip,
                reset_url,
            } => json!({ "what": what, "at": at, "client_ip": client_ip, "reset_url": reset_url }),
            Notice::FraudAlert {
                subject,
                reported_at,
                source,
                client_ip,
            } => json!({
                "subject_username": subject.username,
                "subject_display_name": subject.display_name,
                "reported_at": reported_at,
                "source": source,
                "client_ip": client_ip,
            }),
            Notice::HelpdeskVerification {
                code,
                agent_name,
                expires_minutes,
            } => {
                json!({ "code": code, "agent_name": agent_name, "expires_minutes": expires_minutes })
            }
            Notice::HelpdeskAction {
                agent_name,
                action,
                done_at,
            } => json!({ "agent_name": agent_name, "action": action, "done_at": done_at }),
            Notice::ResetNotPossible {
                requested_at,
                portal_url,
            } => json!({ "requested_at": requested_at, "portal_url": portal_url }),
            Notice::SyncHeld {
                run_id,
                source,
                would_disable,
                usernames,
                started_at,
            } => json!({
                "run_id": run_id,
                "source": source,
                "would_disable": would_disable,
                "usernames": usernames,
                "started_at": started_at,
            }),
        }
    }

    /// One filled-in example of every message (used to check templates at start-up).
    pub fn samples() -> Vec<Notice> {
        let at = "2026-01-31 09:30:00".to_string();
        vec![
            Notice::NewUser {
                pin: Some("482913".into()),
            },
            Notice::UserEnrollment,
            Notice::UpdatedUser {
                changes: vec!["Mobile phone".into(), "PIN".into()],
                changed_at: at.clone(),
            },
            Notice::VerificationCode {
                code: "482913".into(),
                expires_minutes: 10,
                signin: true,
            },
            Notice::PasswordReset {
                code: Some("482913".into()),
                reset_url: Some("https://mfa.example.org/reset/token".into()),
                expires_minutes: 10,
            },
            Notice::PasswordChanged {
                changed_at: at.clone(),
            },
            Notice::MethodAdded {
                method: "Authenticator app 'Work phone'".into(),
                changed_at: at.clone(),
            },
            Notice::MethodRemoved {
                method: "Passkey 'YubiKey'".into(),
                changed_at: at.clone(),
            },
            Notice::RecoveryCodeUsed {
                left: 9,
                used_at: at.clone(),
            },
            Notice::AccountLocked {
                locked_at: at.clone(),
                unlock_url: "https://mfa.example.org/reset".into(),
            },
            Notice::FraudAlert {
                subject: Person {
                    username: "alice".into(),
                    display_name: "Alice Andersen".into(),
                },
                reported_at: at,
                source: "This wasn't me link".into(),
                client_ip: "192.0.2.10".into(),
            },
            Notice::HelpdeskVerification {
                code: "482913".into(),
                agent_name: "Bob".into(),
                expires_minutes: 15,
            },
            Notice::HelpdeskAction {
                agent_name: "Bob Berg".into(),
                action: "Issued a Temporary Access Pass, valid until 2026-01-31 10:30:00 UTC"
                    .into(),
                done_at: "2026-01-31 09:30:00".into(),
            },
            Notice::ResetNotPossible {
                requested_at: "2026-01-31 09:30:00".into(),
                portal_url: "https://mfa.example.org/security-info".into(),
            },
            Notice::SyncHeld {
                run_id: "0f8e2c1a-5b7d-4e3f-9a21-6c4d8b0e7f35".into(),
                source: "ldap:corp".into(),
                would_disable: 12,
                usernames: vec!["carol".into(), "dave".into()],
                started_at: "2026-01-31 09:30:00".into(),
            },
        ]
    }
}
