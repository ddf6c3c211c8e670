//! The persistence layer of the adaptive research-interview system.
//!
//! Every turn of an interview persists its transcript, knowledge graph,
//! scores and coverage here. The embedded default is a SQLite file
//! ([`config::DEFAULT_DATABASE_PATH`]); the same code runs on PostgreSQL
//! when the URL names one.
//!
//! ```no_run
//! use interview_persistence::{DatabaseConfig, init_database, check_health};
//!
//! # async fn run() -> interview_persistence::Result<()> {
//! let db = init_database(&DatabaseConfig::from_env()?).await?;
//! let report = check_health(&db).await;
//! assert!(report.is_healthy());
//! # Ok(()) }
//! ```
//!
//! The library never installs a tracing subscriber: binaries and tests do.

#![warn(
    missing_docs,
    clippy::missing_errors_doc,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod backup;
pub mod config;
pub mod copy;
pub mod database;
pub mod error;
pub mod files;
pub mod health;
mod init;

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "interview-persistence needs a backend: enable the `sqlite` or the `postgres` feature"
);
pub mod repositories;
pub mod schema;
#[cfg(feature = "sqlite")]
mod sqlite_failure;

pub use backup::{BackupReport, backup, backup_at};
pub use config::{Backend, DatabaseConfig, DatabaseUrl, Synchronous};
pub use copy::{CopyOptions, CopyReport, copy};
pub use database::{Database, ScrubReport, WRITER_QUEUE_CAPACITY, WriteTransaction};
pub use error::{ConflictKind, EntityKind, Error, FileKind, Result};
pub use files::{CleanReport, Leftover, clean, leftover_copies};
pub use health::{
    AUTO_QUICK_CHECK_LIMIT, HealthOptions, HealthReport, HealthStatus, IntegrityCheck,
    IntegrityFinding, IntegrityMethod, check_health, check_health_at, check_health_with,
};
pub use init::{InitOptions, InitReport, init_database, init_database_with};

/// The time-zone database adoption reads a Python host's local times with
/// ([`schema::AdoptionOptions::python_local_time_zone`]).
pub use chrono_tz;
/// The SeaORM entities of the ten tables (and `session_erasures`), the
/// models the repositories take and return.
#[doc(inline)]
pub use entity;
/// The schema history (sea-orm-migration), applied by [`init_database`].
#[doc(inline)]
pub use migration;
