//! The audit log: append and read, never update or delete (the schema refuses both).

use super::{from_bool, to_bool, Store, StoreError};
use crate::domain::audit::AuditEntry;
use sqlx::Row;

/// The columns every audit read selects (see [`audit_from_row`]).
pub(crate) const AUDIT_COLUMNS: &str =
    "at, event, success, user_id, actor, username, reason, client_ip, user_agent";

impl Store {
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        append_audit_in(&mut conn, e).await
    }

    /// Newest first.
    pub async fn audit_for_user(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Newest first, optionally only one event type.
    pub async fn audit_recent(
        &self,
        event: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE ($1 = '' OR event = $1) ORDER BY at DESC, id DESC LIMIT $2"
        ))
        .bind(event.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

pub(crate) fn audit_from_row(r: &sqlx::any::AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: r.try_get("at")?,
        event: r.try_get("event")?,
        success: to_bool(r.try_get("success")?),
        user_id: r.try_get("user_id")?,
        actor: r.try_get("actor")?,
        username: r.try_get("username")?,
        reason: r.try_get("reason")?,
        client_ip: r.try_get("client_ip")?,
        user_agent: r.try_get("user_agent")?,
    })
}

/// Appends inside a caller's transaction (so the event commits with the change it records).
pub async fn append_audit_in(
    conn: &mut sqlx::AnyConnection,
    e: &AuditEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (at, event, success, user_id, actor, username, reason, client_ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.at)
    .bind(&e.event)
    .bind(from_bool(e.success))
    .bind(&e.user_id)
    .bind(&e.actor)
    .bind(&e.username)
    .bind(&e.reason)
    .bind(&e.client_ip)
    .bind(&e.user_agent)
    .execute(&mut *conn)
    .await?;
    let result = if e.success { "success" } else { "failure" };
    crate::instruments::count(
        crate::instruments::AUDIT_EVENTS,
        &[("event", &e.event), ("result", result)],
        1,
    );
    Ok(())
}
