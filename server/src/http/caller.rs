//! Establishes who is calling before any page or server function runs: client address, user
//! agent, the session behind the cookie. Puts it into the request as `converge_app::ssr::RequestCtx`
//! and keeps anonymous visitors out of signed-in pages.

use super::security::CspNonce;
use super::AppState;
use crate::config::Configuration;
use crate::domain::flows::session;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use converge_app::api::SessionView;
use converge_app::routes;
use converge_app::ssr::{RequestCtx, SignedIn};
use std::net::SocketAddr;

pub async fn establish(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // the REST API authenticates by token, never by cookie (the portal's server functions,
    // under /api/ too, do use the session)
    let skip_session = path.starts_with("/pkg/")
        || crate::api::is_rest(&path)
        || matches!(
            path.as_str(),
            "/healthz" | "/readyz" | "/metrics" | "/favicon.svg" | "/favicon.ico"
        );
    let config = &state.config;
    let token = if skip_session {
        None
    } else {
        session_cookie(&req, config.session_cookie_name())
    };
    let mut ctx = RequestCtx {
        client_ip: client_ip(&req, &config.trusted_proxies),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect())
            .unwrap_or_default(),
        session_token: token.clone(),
        reset_token: if skip_session {
            None
        } else {
            session_cookie(&req, super::reset_port::cookie_name(config))
        },
        device_cookie: if skip_session {
            None
        } else {
            session_cookie(&req, config.device_cookie_name())
        },
        session: None,
        pending: None,
        attached: Default::default(),
        nonce: req
            .extensions()
            .get::<CspNonce>()
            .map(|n| n.0.clone())
            .unwrap_or_default(),
    };
    if let Some(token) = &token {
        match session::resolve(
            &state.store,
            token,
            &config.policy.session,
            state.clock.now(),
        )
        .await
        {
            Ok(Some((user, row))) => {
                // the request's log lines name the user (an id, never a token)
                tracing::Span::current().record("user_id", user.id.as_str());
                ctx.attached = converge_app::ssr::Attached(Some(std::sync::Arc::new(user.clone())));
                let signed_in = SignedIn {
                    user_id: user.id.clone(),
                    view: SessionView {
                        username: user.username,
                        display_name: user.display_name,
                        role: user.role.as_str().to_string(),
                    },
                    session_hash: row.id_hash,
                    created_at: row.created_at,
                    mfa_at: row.mfa_at,
                };
                if row.stage == "full" {
                    ctx.session = Some(signed_in);
                } else {
                    ctx.pending = Some(signed_in);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed (SYS-503)");
                return unavailable_page();
            }
        }
    }

    // gatekeeping for page loads
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        let signed_in = ctx.session.is_some();
        let protected = path == routes::HOME || routes::protected_page(&path).is_some();
        // the password is done, the second factor is not: only the second step is open
        if protected && !signed_in && ctx.pending.is_some() {
            return Redirect::to(routes::VERIFY).into_response();
        }
        if path == routes::VERIFY && !signed_in && ctx.pending.is_none() {
            return Redirect::to(routes::SIGNIN).into_response();
        }
        if protected && !signed_in {
            let (to, clear) = if token.is_some() {
                (format!("{}?notice=expired", routes::SIGNIN), true)
            } else {
                (routes::SIGNIN.to_string(), false)
            };
            let mut res = Redirect::to(&to).into_response();
            if clear {
                if let Ok(v) = HeaderValue::from_str(&clear_cookie(config)) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            return res;
        }
        if path == routes::SIGNIN && signed_in {
            return Redirect::to(routes::SECURITY_INFO).into_response();
        }
        // mandatory registration: while the policy is unmet and postponing is used up, every
        // signed-in page but the wizard's own (the wizard and the pages it adds methods with)
        // leads to the wizard
        let wizard_own = path == routes::SETUP || routes::ADD_PAGES.contains(&path.as_str());
        if signed_in && protected && !wizard_own {
            if let Some(user) = ctx.attached.get::<crate::domain::users::User>() {
                match state.security.methods(&user.id).await {
                    Ok(methods) => {
                        let now = state.clock.now();
                        if state.security.must_register_with(user, &methods, now) {
                            return Redirect::to(routes::SETUP).into_response();
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "registration check failed (SYS-503)");
                        return unavailable_page();
                    }
                }
            }
        }
    }
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

/// The database is unreachable: say so instead of pretending the session ended.
fn unavailable_page() -> Response {
    super::limits::error_page(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        converge_app::api::ErrorCode::Unavailable,
    )
}

fn session_cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The client's address: the peer's, unless the peer is one of `server.trusted_proxies`; then
/// the forwarding chain (`Forwarded` (RFC 7239) when present, else `X-Forwarded-For`) is read
/// right to left and the first address that is not a trusted proxy is the client. Headers from
/// untrusted peers are ignored entirely.
pub(crate) fn client_ip(req: &Request, trusted: &[crate::config::Cidr]) -> String {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let Some(peer) = peer else {
        return "unknown".into();
    };
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let headers = req.headers();
    let forwarded: Vec<&str> = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let chain: Vec<Option<std::net::IpAddr>> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| parse_node(v))
            })
            .collect()
    } else {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| parse_node(v.trim()))
            .collect()
    };
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip) => continue,
            Some(ip) => return canonical(*ip),
            // an obfuscated or garbled hop: what lies beyond it cannot be trusted
            None => break,
        }
    }
    canonical(peer)
}

/// `1.2.3.4`, `"[2001:db8::1]:4711"`, `1.2.3.4:80` → the address.
fn parse_node(v: &str) -> Option<std::net::IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    v.parse::<SocketAddr>().ok().map(|s| s.ip())
}

fn canonical(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(|v4| v4.to_string())
            .unwrap_or_else(|| v6.to_string()),
        v4 => v4.to_string(),
    }
}

pub(crate) fn session_cookie_value(config: &Configuration, token: &str) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        config.session_cookie_name(),
        config.policy.session.absolute_timeout_seconds,
        if config.https { "; Secure" } else { "" }
    )
}

/// Device cookies a browser keeps (one per account it signed in to, newest first).
const DEVICE_COOKIES_KEPT: usize = 5;

/// The device cookie after a sign-in to an account whose own device value is `mine`: it
/// first, then the browser's other accounts' values.
pub(crate) fn device_cookie_value(config: &Configuration, mine: &str, had: Option<&str>) -> String {
    let mut values = vec![mine.to_string()];
    for v in had.unwrap_or_default().split('~') {
        if !v.is_empty() && v != mine && values.len() < DEVICE_COOKIES_KEPT {
            values.push(v.to_string());
        }
    }
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000{}",
        config.device_cookie_name(),
        values.join("~"),
        if config.https { "; Secure" } else { "" }
    )
}

pub(crate) fn clear_cookie(config: &Configuration) -> String {
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        config.session_cookie_name(),
        if config.https { "; Secure" } else { "" }
    )
}
