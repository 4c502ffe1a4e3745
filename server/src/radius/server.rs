//! The UDP listener: which client sent it, is it well formed and authentic, have we seen it
//! before — then the gateway flow evaluates it on its own task and the answer is cached.
//!
//! ```text
//!  datagram ──► client by source address ── none ──► drop(unknown_client)
//!      ▼            decode ── bad ──► drop(malformed)     Status-Server ──► Access-Accept
//!      ▼            not Access-Request ──► drop(unsupported)
//!  Message-Authenticator: wrong ──► drop(bad_…); missing while required ──► drop(missing_…)
//!      ▼
//!  duplicate cache (source address+port, Identifier, Request Authenticator; RFC 5080):
//!      answered ──► the cached reply again (never evaluated twice)
//!      in progress ──► drop(in_progress)
//!      ▼ new
//!  a slot free? ── no ──► drop(overloaded)
//!      ▼
//!  task: Gateway::handle ──► Accept / Reject / Challenge ──► cache, send
//! ```
//! Nothing here panics on input: every length is checked by `packet::decode`.

use super::config::{RadiusClient, RadiusConfig};
use super::metrics::{Answer, Drop};
use super::packet::{self, attr};
use crate::domain::flows::gateway::{Asks, Choice, Gateway, GatewayRequest, Prompt, Refusal, Step};
use crate::domain::flows::session::Client;
use crate::http::metrics::Metrics;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;

/// Answers are kept this long for retransmits (RFC 5080 §2.2.2: longer than the client's
/// retransmission window).
const CACHE_SECONDS: u64 = 30;
/// Beyond this many remembered requests new ones are dropped as overloaded.
const CACHE_MAX: usize = 200_000;

type CacheKey = (SocketAddr, u8, [u8; 16]);
/// When the request arrived (or was answered), and the answer once there is one.
type CacheEntry = (Instant, Option<Arc<Vec<u8>>>);

#[derive(Default)]
struct Cache {
    entries: HashMap<CacheKey, CacheEntry>,
    swept: Option<Instant>,
}

impl Cache {
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.swept = Some(now);
        let keep = Duration::from_secs(CACHE_SECONDS);
        self.entries
            .retain(|_, (at, reply)| reply.is_none() || now.duration_since(*at) < keep);
    }
}

pub struct RadiusServer {
    socket: Arc<UdpSocket>,
    config: Arc<RadiusConfig>,
    gateway: Arc<Gateway>,
    metrics: Arc<Metrics>,
    cache: Arc<Mutex<Cache>>,
    slots: Arc<Semaphore>,
    /// Where users register (links in Reply-Messages).
    security_url: String,
}

