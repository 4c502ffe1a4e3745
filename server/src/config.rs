//! Layered settings: built-in defaults → a TOML file (`config/converge.toml` or `--config`) →
//! `CONVERGE__SECTION__KEY` environment variables. Unknown keys are rejected by name; values are
//! validated into a [`Configuration`] that the rest of the server uses.

use crate::domain::policy::{
    Argon2Policy, MethodKind, Policy, RegistrationPolicy, ResetPolicy, SessionPolicy, SigninPolicy,
    TotpAlgorithm, TotpPolicy,
};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DEFAULT_CONFIG_FILE: &str = "config/converge.toml";
pub const ENV_PREFIX: &str = "CONVERGE__";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Development mode: allows the dev mailbox and the dev SMS / voice provider (messages are
    /// kept in the database, not sent) and `sms.dev_page`. Never in production.
    pub dev_mode: bool,
    /// The only source of every link Converge sends and of the WebAuthn RP id / origin.
    pub public_url: String,
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub security: SecuritySettings,
    pub session: SessionSettings,
    pub argon2: Argon2Settings,
    pub signin: SigninSettings,
    pub organisation: OrganisationSettings,
    pub log: LogSettings,
    pub email: EmailSettings,
    pub outbox: OutboxSettings,
    pub sms: SmsSettings,
    pub registration: RegistrationSettings,
    pub reset: ResetSettings,
    pub ldap: LdapSettings,
    pub fraud: FraudSettings,
    pub helpdesk: HelpdeskSettings,
    pub radius: crate::radius::config::RadiusSettings,
    pub api: crate::api::config::ApiSettings,
    pub retention: RetentionSettings,
}

/// `[retention]`: how long records are kept (docs/privacy.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    pub audit_days: u32,
    /// Client addresses and browsers in the audit trail become pseudonyms after this.
    pub audit_pseudonymise_days: u32,
    /// Throttle rows without a failure for this long are removed (at least the longest window).
    pub throttle_hours: u32,
    /// Sent messages (0: at the next sweep).
    pub sent_outbox_hours: u32,
    pub dead_letter_days: u32,
    /// "This wasn't me" links, counted from their expiry.
    pub report_token_days: u32,
    pub sync_run_days: u32,
    pub dev_message_hours: u32,
    pub sweep_interval_minutes: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            audit_days: 400,
            audit_pseudonymise_days: 90,
            throttle_hours: 48,
            sent_outbox_hours: 0,
            dead_letter_days: 30,
            report_token_days: 0,
            sync_run_days: 90,
            dev_message_hours: 24,
            sweep_interval_minutes: 60,
        }
    }
}

/// `[fraud]`: what a "This wasn't me" report or a fraud answer to a call does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudSettings {
    /// Days the account's second factors stay blocked (0: only report, never block).
    pub block_days: u32,
}

impl Default for FraudSettings {
    fn default() -> Self {
        FraudSettings { block_days: 90 }
    }
}

/// `[helpdesk]`: caller verification and what agents may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HelpdeskSettings {
    /// Minutes a caller verification stays valid for actions on that user.
    pub verification_minutes: u32,
    /// Temporary Access Pass: default lifetime, the longest an agent may choose, and uses.
    pub tap_minutes: u32,
    pub tap_max_minutes: u32,
    pub tap_uses: u32,
    /// Groups (DNs or names, as the directory sync stores them) whose members are protected
    /// like administrators.
    pub protected_groups: Vec<String>,
    /// Hours a request for a second administrator's approval waits.
    pub approval_hours: u32,
}

impl Default for HelpdeskSettings {
    fn default() -> Self {
        HelpdeskSettings {
            verification_minutes: 15,
            tap_minutes: 60,
            tap_max_minutes: 480,
            tap_uses: 1,
            protected_groups: vec![],
            approval_hours: 24,
        }
    }
}

