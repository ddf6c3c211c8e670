//! Opening the database: the pooled handle services share, the one write
//! path, and dedicated connections.
//!
//! On SQLite, reads use a pool of `query_only` connections (and `direct`
//! readers for a turn's context) and every write goes through the
//! `writer` thread and its connections; on PostgreSQL both use the pool
//! (the server orders writers itself).

mod batch;
mod checkpoint;
#[cfg(feature = "sqlite")]
pub(crate) mod direct;
#[cfg(not(feature = "sqlite"))]
#[path = "direct_unavailable.rs"]
pub(crate) mod direct;
mod scrub;
mod sqlite_file;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub(crate) use batch::{StatementBatch, WrittenRow};
use direct::{DirectReaders, DirectSettings, DirectWriter};

use checkpoint::{CheckpointSettings, Checkpointer};
pub use scrub::ScrubReport;
pub(crate) use scrub::owed_if_recorded as owed_scrubs;
pub(crate) use sqlite_file::prepare as check_sqlite_file;
pub(crate) use sqlite_file::{check_writable, existing_regular_file, shared_mode};
pub use writer::QUEUE_CAPACITY as WRITER_QUEUE_CAPACITY;
use writer::{Writer, WriterLease};

use crate::config::{Backend, DatabaseConfig, SqliteLocation};
use crate::error::{Error, Result};

/// A batch that failed (and was rolled back), and which of its statements
/// failed when that is known (a batch run alone on SQLite's writer, or
/// statement by statement on PostgreSQL).
pub(crate) struct FailedBatch {
    /// The classified error.
    pub(crate) error: Error,
    /// The failing statement's index in the batch, when known.
    pub(crate) statement: Option<usize>,
}

/// A pooled connection to the interview store: cheap to clone (an `Arc`
/// inside), safe to share between tasks, and what a web framework keeps as
/// shared state (the Python module's `get_db` dependency).
///
/// Every write goes one way: the repositories, [`begin_write`](Self::begin_write)
/// and `init`'s migrations all queue for the one writer on SQLite. The pool
/// behind [`connection`](Self::connection) serves reads; on SQLite its
/// connections are `query_only`, so a write attempted around the writer
/// fails with [`Error::ReadOnly`] instead of racing it.
///
/// The SQLite checkpoint task runs on the Tokio runtime that called
/// [`connect`](Self::connect), and the writer thread lends its SeaORM
/// connection through that runtime: the handle must not outlive it
/// (checkpoints would stop, and `begin_write` and migrations fail).
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DatabaseConfig,
    /// SQLite: the queue every write of this process goes through, and the
    /// one connection it writes on. Its page cache stays warm: in WAL mode
    /// a connection drops its cache whenever another connection committed,
    /// so spreading writes over the pool made every write transaction
    /// re-read the index pages it touches (the turn benchmark measured it).
    /// `None` on PostgreSQL, where writers use the pool.
    writer: Option<SqliteWriter>,
    /// The options of the read pool, reused for dedicated connections.
    reader_options: ConnectOptions,
    /// SQLite: readers for the reads a turn plans from (see [`direct`]).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    direct_readers: Option<Arc<DirectReaders>>,
    /// Where the URL says the database is (`Memory` for `sqlite::memory:`).
    location: Option<SqliteLocation>,
    /// The file connections open: the URL's, or the private file behind a
    /// `sqlite::memory:` database.
    file_location: Option<SqliteLocation>,
    /// What opening did for the scrubs owed (see `scrub`).
    scrubbed_at_open: std::sync::OnceLock<ScrubReport>,
    /// Last, so that it outlives the connections declared above it.
    _memory_file: Option<sqlite_file::PrivateFile>,
}

/// The SQLite writer: its queue, its connection, and the checkpoints that
/// go with it. Always on a file (`sqlite::memory:` is a private one).
#[derive(Debug)]
struct SqliteWriter {
    queue: Writer,
    connection: DatabaseConnection,
    checkpointer: Arc<Checkpointer>,
    /// The connection the checkpoints run on, closed with the pool.
    checkpoint_connection: DatabaseConnection,
}

