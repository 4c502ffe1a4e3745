//! Where users and their passwords live. The local directory (users in Converge's own database)
//! is the default; the LDAP / Active Directory connector implements the same trait.

pub mod import;
mod local;

pub use local::LocalDirectory;

use crate::domain::error::DomainError;
use crate::domain::password::Password;
use crate::domain::users::{User, Username};

/// Result of checking a username and password. `user` is returned even when the password was
/// wrong, so the sign-in flow can count failures against the account.
#[derive(Debug)]
pub struct Authentication {
    pub user: Option<User>,
    pub verified: bool,
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

    /// Clears the directory's own lockout of the user, where it has one (the local directory's
    /// lockout is the portal's, cleared by the reset flow itself).
    async fn unlock(&self, _user: &User) -> Result<(), DomainError> {
        Ok(())
    }
}
