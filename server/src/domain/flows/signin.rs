//! Sign-in with username and password.
//!
//! ```text
//!  submit ──► throttled? ──yes──► Rejected(Throttled)          (no hashing, same answer)
//!               │ no
//!               ▼
//!         directory.authenticate  (always exactly one argon2 verification, fallback hash
//!               │                  for unknown users)
//!               ▼
//!  unknown / wrong / disabled / locked ──► count failure (account + client), maybe lock,
//!               │                          audit with internal reason ──► Rejected(reason)
//!               ▼ ok
//!  clear account counter, end the previous session (rotation), create session, audit ──► SignedIn
//! ```
//! Every rejection looks the same to the client: same status, same page, similar time.

use super::session::{self, Client};
use crate::directory::Directory;
use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::policy::{SessionPolicy, SigninPolicy};
use crate::domain::users::{User, Username};
use crate::notify::messages::Notice;
use crate::notify::Notifier;
use crate::store::audit::append_audit_in;
use crate::store::users::set_locked_in;
use crate::store::Store;

pub const SCOPE_ACCOUNT: &str = "signin_account";
pub const SCOPE_CLIENT: &str = "signin_client";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    Malformed,
    ThrottledAccount,
    ThrottledClient,
    UnknownUser,
    WrongPassword,
    Disabled,
    Locked,
    /// A fraud report blocked the account.
    Blocked,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed_input",
            RejectReason::ThrottledAccount => "throttled_account",
            RejectReason::ThrottledClient => "throttled_client",
            RejectReason::UnknownUser => "unknown_user",
            RejectReason::WrongPassword => "wrong_password",
            RejectReason::Disabled => "disabled",
            RejectReason::Locked => "locked",
            RejectReason::Blocked => "blocked_after_fraud_report",
        }
    }
}

#[derive(Debug)]
pub enum SigninOutcome {
    /// `needs_mfa`: the session waits for a second factor before it is signed in.
    SignedIn {
        user: Box<User>,
        token: String,
        needs_mfa: bool,
    },
    Rejected(RejectReason),
}

pub struct SigninInput {
    pub username: String,
    pub password: String,
    pub client: Client,
    /// The session cookie the browser already had; it is ended (session id rotation).
    pub previous_token: Option<String>,
}

pub struct SigninDeps<'a> {
    pub store: &'a Store,
    pub notifier: &'a Notifier,
    pub directory: &'a dyn Directory,
    pub signin: &'a SigninPolicy,
    pub session: &'a SessionPolicy,
}

