//! Service tokens: created by the operator (`converge api-token create`), shown once, stored
//! as a SHA-256 (a token is 256 random bits: no slow hash needed, and it survives a key
//! rotation); scopes, expiry, revocation, last use, optional source addresses.
//!
//! Guessing is throttled per client address, counted before the lookup (a parallel burst gets
//! no more tries than a sequential one). A token this instance saw valid in the last minute is
//! no guess: it skips the count (it is still looked up, so revocation and expiry apply at once),
//! so an application's concurrent calls never fill its own address's bucket. There is no
//! per-token lock: a token cannot be guessed, and a lock would let a stranger shut an
//! application out.

use super::problem::Problem;
use super::Scope;
use crate::config::Cidr;
use crate::domain::audit::AuditEntry;
use crate::domain::flows::session::Client;
use crate::domain::flows::throttle::{self, Key};
use crate::http::AppState;
use crate::store::api::TokenRow;
use crate::store::{Store, StoreError};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use converge_app::api::ErrorCode;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "cvg_";
const SCOPE_CLIENT: &str = "api_token_client";

pub mod event {
    pub const TOKEN_CREATED: &str = "api_token_created";
    pub const TOKEN_REVOKED: &str = "api_token_revoked";
    pub const AUTH_FAILED: &str = "api_auth_failed";
    pub const SCOPE_REFUSED: &str = "api_scope_refused";
    pub const CALL: &str = "api_call";
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What `create` needs.
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub lifetime_seconds: i64,
    pub allowed_from: &'a [Cidr],
}

/// Creates a token; returns the row and the token (shown once, never stored).
pub async fn create(
    store: &Store,
    t: &NewToken<'_>,
    now: i64,
) -> Result<(TokenRow, String), String> {
    let name = t.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("a token name is 1-64 of a-z A-Z 0-9 - _ .".into());
    }
    if t.scopes.is_empty() {
        return Err("give at least one scope".into());
    }
    if !(3600..=2 * 365 * 86400).contains(&t.lifetime_seconds) {
        return Err("a token lives 1 hour to 2 years (e.g. --expires 90d)".into());
    }
    let lookup = store.token_by_name(name).await.map_err(|e| e.to_string())?;
    if lookup.is_some() {
        return Err(format!(
            "a token named `{name}` exists (revoke it, or pick another name)"
        ));
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        token_hash: hash(&token),
        scopes: t
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        allowed_from: t
            .allowed_from
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
        created_at: now,
        expires_at: now + t.lifetime_seconds,
        last_used_at: 0,
        revoked_at: 0,
    };
    store.insert_token(&row).await.map_err(|e| e.to_string())?;
    let mut e = AuditEntry::new(event::TOKEN_CREATED, true, now);
    e.actor = Some("cli".into());
    e.reason = Some(format!("{name}: {}", row.scopes));
    store.append_audit(&e).await.map_err(|e| e.to_string())?;
    Ok((row, token))
}

pub async fn revoke(store: &Store, name: &str, now: i64) -> Result<bool, StoreError> {
    let done = store.revoke_token(name, now).await?;
    if done {
        let mut e = AuditEntry::new(event::TOKEN_REVOKED, true, now);
        e.actor = Some("cli".into());
        e.reason = Some(name.into());
        store.append_audit(&e).await?;
    }
    Ok(done)
}

/// Parses `90d`, `12h`, `30m` or seconds.
pub fn parse_lifetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().ok()?;
    let k = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(k)
}

/// Hashes of tokens this instance recently found valid (bounded; entries live a minute).
#[derive(Default)]
pub struct Seen(std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>);

impl Seen {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX: usize = 10_000;

    fn contains(&self, hash: &str) -> bool {
        self.0
            .lock()
            .map(|m| m.get(hash).is_some_and(|t| t.elapsed() < Self::TTL))
            .unwrap_or(false)
    }

    fn insert(&self, hash: String) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= Self::MAX {
                m.retain(|_, t| t.elapsed() < Self::TTL);
            }
            if m.len() < Self::MAX {
                m.insert(hash, std::time::Instant::now());
            }
        }
    }

    fn forget(&self, hash: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(hash);
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub client: Client,
}

impl ApiCaller {
    /// The actor name in the audit trail.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }

    /// Refuses (403, audited) a call the token's scopes do not allow.
    pub async fn require(&self, state: &AppState, scope: Scope) -> Result<(), Problem> {
        if self.scopes.contains(&scope) {
            return Ok(());
        }
        let mut e = AuditEntry::new(event::SCOPE_REFUSED, false, state.clock.now());
        e.actor = Some(self.actor());
        e.client_ip = Some(self.client.ip.clone());
        e.user_agent = Some(self.client.user_agent.clone());
        e.reason = Some(format!("needs {}", scope.as_str()));
        state.store.append_audit(&e).await?;
        Err(Problem::refused(ErrorCode::ApiScopeMissing))
    }
}

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().chars().take(200).collect())
}

