//! Registered methods, one-time codes, WebAuthn ceremonies and the registration state of users.

use super::{from_bool, to_bool, Store, StoreError};
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub name: String,
    /// `pending` until the user proved the method works, then `active`.
    pub status: String,
    /// `user`, or `directory` for phones that came from the directory.
    pub source: String,
    pub secret: Option<String>,
    pub detail: String,
    pub credential_id: Option<String>,
    pub is_default: bool,
    pub last_step: i64,
    pub failures: i64,
    pub created_at: i64,
    pub activated_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
}

const METHOD_COLUMNS: &str =
    "id, user_id, kind, name, status, source, secret, detail, credential_id, \
     is_default, last_step, failures, created_at, activated_at, last_used_at, expires_at";

fn method_from_row(r: &sqlx::any::AnyRow) -> Result<MethodRow, StoreError> {
    Ok(MethodRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        status: r.try_get("status")?,
        source: r.try_get("source")?,
        secret: r.try_get("secret")?,
        detail: r.try_get("detail")?,
        credential_id: r.try_get("credential_id")?,
        is_default: to_bool(r.try_get("is_default")?),
        last_step: r.try_get("last_step")?,
        failures: r.try_get("failures")?,
        created_at: r.try_get("created_at")?,
        activated_at: r.try_get("activated_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

pub async fn insert_method_in(conn: &mut AnyConnection, m: &MethodRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO methods ({METHOD_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(&m.id)
    .bind(&m.user_id)
    .bind(&m.kind)
    .bind(&m.name)
    .bind(&m.status)
    .bind(&m.source)
    .bind(m.secret.as_deref())
    .bind(&m.detail)
    .bind(m.credential_id.as_deref())
    .bind(from_bool(m.is_default))
    .bind(m.last_step)
    .bind(m.failures)
    .bind(m.created_at)
    .bind(m.activated_at)
    .bind(m.last_used_at)
    .bind(m.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Makes a pending method active (only if it is still pending and unexpired); true when it did.
pub async fn activate_method_in(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
    last_step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE methods SET status = 'active', activated_at = $1, last_used_at = $1, \
         last_step = $2, expires_at = 0 \
         WHERE id = $3 AND user_id = $4 AND status = 'pending' AND expires_at > $1",
    )
    .bind(now)
    .bind(last_step)
    .bind(id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_method_in(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    // a hardware token is not handed out again unless an administrator says so
    super::oath::retire_tokens_of_method_in(conn, id).await?;
    let r = sqlx::query("DELETE FROM methods WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a TOTP step as used inside a caller's transaction: true for exactly one caller per
/// step (the replay guard: the step must be newer than the last accepted one).
pub async fn use_totp_step_in(
    conn: &mut AnyConnection,
    id: &str,
    step: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE methods SET last_step = $1, last_used_at = $2 \
         WHERE id = $3 AND status = 'active' AND last_step < $1",
    )
    .bind(step)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Updates a passkey after an assertion; the new counter must exceed the stored one unless both
/// are zero (authenticators without a counter).
pub async fn use_passkey_in(
    conn: &mut AnyConnection,
    id: &str,
    detail: &str,
    counter: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE methods SET detail = $1, last_step = $2, last_used_at = $3 \
         WHERE id = $4 AND status = 'active' AND (last_step < $2 OR (last_step = 0 AND $2 = 0))",
    )
    .bind(detail)
    .bind(counter)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes every method of one kind (questions and PIN exist once per user).
pub async fn delete_methods_of_kind_in(
    conn: &mut AnyConnection,
    user_id: &str,
    kind: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM methods WHERE user_id = $1 AND kind = $2")
        .bind(user_id)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Active methods of a user inside a transaction (to check "last method" rules atomically).
pub async fn active_methods_in(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<MethodRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {METHOD_COLUMNS} FROM methods WHERE user_id = $1 AND status = 'active' \
         ORDER BY created_at, id"
    ))
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(method_from_row).collect()
}

/// Makes `id` the user's only default method.
pub async fn set_default_method_in(
    conn: &mut AnyConnection,
    user_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    sqlx::query("UPDATE methods SET is_default = 0 WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query(
        "UPDATE methods SET is_default = 1 WHERE id = $1 AND user_id = $2 AND status = 'active'",
    )
    .bind(id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    pub target: String,
    pub code_hash: String,
    pub channel: String,
    pub failures: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: i64,
}

const CODE_COLUMNS: &str =
    "id, user_id, purpose, target, code_hash, channel, failures, created_at, expires_at, used_at";

fn code_from_row(r: &sqlx::any::AnyRow) -> Result<CodeRow, StoreError> {
    Ok(CodeRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        purpose: r.try_get("purpose")?,
        target: r.try_get("target")?,
        code_hash: r.try_get("code_hash")?,
        channel: r.try_get("channel")?,
        failures: r.try_get("failures")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRow {
    pub id: String,
    pub user_id: Option<String>,
    pub kind: String,
    pub state: String,
    pub name: String,
    pub expires_at: i64,
}

/// A code to store: for whom, what for, where it went, its HMAC.
#[derive(Debug, Clone, Copy)]
pub struct NewCode<'a> {
    pub user_id: &'a str,
    pub purpose: &'a str,
    pub target: &'a str,
    pub code_hash: &'a str,
    pub channel: &'a str,
}

/// Registration state kept on the user row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrationState {
    pub confirmed_at: i64,
    pub snooze_count: i64,
    pub snooze_first_at: i64,
}

impl From<&crate::domain::users::User> for RegistrationState {
    /// The state as read with the user (at the start of a request).
    fn from(u: &crate::domain::users::User) -> Self {
        RegistrationState {
            confirmed_at: u.confirmed_at,
            snooze_count: u.snooze_count,
            snooze_first_at: u.snooze_first_at,
        }
    }
}

impl Store {
    pub async fn methods(&self, user_id: &str) -> Result<Vec<MethodRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {METHOD_COLUMNS} FROM methods WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(method_from_row).collect()
    }

    pub async fn active_methods(&self, user_id: &str) -> Result<Vec<MethodRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        active_methods_in(&mut conn, user_id).await
    }

    pub async fn method(&self, id: &str, user_id: &str) -> Result<Option<MethodRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {METHOD_COLUMNS} FROM methods WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(method_from_row).transpose()
    }

    pub async fn method_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<MethodRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {METHOD_COLUMNS} FROM methods WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(method_from_row).transpose()
    }

    /// Makes `id` the user's only default method (one transaction).
    pub async fn set_default_method(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = set_default_method_in(&mut tx, user_id, id).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn insert_method(&self, m: &MethodRow) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_method_in(&mut conn, m).await
    }

    /// Clears a method's secret if it is still `expected`: true for exactly one caller (a
    /// value shown once, like a new set of recovery codes).
    pub async fn take_method_secret(&self, id: &str, expected: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE methods SET secret = NULL WHERE id = $1 AND secret = $2")
            .bind(id)
            .bind(expected)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes expired pending setups, one-time codes and ceremonies (the periodic sweep; the
    /// flows themselves never trust an expired row).
    pub async fn sweep_security(&self, now: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for sql in [
            "DELETE FROM methods WHERE status = 'pending' AND expires_at <= $1",
            "DELETE FROM codes WHERE expires_at <= $1 - 3600",
            "DELETE FROM ceremonies WHERE expires_at <= $1",
            // helpdesk: passes that no longer work (and a sealed copy never shown), old checks
            "DELETE FROM temporary_passes WHERE expires_at <= $1 OR uses_left <= 0",
            "DELETE FROM helpdesk_verifications WHERE expires_at <= $1 - 86400",
            "DELETE FROM gateway_challenges WHERE expires_at <= $1",
            // a gateway station unseen for a year is a stranger again (as a device cookie expires)
            "DELETE FROM gateway_devices WHERE last_ok_at <= $1 - 31536000",
            // the API: spent or expired challenges, idempotency keys after a day
            "DELETE FROM api_challenges WHERE expires_at <= $1",
            "DELETE FROM api_idempotency WHERE created_at <= $1 - 86400",
            // a new set of recovery codes is shown once, within 15 minutes: the sealed copy
            // for that page never outlives the window
            "UPDATE methods SET secret = NULL WHERE kind = 'recovery' AND secret IS NOT NULL \
             AND created_at <= $1 - 900",
        ] {
            n += sqlx::query(sql)
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// Updates a passkey after an assertion (see [`use_passkey_in`]).
    pub async fn use_passkey(
        &self,
        id: &str,
        detail: &str,
        counter: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool().acquire().await?;
        use_passkey_in(&mut conn, id, detail, counter, now).await
    }

    pub async fn touch_method(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE methods SET last_used_at = $1, failures = 0 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Counts a wrong PIN (or other per-method failure); returns the new count.
    pub async fn method_failure(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE methods SET failures = failures + 1 WHERE id = $1 RETURNING failures",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
    }

    pub async fn rename_method(
        &self,
        id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE methods SET name = $1 WHERE id = $2 AND user_id = $3 AND status = 'active'",
        )
        .bind(name)
        .bind(id)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stores a fresh code for (user, purpose, target), keeping the failure count of an earlier
    /// code for the same target. Returns the row id and the failures carried over.
    pub async fn put_code(
        &self,
        code: &NewCode<'_>,
        now: i64,
        ttl: i64,
    ) -> Result<(String, i64), StoreError> {
        let NewCode {
            user_id,
            purpose,
            target,
            code_hash,
            channel,
        } = *code;
        let mut tx = self.begin().await?;
        let existing = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE user_id = $1 AND purpose = $2 AND target = $3"
        ))
        .bind(user_id)
        .bind(purpose)
        .bind(target)
        .fetch_optional(&mut *tx)
        .await?;
        let existing = existing.as_ref().map(code_from_row).transpose()?;
        let (id, failures) = match existing {
            // a used code, or one from long ago, starts afresh
            Some(c) if c.used_at == 0 && now - c.created_at < 3600 => {
                sqlx::query(
                    "UPDATE codes SET code_hash = $1, channel = $2, expires_at = $3 WHERE id = $4",
                )
                .bind(code_hash)
                .bind(channel)
                .bind(now + ttl)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
                (c.id, c.failures)
            }
            other => {
                if let Some(c) = other {
                    sqlx::query("DELETE FROM codes WHERE id = $1")
                        .bind(&c.id)
                        .execute(&mut *tx)
                        .await?;
                }
                let id = uuid::Uuid::new_v4().to_string();
                sqlx::query(&format!(
                    "INSERT INTO codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, 0)"
                ))
                .bind(&id)
                .bind(user_id)
                .bind(purpose)
                .bind(target)
                .bind(code_hash)
                .bind(channel)
                .bind(now)
                .bind(now + ttl)
                .execute(&mut *tx)
                .await?;
                (id, 0)
            }
        };
        tx.commit().await?;
        Ok((id, failures))
    }

    /// The current code for (user, purpose, target), if any.
    /// Links a code to the voice call that reads it out.
    pub async fn set_code_call(&self, code_id: &str, call_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE codes SET call_id = $1, call_result = NULL WHERE id = $2")
            .bind(call_id)
            .bind(code_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records how the person answered the call that reads a code (`approve` / `deny`; a
    /// refusal also ends the code). Returns (code id, user id, purpose) of that code.
    pub async fn answer_code_call(
        &self,
        call_id: &str,
        result: &str,
        now: i64,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let row = sqlx::query(
            "UPDATE codes SET call_result = $1, \
               used_at = CASE WHEN $1 = 'deny' AND used_at = 0 THEN $3 ELSE used_at END \
             WHERE call_id = $2 AND call_result IS NULL RETURNING id, user_id, purpose",
        )
        .bind(result)
        .bind(call_id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("user_id")?,
                r.try_get("purpose")?,
            ))
        })
        .transpose()
    }

    /// How the call reading this code was answered, if it was.
    pub async fn code_call_result(&self, code_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT call_result FROM codes WHERE id = $1")
            .bind(code_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("call_result"))
            .transpose()?
            .flatten())
    }

    pub async fn code_for(
        &self,
        user_id: &str,
        purpose: &str,
        target: &str,
    ) -> Result<Option<CodeRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE user_id = $1 AND purpose = $2 AND target = $3"
        ))
        .bind(user_id)
        .bind(purpose)
        .bind(target)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    pub async fn code(&self, id: &str, user_id: &str) -> Result<Option<CodeRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    pub async fn code_failure(&self, id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE codes SET failures = failures + 1 WHERE id = $1 RETURNING failures",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("failures")).transpose()?.unwrap_or(0))
    }

    /// Marks the code used: true for exactly one caller.
    pub async fn use_code(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE codes SET used_at = $1 WHERE id = $2 AND used_at = 0 AND expires_at > $1",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn put_ceremony(&self, c: &CeremonyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ceremonies (id, user_id, kind, state, name, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.id)
        .bind(c.user_id.as_deref())
        .bind(&c.kind)
        .bind(&c.state)
        .bind(&c.name)
        .bind(c.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes a ceremony out of the store (single use): the row is deleted as it is read.
    pub async fn take_ceremony(
        &self,
        id: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<CeremonyRow>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM ceremonies WHERE id = $1 AND kind = $2 \
             RETURNING id, user_id, kind, state, name, expires_at",
        )
        .bind(id)
        .bind(kind)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let c = CeremonyRow {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            kind: r.try_get("kind")?,
            state: r.try_get("state")?,
            name: r.try_get("name")?,
            expires_at: r.try_get("expires_at")?,
        };
        Ok((c.expires_at > now).then_some(c))
    }

    pub async fn registration_state(&self, user_id: &str) -> Result<RegistrationState, StoreError> {
        let row = sqlx::query(
            "SELECT confirmed_at, snooze_count, snooze_first_at FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => RegistrationState {
                confirmed_at: r.try_get("confirmed_at")?,
                snooze_count: r.try_get("snooze_count")?,
                snooze_first_at: r.try_get("snooze_first_at")?,
            },
            None => RegistrationState::default(),
        })
    }

    pub async fn set_registration_state(
        &self,
        user_id: &str,
        s: RegistrationState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET confirmed_at = $1, snooze_count = $2, snooze_first_at = $3 WHERE id = $4",
        )
        .bind(s.confirmed_at)
        .bind(s.snooze_count)
        .bind(s.snooze_first_at)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user's WebAuthn handle (random, created on first use; never the username).
    pub async fn user_handle(&self, user_id: &str) -> Result<String, StoreError> {
        let fresh = uuid::Uuid::new_v4().to_string();
        sqlx::query("UPDATE users SET user_handle = $1 WHERE id = $2 AND user_handle IS NULL")
            .bind(&fresh)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        let row = sqlx::query("SELECT user_handle FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(self.pool())
            .await?;
        Ok(row
            .try_get::<Option<String>, _>("user_handle")?
            .unwrap_or(fresh))
    }

    pub async fn user_by_handle(&self, handle: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT id FROM users WHERE user_handle = $1")
            .bind(handle)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Records a fresh second factor for a session (and promotes it to fully signed in).
    pub async fn session_mfa_done(&self, id_hash: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.pool().acquire().await?;
        super::sessions::mark_mfa_in(&mut conn, id_hash, now).await
    }

    /// Ends every session of the user except `keep` (sign out everywhere else).
    pub async fn delete_other_sessions(
        &self,
        user_id: &str,
        keep: &str,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}
