//! Taking over a SQLite file the Python module made: recognise it by its
//! whole schema, check its rows against this module's rules before
//! changing anything, back it up, then rebuild its tables into this
//! module's schema in one transaction that keeps every row — or leave it
//! exactly as it was.
//!
//! The target is what a fresh `init` creates: every migration is run in a
//! scratch in-memory database, and its tables, indexes and rows
//! (`edge_types`, `seaql_migrations`) are what the file gets. So adoption
//! never has to be edited when a migration is added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use migration::sqlite_rebuild::{
    Indexes, Rebuild, check_foreign_keys, rebuild_table, schema_statements,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde::Serialize;

use super::ADOPTED_TABLES;
use super::inspect::{
    INTERVIEW_TABLES, SchemaShape, differences, inspect, rows, scratch_connection, table_sql,
};
use super::preflight::preflight;
use super::python_history::{History, PYTHON_TABLES, historic_shapes};
use super::timestamps::{self, Reading};
use crate::config::SqliteLocation;
use crate::database::Database;
use crate::error::{Error, Result};

/// Columns whose NULL, where the Python code's ALTER left them nullable,
/// means the value this module's NOT NULL column defaults to: no quotes.
const NULL_MEANS: [(&str, &str, &str); 1] = [("kg_nodes", "source_quotes", "[]")];

/// What a NULL of `table.column` means, where adoption rewrites it.
pub(crate) fn null_meaning(table: &str, column: &str) -> Option<&'static str> {
    NULL_MEANS
        .iter()
        .find(|(t, c, _)| *t == table && *c == column)
        .map(|(_, _, value)| *value)
}

/// What adoption may do beyond the checks.
#[derive(Debug, Clone, Copy)]
pub struct AdoptionOptions {
    /// The zone the Python host ran in: its nodes' and edges'
    /// `recorded_at` are that zone's local time without an offset
    /// (`datetime.now().isoformat()`), rewritten to UTC. UTC by default.
    pub python_local_time_zone: chrono_tz::Tz,
    /// Repair duplicate *current* nodes (same session, label and type, none
    /// superseded — the Python schema's UNIQUE let them in) instead of
    /// refusing the file: each group is chained in the order it was
    /// recorded, every node superseded by the next newer one, so the newest
    /// stays current. No row is lost; the report lists each node changed.
    pub repair_duplicate_current_nodes: bool,
    /// Tests only: fail after every step, just before `COMMIT`, to show
    /// that the file is then left as it was.
    #[doc(hidden)]
    pub fail_before_commit: bool,
    /// Tests only: called with the file's path after the checks and the
    /// backup, before the write lock is taken (another process writing
    /// there, say).
    #[doc(hidden)]
    pub between_checks_and_lock: Option<fn(&Path)>,
}

impl Default for AdoptionOptions {
    fn default() -> Self {
        Self {
            python_local_time_zone: chrono_tz::Tz::UTC,
            repair_duplicate_current_nodes: false,
            fail_before_commit: false,
            between_checks_and_lock: None,
        }
    }
}

/// What adoption did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdoptionReport {
    /// What the file was: `python_module` (rebuilt) or
    /// `interview_persistence` (its tables were this module's already; only
    /// the migrations were recorded).
    pub adopted_from: &'static str,
    /// Which Python versions made the file's tables: `made by 2026-01-21,
    /// then started by 2026-01-23, …` for a shape the history gives a file
    /// whole, or `tables of several Python versions`. Empty for this
    /// module's own tables.
    pub recognised_as: String,
    /// The zone zone-less local times were read in (`--python-local-time-zone`).
    pub python_local_time_zone: String,
    /// Values rewritten for what they mean, per `table.column`: timestamps
    /// in another of the Python code's shapes made this module's UTC form,
    /// NULL quotes made `[]`.
    pub rewritten_values: BTreeMap<String, u64>,
    /// Local times the zone's clocks passed twice (the fall-back hour),
    /// read as the earlier instant; counted in `rewritten_values` too.
    pub ambiguous_local_times: u64,
    /// Tables this module's schema has that the file lacked, created (empty,
    /// or with this module's rows: the edge-type vocabulary, the migrations).
    pub created_tables: Vec<String>,
    /// Tables an older Python version made that this module has no place
    /// for (`scoring_candidates`): kept as they are, rows and all.
    pub kept_tables: Vec<String>,
    /// The copy of the file taken before anything changed, beside it.
    pub backup: Option<PathBuf>,
    /// Rows per table, equal before and after.
    pub rows: BTreeMap<String, u64>,
    /// A content checksum per table (FNV-1a over every value), equal
    /// before and after.
    pub checksums: BTreeMap<String, String>,
    /// Nodes the opt-in repair marked superseded.
    pub repaired_nodes: Vec<RepairedNode>,
    /// The migrations recorded as applied.
    pub recorded_migrations: Vec<String>,
}

