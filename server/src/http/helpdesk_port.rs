//! The helpdesk part of the UI's port: maps `HelpdeskRequest`s to the domain's [`Helpdesk`]
//! service, and serves the audit export (`/helpdesk/audit/export?format=csv|jsonl&…`).

use super::security_port::{actor, api_error, method_view};
use super::AppState;
use crate::domain::audit::AuditEntry;
use crate::domain::error::DomainError;
use crate::domain::flows::helpdesk::{Action, Agent, Helpdesk, Outcome, VerificationView};
use crate::domain::format_time;
use crate::domain::users::Role;
use crate::store::helpdesk::AuditFilter;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use converge_app::api::{
    ApiError, ApprovalItem, ApprovalPromptView, AuditLine, AuditQuery, ConsoleHome, ErrorCode,
    UserCard, UserHit, VerificationInfo,
};
use converge_app::ssr::{HelpdeskRequest as R, HelpdeskStatus as S, RequestCtx};

/// Rows one export may hold.
const EXPORT_LIMIT: u32 = 100_000;

/// The signed-in helpdesk agent or administrator behind this request.
async fn agent(state: &AppState, ctx: &RequestCtx) -> Result<Agent, ApiError> {
    let me = ctx.signed_in()?;
    let user = actor(state, ctx, me).await?.user;
    // staff act for others: their own session must have proven a second factor
    if me.mfa_at == 0 && matches!(user.role, Role::Helpdesk | Role::Admin) {
        return Err(ApiError::Failed(ErrorCode::StaffMfaRequired));
    }
    Agent::new(user, super::client_of(ctx)).map_err(api_error)
}

fn line(e: AuditEntry) -> AuditLine {
    AuditLine {
        at: format_time(e.at),
        event: e.event,
        success: e.success,
        username: e.username.unwrap_or_default(),
        actor: e.actor.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        client_ip: e.client_ip.unwrap_or_default(),
    }
}

fn when(t: i64) -> String {
    if t > 0 {
        format_time(t)
    } else {
        String::new()
    }
}

fn info(v: VerificationView) -> VerificationInfo {
    VerificationInfo {
        id: v.id,
        method: v.method,
        channel: v.channel,
        state: v.state,
        started_at: when(v.started_at),
        decided_at: when(v.decided_at),
        valid_until: when(v.valid_until),
        approval_code: v.approval_code,
        questions: v.questions,
        destination: v.destination,
    }
}

/// `YYYY-MM-DD` → the first second of that day (UTC); `end` → the first second of the next.
fn day(s: &str, end: bool) -> Result<i64, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    let bad = || ApiError::Failed(ErrorCode::SetupExpired);
    let mut parts = s.splitn(3, '-').map(|p| p.parse::<i32>());
    let (y, m, d) = match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) => (y, m, d),
        _ => return Err(bad()),
    };
    let month = time::Month::try_from(u8::try_from(m).map_err(|_| bad())?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, u8::try_from(d).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    let t = date.midnight().assume_utc().unix_timestamp();
    Ok(if end { t + 86_400 } else { t })
}

fn filter(q: &AuditQuery, limit: u32) -> Result<AuditFilter, ApiError> {
    Ok(AuditFilter {
        username: q.user.clone(),
        actor: q.actor.clone(),
        event: q.event.clone(),
        from: day(&q.from, false)?,
        to: day(&q.to, true)?,
        limit,
    })
}

async fn approvals(
    h: &Helpdesk,
    agent: &Agent,
    now: i64,
) -> Result<Vec<ApprovalItem>, DomainError> {
    Ok(h.pending_approvals(agent, now)
        .await?
        .into_iter()
        .map(|a| ApprovalItem {
            id: a.row.id,
            user_id: a.row.user_id,
            username: a.username,
            action: a.row.action,
            requested_by: a.requested_by,
            requested_at: format_time(a.row.requested_at),
        })
        .collect())
}

