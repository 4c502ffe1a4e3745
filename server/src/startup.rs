//! Building and running the server: `Application::build(config, clock)` connects the database,
//! migrates, binds the listener (port 0 allowed) and is ready to `run_until_stopped`.

use crate::clock::Clock;
use crate::config::{create_secret_key, read_secret_key, Configuration};
use crate::crypto::Sealer;
use crate::directory::{Directories, LocalDirectory};
use crate::domain::password::PasswordHasher;
use crate::http::{self, AppState};
use crate::notify::templates::Templates;
use crate::notify::transport::{
    DevMailbox, DevSms, EmailGatewaySms, EmailTransport, SmsProvider, SmtpTransport, SwitchedOff,
    WebhookSms,
};
use crate::notify::worker::Worker;
use crate::notify::Notifier;
use crate::store::instance::{KEY_FINGERPRINT, KEY_ROTATION_TO};
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    worker: Worker,
    /// The RADIUS listener, when `[radius] enabled = true`.
    radius: Option<crate::radius::server::RadiusServer>,
}

/// The services the server is made of, without HTTP (also used by the CLI).
pub async fn build_state(config: Configuration, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let overrides = Some(config.email.templates_dir.as_str())
        .filter(|d| !d.is_empty())
        .map(std::path::Path::new);
    let templates = Arc::new(
        Templates::load(
            overrides,
            &config.organisation_name,
            &config.email.logo_url,
            config.public_url.as_str(),
        )
        .context("checking the email templates")?,
    );
    let store = Store::connect(&config.database_url, config.database_max_connections)
        .await
        .with_context(|| {
            format!(
                "connecting to the database ({})",
                redact_url(&config.database_url)
            )
        })?;
    store.migrate().await.context("migrating the database")?;
    let sealer = instance_key(&config, &store, clock.now()).await?;
    let hasher = Arc::new(PasswordHasher::new(&config.policy.argon2).context("argon2 parameters")?);
    let ldap = match &config.ldap {
        Some(l) => Some(Arc::new(
            crate::directory::ldap::LdapDirectory::new(l.clone()).context("[ldap]")?,
        )),
        None => None,
    };
    let directory = Arc::new(Directories {
        local: LocalDirectory::new(store.clone(), hasher.clone()),
        ldap: ldap.clone(),
        clock: clock.clone(),
    });
    let outbox_wake = Arc::new(Notify::new());
    let webhook_key = if config.sms.provider == "webhook" {
        let key = std::fs::read(&config.sms.webhook_secret_file).with_context(|| {
            format!("sms.webhook_secret_file {}", config.sms.webhook_secret_file)
        })?;
        anyhow::ensure!(
            key.len() >= 16,
            "sms.webhook_secret_file: the key must be at least 16 bytes"
        );
        Some(Arc::new(key))
    } else {
        None
    };
    let notifier = Arc::new(Notifier::new(
        store.clone(),
        sealer.clone(),
        templates,
        &config,
        outbox_wake.clone(),
    ));
    let webauthn = Arc::new(webauthn(&config)?);
    let security = Arc::new(crate::domain::flows::security::Security {
        store: store.clone(),
        notifier: notifier.clone(),
        sealer: sealer.clone(),
        hasher: hasher.clone(),
        policy: config.policy.registration.clone(),
        signin: config.policy.signin.clone(),
        webauthn,
        default_country: config.default_country_code.clone(),
        org_name: config.organisation_name.clone(),
    });
    let rules = crate::domain::password_rules::PasswordRules::load(
        config.policy.reset.extra_blocklist_file.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let reset = Arc::new(crate::domain::flows::reset::Reset {
        security: security.clone(),
        directory: directory.clone(),
        rules: Arc::new(rules),
        policy: config.policy.reset.clone(),
    });
    let helpdesk = Arc::new(crate::domain::flows::helpdesk::Helpdesk {
        security: security.clone(),
        reset: reset.clone(),
        directory: directory.clone(),
        policy: config.policy.helpdesk.clone(),
    });
    let gateway = Arc::new(crate::domain::flows::gateway::Gateway {
        security: security.clone(),
        directory: directory.clone(),
        session: config.policy.session.clone(),
        policy: config.radius.as_ref().map(|r| r.policy.clone()).unwrap_or(
            crate::domain::policy::GatewayPolicy {
                challenge_seconds: 300,
                hold_seconds: 25,
            },
        ),
        clock: clock.clone(),
    });
    let app_mfa = Arc::new(crate::domain::flows::app_mfa::AppMfa {
        security: security.clone(),
        // `[api]` off: the router is not mounted; the flow keeps the defaults
        policy: config
            .api
            .clone()
            .unwrap_or_else(crate::api::config::default_policy),
        clock: clock.clone(),
    });
    let metrics_token = match &config.metrics_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path)
                .with_context(|| format!("security.metrics_token_file {}", path.display()))?
                .trim()
                .to_string();
            anyhow::ensure!(
                token.len() >= 32,
                "security.metrics_token_file: the token must be at least 32 characters"
            );
            Some(Arc::new(token))
        }
        None => None,
    };
    let email = email_transport(&config, &store, &clock)?;
    Ok(AppState {
        email,
        readiness: Default::default(),
        metrics_token,
        gateway,
        app_mfa,
        api_tokens_seen: Default::default(),
        config: Arc::new(config),
        store,
        directory,
        hasher,
        clock,
        metrics: Arc::default(),
        sealer,
        notifier,
        outbox_wake,
        webhook_key,
        security,
        reset,
        helpdesk,
        ldap,
    })
}