/// A duplicate current node the repair marked superseded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairedNode {
    /// The node marked superseded.
    pub node_id: String,
    /// The next newer node of its group, which supersedes it.
    pub superseded_by: String,
    /// Its session.
    pub session_id: String,
    /// The label and type the group shares.
    pub label: String,
    /// The node type the group shares.
    pub node_type: String,
}

/// Adopts the database when it holds interview tables but records no
/// migration; `None` when there is nothing to adopt.
///
/// # Errors
/// [`Error::UnrecognizedSchema`], [`Error::AdoptionRefused`],
/// [`Error::DamagedFile`], [`Error::Backup`], or the database error of a
/// step (after which the file is as it was).
pub(crate) async fn adopt_if_needed(
    db: &Database,
    options: AdoptionOptions,
) -> Result<Option<AdoptionReport>> {
    if !super::schema_status(db.connection())
        .await?
        .applied
        .is_empty()
    {
        return Ok(None);
    }
    let Some(writer) = db.exclusive_writer().await? else {
        return match db.backend() {
            crate::Backend::Postgres => refuse_tables_on_postgres(db).await,
            // A read-only SQLite handle writes nothing, adoption included.
            crate::Backend::Sqlite => Ok(None),
        };
    };
    let path = match db.sqlite_location() {
        Some(SqliteLocation::File { path, .. }) => Some(path.clone()),
        _ => None,
    };
    // Another process (the Python system, during a switch-over) may commit
    // between the checks and the write lock: then the checks and the backup
    // no longer describe the file, and they are done again.
    for _ in 0..ATTEMPTS {
        let (assessed, version) = {
            // One snapshot for every question: another process's migration
            // committing midway must not look like half a schema.
            let snapshot = writer.begin().await?;
            let assessed = assess(&snapshot, path.as_deref(), options).await;
            let version = data_version(&snapshot).await;
            let _ = snapshot.rollback().await;
            (assessed?, version?)
        };
        let (target, python_shape, ours, recognised_as) = match assessed {
            Assessment::NothingToAdopt => return Ok(None),
            Assessment::Ours { target } => {
                return match record_migrations(&writer, &target).await? {
                    Immediate::Done(report) => Ok(Some(report)),
                    Immediate::MigratedMeanwhile | Immediate::ChangedMeanwhile => Ok(None),
                };
            }
            Assessment::PythonModule {
                target,
                python_shape,
                ours,
                recognised_as,
            } => (target, python_shape, ours, recognised_as),
        };
        let backup = match &path {
            Some(path) => Some(backup(&writer, path).await?),
            None => None,
        };
        if let (Some(hook), Some(path)) = (options.between_checks_and_lock, &path) {
            hook(path);
        }
        // A failure (the file is as it was), another process having adopted
        // it meanwhile, or a change since the checks drops the copy with
        // `backup`.
        let mut report =
            match rebuild(&writer, &target, &python_shape, &ours, options, version).await? {
                Immediate::Done(report) => report,
                Immediate::MigratedMeanwhile => return Ok(None),
                Immediate::ChangedMeanwhile => {
                    tracing::info!("the file changed since it was checked; checking it again");
                    continue;
                }
            };
        report.backup = backup.map(Backup::kept);
        report.recognised_as = recognised_as;
        tracing::info!(backup = ?report.backup, rows = ?report.rows, "adopted a database the Python system made");
        return Ok(Some(report));
    }
    Err(Error::Busy(sea_orm::DbErr::Custom(format!(
        "the file changed between the checks and the adoption {ATTEMPTS} times (another \
         process writes it): stop the Python system, then run init again"
    ))))
}

/// How many times adoption checks a file that keeps changing.
const ATTEMPTS: usize = 3;

/// SQLite's count of other connections' commits, as this connection sees
/// it.
async fn data_version(conn: &impl ConnectionTrait) -> Result<i64> {
    Ok(
        crate::database::query_value::<i64>(conn, "PRAGMA data_version")
            .await?
            .unwrap_or(0),
    )
}

/// How a write transaction of adoption ended.
enum Immediate<T> {
    /// Committed.
    Done(T),
    /// Nothing done: another process migrated the file meanwhile.
    MigratedMeanwhile,
    /// Nothing done: another process committed since the checks.
    ChangedMeanwhile,
}

/// What a SQLite database is, as far as adoption goes.
enum Assessment {
    /// No interview tables, or migrations recorded: nothing to adopt.
    NothingToAdopt,
    /// This module's tables, without their migration records.
    Ours { target: Scratch },
    /// The Python module's tables, every row within the rules.
    PythonModule {
        target: Scratch,
        python_shape: SchemaShape,
        ours: SchemaShape,
        recognised_as: String,
    },
}

