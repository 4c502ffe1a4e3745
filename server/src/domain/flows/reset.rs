//! Self-service password reset and "unlock my account": the user proves one or two registered
//! methods ("gates"), then sets a new password that is written to the directory (or the
//! portal's lockout is lifted). Callable without the UI.
//!
//! ```text
//!  start(name) ──► flow row + cookie, for EVERY name (unknown, disabled, too few methods: a
//!      │           decoy flow whose methods are made up and whose codes never match)
//!      ▼
//!  gate k of n: choose a method (masked) ─► send code (SMS / call / email with code + link),
//!      │        or app code, passkey, K of N security questions (only as the 2nd gate)
//!      ▼ all gates proven (different methods)
//!  new password (length, blocklist, names) ─► claim flow (one winner) ─► Directory::set_password
//!      │                                         refused: flow released, user tries again
//!      ▼
//!  sessions ended, other flows / codes / links invalidated, account unlocked, password_changed
//!  mailed to every address, audited. MFA methods are never touched.
//! ```
//!
//! No enumeration: step 1 does the same reads and writes whoever is named and answers with the
//! same cookie and redirect; failures count per flow, per account and per client.

use super::security::{
    event as sec_event, mask, normalise_answer, Actor, Budget, Method, Security,
};
use super::session::{hash_token, new_token, Client};
use super::throttle::{self, Key};
use crate::directory::Directory;
use crate::domain::audit::AuditEntry;
use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::password_rules::PasswordRules;
use crate::domain::policy::Bucket;
use crate::domain::policy::{MethodKind, ResetPolicy};
use crate::domain::users::{Role, User};
use crate::notify::messages::Notice;
use crate::store::reset::{ResetFlowRow, Writeback};
use crate::store::Store;
use converge_app::api::ErrorCode;
use rand::seq::SliceRandom;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Audit event names of the reset flow.
pub mod event {
    pub const REQUESTED: &str = "reset_requested";
    pub const GATE: &str = "reset_verification";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const UNLOCKED: &str = "account_unlocked";
}

const PURPOSE_CODE: &str = "reset";
/// The channel of a link the helpdesk sent: it opens a flow with nothing left to prove.
const HELPDESK_LINK: &str = "helpdesk";
const PURPOSE_LINK: &str = "reset_link";
pub const SCOPE_REQUEST_CLIENT: &str = "reset_client";
pub const SCOPE_REQUEST_ACCOUNT: &str = "reset_account";
const SCOPE_POW: &str = "reset_pow";
const SCOPE_LINK_CLIENT: &str = "reset_link_client";
const POW_SECONDS: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Reset,
    Unlock,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reset => "reset",
            Purpose::Unlock => "unlock",
        }
    }
    pub fn parse(s: &str) -> Purpose {
        if s == "unlock" {
            Purpose::Unlock
        } else {
            Purpose::Reset
        }
    }
}

/// A method the user may prove, as the page shows it (masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub kind: MethodKind,
    pub name: String,
    /// Masked phone number or address; empty for apps, passkeys and questions.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Proving gate `gate` of `gates`.
    Prove,
    /// All gates proven: choose the new password.
    NewPassword,
    /// All gates proven: unlock.
    Unlock,
}

#[derive(Debug, Clone)]
pub struct FlowView {
    pub purpose: Purpose,
    pub stage: Stage,
    pub gate: u32,
    pub gates: u32,
    pub choices: Vec<Choice>,
    /// The questions this flow asks (when security questions are a choice).
    pub questions: Vec<String>,
    /// Minimum length of the new password.
    pub min_length: usize,
    /// The directory's complexity rule applies (shown and checked before the directory is asked).
    pub complexity: bool,
    /// Username, for the page's live "must not contain" hint (only once all gates passed).
    pub username: String,
}

/// What a code was sent to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub channel: String,
    pub destination: String,
}

pub struct Reset {
    pub security: Arc<Security>,
    pub directory: Arc<dyn Directory>,
    pub rules: Arc<PasswordRules>,
    pub policy: ResetPolicy,
}

/// The associated-data prefix of a recorded directory write's sealed password (+ flow id).
pub const WRITEBACK_CONTEXT: &str = "writeback:";

fn writeback_context(flow_id: &str) -> String {
    format!("{WRITEBACK_CONTEXT}{flow_id}")
}

/// An open flow and, unless it is a decoy, its user.
struct Open {
    row: ResetFlowRow,
    user: Option<User>,
}

impl Reset {
    fn store(&self) -> &Store {
        &self.security.store
    }

