//! HTTP glue: the axum router around the Leptos app, middleware (request id, logging, metrics,
//! security headers, CSRF, the caller context and page gatekeeping), health and metrics.

mod backend;
mod caller;
mod dev;
mod health;
mod helpdesk_port;
mod limits;
pub mod metrics;
mod reset_port;
mod security;
mod security_port;
mod voice;

use crate::clock::Clock;
use crate::config::Configuration;
use crate::directory::Directory;
use crate::domain::password::PasswordHasher;
use crate::store::Store;
use axum::routing::get;
use axum::Router;
use converge_app::{shell, App};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Everything a request handler may need.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Configuration>,
    pub store: Store,
    pub directory: Arc<dyn Directory>,
    /// The LDAP directory, when `[ldap]` is enabled (sync, check-config).
    pub ldap: Option<Arc<crate::directory::ldap::LdapDirectory>>,
    pub hasher: Arc<PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// The bearer token `/metrics` asks for; `None`: not served.
    pub metrics_token: Option<Arc<String>>,
    pub sealer: crate::crypto::Sealer,
    pub notifier: Arc<crate::notify::Notifier>,
    /// Wakes the local outbox worker when something was queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// The SMS/voice webhook key (provider `webhook`), also used to check voice callbacks.
    pub webhook_key: Option<Arc<Vec<u8>>>,
    /// Security info: registration, management, second factors.
    pub security: Arc<crate::domain::flows::security::Security>,
    /// Self-service password reset and unlock.
    pub reset: Arc<crate::domain::flows::reset::Reset>,
    /// The helpdesk console: caller verification and actions.
    pub helpdesk: Arc<crate::domain::flows::helpdesk::Helpdesk>,
    /// Sign-in for gateways (RADIUS): the same checks behind another door.
    pub gateway: Arc<crate::domain::flows::gateway::Gateway>,
    /// MFA as a service for the organisation's applications (the REST API).
    pub app_mfa: Arc<crate::domain::flows::app_mfa::AppMfa>,
    /// REST API tokens this instance recently found valid (they skip the guessing count).
    pub api_tokens_seen: Arc<crate::api::tokens::Seen>,
    /// How mail leaves this instance (the outbox worker's transport; `/readyz` probes it).
    pub email: Arc<dyn crate::notify::transport::EmailTransport>,
    /// `/readyz`'s last dependency checks.
    pub readiness: Arc<health::Readiness>,
}

impl AppState {
    /// The directory sync of this instance (`None` unless `[ldap]` is enabled).
    pub fn sync_service(&self) -> Option<crate::directory::ldap::sync::SyncService<'_>> {
        self.ldap
            .as_deref()
            .map(|ldap| crate::directory::ldap::sync::SyncService {
                store: &self.store,
                notifier: &self.notifier,
                ldap,
                default_country: self.config.default_country_code.as_deref(),
            })
    }
}

/// The path as logged: a token-bearing path becomes its route (`/reset/link/{token}`).
pub(crate) fn route_of(path: &str) -> String {
    use converge_app::routes::{REPORT, RESET_LINK};
    for prefix in [RESET_LINK, REPORT] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if rest.starts_with('/') && rest.len() > 1 {
                return format!("{prefix}/{{token}}");
            }
        }
    }
    // an application's MFA challenge id is a bearer secret for its token
    let challenges = format!("{}/mfa/challenges/", crate::api::PREFIX);
    if let Some(rest) = path.strip_prefix(&challenges) {
        let tail = if rest.ends_with("/verify") {
            "/verify"
        } else {
            ""
        };
        return format!("{challenges}{{id}}{tail}");
    }
    // nothing else carries secrets in the path today; cap what a client can make us log
    path.chars().take(100).collect()
}

/// The domain's view of the caller of a request.
pub(crate) fn client_of(
    ctx: &converge_app::ssr::RequestCtx,
) -> crate::domain::flows::session::Client {
    crate::domain::flows::session::Client {
        ip: ctx.client_ip.clone(),
        user_agent: ctx.user_agent.clone(),
        device: ctx.device_cookie.clone(),
    }
}

pub fn router(state: AppState) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name("converge")
        .site_root(state.config.site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(state.config.bind)
        .env(leptos::config::Env::PROD)
        .build();
    let routes = generate_route_list(App);
    let backend: Arc<dyn converge_app::ssr::Backend> =
        Arc::new(backend::PortalBackend::new(state.clone()));
    let context = move || provide_context(backend.clone());

    let mut ops = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route(
            crate::notify::VOICE_CALLBACK_PATH,
            axum::routing::post(voice::callback),
        );
    ops = ops.route(
        &format!("{}/{{token}}", converge_app::routes::RESET_LINK),
        get(reset_port::link_page).post(reset_port::link),
    );
    ops = ops.route(
        converge_app::routes::HELPDESK_EXPORT,
        get(helpdesk_port::export),
    );
    if state.config.sms.dev_page {
        tracing::warn!("sms.dev_page is on: /dev/messages shows every dev message, codes included");
        ops = ops.route("/dev/messages", get(dev::messages));
        ops = ops.route(dev::VOICE_ANSWER, axum::routing::post(dev::answer_call));
    }
    let ops = ops.with_state(state.clone());
    // `[api] enabled = false`: no /api/v1 at all (not even its document)
    let api = state
        .config
        .api
        .is_some()
        .then(|| crate::api::router(state.clone()));

    let app = Router::new()
        .leptos_routes_with_context(&leptos_options, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            LeptosOptions,
            _,
        >(context, shell))
        .with_state(leptos_options);

    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let app = match api {
        Some(api) => app.merge(ops).nest(crate::api::PREFIX, api),
        None => app.merge(ops),
    };
    app.layer(axum::middleware::from_fn_with_state(state.clone(), caller::establish))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::guard))
        .layer(axum::middleware::from_fn_with_state(state, metrics::track))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // the route, never the raw path or query: tokens live in some paths
                    // (`user_id` is filled in once the session is known: http::caller)
                    tracing::info_span!("request", method = %req.method(), route = route_of(req.uri().path()), request_id = %id, user_id = tracing::field::Empty)
                })
                // one line per request (status, latency) inside the request's span
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
