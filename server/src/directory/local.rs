//! The local directory: users and argon2id hashes in Converge's own database.

use super::{Authentication, Directory};
use crate::domain::error::DomainError;
use crate::domain::password::{Password, PasswordHasher};
use crate::domain::users::{User, Username};
use crate::store::Store;
use std::sync::Arc;

pub struct LocalDirectory {
    store: Store,
    hasher: Arc<PasswordHasher>,
}

impl LocalDirectory {
    pub fn new(store: Store, hasher: Arc<PasswordHasher>) -> Self {
        LocalDirectory { store, hasher }
    }

    pub(super) async fn find_for_signin(
        &self,
        username: &Username,
    ) -> Result<(Option<User>, Option<String>), DomainError> {
        Ok(self.store.find_user_for_signin(username.as_str()).await?)
    }

    /// One argon2 verification (against a fallback hash when there is none), in the bounded
    /// sign-in queue.
    pub(super) async fn verify(
        &self,
        password: &Password,
        hash: Option<&str>,
    ) -> Result<bool, DomainError> {
        self.hasher
            .verify_bounded(password, hash)
            .await
            .map_err(|e| match e {
                crate::domain::password::PasswordError::Busy => DomainError::Busy,
                other => DomainError::Hashing(other.to_string()),
            })
    }
}

#[async_trait::async_trait]
impl Directory for LocalDirectory {
    fn name(&self) -> &str {
        "local"
    }

    async fn authenticate(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<Authentication, DomainError> {
        let (user, hash) = self.find_for_signin(username).await?;
        let verified = self.verify(password, hash.as_deref()).await?;
        Ok(Authentication {
            user,
            verified,
            detail: None,
            expired: false,
        })
    }

    async fn set_password(
        &self,
        user: &User,
        password: &Password,
        now: i64,
    ) -> Result<(), DomainError> {
        // history of one: the current password may not be set again
        let (_, current) = self.store.find_user_for_signin(&user.username).await?;
        if current.is_some() && self.hasher.verify(password, current.as_deref()).await {
            return Err(DomainError::Refused(
                converge_app::api::ErrorCode::PasswordHistory,
            ));
        }
        let phc = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| DomainError::Hashing(e.to_string()))?;
        self.store.set_password_hash(&user.id, &phc, now).await?;
        Ok(())
    }
}
