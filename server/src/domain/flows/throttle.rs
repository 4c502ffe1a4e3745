//! The one throttle for every guessable input (docs/throttling.md): sign-in passwords, second
//! factors and codes, PINs, answers, passes, reset requests, helpdesk checks.
//!
//! ```text
//!  attempt ──► begin(keys) ── one atomic statement per bucket: check AND count ──► refused?
//!                │                                             (nothing changes) ──► the normal
//!                │ counted (in flight)                                          throttle answer
//!                ▼
//!            the work (argon2, code check, directory bind)
//!                ▼
//!      failed ─► the count stays          succeeded ─► account buckets forget; shared buckets
//!                                                       (client address) take the count back
//! ```
//! Because the attempt is counted before the work, a parallel burst is refused exactly where a
//! sequential one would be, and at most `max_in_flight` attempts per bucket are evaluated at once.

use crate::domain::policy::Bucket;
use crate::store::{Settle, Store, StoreError, Taken};

/// One bucket an attempt is counted in.
#[derive(Debug, Clone)]
pub struct Key {
    pub scope: &'static str,
    pub subject: String,
    pub bucket: Bucket,
    /// A success forgets this bucket's failures (the account's); otherwise (a shared client
    /// address) a success only takes its own count back.
    pub clear_on_success: bool,
}

impl Key {
    pub fn account(scope: &'static str, subject: &str, bucket: Bucket) -> Key {
        Key {
            scope,
            subject: subject.to_string(),
            bucket,
            clear_on_success: true,
        }
    }

    pub fn shared(scope: &'static str, subject: &str, bucket: Bucket) -> Key {
        Key {
            clear_on_success: false,
            ..Key::account(scope, subject, bucket)
        }
    }
}

/// A counted attempt in flight. End it with [`Attempt::failed`], [`Attempt::succeeded`] or
/// [`Attempt::cancel`]; one left alone stays counted as a failure and its in-flight mark lapses
/// after a minute.
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    keys: Vec<Key>,
    /// What each bucket saw, in the order of the keys.
    pub taken: Vec<Taken>,
}

/// Counts an attempt in every bucket, or in none: `Err(i)` names the first bucket that refused
/// (the ones before it are taken back).
pub async fn begin(
    store: &Store,
    keys: Vec<Key>,
    now: i64,
) -> Result<Result<Attempt, usize>, StoreError> {
    // a full bucket refuses on a read: a flood of refused attempts writes nothing (the atomic
    // take below still decides every attempt that the read would let through)
    for (i, k) in keys.iter().enumerate() {
        if refuses(store, k, now).await? {
            return Ok(Err(i));
        }
    }
    let mut taken = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        match store
            .take_attempt(k.scope, &k.subject, &k.bucket, now)
            .await?
        {
            Some(t) => taken.push(t),
            None => {
                for k in &keys[..i] {
                    store
                        .settle_attempt(k.scope, &k.subject, &k.bucket, Settle::Undo)
                        .await?;
                }
                return Ok(Err(i));
            }
        }
    }
    Ok(Ok(Attempt { keys, taken }))
}

impl Attempt {
    pub async fn failed(self, store: &Store) -> Result<Vec<Taken>, StoreError> {
        self.settle(store, |_| Settle::Failed).await?;
        Ok(self.taken)
    }

    pub async fn succeeded(self, store: &Store) -> Result<(), StoreError> {
        self.settle(store, |k| {
            if k.clear_on_success {
                Settle::Clear
            } else {
                Settle::Undo
            }
        })
        .await
    }

    /// Not a guess after all (refused for another reason): nothing is counted.
    pub async fn cancel(self, store: &Store) -> Result<(), StoreError> {
        self.settle(store, |_| Settle::Undo).await
    }

    async fn settle(&self, store: &Store, how: impl Fn(&Key) -> Settle) -> Result<(), StoreError> {
        for k in &self.keys {
            store
                .settle_attempt(k.scope, &k.subject, &k.bucket, how(k))
                .await?;
        }
        Ok(())
    }
}

/// Would an attempt be refused now? For status displays (the helpdesk card, unlock offers).
pub async fn refuses(store: &Store, key: &Key, now: i64) -> Result<bool, StoreError> {
    Ok(store
        .throttle(key.scope, &key.subject)
        .await?
        .is_some_and(|t| t.refuses(&key.bucket, now)))
}

/// Counts one use of a plain rate (messages per hour, reset requests): true when allowed. A
/// refused use is not counted.
pub async fn take_rate(store: &Store, key: &Key, now: i64) -> Result<bool, StoreError> {
    match begin(store, vec![key.clone()], now).await? {
        Ok(attempt) => {
            attempt.failed(store).await?;
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}
