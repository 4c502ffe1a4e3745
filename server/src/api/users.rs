//! Management of users and their registrations: the console's flows (`Helpdesk`, its account
//! administration) with a service token as the agent.

use super::extract::{Json, Path, Query};
use super::problem::{Problem, ProblemDoc};
use super::tokens::ApiCaller;
use super::Scope;
use crate::domain::flows::helpdesk::{Action, Agent, Outcome};
use crate::domain::flows::security::{mask, Method};
use crate::domain::password::Password;
use crate::domain::policy::MethodKind;
use crate::domain::users::{DisplayName, EmailAddress, Role, User, UserProfile, Username};
use crate::http::AppState;
use crate::store::api::UserFilter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use converge_app::api::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type Answer<T> = Result<axum::Json<T>, Problem>;

/// A user with the registration-details fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    /// `local`, or the directory the user is synchronised from.
    pub source: String,
    #[schema(example = "user")]
    pub role: String,
    pub enabled: bool,
    /// Locked by the sign-in throttle.
    pub locked: bool,
    /// Second factors blocked after a fraud report.
    pub blocked: bool,
    /// Has a method that can be a second sign-in factor (app, passkey, phone).
    pub mfa_capable: bool,
    /// Meets the password-reset policy.
    pub reset_capable: bool,
    /// Has a passkey.
    pub passwordless_capable: bool,
    /// Meets the registration policy.
    pub registration_complete: bool,
    /// Kinds of the registered methods (`totp`, `passkey`, `phone`, `email`, `questions`, `pin`).
    pub methods: Vec<String>,
    pub default_method: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A registered method, masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MethodView {
    pub id: String,
    pub kind: String,
    pub name: String,
    /// The phone number or address, masked.
    pub destination: Option<String>,
    pub is_default: bool,
    /// `user`, or `directory` for phones from the directory.
    pub source: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Part of a username, name or email address.
    pub q: Option<String>,
    pub role: Option<RoleName>,
    /// `local` or a directory source (`ldap:…`).
    pub source: Option<String>,
    pub enabled: Option<bool>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    User,
    Helpdesk,
    Admin,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::User => Role::User,
            RoleName::Helpdesk => Role::Helpdesk,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// A new local user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1-64 of a-z 0-9 . _ - @ (lower-cased).
    #[schema(
        example = "carol",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._@-]+$"
    )]
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Default `user`; other roles need an administrator (never a token).
    pub role: Option<RoleName>,
    /// Optional: without one, the user gets a password by a reset.
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    pub role: RoleName,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPass {
    /// Minutes the pass is valid (default and limits from `[helpdesk]`).
    #[serde(default)]
    #[schema(maximum = 43200)]
    pub minutes: Option<u32>,
}

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub action: String,
    /// What was done, as the audit trail says it.
    pub detail: String,
}

/// A Temporary Access Pass, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pass {
    #[schema(example = "K7QM-2XPA-9RTW-HC4N")]
    pub pass: String,
    /// Unix seconds.
    pub expires_at: i64,
}

fn agent(caller: &ApiCaller) -> Agent {
    Agent::service(&caller.token_id, &caller.name, caller.client.clone())
}

async fn find(state: &AppState, username: &str) -> Result<User, Problem> {
    let name = Username::parse(username).map_err(|_| Problem::refused(ErrorCode::NotFound))?;
    state
        .store
        .find_user_by_username(name.as_str())
        .await?
        .ok_or_else(|| Problem::refused(ErrorCode::NotFound))
}

pub(super) fn method_view(m: &Method) -> MethodView {
    MethodView {
        id: m.row.id.clone(),
        kind: m.kind.as_str().into(),
        name: m.row.name.clone(),
        destination: m.destination().map(|d| mask(&d)),
        is_default: m.row.is_default,
        source: m.row.source.clone(),
        created_at: m.row.created_at,
    }
}

async fn view(state: &AppState, user: User) -> Result<UserView, Problem> {
    let now = state.clock.now();
    let methods = state.security.methods(&user.id).await?;
    let reg = state.store.registration_state(&user.id).await?;
    let status = state.security.status(&user, &methods, reg, now);
    Ok(UserView {
        mfa_capable: methods.iter().any(|m| m.kind.signs_in()),
        reset_capable: state.reset.reset_capable(&user, &methods),
        passwordless_capable: methods.iter().any(|m| m.kind == MethodKind::Passkey),
        registration_complete: status.complete,
        methods: {
            // each kind once, in the order the methods were registered
            let mut kinds: Vec<String> = Vec::new();
            for m in &methods {
                if !kinds.iter().any(|k| k == m.kind.as_str()) {
                    kinds.push(m.kind.as_str().into());
                }
            }
            kinds
        },
        default_method: methods
            .iter()
            .find(|m| m.row.is_default)
            .map(|m| m.kind.as_str().into()),
        locked: user.locked_at.is_some(),
        blocked: user.is_blocked(now),
        username: user.username,
        display_name: user.display_name,
        email: user.email,
        source: user.source,
        role: user.role.as_str().into(),
        enabled: user.enabled,
        created_at: user.created_at,
        updated_at: user.updated_at,
    })
}

