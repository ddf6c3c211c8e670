//! Opening the database: the pooled handle services share, dedicated
//! connections, and `init_database`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Mutex as StdMutex;

use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use migration::sqlite_pragmas;
use sea_orm::sqlx::sqlite::SqliteSynchronous;
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    IsolationLevel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::checkpoint::Checkpointer;
use crate::config::{Backend, DatabaseConfig, SqliteLocation, wal_path};
use crate::error::{Error, Result};
use crate::repositories::StatementBatch;
use crate::schema;
use sea_orm::QueryResult;

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// A pooled connection to the interview store: cheap to clone (an `Arc`
/// inside), safe to share between tasks, and what a web framework keeps as
/// shared state (the Python module's `get_db` dependency).
#[derive(Clone, Debug)]
pub struct Database {
    connection: DatabaseConnection,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DatabaseConfig,
    /// SQLite has one writer at a time, so write transactions get one
    /// connection of their own. Its page cache stays warm: in WAL mode a
    /// connection drops its cache whenever another connection committed,
    /// so spreading writes over the pool made every write transaction
    /// re-read the index pages it touches (the turn benchmark measured it).
    /// `None` on PostgreSQL, where writers use the pool.
    writer: Option<DatabaseConnection>,
    /// SQLite files: the background WAL checkpoints.
    checkpointer: Option<Arc<Checkpointer>>,
    /// The connection the checkpoints run on, closed with the pool.
    checkpoint_connection: Option<DatabaseConnection>,
    /// Writers of this process queue here (in order, without sleeping)
    /// instead of in SQLite's busy handler, which polls with sleeps of up
    /// to 100 ms; `BEGIN IMMEDIATE` still guards against writers in other
    /// processes. The flag it guards is set while a one-round-trip write
    /// ([`Database::write_batch`]) may have left a transaction open on the
    /// writer (a caller dropped mid-way): the next writer rolls it back.
    write_lock: Option<Arc<Mutex<bool>>>,
    /// SQLite: writes waiting for the writer, committed as one group by
    /// whichever of them gets the lock.
    queue: StdMutex<Vec<QueuedWrite>>,
    /// The options the pool was opened with, reused for dedicated
    /// connections (for `sqlite::memory:` they name the same database).
    options: ConnectOptions,
    location: Option<SqliteLocation>,
}

