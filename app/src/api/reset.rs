//! Self-service password reset and unlock: the wire types and server functions. Every step is a
//! plain form post answered with a redirect (works before any wasm loads); only the passkey gate
//! needs `public/passkey.js`.

use super::{ApiError, PasskeyOptions, PasskeyResult};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A registered method offered as a proof, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetChoice {
    pub id: String,
    /// `email`, `phone`, `totp`, `passkey`, `questions`.
    pub kind: String,
    pub name: String,
    /// Masked number or address (empty for apps, passkeys, questions).
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetView {
    /// `reset` or `unlock`.
    pub purpose: String,
    /// `prove`, `password` or `unlock`.
    pub stage: String,
    pub gate: u32,
    pub gates: u32,
    pub choices: Vec<ResetChoice>,
    pub questions: Vec<String>,
    pub min_length: u32,
    /// The directory wants three of: capitals, small letters, digits, symbols (AD complexity).
    pub complexity: bool,
    pub username: String,
}

/// Active Directory's complexity rule (the part that does not depend on the account): at least
/// three of capitals, small letters, digits and other characters. Checked live on the page and
/// again by the server before the directory is asked.
pub fn meets_complexity(password: &str) -> bool {
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    [
        has(|c| c.is_uppercase()),
        has(|c| c.is_lowercase()),
        has(|c| c.is_ascii_digit()),
        has(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        >= 3
}

/// The first page's proof-of-work challenge (empty when the policy has none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetChallenge {
    pub challenge: String,
    pub bits: u32,
}

#[cfg(feature = "ssr")]
async fn call(req: crate::ssr::ResetRequest) -> Result<crate::ssr::ResetStatus, ApiError> {
    let ctx = crate::ssr::request_ctx()?;
    crate::ssr::backend()?.reset(&ctx, req).await
}

/// Follows a `Go` status (cookie + redirect), or goes back to `page` with the error.
#[cfg(feature = "ssr")]
fn follow(status: Result<crate::ssr::ResetStatus, ApiError>, page: &str, params: &[(&str, &str)]) {
    use crate::ssr::ResetStatus;
    match status {
        Ok(ResetStatus::Go { set_cookie, next }) => {
            if let Some(c) = set_cookie {
                crate::ssr::set_cookie(&c);
            }
            super::security::go(&next)
        }
        Ok(_) => super::security::go(page),
        Err(e) => {
            let mut query: Vec<String> = params
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| crate::ssr::query_pair(k, v))
                .collect();
            query.push(format!(
                "{}={}",
                crate::routes::ERROR_PARAM,
                e.code().code()
            ));
            super::security::go(&format!("{page}?{}", query.join("&")))
        }
    }
}

#[server(prefix = "/api", endpoint = "reset_challenge")]
pub async fn get_reset_challenge() -> Result<ResetChallenge, ApiError> {
    match call(crate::ssr::ResetRequest::Challenge).await? {
        crate::ssr::ResetStatus::Challenge(Some((challenge, bits))) => {
            Ok(ResetChallenge { challenge, bits })
        }
        _ => Ok(ResetChallenge::default()),
    }
}

#[server(prefix = "/api", endpoint = "reset_view")]
pub async fn get_reset_view() -> Result<ResetView, ApiError> {
    match call(crate::ssr::ResetRequest::View).await? {
        crate::ssr::ResetStatus::View(v) => Ok(v),
        _ => Err(crate::api::ErrorCode::Internal.into()),
    }
}

/// Step 1: the username or email address (and what the user wants: reset or unlock).
#[server(prefix = "/api", endpoint = "reset_start")]
pub async fn reset_start(
    login: String,
    unlock: Option<String>,
    proof: Option<String>,
) -> Result<(), ApiError> {
    let req = crate::ssr::ResetRequest::Start {
        login,
        unlock: unlock.as_deref() == Some("1"),
        proof: proof.unwrap_or_default(),
    };
    follow(call(req).await, crate::routes::RESET, &[]);
    Ok(())
}

/// Sends a code by text, call or email to a registered phone / address.
#[server(prefix = "/api", endpoint = "reset_send")]
pub async fn reset_send(method: String, how: Option<String>) -> Result<(), ApiError> {
    let req = crate::ssr::ResetRequest::Send {
        method: method.clone(),
        voice: how.as_deref() == Some("voice"),
    };
    follow(
        call(req).await,
        crate::routes::RESET_VERIFY,
        &[("method", &method)],
    );
    Ok(())
}

/// A code from an authenticator app, or the code that was sent.
#[server(prefix = "/api", endpoint = "reset_code")]
pub async fn reset_code(method: String, code: String) -> Result<(), ApiError> {
    // nothing typed: "I approved the call" (the page keeps offering it)
    let sent = if code.trim().is_empty() { "call" } else { "1" };
    let req = crate::ssr::ResetRequest::Code {
        method: method.clone(),
        code,
    };
    follow(
        call(req).await,
        crate::routes::RESET_VERIFY,
        &[("method", &method), ("sent", sent)],
    );
    Ok(())
}

/// Answers to the flow's security questions (in the order shown).
#[server(prefix = "/api", endpoint = "reset_questions")]
pub async fn reset_questions(
    method: String,
    a1: Option<String>,
    a2: Option<String>,
    a3: Option<String>,
    a4: Option<String>,
    a5: Option<String>,
    a6: Option<String>,
) -> Result<(), ApiError> {
    let answers: Vec<String> = [a1, a2, a3, a4, a5, a6].into_iter().flatten().collect();
    let req = crate::ssr::ResetRequest::Questions {
        method: method.clone(),
        answers,
    };
    // answers are never echoed back
    follow(
        call(req).await,
        crate::routes::RESET_VERIFY,
        &[("method", &method)],
    );
    Ok(())
}

#[server(prefix = "/api", endpoint = "reset_passkey_start")]
pub async fn reset_passkey_start() -> Result<PasskeyOptions, ApiError> {
    Ok(match call(crate::ssr::ResetRequest::PasskeyStart).await {
        Ok(crate::ssr::ResetStatus::Passkey(o)) => o,
        Ok(_) => return Err(crate::api::ErrorCode::Internal.into()),
        Err(e) => super::security::passkey_error(e, |o: &mut PasskeyOptions, c| o.error = c),
    })
}

#[server(prefix = "/api", endpoint = "reset_passkey_finish")]
pub async fn reset_passkey_finish(
    ceremony: String,
    credential: String,
) -> Result<PasskeyResult, ApiError> {
    let req = crate::ssr::ResetRequest::PasskeyFinish {
        ceremony,
        credential,
    };
    Ok(match call(req).await {
        Ok(crate::ssr::ResetStatus::Go { next, .. }) => PasskeyResult { next, error: None },
        Ok(_) => PasskeyResult {
            next: crate::routes::RESET_VERIFY.into(),
            error: None,
        },
        Err(e) => super::security::passkey_error(e, |o: &mut PasskeyResult, c| o.error = c),
    })
}

/// The new password (twice). Refusals say why and keep the flow.
#[server(prefix = "/api", endpoint = "reset_password")]
pub async fn reset_password(password: String, confirm: String) -> Result<(), ApiError> {
    let req = crate::ssr::ResetRequest::Password { password, confirm };
    follow(call(req).await, crate::routes::RESET_FINISH, &[]);
    Ok(())
}

#[server(prefix = "/api", endpoint = "reset_unlock")]
pub async fn reset_unlock() -> Result<(), ApiError> {
    follow(
        call(crate::ssr::ResetRequest::Unlock).await,
        crate::routes::RESET_FINISH,
        &[],
    );
    Ok(())
}

/// Ends the flow (its cookie) and goes back to sign-in.
#[server(prefix = "/api", endpoint = "reset_cancel")]
pub async fn reset_cancel() -> Result<(), ApiError> {
    follow(
        call(crate::ssr::ResetRequest::Cancel).await,
        crate::routes::SIGNIN,
        &[],
    );
    Ok(())
}
