//! The helpdesk console: verify a caller against the caller's own registered methods, then act.
//! Callable without the UI: the REST API (`api/users.rs`) acts through the same calls with a
//! service token as the agent ([`AgentKind::Service`]).
//!
//! ```text
//!  agent (role helpdesk / admin) ── search ──► user card (status, methods masked, sign-ins, audit)
//!      │
//!      ▼ verify_start(method)   SMS / call / email: a code to the stored destination
//!                               app: the caller reads the current code (each step once)
//!                               portal: the caller, signed in, confirms the number shown
//!                               questions: the agent reads the texts, types the answers
//!                               PIN: the caller tells it
//!      ▼ verify_check(answer) ── throttled per account and per client, audited
//!  verified for `verification_minutes` (that agent, that user only)
//!      │
//!      ▼ act(action)  reset link · MFA reset · Temporary Access Pass · unlock · unblock ·
//!                     sign out everywhere — audited (actor = agent) and mailed to the user.
//!                     Protected accounts (admins, helpdesk, protected groups): administrators
//!                     only, and an MFA reset or a Temporary Access Pass waits for a second
//!                     administrator's approval.
//! ```

use super::reset::{question_items, Reset};
use super::security::{
    event as sec_event, mask, normalise_answer, Actor, Budget, Method, Security,
};
use super::session::Client;
use crate::directory::Directory;
use crate::domain::audit::{event as audit_event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::format_time;
use crate::domain::policy::{HelpdeskPolicy, MethodKind};
use crate::domain::users::{Role, User};
use crate::notify::messages::Notice;
use crate::store::audit::append_audit_in;
use crate::store::helpdesk::{ApprovalRow, TapRow, VerificationRow};
use crate::store::Store;
use converge_app::api::ErrorCode;
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::Arc;

/// Audit event names of the console.
pub mod event {
    pub const VERIFY_STARTED: &str = "helpdesk_verification_started";
    pub const VERIFY: &str = "helpdesk_verification";
    pub const ACTION: &str = "helpdesk_action";
    pub const APPROVAL_REQUESTED: &str = "helpdesk_approval_requested";
    pub const APPROVAL_DECIDED: &str = "helpdesk_approval_decided";
    pub const CONSOLE_VIEW: &str = "helpdesk_lookup";
}

/// Code purpose of helpdesk verification codes (never valid for sign-in or reset).
const PURPOSE: &str = "helpdesk";
/// The method id that stands for "approve in the portal".
pub const PORTAL: &str = "portal";
/// Letters and digits that can't be confused when read out (no 0/O, 1/I/L).
const TAP_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A helpdesk agent or administrator at work — or a service token of the management API.
#[derive(Debug, Clone)]
pub struct Agent {
    pub user: User,
    pub client: Client,
    pub kind: AgentKind,
}

/// Who stands behind an [`Agent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// Helpdesk staff or an administrator in the console: verifies the caller before acting.
    Staff,
    /// A service token of the management API: its scope is the authority, so it acts without
    /// verifying a caller, and it is never an administrator (protected accounts are refused).
    Service,
    /// The operator at the server's command line (`converge user …`): acts as an administrator
    /// without a caller to verify.
    Operator,
}

impl Agent {
    /// Only enabled helpdesk staff and administrators may use the console.
    pub fn new(user: User, client: Client) -> Result<Agent, DomainError> {
        if !user.enabled || !matches!(user.role, Role::Helpdesk | Role::Admin) {
            return Err(DomainError::Refused(ErrorCode::HelpdeskForbidden));
        }
        Ok(Agent {
            user,
            client,
            kind: AgentKind::Staff,
        })
    }

    /// A service token named `name` (audited as `api:NAME`).
    pub fn service(token_id: &str, name: &str, client: Client) -> Agent {
        Agent::machine(
            AgentKind::Service,
            format!("api-token:{token_id}"),
            format!("api:{name}"),
            format!("API client {name}"),
            client,
        )
    }

    /// The operator at the command line (audited as `cli`).
    pub fn operator() -> Agent {
        let client = Client {
            ip: "local".into(),
            user_agent: "converge CLI".into(),
            device: None,
        };
        Agent::machine(
            AgentKind::Operator,
            "cli".into(),
            "cli".into(),
            "the administrator".into(),
            client,
        )
    }

    fn machine(
        kind: AgentKind,
        id: String,
        username: String,
        display_name: String,
        client: Client,
    ) -> Agent {
        Agent {
            user: User {
                id,
                username,
                display_name,
                email: None,
                mobile_phone: None,
                alternate_phone: None,
                office_phone: None,
                groups: vec![],
                enabled: true,
                role: Role::Helpdesk,
                source: "api".into(),
                locked_at: None,
                created_at: 0,
                updated_at: 0,
                confirmed_at: 0,
                snooze_count: 0,
                snooze_first_at: 0,
                blocked_until: 0,
            },
            client,
            kind,
        }
    }

    pub fn is_admin(&self) -> bool {
        match self.kind {
            AgentKind::Staff => self.user.role == Role::Admin,
            AgentKind::Service => false,
            AgentKind::Operator => true,
        }
    }
}

