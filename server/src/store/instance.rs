//! `instance_meta`: facts about this instance's data (the instance key's fingerprint).

use super::{Store, StoreError};
use sqlx::Row;

/// The `instance_meta` name of the instance key's fingerprint.
pub const KEY_FINGERPRINT: &str = "key_fingerprint";
/// The fingerprint of the key an unfinished `converge key rotate` is moving the data to.
pub const KEY_ROTATION_TO: &str = "key_rotation_to";
/// The hash key (for stored hashes of codes), sealed under the current key; absent until the
/// first rotation (then it is derived from the key).
pub const HASH_KEY: &str = "hash_key";

/// A column holding values sealed under the instance key: `id` is the SQL expression that names
/// a row (and orders the walk through the table).
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub id: &'static str,
    pub column: &'static str,
}

/// Tables whose rows are sealed or HMAC'd under the instance key: with another key they are
/// unreadable (secrets, queued messages) or never match again (codes, passes, API tokens).
const KEYED_TABLES: &[&str] = &[
    "methods",
    "oath_tokens",
    "outbox",
    "codes",
    "temporary_passes",
    "api_tokens",
    "recovery_codes",
];

impl Store {
    pub async fn instance_meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM instance_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    /// Records `value` unless the name has one already (the first instance to start wins);
    /// returns the value that is now stored.
    pub async fn instance_meta_first(
        &self,
        name: &str,
        value: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO instance_meta (name, value, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(self.instance_meta(name).await?.unwrap_or_default())
    }

    pub async fn set_instance_meta(
        &self,
        name: &str,
        value: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await?;
        set_instance_meta_in(&mut conn, name, value, now).await
    }

    /// The end of a key rotation, at once: the new fingerprint and the hash key sealed under the
    /// new key recorded, the rotation marker gone.
    pub async fn finish_key_rotation(
        &self,
        fingerprint: &str,
        sealed_hash_key: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for (name, value) in [(KEY_FINGERPRINT, fingerprint), (HASH_KEY, sealed_hash_key)] {
            set_instance_meta_in(&mut tx, name, value, now).await?;
        }
        sqlx::query("DELETE FROM instance_meta WHERE name = $1")
            .bind(KEY_ROTATION_TO)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` sealed values of `col` whose row name sorts after `after`: (name, value).
    pub async fn sealed_values(
        &self,
        col: SealedColumn,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql = format!(
            "SELECT {id} AS name, {c} AS value FROM {t} WHERE {c} LIKE 'v1:%' AND {id} > $1 \
             ORDER BY {id} LIMIT $2",
            id = col.id,
            c = col.column,
            t = col.table
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("value")?)))
            .collect()
    }

    /// Replaces one sealed value if it is still `old` (a concurrent change wins).
    pub async fn replace_sealed(
        &self,
        col: SealedColumn,
        name: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {t} SET {c} = $1 WHERE {id} = $2 AND {c} = $3",
            id = col.id,
            c = col.column,
            t = col.table
        );
        let done = sqlx::query(&sql)
            .bind(new)
            .bind(name)
            .bind(old)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether anything in the database depends on the instance key.
    pub async fn holds_keyed_data(&self) -> Result<bool, StoreError> {
        for table in KEYED_TABLES {
            let sql = format!("SELECT 1 AS one FROM {table} LIMIT 1");
            if sqlx::query(&sql)
                .fetch_optional(self.pool())
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// SQLite: a consistent copy of the whole database in one new file while the server keeps
    /// serving (`VACUUM INTO`: readers and writers go on; the copy is one transaction's view).
    pub async fn sqlite_copy_to(&self, to: &std::path::Path) -> Result<(), StoreError> {
        sqlx::query("VACUUM INTO $1")
            .bind(to.display().to_string())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// Records `name = value` in the caller's transaction (or connection).
async fn set_instance_meta_in(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    value: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO instance_meta (name, value, changed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at",
    )
    .bind(name)
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