impl Database {
    /// Opens a connection pool as `config` says, without touching the
    /// schema.
    ///
    /// On SQLite every connection gets `foreign_keys=ON`,
    /// `journal_mode=WAL`, the configured `synchronous` level and busy
    /// timeout; the writer's also `secure_delete=ON`. A missing file is
    /// created with its parent directories (unless the URL says `mode=ro`
    /// or `mode=rw`), readable by this user only (directories 0700, the
    /// file 0600, and so its `-wal` and `-shm`) whatever the umask; an
    /// existing path is first checked to be a regular file (from its
    /// metadata: a FIFO, socket, device or directory is never opened) and a
    /// SQLite database, and left untouched (its mode too) if it is not. A zero-length file counts as an empty database, as SQLite itself
    /// treats it (`touch data/interview.db` then `init` works).
    ///
    /// # Errors
    /// [`Error::CreateDirectory`], [`Error::ReadFile`],
    /// [`Error::NotARegularFile`] or [`Error::NotADatabase`] for an
    /// unusable file location,
    /// [`Error::ReadOnlyLocation`] for one that cannot be written, and the
    /// classified database error when the driver cannot connect.
    ///
    /// An erasure whose scrub is still owed (a crash cut it short, or a
    /// reader of another process kept the WAL) is completed before this
    /// returns: see [`finish_erasures`](Self::finish_erasures). That the
    /// scrub could not finish this time does not make opening fail; it is
    /// logged, and health reports it.
    #[tracing::instrument(skip_all, fields(url = %config.url))]
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let db = Self::open(config).await?;
        db.finish_owed_erasures().await;
        Ok(db)
    }

    /// Completes the scrubs owed, if any, logging what could not be done,
    /// and keeps the report for [`scrubbed_at_open`](Self::scrubbed_at_open).
    pub(crate) async fn finish_owed_erasures(&self) {
        if self.inner.writer.is_none() && self.backend() == Backend::Sqlite {
            return;
        }
        match scrub::owed(&self.connection).await {
            Ok(owed) if owed.is_empty() => {}
            Ok(_) => match self.finish_erasures().await {
                Ok(report) => {
                    let _ = self.inner.scrubbed_at_open.set(report);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "an erasure's scrub is owed and could not be completed");
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "cannot ask whether an erasure's scrub is owed")
            }
        }
    }

    /// What opening this handle did for the scrubs earlier erasures owed
    /// (see [`connect`](Self::connect)); `None` when nothing was owed.
    #[must_use]
    pub fn scrubbed_at_open(&self) -> Option<&ScrubReport> {
        self.inner.scrubbed_at_open.get()
    }

    /// [`connect`](Self::connect) without completing owed scrubs: for
    /// what only reads (health, the source of a backup or a copy) and for
    /// `init`, which completes them after migrating.
    pub(crate) async fn open(config: &DatabaseConfig) -> Result<Self> {
        if config.busy_timeout > crate::config::MAX_BUSY_TIMEOUT {
            return Err(Error::InvalidConfig {
                name: "busy_timeout",
                value: format!("{} ms", config.busy_timeout.as_millis()),
                reason: format!(
                    "SQLite takes at most {} ms",
                    crate::config::MAX_BUSY_TIMEOUT.as_millis()
                ),
            });
        }
        let location = config.url.sqlite_location();
        if let Some(SqliteLocation::File { path, create }) = &location {
            sqlite_file::prepare(path, *create)?;
            // Asked before SQLite opens it: SQLite would silently open an
            // unwritable file read-only (the write probe then finds out).
            if !config.url.is_read_only() && path.exists() {
                sqlite_file::check_writable(path)?;
            }
        }
        // `sqlite::memory:` is a private file that goes with the handle.
        let memory_file = match &location {
            Some(SqliteLocation::Memory) => Some(sqlite_file::PrivateFile::create()?),
            _ => None,
        };
        let file_location = match &memory_file {
            Some(file) => Some(SqliteLocation::File {
                path: file.path().to_path_buf(),
                create: true,
            }),
            None => location.clone(),
        };
        let options = |role| connect_options(config, file_location.as_ref(), role);
        let reader_options = options(Role::Reader);
        // A read-only database (`mode=ro`) has no writer: nothing is
        // written, not even a probe or a checkpoint.
        let writer = match &file_location {
            Some(file) if !config.url.is_read_only() => {
                Some(SqliteWriter::open(config, file, single(&options(Role::Writer))).await?)
            }
            _ => None,
        };
        let connection = open(&reader_options, file_location.as_ref(), config.busy_timeout).await?;
        let direct_readers = match &file_location {
            Some(SqliteLocation::File { path, .. }) if !config.url.is_read_only() => Some(
                DirectReaders::new(DirectSettings::new(config, path), config),
            ),
            _ => None,
        };
        tracing::debug!(backend = %config.url.backend(), "database pool opened");
        Ok(Self {
            connection,
            inner: Arc::new(Inner {
                config: config.clone(),
                writer,
                reader_options,
                direct_readers,
                location,
                file_location,
                scrubbed_at_open: std::sync::OnceLock::new(),
                _memory_file: memory_file,
            }),
        })
    }

    /// The pooled connection, for SeaORM reads. On SQLite its connections
    /// are `query_only`: write with the repositories or
    /// [`begin_write`](Self::begin_write), which queue for the one writer.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    /// The configuration the pool was opened with.
    #[must_use]
    pub fn config(&self) -> &DatabaseConfig {
        &self.inner.config
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.inner.config.url.backend()
    }

    /// Where a SQLite database lives; `None` on PostgreSQL.
    #[must_use]
    pub fn sqlite_location(&self) -> Option<&SqliteLocation> {
        self.inner.location.as_ref()
    }

    /// What to call the database in reports: the SQLite file path,
    /// `:memory:`, or the URL with its credentials redacted.
    #[must_use]
    pub fn display_location(&self) -> String {
        self.inner.config.url.display_location()
    }

    /// Opens one connection of its own, outside the pool, with the same
    /// settings as the pool's (the Python module's `get_db_connection`):
    /// for work that must not share a connection, such as a long read or a
    /// session-level setting. Like the pool's, it is `query_only` on
    /// SQLite. Close it with [`DatabaseConnection::close`] when done.
    ///
    /// # Errors
    /// The classified database error when the connection cannot be opened.
    pub async fn dedicated_connection(&self) -> Result<DatabaseConnection> {
        open(
            &single(&self.inner.reader_options),
            self.inner.file_location.as_ref(),
            self.inner.config.busy_timeout,
        )
        .await
    }

    /// Begins a write transaction; dropping it without
    /// [`commit`](WriteTransaction::commit) rolls it back.
    ///
    /// On SQLite it waits for its place in the writer's queue, behind the
    /// writes queued before it, then runs `BEGIN IMMEDIATE` on the writer
    /// connection: the write lock is taken up front, so a transaction that
    /// reads then writes waits for writers of other processes (up to the
    /// busy timeout) instead of failing with `SQLITE_BUSY_SNAPSHOT` when
    /// one committed in between. Every other write of this process waits
    /// until it commits or is dropped, so keep it short — and do not call
    /// a repository write (or `begin_write` again) from the task that holds
    /// it before it ends: that call waits for the transaction its own task
    /// holds, and fails with [`Error::WriterHeldByThisTask`] after the busy
    /// timeout. Do such work inside the transaction instead. Every wait
    /// for the writer (room in its queue, its turn) counts against the
    /// busy timeout and ends in [`Error::Busy`], with nothing written.
    ///
    /// On SQLite the transaction runs on the writer's SeaORM connection;
    /// batches (every repository write) run on its second, rusqlite
    /// connection (see `database::direct`). A per-connection setting made
    /// inside this transaction (`PRAGMA max_page_count`, `busy_timeout`,
    /// …) therefore does not reach the repositories' writes: set those with
    /// [`DatabaseConfig`](crate::DatabaseConfig) (`max_page_count`,
    /// `busy_timeout`, `synchronous`), which configures both.
    ///
    /// # Errors
    /// [`Error::Busy`] when another process holds the lock, or this
    /// process's writer stays busy, past the busy timeout;
    /// [`Error::WriterHeldByThisTask`] as above; or another classified
    /// database error.
    pub async fn begin_write(&self) -> Result<WriteTransaction> {
        self.begin_write_with(false).await
    }

    /// [`begin_write`](Self::begin_write) with foreign keys off on SQLite
    /// (set before `BEGIN`, where the pragma takes effect, and back on when
    /// the transaction ends, however it ends): for migrations that rebuild
    /// a table, where `DROP TABLE` would otherwise empty the children of
    /// the dropped table through `ON DELETE CASCADE`. The caller must run
    /// `PRAGMA foreign_key_check` before committing. On PostgreSQL it is
    /// `begin_write`.
    pub(crate) async fn begin_write_without_foreign_keys(&self) -> Result<WriteTransaction> {
        self.begin_write_with(true).await
    }

    /// The SQLite writer connection itself, outside any transaction, for
    /// as long as the returned handle lives (every other write of this
    /// process waits): for statements that cannot run in a transaction
    /// (`VACUUM INTO`) or that manage their own (`BEGIN IMMEDIATE` …
    /// `COMMIT`, as adoption does). Foreign keys are off on it until the
    /// handle is dropped (adoption rebuilds tables). `None` on PostgreSQL.
    pub(crate) async fn exclusive_writer(&self) -> Result<Option<ExclusiveWriter<'_>>> {
        let Some(writer) = &self.inner.writer else {
            return Ok(None);
        };
        Ok(Some(ExclusiveWriter {
            connection: &writer.connection,
            _lease: writer.queue.lease(true).await?,
        }))
    }

    async fn begin_write_with(&self, foreign_keys_off: bool) -> Result<WriteTransaction> {
        let Some(writer) = &self.inner.writer else {
            return Ok(WriteTransaction {
                transaction: self.connection.begin().await?,
                checkpointer: None,
                _lease: None,
            });
        };
        let lease = writer.queue.lease(foreign_keys_off).await?;
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let transaction = writer.connection.begin_with_options(options).await?;
        Ok(WriteTransaction {
            transaction,
            checkpointer: Some(writer.checkpointer.clone()),
            _lease: Some(lease),
        })
    }

    /// Runs `batch` as one write transaction and returns the rows its
    /// statements returned: all of it lands or none of it does.
    ///
    /// On SQLite the batch goes to the writer's queue and runs on the
    /// writer thread, `BEGIN IMMEDIATE` … `COMMIT` on its rusqlite
    /// connection with cached statements (see [`direct`]): one hand-off
    /// to the thread and one back, whatever the batch's size. Batches
    /// queued together commit together (see [`writer`]). Dropping the
    /// future before the writer took the batch from the queue means it
    /// never runs; once taken, it commits or fails as a whole, in its
    /// place in the order.
    ///
    /// On PostgreSQL a batch of one statement (a whole turn is one) runs
    /// alone, in its own implicit transaction: one round trip, every value
    /// bound. Several statements run one by one in a transaction, which
    /// says which statement failed.
    pub(crate) async fn write_batch(&self, batch: StatementBatch) -> Result<Vec<WrittenRow>> {
        self.write_batch_telling_where(batch)
            .await
            .map_err(|failed| failed.error)
    }

    /// [`write_batch`](Self::write_batch), saying on failure which
    /// statement failed (its index in the batch) when that is known: on
    /// SQLite always for a statement's own failure (a failed group is run
    /// again batch by batch), on PostgreSQL for a batch of several
    /// statements.
    pub(crate) async fn write_batch_telling_where(
        &self,
        batch: StatementBatch,
    ) -> std::result::Result<Vec<WrittenRow>, FailedBatch> {
        let unplaced = |error: Error| FailedBatch {
            error,
            statement: None,
        };
        match &self.inner.writer {
            Some(writer) => writer.queue.write(batch).await,
            None => {
                // One statement (a whole turn): alone, in the statement's
                // own implicit transaction, one round trip.
                if let [statement] = batch.statements() {
                    let rows = self
                        .connection
                        .query_all_raw(statement.clone())
                        .await
                        .map_err(|e| unplaced(e.into()))?;
                    return Ok(rows.into_iter().map(WrittenRow::Pooled).collect());
                }
                let txn = self
                    .connection
                    .begin()
                    .await
                    .map_err(|e| unplaced(e.into()))?;
                let rows = batch.run_each(&txn).await.map_err(|(i, err)| FailedBatch {
                    error: err.into(),
                    statement: Some(i),
                })?;
                txn.commit().await.map_err(|e| unplaced(e.into()))?;
                Ok(rows)
            }
        }
    }

    /// SQLite: the direct readers (see [`direct`]); `None` on PostgreSQL
    /// and for a read-only database.
    #[cfg(feature = "sqlite")]
    pub(crate) fn direct_readers(&self) -> Option<&Arc<DirectReaders>> {
        self.inner.direct_readers.as_ref()
    }

    /// Begins a read transaction: every query in it sees one consistent
    /// snapshot (on SQLite a deferred transaction, which never blocks the
    /// writer in WAL mode; on PostgreSQL `REPEATABLE READ`, read only).
    ///
    /// # Errors
    /// The classified database error if the transaction cannot begin.
    pub async fn begin_read(&self) -> Result<DatabaseTransaction> {
        let options = match self.backend() {
            Backend::Sqlite => TransactionOptions::default(),
            Backend::Postgres => TransactionOptions {
                isolation_level: Some(IsolationLevel::RepeatableRead),
                access_mode: Some(AccessMode::ReadOnly),
                ..TransactionOptions::default()
            },
        };
        Ok(self.connection.begin_with_options(options).await?)
    }

    /// The SQLite file connections open (the private file behind
    /// `sqlite::memory:` included); `None` on PostgreSQL.
    pub(crate) fn sqlite_file(&self) -> Option<&std::path::Path> {
        match &self.inner.file_location {
            Some(SqliteLocation::File { path, .. }) => Some(path),
            _ => None,
        }
    }

    /// Closes the database: on SQLite the writes queued so far are
    /// committed first (a graceful shutdown loses none of them), then every
    /// connection is closed, waiting for those in use. Writes through any
    /// clone of this handle fail afterwards.
    ///
    /// # Errors
    /// The classified database error if closing fails.
    pub async fn close(self) -> Result<()> {
        if let Some(readers) = &self.inner.direct_readers {
            readers.close().await;
        }
        if let Some(writer) = &self.inner.writer {
            writer.queue.close().await;
            writer.connection.close_by_ref().await?;
            writer.checkpoint_connection.close_by_ref().await?;
        }
        Ok(self.connection.close_by_ref().await?)
    }
}

