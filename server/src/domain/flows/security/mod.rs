//! Security info: registering methods (the wizard and the Security info page), managing them, and
//! proving them as a second factor. One service, [`Security`], callable without the UI.
//!
//! ```text
//!  add method ──► may_change? (fresh second factor, or a new session of an account with none)
//!      │                        no ──► ReauthRequired (the page sends the user to /signin/verify)
//!      ▼ yes
//!  pending row (TOTP secret sealed / phone / email / passkey ceremony), short TTL
//!      │  the user proves it works (code from the app, SMS/voice/email code, passkey)
//!      ▼
//!  active row + audit + method_added mail to every address of the user ──► session mfa_at = now
//! ```

mod enroll;
mod mfa;
mod oath;
mod passkey;

pub(crate) use enroll::delivery_error;
pub use enroll::{mask, normalise_answer, pin_is_trivial, PendingCode, PhoneSlot, TotpSetup};
pub use mfa::MfaOutcome;
pub(crate) use oath::inventory_context;
pub use oath::{normalise_recovery_code, serial_key, RecoveryCodes, RecoveryUsed};

use super::session::Client;
use crate::crypto::Sealer;
use crate::domain::audit::AuditEntry;
use crate::domain::error::DomainError;
use crate::domain::password::{Password, PasswordHasher};
use crate::domain::policy::{MethodKind, RegistrationPolicy, SigninPolicy};
use crate::domain::users::{Role, User};
use crate::notify::messages::Notice;
use crate::notify::Notifier;
use crate::store::methods::{MethodRow, RegistrationState};
use crate::store::{SessionRow, Store};
use converge_app::api::ErrorCode;
use std::sync::Arc;

/// Audit event names of this module.
pub mod event {
    pub const METHOD_ADDED: &str = "method_added";
    pub const METHOD_REMOVED: &str = "method_removed";
    pub const METHOD_RENAMED: &str = "method_renamed";
    pub const METHOD_DEFAULT: &str = "method_default";
    pub const METHOD_VERIFY: &str = "method_verification";
    pub const CODE_SENT: &str = "code_sent";
    pub const MFA: &str = "second_factor";
    pub const REGISTRATION_CONFIRMED: &str = "registration_confirmed";
    pub const REGISTRATION_SNOOZED: &str = "registration_snoozed";
    pub const SESSIONS_REVOKED: &str = "sessions_revoked";
}

/// Second-factor failures of a user in their own sessions (sign-in step, re-authentication,
/// registering a method).
pub const SCOPE_FACTOR_ACCOUNT: &str = "factor_account";
/// ... in anonymous password-reset flows: never the sign-in budget, so a stranger at the reset
/// page cannot make the user's own second step answer MFA-003.
pub const SCOPE_RESET_FACTOR_ACCOUNT: &str = "reset_factor_account";
/// ... checked by a helpdesk agent.
pub const SCOPE_HELPDESK_FACTOR_ACCOUNT: &str = "helpdesk_factor_account";
pub const SCOPE_FACTOR_CLIENT: &str = "factor_client";

/// Whose budget a guess spends (docs/throttling.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Budget {
    /// The user in their own session.
    #[default]
    Session,
    /// An anonymous password-reset flow for the user.
    Reset,
    /// A helpdesk agent checking the caller.
    Helpdesk,
}

impl Budget {
    pub fn scope(self) -> &'static str {
        match self {
            Budget::Session => SCOPE_FACTOR_ACCOUNT,
            Budget::Reset => SCOPE_RESET_FACTOR_ACCOUNT,
            Budget::Helpdesk => SCOPE_HELPDESK_FACTOR_ACCOUNT,
        }
    }
}

pub struct Security {
    pub store: Store,
    pub notifier: Arc<Notifier>,
    pub sealer: Sealer,
    pub hasher: Arc<PasswordHasher>,
    pub policy: RegistrationPolicy,
    pub signin: SigninPolicy,
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    pub default_country: Option<String>,
    pub org_name: String,
}