/// What an agent can do after verifying the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Mail a password-reset link to the user's registered addresses.
    ResetLink,
    /// Remove every method so the wizard runs at the next sign-in.
    Reregister,
    /// A Temporary Access Pass valid for this many minutes (clamped by policy).
    Tap {
        minutes: u32,
    },
    Unlock,
    Unblock,
    SignOut,
}

impl Action {
    pub fn parse(s: &str, minutes: u32) -> Option<Action> {
        Some(match s {
            "reset_link" => Action::ResetLink,
            "reregister" => Action::Reregister,
            "tap" => Action::Tap { minutes },
            "unlock" => Action::Unlock,
            "unblock" => Action::Unblock,
            "sign_out" => Action::SignOut,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ResetLink => "reset_link",
            Action::Reregister => "reregister",
            Action::Tap { .. } => "tap",
            Action::Unlock => "unlock",
            Action::Unblock => "unblock",
            Action::SignOut => "sign_out",
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// The account is protected: a second administrator must approve (request id).
    ApprovalRequested(String),
}

/// The state of a verification as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationView {
    pub id: String,
    pub method: String,
    pub channel: String,
    /// `pending`, `verified`, `failed`, `denied`, `expired`.
    pub state: String,
    pub started_at: i64,
    pub decided_at: i64,
    /// Verified: actions allowed until then.
    pub valid_until: i64,
    pub approval_code: String,
    /// Security questions to ask (texts only).
    pub questions: Vec<String>,
    /// Where a code went (masked).
    pub destination: String,
}

/// Everything the console shows about one user.
#[derive(Debug, Clone)]
pub struct Card {
    pub user: User,
    pub methods: Vec<Method>,
    pub registration: super::security::Status,
    pub locked: bool,
    pub blocked: bool,
    pub protected: bool,
    pub signins: Vec<AuditEntry>,
    pub timeline: Vec<AuditEntry>,
    pub verification: Option<VerificationView>,
    pub tap_until: Option<i64>,
    /// A pass this agent just issued, shown once.
    pub new_tap: Option<(String, i64)>,
    pub approvals: Vec<ApprovalRow>,
}

/// A request waiting for a second administrator, as listed.
#[derive(Debug, Clone)]
pub struct PendingApproval {
    pub row: ApprovalRow,
    pub username: String,
    pub requested_by: String,
}

/// What the caller's own pages show while an agent waits for a portal approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPrompt {
    pub id: String,
    pub agent_name: String,
    /// Three numbers, one of them the agent's (number matching: the caller picks the one the
    /// agent reads out; a push-fatigued "yes" is not enough). Sorted, the same on every page.
    pub choices: Vec<String>,
}

pub struct Helpdesk {
    pub security: Arc<Security>,
    pub reset: Arc<Reset>,
    pub directory: Arc<dyn Directory>,
    pub policy: HelpdeskPolicy,
}

fn refused(code: ErrorCode) -> DomainError {
    DomainError::Refused(code)
}

impl Helpdesk {
    fn store(&self) -> &Store {
        &self.security.store
    }

    /// Users matching a name, username, email address or phone number (at most 50). Only an
    /// [`Agent`] may search.
    pub async fn search(&self, _agent: &Agent, term: &str) -> Result<Vec<User>, DomainError> {
        let term: String = term.trim().chars().take(100).collect();
        if term.chars().count() < 2 {
            return Ok(vec![]);
        }
        Ok(self.store().search_users(&term, 50).await?)
    }

    /// Admins, helpdesk staff and members of the protected groups.
    pub fn is_protected(&self, user: &User) -> bool {
        matches!(user.role, Role::Admin | Role::Helpdesk)
            || user.groups.iter().any(|g| {
                self.policy
                    .protected_groups
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(g))
            })
    }

    pub(super) async fn user(&self, agent: &Agent, user_id: &str) -> Result<User, DomainError> {
        if agent.user.id == user_id {
            return Err(refused(ErrorCode::OwnAccount));
        }
        self.store()
            .find_user(user_id)
            .await?
            .ok_or(refused(ErrorCode::SetupExpired))
    }

    pub(super) fn audit(
        &self,
        agent: &Agent,
        user: &User,
        ev: &str,
        ok: bool,
        now: i64,
    ) -> AuditEntry {
        let mut e = AuditEntry::new(ev, ok, now);
        e.user_id = Some(user.id.clone());
        e.username = Some(user.username.clone());
        e.actor = Some(agent.user.username.clone());
        e.client_ip = Some(agent.client.ip.clone());
        e.user_agent = Some(agent.client.user_agent.clone());
        e
    }

    /// An audit line of the agent's own (no user concerned: an import, the inventory).
    pub(super) fn audit_agent(&self, agent: &Agent, ev: &str, now: i64) -> AuditEntry {
        let mut e = AuditEntry::new(ev, true, now);
        e.actor = Some(agent.user.username.clone());
        e.client_ip = Some(agent.client.ip.clone());
        e.user_agent = Some(agent.client.user_agent.clone());
        e
    }

