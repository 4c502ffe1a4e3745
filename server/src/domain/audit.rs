//! Audit events: append-only, everything security-relevant. `event` names are stable strings
//! (the UI labels them; exports and filters use them).

/// Names of audit events.
pub mod event {
    pub const SIGNIN: &str = "signin";
    pub const SIGNOUT: &str = "signout";
    pub const SESSION_EXPIRED: &str = "session_expired";
    pub const ACCOUNT_LOCKED: &str = "account_locked";
    pub const ACCOUNT_UNLOCKED: &str = "account_unlocked";
    /// The owner was told (by mail) that someone is guessing at their account.
    pub const GUESSING_WARNED: &str = "guessing_warned";
    pub const PASSWORD_SET: &str = "password_set";
    pub const USER_CREATED: &str = "user_created";
    pub const USER_UPDATED: &str = "user_updated";
    pub const USER_DISABLED: &str = "user_disabled";
    pub const USER_ENABLED: &str = "user_enabled";
    pub const ROLE_SET: &str = "role_set";
    /// The user followed a "This wasn't me" link and confirmed.
    pub const FRAUD_REPORTED: &str = "fraud_reported";
    /// An administrator lifted a fraud block.
    pub const ACCOUNT_UNBLOCKED: &str = "account_unblocked";
    /// A voice gateway reported how the person answered a call.
    pub const VOICE_ANSWERED: &str = "voice_call_answered";
    /// A directory sync applied its changes (counts in `reason`).
    pub const SYNC_RUN: &str = "directory_sync";
    /// A directory sync would have disabled more users than the threshold and waits.
    pub const SYNC_HELD: &str = "directory_sync_held";
    pub const SYNC_APPROVED: &str = "directory_sync_approved";
    /// A gateway (RADIUS client) asked for a sign-in: client, method, result and reason.
    pub const GATEWAY_SIGNIN: &str = "gateway_signin";
    /// A dead letter of the outbox was queued again.
    pub const OUTBOX_RETRIED: &str = "outbox_retried";
    /// `converge key rotate` began moving the sealed data to a new instance key.
    pub const KEY_ROTATION_STARTED: &str = "instance_key_rotation_started";
    /// Every sealed value is under the new instance key (fingerprints in `reason`).
    pub const KEY_ROTATED: &str = "instance_key_rotated";
    /// The retention sweep removed or pseudonymised records (the counts in `reason`).
    pub const RETENTION_SWEPT: &str = "retention_swept";
}

/// One line of the audit log. `reason` is internal (never shown to the person signing in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    pub event: String,
    pub success: bool,
    /// The user the event is about.
    pub user_id: Option<String>,
    /// Who did it, when not the user themselves (helpdesk, admin, `cli`).
    pub actor: Option<String>,
    /// The username as submitted (also for unknown users).
    pub username: Option<String>,
    pub reason: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditEntry {
    pub fn new(event: &str, success: bool, at: i64) -> Self {
        AuditEntry {
            at,
            event: event.to_string(),
            success,
            ..Default::default()
        }
    }
}
