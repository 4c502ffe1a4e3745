//! Password hashing with argon2id, off the async threads and bounded to the number of cores.
//! Unknown users are verified against a fallback hash so every sign-in costs the same.

use super::policy::{Argon2Policy, MAX_PASSWORD_BYTES};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// A password as typed. Never printed, never serialised.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Refuses empty input and input over 256 bytes (before any hashing).
    pub fn parse(s: String) -> Result<Password, PasswordError> {
        if s.is_empty() {
            return Err(PasswordError::Empty);
        }
        if s.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Password(s))
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than 256 bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hashing(String),
    /// Every hashing slot is taken and the queue is full: shed the request (SYS-503).
    #[error("the password hashing queue is full")]
    Busy,
}

pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    fallback: String,
    verifications: AtomicU64,
    /// Argon2 working memory (19 MiB each by default), reused across verifications: at most one
    /// per core ever exists, so memory stays flat under load.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Sign-in verifications running or waiting for a slot, and the most allowed
    /// (`argon2.max_queue`): beyond it a sign-in is refused at once instead of queueing.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

/// One place in the bounded sign-in queue (released on drop).
struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher {
    pub fn new(policy: &Argon2Policy) -> Result<Self, PasswordError> {
        let params = Params::new(
            policy.memory_kib,
            policy.iterations,
            policy.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let fallback = argon2
            .hash_password(b"converge-fallback-password-never-matches", &salt)
            .map_err(|e| PasswordError::Hashing(e.to_string()))?
            .to_string();
        Ok(PasswordHasher {
            argon2,
            permits: Arc::new(Semaphore::new(cores)),
            fallback,
            verifications: AtomicU64::new(0),
            memory: Arc::default(),
            queued: Arc::default(),
            max_queued: (policy.max_queue as usize).max(1),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=…`).
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        let argon2 = self.argon2.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hashing(e.to_string()))
        })
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))?
    }

    /// Is the sign-in queue full (so a new sign-in would be refused)? For load shedding at the
    /// door, before a request does any work.
    pub fn saturated(&self) -> bool {
        self.queued.load(Ordering::SeqCst) >= self.max_queued
    }

    /// [`Self::verify`] for sign-in: refused with [`PasswordError::Busy`] at once when
    /// `max_queue` verifications are already running or waiting.
    pub async fn verify_bounded(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(PasswordError::Busy);
        }
        let _place = QueuePlace(self.queued.clone());
        Ok(self.verify(password, stored).await)
    }

    /// Verifies against `stored`, or against the fallback hash when there is none (and then
    /// returns false): the caller cannot tell the two apart by time.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let password = password.clone();
        let real = stored.is_some();
        let phc = stored.unwrap_or(&self.fallback).to_string();
        let fallback = self.fallback.clone();
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            // an unparsable stored hash still costs one verification
            let matched = match verify_phc(&memory, password.expose().as_bytes(), &phc) {
                Ok(m) => m,
                Err(()) => {
                    let _ = verify_phc(&memory, password.expose().as_bytes(), &fallback);
                    false
                }
            };
            matched && real
        })
        .await
        .unwrap_or(false)
    }

    /// How many verifications this hasher has run (each sign-in must cost exactly one).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Raw verifications per second on all cores for `seconds` (benchmark bound).
    pub fn bench_raw(&self, seconds: f64) -> f64 {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
        let start = std::time::Instant::now();
        let total: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cores)
                .map(|_| {
                    s.spawn(|| {
                        // the same code path and memory reuse as a real verification
                        let mut n = 0usize;
                        while std::time::Instant::now() < deadline {
                            let _ = verify_phc(&self.memory, b"bench", &self.fallback);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        total as f64 / start.elapsed().as_secs_f64()
    }
}

/// Verifies `password` against a PHC string with the parameters stored in it, using pooled
/// working memory. `Err` when the PHC string is not an argon2 hash.
fn verify_phc(pool: &Mutex<Vec<Vec<Block>>>, password: &[u8], phc: &str) -> Result<bool, ()> {
    let hash = PasswordHash::new(phc).map_err(|_| ())?;
    let algorithm = Algorithm::try_from(hash.algorithm).map_err(|_| ())?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| ())?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|_| ())?;
    let expected = hash.hash.ok_or(())?;
    let mut salt = [0u8; 64];
    let salt = hash.salt.ok_or(())?.decode_b64(&mut salt).map_err(|_| ())?;
    let blocks = params.block_count();
    let mut memory = pool.lock().map_err(|_| ())?.pop().unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let result = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    if let Ok(mut pool) = pool.lock() {
        pool.push(memory);
    }
    result.map_err(|_| ())?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}
