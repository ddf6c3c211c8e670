//! The schema's version: which migrations are applied, pending or unknown,
//! bringing it up to date safely, and taking over a file the Python module
//! made (`adopt`).

mod adopt;
mod inspect;
mod preflight;
mod python_history;
mod timestamps;

/// Two lists of table names, one after the other (`N` is their total).
pub(crate) const fn joined<const A: usize, const B: usize, const N: usize>(
    a: [&'static str; A],
    b: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "N is the total");
    let mut tables = [""; N];
    let mut i = 0;
    while i < A {
        tables[i] = a[i];
        i += 1;
    }
    while i < N {
        tables[i] = b[i - A];
        i += 1;
    }
    tables
}

/// The interview tables: the six and the four the Python system added
/// later, parents before children. Adoption rebuilds those a file has and
/// creates the others.
pub(crate) const ADOPTED_TABLES: [&str; 10] =
    joined(migration::INTERVIEW_TABLES, migration::LATER_PYTHON_TABLES);

/// The tables a backup and a copy count: the interview tables and the
/// record of erasures (the edge-type vocabulary and the migration records
/// belong to the schema version, which is compared as a whole). Parents
/// before children.
pub const DATA_TABLES: [&str; 11] = joined(ADOPTED_TABLES, ["session_erasures"]);

pub use adopt::{AdoptionOptions, AdoptionReport, RepairedNode};
pub(crate) use adopt::{adopt_if_needed, assess_before_opening};
pub use preflight::{AdoptionFindings, Finding};
pub(crate) use timestamps::python_written_values;

use migration::seaql_migrations;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde::Serialize;

use crate::config::Backend;
use crate::database::Database;
use crate::error::{Error, Result};

/// Key of the PostgreSQL advisory lock that serialises migrations between
/// processes starting at once ("intervie" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x696E_7465_7276_6965;

/// The schema version of a database compared with this build's migrations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaStatus {
    /// Migrations recorded as applied, oldest first.
    pub applied: Vec<String>,
    /// This build's migrations not applied yet, in order.
    pub pending: Vec<String>,
    /// Applied migrations this build does not know (written by a newer
    /// version).
    pub unknown: Vec<String>,
}

impl SchemaStatus {
    /// The most recent applied migration.
    #[must_use]
    pub fn latest_applied(&self) -> Option<&str> {
        self.applied.last().map(String::as_str)
    }

    /// Whether the schema is exactly this build's.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// The names of this build's migrations, in order.
#[must_use]
pub fn known_migrations() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// Reads the schema status without writing anything (no DDL: a database
/// without the migration table simply has nothing applied).
///
/// # Errors
/// The classified database error if the migration table cannot be read.
pub async fn schema_status(db: &impl ConnectionTrait) -> Result<SchemaStatus> {
    let table = Migrator::migration_table_name().to_string();
    let exists = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => crate::database::query_value::<String>(
            db,
            &format!("SELECT to_regclass('{table}')::text"),
        )
        .await?
        .is_some(),
        _ => crate::database::query_value::<String>(
            db,
            &format!("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"),
        )
        .await?
        .is_some(),
    };
    let applied: Vec<String> = if exists {
        seaql_migrations::Entity::find()
            .order_by_asc(seaql_migrations::Column::Version)
            .all(db)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        Vec::new()
    };
    let known = known_migrations();
    Ok(SchemaStatus {
        pending: known
            .iter()
            .filter(|k| !applied.contains(k))
            .cloned()
            .collect(),
        unknown: applied
            .iter()
            .filter(|a| !known.contains(a))
            .cloned()
            .collect(),
        applied,
    })
}

/// Applies pending migrations, all in one write transaction: on SQLite an
/// IMMEDIATE one (other writers wait), on PostgreSQL one holding an
/// advisory lock, so that processes starting at once apply each migration
/// exactly once. Does nothing (and takes no lock) when the schema is
/// current.
///
/// # Errors
/// [`Error::SchemaTooNew`] before any DDL when the database records an
/// unknown migration; the classified database error of a failed migration,
/// after which nothing of the run remains.
pub async fn migrate(db: &Database) -> Result<SchemaStatus> {
    let status = schema_status(db.connection()).await?;
    refuse_unknown(&status)?;
    if status.pending.is_empty() {
        return Ok(status);
    }

    refuse_damaged(db).await?;
    // Foreign keys off (SQLite), so that a migration that rebuilds a table
    // cannot cascade-delete its children; checked below before COMMIT.
    let txn = db.begin_write_without_foreign_keys().await?;
    if db.backend() == Backend::Postgres {
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await?;
    }
    // Another process may have migrated while we waited for the lock.
    let status = schema_status(&*txn).await?;
    refuse_unknown(&status)?;
    if !status.pending.is_empty() {
        tracing::info!(pending = ?status.pending, "applying migrations");
        Migrator::up(&*txn, None).await?;
    }
    if db.backend() == Backend::Sqlite {
        migration::sqlite_rebuild::check_foreign_keys(&*txn).await?;
    }
    txn.commit().await?;
    schema_status(db.connection()).await
}