/// Recognises the database behind `conn` and checks its rows, reading
/// only.
///
/// # Errors
/// [`Error::UnrecognizedSchema`], [`Error::DamagedFile`],
/// [`Error::AdoptionRefused`], or the database error.
async fn assess(
    conn: &impl ConnectionTrait,
    path: Option<&Path>,
    options: AdoptionOptions,
) -> Result<Assessment> {
    if !super::schema_status(conn).await?.applied.is_empty() {
        return Ok(Assessment::NothingToAdopt);
    }
    let actual = inspect(conn, &PYTHON_TABLES).await?;
    if !INTERVIEW_TABLES.iter().any(|t| actual.contains_key(*t)) {
        return Ok(Assessment::NothingToAdopt);
    }
    if let Some(path) = path {
        super::refuse_damaged_file(conn, path).await?;
    }
    let target = Scratch::migrated().await?;
    let ours = inspect(&target.connection, &ADOPTED_TABLES).await?;
    let actual_ours: SchemaShape = actual
        .iter()
        .filter(|(t, _)| ADOPTED_TABLES.contains(&t.as_str()))
        .map(|(t, shape)| (t.clone(), shape.clone()))
        .collect();
    let from_ours = differences(&actual_ours, &ours);
    if from_ours.is_empty() {
        return Ok(Assessment::Ours { target });
    }
    let history = historic_shapes()
        .await?
        .into_iter()
        .map(|mut historic| {
            historic.shape = accept_wider_vocabulary(historic.shape);
            historic
        })
        .collect::<Vec<_>>();
    let python_shape = accept_wider_vocabulary(actual);
    let from_python = History::of(&history).differences(&python_shape);
    if !from_python.is_empty() {
        let (closest, differences) = if from_python.len() <= from_ours.len() {
            ("python module", from_python)
        } else {
            ("interview-persistence", from_ours)
        };
        return Err(Error::UnrecognizedSchema {
            closest,
            differences,
        });
    }
    let findings = preflight(conn, &python_shape, &ours, options).await?;
    if !findings.is_empty() {
        return Err(Error::AdoptionRefused { findings });
    }
    // A fresh file's own label first (`made by 2026-01-27` rather than the
    // chain that gives the same shape).
    let recognised_as = history
        .iter()
        .filter(|historic| !historic.label.contains(','))
        .chain(
            history
                .iter()
                .filter(|historic| historic.label.contains(',')),
        )
        .find(|historic| {
            historic.shape.keys().eq(python_shape.keys())
                && differences(&python_shape, &historic.shape).is_empty()
        })
        .map_or_else(
            || "tables of several Python versions".to_owned(),
            |historic| historic.label.clone(),
        );
    Ok(Assessment::PythonModule {
        target,
        python_shape,
        ours,
        recognised_as,
    })
}

/// Before the database is opened for real (which switches a file to WAL
/// and writes a probe): a file that records a migration this build does
/// not know, or that is to be adopted but cannot be, is refused through a
/// read-only connection, so that it stays byte for byte
/// as it was — also a file in rollback-journal mode. A file that cannot be
/// opened this way is left to `Database::connect` to judge.
///
/// # Errors
/// [`Error::SchemaTooNew`], and those of [`assess`].
pub(crate) async fn assess_before_opening(path: &Path, options: AdoptionOptions) -> Result<()> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return Ok(());
    }
    // Not a database, or a truncated one: refused as `connect` would,
    // before SQLite is let near it.
    crate::database::check_sqlite_file(path, false)?;
    let Some(text) = path.to_str() else {
        return Ok(());
    };
    let mut connect = sea_orm::ConnectOptions::new(migration::location::sqlite_url_for_path(text));
    connect.max_connections(1).sqlx_logging(false);
    #[cfg(feature = "sqlite")]
    connect.map_sqlx_sqlite_opts(|o| o.read_only(true).create_if_missing(false));
    let Ok(probe) = sea_orm::Database::connect(connect).await else {
        return Ok(());
    };
    // One snapshot for every question (see `adopt_if_needed`).
    let assessed = match probe.begin().await {
        Ok(snapshot) => {
            // A schema from a newer build is refused here too, before the
            // file is switched to WAL (`migrate` would refuse it after).
            let assessed = match super::schema_status(&snapshot).await {
                Ok(status) => super::refuse_unknown(&status),
                Err(_) => Ok(()),
            };
            let assessed = match assessed {
                Ok(()) => assess(&snapshot, Some(path), options).await,
                Err(err) => Err(err),
            };
            let _ = snapshot.rollback().await;
            assessed.map(|_| ())
        }
        Err(_) => Ok(()),
    };
    let _ = probe.close().await;
    assessed
}

