//! The domain: users, policy, passwords, audit and the flows. No axum, no SQL, no Leptos here —
//! persistence is reached through `crate::store::Store`, time through `crate::clock::Clock`.

pub mod audit;
pub mod error;
pub mod flows;
pub mod password;
pub mod policy;
pub mod users;
