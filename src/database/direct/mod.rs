//! SQLite's hot paths on rusqlite: the writer's transactions and the
//! reads a turn plans from, on connections this module drives itself.
//!
//! sqlx runs each SQLite connection on a worker thread of its own and
//! hands it every statement, and every row back, as a message; SeaORM then
//! decodes each row through a generic layer. The turn benchmark measured
//! that as most of the module's cost over raw SQLite (per-row thread
//! hand-offs, per-row decoding, timestamps parsed by trial). Here a whole
//! transaction, or a whole read, is one hand-off to a blocking thread that
//! runs it on a rusqlite connection with cached prepared statements, and
//! rows are decoded straight into the entity models ([`decode`]).
//!
//! Everything else (SeaORM queries on [`Database::connection`](super::Database::connection),
//! interactive write transactions, migrations) still goes through sqlx:
//! both link the same bundled SQLite, and the writer queue orders this
//! path's writes with the others.

pub(crate) mod decode;
mod error;
mod values;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sea_orm::{DbErr, Statement};

use error::from_rusqlite;
pub(crate) use values::DirectRow;

use super::batch::{StatementBatch, WrittenRow};
use super::{Role, role_pragmas};
use crate::config::DatabaseConfig;
use crate::error::{Error, Result};

/// How a direct connection is set up: as the sqlx connections of the same
/// role are (see `configure_sqlite` and [`role_pragmas`]).
#[derive(Debug, Clone)]
pub(crate) struct DirectSettings {
    path: PathBuf,
    synchronous: &'static str,
    busy_timeout: Duration,
    wal_size_limit: u64,
    writer_pragmas: Vec<(&'static str, String)>,
    reader_pragmas: Vec<(&'static str, String)>,
}

impl DirectSettings {
    pub(crate) fn new(config: &DatabaseConfig, path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            synchronous: match config.synchronous {
                crate::Synchronous::Normal => "NORMAL",
                crate::Synchronous::Full => "FULL",
            },
            busy_timeout: config.busy_timeout,
            wal_size_limit: config.wal_size_limit,
            writer_pragmas: role_pragmas(config, Role::Writer),
            reader_pragmas: role_pragmas(config, Role::Reader),
        }
    }

    /// Opens the writer's connection: the file exists already (the sqlx
    /// writer created it and switched it to WAL).
    fn open_writer(&self) -> rusqlite::Result<Connection> {
        self.open(&self.writer_pragmas)
    }

    /// Opens a reader: `query_only`, so that nothing can write around the
    /// writer.
    fn open_reader(&self) -> rusqlite::Result<Connection> {
        self.open(&self.reader_pragmas)
    }

    fn open(&self, pragmas: &[(&'static str, String)]) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {};",
            self.synchronous
        ))?;
        for (name, value) in pragmas {
            conn.execute_batch(&format!("PRAGMA {name} = {value};"))?;
        }
        // Every statement of a turn, and of a read, stays prepared.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }
}

/// The writer's rusqlite connection, owned by the writer thread, which
/// runs one transaction at a time on it.
#[derive(Debug)]
pub(crate) struct DirectWriter {
    conn: Connection,
    wal_limit: WalLimit,
    busy_timeout: Duration,
}

/// The WAL's hard limit, which every process's writer enforces before it
/// writes (see [`DirectWriter::hold_back_the_wal`]).
#[derive(Debug)]
struct WalLimit {
    wal: PathBuf,
    hard_limit: u64,
    /// After a hold-back that could not truncate (a reader on an old
    /// snapshot), the next waits until then, so that a long reader does
    /// not make every write wait.
    not_before: std::time::Instant,
    failures: u32,
}

/// The longest a writer holds every process's writers back while it waits
/// for readers to let the WAL be truncated.
const HOLD_BACK_WAIT: Duration = Duration::from_millis(250);

/// How far the WAL may grow past `wal_size_limit` before writers wait for
/// it to be truncated: half the limit again, at least 4 MiB. What other
/// processes append before they notice stays under the other half.
fn wal_hard_limit(wal_size_limit: u64) -> u64 {
    wal_size_limit.saturating_add((wal_size_limit / 2).max(4 << 20))
}

impl DirectWriter {
    /// Opens it (on a blocking thread: opening reads the file).
    pub(crate) async fn open(settings: DirectSettings) -> Result<Self> {
        let mut wal = settings.path.clone().into_os_string();
        wal.push("-wal");
        let wal_limit = WalLimit {
            wal: PathBuf::from(wal),
            hard_limit: wal_hard_limit(settings.wal_size_limit),
            not_before: std::time::Instant::now(),
            failures: 0,
        };
        let busy_timeout = settings.busy_timeout;
        let conn = blocking(move || settings.open_writer().map_err(from_rusqlite)).await??;
        Ok(Self {
            conn,
            wal_limit,
            busy_timeout,
        })
    }

    /// Backpressure on the WAL, for several processes on one file: each
    /// process's checkpointer pauses only its own writers, so under
    /// writers of several processes its checkpoints may never reach the
    /// WAL's end, and the WAL grows without bound. So before it writes,
    /// a writer that finds the WAL past its hard limit runs a `TRUNCATE`
    /// checkpoint itself, which waits (SQLite's busy handler, at most
    /// `within`) for the write lock and for readers — and so every
    /// process's writers wait for it — then copies the WAL back and
    /// truncates it. One stat of the WAL file per transaction otherwise.
    ///
    /// A reader on an old snapshot can keep it from finishing: the wait is
    /// capped at a quarter of the busy timeout (at most 250 ms), since the
    /// checkpoint holds every process's writers meanwhile; then the write
    /// goes on, and the next attempt waits 100 ms, doubled for each
    /// failure in a row up to 3.2 s.
    pub(crate) fn hold_back_the_wal(&mut self, within: Duration) {
        if !self.wal_past_its_hard_limit() || std::time::Instant::now() < self.wal_limit.not_before
        {
            return;
        }
        // While it waits for a reader, the TRUNCATE holds SQLite's write
        // lock, and every process's writers wait behind it: at most a
        // quarter of the busy timeout (and 250 ms), as the checkpointer's
        // escalation, so that they never run out of their own.
        let cap = HOLD_BACK_WAIT.min(self.busy_timeout / 4);
        let deadline = std::time::Instant::now() + within.min(cap);
        // Until the WAL is back under the limit: truncated here, or by
        // another process (only one checkpoint runs at a time; the others
        // are answered busy at once, and wait here instead of writing).
        let truncated = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let _ = self.conn.busy_timeout(left);
            let busy = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap_or(1)
                != 0;
            if !busy || !self.wal_past_its_hard_limit() {
                break true;
            }
            if left.is_zero() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let _ = self.conn.busy_timeout(self.busy_timeout);
        let limit = &mut self.wal_limit;
        if truncated {
            limit.failures = 0;
            tracing::debug!("the WAL was past its hard limit: truncated");
        } else {
            limit.failures = limit.failures.saturating_add(1);
            let backoff =
                Duration::from_millis(100).saturating_mul(1 << (limit.failures - 1).min(5));
            limit.not_before = std::time::Instant::now() + backoff;
            tracing::debug!("the WAL is past its hard limit and could not be truncated yet");
        }
    }

    /// Whether the WAL is past its hard limit (one stat of the file).
    pub(crate) fn wal_past_its_hard_limit(&self) -> bool {
        std::fs::metadata(&self.wal_limit.wal).map_or(0, |m| m.len()) > self.wal_limit.hard_limit
    }

    /// Runs the statements of `batches` as ONE write transaction
    /// (`BEGIN IMMEDIATE` … `COMMIT`) and returns the rows they returned,
    /// in order; on failure rolls back what the transaction did.
    ///
    /// On failure, the index of the statement that failed among the
    /// batches' statements comes with the error (`None` when `BEGIN` or
    /// `COMMIT` failed).
    pub(crate) fn transaction<'a>(
        &mut self,
        batches: impl IntoIterator<Item = &'a StatementBatch>,
    ) -> std::result::Result<Vec<WrittenRow>, (Option<usize>, Error)> {
        run_transaction(
            &self.conn,
            batches.into_iter().flat_map(StatementBatch::statements),
        )
    }

    /// Sets SQLite's busy timeout on the connection.
    pub(crate) fn set_busy_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.conn.busy_timeout(timeout).map_err(from_rusqlite)
    }
}