impl Database {
    /// Opens a connection pool as `config` says, without touching the
    /// schema.
    ///
    /// On SQLite every pooled connection gets `foreign_keys=ON`,
    /// `journal_mode=WAL`, the configured `synchronous` level and busy
    /// timeout. A missing file is created with its parent directories
    /// (unless the URL says `mode=ro` or `mode=rw`); an existing file is
    /// first checked to be a SQLite database, and left untouched if it is
    /// not. A zero-length file counts as an empty database, as SQLite itself
    /// treats it (`touch data/interview.db` then `init` works).
    ///
    /// # Errors
    /// [`Error::CreateDirectory`], [`Error::ReadFile`] or
    /// [`Error::NotADatabase`] for an unusable file location, and the
    /// classified database error when the driver cannot connect.
    #[tracing::instrument(skip_all, fields(url = %config.url))]
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let location = config.url.sqlite_location();
        if let Some(SqliteLocation::File { path, create }) = &location {
            prepare_sqlite_file(path, *create)?;
        }
        let options = connect_options(config, location.as_ref());
        let connection = open(&options, location.as_ref()).await?;
        let writer = match &location {
            Some(_) => Some(open(&single(&options), location.as_ref()).await?),
            None => None,
        };
        if let (Some(writer), Some(SqliteLocation::File { path, .. })) = (&writer, &location)
            && !config.url.is_read_only()
        {
            probe_writable(writer, path).await?;
        }
        let checkpoint_connection = match &location {
            Some(SqliteLocation::File { .. }) => {
                Some(open(&single(&options), location.as_ref()).await?)
            }
            _ => None,
        };
        let write_lock = writer.as_ref().map(|_| Arc::new(Mutex::new(false)));
        let checkpointer = checkpoint_connection.as_ref().zip(write_lock.as_ref()).map(
            |(connection, write_lock)| {
                Checkpointer::start(
                    connection.clone(),
                    Arc::clone(write_lock),
                    config.checkpoint_after_commits,
                    config.checkpoint_interval,
                )
            },
        );
        tracing::debug!(backend = %config.url.backend(), "database pool opened");
        Ok(Self {
            connection,
            inner: Arc::new(Inner {
                config: config.clone(),
                write_lock,
                queue: StdMutex::new(Vec::new()),
                writer,
                checkpointer,
                checkpoint_connection,
                options,
                location,
            }),
        })
    }

    /// The pooled connection, for SeaORM queries and repositories.
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
    /// `:memory:`, or the URL with its password redacted.
    #[must_use]
    pub fn display_location(&self) -> String {
        self.inner.config.url.display_location()
    }

    /// Opens one connection of its own, outside the pool, with the same
    /// settings (the Python module's `get_db_connection`): for work that
    /// must not share a connection, such as a long read or a session-level
    /// setting. Close it with [`DatabaseConnection::close`] when done.
    ///
    /// # Errors
    /// The classified database error when the connection cannot be opened.
    pub async fn dedicated_connection(&self) -> Result<DatabaseConnection> {
        open(&single(&self.inner.options), self.inner.location.as_ref()).await
    }

    /// Begins a write transaction; dropping it without
    /// [`commit`](WriteTransaction::commit) rolls it back.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken up front,
    /// so a transaction that reads then writes waits for other writers (up
    /// to the busy timeout) instead of failing with `SQLITE_BUSY_SNAPSHOT`
    /// when one committed in between. Writers of this process wait in line
    /// before taking a pooled connection.
    ///
    /// # Errors
    /// [`Error::Busy`] when another process holds the lock past the busy
    /// timeout, or another classified database error.
    pub async fn begin_write(&self) -> Result<WriteTransaction> {
        let turn = self.writer_turn().await;
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.backend() == Backend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let writer = self.inner.writer.as_ref().unwrap_or(&self.connection);
        let transaction = writer.begin_with_options(options).await?;
        Ok(WriteTransaction {
            transaction,
            checkpointer: self.inner.checkpointer.clone(),
            _turn: turn,
        })
    }

    /// Waits for this process's turn to write on SQLite (`None` elsewhere),
    /// first rolling back what a dropped one-round-trip write left open.
    async fn writer_turn(&self) -> Option<OwnedMutexGuard<bool>> {
        let lock = self.inner.write_lock.as_ref()?;
        let mut turn = Arc::clone(lock).lock_owned().await;
        if *turn {
            if let Some(writer) = &self.inner.writer {
                // Fails harmlessly when nothing was left open.
                let _ = writer.execute_unprepared("ROLLBACK").await;
            }
            *turn = false;
        }
        Some(turn)
    }

    /// Runs `batch` as one write transaction and returns the rows its
    /// statements returned: all of it lands or none of it does.
    ///
    /// On SQLite the transaction goes to the writer connection in ONE round
    /// trip (`BEGIN IMMEDIATE; …; COMMIT` as one multi-statement query).
    /// sqlx runs each SQLite connection on a thread of its own, and every
    /// round trip there costs two thread wake-ups — on the benchmark machine
    /// more than the SQLite work of a whole turn. Writes that queue up while
    /// another one runs are committed together (group commit): one
    /// transaction, one round trip, one WAL append for all of them. If the
    /// group fails, it is rolled back and each write runs alone, so one bad
    /// write cannot take the others down. The group runs in a task of its
    /// own, so a caller that stops waiting does not leave the others
    /// without an answer.
    ///
    /// On PostgreSQL, which cannot take several commands in one prepared
    /// query, the statements run one by one in a write transaction.
    pub(crate) async fn write_batch(&self, batch: StatementBatch) -> Result<Vec<QueryResult>> {
        let Some(writer) = self.inner.writer.clone() else {
            let txn = self.begin_write().await?;
            let rows = batch.run_each(&*txn).await?;
            txn.commit().await?;
            return Ok(rows);
        };
        let (reply, answer) = oneshot::channel();
        lock_queue(&self.inner.queue).push(QueuedWrite { batch, reply });
        if let Some(turn) = self.writer_turn().await {
            let group = std::mem::take(&mut *lock_queue(&self.inner.queue));
            if group.is_empty() {
                drop(turn); // an earlier group took this write along
            } else {
                tokio::spawn(commit_group(
                    writer,
                    turn,
                    group,
                    self.inner.checkpointer.clone(),
                ));
            }
        }
        answer.await.unwrap_or(Err(Error::WriteAbandoned))
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

    /// Closes every pooled connection, waiting for those in use.
    ///
    /// # Errors
    /// The classified database error if closing fails.
    pub async fn close(self) -> Result<()> {
        if let Some(writer) = &self.inner.writer {
            writer.close_by_ref().await?;
        }
        if let Some(checkpoints) = &self.inner.checkpoint_connection {
            checkpoints.close_by_ref().await?;
        }
        Ok(self.connection.close_by_ref().await?)
    }
}

/// A write waiting for the SQLite writer, and where its answer goes.
struct QueuedWrite {
    batch: StatementBatch,
    reply: oneshot::Sender<Result<Vec<QueryResult>>>,
}

impl std::fmt::Debug for QueuedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueuedWrite")
    }
}

fn lock_queue(queue: &StdMutex<Vec<QueuedWrite>>) -> std::sync::MutexGuard<'_, Vec<QueuedWrite>> {
    // Pushing and taking a Vec cannot panic half-way: a poisoned queue is
    // still consistent.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Commits `group` on the writer, together when it can, one by one when the
