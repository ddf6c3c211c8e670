//! Moving a study between databases — SQLite → PostgreSQL when it outgrows
//! one machine, PostgreSQL → SQLite to archive or hand it on, SQLite →
//! SQLite — with every row, every value exact, and proof.
//!
//! - The source is read in one snapshot (a read transaction), so a study
//!   can keep running on it.
//! - The target must be empty: a database with no interview tables (the
//!   schema is created), or one at the source's schema version with no
//!   rows. A new SQLite file is built under a temporary name and linked to
//!   its name only once verified.
//! - All or nothing: every row goes in one write transaction on the
//!   target, in foreign-key order. Before it commits, every table is read
//!   back from the target and its row count and content checksum compared
//!   with the source snapshot's; any difference rolls it back.
//! - A value the target cannot keep as it is (a NUL character or a time
//!   finer than the microsecond for PostgreSQL, NaN or −0 for SQLite, a
//!   JSON number the entity models would round) is found in the snapshot
//!   before the target is even opened.

/// Runs the macro `$action!(Entity)` for the entity of each of
/// [`DATA_TABLES`], in that order (foreign-key order).
macro_rules! for_each_data_table {
    ($action:ident) => {
        $action!(entity::session::Entity);
        $action!(entity::utterance::Entity);
        $action!(entity::kg_node::Entity);
        $action!(entity::kg_edge::Entity);
        $action!(entity::scoring_history::Entity);
        $action!(entity::concept_element::Entity);
        $action!(entity::canonical_slot::Entity);
        $action!(entity::slot_mapping::Entity);
        $action!(entity::canonical_edge::Entity);
        $action!(entity::qualitative_signal::Entity);
        $action!(entity::session_erasure::Entity);
    };
}

mod checksum;
mod json_numbers;
#[cfg(feature = "postgres")]
mod postgres;
mod table;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde::Serialize;

pub use checksum::TableChecksum;

use crate::config::{Backend, DatabaseConfig, SqliteLocation};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::files::{TemporaryFile, names_database_file, refuse_existing};
use crate::schema::DATA_TABLES;
use crate::schema::{SchemaStatus, require_current, schema_status};
use target::TargetTransaction;

/// Hears how a copy advances (a progress bar, log lines). Every method
/// does nothing by default.
pub trait CopyProgress: Send + Sync {
    /// The copy of `table` begins; the snapshot holds `rows` of it.
    fn table_started(&self, table: &'static str, rows: u64) {
        let _ = (table, rows);
    }
    /// `rows` more rows of `table` were written.
    fn advanced(&self, table: &'static str, rows: u64) {
        let _ = (table, rows);
    }
    /// Every row is written; the target is being read back and compared.
    fn verifying(&self) {}
}

/// The progress nobody listens to.
struct Silent;

impl CopyProgress for Silent {}

/// How [`copy`] runs.
#[derive(Clone)]
pub struct CopyOptions {
    /// The most rows read per query (and written per `COPY` or multi-row
    /// `INSERT`, as far as the backends' parameter limits allow). Pages of
    /// large rows hold fewer, about 8 MiB of rows each. Default 10,000:
    /// small pages make a copy into PostgreSQL several times slower (see
    /// docs/benchmarks.md).
    pub page_rows: usize,
    /// Who hears the progress.
    pub progress: Option<Arc<dyn CopyProgress>>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            page_rows: 10_000,
            progress: None,
        }
    }
}

impl std::fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("page_rows", &self.page_rows)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Whether the target matched the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyStatus {
    /// Every table's rows and checksum matched; the copy was committed.
    Verified,
    /// Some table differed; nothing was committed.
    Mismatch,
}

/// One table of a [`CopyReport`].
#[derive(Debug, Clone, Serialize)]
pub struct TableCopy {
    /// The table.
    pub table: &'static str,
    /// Rows in the source snapshot.
    pub source_rows: u64,
    /// Rows read back from the target.
    pub target_rows: u64,
    /// The source rows' checksum.
    pub source_checksum: TableChecksum,
    /// The target rows' checksum, computed the same way.
    pub target_checksum: TableChecksum,
    /// Whether rows and checksums are equal.
    pub matches: bool,
}