impl SqliteWriter {
    /// Opens the writer connection (checking that the file can be written)
    /// and the checkpoint connection, and starts their tasks.
    async fn open(
        config: &DatabaseConfig,
        location: &SqliteLocation,
        options: ConnectOptions,
    ) -> Result<Self> {
        let connection = open(&options, Some(location), config.busy_timeout).await?;
        if let SqliteLocation::File { path, .. } = location {
            sqlite_file::probe_writable(&connection, path, config.busy_timeout).await?;
        }
        let checkpoint_connection = open(&options, Some(location), config.busy_timeout).await?;
        let direct = match location {
            SqliteLocation::File { path, .. } => {
                DirectWriter::open(DirectSettings::new(config, path)).await?
            }
            SqliteLocation::Memory => {
                return Err(Error::Unsupported(
                    "the writer needs a file (`sqlite::memory:` is a private one)".into(),
                ));
            }
        };
        let checkpointer = Checkpointer::new(config.checkpoint_after_commits);
        let queue = Writer::start(
            connection.clone(),
            direct,
            checkpointer.clone(),
            config.busy_timeout,
            // With FULL every commit fsyncs: too long to run in place.
            config.synchronous == crate::Synchronous::Normal,
        );
        checkpointer.start(
            checkpoint_connection.clone(),
            queue.downgrade(),
            CheckpointSettings {
                interval: config.checkpoint_interval,
                busy_timeout: config.busy_timeout,
                wal_size_limit: config.wal_size_limit,
            },
        );
        Ok(Self {
            queue,
            connection,
            checkpointer,
            checkpoint_connection,
        })
    }
}

