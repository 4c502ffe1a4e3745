//! Directory sync runs (their reports) and the bulk reads a sync needs.

use super::users::{user_from_row, USER_COLUMNS};
use super::{from_bool, to_bool, Store, StoreError};
use crate::domain::users::User;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// One sync run as kept in the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRun {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub dry_run: bool,
    pub status: String,
    pub actor: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub seen: i64,
    pub created: i64,
    pub updated: i64,
    pub disabled: i64,
    pub unchanged: i64,
    pub errors: i64,
    pub high_water: String,
    /// User ids a held run would have disabled (approval disables them).
    pub held_disables: Vec<String>,
    /// Error lines and, for a failed run, why it failed.
    pub report: Vec<String>,
}

const RUN_COLUMNS: &str =
    "id, source, kind, dry_run, status, actor, started_at, finished_at, seen, \
     created, updated, disabled, unchanged, errors, high_water, held_disables, report";

fn run_from_row(r: &sqlx::any::AnyRow) -> Result<SyncRun, StoreError> {
    let list = |col: &str| -> Result<Vec<String>, StoreError> {
        let text: String = r.try_get(col)?;
        if text.is_empty() {
            return Ok(vec![]);
        }
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("sync_runs.{col}: {e}")))
    };
    Ok(SyncRun {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        kind: r.try_get("kind")?,
        dry_run: to_bool(r.try_get("dry_run")?),
        status: r.try_get("status")?,
        actor: r.try_get("actor")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        seen: r.try_get("seen")?,
        created: r.try_get("created")?,
        updated: r.try_get("updated")?,
        disabled: r.try_get("disabled")?,
        unchanged: r.try_get("unchanged")?,
        errors: r.try_get("errors")?,
        high_water: r.try_get("high_water")?,
        held_disables: list("held_disables")?,
        report: list("report")?,
    })
}

fn json(list: &[String]) -> String {
    if list.is_empty() {
        String::new()
    } else {
        serde_json::to_string(list).unwrap_or_default()
    }
}

