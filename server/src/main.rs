//! `converge`: the portal server and its administration commands. Thin: parse, build, run.
#![deny(clippy::unwrap_used)]

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use converge::clock::{Clock, SystemClock};
use converge::config::Settings;
use converge::directory::import::{import_users, ImportOptions};
use converge::domain::audit::{event, AuditEntry};
use converge::domain::error::DomainError;
use converge::domain::password::Password;
use converge::domain::users::{DisplayName, EmailAddress, Role, UserProfile, Username};
use converge::notify::messages::Notice;
use converge::startup::{build_state, Application};
use converge_app::api::ErrorCode;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

mod tokens_cli;

#[derive(Parser)]
#[command(
    name = "converge",
    version,
    about = "Converge: self-hosted MFA registration and password self-service portal"
)]
struct Cli {
    /// Configuration file (default: config/converge.toml when present). Environment variables
    /// CONVERGE__SECTION__KEY override it.
    #[arg(long, global = true, env = "CONVERGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Import or update users from a CSV file (see README for the columns).
    Import {
        csv: PathBuf,
        /// Import the valid lines even when others are invalid.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Manage local users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Validate the configuration, the email templates and the database connection.
    CheckConfig,
    /// What an operator checks first: version, database, instance key, outbox, last sync.
    Status,
    /// SQLite: write a consistent copy of the live database to FILE (safe while serving).
    Backup { file: std::path::PathBuf },
    /// SQLite: restore a backup into this configuration's (empty) data folder and check the
    /// instance key against it.
    Restore { file: std::path::PathBuf },
    /// Retention ([retention] in the config, docs/privacy.md).
    Retention {
        #[command(subcommand)]
        action: RetentionAction,
    },
    /// The instance key (`secret.key`).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Synchronise users from the LDAP / Active Directory directory ([ldap] in the config).
    Sync {
        /// Show what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// A full run even when an incremental one would do.
        #[arg(long)]
        full: bool,
        /// Approve a held run: disable the users it would have disabled.
        #[arg(long, value_name = "RUN")]
        approve: Option<String>,
        /// List the recent runs and exit.
        #[arg(long)]
        list: bool,
    },
    /// RADIUS: walk a real exchange against the running server.
    Radius {
        #[command(subcommand)]
        action: RadiusAction,
    },
    /// Service tokens of the REST API (/api/v1).
    ApiToken {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Hardware OATH tokens: import, list, assign, resynchronise, release.
    Tokens {
        #[command(subcommand)]
        action: tokens_cli::TokensAction,
    },
    /// Inspect and retry queued messages.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Measure enqueue latency and outbox delivery throughput to an SMTP server (scripts/bench).
    #[command(hide = true)]
    BenchOutbox {
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        /// SMTP URL of a sink to deliver to.
        #[arg(long)]
        smtp: String,
    },
    /// Measure raw argon2 verifications per second on all cores (used by scripts/bench).
    #[command(hide = true)]
    BenchArgon2 {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

#[derive(Subcommand)]
enum RetentionAction {
    /// Remove and pseudonymise now what [retention] no longer keeps (serving instances do it
    /// every retention.sweep_interval_minutes by themselves).
    Sweep,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Re-seal every sealed value under a new key (every instance stopped; run it again to
    /// finish an interrupted rotation).
    Rotate,
}

#[derive(Subcommand)]
enum RadiusAction {
    /// Sign USER in through the running RADIUS server as client NAME would (PAP, with
    /// Message-Authenticator): prompts for the password, then for each challenge's answer
    /// (read from standard input when it is not a terminal: one line each).
    Test {
        /// The `[[radius.clients]]` name whose secret to use.
        #[arg(long)]
        client: String,
        user: String,
        /// The server's address (default: radius.listen, 127.0.0.1 for a wildcard address).
        #[arg(long)]
        server: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; it is printed once (store it in the application's secret store).
    Create {
        name: String,
        /// Comma-separated: users:read, users:write, registration:write, audit:read,
        /// directory:write, outbox:write, mfa:verify.
        #[arg(long)]
        scopes: String,
        /// Lifetime: 90d, 12h, … (1 hour to 2 years).
        #[arg(long, default_value = "90d")]
        expires: String,
        /// Comma-separated addresses or ranges the token works from (default: anywhere).
        #[arg(long)]
        allowed_from: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// List messages, newest first (content is never shown).
    List {
        /// pending, sent or dead
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Put dead-lettered messages back in the queue: one id, or all with --all-dead.
    Retry {
        id: Option<String>,
        #[arg(long)]
        all_dead: bool,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a local user. The password is read from standard input (prompted on a terminal).
    Add {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, default_value = "user")]
        role: String,
        /// Create the user without a password.
        #[arg(long)]
        no_password: bool,
    },
    /// Disable a user (they can no longer sign in; their sessions end).
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Set a user's password (read from standard input).
    SetPassword { username: String },
    /// Set a user's role: user, helpdesk or admin.
    SetRole { username: String, role: String },
    /// Unlock a user locked by too many failed sign-ins.
    Unlock { username: String },
    /// Lift the block a fraud report put on a user (after you have spoken to them).
    Unblock { username: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Settings::load(cli.config.as_deref())?.validate()?;
    converge::telemetry::init(&config.log_filter, config.log_json);
    converge::faults::arm_from_env(config.dev_mode)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Command, config: converge::config::Configuration) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            let public = config.public_url.to_string();
            let app = Application::build(config, clock).await?;
            tracing::info!(port = app.port(), public_url = %public, "Converge is listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            build_state(config, clock).await?;
            println!("database is up to date");
        }
        Command::Status => {
            let database = converge::startup::redact_url(&config.database_url);
            let now = clock.now();
            // building the state checks the database and the instance key (an error says which)
            let state = build_state(config, clock).await?;
            let store = &state.store;
            let ago = |t: i64| format!("{} min ago", (now - t).max(0) / 60);
            println!("Converge {}", env!("CARGO_PKG_VERSION"));
            println!("database: {database} (reachable, schema up to date)");
            println!(
                "instance key: matches the database (fingerprint {})",
                state.sealer.fingerprint()
            );
            println!("users: {}", store.count_users().await?);
            let pending = store.count_outbox("pending").await?;
            let oldest = store
                .oldest_pending_outbox()
                .await?
                .map(|t| format!(", oldest queued {}", ago(t)))
                .unwrap_or_default();
            println!(
                "outbox: {pending} waiting{oldest}; {} dead letters (converge outbox list / retry)",
                store.count_outbox("dead").await?
            );
            match store.sync_runs(1).await?.into_iter().next() {
                Some(r) => println!(
                    "last sync: {} {} run {} ({}; {} seen, {} created, {} updated, {} disabled, {} errors)",
                    r.source,
                    r.kind,
                    r.status,
                    ago(r.started_at),
                    r.seen,
                    r.created,
                    r.updated,
                    r.disabled,
                    r.errors
                ),
                None => println!("last sync: never"),
            }
        }
        Command::Backup { file } => {
            let b = converge::backup::backup(&config, &file).await?;
            println!(
                "backup written: {} ({} bytes), sealed with the instance key whose fingerprint is {}.\n\
                 The key is not in the backup: keep {} (or CONVERGE_SECRET_KEY) safe, apart from it.",
                file.display(),
                b.bytes,
                b.fingerprint.as_deref().unwrap_or("(not recorded yet)"),
                config.secret_key_file.display()
            );
        }
        Command::Restore { file } => {
            use converge::backup::KeyCheck;
            match converge::backup::restore(&config, &file).await? {
                KeyCheck::Matches(fp) => println!(
                    "restored {} into {}; the instance key matches (fingerprint {fp}). \
                     Start the server with `converge serve`.",
                    file.display(),
                    converge::startup::redact_url(&config.database_url)
                ),
                KeyCheck::Missing { expected, at } => anyhow::bail!(
                    "restored {}, but there is no instance key at {at}: put the key file whose \
                     fingerprint is {} there (a new key would leave every sealed secret unreadable)",
                    file.display(),
                    expected.as_deref().unwrap_or("(not recorded)")
                ),
                KeyCheck::Different { expected, found } => anyhow::bail!(
                    "restored {}, but the instance key found (fingerprint {found}) is not the one \
                     it was sealed with (fingerprint {expected}): use that key file",
                    file.display()
                ),
            }
        }
        Command::Retention {
            action: RetentionAction::Sweep,
        } => {
            use converge::domain::flows::retention::{sweep, Outcome};
            let now = clock.now();
            let state = build_state(config, clock).await?;
            let policy = &state.config.policy.retention;
            match sweep(&state.store, &state.sealer, policy, "cli", false, now).await? {
                Outcome::Swept(swept) => {
                    println!("retention sweep finished:");
                    for (kind, n) in swept.counts() {
                        println!("  {kind:<20} {n}");
                    }
                }
                _ => anyhow::bail!(
                    "another instance is sweeping right now; try again in a few minutes"
                ),
            }
        }
        Command::Key {
            action: KeyAction::Rotate,
        } => {
            let r = converge::keys::rotate(&config, clock.now(), None).await?;
            println!(
                "instance key rotated: fingerprint {} -> {}; {} values sealed again ({} of them \
                 in an earlier run).",
                r.from,
                r.to,
                r.resealed + r.already,
                r.already
            );
            if !r.unreadable.is_empty() {
                println!(
                    "{} values open with neither key and were left as they are: {}",
                    r.unreadable.len(),
                    r.unreadable.join(", ")
                );
            }
            match &r.retired {
                Some(old) => println!(
                    "the new key is in {}; the old one is kept as {} — backups made before now \
                     need it, keep it as safe as the new one (apart from them).",
                    config.secret_key_file.display(),
                    old.display()
                ),
                None => println!(
                    "the key came from {} (or a systemd credential): install the new key from {} \
                     there before starting any instance, then delete that file. Keep the old key \
                     for backups made before now.",
                    converge::config::SECRET_KEY_ENV,
                    converge::keys::next_key_path(&config).display()
                ),
            }
        }
        Command::CheckConfig => {
            let summary = format!(
                "email templates: OK\npublic_url: {}\nbind: {}\ndatabase: {}\ndata_dir: {}\nsession: idle {} min, absolute {} h\nargon2id: m={} KiB, t={}, p={}",
                config.public_url,
                config.bind,
                converge::startup::redact_url(&config.database_url),
                config.data_dir.display(),
                config.policy.session.idle_timeout_seconds / 60,
                config.policy.session.absolute_timeout_seconds / 3600,
                config.policy.argon2.memory_kib,
                config.policy.argon2.iterations,
                config.policy.argon2.parallelism,
            );
            let state = build_state(config, clock).await?;
            state.store.ping().await?;
            let sealed = converge::keys::check(&state.store, &state.sealer).await?;
            println!(
                "{summary}\ninstance key: matches the database (fingerprint {}), opens {} sealed \
                 values\nusers: {}",
                state.sealer.fingerprint(),
                sealed.opened,
                state.store.count_users().await?
            );
            if sealed.unreadable_count > 0 {
                anyhow::bail!(
                    "{} sealed values do not open with the instance key (corrupt, or sealed by \
                     another key): {}",
                    sealed.unreadable_count,
                    sealed.unreadable.join(", ")
                );
            }
            if let Some(service) = state.sync_service() {
                for line in service.check().await? {
                    println!("{line}");
                }
            }
            if let Some(r) = &state.config.radius {
                println!(
                    "radius: listening on {} (UDP), {} client(s), challenge {} s, hold {} s",
                    r.listen,
                    r.clients.len(),
                    r.policy.challenge_seconds,
                    r.policy.hold_seconds
                );
                for c in &r.clients {
                    println!(
                        "  client {}: {}, mode {:?}, groups {}, Message-Authenticator {}{}",
                        c.policy.name,
                        c.address,
                        c.policy.mode,
                        if c.policy.groups.is_empty() {
                            "(everyone)".to_string()
                        } else {
                            c.policy.groups.join(", ")
                        },
                        if c.require_message_authenticator {
                            "required"
                        } else {
                            "NOT required (BlastRADIUS: upgrade the gateway)"
                        },
                        if c.policy.allow_unregistered {
                            ", users without security info pass on their password"
                        } else {
                            ""
                        }
                    );
                }
            }
            println!("configuration OK");
        }
        Command::Import { csv, skip_invalid } => {
            let cc = config.default_country_code.clone();
            let state = build_state(config, clock.clone()).await?;
            let file =
                std::fs::File::open(&csv).with_context(|| format!("opening {}", csv.display()))?;
            let progress: Box<dyn Fn(u64, u64) + Send + Sync> =
                Box::new(|done, total| eprintln!("  wrote {done}/{total} users"));
            let options = ImportOptions {
                skip_invalid,
                default_country_code: cc,
                progress: Some(progress),
            };
            let report = import_users(
                &state.store,
                &state.hasher,
                std::io::BufReader::new(file),
                &options,
                "cli",
                clock.now(),
            )
            .await?;
            for e in &report.errors {
                eprintln!("{}:{}: {}", csv.display(), e.line, e.reason);
            }
            if report.aborted {
                bail!(
                    "{} invalid line(s); nothing was imported (fix them, or use --skip-invalid)",
                    report.errors.len()
                );
            }
            println!(
                "imported {}: {} created, {} updated, {} unchanged, {} skipped",
                csv.display(),
                report.created,
                report.updated,
                report.unchanged,
                report.skipped
            );
        }
        Command::User { action } => user_command(action, config, clock).await?,
        Command::Sync {
            dry_run,
            full,
            approve,
            list,
        } => sync_command(config, clock, (dry_run, full, approve, list)).await?,
        Command::Radius {
            action:
                RadiusAction::Test {
                    client,
                    user,
                    server,
                },
        } => radius_test(&config, &client, &user, server).await?,
        Command::ApiToken { action } => token_command(action, config, clock).await?,
        Command::Tokens { action } => tokens_cli::run(action, config, clock).await?,
        Command::Outbox { action } => {
            let state = build_state(config, clock.clone()).await?;
            match action {
                OutboxAction::List { status, limit } => {
                    let rows = state.store.list_outbox(status.as_deref(), limit).await?;
                    println!(
                        "{:<36}  {:<7}  {:<22}  {:<24}  {:>8}  {:<19}  last error",
                        "id", "status", "message", "to", "attempts", "created (UTC)"
                    );
                    for r in rows {
                        let to = converge::notify::mask_recipient(&r.channel, &r.recipient);
                        println!(
                            "{:<36}  {:<7}  {:<22}  {:<24}  {:>8}  {:<19}  {}",
                            r.id,
                            r.status,
                            r.message,
                            to,
                            r.attempts,
                            converge::domain::format_time(r.created_at),
                            r.last_error.unwrap_or_default()
                        );
                    }
                }
                OutboxAction::Retry { id, all_dead } => {
                    if id.is_none() && !all_dead {
                        bail!("give a message id, or --all-dead");
                    }
                    let n = state.store.retry_dead(id.as_deref(), clock.now()).await?;
                    println!("{n} message(s) queued again");
                }
            }
        }
        Command::BenchOutbox { messages, smtp } => {
            bench_outbox(config, clock, messages, smtp).await?
        }
        Command::BenchArgon2 { seconds } => {
            let hasher = converge::domain::password::PasswordHasher::new(&config.policy.argon2)?;
            let rate = tokio::task::spawn_blocking(move || hasher.bench_raw(seconds)).await?;
            println!("{rate:.1}");
        }
    }
    Ok(())
}

async fn sync_command(
    config: converge::config::Configuration,
    clock: Arc<dyn Clock>,
    (dry_run, full, approve, list): (bool, bool, Option<String>, bool),
) -> anyhow::Result<()> {
    let state = build_state(config, clock.clone()).await?;
    if list {
        println!(
            "{:<36}  {:<19}  {:<11}  {:<8}  {:>7} {:>7} {:>7} {:>8} {:>6}",
            "run",
            "started (UTC)",
            "kind",
            "status",
            "seen",
            "created",
            "updated",
            "disabled",
            "errors"
        );
        for r in state.store.sync_runs(30).await? {
            println!(
                "{:<36}  {:<19}  {:<11}  {:<8}  {:>7} {:>7} {:>7} {:>8} {:>6}",
                r.id,
                converge::domain::format_time(r.started_at),
                if r.dry_run {
                    format!("{} (dry)", r.kind)
                } else {
                    r.kind
                },
                r.status,
                r.seen,
                r.created,
                r.updated,
                r.disabled,
                r.errors
            );
        }
        return Ok(());
    }
    let service = state
        .sync_service()
        .context("no directory to sync: set [ldap] enabled = true (see README, Directory)")?;
    if let Some(run) = approve {
        let run = service.approve(&run, "cli", clock.now()).await?;
        println!("approved run {}: {} user(s) disabled", run.id, run.disabled);
        return Ok(());
    }
    let progress: converge::directory::ldap::sync::Progress =
        Box::new(|what, n| eprintln!("  {what} {n} users"));
    let options = converge::directory::ldap::sync::SyncOptions {
        dry_run,
        full,
        actor: "cli".into(),
        progress: Some(progress),
    };
    let started = std::time::Instant::now();
    let run = service.run(&options, clock.now()).await?;
    for line in &run.report {
        println!("  {line}");
    }
    println!(
        "{}{} sync of {} {}: {} seen, {} created, {} updated, {} unchanged, {} disabled, {} errors ({:.1} s)",
        if run.dry_run { "dry run: " } else { "" },
        run.kind,
        run.source,
        run.status,
        run.seen,
        run.created,
        run.updated,
        run.unchanged,
        run.disabled,
        run.errors,
        started.elapsed().as_secs_f64()
    );
    if run.status == "held" {
        println!(
            "HELD: {} user(s) would be disabled, more than ldap.disable_threshold; none were.\n\
             Check them, then approve: converge sync --approve {}",
            run.held_disables.len(),
            run.id
        );
    }
    Ok(())
}

/// The user an operator named on the command line.
async fn find_user(
    store: &converge::store::Store,
    name: &str,
) -> anyhow::Result<converge::domain::users::User> {
    let username = Username::parse(name).map_err(anyhow::Error::msg)?;
    store
        .find_user_by_username(username.as_str())
        .await?
        .with_context(|| format!("no user `{username}`"))
}

async fn user_command(
    action: UserAction,
    config: converge::config::Configuration,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let state = build_state(config, clock.clone()).await?;
    let store = &state.store;
    let now = clock.now();
    let operator = converge::domain::flows::helpdesk::Agent::operator();
    let find = |name: String| async move { find_user(store, &name).await };
    let audit = |ev: &str, user_id: &str, username: &str| {
        let mut e = AuditEntry::new(ev, true, now);
        e.user_id = Some(user_id.to_string());
        e.username = Some(username.to_string());
        e.actor = Some("cli".into());
        e
    };
    match action {
        UserAction::Add {
            username,
            display_name,
            email,
            role,
            no_password,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let profile = UserProfile {
                display_name: DisplayName::parse(
                    display_name.as_deref().unwrap_or(username.as_str()),
                )
                .map_err(anyhow::Error::msg)?,
                email: email
                    .as_deref()
                    .map(EmailAddress::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                mobile_phone: None,
                alternate_phone: None,
                office_phone: None,
                groups: vec![],
                enabled: true,
                role: Role::parse(&role).map_err(anyhow::Error::msg)?,
                username,
            };
            let password = if no_password {
                None
            } else {
                Some(read_password()?)
            };
            match state
                .helpdesk
                .create_user(&operator, &profile, password, now)
                .await
            {
                Err(DomainError::Refused(ErrorCode::NameInvalid)) => {
                    bail!("user `{}` already exists", profile.username)
                }
                other => other?,
            };
            println!("created user {}", profile.username);
        }
        UserAction::Disable { username } => {
            let user = find(username).await?;
            let ended = state
                .helpdesk
                .set_enabled(&operator, &user, false, now)
                .await?;
            println!("disabled {} ({ended} session(s) ended)", user.username);
        }
        UserAction::Enable { username } => {
            let user = find(username).await?;
            state
                .helpdesk
                .set_enabled(&operator, &user, true, now)
                .await?;
            println!("enabled {}", user.username);
        }
        UserAction::SetPassword { username } => {
            let user = find(username).await?;
            let password = read_password()?;
            state.directory.set_password(&user, &password, now).await?;
            let ended = store.delete_user_sessions(&user.id).await?;
            let mut tx = store.begin().await?;
            converge::store::audit::append_audit_in(
                &mut tx,
                &audit(event::PASSWORD_SET, &user.id, &user.username),
            )
            .await?;
            let notice = Notice::PasswordChanged {
                changed_at: converge::domain::format_time(now),
            };
            let queued = state
                .notifier
                .email_user_in(&mut tx, &user, &notice, now)
                .await?;
            tx.commit().await?;
            println!(
                "password set for {} ({ended} session(s) ended{})",
                user.username,
                if queued.is_some() {
                    ", notification queued"
                } else {
                    ", no email address on file"
                }
            );
        }
        UserAction::SetRole { username, role } => {
            let user = find(username).await?;
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            state.helpdesk.set_role(&operator, &user, role, now).await?;
            println!("{} is now {}", user.username, role.as_str());
        }
        UserAction::Unblock { username } => {
            let user = find(username).await?;
            if !user.is_blocked(now) {
                bail!("{} is not blocked", user.username);
            }
            store.unblock_user(&user.id, now).await?;
            store
                .append_audit(&audit(event::ACCOUNT_UNBLOCKED, &user.id, &user.username))
                .await?;
            println!("unblocked {}", user.username);
        }
        UserAction::Unlock { username } => {
            let user = find(username).await?;
            store.set_locked(&user.id, None, now).await?;
            store
                .clear_throttle(
                    converge::domain::flows::signin::SCOPE_ACCOUNT,
                    &user.username,
                )
                .await?;
            store
                .append_audit(&audit(event::ACCOUNT_UNLOCKED, &user.id, &user.username))
                .await?;
            println!("unlocked {}", user.username);
        }
    }
    Ok(())
}

async fn token_command(
    action: TokenAction,
    config: converge::config::Configuration,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    use converge::api::tokens;
    let state = build_state(config, clock.clone()).await?;
    let now = clock.now();
    match action {
        TokenAction::Create {
            name,
            scopes,
            expires,
            allowed_from,
        } => {
            let scopes = scopes
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    converge::api::Scope::parse(s)
                        .with_context(|| format!("unknown scope `{}`", s.trim()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let lifetime = tokens::parse_lifetime(&expires)
                .with_context(|| format!("--expires `{expires}`: use 90d, 12h, 30m"))?;
            let allowed = allowed_from
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    converge::config::Cidr::parse(s).with_context(|| {
                        format!("--allowed-from: `{}` is not an address or range", s.trim())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (row, token) = tokens::create(
                &state.store,
                &tokens::NewToken {
                    name: &name,
                    scopes: &scopes,
                    lifetime_seconds: lifetime,
                    allowed_from: &allowed,
                },
                now,
            )
            .await
            .map_err(anyhow::Error::msg)?;
            eprintln!(
                "created token `{}` ({}), valid until {} UTC; it is shown only now:",
                row.name,
                row.scopes,
                converge::domain::format_time(row.expires_at)
            );
            println!("{token}");
        }
        TokenAction::List => {
            println!(
                "{:<24}  {:<40}  {:<19}  {:<19}  {:<8}  from",
                "name", "scopes", "expires (UTC)", "last used (UTC)", "state"
            );
            for t in state.store.tokens().await? {
                let state = if t.revoked_at != 0 {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else {
                    "valid"
                };
                println!(
                    "{:<24}  {:<40}  {:<19}  {:<19}  {:<8}  {}",
                    t.name,
                    t.scopes,
                    converge::domain::format_time(t.expires_at),
                    if t.last_used_at == 0 {
                        "never".to_string()
                    } else {
                        converge::domain::format_time(t.last_used_at)
                    },
                    state,
                    if t.allowed_from.is_empty() {
                        "anywhere"
                    } else {
                        &t.allowed_from
                    }
                );
            }
        }
        TokenAction::Revoke { name } => {
            if !tokens::revoke(&state.store, &name, now).await? {
                bail!("no valid token named `{name}`");
            }
            println!("revoked `{name}`");
        }
    }
    Ok(())
}

async fn bench_outbox(
    mut config: converge::config::Configuration,
    clock: Arc<dyn Clock>,
    messages: usize,
    smtp: String,
) -> anyhow::Result<()> {
    config.email.smtp_url = smtp;
    let state = build_state(config, clock.clone()).await?;
    let profile = UserProfile {
        username: Username::parse("bench-mail").map_err(anyhow::Error::msg)?,
        display_name: DisplayName::parse("Bench Mail").map_err(anyhow::Error::msg)?,
        email: Some(EmailAddress::parse("bench-mail@example.org").map_err(anyhow::Error::msg)?),
        mobile_phone: None,
        alternate_phone: None,
        office_phone: None,
        groups: vec![],
        enabled: true,
        role: Role::User,
    };
    let (id, _) = state
        .store
        .upsert_user(&profile, None, "local", clock.now())
        .await?;
    let user = state.store.find_user(&id).await?.context("bench user")?;
    let notice = Notice::PasswordChanged {
        changed_at: converge::domain::format_time(clock.now()),
    };
    let mut latencies = Vec::with_capacity(messages);
    for _ in 0..messages {
        let start = std::time::Instant::now();
        state
            .notifier
            .email_user(&user, &notice, clock.now())
            .await?;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let worker = converge::startup::outbox_worker(&state)?;
    let start = std::time::Instant::now();
    let mut delivered = 0;
    loop {
        let n = worker.run_once().await?;
        if n == 0 {
            break;
        }
        delivered += n;
    }
    let secs = start.elapsed().as_secs_f64();
    let sent = state.store.count_outbox("sent").await?;
    println!(
        "enqueue_p50_ms={:.3} enqueue_p99_ms={:.3} attempted={delivered} sent={sent} seconds={secs:.2} per_second={:.0}",
        pct(0.50),
        pct(0.99),
        sent as f64 / secs
    );
    Ok(())
}

/// Reads a password: prompted twice on a terminal, one line from a pipe otherwise.
fn read_password() -> anyhow::Result<Password> {
    let text = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Password::parse(text).map_err(|e| anyhow::anyhow!("password refused: {e}"))
}

/// `converge radius test`: a real exchange, as a gateway would run it.
async fn radius_test(
    config: &converge::config::Configuration,
    client: &str,
    user: &str,
    server: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    use converge::radius::packet;
    let Some(r) = &config.radius else {
        bail!("[radius] is not enabled in this configuration");
    };
    let Some(c) = r.client_named(client) else {
        bail!("no [[radius.clients]] named `{client}`");
    };
    let mut to = server.unwrap_or(r.listen);
    if to.ip().is_unspecified() {
        to.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut rc = converge::radius::client::RadiusClient::connect(to, &c.secret).await?;
    let terminal = std::io::stdin().is_terminal();
    let ask = |prompt: &str| -> anyhow::Result<String> {
        if terminal {
            Ok(rpassword::prompt_password(prompt)?)
        } else {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_string())
        }
    };
    let mut answer = ask("Password: ")?;
    let mut state: Option<Vec<u8>> = None;
    let timeout = std::time::Duration::from_secs(r.policy.hold_seconds as u64 + 5);
    loop {
        let reply = rc
            .access_request(user, &answer, state.as_deref(), timeout, 1)
            .await?;
        let message = reply.message.clone().unwrap_or_default();
        match reply.code {
            packet::ACCESS_CHALLENGE => {
                println!("Access-Challenge: {message}");
                state = reply.state.clone();
                answer = ask("Answer: ")?;
            }
            packet::ACCESS_ACCEPT => {
                println!("Access-Accept");
                for (k, v) in &reply.attrs {
                    match *k {
                        packet::attr::CLASS => println!("  Class = {}", String::from_utf8_lossy(v)),
                        packet::attr::FILTER_ID => {
                            println!("  Filter-Id = {}", String::from_utf8_lossy(v))
                        }
                        packet::attr::SESSION_TIMEOUT if v.len() == 4 => println!(
                            "  Session-Timeout = {}",
                            u32::from_be_bytes([v[0], v[1], v[2], v[3]])
                        ),
                        _ => {}
                    }
                }
                return Ok(());
            }
            _ => {
                println!("Access-Reject: {message}");
                std::process::exit(1);
            }
        }
    }
}