/// The SQLite writer connection, lent by [`Database::exclusive_writer`].
pub(crate) struct ExclusiveWriter<'a> {
    connection: &'a DatabaseConnection,
    _lease: WriterLease,
}

impl std::ops::Deref for ExclusiveWriter<'_> {
    type Target = DatabaseConnection;

    fn deref(&self) -> &DatabaseConnection {
        self.connection
    }
}

/// A write transaction from [`Database::begin_write`]. It dereferences to the
/// SeaORM transaction for queries; dropped without `commit`, it rolls back.
/// While it is open, it holds this process's writer.
#[derive(Debug)]
pub struct WriteTransaction {
    // Declared first, so dropped (and rolled back) before the lease lets
    // the next writer in.
    transaction: DatabaseTransaction,
    checkpointer: Option<Arc<Checkpointer>>,
    _lease: Option<WriterLease>,
}

impl WriteTransaction {
    /// Commits, then lets the next writer of this process in.
    ///
    /// # Errors
    /// The classified database error if the commit fails (nothing of the
    /// transaction remains).
    pub async fn commit(self) -> Result<()> {
        self.transaction.commit().await?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed();
        }
        Ok(())
    }

    /// Rolls back explicitly (dropping does the same).
    ///
    /// # Errors
    /// The classified database error if the rollback fails.
    pub async fn rollback(self) -> Result<()> {
        Ok(self.transaction.rollback().await?)
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.transaction
    }
}

