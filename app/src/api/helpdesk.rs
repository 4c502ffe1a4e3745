//! The helpdesk console's wire types and server functions, and the caller's side of a portal
//! approval. Every step is a plain form post answered with a redirect (works before any wasm
//! loads).

use super::{ApiError, MethodView};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHit {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    /// `disabled`, `locked`, `blocked`, `protected` (empty: active).
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalItem {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub action: String,
    pub requested_by: String,
    pub requested_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleHome {
    pub hits: Vec<UserHit>,
    pub approvals: Vec<ApprovalItem>,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationInfo {
    pub id: String,
    pub method: String,
    /// `sms`, `voice`, `email`, `app`, `portal`, `questions`, `pin`.
    pub channel: String,
    /// `pending`, `verified`, `failed`, `denied`, `expired`.
    pub state: String,
    pub started_at: String,
    pub decided_at: String,
    pub valid_until: String,
    pub approval_code: String,
    pub questions: Vec<String>,
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    pub at: String,
    pub event: String,
    pub success: bool,
    pub username: String,
    pub actor: String,
    pub reason: String,
    pub client_ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCard {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub role: String,
    pub source: String,
    pub enabled: bool,
    pub locked: bool,
    pub blocked_until: Option<String>,
    pub protected: bool,
    pub registered: u32,
    pub required: u32,
    pub complete: bool,
    pub methods: Vec<MethodView>,
    /// The caller can confirm in the portal (they have a sign-in factor).
    pub portal: bool,
    pub verification: Option<VerificationInfo>,
    pub verified: bool,
    pub tap_until: Option<String>,
    /// A pass this agent just issued: (pass, valid until), shown once.
    pub new_tap: Option<(String, String)>,
    pub signins: Vec<AuditLine>,
    pub timeline: Vec<AuditLine>,
    pub approvals: Vec<ApprovalItem>,
    pub verification_minutes: u32,
    pub tap_minutes: u32,
    pub tap_max_minutes: u32,
}

/// What the caller sees while an agent waits for their confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalPromptView {
    pub id: String,
    pub agent: String,
    /// Three numbers; the caller picks the one the agent reads out.
    pub choices: Vec<String>,
}

/// The audit view's filter (also the export's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub user: String,
    pub actor: String,
    pub event: String,
    /// `YYYY-MM-DD`
    pub from: String,
    pub to: String,
}

#[cfg(feature = "ssr")]
async fn call(req: crate::ssr::HelpdeskRequest) -> Result<crate::ssr::HelpdeskStatus, ApiError> {
    let ctx = crate::ssr::request_ctx()?;
    crate::ssr::backend()?.helpdesk(&ctx, req).await
}

/// The user card's address, with an optional notice or error.
pub fn card_path(user: &str) -> String {
    format!(
        "{}?{}",
        crate::routes::HELPDESK_USER,
        crate::routes::query_pair("id", user)
    )
}

/// Goes to `to` on success, or back to it with `error=CODE`.
#[cfg(feature = "ssr")]
fn back(to: &str, result: Result<crate::ssr::HelpdeskStatus, ApiError>, notice: &str) {
    let sep = if to.contains('?') { '&' } else { '?' };
    match result {
        Ok(crate::ssr::HelpdeskStatus::Notice(n)) => {
            super::security::go(&format!("{to}{sep}notice={n}"))
        }
        Ok(_) if notice.is_empty() => super::security::go(to),
        Ok(_) => super::security::go(&format!("{to}{sep}notice={notice}")),
        Err(e) if e.code() == super::ErrorCode::NotSignedIn => {
            super::security::go(crate::routes::SIGNIN)
        }
        Err(e) => super::security::go(&format!(
            "{to}{sep}{}={}",
            crate::routes::ERROR_PARAM,
            e.code().code()
        )),
    }
}

#[server(prefix = "/api", endpoint = "helpdesk_home")]
pub async fn helpdesk_home(q: String) -> Result<ConsoleHome, ApiError> {
    match call(crate::ssr::HelpdeskRequest::Home { query: q }).await? {
        crate::ssr::HelpdeskStatus::Home(h) => Ok(h),
        _ => Err(super::ErrorCode::Internal.into()),
    }
}

#[server(prefix = "/api", endpoint = "helpdesk_card")]
pub async fn helpdesk_card(id: String) -> Result<UserCard, ApiError> {
    match call(crate::ssr::HelpdeskRequest::Card { user: id }).await? {
        crate::ssr::HelpdeskStatus::Card(c) => Ok(*c),
        _ => Err(super::ErrorCode::Internal.into()),
    }
}

/// Starts a verification: `method` is a method id or `portal`; `how` is `sms` or `voice` for
/// phones.
#[server(prefix = "/api", endpoint = "helpdesk_verify_start")]
pub async fn helpdesk_verify_start(
    user: String,
    method: String,
    how: Option<String>,
) -> Result<(), ApiError> {
    let req = crate::ssr::HelpdeskRequest::VerifyStart {
        user: user.clone(),
        method,
        voice: how.as_deref() == Some("voice"),
    };
    back(&card_path(&user), call(req).await, "");
    Ok(())
}

/// What the caller read or told: a code, the PIN, or the answers in the order asked.
#[server(prefix = "/api", endpoint = "helpdesk_verify_check")]
#[allow(clippy::too_many_arguments)]
pub async fn helpdesk_verify_check(
    user: String,
    verification: String,
    a1: Option<String>,
    a2: Option<String>,
    a3: Option<String>,
    a4: Option<String>,
    a5: Option<String>,
    a6: Option<String>,
) -> Result<(), ApiError> {
    let answers: Vec<String> = [a1, a2, a3, a4, a5, a6].into_iter().flatten().collect();
    let req = crate::ssr::HelpdeskRequest::VerifyCheck {
        verification,
        answers,
    };
    back(&card_path(&user), call(req).await, "verified");
    Ok(())
}

#[server(prefix = "/api", endpoint = "helpdesk_act")]
pub async fn helpdesk_act(
    user: String,
    action: String,
    minutes: Option<String>,
) -> Result<(), ApiError> {
    let req = crate::ssr::HelpdeskRequest::Act {
        user: user.clone(),
        action,
        minutes: minutes.and_then(|m| m.trim().parse().ok()).unwrap_or(0),
    };
    back(&card_path(&user), call(req).await, "done");
    Ok(())
}

/// A hardware token: `serial` handed to the user, or — with both codes — resynchronised.
#[server(prefix = "/api", endpoint = "helpdesk_token")]
pub async fn helpdesk_token(
    user: String,
    serial: String,
    first: Option<String>,
    second: Option<String>,
) -> Result<(), ApiError> {
    let codes = first.zip(second);
    let notice = if codes.is_some() {
        "token_resynced"
    } else {
        "token_assigned"
    };
    let req = crate::ssr::HelpdeskRequest::Token {
        user: user.clone(),
        serial,
        codes,
    };
    back(&card_path(&user), call(req).await, notice);
    Ok(())
}

/// A second administrator approves or rejects a request.
#[server(prefix = "/api", endpoint = "helpdesk_decide")]
pub async fn helpdesk_decide(approval: String, decision: String) -> Result<(), ApiError> {
    let approve = decision == "approve";
    let req = crate::ssr::HelpdeskRequest::Decide { approval, approve };
    let notice = if approve { "approved" } else { "rejected" };
    back(crate::routes::HELPDESK, call(req).await, notice);
    Ok(())
}

#[server(prefix = "/api", endpoint = "helpdesk_audit")]
pub async fn helpdesk_audit(query: AuditQuery) -> Result<Vec<AuditLine>, ApiError> {
    match call(crate::ssr::HelpdeskRequest::Audit(query)).await? {
        crate::ssr::HelpdeskStatus::Audit(lines) => Ok(lines),
        _ => Err(super::ErrorCode::Internal.into()),
    }
}

/// The portal approval waiting for the signed-in user, if any.
#[server(prefix = "/api", endpoint = "helpdesk_prompt")]
pub async fn helpdesk_prompt() -> Result<Option<ApprovalPromptView>, ApiError> {
    match call(crate::ssr::HelpdeskRequest::Prompt).await? {
        crate::ssr::HelpdeskStatus::Prompt(p) => Ok(p),
        _ => Ok(None),
    }
}

/// The caller answers: the number the agent read out, or `no`.
#[server(prefix = "/api", endpoint = "helpdesk_prompt_answer")]
pub async fn helpdesk_prompt_answer(id: String, answer: String) -> Result<(), ApiError> {
    let req = crate::ssr::HelpdeskRequest::PromptAnswer {
        id,
        pick: (answer != "no").then_some(answer),
    };
    match call(req).await {
        Err(e) if e.code() == super::ErrorCode::ReauthRequired => {
            // prove a second factor (passkey first when there is one), then come back
            super::security::go(&format!(
                "{}?{}",
                crate::routes::VERIFY,
                crate::routes::query_pair("next", crate::routes::SECURITY_INFO)
            ))
        }
        other => back(crate::routes::SECURITY_INFO, other, "helpdesk_answered"),
    }
    Ok(())
}