/// Reader connections, opened when needed and kept for the next read.
///
/// At most `max_connections` read at once, and no more than there are
/// CPUs: a read waits for its turn up to the acquire timeout.
#[derive(Debug)]
pub(crate) struct DirectReaders {
    settings: DirectSettings,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<tokio::sync::Semaphore>,
    /// How many permits there are.
    most: u32,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

impl DirectReaders {
    pub(crate) fn new(settings: DirectSettings, config: &DatabaseConfig) -> Arc<Self> {
        // A read runs on a CPU from start to end (its pages are cached, or
        // in the OS's cache): more readers than CPUs only switch between
        // them, and the turn benchmark read fewer contexts a second with
        // eight readers on 2 cores than with two (docs/benchmarks.md).
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let most = config
            .max_connections
            .max(1)
            .min(u32::try_from(cpus).unwrap_or(u32::MAX));
        Arc::new(Self {
            settings,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(most as usize)),
            most,
            acquire_timeout: config.acquire_timeout,
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `read` in ONE read transaction on a reader, on a blocking
    /// thread: every query in it sees the same snapshot.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&DirectRead<'_>) -> Result<T> + Send + 'static,
    {
        let closed = || {
            Error::Connection(DbErr::ConnectionAcquire(
                sea_orm::ConnAcquireErr::ConnectionClosed,
            ))
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        // A free permit is taken without arming a timer.
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => tokio::time::timeout(
                self.acquire_timeout,
                Arc::clone(&self.permits).acquire_owned(),
            )
            .await
            .map_err(|_| {
                Error::Connection(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))
            })?
            .map_err(|_| closed())?,
        };
        let readers = Arc::clone(self);
        blocking(move || {
            // Held until the read is done, even if the caller gave up.
            let _permit = permit;
            let conn = match readers.take() {
                Some(conn) => conn,
                None => readers.settings.open_reader().map_err(from_rusqlite)?,
            };
            let outcome = in_read_transaction(&conn, |conn| read(&DirectRead { conn }));
            readers.give_back(conn);
            outcome
        })
        .await?
    }

    fn take(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
    }

    /// Refuses later reads (as on a closed pool), waits for the reads in
    /// progress (a read whose caller gave up still runs to its end, on its
    /// blocking thread), then closes every reader.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Every permit back means no read holds a reader.
        if let Ok(all) = self.permits.acquire_many(self.most).await {
            all.forget();
        }
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(idle);
    }
}

fn in_read_transaction<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("BEGIN DEFERRED")
        .and_then(|mut begin| begin.execute([]))
        .map_err(from_rusqlite)?;
    let outcome = read(conn);
    // A read transaction has nothing to keep: ending it releases the
    // snapshot (and its hold on the WAL) whatever the outcome.
    let ended = conn
        .prepare_cached("COMMIT")
        .and_then(|mut commit| commit.execute([]));
    let outcome = outcome.and_then(|value| ended.map(|_| value).map_err(from_rusqlite));
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

/// Runs `statements` between `BEGIN IMMEDIATE` and `COMMIT`; on failure
/// says which statement failed.
fn run_transaction<'a>(
    conn: &Connection,
    statements: impl Iterator<Item = &'a Statement>,
) -> std::result::Result<Vec<WrittenRow>, (Option<usize>, Error)> {
    let mut failed_at = None;
    let outcome = (|| {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let mut rows = Vec::new();
        for (i, statement) in statements.enumerate() {
            failed_at = Some(i);
            values::run(conn, statement, &mut rows)?;
        }
        failed_at = None;
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok::<_, rusqlite::Error>(rows)
    })();
    match outcome {
        Ok(rows) => Ok(rows.into_iter().map(WrittenRow::Direct).collect()),
        Err(err) => {
            // Harmless when the error came at BEGIN, or at a COMMIT that
            // already rolled back.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err((failed_at, from_rusqlite(err)))
        }
    }
}