impl RadiusServer {
    pub async fn bind(
        config: RadiusConfig,
        gateway: Arc<Gateway>,
        metrics: Arc<Metrics>,
        security_url: String,
    ) -> std::io::Result<RadiusServer> {
        let socket = UdpSocket::bind(config.listen).await?;
        for c in config
            .clients
            .iter()
            .filter(|c| !c.require_message_authenticator)
        {
            tracing::warn!(
                client = %c.policy.name,
                "RADIUS client may send Access-Requests without Message-Authenticator \
                 (require_message_authenticator = false): it is open to BlastRADIUS \
                 (CVE-2024-3596); upgrade it and turn this off"
            );
        }
        Ok(RadiusServer {
            socket: Arc::new(socket),
            slots: Arc::new(Semaphore::new(config.max_in_flight)),
            config: Arc::new(config),
            gateway,
            metrics,
            cache: Arc::default(),
            security_url,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives until the task is aborted.
    pub async fn run(self) {
        let this = Arc::new(self);
        let mut buf = vec![0u8; packet::MAX_PACKET];
        loop {
            match this.socket.recv_from(&mut buf).await {
                Ok((n, from)) => this.datagram(&buf[..n], from),
                Err(e) => {
                    tracing::warn!(error = %e, "RADIUS socket receive failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn datagram(self: &Arc<Self>, data: &[u8], from: SocketAddr) {
        let m = &self.metrics.radius;
        let Some(client) = self.config.client_for(from.ip()) else {
            m.drop(Drop::UnknownClient);
            tracing::debug!(%from, "RADIUS packet from an unknown client dropped");
            return;
        };
        let p = match packet::decode(data) {
            Ok(p) => p,
            Err(e) => {
                m.drop(Drop::Malformed);
                tracing::debug!(%from, error = ?e, "malformed RADIUS packet dropped");
                return;
            }
        };
        if !matches!(p.code, packet::ACCESS_REQUEST | packet::STATUS_SERVER) {
            m.drop(Drop::UnsupportedCode);
            return;
        }
        // RFC 5997: Status-Server always carries a Message-Authenticator
        if p.code == packet::STATUS_SERVER {
            if p.message_authenticator_ok(&client.secret) != Some(true) {
                m.drop(Drop::BadMessageAuthenticator);
                return;
            }
            let alive = packet::encode(
                packet::ACCESS_ACCEPT,
                p.id,
                &p.authenticator,
                &[],
                &client.secret,
                true,
            );
            let socket = self.socket.clone();
            tokio::spawn(async move {
                let _ = socket.send_to(&alive, from).await;
            });
            return;
        }
        match p.message_authenticator_ok(&client.secret) {
            Some(true) => {}
            Some(false) => {
                m.drop(Drop::BadMessageAuthenticator);
                tracing::debug!(client = %client.policy.name, "wrong Message-Authenticator (wrong secret?): dropped");
                return;
            }
            None if client.require_message_authenticator => {
                m.drop(Drop::MissingMessageAuthenticator);
                tracing::debug!(client = %client.policy.name, "Access-Request without Message-Authenticator dropped");
                return;
            }
            None => {}
        }
        if p.text(attr::USER_NAME).is_none_or(|u| u.is_empty()) {
            m.drop(Drop::Malformed);
            return;
        }
        let key: CacheKey = (from, p.id, p.authenticator);
        {
            let now = Instant::now();
            let Ok(mut cache) = self.cache.lock() else {
                return;
            };
            cache.sweep(now);
            match cache.entries.get(&key) {
                Some((_, Some(reply))) => {
                    let reply = reply.clone();
                    drop(cache);
                    m.cached();
                    let socket = self.socket.clone();
                    tokio::spawn(async move {
                        let _ = socket.send_to(&reply, from).await;
                    });
                    return;
                }
                Some((_, None)) => {
                    m.drop(Drop::InProgress);
                    return;
                }
                None if cache.entries.len() >= CACHE_MAX => {
                    m.drop(Drop::Overloaded);
                    return;
                }
                None => {}
            }
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                m.drop(Drop::Overloaded);
                return;
            };
            cache.entries.insert(key, (now, None));
            m.request();
            let this = self.clone();
            let data = data.to_vec();
            let client = client.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let (reply, answer) = this.evaluate(&client, &data, from).await;
                this.metrics
                    .radius
                    .answered(answer, started.elapsed().as_secs_f64());
                let reply = Arc::new(reply);
                if let Ok(mut cache) = this.cache.lock() {
                    cache
                        .entries
                        .insert(key, (Instant::now(), Some(reply.clone())));
                }
                drop(slot);
                if let Err(e) = this.socket.send_to(&reply, from).await {
                    tracing::warn!(error = %e, %from, "could not send the RADIUS answer");
                }
            });
        }
    }

    async fn evaluate(
        &self,
        client: &RadiusClient,
        data: &[u8],
        from: SocketAddr,
    ) -> (Vec<u8>, Answer) {
        let Ok(p) = packet::decode(data) else {
            // decoded once already; cannot happen, but never panic
            return (Vec::new(), Answer::Reject);
        };
        let t = converge_app::text::en();
        let reject = |message: &str| {
            (
                reply(
                    &p,
                    &client.secret,
                    packet::ACCESS_REJECT,
                    vec![(attr::REPLY_MESSAGE, message.as_bytes())],
                ),
                Answer::Reject,
            )
        };
        let username = p.text(attr::USER_NAME).unwrap_or_default().to_string();
        let Some(password) = p.user_password(&client.secret) else {
            let what = if p.get(attr::CHAP_PASSWORD).is_some() {
                "CHAP"
            } else if p.get(attr::EAP_MESSAGE).is_some() {
                "EAP"
            } else if p
                .attrs
                .iter()
                .any(|(k, v)| *k == attr::VENDOR_SPECIFIC && v.starts_with(&[0, 0, 1, 55]))
            {
                "MS-CHAP"
            } else {
                "no User-Password"
            };
            tracing::warn!(
                client = %client.policy.name, user = %username, method = what,
                "RADIUS Access-Request refused: only PAP can carry a typed code; set the \
                 gateway to PAP"
            );
            return reject(t.radius.failed);
        };
        let password = String::from_utf8_lossy(&password).into_owned();
        // the end user's address when the gateway names it, else the gateway's
        let station = p.text(attr::CALLING_STATION_ID).map(str::to_string);
        let calling = station
            .as_deref()
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        let ip = calling.unwrap_or(from.ip()).to_string();
        let state = p
            .get(attr::STATE)
            .map(|s| String::from_utf8_lossy(s).into_owned());
        let request = GatewayRequest {
            client: &client.policy,
            from: Client {
                ip,
                user_agent: format!("RADIUS {}", client.policy.name),
                device: None,
            },
            username: username.clone(),
            password,
            state,
            station,
        };
        let step = match self.gateway.handle(request).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, client = %client.policy.name, "RADIUS request failed");
                Step::Reject(Refusal::Unavailable)
            }
        };
        match step {
            Step::Reject(r) => {
                let text = match r {
                    Refusal::Failed => t.radius.failed.to_string(),
                    Refusal::Throttled => t.radius.throttled.to_string(),
                    Refusal::DirectoryDown => t.radius.directory_down.to_string(),
                    Refusal::Unavailable => t.radius.unavailable.to_string(),
                    Refusal::NoUsableMethod => t
                        .radius
                        .no_usable_method
                        .replace("{url}", &self.security_url),
                    Refusal::NotRegistered => {
                        t.radius.not_registered.replace("{url}", &self.security_url)
                    }
                    Refusal::CallDeclined => t.radius.call_declined.to_string(),
                    Refusal::CallUnanswered => t.radius.call_unanswered.to_string(),
                };
                reject(&text)
            }
            Step::Accept { user } => {
                let r = client.reply_for(&user.groups);
                let timeout = r.and_then(|r| r.session_timeout).map(u32::to_be_bytes);
                let mut attrs: Vec<(u8, &[u8])> = Vec::new();
                if let Some(c) = r.and_then(|r| r.class.as_deref()) {
                    attrs.push((attr::CLASS, c.as_bytes()));
                }
                if let Some(f) = r.and_then(|r| r.filter_id.as_deref()) {
                    attrs.push((attr::FILTER_ID, f.as_bytes()));
                }
                if let Some(t) = &timeout {
                    attrs.push((attr::SESSION_TIMEOUT, t));
                }
                (
                    reply(&p, &client.secret, packet::ACCESS_ACCEPT, attrs),
                    Answer::Accept,
                )
            }
            Step::Challenge { state, prompt } => {
                let message = render_prompt(&prompt);
                let timeout = (self.config.policy.challenge_seconds as u32).to_be_bytes();
                let attrs: Vec<(u8, &[u8])> = vec![
                    (attr::REPLY_MESSAGE, message.as_bytes()),
                    (attr::STATE, state.as_bytes()),
                    (attr::SESSION_TIMEOUT, &timeout),
                ];
                (
                    reply(&p, &client.secret, packet::ACCESS_CHALLENGE, attrs),
                    Answer::Challenge,
                )
            }
        }
    }
}

/// A reply to `request`: `attrs`, then every Proxy-State of the request as it came (RFC 2865),
/// signed with the client's secret.
fn reply<'a>(
    request: &packet::Packet<'a>,
    secret: &[u8],
    code: u8,
    mut attrs: Vec<(u8, &'a [u8])>,
) -> Vec<u8> {
    attrs.extend(
        request
            .attrs
            .iter()
            .filter(|(k, _)| *k == attr::PROXY_STATE)
            .copied(),
    );
    packet::encode(
        code,
        request.id,
        &request.authenticator,
        &attrs,
        secret,
        true,
    )
}

/// The challenge's Reply-Message: what to enter, then the other choices while they fit in one
/// attribute (253 bytes).
pub fn render_prompt(prompt: &Prompt) -> String {
    let t = converge_app::text::en().radius;
    let head = match &prompt.asks {
        Asks::AppCode => t.ask_app_code.to_string(),
        Asks::TextedCode { to } if prompt.with_pin => t.ask_texted_code_pin.replace("{to}", to),
        Asks::TextedCode { to } => t.ask_texted_code.replace("{to}", to),
    };
    let items: Vec<String> = prompt
        .choices
        .iter()
        .map(|(d, c)| {
            let what = match c {
                Choice::AppCode { .. } => t.choice_app.to_string(),
                Choice::Text { to } => t.choice_text.replace("{to}", to),
                Choice::Call { to } => t.choice_call.replace("{to}", to),
            };
            format!("{d} = {what}")
        })
        .collect();
    let mut n = items.len();
    loop {
        let text = if n == 0 {
            head.clone()
        } else {
            format!("{head} {} {}.", t.or_choose, items[..n].join(", "))
        };
        if text.len() <= packet::MAX_VALUE || n == 0 {
            let mut text = text;
            while text.len() > packet::MAX_VALUE {
                text.pop();
            }
            return text;
        }
        n -= 1;
    }
}
