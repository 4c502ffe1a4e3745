//! Converge server: everything real. The domain (`domain/`) knows nothing of HTTP, SQL or Leptos;
//! `store/` persists it, `directory/` is where users and passwords live, `http/` glues it all to
//! the Leptos app through the port `converge_app::ssr::Backend`.
#![deny(clippy::unwrap_used)]

pub mod api;
pub mod backup;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod domain;
pub mod faults;
pub mod http;
pub mod instruments;
pub mod keys;
pub mod notify;
pub mod radius;
pub mod startup;
pub mod store;
pub mod telemetry;