/// What [`copy`] did, printed by `interview-db copy` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// `verified`, or `mismatch` (then nothing was committed).
    pub status: CopyStatus,
    /// The source (password-free location).
    pub from: String,
    /// The target (password-free location).
    pub to: String,
    /// The schema version both are at (the newest migration applied).
    pub latest_migration: Option<String>,
    /// Whether the command created the target's schema.
    pub created_schema: bool,
    /// Each table, in the order copied.
    pub tables: Vec<TableCopy>,
    /// Rows copied in all.
    pub rows: u64,
    /// The whole copy, verification included, in ms.
    pub elapsed_ms: f64,
    /// Rows per second over the whole copy.
    pub rows_per_second: f64,
}

/// Copies every row of the interview tables (and the record of erasures)
/// from the database `from` names into the empty database `to` names, and
/// proves the copy by row counts and content checksums.
///
/// A SQLite target that does not exist is created (owner-only) under a
/// temporary name and given its name once verified. A target with no
/// interview tables gets the schema first; the rows then go in one
/// transaction, so a copy that fails leaves the target's rows as they were
/// (a schema the command created stays, empty: running the copy again
/// finds it acceptable).
///
/// # Errors
/// - [`Error::CopyRefused`] before anything is written: the same database
///   on both sides, a source that does not exist, a target that has rows,
///   interview tables without migration records, or another schema
///   version, a value the target cannot hold (named by table, row and
///   column);
/// - [`Error::SchemaPending`] / [`Error::SchemaTooNew`] when the source is
///   not at this build's schema version;
/// - [`Error::CopyMismatch`] when the target read back differs (rolled
///   back);
/// - [`Error::DestinationExists`] when a new SQLite target's name was
///   taken while the copy was made;
/// - the classified database error of either side.
#[tracing::instrument(skip_all, fields(from = %from.url, to = %to.url))]
pub async fn copy(
    from: &DatabaseConfig,
    to: &DatabaseConfig,
    options: CopyOptions,
) -> Result<CopyReport> {
    let started = Instant::now();
    let source_location = from.url.sqlite_location();
    let target_location = to.url.sqlite_location();
    refuse_same(from, to, source_location.as_ref(), target_location.as_ref())?;
    if let Some(SqliteLocation::File { path, .. }) = &source_location
        && !path.is_file()
    {
        return Err(Error::CopyRefused(format!(
            "there is no database file at the source `{}`",
            path.display()
        )));
    }
    // A SQLite source is opened read-only: no writer, no switch to WAL, no
    // probe — a copy leaves its source as it found it.
    let source = match &source_location {
        Some(SqliteLocation::File { path, .. }) => {
            let mut read_only = from.clone();
            read_only.url = crate::config::DatabaseUrl::sqlite_file_read_only(path)?;
            Database::open(&read_only).await?
        }
        _ => Database::open(from).await?,
    };
    let result = async {
        let status = require_current(source.connection()).await?;
        // The snapshot is taken, and searched for values the target cannot
        // keep, before the target is opened: a refusal writes nothing
        // there, not even a schema.
        let snapshot = source.begin_read().await?;
        let counts = target::count_rows(&snapshot).await?;
        let scanning = Instant::now();
        refuse_unstorable_values(&snapshot, source.backend(), to.url.backend()).await?;
        tracing::debug!(
            elapsed_ms = scanning.elapsed().as_secs_f64() * 1000.0,
            "source searched for values the target cannot keep"
        );
        let mut target = Target::open(to, target_location.as_ref(), &status).await?;
        let copied = copy_rows(snapshot, counts, &target.db, &options).await;
        let report = match copied {
            Ok(tables) => CopyReport::new(&source, &target, &status, tables, started),
            Err(err) => {
                target.abandon().await;
                return Err(err);
            }
        };
        if report.status == CopyStatus::Mismatch {
            target.abandon().await;
            return Err(Error::CopyMismatch(Box::new(report)));
        }
        target.finish().await?;
        Ok(report)
    }
    .await;
    let _ = source.close().await;
    result
}

/// Refuses a copy of a database onto itself.
fn refuse_same(
    from: &DatabaseConfig,
    to: &DatabaseConfig,
    source: Option<&SqliteLocation>,
    target: Option<&SqliteLocation>,
) -> Result<()> {
    let same = match (source, target) {
        (Some(SqliteLocation::Memory), _) | (_, Some(SqliteLocation::Memory)) => {
            return Err(Error::CopyRefused(
                "`sqlite::memory:` is private to the process that opens it: copy from or to a file"
                    .into(),
            ));
        }
        (
            Some(SqliteLocation::File { path: a, .. }),
            Some(SqliteLocation::File { path: b, .. }),
        ) => {
            // The same file by another path, or one SQLite keeps beside
            // the source (a copy named `<db>-journal` would be taken for
            // its hot journal).
            a == b || names_database_file(a, b)
        }
        _ => from.url.expose() == to.url.expose(),
    };
    if same {
        return Err(Error::CopyRefused(
            "the target is the source database, or a file SQLite keeps beside it".into(),
        ));
    }
    Ok(())
}

