//! The health check: the Rust form of the Python module's
//! `check_database_health`, with the same keys and more.

use std::time::Instant;

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::Serialize;

use crate::config::{Backend, DatabaseConfig};
use crate::database::{
    Database, check_writable, existing_regular_file, owed_scrubs, query_value, shared_mode,
};
use crate::error::Result;
use crate::schema::schema_status;

/// Whether the database can serve the interview system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Reachable, intact, schema current.
    Healthy,
    /// Something is wrong; `error` says what.
    Unhealthy,
}

/// The largest SQLite file [`IntegrityCheck::Auto`] still reads whole.
/// `quick_check` reads every page, so its time grows with the file: this
/// limit keeps a health poll short (the measured cost per MB is in
/// docs/benchmarks.md).
pub const AUTO_QUICK_CHECK_LIMIT: u64 = 32 * 1024 * 1024;

/// How thoroughly SQLite's file is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntegrityCheck {
    /// The default, meant for a health endpoint polled every few seconds:
    /// [`Quick`](Self::Quick) while the pages in use hold at most
    /// [`AUTO_QUICK_CHECK_LIMIT`] bytes (free pages and the WAL file do not
    /// count), else no file check (`integrity` is `"skipped"`; operators
    /// run `interview-db health --full`).
    #[default]
    Auto,
    /// `PRAGMA quick_check`: O(N), finds damaged pages and records, but
    /// not an index that disagrees with its table.
    Quick,
    /// `PRAGMA integrity_check`: also cross-checks every index against its
    /// table, O(N log N).
    Full,
    /// No file check (`integrity` is `"skipped"`).
    Skip,
}

/// What the integrity check found.
///
/// Serialises as the text the Python module's report carried: `ok`,
/// `skipped`, `not_checked`, or the finding itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrityFinding {
    /// The check ran and found nothing wrong.
    Ok,
    /// No check ran (SQLite: [`IntegrityCheck::Skip`], or an automatic
    /// check on a database too large to scan per request).
    Skipped,
    /// PostgreSQL without data checksums: there is no cheap
    /// whole-database check to run per request.
    NotChecked,
    /// The check found damage: SQLite's first complaint, or the count of
    /// checksum failures PostgreSQL has seen.
    Failed(String),
}

impl IntegrityFinding {
    /// Whether the finding makes the database unhealthy.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }

    /// SQLite's answer to `quick_check(1)` / `integrity_check(1)`.
    pub(crate) fn from_sqlite(answer: Option<String>) -> Self {
        match answer.as_deref() {
            Some("ok") => Self::Ok,
            Some(finding) => Self::Failed(finding.to_owned()),
            None => Self::Failed("the check returned nothing".into()),
        }
    }
}

impl std::fmt::Display for IntegrityFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Skipped => "skipped",
            Self::NotChecked => "not_checked",
            Self::Failed(finding) => finding,
        })
    }
}

impl Serialize for IntegrityFinding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Which check the `integrity` finding of a report comes from
/// (`integrity_check` in the JSON): a finding of `ok` means only what
/// that check can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntegrityMethod {
    /// SQLite's `PRAGMA quick_check`: every page and record, but not
    /// whether an index agrees with its table — an index key changed on
    /// disk (a row missing from an index, or found under the wrong key)
    /// passes it. Only [`Full`](Self::Full) finds that.
    Quick,
    /// SQLite's `PRAGMA integrity_check`: also every index against its
    /// table.
    Full,
    /// PostgreSQL with data checksums on: no check ran; the finding is the
    /// count of checksum failures the server has met in the pages it read
    /// (since its statistics were reset). Pages not read since are not
    /// vouched for.
    ServerChecksums,
    /// Nothing was checked: SQLite's check skipped (asked, or the
    /// database is too large for the automatic one), PostgreSQL without
    /// data checksums, or a database that could not be reached.
    #[serde(rename = "none")]
    NotRun,
}

/// What [`check_health_with`] checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthOptions {
    /// How thoroughly to check the SQLite file.
    pub integrity: IntegrityCheck,
}

