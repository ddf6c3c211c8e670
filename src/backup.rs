//! Online backups of a SQLite database: a consistent copy taken while
//! interviews go on, verified before it is given its name.
//!
//! How: one read transaction on a connection of its own counts the rows of
//! every table and then hands the same snapshot to SQLite's backup API
//! (`sqlite3_backup_step(-1)`, one step, so it never restarts when another
//! connection writes). In WAL mode a reader blocks no writer: turns keep
//! committing while the copy is made; only the checkpointer cannot recycle
//! the WAL past the snapshot until the copy is done. The page copy runs on
//! a blocking thread that owns the connection, so no task of the runtime
//! waits for it. `VACUUM INTO` would
//! copy the same snapshot, but it cannot run inside a transaction, so the
//! rows it copied could not be counted in that snapshot to verify it.
//!
//! The copy is written to a temporary name beside the destination, switched
//! to a rollback journal (a backup is one self-contained file), checked
//! (`integrity_check`, migrations, row counts equal to the snapshot's), and
//! only then linked to its name — which never replaces a file that exists.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Backend, DatabaseConfig, DatabaseUrl, SqliteLocation};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::files::{TemporaryFile, names_database_file, refuse_existing};
use crate::health::IntegrityFinding;
pub use crate::schema::DATA_TABLES;

/// How many rows a table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableRows {
    /// The table.
    pub table: &'static str,
    /// Its rows.
    pub rows: u64,
}

/// What [`backup`] made, printed by `interview-db backup` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The database copied (password-free location).
    pub source: String,
    /// The backup file.
    pub destination: PathBuf,
    /// The newest migration the copy records (the source's).
    pub latest_migration: Option<String>,
    /// `integrity_check` of the copy: always `ok` in a returned report.
    pub integrity: IntegrityFinding,
    /// Rows per table, counted in the snapshot and found in the copy.
    pub tables: Vec<TableRows>,
    /// The copy's size in bytes.
    pub bytes: u64,
    /// How long the snapshot was held open on the source, in ms (the time
    /// during which the WAL could not be recycled; writers never wait).
    pub snapshot_ms: f64,
    /// The whole backup, verification included, in ms.
    pub elapsed_ms: f64,
}

/// Writes a consistent, verified copy of the live SQLite database behind
/// `db` to `destination`, while other tasks and processes keep writing.
///
/// The destination must not exist: an existing file is refused, never
/// overwritten (also when one appears while the copy is made). Missing
/// parent directories are created owner-only, and the file is 0600. On any
/// failure, or if the future is dropped, the temporary file is removed and
/// nothing is left at `destination`.
///
/// # Errors
/// - [`Error::Unsupported`] on PostgreSQL (use `pg_dump`, or
///   `interview-db copy` to a SQLite file);
/// - [`Error::DestinationExists`] when something is at `destination`;
/// - [`Error::Backup`] when the copy cannot be written or fails its
///   verification;
/// - the classified database error when the source cannot be read.
#[tracing::instrument(skip_all, fields(source = %db.display_location(), destination = %destination.display()))]
pub async fn backup(db: &Database, destination: &Path) -> Result<BackupReport> {
    let started = Instant::now();
    if db.backend() == Backend::Postgres {
        return Err(Error::Unsupported(
            "`backup` copies SQLite files; for PostgreSQL use `pg_dump` (and `pg_restore`), \
             or `interview-db copy --to sqlite://<file>` for a SQLite copy of the study"
                .into(),
        ));
    }
    let failed = |reason: String| Error::Backup {
        path: destination.to_path_buf(),
        reason,
    };
    refuse_existing(destination)?;
    if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
        migration::location::create_private_directories(parent)
            .map_err(|err| failed(format!("cannot create its directory: {err}")))?;
    }
    // After the directories exist, so that `new/../x.db-wal` is judged by
    // where it really is.
    if let Some(source) = db.sqlite_file()
        && names_database_file(source, destination)
    {
        return Err(failed(
            "that name belongs to the database itself (its file, or the -journal, -wal or -shm \
             SQLite keeps beside it)"
                .into(),
        ));
    }
    let temporary = TemporaryFile::beside(destination).map_err(|err| failed(err.to_string()))?;

    let snapshot = sqlite::copy_snapshot(db, temporary.path()).await?;
    let integrity = sqlite::verify(temporary.path(), &snapshot)
        .await
        .map_err(|reason| failed(format!("the copy failed its verification: {reason}")))?;
    let bytes = std::fs::metadata(temporary.path())
        .map_err(|err| failed(err.to_string()))?
        .len();
    temporary.publish(destination, failed)?;

    let report = BackupReport {
        source: db.display_location(),
        destination: destination.to_path_buf(),
        latest_migration: snapshot.migrations.last().cloned(),
        integrity,
        tables: snapshot.tables,
        bytes,
        snapshot_ms: snapshot.held_ms,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    tracing::info!(
        bytes = report.bytes,
        snapshot_ms = report.snapshot_ms,
        elapsed_ms = report.elapsed_ms,
        "backup written"
    );
    Ok(report)
}