/// Who is acting: the signed-in (or half signed-in) user, their session and client.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    pub session: SessionRow,
    pub client: Client,
    pub budget: Budget,
    /// Wrong guesses made in [`Security::guarded`] work (an attempt whose work added one keeps
    /// its count). A counter, not a flag: parallel attempts on one actor never reset each
    /// other's mark (one could otherwise be taken back and let one more guess through).
    #[doc(hidden)]
    pub guessed_wrong: Arc<std::sync::atomic::AtomicU64>,
    /// The session's new cookie value after a privilege change rotated its id (the front door
    /// hands it to the browser).
    pub new_session: Arc<std::sync::Mutex<Option<String>>>,
}

impl Actor {
    /// Records the session's new id after [`super::session::promote_in`].
    pub(crate) fn rotated(&self, token: Option<String>) {
        if let (Some(t), Ok(mut slot)) = (token, self.new_session.lock()) {
            *slot = Some(t);
        }
    }

    /// The new session cookie value, if a privilege change rotated the session.
    pub fn take_new_session(&self) -> Option<String> {
        self.new_session.lock().ok().and_then(|mut s| s.take())
    }

    /// The user acting in their own session.
    pub fn in_session(user: User, session: SessionRow, client: Client) -> Actor {
        Actor {
            user,
            session,
            client,
            budget: Budget::Session,
            guessed_wrong: Default::default(),
            new_session: Default::default(),
        }
    }

    /// Someone proving their methods outside any session (password reset): the session fields
    /// are empty and nothing here promotes a session.
    pub fn without_session(user: User, client: Client, budget: Budget) -> Actor {
        Actor {
            budget,
            guessed_wrong: Default::default(),
            new_session: Default::default(),
            session: SessionRow {
                id_hash: String::new(),
                user_id: user.id.clone(),
                created_at: 0,
                last_seen_at: 0,
                expires_at: 0,
                client_ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
                stage: "none".into(),
                mfa_at: 0,
            },
            user,
            client,
        }
    }
}

/// Where a user stands against the registration policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub registered: u32,
    pub required: u32,
    pub missing_mandatory: Vec<MethodKind>,
    pub complete: bool,
    pub review_due: bool,
    pub can_snooze: bool,
    pub snoozes_left: u32,
}

/// A method as lists show it (no secrets).
#[derive(Debug, Clone)]
pub struct Method {
    pub row: MethodRow,
    pub kind: MethodKind,
}

impl Method {
    pub fn detail(&self) -> serde_json::Value {
        serde_json::from_str(&self.row.detail).unwrap_or(serde_json::Value::Null)
    }

