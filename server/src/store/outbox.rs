//! The durable outbox: messages written in the same transaction as the change that caused them,
//! claimed by one worker at a time (a lease that expires if the worker dies), retried with
//! backoff, dead-lettered after N attempts.

use super::{Dialect, Store, StoreError};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: String,
    pub channel: String,
    pub recipient: String,
    pub message: String,
    pub user_id: Option<String>,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub struct NewOutboxMessage<'a> {
    pub id: &'a str,
    pub channel: &'a str,
    pub recipient: &'a str,
    pub message: &'a str,
    pub user_id: Option<&'a str>,
    pub payload: &'a str,
}

const COLUMNS: &str =
    "id, channel, recipient, message, user_id, payload, status, attempts, next_attempt_at, last_error, created_at, sent_at";

pub async fn insert_outbox_in(
    conn: &mut AnyConnection,
    m: &NewOutboxMessage<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (id, channel, recipient, message, user_id, payload, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)",
    )
    .bind(m.id)
    .bind(m.channel)
    .bind(m.recipient)
    .bind(m.message)
    .bind(m.user_id)
    .bind(m.payload)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn row(r: &sqlx::any::AnyRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        channel: r.try_get("channel")?,
        recipient: r.try_get("recipient")?,
        message: r.try_get("message")?,
        user_id: r.try_get("user_id")?,
        payload: r.try_get("payload")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

impl Store {
    pub async fn insert_outbox(
        &self,
        m: &NewOutboxMessage<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_outbox_in(&mut conn, m, now).await
    }

    /// Claims up to `limit` due messages for `worker` until `now + lease`. Safe with several
    /// instances: a row is only claimed when unclaimed (or its lease expired), and PostgreSQL
    /// re-checks that condition on the locked row, so two workers never claim the same message.
    pub async fn claim_outbox(
        &self,
        worker: &str,
        now: i64,
        lease: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lock = if self.dialect() == Dialect::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1 \
             WHERE status = 'pending' AND next_attempt_at <= $3 \
               AND (claimed_until IS NULL OR claimed_until < $3) \
               AND id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
                          AND (claimed_until IS NULL OR claimed_until < $3) \
                          ORDER BY next_attempt_at, created_at LIMIT $4{lock}) \
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(now + lease)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(row).collect()
    }

    /// Marks a claimed message sent and forgets its content. False if the claim was lost.
    pub async fn outbox_sent(&self, id: &str, worker: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $1, payload = '', claimed_by = NULL, claimed_until = NULL, \
             last_error = NULL WHERE id = $2 AND claimed_by = $3",
        )
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a failed attempt: retry at `retry_at`, or dead-letter when `dead`.
    pub async fn outbox_failed(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        retry_at: i64,
        dead: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL \
             WHERE id = $4 AND claimed_by = $5",
        )
        .bind(if dead { "dead" } else { "pending" })
        .bind(retry_at)
        .bind(error.chars().take(500).collect::<String>())
        .bind(id)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Newest first; `status` filters (pending, sent, dead).
    pub async fn list_outbox(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY created_at DESC, id LIMIT $2"
        ))
        .bind(status.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row).collect()
    }

    pub async fn outbox_message(&self, id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM outbox WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        r.as_ref().map(row).transpose()
    }

    /// Puts dead-lettered messages back in the queue (all, or one id). Returns how many.
    pub async fn retry_dead(&self, id: Option<&str>, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, last_error = NULL \
             WHERE status = 'dead' AND ($2 = '' OR id = $2)",
        )
        .bind(now)
        .bind(id.unwrap_or(""))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// When the oldest message still waiting to be sent was queued.
    pub async fn oldest_pending_outbox(&self) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT MIN(created_at) AS t FROM outbox WHERE status = 'pending'")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get::<Option<i64>, _>("t")?)
    }

    pub async fn count_outbox(&self, status: &str) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = $1")
            .bind(status)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get("n")?)
    }

    /// The dev transport's mailbox.
    pub async fn insert_dev_message(
        &self,
        channel: &str,
        recipient: &str,
        subject: &str,
        body: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dev_messages (id, channel, recipient, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(channel)
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// (channel, recipient, subject, body, created_at), newest first.
    pub async fn dev_messages(
        &self,
        limit: u32,
    ) -> Result<Vec<(String, String, String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel, recipient, subject, body, created_at FROM dev_messages ORDER BY created_at DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("channel")?,
                    r.try_get("recipient")?,
                    r.try_get("subject")?,
                    r.try_get("body")?,
                    r.try_get("created_at")?,
                ))
            })
            .collect()
    }

    /// Stores a "This wasn't me" token (its hash).
    pub async fn insert_report_token_in(
        conn: &mut AnyConnection,
        token_hash: &str,
        user_id: &str,
        message: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO report_tokens (token_hash, user_id, message, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(message)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// (user_id, message) behind an unused, unexpired token.
    pub async fn find_report_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        let r = sqlx::query(
            "SELECT user_id, message FROM report_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| Ok((r.try_get("user_id")?, r.try_get("message")?)))
            .transpose()
    }

    /// Uses a token once: true only for the first caller.
    pub async fn use_report_token(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE report_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records the gateway's answer for a call; false when one was already recorded.
    pub async fn insert_voice_result(
        &self,
        outbox_id: &str,
        result: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO voice_results (outbox_id, result, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (outbox_id) DO NOTHING",
        )
        .bind(outbox_id)
        .bind(result)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The answer to a call, if the gateway reported one.
    pub async fn voice_result(&self, outbox_id: &str) -> Result<Option<String>, StoreError> {
        let r = sqlx::query("SELECT result FROM voice_results WHERE outbox_id = $1")
            .bind(outbox_id)
            .fetch_optional(self.pool())
            .await?;
        r.map(|r| Ok(r.try_get("result")?)).transpose()
    }
}