/// On PostgreSQL there is no Python-made database to adopt: tables without
/// migrations are refused clearly instead of failing at the first DDL.
async fn refuse_tables_on_postgres(db: &Database) -> Result<Option<AdoptionReport>> {
    let exists = crate::database::query_value::<String>(
        db.connection(),
        "SELECT to_regclass('sessions')::text",
    )
    .await?
    .is_some();
    // A process that migrated meanwhile committed its records with its
    // tables: seeing them now means there is nothing to adopt.
    let migrated = !super::schema_status(db.connection())
        .await?
        .applied
        .is_empty();
    if exists && !migrated {
        return Err(Error::UnrecognizedSchema {
            closest: "interview-persistence",
            differences: vec![
                "the interview tables exist but no migration is recorded; adoption is for \
                 SQLite files the Python module made"
                    .into(),
            ],
        });
    }
    Ok(None)
}

/// A private in-memory database to build a reference schema in.
struct Scratch {
    connection: DatabaseConnection,
}

impl Scratch {
    /// Every migration of this build applied: what `init` creates.
    async fn migrated() -> Result<Self> {
        let scratch = Self {
            connection: scratch_connection().await?,
        };
        Migrator::up(&scratch.connection, None).await?;
        Ok(scratch)
    }
}

/// The Python system widened its edge-type CHECK in place (through
/// `PRAGMA writable_schema`) as methodologies were added: a CHECK that
/// lists only known types is read as the Python schema's own.
fn accept_wider_vocabulary(mut actual: SchemaShape) -> SchemaShape {
    use sea_orm::{ActiveEnum, Iterable};
    let known: Vec<String> = entity::kg_edge::EdgeType::iter()
        .map(|t| t.to_value())
        .collect();
    if let Some(edges) = actual.get_mut("kg_edges") {
        let widened: Vec<String> = edges
            .checks
            .iter()
            .filter(|check| {
                check
                    .strip_prefix("edge_typein(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .is_some_and(|list| {
                        list.split(',')
                            .all(|t| known.iter().any(|k| t == format!("'{k}'")))
                    })
            })
            .cloned()
            .collect();
        for check in widened {
            edges.checks.remove(&check);
            edges
                .checks
                .insert("edge_typein('leads_to','revises')".to_owned());
        }
    }
    actual
}

/// A consistent copy of the database beside it, named after the moment
/// (`interview.db.before-adoption-20261127T101500Z`), created owner-only:
/// `VACUUM INTO` writes one snapshot of the file, WAL included.
async fn backup(conn: &DatabaseConnection, path: &Path) -> Result<Backup> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    // Two processes adopting at once each get a name of their own (the one
    // that finds the file adopted when it gets the lock removes its copy).
    let mut attempt = 1;
    let target = loop {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".before-adoption-{stamp}"));
        if attempt > 1 {
            name.push(format!("-{attempt}"));
        }
        let target = PathBuf::from(name);
        match open.open(&target) {
            Ok(_) => break target,
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(err) => {
                return Err(Error::Backup {
                    path: target,
                    reason: err.to_string(),
                });
            }
        }
    };
    let backup = Backup(Some(target));
    let failed = |reason: String| Error::Backup {
        path: backup.path().to_path_buf(),
        reason,
    };
    let text = backup
        .path()
        .to_str()
        .ok_or_else(|| failed("the path is not UTF-8".into()))?;
    conn.execute_unprepared(&format!("VACUUM INTO '{}'", text.replace('\'', "''")))
        .await
        .map_err(|err| failed(err.to_string()))?;
    Ok(backup)
}

/// The backup file, removed when dropped unless [`kept`](Self::kept): an
/// adoption that fails, or whose future is dropped, leaves no copy behind.
struct Backup(Option<PathBuf>);

impl Backup {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// Keeps the file and says where it is.
    fn kept(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
            // A `VACUUM INTO` cut short leaves its rollback journal.
            let mut journal = path.as_os_str().to_owned();
            journal.push("-journal");
            let _ = std::fs::remove_file(journal);
        }
    }
}

/// The tables of `target` the file does not have (the edge-type
/// vocabulary, the migration records, `concept_elements` in a file made
/// after 2026-01-30, …), created in the file with their rows.
async fn create_missing_tables(
    conn: &DatabaseConnection,
    target: &Scratch,
    present: &SchemaShape,
) -> Result<Vec<String>> {
    let missing: Vec<String> = rows(
        &target.connection,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        &[],
    )
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<String>(0))
    .collect::<std::result::Result<Vec<_>, _>>()?
    .into_iter()
    .filter(|name| !present.contains_key(name))
    .collect();
    for table in &missing {
        let Some(sql) = table_sql(&target.connection, table).await? else {
            continue;
        };
        conn.execute_unprepared(&sql).await?;
        for statement in schema_statements(&target.connection, table, &["index", "trigger"]).await?
        {
            conn.execute_unprepared(&statement).await?;
        }
        for insert in row_inserts(&target.connection, table).await? {
            conn.execute_unprepared(&insert).await?;
        }
    }
    Ok(missing)
}

