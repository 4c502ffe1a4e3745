//! `converge key rotate`: re-seals every sealed value under a new instance key.
//!
//! Run it with every instance stopped. The new key is written next to the old one
//! (`secret.key.next`, mode 0600) and named in `instance_meta` before anything is sealed with it,
//! so an interrupted rotation is finished by running the command again (both keys stay readable
//! until then, and no instance starts meanwhile). Each value is opened with the new key first
//! (already done) and else with the old one, and replaced only if it did not change meanwhile.
//! At the end one transaction records the new fingerprint and the hash key sealed under the new
//! key; then the old key file is kept as `secret.key.<fingerprint>.retired` (backups made before
//! the rotation need it) and the new one takes its place.
//!
//! Stored hashes of codes, passes and recovery codes keep matching (the hash key is kept, see
//! [`crate::crypto`]); values the old key signed (device cookies, proof-of-work challenges) do
//! not: a device is recognised again after its next sign-in.

use crate::config::{read_key_file, read_secret_key, Configuration, SecretKey};
use crate::crypto::Sealer;
use crate::domain::audit::{event, AuditEntry};
use crate::store::instance::{SealedColumn, HASH_KEY, KEY_FINGERPRINT, KEY_ROTATION_TO};
use crate::store::Store;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// How a sealed value's associated data is built from its row name.
#[derive(Clone, Copy)]
enum Ctx {
    RowName,
    Fixed(&'static str),
    Prefixed(&'static str),
}

/// Every column that holds values sealed under the instance key, and how each was sealed.
const SEALED: &[(SealedColumn, Ctx)] = &[
    (col("methods", "id", "secret"), Ctx::RowName),
    (
        col("oath_tokens", "serial_key", "secret"),
        Ctx::Prefixed("oath:"),
    ),
    (col("outbox", "id", "payload"), Ctx::RowName),
    (col("ceremonies", "id", "state"), Ctx::RowName),
    (
        col("temporary_passes", "id", "pass_sealed"),
        Ctx::Fixed("tap"),
    ),
    (
        col(
            "api_idempotency",
            "token_id || ':' || idem_key",
            "body_sealed",
        ),
        Ctx::Fixed("api-idempotency"),
    ),
    (
        col("password_writebacks", "flow_id", "password"),
        Ctx::Prefixed(crate::domain::flows::reset::WRITEBACK_CONTEXT),
    ),
];

impl Ctx {
    fn of(self, name: &str) -> String {
        match self {
            Ctx::RowName => name.to_string(),
            Ctx::Fixed(c) => c.to_string(),
            Ctx::Prefixed(p) => format!("{p}{name}"),
        }
    }
}

/// Walks one sealed column in batches, in the order of its row names.
struct Walk {
    column: SealedColumn,
    after: String,
}

impl Walk {
    fn new(column: SealedColumn) -> Self {
        Walk {
            column,
            after: String::new(),
        }
    }

    async fn next(&mut self, store: &Store) -> anyhow::Result<Option<Vec<(String, String)>>> {
        let batch = store.sealed_values(self.column, &self.after, BATCH).await?;
        Ok(batch.last().cloned().map(|(last, _)| {
            self.after = last;
            batch
        }))
    }
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Sealed values the key opens.
    pub opened: u64,
    /// Those it does not (table.column and row), at most 20.
    pub unreadable: Vec<String>,
    pub unreadable_count: u64,
}

/// Opens every sealed value in the database with `sealer` (`converge check-config`, and the
/// proof after a rotation or a restore that the key is the right one for all of it).
pub async fn check(store: &Store, sealer: &Sealer) -> anyhow::Result<Checked> {
    let mut c = Checked::default();
    for (column, ctx) in SEALED {
        let mut walk = Walk::new(*column);
        while let Some(batch) = walk.next(store).await? {
            for (name, value) in &batch {
                if sealer.open(value, &ctx.of(name)).is_ok() {
                    c.opened += 1;
                } else {
                    c.unreadable_count += 1;
                    if c.unreadable.len() < 20 {
                        c.unreadable
                            .push(format!("{}.{} {name}", column.table, column.column));
                    }
                }
            }
        }
    }
    Ok(c)
}

const fn col(table: &'static str, id: &'static str, column: &'static str) -> SealedColumn {
    SealedColumn { table, id, column }
}

const BATCH: i64 = 200;

/// What a rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    pub from: String,
    pub to: String,
    /// Values sealed again under the new key (this run).
    pub resealed: u64,
    /// Values found already under the new key (an earlier, interrupted run).
    pub already: u64,
    /// Values neither key opens (corrupt): left as they are, listed by table.
    pub unreadable: Vec<String>,
    /// Where the old key was kept, when it came from a file.
    pub retired: Option<PathBuf>,
    /// False when the run stopped early on request (tests) and must be run again.
    pub finished: bool,
}

/// The file the next key is written to while a rotation runs.
pub fn next_key_path(config: &Configuration) -> PathBuf {
    let mut p = config.secret_key_file.clone().into_os_string();
    p.push(".next");
    PathBuf::from(p)
}

fn retired_path(key_file: &Path, fingerprint: &str) -> PathBuf {
    let mut p = key_file.to_path_buf().into_os_string();
    p.push(format!(
        ".{}.retired",
        &fingerprint[..16.min(fingerprint.len())]
    ));
    PathBuf::from(p)
}

/// Rotates the instance key (see the module documentation). `stop_after` ends the run after
/// that many values were sealed again, as an interruption would (tests).
pub async fn rotate(
    config: &Configuration,
    now: i64,
    stop_after: Option<u64>,
) -> anyhow::Result<Rotation> {
    let store = Store::connect(&config.database_url, 2).await?;
    store.migrate().await?;
    let result = rotate_on(&store, config, now, stop_after).await;
    store.close().await;
    result
}

async fn rotate_on(
    store: &Store,
    config: &Configuration,
    now: i64,
    stop_after: Option<u64>,
) -> anyhow::Result<Rotation> {
    let (key, source) = read_secret_key(&config.secret_key_file)?;
    let from_file = source == config.secret_key_file.display().to_string();
    let next_path = next_key_path(config);
    let stored = store.instance_meta(KEY_FINGERPRINT).await?;
    let pending = store.instance_meta(KEY_ROTATION_TO).await?;
    let next_key = read_key_file(&next_path)?;
    let Some(key) = key else {
        // stopped between keeping the old key file and moving the new one into place
        if let (Some(next), Some(stored), None, true) = (&next_key, &stored, &pending, from_file) {
            if Sealer::new(next).fingerprint() == *stored {
                std::fs::rename(&next_path, &config.secret_key_file)
                    .with_context(|| format!("moving {} into place", next_path.display()))?;
                return Ok(Rotation {
                    from: "(the retired key)".into(),
                    to: stored.clone(),
                    finished: true,
                    ..Default::default()
                });
            }
        }
        bail!(
            "no instance key at {source}: a rotation starts from the key the data is sealed with"
        );
    };
    let current = Sealer::new(&key);

    // an earlier run finished in the database but not on disk: only the files remain
    if let (Some(next), Some(stored)) = (&next_key, &stored) {
        if Sealer::new(next).fingerprint() == *stored && pending.is_none() {
            let retired = swap_files(config, &next_path, &current.fingerprint(), from_file)?;
            return Ok(Rotation {
                from: current.fingerprint(),
                to: stored.clone(),
                retired,
                finished: true,
                ..Default::default()
            });
        }
    }
    if let Some(stored) = &stored {
        if *stored != current.fingerprint() {
            bail!(
                "the instance key from {source} (fingerprint {}) is not the key this database is \
                 sealed with (fingerprint {stored}): a rotation starts from the right key",
                current.fingerprint()
            );
        }
    }
    let old = with_stored_hash_key(store, &key, current).await?;
    let new_key: SecretKey = match (pending.as_deref(), next_key) {
        (Some(to), Some(next)) if Sealer::new(&next).fingerprint() == to => next,
        (Some(to), _) => bail!(
            "an unfinished rotation moves the data to the key with fingerprint {to}, but {} does \
             not hold that key: put it back to finish the rotation",
            next_path.display()
        ),
        (None, leftover) => {
            // a leftover next key that nothing was sealed with yet (the run stopped before it
            // was recorded) is replaced
            if leftover.is_some() {
                std::fs::remove_file(&next_path)?;
            }
            let k = crate::config::create_secret_key(&next_path)?;
            store
                .set_instance_meta(KEY_ROTATION_TO, &Sealer::new(&k).fingerprint(), now)
                .await?;
            let mut e = AuditEntry::new(event::KEY_ROTATION_STARTED, true, now);
            e.actor = Some("cli".into());
            e.reason = Some(format!("to {}", Sealer::new(&k).fingerprint()));
            store.append_audit(&e).await?;
            k
        }
    };
    let new = old.rekeyed(&new_key);
    let mut r = Rotation {
        from: old.fingerprint(),
        to: new.fingerprint(),
        ..Default::default()
    };
    for (column, ctx) in SEALED {
        let mut walk = Walk::new(*column);
        while let Some(batch) = walk.next(store).await? {
            for (name, value) in &batch {
                let context = ctx.of(name);
                if new.open(value, &context).is_ok() {
                    r.already += 1;
                    continue;
                }
                let Ok(plain) = old.open(value, &context) else {
                    r.unreadable
                        .push(format!("{}.{} {name}", column.table, column.column));
                    continue;
                };
                if stop_after.is_some_and(|n| r.resealed >= n) {
                    return Ok(r);
                }
                let sealed = new.seal(&plain, &context);
                // a row that changed meanwhile keeps its newer value (sealed by whoever wrote it)
                if store.replace_sealed(*column, name, value, &sealed).await? {
                    r.resealed += 1;
                }
            }
        }
    }
    store
        .finish_key_rotation(&new.fingerprint(), &new.sealed_hash_key(), now)
        .await?;
    let mut e = AuditEntry::new(event::KEY_ROTATED, true, now);
    e.actor = Some("cli".into());
    e.reason = Some(format!(
        "from {} to {}: {} values sealed again, {} unreadable",
        r.from,
        r.to,
        r.resealed + r.already,
        r.unreadable.len()
    ));
    store.append_audit(&e).await?;
    r.retired = swap_files(config, &next_path, &r.from, from_file)?;
    r.finished = true;
    Ok(r)
}

/// The sealer for `key` with the hash key the database keeps (after an earlier rotation): what
/// every start and every rotation seals and hashes with.
pub(crate) async fn with_stored_hash_key(
    store: &Store,
    key: &SecretKey,
    sealer: Sealer,
) -> anyhow::Result<Sealer> {
    Ok(match store.instance_meta(HASH_KEY).await? {
        None => sealer,
        Some(sealed) => {
            let hash_key = sealer.open_hash_key(&sealed).map_err(|_| {
                anyhow::anyhow!("the hash key in instance_meta does not open with the instance key")
            })?;
            Sealer::with_hash_key(key, hash_key)
        }
    })
}

/// Puts the new key in place of the old one (kept as `.retired`) when the key is a file; a key
/// from the environment or a systemd credential is the operator's to replace.
fn swap_files(
    config: &Configuration,
    next_path: &Path,
    old_fingerprint: &str,
    from_file: bool,
) -> anyhow::Result<Option<PathBuf>> {
    if !from_file {
        return Ok(None);
    }
    let key_file = &config.secret_key_file;
    let retired = retired_path(key_file, old_fingerprint);
    if key_file.exists() {
        std::fs::rename(key_file, &retired)
            .with_context(|| format!("keeping the old key as {}", retired.display()))?;
    }
    std::fs::rename(next_path, key_file)
        .with_context(|| format!("moving {} into place", next_path.display()))?;
    Ok(Some(retired))
}
