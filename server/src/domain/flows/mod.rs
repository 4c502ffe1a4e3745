//! Flows: sequences of steps a person goes through. Each is callable without the UI (CLI, tests,
//! a future management API or RADIUS front end).

pub mod fraud;
pub mod gateway;
pub mod helpdesk;
pub mod reset;
pub mod security;
pub mod session;
pub mod signin;
pub mod throttle;
