//! The server's one test binary. Every test that touches storage runs twice: on a fresh SQLite
//! file and on a fresh PostgreSQL database (CONVERGE_TEST_PG_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres — a missing PostgreSQL fails the tests).

#![allow(clippy::field_reassign_with_default)]
mod helpers;

mod ad;
mod config;
mod domain;
mod helpdesk;
mod http;
mod import;
mod ldap;
mod messaging;
mod radius;
mod reset;
mod rest;
mod security;
mod signin;
mod store;
mod tokens;