/// The database being written, and how to give it up.
struct Target {
    db: Database,
    /// A new SQLite file, under its temporary name (declared after `db`,
    /// so removed after the connections are dropped).
    new_file: Option<(TemporaryFile, PathBuf)>,
    created_schema: bool,
}

impl Target {
    /// Opens the target and makes sure it can take the copy: created (new
    /// SQLite file) or empty of interview tables (schema created), or at
    /// the source's schema version. Nothing is written to a target that
    /// does not qualify.
    async fn open(
        config: &DatabaseConfig,
        location: Option<&SqliteLocation>,
        source: &SchemaStatus,
    ) -> Result<Self> {
        if let Some(SqliteLocation::File { path, .. }) = location
            && refuse_existing(path).is_ok()
        {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                migration::location::create_private_directories(parent).map_err(|err| {
                    Error::CopyRefused(format!("cannot create `{}`: {err}", parent.display()))
                })?;
            }
            let temporary = TemporaryFile::beside(path).map_err(|err| {
                Error::CopyRefused(format!("cannot create `{}`: {err}", path.display()))
            })?;
            let url = temporary.path().to_str().ok_or_else(|| {
                Error::CopyRefused(format!("the path `{}` is not UTF-8", path.display()))
            })?;
            // `mode=rw`: the file exists; a connection still opening after
            // a dropped copy removed it must not create it again.
            let url = migration::location::sqlite_url_for_path(url);
            let url = url
                .strip_suffix("?mode=rwc")
                .map_or(url.clone(), |base| format!("{base}?mode=rw"));
            let config = config.clone().with_url(&url)?;
            let db = crate::init_database(&config).await?;
            return Ok(Self {
                db,
                new_file: Some((temporary, path.clone())),
                created_schema: true,
            });
        }
        // An existing SQLite file is judged through a read-only connection
        // first: opening it for writing switches it to WAL (and writes a
        // probe), so a target that is refused must be refused before that,
        // to stay byte for byte as it was.
        if let Some(SqliteLocation::File { path, .. }) = location {
            let mut read_only = config.clone();
            read_only.url = crate::config::DatabaseUrl::sqlite_file_read_only(path)?;
            let db = Database::open(&read_only).await?;
            let judged = Self::judge_read_only(&db, source).await;
            let _ = db.close().await;
            judged?;
        }
        let db = Database::open(config).await?;
        match Self::qualify(&db, source).await {
            Ok(created_schema) => Ok(Self {
                db,
                new_file: None,
                created_schema,
            }),
            Err(err) => {
                let _ = db.close().await;
                Err(err)
            }
        }
    }

    /// Whether `db` can take the copy; creates the schema when it has none
    /// (and says so).
    async fn qualify(db: &Database, source: &SchemaStatus) -> Result<bool> {
        let needs_schema = Self::judge(db, source).await?;
        if needs_schema {
            crate::schema::migrate(db).await?;
            crate::schema::require_write_privileges(db).await?;
        }
        Ok(needs_schema)
    }

    /// Whether `db`'s schema can take the copy, reading only: `true` when
    /// it has none (the schema is to be created), `false` when it is at the
    /// source's version.
    ///
    /// # Errors
    /// [`Error::CopyRefused`] for interview tables without migration
    /// records or another schema version; the database error.
    async fn judge(db: &Database, source: &SchemaStatus) -> Result<bool> {
        let status = schema_status(db.connection()).await?;
        if status.applied.is_empty() {
            let present = interview_tables_present(db).await?;
            if !present.is_empty() {
                return Err(Error::CopyRefused(format!(
                    "the target has interview tables ({}) but no migration records; \
                     copy into an empty database",
                    present.join(", ")
                )));
            }
            return Ok(true);
        }
        if status.applied != source.applied {
            return Err(Error::CopyRefused(format!(
                "the target is at schema version {}, the source at {}; \
                 copy into an empty database or one at the source's version",
                status.latest_applied().unwrap_or("none"),
                source.latest_applied().unwrap_or("none"),
            )));
        }
        Ok(false)
    }

    /// Every refusal [`qualify`](Self::qualify) and the copy's emptiness
    /// check would make, through a read-only handle on the target (which
    /// changes nothing in it): its schema, and its rows when it has one.
    ///
    /// # Errors
    /// [`Error::CopyRefused`] as above, or for a target that has rows.
    async fn judge_read_only(db: &Database, source: &SchemaStatus) -> Result<()> {
        if Self::judge(db, source).await? {
            return Ok(());
        }
        let snapshot = db.begin_read().await?;
        let counted = target::count_rows(&snapshot).await;
        let _ = snapshot.rollback().await;
        refuse_occupied(&counted?)
    }

    /// Gives the copy up: the temporary file goes.
    async fn abandon(self) {
        let _ = self.db.close().await;
    }

    /// Closes the target; a new file is made one self-contained file (its
    /// WAL folded in, a rollback journal, as a backup is) and gets its name.
    async fn finish(&mut self) -> Result<()> {
        self.db.clone().close().await?;
        if let Some((temporary, path)) = self.new_file.take() {
            let failed = |reason: String| {
                Error::CopyRefused(format!(
                    "cannot give `{}` its name: {reason}",
                    path.display()
                ))
            };
            let folding = Instant::now();
            fold_wal(temporary.path()).await.map_err(&failed)?;
            tracing::debug!(
                elapsed_ms = folding.elapsed().as_secs_f64() * 1000.0,
                "new file folded into one"
            );
            temporary.publish(&path, failed)?;
        }
        Ok(())
    }
}

