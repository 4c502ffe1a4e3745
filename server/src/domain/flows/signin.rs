//! Sign-in with username and password.
//!
//! ```text
//!  submit ──► count the attempt (throttle::begin: the account's bucket — the device's own when
//!               │  the browser has this account's device cookie, the strangers' otherwise — and
//!               │  the client address's), atomically, before any work
//!               │ refused ──► Rejected(Throttled)          (no hashing, same answer)
//!               ▼
//!         directory.authenticate  (always exactly one argon2 verification, fallback hash
//!               │                  for unknown users)
//!               ▼
//!  unknown / wrong / disabled / locked ──► the count stays; strangers' consecutive failures
//!               │                          lock the account for strangers at the threshold;
//!               │                          the owner is warned (once a day); audit ──► Rejected
//!               ▼ ok
//!  the account's bucket forgets, the previous session ends (rotation), session, device cookie,
//!  audit ──► SignedIn
//! ```
//! Every rejection looks the same to the client: same status, same page, similar time. A lock
//! (too many strangers' failures) keeps strangers out; the user's own devices still sign in
//! (OWASP "device cookies"), so a stranger can slow guessing down but not lock the user out.

use super::session::{self, Client};
use super::throttle::{self, Key};
use crate::crypto::Sealer;
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

/// Failures for an account name from clients without its device cookie ("strangers").
pub const SCOPE_ACCOUNT: &str = "signin_account";
/// Failures from one known device (the nonce of its device cookie).
pub const SCOPE_DEVICE: &str = "signin_device";
pub const SCOPE_CLIENT: &str = "signin_client";
/// Refused (throttled) sign-ins are audited once a minute per account name or address.
pub const SCOPE_REFUSAL_AUDIT: &str = "signin_refusal_audit";
/// At most one "someone is guessing" mail a day per account and kind.
pub const SCOPE_WARNING: &str = "guessing_warning";

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
    /// The right password, but the directory says it has expired or must be changed.
    PasswordExpired,
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
            RejectReason::PasswordExpired => "password_expired",
        }
    }
}

#[derive(Debug)]
pub enum SigninOutcome {
    /// `needs_mfa`: the session waits for a second factor before it is signed in. `device` is
    /// the device cookie value for this account (new, or the one the browser sent).
    SignedIn {
        user: Box<User>,
        token: String,
        needs_mfa: bool,
        device: String,
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
    pub sealer: &'a Sealer,
    pub signin: &'a SigninPolicy,
    pub session: &'a SessionPolicy,
}

/// Device cookies (OWASP "device cookies"): `<nonce>.<HMAC(username, nonce)>`, issued after a
/// correct password, good only for the account it was issued to.
pub mod device {
    use crate::crypto::Sealer;
    use rand::RngCore;

    const CONTEXT: &str = "device-cookie";

    pub fn issue(sealer: &Sealer, username: &str) -> String {
        value(sealer, username, &new_nonce())
    }

    /// A fresh device nonce (32 hex digits).
    pub fn new_nonce() -> String {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        hex::encode(nonce)
    }

    /// The device value for `nonce` (front doors without cookies keep the nonce and rebuild it).
    pub fn value(sealer: &Sealer, username: &str, nonce: &str) -> String {
        let mac = sealer.sign(CONTEXT, &format!("{username}\0{nonce}"));
        format!("{nonce}.{mac}")
    }

    /// The nonce of a valid device cookie for `username`, if `cookie` holds one (a browser
    /// keeps one cookie per account it signed in to: `cookie` may list several, `~`-separated).
    pub fn known(sealer: &Sealer, username: &str, cookie: Option<&str>) -> Option<String> {
        cookie?.split('~').find_map(|one| {
            let (nonce, mac) = one.trim().split_once('.')?;
            (nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit())).then_some(())?;
            sealer
                .sign_matches(CONTEXT, &format!("{username}\0{nonce}"), mac)
                .then(|| nonce.to_string())
        })
    }
}

/// The password step alone, as every front door (the portal, RADIUS) runs it: counted before
/// any work, one directory verification, lockout for strangers, the owner warned. A rejection is
/// audited here; an acceptance hands the caller the audit line to complete.
pub enum PasswordCheck {
    Accepted {
        user: Box<User>,
        /// The nonce of this account's valid device cookie, when the client sent one.
        device: Option<String>,
        audit: Box<AuditEntry>,
    },
    Rejected(RejectReason),
}

