//! Delivery: email over SMTP (lettre, pooled; plain / STARTTLS / TLS and auth from the URL) or to
//! the dev mailbox; SMS through the dev provider, a signed webhook, or an email-to-SMS gateway.

use super::templates::RenderedEmail;
use crate::clock::Clock;
use crate::store::Store;
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
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
    /// Can mail be handed over now? (`/readyz`): the reason when not.
    async fn probe(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A channel switched off by configuration (`email.enabled = false`, `sms.provider = "none"`):
/// nothing is queued for it; a message queued before it was switched off fails (and, after its
/// retries, becomes a dead letter) with this reason.
pub struct SwitchedOff(pub &'static str);

#[async_trait::async_trait]
impl EmailTransport for SwitchedOff {
    fn name(&self) -> &'static str {
        "off"
    }
    async fn send(&self, _to: &str, _email: &RenderedEmail) -> Result<(), String> {
        Err(format!("switched off ({})", self.0))
    }
}

#[async_trait::async_trait]
impl SmsProvider for SwitchedOff {
    fn name(&self) -> &'static str {
        "off"
    }
    async fn send(&self, _id: &str, _to: &str, _text: &str) -> Result<(), String> {
        Err(format!("switched off ({})", self.0))
    }
    async fn call(&self, _id: &str, _to: &str, _text: &str, _cb: &str) -> Result<(), String> {
        Err(format!("switched off ({})", self.0))
    }
}

#[async_trait::async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// `id` is the outbox id (stable across retries, for de-duplication by the gateway).
    async fn send(&self, id: &str, to: &str, text: &str) -> Result<(), String>;
    /// Places a call that speaks `text`; the gateway POSTs the answer to `callback_url`.
    async fn call(&self, id: &str, to: &str, text: &str, callback_url: &str) -> Result<(), String>;
}

/// How the SMTP connection is secured, from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTlsOpportunistic,
    StartTlsRequired,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// SMTP with a pool of open connections. Plain and STARTTLS connections are opened by Converge
/// with `TCP_NODELAY` (lettre writes the end-of-data marker separately; with Nagle's algorithm
/// and delayed ACKs every message would wait ~40 ms); `smtps://` uses lettre's own pool.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    from: Mailbox,
    idle: std::sync::Mutex<Vec<(AsyncSmtpConnection, std::time::Instant)>>,
    permits: tokio::sync::Semaphore,
    implicit: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl SmtpTransport {
    /// `smtp://[user[:pass]@]host[:port][?tls=required|opportunistic]` or `smtps://…`.
    pub fn new(
        url: &str,
        password_file: Option<&str>,
        from: &str,
        pool_size: u32,
    ) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("email.smtp_url: {e}"))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("email.smtp_url: no host"))?
            .to_string();
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let security = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", _) => Security::Implicit,
            ("smtp", Some("required")) => Security::StartTlsRequired,
            ("smtp", Some("opportunistic")) => Security::StartTlsOpportunistic,
            ("smtp", None | Some("none")) => Security::Plain,
            (scheme, tls) => {
                anyhow::bail!("email.smtp_url: unsupported scheme {scheme} / tls={tls:?}")
            }
        };
        let port = parsed.port().unwrap_or(if security == Security::Implicit {
            465
        } else {
            25
        });
        let user = percent_decode(parsed.username());
        let mut password = parsed.password().map(percent_decode);
        if let Some(file) = password_file.filter(|f| !f.is_empty()) {
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("email.smtp_password_file {file}: {e}"))?;
            password = Some(text.trim().to_string());
        }
        let credentials =
            (!user.is_empty()).then(|| Credentials::new(user, password.unwrap_or_default()));
        let from = Mailbox::from_str(from).map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
        let implicit = if security == Security::Implicit {
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .map_err(|e| anyhow::anyhow!("email.smtp_url: {e}"))?
                .port(port)
                .timeout(Some(Duration::from_secs(20)))
                .pool_config(PoolConfig::new().max_size(pool_size.max(1)));
            if let Some(c) = &credentials {
                builder = builder.credentials(c.clone());
            }
            Some(builder.build())
        } else {
            None
        };
        Ok(SmtpTransport {
            host,
            port,
            security,
            credentials,
            hello: ClientId::default(),
            from,
            idle: std::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(pool_size.max(1) as usize),
            implicit,
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| format!("SMTP: connecting to {}:{} timed out", self.host, self.port))?
        .map_err(|e| format!("SMTP: cannot connect to {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
            .await
            .map_err(|e| format!("SMTP: {e}"))?;
        let tls = || TlsParameters::new(self.host.clone()).map_err(|e| format!("SMTP TLS: {e}"));
        match self.security {
            Security::StartTlsRequired => conn
                .starttls(tls()?, &self.hello)
                .await
                .map_err(|e| format!("SMTP STARTTLS: {e}"))?,
            Security::StartTlsOpportunistic if conn.can_starttls() => conn
                .starttls(tls()?, &self.hello)
                .await
                .map_err(|e| format!("SMTP STARTTLS: {e}"))?,
            _ => {}
        }
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(|e| format!("SMTP auth: {e}"))?;
        }
        Ok(conn)
    }

    async fn send_pooled(&self, message: &Message) -> Result<(), String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let reused = self.idle.lock().map_err(|e| e.to_string())?.pop();
        let mut conn = match reused {
            Some((mut c, since)) => {
                // a connection idle for long may have been closed by the server: check it first
                if since.elapsed() < Duration::from_secs(30) || c.test_connected().await {
                    c
                } else {
                    c.abort().await;
                    self.connect().await?
                }
            }
            None => self.connect().await?,
        };
        let bytes = message.formatted();
        match conn.send(message.envelope(), &bytes).await {
            Ok(_) if !conn.has_broken() => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push((conn, std::time::Instant::now()));
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                conn.abort().await;
                Err(format!("SMTP: {e}"))
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
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
        match &self.implicit {
            Some(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP: {e}")),
            None => self.send_pooled(&message).await,
        }
    }
    /// Opens a connection (with STARTTLS and authentication as configured) and closes it.
    async fn probe(&self) -> Result<(), String> {
        match &self.implicit {
            Some(transport) => match transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!("SMTP: {}:{} did not answer", self.host, self.port)),
                Err(e) => Err(format!("SMTP: {e}")),
            },
            None => {
                let mut conn = self.connect().await?;
                let _ = conn.quit().await;
                Ok(())
            }
        }
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
    async fn call(
        &self,
        id: &str,
        to: &str,
        text: &str,
        _callback_url: &str,
    ) -> Result<(), String> {
        self.store
            .insert_dev_message("voice", to, id, text, self.clock.now())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(to = %super::mask_number(to), "dev voice provider: call kept (see /dev/messages when enabled)");
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
        self.post(serde_json::json!({ "id": id, "channel": "sms", "to": to, "text": text }))
            .await
    }
    async fn call(&self, id: &str, to: &str, text: &str, callback_url: &str) -> Result<(), String> {
        self.post(serde_json::json!({
            "id": id, "channel": "voice", "to": to, "text": text, "callback_url": callback_url,
        }))
        .await
    }
}

impl WebhookSms {
    async fn post(&self, json: serde_json::Value) -> Result<(), String> {
        let body = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
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
    async fn call(
        &self,
        _id: &str,
        _to: &str,
        _text: &str,
        _callback_url: &str,
    ) -> Result<(), String> {
        Err("the email gateway cannot place voice calls".into())
    }
}
