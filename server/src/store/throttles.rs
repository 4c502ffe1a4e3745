//! Leaky buckets for guessable input (docs/throttling.md). Taking an attempt is ONE statement
//! (`INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING`) that checks the bucket and counts the
//! attempt together, so a parallel burst gets no more tries than a sequential one; a refused
//! attempt changes nothing (it never extends a window). The same SQL runs on SQLite and
//! PostgreSQL.
//!
//! Also the proof-of-work replay marks of the reset page (`throttles`, `record_failure`).

use super::{Store, StoreError};
use crate::domain::policy::Bucket;
use sqlx::Row;

/// An in-flight mark older than this is stale (a crashed request) and no longer counts.
pub const IN_FLIGHT_LEASE_SECONDS: i64 = 60;

/// One bucket as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub tat: i64,
    pub last_at: i64,
    pub consecutive: i64,
    pub in_flight: i64,
    pub in_flight_at: i64,
}

impl Throttle {
    /// Failures still remembered at `now` (one forgotten every `leak` seconds).
    pub fn remembered(&self, leak: i64, now: i64) -> u32 {
        let leak = leak.max(1);
        if self.tat <= now {
            return 0;
        }
        u32::try_from((self.tat - now + leak - 1) / leak).unwrap_or(u32::MAX)
    }

    /// Would an attempt at `now` be refused (the same rule as [`Store::take_attempt`])?
    pub fn refuses(&self, b: &Bucket, now: i64) -> bool {
        let busy = self.in_flight >= i64::from(b.max_in_flight)
            && self.in_flight_at >= now - IN_FLIGHT_LEASE_SECONDS;
        let waiting = match b.delay_after(self.remembered(b.leak_seconds, now)) {
            Some(0) => false,
            Some(d) => now < self.last_at + d,
            None => true,
        };
        busy || waiting
    }
}

/// What a counted attempt saw, after counting itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Remembered failures including this attempt.
    pub failures: u32,
    /// Consecutive attempts since the last success, including this one.
    pub consecutive: u32,
}

/// How an attempt ends for one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// It failed: the count stays; the in-flight mark goes.
    Failed,
    /// It never happened (refused elsewhere, not a guess) or succeeded for a shared bucket
    /// (a client address): the count is taken back.
    Undo,
    /// It succeeded: the bucket forgets every failure.
    Clear,
}

/// The SQL condition "this bucket lets an attempt through at $3" (`f` = remembered failures).
/// Only integers from the policy are written into it.
fn allows_sql(b: &Bucket) -> String {
    let f = "(CASE WHEN throttle_buckets.tat > $3 THEN (throttle_buckets.tat - $3 + $4 - 1) / $4 ELSE 0 END)";
    let free = i64::from(b.free.max(1));
    if b.base_delay_seconds <= 0 {
        return format!("{f} < {free}");
    }
    let mut sql = format!("({f} < {free} OR $3 >= throttle_buckets.last_at + CASE");
    let (mut delay, mut k) = (b.base_delay_seconds, 0);
    while delay < b.max_delay_seconds && k < 30 {
        sql.push_str(&format!(" WHEN {f} < {} THEN {delay}", free + k + 1));
        delay = delay.saturating_mul(2);
        k += 1;
    }
    sql.push_str(&format!(
        " ELSE {} END)",
        b.max_delay_seconds.max(b.base_delay_seconds)
    ));
    sql
}

