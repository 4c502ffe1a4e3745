//! Messaging: templates, the durable outbox, email transports and SMS / voice providers.
//!
//! Nothing is ever sent on a request path: [`Notifier`] renders a message and writes it, sealed
//! with the instance key, to the outbox in the caller's transaction; the [`worker::Worker`]
//! delivers it. Recipients come only from stored users, links only from `public_url`, and no
//! code or token is ever logged.

pub mod messages;
pub mod templates;
pub mod transport;
pub mod worker;

use crate::crypto::Sealer;
use crate::domain::flows::session::hash_token;
use crate::domain::users::{Role, User};
use crate::store::outbox::{insert_outbox_in, NewOutboxMessage};
use crate::store::{Store, StoreError};
use base64::Engine;
use messages::{Notice, Person};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use std::sync::Arc;
use templates::{Templates, DEFAULT_LOCALE};
use tokio::sync::Notify;

/// What a queued message carries (sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Email {
        subject: String,
        html: String,
        text: String,
    },
    Sms {
        text: String,
    },
    /// A call that speaks `text`; the gateway reports the answer to `callback_url`.
    Voice {
        text: String,
        callback_url: String,
    },
}

impl Payload {
    pub fn channel(&self) -> &'static str {
        match self {
            Payload::Email { .. } => "email",
            Payload::Sms { .. } => "sms",
            Payload::Voice { .. } => "voice",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] templates::TemplateError),
    #[error("too many messages to {0} in the last hour")]
    RateLimited(&'static str),
    #[error("{0} is not one of the user's stored phone numbers")]
    UnknownNumber(String),
    #[error("the configured SMS provider cannot place voice calls")]
    VoiceUnsupported,
    /// The channel is switched off by configuration (`email.enabled = false`,
    /// `sms.provider = "none"`): a code cannot be sent that way.
    #[error("{0} is switched off")]
    ChannelOff(&'static str),
}

pub const SCOPE_SMS_NUMBER: &str = "sms_number";
/// Where voice gateways report the answer to a call.
pub const VOICE_CALLBACK_PATH: &str = "/api/voice/callback";
pub const SCOPE_SMS_ACCOUNT: &str = "sms_account";

pub struct Notifier {
    store: Store,
    sealer: Sealer,
    templates: Arc<Templates>,
    public_url: String,
    report_link_seconds: i64,
    per_number_per_hour: u32,
    per_account_per_hour: u32,
    voice_supported: bool,
    email_enabled: bool,
    phone_enabled: bool,
    wake: Arc<Notify>,
}

fn person(user: &User) -> Person {
    Person {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
    }
}

impl Notifier {
    pub fn new(
        store: Store,
        sealer: Sealer,
        templates: Arc<Templates>,
        config: &crate::config::Configuration,
        wake: Arc<Notify>,
    ) -> Self {
        Notifier {
            store,
            sealer,
            templates,
            public_url: config.public_url.as_str().trim_end_matches('/').to_string(),
            report_link_seconds: i64::from(config.email.report_link_days) * 86_400,
            per_number_per_hour: config.sms.per_number_per_hour,
            per_account_per_hour: config.sms.per_account_per_hour,
            voice_supported: !matches!(config.sms.provider.as_str(), "email_gateway" | "none"),
            email_enabled: config.email.enabled,
            phone_enabled: config.sms.provider != "none",
            wake,
        }
    }

    /// A link into the portal: always built from `public_url`, never from a request.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// Lets the local worker know there is something to send.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queues `notice` for the user's stored email address inside the caller's transaction.
    /// Returns the outbox id, or None when the user has no address.
    pub async fn email_user_in(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        notice: &Notice,
        now: i64,
    ) -> Result<Option<String>, NotifyError> {
        let Some(to) = user.email.as_deref() else {
            tracing::info!(user = %user.username, message = notice.name(), "no email address on file; nothing queued");
            return Ok(None);
        };
        self.email_address_in(conn, user, to, notice, now).await
    }

    /// Is mail switched on (`email.enabled`)?
    pub fn email_enabled(&self) -> bool {
        self.email_enabled
    }

    /// Can a method of `kind` be used now? Phones and email need their channel switched on.
    pub fn reaches(&self, kind: crate::domain::policy::MethodKind) -> bool {
        use crate::domain::policy::MethodKind;
        match kind {
            MethodKind::Phone => self.phone_enabled,
            MethodKind::Email => self.email_enabled,
            _ => true,
        }
    }

    /// Queues `notice` for one address that belongs to the user (a verified email method, or
    /// the old address after a change) inside the caller's transaction. With mail switched
    /// off, a notice is skipped (None) and a message that carries a code is refused.
    pub async fn email_address_in(
        &self,
        conn: &mut AnyConnection,
        user: &User,
        to: &str,
        notice: &Notice,
        now: i64,
    ) -> Result<Option<String>, NotifyError> {
        if !self.email_enabled {
            if notice.carries_code() {
                return Err(NotifyError::ChannelOff("email"));
            }
            tracing::debug!(
                message = notice.name(),
                "mail is switched off; notice not queued"
            );
            return Ok(None);
        }
        let not_me = if notice.wants_report_link() {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            Store::insert_report_token_in(
                conn,
                &hash_token(&token),
                &user.id,
                notice.name(),
                now,
                now + self.report_link_seconds,
            )
            .await?;
            Some(self.link(&format!("/report/{token}")))
        } else {
            None
        };
        let email =
            self.templates
                .render(DEFAULT_LOCALE, notice, &person(user), not_me.as_deref())?;
        let payload = Payload::Email {
            subject: email.subject,
            html: email.html,
            text: email.text,
        };
        self.queue_in(conn, to, notice.name(), Some(&user.id), &payload, now)
            .await
            .map(Some)
    }

    /// Same as [`Self::email_user_in`] in its own transaction, then wakes the worker.
    pub async fn email_user(
        &self,
        user: &User,
        notice: &Notice,
        now: i64,
    ) -> Result<Option<String>, NotifyError> {
        let mut tx = self.store.begin().await?;
        let id = self.email_user_in(&mut tx, user, notice, now).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake();
        Ok(id)
    }

    /// Queues `notice` for every enabled administrator with an address.
    pub async fn email_admins_in(
        &self,
        conn: &mut AnyConnection,
        admins: &[User],
        notice: &Notice,
        now: i64,
    ) -> Result<usize, NotifyError> {
        let mut n = 0;
        for admin in admins.iter().filter(|u| u.role == Role::Admin && u.enabled) {
            if self
                .email_user_in(conn, admin, notice, now)
                .await?
                .is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Queues a text message to one of the user's stored numbers, within the per-number and
    /// per-account hourly limits (so the portal cannot be used for SMS pumping).
    pub async fn sms_user(
        &self,
        user: &User,
        number: &str,
        text: &str,
        now: i64,
    ) -> Result<String, NotifyError> {
        self.stored_number(user, number)?;
        self.phone_code(user, number, text, false, now).await
    }

    /// Queues a text, or a call that reads `text`, to a number the caller vouches for: one of
    /// the user's registered phone methods, or the number being registered. Same hourly limits.
    pub async fn phone_code(
        &self,
        user: &User,
        number: &str,
        text: &str,
        voice: bool,
        now: i64,
    ) -> Result<String, NotifyError> {
        if !self.phone_enabled {
            return Err(NotifyError::ChannelOff("sms"));
        }
        let (payload, message) = if voice {
            if !self.voice_supported {
                return Err(NotifyError::VoiceUnsupported);
            }
            (
                Payload::Voice {
                    text: text.to_string(),
                    callback_url: self.link(VOICE_CALLBACK_PATH),
                },
                "voice",
            )
        } else {
            (
                Payload::Sms {
                    text: text.to_string(),
                },
                "sms",
            )
        };
        self.limited_phone_message(user, number, payload, message, now)
            .await
    }

    /// Queues a voice call to one of the user's stored numbers (same limits as SMS). The gateway
    /// reports approve / deny / fraud to `/api/voice/callback`; read it with
    /// `Store::voice_result(id)`.
    pub async fn voice_user(
        &self,
        user: &User,
        number: &str,
        text: &str,
        now: i64,
    ) -> Result<String, NotifyError> {
        if !self.voice_supported {
            return Err(NotifyError::VoiceUnsupported);
        }
        self.stored_number(user, number)?;
        self.phone_code(user, number, text, true, now).await
    }

    /// Only numbers stored on the user (from the directory or an import) are reached by
    /// `sms_user` / `voice_user`.
    fn stored_number(&self, user: &User, number: &str) -> Result<(), NotifyError> {
        let stored = [
            &user.mobile_phone,
            &user.alternate_phone,
            &user.office_phone,
        ];
        if !stored.iter().any(|n| n.as_deref() == Some(number)) {
            return Err(NotifyError::UnknownNumber(mask_number(number)));
        }
        Ok(())
    }

    /// Can the configured provider place calls?
    pub fn voice_supported(&self) -> bool {
        self.voice_supported
    }

    /// Counts one text or call to `number` for `account` (per hour each, leaky buckets; a
    /// refused message is not counted). Decoy reset flows spend the same budget under their own
    /// name, so real and made-up accounts hit MSG-429 alike.
    pub async fn take_phone_budget(
        &self,
        account: &str,
        number: &str,
        now: i64,
    ) -> Result<(), NotifyError> {
        use crate::domain::flows::throttle::{self, Key};
        use crate::domain::policy::Bucket;
        if !self.phone_enabled {
            return Err(NotifyError::ChannelOff("sms"));
        }
        let keys = vec![
            Key::shared(
                SCOPE_SMS_NUMBER,
                number,
                Bucket::rate(self.per_number_per_hour, 3600),
            ),
            Key::shared(
                SCOPE_SMS_ACCOUNT,
                account,
                Bucket::rate(self.per_account_per_hour, 3600),
            ),
        ];
        match throttle::begin(&self.store, keys, now).await? {
            Ok(attempt) => {
                attempt.failed(&self.store).await?;
            }
            Err(0) => return Err(NotifyError::RateLimited("this number")),
            Err(_) => return Err(NotifyError::RateLimited("this account")),
        }
        Ok(())
    }

    async fn limited_phone_message(
        &self,
        user: &User,
        number: &str,
        payload: Payload,
        message: &str,
        now: i64,
    ) -> Result<String, NotifyError> {
        self.take_phone_budget(&user.id, number, now).await?;
        let mut tx = self.store.begin().await?;
        let id = self
            .queue_in(&mut tx, number, message, Some(&user.id), &payload, now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.wake();
        Ok(id)
    }

    async fn queue_in(
        &self,
        conn: &mut AnyConnection,
        recipient: &str,
        message: &str,
        user_id: Option<&str>,
        payload: &Payload,
        now: i64,
    ) -> Result<String, NotifyError> {
        let id = uuid::Uuid::new_v4().to_string();
        let json = serde_json::to_vec(payload).unwrap_or_default();
        let sealed = self.sealer.seal(&json, &id);
        insert_outbox_in(
            conn,
            &NewOutboxMessage {
                id: &id,
                channel: payload.channel(),
                recipient,
                message,
                user_id,
                payload: &sealed,
            },
            now,
        )
        .await?;
        tracing::debug!(id = %id, message, channel = payload.channel(), "message queued");
        Ok(id)
    }
}

/// An outbox recipient masked for lists: an address for mail, a number otherwise.
pub fn mask_recipient(channel: &str, recipient: &str) -> String {
    if channel == "email" {
        mask_email(recipient)
    } else {
        mask_number(recipient)
    }
}

/// `+31 6 •••• ••78` style masking for logs and lists.
pub fn mask_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().collect();
    if digits.len() <= 5 {
        return "•••".into();
    }
    let head: String = digits[..3].iter().collect();
    let tail: String = digits[digits.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "•".repeat(digits.len() - 5))
}

/// `j•••@example.org` style masking.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => format!("{}•••@{domain}", local.chars().next().unwrap_or('•')),
        None => "•••".into(),
    }
}
