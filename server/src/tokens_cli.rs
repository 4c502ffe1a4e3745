//! `converge tokens …`: the hardware token inventory at the command line (the operator acts as
//! an administrator; every change audited as `cli`).

use anyhow::{bail, Context};
use clap::Subcommand;
use converge::clock::Clock;
use converge::domain::error::DomainError;
use converge::domain::flows::helpdesk::Agent;
use converge::startup::build_state;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum TokensAction {
    /// Import tokens from Entra's CSV (upn,serial number,secret key,time interval,manufacturer,
    /// model) or a PSKC file (RFC 6030). Nothing is imported when any line is bad.
    Import {
        file: PathBuf,
        /// Import the good lines even when others are bad (or already known).
        #[arg(long)]
        skip_invalid: bool,
        /// PSKC: the pre-shared AES-128 key (32 hex digits) the key packages are encrypted
        /// with; also read from CONVERGE_PSKC_KEY.
        #[arg(long, env = "CONVERGE_PSKC_KEY", hide_env_values = true)]
        psk: Option<String>,
    },
    /// The inventory: serial, type, state and holder (never a secret).
    List,
    /// Give an unassigned token to USER (a new method; the user is mailed).
    Assign { serial: String, user: String },
    /// Resynchronise USER's HOTP token from two consecutive codes it shows.
    Resync {
        serial: String,
        user: String,
        first: String,
        second: String,
    },
    /// Take a token back: removes it from its holder if it has one; `--reuse` makes it
    /// assignable again, otherwise it stays retired.
    Release {
        serial: String,
        #[arg(long)]
        reuse: bool,
    },
}

/// A refusal as the user-facing sentence with its code.
fn explain(e: DomainError) -> anyhow::Error {
    match e {
        DomainError::Refused(code) => anyhow::anyhow!(
            "{} ({})",
            converge_app::text::en().for_error(code),
            code.code()
        ),
        other => other.into(),
    }
}

pub async fn run(
    action: TokensAction,
    config: converge::config::Configuration,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let state = build_state(config, clock.clone()).await?;
    let now = clock.now();
    let operator = Agent::operator();
    let hd = &state.helpdesk;
    let user_id = |name: String| {
        let store = state.store.clone();
        async move { Ok::<_, anyhow::Error>(crate::find_user(&store, &name).await?.id) }
    };
    match action {
        TokensAction::Import {
            file,
            skip_invalid,
            psk,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let psk = psk
                .map(|k| hex::decode(k.trim()).context("--psk: 32 hex digits"))
                .transpose()?;
            if psk.as_ref().is_some_and(|k| k.len() != 16) {
                bail!("--psk: an AES-128 key is 32 hex digits");
            }
            let report = hd
                .import_tokens(&operator, &text, psk.as_deref(), skip_invalid, now)
                .await
                .map_err(explain)?;
            for b in &report.bad {
                eprintln!("line {}: {}", b.line, b.problem.explain());
            }
            for s in &report.known {
                eprintln!("serial {s}: already in the inventory (left as it is)");
            }
            if !skip_invalid && (!report.bad.is_empty() || !report.known.is_empty()) {
                bail!(
                    "nothing imported: {} bad line(s), {} known serial number(s) \
                     (--skip-invalid imports the rest)",
                    report.bad.len(),
                    report.known.len()
                );
            }
            println!("imported {} token(s)", report.imported);
        }
        TokensAction::List => {
            println!(
                "{:<20}  {:<4}  {:>6}  {:>6}  {:<10}  {:<20}  model",
                "serial", "type", "digits", "period", "state", "holder"
            );
            for l in state.store.oath_tokens().await? {
                let t = l.token;
                println!(
                    "{:<20}  {:<4}  {:>6}  {:>6}  {:<10}  {:<20}  {} {}",
                    t.serial,
                    t.otp,
                    t.digits,
                    if t.otp == "totp" {
                        format!("{}s", t.period)
                    } else {
                        "-".into()
                    },
                    t.state,
                    l.username.unwrap_or_default(),
                    t.manufacturer,
                    t.model
                );
            }
        }
        TokensAction::Assign { serial, user } => {
            let id = user_id(user.clone()).await?;
            let label = hd
                .assign_token(&operator, &id, &serial, now)
                .await
                .map_err(explain)?;
            println!("{label} assigned to {user}");
        }
        TokensAction::Resync {
            serial,
            user,
            first,
            second,
        } => {
            let id = user_id(user).await?;
            hd.resync_token(&operator, &id, &serial, &first, &second, now)
                .await
                .map_err(explain)?;
            println!("token {serial} resynchronised");
        }
        TokensAction::Release { serial, reuse } => {
            hd.release_token(&operator, &serial, reuse, now)
                .await
                .map_err(explain)?;
            println!(
                "token {serial} {}",
                if reuse {
                    "can be assigned again"
                } else {
                    "retired"
                }
            );
        }
    }
    Ok(())
}