    /// The user card. Opening it is audited (who looked at whom).
    pub async fn card(&self, agent: &Agent, user_id: &str, now: i64) -> Result<Card, DomainError> {
        let user = self.user(agent, user_id).await?;
        let store = self.store();
        let methods = self.security.methods(&user.id).await?;
        let reg = store.registration_state(&user.id).await?;
        let registration = self.security.status(&user, &methods, reg, now);
        let throttled =
            super::signin::strangers_throttled(store, &self.security.signin, &user.username, now)
                .await?;
        let directory_locked = self.directory.is_locked(&user).await.unwrap_or(false);
        let verification = store
            .latest_verification(&agent.user.id, &user.id)
            .await?
            .map(|row| self.view(&methods, &row, now));
        let new_tap = self.take_new_tap(agent, &user.id).await?;
        let tap_until = store
            .active_taps(&user.id, now)
            .await?
            .iter()
            .map(|t| t.expires_at)
            .max();
        let approvals = store
            .pending_approvals(now)
            .await?
            .into_iter()
            .filter(|a| a.user_id == user.id)
            .collect();
        let card = Card {
            locked: user.locked_at.is_some() || throttled || directory_locked,
            blocked: user.is_blocked(now),
            protected: self.is_protected(&user),
            signins: store.recent_signins(&user.id, 10).await?,
            timeline: store.audit_for_user(&user.id, 50).await?,
            methods,
            registration,
            verification,
            tap_until,
            new_tap,
            approvals,
            user,
        };
        store
            .append_audit(&self.audit(agent, &card.user, event::CONSOLE_VIEW, true, now))
            .await?;
        Ok(card)
    }

    fn view(&self, methods: &[Method], row: &VerificationRow, now: i64) -> VerificationView {
        let m = methods.iter().find(|m| m.row.id == row.method_id);
        let t = converge_app::text::en();
        let method = match m {
            Some(m) => m.label(),
            None if row.method_id == PORTAL => t.helpdesk.portal_method.to_string(),
            None => t.helpdesk.removed_method.to_string(),
        };
        let state = match row.state.as_str() {
            "pending" | "verified" if row.expires_at <= now => "expired",
            s => s,
        };
        let questions = match m {
            Some(m) if m.kind == MethodKind::Questions && state == "pending" => {
                let texts = question_items(m, "q");
                indexes(&row.questions)
                    .into_iter()
                    .filter_map(|i| texts.get(i).cloned())
                    .collect()
            }
            _ => vec![],
        };
        VerificationView {
            id: row.id.clone(),
            method,
            channel: row.channel.clone(),
            state: state.to_string(),
            started_at: row.created_at,
            decided_at: row.decided_at,
            valid_until: if row.state == "verified" {
                row.expires_at
            } else {
                0
            },
            approval_code: if state == "pending" {
                row.approval_code.clone()
            } else {
                String::new()
            },
            questions,
            destination: m
                .and_then(Method::destination)
                .map(|d| mask(&d))
                .unwrap_or_default(),
        }
    }

    /// The methods a caller can be verified with (portal approval when they can sign in with
    /// a second factor).
    pub fn verifiable(methods: &[Method]) -> bool {
        methods.iter().any(|m| m.kind.signs_in())
    }

    /// Starts verifying the caller with one of their methods (`method_id`, or [`PORTAL`]);
    /// `voice` picks a call over a text for phones.
    pub async fn verify_start(
        &self,
        agent: &Agent,
        user_id: &str,
        method_id: &str,
        voice: bool,
        now: i64,
    ) -> Result<VerificationView, DomainError> {
        let user = self.user(agent, user_id).await?;
        let actor = Actor::without_session(user.clone(), agent.client.clone(), Budget::Helpdesk);
        self.security.refuse_if_throttled(&actor, now).await?;
        let methods = self.security.methods(&user.id).await?;
        let mut row = VerificationRow {
            id: uuid::Uuid::new_v4().to_string(),
            agent_id: agent.user.id.clone(),
            user_id: user.id.clone(),
            method_id: method_id.to_string(),
            channel: String::new(),
            approval_code: String::new(),
            questions: String::new(),
            state: "pending".into(),
            created_at: now,
            expires_at: now + self.policy.pending_seconds,
            decided_at: 0,
        };
        let mut note = String::new();
        if method_id == PORTAL {
            if !Self::verifiable(&methods) {
                return Err(refused(ErrorCode::MethodNotAllowed));
            }
            row.channel = "portal".into();
            row.approval_code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
        } else {
            let m = methods
                .iter()
                .find(|m| m.row.id == method_id)
                .ok_or(refused(ErrorCode::SetupExpired))?;
            row.channel = match m.kind {
                MethodKind::Phone if voice => "voice",
                MethodKind::Phone => "sms",
                MethodKind::Email => "email",
                // a code from something the caller holds: an app or a hardware token
                MethodKind::Totp | MethodKind::Token => "app",
                MethodKind::Questions => "questions",
                MethodKind::Pin => "pin",
                MethodKind::Passkey => "portal",
                // recovery codes recover the user's own access; they never prove a caller
                MethodKind::Recovery => return Err(refused(ErrorCode::MethodNotAllowed)),
            }
            .into();
            match m.kind {
                MethodKind::Phone | MethodKind::Email => {
                    note = self.send_code(agent, &actor, m, &row.channel, now).await?;
                }
                MethodKind::Questions => {
                    let n = question_items(m, "q").len();
                    let mut idx: Vec<usize> = (0..n).collect();
                    idx.shuffle(&mut rand::rngs::OsRng);
                    idx.truncate(self.reset.policy.questions_asked.max(1) as usize);
                    idx.sort_unstable();
                    row.questions = idx
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                }
                MethodKind::Passkey => {
                    row.approval_code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
                }
                MethodKind::Pin
                    if m.row.failures >= i64::from(self.security.policy.pin_max_failures) =>
                {
                    return Err(refused(ErrorCode::MethodLocked));
                }
                _ => {}
            }
        }
        self.store().insert_verification(&row).await?;
        let mut e = self.audit(agent, &user, event::VERIFY_STARTED, true, now);
        e.reason = Some(format!("{}{note}", row.channel));
        self.store().append_audit(&e).await?;
        Ok(self.view(&methods, &row, now))
    }