impl AsRef<DatabaseConnection> for Database {
    fn as_ref(&self) -> &DatabaseConnection {
        &self.connection
    }
}

/// Opens a pool as `options` say. On SQLite, a connection that finds the
/// file locked while it sets it up (switching a new file to WAL takes a
/// lock the busy handler does not wait for) tries again until the busy
/// timeout has passed, as any other statement would wait.
async fn open(
    options: &ConnectOptions,
    location: Option<&SqliteLocation>,
    busy_timeout: Duration,
) -> Result<DatabaseConnection> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        let error = match sea_orm::Database::connect(options.clone()).await {
            Ok(connection) => return Ok(connection),
            Err(err) => explain_open_failure(Error::from(err), location),
        };
        if location.is_none() || !matches!(error, Error::Busy(_)) || Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// SQLite says only "unable to open database file" or "file is not a
/// database": say why in the module's terms.
fn explain_open_failure(error: Error, location: Option<&SqliteLocation>) -> Error {
    match (error, location) {
        // Most often the file or its directory cannot be written (in WAL
        // mode SQLite cannot open a file, even read-only, without creating
        // its `-shm`): said as opening a writable database says it.
        (error @ Error::Connection(_), Some(SqliteLocation::File { path, .. }))
            if error.sqlite_code() == Some(crate::error::SQLITE_CANTOPEN) =>
        {
            sqlite_file::why_it_cannot_be_written(path).unwrap_or(error)
        }
        // The header check passed but SQLite disagrees (e.g. a file
        // replaced in between): still say what it is.
        (error, Some(SqliteLocation::File { path, .. }))
            if error.sqlite_code() == Some(crate::error::SQLITE_NOTADB) =>
        {
            Error::NotADatabase {
                path: path.clone(),
                reason: error.to_string(),
            }
        }
        (error, _) => error,
    }
}