pub async fn handle(state: &AppState, ctx: &RequestCtx, req: R) -> Result<S, ApiError> {
    let h = &state.helpdesk;
    let now = state.clock.now();
    // the caller's side: any signed-in user
    match req {
        R::Prompt => {
            let me = ctx.signed_in()?;
            let user = actor(state, ctx, me).await?.user;
            let p = h.approval_prompt(&user, now).await.map_err(api_error)?;
            return Ok(S::Prompt(p.map(|p| ApprovalPromptView {
                id: p.id,
                agent: p.agent_name,
                choices: p.choices,
            })));
        }
        R::PromptAnswer { id, pick } => {
            let me = ctx.signed_in()?;
            let a = actor(state, ctx, me).await?;
            h.approval_answer(&a, &id, pick.as_deref(), now)
                .await
                .map_err(api_error)?;
            return Ok(S::Done);
        }
        _ => {}
    }
    let agent = agent(state, ctx).await?;
    let result: Result<S, DomainError> = match req {
        R::Home { query } => {
            let hits = h.search(&agent, &query).await;
            match hits {
                Ok(users) => Ok(S::Home(ConsoleHome {
                    hits: users
                        .into_iter()
                        .map(|u| {
                            let mut flags = vec![];
                            if !u.enabled {
                                flags.push("disabled".to_string());
                            }
                            if u.locked_at.is_some() {
                                flags.push("locked".to_string());
                            }
                            if u.is_blocked(now) {
                                flags.push("blocked".to_string());
                            }
                            if h.is_protected(&u) {
                                flags.push("protected".to_string());
                            }
                            UserHit {
                                id: u.id,
                                username: u.username,
                                display_name: u.display_name,
                                email: u.email.unwrap_or_default(),
                                flags,
                            }
                        })
                        .collect(),
                    approvals: approvals(h, &agent, now).await.map_err(api_error)?,
                    is_admin: agent.is_admin(),
                })),
                Err(e) => Err(e),
            }
        }
        R::Card { user } => match h.card(&agent, &user, now).await {
            Ok(c) => {
                let p = &h.policy;
                let verified = c
                    .verification
                    .as_ref()
                    .is_some_and(|v| v.state == "verified");
                Ok(S::Card(Box::new(UserCard {
                    id: c.user.id.clone(),
                    username: c.user.username.clone(),
                    display_name: c.user.display_name.clone(),
                    email: c.user.email.clone().unwrap_or_default(),
                    phone: c.user.mobile_phone.clone().unwrap_or_default(),
                    role: c.user.role.as_str().into(),
                    source: c.user.source.clone(),
                    enabled: c.user.enabled,
                    locked: c.locked,
                    blocked_until: c.blocked.then(|| format_time(c.user.blocked_until)),
                    protected: c.protected,
                    registered: c.registration.registered,
                    required: c.registration.required,
                    complete: c.registration.complete,
                    portal: Helpdesk::verifiable(&c.methods),
                    methods: c.methods.iter().map(method_view).collect(),
                    verification: c.verification.map(info),
                    verified,
                    tap_until: c.tap_until.map(format_time),
                    new_tap: c.new_tap.map(|(p, until)| (p, format_time(until))),
                    signins: c.signins.into_iter().map(line).collect(),
                    timeline: c.timeline.into_iter().map(line).collect(),
                    approvals: c
                        .approvals
                        .into_iter()
                        .map(|a| ApprovalItem {
                            id: a.id,
                            user_id: a.user_id,
                            username: c.user.username.clone(),
                            action: a.action,
                            requested_by: a.requested_by,
                            requested_at: format_time(a.requested_at),
                        })
                        .collect(),
                    verification_minutes: (p.verification_seconds / 60) as u32,
                    tap_minutes: (p.tap_seconds / 60) as u32,
                    tap_max_minutes: (p.tap_max_seconds / 60) as u32,
                })))
            }
            Err(e) => Err(e),
        },
        R::VerifyStart {
            user,
            method,
            voice,
        } => h
            .verify_start(&agent, &user, &method, voice, now)
            .await
            .map(|_| S::Done),
        R::VerifyCheck {
            verification,
            answers,
        } => h
            .verify_check(&agent, &verification, &answers, now)
            .await
            .map(|_| S::Notice("verified".into())),
        R::Act {
            user,
            action,
            minutes,
        } => {
            let action =
                Action::parse(&action, minutes).ok_or(ApiError::Failed(ErrorCode::SetupExpired))?;
            h.act(&agent, &user, action, now).await.map(|o| match o {
                Outcome::Done(_) => S::Notice(
                    if matches!(action, Action::Tap { .. }) {
                        "tap"
                    } else {
                        "done"
                    }
                    .into(),
                ),
                Outcome::ApprovalRequested(_) => S::Notice("approval_requested".into()),
            })
        }
        R::Token {
            user,
            serial,
            codes: None,
        } => h
            .assign_token(&agent, &user, &serial, now)
            .await
            .map(|_| S::Done),
        R::Token {
            user,
            serial,
            codes: Some((first, second)),
        } => h
            .resync_token(&agent, &user, &serial, &first, &second, now)
            .await
            .map(|_| S::Done),
        R::Decide { approval, approve } => h
            .decide(&agent, &approval, approve, now)
            .await
            .map(|_| S::Done),
        R::Audit(q) => {
            let f = filter(&q, 500)?;
            state
                .store
                .audit_search(&f)
                .await
                .map(|rows| S::Audit(rows.into_iter().map(line).collect()))
                .map_err(DomainError::from)
        }
        R::Prompt | R::PromptAnswer { .. } => Ok(S::Done),
    };
    result.map_err(api_error)
}