pub async fn sign_in(
    deps: &SigninDeps<'_>,
    input: SigninInput,
    now: i64,
) -> Result<SigninOutcome, DomainError> {
    let (user, device, mut audit) =
        match check_password(deps, &input.username, input.password, &input.client, now).await? {
            PasswordCheck::Accepted {
                user,
                device,
                audit,
            } => (*user, device, *audit),
            PasswordCheck::Rejected(r) => return Ok(SigninOutcome::Rejected(r)),
        };
    let SigninDeps {
        store,
        sealer,
        session: session_policy,
        ..
    } = deps;
    // users with a sign-in capable method must prove it next
    let needs_mfa =
        store.active_methods(&user.id).await?.iter().any(|m| {
            crate::domain::policy::MethodKind::parse(&m.kind).is_some_and(|k| k.signs_in())
        });
    // rotation, the new session and its audit line commit together
    let mut tx = store.begin().await?;
    if let Some(previous) = input.previous_token.as_deref() {
        crate::store::sessions::delete_session_in(&mut tx, &session::hash_token(previous)).await?;
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
    if needs_mfa {
        let past_lock = audit.reason.take();
        audit.reason = Some(match past_lock {
            Some(r) => format!("password accepted; second factor pending; {r}"),
            None => "password accepted; second factor pending".into(),
        });
    }
    append_audit_in(&mut tx, &audit).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    let device = match device {
        Some(_) => input
            .client
            .device
            .clone()
            .unwrap_or_else(|| device::issue(sealer, &user.username)),
        None => device::issue(sealer, &user.username),
    };
    Ok(SigninOutcome::SignedIn {
        user: Box::new(user),
        token,
        needs_mfa,
        device,
    })
}

pub async fn check_password(
    deps: &SigninDeps<'_>,
    username: &str,
    password: String,
    client: &Client,
    now: i64,
) -> Result<PasswordCheck, DomainError> {
    let SigninDeps {
        store,
        notifier,
        directory,
        sealer,
        signin: policy,
        ..
    } = deps;
    let submitted = username.trim().to_lowercase();
    let mut audit = AuditEntry::new(event::SIGNIN, false, now);
    audit.username = Some(submitted.chars().take(256).collect());
    audit.client_ip = Some(client.ip.clone());
    audit.user_agent = Some(client.user_agent.clone());

    let (Ok(username), Ok(password)) = (Username::parse(&submitted), Password::parse(password))
    else {
        audit.reason = Some(RejectReason::Malformed.as_str().into());
        store.append_audit(&audit).await?;
        return Ok(PasswordCheck::Rejected(RejectReason::Malformed));
    };
    // a second name of the account (AD's userPrincipalName) is the account: one budget, one
    // device cookie, one directory bind whichever name was typed
    let username = match store.canonical_name(username.as_str(), false).await? {
        name if name == username.as_str() => username,
        name => Username::parse(&name).map_err(DomainError::Invalid)?,
    };

    // 1. count the attempt before any work: the account's bucket (this device's own, when the
    //    browser holds this account's device cookie and the device has not itself failed
    //    `lockout_threshold` times in a row) and the client address's
    let mut device = device::known(sealer, username.as_str(), client.device.as_deref());
    if let Some(nonce) = &device {
        let spent = store.throttle(SCOPE_DEVICE, nonce).await?;
        if spent.is_some_and(|t| t.consecutive >= i64::from(policy.lockout_threshold)) {
            device = None;
        }
    }
    let account_key = match &device {
        Some(nonce) => Key::account(SCOPE_DEVICE, nonce, policy.account_bucket()),
        None => Key::account(SCOPE_ACCOUNT, username.as_str(), policy.account_bucket()),
    };
    let keys = vec![
        account_key,
        Key::shared(SCOPE_CLIENT, &client.ip, policy.client_bucket()),
    ];
    let attempt = match throttle::begin(store, keys, now).await? {
        Ok(a) => a,
        Err(which) => {
            let reason = if which == 0 {
                RejectReason::ThrottledAccount
            } else {
                RejectReason::ThrottledClient
            };
            // a flood must not turn into a flood of audit writes: the first refusal per account
            // name (or address) and minute is audited; the metrics count every one
            let subject = if which == 0 {
                username.as_str()
            } else {
                client.ip.as_str()
            };
            let once = Key::shared(
                SCOPE_REFUSAL_AUDIT,
                &format!("{}:{subject}", reason.as_str()),
                crate::domain::policy::Bucket::rate(1, 60),
            );
            if throttle::take_rate(store, &once, now).await? {
                audit.reason = Some(reason.as_str().into());
                store.append_audit(&audit).await?;
            }
            return Ok(PasswordCheck::Rejected(reason));
        }
    };

    // 2. the directory: exactly one password verification whatever the user's state
    let auth = match directory.authenticate(&username, &password).await {
        Ok(a) => a,
        Err(e) => {
            // an outage is not a guess
            attempt.cancel(store).await?;
            return Err(e);
        }
    };
    audit.user_id = auth.user.as_ref().map(|u| u.id.clone());
    let detail = auth.detail.clone();
    let verdict = match &auth.user {
        None => Err(RejectReason::UnknownUser),
        // (only for a user the portal lets in: the directory saw a real bind)
        Some(_) if auth.expired => Err(RejectReason::PasswordExpired),
        Some(_) if !auth.verified => Err(RejectReason::WrongPassword),
        Some(u) if !u.enabled => Err(RejectReason::Disabled),
        // the lock keeps strangers out; the user's own devices still come in
        Some(u) if u.locked_at.is_some() && device.is_none() => Err(RejectReason::Locked),
        Some(u) if u.is_blocked(now) => Err(RejectReason::Blocked),
        Some(_) => Ok(()),
    };

    match (verdict, auth.user) {
        (Ok(()), Some(user)) => {
            attempt.succeeded(store).await?;
            audit.success = true;
            if device.is_some() && user.locked_at.is_some() {
                audit.reason = Some("known device past the lock for strangers".into());
            }
            Ok(PasswordCheck::Accepted {
                user: Box::new(user),
                device,
                audit: Box::new(audit),
            })
        }
        (Err(RejectReason::PasswordExpired), _) => {
            // the password was right: no guess to count, nothing to lock; the page sends the
            // user to the reset
            attempt.succeeded(store).await?;
            audit.reason = Some(match &detail {
                Some(d) => format!("{}; {d}", RejectReason::PasswordExpired.as_str()),
                None => RejectReason::PasswordExpired.as_str().into(),
            });
            store.append_audit(&audit).await?;
            Ok(PasswordCheck::Rejected(RejectReason::PasswordExpired))
        }
        (verdict, user) => {
            let reason = verdict.err().unwrap_or(RejectReason::UnknownUser);
            // 3. the failure stays counted; wrong passwords for locked/disabled accounts too
            let taken = attempt.failed(store).await?;
            let account = taken.first().copied();
            audit.reason = Some(match &detail {
                Some(d) => format!("{}; {d}", reason.as_str()),
                None => reason.as_str().into(),
            });
            store.append_audit(&audit).await?;
            if let (Some(user), Some(account)) = (user, account) {
                let stranger = device.is_none();
                if stranger
                    && account.consecutive >= policy.lockout_threshold
                    && user.locked_at.is_none()
                {
                    lock_account(store, notifier, &user, account.consecutive, client, now).await?;
                } else if account.failures == policy.free_attempts.max(1) {
                    warn_owner(
                        store,
                        notifier,
                        policy,
                        &user,
                        Guessed::Password,
                        client,
                        now,
                    )
                    .await?;
                }
            }
            Ok(PasswordCheck::Rejected(reason))
        }
    }
}

/// Are strangers' sign-ins to this account name being refused right now (a status for the
/// helpdesk card and the unlock offer)?
pub async fn strangers_throttled(
    store: &Store,
    policy: &SigninPolicy,
    username: &str,
    now: i64,
) -> Result<bool, DomainError> {
    throttle::refuses(
        store,
        &Key::account(SCOPE_ACCOUNT, username, policy.account_bucket()),
        now,
    )
    .await
    .map_err(DomainError::from)
}

/// What someone is guessing at (the `what` of the `guessing_attempts` mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guessed {
    Password,
    SecondFactor,
}

