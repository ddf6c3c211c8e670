//! The per-connection SQLite settings, shared by the library's `connect` and
//! this crate's migration binary so that both open a database the same way.

use std::time::Duration;

use sea_orm_migration::sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous,
};

pub use crate::DEFAULT_BUSY_TIMEOUT;

/// The settings every pooled SQLite connection must have: `foreign_keys=ON`,
/// `journal_mode=WAL` (readers do not block the writer), the given
/// `synchronous` level (`NORMAL` keeps every commit across an application
/// crash; `FULL` also across a power loss, at one fsync per commit) and a
/// busy timeout. sqlx applies them to each new connection of a pool.
#[must_use]
pub fn configure(
    options: SqliteConnectOptions,
    synchronous: SqliteSynchronous,
    busy_timeout: Duration,
) -> SqliteConnectOptions {
    options
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(busy_timeout)
}