impl Store {
    /// Starts a run unless another run of the same directory is under way (returns `None`).
    /// Runs left `running` without a heartbeat for `stale_after` seconds (a crashed instance)
    /// are marked failed first.
    pub async fn sync_run_start(
        &self,
        run: &SyncRun,
        stale_after: i64,
    ) -> Result<bool, StoreError> {
        sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = $1, \
             report = '[\"abandoned: the instance running it stopped\"]' \
             WHERE source = $2 AND status = 'running' AND started_at < $3 AND heartbeat_at < $3",
        )
        .bind(run.started_at)
        .bind(&run.source)
        .bind(run.started_at - stale_after)
        .execute(self.pool())
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO sync_runs (id, source, kind, dry_run, status, actor, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $6)",
        )
        .bind(&run.id)
        .bind(&run.source)
        .bind(&run.kind)
        .bind(from_bool(run.dry_run))
        .bind(&run.actor)
        .bind(run.started_at)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A running run is alive at `at`.
    pub async fn sync_heartbeat(&self, id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET heartbeat_at = $1 WHERE id = $2 AND status = 'running'")
            .bind(at)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn sync_run(&self, id: &str) -> Result<Option<SyncRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The newest runs first.
    pub async fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs ORDER BY started_at DESC, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The last run that changed users (not a dry run, not failed): where an incremental run
    /// continues from; and when the last full run started.
    pub async fn sync_position(
        &self,
        source: &str,
    ) -> Result<(Option<String>, Option<i64>), StoreError> {
        let done = "source = $1 AND dry_run = 0 AND status IN ('done', 'held', 'approved')";
        let high: Option<String> = sqlx::query_scalar(&format!(
            "SELECT high_water FROM sync_runs WHERE {done} AND high_water <> '' \
             ORDER BY started_at DESC LIMIT 1"
        ))
        .bind(source)
        .fetch_optional(self.pool())
        .await?;
        let full: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MAX(started_at) FROM sync_runs WHERE {done} AND kind = 'full'"
        ))
        .bind(source)
        .fetch_one(self.pool())
        .await?;
        Ok((high, full))
    }

    /// Marks a run failed (nothing it read was applied).
    pub async fn sync_run_failed(
        &self,
        id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sync_runs SET status = 'failed', finished_at = $1, report = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(json(&[reason.to_string()]))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// How every user of `source` is known to the directory: username → (user id, directory
    /// id, second sign-in name).
    pub async fn identities(&self, source: &str) -> Result<HashMap<String, Identity>, StoreError> {
        let rows =
            sqlx::query("SELECT id, username, external_id, principal FROM users WHERE source = $1")
                .bind(source)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("username")?,
                    Identity {
                        id: r.try_get("id")?,
                        external_id: r.try_get("external_id")?,
                        principal: r.try_get("principal")?,
                    },
                ))
            })
            .collect()
    }

    /// The users that came from `source`, with groups, by username: all of them, or only those
    /// `named` (an incremental run looks at what changed, not at everyone).
    pub async fn users_from_source(
        &self,
        source: &str,
        named: Option<&[String]>,
    ) -> Result<HashMap<String, User>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let mut users = HashMap::new();
        let chunks: Vec<&[String]> = match named {
            None => vec![&[]],
            Some(names) => names.chunks(500).collect(),
        };
        for chunk in chunks {
            if named.is_some() && chunk.is_empty() {
                continue;
            }
            let only = names_clause(chunk, 2);
            let sql = format!(
                "SELECT g.user_id, g.group_name FROM user_groups g JOIN users u ON u.id = g.user_id \
                 WHERE u.source = $1{} ORDER BY g.group_name",
                only.replace("username", "u.username")
            );
            let mut q = sqlx::query(&sql).bind(source);
            for n in chunk {
                q = q.bind(n);
            }
            let rows = q.fetch_all(&mut *conn).await?;
            let mut groups: HashMap<String, Vec<String>> = HashMap::new();
            for r in &rows {
                groups
                    .entry(r.try_get("user_id")?)
                    .or_default()
                    .push(r.try_get("group_name")?);
            }
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE source = $1{only}");
            let mut q = sqlx::query(&sql).bind(source);
            for n in chunk {
                q = q.bind(n);
            }
            for r in &q.fetch_all(&mut *conn).await? {
                let id: String = r.try_get("id")?;
                let g = groups.remove(&id).unwrap_or_default();
                let u = user_from_row(r, g)?;
                users.insert(u.username.clone(), u);
            }
        }
        Ok(users)
    }

    /// Of `names`, those that exist with another source (a sync never takes them over).
    pub async fn usernames_not_from(
        &self,
        source: &str,
        names: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in names.chunks(500) {
            let sql = format!(
                "SELECT username FROM users WHERE source <> $1{}",
                names_clause(chunk, 2)
            );
            let mut q = sqlx::query_scalar(&sql).bind(source);
            for n in chunk {
                q = q.bind(n);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }
}

/// ` AND username IN ($first, …)` for `names` (empty: no condition).
fn names_clause(names: &[String], first: usize) -> String {
    if names.is_empty() {
        return String::new();
    }
    let params: Vec<String> = (first..first + names.len())
        .map(|i| format!("${i}"))
        .collect();
    format!(" AND username IN ({})", params.join(", "))
}

/// Writes the run's outcome in the transaction that applied it.
pub async fn sync_run_finish_in(conn: &mut AnyConnection, run: &SyncRun) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sync_runs SET status = $1, finished_at = $2, seen = $3, created = $4, updated = $5, \
         disabled = $6, unchanged = $7, errors = $8, high_water = $9, held_disables = $10, \
         report = $11 WHERE id = $12",
    )
    .bind(&run.status)
    .bind(run.finished_at)
    .bind(run.seen)
    .bind(run.created)
    .bind(run.updated)
    .bind(run.disabled)
    .bind(run.unchanged)
    .bind(run.errors)
    .bind(&run.high_water)
    .bind(json(&run.held_disables))
    .bind(json(&run.report))
    .bind(&run.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Disables a user and ends their sessions (part of a sync transaction).
pub async fn disable_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET enabled = 0, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A directory user renamed in the directory: the same user (id, methods, history) gets the new
/// name, in the sync's transaction.
pub async fn rename_user_in(
    conn: &mut AnyConnection,
    id: &str,
    username: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET username = $1, updated_at = $2 WHERE id = $3")
        .bind(username)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A directory user's ids (`Store::identities`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub external_id: Option<String>,
    pub principal: Option<String>,
}

/// Records a user's second sign-in name (None: the directory has none any more).
pub async fn set_principal_in(
    conn: &mut AnyConnection,
    source: &str,
    username: &str,
    principal: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET principal = $1 WHERE source = $2 AND username = $3")
        .bind(principal)
        .bind(source)
        .bind(username)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the directory's id of a user that has none yet (the first run after an upgrade,
/// or a new user).
pub async fn stamp_external_id_in(
    conn: &mut AnyConnection,
    source: &str,
    username: &str,
    external_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET external_id = $1 WHERE source = $2 AND username = $3 AND external_id IS NULL",
    )
    .bind(external_id)
    .bind(source)
    .bind(username)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