/// Fails with [`Error::SchemaPending`] or [`Error::SchemaTooNew`] unless
/// the schema is exactly this build's: for services that must not start
/// on an old or newer schema but must not migrate either.
///
/// # Errors
/// As above, or the classified database error if the status cannot be read.
pub async fn require_current(db: &impl ConnectionTrait) -> Result<SchemaStatus> {
    let status = schema_status(db).await?;
    refuse_unknown(&status)?;
    if !status.pending.is_empty() {
        return Err(Error::SchemaPending {
            pending: status.pending,
        });
    }
    Ok(status)
}

/// Before DDL touches a SQLite file: `PRAGMA quick_check`, and a refusal
/// when it finds damage (migrating a damaged file can only make it worse).
/// It reads the whole file, so it runs only when migrations are pending.
pub(crate) async fn refuse_damaged(db: &Database) -> Result<()> {
    let Some(crate::config::SqliteLocation::File { path, .. }) = db.sqlite_location() else {
        return Ok(());
    };
    refuse_damaged_file(db.connection(), path).await
}

/// [`refuse_damaged`] through any connection to the SQLite file `path`.
pub(crate) async fn refuse_damaged_file(
    conn: &impl ConnectionTrait,
    path: &std::path::Path,
) -> Result<()> {
    let findings = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA quick_check(100)",
        ))
        .await
        .map_err(Error::from)
        .and_then(|rows| {
            rows.iter()
                .map(|row| row.try_get_by_index::<String>(0).map_err(Error::from))
                .collect::<Result<Vec<String>>>()
        });
    match findings {
        // A row that breaks a CHECK or NOT NULL (written with the checks
        // off) is a matter for the rules, not damage to the file.
        Ok(lines) if lines.iter().all(|l| l == "ok" || is_constraint_finding(l)) => Ok(()),
        Ok(lines) => Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: format!(
                "quick_check: {}; nothing was migrated",
                lines
                    .into_iter()
                    .find(|l| !is_constraint_finding(l))
                    .unwrap_or_default()
            ),
        }),
        Err(Error::Corrupt(err)) => Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: format!("{err}; nothing was migrated"),
        }),
        Err(err) => Err(err),
    }
}

/// On PostgreSQL, fails with [`Error::MissingPrivilege`] unless the role
/// may insert, update and delete in every interview table: a role with
/// `SELECT` alone would otherwise start healthy and fail at its first
/// write. (SQLite's read-only file is caught when it is opened.)
///
/// # Errors
/// As above, or the classified database error.
pub(crate) async fn require_write_privileges(db: &Database) -> Result<()> {
    if db.backend() != Backend::Postgres {
        return Ok(());
    }
    const PRIVILEGES: [&str; 3] = ["INSERT", "UPDATE", "DELETE"];
    // One round trip: the first (table, privilege) pair the role lacks.
    let pairs = inspect::INTERVIEW_TABLES
        .iter()
        .chain(&migration::LATER_PYTHON_TABLES)
        .flat_map(|table| {
            PRIVILEGES
                .iter()
                .map(move |p| format!("('{table}', '{p}')"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let missing = crate::database::query_value::<String>(
        db.connection(),
        &format!(
            "SELECT t || ' ' || p FROM (VALUES {pairs}) AS wanted(t, p) \
             WHERE NOT has_table_privilege(t, p) LIMIT 1"
        ),
    )
    .await?;
    match missing.as_deref().and_then(|m| m.split_once(' ')) {
        None => Ok(()),
        Some((table, privilege)) => Err(Error::MissingPrivilege {
            table: table.to_owned(),
            privilege: PRIVILEGES
                .into_iter()
                .find(|p| *p == privilege)
                .unwrap_or("INSERT"),
        }),
    }
}

/// Whether a `quick_check` line reports a row breaking a CHECK or NOT NULL
/// constraint rather than damage to the file.
fn is_constraint_finding(line: &str) -> bool {
    line.starts_with("CHECK constraint failed in ") || line.starts_with("NULL value in ")
}

fn refuse_unknown(status: &SchemaStatus) -> Result<()> {
    if status.unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::SchemaTooNew {
            unknown: status.unknown.clone(),
        })
    }
}
