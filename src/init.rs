//! Start-up: open the database and bring its schema up to date.

use crate::config::DatabaseConfig;
use crate::database::Database;
use crate::error::Result;
use crate::schema;

/// Opens the database and brings its schema up to date: the Rust form of
/// the Python module's `init_database`.
///
/// Safe to call at every start: migrations already applied (recorded in
/// `seaql_migrations`) are not run again, rows are never touched, and
/// concurrent callers apply each migration once. A database that records a
/// migration this build does not know is refused before any DDL runs.
///
/// # Errors
/// Those of [`Database::connect`], [`Error::SchemaTooNew`](crate::Error::SchemaTooNew), and the
/// classified database error of a failed migration (which rolls back).
#[tracing::instrument(skip_all, fields(url = %config.url))]
pub async fn init_database(config: &DatabaseConfig) -> Result<Database> {
    let db = Database::connect(config).await?;
    let status = schema::migrate(&db).await?;
    tracing::info!(
        location = %db.display_location(),
        latest_migration = status.latest_applied().unwrap_or("none"),
        "database ready"
    );
    Ok(db)
}