/// `[ldap]`: the LDAP / Active Directory connection, attribute map and sync (see `LdapConfig`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapSettings {
    pub enabled: bool,
    /// Users synchronised from this directory have `source = "ldap:<name>"`.
    pub name: String,
    /// `openldap` or `active_directory`: the attribute map and filters below default to it.
    pub preset: String,
    /// Tried in order (failover): ldap://, ldaps://.
    pub urls: Vec<String>,
    /// Upgrade ldap:// connections with StartTLS.
    pub starttls: bool,
    /// PEM file with the CA(s) that sign the directory's certificate; empty: the system's.
    pub ca_file: String,
    pub timeout_seconds: u32,
    pub bind_dn: String,
    /// The service account's password; prefer `bind_password_file` or the environment
    /// (CONVERGE__LDAP__BIND_PASSWORD). Never logged.
    pub bind_password: String,
    pub bind_password_file: String,
    pub base_dn: String,
    /// Empty: the preset's.
    pub user_filter: String,
    /// Only members of these groups (DNs) are imported; empty: everyone the filter finds.
    pub groups: Vec<String>,
    pub admin_groups: Vec<String>,
    pub helpdesk_groups: Vec<String>,
    /// Attribute names; empty: the preset's.
    pub attr_username: String,
    pub attr_display_name: String,
    pub attr_mail: String,
    pub attr_mobile: String,
    pub attr_phone: String,
    pub attr_member_of: String,
    /// A second sign-in name (AD: `userPrincipalName`; OpenLDAP: none unless set, e.g. `mail`).
    pub attr_principal: String,
    pub page_size: u32,
    /// Bound service-account connections kept open for reuse.
    pub pool_size: u32,
    /// User binds (sign-ins) in flight at once; more wait up to `timeout_seconds`.
    pub max_concurrent_binds: u32,
    /// Minutes between scheduled runs (0: only `converge sync`).
    pub sync_interval_minutes: u32,
    /// Incremental runs in between; a full run at least this often.
    pub full_sync_hours: u32,
    /// A run that would disable more users than this disables none and waits for approval.
    pub disable_threshold: u32,
    /// Mail `user_enrollment` / `new_user` to users the sync creates.
    pub mail_new_users: bool,
    /// Mail `updated_user` when the directory changes a user's phone numbers.
    pub mail_updated_users: bool,
    /// The directory's own lockout threshold (0: unknown). The portal locks its sign-in before
    /// it, so nobody can lock a user out of Windows through Converge.
    pub directory_lockout_threshold: u32,
    /// Write reset passwords to the directory (Password Modify / unicodePwd).
    pub password_writeback: bool,
    /// OpenLDAP: the ppolicy entry whose rules (pwdMinLength, pwdInHistory) the new-password
    /// page shows (slapd's `ppolicy_default`; a user's own `pwdPolicySubentry` wins). Active
    /// Directory's domain policy is read from the domain object without it.
    pub password_policy_dn: String,
    /// Follow nested groups for `groups`, `admin_groups`, `helpdesk_groups` (AD: the in-chain
    /// matching rule; OpenLDAP: groups that are members, through the memberof overlay).
    pub nested_groups: bool,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            enabled: false,
            name: "corp".into(),
            preset: "openldap".into(),
            urls: vec![],
            starttls: false,
            ca_file: String::new(),
            timeout_seconds: 10,
            bind_dn: String::new(),
            bind_password: String::new(),
            bind_password_file: String::new(),
            base_dn: String::new(),
            user_filter: String::new(),
            groups: vec![],
            admin_groups: vec![],
            helpdesk_groups: vec![],
            attr_username: String::new(),
            attr_display_name: String::new(),
            attr_mail: String::new(),
            attr_mobile: String::new(),
            attr_phone: String::new(),
            attr_member_of: String::new(),
            attr_principal: String::new(),
            page_size: 500,
            pool_size: 4,
            max_concurrent_binds: 32,
            sync_interval_minutes: 60,
            full_sync_hours: 24,
            disable_threshold: 5,
            mail_new_users: true,
            mail_updated_users: true,
            directory_lockout_threshold: 0,
            password_writeback: true,
            password_policy_dn: String::new(),
            nested_groups: true,
        }
    }
}

/// `[reset]`: self-service password reset and unlock (see `ResetPolicy`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResetSettings {
    pub enabled: bool,
    pub questions_as_second_gate: bool,
    pub questions_asked: u32,
    pub flow_minutes: u32,
    pub max_failures_per_flow: u32,
    pub min_length_single_factor: u32,
    pub min_length_with_mfa: u32,
    pub requests_per_client: u32,
    pub client_window_minutes: u32,
    pub requests_per_account_per_hour: u32,
    pub proof_of_work_bits: u32,
    /// More refused passwords, one per line (added to the shipped list).
    pub extra_blocklist_file: String,
}

impl Default for ResetSettings {
    fn default() -> Self {
        ResetSettings {
            enabled: true,
            questions_as_second_gate: true,
            questions_asked: 2,
            flow_minutes: 15,
            max_failures_per_flow: 5,
            min_length_single_factor: 15,
            min_length_with_mfa: 8,
            requests_per_client: 20,
            client_window_minutes: 15,
            requests_per_account_per_hour: 5,
            proof_of_work_bits: 0,
            extra_blocklist_file: String::new(),
        }
    }
}