/// group fails, and answers every write. `turn` is this process's writer
/// lock; its flag marks a transaction that may be left open.
async fn commit_group(
    writer: DatabaseConnection,
    mut turn: OwnedMutexGuard<bool>,
    group: Vec<QueuedWrite>,
    checkpointer: Option<Arc<Checkpointer>>,
) {
    let committed = |count: usize| {
        if let Some(checkpointer) = &checkpointer {
            (0..count).for_each(|_| checkpointer.committed());
        }
    };
    if group.len() > 1 {
        let batches: Vec<&StatementBatch> = group.iter().map(|w| &w.batch).collect();
        let statement = StatementBatch::sqlite_transaction(&batches);
        *turn = true;
        let result = writer.query_all_raw(statement).await;
        if result.is_err() {
            let _ = writer.execute_unprepared("ROLLBACK").await;
        }
        *turn = false;
        if let Ok(mut rows) = result {
            committed(1);
            for write in group {
                let rest = rows.split_off(write.batch.returning().min(rows.len()));
                let _ = write.reply.send(Ok(std::mem::replace(&mut rows, rest)));
            }
            return;
        }
    }
    for write in group {
        *turn = true;
        let result = writer
            .query_all_raw(StatementBatch::sqlite_transaction(&[&write.batch]))
            .await;
        if result.is_err() {
            // Fails harmlessly when the error came before BEGIN or at COMMIT.
            let _ = writer.execute_unprepared("ROLLBACK").await;
        } else {
            committed(1);
        }
        *turn = false;
        let _ = write.reply.send(result.map_err(Error::from));
    }
}

