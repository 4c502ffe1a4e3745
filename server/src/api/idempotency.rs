//! `Idempotency-Key` on POSTs (draft-ietf-httpapi-idempotency-key-header): the first answer
//! for a key is kept a day, sealed (it may hold a pass or a challenge id), and replayed for
//! a retry with the same body; the same key with another body, or while the first request
//! still runs, is a 409. Answers of 5xx free the key so a retry runs again.

use super::problem::Problem;
use super::tokens::ApiCaller;
use crate::http::AppState;
use crate::store::api::Idempotent;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use converge_app::api::ErrorCode;
use sha2::{Digest, Sha256};

const HEADER: &str = "idempotency-key";
const SEAL: &str = "api-idempotency";

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 128 => k.trim().to_string(),
        _ => {
            return Problem::invalid("Idempotency-Key: 1 to 128 visible characters").into_response()
        }
    };
    let Some(caller) = req.extensions().get::<ApiCaller>().cloned() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => return Problem::refused(ErrorCode::TooLarge).into_response(),
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path());
    h.update([0]);
    h.update(&bytes);
    let request_hash = hex::encode(h.finalize());
    let now = state.clock.now();
    let store = &state.store;
    match store
        .claim_idempotency(&caller.token_id, &key, &request_hash, now)
        .await
    {
        Err(e) => return Problem::from(e).into_response(),
        Ok(Idempotent::Mismatch) | Ok(Idempotent::InProgress) => {
            return Problem::refused(ErrorCode::IdempotencyConflict).into_response()
        }
        Ok(Idempotent::Replay(status, sealed)) => {
            let body = state.sealer.open(&sealed, SEAL).unwrap_or_default();
            let mut res =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            let content_type = if status >= 400 {
                "application/problem+json"
            } else {
                "application/json"
            };
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Ok(Idempotent::New) => {}
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = res.status();
    let (parts, body) = res.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => axum::body::Bytes::new(),
    };
    let answer =
        (!status.is_server_error()).then(|| (status.as_u16(), state.sealer.seal(&bytes, SEAL)));
    if let Err(e) = store
        .finish_idempotency(
            &caller.token_id,
            &key,
            answer.as_ref().map(|(s, b)| (*s, b.as_str())),
        )
        .await
    {
        tracing::error!(error = %e, "could not record an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}
