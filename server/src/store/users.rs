//! Users, their groups and password hashes.

use super::{from_bool, to_bool, Store, StoreError};
use crate::domain::users::{Role, User, UserProfile};
use sqlx::{AnyConnection, Row};

pub(crate) const USER_COLUMNS: &str =
    "id, username, display_name, email, mobile_phone, alternate_phone, office_phone, \
     enabled, role, source, locked_at, created_at, updated_at, confirmed_at, snooze_count, \
     snooze_first_at, blocked_until";

/// Whether an upsert created a user or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

impl Store {
    /// The one user whose username or stored email address is `login` (ignoring case); None when
    /// nobody or more than one user matches.
    pub async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1 OR LOWER(email) = $1 LIMIT 2"
        ))
        .bind(login.trim().to_lowercase())
        .fetch_all(&mut *conn)
        .await?;
        match rows.as_slice() {
            [r] => Ok(Some(user_from_row(
                r,
                groups(&mut conn, &r.try_get::<String, _>("id")?).await?,
            )?)),
            _ => Ok(None),
        }
    }

    /// The username a typed name stands for: the typed name itself when it is a username, else
    /// the one user whose directory principal (AD `userPrincipalName`) — or, with `email`, whose
    /// stored address — it is; otherwise the typed name unchanged. Throttles count against what
    /// this returns, so every name of one account shares one budget.
    pub async fn canonical_name(&self, typed: &str, email: bool) -> Result<String, StoreError> {
        let typed = typed.trim().to_lowercase();
        let rows = sqlx::query(if email {
            "SELECT username FROM users WHERE username = $1 OR principal = $1 OR LOWER(email) = $1 LIMIT 3"
        } else {
            "SELECT username FROM users WHERE username = $1 OR principal = $1 LIMIT 3"
        })
        .bind(&typed)
        .fetch_all(self.pool())
        .await?;
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("username"))
            .collect::<Result<_, _>>()?;
        Ok(match names.as_slice() {
            [one] => one.clone(),
            _ => typed,
        })
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(r) => Ok(Some(user_from_row(
                &r,
                groups(&mut conn, &r.try_get::<String, _>("id")?).await?,
            )?)),
            None => Ok(None),
        }
    }

    pub async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(r) => Ok(Some(user_from_row(&r, groups(&mut conn, id).await?)?)),
            None => Ok(None),
        }
    }

    /// A user and their stored password hash in one read (sign-in).
    pub async fn find_user_for_signin(
        &self,
        username: &str,
    ) -> Result<(Option<User>, Option<String>), StoreError> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(r) => {
                let hash: Option<String> = r.try_get("password_hash")?;
                let id: String = r.try_get("id")?;
                Ok((
                    Some(user_from_row(&r, groups(&mut conn, &id).await?)?),
                    hash,
                ))
            }
            None => Ok((None, None)),
        }
    }

    /// The stored argon2id PHC string, if the user has a local password.
    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<String>, _>("password_hash")?,
            None => None,
        })
    }

    pub async fn set_password_hash(
        &self,
        user_id: &str,
        phc: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(phc)
            .bind(now)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_enabled(
        &self,
        user_id: &str,
        enabled: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(from_bool(enabled))
            .bind(now)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_role(&self, user_id: &str, role: Role, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(now)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Locks (Some(time)) or unlocks (None) sign-in for a user.
    pub async fn set_locked(
        &self,
        user_id: &str,
        locked_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        set_locked_in(&mut conn, user_id, locked_at, now).await
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Creates or updates one user (and, when `password_hash` is given, their password).
    pub async fn upsert_user(
        &self,
        profile: &UserProfile,
        password_hash: Option<&str>,
        source: &str,
        now: i64,
    ) -> Result<(String, Upserted), StoreError> {
        let mut tx = self.begin().await?;
        let out = upsert_user_in(&mut tx, profile, password_hash, source, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that read first could not upgrade after another writer committed
    /// (SQLITE_BUSY without waiting); this way it waits for the lock (busy_timeout) instead.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.dialect() {
            super::Dialect::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            super::Dialect::Postgres => self.pool().begin().await?,
        })
    }
}

/// Locks (Some(time)) or unlocks (None) sign-in inside a caller's transaction.
pub async fn set_locked_in(
    conn: &mut AnyConnection,
    user_id: &str,
    locked_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET locked_at = $1, updated_at = $2 WHERE id = $3")
        .bind(locked_at)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Enabled administrators (recipients of alerts).
pub async fn admins(store: &Store) -> Result<Vec<User>, StoreError> {
    let rows =
        sqlx::query("SELECT id FROM users WHERE role = 'admin' AND enabled = 1 ORDER BY username")
            .fetch_all(store.pool())
            .await?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(u) = store.find_user(&r.try_get::<String, _>("id")?).await? {
            out.push(u);
        }
    }
    Ok(out)
}

/// Upsert inside a caller's transaction. Returns the user id and what happened.
pub async fn upsert_user_in(
    conn: &mut AnyConnection,
    p: &UserProfile,
    password_hash: Option<&str>,
    source: &str,
    now: i64,
) -> Result<(String, Upserted), StoreError> {
    let existing = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
    ))
    .bind(p.username.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let email = p.email.as_ref().map(|e| e.as_str().to_string());
    let mobile = p.mobile_phone.as_ref().map(|x| x.as_str().to_string());
    let alternate = p.alternate_phone.as_ref().map(|x| x.as_str().to_string());
    let office = p.office_phone.as_ref().map(|x| x.as_str().to_string());
    let mut wanted_groups = p.groups.clone();
    wanted_groups.sort();
    wanted_groups.dedup();
    let (id, outcome) = match existing {
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            sqlx::query(
                "INSERT INTO users (id, username, display_name, email, mobile_phone, alternate_phone, office_phone, \
                 enabled, role, source, password_hash, locked_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $12)",
            )
            .bind(&id)
            .bind(p.username.as_str())
            .bind(p.display_name.as_str())
            .bind(&email)
            .bind(&mobile)
            .bind(&alternate)
            .bind(&office)
            .bind(from_bool(p.enabled))
            .bind(p.role.as_str())
            .bind(source)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            (id, Upserted::Created)
        }
        Some(row) => {
            let id: String = row.try_get("id")?;
            let current = user_from_row(&row, groups(conn, &id).await?)?;
            let same = current.display_name == p.display_name.as_str()
                && current.email == email
                && current.mobile_phone == mobile
                && current.alternate_phone == alternate
                && current.office_phone == office
                && current.enabled == p.enabled
                && current.role == p.role
                && current.groups == wanted_groups
                && password_hash.is_none();
            if same {
                return Ok((id, Upserted::Unchanged));
            }
            sqlx::query(
                "UPDATE users SET display_name = $1, email = $2, mobile_phone = $3, alternate_phone = $4, \
                 office_phone = $5, enabled = $6, role = $7, updated_at = $8, \
                 password_hash = COALESCE($9, password_hash) WHERE id = $10",
            )
            .bind(p.display_name.as_str())
            .bind(&email)
            .bind(&mobile)
            .bind(&alternate)
            .bind(&office)
            .bind(from_bool(p.enabled))
            .bind(p.role.as_str())
            .bind(now)
            .bind(password_hash)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM user_groups WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *conn)
                .await?;
            (id, Upserted::Updated)
        }
    };
    if outcome != Upserted::Unchanged {
        for g in &wanted_groups {
            sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2)")
                .bind(&id)
                .bind(g)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok((id, outcome))
}

