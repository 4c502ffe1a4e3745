//! Hardware token inventory (`oath_tokens`) and recovery codes (`recovery_codes`).

use super::{Store, StoreError};
use sqlx::{AnyConnection, Row};

/// A hardware token as imported (its secret sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OathTokenRow {
    /// The serial number in lower case: the key.
    pub serial_key: String,
    pub serial: String,
    /// `hotp` or `totp`.
    pub otp: String,
    pub secret: String,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub counter: i64,
    pub manufacturer: String,
    pub model: String,
    pub owner: String,
    /// `unassigned`, `assigned` or `retired`.
    pub state: String,
    pub method_id: Option<String>,
    pub imported_at: i64,
    pub changed_at: i64,
}

const TOKEN_COLUMNS: &str = "serial_key, serial, otp, secret, algorithm, digits, period, counter, \
     manufacturer, model, owner, state, method_id, imported_at, changed_at";

fn token_from_row(r: &sqlx::any::AnyRow) -> Result<OathTokenRow, StoreError> {
    Ok(OathTokenRow {
        serial_key: r.try_get("serial_key")?,
        serial: r.try_get("serial")?,
        otp: r.try_get("otp")?,
        secret: r.try_get("secret")?,
        algorithm: r.try_get("algorithm")?,
        digits: r.try_get("digits")?,
        period: r.try_get("period")?,
        counter: r.try_get("counter")?,
        manufacturer: r.try_get("manufacturer")?,
        model: r.try_get("model")?,
        owner: r.try_get("owner")?,
        state: r.try_get("state")?,
        method_id: r.try_get("method_id")?,
        imported_at: r.try_get("imported_at")?,
        changed_at: r.try_get("changed_at")?,
    })
}

/// A token of the inventory with its holder, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenListing {
    pub token: OathTokenRow,
    pub username: Option<String>,
}

impl Store {
    /// Adds tokens in one transaction: all or none (a serial number already in the inventory
    /// fails the whole insert; the caller checks [`Store::known_serials`] first).
    pub async fn insert_oath_tokens(&self, rows: &[OathTokenRow]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for t in rows {
            sqlx::query(&format!(
                "INSERT INTO oath_tokens ({TOKEN_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(&t.serial_key)
            .bind(&t.serial)
            .bind(&t.otp)
            .bind(&t.secret)
            .bind(&t.algorithm)
            .bind(t.digits)
            .bind(t.period)
            .bind(t.counter)
            .bind(&t.manufacturer)
            .bind(&t.model)
            .bind(&t.owner)
            .bind(&t.state)
            .bind(t.method_id.as_deref())
            .bind(t.imported_at)
            .bind(t.changed_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which of these serial keys the inventory holds already.
    pub async fn known_serials(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(200) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT serial_key FROM oath_tokens WHERE serial_key IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k);
            }
            for r in q.fetch_all(self.pool()).await? {
                out.push(r.try_get("serial_key")?);
            }
        }
        Ok(out)
    }

    pub async fn oath_token(&self, serial_key: &str) -> Result<Option<OathTokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM oath_tokens WHERE serial_key = $1"
        ))
        .bind(serial_key)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The token a method is, if it is one.
    pub async fn oath_token_of_method(
        &self,
        method_id: &str,
    ) -> Result<Option<OathTokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM oath_tokens WHERE method_id = $1"
        ))
        .bind(method_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Whose method this is.
    pub async fn method_owner(&self, method_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT user_id FROM methods WHERE id = $1")
            .bind(method_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("user_id")?),
            None => None,
        })
    }

    /// The inventory, by serial number, with each holder (a token whose method is gone — its
    /// user deleted — is listed as retired).
    pub async fn oath_tokens(&self) -> Result<Vec<TokenListing>, StoreError> {
        let cols: Vec<String> = TOKEN_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {}, u.username AS holder FROM oath_tokens t \
             LEFT JOIN methods m ON m.id = t.method_id \
             LEFT JOIN users u ON u.id = m.user_id ORDER BY t.serial_key",
            cols.join(", ")
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let mut token = token_from_row(r)?;
                let username: Option<String> = r.try_get("holder")?;
                if token.state == "assigned" && username.is_none() {
                    token.state = "retired".into();
                }
                Ok(TokenListing { token, username })
            })
            .collect()
    }

    /// An administrator's decision: the token may be given out again (unassigned), or not
    /// (retired). Its method, if any, must be gone already.
    pub async fn set_oath_token_state(
        &self,
        serial_key: &str,
        state: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE oath_tokens SET state = $1, method_id = NULL, changed_at = $2 \
             WHERE serial_key = $3",
        )
        .bind(state)
        .bind(now)
        .bind(serial_key)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Unused codes of a set.
    pub async fn recovery_codes_left(&self, method_id: &str) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE method_id = $1 AND used_at = 0",
        )
        .bind(method_id)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(n)
    }
}

/// A token method's row is gone (removed by its user, the helpdesk or the API): the token is
/// retired — handed out again only when an administrator says so (`converge tokens release`).
pub async fn retire_tokens_of_method_in(
    conn: &mut AnyConnection,
    method_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE oath_tokens SET state = 'retired', method_id = NULL WHERE method_id = $1")
        .bind(method_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// [`retire_tokens_of_method_in`] for every method of a user (re-registration).
pub async fn retire_tokens_of_user_in(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE oath_tokens SET state = 'retired', method_id = NULL \
         WHERE method_id IN (SELECT id FROM methods WHERE user_id = $1)",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An unassigned token becomes `method_id`'s; true for exactly one caller.
pub async fn assign_oath_token_in(
    conn: &mut AnyConnection,
    serial_key: &str,
    method_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE oath_tokens SET state = 'assigned', method_id = $1, changed_at = $2 \
         WHERE serial_key = $3 AND state = 'unassigned'",
    )
    .bind(method_id)
    .bind(now)
    .bind(serial_key)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The user's recovery code set (replacing any earlier one) inside the caller's
/// transaction: `hashes` are the codes' HMACs.
pub async fn insert_recovery_codes_in(
    conn: &mut AnyConnection,
    method_id: &str,
    user_id: &str,
    hashes: &[String],
) -> Result<(), StoreError> {
    for h in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (id, method_id, user_id, code_hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(method_id)
        .bind(user_id)
        .bind(h)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Uses one recovery code of a set: true for exactly one caller per code.
pub async fn use_recovery_code_in(
    conn: &mut AnyConnection,
    method_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let r = sqlx::query(
        "UPDATE recovery_codes SET used_at = $1 \
         WHERE method_id = $2 AND code_hash = $3 AND used_at = 0",
    )
    .bind(now)
    .bind(method_id)
    .bind(code_hash)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 1 {
        sqlx::query("UPDATE methods SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(method_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(r.rows_affected() == 1)
}
