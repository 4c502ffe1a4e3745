//! Flows: sequences of steps a person goes through. Each is callable without the UI (CLI, tests,
//! the REST API, RADIUS).

pub mod accounts;
pub mod app_mfa;
pub mod fraud;
pub mod gateway;
pub mod helpdesk;
pub mod reset;
pub mod retention;
pub mod security;
pub mod session;
pub mod signin;
pub mod throttle;
pub mod tokens;
