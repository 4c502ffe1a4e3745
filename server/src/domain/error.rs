//! Errors of the domain, with stable codes per area.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The database could not be reached or refused the operation (SYS-503 for users).
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// Hashing failed or was misconfigured (SYS-500).
    #[error("password hashing: {0}")]
    Hashing(String),
    /// The directory could not be reached (DIR-503).
    #[error("directory: {0}")]
    Directory(String),
    #[error("{0}")]
    Invalid(String),
    /// The request was understood and refused for a reason the user can act on.
    #[error("refused: {}", .0.code())]
    Refused(converge_app::api::ErrorCode),
    /// A message could not be queued.
    #[error("notification: {0}")]
    Notify(String),
    /// Too busy to take the request (the hashing queue is full): SYS-503 with Retry-After.
    #[error("busy: the password hashing queue is full")]
    Busy,
}

impl From<crate::notify::NotifyError> for DomainError {
    fn from(e: crate::notify::NotifyError) -> Self {
        match e {
            crate::notify::NotifyError::Store(s) => DomainError::Store(s),
            crate::notify::NotifyError::ChannelOff(_) => {
                DomainError::Refused(converge_app::api::ErrorCode::MethodNotAllowed)
            }
            other => DomainError::Notify(other.to_string()),
        }
    }
}
