//! Request limits, before any work: the body size (413), the time a request may take (503),
//! and load shedding — while the bounded sign-in hashing queue is full, every state-changing
//! request is answered 503 + `Retry-After` at once (SYS-503) instead of queueing without end.
//! Also the one error page these answers (and an unreachable database) use.

use super::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use converge_app::api::ErrorCode;

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = crate::api::is_rest(req.uri().path());
    let error_page = |status, code| {
        if api {
            crate::api::problem::Problem::new(status, code).into_response()
        } else {
            error_page(status, code)
        }
    };
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        state.metrics.refused("body_too_large");
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && state.hasher.saturated()
    {
        state.metrics.refused("overloaded");
        tracing::warn!("sign-in hashing queue full: request shed (SYS-503)");
        return error_page(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable);
    }
    // a body without a length (chunked) is cut off at the limit as it streams
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            state.metrics.refused("timeout");
            tracing::warn!("request took longer than server.request_timeout_seconds (SYS-503)");
            error_page(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        }
    }
}

/// A minimal page in the portal's style for answers given before the app runs.
pub(crate) fn error_page(status: StatusCode, code: ErrorCode) -> Response {
    let t = converge_app::text::en();
    let body = plain_page(
        t.product,
        "",
        &format!(
            "<h1>{product}</h1><div class=\"notice error\" role=\"alert\"><p>{msg}</p>\
             <p class=\"code\">{prefix}: {code}</p></div>",
            product = t.product,
            msg = t.for_error(code),
            prefix = t.error_code_prefix,
            code = code.code(),
        ),
    );
    let mut res = (status, Html(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    res
}

/// A page outside the Leptos app (answered before it runs): the portal's stylesheet and one card
/// holding `card` (trusted HTML); `head` adds to the head.
pub(crate) fn plain_page(title: &str, head: &str, card: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}\
         <link rel=\"stylesheet\" href=\"/pkg/converge.css\"></head><body><main id=\"main\" class=\"auth-page\">\
         <section class=\"card\">{card}</section></main></body></html>"
    )
}