    /// Step 1: someone typed a username or email address. Whatever was typed, the answer is a
    /// new flow token (the cookie value) after the same work.
    pub async fn start(
        &self,
        login: &str,
        purpose: Purpose,
        proof: &str,
        client: &Client,
        now: i64,
    ) -> Result<String, DomainError> {
        if !self.policy.enabled {
            return Err(DomainError::Refused(ErrorCode::ResetUnavailable));
        }
        if self.policy.proof_of_work_bits > 0 && !self.check_proof(proof, now).await? {
            return Err(DomainError::Refused(ErrorCode::ResetCheckFailed));
        }
        let login: String = login.trim().chars().take(256).collect();
        // the account's username, email address and directory principal share one budget
        let canonical = self.store().canonical_name(&login, true).await?;
        let subject = self.security.sealer.mac("reset-subject", &canonical);
        // anti-automation: the same limits for any name, counted before any work; leaky
        // buckets, so a refused request extends nothing and a slow trickle never locks the name
        let store = self.store();
        let keys = vec![
            Key::shared(
                SCOPE_REQUEST_CLIENT,
                &client.ip,
                Bucket::rate(
                    self.policy.requests_per_client,
                    self.policy.client_window_seconds,
                ),
            ),
            Key::shared(
                SCOPE_REQUEST_ACCOUNT,
                &subject,
                Bucket::rate(self.policy.requests_per_account_per_hour, 3600),
            ),
        ];
        let counted = match throttle::begin(store, keys, now).await? {
            Ok(attempt) => {
                let _ = attempt.failed(store).await?;
                true
            }
            Err(_) => false,
        };
        if !counted {
            let mut e = AuditEntry::new(event::REQUESTED, false, now);
            e.username = Some(login.clone());
            e.client_ip = Some(client.ip.clone());
            e.reason = Some("too many requests".into());
            store.append_audit(&e).await?;
            return Err(DomainError::Refused(ErrorCode::TooManyAttempts));
        }
        let user = store.find_user_by_login(&canonical).await?;
        let methods = self
            .security
            .methods(user.as_ref().map(|u| u.id.as_str()).unwrap_or(""))
            .await?;
        let needed = |u: &User| self.gates_for(u);
        let eligible = user.as_ref().is_some_and(|u| {
            u.enabled && !u.is_blocked(now) && self.can_prove(&methods, needed(u))
        });
        let gates = match &user {
            Some(u) if eligible => needed(u),
            _ => self.security.policy.required.max(1),
        };
        let (token, token_hash) = new_token();
        store
            .insert_reset_flow(&ResetFlowRow {
                id: uuid::Uuid::new_v4().to_string(),
                token_hash,
                user_id: user.as_ref().filter(|_| eligible).map(|u| u.id.clone()),
                subject,
                purpose: purpose.as_str().into(),
                gates_required: i64::from(gates),
                passed: vec![],
                questions: vec![],
                failures: 0,
                client_ip: client.ip.clone(),
                created_at: now,
                expires_at: now + self.policy.flow_seconds,
                finished_at: 0,
            })
            .await?;
        let mut e = AuditEntry::new(event::REQUESTED, eligible, now);
        e.client_ip = Some(client.ip.clone());
        e.user_agent = Some(client.user_agent.clone());
        e.username = Some(login.clone());
        e.reason = Some(
            match (&user, eligible) {
                (None, _) => "unknown name",
                (Some(_), true) => purpose.as_str(),
                (Some(u), false) if !u.enabled => "account disabled",
                (Some(u), false) if u.is_blocked(now) => "account blocked after a fraud report",
                (Some(_), false) => "not enough security info registered",
            }
            .into(),
        );
        let mut tx = store.begin().await?;
        if let Some(u) = &user {
            e.user_id = Some(u.id.clone());
            e.username = Some(u.username.clone());
            // someone tried: tell the real addresses of an account that cannot reset
            if u.enabled && !u.is_blocked(now) && !eligible {
                let notice = Notice::ResetNotPossible {
                    requested_at: crate::domain::format_time(now),
                    portal_url: self
                        .security
                        .notifier
                        .link(converge_app::routes::SECURITY_INFO),
                };
                for address in self.security.addresses(u, &methods, None) {
                    self.security
                        .notifier
                        .email_address_in(&mut tx, u, &address, &notice, now)
                        .await?;
                }
            }
        }
        crate::store::audit::append_audit_in(&mut tx, &e).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.security.notifier.wake();
        Ok(token)
    }

    /// Can these methods pass `gates` gates (questions only as the second)?
    /// Could this user reset their password with these methods (registration details)?
    pub fn reset_capable(&self, user: &User, methods: &[Method]) -> bool {
        self.can_prove(methods, self.gates_for(user))
    }

    /// Proofs a reset of this user needs (administrators: the policy's stricter number).
    fn gates_for(&self, user: &User) -> u32 {
        self.security
            .policy
            .required_for(user.role == Role::Admin)
            .max(1)
    }

    fn can_prove(&self, methods: &[Method], gates: u32) -> bool {
        let primary = methods.iter().filter(|m| is_gate(m.kind)).count() as u32;
        let questions = self.policy.questions_as_second_gate
            && methods.iter().any(|m| m.kind == MethodKind::Questions);
        primary >= gates || (gates == 2 && primary >= 1 && questions)
    }

    async fn open(&self, token: &str, now: i64) -> Result<Open, DomainError> {
        if token.is_empty() || token.len() > 128 {
            return Err(DomainError::Refused(ErrorCode::ResetExpired));
        }
        let row = self
            .store()
            .reset_flow(&hash_token(token), now)
            .await?
            .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?;
        if row.failures >= i64::from(self.policy.max_failures_per_flow) {
            return Err(DomainError::Refused(ErrorCode::ResetEnded));
        }
        let user = match &row.user_id {
            Some(id) => Some(
                self.store()
                    .find_user(id)
                    .await?
                    .filter(|u| u.enabled && !u.is_blocked(now))
                    .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?,
            ),
            None => None,
        };
        Ok(Open { row, user })
    }

    /// Where the flow stands and what the page should offer.
    pub async fn view(&self, token: &str, now: i64) -> Result<FlowView, DomainError> {
        let mut f = self.open(token, now).await?;
        let purpose = Purpose::parse(&f.row.purpose);
        let gates = f.row.gates_required as u32;
        let passed = f.row.passed.len() as u32;
        let mut view = FlowView {
            purpose,
            stage: Stage::Prove,
            gate: (passed + 1).min(gates),
            gates,
            choices: vec![],
            questions: vec![],
            min_length: 0,
            complexity: false,
            username: String::new(),
        };
        if passed >= gates {
            let user = f
                .user
                .as_ref()
                .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?;
            view.stage = match purpose {
                Purpose::Reset => Stage::NewPassword,
                Purpose::Unlock => Stage::Unlock,
            };
            let methods = self.security.methods(&user.id).await?;
            (view.min_length, view.complexity) = self.password_rules(user, &methods).await;
            view.username = user.username.clone();
            return Ok(view);
        }
        let (choices, methods) = self.choices(&f).await?;
        if let Some(q) = methods
            .iter()
            .find(|m| m.kind == MethodKind::Questions && choices.iter().any(|c| c.id == m.row.id))
        {
            let texts = question_items(q, "q");
            if f.row.questions.is_empty() {
                let mut idx: Vec<usize> = (0..texts.len()).collect();
                idx.shuffle(&mut rand::rngs::OsRng);
                idx.truncate(self.policy.questions_asked as usize);
                idx.sort_unstable();
                self.store().reset_set_questions(&f.row.id, &idx).await?;
                f.row.questions = idx;
            }
            view.questions = f
                .row
                .questions
                .iter()
                .filter_map(|i| texts.get(*i).cloned())
                .collect();
        }
        view.choices = choices;
        Ok(view)
    }

