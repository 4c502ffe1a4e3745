//! MFA as a service: `/mfa/challenges` (scope `mfa:verify`), onto [`AppMfa`].

use super::extract::{Json, Path, Query};
use super::problem::{Problem, ProblemDoc};
use super::tokens::ApiCaller;
use super::Scope;
use crate::domain::flows::app_mfa::{App, Delivery, Offer, Started, Verdict};
use crate::domain::flows::session::Client;
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Ask for a user's second factor.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartChallenge {
    /// The username (as the directory knows it).
    #[schema(example = "alice", min_length = 1, max_length = 256)]
    pub user: String,
    /// A method id from a previous answer's `methods`; default: the user's default method.
    #[serde(default)]
    pub method: Option<String>,
    /// `app`, `sms`, `voice` or `tap` (a Temporary Access Pass from the helpdesk).
    #[serde(default)]
    pub delivery: Option<DeliveryKind>,
    /// The end user's IP address as the application saw it (throttling and audit).
    #[serde(default)]
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryKind {
    App,
    Sms,
    Voice,
    Tap,
}

impl From<DeliveryKind> for Delivery {
    fn from(d: DeliveryKind) -> Delivery {
        match d {
            DeliveryKind::App => Delivery::App,
            DeliveryKind::Sms => Delivery::Sms,
            DeliveryKind::Voice => Delivery::Voice,
            DeliveryKind::Tap => Delivery::Tap,
        }
    }
}

impl From<Delivery> for DeliveryKind {
    fn from(d: Delivery) -> DeliveryKind {
        match d {
            Delivery::App => DeliveryKind::App,
            Delivery::Sms => DeliveryKind::Sms,
            Delivery::Voice => DeliveryKind::Voice,
            Delivery::Tap => DeliveryKind::Tap,
        }
    }
}

/// One way the user can answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MethodOffer {
    /// The method's id (pass it as `method` to pick it).
    pub id: String,
    pub delivery: DeliveryKind,
    /// The app's name, or the phone number masked (`+31•••••••78`).
    pub label: String,
}

impl From<&Offer> for MethodOffer {
    fn from(o: &Offer) -> MethodOffer {
        MethodOffer {
            id: o.method_id.clone(),
            delivery: o.delivery.into(),
            label: o.label.clone(),
        }
    }
}

/// A started challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct Challenge {
    /// The challenge id (a secret of this token: keep it server-side).
    pub id: String,
    pub user: String,
    /// How this challenge is answered: `app` (ask for the app's code), `sms` (a code was
    /// texted), `voice` (a call is ringing: poll the status), `tap`.
    pub delivery: DeliveryKind,
    /// Where the code went (masked), for `sms` / `voice`.
    pub sent_to: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Every method the user can use here.
    pub methods: Vec<MethodOffer>,
}

impl From<Started> for Challenge {
    fn from(s: Started) -> Challenge {
        Challenge {
            sent_to: matches!(s.chosen.delivery, Delivery::Sms | Delivery::Voice)
                .then(|| s.chosen.label.clone()),
            delivery: s.chosen.delivery.into(),
            id: s.id,
            user: s.user.username,
            expires_at: s.expires_at,
            methods: s.offers.iter().map(MethodOffer::from).collect(),
        }
    }
}

/// The code (or Temporary Access Pass) the user typed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyCode {
    #[schema(example = "123456", max_length = 64)]
    pub code: String,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Verified,
    Wrong,
    Expired,
    Locked,
    Pending,
    Declined,
}

/// The answer of a check: `verified` (let the user in), `wrong` (ask again), `expired` (start a
/// new challenge), `locked` (too many wrong answers or the method is locked: try later or use
/// another method), `pending` (a call not answered yet), `declined` (the call was declined).
#[derive(Debug, Serialize, ToSchema)]
pub struct Result {
    pub result: Outcome,
}