impl Guessed {
    pub fn as_str(self) -> &'static str {
        match self {
            Guessed::Password => "password",
            Guessed::SecondFactor => "second_factor",
        }
    }
}

/// Tells the owner (mail, through the outbox) that their account is being guessed at: when a
/// bucket first starts delaying, at most once a day per kind.
pub(crate) async fn warn_owner(
    store: &Store,
    notifier: &Notifier,
    policy: &SigninPolicy,
    user: &User,
    what: Guessed,
    client: &Client,
    now: i64,
) -> Result<(), DomainError> {
    let key = Key::account(
        SCOPE_WARNING,
        &format!("{}:{}", what.as_str(), user.id),
        policy.warning_bucket(),
    );
    if !throttle::take_rate(store, &key, now).await? {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    let notice = Notice::GuessingAttempts {
        what: what.as_str().into(),
        at: crate::domain::format_time(now),
        client_ip: client.ip.clone(),
        reset_url: notifier.link(converge_app::routes::RESET),
    };
    notifier.email_user_in(&mut tx, user, &notice, now).await?;
    let mut e = AuditEntry::new(event::GUESSING_WARNED, true, now);
    e.user_id = Some(user.id.clone());
    e.username = Some(user.username.clone());
    e.reason = Some(what.as_str().into());
    e.client_ip = Some(client.ip.clone());
    append_audit_in(&mut tx, &e).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    notifier.wake();
    Ok(())
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
