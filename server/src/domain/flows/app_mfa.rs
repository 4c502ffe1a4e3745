//! MFA as a service: an organisation's own application, having checked the user's first factor
//! itself, asks Converge to verify the second (the REST API's `/mfa/challenges`).
//!
//! ```text
//!  start(app, user, method?) ── unknown user ──► NotFound     disabled / fraud-blocked ──► Blocked
//!        │                    ── no app / phone ──► NoUsableMethod
//!        ▼ the method asked for, else the default (gateway::choices order)
//!  app: nothing sent · text: a code now · call: a call now · tap: nothing sent
//!        ▼ Challenge: id = 128 random bits (stored as an HMAC), bound to the token, 5 minutes
//!  verify(id, code) ──► Security::mfa_code / mfa_tap — the portal's own checks and throttle
//!        ├─ right ──► Verified (the challenge is spent: one winner)
//!        ├─ wrong ──► Wrong (the challenge stays; the account's budget shrinks)
//!        ├─ throttled / method locked ──► Locked        expired / spent ──► Expired
//!  status(id, wait) ── a call: waits up to `wait` for the answer ──► Verified / Declined / Pending
//! ```
//! Every start and verdict is audited (`app_mfa`) with the application as the actor.

use super::gateway::{choices, Choice};
use super::security::{Actor, Budget, Security};
use super::session::Client;
use crate::clock::Clock;
use crate::domain::audit::AuditEntry;
use crate::domain::error::DomainError;
use crate::domain::policy::ApiPolicy;
use crate::domain::users::User;
use crate::store::api::ApiChallengeRow;
use converge_app::api::ErrorCode;
use rand::RngCore;
use std::sync::Arc;

pub const EVENT: &str = "app_mfa";
const ID_CONTEXT: &str = "api-challenge";

pub struct AppMfa {
    pub security: Arc<Security>,
    pub policy: ApiPolicy,
    pub clock: Arc<dyn Clock>,
}

/// The application asking, as its front door identified it.
#[derive(Debug, Clone)]
pub struct App {
    pub token_id: String,
    pub name: String,
    /// The end user's address when the application says it, else the application's.
    pub from: Client,
}

/// How a challenge is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    App,
    Sms,
    Voice,
    /// A Temporary Access Pass from the helpdesk.
    Tap,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::App => "app",
            Delivery::Sms => "sms",
            Delivery::Voice => "voice",
            Delivery::Tap => "tap",
        }
    }

    pub fn parse(s: &str) -> Option<Delivery> {
        Some(match s {
            "app" | "totp" => Delivery::App,
            "sms" => Delivery::Sms,
            "voice" => Delivery::Voice,
            "tap" => Delivery::Tap,
            _ => return None,
        })
    }
}

/// One way the user can answer: a method and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub method_id: String,
    pub delivery: Delivery,
    /// The app's name or the masked number.
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    pub user: User,
    pub offers: Vec<Offer>,
    pub chosen: Offer,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    Wrong,
    Expired,
    Locked,
    /// A call not answered yet.
    Pending,
    /// The call was declined on the phone.
    Declined,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Wrong => "wrong",
            Verdict::Expired => "expired",
            Verdict::Locked => "locked",
            Verdict::Pending => "pending",
            Verdict::Declined => "declined",
        }
    }
}

fn offers(security: &Security, methods: &[super::security::Method]) -> Vec<Offer> {
    choices(security, methods)
        .into_iter()
        .map(|(_, c, method_id)| {
            let (delivery, label) = match c {
                Choice::AppCode { name } => (Delivery::App, name),
                Choice::Text { to } => (Delivery::Sms, to),
                Choice::Call { to } => (Delivery::Voice, to),
            };
            Offer {
                method_id,
                delivery,
                label,
            }
        })
        .collect()
}

impl AppMfa {
    fn audit(&self, app: &App, user: &User, ok: bool, reason: String) -> AuditEntry {
        let mut e = AuditEntry::new(EVENT, ok, self.clock.now());
        e.user_id = Some(user.id.clone());
        e.username = Some(user.username.clone());
        e.actor = Some(format!("api:{}", app.name));
        e.client_ip = Some(app.from.ip.clone());
        e.user_agent = Some(app.from.user_agent.clone());
        e.reason = Some(reason);
        e
    }