/// `[registration]`: what users must register and how (see `RegistrationPolicy`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationSettings {
    pub allowed_methods: Vec<String>,
    pub mandatory_methods: Vec<String>,
    pub methods_required: u32,
    pub admin_methods_required: u32,
    pub snooze_max: u32,
    pub snooze_window_days: u32,
    pub reconfirm_days: u32,
    pub fresh_mfa_minutes: u32,
    pub totp_algorithm: String,
    pub totp_digits: u32,
    pub totp_period_seconds: u32,
    /// Empty: the organisation name.
    pub totp_issuer: String,
    pub totp_max_devices: u32,
    pub max_passkeys: u32,
    pub questions: Vec<String>,
    pub questions_required: u32,
    pub allow_custom_questions: bool,
    pub pin_min_length: u32,
    pub pin_max_length: u32,
    pub pin_mode: bool,
    pub users_edit_directory_phones: bool,
    /// HOTP hardware tokens: counters looked ahead for a code (1-100).
    pub hotp_look_ahead: u32,
    /// Do recovery codes count towards methods_required?
    pub recovery_codes_count: bool,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        RegistrationSettings {
            allowed_methods: MethodKind::ALL
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            mandatory_methods: vec![],
            methods_required: 1,
            admin_methods_required: 2,
            snooze_max: 3,
            snooze_window_days: 14,
            reconfirm_days: 180,
            fresh_mfa_minutes: 10,
            totp_algorithm: "SHA1".into(),
            totp_digits: 6,
            totp_period_seconds: 30,
            totp_issuer: String::new(),
            totp_max_devices: 5,
            max_passkeys: 10,
            questions: [
                "What was the name of your first pet?",
                "In what city were you born?",
                "What was the make of your first car?",
                "What is your favourite book?",
                "What was the name of your primary school?",
                "What is your oldest cousin's first name?",
                "In what city did your parents meet?",
                "What was your childhood nickname?",
            ]
            .iter()
            .map(|q| q.to_string())
            .collect(),
            questions_required: 4,
            allow_custom_questions: false,
            pin_min_length: 6,
            pin_max_length: 8,
            pin_mode: false,
            users_edit_directory_phones: false,
            hotp_look_ahead: 10,
            recovery_codes_count: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// `false` switches mail off: no notices are sent and the email method is not offered.
    pub enabled: bool,
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465` (TLS). Required unless mail is off; empty with
    /// `dev_mode = true`: the dev mailbox (messages are kept, not sent).
    pub smtp_url: String,
    /// Read the SMTP password from this file instead of the URL (never logged).
    pub smtp_password_file: String,
    pub from: String,
    /// Operator overrides: `<dir>/<locale>/<message>/{subject.txt,body.html,body.txt}`.
    pub templates_dir: String,
    pub logo_url: String,
    /// How long a "This wasn't me" link works.
    pub report_link_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxSettings {
    pub max_attempts: u32,
    pub base_backoff_seconds: u32,
    pub max_backoff_seconds: u32,
    pub batch_size: u32,
    /// Messages sent at once by one instance.
    pub concurrency: u32,
    pub poll_interval_ms: u64,
    /// A claimed message not finished within this time is claimed again (crashed instance).
    pub claim_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsSettings {
    /// `webhook`, `email_gateway` or `none` (texts and calls off: the phone method is not
    /// offered); `dev` (kept, not sent) only with `dev_mode = true`, where it is the default.
    pub provider: String,
    pub webhook_url: String,
    /// File with the HMAC-SHA256 key for the `X-Converge-Signature` header.
    pub webhook_secret_file: String,
    pub timeout_seconds: u32,
    /// For `email_gateway`: e.g. `{number}@sms.example.net` (number without `+`).
    pub email_gateway_pattern: String,
    pub per_number_per_hour: u32,
    pub per_account_per_hour: u32,
    /// Show delivered dev SMS / voice messages and dev mail at /dev/messages (never in production).
    pub dev_page: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: String,
    /// Where cargo-leptos put the compiled site (pkg/, CSS, public files).
    pub site_root: PathBuf,
    /// Replaced by `trusted_proxies` (refused when true, with a message saying so).
    pub trust_forwarded_for: bool,
    /// Addresses (CIDR, e.g. `10.0.0.0/8`, `::1/128`, or a single address) of the reverse
    /// proxies in front of Converge. Only from these peers are `Forwarded` / `X-Forwarded-For`
    /// read, right to left, skipping trusted hops. Empty: the peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// Largest request body accepted (413 with the normal error page beyond it).
    pub max_body_bytes: usize,
    /// A request that takes longer is answered 503 (SYS-503).
    pub request_timeout_seconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (default, embedded) or `postgres://…` (several instances).
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySettings {
    /// 32-byte instance key (hex); generated with mode 0600 on first start when missing.
    /// Empty means `<data_dir>/secret.key`.
    pub secret_key_file: String,
    /// A file holding the bearer token `/metrics` asks for (at least 32 characters). Empty:
    /// `/metrics` is not served (never public by default).
    pub metrics_token_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub idle_timeout_minutes: u32,
    pub absolute_timeout_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Sign-in password checks running or waiting at once; beyond it sign-ins are refused at
    /// once with 503 + Retry-After (SYS-503) instead of queueing without end.
    pub max_queue: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigninSettings {
    /// Failures per account before delays start.
    pub free_attempts: u32,
    pub base_delay_seconds: u32,
    pub max_delay_seconds: u32,
    /// Consecutive failures after which the account is locked for sign-in.
    pub lockout_threshold: u32,
    /// Failures per client address (within the window) before delays start.
    pub client_free_attempts: u32,
    pub client_window_minutes: u32,
    /// One remembered failure of an account is forgotten every this many minutes.
    pub forget_after_minutes: u32,
    /// Attempts evaluated at once per account and per client address; more are refused at once.
    pub max_in_flight: u32,
    pub client_max_in_flight: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrganisationSettings {
    pub name: String,
    /// Country calling code used for phone numbers written without one (e.g. "31"); empty means
    /// numbers must be given in international form.
    pub default_country_code: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dev_mode: false,
            public_url: "http://localhost:3000".into(),
            data_dir: PathBuf::from("./data"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            security: SecuritySettings::default(),
            session: SessionSettings::default(),
            argon2: Argon2Settings::default(),
            signin: SigninSettings::default(),
            organisation: OrganisationSettings::default(),
            log: LogSettings::default(),
            email: EmailSettings::default(),
            outbox: OutboxSettings::default(),
            sms: SmsSettings::default(),
            registration: RegistrationSettings::default(),
            reset: ResetSettings::default(),
            ldap: LdapSettings::default(),
            fraud: FraudSettings::default(),
            helpdesk: HelpdeskSettings::default(),
            retention: RetentionSettings::default(),
            radius: Default::default(),
            api: Default::default(),
        }
    }
}
impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: "127.0.0.1:3000".into(),
            site_root: PathBuf::from("target/site"),
            trust_forwarded_for: false,
            trusted_proxies: vec![],
            max_body_bytes: 64 * 1024,
            request_timeout_seconds: 30,
        }
    }
}
impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "sqlite://./data/converge.db".into(),
            max_connections: 8,
        }
    }
}
impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
        }
    }
}
impl Default for Argon2Settings {
    fn default() -> Self {
        // OWASP: argon2id, m=19 MiB, t=2, p=1
        Argon2Settings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_queue: 32,
        }
    }
}
impl Default for SigninSettings {
    fn default() -> Self {
        SigninSettings {
            free_attempts: 5,
            base_delay_seconds: 1,
            max_delay_seconds: 900,
            lockout_threshold: 100,
            client_free_attempts: 30,
            client_window_minutes: 15,
            forget_after_minutes: 15,
            max_in_flight: 2,
            client_max_in_flight: 8,
        }
    }
}
impl Default for OrganisationSettings {
    fn default() -> Self {
        OrganisationSettings {
            name: "Converge".into(),
            default_country_code: String::new(),
        }
    }
}
impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            enabled: true,
            smtp_url: String::new(),
            smtp_password_file: String::new(),
            from: "Converge <converge@localhost>".into(),
            templates_dir: String::new(),
            logo_url: String::new(),
            report_link_days: 30,
        }
    }
}
impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 10,
            base_backoff_seconds: 30,
            max_backoff_seconds: 3600,
            batch_size: 32,
            concurrency: 8,
            poll_interval_ms: 1000,
            claim_seconds: 120,
        }
    }
}
impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            provider: String::new(),
            webhook_url: String::new(),
            webhook_secret_file: String::new(),
            timeout_seconds: 10,
            email_gateway_pattern: String::new(),
            per_number_per_hour: 5,
            per_account_per_hour: 10,
            dev_page: false,
        }
    }
}
impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: "info,sqlx=warn,tower_http=info".into(),
            format: "text".into(),
        }
    }
}

