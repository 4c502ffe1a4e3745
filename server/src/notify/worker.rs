//! The outbox worker: claims due messages (a lease, so several instances never send the same
//! message and a crashed one's claims come back), delivers them, and records the result —
//! exponential backoff on failure, dead letter after `max_attempts`.

use super::templates::RenderedEmail;
use super::transport::{EmailTransport, SmsProvider};
use super::Payload;
use crate::clock::Clock;
use crate::config::OutboxSettings;
use crate::crypto::Sealer;
use crate::store::outbox::OutboxRow;
use crate::store::{Store, StoreError};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub struct Worker {
    pub id: String,
    pub store: Store,
    pub sealer: Sealer,
    pub email: Arc<dyn EmailTransport>,
    pub sms: Arc<dyn SmsProvider>,
    pub clock: Arc<dyn Clock>,
    pub settings: OutboxSettings,
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Delivers until the task is dropped.
    pub async fn run(self) {
        tracing::info!(worker = %self.id, email = self.email.name(), sms = self.sms.name(), "outbox worker started");
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        loop {
            match self.run_once().await {
                Ok(n) if n >= self.settings.batch_size as usize => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "outbox: cannot reach the database; will retry")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {},
                _ = self.wake.notified() => {},
            }
        }
    }

    /// Claims one batch and delivers it. Returns how many messages were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let s = &self.settings;
        let now = self.clock.now();
        let batch = self
            .store
            .claim_outbox(&self.id, now, i64::from(s.claim_seconds), s.batch_size)
            .await?;
        let n = batch.len();
        let results: Vec<Result<(), StoreError>> = futures::stream::iter(batch)
            .map(|row| self.deliver(row))
            .buffer_unordered(s.concurrency.max(1) as usize)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    async fn deliver(&self, row: OutboxRow) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let provider = if row.channel == "email" {
            self.email.name()
        } else {
            self.sms.name()
        };
        let outcome = match self.sealer.open(&row.payload, &row.id) {
            Err(e) => Err(e.to_string()),
            Ok(bytes) => match serde_json::from_slice::<Payload>(&bytes) {
                Err(e) => Err(format!("unreadable payload: {e}")),
                Ok(Payload::Email {
                    subject,
                    html,
                    text,
                }) => {
                    self.email
                        .send(
                            &row.recipient,
                            &RenderedEmail {
                                subject,
                                html,
                                text,
                            },
                        )
                        .await
                }
                Ok(Payload::Sms { text }) => self.sms.send(&row.id, &row.recipient, &text).await,
                Ok(Payload::Voice { text, callback_url }) => {
                    self.sms
                        .call(&row.id, &row.recipient, &text, &callback_url)
                        .await
                }
            },
        };
        let now = self.clock.now();
        let channel = row.channel.as_str();
        crate::instruments::observe(
            crate::instruments::DELIVERY_SECONDS,
            &[("channel", channel)],
            started.elapsed().as_secs_f64(),
        );
        let dead = outcome.is_err() && row.attempts >= i64::from(self.settings.max_attempts);
        let result = match (&outcome, dead) {
            (Ok(()), _) => "sent",
            (Err(_), false) => "retry",
            (Err(_), true) => "dead",
        };
        crate::instruments::count(
            crate::instruments::DELIVERIES,
            &[
                ("channel", channel),
                ("provider", provider),
                ("result", result),
            ],
            1,
        );
        match outcome {
            Ok(()) => {
                if !self.store.outbox_sent(&row.id, &self.id, now).await? {
                    tracing::warn!(id = %row.id, "outbox: claim expired while sending; it may be sent twice");
                } else {
                    tracing::info!(id = %row.id, message = %row.message, channel = %row.channel, "message delivered");
                }
            }
            Err(error) => {
                let retry_at = now + backoff(&self.settings, row.attempts);
                self.store
                    .outbox_failed(&row.id, &self.id, &error, retry_at, dead)
                    .await?;
                if dead {
                    tracing::error!(id = %row.id, message = %row.message, attempts = row.attempts, %error,
                        "message dead-lettered (converge outbox list --status dead; converge outbox retry)");
                } else {
                    tracing::warn!(id = %row.id, message = %row.message, attempts = row.attempts, %error,
                        retry_in = retry_at - now, "delivery failed; will retry");
                }
            }
        }
        Ok(())
    }
}

/// Seconds to wait after the `attempts`-th failure: base, 2×base, 4×base … up to the maximum.
pub fn backoff(s: &OutboxSettings, attempts: i64) -> i64 {
    let exp = (attempts.max(1) - 1).min(20) as u32;
    (i64::from(s.base_backoff_seconds) << exp).min(i64::from(s.max_backoff_seconds))
}
