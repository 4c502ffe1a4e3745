//! Security headers on every response and CSRF defence on every state-changing request.
//!
//! CSRF: a POST (or any non-GET) whose `Sec-Fetch-Site` says it came from another site (or, from
//! clients that do not send it, whose `Origin` is not `public_url`'s origin) is refused with 403
//! before it reaches a server function.
//! SameSite=Lax session cookies are the second line.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;

/// The nonce of this response's inline hydration script.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !is_safe_method(req.method()) {
        if let Err(why) = check_same_origin(&req, &state.config.public_origin) {
            tracing::warn!(
                route = super::route_of(req.uri().path()),
                reason = why,
                "cross-site request refused (HTTP-403)"
            );
            let mut res = (
                StatusCode::FORBIDDEN,
                "Request blocked: it did not come from this site. Reload the page and try again. (HTTP-403)\n",
            )
                .into_response();
            apply_headers(&mut res, None, state.config.https, false);
            return res;
        }
    }
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let nonce = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let is_static = req.uri().path().starts_with("/pkg/");
    let mut res = next.run(req).await;
    apply_headers(&mut res, Some(&nonce), state.config.https, is_static);
    res
}

fn is_safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Browsers send `Sec-Fetch-Site` on every request and scripts cannot forge it, so when present
/// it decides. (With `Referrer-Policy: no-referrer` Chromium sends `Origin: null` on same-origin
/// form posts, so `Origin` alone cannot.) Without it, `Origin` must be absent (non-browser
/// clients, which carry no ambient cookies) or equal to `public_url`'s origin.
fn check_same_origin(req: &Request, public_origin: &str) -> Result<(), &'static str> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err("sec-fetch-site"),
        };
    }
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes() != public_origin.as_bytes() => Err("origin"),
        _ => Ok(()),
    }
}

fn apply_headers(res: &mut Response, nonce: Option<&str>, https: bool, is_static: bool) {
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let script_src = match nonce {
        Some(n) if is_html => format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        _ => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    let csp = format!(
        "default-src 'self'; {script_src}; style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