/// `INSERT` statements that recreate every row of `table`, values quoted
/// by SQLite itself.
async fn row_inserts(conn: &DatabaseConnection, table: &str) -> Result<Vec<String>> {
    let columns = column_names(conn, table).await?;
    let values = columns
        .iter()
        .map(|c| format!("quote(\"{c}\")"))
        .collect::<Vec<_>>()
        .join(" || ', ' || ");
    let list = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    rows(
        conn,
        &format!(
            "SELECT 'INSERT INTO \"{table}\" ({}) VALUES (' || {values} || ')' FROM \"{table}\"",
            list.replace('\'', "''")
        ),
        &[],
    )
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).map_err(Into::into))
    .collect()
}

async fn column_names(conn: &DatabaseConnection, table: &str) -> Result<Vec<String>> {
    rows(conn, &format!("PRAGMA table_info(\"{table}\")"), &[])
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(1).map_err(Into::into))
        .collect()
}

/// How a column copied into this module's table is compared and what
/// adoption rewrites in it.
#[derive(Debug, Clone)]
enum Copied {
    /// Compared as it is.
    Value(String),
    /// A timestamp: compared as the instant it means, rewritten to this
    /// module's UTC form.
    Timestamp(String),
    /// NULL means this value (the column is NOT NULL here).
    NullMeans(String, &'static str),
}

impl Copied {
    fn name(&self) -> &str {
        match self {
            Self::Value(name) | Self::Timestamp(name) | Self::NullMeans(name, _) => name,
        }
    }
}

/// One table adoption rebuilds: its key and its copied columns.
#[derive(Debug, Clone)]
struct CopyPlan {
    key: String,
    columns: Vec<Copied>,
}

/// Counts and checksums of the rebuilt tables, each over its copied
/// columns' meaning.
async fn fingerprint(
    conn: &DatabaseConnection,
    plans: &BTreeMap<String, CopyPlan>,
    zone: chrono_tz::Tz,
) -> Result<(BTreeMap<String, u64>, BTreeMap<String, String>)> {
    let mut counts = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for (table, plan) in plans {
        let (count, sum) = checksum(conn, table, plan, zone).await?;
        counts.insert(table.clone(), count);
        sums.insert(table.clone(), format!("{sum:016x}"));
    }
    Ok((counts, sums))
}

/// FNV-1a over every row of `table` (in key order), each value as SQLite
/// quotes its text form, a timestamp as the UTC instant it means; read a
/// page at a time.
async fn checksum(
    conn: &DatabaseConnection,
    table: &str,
    plan: &CopyPlan,
    zone: chrono_tz::Tz,
) -> Result<(u64, u64)> {
    const PAGE: usize = 2000;
    // The type and SQLite's own literal of each value: reals at full
    // precision, text exactly, an integer never equal to a text.
    let quoted = |expression: String| format!("typeof({expression}) || ':' || quote({expression})");
    let mut line = plan
        .columns
        .iter()
        .filter_map(|c| match c {
            Copied::Value(name) => Some(quoted(format!("\"{name}\""))),
            Copied::NullMeans(name, value) => {
                Some(quoted(format!("coalesce(\"{name}\", '{value}')")))
            }
            Copied::Timestamp(_) => None,
        })
        .collect::<Vec<_>>()
        .join(" || char(31) || ");
    if line.is_empty() {
        line = "''".into();
    }
    let timestamps: Vec<&str> = plan
        .columns
        .iter()
        .filter_map(|c| match c {
            Copied::Timestamp(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let selected = std::iter::once(line)
        .chain(timestamps.iter().map(|c| format!("\"{c}\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let key = &plan.key;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let mut count = 0u64;
    let mut last: Option<String> = None;
    loop {
        // The first page starts at the first key, whatever it is ('' too).
        let page = match &last {
            None => {
                let sql = format!(
                    "SELECT \"{key}\", {selected} FROM \"{table}\" ORDER BY \"{key}\" LIMIT {PAGE}"
                );
                rows(conn, &sql, &[]).await?
            }
            Some(last) => {
                let sql = format!(
                    "SELECT \"{key}\", {selected} FROM \"{table}\" WHERE \"{key}\" > ? \
                     ORDER BY \"{key}\" LIMIT {PAGE}"
                );
                rows(conn, &sql, &[last.as_str()]).await?
            }
        };
        for row in &page {
            last = Some(row.try_get_by_index(0)?);
            feed(row.try_get_by_index::<String>(1)?.as_bytes());
            for (i, column) in timestamps.iter().enumerate() {
                feed(&[31]);
                let value: Option<String> = row.try_get_by_index(2 + i)?;
                let meaning = match value {
                    None => "null".to_owned(),
                    Some(text) => match timestamps::read(&text, table, column, zone).instant() {
                        Some(instant) => timestamps::module_form(instant),
                        None => format!("unread:{text}"),
                    },
                };
                feed(meaning.as_bytes());
            }
            feed(b"\n");
            count += 1;
        }
        if page.len() < PAGE {
            return Ok((count, hash));
        }
    }
}

/// Rewrites values for what they mean: NULL quotes to `[]` in the file's
/// own tables, before they are rebuilt into NOT NULL columns
/// (`NullMeans`), or the rebuilt tables' timestamps in the Python code's
/// other shapes to this module's UTC form (`Timestamp`). Returns the count
/// per `table.column` and how many local times were ambiguous.
async fn rewrite_values(
    conn: &DatabaseConnection,
    plans: &BTreeMap<String, CopyPlan>,
    zone: chrono_tz::Tz,
    timestamps_only: bool,
) -> Result<(BTreeMap<String, u64>, u64)> {
    let mut rewritten = BTreeMap::new();
    let mut ambiguous = 0;
    for (table, plan) in plans {
        for column in &plan.columns {
            let count = match column {
                Copied::Value(_) => 0,
                Copied::NullMeans(..) if timestamps_only => 0,
                Copied::Timestamp(_) if !timestamps_only => 0,
                Copied::NullMeans(name, value) => conn
                    .execute_raw(Statement::from_sql_and_values(
                        DbBackend::Sqlite,
                        format!("UPDATE \"{table}\" SET \"{name}\" = ? WHERE \"{name}\" IS NULL"),
                        [(*value).into()],
                    ))
                    .await?
                    .rows_affected(),
                Copied::Timestamp(name) => {
                    let (count, ambiguous_here) =
                        rewrite_timestamps(conn, table, name, zone).await?;
                    ambiguous += ambiguous_here;
                    count
                }
            };
            if count > 0 {
                rewritten.insert(format!("{table}.{}", column.name()), count);
            }
        }
    }
    Ok((rewritten, ambiguous))
}

/// Rewrites `table.column`'s timestamps in the Python code's other shapes
/// (every such value has a `T` between date and time: the preflight saw
/// to it) to this module's UTC form, a page at a time: the new values go
/// into a temporary table, and one UPDATE per page takes them. Returns how
/// many were rewritten and how many of them were ambiguous local times.
async fn rewrite_timestamps(
    conn: &DatabaseConnection,
    table: &str,
    column: &str,
    zone: chrono_tz::Tz,
) -> Result<(u64, u64)> {
    const PAGE: usize = 5000;
    // Two values bound per row, well under SQLite's 32,766.
    const PER_INSERT: usize = 500;
    conn.execute_unprepared(
        "CREATE TEMP TABLE IF NOT EXISTS interview_rewrite (r INTEGER PRIMARY KEY, v TEXT NOT NULL)",
    )
    .await?;
    let (mut count, mut ambiguous, mut last) = (0u64, 0u64, i64::MIN);
    loop {
        let page = rows(
            conn,
            &format!(
                "SELECT rowid, \"{column}\" FROM \"{table}\" WHERE rowid > {last} \
                 AND typeof(\"{column}\") = 'text' AND substr(\"{column}\", 11, 1) = 'T' \
                 ORDER BY rowid LIMIT {PAGE}"
            ),
            &[],
        )
        .await?;
        let mut rewrites: Vec<(i64, String)> = Vec::with_capacity(page.len());
        for row in &page {
            let rowid: i64 = row.try_get_by_index(0)?;
            let text: String = row.try_get_by_index(1)?;
            let reading = timestamps::read(&text, table, column, zone);
            if matches!(reading, Reading::Ambiguous(_)) {
                ambiguous += 1;
            }
            let instant = reading.instant().ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{table}.{column} holds `{text}`, which the preflight should have refused"
                ))
            })?;
            rewrites.push((rowid, timestamps::module_form(instant)));
            last = rowid;
        }
        for chunk in rewrites.chunks(PER_INSERT) {
            let placeholders = vec!["(?, ?)"; chunk.len()].join(", ");
            let values = chunk
                .iter()
                .flat_map(|(rowid, text)| [(*rowid).into(), text.clone().into()]);
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("INSERT INTO interview_rewrite (r, v) VALUES {placeholders}"),
                values,
            ))
            .await?;
        }
        conn.execute_unprepared(&format!(
            "UPDATE \"{table}\" SET \"{column}\" = \
               (SELECT v FROM interview_rewrite WHERE r = \"{table}\".rowid) \
             WHERE rowid IN (SELECT r FROM interview_rewrite)"
        ))
        .await?;
        conn.execute_unprepared("DELETE FROM interview_rewrite")
            .await?;
        count += rewrites.len() as u64;
        if page.len() < PAGE {
            break;
        }
    }
    conn.execute_unprepared("DROP TABLE interview_rewrite")
        .await?;
    Ok((count, ambiguous))
}

/// What is copied of each table the file has into this module's: the
/// columns both have, in this module's order, each with its meaning.
///
/// # Errors
/// [`Error::InvalidInput`] when a column of the file has no place in this
/// module's table (its values would be lost).
fn copy_plans(python: &SchemaShape, ours: &SchemaShape) -> Result<BTreeMap<String, CopyPlan>> {
    let mut plans = BTreeMap::new();
    for table in ADOPTED_TABLES {
        let (Some(theirs), Some(target)) = (python.get(table), ours.get(table)) else {
            continue;
        };
        if let Some(lost) = theirs
            .columns
            .iter()
            .find(|c| !target.columns.iter().any(|t| t.name == c.name))
        {
            return Err(Error::InvalidInput(format!(
                "{table}.{} has no place in this module's schema; nothing was adopted",
                lost.name
            )));
        }
        let columns = target
            .columns
            .iter()
            .filter(|c| theirs.columns.iter().any(|t| t.name == c.name))
            .map(|c| {
                if c.declared_type == "DATETIME_TEXT" {
                    Copied::Timestamp(c.name.clone())
                } else if let Some(value) = null_meaning(table, &c.name) {
                    Copied::NullMeans(c.name.clone(), value)
                } else {
                    Copied::Value(c.name.clone())
                }
            })
            .collect();
        let key = target
            .columns
            .iter()
            .find(|c| c.primary_key)
            .map_or_else(|| "rowid".to_owned(), |c| c.name.clone());
        plans.insert(table.to_owned(), CopyPlan { key, columns });
    }
    Ok(plans)
}

/// Chains each group of duplicate current nodes in the order they were
/// recorded: every node but the newest is marked superseded by the next
/// newer one, so the newest stays current and the history reads in order.
/// (Superseded by the newest directly would give two rows the same
/// `(session, label, type, superseded_by)`, which the Python schema's
/// UNIQUE refuses.)
async fn repair_duplicates(conn: &DatabaseConnection) -> Result<Vec<RepairedNode>> {
    let duplicates = rows(
        conn,
        "SELECT n.id, n.session_id, n.label, n.node_type, \
           (SELECT m.id FROM kg_nodes m WHERE m.superseded_by IS NULL AND m.session_id = n.session_id \
              AND m.label = n.label AND m.node_type = n.node_type \
              AND (m.recorded_at, m.id) > (n.recorded_at, n.id) \
            ORDER BY m.recorded_at, m.id LIMIT 1) AS next_newer \
         FROM kg_nodes n WHERE n.superseded_by IS NULL",
        &[],
    )
    .await?;
    let mut repaired = Vec::new();
    for row in duplicates {
        let node_id: String = row.try_get_by_index(0)?;
        let Some(next_newer) = row.try_get_by_index::<Option<String>>(4)? else {
            continue; // the newest of its group, or alone
        };
        repaired.push(RepairedNode {
            node_id,
            superseded_by: next_newer,
            session_id: row.try_get_by_index(1)?,
            label: row.try_get_by_index(2)?,
            node_type: row.try_get_by_index(3)?,
        });
    }
    for node in &repaired {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "UPDATE kg_nodes SET superseded_by = ? WHERE id = ?",
            [
                node.superseded_by.clone().into(),
                node.node_id.clone().into(),
            ],
        ))
        .await?;
    }
    Ok(repaired)
}

