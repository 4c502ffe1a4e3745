//! Operations: the audit trail, directory sync runs, dead letters of the outbox.

use super::extract::{Path, Query};
use super::problem::{Problem, ProblemDoc};
use super::tokens::ApiCaller;
use super::Scope;
use crate::domain::audit::{event, AuditEntry};
use crate::http::AppState;
use crate::store::api::AuditFilter;
use crate::store::sync::SyncRun;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use converge_app::api::ErrorCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

type Answer<T> = Result<axum::Json<T>, Problem>;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Pass as `before` for older events.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    #[schema(example = "signin")]
    pub event: String,
    pub success: bool,
    pub username: Option<String>,
    /// Who did it when not the user (`api:NAME`, `cli`, a helpdesk agent).
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub event: Option<String>,
    pub username: Option<String>,
    pub actor: Option<String>,
    pub success: Option<bool>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The `next` of the previous page.
    pub before: Option<i64>,
    /// 1 to 500 (default 100).
    pub limit: Option<u32>,
}

/// The audit trail, newest first (cursor pagination).
#[utoipa::path(get, path = "/api/v1/audit", tag = "operations", params(AuditQuery),
    responses((status = 200, body = AuditPage),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["audit:read"])))]
pub async fn audit(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Query(q): Query<AuditQuery>,
) -> Answer<AuditPage> {
    caller.require(&state, Scope::AuditRead).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: 1 to 500"));
    }
    let cap = |s: Option<String>| s.map(|s| s.chars().take(200).collect::<String>());
    let filter = AuditFilter {
        event: cap(q.event),
        username: cap(q.username).map(|s| s.to_lowercase()),
        actor: cap(q.actor),
        success: q.success,
        since: q.since,
        until: q.until,
    };
    let rows = state.store.audit_page(&filter, q.before, limit).await?;
    let next = (rows.len() as u32 == limit)
        .then(|| rows.last().map(|(id, _)| *id))
        .flatten();
    Ok(axum::Json(AuditPage {
        events: rows
            .into_iter()
            .map(|(id, e)| AuditEvent {
                id,
                at: e.at,
                event: e.event,
                success: e.success,
                username: e.username,
                actor: e.actor,
                reason: e.reason,
                client_ip: e.client_ip,
                user_agent: e.user_agent,
            })
            .collect(),
        next,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunView {
    pub id: String,
    pub source: String,
    /// `full` or `incremental`.
    pub kind: String,
    pub dry_run: bool,
    /// `running`, `done`, `held` (waiting for approval), `approved`, `failed`.
    pub status: String,
    pub actor: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub seen: i64,
    pub created: i64,
    pub updated: i64,
    pub disabled: i64,
    pub unchanged: i64,
    pub errors: i64,
    /// Users a held run would disable (approving disables them).
    pub held_disables: usize,
    pub report: Vec<String>,
}

impl From<SyncRun> for SyncRunView {
    fn from(r: SyncRun) -> SyncRunView {
        SyncRunView {
            id: r.id,
            source: r.source,
            kind: r.kind,
            dry_run: r.dry_run,
            status: r.status,
            actor: r.actor,
            started_at: r.started_at,
            finished_at: r.finished_at,
            seen: r.seen,
            created: r.created,
            updated: r.updated,
            disabled: r.disabled,
            unchanged: r.unchanged,
            errors: r.errors,
            held_disables: r.held_disables.len(),
            report: r.report,
        }
    }
}

/// Recent directory sync runs, newest first.
#[utoipa::path(get, path = "/api/v1/directory/sync-runs", tag = "operations",
    responses((status = 200, body = Vec<SyncRunView>),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["directory:write"])))]
pub async fn sync_runs(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
) -> Answer<Vec<SyncRunView>> {
    caller.require(&state, Scope::DirectoryWrite).await?;
    let runs = state.store.sync_runs(50).await?;
    Ok(axum::Json(
        runs.into_iter().map(SyncRunView::from).collect(),
    ))
}

/// Approve a held run: disables the users it held back (unless back in scope meanwhile).
#[utoipa::path(post, path = "/api/v1/directory/sync-runs/{id}/approve", tag = "operations",
    params(("id" = String, Path)),
    responses((status = 200, body = SyncRunView),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["directory:write"])))]
pub async fn approve_sync_run(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(id): Path<String>,
) -> Answer<SyncRunView> {
    caller.require(&state, Scope::DirectoryWrite).await?;
    let run = state
        .store
        .sync_run(&id)
        .await?
        .ok_or_else(|| Problem::refused(ErrorCode::NotFound))?;
    let Some(service) = state.sync_service() else {
        return Err(Problem::refused(ErrorCode::NotFound));
    };
    if run.status != "held" || run.dry_run {
        let mut p = Problem::new(StatusCode::CONFLICT, ErrorCode::ApprovalInvalid);
        p.errors
            .push(format!("the run is {}, not held", run.status));
        return Err(p);
    }
    let done = service
        .approve(&id, &caller.actor(), state.clock.now())
        .await?;
    Ok(axum::Json(done.into()))
}

/// A message that could not be delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    pub id: String,
    /// `email`, `sms` or `voice`.
    pub channel: String,
    /// The message template (`password_reset`, `method_added`, …).
    pub message: String,
    /// The recipient, masked.
    pub to: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Dead letters of the outbox, newest first.
#[utoipa::path(get, path = "/api/v1/outbox/dead-letters", tag = "operations",
    responses((status = 200, body = Vec<DeadLetter>),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["outbox:write"])))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
) -> Answer<Vec<DeadLetter>> {
    caller.require(&state, Scope::OutboxWrite).await?;
    let rows = state.store.list_outbox(Some("dead"), 200).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|r| DeadLetter {
                to: crate::notify::mask_recipient(&r.channel, &r.recipient),
                id: r.id,
                channel: r.channel,
                message: r.message,
                attempts: r.attempts,
                last_error: r.last_error,
                created_at: r.created_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    pub queued: u64,
}

/// Queue a dead letter again.
#[utoipa::path(post, path = "/api/v1/outbox/dead-letters/{id}/retry", tag = "operations",
    params(("id" = String, Path)),
    responses((status = 200, body = Requeued),
        (status = "4XX", body = ProblemDoc, content_type = "application/problem+json"),
        (status = "5XX", body = ProblemDoc, content_type = "application/problem+json")),
    security(("token" = ["outbox:write"])))]
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    Path(id): Path<String>,
) -> Answer<Requeued> {
    caller.require(&state, Scope::OutboxWrite).await?;
    let now = state.clock.now();
    let queued = state.store.retry_dead(Some(&id), now).await?;
    if queued == 0 {
        return Err(Problem::refused(ErrorCode::NotFound));
    }
    let mut e = AuditEntry::new(event::OUTBOX_RETRIED, true, now);
    e.actor = Some(caller.actor());
    e.client_ip = Some(caller.client.ip.clone());
    e.reason = Some(id);
    state.store.append_audit(&e).await?;
    state.outbox_wake.notify_one();
    Ok(axum::Json(Requeued { queued }))
}