    /// A one-time code by text, call or email (the email names the agent).
    async fn send_code(
        &self,
        agent: &Agent,
        actor: &Actor,
        m: &Method,
        channel: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let sec = &self.security;
        let code = Security::new_code();
        let (code_id, failures) = self
            .store()
            .put_code(
                &crate::store::methods::NewCode {
                    user_id: &actor.user.id,
                    purpose: PURPOSE,
                    target: &m.row.id,
                    code_hash: &sec.sealer.mac("code", &code),
                    channel,
                },
                now,
                self.policy.pending_seconds,
            )
            .await?;
        if failures >= i64::from(sec.policy.code_max_failures) {
            return Err(refused(ErrorCode::TooManyAttempts));
        }
        let destination = m.destination().unwrap_or_default();
        if channel == "email" {
            let mut tx = self.store().begin().await?;
            sec.notifier
                .email_address_in(
                    &mut tx,
                    &actor.user,
                    &destination,
                    &Notice::HelpdeskVerification {
                        code,
                        agent_name: agent.user.display_name.clone(),
                        expires_minutes: (self.policy.pending_seconds / 60) as u32,
                    },
                    now,
                )
                .await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            sec.notifier.wake();
        } else if channel == "sms" {
            // the generic text says "never share it"; this one is meant to be read to the agent
            let minutes = (self.policy.pending_seconds / 60) as u32;
            let t = converge_app::text::en();
            let text = t.sec.sms_helpdesk_code_text(&sec.org_name, &code, minutes);
            sec.notifier
                .phone_code(&actor.user, &destination, &text, false, now)
                .await
                .map_err(super::security::delivery_error)?;
        } else if let Some(call) = sec
            .deliver_code(actor, &destination, (channel, false), &code, now)
            .await?
        {
            self.store().set_code_call(&code_id, &call).await?;
        }
        let mut e = sec.audit(actor, sec_event::CODE_SENT, true, now);
        e.actor = Some(agent.user.username.clone());
        e.reason = Some(format!("{channel} to {} (helpdesk)", mask(&destination)));
        self.store().append_audit(&e).await?;
        Ok(format!(" to {}", mask(&destination)))
    }