/// Why the configuration could not be used. Messages name the file, key and value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Settings {
    /// Loads defaults, then `file` (or `config/converge.toml` if it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env)
    }

    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let mut table = toml::Table::new();
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            table = text
                .parse::<toml::Table>()
                .map_err(|e| ConfigError::Syntax {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            set_path(&mut table, &keys, parse_env_value(value)).map_err(|message| {
                ConfigError::Key {
                    key: name.clone(),
                    message,
                }
            })?;
        }
        let de = toml::Value::Table(table);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key {
                key,
                message: e.into_inner().to_string(),
            }
        })
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    // lists as TOML arrays: CONVERGE__LDAP__URLS='["ldaps://dc1", "ldaps://dc2"]'
    if value.trim_start().starts_with('[') {
        if let Some(list) = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
        {
            return list;
        }
    }
    // numbers and booleans are typed; everything else is a string
    if let Ok(b) = value.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(value.to_string())
}

fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) -> Result<(), String> {
    match keys {
        [] => Err("empty key".into()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{first}` is not a section")),
            }
        }
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}
impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// An address range (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: std::net::IpAddr,
    prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let net: std::net::IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        // an IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d)
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Validated configuration used by the running server.
#[derive(Debug, Clone)]
pub struct Configuration {
    pub public_url: url::Url,
    /// `scheme://host[:port]` of `public_url`, compared with the `Origin` header.
    pub public_origin: String,
    pub https: bool,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub site_root: PathBuf,
    pub trusted_proxies: Vec<Cidr>,
    pub max_body_bytes: usize,
    pub request_timeout: std::time::Duration,
    pub database_url: String,
    pub database_max_connections: u32,
    pub secret_key_file: PathBuf,
    /// `security.metrics_token_file`, when set.
    pub metrics_token_file: Option<PathBuf>,
    pub organisation_name: String,
    pub default_country_code: Option<String>,
    pub policy: Policy,
    pub log_filter: String,
    pub log_json: bool,
    /// `dev_mode = true`: the dev mailbox / SMS provider may be used.
    pub dev_mode: bool,
    pub email: EmailSettings,
    pub outbox: OutboxSettings,
    pub sms: SmsSettings,
    /// `None` unless `[ldap] enabled = true`.
    pub ldap: Option<crate::directory::ldap::LdapConfig>,
    /// `None` unless `[radius] enabled = true`.
    pub radius: Option<crate::radius::config::RadiusConfig>,
    /// `None` when `[api] enabled = false`.
    pub api: Option<crate::domain::policy::ApiPolicy>,
}

impl Configuration {
    /// The session cookie name: `__Host-` prefixed whenever the portal is served over https.
    /// The device cookie (sign-in's lockout protection, docs/throttling.md).
    pub fn device_cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-converge_device"
        } else {
            "converge_device"
        }
    }

    pub fn session_cookie_name(&self) -> &'static str {
        if self.https {
            "__Host-converge_session"
        } else {
            "converge_session"
        }
    }
}

