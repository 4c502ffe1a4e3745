//! Sessions: looked up by the SHA-256 of the cookie value.

use super::{Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub client_ip: String,
    pub user_agent: String,
    /// `mfa` while a second factor is pending, `full` once signed in.
    pub stage: String,
    /// When the user last proved a second factor in this session (0: never).
    pub mfa_at: i64,
}

/// Inserts inside a caller's transaction.
pub async fn insert_session_in(
    conn: &mut sqlx::AnyConnection,
    s: &SessionRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent, stage, mfa_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.id_hash)
    .bind(&s.user_id)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(&s.client_ip)
    .bind(&s.user_agent)
    .bind(&s.stage)
    .bind(s.mfa_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes inside a caller's transaction.
pub async fn delete_session_in(
    conn: &mut sqlx::AnyConnection,
    id_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records a proven second factor on a session inside a caller's transaction.
/// Ends every session of a user in the caller's transaction; returns how many.
pub async fn delete_user_sessions_in(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// Gives a session a new id (its hash), keeping everything else.
pub async fn rotate_in(
    conn: &mut sqlx::AnyConnection,
    old_hash: &str,
    new_hash: &str,
) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE sessions SET id_hash = $1 WHERE id_hash = $2")
        .bind(new_hash)
        .bind(old_hash)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn mark_mfa_in(
    conn: &mut sqlx::AnyConnection,
    id_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query("UPDATE sessions SET stage = 'full', mfa_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_session_in(&mut conn, s).await
    }

    pub async fn find_session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent, \
             stage, mfa_at FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                id_hash: r.try_get("id_hash")?,
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
                client_ip: r.try_get("client_ip")?,
                user_agent: r.try_get("user_agent")?,
                stage: r.try_get("stage")?,
                mfa_at: r.try_get("mfa_at")?,
            })
        })
        .transpose()
    }

    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Returns whether a session was deleted.
    pub async fn delete_session(&self, id_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of a user (sign out everywhere, password reset, fraud).
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut conn = self.pool().acquire().await?;
        delete_user_sessions_in(&mut conn, user_id).await
    }

    pub async fn count_user_sessions(&self, user_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Removes sessions past their absolute expiry or idle for longer than `idle_seconds`.
    pub async fn delete_stale_sessions(
        &self,
        now: i64,
        idle_seconds: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now - idle_seconds)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