    /// Checks what the caller read or told (a code, the PIN, the answers in the order asked).
    /// A wrong answer ends the verification; the agent starts a new one.
    pub async fn verify_check(
        &self,
        agent: &Agent,
        verification_id: &str,
        answers: &[String],
        now: i64,
    ) -> Result<VerificationView, DomainError> {
        let row = self
            .store()
            .verification(verification_id)
            .await?
            .filter(|r| r.agent_id == agent.user.id)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let user = self.user(agent, &row.user_id).await?;
        let methods = self.security.methods(&user.id).await?;
        if row.state != "pending" || row.expires_at <= now {
            return Err(refused(ErrorCode::CodeExpired));
        }
        if row.channel == "portal" {
            return Err(refused(ErrorCode::VerificationPending));
        }
        let actor = Actor::without_session(user.clone(), agent.client.clone(), Budget::Helpdesk);
        self.security
            .guarded(&actor, now, async {
                let m = methods
                    .iter()
                    .find(|m| m.row.id == row.method_id)
                    .ok_or(refused(ErrorCode::SetupExpired))?;
                let first = answers.first().map(String::as_str).unwrap_or("");
                let sec = &self.security;
                let checked: Result<(), DomainError> = match m.kind {
                    MethodKind::Phone | MethodKind::Email => {
                        match self.store().code_for(&user.id, PURPOSE, &m.row.id).await? {
                            Some(c) => sec.check_code(&actor, &c, first, now).await,
                            None => Err(refused(ErrorCode::CodeExpired)),
                        }
                    }
                    MethodKind::Totp | MethodKind::Token => {
                        sec.check_app_code(
                            &actor,
                            m,
                            first,
                            "wrong or reused app code (helpdesk)",
                            now,
                        )
                        .await
                    }
                    MethodKind::Questions => {
                        let hashes = question_items(m, "h");
                        let asked = indexes(&row.questions);
                        let mut all = !asked.is_empty() && answers.len() == asked.len();
                        for (k, idx) in asked.iter().enumerate() {
                            let answer =
                                normalise_answer(answers.get(k).map(String::as_str).unwrap_or(""));
                            let stored = hashes.get(*idx).cloned().unwrap_or_default();
                            // every answer is checked, so timing says nothing about which was wrong
                            let ok =
                                !answer.is_empty() && sec.verify_secret(&answer, &stored).await;
                            all &= ok;
                        }
                        if all {
                            Ok(())
                        } else {
                            sec.count_failure(&actor, "wrong security answers (helpdesk)", now)
                                .await?;
                            Err(refused(ErrorCode::AnswersWrong))
                        }
                    }
                    MethodKind::Pin => {
                        if m.row.failures >= i64::from(sec.policy.pin_max_failures) {
                            Err(refused(ErrorCode::MethodLocked))
                        } else if sec
                            .verify_secret(first.trim(), m.row.secret.as_deref().unwrap_or(""))
                            .await
                        {
                            Ok(())
                        } else {
                            let n = self.store().method_failure(&m.row.id).await?;
                            sec.count_failure(&actor, "wrong PIN (helpdesk)", now)
                                .await?;
                            Err(refused(if n >= i64::from(sec.policy.pin_max_failures) {
                                ErrorCode::MethodLocked
                            } else {
                                ErrorCode::WrongCode
                            }))
                        }
                    }
                    MethodKind::Passkey => Err(refused(ErrorCode::VerificationPending)),
                    MethodKind::Recovery => Err(refused(ErrorCode::MethodNotAllowed)),
                };
                // store and directory failures are not the caller's wrong answer
                let checked = match checked {
                    Err(DomainError::Refused(code)) => Err(DomainError::Refused(code)),
                    Err(other) => return Err(other),
                    Ok(()) => Ok(()),
                };
                let (state, valid_until) = if checked.is_ok() {
                    ("verified", now + self.policy.verification_seconds)
                } else {
                    ("failed", row.expires_at)
                };
                // one decision per verification: a concurrent check that decided first wins
                if !self
                    .store()
                    .decide_verification(&row.id, state, valid_until, now)
                    .await?
                {
                    return Err(refused(ErrorCode::CodeExpired));
                }
                let mut e = self.audit(agent, &user, event::VERIFY, checked.is_ok(), now);
                e.reason = Some(match &checked {
                    Ok(()) => format!("{} ({})", m.label(), row.channel),
                    Err(err) => format!("{} ({}): {err}", m.label(), row.channel),
                });
                self.store().append_audit(&e).await?;
                if checked.is_ok() {
                    self.store().touch_method(&m.row.id, now).await?;
                }
                let decided = VerificationRow {
                    state: state.into(),
                    expires_at: valid_until,
                    decided_at: now,
                    ..row
                };
                checked.map(|()| self.view(&methods, &decided, now))
            })
            .await
    }

    /// The portal approval waiting for this signed-in user, if any.
    pub async fn approval_prompt(
        &self,
        user: &User,
        now: i64,
    ) -> Result<Option<ApprovalPrompt>, DomainError> {
        let Some(row) = self.store().approval_request_for(&user.id, now).await? else {
            return Ok(None);
        };
        let agent = self.store().find_user(&row.agent_id).await?;
        let mut choices = vec![row.approval_code.clone()];
        let mut salt = 0u32;
        while choices.len() < 3 && salt < 100 {
            let mac = self
                .security
                .sealer
                .mac("approval-decoy", &format!("{}:{salt}", row.id));
            let n = u32::from_str_radix(&mac[..8], 16).unwrap_or(salt) % 1_000_000;
            let decoy = format!("{n:06}");
            if !choices.contains(&decoy) {
                choices.push(decoy);
            }
            salt += 1;
        }
        choices.sort();
        Ok(Some(ApprovalPrompt {
            id: row.id,
            agent_name: agent.map(|a| a.display_name).unwrap_or_default(),
            choices,
        }))
    }

    /// The caller answers a portal approval from their own session by picking the number the
    /// agent reads out (`pick`), which needs a second factor proven within the re-authentication
    /// window (a passkey, when they have one, is offered first there); a wrong pick ends that
    /// verification and counts as a failed guess; `None` ("it's not me") marks the call as
    /// suspicious.
    pub async fn approval_answer(
        &self,
        actor: &Actor,
        id: &str,
        pick: Option<&str>,
        now: i64,
    ) -> Result<(), DomainError> {
        let row = self
            .store()
            .approval_request_for(&actor.user.id, now)
            .await?
            .filter(|r| r.id == id)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let fresh = actor.session.mfa_at > 0
            && now - actor.session.mfa_at <= self.security.policy.fresh_mfa_seconds;
        if pick.is_some() && !fresh {
            return Err(refused(ErrorCode::ReauthRequired));
        }
        let yes = match pick {
            None => false,
            Some(p) => {
                let picked: String = p.chars().filter(char::is_ascii_digit).collect();
                // a guess like any other: counted first, in the helpdesk budget
                let checking = Actor::without_session(
                    actor.user.clone(),
                    actor.client.clone(),
                    Budget::Helpdesk,
                );
                self.security
                    .guarded(&checking, now, async {
                        use subtle::ConstantTimeEq;
                        if bool::from(picked.as_bytes().ct_eq(row.approval_code.as_bytes())) {
                            return Ok(());
                        }
                        self.store()
                            .decide_verification(&row.id, "failed", row.expires_at, now)
                            .await?;
                        self.security
                            .count_failure(
                                &checking,
                                "portal approval: the caller picked another number",
                                now,
                            )
                            .await?;
                        Err(refused(ErrorCode::WrongNumber))
                    })
                    .await?;
                true
            }
        };
        let (state, until) = if yes {
            ("verified", now + self.policy.verification_seconds)
        } else {
            ("denied", row.expires_at)
        };
        if !self
            .store()
            .decide_verification(&row.id, state, until, now)
            .await?
        {
            return Err(refused(ErrorCode::SetupExpired));
        }
        let mut e = self.security.audit(actor, event::VERIFY, yes, now);
        e.actor = self
            .store()
            .find_user(&row.agent_id)
            .await?
            .map(|a| a.username);
        e.reason = Some(if yes {
            "portal approval: the caller confirmed".into()
        } else {
            "portal approval: the caller said it wasn't them".into()
        });
        self.store().append_audit(&e).await?;
        Ok(())
    }