/// The health report. Serialises to the Python module's keys (`status`,
/// `session_count`, `integrity`, `path`) plus what an operator needs next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// `healthy` or `unhealthy`.
    pub status: HealthStatus,
    /// How many interview sessions the database holds, when it could count.
    pub session_count: Option<u64>,
    /// The integrity finding, as far as the check named by
    /// `integrity_check` sees. SQLite: `ok`, its first complaint, or
    /// `skipped`. PostgreSQL: `ok` or the count of checksum failures the
    /// server has seen when data checksums are on, `not_checked` when they
    /// are off (there is no cheap whole-database check to run per request).
    pub integrity: Option<IntegrityFinding>,
    /// The SQLite file, `:memory:`, or the URL with its password redacted.
    pub path: String,
    /// Which check `integrity` comes from: `quick`, `full`,
    /// `server_checksums` (PostgreSQL) or `none`.
    pub integrity_check: IntegrityMethod,
    /// `sqlite` or `postgres`.
    pub backend: Backend,
    /// The most recent applied migration.
    pub latest_migration: Option<String>,
    /// Migrations of this build not yet applied.
    pub pending_migrations: Vec<String>,
    /// SQLite's journal mode (`wal` expected; `memory` for `:memory:`).
    pub journal_mode: Option<String>,
    /// Whether foreign keys are enforced on the connection checked
    /// (always on PostgreSQL).
    pub foreign_keys: Option<bool>,
    /// SQLite: whether this module could write the database as
    /// configured (the rule is in docs/health.md); `false` makes the
    /// report unhealthy. `None` where it is not asked: a `mode=ro` URL,
    /// PostgreSQL, or a location that could not be examined.
    pub writable: Option<bool>,
    /// Erased sessions whose scrub is still owed: old copies of their rows
    /// remain in the files (a crash cut the scrub short, or a reader of
    /// another process held the WAL) until the next open or `interview-db
    /// erase --resume` completes it. Named in `warnings` too; `None` when
    /// the schema has no record of it yet.
    pub erasures_unscrubbed: Option<Vec<String>>,
    /// SQLite, when the integrity check ran (it reads the whole file too):
    /// timestamps the Python system wrote beside this module in its own
    /// shapes, per `table.column` (none: an empty map). They are read as
    /// they are — not damage. Nodes' and edges' `recorded_at` among them
    /// are the Python host's local time, which only adoption converts:
    /// named in `warnings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_written_values: Option<std::collections::BTreeMap<String, u64>>,
    /// How long the check took, in milliseconds.
    pub elapsed_ms: f64,
    /// What is wrong, when unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What an operator should look at, though the database can serve:
    /// e.g. a SQLite file that others than its owner may read. Serialised
    /// only when there is one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl HealthReport {
    /// Whether the status is healthy.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }

    /// Makes the report unhealthy for `problem`, said first.
    fn add_problem(&mut self, problem: String) {
        self.status = HealthStatus::Unhealthy;
        self.error = Some(match self.error.take() {
            Some(others) => format!("{problem}; {others}"),
            None => problem,
        });
    }

    fn unreachable(path: String, backend: Backend, error: String, started: Instant) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            session_count: None,
            integrity: None,
            path,
            integrity_check: IntegrityMethod::NotRun,
            backend,
            latest_migration: None,
            pending_migrations: Vec::new(),
            journal_mode: None,
            foreign_keys: None,
            writable: None,
            erasures_unscrubbed: None,
            python_written_values: None,
            elapsed_ms: elapsed_ms(started),
            error: Some(error),
            warnings: Vec::new(),
        }
    }
}

/// Checks the database with the default options (a quick integrity check,
/// which cannot see an index that disagrees with its table: see
/// [`IntegrityMethod::Quick`]).
/// Never fails: every problem becomes an `unhealthy` report.
pub async fn check_health(db: &Database) -> HealthReport {
    check_health_with(db, HealthOptions::default()).await
}

/// Checks the database as `options` say. Never fails: every problem
/// becomes an `unhealthy` report with an `error`.
#[tracing::instrument(skip_all, fields(backend = %db.backend()))]
pub async fn check_health_with(db: &Database, options: HealthOptions) -> HealthReport {
    let started = Instant::now();
    // One connection for every question, so that the pragmas read are
    // those of a real pooled connection.
    let report = match db.connection().begin().await {
        Ok(txn) => {
            let report = inspect(&txn, db, options, started).await;
            // Read-only work: rolling back releases the snapshot.
            let _ = txn.rollback().await;
            report
        }
        Err(err) => Err(err.into()),
    };
    let report = report.unwrap_or_else(|err| {
        HealthReport::unreachable(
            db.display_location(),
            db.backend(),
            err.to_string(),
            started,
        )
    });
    if report.is_healthy() {
        tracing::debug!(elapsed_ms = report.elapsed_ms, "database healthy");
    } else {
        tracing::warn!(
            error = report.error.as_deref().unwrap_or(""),
            "database unhealthy"
        );
    }
    report
}