    /// The methods this gate may use (masked), and the user's methods. Decoy flows get made-up
    /// ones derived from the name typed, the same each time.
    async fn choices(&self, f: &Open) -> Result<(Vec<Choice>, Vec<Method>), DomainError> {
        let Some(user) = &f.user else {
            return Ok((self.decoys(&f.row.subject), vec![]));
        };
        let methods = self.security.methods(&user.id).await?;
        let first = f.row.passed.is_empty();
        let mut out: Vec<(u8, Choice)> = methods
            .iter()
            .filter(|m| !f.row.passed.contains(&m.row.id))
            // a switched-off channel (`email.enabled = false`, `sms.provider = "none"`) is no gate
            .filter(|m| self.security.notifier.reaches(m.kind))
            .filter(|m| {
                is_gate(m.kind)
                    || (m.kind == MethodKind::Questions
                        && !first
                        && self.policy.questions_as_second_gate)
            })
            .map(|m| {
                let order = match m.kind {
                    MethodKind::Email => 0,
                    MethodKind::Phone => 1,
                    MethodKind::Totp | MethodKind::Token => 2,
                    MethodKind::Passkey => 3,
                    MethodKind::Recovery => 5,
                    _ => 4,
                };
                (
                    order,
                    Choice {
                        id: m.row.id.clone(),
                        kind: m.kind,
                        name: m.row.name.clone(),
                        detail: m.destination().map(|d| mask(&d)).unwrap_or_default(),
                    },
                )
            })
            .collect();
        out.sort_by_key(|(o, _)| *o);
        Ok((out.into_iter().map(|(_, c)| c).collect(), methods))
    }

    fn decoys(&self, subject: &str) -> Vec<Choice> {
        let bytes = hex::decode(subject).unwrap_or_default();
        let byte = |i: usize| bytes.get(i).copied().unwrap_or(7);
        let id = |salt: u8| {
            let mut b = [0u8; 16];
            for (i, x) in b.iter_mut().enumerate() {
                *x = byte(i + 8) ^ salt.wrapping_mul(31).wrapping_add(i as u8);
            }
            uuid::Builder::from_random_bytes(b).into_uuid().to_string()
        };
        let letter = (b'a' + byte(0) % 26) as char;
        let t = converge_app::text::en();
        let cc = self.security.default_country.clone().unwrap_or("1".into());
        let number = decoy_number(&cc, &byte);
        // people register a private address for reset (the work mailbox is what they lose):
        // a made-up one at a large provider, never at the portal's own sender domain
        let domain = DECOY_MAIL_DOMAINS[usize::from(byte(24)) % DECOY_MAIL_DOMAINS.len()];
        let mut decoys: Vec<Choice> = [
            Choice {
                id: id(1),
                kind: MethodKind::Email,
                name: t.sec.kind_email.into(),
                detail: mask(&format!("{letter}x@{domain}")),
            },
            Choice {
                id: id(2),
                kind: MethodKind::Phone,
                name: t.sec.slot_mobile.into(),
                detail: mask(&number),
            },
        ]
        .into_iter()
        // what a real user could be offered: no switched-off channel, never an empty list
        .filter(|c| self.security.notifier.reaches(c.kind))
        .collect();
        if decoys.is_empty() {
            decoys.push(Choice {
                id: id(3),
                kind: MethodKind::Totp,
                name: t.sec.kind_totp.into(),
                detail: String::new(),
            });
        }
        decoys
    }

    /// One of this gate's choices and, unless the flow is a decoy, its method (one read).
    async fn choice(
        &self,
        f: &Open,
        method_id: &str,
    ) -> Result<(Choice, Option<Method>), DomainError> {
        let (choices, methods) = self.choices(f).await?;
        let c = choices
            .into_iter()
            .find(|c| c.id == method_id)
            .ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
        let m = methods.into_iter().find(|m| m.row.id == c.id);
        Ok((c, m))
    }

    /// The new password's rules: the portal's minimum or the directory's, whichever is longer,
    /// and the directory's complexity rule. A directory that cannot be read now leaves the
    /// portal's rules (the directory still has the last word when the password is written).
    async fn password_rules(&self, user: &User, methods: &[Method]) -> (usize, bool) {
        let own = self.min_length(methods);
        match self.directory.password_rules(user).await {
            Ok(d) => (own.max(d.min_length), d.complexity),
            Err(err) => {
                tracing::warn!(user = %user.username, error = %err, "cannot read the directory's password rules");
                (own, false)
            }
        }
    }

    /// NIST SP 800-63B-4: shorter passwords only for accounts with a second factor.
    fn min_length(&self, methods: &[Method]) -> usize {
        if methods.iter().any(|m| m.kind.signs_in()) {
            self.policy.min_length_with_mfa
        } else {
            self.policy.min_length_single_factor
        }
    }

    fn actor(user: &User, client: &Client) -> Actor {
        Actor::without_session(user.clone(), client.clone(), Budget::Reset)
    }