/// The adoption itself, in one transaction on the writer connection
/// (foreign keys off): repair if asked, the other tables of the target,
/// each of the six tables rebuilt into the target's definition, then the
/// proof — equal counts and checksums, no dangling reference — before
/// `COMMIT`. Any failure rolls all of it back.
async fn rebuild(
    conn: &DatabaseConnection,
    target: &Scratch,
    python: &SchemaShape,
    ours: &SchemaShape,
    options: AdoptionOptions,
    checked_at: i64,
) -> Result<Immediate<AdoptionReport>> {
    in_immediate_transaction(conn, Some(checked_at), || {
        rebuild_in_transaction(conn, target, python, ours, options)
    })
    .await
}

/// Runs `body` between `BEGIN IMMEDIATE` and `COMMIT` on the writer
/// connection, unless another process migrated the file meanwhile or,
/// given the `data_version` the checks saw, committed anything since; any
/// failure, COMMIT's included, rolls all of it back.
async fn in_immediate_transaction<T, Body>(
    conn: &DatabaseConnection,
    checked_at: Option<i64>,
    body: impl FnOnce() -> Body,
) -> Result<Immediate<T>>
where
    Body: std::future::Future<Output = Result<T>>,
{
    conn.execute_unprepared("BEGIN IMMEDIATE").await?;
    let meanwhile = if migrated_meanwhile(conn).await? {
        Some(Immediate::MigratedMeanwhile)
    } else if let Some(checked_at) = checked_at
        && data_version(conn).await? != checked_at
    {
        Some(Immediate::ChangedMeanwhile)
    } else {
        None
    };
    if let Some(meanwhile) = meanwhile {
        conn.execute_unprepared("ROLLBACK").await?;
        return Ok(meanwhile);
    }
    let result = match body().await {
        Ok(value) => conn
            .execute_unprepared("COMMIT")
            .await
            .map(|_| value)
            .map_err(Error::from),
        Err(err) => Err(err),
    };
    if result.is_err() {
        let _ = conn.execute_unprepared("ROLLBACK").await;
    }
    result.map(Immediate::Done)
}