/// `options` for a pool of exactly one connection.
fn single(options: &ConnectOptions) -> ConnectOptions {
    let mut options = options.clone();
    options.max_connections(1).min_connections(1);
    options
}

/// What a SQLite connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The pool and dedicated connections: `query_only`.
    Reader,
    /// The writer and checkpoint connections.
    Writer,
}

fn connect_options(
    config: &DatabaseConfig,
    location: Option<&SqliteLocation>,
    role: Role,
) -> ConnectOptions {
    let (driver_url, password) = config.url.driver_parts();
    let mut options = ConnectOptions::new(driver_url);
    #[cfg(feature = "postgres")]
    options.map_sqlx_postgres_opts(move |o| {
        // Every transaction is READ COMMITTED unless it asks otherwise,
        // whatever the server's default: the module's writes rely on row
        // locks and on seeing what committed while they waited for a lock
        // (a migration waiting on the advisory lock must see the one that
        // ran before it; at REPEATABLE READ its snapshot would date from
        // before the wait). Set once per connection, in its startup packet,
        // not with a `SET TRANSACTION` round trip per write.
        let o = o.options([("default_transaction_isolation", "read committed")]);
        match &password {
            Some(password) => o.password(password),
            None => o,
        }
    });
    #[cfg(not(feature = "postgres"))]
    let _ = password; // only PostgreSQL URLs carry one
    options
        .max_connections(config.max_connections.max(1))
        .min_connections(config.min_connections.min(config.max_connections.max(1)))
        .acquire_timeout(config.acquire_timeout)
        .sqlx_logging(config.log_statements);

    match location {
        None => {
            options.set_application_name("interview-persistence");
        }
        Some(location) => configure_sqlite(&mut options, config, location, role),
    }
    options
}

