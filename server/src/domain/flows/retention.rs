//! Retention: the sweep that removes what `[retention]` no longer keeps (docs/privacy.md). One
//! instance at a time runs it (a lease in the database); it runs when the last sweep is older
//! than `retention.sweep_interval_minutes`, or when an operator asks (`converge retention sweep`).

use crate::crypto::Sealer;
use crate::domain::audit::{event, AuditEntry};
use crate::domain::policy::RetentionPolicy;
use crate::store::retention::Swept;
use crate::store::{Store, StoreError};

pub const LEASE: &str = "retention_sweep";
/// When the last sweep finished (instance_meta).
pub const LAST_SWEEP: &str = "retention_swept_at";
/// A sweep that takes longer than this is taken over by another instance (it crashed).
const LEASE_SECONDS: i64 = 900;
/// The keyed hash that replaces client addresses and browsers.
const PSEUDONYM_CONTEXT: &str = "converge/audit-pseudonym/v1";

/// What [`sweep`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The last sweep is recent enough (`due` only).
    NotDue,
    /// Another instance is sweeping now.
    Busy,
    Swept(Swept),
}

/// Runs the sweep as `holder` when it is due (or always, with `due_only = false`).
pub async fn sweep(
    store: &Store,
    sealer: &Sealer,
    policy: &RetentionPolicy,
    holder: &str,
    due_only: bool,
    now: i64,
) -> Result<Outcome, StoreError> {
    if due_only {
        let last = store
            .instance_meta(LAST_SWEEP)
            .await?
            .and_then(|v| v.parse::<i64>().ok());
        if last.is_some_and(|t| now - t < policy.sweep_every_seconds) {
            return Ok(Outcome::NotDue);
        }
    }
    if !store.take_lease(LEASE, holder, now, LEASE_SECONDS).await? {
        return Ok(Outcome::Busy);
    }
    let pseudonym = |v: &str| sealer.mac(PSEUDONYM_CONTEXT, v)[..16].to_string();
    // the lease is given up whatever happened
    let finished = async {
        let swept = store.sweep_retention(policy, now, &pseudonym).await?;
        record(store, holder, &swept, now).await?;
        Ok(Outcome::Swept(swept))
    }
    .await;
    store.release_lease(LEASE, holder).await?;
    finished
}

/// Notes the sweep's time, and audits what it changed (if anything).
async fn record(store: &Store, holder: &str, swept: &Swept, now: i64) -> Result<(), StoreError> {
    store
        .set_instance_meta(LAST_SWEEP, &now.to_string(), now)
        .await?;
    if *swept == Swept::default() {
        return Ok(());
    }
    let mut e = AuditEntry::new(event::RETENTION_SWEPT, true, now);
    e.actor = Some(holder.to_string());
    let counts: Vec<String> = swept
        .counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    e.reason = Some(counts.join(", "));
    store.append_audit(&e).await
}