impl Store {
    /// Counts an attempt in (`scope`, `subject`) when the bucket lets it through, in one
    /// statement; `None` when it is refused (and then nothing changed).
    pub async fn take_attempt(
        &self,
        scope: &str,
        subject: &str,
        b: &Bucket,
        now: i64,
    ) -> Result<Option<Taken>, StoreError> {
        let sql = format!(
            "INSERT INTO throttle_buckets (scope, subject, tat, last_at, consecutive, in_flight, in_flight_at) \
             VALUES ($1, $2, $3 + $4, $3, 1, 1, $3) \
             ON CONFLICT (scope, subject) DO UPDATE SET \
               tat = (CASE WHEN throttle_buckets.tat > $3 THEN throttle_buckets.tat ELSE $3 END) + $4, \
               last_at = $3, \
               consecutive = throttle_buckets.consecutive + 1, \
               in_flight = (CASE WHEN throttle_buckets.in_flight_at < $3 - $6 THEN 0 ELSE throttle_buckets.in_flight END) + 1, \
               in_flight_at = $3 \
             WHERE (throttle_buckets.in_flight < $5 OR throttle_buckets.in_flight_at < $3 - $6) \
               AND {} \
             RETURNING tat, consecutive",
            allows_sql(b)
        );
        let leak = b.leak_seconds.max(1);
        let row = sqlx::query(&sql)
            .bind(scope)
            .bind(subject)
            .bind(now)
            .bind(leak)
            .bind(i64::from(b.max_in_flight.max(1)))
            .bind(IN_FLIGHT_LEASE_SECONDS)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let tat: i64 = r.try_get("tat")?;
            let consecutive: i64 = r.try_get("consecutive")?;
            Ok(Taken {
                failures: u32::try_from((tat - now + leak - 1) / leak).unwrap_or(u32::MAX),
                consecutive: u32::try_from(consecutive).unwrap_or(u32::MAX),
            })
        })
        .transpose()
    }

    /// Ends a counted attempt for one bucket.
    pub async fn settle_attempt(
        &self,
        scope: &str,
        subject: &str,
        b: &Bucket,
        how: Settle,
    ) -> Result<(), StoreError> {
        let set = match how {
            Settle::Failed => "",
            Settle::Undo => {
                "tat = tat - $3, consecutive = CASE WHEN consecutive > 0 THEN consecutive - 1 ELSE 0 END, "
            }
            Settle::Clear => "tat = 0, consecutive = 0, ",
        };
        let sql = format!(
            "UPDATE throttle_buckets SET {set}in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
             WHERE scope = $1 AND subject = $2 AND $3 > 0"
        );
        sqlx::query(&sql)
            .bind(scope)
            .bind(subject)
            .bind(b.leak_seconds.max(1))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// One bucket, for status displays (never for deciding an attempt: use `take_attempt`).
    pub async fn throttle(
        &self,
        scope: &str,
        subject: &str,
    ) -> Result<Option<Throttle>, StoreError> {
        let row = sqlx::query(
            "SELECT tat, last_at, consecutive, in_flight, in_flight_at FROM throttle_buckets \
             WHERE scope = $1 AND subject = $2",
        )
        .bind(scope)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Throttle {
                tat: r.try_get("tat")?,
                last_at: r.try_get("last_at")?,
                consecutive: r.try_get("consecutive")?,
                in_flight: r.try_get("in_flight")?,
                in_flight_at: r.try_get("in_flight_at")?,
            })
        })
        .transpose()
    }

    /// Forgets a bucket (an unlock).
    pub async fn clear_throttle(&self, scope: &str, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle_buckets WHERE scope = $1 AND subject = $2")
            .bind(scope)
            .bind(subject)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Proof-of-work replay marks: counts one use of `subject` and returns the count (a
    /// previous mark older than `window_start` starts afresh).
    pub async fn record_failure(
        &self,
        scope: &str,
        subject: &str,
        now: i64,
        window_start: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO throttles (scope, subject, failures, last_failure_at, blocked_until) \
             VALUES ($1, $2, 1, $3, 0) \
             ON CONFLICT (scope, subject) DO UPDATE SET \
               failures = CASE WHEN throttles.last_failure_at < $4 THEN 1 ELSE throttles.failures + 1 END, \
               last_failure_at = $3 \
             RETURNING failures",
        )
        .bind(scope)
        .bind(subject)
        .bind(now)
        .bind(window_start)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("failures")?)
    }
}