/// The presented token's row if it may be used now, else why not (the audit says; the answer is
/// the same 401) and the token's name when it exists.
fn usable(
    row: Option<TokenRow>,
    ip: &str,
    now: i64,
) -> Result<TokenRow, (Option<String>, &'static str)> {
    let Some(t) = row else {
        return Err((None, "unknown token"));
    };
    match refusal(&t, ip, now) {
        None => Ok(t),
        Some(why) => Err((Some(t.name), why)),
    }
}

fn refusal(t: &TokenRow, ip: &str, now: i64) -> Option<&'static str> {
    if t.revoked_at != 0 {
        return Some("revoked");
    }
    if t.expires_at <= now {
        return Some("expired");
    }
    if !t.allowed_from.is_empty() {
        let addr: Option<std::net::IpAddr> = ip.parse().ok();
        let allowed = addr.is_some_and(|a| {
            t.allowed_from
                .split(',')
                .filter_map(Cidr::parse)
                .any(|c| c.contains(a))
        });
        if !allowed {
            return Some("not allowed from this address");
        }
    }
    None
}

/// Establishes the caller from `Authorization: Bearer …`, then audits the call.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = state.clock.now();
    let ctx = req
        .extensions()
        .get::<converge_app::ssr::RequestCtx>()
        .cloned();
    let client = Client {
        ip: ctx
            .as_ref()
            .map(|c| c.client_ip.clone())
            .unwrap_or_default(),
        user_agent: ctx.map(|c| c.user_agent).unwrap_or_default(),
        device: None,
    };
    let Some(token) = bearer(&req) else {
        return Problem::new(StatusCode::UNAUTHORIZED, ErrorCode::ApiTokenInvalid).into_response();
    };
    let token_hash = hash(&token);
    let seen = &state.api_tokens_seen;
    // counted before the lookup unless this exact token was valid a moment ago: a full bucket
    // refuses on a read, writing nothing
    let attempt = if seen.contains(&token_hash) {
        None
    } else {
        let key = Key::shared(
            SCOPE_CLIENT,
            &client.ip,
            state.app_mfa.policy.token_failures,
        );
        match throttle::begin(&state.store, vec![key], now).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(_)) => {
                state.metrics.refused("api_token_throttled");
                return Problem::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyAttempts)
                    .into_response();
            }
            Err(e) => return Problem::from(e).into_response(),
        }
    };
    let row = match state.store.token_by_hash(&token_hash).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(a) = attempt {
                let _ = a.cancel(&state.store).await;
            }
            return Problem::from(e).into_response();
        }
    };
    let row = match usable(row, &client.ip, now) {
        Ok(row) => row,
        Err((name, why)) => {
            seen.forget(&token_hash);
            let mut e = AuditEntry::new(event::AUTH_FAILED, false, now);
            e.actor = name.map(|n| format!("api:{n}"));
            e.client_ip = Some(client.ip.clone());
            e.user_agent = Some(client.user_agent.clone());
            e.reason = Some(why.into());
            if let Some(a) = attempt {
                if let Err(err) = a.failed(&state.store).await {
                    return Problem::from(err).into_response();
                }
            }
            if let Err(err) = state.store.append_audit(&e).await {
                return Problem::from(err).into_response();
            }
            return Problem::new(StatusCode::UNAUTHORIZED, ErrorCode::ApiTokenInvalid)
                .into_response();
        }
    };
    if let Some(a) = attempt {
        if let Err(e) = a.succeeded(&state.store).await {
            return Problem::from(e).into_response();
        }
        seen.insert(token_hash);
    }
    if let Err(e) = state.store.touch_token(&row.id, now).await {
        return Problem::from(e).into_response();
    }
    let caller = ApiCaller {
        token_id: row.id.clone(),
        name: row.name.clone(),
        scopes: row.scopes.split(',').filter_map(Scope::parse).collect(),
        client,
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    req.extensions_mut().insert(caller.clone());
    let res = next.run(req).await;
    // every call, with the route (never the raw path: challenge ids live in some)
    let mut e = AuditEntry::new(event::CALL, res.status().is_success(), state.clock.now());
    e.actor = Some(caller.actor());
    e.client_ip = Some(caller.client.ip.clone());
    e.user_agent = Some(caller.client.user_agent.clone());
    e.reason = Some(format!("{method} {route} {}", res.status().as_u16()));
    if let Err(err) = state.store.append_audit(&e).await {
        tracing::error!(error = %err, "could not audit an API call");
    }
    res
}
