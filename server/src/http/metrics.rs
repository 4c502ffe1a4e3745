//! Prometheus metrics in text format: request counts by status class, a latency histogram and
//! sign-in results. Plain atomics; nothing on the request path allocates.

use super::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
];

/// A latency histogram in seconds (Prometheus buckets, cumulative).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.render_series(out, name, "");
    }

    /// The bucket, sum and count lines of one series (`labels`: `k="v",…` or empty).
    pub fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.buckets[i].load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}\n{name}_sum{braces} {}\n{name}_count{braces} {count}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
    }
}

#[derive(Debug, Clone, Copy)]
pub enum SigninResult {
    Success,
    Rejected,
    Error,
}

#[derive(Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    latency: Histogram,
    signin: [AtomicU64; 3],
    refused: [AtomicU64; REFUSALS.len()],
    /// The RADIUS front door's counters (rendered here too).
    pub radius: crate::radius::metrics::RadiusMetrics,
    /// Records the retention sweeps of this instance removed, by kind.
    retention: [AtomicU64; 8],
    /// When this instance last finished a sweep (unix seconds; 0: not yet).
    retention_last: AtomicU64,
}

/// Requests refused by the limits before any work (`http::limits`).
const REFUSALS: [&str; 3] = ["body_too_large", "overloaded", "timeout"];

impl Metrics {
    pub fn observe(&self, status: u16, seconds: f64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        self.latency.observe(seconds);
    }

    pub fn refused(&self, why: &str) {
        if let Some(i) = REFUSALS.iter().position(|r| *r == why) {
            self.refused[i].fetch_add(1, Relaxed);
        }
    }

    /// One finished retention sweep.
    pub fn swept(&self, swept: &crate::store::retention::Swept, now: i64) {
        for (i, (_, n)) in swept.counts().iter().enumerate() {
            self.retention[i].fetch_add(*n, Relaxed);
        }
        self.retention_last.store(now.max(0) as u64, Relaxed);
    }

    pub fn signin(&self, result: SigninResult) {
        self.signin[result as usize].fetch_add(1, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP converge_http_requests_total HTTP requests by status class.\n");
        out.push_str("# TYPE converge_http_requests_total counter\n");
        for (i, c) in self.by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_http_requests_total{{status=\"{}xx\"}} {}",
                i + 1,
                c.load(Relaxed)
            );
        }
        self.latency.render(
            &mut out,
            "converge_http_request_duration_seconds",
            "Time to produce the response head.",
        );
        out.push_str("# HELP converge_signin_total Sign-in attempts by result.\n");
        out.push_str("# TYPE converge_signin_total counter\n");
        for (i, name) in ["success", "rejected", "error"].iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_signin_total{{result=\"{name}\"}} {}",
                self.signin[i].load(Relaxed)
            );
        }
        out.push_str(
            "# HELP converge_http_refused_total Requests refused by the limits before any work.\n",
        );
        out.push_str("# TYPE converge_http_refused_total counter\n");
        for (i, name) in REFUSALS.iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_http_refused_total{{reason=\"{name}\"}} {}",
                self.refused[i].load(Relaxed)
            );
        }
        out.push_str(
            "# HELP converge_retention_removed_total Records removed or pseudonymised by the retention sweeps of this instance.\n",
        );
        out.push_str("# TYPE converge_retention_removed_total counter\n");
        let kinds = crate::store::retention::Swept::default().counts();
        for (i, (kind, _)) in kinds.iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_retention_removed_total{{kind=\"{kind}\"}} {}",
                self.retention[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP converge_retention_last_sweep_timestamp_seconds When this instance last finished a retention sweep.\n\
             # TYPE converge_retention_last_sweep_timestamp_seconds gauge\n\
             converge_retention_last_sweep_timestamp_seconds {}",
            self.retention_last.load(Relaxed)
        );
        self.radius.render(&mut out);
        crate::instruments::render(&mut out);
        out
    }
}

pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .observe(res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

/// `/metrics` for a scraper that sends `Authorization: Bearer <security.metrics_token_file>`;
/// 401 without or with another token, 404 when no token is configured (never public).
pub async fn render(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use subtle::ConstantTimeEq;
    let Some(token) = &state.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    let mut body = state.metrics.render();
    outbox_gauges(&state, &mut body).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The outbox as the database holds it (shared by every instance): depth by status and the age
/// of the oldest waiting message. Left out when the database cannot be read.
async fn outbox_gauges(state: &AppState, out: &mut String) {
    let store = &state.store;
    let (Ok(pending), Ok(dead), Ok(oldest)) = (
        store.count_outbox("pending").await,
        store.count_outbox("dead").await,
        store.oldest_pending_outbox().await,
    ) else {
        return;
    };
    let age = oldest.map_or(0, |t| (state.clock.now() - t).max(0));
    let _ = writeln!(
        out,
        "# HELP converge_outbox_messages Messages in the outbox by status (pending: waiting or being retried; dead: gave up).\n\
         # TYPE converge_outbox_messages gauge\n\
         converge_outbox_messages{{status=\"pending\"}} {pending}\n\
         converge_outbox_messages{{status=\"dead\"}} {dead}\n\
         # HELP converge_outbox_oldest_pending_age_seconds Age of the oldest message still waiting (0: none).\n\
         # TYPE converge_outbox_oldest_pending_age_seconds gauge\n\
         converge_outbox_oldest_pending_age_seconds {age}"
    );
}