impl Settings {
    pub fn validate(mut self) -> Result<Configuration, ConfigError> {
        let mut problems = Vec::new();
        let public_url = match url::Url::parse(&self.public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
                if u.path() != "/" || u.query().is_some() {
                    problems.push(format!(
                        "public_url `{}`: must be an origin without a path or query (e.g. https://mfa.example.org)",
                        self.public_url
                    ));
                }
                Some(u)
            }
            _ => {
                problems.push(format!(
                    "public_url `{}`: must be an http(s) URL such as https://mfa.example.org",
                    self.public_url
                ));
                None
            }
        };
        let bind = self.server.bind.parse::<SocketAddr>().map_err(|e| {
            problems.push(format!(
                "server.bind `{}`: {e} (expected e.g. 127.0.0.1:3000)",
                self.server.bind
            ))
        });
        let db = self.database.url.trim().to_string();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            problems.push(format!(
                "database.url `{db}`: must start with sqlite: or postgres://"
            ));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".into());
        }
        let s = &self.session;
        if s.idle_timeout_minutes == 0 || s.absolute_timeout_hours == 0 {
            problems.push("session: timeouts must be greater than 0".into());
        }
        if u64::from(s.idle_timeout_minutes) > u64::from(s.absolute_timeout_hours) * 60 {
            problems
                .push("session.idle_timeout_minutes: must not exceed the absolute timeout".into());
        }
        let a = &self.argon2;
        if a.memory_kib < 8 * a.parallelism.max(1) || a.iterations == 0 || a.parallelism == 0 {
            problems
                .push("argon2: memory_kib ≥ 8×parallelism, iterations ≥ 1, parallelism ≥ 1".into());
        }
        if self.server.trust_forwarded_for {
            problems.push(
                "server.trust_forwarded_for: replaced by server.trusted_proxies, the addresses of \
                 your proxies (e.g. trusted_proxies = [\"10.0.0.0/8\"])"
                    .into(),
            );
        }
        let mut trusted_proxies = Vec::new();
        for p in &self.server.trusted_proxies {
            match Cidr::parse(p) {
                Some(c) => trusted_proxies.push(c),
                None => problems.push(format!(
                    "server.trusted_proxies: `{p}` is not an address or CIDR range (e.g. 10.0.0.0/8)"
                )),
            }
        }
        let si = &self.signin;
        if si.lockout_threshold == 0 {
            problems.push("signin.lockout_threshold: must be at least 1".into());
        }
        if si.free_attempts == 0 || si.client_free_attempts == 0 {
            problems.push("signin.free_attempts, client_free_attempts: must be at least 1".into());
        }
        if si.max_in_flight == 0 || si.client_max_in_flight == 0 {
            problems.push("signin.max_in_flight, client_max_in_flight: must be at least 1".into());
        }
        if si.max_delay_seconds < si.base_delay_seconds {
            problems.push("signin.max_delay_seconds: must be ≥ base_delay_seconds".into());
        }
        let cc = self
            .organisation
            .default_country_code
            .trim()
            .trim_start_matches('+')
            .to_string();
        let cc_ok = cc.is_empty() || (cc.len() <= 3 && cc.chars().all(|c| c.is_ascii_digit()));
        if !cc_ok {
            problems.push(format!(
                "organisation.default_country_code `{cc}`: 1–3 digits, e.g. 31"
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format `{}`: must be `text` or `json`",
                self.log.format
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            problems.push(format!("log.filter `{}`: {e}", self.log.filter));
        }
        let e = &self.email;
        let smtp_ok = e.smtp_url.is_empty()
            || e.smtp_url.starts_with("smtp://")
            || e.smtp_url.starts_with("smtps://");
        if !smtp_ok {
            problems.push("email.smtp_url: must start with smtp:// or smtps://".into());
        }
        if lettre::message::Mailbox::from_str(&e.from).is_err() {
            problems.push(format!(
                "email.from `{}`: not a mailbox such as `Converge <mfa@example.org>`",
                e.from
            ));
        }
        let o = &self.outbox;
        if o.max_attempts == 0 || o.batch_size == 0 || o.concurrency == 0 || o.claim_seconds == 0 {
            problems.push("outbox: max_attempts, batch_size, concurrency and claim_seconds must be at least 1".into());
        }
        if e.enabled && e.smtp_url.is_empty() && !self.dev_mode {
            problems.push(
                "email.smtp_url: required (smtp://host:25 …); or set `email.enabled = false` to \
                 switch mail off, or `dev_mode = true` to keep mail in the dev mailbox"
                    .into(),
            );
        }
        if !e.enabled && !e.smtp_url.is_empty() {
            problems.push(
                "email.smtp_url: set, but `email.enabled = false`: remove one of the two".into(),
            );
        }
        if self.sms.provider.is_empty() && self.dev_mode {
            self.sms.provider = "dev".into();
        }
        if self.sms.dev_page && !self.dev_mode {
            problems.push("sms.dev_page: needs `dev_mode = true` (it shows every code)".into());
        }
        let m = &self.sms;
        match m.provider.as_str() {
            "" => problems.push(
                "sms.provider: required: `webhook`, `email_gateway`, or `none` to switch texts \
                 and calls off (`dev` only with `dev_mode = true`)"
                    .into(),
            ),
            "none" => {}
            "dev" if !self.dev_mode => problems.push(
                "sms.provider `dev`: needs `dev_mode = true` (texts would be kept, not sent)"
                    .into(),
            ),
            "dev" => {}
            "webhook" => {
                if url::Url::parse(&m.webhook_url).is_err() {
                    problems.push(
                        "sms.webhook_url: required (an http(s) URL) for the webhook provider"
                            .into(),
                    );
                }
                if m.webhook_secret_file.is_empty() {
                    problems
                        .push("sms.webhook_secret_file: required for the webhook provider".into());
                }
            }
            "email_gateway" => {
                if !self.email.enabled {
                    problems.push(
                        "sms.provider `email_gateway`: needs mail (`email.enabled = true`)".into(),
                    );
                }
                if !m.email_gateway_pattern.contains("{number}")
                    || !m.email_gateway_pattern.contains('@')
                {
                    problems.push(
                        "sms.email_gateway_pattern: must look like {number}@sms.example.net".into(),
                    );
                }
            }
            other => problems.push(format!(
                "sms.provider `{other}`: must be webhook, email_gateway, none or dev"
            )),
        }
        let retention = self.retention_policy(&mut problems);
        let registration = self.registration_policy(&mut problems);
        let reset = self.reset_policy(&mut problems);
        let h = &self.helpdesk;
        if !(1..=60).contains(&h.verification_minutes) {
            problems.push("helpdesk.verification_minutes: 1 to 60".into());
        }
        if h.tap_max_minutes == 0 || h.tap_max_minutes > 43_200 {
            problems.push("helpdesk.tap_max_minutes: 1 to 43200 (30 days)".into());
        }
        if h.tap_minutes == 0 || h.tap_minutes > h.tap_max_minutes {
            problems.push("helpdesk.tap_minutes: 1 to helpdesk.tap_max_minutes".into());
        }
        if !(1..=10).contains(&h.tap_uses) {
            problems.push("helpdesk.tap_uses: 1 to 10".into());
        }
        if !(1..=168).contains(&h.approval_hours) {
            problems.push("helpdesk.approval_hours: 1 to 168".into());
        }
        if self.fraud.block_days > 3650 {
            problems.push("fraud.block_days: 0 (never block) to 3650".into());
        }
        let ldap = if self.ldap.enabled {
            crate::directory::ldap::LdapConfig::from_settings(&self.ldap, &mut problems)
        } else {
            None
        };
        let api = self.api.policy(&mut problems);
        let radius = if self.radius.enabled {
            crate::radius::config::RadiusConfig::from_settings(&self.radius, &mut problems)
        } else {
            None
        };
        // the portal's sign-in lock comes before the directory's own lockout
        let mut lockout_threshold = si.lockout_threshold;
        if let Some(l) = ldap.as_ref().filter(|l| l.directory_lockout_threshold > 0) {
            if l.directory_lockout_threshold < 2 {
                problems
                    .push("ldap.directory_lockout_threshold: at least 2 (or 0: unknown)".into());
            }
            lockout_threshold =
                lockout_threshold.min(l.directory_lockout_threshold.saturating_sub(1).max(1));
        }
        let (Some(public_url), Ok(bind), true) = (public_url, bind, problems.is_empty()) else {
            return Err(ConfigError::Invalid(problems));
        };
        let https = public_url.scheme() == "https";
        let public_origin = public_url.origin().ascii_serialization();
        let secret_key_file = if self.security.secret_key_file.is_empty() {
            self.data_dir.join("secret.key")
        } else {
            PathBuf::from(&self.security.secret_key_file)
        };
        Ok(Configuration {
            public_url,
            public_origin,
            https,
            data_dir: self.data_dir,
            bind,
            site_root: self.server.site_root,
            trusted_proxies,
            max_body_bytes: self.server.max_body_bytes.max(1024),
            request_timeout: std::time::Duration::from_secs(u64::from(
                self.server.request_timeout_seconds.max(1),
            )),
            database_url: db,
            database_max_connections: self.database.max_connections,
            secret_key_file,
            metrics_token_file: Some(PathBuf::from(&self.security.metrics_token_file))
                .filter(|p| !p.as_os_str().is_empty()),
            organisation_name: self.organisation.name,
            default_country_code: Some(cc).filter(|c| !c.is_empty()),
            policy: Policy {
                session: SessionPolicy {
                    idle_timeout_seconds: i64::from(s.idle_timeout_minutes) * 60,
                    absolute_timeout_seconds: i64::from(s.absolute_timeout_hours) * 3600,
                },
                argon2: Argon2Policy {
                    memory_kib: a.memory_kib,
                    iterations: a.iterations,
                    parallelism: a.parallelism,
                    max_queue: a.max_queue.max(1),
                },
                signin: SigninPolicy {
                    free_attempts: si.free_attempts,
                    base_delay_seconds: i64::from(si.base_delay_seconds),
                    max_delay_seconds: i64::from(si.max_delay_seconds),
                    lockout_threshold,
                    client_free_attempts: si.client_free_attempts,
                    client_window_seconds: i64::from(si.client_window_minutes.max(1)) * 60,
                    forget_after_seconds: i64::from(si.forget_after_minutes.max(1)) * 60,
                    max_in_flight: si.max_in_flight.max(1),
                    client_max_in_flight: si.client_max_in_flight.max(1),
                },
                registration,
                reset,
                fraud: crate::domain::policy::FraudPolicy {
                    block_seconds: i64::from(self.fraud.block_days) * 86_400,
                },
                helpdesk: crate::domain::policy::HelpdeskPolicy {
                    verification_seconds: i64::from(self.helpdesk.verification_minutes) * 60,
                    pending_seconds: 600,
                    tap_seconds: i64::from(self.helpdesk.tap_minutes) * 60,
                    tap_max_seconds: i64::from(self.helpdesk.tap_max_minutes) * 60,
                    tap_uses: self.helpdesk.tap_uses,
                    protected_groups: self.helpdesk.protected_groups.clone(),
                    approval_seconds: i64::from(self.helpdesk.approval_hours) * 3600,
                },
                retention,
            },
            log_filter: self.log.filter,
            log_json: self.log.format == "json",
            dev_mode: self.dev_mode,
            email: self.email,
            outbox: self.outbox,
            sms: self.sms,
            ldap,
            radius,
            api,
        })
    }
}

