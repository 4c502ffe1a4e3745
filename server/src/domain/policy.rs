//! Policy in one typed place. Built from configuration today; the admin console edits it later.

#[derive(Debug, Clone)]
pub struct Policy {
    pub session: SessionPolicy,
    pub argon2: Argon2Policy,
    pub signin: SigninPolicy,
}

#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub idle_timeout_seconds: i64,
    pub absolute_timeout_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct Argon2Policy {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Throttling of guessable sign-in input, per account and per client address.
#[derive(Debug, Clone)]
pub struct SigninPolicy {
    pub free_attempts: u32,
    pub base_delay_seconds: i64,
    pub max_delay_seconds: i64,
    pub lockout_threshold: u32,
    pub client_free_attempts: u32,
    pub client_window_seconds: i64,
}

impl SigninPolicy {
    /// Seconds to wait after the `failures`-th consecutive failure: none for the first
    /// `free` failures, then doubling from the base delay up to the maximum.
    pub fn delay_after(&self, failures: u32, free: u32) -> i64 {
        if failures < free.max(1) {
            return 0;
        }
        let steps = (failures - free.max(1)).min(30);
        self.base_delay_seconds
            .saturating_mul(1i64 << steps)
            .min(self.max_delay_seconds)
    }
}

/// Longest password accepted anywhere; longer input is refused before hashing.
pub const MAX_PASSWORD_BYTES: usize = 256;
