//! "This wasn't me": the link in security emails leads here; confirming records the report.

use super::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportCheck {
    /// The token is good; `message` names the email it came from (e.g. `password_changed`).
    Valid { message: String },
    /// Unknown, expired or already used.
    Invalid,
}

/// Looks at a report link without using it (mail scanners open links; only a POST counts).
#[server(prefix = "/api", endpoint = "check_report")]
pub async fn check_report(token: String) -> Result<ReportCheck, ApiError> {
    use crate::ssr::{backend, request_ctx, ReportRequest};
    let ctx = request_ctx()?;
    backend()?
        .report(&ctx, ReportRequest::Check { token })
        .await
}

/// Records the report (once) and shows the confirmation.
#[server(prefix = "/api", endpoint = "confirm_report")]
pub async fn confirm_report(token: String) -> Result<(), ApiError> {
    use crate::ssr::{backend, request_ctx, ReportRequest};
    let ctx = request_ctx()?;
    let target = match backend()?
        .report(
            &ctx,
            ReportRequest::Confirm {
                token: token.clone(),
            },
        )
        .await?
    {
        ReportCheck::Valid { .. } => crate::routes::REPORT_RECORDED.to_string(),
        ReportCheck::Invalid => format!("{}/{}", crate::routes::REPORT, token),
    };
    leptos_axum::redirect(&target);
    Ok(())
}
