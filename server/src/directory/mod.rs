//! Where users and their passwords live. The local directory (users in Converge's own database)
//! is the default; the LDAP / Active Directory connector implements the same trait.

pub mod import;
pub mod ldap;
mod local;

pub use local::LocalDirectory;
use std::sync::Arc;

use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::users::{User, Username};

/// Result of checking a username and password. `user` is returned even when the password was
/// wrong, so the sign-in flow can count failures against the account.
#[derive(Debug)]
pub struct Authentication {
    pub user: Option<User>,
    pub verified: bool,
    /// Why the directory refused, for the audit log only (`directory: account locked`).
    pub detail: Option<String>,
    /// The directory took the password but it has expired or must be changed first (AD
    /// `data 532` / `data 773`, ppolicy passwordExpired): the user is told to reset it.
    pub expired: bool,
}

/// The directory's own password rules, as far as it tells them: shown on the new-password
/// page before the user types and checked there first (0 / false: none known).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectoryRules {
    pub min_length: usize,
    /// AD's complexity: three of capitals, small letters, digits, symbols.
    pub complexity: bool,
    /// Previous passwords refused (self-service changes; admin resets differ per directory).
    pub history: u32,
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// A short name for logs and the audit log (`local`, `ldap:corp`).
    fn name(&self) -> &str;

    /// Checks a password. Implementations must cost the same whether or not the user exists.
    async fn authenticate(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<Authentication, DomainError>;

    /// Writes a new password (reset writeback, administrator CLI). A refusal under the
    /// directory's password policy is `DomainError::Refused` with a `PWD-` code (history, policy,
    /// too recent), which the reset page explains; an unreachable directory is
    /// `DomainError::Directory`. Either way nothing changed.
    async fn set_password(
        &self,
        user: &User,
        password: &Password,
        now: i64,
    ) -> Result<(), DomainError>;

    /// Whether the directory now takes `password` for the user (a bind with it, whatever the
    /// portal thinks of the account): how a reset interrupted by a crash learns whether its
    /// write took. A refusal is `false`; an unreachable directory is an error.
    async fn holds_password(&self, user: &User, password: &Password) -> Result<bool, DomainError> {
        let name = Username::parse(&user.username).map_err(DomainError::Invalid)?;
        Ok(self.authenticate(&name, password).await?.verified && !password.expose().is_empty())
    }

    /// The directory's password rules for the user (the local directory has none beyond the
    /// portal's own).
    async fn password_rules(&self, _user: &User) -> Result<DirectoryRules, DomainError> {
        Ok(DirectoryRules::default())
    }

    /// Clears the directory's own lockout of the user, where it has one (the local directory's
    /// lockout is the portal's, cleared by the reset flow itself).
    async fn unlock(&self, _user: &User) -> Result<(), DomainError> {
        Ok(())
    }

    /// Whether the directory itself has locked the user out (ppolicy, AD lockout).
    async fn is_locked(&self, _user: &User) -> Result<bool, DomainError> {
        Ok(false)
    }
}

/// The directories Converge serves: the local one, and the LDAP directory when configured.
/// Each user belongs to the one their `source` names.
pub struct Directories {
    pub local: LocalDirectory,
    pub ldap: Option<Arc<ldap::LdapDirectory>>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Directories {
    fn ldap_for(&self, user: &User) -> Option<&ldap::LdapDirectory> {
        self.ldap
            .as_deref()
            .filter(|l| l.config.source == user.source)
    }
}

#[async_trait::async_trait]
impl Directory for Directories {
    fn name(&self) -> &str {
        match &self.ldap {
            Some(l) => &l.config.source,
            None => "local",
        }
    }

    async fn authenticate(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<Authentication, DomainError> {
        let (user, hash) = self.local.find_for_signin(username).await?;
        let ldap = match (&user, &self.ldap) {
            (Some(u), _) => self.ldap_for(u),
            // an unknown name costs what a directory user costs: a lookup and a bind
            (None, Some(l)) => Some(l.as_ref()),
            (None, None) => None,
        };
        // one argon2 verification for everyone (a fallback hash for unknown and directory users)
        let local_ok = self.local.verify(password, hash.as_deref()).await?;
        let Some(ldap) = ldap else {
            return Ok(Authentication {
                user,
                verified: local_ok,
                detail: None,
                expired: false,
            });
        };
        // the directory sees a real bind only for a portal user the portal would let in
        let now = self.clock.now();
        let real = user
            .as_ref()
            .is_some_and(|u| u.enabled && u.locked_at.is_none() && !u.is_blocked(now));
        let verdict = ldap
            .bind_as(username.as_str(), password.expose(), real)
            .await?;
        Ok(Authentication {
            verified: user.is_some() && verdict.is_ok(),
            expired: real
                && verdict
                    .as_ref()
                    .err()
                    .is_some_and(|d| ldap::errors::means_expired(d)),
            detail: verdict.err(),
            user,
        })
    }

    async fn set_password(
        &self,
        user: &User,
        password: &Password,
        now: i64,
    ) -> Result<(), DomainError> {
        match self.ldap_for(user) {
            Some(l) => l.set_password(user, password, now).await,
            None => self.local.set_password(user, password, now).await,
        }
    }

    async fn holds_password(&self, user: &User, password: &Password) -> Result<bool, DomainError> {
        match self.ldap_for(user) {
            Some(l) => Ok(l
                .bind_as(&user.username, password.expose(), true)
                .await?
                .is_ok()),
            None => self.local.holds_password(user, password).await,
        }
    }

    async fn password_rules(&self, user: &User) -> Result<DirectoryRules, DomainError> {
        match self.ldap_for(user) {
            Some(l) => l.password_rules_for(user).await,
            None => Ok(DirectoryRules::default()),
        }
    }

    async fn unlock(&self, user: &User) -> Result<(), DomainError> {
        match self.ldap_for(user) {
            Some(l) => l.unlock(user).await,
            None => Ok(()),
        }
    }

    async fn is_locked(&self, user: &User) -> Result<bool, DomainError> {
        match self.ldap_for(user) {
            Some(l) => l.is_locked(user).await,
            None => Ok(false),
        }
    }
}