impl From<Verdict> for Result {
    fn from(v: Verdict) -> Result {
        Result {
            result: match v {
                Verdict::Verified => Outcome::Verified,
                Verdict::Wrong => Outcome::Wrong,
                Verdict::Expired => Outcome::Expired,
                Verdict::Locked => Outcome::Locked,
                Verdict::Pending => Outcome::Pending,
                Verdict::Declined => Outcome::Declined,
            },
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Seconds to wait for a call's answer (long poll; at most `api.max_wait_seconds`).
    #[serde(default)]
    pub wait: Option<u32>,
}

fn app_of(caller: &ApiCaller, client_ip: Option<&str>) -> std::result::Result<App, Problem> {
    let ip = match client_ip.map(str::trim).filter(|s| !s.is_empty()) {
        Some(ip) => ip
            .parse::<std::net::IpAddr>()
            .map_err(|_| Problem::invalid("client_ip: an IPv4 or IPv6 address"))?
            .to_string(),
        None => caller.client.ip.clone(),
    };
    Ok(App {
        token_id: caller.token_id.clone(),
        name: caller.name.clone(),
        from: Client {
            ip,
            user_agent: format!("API {}", caller.name),
            device: None,
        },
    })
}

fn challenge_id(id: &str) -> std::result::Result<&str, Problem> {
    (id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some(id)
        .ok_or_else(|| Problem::invalid("id: 32 hexadecimal characters"))
}

/// Start a second-factor check.
///
/// Sends a code when the method needs one (a text), places a call for `voice`; for `app` and
/// `tap` nothing is sent. Unknown users are 404, disabled or fraud-blocked ones 423, users
/// without an app or phone 422.
#[utoipa::path(post, path = "/api/v1/mfa/challenges", tag = "mfa",
    request_body = StartChallenge,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key and body get the first answer")),
    responses(
        (status = 201, description = "Challenge started", body = Challenge),
        (status = "4XX", description = "Refused", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", description = "Unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("token" = ["mfa:verify"])))]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Json(body): Json<StartChallenge>,
) -> std::result::Result<(StatusCode, axum::Json<Challenge>), Problem> {
    caller.require(&state, Scope::MfaVerify).await?;
    let app = app_of(&caller, body.client_ip.as_deref())?;
    if body.user.trim().is_empty() || body.user.len() > 256 {
        return Err(Problem::invalid("user: 1 to 256 characters"));
    }
    let started = state
        .app_mfa
        .start(
            &app,
            &body.user,
            body.method.as_deref(),
            body.delivery.map(Delivery::from),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(started.into())))
}

/// Check the code the user typed.
///
/// A 6-digit code is checked against the challenge's method; anything else as a Temporary
/// Access Pass. Wrong answers count against the user's budget, as in the portal.
#[utoipa::path(post, path = "/api/v1/mfa/challenges/{id}/verify", tag = "mfa",
    params(("id" = String, Path, description = "The challenge id")),
    request_body = VerifyCode,
    responses(
        (status = 200, description = "The verdict", body = Result),
        (status = "4XX", description = "Refused", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", description = "Unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("token" = ["mfa:verify"])))]
pub async fn verify(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(id): Path<String>,
    Json(body): Json<VerifyCode>,
) -> std::result::Result<axum::Json<Result>, Problem> {
    caller.require(&state, Scope::MfaVerify).await?;
    let id = challenge_id(&id)?;
    let app = app_of(&caller, None)?;
    Ok(axum::Json(
        state.app_mfa.verify(&app, id, &body.code).await?.into(),
    ))
}

/// The challenge's state (for calls: waits up to `wait` seconds for the answer).
#[utoipa::path(get, path = "/api/v1/mfa/challenges/{id}", tag = "mfa",
    params(("id" = String, Path, description = "The challenge id"), Wait),
    responses(
        (status = 200, description = "The state", body = Result),
        (status = "4XX", description = "Refused", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", description = "Unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("token" = ["mfa:verify"])))]
pub async fn status(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(id): Path<String>,
    Query(q): Query<Wait>,
) -> std::result::Result<axum::Json<Result>, Problem> {
    caller.require(&state, Scope::MfaVerify).await?;
    let id = challenge_id(&id)?;
    let app = app_of(&caller, None)?;
    Ok(axum::Json(
        state
            .app_mfa
            .status(&app, id, q.wait.unwrap_or(0))
            .await?
            .into(),
    ))
}