    /// The agent's valid verification of this user, or `HLP-002`.
    pub(super) async fn verified(
        &self,
        agent: &Agent,
        user: &User,
        now: i64,
    ) -> Result<(), DomainError> {
        if agent.kind != AgentKind::Staff {
            return Ok(());
        }
        match self
            .store()
            .latest_verification(&agent.user.id, &user.id)
            .await?
        {
            Some(v) if v.state == "verified" && v.expires_at > now => Ok(()),
            Some(v) if v.state == "denied" => Err(refused(ErrorCode::VerificationDenied)),
            _ => Err(refused(ErrorCode::NotVerified)),
        }
    }

    /// Refuses (and audits as `ev`, with `what` in the reason) a change of a protected account by
    /// a non-administrator.
    pub(super) async fn guard_protected(
        &self,
        agent: &Agent,
        user: &User,
        ev: &str,
        what: &str,
        now: i64,
    ) -> Result<(), DomainError> {
        if agent.is_admin() || !self.is_protected(user) {
            return Ok(());
        }
        let mut e = self.audit(agent, user, ev, false, now);
        e.reason = Some(format!("{what}: protected account"));
        self.store().append_audit(&e).await?;
        Err(refused(ErrorCode::ProtectedAccount))
    }

    /// The pass this agent just issued to the user, once (the sealed copy is then gone): the
    /// pass and its expiry.
    pub async fn take_new_tap(
        &self,
        agent: &Agent,
        user_id: &str,
    ) -> Result<Option<(String, i64)>, DomainError> {
        Ok(
            match self
                .store()
                .take_tap_for_display(user_id, &agent.user.id)
                .await?
            {
                Some((sealed, until)) => self
                    .security
                    .sealer
                    .open(&sealed, "tap")
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .map(|p| (p, until)),
                None => None,
            },
        )
    }

    /// Removes one of the user's methods (the management API): the same rules as an action —
    /// protected accounts for administrators only — audited and mailed to the user.
    pub async fn remove_method(
        &self,
        agent: &Agent,
        user_id: &str,
        method_id: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let user = self.user(agent, user_id).await?;
        self.guard_protected(agent, &user, sec_event::METHOD_REMOVED, method_id, now)
            .await?;
        let methods = self.security.methods(&user.id).await?;
        let m = methods
            .iter()
            .find(|m| m.row.id == method_id)
            .ok_or(refused(ErrorCode::SetupExpired))?;
        let label = m.label();
        let mut tx = self.store().begin().await?;
        if !crate::store::methods::delete_method_in(&mut tx, method_id, &user.id).await? {
            return Err(refused(ErrorCode::SetupExpired));
        }
        let notice = Notice::MethodRemoved {
            method: label.clone(),
            changed_at: format_time(now),
        };
        self.method_changed(
            tx,
            agent,
            &user,
            &methods,
            sec_event::METHOD_REMOVED,
            &label,
            notice,
            now,
        )
        .await?;
        Ok(label)
    }