    /// Sends a code to a phone (text or call) or an email address (code and link).
    pub async fn send(
        &self,
        token: &str,
        method_id: &str,
        voice: bool,
        client: &Client,
        now: i64,
    ) -> Result<Sent, DomainError> {
        let f = self.open(token, now).await?;
        let (c, m) = self.choice(&f, method_id).await?;
        let channel = match c.kind {
            MethodKind::Email => "email",
            MethodKind::Phone if voice => "voice",
            MethodKind::Phone => "sms",
            _ => return Err(DomainError::Refused(ErrorCode::SetupExpired)),
        };
        let Some(user) = &f.user else {
            // a decoy: nothing is sent, and every limit a real send meets is met the same way
            return self.decoy_send(&f, &c, channel, client, now).await;
        };
        let actor = Self::actor(user, client);
        self.security.refuse_if_throttled(&actor, now).await?;
        let m = m.ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
        if channel != "email" {
            let p = self
                .security
                .issue_code(&actor, PURPOSE_CODE, &m, channel, " (password reset)", now)
                .await?;
            return Ok(Sent {
                channel: p.channel,
                destination: p.destination,
            });
        }
        let address = m.destination().unwrap_or_default();
        let code = Security::new_code();
        let policy = &self.security.policy;
        let store = self.store();
        let put = |purpose: &'static str, target: String, hash: String, channel: String| {
            let user_id = user.id.clone();
            async move {
                store
                    .put_code(
                        &crate::store::methods::NewCode {
                            user_id: &user_id,
                            purpose,
                            target: &target,
                            code_hash: &hash,
                            channel: &channel,
                        },
                        now,
                        policy.code_ttl_seconds,
                    )
                    .await
            }
        };
        let sealer = &self.security.sealer;
        let code_hash = sealer.mac("code", &code);
        let (_, failures) = put(PURPOSE_CODE, m.row.id.clone(), code_hash, "email".into()).await?;
        if failures >= i64::from(policy.code_max_failures) {
            return Err(DomainError::Refused(ErrorCode::TooManyAttempts));
        }
        // the link: 256 random bits, single use, for this flow and this address (channel)
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let link = hex::encode(bytes);
        let link_hash = sealer.mac("reset-link", &link);
        put(PURPOSE_LINK, f.row.id.clone(), link_hash, m.row.id.clone()).await?;
        let notifier = &self.security.notifier;
        let notice = Notice::PasswordReset {
            code: Some(code),
            reset_url: Some(notifier.link(&format!("{}/{link}", converge_app::routes::RESET_LINK))),
            expires_minutes: (policy.code_ttl_seconds / 60) as u32,
        };
        let mut tx = store.begin().await?;
        notifier
            .email_address_in(&mut tx, user, &address, &notice, now)
            .await?;
        let mut e = self.security.audit(&actor, sec_event::CODE_SENT, true, now);
        e.reason = Some(format!("email to {} (password reset)", mask(&address)));
        crate::store::audit::append_audit_in(&mut tx, &e).await?;
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        notifier.wake();
        Ok(Sent {
            channel: "email".into(),
            destination: mask(&address),
        })
    }

    async fn method(&self, user: &User, id: &str) -> Result<Method, DomainError> {
        self.security
            .methods(&user.id)
            .await?
            .into_iter()
            .find(|m| m.row.id == id)
            .ok_or(DomainError::Refused(ErrorCode::SetupExpired))
    }

    /// The buckets a decoy flow's guesses and sends meet: the same as a real account's
    /// (`Security::guarded` with the reset budget), under the flow's subject.
    fn decoy_keys(&self, f: &Open, client: &Client) -> Vec<Key> {
        let sec = &self.security;
        vec![
            Key::account(
                super::security::SCOPE_RESET_FACTOR_ACCOUNT,
                &format!("decoy:{}", f.row.subject),
                sec.signin.account_bucket(),
            ),
            Key::shared(
                super::security::SCOPE_FACTOR_CLIENT,
                &client.ip,
                sec.signin.client_bucket(),
            ),
        ]
    }

    /// A decoy "sends" a code: the throttle, the per-code failures and the per-hour message
    /// limits answer as for a real account; nothing leaves the building.
    async fn decoy_send(
        &self,
        f: &Open,
        c: &Choice,
        channel: &str,
        client: &Client,
        now: i64,
    ) -> Result<Sent, DomainError> {
        for key in self.decoy_keys(f, client) {
            if throttle::refuses(self.store(), &key, now).await? {
                return Err(DomainError::Refused(ErrorCode::TooManyAttempts));
            }
        }
        let policy = &self.security.policy;
        let target = format!("{}:{}", f.row.subject, c.id);
        let failures = self
            .store()
            .put_decoy_code(&target, channel, now, policy.code_ttl_seconds)
            .await?;
        if failures >= i64::from(policy.code_max_failures) {
            return Err(DomainError::Refused(ErrorCode::TooManyAttempts));
        }
        if channel == "email" && !self.security.notifier.email_enabled() {
            return Err(DomainError::Refused(ErrorCode::MethodNotAllowed));
        }
        if channel != "email" {
            if channel == "voice" && !self.security.notifier.voice_supported() {
                return Err(DomainError::Refused(ErrorCode::VoiceUnsupported));
            }
            self.security
                .notifier
                .take_phone_budget(&format!("decoy:{}", f.row.subject), &target, now)
                .await
                .map_err(super::security::delivery_error)?;
        }
        Ok(Sent {
            channel: channel.into(),
            destination: c.detail.clone(),
        })
    }

    /// A code typed into a decoy flow: the same throttle, the same answers as a real code row
    /// (none sent or expired: `CodeExpired`; too many wrong: `TooManyAttempts`; else wrong).
    async fn decoy_code(
        &self,
        f: &Open,
        method_id: &str,
        code: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), DomainError> {
        let store = self.store();
        let attempt = match throttle::begin(store, self.decoy_keys(f, client), now).await? {
            Ok(a) => a,
            Err(_) => return Err(DomainError::Refused(ErrorCode::TooManyAttempts)),
        };
        let target = format!("{}:{}", f.row.subject, method_id);
        let max = i64::from(self.security.policy.code_max_failures);
        let typed = code.chars().any(|ch| !ch.is_whitespace());
        match store.decoy_code(&target).await? {
            // nothing typed after a call: as a real call nobody answered
            Some(c) if !typed && c.voice && c.expires_at > now => {
                attempt.cancel(store).await?;
                Err(DomainError::Refused(ErrorCode::CallPending))
            }
            Some(c) if c.expires_at > now && c.failures < max => {
                store.decoy_code_failure(&target).await?;
                let _ = attempt.failed(store).await?;
                let wrong = DomainError::Refused(ErrorCode::WrongCode);
                Err(self
                    .wrong(f, client, "code (unknown account)", wrong, now)
                    .await)
            }
            Some(c) if c.expires_at > now => {
                attempt.cancel(store).await?;
                Err(DomainError::Refused(ErrorCode::TooManyAttempts))
            }
            _ => {
                attempt.cancel(store).await?;
                Err(DomainError::Refused(ErrorCode::CodeExpired))
            }
        }
    }

    /// A wrong answer: counted in the flow (which ends at the limit); the throttle counted it
    /// already (`Security::guarded`, or the decoy's own buckets).
    async fn wrong(
        &self,
        f: &Open,
        client: &Client,
        what: &str,
        err: DomainError,
        now: i64,
    ) -> DomainError {
        let n = match self.store().reset_flow_failure(&f.row.id).await {
            Ok(n) => n,
            Err(e) => return e.into(),
        };
        let mut e = AuditEntry::new(event::GATE, false, now);
        e.user_id = f.user.as_ref().map(|u| u.id.clone());
        e.username = f.user.as_ref().map(|u| u.username.clone());
        e.client_ip = Some(client.ip.clone());
        e.user_agent = Some(client.user_agent.clone());
        e.reason = Some(what.into());
        if let Err(e) = self.store().append_audit(&e).await {
            return e.into();
        }
        if n >= i64::from(self.policy.max_failures_per_flow) {
            DomainError::Refused(ErrorCode::ResetEnded)
        } else {
            err
        }
    }

    /// A gate was proven with `m`.
    async fn passed(
        &self,
        f: &Open,
        user: &User,
        m: &Method,
        client: &Client,
        how: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        if !self.store().reset_gate_passed(&f.row, &m.row.id).await? {
            return Err(DomainError::Refused(ErrorCode::CodeExpired));
        }
        let actor = Self::actor(user, client);
        let mut e = self.security.audit(&actor, event::GATE, true, now);
        e.reason = Some(format!(
            "{} ({how}), {} of {}",
            m.label(),
            f.row.passed.len() + 1,
            f.row.gates_required
        ));
        self.store().append_audit(&e).await?;
        Ok(())
    }

    /// Checks a code from an authenticator app or the code sent to a phone / email.
    pub async fn code(
        &self,
        token: &str,
        method_id: &str,
        code: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), DomainError> {
        let f = self.open(token, now).await?;
        let (_, m) = self.choice(&f, method_id).await?;
        let Some(user) = &f.user else {
            return self.decoy_code(&f, method_id, code, client, now).await;
        };
        let actor = Self::actor(user, client);
        self.security
            .guarded(&actor, now, async {
                let m = m.ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
                let checked = match m.kind {
                    MethodKind::Totp | MethodKind::Token => {
                        self.security
                            .check_app_code(
                                &actor,
                                &m,
                                code,
                                "wrong or reused app code (reset)",
                                now,
                            )
                            .await
                    }
                    MethodKind::Phone | MethodKind::Email => {
                        match self
                            .store()
                            .code_for(&user.id, PURPOSE_CODE, &m.row.id)
                            .await?
                        {
                            Some(row) => self.security.check_code(&actor, &row, code, now).await,
                            None => Err(DomainError::Refused(ErrorCode::CodeExpired)),
                        }
                    }
                    MethodKind::Recovery => {
                        self.security
                            .check_recovery_code(
                                &actor,
                                &m,
                                code,
                                "wrong or used recovery code (reset)",
                                now,
                            )
                            .await
                    }
                    _ => return Err(DomainError::Refused(ErrorCode::SetupExpired)),
                };
                match checked {
                    Ok(()) => {
                        self.passed(&f, user, &m, client, "code", now).await?;
                        if m.kind == MethodKind::Recovery {
                            self.security.recovery_used(&actor, &m, now).await?;
                        }
                        Ok(())
                    }
                    // a wrong guess counts in the flow; an expired or already used code does not
                    Err(DomainError::Refused(
                        code @ (ErrorCode::WrongCode | ErrorCode::RecoveryInvalid),
                    )) => {
                        let wrong = DomainError::Refused(code);
                        Err(self.wrong(&f, client, &m.label(), wrong, now).await)
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }

    /// Checks the answers to the flow's security questions (all of them, always).
    pub async fn questions(
        &self,
        token: &str,
        method_id: &str,
        answers: &[String],
        client: &Client,
        now: i64,
    ) -> Result<(), DomainError> {
        let f = self.open(token, now).await?;
        let (_, m) = self.choice(&f, method_id).await?;
        let user = f
            .user
            .as_ref()
            .ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
        let actor = Self::actor(user, client);
        self.security
            .guarded(&actor, now, async {
                let m = m.ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
                if m.kind != MethodKind::Questions || f.row.questions.is_empty() {
                    return Err(DomainError::Refused(ErrorCode::SetupExpired));
                }
                let hashes = question_items(&m, "h");
                let mut all = answers.len() == f.row.questions.len();
                for (k, idx) in f.row.questions.iter().enumerate() {
                    let answer = normalise_answer(answers.get(k).map(String::as_str).unwrap_or(""));
                    let stored = hashes.get(*idx).cloned().unwrap_or_default();
                    // every answer is checked, right or wrong, so timing says nothing about which
                    let ok =
                        !answer.is_empty() && self.security.verify_secret(&answer, &stored).await;
                    all &= ok;
                }
                if !all {
                    self.security
                        .count_failure(&actor, "wrong security answers (reset)", now)
                        .await?;
                    let wrong = DomainError::Refused(ErrorCode::AnswersWrong);
                    return Err(self.wrong(&f, client, &m.label(), wrong, now).await);
                }
                self.passed(&f, user, &m, client, "answers", now).await
            })
            .await
    }

    /// Options for a passkey assertion with the user's passkeys.
    pub async fn passkey_start(
        &self,
        token: &str,
        client: &Client,
        now: i64,
    ) -> Result<(String, serde_json::Value), DomainError> {
        let f = self.open(token, now).await?;
        let user = f
            .user
            .as_ref()
            .ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
        let (choices, _) = self.choices(&f).await?;
        if !choices.iter().any(|c| c.kind == MethodKind::Passkey) {
            return Err(DomainError::Refused(ErrorCode::SetupExpired));
        }
        self.security
            .passkey_auth_start(&Self::actor(user, client), now)
            .await
    }

    pub async fn passkey_finish(
        &self,
        token: &str,
        ceremony: &str,
        credential: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), DomainError> {
        let f = self.open(token, now).await?;
        let user = f
            .user
            .as_ref()
            .ok_or(DomainError::Refused(ErrorCode::SetupExpired))?;
        let actor = Self::actor(user, client);
        let (m, _) = match self
            .security
            .passkey_assert(&actor, ceremony, credential, now)
            .await
        {
            Ok(r) => r,
            Err(DomainError::Refused(ErrorCode::PasskeyFailed)) => {
                let err = DomainError::Refused(ErrorCode::PasskeyFailed);
                return Err(self.wrong(&f, client, "passkey", err, now).await);
            }
            Err(e) => return Err(e),
        };
        if f.row.passed.contains(&m.row.id) {
            return Err(DomainError::Refused(ErrorCode::SetupExpired));
        }
        self.passed(&f, user, &m, client, "passkey", now).await
    }

    /// The emailed link: proves that address's gate and hands the flow to a new cookie (the link
    /// may open in another browser). Returns the new flow token.
    pub async fn link(&self, link: &str, client: &Client, now: i64) -> Result<String, DomainError> {
        // links are not guessable (256 bits), but a client trying many is refused all the same
        let key = Key::shared(
            SCOPE_LINK_CLIENT,
            &client.ip,
            self.security.signin.client_bucket(),
        );
        let store = self.store();
        let Ok(attempt) = throttle::begin(store, vec![key], now).await? else {
            return Err(DomainError::Refused(ErrorCode::TooManyAttempts));
        };
        let result = self.use_link(link, client, now).await;
        match &result {
            Ok(_) => attempt.succeeded(store).await?,
            Err(DomainError::Refused(ErrorCode::ResetExpired)) => {
                let _ = attempt.failed(store).await?;
            }
            Err(_) => attempt.cancel(store).await?,
        }
        result
    }

    async fn use_link(&self, link: &str, client: &Client, now: i64) -> Result<String, DomainError> {
        let expired = DomainError::Refused(ErrorCode::ResetExpired);
        if link.len() != 64 || !link.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(expired);
        }
        let hash = self.security.sealer.mac("reset-link", link);
        let store = self.store();
        let (code_id, user_id, flow_id, method_id) =
            store.reset_link_code(&hash, now).await?.ok_or(expired)?;
        if !store.use_code(&code_id, now).await? {
            return Err(DomainError::Refused(ErrorCode::ResetExpired));
        }
        let row = store
            .reset_flow_by_id(&flow_id)
            .await?
            .filter(|r| r.finished_at == 0 && r.expires_at > now)
            .filter(|r| r.user_id.as_deref() == Some(user_id.as_str()))
            .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?;
        let user = store
            .find_user(&user_id)
            .await?
            .filter(|u| u.enabled && !u.is_blocked(now))
            .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?;
        let m = if method_id == HELPDESK_LINK {
            None
        } else {
            Some(self.method(&user, &method_id).await?)
        };
        let (token, token_hash) = new_token();
        store.reset_rotate_token(&row.id, &token_hash).await?;
        let Some(m) = m else {
            return Ok(token);
        };
        if !row.passed.contains(&m.row.id) {
            let f = Open {
                row,
                user: Some(user.clone()),
            };
            self.passed(&f, &user, &m, client, "emailed link", now)
                .await?;
        }
        Ok(token)
    }

    /// A reset link sent by the helpdesk after verifying the caller: a flow with nothing left to
    /// prove, opened only by the link (its own token is never handed out). Returns the link.
    pub async fn helpdesk_link(
        &self,
        user: &User,
        client: &Client,
        now: i64,
    ) -> Result<String, DomainError> {
        let store = self.store();
        let flow_id = uuid::Uuid::new_v4().to_string();
        let (_, token_hash) = new_token();
        store
            .insert_reset_flow(&ResetFlowRow {
                id: flow_id.clone(),
                token_hash,
                user_id: Some(user.id.clone()),
                subject: self.security.sealer.mac("reset-subject", &user.username),
                purpose: Purpose::Reset.as_str().into(),
                gates_required: 0,
                passed: vec![],
                questions: vec![],
                failures: 0,
                client_ip: client.ip.clone(),
                created_at: now,
                expires_at: now + self.policy.flow_seconds,
                finished_at: 0,
            })
            .await?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let link = hex::encode(bytes);
        store
            .put_code(
                &crate::store::methods::NewCode {
                    user_id: &user.id,
                    purpose: PURPOSE_LINK,
                    target: &flow_id,
                    code_hash: &self.security.sealer.mac("reset-link", &link),
                    channel: HELPDESK_LINK,
                },
                now,
                self.policy.flow_seconds,
            )
            .await?;
        Ok(self
            .security
            .notifier
            .link(&format!("{}/{link}", converge_app::routes::RESET_LINK)))
    }

    /// Sets the new password once every gate is proven.
    pub async fn set_password(
        &self,
        token: &str,
        password: &str,
        confirm: &str,
        client: &Client,
        now: i64,
    ) -> Result<(), DomainError> {
        let f = self.open(token, now).await?;
        let user = self.ready(&f, Purpose::Reset)?;
        let methods = self.security.methods(&user.id).await?;
        let (min, complexity) = self.password_rules(user, &methods).await;
        let org = self.security.org_name.clone();
        self.rules
            .check(
                password,
                confirm,
                min,
                &[&user.username, &user.display_name, &org],
            )
            .map_err(DomainError::Refused)?;
        if complexity && !converge_app::api::meets_complexity(password) {
            return Err(DomainError::Refused(ErrorCode::PasswordDirectoryPolicy));
        }
        let pw = Password::parse(password.to_string())
            .map_err(|_| DomainError::Refused(ErrorCode::PasswordTooLong))?;
        let store = self.store();
        // recorded before the directory is asked: a crash after the write is settled by
        // `recover_writebacks`, never left as a changed password nobody was told about
        let writeback = Writeback {
            flow_id: f.row.id.clone(),
            user_id: user.id.clone(),
            password: self
                .security
                .sealer
                .seal(password.as_bytes(), &writeback_context(&f.row.id)),
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            started_at: now,
        };
        if !store.reset_claim_for_writeback(&writeback).await? {
            return Err(DomainError::Refused(ErrorCode::ResetExpired));
        }
        let actor = Self::actor(user, client);
        if let Err(err) = self.directory.set_password(user, &pw, now).await {
            store.writeback_abandon(&f.row.id).await?;
            let mut e = self
                .security
                .audit(&actor, event::PASSWORD_RESET, false, now);
            e.reason = Some(format!("{}: {err}", user.source));
            store.append_audit(&e).await?;
            tracing::warn!(user = %user.username, error = %err, "password writeback failed");
            return Err(match err {
                DomainError::Refused(code) => DomainError::Refused(code),
                _ => DomainError::Refused(ErrorCode::DirectoryUnavailable),
            });
        }
        // a new password also ends the directory's own lockout, where the directory allows it
        if let Err(err) = self.directory.unlock(user).await {
            tracing::warn!(user = %user.username, error = %err, "directory unlock after reset failed");
        }
        crate::faults::point(crate::faults::RESET_AFTER_DIRECTORY_WRITE).await;
        self.finish(
            &f.row.id,
            user,
            &actor,
            (Purpose::Reset, &methods),
            false,
            now,
        )
        .await
    }

    /// Settles the directory writes a stopped instance left behind (recorded longer ago than
    /// any write takes): a bind with the new password tells whether the directory took it. If it
    /// did, the reset completes as it would have (sessions end, the account unlocks, every
    /// address is told, audited as completed after a restart); if not, the flow is given back
    /// and the failure audited; an unreachable directory leaves the record for the next pass.
    /// Returns how many were settled.
    pub async fn recover_writebacks(&self, now: i64) -> Result<u32, DomainError> {
        let store = self.store();
        let mut settled = 0;
        for w in store
            .writebacks_before(now - self.policy.writeback_settled_seconds)
            .await?
        {
            if !store.writeback_take(&w, now).await? {
                continue;
            }
            let client = Client {
                ip: w.client_ip.clone(),
                user_agent: w.user_agent.clone(),
                device: None,
            };
            let password = self
                .security
                .sealer
                .open(&w.password, &writeback_context(&w.flow_id))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|p| Password::parse(p).ok());
            let (Some(user), Some(password)) = (store.find_user(&w.user_id).await?, password)
            else {
                // the user is gone, or the record does not open: nothing can be checked
                store.writeback_abandon(&w.flow_id).await?;
                tracing::warn!(flow = %w.flow_id, "an interrupted password write could not be checked; dropped");
                settled += 1;
                continue;
            };
            let actor = Self::actor(&user, &client);
            let took = match self.took(&user, &password).await {
                Ok(took) => took,
                Err(err) => {
                    tracing::warn!(user = %user.username, error = %err, "cannot check an interrupted password write yet; tried again later");
                    continue;
                }
            };
            if took {
                let methods = self.security.methods(&user.id).await?;
                self.finish(
                    &w.flow_id,
                    &user,
                    &actor,
                    (Purpose::Reset, &methods),
                    true,
                    now,
                )
                .await?;
                tracing::info!(user = %user.username, "an interrupted password reset was completed");
            } else {
                store.writeback_abandon(&w.flow_id).await?;
                let mut e = self
                    .security
                    .audit(&actor, event::PASSWORD_RESET, false, now);
                e.reason = Some(format!(
                    "{}: interrupted before the directory took it",
                    user.source
                ));
                store.append_audit(&e).await?;
                tracing::info!(user = %user.username, "an interrupted password reset had not reached the directory; the flow was given back");
            }
            settled += 1;
        }
        Ok(settled)
    }

    /// Whether the directory holds `password` for the user. A directory lockout refuses even the
    /// right password (ppolicy answers 49): a locked account is unlocked and asked again — the
    /// user proved every gate of a reset, which unlocks anyway.
    async fn took(&self, user: &User, password: &Password) -> Result<bool, DomainError> {
        if self.directory.holds_password(user, password).await? {
            return Ok(true);
        }
        if !self.directory.is_locked(user).await? {
            return Ok(false);
        }
        self.directory.unlock(user).await?;
        self.directory.holds_password(user, password).await
    }

    /// Unlocks the account once every gate is proven.
    pub async fn unlock(&self, token: &str, client: &Client, now: i64) -> Result<(), DomainError> {
        let f = self.open(token, now).await?;
        let user = self.ready(&f, Purpose::Unlock)?;
        let throttled = super::signin::strangers_throttled(
            self.store(),
            &self.security.signin,
            &user.username,
            now,
        )
        .await?;
        if user.locked_at.is_none() && !throttled && !self.directory.is_locked(user).await? {
            return Err(DomainError::Refused(ErrorCode::NotLocked));
        }
        if !self.store().reset_claim(&f.row.id, now).await? {
            return Err(DomainError::Refused(ErrorCode::ResetExpired));
        }
        if let Err(err) = self.directory.unlock(user).await {
            self.store().reset_release(&f.row.id).await?;
            tracing::warn!(user = %user.username, error = %err, "directory unlock failed");
            return Err(DomainError::Refused(ErrorCode::DirectoryUnavailable));
        }
        let actor = Self::actor(user, client);
        // nobody is mailed after an unlock: no methods needed
        self.finish(&f.row.id, user, &actor, (Purpose::Unlock, &[]), false, now)
            .await
    }

    fn ready<'a>(&self, f: &'a Open, purpose: Purpose) -> Result<&'a User, DomainError> {
        let user = f
            .user
            .as_ref()
            .ok_or(DomainError::Refused(ErrorCode::ResetExpired))?;
        if Purpose::parse(&f.row.purpose) != purpose
            || (f.row.passed.len() as i64) < f.row.gates_required
        {
            return Err(DomainError::Refused(ErrorCode::SetupExpired));
        }
        Ok(user)
    }

    /// Sessions, other flows, codes and links end; the account is unlocked; after a new
    /// password every address (the user's and those among `methods`) is told; one transaction.
    /// `recovered`: completed by [`Reset::recover_writebacks`] after a restart.
    async fn finish(
        &self,
        flow_id: &str,
        user: &User,
        actor: &Actor,
        (purpose, methods): (Purpose, &[Method]),
        recovered: bool,
        now: i64,
    ) -> Result<(), DomainError> {
        let store = self.store();
        let mut tx = store.begin().await?;
        let ended = Store::reset_complete_in(
            &mut tx,
            &user.id,
            flow_id,
            (super::signin::SCOPE_ACCOUNT, &user.username),
            purpose == Purpose::Reset,
            now,
        )
        .await?;
        let audit_event = match purpose {
            Purpose::Reset => event::PASSWORD_RESET,
            Purpose::Unlock => event::UNLOCKED,
        };
        let mut e = self.security.audit(actor, audit_event, true, now);
        e.reason = Some(match purpose {
            Purpose::Reset => format!(
                "written to {}{}; {ended} sessions signed out",
                user.source,
                if recovered {
                    " (completed after a restart)"
                } else {
                    ""
                }
            ),
            Purpose::Unlock => "self-service".into(),
        });
        crate::store::audit::append_audit_in(&mut tx, &e).await?;
        if purpose == Purpose::Reset {
            let notice = Notice::PasswordChanged {
                changed_at: crate::domain::format_time(now),
            };
            for address in self.security.addresses(user, methods, None) {
                self.security
                    .notifier
                    .email_address_in(&mut tx, user, &address, &notice, now)
                    .await?;
            }
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.security.notifier.wake();
        Ok(())
    }

    /// A proof-of-work challenge for the reset page, or None when the policy has none.
    pub fn proof_challenge(&self, now: i64) -> Option<(String, u32)> {
        let bits = self.policy.proof_of_work_bits;
        if bits == 0 {
            return None;
        }
        let mut r = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut r);
        let body = format!("{bits}.{}.{}", now + POW_SECONDS, hex::encode(r));
        let mac = self.security.sealer.sign("reset-pow", &body);
        Some((format!("{body}.{mac}"), bits))
    }

    /// `challenge:nonce` where SHA-256 of it starts with the challenge's number of zero bits;
    /// signed by us, not expired, used once.
    async fn check_proof(&self, proof: &str, now: i64) -> Result<bool, DomainError> {
        let Some((challenge, _nonce)) = proof.rsplit_once(':') else {
            return Ok(false);
        };
        let Some((body, mac)) = challenge.rsplit_once('.') else {
            return Ok(false);
        };
        if !self.security.sealer.sign_matches("reset-pow", body, mac) {
            return Ok(false);
        }
        let mut parts = body.split('.');
        let bits: u32 = parts.next().and_then(|b| b.parse().ok()).unwrap_or(0);
        let expires: i64 = parts.next().and_then(|e| e.parse().ok()).unwrap_or(0);
        if bits < self.policy.proof_of_work_bits || expires <= now {
            return Ok(false);
        }
        if leading_zero_bits(&Sha256::digest(proof.as_bytes())) < bits {
            return Ok(false);
        }
        let uses = self
            .store()
            .record_failure(SCOPE_POW, mac, now, i64::MIN)
            .await?;
        Ok(uses == 1)
    }
}