/// Runs `work` on Tokio's blocking pool; a panic in it is an error, not a
/// panic of the caller.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Database(DbErr::Custom(format!("the SQLite thread failed: {err}"))))
}

/// A read transaction on a direct reader, as [`DirectReaders::read`]
/// lends it: statements go in as SQL and SeaORM values, rows come out
/// through the caller's decoder, so that the caller needs no rusqlite.
pub(crate) struct DirectRead<'c> {
    conn: &'c Connection,
}

impl DirectRead<'_> {
    /// Every row of `sql`, with `params` bound as the writer binds them,
    /// each decoded by `decode` with `E`'s columns found by name.
    ///
    /// # Errors
    /// The classified error of the statement, or of a row `decode`
    /// refused (`UnreadableValue`).
    pub(crate) fn rows<E: sea_orm::EntityTrait, T>(
        &self,
        sql: &str,
        params: &[sea_orm::Value],
        decode: impl Fn(&decode::Arranged<'_, rusqlite::Row<'_>>) -> std::result::Result<T, DbErr>,
    ) -> Result<Vec<T>> {
        let mut statement = values::prepare_bound(self.conn, sql, params).map_err(from_rusqlite)?;
        let mut rows = statement.raw_query();
        let mut decoded = Vec::new();
        // The layout is found from the first row's statement, once: a
        // cached statement is prepared again inside the first step when
        // the schema changed, and may then have other columns.
        let mut layout = None;
        while let Some(row) = rows.next().map_err(from_rusqlite)? {
            let layout = match &layout {
                Some(layout) => layout,
                None => layout.insert(
                    decode::Layout::of::<E>(row.as_ref().column_names().into_iter())
                        .map_err(Error::from)?,
                ),
            };
            decoded.push(decode(&decode::Arranged::new(row, layout)).map_err(Error::from)?);
        }
        Ok(decoded)
    }

    /// Every row of `sql`, with `params` bound as the writer binds them,
    /// each decoded by `decode` by column position (for a statement that
    /// selects a few columns, not an entity's).
    ///
    /// # Errors
    /// The classified error of the statement, or of a row `decode`
    /// refused (`UnreadableValue`).
    pub(crate) fn cells<T>(
        &self,
        sql: &str,
        params: &[sea_orm::Value],
        mut decode: impl FnMut(&rusqlite::Row<'_>) -> std::result::Result<T, DbErr>,
    ) -> Result<Vec<T>> {
        let mut statement = values::prepare_bound(self.conn, sql, params).map_err(from_rusqlite)?;
        let mut rows = statement.raw_query();
        let mut decoded = Vec::new();
        while let Some(row) = rows.next().map_err(from_rusqlite)? {
            decoded.push(decode(row).map_err(Error::from)?);
        }
        Ok(decoded)
    }
}
