//! Delivery: email over SMTP (lettre, pooled; plain / STARTTLS / TLS and auth from the URL) or to
//! the dev mailbox; SMS through the dev provider, a signed webhook, or an email-to-SMS gateway.

use super::templates::RenderedEmail;
use crate::clock::Clock;
use crate::store::Store;
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[async_trait::async_trait]
pub trait EmailTransport: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn send(&self, to: &str, email: &RenderedEmail) -> Result<(), String>;
}

#[async_trait::async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// `id` is the outbox id (stable across retries, for de-duplication by the gateway).
    async fn send(&self, id: &str, to: &str, text: &str) -> Result<(), String>;
}

pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpTransport {
    /// `smtp://[user[:pass]@]host[:port][?tls=required|opportunistic]` or `smtps://…`.
    pub fn new(
        url: &str,
        password_file: Option<&str>,
        from: &str,
        pool_size: u32,
    ) -> anyhow::Result<Self> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("email.smtp_url: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .pool_config(PoolConfig::new().max_size(pool_size.max(1)));
        if let Some(file) = password_file.filter(|f| !f.is_empty()) {
            let password = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("email.smtp_password_file {file}: {e}"))?;
            let user = url::Url::parse(url)
                .map(|u| u.username().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user, password.trim().to_string()));
        }
        let from = Mailbox::from_str(from).map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
        Ok(SmtpTransport {
            inner: builder.build(),
            from,
        })
    }
}

/// Builds the MIME message: multipart/alternative with the plain text and HTML bodies.
pub fn build_message(from: &Mailbox, to: &str, email: &RenderedEmail) -> Result<Message, String> {
    let to = Mailbox::from_str(to).map_err(|e| format!("bad recipient: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(super::templates::clean_subject(&email.subject))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| format!("cannot build the message: {e}"))
}

#[async_trait::async_trait]
impl EmailTransport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }
    async fn send(&self, to: &str, email: &RenderedEmail) -> Result<(), String> {
        let message = build_message(&self.from, to, email)?;
        self.inner
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// Keeps mail in the database for the dev page instead of sending it.
pub struct DevMailbox {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl EmailTransport for DevMailbox {
    fn name(&self) -> &'static str {
        "dev"
    }
    async fn send(&self, to: &str, email: &RenderedEmail) -> Result<(), String> {
        self.store
            .insert_dev_message("email", to, &email.subject, &email.text, self.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(to = %super::mask_email(to), "dev mailbox: message kept (see /dev/messages when enabled)");
        Ok(())
    }
}

/// Keeps SMS in the database for the dev page.
pub struct DevSms {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

#[async_trait::async_trait]
impl SmsProvider for DevSms {
    fn name(&self) -> &'static str {
        "dev"
    }
    async fn send(&self, _id: &str, to: &str, text: &str) -> Result<(), String> {
        self.store
            .insert_dev_message("sms", to, "", text, self.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(to = %super::mask_number(to), "dev SMS provider: message kept (see /dev/messages when enabled)");
        Ok(())
    }
}

/// POSTs `{"id","channel","to","text"}` as JSON with `X-Converge-Timestamp` and
/// `X-Converge-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub struct WebhookSms {
    client: reqwest::Client,
    url: String,
    key: Vec<u8>,
    clock: Arc<dyn Clock>,
}

pub const SIGNATURE_HEADER: &str = "x-converge-signature";
pub const TIMESTAMP_HEADER: &str = "x-converge-timestamp";

impl WebhookSms {
    pub fn new(
        url: &str,
        key: Vec<u8>,
        timeout_seconds: u32,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(u64::from(timeout_seconds.max(1))))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(WebhookSms {
            client,
            url: url.to_string(),
            key,
            clock,
        })
    }
}

/// The signature a receiver must compute to trust a webhook call.
pub fn webhook_signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable
        <Hmac<Sha256> as Mac>::new_from_slice(&[0u8]).unwrap_or_else(|_| unreachable!())
    });
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait::async_trait]
impl SmsProvider for WebhookSms {
    fn name(&self) -> &'static str {
        "webhook"
    }
    async fn send(&self, id: &str, to: &str, text: &str) -> Result<(), String> {
        let body = serde_json::to_vec(
            &serde_json::json!({ "id": id, "channel": "sms", "to": to, "text": text }),
        )
        .map_err(|e| e.to_string())?;
        let ts = self.clock.now();
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, webhook_signature(&self.key, ts, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| format!("SMS webhook: {}", e.without_url()))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("SMS webhook answered {}", res.status()))
        }
    }
}

/// Sends each SMS as a plain email to an address made from the number.
pub struct EmailGatewaySms {
    pub email: Arc<dyn EmailTransport>,
    pub pattern: String,
}

#[async_trait::async_trait]
impl SmsProvider for EmailGatewaySms {
    fn name(&self) -> &'static str {
        "email_gateway"
    }
    async fn send(&self, _id: &str, to: &str, text: &str) -> Result<(), String> {
        let address = self.pattern.replace("{number}", to.trim_start_matches('+'));
        let email = RenderedEmail {
            subject: "SMS".into(),
            html: String::new(),
            text: text.to_string(),
        };
        self.email.send(&address, &email).await
    }
}