/// Connects as `config` says and checks; a database that cannot even be
/// opened gives an `unhealthy` report saying why. Never fails, never
/// migrates, and never writes: a SQLite file is opened read-only (no
/// directory or file created on a mistyped path, no switch to WAL, no
/// write probe), and a missing file is reported, not created. What is not
/// a regular file at the path (a FIFO, a socket, a device) is reported
/// without being opened. Unless the URL says `mode=ro`, whether the file
/// could be written is asked too, without writing (`writable`): a
/// database `init` would refuse as one that "cannot be written" is
/// `unhealthy` here, with the same error.
pub async fn check_health_at(config: &DatabaseConfig, options: HealthOptions) -> HealthReport {
    let started = Instant::now();
    let unreachable = |reason: String| {
        HealthReport::unreachable(
            config.url.display_location(),
            config.url.backend(),
            reason,
            started,
        )
    };
    let mut writable = None;
    let config = match config.url.sqlite_location() {
        Some(crate::config::SqliteLocation::File { path, .. }) => {
            match existing_regular_file(&path) {
                Ok(true) => {}
                Ok(false) => {
                    return unreachable(format!(
                        "there is no database file at `{}` (nothing was created)",
                        path.display()
                    ));
                }
                Err(err) => return unreachable(err.to_string()),
            }
            if !config.url.is_read_only() {
                writable = Some(check_writable(&path));
            }
            match crate::config::DatabaseUrl::sqlite_file_read_only(&path) {
                Ok(url) => DatabaseConfig {
                    url,
                    ..config.clone()
                },
                Err(err) => return unreachable(err.to_string()),
            }
        }
        _ => config.clone(),
    };
    let mut report = match Database::open(&config).await {
        Ok(db) => {
            let report = check_health_with(&db, options).await;
            let _ = db.close().await;
            report
        }
        Err(err) => {
            // Where SQLite cannot open the file even for reading because
            // it cannot create its `-shm`, opening fails for the reason
            // the writability check gives (added below): said once.
            let said_below = matches!(err, crate::Error::ReadOnlyLocation { .. })
                && matches!(writable, Some(Err(_)));
            let mut report = HealthReport::unreachable(
                config.url.display_location(),
                config.url.backend(),
                err.to_string(),
                started,
            );
            if said_below {
                report.error = None;
            }
            report
        }
    };
    if let Some(answer) = writable {
        report.writable = Some(answer.is_ok());
        if let Err(unwritable) = answer {
            report.add_problem(unwritable.to_string());
        }
    }
    report
}

async fn inspect(
    conn: &impl ConnectionTrait,
    db: &Database,
    options: HealthOptions,
    started: Instant,
) -> Result<HealthReport> {
    let backend = db.backend();
    let mut problems = Vec::new();

    // A handle opened read-write was writable when it opened: asked again,
    // since a file can be made immutable or its mount read-only since.
    let writable = match db.sqlite_file() {
        Some(path) if !db.config().url.is_read_only() => match check_writable(path) {
            Ok(()) => Some(true),
            Err(unwritable) => {
                problems.push(unwritable.to_string());
                Some(false)
            }
        },
        _ => None,
    };

    let ((integrity, integrity_check), journal_mode, foreign_keys) = match backend {
        Backend::Sqlite => {
            let integrity = match resolve(options.integrity, conn).await? {
                IntegrityCheck::Quick | IntegrityCheck::Auto => (
                    IntegrityFinding::from_sqlite(
                        query_value::<String>(conn, "PRAGMA quick_check(1)").await?,
                    ),
                    IntegrityMethod::Quick,
                ),
                IntegrityCheck::Full => (
                    IntegrityFinding::from_sqlite(
                        query_value::<String>(conn, "PRAGMA integrity_check(1)").await?,
                    ),
                    IntegrityMethod::Full,
                ),
                IntegrityCheck::Skip => (IntegrityFinding::Skipped, IntegrityMethod::NotRun),
            };
            let journal_mode = query_value::<String>(conn, "PRAGMA journal_mode").await?;
            let foreign_keys = query_value::<i64>(conn, "PRAGMA foreign_keys")
                .await?
                .map(|v| v == 1);
            (integrity, journal_mode, foreign_keys)
        }
        Backend::Postgres => (postgres_integrity(conn).await?, None, Some(true)),
    };
    if integrity.is_failure() {
        problems.push(format!("integrity check failed: {integrity}"));
    }
    if foreign_keys == Some(false) {
        problems.push("foreign keys are not enforced".into());
    }

    let schema = schema_status(conn).await?;
    if !schema.unknown.is_empty() {
        problems.push(format!(
            "schema is newer than this build (unknown migrations: {})",
            schema.unknown.join(", ")
        ));
    }
    if !schema.pending.is_empty() {
        problems.push(format!(
            "schema not up to date (pending migrations: {}); run `interview-db init`",
            schema.pending.join(", ")
        ));
    }

    let session_count = if schema.applied.is_empty() {
        None
    } else {
        // Plain SQL: the entity's count selects its every column, which a
        // schema one migration behind does not have yet.
        match crate::database::query_value::<i64>(conn, r#"SELECT COUNT(*) FROM "sessions""#).await
        {
            Ok(count) => Some(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)),
            Err(err) => {
                problems.push(format!("cannot count sessions: {err}"));
                None
            }
        }
    };

    let mut warnings = file_warnings(db);
    // `None` before the schema records it (its records count as owed once
    // migrated; the pending migration makes the report unhealthy anyway).
    let erasures_unscrubbed = match owed_scrubs(conn).await? {
        Some(owed) if !schema.applied.is_empty() => {
            let owed: Vec<String> = owed.into_iter().map(|owed| owed.session_id).collect();
            if !owed.is_empty() {
                warnings.push(format!(
                    "the scrub of {} erased session(s) is owed ({}): old copies of their rows \
                     remain in the files until the next open or `interview-db erase --resume`",
                    owed.len(),
                    owed.join(", ")
                ));
            }
            Some(owed)
        }
        _ => None,
    };

    let python_written_values = if backend == Backend::Sqlite
        && integrity_check != IntegrityMethod::NotRun
        && !schema.applied.is_empty()
    {
        let counts = crate::schema::python_written_values(conn).await?;
        let local: u64 = counts
            .iter()
            .filter(|(column, _)| column.ends_with(".recorded_at"))
            .map(|(_, n)| n)
            .sum();
        if local > 0 {
            warnings.push(format!(
                "{local} node or edge timestamp(s) the Python system wrote beside this module \
                 carry its host's local time without a zone; this module reads them as UTC"
            ));
        }
        Some(counts)
    } else {
        None
    };

    Ok(HealthReport {
        python_written_values,
        status: if problems.is_empty() {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        },
        session_count,
        integrity: Some(integrity),
        path: db.display_location(),
        integrity_check,
        backend,
        latest_migration: schema.latest_applied().map(str::to_owned),
        pending_migrations: schema.pending,
        journal_mode,
        foreign_keys,
        writable,
        erasures_unscrubbed,
        elapsed_ms: elapsed_ms(started),
        error: (!problems.is_empty()).then(|| problems.join("; ")),
        warnings,
    })
}