pub async fn sign_in(
    deps: &SigninDeps<'_>,
    input: SigninInput,
    now: i64,
) -> Result<SigninOutcome, DomainError> {
    let SigninDeps {
        store,
        notifier,
        directory,
        signin: policy,
        session: session_policy,
    } = deps;
    let submitted = input.username.trim().to_lowercase();
    let mut audit = AuditEntry::new(event::SIGNIN, false, now);
    audit.username = Some(submitted.chars().take(256).collect());
    audit.client_ip = Some(input.client.ip.clone());
    audit.user_agent = Some(input.client.user_agent.clone());

    let (Ok(username), Ok(password)) =
        (Username::parse(&submitted), Password::parse(input.password))
    else {
        audit.reason = Some(RejectReason::Malformed.as_str().into());
        store.append_audit(&audit).await?;
        return Ok(SigninOutcome::Rejected(RejectReason::Malformed));
    };

    // 1. throttles: per account name (known or not) and per client address
    let account = store.throttle(SCOPE_ACCOUNT, username.as_str()).await?;
    let client = store.throttle(SCOPE_CLIENT, &input.client.ip).await?;
    let throttled = if account.as_ref().is_some_and(|t| t.blocked_until > now) {
        Some(RejectReason::ThrottledAccount)
    } else if client.as_ref().is_some_and(|t| t.blocked_until > now) {
        Some(RejectReason::ThrottledClient)
    } else {
        None
    };
    if let Some(reason) = throttled {
        audit.reason = Some(reason.as_str().into());
        store.append_audit(&audit).await?;
        return Ok(SigninOutcome::Rejected(reason));
    }

    // 2. the directory: exactly one password verification whatever the user's state
    let auth = directory.authenticate(&username, &password).await?;
    audit.user_id = auth.user.as_ref().map(|u| u.id.clone());
    let detail = auth.detail.clone();
    let verdict = match &auth.user {
        None => Err(RejectReason::UnknownUser),
        Some(_) if !auth.verified => Err(RejectReason::WrongPassword),
        Some(u) if !u.enabled => Err(RejectReason::Disabled),
        Some(u) if u.locked_at.is_some() => Err(RejectReason::Locked),
        Some(u) if u.is_blocked(now) => Err(RejectReason::Blocked),
        Some(_) => Ok(()),
    };

    match (verdict, auth.user) {
        (Ok(()), Some(user)) => {
            if account.is_some() {
                store
                    .clear_throttle(SCOPE_ACCOUNT, username.as_str())
                    .await?;
            }
            // users with a sign-in capable method must prove it next
            let needs_mfa = store.active_methods(&user.id).await?.iter().any(|m| {
                crate::domain::policy::MethodKind::parse(&m.kind).is_some_and(|k| k.signs_in())
            });
            // rotation, the new session and its audit line commit together
            let mut tx = store.begin().await?;
            if let Some(previous) = input.previous_token.as_deref() {
                crate::store::sessions::delete_session_in(&mut tx, &session::hash_token(previous))
                    .await?;
            }
            let token = session::create_in(
                &mut tx,
                &user,
                &input.client,
                session_policy,
                needs_mfa,
                now,
            )
            .await?;
            audit.success = true;
            if needs_mfa {
                audit.reason = Some("password accepted; second factor pending".into());
            }
            append_audit_in(&mut tx, &audit).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            Ok(SigninOutcome::SignedIn {
                user: Box::new(user),
                token,
                needs_mfa,
            })
        }
        (verdict, user) => {
            let reason = verdict.err().unwrap_or(RejectReason::UnknownUser);
            // 3. count the failure; wrong passwords for locked/disabled accounts count too
            use super::throttle::{fail, Counter};
            let failures = fail(
                store,
                policy,
                Counter::Account,
                SCOPE_ACCOUNT,
                username.as_str(),
                now,
            )
            .await?;
            fail(
                store,
                policy,
                Counter::Client,
                SCOPE_CLIENT,
                &input.client.ip,
                now,
            )
            .await?;
            audit.reason = Some(match &detail {
                Some(d) => format!("{}; {d}", reason.as_str()),
                None => reason.as_str().into(),
            });
            store.append_audit(&audit).await?;
            if let Some(user) = user {
                if failures >= policy.lockout_threshold && user.locked_at.is_none() {
                    lock_account(store, notifier, &user, failures, &input.client, now).await?;
                }
            }
            Ok(SigninOutcome::Rejected(reason))
        }
    }
}

/// Locks sign-in for the account; the lock, its audit line and the user's notification commit
/// together. Existing sessions end.
async fn lock_account(
    store: &Store,
    notifier: &Notifier,
    user: &User,
    failures: u32,
    client: &Client,
    now: i64,
) -> Result<(), DomainError> {
    let mut tx = store.begin().await?;
    set_locked_in(&mut tx, &user.id, Some(now), now).await?;
    let mut locked = AuditEntry::new(event::ACCOUNT_LOCKED, true, now);
    locked.user_id = Some(user.id.clone());
    locked.username = Some(user.username.clone());
    locked.reason = Some(format!("{failures} consecutive failed sign-ins"));
    locked.client_ip = Some(client.ip.clone());
    append_audit_in(&mut tx, &locked).await?;
    let notice = Notice::AccountLocked {
        locked_at: crate::domain::format_time(now),
        unlock_url: notifier.link(converge_app::routes::RESET),
    };
    notifier.email_user_in(&mut tx, user, &notice, now).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    notifier.wake();
    store.delete_user_sessions(&user.id).await?;
    tracing::warn!(user = %user.username, failures, "account locked for sign-in");
    Ok(())
}

/// Opens a fully signed-in session for a user proven by a passwordless passkey (which is itself
/// phishing-resistant multi-factor: possession plus the authenticator's user verification).
pub async fn passkey_session(
    store: &Store,
    user: &User,
    client: &Client,
    previous_token: Option<&str>,
    policy: &SessionPolicy,
    now: i64,
) -> Result<String, DomainError> {
    let mut tx = store.begin().await?;
    if let Some(previous) = previous_token {
        crate::store::sessions::delete_session_in(&mut tx, &session::hash_token(previous)).await?;
    }
    let token = session::create_in(&mut tx, user, client, policy, false, now).await?;
    crate::store::sessions::mark_mfa_in(&mut tx, &session::hash_token(&token), now).await?;
    let mut audit = AuditEntry::new(event::SIGNIN, true, now);
    audit.user_id = Some(user.id.clone());
    audit.username = Some(user.username.clone());
    audit.reason = Some("passkey (passwordless)".into());
    audit.client_ip = Some(client.ip.clone());
    audit.user_agent = Some(client.user_agent.clone());
    append_audit_in(&mut tx, &audit).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(token)
}