/// Folds the WAL of the closed SQLite file at `path` into it and switches
/// it to a rollback journal, so that nothing of it stays in a `-wal`
/// beside its temporary name.
#[cfg(feature = "sqlite")]
async fn fold_wal(path: &std::path::Path) -> std::result::Result<(), String> {
    use sea_orm::sqlx::{self, Connection};
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
    let conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(|err| err.to_string())?;
    conn.close().await.map_err(|err| err.to_string())?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::path::Path::new(&wal).exists() {
        return Err("its WAL was not folded in".into());
    }
    Ok(())
}

/// Without SQLite there is no SQLite file to fold.
#[cfg(not(feature = "sqlite"))]
async fn fold_wal(_: &std::path::Path) -> std::result::Result<(), String> {
    Ok(())
}

/// The interview tables that exist in `db`.
async fn interview_tables_present(db: &Database) -> Result<Vec<String>> {
    let names = DATA_TABLES.map(|table| format!("'{table}'")).join(", ");
    let sql = match db.backend() {
        Backend::Sqlite => format!(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ({names}) ORDER BY name"
        ),
        Backend::Postgres => format!(
            "SELECT tablename::text FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename IN ({names}) ORDER BY tablename"
        ),
    };
    let conn = db.connection();
    conn.query_all_raw(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        sql,
    ))
    .await?
    .iter()
    .map(|row| Ok(row.try_get_by_index::<String>(0)?))
    .collect()
}

/// Refuses a target whose data tables hold rows, naming them.
fn refuse_occupied(counts: &target::Counts) -> Result<()> {
    let occupied: Vec<String> = counts
        .iter()
        .filter(|(_, rows)| **rows > 0)
        .map(|(table, rows)| format!("`{table}` has {rows} rows"))
        .collect();
    if occupied.is_empty() {
        return Ok(());
    }
    Err(Error::CopyRefused(format!(
        "the target is not empty: {}",
        occupied.join(", ")
    )))
}

/// One table's checksums: the source's (as read) and the target's (read
/// back).
struct Checked {
    table: &'static str,
    source: TableChecksum,
    target: TableChecksum,
}