/// Backs up the database `config` names to `destination`: [`backup`],
/// with the source opened as `interview-db backup` opens it.
///
/// A SQLite file is opened read-only (`mode=ro`): no writer, no switch to
/// WAL, no write probe, no checkpoint. A backup changes nothing in its
/// source — not its bytes, not its journal mode — also when the source is
/// in rollback-journal mode (a restored backup, a copy's archive), which
/// opening it for writing would have switched to WAL. (A live database in
/// WAL mode is read in WAL mode, from its `-wal` too, as any reader does.)
/// In rollback-journal mode the snapshot is a shared lock: a writer of
/// another process waits (up to its busy timeout) until the copy is made.
///
/// # Errors
/// Those of [`backup`]; [`Error::Backup`] when the SQLite file does not
/// exist; those of [`Database::connect`] when the source cannot be opened.
pub async fn backup_at(config: &DatabaseConfig, destination: &Path) -> Result<BackupReport> {
    let db = match config.url.sqlite_location() {
        Some(SqliteLocation::File { path, .. }) => {
            if !path.is_file() {
                return Err(Error::Backup {
                    path: destination.to_path_buf(),
                    reason: format!(
                        "there is no database file at `{}` to back up",
                        path.display()
                    ),
                });
            }
            let mut read_only = config.clone();
            read_only.url = DatabaseUrl::sqlite_file_read_only(&path)?;
            Database::open(&read_only).await?
        }
        _ => Database::open(config).await?,
    };
    let report = backup(&db, destination).await;
    let _ = db.close().await;
    report
}

/// What a backup's snapshot held.
struct Snapshot {
    migrations: Vec<String>,
    tables: Vec<TableRows>,
    held_ms: f64,
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::ffi::CString;
    use std::path::Path;
    use std::time::Instant;

    use sea_orm::sqlx::{self, Connection, Row, SqliteConnection};

    use super::{DATA_TABLES, Snapshot, TableRows};
    use crate::database::Database;
    use crate::error::{Error, Result};
    use crate::health::IntegrityFinding;

