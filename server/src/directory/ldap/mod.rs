//! The LDAP / Active Directory connector (`ldap3`): sign-in by bind, password writeback, unlock,
//! and the sync service (`sync.rs`). Users synchronised from the directory have
//! `source = "ldap:<name>"`; everyone else stays with the local directory (`Directories` routes).
//!
//! Every name a user typed reaches the directory only escaped (RFC 4515 in filters); DNs come
//! from the directory itself. The service account's password is never logged, and the
//! directory's diagnostic text (AD's `data 52e` and friends) goes to the audit log, never to
//! the user.

pub mod errors;
pub mod sync;

use super::{Authentication, Directory, DirectoryRules};
use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::users::{User, Username};
use errors::{bind_failure, write_refusal};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Password policy request control (draft-behera-ldap-password-policy): OpenLDAP's ppolicy
/// answers with the reason a bind or change was refused.
pub const PPOLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";
/// AD: apply password history and complexity to an administrator's reset (Windows 2012 R2+).
pub const AD_POLICY_HINTS_OID: &str = "1.2.840.113556.1.4.2239";
/// OpenLDAP's ppolicy: a lock set by an administrator (the account is disabled, not locked).
const OPENLDAP_PERMANENT_LOCK: &str = "000001010000Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    OpenLdap,
    ActiveDirectory,
}

/// Which attribute holds what; defaults come from the preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMap {
    pub username: String,
    pub display_name: String,
    pub mail: String,
    pub mobile: String,
    pub phone: String,
    pub member_of: String,
    /// Change marker for incremental runs: `modifyTimestamp` or `uSNChanged`.
    pub changed: String,
    /// Directory lockout: `pwdAccountLockedTime` or `lockoutTime`.
    pub lock: String,
    /// The entry's immutable id: `entryUUID` or `objectGUID` (binary).
    pub external_id: String,
    /// A second sign-in name: `userPrincipalName` on AD; empty (none) on OpenLDAP.
    pub principal: String,
}

impl Preset {
    fn attributes(self) -> AttributeMap {
        let s = |v: &str| v.to_string();
        match self {
            Preset::OpenLdap => AttributeMap {
                username: s("uid"),
                display_name: s("displayName"),
                mail: s("mail"),
                mobile: s("mobile"),
                phone: s("telephoneNumber"),
                member_of: s("memberOf"),
                changed: s("modifyTimestamp"),
                lock: s("pwdAccountLockedTime"),
                external_id: s("entryUUID"),
                principal: String::new(),
            },
            Preset::ActiveDirectory => AttributeMap {
                username: s("sAMAccountName"),
                display_name: s("displayName"),
                mail: s("mail"),
                mobile: s("mobile"),
                phone: s("telephoneNumber"),
                member_of: s("memberOf"),
                changed: s("uSNChanged"),
                lock: s("lockoutTime"),
                external_id: s("objectGUID"),
                principal: s("userPrincipalName"),
            },
        }
    }
    fn user_filter(self) -> &'static str {
        match self {
            Preset::OpenLdap => "(objectClass=inetOrgPerson)",
            Preset::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
        }
    }
}

/// A password that never prints.
#[derive(Clone)]
pub struct BindPassword(String);
impl fmt::Debug for BindPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BindPassword(***)")
    }
}

/// `[ldap]`, validated.
#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub name: String,
    /// `ldap:<name>`: the `source` of the users this directory owns.
    pub source: String,
    pub preset: Preset,
    pub urls: Vec<String>,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub bind_dn: String,
    pub bind_password: BindPassword,
    pub base_dn: String,
    pub user_filter: String,
    /// Normalised DNs (see `normalize_dn`).
    pub groups: Vec<String>,
    pub admin_groups: Vec<String>,
    pub helpdesk_groups: Vec<String>,
    pub attrs: AttributeMap,
    pub page_size: i32,
    pub sync_interval: Option<Duration>,
    pub full_sync_seconds: i64,
    pub disable_threshold: u32,
    pub mail_new_users: bool,
    pub mail_updated_users: bool,
    pub directory_lockout_threshold: u32,
    pub password_writeback: bool,
    pub password_policy_dn: Option<String>,
    pub nested_groups: bool,
    pub pool_size: usize,
    pub max_concurrent_binds: usize,
}

