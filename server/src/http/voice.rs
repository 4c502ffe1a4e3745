//! `POST /api/voice/callback`: the voice gateway reports how the person answered a call
//! (`approve`, `deny` or `fraud`). Signed like outgoing webhooks (HMAC-SHA256 over
//! "<timestamp>.<body>", timestamp within five minutes); the first answer per call counts.

use super::AppState;
use crate::domain::audit::{event, AuditEntry};
use crate::notify::transport::{webhook_signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

const MAX_SKEW_SECONDS: i64 = 300;

#[derive(serde::Deserialize)]
struct Answer {
    id: String,
    result: String,
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(key) = state.webhook_key.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "voice callbacks need sms.provider = webhook\n",
        );
    };
    let now = state.clock.now();
    let ts = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let sig = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let valid = ts.is_some_and(|ts| {
        (now - ts).abs() <= MAX_SKEW_SECONDS
            && bool::from(webhook_signature(key, ts, &body).as_bytes().ct_eq(sig))
    });
    if !valid {
        tracing::warn!("voice callback with a bad or stale signature refused");
        return (StatusCode::UNAUTHORIZED, "bad signature\n");
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {\"id\": …, \"result\": \"approve|deny|fraud\"}\n",
        );
    };
    if !matches!(answer.result.as_str(), "approve" | "deny" | "fraud") {
        return (
            StatusCode::BAD_REQUEST,
            "result must be approve, deny or fraud\n",
        );
    }
    record(&state, &answer.id, &answer.result, now).await
}

/// Records how a call was answered — from the gateway's signed callback, or the dev page's
/// buttons — and acts on it: the step the call's code belongs to completes or is refused, a
/// fraud report blocks the account.
pub(crate) async fn record(
    state: &AppState,
    id: &str,
    result: &str,
    now: i64,
) -> (StatusCode, &'static str) {
    let answer = Answer {
        id: id.to_string(),
        result: result.to_string(),
    };
    let call = match state.store.outbox_message(&answer.id).await {
        Ok(Some(row)) if row.channel == "voice" => row,
        Ok(_) => return (StatusCode::NOT_FOUND, "no such call\n"),
        Err(e) => {
            tracing::error!(error = %e, "voice callback: database unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
    };
    match state
        .store
        .insert_voice_result(&answer.id, &answer.result, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return (StatusCode::OK, "already answered\n"),
        Err(e) => {
            tracing::error!(error = %e, "voice callback: database unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
    }
    let mut e = AuditEntry::new(event::VOICE_ANSWERED, answer.result == "approve", now);
    e.user_id = call.user_id.clone();
    e.reason = Some(answer.result.clone());
    if let Err(err) = state.store.append_audit(&e).await {
        tracing::error!(error = %err, "voice callback: audit failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
    }
    if let (true, Some(user_id)) = (answer.result == "fraud", call.user_id.as_deref()) {
        let report = crate::domain::flows::fraud::FraudReport {
            user_id,
            source: "voice call: the person answering pressed \"report fraud\"".into(),
            client_ip: "voice gateway".into(),
            user_agent: String::new(),
        };
        let fraud = crate::domain::flows::fraud::report_fraud(
            &state.store,
            &state.notifier,
            &state.config.policy.fraud,
            report,
            now,
        );
        if let Err(err) = fraud.await {
            tracing::error!(error = %err, "voice callback: fraud report failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
        }
    }
    if let Err(err) = state
        .security
        .voice_answered(&answer.id, &answer.result, now)
        .await
    {
        tracing::error!(error = %err, "voice callback: the step could not be updated");
        return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
    }
    (StatusCode::OK, "recorded\n")
}
