//! `/healthz` (the process answers) and `/readyz` (the database, the SMTP server and the
//! directory answer; the reason in the body when one does not).

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use std::time::{Duration, Instant};

/// How long one round of dependency checks is reused: a load balancer polling every second
/// does not open an SMTP and an LDAP connection each time. A failed round is repeated sooner.
const CACHE: Duration = Duration::from_secs(5);
const CACHE_FAILED: Duration = Duration::from_secs(1);

/// The last answer of the SMTP and directory checks (the database is pinged every time).
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Checked)>>,
}

/// One round: what makes the instance unready, and what is degraded but still serving (one
/// directory server of several down).
#[derive(Clone, Default)]
struct Checked {
    problems: Vec<String>,
    degraded: Vec<String>,
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ping().await {
        tracing::error!(error = %e, "readiness check failed: database unreachable");
        problems.push("database unreachable".to_string());
    }
    let checked = dependencies(&state).await;
    problems.extend(checked.problems);
    if problems.is_empty() {
        let notes: String = checked
            .degraded
            .iter()
            .map(|d| format!("degraded: {d}\n"))
            .collect();
        (StatusCode::OK, format!("ready\n{notes}"))
    } else {
        let body: String = problems.iter().map(|p| format!("{p}\n")).collect();
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// SMTP and LDAP, checked at most once per [`CACHE`] (the lock makes concurrent probes wait
/// for one round instead of each opening connections).
async fn dependencies(state: &AppState) -> Checked {
    let mut last = state.readiness.last.lock().await;
    if let Some((at, checked)) = last.as_ref() {
        let keep = if checked.problems.is_empty() {
            CACHE
        } else {
            CACHE_FAILED
        };
        if at.elapsed() < keep {
            return checked.clone();
        }
    }
    let mut problems = Vec::new();
    let mut degraded = Vec::new();
    let smtp = tokio::time::timeout(Duration::from_secs(10), state.email.probe());
    match smtp.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => problems.push(format!("mail server unreachable: {e}")),
        Err(_) => problems.push("mail server unreachable: no answer within 10 s".into()),
    }
    if let Some(ldap) = &state.ldap {
        // every server of `ldap.urls` on its own: serving while one answers
        match tokio::time::timeout(Duration::from_secs(10), ldap.probe_each()).await {
            Ok(answers) => {
                let down: Vec<String> = answers
                    .iter()
                    .filter_map(|(url, a)| a.as_ref().err().map(|e| format!("{url}: {e}")))
                    .collect();
                if down.len() == answers.len() {
                    problems.push(format!("directory unreachable: {}", down.join("; ")));
                } else {
                    degraded.extend(down.into_iter().map(|d| format!("directory server {d}")));
                }
            }
            Err(_) => problems.push("directory unreachable: no answer within 10 s".into()),
        }
    }
    for p in &problems {
        tracing::warn!(problem = %p, "readiness check failed");
    }
    for d in &degraded {
        tracing::warn!(problem = %d, "readiness: degraded");
    }
    let checked = Checked { problems, degraded };
    *last = Some((Instant::now(), checked.clone()));
    checked
}