/// DNs compare case-insensitively and without the spaces around `,` and `=`.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

impl LdapConfig {
    pub fn from_settings(
        s: &crate::config::LdapSettings,
        problems: &mut Vec<String>,
    ) -> Option<LdapConfig> {
        let before = problems.len();
        let preset = match s.preset.as_str() {
            "openldap" => Preset::OpenLdap,
            "active_directory" | "ad" => Preset::ActiveDirectory,
            other => {
                problems.push(format!(
                    "ldap.preset `{other}`: must be openldap or active_directory"
                ));
                Preset::OpenLdap
            }
        };
        if s.name.is_empty()
            || s.name.len() > 32
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            problems.push(format!(
                "ldap.name `{}`: 1–32 characters a-z, 0-9 or -",
                s.name
            ));
        }
        if s.urls.is_empty() {
            problems.push("ldap.urls: at least one ldap:// or ldaps:// URL".into());
        }
        for u in &s.urls {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "ldap" | "ldaps") && p.host_str().is_some() => {}
                _ => problems.push(format!(
                    "ldap.urls `{u}`: must be ldap://host[:port] or ldaps://host[:port]"
                )),
            }
        }
        let secure = s.starttls || s.urls.iter().all(|u| u.starts_with("ldaps://"));
        if preset == Preset::ActiveDirectory && s.password_writeback && !secure {
            problems.push(
                "ldap: Active Directory accepts password writes only over TLS: use ldaps:// URLs or starttls = true"
                    .into(),
            );
        }
        if s.bind_dn.trim().is_empty() {
            problems.push("ldap.bind_dn: the service account's DN is required".into());
        }
        let password = if !s.bind_password_file.is_empty() {
            match std::fs::read_to_string(&s.bind_password_file) {
                Ok(p) => p.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => {
                    problems.push(format!(
                        "ldap.bind_password_file {}: {e}",
                        s.bind_password_file
                    ));
                    String::new()
                }
            }
        } else {
            s.bind_password.clone()
        };
        if password.is_empty() {
            problems.push(
                "ldap: the service account needs a password (bind_password_file or CONVERGE__LDAP__BIND_PASSWORD)"
                    .into(),
            );
        }
        if s.base_dn.trim().is_empty() {
            problems.push("ldap.base_dn: required (e.g. ou=people,dc=example,dc=org)".into());
        }
        let user_filter = if s.user_filter.trim().is_empty() {
            preset.user_filter().to_string()
        } else {
            s.user_filter.trim().to_string()
        };
        if ldap3::parse_filter(&user_filter).is_err() {
            problems.push(format!(
                "ldap.user_filter `{user_filter}`: not a valid LDAP filter"
            ));
        }
        if !(1..=5000).contains(&s.page_size) {
            problems.push("ldap.page_size: 1 to 5000".into());
        }
        if s.pool_size > 64 {
            problems.push("ldap.pool_size: 0 to 64".into());
        }
        if !(1..=1024).contains(&s.max_concurrent_binds) {
            problems.push("ldap.max_concurrent_binds: 1 to 1024".into());
        }
        if s.timeout_seconds == 0 || s.timeout_seconds > 300 {
            problems.push("ldap.timeout_seconds: 1 to 300".into());
        }
        let mut attrs = preset.attributes();
        for (value, slot) in [
            (&s.attr_username, &mut attrs.username),
            (&s.attr_display_name, &mut attrs.display_name),
            (&s.attr_mail, &mut attrs.mail),
            (&s.attr_mobile, &mut attrs.mobile),
            (&s.attr_phone, &mut attrs.phone),
            (&s.attr_member_of, &mut attrs.member_of),
            (&s.attr_principal, &mut attrs.principal),
        ] {
            if !value.is_empty() {
                if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    problems.push(format!("ldap.attr_*: `{value}` is not an attribute name"));
                }
                *slot = value.clone();
            }
        }
        if problems.len() > before {
            return None;
        }
        let dns = |v: &[String]| v.iter().map(|d| normalize_dn(d)).collect::<Vec<_>>();
        Some(LdapConfig {
            source: format!("ldap:{}", s.name),
            name: s.name.clone(),
            preset,
            urls: s.urls.clone(),
            starttls: s.starttls,
            ca_file: Some(PathBuf::from(&s.ca_file)).filter(|p| !p.as_os_str().is_empty()),
            timeout: Duration::from_secs(u64::from(s.timeout_seconds)),
            bind_dn: s.bind_dn.trim().to_string(),
            bind_password: BindPassword(password),
            base_dn: s.base_dn.trim().to_string(),
            user_filter,
            groups: dns(&s.groups),
            admin_groups: dns(&s.admin_groups),
            helpdesk_groups: dns(&s.helpdesk_groups),
            attrs,
            page_size: s.page_size as i32,
            sync_interval: Some(Duration::from_secs(u64::from(s.sync_interval_minutes) * 60))
                .filter(|d| !d.is_zero()),
            full_sync_seconds: i64::from(s.full_sync_hours.max(1)) * 3600,
            disable_threshold: s.disable_threshold,
            mail_new_users: s.mail_new_users,
            mail_updated_users: s.mail_updated_users,
            directory_lockout_threshold: s.directory_lockout_threshold,
            password_writeback: s.password_writeback,
            password_policy_dn: Some(s.password_policy_dn.trim().to_string())
                .filter(|d| !d.is_empty()),
            nested_groups: s.nested_groups,
            pool_size: s.pool_size as usize,
            max_concurrent_binds: s.max_concurrent_binds as usize,
        })
    }

    /// `(&<user filter>(<username attribute>=<escaped name>))`.
    pub fn user_lookup_filter(&self, username: &str) -> String {
        format!(
            "(&{}({}={}))",
            self.user_filter,
            self.attrs.username,
            ldap3::ldap_escape(username)
        )
    }
}

