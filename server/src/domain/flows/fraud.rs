//! One handler for every fraud report — a "This wasn't me" link in a security mail, "report
//! fraud" on a voice call:
//!
//! ```text
//!  report ──► one transaction: the account's second factors are blocked for fraud.block_days
//!             (so no sign-in and no self-service reset), every session ends, every pending
//!             code / link / reset flow stops working, the audit log records it, and every
//!             administrator gets `fraud_alert`
//! ```
//! Only an administrator lifts the block early (`converge user unblock`).

use crate::domain::audit::{event, AuditEntry};
use crate::domain::error::DomainError;
use crate::domain::policy::FraudPolicy;
use crate::notify::messages::{Notice, Person};
use crate::notify::Notifier;
use crate::store::audit::append_audit_in;
use crate::store::users::{admins, block_user_in};
use crate::store::Store;

/// Who reported what, from where.
pub struct FraudReport<'a> {
    pub user_id: &'a str,
    /// "This wasn't me link: Your account was locked", "voice call".
    pub source: String,
    pub client_ip: String,
    pub user_agent: String,
}

pub async fn report_fraud(
    store: &Store,
    notifier: &Notifier,
    policy: &FraudPolicy,
    report: FraudReport<'_>,
    now: i64,
) -> Result<(), DomainError> {
    let user = store
        .find_user(report.user_id)
        .await?
        .ok_or_else(|| DomainError::Invalid("fraud report for an unknown user".into()))?;
    let recipients = admins(store).await?;
    let mut tx = store.begin().await?;
    let blocked_until = now + policy.block_seconds;
    let ended = if policy.block_seconds > 0 {
        block_user_in(
            &mut tx,
            &user.id,
            blocked_until.max(user.blocked_until),
            now,
        )
        .await?
    } else {
        0
    };
    let mut e = AuditEntry::new(event::FRAUD_REPORTED, true, now);
    e.user_id = Some(user.id.clone());
    e.username = Some(user.username.clone());
    e.client_ip = Some(report.client_ip.clone());
    e.user_agent = Some(report.user_agent.clone());
    e.reason = Some(if policy.block_seconds > 0 {
        format!(
            "{}; blocked until {} UTC; {ended} sessions ended",
            report.source,
            crate::domain::format_time(blocked_until)
        )
    } else {
        format!("{}; not blocked (fraud.block_days = 0)", report.source)
    });
    append_audit_in(&mut tx, &e).await?;
    let notice = Notice::FraudAlert {
        subject: Person {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
        },
        reported_at: crate::domain::format_time(now),
        source: report.source,
        client_ip: report.client_ip,
    };
    for admin in &recipients {
        notifier.email_user_in(&mut tx, admin, &notice, now).await?;
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    notifier.wake();
    tracing::warn!(user = %user.username, "fraud reported: account blocked, sessions ended");
    Ok(())
}
