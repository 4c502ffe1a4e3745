//! Failure counters for guessable input (per account, per client address). Increments are single
//! atomic upserts, so concurrent instances never lose a failure.

use super::{Store, StoreError};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    pub failures: i64,
    pub last_failure_at: i64,
    pub blocked_until: i64,
}

impl Store {
    pub async fn throttle(
        &self,
        scope: &str,
        subject: &str,
    ) -> Result<Option<Throttle>, StoreError> {
        let row = sqlx::query(
            "SELECT failures, last_failure_at, blocked_until FROM throttles WHERE scope = $1 AND subject = $2",
        )
        .bind(scope)
        .bind(subject)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Throttle {
                failures: r.try_get("failures")?,
                last_failure_at: r.try_get("last_failure_at")?,
                blocked_until: r.try_get("blocked_until")?,
            })
        })
        .transpose()
    }

    /// Two throttles in one read (e.g. the account's and the client's).
    pub async fn throttle_pair(
        &self,
        a: (&str, &str),
        b: (&str, &str),
    ) -> Result<(Option<Throttle>, Option<Throttle>), StoreError> {
        let rows = sqlx::query(
            "SELECT scope, subject, failures, last_failure_at, blocked_until FROM throttles \
             WHERE (scope = $1 AND subject = $2) OR (scope = $3 AND subject = $4)",
        )
        .bind(a.0)
        .bind(a.1)
        .bind(b.0)
        .bind(b.1)
        .fetch_all(self.pool())
        .await?;
        let (mut first, mut second) = (None, None);
        for r in rows {
            let t = Throttle {
                failures: r.try_get("failures")?,
                last_failure_at: r.try_get("last_failure_at")?,
                blocked_until: r.try_get("blocked_until")?,
            };
            let (scope, subject): (String, String) = (r.try_get("scope")?, r.try_get("subject")?);
            if (scope.as_str(), subject.as_str()) == a {
                first = Some(t);
            } else if (scope.as_str(), subject.as_str()) == b {
                second = Some(t);
            }
        }
        Ok((first, second))
    }

    /// Counts one failure and returns the new count. A previous failure older than
    /// `window_start` starts the count afresh (pass `i64::MIN` for "never forget").
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

    /// Sets when the next attempt is allowed (never moves it backwards).
    pub async fn block_until(
        &self,
        scope: &str,
        subject: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE throttles SET blocked_until = $3 WHERE scope = $1 AND subject = $2 AND blocked_until < $3",
        )
        .bind(scope)
        .bind(subject)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn clear_throttle(&self, scope: &str, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttles WHERE scope = $1 AND subject = $2")
            .bind(scope)
            .bind(subject)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
