//! RADIUS counters: requests, results, drops by reason, and a latency histogram (rendered with
//! the HTTP metrics at /metrics). Plain atomics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a packet was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    UnknownClient,
    Malformed,
    UnsupportedCode,
    MissingMessageAuthenticator,
    BadMessageAuthenticator,
    /// A retransmit of a request still being evaluated.
    InProgress,
    Overloaded,
}

const DROPS: [&str; 7] = [
    "unknown_client",
    "malformed",
    "unsupported_code",
    "missing_message_authenticator",
    "bad_message_authenticator",
    "in_progress",
    "overloaded",
];

#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Accept,
    Reject,
    Challenge,
}

#[derive(Default)]
pub struct RadiusMetrics {
    requests: AtomicU64,
    answers: [AtomicU64; 3],
    /// Retransmits answered from the duplicate cache.
    cached: AtomicU64,
    drops: [AtomicU64; DROPS.len()],
    latency: crate::http::metrics::Histogram,
}

impl RadiusMetrics {
    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub fn drop(&self, why: Drop) {
        self.drops[why as usize].fetch_add(1, Relaxed);
    }

    pub fn cached(&self) {
        self.cached.fetch_add(1, Relaxed);
    }

    pub fn dropped(&self, why: Drop) -> u64 {
        self.drops[why as usize].load(Relaxed)
    }

    pub fn answered(&self, answer: Answer, seconds: f64) {
        self.answers[answer as usize].fetch_add(1, Relaxed);
        self.latency.observe(seconds);
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP converge_radius_requests_total Access-Requests from known clients.\n\
             # TYPE converge_radius_requests_total counter\n\
             converge_radius_requests_total {}",
            self.requests.load(Relaxed)
        );
        out.push_str("# HELP converge_radius_answers_total Answers by kind.\n");
        out.push_str("# TYPE converge_radius_answers_total counter\n");
        for (i, name) in ["accept", "reject", "challenge"].iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_radius_answers_total{{answer=\"{name}\"}} {}",
                self.answers[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP converge_radius_cached_total Retransmits answered from the duplicate cache.\n\
             # TYPE converge_radius_cached_total counter\n\
             converge_radius_cached_total {}",
            self.cached.load(Relaxed)
        );
        out.push_str(
            "# HELP converge_radius_dropped_total Packets dropped unanswered, by reason.\n",
        );
        out.push_str("# TYPE converge_radius_dropped_total counter\n");
        for (i, name) in DROPS.iter().enumerate() {
            let _ = writeln!(
                out,
                "converge_radius_dropped_total{{reason=\"{name}\"}} {}",
                self.drops[i].load(Relaxed)
            );
        }
        self.latency.render(
            out,
            "converge_radius_duration_seconds",
            "Time to answer a request.",
        );
    }
}
