//! `converge backup FILE` and `converge restore FILE`: an online, consistent copy of the SQLite
//! database (taken while the server serves) and its restore into an empty data folder, each
//! checked against the instance key's fingerprint. PostgreSQL is backed up with `pg_dump`.
//! The key itself is never written into a backup: keep `secret.key` apart from it.

use crate::config::{read_secret_key, Configuration};
use crate::crypto::Sealer;
use crate::store::instance::KEY_FINGERPRINT;
use crate::store::{sqlite_file, Store};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// What a backup wrote.
#[derive(Debug)]
pub struct Backup {
    pub bytes: u64,
    /// The fingerprint of the key the data is sealed with (restore needs that key).
    pub fingerprint: Option<String>,
}

fn sqlite_only(config: &Configuration) -> anyhow::Result<PathBuf> {
    match sqlite_file(&config.database_url) {
        Some(f) => Ok(f),
        None => bail!(
            "this instance uses PostgreSQL: back it up with pg_dump (docs/operations.md) and \
             keep the instance key (security.secret_key_file) with it; converge backup copies \
             SQLite databases"
        ),
    }
}

/// Copies the live database to `to` (which must not exist yet).
pub async fn backup(config: &Configuration, to: &Path) -> anyhow::Result<Backup> {
    let file = sqlite_only(config)?;
    if to.exists() {
        bail!(
            "{} exists already: a backup never overwrites a file",
            to.display()
        );
    }
    if !file.exists() {
        bail!("there is no database at {} to back up", file.display());
    }
    let store = Store::connect(&config.database_url, 1).await?;
    store
        .sqlite_copy_to(to)
        .await
        .with_context(|| format!("writing {}", to.display()))?;
    let fingerprint = store.instance_meta(KEY_FINGERPRINT).await?;
    store.close().await;
    let bytes = std::fs::metadata(to)?.len();
    Ok(Backup { bytes, fingerprint })
}

/// How the restored data relates to the instance key this configuration finds.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyCheck {
    Matches(String),
    /// No key where the configuration looks: put the one with this fingerprint there.
    Missing {
        expected: Option<String>,
        at: String,
    },
    Different {
        expected: String,
        found: String,
    },
}

/// Restores a backup into this configuration's database, which must not exist yet (an empty
/// data folder), brings its schema up to date, and checks the instance key against it.
pub async fn restore(config: &Configuration, from: &Path) -> anyhow::Result<KeyCheck> {
    let file = sqlite_only(config)?;
    if file.exists() {
        bail!(
            "a database exists at {}: restore only into an empty data folder (move it away first)",
            file.display()
        );
    }
    if !from.is_file() {
        bail!("no backup at {}", from.display());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // a backup is a standalone database file (VACUUM INTO leaves no journal beside it)
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(from)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"SQLite format 3\0";
    if !is_sqlite {
        bail!(
            "{} is not a Converge backup (not an SQLite database)",
            from.display()
        );
    }
    std::fs::copy(from, &file).with_context(|| format!("copying to {}", file.display()))?;
    let opened = async {
        let store = Store::connect(&config.database_url, 1).await?;
        store.migrate().await?;
        let expected = store.instance_meta(KEY_FINGERPRINT).await?;
        store.close().await;
        Ok::<_, crate::store::StoreError>(expected)
    };
    let expected = match opened.await {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_file(&file);
            bail!("{} is not a Converge backup: {e}", from.display());
        }
    };
    let (key, at) = read_secret_key(&config.secret_key_file)?;
    Ok(match (key, expected) {
        (None, expected) => KeyCheck::Missing { expected, at },
        (Some(k), Some(expected)) => {
            let found = Sealer::new(&k).fingerprint();
            if found == expected {
                KeyCheck::Matches(found)
            } else {
                KeyCheck::Different { expected, found }
            }
        }
        (Some(k), None) => KeyCheck::Matches(Sealer::new(&k).fingerprint()),
    })
}
