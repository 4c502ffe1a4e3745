//! The "Security info" page's data.

use super::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Contact details on file and registered methods, masked where they are secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityInfo {
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub alternate_phone: Option<String>,
    pub office_phone: Option<String>,
    /// Where the contact details came from (`local` or a directory name).
    pub source: String,
}

#[server(prefix = "/api", endpoint = "security_info")]
pub async fn get_security_info() -> Result<SecurityInfo, ApiError> {
    use crate::ssr::{backend, request_ctx, AccountRequest, AccountStatus};
    let ctx = request_ctx()?;
    match backend()?
        .account(&ctx, AccountRequest::SecurityInfo)
        .await?
    {
        AccountStatus::SecurityInfo(info) => Ok(info),
        _ => Err(crate::api::ErrorCode::Internal.into()),
    }
}
