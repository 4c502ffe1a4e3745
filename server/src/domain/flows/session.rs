//! Sessions: random 256-bit tokens in an HttpOnly cookie; only their SHA-256 is stored.
//! Idle and absolute timeouts are checked on every use; expired sessions are deleted.

use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::policy::SessionPolicy;
use crate::domain::users::User;
use crate::store::{SessionRow, Store};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Don't write `last_seen_at` more often than this (one write a minute per active session).
const TOUCH_INTERVAL_SECONDS: i64 = 60;

/// A new session token (cookie value) and the hash that is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Who the client is, for sessions and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
    /// The device cookie the browser sent (sign-in's lockout protection), if any.
    pub device: Option<String>,
}

/// A privilege change (a second factor proven: sign-in, step-up, Temporary Access Pass, a new
/// method proven in place): the session gets a NEW id — whoever knew the old cookie (a fixed or
/// leaked one) holds nothing — and is marked fully signed in with a fresh second factor. Returns
/// the new cookie value (None when there was no such session).
pub async fn promote_in(
    conn: &mut sqlx::AnyConnection,
    old_hash: &str,
    now: i64,
) -> Result<Option<String>, crate::store::StoreError> {
    if old_hash.is_empty() {
        return Ok(None);
    }
    let (token, hash) = new_token();
    let moved = crate::store::sessions::rotate_in(conn, old_hash, &hash).await?;
    if !moved {
        return Ok(None);
    }
    crate::store::sessions::mark_mfa_in(conn, &hash, now).await?;
    Ok(Some(token))
}

/// A session waiting for its second factor lives at most this long.
pub const MFA_PENDING_SECONDS: i64 = 600;

/// Creates a session inside the caller's transaction; returns the cookie value. With
/// `mfa_pending` the session is only good for proving a second factor.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    user: &User,
    client: &Client,
    policy: &SessionPolicy,
    mfa_pending: bool,
    now: i64,
) -> Result<String, DomainError> {
    let (token, id_hash) = new_token();
    crate::store::sessions::insert_session_in(
        conn,
        &SessionRow {
            id_hash,
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + policy.absolute_timeout_seconds,
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            stage: if mfa_pending { "mfa" } else { "full" }.into(),
            mfa_at: 0,
        },
    )
    .await?;
    Ok(token)
}

/// The user behind a session token, and the session, if it is still valid (and the user may
/// still sign in). Expired sessions are removed and audited.
pub async fn resolve(
    store: &Store,
    token: &str,
    policy: &SessionPolicy,
    now: i64,
) -> Result<Option<(User, SessionRow)>, DomainError> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let id_hash = hash_token(token);
    let Some(session) = store.find_session(&id_hash).await? else {
        return Ok(None);
    };
    let idle_expired = now - session.last_seen_at >= policy.idle_timeout_seconds;
    let absolute_expired = now >= session.expires_at
        || (session.stage == "mfa" && now - session.created_at >= MFA_PENDING_SECONDS);
    if idle_expired || absolute_expired {
        if store.delete_session(&id_hash).await? {
            let mut e = AuditEntry::new(event::SESSION_EXPIRED, true, now);
            e.user_id = Some(session.user_id.clone());
            e.reason = Some(
                if absolute_expired {
                    "absolute_timeout"
                } else {
                    "idle_timeout"
                }
                .into(),
            );
            e.client_ip = Some(session.client_ip);
            e.user_agent = Some(session.user_agent);
            store.append_audit(&e).await?;
        }
        return Ok(None);
    }
    let Some(user) = store.find_user(&session.user_id).await? else {
        store.delete_session(&id_hash).await?;
        return Ok(None);
    };
    if !user.enabled || user.locked_at.is_some() || user.is_blocked(now) {
        store.delete_session(&id_hash).await?;
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_INTERVAL_SECONDS {
        store.touch_session(&id_hash, now).await?;
    }
    Ok(Some((user, session)))
}

/// Ends the session behind `token` (if any) and audits the sign-out.
pub async fn end(store: &Store, token: &str, client: &Client, now: i64) -> Result<(), DomainError> {
    let id_hash = hash_token(token);
    if let Some(session) = store.find_session(&id_hash).await? {
        store.delete_session(&id_hash).await?;
        let mut e = AuditEntry::new(event::SIGNOUT, true, now);
        e.user_id = Some(session.user_id);
        e.client_ip = Some(client.ip.clone());
        e.user_agent = Some(client.user_agent.clone());
        store.append_audit(&e).await?;
    }
    Ok(())
}