/// Warnings about the SQLite file: one that group or others may read or
/// write. The module creates its files owner-only but never changes the
/// mode of a file it found.
fn file_warnings(db: &Database) -> Vec<String> {
    let Some(path) = db.sqlite_file() else {
        return Vec::new();
    };
    match shared_mode(path) {
        Some(mode) => vec![format!(
            "the database file `{}` has mode {mode:04o}: others than its owner may read or write \
             participants' data; `chmod 600` it (and its -wal and -shm files)",
            path.display()
        )],
        None => Vec::new(),
    }
}

/// [`IntegrityCheck::Auto`] made concrete for this database: by the bytes
/// of the pages in use (what a check reads), not by file sizes — SQLite
/// keeps free pages in the file and reuses the WAL file without shrinking
/// it, so a small database can have large files.
async fn resolve(check: IntegrityCheck, conn: &impl ConnectionTrait) -> Result<IntegrityCheck> {
    if check != IntegrityCheck::Auto {
        return Ok(check);
    }
    // One round trip: the pragmas as table-valued functions.
    let in_use = query_value::<i64>(
        conn,
        "SELECT (page_count - freelist_count) * page_size \
         FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()",
    )
    .await?
    .unwrap_or(0);
    let in_use = u64::try_from(in_use.max(0)).unwrap_or(u64::MAX);
    Ok(if in_use <= AUTO_QUICK_CHECK_LIMIT {
        IntegrityCheck::Quick
    } else {
        IntegrityCheck::Skip
    })
}

/// What can honestly be said of a PostgreSQL database's integrity without
/// reading all of it: with data checksums on, `ok` while the server has
/// counted no checksum failure in this database (it verifies every page it
/// reads), else the count; with checksums off, `not_checked`.
async fn postgres_integrity(
    conn: &impl ConnectionTrait,
) -> Result<(IntegrityFinding, IntegrityMethod)> {
    let checksums = query_value::<String>(conn, "SHOW data_checksums").await?;
    if checksums.as_deref() != Some("on") {
        return Ok((IntegrityFinding::NotChecked, IntegrityMethod::NotRun));
    }
    let failures = query_value::<i64>(
        conn,
        "SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()",
    )
    .await?
    .unwrap_or(0);
    let finding = if failures == 0 {
        IntegrityFinding::Ok
    } else {
        IntegrityFinding::Failed(format!(
            "{failures} checksum failure(s) reported by the server"
        ))
    };
    Ok((finding, IntegrityMethod::ServerChecksums))
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
