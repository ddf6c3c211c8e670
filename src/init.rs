//! Start-up: open the database, adopt a file the Python module made, and
//! bring the schema up to date.

use serde::Serialize;

use crate::config::DatabaseConfig;
use crate::database::Database;
use crate::error::Result;
use crate::schema::{self, AdoptionOptions, AdoptionReport, SchemaStatus};

/// What [`init_database_with`] may do beyond applying migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions {
    /// How a database the Python module made is taken over.
    pub adoption: AdoptionOptions,
}

/// What [`init_database_with`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitReport {
    /// The schema after `init`.
    pub schema: SchemaStatus,
    /// The adoption of a database the Python module made, when there was
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionReport>,
}

/// Opens the database and brings its schema up to date: the Rust form of
/// the Python module's `init_database`.
///
/// Safe to call at every start: migrations already applied (recorded in
/// `seaql_migrations`) are not run again, rows are never touched, and
/// concurrent callers apply each migration once. A database that records a
/// migration this build does not know is refused before any DDL runs. A
/// SQLite file the Python module made is adopted (see
/// [`init_database_with`]).
///
/// # Errors
/// Those of [`init_database_with`].
pub async fn init_database(config: &DatabaseConfig) -> Result<Database> {
    Ok(init_database_with(config, InitOptions::default()).await?.0)
}

/// [`init_database`] with options, reporting what it did.
///
/// A SQLite file whose six tables the Python module made (no migration
/// recorded) is recognised by its whole schema, checked row by row against
/// this module's rules, copied beside itself, and rebuilt into this
/// module's schema in one transaction that proves every row kept; or
/// refused with the reason and left byte for byte as it was.
///
/// # Errors
/// Those of [`Database::connect`];
/// [`Error::UnrecognizedSchema`](crate::Error::UnrecognizedSchema),
/// [`Error::AdoptionRefused`](crate::Error::AdoptionRefused) or
/// [`Error::Backup`](crate::Error::Backup) for a database that cannot be
/// adopted; [`Error::SchemaTooNew`](crate::Error::SchemaTooNew); the
/// classified database error of a failed migration (which rolls back).
#[tracing::instrument(skip_all, fields(url = %config.url))]
pub async fn init_database_with(
    config: &DatabaseConfig,
    options: InitOptions,
) -> Result<(Database, InitReport)> {
    if let Some(crate::config::SqliteLocation::File { path, .. }) = config.url.sqlite_location() {
        // A file that cannot be adopted is refused before it is opened for
        // real, so that it stays byte for byte as it was.
        schema::assess_before_opening(&path, options.adoption).await?;
    }
    let db = Database::open(config).await?;
    let prepared = async {
        let adoption = schema::adopt_if_needed(&db, options.adoption).await?;
        let status = schema::migrate(&db).await?;
        schema::require_write_privileges(&db).await?;
        Ok::<_, crate::Error>((adoption, status))
    }
    .await;
    let (adoption, status) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            // Closed, not dropped: the writer's thread ends before the
            // caller's runtime may.
            let _ = db.close().await;
            return Err(err);
        }
    };
    // After migrating: the column that records owed scrubs may be new.
    db.finish_owed_erasures().await;
    tracing::info!(
        location = %db.display_location(),
        latest_migration = status.latest_applied().unwrap_or("none"),
        adopted = adoption.is_some(),
        "database ready"
    );
    Ok((
        db,
        InitReport {
            schema: status,
            adoption,
        },
    ))
}