/// Methods that can be a gate on their own.
fn is_gate(kind: MethodKind) -> bool {
    matches!(
        kind,
        MethodKind::Email
            | MethodKind::Phone
            | MethodKind::Totp
            | MethodKind::Token
            | MethodKind::Passkey
            | MethodKind::Recovery
    )
}

/// One field of every stored security question: `q` (the text) or `h` (the answer's hash).
pub(crate) fn question_items(m: &Method, field: &str) -> Vec<String> {
    m.detail()
        .get("items")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    i.get(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for b in hash {
        if *b == 0 {
            n += 8;
        } else {
            n += b.leading_zeros();
            break;
        }
    }
    n
}

/// Mail providers decoy addresses are made up at.
const DECOY_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "gmx.net",
    "proton.me",
];

/// A made-up mobile number shaped like the country's own (libphonenumber's example mobile
/// number: its length and its leading digit), digits from `byte`.
fn decoy_number(cc: &str, byte: &dyn Fn(usize) -> u8) -> String {
    let example = cc
        .parse::<u16>()
        .ok()
        .and_then(|code| phonenumber::metadata::DATABASE.by_code(&code))
        .and_then(|all| {
            let main = all
                .iter()
                .find(|m| m.is_main_country_for_code())
                .or(all.first())
                .copied()?;
            main.descriptors().mobile()?.example().map(str::to_string)
        })
        .unwrap_or_else(|| "2015550123".into());
    let digits: String = example
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                c
            } else {
                char::from(b'0' + byte(i + 1) % 10)
            }
        })
        .collect();
    format!("+{cc}{digits}")
}
