//! `[radius]` and `[[radius.clients]]`: validated once at start (and by `converge check-config`).

use crate::config::Cidr;
use crate::domain::policy::{GatewayClientPolicy, GatewayMode, GatewayPolicy};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusSettings {
    pub enabled: bool,
    /// UDP address the RADIUS server listens on.
    pub listen: String,
    /// Seconds an Access-Challenge's State is good for.
    pub challenge_seconds: u32,
    /// Seconds a request waiting for a phone call's answer is held (below the NAS timeout).
    pub hold_seconds: u32,
    /// Requests evaluated at the same time; more are dropped (and counted) until one finishes.
    pub max_in_flight: u32,
    pub clients: Vec<ClientSettings>,
}

impl Default for RadiusSettings {
    fn default() -> Self {
        RadiusSettings {
            enabled: false,
            listen: "127.0.0.1:1812".into(),
            challenge_seconds: 300,
            hold_seconds: 25,
            max_in_flight: 256,
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub name: String,
    /// The gateway's address or range (`10.0.0.1`, `10.0.0.0/24`).
    pub address: String,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub secret_file: String,
    /// `challenge` (default) or `concat`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Directory groups allowed to sign in through this gateway (empty: everyone).
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub allow_unregistered: bool,
    /// Off only for old gear that cannot send Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
    /// Reply attributes by group, first match wins.
    #[serde(default)]
    pub replies: Vec<ReplySettings>,
}

fn default_mode() -> String {
    "challenge".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    pub group: String,
    #[serde(default)]
    pub class: String,
    #[serde(default)]
    pub filter_id: String,
    #[serde(default)]
    pub session_timeout: u32,
}

/// Attributes sent in the Access-Accept for members of `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReply {
    pub group: String,
    pub class: Option<String>,
    pub filter_id: Option<String>,
    pub session_timeout: Option<u32>,
}

/// A gateway allowed to ask.
#[derive(Clone)]
pub struct RadiusClient {
    pub address: Cidr,
    pub secret: Vec<u8>,
    pub require_message_authenticator: bool,
    pub policy: GatewayClientPolicy,
    pub replies: Vec<GroupReply>,
}

impl std::fmt::Debug for RadiusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadiusClient")
            .field("name", &self.policy.name)
            .field("address", &self.address)
            .field("secret", &"***")
            .finish()
    }
}

impl RadiusClient {
    /// The reply attributes for a user's groups.
    pub fn reply_for(&self, groups: &[String]) -> Option<&GroupReply> {
        self.replies
            .iter()
            .find(|r| crate::domain::policy::in_group(groups, &r.group))
    }
}

#[derive(Debug, Clone)]
pub struct RadiusConfig {
    pub listen: SocketAddr,
    pub max_in_flight: usize,
    pub policy: GatewayPolicy,
    pub clients: Vec<RadiusClient>,
}

impl RadiusConfig {
    /// The client a packet from `ip` belongs to (the first whose address matches).
    pub fn client_for(&self, ip: IpAddr) -> Option<&RadiusClient> {
        self.clients.iter().find(|c| c.address.contains(ip))
    }

    pub fn client_named(&self, name: &str) -> Option<&RadiusClient> {
        self.clients.iter().find(|c| c.policy.name == name)
    }

    pub fn from_settings(s: &RadiusSettings, problems: &mut Vec<String>) -> Option<RadiusConfig> {
        let before = problems.len();
        let listen = s
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| {
                problems.push(format!(
                    "radius.listen `{}`: {e} (expected e.g. 127.0.0.1:1812)",
                    s.listen
                ))
            })
            .ok();
        if !(30..=3600).contains(&s.challenge_seconds) {
            problems.push("radius.challenge_seconds: 30 to 3600".into());
        }
        if !(5..=120).contains(&s.hold_seconds) {
            problems
                .push("radius.hold_seconds: 5 to 120 (keep it below the gateway's timeout)".into());
        }
        if s.clients.is_empty() {
            problems.push(
                "radius.clients: at least one [[radius.clients]] (name, address, secret_file)"
                    .into(),
            );
        }
        let mut clients = Vec::new();
        for (i, c) in s.clients.iter().enumerate() {
            let at = format!("radius.clients[{i}] `{}`", c.name);
            if c.name.trim().is_empty() || c.name.len() > 64 {
                problems.push(format!("{at}: name: 1 to 64 characters"));
            }
            if s.clients[..i].iter().any(|o| o.name == c.name) {
                problems.push(format!("{at}: the name is used twice"));
            }
            let address = Cidr::parse(&c.address);
            if address.is_none() {
                problems.push(format!(
                    "{at}: address `{}` is not an address or CIDR range (e.g. 10.0.0.0/24)",
                    c.address
                ));
            }
            let mode = GatewayMode::parse(&c.mode);
            if mode.is_none() {
                problems.push(format!(
                    "{at}: mode `{}` must be challenge or concat",
                    c.mode
                ));
            }
            let secret = match (c.secret.is_empty(), c.secret_file.is_empty()) {
                (false, true) => Some(c.secret.as_bytes().to_vec()),
                (true, false) => match std::fs::read_to_string(&c.secret_file) {
                    Ok(t) => Some(t.trim_end_matches(['\r', '\n']).as_bytes().to_vec()),
                    Err(e) => {
                        problems.push(format!("{at}: secret_file {}: {e}", c.secret_file));
                        None
                    }
                },
                _ => {
                    problems.push(format!("{at}: set exactly one of secret, secret_file"));
                    None
                }
            };
            if let Some(secret) = &secret {
                if secret.len() < 16 {
                    problems.push(format!(
                        "{at}: the shared secret must be at least 16 characters"
                    ));
                }
            }
            let mut replies = Vec::new();
            for r in &c.replies {
                if r.group.trim().is_empty() {
                    problems.push(format!("{at}: replies: every entry needs a group"));
                }
                if r.class.len() > 253 || r.filter_id.len() > 253 {
                    problems.push(format!(
                        "{at}: replies: class and filter_id at most 253 bytes"
                    ));
                }
                replies.push(GroupReply {
                    group: r.group.trim().to_string(),
                    class: Some(r.class.clone()).filter(|v| !v.is_empty()),
                    filter_id: Some(r.filter_id.clone()).filter(|v| !v.is_empty()),
                    session_timeout: Some(r.session_timeout).filter(|v| *v > 0),
                });
            }
            if let (Some(address), Some(mode), Some(secret)) = (address, mode, secret) {
                clients.push(RadiusClient {
                    address,
                    secret,
                    require_message_authenticator: c.require_message_authenticator,
                    policy: GatewayClientPolicy {
                        name: c.name.clone(),
                        mode,
                        groups: c.groups.clone(),
                        allow_unregistered: c.allow_unregistered,
                    },
                    replies,
                });
            }
        }
        if problems.len() > before {
            return None;
        }
        Some(RadiusConfig {
            listen: listen?,
            max_in_flight: s.max_in_flight.clamp(1, 10_000) as usize,
            policy: GatewayPolicy {
                challenge_seconds: i64::from(s.challenge_seconds),
                hold_seconds: i64::from(s.hold_seconds),
            },
            clients,
        })
    }
}