async fn rebuild_in_transaction(
    conn: &DatabaseConnection,
    target: &Scratch,
    python: &SchemaShape,
    ours: &SchemaShape,
    options: AdoptionOptions,
) -> Result<AdoptionReport> {
    let zone = options.python_local_time_zone;
    let repaired_nodes = if options.repair_duplicate_current_nodes {
        repair_duplicates(conn).await?
    } else {
        Vec::new()
    };
    let plans = copy_plans(python, ours)?;
    let (rows_before, sums_before) = fingerprint(conn, &plans, zone).await?;

    let (mut rewritten_values, _) = rewrite_values(conn, &plans, zone, false).await?;
    let created_tables = create_missing_tables(conn, target, python).await?;
    for (table, plan) in &plans {
        let sql = &ours[table].sql;
        let definition = definition_of(sql).ok_or_else(|| {
            Error::InvalidInput(format!("cannot read the definition of `{table}`: {sql}"))
        })?;
        let columns: Vec<&str> = plan.columns.iter().map(Copied::name).collect();
        rebuild_table(
            conn,
            &Rebuild {
                table,
                definition,
                columns: &columns,
                indexes: Indexes::Replace(
                    schema_statements(&target.connection, table, &["index"]).await?,
                ),
            },
        )
        .await?;
    }
    let (timestamps, ambiguous_local_times) = rewrite_values(conn, &plans, zone, true).await?;
    rewritten_values.extend(timestamps);

    let (rows_after, sums_after) = fingerprint(conn, &plans, zone).await?;
    if rows_after != rows_before || sums_after != sums_before {
        return Err(Error::InvalidInput(format!(
            "adoption would change the data (rows {rows_before:?} → {rows_after:?}, checksums \
             {sums_before:?} → {sums_after:?}); rolled back"
        )));
    }
    check_foreign_keys(conn).await?;
    if options.fail_before_commit {
        return Err(Error::InvalidInput(
            "adoption failed on purpose before COMMIT (a test's failure injection)".into(),
        ));
    }
    Ok(AdoptionReport {
        adopted_from: "python_module",
        recognised_as: String::new(),
        python_local_time_zone: zone.name().to_owned(),
        backup: None,
        rows: rows_after,
        checksums: sums_after,
        rewritten_values,
        ambiguous_local_times,
        created_tables,
        kept_tables: python
            .keys()
            .filter(|t| !ADOPTED_TABLES.contains(&t.as_str()))
            .cloned()
            .collect(),
        repaired_nodes,
        recorded_migrations: super::known_migrations(),
    })
}

