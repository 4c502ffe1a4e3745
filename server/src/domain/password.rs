//! Password hashing with argon2id, off the async threads and bounded to the number of cores.
//! Unknown users are verified against a fallback hash so every sign-in costs the same.

use super::policy::{Argon2Policy, MAX_PASSWORD_BYTES};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    fn expose(&self) -> &str {
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
}

pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    fallback: String,
    verifications: AtomicU64,
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

    /// Verifies against `stored`, or against the fallback hash when there is none (and then
    /// returns false): the caller cannot tell the two apart by time.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let argon2 = self.argon2.clone();
        let password = password.clone();
        let real = stored.is_some();
        let phc = stored.unwrap_or(&self.fallback).to_string();
        let fallback = self.fallback.clone();
        tokio::task::spawn_blocking(move || {
            // an unparsable stored hash still costs one verification
            let parsed = PasswordHash::new(&phc).or_else(|_| PasswordHash::new(&fallback));
            match parsed {
                Ok(hash) => {
                    argon2
                        .verify_password(password.expose().as_bytes(), &hash)
                        .is_ok()
                        && real
                }
                Err(_) => false,
            }
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
                        let Ok(hash) = PasswordHash::new(&self.fallback) else {
                            return 0;
                        };
                        let mut n = 0usize;
                        while std::time::Instant::now() < deadline {
                            let _ = self.argon2.verify_password(b"bench", &hash);
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