/// List users (keyset pagination by username).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    responses((status = 200, body = UserPage),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:read"])))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Query(q): Query<UserQuery>,
) -> Answer<UserPage> {
    caller.require(&state, Scope::UsersRead).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::invalid("limit: 1 to 200"));
    }
    let filter = UserFilter {
        q: q.q.map(|s| s.chars().take(100).collect()),
        role: q.role.map(|r| Role::from(r).as_str().to_string()),
        source: q.source.map(|s| s.chars().take(200).collect()),
        enabled: q.enabled,
    };
    let users = state
        .store
        .users_page(&filter, q.after.as_deref(), limit)
        .await?;
    let next = (users.len() as u32 == limit)
        .then(|| users.last().map(|u| u.username.clone()))
        .flatten();
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(view(&state, u).await?);
    }
    Ok(axum::Json(UserPage { users: out, next }))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:read"])))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
) -> Answer<UserView> {
    caller.require(&state, Scope::UsersRead).await?;
    let user = find(&state, &username).await?;
    Ok(axum::Json(view(&state, user).await?))
}

/// Create a local user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer")),
    responses((status = 201, body = UserView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:write"])))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, axum::Json<UserView>), Problem> {
    caller.require(&state, Scope::UsersWrite).await?;
    let username =
        Username::parse(&body.username).map_err(|e| Problem::invalid(format!("username: {e}")))?;
    let profile = UserProfile {
        display_name: DisplayName::parse(body.display_name.as_deref().unwrap_or(username.as_str()))
            .map_err(|e| Problem::invalid(format!("display_name: {e}")))?,
        email: body
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()
            .map_err(|e| Problem::invalid(format!("email: {e}")))?,
        mobile_phone: None,
        alternate_phone: None,
        office_phone: None,
        groups: vec![],
        enabled: true,
        role: body.role.map(Role::from).unwrap_or(Role::User),
        username,
    };
    let password = body
        .password
        .map(Password::parse)
        .transpose()
        .map_err(|e| Problem::invalid(format!("password: {e}")))?;
    let user = match state
        .helpdesk
        .create_user(&agent(&caller), &profile, password, state.clock.now())
        .await
    {
        Err(crate::domain::error::DomainError::Refused(ErrorCode::NameInvalid)) => {
            let mut p = Problem::new(StatusCode::CONFLICT, ErrorCode::NameInvalid);
            p.errors
                .push("username: a user with this name exists".into());
            return Err(p);
        }
        other => other?,
    };
    Ok((StatusCode::CREATED, axum::Json(view(&state, user).await?)))
}

async fn enabled(
    state: AppState,
    caller: ApiCaller,
    username: String,
    on: bool,
) -> Answer<UserView> {
    caller.require(&state, Scope::UsersWrite).await?;
    let user = find(&state, &username).await?;
    state
        .helpdesk
        .set_enabled(&agent(&caller), &user, on, state.clock.now())
        .await?;
    Ok(axum::Json(
        view(&state, find(&state, &username).await?).await?,
    ))
}

/// Disable a user (ends their sessions).
#[utoipa::path(post, path = "/api/v1/users/{username}/disable", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:write"])))]
pub async fn disable(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
) -> Answer<UserView> {
    enabled(state, caller, username, false).await
}

/// Enable a user.
#[utoipa::path(post, path = "/api/v1/users/{username}/enable", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = UserView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:write"])))]
pub async fn enable(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
) -> Answer<UserView> {
    enabled(state, caller, username, true).await
}

/// Set a user's role (`helpdesk` and `admin` need an administrator, never a token).
#[utoipa::path(put, path = "/api/v1/users/{username}/role", tag = "users",
    params(("username" = String, Path)), request_body = SetRole,
    responses((status = 200, body = UserView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:write"])))]
pub async fn set_role(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
    Json(body): Json<SetRole>,
) -> Answer<UserView> {
    caller.require(&state, Scope::UsersWrite).await?;
    let user = find(&state, &username).await?;
    state
        .helpdesk
        .set_role(&agent(&caller), &user, body.role.into(), state.clock.now())
        .await?;
    Ok(axum::Json(
        view(&state, find(&state, &username).await?).await?,
    ))
}

/// Runs a console action for the user (scope checked by the caller).
async fn act(
    state: &AppState,
    caller: &ApiCaller,
    username: &str,
    action: Action,
) -> Result<(User, String), Problem> {
    let user = find(state, username).await?;
    match state
        .helpdesk
        .act(&agent(caller), &user.id, action, state.clock.now())
        .await?
    {
        Outcome::Done(detail) => Ok((user, detail)),
        // a service agent is never an administrator: protected accounts are refused before
        Outcome::ApprovalRequested(_) => Err(Problem::refused(ErrorCode::ProtectedAccount)),
    }
}

macro_rules! action_endpoint {
    ($name:ident, $path:literal, $scope:expr, $action:expr, $doc:literal, $scope_name:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "users",
            params(("username" = String, Path)),
            responses((status = 200, body = Done),
                (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
                (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
            security(("token" = [$scope_name])))]
        pub async fn $name(
            State(state): State<AppState>,
            Extension(caller): Extension<ApiCaller>,
            Path(username): Path<String>,
        ) -> Answer<Done> {
            caller.require(&state, $scope).await?;
            let action = $action;
            let (_, detail) = act(&state, &caller, &username, action).await?;
            Ok(axum::Json(Done {
                action: action.as_str().into(),
                detail,
            }))
        }
    };
}

action_endpoint!(
    unlock,
    "/api/v1/users/{username}/unlock",
    Scope::UsersWrite,
    Action::Unlock,
    "Unlock a user locked by the sign-in throttle or the directory.",
    "users:write"
);
action_endpoint!(
    unblock,
    "/api/v1/users/{username}/unblock",
    Scope::UsersWrite,
    Action::Unblock,
    "Lift a fraud block.",
    "users:write"
);
action_endpoint!(
    reregister,
    "/api/v1/users/{username}/reregister",
    Scope::RegistrationWrite,
    Action::Reregister,
    "Remove every method: the wizard runs at the next sign-in.",
    "registration:write"
);
action_endpoint!(
    reset_link,
    "/api/v1/users/{username}/reset-link",
    Scope::RegistrationWrite,
    Action::ResetLink,
    "Mail a password-reset link to the user's registered addresses.",
    "registration:write"
);

/// The user's registered methods (masked).
#[utoipa::path(get, path = "/api/v1/users/{username}/methods", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = Vec<MethodView>),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["users:read"])))]
pub async fn methods(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
) -> Answer<Vec<MethodView>> {
    caller.require(&state, Scope::UsersRead).await?;
    let user = find(&state, &username).await?;
    let methods = state.security.methods(&user.id).await?;
    Ok(axum::Json(methods.iter().map(method_view).collect()))
}

/// Remove one method.
#[utoipa::path(delete, path = "/api/v1/users/{username}/methods/{method_id}", tag = "users",
    params(("username" = String, Path), ("method_id" = String, Path)),
    responses((status = 200, body = Done),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["registration:write"])))]
pub async fn remove_method(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path((username, method_id)): Path<(String, String)>,
) -> Answer<Done> {
    caller.require(&state, Scope::RegistrationWrite).await?;
    let user = find(&state, &username).await?;
    let label = state
        .helpdesk
        .remove_method(&agent(&caller), &user.id, &method_id, state.clock.now())
        .await
        .map_err(|e| match e {
            crate::domain::error::DomainError::Refused(ErrorCode::SetupExpired) => {
                Problem::refused(ErrorCode::NotFound)
            }
            other => other.into(),
        })?;
    Ok(axum::Json(Done {
        action: "remove_method".into(),
        detail: label,
    }))
}

/// Issue a Temporary Access Pass (shown once in the answer).
#[utoipa::path(post, path = "/api/v1/users/{username}/temporary-access-pass", tag = "users",
    params(("username" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer")),
    request_body(content = Option<NewPass>),
    responses((status = 201, body = Pass),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["registration:write"])))]
pub async fn temporary_access_pass(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Pass>), Problem> {
    caller.require(&state, Scope::RegistrationWrite).await?;
    // the body is optional: none means the policy's default lifetime
    let body: NewPass = if body.iter().all(u8::is_ascii_whitespace) {
        NewPass::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::invalid(e.to_string()))?
    };
    let minutes = body.minutes.unwrap_or(0);
    if minutes > 60 * 24 * 30 {
        return Err(Problem::invalid("minutes: at most 43200"));
    }
    let (user, _) = act(&state, &caller, &username, Action::Tap { minutes }).await?;
    let (pass, expires_at) = state
        .helpdesk
        .take_new_tap(&agent(&caller), &user.id)
        .await?
        .ok_or_else(|| Problem::refused(ErrorCode::Internal))?;
    Ok((StatusCode::CREATED, axum::Json(Pass { pass, expires_at })))
}
