//! The REST API's rows: service tokens, application MFA challenges, idempotency keys, and the
//! keyset-paged reads its lists use (users, audit).

use super::audit::{audit_from_row, AUDIT_COLUMNS};
use super::users::USER_COLUMNS;
use super::{Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::users::User;
use sqlx::Row;

/// A service token as stored (never the token itself: `token_hash` is its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    /// Comma-separated scopes.
    pub scopes: String,
    /// Comma-separated CIDRs; empty: from anywhere.
    pub allowed_from: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: i64,
    pub revoked_at: i64,
}

const TOKEN_COLUMNS: &str =
    "id, name, token_hash, scopes, allowed_from, created_at, expires_at, last_used_at, revoked_at";

fn token_from_row(r: &sqlx::any::AnyRow) -> Result<TokenRow, StoreError> {
    Ok(TokenRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        token_hash: r.try_get("token_hash")?,
        scopes: r.try_get("scopes")?,
        allowed_from: r.try_get("allowed_from")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// An application's MFA challenge (`id_hash`: HMAC of the id the application holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiChallengeRow {
    pub id_hash: String,
    pub token_id: String,
    pub user_id: String,
    pub method_id: String,
    pub channel: String,
    pub code_id: String,
    /// The end user's address as the application gave it ('' when it did not).
    pub client_ip: String,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What an idempotency key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// First use: the caller runs the request and records its answer.
    New,
    /// The same key with the same body: the first answer (status, sealed body).
    Replay(u16, String),
    /// The same key while the first request still runs.
    InProgress,
    /// The same key with another body.
    Mismatch,
}

/// Filters of the user list (all optional; `q` matches username, name or email).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub q: Option<String>,
    pub role: Option<String>,
    pub source: Option<String>,
    pub enabled: Option<bool>,
}

/// Filters of the audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: Option<String>,
    pub username: Option<String>,
    pub actor: Option<String>,
    pub success: Option<bool>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Store {
    pub async fn insert_token(&self, t: &TokenRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(&t.scopes)
        .bind(&t.allowed_from)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.last_used_at)
        .bind(t.revoked_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn token_by_name(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Marks a token revoked (true when it was valid until now).
    pub async fn revoke_token(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at = 0")
                .bind(now)
                .bind(name)
                .execute(self.pool())
                .await?
                .rows_affected()
                == 1,
        )
    }

    /// Records a use (at most one write a minute per token).
    pub async fn touch_token(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1 - 60",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn put_api_challenge(&self, c: &ApiChallengeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_challenges (id_hash, token_id, user_id, method_id, channel, code_id, \
             client_ip, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&c.id_hash)
        .bind(&c.token_id)
        .bind(&c.user_id)
        .bind(&c.method_id)
        .bind(&c.channel)
        .bind(&c.code_id)
        .bind(&c.client_ip)
        .bind(&c.state)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The challenge `id_hash` of token `token_id` (another token's challenge is not found).
    pub async fn api_challenge(
        &self,
        id_hash: &str,
        token_id: &str,
    ) -> Result<Option<ApiChallengeRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, token_id, user_id, method_id, channel, code_id, client_ip, state, \
             created_at, expires_at FROM api_challenges WHERE id_hash = $1 AND token_id = $2",
        )
        .bind(id_hash)
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ApiChallengeRow {
                id_hash: r.try_get("id_hash")?,
                token_id: r.try_get("token_id")?,
                user_id: r.try_get("user_id")?,
                method_id: r.try_get("method_id")?,
                channel: r.try_get("channel")?,
                code_id: r.try_get("code_id")?,
                client_ip: r.try_get("client_ip")?,
                state: r.try_get("state")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends a pending challenge as `state` (one winner: false when it was no longer pending).
    pub async fn end_api_challenge(&self, id_hash: &str, state: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE api_challenges SET state = $1 WHERE id_hash = $2 AND state = 'pending'",
        )
        .bind(state)
        .bind(id_hash)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Claims an idempotency key for a request whose body hashes to `request_hash`.
    pub async fn claim_idempotency(
        &self,
        token_id: &str,
        key: &str,
        request_hash: &str,
        now: i64,
    ) -> Result<Idempotent, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO api_idempotency (token_id, idem_key, request_hash, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(token_id)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Idempotent::New);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, body_sealed FROM api_idempotency \
             WHERE token_id = $1 AND idem_key = $2",
        )
        .bind(token_id)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else {
            return Ok(Idempotent::InProgress);
        };
        let hash: String = r.try_get("request_hash")?;
        let status: i64 = r.try_get("status")?;
        Ok(if hash != request_hash {
            Idempotent::Mismatch
        } else if status == 0 {
            Idempotent::InProgress
        } else {
            Idempotent::Replay(status as u16, r.try_get("body_sealed")?)
        })
    }

    /// Records the answer of a claimed key; a failed request (`None`) frees the key.
    pub async fn finish_idempotency(
        &self,
        token_id: &str,
        key: &str,
        answer: Option<(u16, &str)>,
    ) -> Result<(), StoreError> {
        match answer {
            Some((status, body)) => {
                sqlx::query(
                    "UPDATE api_idempotency SET status = $1, body_sealed = $2 \
                     WHERE token_id = $3 AND idem_key = $4",
                )
                .bind(i64::from(status))
                .bind(body)
                .bind(token_id)
                .bind(key)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query("DELETE FROM api_idempotency WHERE token_id = $1 AND idem_key = $2")
                    .bind(token_id)
                    .bind(key)
                    .execute(self.pool())
                    .await?
            }
        };
        Ok(())
    }

    /// Users ordered by username, after `after` (keyset pagination), at most `limit`.
    pub async fn users_page(
        &self,
        filter: &UserFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let q = filter
            .q
            .as_deref()
            .map(|q| super::helpdesk::like(&q.trim().to_lowercase()))
            .unwrap_or_default();
        let enabled = match filter.enabled {
            None => -1,
            Some(b) => i64::from(b),
        };
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username > $1 \
             AND ($2 = '' OR LOWER(username) LIKE $2 ESCAPE '\\' \
                  OR LOWER(display_name) LIKE $2 ESCAPE '\\' \
                  OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\\') \
             AND ($3 = '' OR role = $3) AND ($4 = '' OR source = $4) \
             AND ($5 < 0 OR enabled = $5) \
             ORDER BY username LIMIT $6"
        ))
        .bind(after.unwrap_or(""))
        .bind(q)
        .bind(filter.role.as_deref().unwrap_or(""))
        .bind(filter.source.as_deref().unwrap_or(""))
        .bind(enabled)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            out.push(super::users::user_from_row(
                r,
                super::users::groups(&mut conn, &id).await?,
            )?);
        }
        Ok(out)
    }

    /// Audit events newest first, before the event id `before` (cursor pagination), with
    /// their ids.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let success = match filter.success {
            None => -1,
            Some(b) => i64::from(b),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, {AUDIT_COLUMNS} FROM audit_events WHERE id < $1 \
             AND ($2 = '' OR event = $2) AND ($3 = '' OR username = $3) \
             AND ($4 = '' OR actor = $4) AND ($5 < 0 OR success = $5) \
             AND at >= $6 AND at <= $7 ORDER BY id DESC LIMIT $8"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(filter.event.as_deref().unwrap_or(""))
        .bind(filter.username.as_deref().unwrap_or(""))
        .bind(filter.actor.as_deref().unwrap_or(""))
        .bind(success)
        .bind(filter.since.unwrap_or(i64::MIN))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, audit_from_row(r)?)))
            .collect()
    }
}
