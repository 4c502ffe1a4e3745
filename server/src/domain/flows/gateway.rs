//! Sign-in for gateways (VPNs, remote access) that ask over RADIUS: the portal's own password
//! check and second factors behind another door.
//!
//! ```text
//!  request(user, password) ──► signin::check_password (throttle, one directory check, lockout,
//!        │                     fraud block, audit)        rejected ──► Reject(Failed/Throttled)
//!        ▼ accepted
//!  the client's groups? ── no ──► Reject(Failed)   (audited as not_in_client_groups)
//!        ▼
//!  methods usable over RADIUS (app, phone)?  none: passkeys only ──► Reject(NoUsableMethod)
//!        │                                   none at all ──► Reject(NotRegistered) / Accept
//!        │                                                    (allow_unregistered, audited)
//!        ▼  concat: the code is the password's last 6 digits ──► Security::mfa_code ──► Accept
//!  challenge: the default method (app: ask; phone: text a code now) ──► Challenge(State)
//!        │                                        State: 128 random bits, stored hashed,
//!        ▼  answer(State, text)                   bound to client + user, single use
//!  a listed digit ──► another method (a call: held until answered ──► Accept / Reject)
//!  6 digits ──► Security::mfa_code   anything else ──► Security::mfa_tap   ──► Accept / Reject
//! ```
//! Every guess goes through `Security::guarded` with the session budget: wrong codes over RADIUS
//! slow the portal too. One `gateway_signin` audit line per request.

use super::security::{mask, Actor, Budget, Method, Security};
use super::session::Client;
use super::signin::{self, PasswordCheck, RejectReason, SigninDeps};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::policy::SessionPolicy;
use crate::domain::policy::{GatewayClientPolicy, GatewayMode, GatewayPolicy, MethodKind};
use crate::domain::users::User;
use crate::store::gateway::ChallengeRow;
use converge_app::api::ErrorCode;
use rand::RngCore;
use std::sync::Arc;

const STATE_CONTEXT: &str = "gateway-state";
const STATION_CONTEXT: &str = "gateway-station";
const PASSWORD_ONLY: &str = "password only";

pub struct Gateway {
    pub security: Arc<Security>,
    pub directory: Arc<dyn Directory>,
    pub session: SessionPolicy,
    pub policy: GatewayPolicy,
    pub clock: Arc<dyn Clock>,
}

/// One request from a gateway, as its front door parsed it.
pub struct GatewayRequest<'a> {
    pub client: &'a GatewayClientPolicy,
    /// `ip`: the end user's address when the gateway says it (Calling-Station-Id), else the
    /// gateway's; `user_agent`: how the audit names the door ("RADIUS vpn").
    pub from: Client,
    pub username: String,
    /// The password — or, with `state`, the answer to the challenge.
    pub password: String,
    pub state: Option<String>,
    /// The end user's station as the gateway names it (Calling-Station-Id: an address or a
    /// MAC), if it does: a station that completed a sign-in is this user's known device.
    pub station: Option<String>,
}

/// What the front door answers.
#[derive(Debug)]
pub enum Step {
    Accept { user: Box<User> },
    Reject(Refusal),
    Challenge { state: String, prompt: Prompt },
}

/// Why a request was refused: the front door says which (in the user's language); every
/// credential failure is `Failed`, the same answer whatever was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Failed,
    Throttled,
    DirectoryDown,
    Unavailable,
    /// Only methods that cannot work over RADIUS (passkeys).
    NoUsableMethod,
    /// No security info at all.
    NotRegistered,
    CallDeclined,
    CallUnanswered,
}

/// What a challenge asks for, and the other methods the user may pick by digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub asks: Asks,
    /// Phone codes in PIN mode: the code followed by the PIN.
    pub with_pin: bool,
    pub choices: Vec<(u8, Choice)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asks {
    AppCode,
    /// A code was texted to `to` (masked).
    TextedCode {
        to: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    AppCode { name: String },
    Text { to: String },
    Call { to: String },
}

impl Choice {
    fn method_channel(&self) -> &'static str {
        match self {
            Choice::AppCode { .. } => "totp",
            Choice::Text { .. } => "sms",
            Choice::Call { .. } => "voice",
        }
    }
}