/// An attribute's first value (attribute names are case-insensitive).
pub(super) fn first<'e>(e: &'e SearchEntry, attr: &str) -> Option<&'e str> {
    // the server answers in its own spelling
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// The `DC=` suffix of a DN (the domain object).
pub(super) fn domain_root(dn: &str) -> String {
    let parts: Vec<&str> = dn.split(',').map(str::trim).collect();
    let at = parts
        .iter()
        .position(|p| p.len() > 3 && p[..3].eq_ignore_ascii_case("dc="))
        .unwrap_or(parts.len().saturating_sub(1));
    parts[at..].join(",")
}

fn directory_error(context: &str, e: impl fmt::Display) -> DomainError {
    DomainError::Directory(format!("{context}: {e}"))
}

/// The LDAP directory. The service account's connections (lookups, writes, sync) are kept in a
/// small pool, bound, and checked before reuse; each user bind gets a short-lived connection of
/// its own, at most `max_concurrent_binds` at once. Servers are tried in `urls` order.
pub struct LdapDirectory {
    pub config: LdapConfig,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// The domain's / default policy's password rules, read at most every five minutes.
    rules:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, DirectoryRules)>>,
    /// Idle bound service connections (with when they were last used), newest last.
    pool: std::sync::Mutex<Vec<(std::time::Instant, Ldap)>>,
    /// User binds in flight.
    binds: tokio::sync::Semaphore,
}

/// How long the directory's password rules are kept before they are read again.
const RULES_KEPT: Duration = Duration::from_secs(300);
/// An idle service connection older than this is closed rather than reused (directories
/// close idle connections themselves: AD after 900 s by default).
const POOL_IDLE: Duration = Duration::from_secs(60);