/// A write transaction from [`Database::begin_write`]. It dereferences to the
/// SeaORM transaction for queries; dropped without `commit`, it rolls back.
#[derive(Debug)]
pub struct WriteTransaction {
    transaction: DatabaseTransaction,
    checkpointer: Option<Arc<Checkpointer>>,
    _turn: Option<OwnedMutexGuard<bool>>,
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

/// Opens the database and brings its schema up to date: the Rust form of
/// the Python module's `init_database`.
///
/// Safe to call at every start: migrations already applied (recorded in
/// `seaql_migrations`) are not run again, rows are never touched, and
/// concurrent callers apply each migration once. A database that records a
/// migration this build does not know is refused before any DDL runs.
///
/// # Errors
/// Those of [`Database::connect`], [`Error::SchemaTooNew`], and the
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

/// Makes a change and rolls it back, so that a database that cannot be
/// written fails at startup rather than at its first write. (Taking the
/// write lock alone is not enough: in WAL mode SQLite grants it to a
/// connection that opened a read-only file.) `writer` is a pool of one, so
/// the three statements run on one connection.
async fn probe_writable(writer: &DatabaseConnection, path: &Path) -> Result<()> {
    let mut probe = writer.execute_unprepared("BEGIN IMMEDIATE").await;
    if probe.is_ok() {
        probe = writer
            .execute_unprepared("CREATE TABLE interview_write_probe (x)")
            .await;
        // Undoes the probe; fails harmlessly if BEGIN did not happen.
        let _ = writer.execute_unprepared("ROLLBACK").await;
    }
    match probe.map_err(Error::from) {
        Ok(_) => Ok(()),
        Err(Error::ReadOnly(err)) => Err(Error::ReadOnlyLocation {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
        Err(err) => Err(err),
    }
}

/// Whether SQLite could create files in `directory`: tried by creating
/// (and at once removing) an empty file, only after SQLite failed to open.
fn directory_is_writable(directory: &Path) -> bool {
    tempfile::Builder::new()
        .prefix(".interview-write-probe")
        .tempfile_in(directory)
        .is_ok()
}

fn parent_directory(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

async fn open(
    options: &ConnectOptions,
    location: Option<&SqliteLocation>,
) -> Result<DatabaseConnection> {
    sea_orm::Database::connect(options.clone())
        .await
        .map_err(|err| match (Error::from(err), location) {
            // SQLite says only "unable to open database file": say why when
            // the reason is that its directory cannot be written.
            (error @ Error::Connection(_), Some(SqliteLocation::File { path, .. }))
                if error.sqlite_code() == Some(14)
                    && !directory_is_writable(parent_directory(path)) =>
            {
                Error::ReadOnlyLocation {
                    path: path.clone(),
                    reason: format!("its directory does not allow creating files ({error})"),
                }
            }
            // The header check passed but SQLite disagrees (e.g. a file
            // replaced in between): still say what it is.
            (error, Some(SqliteLocation::File { path, .. })) if error.sqlite_code() == Some(26) => {
                Error::NotADatabase {
                    path: path.clone(),
                    reason: error.to_string(),
                }
            }
            (error, _) => error,
        })
}

/// `options` for a pool of exactly one connection.
fn single(options: &ConnectOptions) -> ConnectOptions {
    let mut options = options.clone();
    options.max_connections(1).min_connections(1);
    options
}

fn connect_options(config: &DatabaseConfig, location: Option<&SqliteLocation>) -> ConnectOptions {
    let mut options = ConnectOptions::new(config.url.expose());
    options
        .max_connections(config.max_connections.max(1))
        .min_connections(config.min_connections.min(config.max_connections.max(1)))
        .acquire_timeout(config.acquire_timeout)
        .sqlx_logging(config.log_statements);

    match location {
        None => {
            options.set_application_name("interview-persistence");
        }
        Some(location) => {
            let synchronous = match config.synchronous {
                crate::Synchronous::Normal => SqliteSynchronous::Normal,
                crate::Synchronous::Full => SqliteSynchronous::Full,
            };
            let busy_timeout = config.busy_timeout;
            let memory_name = matches!(location, SqliteLocation::Memory).then(next_memory_name);
            let create = matches!(location, SqliteLocation::File { create: true, .. });
            // A pooled SQLite connection is a file handle, not a socket that
            // can die: pinging it before every use costs a round trip to its
            // worker thread and finds nothing.
            options.test_before_acquire(false);
            if memory_name.is_some() {
                // The shared in-memory database lives as long as one
                // connection to it: keep one open for the pool's lifetime.
                options
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let wal_size_limit = config.wal_size_limit.to_string();
            options.map_sqlx_sqlite_opts(move |o| {
                // Checkpoints run in the background (see `checkpoint`).
                let mut o = sqlite_pragmas::configure(o, synchronous, busy_timeout)
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("journal_size_limit", wal_size_limit.clone());
                if let Some(name) = &memory_name {
                    o = o.filename(name).in_memory(true).shared_cache(true);
                }
                if create {
                    o = o.create_if_missing(true);
                }
                o
            });
        }
    }
    options
}

/// A process-unique name for a shared in-memory database, fixed when the
/// pool is configured so that dedicated connections join the same one.
fn next_memory_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "file:interview-memory-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes sure a file path can hold a SQLite database without changing an
/// existing file: a file that is there must be a database (or empty); a
/// missing one gets its parent directories when it may be created.
fn prepare_sqlite_file(path: &Path, create: bool) -> Result<()> {
    match File::open(path) {
        Ok(mut file) => {
            let not_a_database = |reason: &str| Error::NotADatabase {
                path: path.to_path_buf(),
                reason: reason.to_owned(),
            };
            let metadata = file.metadata().map_err(|source| Error::ReadFile {
                path: path.to_path_buf(),
                source,
            })?;
            if metadata.is_dir() {
                return Err(not_a_database("it is a directory"));
            }
            let mut header = Vec::with_capacity(100);
            file.by_ref()
                .take(100)
                .read_to_end(&mut header)
                .map_err(|source| Error::ReadFile {
                    path: path.to_path_buf(),
                    source,
                })?;
            if header.is_empty() {
                return Ok(());
            }
            if header.len() < SQLITE_HEADER.len() {
                return Err(not_a_database("it is shorter than a SQLite header"));
            }
            if header[..SQLITE_HEADER.len()] != SQLITE_HEADER[..] {
                return Err(not_a_database("its header is not `SQLite format 3`"));
            }
            check_not_truncated(path, &header, metadata.len())
        }
        // Missing, or a parent is not a directory: creating the parents
        // says precisely what is in the way.
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            if create {
                create_parent_directories(path)?;
            }
            Ok(())
        }
        Err(source) => Err(Error::ReadFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Fails when the header promises more pages than the file holds. The
/// header's page count is trusted only when SQLite marked it valid (bytes
/// 92..96 equal the change counter, bytes 24..28), and only when no WAL is
/// beside the file: a checkpoint interrupted by a crash may leave the file
/// short, and the WAL then completes it.
fn check_not_truncated(path: &Path, header: &[u8], file_len: u64) -> Result<()> {
    if header.len() < 100 {
        return Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: "it ends inside the 100-byte database header".into(),
        });
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(word(28));
    let count_is_valid = word(92) == word(24);
    let wal_has_frames = std::fs::metadata(wal_path(path)).is_ok_and(|m| m.len() > 0);
    if count_is_valid && !wal_has_frames && file_len < pages * page_size {
        return Err(Error::DamagedFile {
            path: path.to_path_buf(),
            reason: format!(
                "truncated: its header counts {pages} pages of {page_size} bytes, but the file holds {file_len} bytes"
            ),
        });
    }
    Ok(())
}

fn create_parent_directories(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|source| Error::CreateDirectory {
        path: PathBuf::from(parent),
        source,
    })
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