/// Copies every table in one write transaction on the target and reads it
/// back; commits only when everything matched.
/// Refuses a source snapshot holding a value the target's backend cannot
/// keep as it is — a JSON number the entity models would round (see
/// [`json_numbers`]); for PostgreSQL a NUL character or a time finer than
/// the microsecond; for SQLite a NaN or −0; from SQLite a boolean other
/// than 0 or 1 — naming the first such table, row and column.
async fn refuse_unstorable_values(
    snapshot: &DatabaseTransaction,
    source: Backend,
    target: Backend,
) -> Result<()> {
    let direction = match (source, target) {
        (Backend::Sqlite, Backend::Postgres) => Some(table::Direction::ToPostgres),
        (Backend::Postgres, Backend::Sqlite) => Some(table::Direction::ToSqlite),
        (Backend::Sqlite, Backend::Sqlite) => Some(table::Direction::SqliteToSqlite),
        (Backend::Postgres, Backend::Postgres) => None,
    };
    macro_rules! scan {
        ($entity:ty) => {
            let table = sea_orm::EntityName::table_name(&<$entity>::default());
            let refused = |row: String, column: String, what: String| {
                Err(Error::CopyRefused(format!(
                    "`{table}` row `{}`: `{column}` holds {what}; nothing was written",
                    row.escape_debug(),
                )))
            };
            if let Some((row, column, number)) =
                table::find_inexact_json_number::<$entity, _>(snapshot).await?
            {
                return refused(
                    row,
                    column,
                    format!(
                        "the JSON number {number}, which this module reads as a 64-bit \
                         integer or a double and would round"
                    ),
                );
            }
            if let Some(direction) = direction
                && let Some((row, column, what)) =
                    table::find_unstorable::<$entity>(snapshot, direction).await?
            {
                return refused(row, column, what.to_owned());
            }
        };
    }
    for_each_data_table!(scan);
    Ok(())
}

async fn copy_rows(
    snapshot: DatabaseTransaction,
    counts: target::Counts,
    target: &Database,
    options: &CopyOptions,
) -> Result<Vec<Checked>> {
    let progress: &dyn CopyProgress = options.progress.as_deref().unwrap_or(&Silent);
    let page_rows = options.page_rows.max(1);

    let mut txn = TargetTransaction::begin(target).await?;
    refuse_occupied(&txn.counts().await?)?;

    txn.begin_load().await?;
    let mut sources = Vec::with_capacity(DATA_TABLES.len());
    macro_rules! copy_table {
        ($entity:ty) => {{
            let table = sea_orm::EntityName::table_name(&<$entity>::default());
            progress.table_started(table, counts.get(table).copied().unwrap_or(0));
            let started = Instant::now();
            let (checksum, successors) =
                table::copy::<$entity>(&snapshot, &mut txn, page_rows, progress).await?;
            txn.restore_successors(&successors).await?;
            tracing::debug!(
                table,
                rows = checksum.rows(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "table copied"
            );
            sources.push((table, checksum));
        }};
    }
    for_each_data_table!(copy_table);
    let _ = snapshot.rollback().await;
    let loaded = Instant::now();
    txn.end_load().await?;
    tracing::debug!(
        elapsed_ms = loaded.elapsed().as_secs_f64() * 1000.0,
        "keys and indexes made"
    );

    progress.verifying();
    let verifying = Instant::now();
    let mut targets = Vec::with_capacity(DATA_TABLES.len());
    macro_rules! read_back {
        ($entity:ty) => {
            targets.push(txn.checksum::<$entity>(page_rows).await?);
        };
    }
    for_each_data_table!(read_back);
    tracing::debug!(
        elapsed_ms = verifying.elapsed().as_secs_f64() * 1000.0,
        "target read back"
    );
    let checked: Vec<Checked> = sources
        .into_iter()
        .zip(targets)
        .map(|((table, source), target)| Checked {
            table,
            source,
            target,
        })
        .collect();
    if checked.iter().all(|c| c.source == c.target) {
        txn.commit().await?;
    } else {
        txn.rollback().await?;
    }
    Ok(checked)
}

impl CopyReport {
    fn new(
        source: &Database,
        target: &Target,
        status: &SchemaStatus,
        checked: Vec<Checked>,
        started: Instant,
    ) -> Self {
        let tables: Vec<TableCopy> = checked
            .into_iter()
            .map(|c| TableCopy {
                table: c.table,
                source_rows: c.source.rows(),
                target_rows: c.target.rows(),
                matches: c.source == c.target,
                source_checksum: c.source,
                target_checksum: c.target,
            })
            .collect();
        let rows = tables.iter().map(|t| t.source_rows).sum::<u64>();
        let elapsed = started.elapsed().as_secs_f64();
        Self {
            status: if tables.iter().all(|t| t.matches) {
                CopyStatus::Verified
            } else {
                CopyStatus::Mismatch
            },
            from: source.display_location(),
            to: match &target.new_file {
                Some((_, path)) => path.display().to_string(),
                None => target.db.display_location(),
            },
            latest_migration: status.latest_applied().map(str::to_owned),
            created_schema: target.created_schema,
            tables,
            rows,
            elapsed_ms: elapsed * 1000.0,
            rows_per_second: if elapsed > 0.0 {
                rows as f64 / elapsed
            } else {
                0.0
            },
        }
    }
}
