//! Sign-in, sign-out and "who am I".

use super::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the UI may know about the signed-in user. Deliberately no ids or secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub username: String,
    pub display_name: String,
    pub role: String,
}

/// Signs in with username and password. Always ends in a redirect: to Security info on success,
/// back to the sign-in page with one generic error code otherwise (no user enumeration).
#[server(prefix = "/api", endpoint = "sign_in")]
pub async fn sign_in(username: String, password: String) -> Result<(), ApiError> {
    use crate::ssr::{backend, request_ctx, SigninRequest};
    let ctx = request_ctx()?;
    let status = backend()?
        .signin(&ctx, SigninRequest::Password { username, password })
        .await;
    crate::ssr::finish_signin(status);
    Ok(())
}

/// Ends the current session on the server and clears the cookie.
#[server(prefix = "/api", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ApiError> {
    use crate::ssr::{backend, request_ctx, SigninRequest};
    let ctx = request_ctx()?;
    let status = backend()?.signin(&ctx, SigninRequest::SignOut).await;
    crate::ssr::finish_signin(status);
    Ok(())
}

/// The signed-in user, or `NotSignedIn`.
#[server(prefix = "/api", endpoint = "whoami")]
pub async fn whoami() -> Result<SessionView, ApiError> {
    let ctx = crate::ssr::request_ctx()?;
    ctx.signed_in().map(|s| s.view.clone())
}