impl Settings {
    fn reset_policy(&self, problems: &mut Vec<String>) -> ResetPolicy {
        let r = &self.reset;
        if !(1..=60).contains(&r.flow_minutes) {
            problems.push("reset.flow_minutes: must be 1 to 60".into());
        }
        if !(1..=20).contains(&r.max_failures_per_flow) {
            problems.push("reset.max_failures_per_flow: must be 1 to 20".into());
        }
        if r.min_length_with_mfa < 8 || r.min_length_single_factor < r.min_length_with_mfa {
            problems.push(
                "reset.min_length_with_mfa / min_length_single_factor: 8 ≤ with_mfa ≤ single_factor (NIST SP 800-63B)"
                    .into(),
            );
        }
        if r.min_length_single_factor > 64 {
            problems.push("reset.min_length_single_factor: at most 64".into());
        }
        if r.questions_asked == 0 || r.questions_asked > self.registration.questions_required {
            problems.push(format!(
                "reset.questions_asked: 1 to registration.questions_required ({})",
                self.registration.questions_required
            ));
        }
        if r.proof_of_work_bits > 24 {
            problems.push("reset.proof_of_work_bits: 0 (off) to 24".into());
        }
        if r.requests_per_client == 0 || r.requests_per_account_per_hour == 0 {
            problems.push(
                "reset.requests_per_client / requests_per_account_per_hour: at least 1".into(),
            );
        }
        ResetPolicy {
            enabled: r.enabled,
            questions_as_second_gate: r.questions_as_second_gate,
            questions_asked: r.questions_asked,
            flow_seconds: i64::from(r.flow_minutes) * 60,
            max_failures_per_flow: r.max_failures_per_flow,
            min_length_single_factor: r.min_length_single_factor as usize,
            min_length_with_mfa: r.min_length_with_mfa as usize,
            requests_per_client: r.requests_per_client,
            client_window_seconds: i64::from(r.client_window_minutes.max(1)) * 60,
            requests_per_account_per_hour: r.requests_per_account_per_hour,
            proof_of_work_bits: r.proof_of_work_bits,
            extra_blocklist_file: Some(PathBuf::from(&r.extra_blocklist_file))
                .filter(|p| !p.as_os_str().is_empty()),
            // a write takes at most a connection, a bind, a search, a modify and the unlock's
            // own three, each bounded by the directory timeout; local writes are one statement
            writeback_settled_seconds: if self.ldap.enabled {
                8 * i64::from(self.ldap.timeout_seconds.max(1))
            } else {
                30
            },
        }
    }

