//! Logging setup: `tracing` with an `EnvFilter` (RUST_LOG wins over the configured filter),
//! text or JSON lines.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // a second init (tests) is not an error worth stopping for
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