    /// Phone number or email address, if the method has one.
    pub fn destination(&self) -> Option<String> {
        let d = self.detail();
        d.get("number")
            .or_else(|| d.get("address"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// The phone slot (`mobile`, `alternate`, `office`).
    pub fn slot(&self) -> Option<String> {
        self.detail()
            .get("slot")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// How the method is named in mails and the audit log.
    pub fn label(&self) -> String {
        let t = converge_app::text::en();
        format!(
            "{} \u{201c}{}\u{201d}",
            t.sec.kind_label(self.kind.as_str()),
            self.row.name
        )
    }
}

pub fn methods_of(rows: Vec<MethodRow>) -> Vec<Method> {
    rows.into_iter()
        .filter_map(|row| MethodKind::parse(&row.kind).map(|kind| Method { row, kind }))
        .collect()
}

fn refused(code: ErrorCode) -> DomainError {
    DomainError::Refused(code)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// 1–40 characters, no control characters.
fn method_name(name: &str) -> Result<String, DomainError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 40 || n.chars().any(char::is_control) {
        return Err(refused(ErrorCode::NameInvalid));
    }
    Ok(n.to_string())
}

impl Security {
    /// The user's active methods (pending setups never count; the sweep removes expired ones).
    pub async fn methods(&self, user_id: &str) -> Result<Vec<Method>, DomainError> {
        Ok(methods_of(self.store.active_methods(user_id).await?))
    }

    pub fn status(
        &self,
        user: &User,
        methods: &[Method],
        reg: RegistrationState,
        now: i64,
    ) -> Status {
        let mut kinds: Vec<MethodKind> = methods.iter().map(|m| m.kind).collect();
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let counting: Vec<&MethodKind> = kinds.iter().filter(|k| self.policy.counts(**k)).collect();
        // questions count only next to another method
        let registered = if counting.iter().all(|k| **k == MethodKind::Questions) {
            0
        } else {
            counting.len() as u32
        };
        let required = self.policy.required_for(user.role == Role::Admin);
        let missing_mandatory: Vec<MethodKind> = self
            .policy
            .mandatory
            .iter()
            .copied()
            .filter(|k| !kinds.contains(k))
            .collect();
        let complete = registered >= required && missing_mandatory.is_empty();
        let review_due = complete
            && self.policy.reconfirm_seconds > 0
            && reg.confirmed_at > 0
            && now - reg.confirmed_at >= self.policy.reconfirm_seconds;
        let window_open = reg.snooze_first_at == 0
            || now - reg.snooze_first_at < self.policy.snooze_window_seconds;
        let used = if reg.snooze_first_at == 0 {
            0
        } else {
            reg.snooze_count.max(0) as u32
        };
        let snoozes_left = if window_open {
            self.policy.snooze_max.saturating_sub(used)
        } else {
            0
        };
        Status {
            registered,
            required,
            missing_mandatory,
            complete,
            review_due,
            can_snooze: !complete && snoozes_left > 0,
            snoozes_left,
        }
    }

    /// Should this user go through the wizard (or the review) right after signing in?
    pub async fn needs_wizard(&self, user: &User, now: i64) -> Result<bool, DomainError> {
        let methods = self.methods(&user.id).await?;
        Ok(self.needs_wizard_with(user, &methods, now))
    }

    /// [`Self::needs_wizard`] with the methods already at hand (registration state from the
    /// user row).
    pub fn needs_wizard_with(&self, user: &User, methods: &[Method], now: i64) -> bool {
        let reg = RegistrationState::from(user);
        let s = self.status(user, methods, reg, now);
        !s.complete || s.review_due || reg.confirmed_at == 0
    }

    /// Registration is mandatory now: the policy is unmet and postponing is used up. Every
    /// signed-in page but the wizard's own then leads to the wizard.
    pub fn must_register_with(&self, user: &User, methods: &[Method], now: i64) -> bool {
        let s = self.status(user, methods, RegistrationState::from(user), now);
        !s.complete && !s.can_snooze
    }

    /// Changing security info needs a second factor proven within the policy's window whenever
    /// the user has one; an account with none may register its first methods only in a session
    /// that has just been opened.
    pub fn may_change(
        &self,
        actor: &Actor,
        methods: &[Method],
        now: i64,
    ) -> Result<(), DomainError> {
        let fresh = self.policy.fresh_mfa_seconds;
        let has_factor = methods
            .iter()
            .any(|m| m.kind.signs_in() || m.kind == MethodKind::Email);
        let ok = if has_factor {
            actor.session.mfa_at > 0 && now - actor.session.mfa_at <= fresh
        } else {
            now - actor.session.created_at <= fresh
                || (actor.session.mfa_at > 0 && now - actor.session.mfa_at <= fresh)
        };
        if ok {
            Ok(())
        } else {
            Err(refused(ErrorCode::ReauthRequired))
        }
    }

    /// Every address the user receives security mail at: the directory address and verified
    /// email methods (plus `extra`, e.g. the old address after a change).
    pub(crate) fn addresses(
        &self,
        user: &User,
        methods: &[Method],
        extra: Option<&str>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let candidates = user
            .email
            .iter()
            .cloned()
            .chain(
                methods
                    .iter()
                    .filter(|m| m.kind == MethodKind::Email)
                    .filter_map(Method::destination),
            )
            .chain(extra.map(str::to_string));
        for a in candidates {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
        out
    }

    /// Audits a change and mails it to all the user's addresses, in one transaction.
    async fn record_change(
        &self,
        actor: &Actor,
        audit_event: &str,
        reason: String,
        notice: Option<Notice>,
        extra_address: Option<&str>,
        now: i64,
    ) -> Result<(), DomainError> {
        let methods = methods_of(self.store.active_methods(&actor.user.id).await?);
        let mut tx = self.store.begin().await?;
        let mut e = self.audit(actor, audit_event, true, now);
        e.reason = Some(reason);
        crate::store::audit::append_audit_in(&mut tx, &e).await?;
        if let Some(notice) = notice {
            for address in self.addresses(&actor.user, &methods, extra_address) {
                self.notifier
                    .email_address_in(&mut tx, &actor.user, &address, &notice, now)
                    .await?;
            }
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.notifier.wake();
        Ok(())
    }

    pub(crate) fn audit(&self, actor: &Actor, event: &str, success: bool, now: i64) -> AuditEntry {
        let mut e = AuditEntry::new(event, success, now);
        e.user_id = Some(actor.user.id.clone());
        e.username = Some(actor.user.username.clone());
        e.client_ip = Some(actor.client.ip.clone());
        e.user_agent = Some(actor.client.user_agent.clone());
        e
    }

    /// A method became active: audit, mail, and count it as a fresh second factor for this
    /// session (the user just proved possession of it).
    async fn added(&self, actor: &Actor, method: &Method, now: i64) -> Result<(), DomainError> {
        let label = method.label();
        self.record_change(
            actor,
            event::METHOD_ADDED,
            label.clone(),
            Some(Notice::MethodAdded {
                method: label,
                changed_at: crate::domain::format_time(now),
            }),
            None,
            now,
        )
        .await?;
        self.ensure_default(&actor.user.id).await?;
        // proving the new method is a fresh second factor for this session (its id rotates
        // when a registered factor is proven: sign-in, step-up, TAP)
        self.store
            .session_mfa_done(&actor.session.id_hash, now)
            .await?;
        Ok(())
    }

    /// Keeps exactly one default among sign-in capable methods when there is any.
    pub(crate) async fn ensure_default(&self, user_id: &str) -> Result<(), DomainError> {
        let methods = methods_of(self.store.active_methods(user_id).await?);
        if methods
            .iter()
            .any(|m| m.row.is_default && m.kind.can_be_default())
        {
            return Ok(());
        }
        let best = [
            MethodKind::Passkey,
            MethodKind::Totp,
            MethodKind::Token,
            MethodKind::Phone,
        ]
        .iter()
        .find_map(|k| methods.iter().find(|m| m.kind == *k));
        if let Some(m) = best {
            self.store.set_default_method(user_id, &m.row.id).await?;
        }
        Ok(())
    }

    pub async fn set_default(&self, actor: &Actor, id: &str, now: i64) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let m = methods
            .iter()
            .find(|m| m.row.id == id && m.kind.can_be_default())
            .ok_or(refused(ErrorCode::SetupExpired))?;
        self.store.set_default_method(&actor.user.id, id).await?;
        self.record_change(actor, event::METHOD_DEFAULT, m.label(), None, None, now)
            .await
    }

    pub async fn rename(
        &self,
        actor: &Actor,
        id: &str,
        name: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        let name = method_name(name)?;
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let m = methods
            .iter()
            .find(|m| m.row.id == id)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        if !self.store.rename_method(id, &actor.user.id, &name).await? {
            return Err(refused(ErrorCode::SetupExpired));
        }
        self.record_change(
            actor,
            event::METHOD_RENAMED,
            format!("{} → {name}", m.label()),
            None,
            None,
            now,
        )
        .await
    }

    /// Removes a method, unless the policy needs it (last method, mandatory kind) or it is a
    /// directory-managed phone users may not change.
    pub async fn remove(&self, actor: &Actor, id: &str, now: i64) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        self.may_change(actor, &methods, now)?;
        let m = methods
            .iter()
            .find(|m| m.row.id == id)
            .ok_or(refused(ErrorCode::SetupExpired))?
            .clone();
        if m.row.source == "directory" && !self.policy.users_edit_directory_phones {
            return Err(refused(ErrorCode::DirectoryManaged));
        }
        // would the user still meet the policy without it? (checked inside the transaction)
        let mut tx = self.store.begin().await?;
        let current =
            methods_of(crate::store::methods::active_methods_in(&mut tx, &actor.user.id).await?);
        let reg = RegistrationState::default();
        let before = self.status(&actor.user, &current, reg, now);
        let rest: Vec<Method> = current.into_iter().filter(|x| x.row.id != id).collect();
        let after = self.status(&actor.user, &rest, reg, now);
        let breaks_policy = before.complete && !after.complete;
        if rest.is_empty() || breaks_policy {
            return Err(refused(ErrorCode::LastMethod));
        }
        if !crate::store::methods::delete_method_in(&mut tx, id, &actor.user.id).await? {
            return Err(refused(ErrorCode::SetupExpired));
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        let label = m.label();
        // the removed address is told too
        let extra = (m.kind == MethodKind::Email)
            .then(|| m.destination())
            .flatten();
        self.record_change(
            actor,
            event::METHOD_REMOVED,
            label.clone(),
            Some(Notice::MethodRemoved {
                method: label,
                changed_at: crate::domain::format_time(now),
            }),
            extra.as_deref(),
            now,
        )
        .await?;
        // the removed number is told too (a text; the limits of the SMS provider apply)
        if m.kind == MethodKind::Phone {
            if let Some(number) = m.destination() {
                let t = converge_app::text::en();
                let text = t.sec.sms_phone_removed.replace("{org}", &self.org_name);
                if let Err(e) = self
                    .notifier
                    .phone_code(&actor.user, &number, &text, false, now)
                    .await
                {
                    tracing::warn!(error = %e, "could not text the removed number");
                }
            }
        }
        self.ensure_default(&actor.user.id).await
    }

    /// "My info is correct": ends the wizard / review.
    pub async fn confirm(&self, actor: &Actor, now: i64) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        let mut reg = self.store.registration_state(&actor.user.id).await?;
        if !self.status(&actor.user, &methods, reg, now).complete {
            return Err(refused(ErrorCode::SnoozeExhausted));
        }
        // a directory user's first complete registration: the `new_user` welcome (the PIN, if
        // any, is never mailed: the user chose it)
        let welcome = (reg.confirmed_at == 0 && actor.user.source.starts_with("ldap:"))
            .then_some(Notice::NewUser { pin: None });
        reg.confirmed_at = now;
        reg.snooze_count = 0;
        reg.snooze_first_at = 0;
        self.store
            .set_registration_state(&actor.user.id, reg)
            .await?;
        self.record_change(
            actor,
            event::REGISTRATION_CONFIRMED,
            String::new(),
            welcome,
            None,
            now,
        )
        .await
    }

    /// "Not now" in the wizard, within the policy's allowance.
    pub async fn snooze(&self, actor: &Actor, now: i64) -> Result<(), DomainError> {
        let methods = self.methods(&actor.user.id).await?;
        let mut reg = self.store.registration_state(&actor.user.id).await?;
        let s = self.status(&actor.user, &methods, reg, now);
        if !s.can_snooze {
            return Err(refused(ErrorCode::SnoozeExhausted));
        }
        if reg.snooze_first_at == 0 {
            reg.snooze_first_at = now;
        }
        reg.snooze_count += 1;
        self.store
            .set_registration_state(&actor.user.id, reg)
            .await?;
        self.record_change(
            actor,
            event::REGISTRATION_SNOOZED,
            format!("{} of {}", reg.snooze_count, self.policy.snooze_max),
            None,
            None,
            now,
        )
        .await
    }

    /// Ends every other session of the user.
    pub async fn sign_out_others(&self, actor: &Actor, now: i64) -> Result<u64, DomainError> {
        let n = self
            .store
            .delete_other_sessions(&actor.user.id, &actor.session.id_hash)
            .await?;
        self.record_change(
            actor,
            event::SESSIONS_REVOKED,
            format!("{n} other sessions"),
            None,
            None,
            now,
        )
        .await?;
        Ok(n)
    }

    /// Refuses with `MFA-003` while the account or the client is throttled (a read, for steps
    /// that are not guesses themselves, such as sending a code).
    pub(crate) async fn refuse_if_throttled(
        &self,
        actor: &Actor,
        now: i64,
    ) -> Result<(), DomainError> {
        for key in self.guess_keys(actor) {
            if super::throttle::refuses(&self.store, &key, now).await? {
                return Err(refused(ErrorCode::TooManyAttempts));
            }
        }
        Ok(())
    }

    /// The buckets a guess by `actor` is counted in: the user's (for the actor's budget) and the
    /// client address's.
    fn guess_keys(&self, actor: &Actor) -> Vec<super::throttle::Key> {
        use super::throttle::Key;
        vec![
            Key::account(
                actor.budget.scope(),
                &actor.user.id,
                self.signin.account_bucket(),
            ),
            Key::shared(
                SCOPE_FACTOR_CLIENT,
                &actor.client.ip,
                self.signin.client_bucket(),
            ),
        ]
    }

    /// Runs `work` — one guess (a code, PIN, answers, pass, passkey) — counted before it starts
    /// (refused with `MFA-003`, audited, when a bucket is full or busy). When the work called
    /// [`Self::count_failure`] the count stays; a success forgets the user's failures; any other
    /// outcome (a store outage, an expired setup) takes the count back.
    pub(crate) async fn guarded<T>(
        &self,
        actor: &Actor,
        now: i64,
        work: impl std::future::Future<Output = Result<T, DomainError>>,
    ) -> Result<T, DomainError> {
        use std::sync::atomic::Ordering;
        let attempt = match super::throttle::begin(&self.store, self.guess_keys(actor), now).await?
        {
            Ok(a) => a,
            Err(_) => {
                let mut e = self.audit(actor, event::METHOD_VERIFY, false, now);
                e.reason = Some("throttled".into());
                self.store.append_audit(&e).await?;
                return Err(refused(ErrorCode::TooManyAttempts));
            }
        };
        let wrong_before = actor.guessed_wrong.load(Ordering::SeqCst);
        let result = work.await;
        if result.is_ok() {
            attempt.succeeded(&self.store).await?;
        } else if actor.guessed_wrong.load(Ordering::SeqCst) != wrong_before {
            let taken = attempt.failed(&self.store).await?;
            if taken
                .first()
                .is_some_and(|t| t.failures == self.signin.free_attempts.max(1))
            {
                super::signin::warn_owner(
                    &self.store,
                    &self.notifier,
                    &self.signin,
                    &actor.user,
                    super::signin::Guessed::SecondFactor,
                    &actor.client,
                    now,
                )
                .await?;
            }
        } else {
            attempt.cancel(&self.store).await?;
        }
        result
    }

    /// A guess was wrong: audited; [`Self::guarded`] keeps it counted.
    pub(crate) async fn count_failure(
        &self,
        actor: &Actor,
        what: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        actor
            .guessed_wrong
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut e = self.audit(actor, event::METHOD_VERIFY, false, now);
        e.reason = Some(what.to_string());
        self.store.append_audit(&e).await?;
        Ok(())
    }

    /// argon2id of a normalised secret (PIN, answer).
    async fn hash_secret(&self, secret: &str) -> Result<String, DomainError> {
        let p =
            Password::parse(secret.to_string()).map_err(|_| refused(ErrorCode::AnswersInvalid))?;
        self.hasher
            .hash(&p)
            .await
            .map_err(|e| DomainError::Hashing(e.to_string()))
    }

    pub(crate) async fn verify_secret(&self, secret: &str, stored: &str) -> bool {
        match Password::parse(secret.to_string()) {
            Ok(p) => self.hasher.verify(&p, Some(stored)).await,
            Err(_) => false,
        }
    }
}
