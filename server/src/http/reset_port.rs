//! The password-reset part of the UI's port: maps `ResetRequest`s to the domain's [`Reset`]
//! service, keeps the flow in its HttpOnly cookie, and serves the emailed link
//! (`/reset/link/<token>`), which is exchanged for the cookie and redirected away at once.

use super::security_port::api_error;
use super::AppState;
use crate::config::Configuration;
use crate::domain::flows::reset::{Purpose, Reset, Stage};
use crate::domain::flows::session::Client;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use converge_app::api::{ApiError, ErrorCode, PasskeyOptions, ResetChoice, ResetView};
use converge_app::routes;
use converge_app::ssr::{RequestCtx, ResetRequest as R, ResetStatus as S};

pub(crate) fn cookie_name(config: &Configuration) -> &'static str {
    if config.https {
        "__Host-converge_reset"
    } else {
        "converge_reset"
    }
}

/// Lax (not Strict) so the emailed link, opened from a mail client, carries it after the redirect.
fn cookie(config: &Configuration, token: &str, max_age: i64) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        cookie_name(config),
        if config.https { "; Secure" } else { "" }
    )
}

fn client(ctx: &RequestCtx) -> Client {
    super::client_of(ctx)
}

/// After a proven gate: the next gate, or the last step.
async fn next_page(reset: &Reset, token: &str, now: i64) -> String {
    match reset.view(token, now).await {
        Ok(v) if v.stage == Stage::Prove => format!("{}?notice=passed", routes::RESET_VERIFY),
        _ => routes::RESET_FINISH.to_string(),
    }
}

pub async fn handle(state: &AppState, ctx: &RequestCtx, req: R) -> Result<S, ApiError> {
    let reset = &state.reset;
    let now = state.clock.now();
    let config = &state.config;
    let token = ctx.reset_token.clone().unwrap_or_default();
    let go = |next: String| S::Go {
        set_cookie: None,
        next,
    };
    let result = match req {
        R::Challenge => return Ok(S::Challenge(reset.proof_challenge(now))),
        R::Start {
            login,
            unlock,
            proof,
        } => {
            let purpose = if unlock {
                Purpose::Unlock
            } else {
                Purpose::Reset
            };
            reset
                .start(&login, purpose, &proof, &client(ctx), now)
                .await
                .map(|t| S::Go {
                    set_cookie: Some(cookie(config, &t, reset.policy.flow_seconds)),
                    next: routes::RESET_VERIFY.to_string(),
                })
        }
        R::View => reset.view(&token, now).await.map(|v| {
            S::View(ResetView {
                purpose: v.purpose.as_str().into(),
                stage: match v.stage {
                    Stage::Prove => "prove",
                    Stage::NewPassword => "password",
                    Stage::Unlock => "unlock",
                }
                .into(),
                gate: v.gate,
                gates: v.gates,
                choices: v
                    .choices
                    .into_iter()
                    .map(|c| ResetChoice {
                        id: c.id,
                        kind: c.kind.as_str().into(),
                        name: c.name,
                        detail: c.detail,
                    })
                    .collect(),
                questions: v.questions,
                min_length: v.min_length as u32,
                complexity: v.complexity,
                username: v.username,
            })
        }),
        R::Send { method, voice } => reset
            .send(&token, &method, voice, &client(ctx), now)
            .await
            .map(|sent| {
                go(format!(
                    "{}?{}&sent={}&{}",
                    routes::RESET_VERIFY,
                    routes::query_pair("method", &method),
                    if sent.channel == "voice" { "call" } else { "1" },
                    routes::query_pair("to", &sent.destination)
                ))
            }),
        R::Code { method, code } => {
            match reset.code(&token, &method, &code, &client(ctx), now).await {
                Ok(()) => Ok(go(next_page(reset, &token, now).await)),
                Err(e) => Err(e),
            }
        }
        R::Questions { method, answers } => {
            match reset
                .questions(&token, &method, &answers, &client(ctx), now)
                .await
            {
                Ok(()) => Ok(go(next_page(reset, &token, now).await)),
                Err(e) => Err(e),
            }
        }
        R::PasskeyStart => {
            reset
                .passkey_start(&token, &client(ctx), now)
                .await
                .map(|(ceremony, options)| {
                    S::Passkey(PasskeyOptions {
                        ceremony,
                        options: options.to_string(),
                        error: None,
                    })
                })
        }
        R::PasskeyFinish {
            ceremony,
            credential,
        } => match reset
            .passkey_finish(&token, &ceremony, &credential, &client(ctx), now)
            .await
        {
            Ok(()) => Ok(go(next_page(reset, &token, now).await)),
            Err(e) => Err(e),
        },
        R::Password { password, confirm } => reset
            .set_password(&token, &password, &confirm, &client(ctx), now)
            .await
            .map(|()| S::Go {
                set_cookie: Some(cookie(config, "", 0)),
                next: format!("{}?done=reset", routes::RESET_DONE),
            }),
        R::Unlock => reset
            .unlock(&token, &client(ctx), now)
            .await
            .map(|()| S::Go {
                set_cookie: Some(cookie(config, "", 0)),
                next: format!("{}?done=unlock", routes::RESET_DONE),
            }),
        R::Cancel => Ok(S::Go {
            set_cookie: Some(cookie(config, "", 0)),
            next: routes::SIGNIN.to_string(),
        }),
    };
    result.map_err(api_error)
}

/// `GET /reset/link/<token>` (the emailed link, also the helpdesk's): changes nothing — mail
/// security scanners open every link before the user does — and shows one button that posts to
/// the same address.
pub async fn link_page(Path(token): Path<String>) -> Response {
    let t = converge_app::text::en();
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(64)
        .collect();
    let body = super::limits::plain_page(
        &format!("{} · {}", t.reset.link_title, t.product),
        "<meta name=\"robots\" content=\"noindex\">",
        &format!(
            "<p class=\"brand\"><span class=\"brand-mark\" aria-hidden=\"true\"></span>{product}</p>\
             <h1>{title}</h1><p>{intro}</p>\
             <form method=\"post\" action=\"{path}/{token}\" data-testid=\"reset-link-continue\">\
             <button type=\"submit\" class=\"button primary wide\">{button}</button></form>",
            product = t.product,
            title = t.reset.link_title,
            intro = t.reset.link_intro,
            button = t.reset.link_button,
            path = routes::RESET_LINK,
        ),
    );
    let mut res = axum::response::Html(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `POST /reset/link/<token>`: proves the emailed address, hands the flow to this browser and
/// takes the token out of the address bar with a redirect.
pub async fn link(
    State(state): State<AppState>,
    axum::Extension(ctx): axum::Extension<RequestCtx>,
    Path(token): Path<String>,
) -> Response {
    let now = state.clock.now();
    match state.reset.link(&token, &client(&ctx), now).await {
        Ok(flow) => {
            let next = next_page(&state.reset, &flow, now).await;
            let mut res = Redirect::to(&next).into_response();
            let value = cookie(&state.config, &flow, state.reset.policy.flow_seconds);
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => {
            let code = match api_error(e) {
                ApiError::Failed(code) => code,
                ApiError::Transport(_) => ErrorCode::Internal,
            };
            Redirect::to(&format!(
                "{}?{}={}",
                routes::RESET,
                routes::ERROR_PARAM,
                code.code()
            ))
            .into_response()
        }
    }
}
