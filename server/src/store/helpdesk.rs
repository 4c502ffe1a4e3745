//! The helpdesk console's state: caller verifications, Temporary Access Passes, approvals of
//! actions on protected accounts, and the searches the console runs (users, audit log).

use super::audit::AUDIT_COLUMNS;
use super::users::{groups, user_from_row, USER_COLUMNS};
use super::{Store, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::users::User;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRow {
    pub id: String,
    pub agent_id: String,
    pub user_id: String,
    pub method_id: String,
    /// `sms`, `voice`, `email`, `app`, `portal`, `questions`, `pin`.
    pub channel: String,
    /// Portal approval: the number both sides see.
    pub approval_code: String,
    /// Security questions: the indexes asked, comma-separated.
    pub questions: String,
    /// `pending`, `verified`, `failed`, `denied`.
    pub state: String,
    pub created_at: i64,
    /// Pending: until then; verified: valid for actions until then.
    pub expires_at: i64,
    pub decided_at: i64,
}

const VERIFICATION_COLUMNS: &str = "id, agent_id, user_id, method_id, channel, approval_code, \
     questions, state, created_at, expires_at, decided_at";

fn verification_from_row(r: &AnyRow) -> Result<VerificationRow, StoreError> {
    Ok(VerificationRow {
        id: r.try_get("id")?,
        agent_id: r.try_get("agent_id")?,
        user_id: r.try_get("user_id")?,
        method_id: r.try_get("method_id")?,
        channel: r.try_get("channel")?,
        approval_code: r.try_get("approval_code")?,
        questions: r.try_get("questions")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRow {
    pub id: String,
    pub user_id: String,
    pub pass_hash: String,
    pub issued_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub uses_left: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: String,
    pub user_id: String,
    pub action: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_by: String,
    pub decided_at: i64,
    /// `pending`, `approved`, `rejected`.
    pub state: String,
}

fn approval_from_row(r: &AnyRow) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        action: r.try_get("action")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        state: r.try_get("state")?,
    })
}

/// What the audit view of the console asks for; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The username the event is about.
    pub username: String,
    /// Who did it (`alice`, `sync:corp`, `cli`).
    pub actor: String,
    pub event: String,
    /// Unix seconds, inclusive; 0: no bound.
    pub from: i64,
    /// Unix seconds, exclusive; 0: no bound.
    pub to: i64,
    pub limit: u32,
}

