//! `[api]`: the REST API (on by default; it answers only to tokens the operator created).

use crate::domain::policy::{ApiPolicy, Bucket};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub enabled: bool,
    /// Seconds an MFA challenge can be answered.
    pub challenge_seconds: u32,
    /// The longest a status request waits for a phone call's answer.
    pub max_wait_seconds: u32,
    /// Wrong tokens one client address may present per 10 minutes.
    pub failed_tokens_per_client: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            enabled: true,
            challenge_seconds: 300,
            max_wait_seconds: 25,
            failed_tokens_per_client: 20,
        }
    }
}

/// The policy of the default settings.
pub fn default_policy() -> ApiPolicy {
    ApiSettings::default().policy_of()
}

impl ApiSettings {
    /// The policy, or `None` when the API is off; problems are added to `problems`.
    pub fn policy(&self, problems: &mut Vec<String>) -> Option<ApiPolicy> {
        if !self.enabled {
            return None;
        }
        if !(30..=3600).contains(&self.challenge_seconds) {
            problems.push("api.challenge_seconds: 30 to 3600".into());
        }
        if !(1..=60).contains(&self.max_wait_seconds) {
            problems.push("api.max_wait_seconds: 1 to 60".into());
        }
        if !(1..=10_000).contains(&self.failed_tokens_per_client) {
            problems.push("api.failed_tokens_per_client: 1 to 10000".into());
        }
        Some(self.policy_of())
    }

    fn policy_of(&self) -> ApiPolicy {
        ApiPolicy {
            challenge_seconds: i64::from(self.challenge_seconds),
            max_wait_seconds: i64::from(self.max_wait_seconds),
            token_failures: Bucket::rate(self.failed_tokens_per_client, 600),
        }
    }
}