pub(crate) async fn groups(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    let rows =
        sqlx::query("SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("group_name")?))
        .collect()
}

pub(crate) fn user_from_row(
    r: &sqlx::any::AnyRow,
    groups: Vec<String>,
) -> Result<User, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        mobile_phone: r.try_get("mobile_phone")?,
        alternate_phone: r.try_get("alternate_phone")?,
        office_phone: r.try_get("office_phone")?,
        groups,
        enabled: to_bool(r.try_get("enabled")?),
        role: Role::parse(&role).map_err(StoreError::Corrupt)?,
        source: r.try_get("source")?,
        locked_at: r.try_get("locked_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        snooze_count: r.try_get("snooze_count")?,
        snooze_first_at: r.try_get("snooze_first_at")?,
        blocked_until: r.try_get("blocked_until")?,
    })
}

/// Every code of the user still waiting for input stops working (used now), in the caller's
/// transaction.
pub async fn end_pending_codes_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE codes SET used_at = $1 WHERE user_id = $2 AND used_at = 0")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Blocks a user after a fraud report until `until`, in the caller's transaction: every session
/// ends and every pending code, link and reset flow stops working. Returns the sessions ended.
pub async fn block_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
    until: i64,
    now: i64,
) -> Result<u64, StoreError> {
    sqlx::query("UPDATE users SET blocked_until = $1, updated_at = $2 WHERE id = $3")
        .bind(until)
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE reset_flows SET finished_at = $1 WHERE user_id = $2 AND finished_at = 0")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    end_pending_codes_in(conn, user_id, now).await?;
    super::sessions::delete_user_sessions_in(conn, user_id).await
}

impl Store {
    /// Lifts a fraud block (an administrator's decision).
    pub async fn unblock_user(&self, user_id: &str, now: i64) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        unblock_user_in(&mut conn, user_id, now).await
    }
}

/// Lifts a fraud block in the caller's transaction.
pub async fn unblock_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET blocked_until = 0, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
