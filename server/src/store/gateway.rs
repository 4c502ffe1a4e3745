//! Gateway (RADIUS) challenges: put, and take once.

use super::{Store, StoreError};
use sqlx::Row;

/// A challenge as stored (`id_hash` is an HMAC of the State the gateway holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id_hash: String,
    pub client: String,
    pub user_id: String,
    pub username: String,
    pub method_id: String,
    pub channel: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn put_challenge(&self, c: &ChallengeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateway_challenges \
             (id_hash, client, user_id, username, method_id, channel, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id_hash)
        .bind(&c.client)
        .bind(&c.user_id)
        .bind(&c.username)
        .bind(&c.method_id)
        .bind(&c.channel)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Spends the challenge if it is unused, unexpired and belongs to `client` and `username`
    /// (one winner under concurrent answers; a State from another client or user spends
    /// nothing).
    pub async fn take_challenge(
        &self,
        id_hash: &str,
        client: &str,
        username: &str,
        now: i64,
    ) -> Result<Option<ChallengeRow>, StoreError> {
        let row = sqlx::query(
            "UPDATE gateway_challenges SET used_at = $1 \
             WHERE id_hash = $2 AND client = $3 AND username = $4 AND used_at = 0 \
               AND expires_at > $1 \
             RETURNING id_hash, client, user_id, username, method_id, channel, created_at, \
               expires_at",
        )
        .bind(now)
        .bind(id_hash)
        .bind(client)
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ChallengeRow {
                id_hash: r.try_get("id_hash")?,
                client: r.try_get("client")?,
                user_id: r.try_get("user_id")?,
                username: r.try_get("username")?,
                method_id: r.try_get("method_id")?,
                channel: r.try_get("channel")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// The device nonce of a station that signed `username` in before, if any.
    pub async fn gateway_device(
        &self,
        username: &str,
        station: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT nonce FROM gateway_devices WHERE username = $1 AND station = $2")
                .bind(username)
                .bind(station)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| r.try_get("nonce"))
            .transpose()
            .map_err(Into::into)
    }

    pub async fn remember_gateway_device(
        &self,
        username: &str,
        station: &str,
        nonce: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO gateway_devices (username, station, nonce, last_ok_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username, station) DO UPDATE SET last_ok_at = excluded.last_ok_at",
        )
        .bind(username)
        .bind(station)
        .bind(nonce)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
