//! Persistence over SQLite (embedded default) and PostgreSQL (several instances), through sqlx's
//! `Any` driver: one SQL text for both dialects (`$n` placeholders, integers for times and
//! booleans), one migration folder per dialect. All state lives here — sessions, throttles,
//! audit — so instances behind a load balancer agree without sticky sessions.

pub mod api;
pub mod audit;
pub mod gateway;
pub mod helpdesk;
pub mod instance;
pub mod methods;
pub mod oath;
pub mod outbox;
pub mod reset;
pub mod retention;
pub mod sessions;
pub mod sync;
mod throttles;
pub mod users;

pub use sessions::SessionRow;
pub use throttles::{Settle, Taken, Throttle};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL `{0}` (use sqlite:… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

/// The database file of a `sqlite://` URL (`None` for in-memory databases and other URLs).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let file = rest.trim_start_matches("//").split('?').next()?;
    (!file.is_empty() && file != ":memory:").then(|| std::path::PathBuf::from(file))
}

impl Store {
    /// Connects (creating an SQLite file and its folder when missing).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if url.starts_with("sqlite:") {
            if let Some(file) = sqlite_file(url) {
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Sqlx(sqlx::Error::Io(e)))?;
                }
            }
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store { pool, dialect })
    }

    /// Applies the migrations of this dialect (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => {
                sqlx::migrate!("../migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Dialect::Postgres => {
                sqlx::migrate!("../migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Readiness: can we run a query?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool, for tools and tests that need raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

fn to_bool(v: i64) -> bool {
    v != 0
}

fn from_bool(b: bool) -> i64 {
    i64::from(b)
}
