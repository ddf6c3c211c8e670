//! Integration tests of interview-persistence against real databases.
//!
//! Run them on both backends with `scripts/test.sh` (it starts PostgreSQL
//! and sets `POSTGRES_TEST_URL`), or with `cargo test` for SQLite alone: the
//! PostgreSQL halves then say loudly that they were skipped (and fail under
//! `CI=true`). Backend-neutral scenarios are written once as
//! `async fn(&Database)` and run as `<scenario>::sqlite` and
//! `<scenario>::postgres`; SQLite-specific tests (files, pragmas, WAL) sit
//! beside them, mostly under `database/` (`sqlite_file`, `connections`,
//! `checkpoint`). `TEST_LOG=1` shows the library's tracing output.

#[allow(dead_code)] // shared with the crash and multi-process tests
#[path = "../common/acknowledged.rs"]
mod acknowledged;
#[path = "../common/databases.rs"]
mod helpers;
#[path = "../common/turns.rs"]
mod turn_builders;

// The HTTP service example's router and server, served by the tests in
// `axum_service` (its `shutdown_signal` is the example binary's alone).
#[allow(dead_code)]
#[path = "../../examples/axum_service/app.rs"]
mod service_app;

mod axum_service;
mod config;
mod database;
mod entity;
mod fixtures;
mod health;
mod init;
mod migration;
mod operations;
mod repositories;
mod schema;