    fn retention_policy(
        &self,
        problems: &mut Vec<String>,
    ) -> crate::domain::policy::RetentionPolicy {
        let r = &self.retention;
        let day = 86_400i64;
        if r.audit_pseudonymise_days == 0 || r.audit_pseudonymise_days > r.audit_days {
            problems.push("retention.audit_pseudonymise_days: 1 to retention.audit_days".into());
        }
        if r.audit_days < 30 {
            problems.push(
                "retention.audit_days: at least 30 (the helpdesk and fraud reports read it)".into(),
            );
        }
        // a throttle row must outlive its window: the longest is the lockout, whose failures
        // are forgotten one per `signin.forget_after_minutes`
        let si = &self.signin;
        let lockout_window =
            i64::from(si.lockout_threshold) * i64::from(si.forget_after_minutes.max(1)) * 60
                + i64::from(si.max_delay_seconds);
        let longest = lockout_window.max(day);
        if i64::from(r.throttle_hours) * 3600 < longest {
            problems.push(format!(
                "retention.throttle_hours: at least {} (the longest throttle window: signin.lockout_threshold × forget_after_minutes, or a day)",
                (longest + 3599) / 3600
            ));
        }
        if r.sweep_interval_minutes == 0 {
            problems.push("retention.sweep_interval_minutes: at least 1".into());
        }
        crate::domain::policy::RetentionPolicy {
            audit_seconds: i64::from(r.audit_days) * day,
            audit_pseudonymise_seconds: i64::from(r.audit_pseudonymise_days) * day,
            throttle_seconds: i64::from(r.throttle_hours) * 3600,
            sent_seconds: i64::from(r.sent_outbox_hours) * 3600,
            dead_seconds: i64::from(r.dead_letter_days) * day,
            report_token_seconds: i64::from(r.report_token_days) * day,
            sync_run_seconds: i64::from(r.sync_run_days) * day,
            dev_message_seconds: i64::from(r.dev_message_hours) * 3600,
            sweep_every_seconds: i64::from(r.sweep_interval_minutes.max(1)) * 60,
        }
    }