    /// Copies one snapshot of the database into the (empty) file at
    /// `target` and says what was in it.
    pub(super) async fn copy_snapshot(db: &Database, target: &Path) -> Result<Snapshot> {
        let failed = |reason: String| Error::Backup {
            path: target.to_path_buf(),
            reason,
        };
        let target_name = c_path(target).map_err(failed)?;
        let dedicated = db.dedicated_connection().await?;
        let acquired = dedicated.get_sqlite_connection_pool().acquire().await;
        // The connection leaves the pool: the copy owns it, so that it can
        // go to a blocking thread and outlive a dropped future safely.
        let conn = acquired.map(sqlx::pool::PoolConnection::detach);
        let _ = dedicated.close().await;
        let mut conn = conn.map_err(Error::from_sqlx)?;
        sqlx::query("BEGIN")
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        let held = Instant::now();
        // The first read starts the snapshot; every count and the copy
        // see the same one.
        let counted = async {
            let migrations = migrations(&mut conn).await?;
            // A file not migrated as far as this build has fewer tables:
            // those it has are counted.
            let present: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(db_err)?;
            let mut tables = Vec::with_capacity(DATA_TABLES.len());
            for table in DATA_TABLES
                .iter()
                .copied()
                .filter(|table| present.iter().any(|name| name == table))
            {
                let rows: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM \"{table}\""
                )))
                .fetch_one(&mut conn)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?;
                tables.push(TableRows {
                    table,
                    rows: u64::try_from(rows).unwrap_or(0),
                });
            }
            Ok::<_, Error>((migrations, tables))
        }
        .await;
        let (migrations, tables) = match counted {
            Ok(counted) => counted,
            Err(err) => {
                let _ = conn.close().await;
                return Err(err);
            }
        };
        // The page copy blocks for as long as the file takes: on a thread
        // of its own, so that no task of the runtime waits for it (on a
        // current-thread runtime, every task would). The thread owns the
        // connection; if this future is dropped, it finishes the copy
        // (into the temporary file, which is then removed) and closes it.
        let runtime = tokio::runtime::Handle::current();
        let copied = tokio::task::spawn_blocking(move || {
            let copied = match runtime.block_on(conn.lock_handle()) {
                Ok(mut handle) => ffi::backup(handle.as_raw_handle(), &target_name),
                Err(err) => Err(err.to_string()),
            };
            // A read transaction: ending it can only release the snapshot.
            runtime.block_on(async {
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let _ = conn.close().await;
            });
            copied
        })
        .await
        .map_err(|err| failed(format!("the copying thread failed: {err}")))?;
        let held_ms = held.elapsed().as_secs_f64() * 1000.0;
        copied.map_err(failed)?;
        Ok(Snapshot {
            migrations,
            tables,
            held_ms,
        })
    }

    /// `path` for `sqlite3_open_v2`: absolute (a relative name beginning
    /// `file:` would be read as a URI), any bytes a Unix name may hold.
    fn c_path(path: &Path) -> std::result::Result<CString, String> {
        let absolute = std::path::absolute(path).map_err(|err| err.to_string())?;
        #[cfg(unix)]
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(absolute.as_os_str()).to_vec();
        #[cfg(not(unix))]
        let bytes = absolute
            .to_str()
            .ok_or_else(|| "the path is not UTF-8".to_owned())?
            .as_bytes()
            .to_vec();
        CString::new(bytes).map_err(|_| "the path holds a NUL byte".to_owned())
    }

    /// Checks the copy at `path` against `snapshot`; says what differs.
    pub(super) async fn verify(
        path: &Path,
        snapshot: &Snapshot,
    ) -> std::result::Result<IntegrityFinding, String> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(|err| format!("cannot open it: {err}"))?;
        let result = async {
            let answer: Option<String> = sqlx::query_scalar("PRAGMA integrity_check(1)")
                .fetch_optional(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
            let integrity = IntegrityFinding::from_sqlite(answer);
            if integrity.is_failure() {
                return Err(format!("integrity_check: {integrity}"));
            }
            let migrations = migrations(&mut conn).await.map_err(|err| err.to_string())?;
            if migrations != snapshot.migrations {
                return Err(format!(
                    "it records migrations {migrations:?}, the source {:?}",
                    snapshot.migrations
                ));
            }
            for expected in &snapshot.tables {
                let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM \"{}\"",
                    expected.table
                )))
                .fetch_one(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
                if u64::try_from(rows).ok() != Some(expected.rows) {
                    return Err(format!(
                        "`{}` has {rows} rows, the snapshot {}",
                        expected.table, expected.rows
                    ));
                }
            }
            Ok(integrity)
        }
        .await;
        let _ = conn.close().await;
        result
    }

    async fn migrations(conn: &mut SqliteConnection) -> Result<Vec<String>> {
        sqlx::query_scalar("SELECT version FROM seaql_migrations ORDER BY version")
            .fetch_all(conn)
            .await
            .map_err(db_err)
    }

    fn db_err(err: sqlx::Error) -> Error {
        Error::from_sqlx(err)
    }

    /// The two SQLite calls sqlx does not wrap: the backup API, and closing
    /// the copy's connection.
    #[allow(unsafe_code)]
    mod ffi {
        use std::ffi::{CStr, CString};
        use std::ptr::NonNull;

        use libsqlite3_sys as sys;

        /// Copies every page of `source`'s main database, as its current
        /// read transaction sees it, into the file `target` (empty), then
        /// switches the copy to a rollback journal.
        pub(super) fn backup(
            source: NonNull<sys::sqlite3>,
            target: &CString,
        ) -> Result<(), String> {
            let mut destination: *mut sys::sqlite3 = std::ptr::null_mut();
            // SAFETY: `target` is NUL-terminated; on return `destination`
            // is a connection (closed below, even when opening failed, as
            // SQLite asks).
            let opened = unsafe {
                sys::sqlite3_open_v2(
                    target.as_ptr(),
                    &raw mut destination,
                    sys::SQLITE_OPEN_READWRITE | sys::SQLITE_OPEN_NOMUTEX,
                    std::ptr::null(),
                )
            };
            let result = if opened == sys::SQLITE_OK {
                // SAFETY: both connections are open and used by this thread
                // alone: `source` is borrowed from its locked sqlx handle.
                unsafe { copy_pages(source.as_ptr(), destination) }
            } else {
                // SAFETY: `destination` is the handle open_v2 returned.
                Err(unsafe { message(destination, opened) })
            };
            // SAFETY: closes the handle open_v2 returned (NULL is a no-op);
            // the backup object was finished before.
            unsafe { sys::sqlite3_close(destination) };
            result
        }

        /// # Safety
        /// Both handles must be open connections no other thread uses.
        unsafe fn copy_pages(
            source: *mut sys::sqlite3,
            destination: *mut sys::sqlite3,
        ) -> Result<(), String> {
            let main = c"main";
            // SAFETY: per this function's contract.
            let backup = unsafe {
                sys::sqlite3_backup_init(destination, main.as_ptr(), source, main.as_ptr())
            };
            if backup.is_null() {
                // SAFETY: the error is the destination's.
                return Err(unsafe { message(destination, sys::sqlite3_errcode(destination)) });
            }
            // SAFETY: `backup` is live until finished right after.
            let stepped = unsafe { sys::sqlite3_backup_step(backup, -1) };
            // SAFETY: finishing releases `backup`; it is not used again.
            let finished = unsafe { sys::sqlite3_backup_finish(backup) };
            if stepped != sys::SQLITE_DONE {
                return Err(format!(
                    "the backup step failed: {}",
                    // SAFETY: a static string for any code.
                    unsafe { CStr::from_ptr(sys::sqlite3_errstr(stepped)) }.to_string_lossy()
                ));
            }
            if finished != sys::SQLITE_OK {
                // SAFETY: the error is the destination's.
                return Err(unsafe { message(destination, finished) });
            }
            let sql = c"PRAGMA journal_mode=DELETE";
            // SAFETY: a NUL-terminated statement on an open connection; no
            // callback, no error string asked for.
            let switched = unsafe {
                sys::sqlite3_exec(
                    destination,
                    sql.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            if switched != sys::SQLITE_OK {
                // SAFETY: the error is the destination's.
                return Err(unsafe { message(destination, switched) });
            }
            Ok(())
        }

        /// # Safety
        /// `connection` is NULL or a connection handle.
        unsafe fn message(connection: *mut sys::sqlite3, code: i32) -> String {
            let text = if connection.is_null() {
                // SAFETY: a static string for any code.
                unsafe { CStr::from_ptr(sys::sqlite3_errstr(code)) }
            } else {
                // SAFETY: valid until the next call on `connection`.
                unsafe { CStr::from_ptr(sys::sqlite3_errmsg(connection)) }
            };
            format!("{} (code {code})", text.to_string_lossy())
        }
    }
}

#[cfg(not(feature = "sqlite"))]
mod sqlite {
    use std::path::Path;

    use super::Snapshot;
    use crate::database::Database;
    use crate::error::{Error, Result};
    use crate::health::IntegrityFinding;

    pub(super) async fn copy_snapshot(_: &Database, _: &Path) -> Result<Snapshot> {
        Err(Error::Unsupported(
            "this build has no SQLite backend".into(),
        ))
    }

    pub(super) async fn verify(_: &Path, _: &Snapshot) -> Result<IntegrityFinding, String> {
        Err("this build has no SQLite backend".into())
    }
}