/// The WebAuthn relying party: id and origin from `public_url` only.
fn webauthn(config: &Configuration) -> anyhow::Result<webauthn_rs::Webauthn> {
    let rp_id = config
        .public_url
        .host_str()
        .ok_or_else(|| anyhow::anyhow!("public_url has no host"))?;
    let origin = url::Url::parse(&config.public_origin)?;
    webauthn_rs::WebauthnBuilder::new(rp_id, &origin)
        .map_err(|e| anyhow::anyhow!("WebAuthn relying party from public_url: {e}"))?
        .rp_name(&config.organisation_name)
        .build()
        .map_err(|e| anyhow::anyhow!("WebAuthn relying party from public_url: {e}"))
}

/// The mail transport the configuration names: SMTP; the dev mailbox only in `dev_mode`.
fn email_transport(
    c: &Configuration,
    store: &Store,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn EmailTransport>> {
    Ok(if !c.email.enabled {
        Arc::new(SwitchedOff("email.enabled = false"))
    } else if c.email.smtp_url.is_empty() {
        anyhow::ensure!(c.dev_mode, "email.smtp_url: required outside dev_mode");
        tracing::warn!("dev_mode: mail goes to the dev mailbox, not to people");
        Arc::new(DevMailbox {
            store: store.clone(),
            clock: clock.clone(),
        })
    } else {
        Arc::new(SmtpTransport::new(
            &c.email.smtp_url,
            Some(c.email.smtp_password_file.as_str()),
            &c.email.from,
            c.outbox.concurrency,
        )?)
    })
}

/// The outbox worker for this instance, with the transports the configuration names.
pub fn outbox_worker(state: &AppState) -> anyhow::Result<Worker> {
    let c = &state.config;
    let email = state.email.clone();
    let sms: Arc<dyn SmsProvider> = match c.sms.provider.as_str() {
        "webhook" => {
            let key = state.webhook_key.as_deref().cloned().unwrap_or_default();
            Arc::new(WebhookSms::new(
                &c.sms.webhook_url,
                key,
                c.sms.timeout_seconds,
                state.clock.clone(),
            )?)
        }
        "email_gateway" => Arc::new(EmailGatewaySms {
            email: email.clone(),
            pattern: c.sms.email_gateway_pattern.clone(),
        }),
        "dev" if c.dev_mode => Arc::new(DevSms {
            store: state.store.clone(),
            clock: state.clock.clone(),
        }),
        _ => Arc::new(SwitchedOff("sms.provider = \"none\"")),
    };
    Ok(Worker {
        id: instance_id(),
        store: state.store.clone(),
        sealer: state.sealer.clone(),
        email,
        sms,
        clock: state.clock.clone(),
        settings: c.outbox.clone(),
        wake: state.outbox_wake.clone(),
    })
}

/// Names this process in leases and claims: host (or pid) and a random suffix.
fn instance_id() -> String {
    format!(
        "{}-{}",
        hostname_or_pid(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn hostname_or_pid() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("pid{}", std::process::id()))
}

impl Application {
    pub async fn build(
        config: Configuration,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Application> {
        let bind = config.bind;
        let state = build_state(config, clock).await?;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding {bind}"))?;
        let router = http::router(state.clone());
        let worker = outbox_worker(&state)?;
        let radius = match &state.config.radius {
            Some(r) => {
                let server = crate::radius::server::RadiusServer::bind(
                    r.clone(),
                    state.gateway.clone(),
                    state.metrics.clone(),
                    state.notifier.link(converge_app::routes::SECURITY_INFO),
                )
                .await
                .with_context(|| format!("binding radius.listen {}", r.listen))?;
                tracing::info!(
                    listen = %server.local_addr()?, clients = r.clients.len(),
                    "RADIUS server listening"
                );
                Some(server)
            }
            None => None,
        };
        Ok(Application {
            listener,
            router,
            state,
            worker,
            radius,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The RADIUS listener's port (None unless `[radius]` is enabled).
    pub fn radius_port(&self) -> Option<u16> {
        self.radius
            .as_ref()
            .and_then(|r| r.local_addr().ok())
            .map(|a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let sweeper = tokio::spawn(sweep_sessions(self.state.clone()));
        let retention = tokio::spawn(retention_sweeps(self.state.clone()));
        let writebacks = tokio::spawn(settle_writebacks(self.state.clone()));
        let worker = tokio::spawn(self.worker.run());
        let sync = tokio::spawn(scheduled_sync(self.state.clone()));
        let radius = self.radius.map(|r| tokio::spawn(r.run()));
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        sweeper.abort();
        retention.abort();
        writebacks.abort();
        worker.abort();
        sync.abort();
        if let Some(r) = radius {
            r.abort();
        }
        store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Deletes expired sessions every few minutes.
async fn sweep_sessions(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tick.tick().await;
        let idle = state.config.policy.session.idle_timeout_seconds;
        match state
            .store
            .delete_stale_sessions(state.clock.now(), idle)
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
        // expired setups, codes and ceremonies
        if let Err(e) = state.store.sweep_security(state.clock.now()).await {
            tracing::warn!(error = %e, "security sweep failed");
        }
        if let Err(e) = state.store.sweep_reset_flows(state.clock.now()).await {
            tracing::warn!(error = %e, "reset flow sweep failed");
        }
    }
}

/// Settles password writes to the directory that a stopped instance left unfinished (at
/// start-up and every ten seconds; an empty, indexed query when there are none).
async fn settle_writebacks(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.reset.recover_writebacks(state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(settled = n, "interrupted password writes settled"),
            Err(e) => {
                tracing::warn!(error = %e, "settling interrupted password writes failed; tried again later")
            }
        }
    }
}

/// Runs the retention sweep when it is due (checked every five minutes; one instance of
/// several sweeps, by the lease in the database).
async fn retention_sweeps(state: AppState) {
    use crate::domain::flows::retention::{sweep, Outcome};
    let holder = instance_id();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.clock.now();
        let policy = &state.config.policy.retention;
        match sweep(&state.store, &state.sealer, policy, &holder, true, now).await {
            Ok(Outcome::Swept(swept)) => {
                state.metrics.swept(&swept, now);
                tracing::info!(?swept, "retention sweep finished");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; tried again later"),
        }
    }
}

/// Runs the directory sync every `ldap.sync_interval_minutes` (the first run at start-up). With
/// several instances, the run lease in the database lets one of them run at a time.
async fn scheduled_sync(state: AppState) {
    let Some(every) = state.config.ldap.as_ref().and_then(|l| l.sync_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(service) = state.sync_service() else {
            return;
        };
        let options = crate::directory::ldap::sync::SyncOptions {
            dry_run: false,
            full: false,
            actor: "schedule".into(),
            progress: None,
        };
        match service.run(&options, state.clock.now()).await {
            Ok(run) => tracing::info!(
                run = %run.id, kind = %run.kind, status = %run.status, created = run.created,
                updated = run.updated, disabled = run.disabled, errors = run.errors,
                "directory sync finished"
            ),
            Err(e) => tracing::warn!(error = %e, "directory sync did not run"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}

/// Hides a password in a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The instance key, checked against the fingerprint the database keeps of the key that sealed
/// its data. A new key is made only for a database that holds nothing keyed yet; a missing or
/// different key for one that does is a start-up error that says which and how to fix it.
async fn instance_key(config: &Configuration, store: &Store, now: i64) -> anyhow::Result<Sealer> {
    let path = &config.secret_key_file;
    let stored = store.instance_meta(KEY_FINGERPRINT).await?;
    let (key, source) = read_secret_key(path)?;
    let key = match (key, &stored) {
        (Some(key), _) => key,
        (None, Some(expected)) => anyhow::bail!(
            "no instance key at {source}, but this database holds data sealed with the key \
             whose fingerprint is {expected}. Restore that key file (kept apart from the database \
             backups), point security.secret_key_file at it, or set {env}. A new key is never \
             made for a database that already holds sealed data.",
            env = crate::config::SECRET_KEY_ENV
        ),
        (None, None) if store.holds_keyed_data().await? => anyhow::bail!(
            "no instance key at {source}, but this database already holds sealed data (secrets, \
             codes, queued messages). Restore the key file that belongs to it, point \
             security.secret_key_file at it, or set {env}.",
            env = crate::config::SECRET_KEY_ENV
        ),
        (None, None) => create_secret_key(path)?,
    };
    let sealer = Sealer::new(&key);
    let mine = sealer.fingerprint();
    let expected = match stored {
        Some(fp) => fp,
        // the first start on this database (or the first since fingerprints were kept): this
        // key is the one; of instances starting together the first to record its key wins
        None => {
            store
                .instance_meta_first(KEY_FINGERPRINT, &mine, now)
                .await?
        }
    };
    anyhow::ensure!(
        expected == mine,
        "the instance key from {source} (fingerprint {mine}) is not the key this database was \
         sealed with (fingerprint {expected}). Starting with it would make every authenticator \
         secret, queued message and code check fail. Use the key file that belongs to this \
         database (every instance on one database needs the same key), or restore the database \
         that belongs to this key. If `converge key rotate` was interrupted, run it again: it \
         finishes the rotation."
    );
    if let Some(to) = store.instance_meta(KEY_ROTATION_TO).await? {
        anyhow::bail!(
            "a key rotation (to the key with fingerprint {to}) is unfinished: run `converge key \
             rotate` again to finish it; no instance serves until then"
        );
    }
    let sealer = crate::keys::with_stored_hash_key(store, &key, sealer).await?;
    tracing::info!(fingerprint = %mine, "instance key matches the database");
    Ok(sealer)
}