    fn registration_policy(&self, problems: &mut Vec<String>) -> RegistrationPolicy {
        let r = &self.registration;
        let mut kinds = |key: &str, names: &[String]| -> Vec<MethodKind> {
            names
                .iter()
                .filter_map(|n| {
                    let k = MethodKind::parse(n.trim());
                    if k.is_none() {
                        problems.push(format!(
                            "registration.{key}: `{n}` is not a method (totp, passkey, phone, email, questions, pin)"
                        ));
                    }
                    k
                })
                .collect()
        };
        let mut allowed = kinds("allowed_methods", &r.allowed_methods);
        let mandatory = kinds("mandatory_methods", &r.mandatory_methods);
        if let Some(k) = mandatory.iter().find(|k| !allowed.contains(k)) {
            problems.push(format!(
                "registration.mandatory_methods: `{}` is mandatory but not in allowed_methods",
                k.as_str()
            ));
        }
        // A switched-off channel takes the method that needs it out of what is offered.
        let off = [
            (
                MethodKind::Email,
                !self.email.enabled,
                "`email.enabled = false`",
            ),
            (
                MethodKind::Phone,
                self.sms.provider == "none",
                "`sms.provider = \"none\"`",
            ),
        ];
        for (kind, is_off, why) in off {
            if !is_off {
                continue;
            }
            allowed.retain(|k| *k != kind);
            if mandatory.contains(&kind) {
                problems.push(format!(
                    "registration.mandatory_methods: `{}` is mandatory but {why} switches it off",
                    kind.as_str()
                ));
            }
        }
        if !(1..=2).contains(&r.methods_required) {
            problems.push("registration.methods_required: must be 1 or 2".into());
        }
        let algorithm = match r.totp_algorithm.to_ascii_uppercase().as_str() {
            "SHA1" => TotpAlgorithm::Sha1,
            "SHA256" => TotpAlgorithm::Sha256,
            "SHA512" => TotpAlgorithm::Sha512,
            other => {
                problems.push(format!(
                    "registration.totp_algorithm `{other}`: must be SHA1, SHA256 or SHA512"
                ));
                TotpAlgorithm::Sha1
            }
        };
        if !(6..=8).contains(&r.totp_digits) {
            problems.push("registration.totp_digits: must be 6, 7 or 8".into());
        }
        if !(15..=120).contains(&r.totp_period_seconds) {
            problems.push("registration.totp_period_seconds: must be 15 to 120".into());
        }
        if !(4..=16).contains(&r.pin_min_length) || r.pin_max_length < r.pin_min_length {
            problems
                .push("registration.pin_min_length / pin_max_length: 4 ≤ min ≤ max ≤ 16".into());
        }
        if !(1..=100).contains(&r.hotp_look_ahead) {
            problems.push("registration.hotp_look_ahead: 1 to 100".into());
        }
        if r.questions_required > 6 {
            problems.push("registration.questions_required: at most 6".into());
        }
        let pool = r.questions.iter().filter(|q| !q.trim().is_empty()).count();
        if allowed.contains(&MethodKind::Questions)
            && (r.questions_required == 0
                || (pool < r.questions_required as usize && !r.allow_custom_questions))
        {
            problems.push(format!(
                "registration.questions: {pool} questions cannot cover questions_required = {}",
                r.questions_required
            ));
        }
        RegistrationPolicy {
            allowed,
            mandatory,
            required: r.methods_required,
            admin_required: r.admin_methods_required.max(r.methods_required),
            snooze_max: r.snooze_max,
            snooze_window_seconds: i64::from(r.snooze_window_days) * 86_400,
            reconfirm_seconds: i64::from(r.reconfirm_days) * 86_400,
            fresh_mfa_seconds: i64::from(r.fresh_mfa_minutes.max(1)) * 60,
            totp: TotpPolicy {
                algorithm,
                digits: r.totp_digits,
                period_seconds: u64::from(r.totp_period_seconds),
                issuer: if r.totp_issuer.trim().is_empty() {
                    self.organisation.name.clone()
                } else {
                    r.totp_issuer.trim().to_string()
                },
                max_devices: r.totp_max_devices.max(1),
            },
            max_passkeys: r.max_passkeys.max(1),
            questions: r
                .questions
                .iter()
                .map(|q| q.trim().to_string())
                .filter(|q| !q.is_empty())
                .collect(),
            questions_required: r.questions_required,
            allow_custom_questions: r.allow_custom_questions,
            pin_min_length: r.pin_min_length,
            pin_max_length: r.pin_max_length,
            pin_max_failures: 10,
            pin_mode: r.pin_mode,
            users_edit_directory_phones: r.users_edit_directory_phones,
            code_ttl_seconds: 600,
            code_max_failures: 5,
            pending_ttl_seconds: 900,
            hotp_look_ahead: u64::from(r.hotp_look_ahead.clamp(1, 100)),
            hotp_resync_window: 100,
            recovery_codes_count: r.recovery_codes_count,
            recovery_codes: 10,
        }
    }
}

/// Where the instance key comes from, for messages: the environment, a systemd credential, or a
/// file.
pub const SECRET_KEY_ENV: &str = "CONVERGE_SECRET_KEY";
/// The systemd credential name (`LoadCredential=converge-secret-key:/path`).
pub const SECRET_KEY_CREDENTIAL: &str = "converge-secret-key";

fn parse_secret_key(text: &str, source: &str) -> anyhow::Result<SecretKey> {
    let bytes = hex::decode(text.trim())
        .map_err(|_| anyhow::anyhow!("the instance key in {source} is not hex"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        anyhow::anyhow!("the instance key in {source} must be 32 bytes (64 hex digits)")
    })?;
    Ok(SecretKey(key))
}

/// The instance key and where it was found: `CONVERGE_SECRET_KEY` (hex), the systemd credential
/// `converge-secret-key`, or the file `path`; `None` (with the file's name) when there is none.
pub fn read_secret_key(path: &Path) -> anyhow::Result<(Option<SecretKey>, String)> {
    use anyhow::Context;
    if let Ok(text) = std::env::var(SECRET_KEY_ENV) {
        return Ok((
            Some(parse_secret_key(&text, SECRET_KEY_ENV)?),
            SECRET_KEY_ENV.into(),
        ));
    }
    if let Ok(dir) = std::env::var("CREDENTIALS_DIRECTORY") {
        let cred = Path::new(&dir).join(SECRET_KEY_CREDENTIAL);
        if cred.exists() {
            let source = format!("the systemd credential {SECRET_KEY_CREDENTIAL}");
            let text = std::fs::read_to_string(&cred).with_context(|| source.clone())?;
            return Ok((Some(parse_secret_key(&text, &source)?), source));
        }
    }
    let source = path.display().to_string();
    if !path.exists() {
        return Ok((None, source));
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading secret key {}", path.display()))?;
    Ok((Some(parse_secret_key(&text, &source)?), source))
}

/// The key in the file `path`, if there is one (for a key rotation's next key).
pub fn read_key_file(path: &Path) -> anyhow::Result<Option<SecretKey>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)?;
    Ok(Some(parse_secret_key(&text, &path.display().to_string())?))
}

/// Creates a new instance key file (mode 0600); never overwrites one.
pub fn create_secret_key(path: &Path) -> anyhow::Result<SecretKey> {
    use anyhow::Context;
    use rand::RngCore;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating secret key {}", path.display()))?;
    std::io::Write::write_all(&mut file, format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()?;
    tracing::info!(path = %path.display(), "generated a new instance secret key");
    Ok(SecretKey(key))
}
