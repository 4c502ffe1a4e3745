//! The REST front door (`/api/v1`): JSON for scripts (management) and for the organisation's
//! own applications (MFA as a service). Thin like the other doors: a handler checks the token's
//! scope, parses its input, calls the same flow the consoles call, and renders the outcome —
//! errors as RFC 9457 problem documents with the stable codes users see.
//!
//! ```text
//!  request ─► limits / headers ─► tokens::authenticate (per-client throttle counted first,
//!             SHA-256 lookup, expiry / revocation / source address; audited) ─► idempotency
//!             (POST with Idempotency-Key: replay the first answer) ─► handler (scope) ─► flow
//! ```
//! The contract is generated from these handlers (utoipa) at `/api/v1/openapi.json` and shown
//! at `/api/v1/docs` (server-rendered from the same document: no script, no CDN).

pub mod config;
mod extract;
mod idempotency;
mod mfa;
pub mod openapi;
mod ops;
pub mod problem;
pub mod tokens;
mod users;

use crate::http::AppState;
use axum::routing::{delete, get, post, put};
use axum::Router;

/// Where the API lives; every path below is relative to it.
pub const PREFIX: &str = "/api/v1";

/// Is this a REST API path (not one of the portal's server functions, which live under `/api/`)?
pub fn is_rest(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    UsersRead,
    UsersWrite,
    RegistrationWrite,
    AuditRead,
    DirectoryWrite,
    OutboxWrite,
    MfaVerify,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::RegistrationWrite,
        Scope::AuditRead,
        Scope::DirectoryWrite,
        Scope::OutboxWrite,
        Scope::MfaVerify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::RegistrationWrite => "registration:write",
            Scope::AuditRead => "audit:read",
            Scope::DirectoryWrite => "directory:write",
            Scope::OutboxWrite => "outbox:write",
            Scope::MfaVerify => "mfa:verify",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
}

/// The `/api/v1` router (nested under [`PREFIX`]).
pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route("/mfa/challenges", post(mfa::start))
        .route("/mfa/challenges/{id}", get(mfa::status))
        .route("/mfa/challenges/{id}/verify", post(mfa::verify))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{username}", get(users::get))
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route("/users/{username}/unlock", post(users::unlock))
        .route("/users/{username}/unblock", post(users::unblock))
        .route("/users/{username}/role", put(users::set_role))
        .route("/users/{username}/methods", get(users::methods))
        .route(
            "/users/{username}/methods/{method_id}",
            delete(users::remove_method),
        )
        .route("/users/{username}/reregister", post(users::reregister))
        .route(
            "/users/{username}/temporary-access-pass",
            post(users::temporary_access_pass),
        )
        .route("/users/{username}/reset-link", post(users::reset_link))
        .route("/audit", get(ops::audit))
        .route("/directory/sync-runs", get(ops::sync_runs))
        .route(
            "/directory/sync-runs/{id}/approve",
            post(ops::approve_sync_run),
        )
        .route("/outbox/dead-letters", get(ops::dead_letters))
        .route(
            "/outbox/dead-letters/{id}/retry",
            post(ops::retry_dead_letter),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tokens::authenticate,
        ));
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/docs", get(openapi::reference))
        .merge(authenticated)
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(state)
}
