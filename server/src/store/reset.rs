//! Password-reset flows (see `domain::flows::reset`).

use super::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetFlowRow {
    pub id: String,
    pub token_hash: String,
    /// None: the name typed was unknown or cannot reset here (decoy flow).
    pub user_id: Option<String>,
    pub subject: String,
    pub purpose: String,
    pub gates_required: i64,
    /// Method ids proven so far.
    pub passed: Vec<String>,
    /// Indexes of the security questions this flow asks.
    pub questions: Vec<usize>,
    pub failures: i64,
    pub client_ip: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: i64,
}

/// A password write to the directory under way (`password` sealed with the instance key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writeback {
    pub flow_id: String,
    pub user_id: String,
    pub password: String,
    pub client_ip: String,
    pub user_agent: String,
    pub started_at: i64,
}

const COLUMNS: &str =
    "id, token_hash, user_id, subject, purpose, gates_required, passed, questions, \
     failures, client_ip, created_at, expires_at, finished_at";

fn from_row(r: &AnyRow) -> Result<ResetFlowRow, StoreError> {
    let passed: String = r.try_get("passed")?;
    let questions: String = r.try_get("questions")?;
    Ok(ResetFlowRow {
        id: r.try_get("id")?,
        token_hash: r.try_get("token_hash")?,
        user_id: r.try_get("user_id")?,
        subject: r.try_get("subject")?,
        purpose: r.try_get("purpose")?,
        gates_required: r.try_get("gates_required")?,
        passed: passed
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        questions: serde_json::from_str(&questions).unwrap_or_default(),
        failures: r.try_get("failures")?,
        client_ip: r.try_get("client_ip")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Store {
    pub async fn insert_reset_flow(&self, f: &ResetFlowRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO reset_flows ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&f.id)
        .bind(&f.token_hash)
        .bind(f.user_id.as_deref())
        .bind(&f.subject)
        .bind(&f.purpose)
        .bind(f.gates_required)
        .bind(f.passed.join(","))
        .bind(serde_json::to_string(&f.questions).unwrap_or_default())
        .bind(f.failures)
        .bind(&f.client_ip)
        .bind(f.created_at)
        .bind(f.expires_at)
        .bind(f.finished_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The open flow behind a cookie: not expired, not finished.
    pub async fn reset_flow(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<ResetFlowRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reset_flows WHERE token_hash = $1 AND expires_at > $2 AND finished_at = 0"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn reset_flow_by_id(&self, id: &str) -> Result<Option<ResetFlowRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM reset_flows WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Adds a proven method, unless it is already there (compare-and-set on the old list, so
    /// two requests racing cannot both count).
    pub async fn reset_gate_passed(
        &self,
        f: &ResetFlowRow,
        method_id: &str,
    ) -> Result<bool, StoreError> {
        if f.passed.iter().any(|p| p == method_id) {
            return Ok(false);
        }
        let mut passed = f.passed.clone();
        passed.push(method_id.to_string());
        let r = sqlx::query(
            "UPDATE reset_flows SET passed = $1 WHERE id = $2 AND passed = $3 AND finished_at = 0",
        )
        .bind(passed.join(","))
        .bind(&f.id)
        .bind(f.passed.join(","))
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn reset_set_questions(&self, id: &str, q: &[usize]) -> Result<(), StoreError> {
        sqlx::query("UPDATE reset_flows SET questions = $1 WHERE id = $2")
            .bind(serde_json::to_string(q).unwrap_or_default())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Counts a wrong answer in this flow; returns the new count.
    pub async fn reset_flow_failure(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE reset_flows SET failures = failures + 1 WHERE id = $1 RETURNING failures",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
    }

    /// Hands the flow to a new cookie (the emailed link opened, maybe in another browser).
    pub async fn reset_rotate_token(&self, id: &str, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE reset_flows SET token_hash = $1 WHERE id = $2")
            .bind(token_hash)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Claims the flow for completion: true for exactly one caller.
    pub async fn reset_claim(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool().acquire().await?;
        reset_claim_in(&mut conn, id, now).await
    }

    /// Gives a claimed flow back (the directory refused the password; the user may try again).
    pub async fn reset_release(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        reset_release_in(&mut conn, id).await
    }

    /// Claims the flow (as [`Store::reset_claim`]) and records the directory write about to
    /// happen, in one transaction: a crash after the write leaves the record for
    /// [`Store::writebacks_before`]. False when the flow was already claimed or expired.
    pub async fn reset_claim_for_writeback(&self, w: &Writeback) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !reset_claim_in(&mut tx, &w.flow_id, w.started_at).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO password_writebacks (flow_id, user_id, password, client_ip, user_agent, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&w.flow_id)
        .bind(&w.user_id)
        .bind(&w.password)
        .bind(&w.client_ip)
        .bind(&w.user_agent)
        .bind(w.started_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The directory did not take the password: the record goes and the flow is given back.
    pub async fn writeback_abandon(&self, flow_id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM password_writebacks WHERE flow_id = $1")
            .bind(flow_id)
            .execute(&mut *tx)
            .await?;
        reset_release_in(&mut tx, flow_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes a left-over write for settling: moves its time to `now`, so no other instance takes
    /// it meanwhile (and, left unsettled, it comes back after the settling time). False when
    /// another instance took it first.
    pub async fn writeback_take(&self, w: &Writeback, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE password_writebacks SET started_at = $1 WHERE flow_id = $2 AND started_at = $3",
        )
        .bind(now)
        .bind(&w.flow_id)
        .bind(w.started_at)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Directory writes recorded before `cutoff` and never completed (a stopped instance).
    pub async fn writebacks_before(&self, cutoff: i64) -> Result<Vec<Writeback>, StoreError> {
        let rows = sqlx::query(
            "SELECT flow_id, user_id, password, client_ip, user_agent, started_at \
             FROM password_writebacks WHERE started_at < $1 ORDER BY started_at LIMIT 100",
        )
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Writeback {
                    flow_id: r.try_get("flow_id")?,
                    user_id: r.try_get("user_id")?,
                    password: r.try_get("password")?,
                    client_ip: r.try_get("client_ip")?,
                    user_agent: r.try_get("user_agent")?,
                    started_at: r.try_get("started_at")?,
                })
            })
            .collect()
    }

    /// After a successful reset or unlock, in the caller's transaction: ends every other open
    /// flow of the user and their pending reset codes and links; with `signed_out`, every session
    /// of the user too; and unlocks the account (`lock_scope` is the sign-in throttle's).
    pub async fn reset_complete_in(
        conn: &mut sqlx::AnyConnection,
        user_id: &str,
        flow_id: &str,
        lock_scope: (&str, &str),
        signed_out: bool,
        now: i64,
    ) -> Result<u64, StoreError> {
        sqlx::query(
            "UPDATE reset_flows SET finished_at = $1 WHERE user_id = $2 AND id <> $3 AND finished_at = 0",
        )
        .bind(now)
        .bind(user_id)
        .bind(flow_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE codes SET used_at = $1 WHERE user_id = $2 AND purpose IN ('reset', 'reset_link') AND used_at = 0",
        )
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE users SET locked_at = NULL WHERE id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM throttle_buckets WHERE scope = $1 AND subject = $2")
            .bind(lock_scope.0)
            .bind(lock_scope.1)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM password_writebacks WHERE flow_id = $1")
            .bind(flow_id)
            .execute(&mut *conn)
            .await?;
        let mut ended = 0;
        if signed_out {
            ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(ended)
    }

    /// The open reset-link code with this HMAC, if any: (code id, user id, flow id, method id).
    pub async fn reset_link_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Option<(String, String, String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, target, channel FROM codes WHERE purpose = 'reset_link' AND code_hash = $1 \
             AND used_at = 0 AND expires_at > $2",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| -> Result<_, StoreError> {
            Ok((
                r.try_get("id")?,
                r.try_get("user_id")?,
                r.try_get("target")?,
                r.try_get("channel")?,
            ))
        })
        .transpose()
    }

    /// Deletes flows that ended more than a day ago.
    pub async fn sweep_reset_flows(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM reset_flows WHERE expires_at < $1")
            .bind(now - 86_400)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}

/// What a decoy reset flow's pretend code would answer (see `decoy_codes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoyCode {
    pub failures: i64,
    pub expires_at: i64,
    pub voice: bool,
}

impl Store {
    /// A decoy flow "sends" a code: like `put_code`, a recent unexpired one keeps its failures.
    /// Returns the failures so far.
    pub async fn put_decoy_code(
        &self,
        target: &str,
        channel: &str,
        now: i64,
        ttl: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO decoy_codes (target, channel, failures, created_at, expires_at) VALUES ($1, $4, 0, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET channel = $4, \
               failures = CASE WHEN decoy_codes.created_at < $2 - 3600 THEN 0 ELSE decoy_codes.failures END, \
               created_at = CASE WHEN decoy_codes.created_at < $2 - 3600 THEN $2 ELSE decoy_codes.created_at END, \
               expires_at = $3 \
             RETURNING failures",
        )
        .bind(target)
        .bind(now)
        .bind(now + ttl)
        .bind(channel)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("failures")?)
    }

    pub async fn decoy_code(&self, target: &str) -> Result<Option<DecoyCode>, StoreError> {
        let row =
            sqlx::query("SELECT failures, expires_at, channel FROM decoy_codes WHERE target = $1")
                .bind(target)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| {
            Ok(DecoyCode {
                failures: r.try_get("failures")?,
                expires_at: r.try_get("expires_at")?,
                voice: r.try_get::<String, _>("channel")? == "voice",
            })
        })
        .transpose()
    }

    pub async fn decoy_code_failure(&self, target: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE decoy_codes SET failures = failures + 1 WHERE target = $1")
            .bind(target)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Claims an open, unexpired flow for its final step (false: claimed already, or expired).
async fn reset_claim_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE reset_flows SET finished_at = $1 WHERE id = $2 AND finished_at = 0 AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Gives a claimed flow back.
async fn reset_release_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE reset_flows SET finished_at = 0 WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