/// The SQLite settings of every connection: the module's pragmas, where
/// the database is, and `query_only` for readers.
#[cfg(feature = "sqlite")]
fn configure_sqlite(
    options: &mut ConnectOptions,
    config: &DatabaseConfig,
    location: &SqliteLocation,
    role: Role,
) {
    use migration::sqlite_pragmas;
    use sea_orm::sqlx::sqlite::SqliteSynchronous;
    let synchronous = match config.synchronous {
        crate::Synchronous::Normal => SqliteSynchronous::Normal,
        crate::Synchronous::Full => SqliteSynchronous::Full,
    };
    let busy_timeout = config.busy_timeout;
    let create = matches!(location, SqliteLocation::File { create: true, .. });
    // The file as decoded from the URL, or the private file behind
    // `sqlite::memory:`; never a shared cache (its table locks make readers
    // and the writer wait for each other instead of using WAL snapshots).
    let file = match location {
        SqliteLocation::File { path, .. } => Some(path.clone()),
        SqliteLocation::Memory => None,
    };
    // A pooled SQLite connection is a file handle, not a socket that
    // can die: pinging it before every use costs a round trip to its
    // worker thread and finds nothing.
    options.test_before_acquire(false);
    let read_only = config.url.is_read_only();
    let pragmas = role_pragmas(config, role);
    options.map_sqlx_sqlite_opts(move |o| {
        let mut o = if read_only {
            // `mode=ro` changes nothing: no WAL switch, no pragma that
            // writes; the file is read as it is.
            o.read_only(true)
                .foreign_keys(true)
                .busy_timeout(busy_timeout)
        } else {
            let mut o = sqlite_pragmas::configure(o, synchronous, busy_timeout);
            for (name, value) in &pragmas {
                o = o.pragma(*name, value.clone());
            }
            o
        };
        if let Some(file) = &file {
            o = o.filename(file).in_memory(false).shared_cache(false);
        }
        if create {
            o = o.create_if_missing(true);
        }
        o
    });
}

/// Without the `sqlite` feature no SQLite URL parses, so there is nothing
/// to configure.
/// The pragmas a writable SQLite connection of `role` gets after the
/// shared ones (foreign keys, WAL, synchronous, busy timeout), in order:
/// one list for the sqlx connections and the direct ones
/// (`database::direct`), so that the two cannot drift apart.
#[cfg(feature = "sqlite")]
pub(crate) fn role_pragmas(config: &DatabaseConfig, role: Role) -> Vec<(&'static str, String)> {
    // Checkpoints run in the background (see `checkpoint`).
    let mut pragmas = vec![
        ("wal_autocheckpoint", "0".to_owned()),
        ("journal_size_limit", config.wal_size_limit.to_string()),
    ];
    match role {
        // Last, after journal_mode: writes go through the writer.
        Role::Reader => pragmas.push(("query_only", "ON".to_owned())),
        // Freed space is overwritten with zeros, so that what a DELETE or
        // an UPDATE replaced (a participant's words) does not stay
        // readable in free pages and cells of the file. Always on, not
        // only during an erasure: an UPDATE frees the old version of a row
        // too. Temporary files (statement journals, VACUUM's copy) in
        // memory: on disk they would hold the text being erased.
        Role::Writer => {
            pragmas.push(("secure_delete", "ON".to_owned()));
            pragmas.push(("temp_store", "MEMORY".to_owned()));
            if let Some(pages) = config.max_page_count {
                pragmas.push(("max_page_count", pages.to_string()));
            }
        }
    }
    pragmas
}

#[cfg(not(feature = "sqlite"))]
fn configure_sqlite(_: &mut ConnectOptions, _: &DatabaseConfig, _: &SqliteLocation, _: Role) {}

/// Sets SQLite's `busy_timeout` on `connection` (a pool of one: the
/// writer, the checkpointer).
pub(crate) async fn set_busy_timeout(
    connection: &DatabaseConnection,
    timeout: Duration,
) -> std::result::Result<(), sea_orm::DbErr> {
    connection
        .execute_unprepared(&format!("PRAGMA busy_timeout = {}", timeout.as_millis()))
        .await
        .map(|_| ())
}

/// Runs `statement` on `db` and returns the first column of the first row,
/// for PRAGMAs and other one-value queries.
pub(crate) async fn query_value<T: sea_orm::TryGetable>(
    db: &impl ConnectionTrait,
    statement: &str,
) -> Result<Option<T>> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            statement,
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get_by_index::<Option<T>>(0)?,
        None => None,
    })
}