    /// Completes `tx`, which changed one of the user's methods on the agent's word: audited as
    /// `ev` with the method's `label`, `notice` mailed to every address of the user.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn method_changed(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Any>,
        agent: &Agent,
        user: &User,
        methods: &[Method],
        ev: &str,
        label: &str,
        notice: Notice,
        now: i64,
    ) -> Result<(), DomainError> {
        let mut e = self.audit(agent, user, ev, true, now);
        e.reason = Some(label.to_string());
        append_audit_in(&mut tx, &e).await?;
        for a in self.security.addresses(user, methods, None) {
            self.security
                .notifier
                .email_address_in(&mut tx, user, &a, &notice, now)
                .await?;
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.security.notifier.wake();
        self.security.ensure_default(&user.id).await?;
        Ok(())
    }

    /// Performs an action on a verified caller's account.
    pub async fn act(
        &self,
        agent: &Agent,
        user_id: &str,
        action: Action,
        now: i64,
    ) -> Result<Outcome, DomainError> {
        let user = self.user(agent, user_id).await?;
        let protected = self.is_protected(&user);
        let allowed = if protected && !agent.is_admin() {
            Err(refused(ErrorCode::ProtectedAccount))
        } else {
            self.verified(agent, &user, now).await
        };
        if let Err(err) = allowed {
            let mut e = self.audit(agent, &user, event::ACTION, false, now);
            e.reason = Some(format!("{}: {err}", action.as_str()));
            self.store().append_audit(&e).await?;
            return Err(err);
        }
        // an MFA reset or a pass that stands in for the MFA: a second administrator decides
        if protected && matches!(action, Action::Reregister | Action::Tap { .. }) {
            let row = ApprovalRow {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: user.id.clone(),
                action: action.as_str().into(),
                requested_by: agent.user.id.clone(),
                requested_at: now,
                expires_at: now + self.policy.approval_seconds,
                decided_by: String::new(),
                decided_at: 0,
                state: "pending".into(),
            };
            self.store().insert_approval(&row).await?;
            let mut e = self.audit(agent, &user, event::APPROVAL_REQUESTED, true, now);
            e.reason = Some(format!("{} (request {})", action.as_str(), row.id));
            self.store().append_audit(&e).await?;
            return Ok(Outcome::ApprovalRequested(row.id));
        }
        self.perform(agent, &user, action, None, now)
            .await
            .map(Outcome::Done)
    }

    /// Requests waiting for a second administrator.
    pub async fn pending_approvals(
        &self,
        agent: &Agent,
        now: i64,
    ) -> Result<Vec<PendingApproval>, DomainError> {
        if !agent.is_admin() {
            return Ok(vec![]);
        }
        let mut out = vec![];
        for row in self.store().pending_approvals(now).await? {
            let name = |id: String| async move {
                self.store()
                    .find_user(&id)
                    .await
                    .map(|u| u.map(|u| u.username).unwrap_or(id))
            };
            out.push(PendingApproval {
                username: name(row.user_id.clone()).await?,
                requested_by: name(row.requested_by.clone()).await?,
                row,
            });
        }
        Ok(out)
    }

    /// A second administrator approves (and so performs) or rejects a request.
    pub async fn decide(
        &self,
        agent: &Agent,
        approval_id: &str,
        approve: bool,
        now: i64,
    ) -> Result<String, DomainError> {
        if !agent.is_admin() {
            return Err(refused(ErrorCode::ProtectedAccount));
        }
        let row = self
            .store()
            .approval(approval_id)
            .await?
            .filter(|a| a.state == "pending" && a.expires_at > now)
            .filter(|a| a.requested_by != agent.user.id && a.user_id != agent.user.id)
            .ok_or(refused(ErrorCode::ApprovalInvalid))?;
        let user = self.user(agent, &row.user_id).await?;
        let action = Action::parse(&row.action, 0).ok_or(refused(ErrorCode::ApprovalInvalid))?;
        let requester = self.store().find_user(&row.requested_by).await?;
        if !approve {
            let mut tx = self.store().begin().await?;
            if !Store::decide_approval_in(&mut tx, &row.id, &agent.user.id, "rejected", now).await?
            {
                return Err(refused(ErrorCode::ApprovalInvalid));
            }
            let mut e = self.audit(agent, &user, event::APPROVAL_DECIDED, true, now);
            e.reason = Some(format!("rejected {} (request {})", row.action, row.id));
            append_audit_in(&mut tx, &e).await?;
            tx.commit().await.map_err(crate::store::StoreError::from)?;
            return Ok("rejected".into());
        }
        // the requester is the agent who verified the caller; the approver is recorded too
        let requester = requester.ok_or(refused(ErrorCode::ApprovalInvalid))?;
        let acting = Agent {
            user: requester,
            client: agent.client.clone(),
            kind: AgentKind::Staff,
        };
        self.perform(&acting, &user, action, Some((&row.id, agent)), now)
            .await
    }

    /// Does it: the change, its audit line and the user's mail in one transaction where the
    /// change is ours (the directory's unlock is a separate call).
    async fn perform(
        &self,
        agent: &Agent,
        user: &User,
        action: Action,
        approval: Option<(&str, &Agent)>,
        now: i64,
    ) -> Result<String, DomainError> {
        let store = self.store();
        let methods = self.security.methods(&user.id).await?;
        let addresses = self.security.addresses(user, &methods, None);
        let mut tap: Option<(TapRow, String)> = None;
        match action {
            Action::ResetLink if addresses.is_empty() => {
                let mut e = self.audit(agent, user, event::ACTION, false, now);
                e.reason = Some("reset_link: no registered address".into());
                store.append_audit(&e).await?;
                return Err(refused(ErrorCode::NoAddress));
            }
            Action::Unlock => {
                let throttled = super::signin::strangers_throttled(
                    store,
                    &self.security.signin,
                    &user.username,
                    now,
                )
                .await?;
                if user.locked_at.is_none() && !throttled && !self.directory.is_locked(user).await?
                {
                    return Err(refused(ErrorCode::NotLocked));
                }
                if let Err(err) = self.directory.unlock(user).await {
                    tracing::warn!(user = %user.username, error = %err, "directory unlock failed");
                    return Err(refused(ErrorCode::DirectoryUnavailable));
                }
                store
                    .clear_throttle(super::signin::SCOPE_ACCOUNT, &user.username)
                    .await?;
            }
            Action::Unblock if !user.is_blocked(now) => {
                return Err(refused(ErrorCode::NotBlocked));
            }
            Action::Tap { minutes } => {
                let secs = if minutes == 0 {
                    self.policy.tap_seconds
                } else {
                    (i64::from(minutes) * 60).clamp(60, self.policy.tap_max_seconds)
                };
                let pass = new_pass();
                let row = TapRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    user_id: user.id.clone(),
                    pass_hash: self.security.sealer.mac("tap", &normalise_pass(&pass)),
                    issued_by: agent.user.id.clone(),
                    created_at: now,
                    expires_at: now + secs,
                    uses_left: i64::from(self.policy.tap_uses),
                };
                let sealed = self.security.sealer.seal(pass.as_bytes(), "tap");
                tap = Some((row, sealed));
            }
            _ => {}
        }
        let link = if action == Action::ResetLink {
            Some(self.reset.helpdesk_link(user, &agent.client, now).await?)
        } else {
            None
        };
        let t = converge_app::text::en().helpdesk;
        let mut tx = store.begin().await?;
        if let Some((id, approver)) = approval {
            if !Store::decide_approval_in(&mut tx, id, &approver.user.id, "approved", now).await? {
                return Err(refused(ErrorCode::ApprovalInvalid));
            }
            let mut e = self.audit(approver, user, event::APPROVAL_DECIDED, true, now);
            e.reason = Some(format!("approved {} (request {id})", action.as_str()));
            append_audit_in(&mut tx, &e).await?;
        }
        let description: String = match action {
            Action::ResetLink => {
                let notice = Notice::PasswordReset {
                    code: None,
                    reset_url: link,
                    expires_minutes: (self.reset.policy.flow_seconds / 60) as u32,
                };
                for a in &addresses {
                    self.security
                        .notifier
                        .email_address_in(&mut tx, user, a, &notice, now)
                        .await?;
                }
                t.did_reset_link.replace(
                    "{to}",
                    &addresses
                        .iter()
                        .map(|a| mask(a))
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            }
            Action::Reregister => {
                let (n, sessions) =
                    crate::store::helpdesk::clear_registration_in(&mut tx, &user.id, now).await?;
                format!("{} ({n} methods, {sessions} sessions)", t.did_reregister)
            }
            Action::Tap { .. } => {
                let (row, sealed) = tap.take().ok_or(refused(ErrorCode::Internal))?;
                Store::insert_tap_in(&mut tx, &row, &sealed).await?;
                t.did_tap
                    .replace("{until}", &format_time(row.expires_at))
                    .replace("{uses}", &row.uses_left.to_string())
            }
            Action::Unlock => {
                crate::store::users::set_locked_in(&mut tx, &user.id, None, now).await?;
                t.did_unlock.to_string()
            }
            Action::Unblock => {
                crate::store::users::unblock_user_in(&mut tx, &user.id, now).await?;
                t.did_unblock.to_string()
            }
            Action::SignOut => {
                let n = crate::store::sessions::delete_user_sessions_in(&mut tx, &user.id).await?;
                format!("{} ({n})", t.did_sign_out)
            }
        };
        let mut e = self.audit(agent, user, event::ACTION, true, now);
        e.reason = Some(format!("{}: {description}", action.as_str()));
        if let Some((id, approver)) = approval {
            e.reason = Some(format!(
                "{} (approved by {}, request {id})",
                e.reason.unwrap_or_default(),
                approver.user.username
            ));
        }
        append_audit_in(&mut tx, &e).await?;
        // the specific events too, so filters by event type find them
        let specific = match action {
            Action::Unlock => Some(audit_event::ACCOUNT_UNLOCKED),
            Action::Unblock => Some(audit_event::ACCOUNT_UNBLOCKED),
            Action::SignOut => Some(sec_event::SESSIONS_REVOKED),
            _ => None,
        };
        if let Some(ev) = specific {
            let mut e = self.audit(agent, user, ev, true, now);
            e.reason = Some("helpdesk".into());
            append_audit_in(&mut tx, &e).await?;
        }
        let notice = Notice::HelpdeskAction {
            agent_name: agent.user.display_name.clone(),
            action: description.clone(),
            done_at: format_time(now),
        };
        for a in &addresses {
            self.security
                .notifier
                .email_address_in(&mut tx, user, a, &notice, now)
                .await?;
        }
        tx.commit().await.map_err(crate::store::StoreError::from)?;
        self.security.notifier.wake();
        Ok(description)
    }
}

fn indexes(s: &str) -> Vec<usize> {
    s.split(',').filter_map(|i| i.trim().parse().ok()).collect()
}

/// 16 characters (80 bits) in groups of four: `K7QM-2XPA-…`.
fn new_pass() -> String {
    grouped_code(TAP_ALPHABET)
}

/// 16 random characters of `alphabet` (32 of them: 80 bits) in groups of four, for reading out
/// or writing down.
pub(crate) fn grouped_code(alphabet: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..16)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What a user typed, as the pass is hashed: upper case, without spaces and dashes.
pub fn normalise_pass(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}