/// The methods a gateway can use, in a stable order (the digits of the menu): the default
/// first, then apps, then phones; each phone as a text and, when calls work, a call.
pub(crate) fn choices(security: &Security, methods: &[Method]) -> Vec<(u8, Choice, String)> {
    let mut usable: Vec<&Method> = methods
        .iter()
        .filter(|m| {
            (m.kind.is_otp() || m.kind == MethodKind::Phone) && security.notifier.reaches(m.kind)
        })
        .collect();
    usable.sort_by_key(|m| (!m.row.is_default, !m.kind.is_otp(), m.row.id.clone()));
    let mut out = Vec::new();
    for m in usable {
        let to = mask(&m.destination().unwrap_or_default());
        let mut add = |c: Choice| {
            if out.len() < 9 {
                out.push((out.len() as u8 + 1, c, m.row.id.clone()));
            }
        };
        match m.kind {
            MethodKind::Totp | MethodKind::Token => add(Choice::AppCode {
                name: m.row.name.clone(),
            }),
            _ => {
                add(Choice::Text { to: to.clone() });
                if security.notifier.voice_supported() {
                    add(Choice::Call { to });
                }
            }
        }
    }
    out
}

impl Gateway {
    fn deps(&self) -> SigninDeps<'_> {
        SigninDeps {
            store: &self.security.store,
            notifier: &self.security.notifier,
            directory: self.directory.as_ref(),
            sealer: &self.security.sealer,
            signin: &self.security.signin,
            session: &self.session,
        }
    }

    /// The station of a request, keyed to its gateway client (stored as an HMAC).
    fn station_key(&self, req: &GatewayRequest<'_>) -> Option<String> {
        let station = req.station.as_deref()?.trim();
        (!station.is_empty()).then(|| {
            self.security.sealer.mac(
                STATION_CONTEXT,
                &format!("{}\0{}", req.client.name, station.to_ascii_lowercase()),
            )
        })
    }

    /// Handles one request: the first (password) or an answer to a challenge.
    pub async fn handle(&self, req: GatewayRequest<'_>) -> Result<Step, DomainError> {
        let now = self.clock.now();
        let mut audit = AuditEntry::new(event::GATEWAY_SIGNIN, false, now);
        audit.username = Some(
            req.username
                .trim()
                .to_lowercase()
                .chars()
                .take(256)
                .collect(),
        );
        audit.client_ip = Some(req.from.ip.clone());
        audit.user_agent = Some(req.from.user_agent.clone());
        let mut note = Note::default();
        let step = match req.state.as_deref() {
            None => self.first(&req, &mut audit, &mut note, now).await,
            Some(state) => self.answer(&req, state, &mut audit, &mut note, now).await,
        };
        let step = match step {
            Ok(s) => s,
            Err(DomainError::Directory(e)) => {
                note.why = format!("directory unavailable: {e}");
                Step::Reject(Refusal::DirectoryDown)
            }
            Err(DomainError::Busy) | Err(DomainError::Notify(_)) => {
                note.why = "busy".into();
                Step::Reject(Refusal::Unavailable)
            }
            Err(DomainError::Refused(code)) => {
                note.why = format!("refused: {}", code.code());
                Step::Reject(refusal_of(code))
            }
            Err(e) => return Err(e),
        };
        audit.success = matches!(step, Step::Accept { .. });
        // a second factor was proven from this station: remember it as the user's device
        if let (Step::Accept { user }, Some(station), false) =
            (&step, self.station_key(&req), note.method == PASSWORD_ONLY)
        {
            // a station already known keeps its nonce (the upsert only moves last_ok_at)
            self.security
                .store
                .remember_gateway_device(
                    &user.username,
                    &station,
                    &signin::device::new_nonce(),
                    now,
                )
                .await?;
        }
        let result = match &step {
            Step::Accept { .. } => "accepted".to_string(),
            Step::Challenge { .. } => "challenged".to_string(),
            Step::Reject(r) => format!("rejected ({r:?})"),
        };
        audit.reason = Some(
            [
                format!("client {}", req.client.name),
                note.method.clone(),
                result,
                note.why.clone(),
            ]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        );
        self.security.store.append_audit(&audit).await?;
        Ok(step)
    }

    async fn first(
        &self,
        req: &GatewayRequest<'_>,
        audit: &mut AuditEntry,
        note: &mut Note,
        now: i64,
    ) -> Result<Step, DomainError> {
        // concat: the last six characters are the app code
        let (password, code) = match req.client.mode {
            GatewayMode::Challenge => (req.password.clone(), None),
            GatewayMode::Concat => {
                let n = req.password.chars().count();
                let split = n.saturating_sub(6);
                let code: String = req.password.chars().skip(split).collect();
                if n > 6 && code.chars().all(|c| c.is_ascii_digit()) {
                    (req.password.chars().take(split).collect(), Some(code))
                } else {
                    // still counted and checked like any password (no shortcut to tell apart)
                    (req.password.clone(), Some(String::new()))
                }
            }
        };
        // a station that signed this user in before counts as the user's device (its own
        // bucket, past the lock for strangers), as a device cookie does in the browser
        let mut from = req.from.clone();
        if let Some(station) = self.station_key(req) {
            let name = req.username.trim().to_lowercase();
            if let Some(nonce) = self.security.store.gateway_device(&name, &station).await? {
                from.device = Some(signin::device::value(&self.security.sealer, &name, &nonce));
            }
        }
        let user = match signin::check_password(&self.deps(), &req.username, password, &from, now)
            .await?
        {
            PasswordCheck::Accepted { user, .. } => *user,
            PasswordCheck::Rejected(reason) => {
                note.why = reason.as_str().into();
                return Ok(Step::Reject(match reason {
                    RejectReason::ThrottledAccount | RejectReason::ThrottledClient => {
                        Refusal::Throttled
                    }
                    _ => Refusal::Failed,
                }));
            }
        };
        audit.user_id = Some(user.id.clone());
        // outside the client's groups: the same answer as a wrong password
        if !req.client.admits(&user.groups) {
            note.why = "not_in_client_groups".into();
            return Ok(Step::Reject(Refusal::Failed));
        }
        let methods = self.security.methods(&user.id).await?;
        let menu = choices(&self.security, &methods);
        if menu.is_empty() {
            if methods.iter().any(|m| m.kind.signs_in()) {
                note.why = "only passkeys".into();
                return Ok(Step::Reject(Refusal::NoUsableMethod));
            }
            if req.client.allow_unregistered {
                note.method = PASSWORD_ONLY.into();
                note.why = "no security info; allow_unregistered".into();
                return Ok(Step::Accept {
                    user: Box::new(user),
                });
            }
            note.why = "no security info".into();
            return Ok(Step::Reject(Refusal::NotRegistered));
        }
        let actor = Actor::without_session(user.clone(), req.from.clone(), Budget::Session);
        if let Some(code) = code {
            let app = menu
                .iter()
                .find(|(_, c, _)| matches!(c, Choice::AppCode { .. }));
            let Some((_, _, method_id)) = app else {
                note.why = "concat mode needs an authenticator app".into();
                return Ok(Step::Reject(Refusal::NoUsableMethod));
            };
            note.method = "app code (concat)".into();
            self.security
                .mfa_code(&actor, method_id, &code, None, false, now)
                .await?;
            return Ok(Step::Accept {
                user: Box::new(user),
            });
        }
        let (_, choice, method_id) = menu[0].clone();
        self.offer(req, &actor, &menu, choice, &method_id, note, now)
            .await
    }

    /// Asks for `choice`: an app code is asked for, a text is sent now, a call is placed and
    /// waited for.
    #[allow(clippy::too_many_arguments)]
    async fn offer(
        &self,
        req: &GatewayRequest<'_>,
        actor: &Actor,
        menu: &[(u8, Choice, String)],
        choice: Choice,
        method_id: &str,
        note: &mut Note,
        now: i64,
    ) -> Result<Step, DomainError> {
        let asks = match &choice {
            Choice::AppCode { .. } => {
                note.method = "app code".into();
                Asks::AppCode
            }
            Choice::Text { .. } => {
                note.method = "text message".into();
                let sent = self
                    .security
                    .mfa_send(actor, method_id, false, false, now)
                    .await?;
                Asks::TextedCode {
                    to: sent.destination,
                }
            }
            Choice::Call { .. } => {
                note.method = "phone call".into();
                return self.call(actor, method_id, note, now).await;
            }
        };
        let state = self
            .challenge(req, actor, method_id, choice.method_channel(), now)
            .await?;
        Ok(Step::Challenge {
            state,
            prompt: Prompt {
                with_pin: matches!(asks, Asks::TextedCode { .. }) && self.security.policy.pin_mode,
                asks,
                choices: menu
                    .iter()
                    .filter(|(_, c, m)| !(c == &choice && m == method_id))
                    .map(|(d, c, _)| (*d, c.clone()))
                    .collect(),
            },
        })
    }

    /// Stores a new challenge; returns the State for the gateway.
    async fn challenge(
        &self,
        req: &GatewayRequest<'_>,
        actor: &Actor,
        method_id: &str,
        channel: &str,
        now: i64,
    ) -> Result<String, DomainError> {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let state = hex::encode(raw);
        self.security
            .store
            .put_challenge(&ChallengeRow {
                id_hash: self.security.sealer.mac(STATE_CONTEXT, &state),
                client: req.client.name.clone(),
                user_id: actor.user.id.clone(),
                username: actor.user.username.clone(),
                method_id: method_id.to_string(),
                channel: channel.to_string(),
                created_at: now,
                expires_at: now + self.policy.challenge_seconds,
            })
            .await?;
        Ok(state)
    }

    /// A call: placed now, the request held until the person answers it on the phone (or
    /// `hold_seconds` pass). The answer arrives through the voice callback on any instance; it
    /// is read from the database.
    async fn call(
        &self,
        actor: &Actor,
        method_id: &str,
        note: &mut Note,
        now: i64,
    ) -> Result<Step, DomainError> {
        let pending = self
            .security
            .mfa_send(actor, method_id, true, false, now)
            .await?;
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_secs(self.policy.hold_seconds.max(1) as u64);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            match self
                .security
                .store
                .code_call_result(&pending.id)
                .await?
                .as_deref()
            {
                Some("approve") => break,
                Some("deny") => {
                    note.why = "call declined".into();
                    return Ok(Step::Reject(Refusal::CallDeclined));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    note.why = "call not answered in time".into();
                    return Ok(Step::Reject(Refusal::CallUnanswered));
                }
                _ => {}
            }
        }
        // the approved call is the factor: spent through the same check as the portal's
        self.security
            .mfa_code(actor, method_id, "", None, false, self.clock.now())
            .await?;
        Ok(Step::Accept {
            user: Box::new(actor.user.clone()),
        })
    }

    async fn answer(
        &self,
        req: &GatewayRequest<'_>,
        state: &str,
        audit: &mut AuditEntry,
        note: &mut Note,
        now: i64,
    ) -> Result<Step, DomainError> {
        let store = &self.security.store;
        let username = req.username.trim().to_lowercase();
        let Some(row) = store
            .take_challenge(
                &self.security.sealer.mac(STATE_CONTEXT, state),
                &req.client.name,
                &username,
                now,
            )
            .await?
        else {
            note.why = "unknown, expired, used or foreign State".into();
            return Ok(Step::Reject(Refusal::Failed));
        };
        audit.user_id = Some(row.user_id.clone());
        let user = match store.find_user(&row.user_id).await? {
            Some(u) if u.enabled && !u.is_blocked(now) => u,
            _ => {
                note.why = "user disabled or blocked meanwhile".into();
                return Ok(Step::Reject(Refusal::Failed));
            }
        };
        let actor = Actor::without_session(user.clone(), req.from.clone(), Budget::Session);
        let methods = self.security.methods(&user.id).await?;
        let menu = choices(&self.security, &methods);
        let typed: String = req
            .password
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        // a listed digit: another method
        if typed.len() == 1 {
            let picked = typed
                .parse::<u8>()
                .ok()
                .and_then(|d| menu.iter().find(|(n, _, _)| *n == d));
            let Some((_, choice, method_id)) = picked.cloned() else {
                note.why = "not one of the choices".into();
                return Ok(Step::Reject(Refusal::Failed));
            };
            return self
                .offer(req, &actor, &menu, choice, &method_id, note, now)
                .await;
        }
        let is_code = typed.len() >= 6 && typed.chars().take(6).all(|c| c.is_ascii_digit());
        if is_code && !row.method_id.is_empty() {
            note.method = match row.channel.as_str() {
                "totp" => "app code",
                _ => "text message",
            }
            .into();
            let (code, pin) = if row.channel == "sms" && self.security.policy.pin_mode {
                (&typed[..6], Some(&typed[6..]))
            } else {
                (typed.as_str(), None)
            };
            self.security
                .mfa_code(&actor, &row.method_id, code, pin, false, now)
                .await?;
        } else {
            note.method = "Temporary Access Pass".into();
            self.security.mfa_tap(&actor, &typed, now).await?;
        }
        Ok(Step::Accept {
            user: Box::new(user),
        })
    }
}

/// What the audit line says besides the result.
#[derive(Default)]
struct Note {
    method: String,
    why: String,
}

fn refusal_of(code: ErrorCode) -> Refusal {
    match code {
        ErrorCode::TooManyAttempts | ErrorCode::MessageLimit => Refusal::Throttled,
        ErrorCode::CallDeclined => Refusal::CallDeclined,
        ErrorCode::CallPending => Refusal::CallUnanswered,
        _ => Refusal::Failed,
    }
}
