//! Versioned schema migrations of the interview store.
//!
//! Each migration is one file named `mYYYYMMDD_HHMMSS_<verb>_<object>.rs`
//! (`DeriveMigrationName` takes the name from it), runs in one transaction
//! on every backend (`use_transaction` is forced on, so a half-failed
//! migration rolls back on SQLite too), has a working `down`, and never
//! imports the entities: the schema history must not move when today's
//! models do. Applied migrations are recorded in `seaql_migrations`.
//!
//! `cargo run -p migration -- up|down|status|fresh` and `sea-orm-cli
//! migrate …` drive this crate's binary against `DATABASE_URL`; the binary
//! opens SQLite with the same pragmas as the library ([`sqlite_pragmas`]).

#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]

pub use sea_orm_migration::prelude::*;

pub mod location;
mod m20261127_000001_create_interview_tables;
mod m20261127_000002_create_edge_type_vocabulary;
mod m20261127_000003_create_session_erasures;
mod m20261203_000004_add_erasure_scrubbed_at;
mod m20261203_000005_require_finite_timestamps;
mod m20261203_000006_add_python_dual_graph;
mod m20261204_000007_count_dual_graph_erasures;
#[cfg(feature = "sqlite")]
pub mod sqlite_pragmas;
pub mod sqlite_rebuild;

/// How long a SQLite connection waits for a lock before failing with
/// `SQLITE_BUSY` when nothing else is configured.
pub const DEFAULT_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub use sea_orm_migration::seaql_migrations;

/// The six interview tables, parents before children (foreign-key order);
/// `session_erasures` and the vocabulary table are not among them.
pub const INTERVIEW_TABLES: [&str; 6] = [
    "sessions",
    "utterances",
    "kg_nodes",
    "kg_edges",
    "scoring_history",
    "concept_elements",
];

/// The tables the Python system added after the design named the six
/// (the dual graph and the qualitative signals), parents before children.
pub const LATER_PYTHON_TABLES: [&str; 4] = m20261203_000006_add_python_dual_graph::NEW_TABLES;

/// The ordered list of this build's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_interview_tables::Migration),
            Box::new(m20261127_000002_create_edge_type_vocabulary::Migration),
            Box::new(m20261127_000003_create_session_erasures::Migration),
            Box::new(m20261203_000004_add_erasure_scrubbed_at::Migration),
            Box::new(m20261203_000005_require_finite_timestamps::Migration),
            Box::new(m20261203_000006_add_python_dual_graph::Migration),
            Box::new(m20261204_000007_count_dual_graph_erasures::Migration),
        ]
    }
}