    fn actor(&self, app: &App, user: User) -> Actor {
        Actor::without_session(user, app.from.clone(), Budget::Session)
    }

    /// The application answering `row`, from the end user's address the challenge was started
    /// for: their answers count (and are audited) where their start was, not in the
    /// application's shared bucket.
    fn answering(app: &App, row: &ApiChallengeRow) -> App {
        let mut app = app.clone();
        if !row.client_ip.is_empty() {
            app.from.ip = row.client_ip.clone();
        }
        app
    }

    /// Starts a challenge for `username`: with `method` (a method id) and/or `delivery`, that
    /// one; otherwise the default. A text or call goes out now.
    pub async fn start(
        &self,
        app: &App,
        username: &str,
        method: Option<&str>,
        delivery: Option<Delivery>,
    ) -> Result<Started, DomainError> {
        let now = self.clock.now();
        let store = &self.security.store;
        let name = store.canonical_name(username, false).await?;
        let user = store
            .find_user_by_username(&name)
            .await?
            .ok_or(DomainError::Refused(ErrorCode::NotFound))?;
        if !user.enabled || user.is_blocked(now) {
            store
                .append_audit(&self.audit(app, &user, false, "disabled or blocked".into()))
                .await?;
            return Err(DomainError::Refused(ErrorCode::AccountBlocked));
        }
        let methods = self.security.methods(&user.id).await?;
        let offers = offers(&self.security, &methods);
        let chosen = if delivery == Some(Delivery::Tap) {
            Offer {
                method_id: String::new(),
                delivery: Delivery::Tap,
                label: String::new(),
            }
        } else {
            if offers.is_empty() {
                store
                    .append_audit(&self.audit(app, &user, false, "no usable method".into()))
                    .await?;
                return Err(DomainError::Refused(ErrorCode::NoUsableMethod));
            }
            offers
                .iter()
                .find(|o| {
                    method.is_none_or(|m| m == o.method_id)
                        && delivery.is_none_or(|d| d == o.delivery)
                })
                .cloned()
                .ok_or(DomainError::Refused(ErrorCode::MethodNotAllowed))?
        };
        let actor = self.actor(app, user.clone());
        let code_id = match chosen.delivery {
            Delivery::Sms | Delivery::Voice => {
                self.security
                    .mfa_send(
                        &actor,
                        &chosen.method_id,
                        chosen.delivery == Delivery::Voice,
                        false,
                        now,
                    )
                    .await?
                    .id
            }
            Delivery::App | Delivery::Tap => String::new(),
        };
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let id = hex::encode(raw);
        let expires_at = now + self.policy.challenge_seconds;
        store
            .put_api_challenge(&ApiChallengeRow {
                id_hash: self.security.sealer.mac(ID_CONTEXT, &id),
                token_id: app.token_id.clone(),
                user_id: user.id.clone(),
                method_id: chosen.method_id.clone(),
                channel: chosen.delivery.as_str().into(),
                code_id,
                client_ip: app.from.ip.clone(),
                state: "pending".into(),
                created_at: now,
                expires_at,
            })
            .await?;
        store
            .append_audit(&self.audit(
                app,
                &user,
                true,
                format!("challenge started ({})", chosen.delivery.as_str()),
            ))
            .await?;
        Ok(Started {
            id,
            user,
            offers,
            chosen,
            expires_at,
        })
    }

    /// The pending challenge `id` of this application, with its user (None: unknown, foreign,
    /// expired or spent).
    async fn pending(
        &self,
        app: &App,
        id: &str,
        now: i64,
    ) -> Result<Option<(ApiChallengeRow, User)>, DomainError> {
        let store = &self.security.store;
        let Some(row) = store
            .api_challenge(&self.security.sealer.mac(ID_CONTEXT, id), &app.token_id)
            .await?
            .filter(|r| r.state == "pending" && r.expires_at > now)
        else {
            return Ok(None);
        };
        Ok(store.find_user(&row.user_id).await?.map(|u| (row, u)))
    }

