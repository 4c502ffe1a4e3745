//! Retention: the one sweep that removes what is kept no longer (docs/privacy.md), and the
//! lease that lets one instance of several run it.

use super::{Store, StoreError};
use crate::domain::policy::RetentionPolicy;
use sqlx::Row;

/// What one sweep removed or rewrote, per kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    pub audit_deleted: u64,
    pub audit_pseudonymised: u64,
    pub throttles: u64,
    pub outbox_sent: u64,
    pub outbox_dead: u64,
    pub report_tokens: u64,
    pub sync_runs: u64,
    pub dev_messages: u64,
}

impl Swept {
    /// `(kind, count)` for metrics and logs, in a stable order.
    pub fn counts(&self) -> [(&'static str, u64); 8] {
        [
            ("audit_deleted", self.audit_deleted),
            ("audit_pseudonymised", self.audit_pseudonymised),
            ("throttles", self.throttles),
            ("outbox_sent", self.outbox_sent),
            ("outbox_dead", self.outbox_dead),
            ("report_tokens", self.report_tokens),
            ("sync_runs", self.sync_runs),
            ("dev_messages", self.dev_messages),
        ]
    }
}

/// A pseudonym already written by the sweep starts with this (a client address never does).
pub const PSEUDONYM_PREFIX: &str = "~";

/// How long a sent call's row (and its answer) outlive the other sent messages: the gateway
/// reports the answer to it.
const CALL_ANSWER_SECONDS: i64 = 3600;

/// Audit rows rewritten per statement batch (the sweep never holds the write lock for long).
const BATCH: i64 = 500;

impl Store {
    /// Takes (or renews) the lease `name` for `holder` until `now + seconds`: true when this
    /// holder has it. One statement, so two instances never both get it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        seconds: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.until < $4 OR leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + seconds)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives the lease `name` up (when `holder` has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE leases SET until = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes and pseudonymises what `policy` no longer keeps. `pseudonym` maps a client
    /// address or browser to its keyed hash. Audit rows are changed only inside transactions
    /// that hold the retention gate (the schema refuses any other UPDATE or DELETE).
    pub async fn sweep_retention(
        &self,
        policy: &RetentionPolicy,
        now: i64,
        pseudonym: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Swept, StoreError> {
        let mut out = Swept::default();
        type Slot = Option<fn(&mut Swept) -> &mut u64>;
        let p = policy;
        let rules: [(&str, i64, Slot); 9] = [
            (
                "DELETE FROM throttle_buckets WHERE last_at <= $1 AND tat <= $1 AND in_flight_at <= $1",
                p.throttle_seconds,
                Some(|s| &mut s.throttles),
            ),
            (
                "DELETE FROM throttles WHERE last_failure_at <= $1 AND blocked_until <= $1",
                p.throttle_seconds,
                Some(|s| &mut s.throttles),
            ),
            (
                "DELETE FROM outbox WHERE status = 'sent' AND sent_at <= $1 AND channel <> 'voice'",
                p.sent_seconds,
                Some(|s| &mut s.outbox_sent),
            ),
            // a call's row is what its answer is matched to: kept longer
            (
                "DELETE FROM outbox WHERE status = 'sent' AND sent_at <= $1 AND channel = 'voice'",
                p.sent_seconds + CALL_ANSWER_SECONDS,
                Some(|s| &mut s.outbox_sent),
            ),
            (
                "DELETE FROM voice_results WHERE received_at <= $1",
                p.sent_seconds + CALL_ANSWER_SECONDS,
                None,
            ),
            (
                "DELETE FROM outbox WHERE status = 'dead' AND next_attempt_at <= $1",
                p.dead_seconds,
                Some(|s| &mut s.outbox_dead),
            ),
            (
                "DELETE FROM report_tokens WHERE expires_at <= $1",
                p.report_token_seconds,
                Some(|s| &mut s.report_tokens),
            ),
            (
                "DELETE FROM sync_runs WHERE status <> 'running' AND started_at <= $1",
                p.sync_run_seconds,
                Some(|s| &mut s.sync_runs),
            ),
            (
                "DELETE FROM dev_messages WHERE created_at <= $1",
                p.dev_message_seconds,
                Some(|s| &mut s.dev_messages),
            ),
        ];
        for (sql, keep, slot) in rules {
            let n = sqlx::query(sql)
                .bind(now - keep)
                .execute(self.pool())
                .await?
                .rows_affected();
            if let Some(slot) = slot {
                *slot(&mut out) += n;
            }
        }
        let mut tx = self.begin().await?;
        open_gate(&mut tx).await?;
        out.audit_deleted = sqlx::query("DELETE FROM audit_events WHERE at <= $1")
            .bind(now - policy.audit_seconds)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        close_gate(tx).await?;
        loop {
            let mut tx = self.begin().await?;
            open_gate(&mut tx).await?;
            let n = pseudonymise_batch(&mut tx, now - policy.audit_pseudonymise_seconds, pseudonym)
                .await?;
            close_gate(tx).await?;
            out.audit_pseudonymised += n;
            if n < BATCH as u64 {
                break;
            }
        }
        Ok(out)
    }
}

/// Lets this transaction change audit rows (the triggers look for the gate row).
async fn open_gate(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO retention_gate (id) VALUES (1)")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Removes the gate row again and commits: no other transaction ever sees it.
async fn close_gate(mut tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM retention_gate")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces the client address and browser of up to [`BATCH`] audit rows older than `before`
/// with pseudonyms.
async fn pseudonymise_batch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    before: i64,
    pseudonym: &(dyn Fn(&str) -> String + Sync),
) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT id, client_ip, user_agent FROM audit_events WHERE at <= $1 \
         AND ((client_ip IS NOT NULL AND client_ip NOT LIKE $3) \
           OR (user_agent IS NOT NULL AND user_agent NOT LIKE $3)) \
         ORDER BY id LIMIT $2",
    )
    .bind(before)
    .bind(BATCH)
    .bind(format!("{PSEUDONYM_PREFIX}%"))
    .fetch_all(&mut **tx)
    .await?;
    let rewrite = |v: Option<String>| {
        v.map(|v| {
            if v.starts_with(PSEUDONYM_PREFIX) {
                v
            } else {
                format!("{PSEUDONYM_PREFIX}{}", pseudonym(&v))
            }
        })
    };
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let ip: Option<String> = r.try_get("client_ip")?;
        let agent: Option<String> = r.try_get("user_agent")?;
        sqlx::query("UPDATE audit_events SET client_ip = $1, user_agent = $2 WHERE id = $3")
            .bind(rewrite(ip))
            .bind(rewrite(agent))
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(rows.len() as u64)
}