/// `LIKE` pattern for a search term, with the wildcards in it taken literally.
pub(crate) fn like(term: &str) -> String {
    let mut out = String::from("%");
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    /// Users whose username, display name or email address contains `term` (ignoring case), or
    /// whose phone numbers (the directory's or a registered phone) contain its digits.
    pub async fn search_users(&self, term: &str, limit: u32) -> Result<Vec<User>, StoreError> {
        let term = term.trim().to_lowercase();
        let digits: String = term.chars().filter(char::is_ascii_digit).collect();
        // a national number's leading zeros are not part of the stored E.164 form
        let digits = digits.trim_start_matches('0').to_string();
        let phone = if digits.len() >= 4 {
            like(&digits)
        } else {
            "\u{1}".to_string()
        };
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE \
             LOWER(username) LIKE $1 ESCAPE '\\' OR LOWER(display_name) LIKE $1 ESCAPE '\\' \
             OR LOWER(COALESCE(email, '')) LIKE $1 ESCAPE '\\' \
             OR COALESCE(mobile_phone, '') LIKE $2 ESCAPE '\\' \
             OR COALESCE(alternate_phone, '') LIKE $2 ESCAPE '\\' \
             OR COALESCE(office_phone, '') LIKE $2 ESCAPE '\\' \
             OR id IN (SELECT user_id FROM methods WHERE status = 'active' AND \
                ((kind = 'phone' AND detail LIKE $2 ESCAPE '\\') \
                 OR (kind = 'email' AND LOWER(detail) LIKE $1 ESCAPE '\\'))) \
             ORDER BY username LIMIT $3"
        ))
        .bind(like(&term))
        .bind(phone)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            out.push(user_from_row(r, groups(&mut conn, &id).await?)?);
        }
        Ok(out)
    }

    pub async fn insert_verification(&self, v: &VerificationRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO helpdesk_verifications ({VERIFICATION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&v.id)
        .bind(&v.agent_id)
        .bind(&v.user_id)
        .bind(&v.method_id)
        .bind(&v.channel)
        .bind(&v.approval_code)
        .bind(&v.questions)
        .bind(&v.state)
        .bind(v.created_at)
        .bind(v.expires_at)
        .bind(v.decided_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn verification(&self, id: &str) -> Result<Option<VerificationRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERIFICATION_COLUMNS} FROM helpdesk_verifications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(verification_from_row).transpose()
    }

    /// The agent's most recent verification of this user.
    pub async fn latest_verification(
        &self,
        agent_id: &str,
        user_id: &str,
    ) -> Result<Option<VerificationRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERIFICATION_COLUMNS} FROM helpdesk_verifications \
             WHERE agent_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(agent_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(verification_from_row).transpose()
    }

    /// A portal approval waiting for this user's answer.
    pub async fn approval_request_for(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<VerificationRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {VERIFICATION_COLUMNS} FROM helpdesk_verifications \
             WHERE user_id = $1 AND channel = 'portal' AND state = 'pending' AND expires_at > $2 \
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(verification_from_row).transpose()
    }

    /// Moves a pending verification to `state` (one winner); `expires_at` is the new validity.
    pub async fn decide_verification(
        &self,
        id: &str,
        state: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE helpdesk_verifications SET state = $1, expires_at = $2, decided_at = $3 \
             WHERE id = $4 AND state = 'pending' AND expires_at > $3",
        )
        .bind(state)
        .bind(expires_at)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1)
    }

    /// Issues a pass, ending every earlier pass of the user, in the caller's transaction.
    pub async fn insert_tap_in(
        conn: &mut AnyConnection,
        tap: &TapRow,
        sealed: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM temporary_passes WHERE user_id = $1")
            .bind(&tap.user_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO temporary_passes (id, user_id, pass_hash, pass_sealed, issued_by, \
             created_at, expires_at, uses_left) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&tap.id)
        .bind(&tap.user_id)
        .bind(&tap.pass_hash)
        .bind(sealed)
        .bind(&tap.issued_by)
        .bind(tap.created_at)
        .bind(tap.expires_at)
        .bind(tap.uses_left)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The sealed pass the issuing agent has not seen yet; taken (erased) by this read.
    pub async fn take_tap_for_display(
        &self,
        user_id: &str,
        agent_id: &str,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, pass_sealed, expires_at FROM temporary_passes \
             WHERE user_id = $1 AND issued_by = $2 AND pass_sealed IS NOT NULL",
        )
        .bind(user_id)
        .bind(agent_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id: String = r.try_get("id")?;
        let taken = sqlx::query(
            "UPDATE temporary_passes SET pass_sealed = NULL WHERE id = $1 AND pass_sealed IS NOT NULL",
        )
        .bind(&id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if taken != 1 {
            return Ok(None);
        }
        Ok(Some((r.try_get("pass_sealed")?, r.try_get("expires_at")?)))
    }

    /// The user's passes that still work.
    pub async fn active_taps(&self, user_id: &str, now: i64) -> Result<Vec<TapRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, pass_hash, issued_by, created_at, expires_at, uses_left \
             FROM temporary_passes WHERE user_id = $1 AND expires_at > $2 AND uses_left > 0",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TapRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    pass_hash: r.try_get("pass_hash")?,
                    issued_by: r.try_get("issued_by")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    uses_left: r.try_get("uses_left")?,
                })
            })
            .collect()
    }

    pub async fn insert_approval(&self, a: &ApprovalRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO helpdesk_approvals (id, user_id, action, requested_by, requested_at, \
             expires_at, decided_by, decided_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(&a.action)
        .bind(&a.requested_by)
        .bind(a.requested_at)
        .bind(a.expires_at)
        .bind(&a.decided_by)
        .bind(a.decided_at)
        .bind(&a.state)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM helpdesk_approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(approval_from_row).transpose()
    }

    /// Requests still waiting for a second administrator, oldest first.
    pub async fn pending_approvals(&self, now: i64) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM helpdesk_approvals WHERE state = 'pending' AND expires_at > $1 \
             ORDER BY requested_at, id",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    /// Decides a pending request (one winner), in the caller's transaction.
    pub async fn decide_approval_in(
        conn: &mut AnyConnection,
        id: &str,
        by: &str,
        state: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE helpdesk_approvals SET state = $1, decided_by = $2, decided_at = $3 \
             WHERE id = $4 AND state = 'pending' AND expires_at > $3",
        )
        .bind(state)
        .bind(by)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1)
    }

    /// The audit log as the console filters it, newest first.
    pub async fn audit_search(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE ($1 = '' OR LOWER(COALESCE(username, '')) = $1) \
             AND ($2 = '' OR LOWER(COALESCE(actor, '')) = $2) AND ($3 = '' OR event = $3) \
             AND ($4 = 0 OR at >= $4) AND ($5 = 0 OR at < $5) \
             ORDER BY at DESC, id DESC LIMIT $6"
        ))
        .bind(f.username.trim().to_lowercase())
        .bind(f.actor.trim().to_lowercase())
        .bind(f.event.trim())
        .bind(f.from)
        .bind(f.to)
        .bind(i64::from(f.limit.clamp(1, 100_000)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::audit::audit_from_row).collect()
    }

    /// The user's most recent sign-in attempts (successful or not).
    pub async fn recent_signins(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE user_id = $1 AND event IN ('signin', 'second_factor', 'gateway_signin') \
             ORDER BY at DESC, id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(super::audit::audit_from_row).collect()
    }
}

/// Uses one of a pass's uses, in the caller's transaction (one winner per use).
pub async fn use_tap_in(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE temporary_passes SET uses_left = uses_left - 1, used_at = $1 \
         WHERE id = $2 AND uses_left > 0 AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Removes every method (active and pending) and the registration state of a user, and ends
/// their sessions, in the caller's transaction: the wizard runs at the next sign-in.
pub async fn clear_registration_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(u64, u64), StoreError> {
    super::oath::retire_tokens_of_user_in(conn, user_id).await?;
    let methods = sqlx::query("DELETE FROM methods WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query(
        "UPDATE users SET confirmed_at = 0, snooze_count = 0, snooze_first_at = 0, \
         updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    super::users::end_pending_codes_in(conn, user_id, now).await?;
    let sessions = super::sessions::delete_user_sessions_in(conn, user_id).await?;
    Ok((methods, sessions))
}
