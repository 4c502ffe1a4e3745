//! Instruments: counters and histograms of the work behind the front doors — deliveries, the directory, audit
//! events — kept for this process and rendered with `/metrics` (docs/metrics.md). The HTTP and
//! sign-in figures live in `http::metrics`; the database-backed gauges (outbox depth, age of the
//! oldest message) are read at scrape time.

use crate::http::metrics::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Every family this module renders: name, type, help.
const FAMILIES: [(&str, &str, &str); 7] = [
    (
        DELIVERIES,
        "counter",
        "Messages the outbox worker tried to hand over, by channel, provider and result (sent, retry, dead).",
    ),
    (
        DELIVERY_SECONDS,
        "histogram",
        "Time to hand one message to the mail server or gateway, by channel.",
    ),
    (
        SYNC_RUNS,
        "counter",
        "Directory sync runs by kind (full, incremental) and result (done, held, failed).",
    ),
    (
        SYNC_CHANGES,
        "counter",
        "Users created, updated and disabled by directory sync runs.",
    ),
    (
        SYNC_SECONDS,
        "histogram",
        "Duration of directory sync runs.",
    ),
    (
        DIRECTORY_SECONDS,
        "histogram",
        "Directory binds (service account, user) by operation and result.",
    ),
    (
        AUDIT_EVENTS,
        "counter",
        "Audit events appended by this instance, by event and result (registrations, resets, fraud reports, helpdesk actions ...).",
    ),
];

pub const DELIVERIES: &str = "converge_outbox_deliveries_total";
pub const DELIVERY_SECONDS: &str = "converge_outbox_delivery_duration_seconds";
pub const SYNC_RUNS: &str = "converge_directory_sync_runs_total";
pub const SYNC_CHANGES: &str = "converge_directory_sync_changes_total";
pub const SYNC_SECONDS: &str = "converge_directory_sync_duration_seconds";
pub const DIRECTORY_SECONDS: &str = "converge_directory_bind_duration_seconds";
pub const AUDIT_EVENTS: &str = "converge_audit_events_total";

type Labels = Vec<(&'static str, String)>;

struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    counters: BTreeMap::new(),
    histograms: BTreeMap::new(),
});

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// Adds `n` to the counter `name{labels}`.
pub fn count(name: &'static str, pairs: &[(&'static str, &str)], n: u64) {
    with(|r| *r.counters.entry((name, labels(pairs))).or_default() += n);
}

/// Records one observation of the histogram `name{labels}`.
pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
    with(|r| {
        r.histograms
            .entry((name, labels(pairs)))
            .or_default()
            .observe(seconds)
    });
}

/// Label values are written as Prometheus wants them: `"` and `\` escaped, no newlines.
fn render_labels(l: &Labels) -> String {
    l.iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', " ");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends every family that has a value.
pub fn render(out: &mut String) {
    with(|r| {
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, l), v) in r.counters.range((name, Vec::new())..) {
                if *n != name {
                    break;
                }
                let _ = writeln!(out, "{name}{{{}}} {v}", render_labels(l));
            }
            for ((n, l), h) in r.histograms.range((name, Vec::new())..) {
                if *n != name {
                    break;
                }
                h.render_series(out, name, &render_labels(l));
            }
        }
    });
}
