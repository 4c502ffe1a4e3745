//! "My activity": the signed-in user's own audit events.

use super::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One line of the user's activity, already formatted for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    /// `YYYY-MM-DD HH:MM:SS` in UTC.
    pub at: String,
    /// Audit event name, e.g. `signin`; `text::Texts::for_event` labels it.
    pub event: String,
    pub success: bool,
    pub client_ip: String,
    pub user_agent: String,
}

#[server(prefix = "/api", endpoint = "my_activity")]
pub async fn my_activity() -> Result<Vec<ActivityItem>, ApiError> {
    use crate::ssr::{backend, request_ctx, AccountRequest, AccountStatus};
    let ctx = request_ctx()?;
    match backend()?
        .account(&ctx, AccountRequest::Activity { limit: 100 })
        .await?
    {
        AccountStatus::Activity(items) => Ok(items),
        _ => Err(crate::api::ErrorCode::Internal.into()),
    }
}
