//! Counting failures of guessable input and delaying the next try (sign-in passwords, second
//! factors, passkeys): per account for ever (until a success clears it), per client within a
//! window. The delays come from [`SigninPolicy`].

use crate::domain::error::DomainError;
use crate::domain::policy::SigninPolicy;
use crate::store::Store;

/// Which counter: the account's (never forgets) or the client's (within the policy's window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Account,
    Client,
}

/// Counts one failure for (`scope`, `subject`) and blocks the next try when the policy says so.
/// Returns the new count.
pub async fn fail(
    store: &Store,
    policy: &SigninPolicy,
    counter: Counter,
    scope: &str,
    subject: &str,
    now: i64,
) -> Result<u32, DomainError> {
    let (window_start, free) = match counter {
        Counter::Account => (i64::MIN, policy.free_attempts),
        Counter::Client => (
            now - policy.client_window_seconds,
            policy.client_free_attempts,
        ),
    };
    let n = store
        .record_failure(scope, subject, now, window_start)
        .await?;
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let delay = policy.delay_after(n, free);
    if delay > 0 {
        store.block_until(scope, subject, now + delay).await?;
    }
    Ok(n)
}