#[derive(Debug, serde::Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A CSV field: quoted when needed, and never read as a formula by a spreadsheet.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /helpdesk/audit/export`: the filtered audit log as CSV or JSON lines (audited).
pub async fn export(
    State(state): State<AppState>,
    axum::Extension(ctx): axum::Extension<RequestCtx>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let agent = match agent(&state, &ctx).await {
        Ok(a) => a,
        Err(e) => return (StatusCode::FORBIDDEN, e.code().code()).into_response(),
    };
    let query = AuditQuery {
        user: q.user,
        actor: q.actor,
        event: q.event,
        from: q.from,
        to: q.to,
    };
    let rows = match filter(&query, EXPORT_LIMIT) {
        Ok(f) => state.store.audit_search(&f).await,
        Err(e) => return (StatusCode::BAD_REQUEST, e.code().code()).into_response(),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "audit export failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "SYS-503").into_response();
        }
    };
    let now = state.clock.now();
    let mut e = AuditEntry::new("audit_exported", true, now);
    e.actor = Some(agent.user.username.clone());
    e.client_ip = Some(agent.client.ip.clone());
    e.user_agent = Some(agent.client.user_agent.clone());
    e.reason = Some(format!(
        "{} rows as {}; user={} actor={} event={} from={} to={}",
        rows.len(),
        q.format,
        query.user,
        query.actor,
        query.event,
        query.from,
        query.to
    ));
    if let Err(err) = state.store.append_audit(&e).await {
        tracing::error!(error = %err, "audit export not recorded");
        return (StatusCode::SERVICE_UNAVAILABLE, "SYS-503").into_response();
    }
    let (body, mime, ext) = if q.format == "jsonl" {
        let mut out = String::new();
        for r in &rows {
            let v = serde_json::json!({
                "at": format_time(r.at),
                "unix": r.at,
                "event": r.event,
                "success": r.success,
                "user_id": r.user_id,
                "username": r.username,
                "actor": r.actor,
                "reason": r.reason,
                "client_ip": r.client_ip,
                "user_agent": r.user_agent,
            });
            out.push_str(&v.to_string());
            out.push('\n');
        }
        (out, "application/jsonl; charset=utf-8", "jsonl")
    } else {
        let mut out =
            String::from("at,event,success,user_id,username,actor,reason,client_ip,user_agent\r\n");
        for r in &rows {
            let fields = [
                format_time(r.at),
                r.event.clone(),
                r.success.to_string(),
                r.user_id.clone().unwrap_or_default(),
                r.username.clone().unwrap_or_default(),
                r.actor.clone().unwrap_or_default(),
                r.reason.clone().unwrap_or_default(),
                r.client_ip.clone().unwrap_or_default(),
                r.user_agent.clone().unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        (out, "text/csv; charset=utf-8", "csv")
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"converge-audit.{ext}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