impl LdapDirectory {
    pub fn new(config: LdapConfig) -> anyhow::Result<LdapDirectory> {
        let tls = match &config.ca_file {
            None => None,
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                use rustls::pki_types::CertificateDer;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| anyhow::anyhow!("ldap.ca_file {}: {e}", path.display()))?
                {
                    let cert =
                        cert.map_err(|e| anyhow::anyhow!("ldap.ca_file {}: {e}", path.display()))?;
                    roots.add(cert)?;
                }
                anyhow::ensure!(
                    !roots.is_empty(),
                    "ldap.ca_file {}: no certificate in it",
                    path.display()
                );
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                Some(std::sync::Arc::new(
                    rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()?
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                ))
            }
        };
        let binds = tokio::sync::Semaphore::new(config.max_concurrent_binds);
        Ok(LdapDirectory {
            config,
            tls,
            rules: Default::default(),
            pool: Default::default(),
            binds,
        })
    }

    /// An unbound connection to the first server that answers.
    pub async fn connect(&self) -> Result<Ldap, DomainError> {
        let mut failures = Vec::new();
        for url in &self.config.urls {
            match self.connect_to(url).await {
                Ok(ldap) => return Ok(ldap),
                Err(e) => {
                    tracing::warn!(%url, error = %e, "LDAP server unreachable; trying the next");
                    failures.push(format!("{url}: {e}"));
                }
            }
        }
        Err(DomainError::Directory(format!(
            "no LDAP server answered ({})",
            failures.join("; ")
        )))
    }

    /// An unbound connection to one server.
    async fn connect_to(&self, url: &str) -> Result<Ldap, LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.config.timeout)
            .set_starttls(self.config.starttls && url.starts_with("ldap://"));
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url).await?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.config.timeout);
        Ok(ldap)
    }

    /// Each server of `urls` on its own: connect and bind as the service account (for
    /// `/readyz`: one server down is a degraded directory, all down an unreachable one).
    pub async fn probe_each(&self) -> Vec<(String, Result<(), String>)> {
        futures::future::join_all(self.config.urls.iter().map(|url| self.probe(url))).await
    }

    async fn probe(&self, url: &str) -> (String, Result<(), String>) {
        let answer = match self.connect_to(url).await {
            Err(e) => Err(e.to_string()),
            Ok(mut ldap) => {
                let bound = ldap
                    .simple_bind(&self.config.bind_dn, &self.config.bind_password.0)
                    .await;
                let _ = ldap.unbind().await;
                match bound {
                    Ok(r) if r.rc == 0 => Ok(()),
                    Ok(r) => Err(format!("the service account cannot bind (rc {})", r.rc)),
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        (url.to_string(), answer)
    }

    /// A connection bound as the service account: a pooled one that still answers, else a new
    /// one. Give it back with `release` after a successful operation (after a failed one, let
    /// it drop).
    pub async fn service(&self) -> Result<Ldap, DomainError> {
        while let Some((used, mut ldap)) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            if used.elapsed() >= POOL_IDLE {
                close(ldap);
                continue;
            }
            // a cheap round trip (the root DSE's name only): the server may have gone away
            let alive = ldap
                .with_timeout(self.config.timeout)
                .search("", Scope::Base, "(objectClass=*)", vec!["1.1"])
                .await
                .is_ok_and(|r| r.success().is_ok());
            if alive {
                return Ok(ldap);
            }
            close(ldap);
        }
        let started = std::time::Instant::now();
        let bound = self.service_bind().await;
        let result = if bound.is_ok() { "ok" } else { "error" };
        crate::instruments::observe(
            crate::instruments::DIRECTORY_SECONDS,
            &[("operation", "service"), ("result", result)],
            started.elapsed().as_secs_f64(),
        );
        bound
    }

    /// AD: the invocationId of the domain controller that answers (its NTDS Settings object,
    /// named by the root DSE's `dsServiceName`), as a UUID; None elsewhere or when unreadable.
    pub async fn dc_identity(&self) -> Result<Option<String>, DomainError> {
        if !self.is_ad() {
            return Ok(None);
        }
        let mut ldap = self.service().await?;
        let root = ldap
            .with_timeout(self.config.timeout)
            .search("", Scope::Base, "(objectClass=*)", vec!["dsServiceName"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| directory_error("root DSE", e))?;
        let Some(ntds) = root
            .0
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .and_then(|e| first(&e, "dsServiceName").map(str::to_string))
        else {
            self.release(ldap);
            return Ok(None);
        };
        let found = ldap
            .with_timeout(self.config.timeout)
            .search(&ntds, Scope::Base, "(objectClass=*)", vec!["invocationId"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| directory_error("domain controller id", e))?;
        self.release(ldap);
        Ok(found
            .0
            .into_iter()
            .next()
            .map(SearchEntry::construct)
            .and_then(|e| {
                e.bin_attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("invocationId"))
                    .and_then(|(_, v)| v.first())
                    .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            })
            .map(|b| uuid::Uuid::from_bytes_le(b).to_string()))
    }

    /// Idle service connections in the pool.
    pub fn idle_connections(&self) -> usize {
        self.pool.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Returns a service connection to the pool (or closes it when the pool is full).
    pub fn release(&self, ldap: Ldap) {
        let Ok(mut pool) = self.pool.lock() else {
            return close(ldap);
        };
        if pool.len() < self.config.pool_size {
            pool.push((std::time::Instant::now(), ldap));
        } else {
            drop(pool);
            close(ldap);
        }
    }

    /// Returns the connection after an operation that answered; closes it after one that did
    /// not (the connection may be broken).
    fn settle<T>(&self, ldap: Ldap, res: &Result<T, LdapError>) {
        match res {
            Ok(_) => self.release(ldap),
            Err(_) => close(ldap),
        }
    }

    async fn service_bind(&self) -> Result<Ldap, DomainError> {
        let mut ldap = self.connect().await?;
        let res = ldap
            .with_timeout(self.config.timeout)
            .simple_bind(&self.config.bind_dn, &self.config.bind_password.0)
            .await
            .map_err(|e| directory_error("service account bind", e))?;
        if res.rc != 0 {
            return Err(DomainError::Directory(format!(
                "the service account {} cannot bind (rc {}: {})",
                self.config.bind_dn, res.rc, res.text
            )));
        }
        Ok(ldap)
    }

    /// The DN of `username` (None when the directory has no such user, or more than one).
    pub async fn find_dn(
        &self,
        ldap: &mut Ldap,
        username: &str,
        attrs: Vec<&str>,
    ) -> Result<Option<SearchEntry>, DomainError> {
        let (entries, res) = ldap
            .with_timeout(self.config.timeout)
            .search(
                &self.config.base_dn,
                Scope::Subtree,
                &self.config.user_lookup_filter(username),
                if attrs.is_empty() { vec!["1.1"] } else { attrs },
            )
            .await
            .map_err(|e| directory_error("user lookup", e))?
            .non_error()
            .map_err(|e| directory_error("user lookup", e))?;
        let _ = res;
        if entries.len() != 1 {
            if entries.len() > 1 {
                tracing::warn!(user = %username, "more than one directory entry matches; refusing");
            }
            return Ok(None);
        }
        Ok(entries.into_iter().next().map(SearchEntry::construct))
    }

    /// Binds as the user: `Ok(Ok(()))` when the password is right, `Ok(Err(detail))` when the
    /// directory refused it (the detail is for the audit log only).
    ///
    /// With `real == false` (a name that is no portal user, or one the portal has locked or
    /// disabled) the same lookup and a bind happen, but against a DN that does not exist: the
    /// directory never counts a failure for it, so nobody can lock a directory account through
    /// Converge, and the time taken is the same.
    pub async fn bind_as(
        &self,
        username: &str,
        password: &str,
        real: bool,
    ) -> Result<Result<(), String>, DomainError> {
        // an empty password is an unauthenticated bind, which "succeeds": never send one
        if password.is_empty() {
            return Ok(Err("empty password".into()));
        }
        let mut service = self.service().await?;
        let entry = self.find_dn(&mut service, username, vec![]).await?;
        self.release(service);
        let dn = match entry.filter(|_| real) {
            Some(e) => e.dn,
            None => format!(
                "{}={},{}",
                self.config.attrs.username,
                ldap3::dn_escape(format!("{username}-{}", uuid::Uuid::new_v4().simple())),
                self.config.base_dn
            ),
        };
        // a burst of sign-ins waits its turn (as long as one directory operation may take)
        // rather than opening a connection each at once
        let _permit = tokio::time::timeout(self.config.timeout, self.binds.acquire())
            .await
            .map_err(|_| {
                DomainError::Directory(format!(
                    "{} user binds in flight for longer than the directory timeout",
                    self.config.max_concurrent_binds
                ))
            })?
            .map_err(|e| directory_error("user bind", e))?;
        let started = std::time::Instant::now();
        let mut ldap = self.connect().await?;
        let res = ldap
            .with_controls(RawControl {
                ctype: PPOLICY_OID.into(),
                crit: false,
                val: None,
            })
            .with_timeout(self.config.timeout)
            .simple_bind(&dn, password)
            .await;
        let _ = ldap.unbind().await;
        let result = match &res {
            Ok(r) if r.rc == 0 => "ok",
            Ok(r) if r.rc == 49 || r.rc == 50 || r.rc == 53 => "refused",
            _ => "error",
        };
        crate::instruments::observe(
            crate::instruments::DIRECTORY_SECONDS,
            &[("operation", "user"), ("result", result)],
            started.elapsed().as_secs_f64(),
        );
        match res {
            Ok(r) if r.rc == 0 => Ok(Ok(())),
            Ok(r) if r.rc == 49 || r.rc == 50 || r.rc == 53 => Ok(Err(bind_failure(&r))),
            Ok(r) => Err(DomainError::Directory(format!(
                "bind refused (rc {}: {})",
                r.rc, r.text
            ))),
            Err(e) => Err(directory_error("user bind", e)),
        }
    }

    /// The directory's password rules for `user`. AD: the user's fine-grained policy
    /// (`msDS-ResultantPSO`, where the service account may read it: `msDS-MinimumPasswordLength`,
    /// `msDS-PasswordComplexityEnabled`, `msDS-PasswordHistoryLength`), else the domain policy
    /// (`minPwdLength`, `pwdProperties` complexity, `pwdHistoryLength` on the domain object).
    /// OpenLDAP: the ppolicy entry (`pwdPolicySubentry` of the user, else
    /// `password_policy_dn`; `pwdMinLength`, `pwdInHistory`). Each policy is read at most every
    /// five minutes. Unknown rules are 0 / false; the directory still has the last word.
    pub async fn password_rules_for(&self, user: &User) -> Result<DirectoryRules, DomainError> {
        let mut service = self.service().await?;
        let own_attr = if self.is_ad() {
            "msDS-ResultantPSO"
        } else {
            "pwdPolicySubentry"
        };
        let own = self
            .find_dn(&mut service, &user.username, vec![own_attr])
            .await?
            .and_then(|e| first(&e, own_attr).map(str::to_string));
        let fallback = if self.is_ad() {
            Some(domain_root(&self.config.base_dn))
        } else {
            self.config.password_policy_dn.clone()
        };
        let mut rules = None;
        for dn in own.into_iter().chain(fallback) {
            match self.policy_rules(&mut service, &dn).await? {
                Some(r) => {
                    rules = Some(r);
                    break;
                }
                // a policy the service account may not read: the next one
                None => tracing::debug!(policy = %dn, "password policy not readable"),
            }
        }
        self.release(service);
        Ok(rules.unwrap_or_default())
    }

    /// One policy entry's rules (kept five minutes); None when it cannot be read.
    async fn policy_rules(
        &self,
        service: &mut Ldap,
        dn: &str,
    ) -> Result<Option<DirectoryRules>, DomainError> {
        let key = normalize_dn(dn);
        if let Some((_, rules)) = self
            .rules
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied())
            .filter(|(at, _)| at.elapsed() < RULES_KEPT)
        {
            return Ok(Some(rules));
        }
        let pso = self.is_ad() && !key.starts_with("dc=");
        let attrs = match (self.is_ad(), pso) {
            (true, true) => vec![
                "msDS-MinimumPasswordLength",
                "msDS-PasswordComplexityEnabled",
                "msDS-PasswordHistoryLength",
            ],
            (true, false) => vec!["minPwdLength", "pwdProperties", "pwdHistoryLength"],
            _ => vec!["pwdMinLength", "pwdInHistory"],
        };
        let ldap3::SearchResult(entries, res) = service
            .with_timeout(self.config.timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await
            .map_err(|e| directory_error("password policy", e))?;
        // 32 noSuchObject / 50 insufficientAccessRights: not readable for the service account
        if res.rc == 32 || res.rc == 50 {
            return Ok(None);
        }
        if res.rc != 0 {
            return Err(directory_error("password policy", res));
        }
        let Some(e) = entries.into_iter().next().map(SearchEntry::construct) else {
            return Ok(None);
        };
        let num = |attr: &str| {
            first(&e, attr)
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        let rules = match (self.is_ad(), pso) {
            // an entry the account may see but not read the attributes of (AD hides them)
            (true, true) if first(&e, "msDS-MinimumPasswordLength").is_none() => return Ok(None),
            (true, true) => DirectoryRules {
                min_length: num("msDS-MinimumPasswordLength") as usize,
                complexity: first(&e, "msDS-PasswordComplexityEnabled")
                    .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                history: num("msDS-PasswordHistoryLength"),
            },
            (true, false) => DirectoryRules {
                min_length: num("minPwdLength") as usize,
                complexity: num("pwdProperties") & 1 == 1,
                history: num("pwdHistoryLength"),
            },
            _ => DirectoryRules {
                min_length: num("pwdMinLength") as usize,
                complexity: false,
                history: num("pwdInHistory"),
            },
        };
        if let Ok(mut c) = self.rules.lock() {
            c.insert(key, (std::time::Instant::now(), rules));
        }
        Ok(Some(rules))
    }

    fn is_ad(&self) -> bool {
        self.config.preset == Preset::ActiveDirectory
    }

    async fn entry_for_write(
        &self,
        user: &User,
        attrs: Vec<&str>,
    ) -> Result<(Ldap, SearchEntry), DomainError> {
        let mut ldap = self.service().await?;
        let entry = self
            .find_dn(&mut ldap, &user.username, attrs)
            .await?
            .ok_or_else(|| {
                DomainError::Directory(format!("{} is not in the directory", user.username))
            })?;
        Ok((ldap, entry))
    }
}

/// Unbinds and closes a connection in the background.
fn close(mut ldap: Ldap) {
    tokio::spawn(async move {
        let _ = ldap.unbind().await;
    });
}

/// `"password"` as UTF-16LE, what AD's `unicodePwd` takes.
pub fn ad_unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

/// BER `SEQUENCE { INTEGER 1 }`: the policy hints control's value (enforce policy).
pub const AD_POLICY_HINTS_VALUE: [u8; 5] = [0x30, 0x03, 0x02, 0x01, 0x01];

fn lock_value_means_locked(preset: Preset, value: &str) -> bool {
    match preset {
        Preset::OpenLdap => !value.is_empty() && value != OPENLDAP_PERMANENT_LOCK,
        Preset::ActiveDirectory => value.parse::<i64>().is_ok_and(|v| v > 0),
    }
}

#[async_trait::async_trait]
impl Directory for LdapDirectory {
    // the audit log names the directory by its source (`ldap:corp`)
    #[allow(clippy::misnamed_getters)]
    fn name(&self) -> &str {
        &self.config.source
    }

    async fn authenticate(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<Authentication, DomainError> {
        // only used through `Directories`, which finds the user first
        let verdict = self
            .bind_as(username.as_str(), password.expose(), true)
            .await?;
        Ok(Authentication {
            user: None,
            verified: verdict.is_ok(),
            expired: verdict
                .as_ref()
                .err()
                .is_some_and(|d| errors::means_expired(d)),
            detail: verdict.err(),
        })
    }

    async fn set_password(
        &self,
        user: &User,
        password: &Password,
        _now: i64,
    ) -> Result<(), DomainError> {
        if !self.config.password_writeback {
            return Err(DomainError::Directory(
                "password writeback is off (ldap.password_writeback)".into(),
            ));
        }
        let (mut ldap, entry) = self.entry_for_write(user, vec![]).await?;
        let res = if self.is_ad() {
            let value: HashSet<Vec<u8>> = [ad_unicode_pwd(password.expose())].into();
            // not critical: Windows (2012 R2+) honours it and enforces history on the reset;
            // Samba does not implement it and refuses a critical one ("Critical extension is
            // unavailable", rc 12), so with Samba the reset skips history (README, "Directory")
            ldap.with_controls(RawControl {
                ctype: AD_POLICY_HINTS_OID.into(),
                crit: false,
                val: Some(AD_POLICY_HINTS_VALUE.to_vec()),
            })
            .modify(&entry.dn, vec![Mod::Replace(b"unicodePwd".to_vec(), value)])
            .await
        } else {
            ldap.with_controls(RawControl {
                ctype: PPOLICY_OID.into(),
                crit: false,
                val: None,
            })
            .extended(ldap3::exop::PasswordModify {
                user_id: Some(&entry.dn),
                old_pass: None,
                new_pass: Some(password.expose()),
            })
            .await
            .map(|r| r.1)
        };
        self.settle(ldap, &res);
        let res = res.map_err(|e| directory_error("password write", e))?;
        match write_refusal(&res) {
            None => Ok(()),
            Some(Ok(code)) => Err(DomainError::Refused(code)),
            Some(Err(other)) => Err(DomainError::Directory(other)),
        }
    }

    async fn unlock(&self, user: &User) -> Result<(), DomainError> {
        let lock = self.config.attrs.lock.clone();
        let (mut ldap, entry) = self.entry_for_write(user, vec![lock.as_str()]).await?;
        let value = entry
            .attrs
            .get(&lock)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        if !lock_value_means_locked(self.config.preset, &value) {
            self.release(ldap);
            return Ok(());
        }
        let change: Mod<String> = if self.is_ad() {
            Mod::Replace(lock.clone(), ["0".to_string()].into())
        } else {
            Mod::Delete(lock.clone(), HashSet::new())
        };
        let res = ldap.modify(&entry.dn, vec![change]).await;
        self.settle(ldap, &res);
        let res = res.map_err(|e| directory_error("unlock", e))?;
        // 16: noSuchAttribute (unlocked meanwhile)
        if res.rc != 0 && res.rc != 16 {
            return Err(DomainError::Directory(format!(
                "unlock refused (rc {}: {})",
                res.rc, res.text
            )));
        }
        Ok(())
    }

    async fn is_locked(&self, user: &User) -> Result<bool, DomainError> {
        let lock = self.config.attrs.lock.clone();
        let (ldap, entry) = self.entry_for_write(user, vec![lock.as_str()]).await?;
        self.release(ldap);
        Ok(entry
            .attrs
            .get(&lock)
            .and_then(|v| v.first())
            .is_some_and(|v| lock_value_means_locked(self.config.preset, v)))
    }
}

impl From<LdapError> for DomainError {
    fn from(e: LdapError) -> Self {
        DomainError::Directory(e.to_string())
    }
}