    /// Checks the code (or pass) the user typed into the application.
    pub async fn verify(&self, app: &App, id: &str, code: &str) -> Result<Verdict, DomainError> {
        let now = self.clock.now();
        let Some((row, user)) = self.pending(app, id, now).await? else {
            return Ok(Verdict::Expired);
        };
        if !user.enabled || user.is_blocked(now) {
            self.security
                .store
                .end_api_challenge(&row.id_hash, "failed")
                .await?;
            return Ok(Verdict::Locked);
        }
        let app = &Self::answering(app, &row);
        let actor = self.actor(app, user.clone());
        let typed: String = code
            .chars()
            .filter(|c| !c.is_whitespace())
            .take(64)
            .collect();
        let is_code = typed.len() >= 6 && typed.chars().take(6).all(|c| c.is_ascii_digit());
        let result = match row.channel.as_str() {
            "app" | "sms" | "voice" if is_code => {
                let (code, pin) = if row.channel != "app" && self.security.policy.pin_mode {
                    (&typed[..6], Some(&typed[6..]))
                } else {
                    (typed.as_str(), None)
                };
                self.security
                    .mfa_code(&actor, &row.method_id, code, pin, false, now)
                    .await
                    .map(|_| ())
            }
            _ => self.security.mfa_tap(&actor, &typed, now).await.map(|_| ()),
        };
        self.settle(app, &row, &user, result).await
    }

    /// Turns a check's result into the verdict, spending the challenge when it ends.
    async fn settle(
        &self,
        app: &App,
        row: &ApiChallengeRow,
        user: &User,
        result: Result<(), DomainError>,
    ) -> Result<Verdict, DomainError> {
        let store = &self.security.store;
        let verdict = match result {
            Ok(()) => {
                // one winner: a second right answer for the same challenge finds it spent
                if store.end_api_challenge(&row.id_hash, "verified").await? {
                    Verdict::Verified
                } else {
                    Verdict::Expired
                }
            }
            Err(DomainError::Refused(code)) => match code {
                ErrorCode::WrongCode | ErrorCode::TapInvalid => Verdict::Wrong,
                ErrorCode::TooManyAttempts | ErrorCode::MethodLocked => Verdict::Locked,
                ErrorCode::CodeExpired | ErrorCode::SetupExpired => {
                    store.end_api_challenge(&row.id_hash, "failed").await?;
                    Verdict::Expired
                }
                ErrorCode::CallDeclined => {
                    store.end_api_challenge(&row.id_hash, "failed").await?;
                    Verdict::Declined
                }
                ErrorCode::CallPending => Verdict::Pending,
                _ => return Err(DomainError::Refused(code)),
            },
            Err(e) => return Err(e),
        };
        store
            .append_audit(&self.audit(
                app,
                user,
                verdict == Verdict::Verified,
                format!("{} ({})", verdict.as_str(), row.channel),
            ))
            .await?;
        Ok(verdict)
    }

    /// The challenge's state; for a call, waits up to `wait_seconds` (at most the policy's
    /// limit) for the person to answer it, and an approved call verifies the challenge.
    pub async fn status(
        &self,
        app: &App,
        id: &str,
        wait_seconds: u32,
    ) -> Result<Verdict, DomainError> {
        let wait = i64::from(wait_seconds).clamp(0, self.policy.max_wait_seconds);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait as u64);
        loop {
            let now = self.clock.now();
            let Some((row, user)) = self.pending(app, id, now).await? else {
                let spent = self
                    .security
                    .store
                    .api_challenge(&self.security.sealer.mac(ID_CONTEXT, id), &app.token_id)
                    .await?;
                return Ok(match spent.map(|r| r.state) {
                    Some(s) if s == "verified" => Verdict::Verified,
                    _ => Verdict::Expired,
                });
            };
            if row.channel != "voice" {
                // waits for a code the application will send: nothing to wait for here
                return Ok(Verdict::Pending);
            }
            match self
                .security
                .store
                .code_call_result(&row.code_id)
                .await?
                .as_deref()
            {
                Some("approve") => {
                    // the approved call is the factor: spent through the portal's own check
                    let app = &Self::answering(app, &row);
                    let actor = self.actor(app, user.clone());
                    let result = self
                        .security
                        .mfa_code(&actor, &row.method_id, "", None, false, now)
                        .await
                        .map(|_| ());
                    return self.settle(app, &row, &user, result).await;
                }
                Some("deny") => {
                    let app = &Self::answering(app, &row);
                    let declined = Err(DomainError::Refused(ErrorCode::CallDeclined));
                    return self.settle(app, &row, &user, declined).await;
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Verdict::Pending);
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
}