/// A database whose tables are this module's but whose migration records
/// are gone: the records are written back, nothing else changes.
async fn record_migrations(
    conn: &DatabaseConnection,
    target: &Scratch,
) -> Result<Immediate<AdoptionReport>> {
    let recorded = in_immediate_transaction(conn, None, || async {
        let table = "seaql_migrations";
        if table_sql(conn, table).await?.is_none()
            && let Some(sql) = table_sql(&target.connection, table).await?
        {
            conn.execute_unprepared(&sql).await?;
        }
        for insert in row_inserts(&target.connection, table).await? {
            conn.execute_unprepared(&insert).await?;
        }
        Ok(())
    })
    .await?;
    if !matches!(recorded, Immediate::Done(())) {
        return Ok(Immediate::MigratedMeanwhile);
    }
    Ok(Immediate::Done(AdoptionReport {
        adopted_from: "interview_persistence",
        recognised_as: String::new(),
        python_local_time_zone: String::new(),
        rewritten_values: BTreeMap::new(),
        ambiguous_local_times: 0,
        created_tables: Vec::new(),
        kept_tables: Vec::new(),
        backup: None,
        rows: BTreeMap::new(),
        checksums: BTreeMap::new(),
        repaired_nodes: Vec::new(),
        recorded_migrations: super::known_migrations(),
    }))
}

/// Whether another process recorded migrations since this one looked
/// (checked under the write lock, so the answer holds until COMMIT).
async fn migrated_meanwhile(conn: &DatabaseConnection) -> Result<bool> {
    Ok(!super::schema_status(conn).await?.applied.is_empty())
}

/// What stands between the outer parentheses of a `CREATE TABLE`.
fn definition_of(sql: &str) -> Option<&str> {
    let open = sql.find('(')?;
    let close = sql.rfind(')')?;
    (open < close).then(|| &sql[open + 1..close])
}
