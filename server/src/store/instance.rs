//! `instance_meta`: facts about this instance's data (the instance key's fingerprint).

use super::{Store, StoreError};
use sqlx::Row;

/// The `instance_meta` name of the instance key's fingerprint.
pub const KEY_FINGERPRINT: &str = "key_fingerprint";

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
