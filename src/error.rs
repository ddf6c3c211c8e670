//! The crate's one error type, classified by kind so that callers can match
//! on what went wrong, with the database error kept as the source.
//!
//! Classification reads [`DbErr::sql_err`] and the driver's error codes
//! (SQLite extended result codes, PostgreSQL SQLSTATEs), never message
//! text.

use std::path::PathBuf;

use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL cannot be used.
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A configuration value cannot be used.
    #[error("invalid configuration {name}=`{value}`: {reason}")]
    InvalidConfig {
        /// The setting (environment variable) name.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The directory meant to hold the database file cannot be created.
    #[error("cannot create directory `{}` for the database: {source}", path.display())]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// Why it could not be created.
        #[source]
        source: std::io::Error,
    },

    /// The database file exists but cannot be read.
    #[error("cannot read database file `{}`: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },

    /// The file is not a SQLite database. It was not modified.
    #[error("`{}` is not a SQLite database ({reason}); the file was left untouched", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },

    /// Something other than a regular file is at the database path — a
    /// directory, a FIFO, a socket, a device — or a symbolic link there
    /// leads to one. Refused from its metadata alone, before anything
    /// opened it: it was neither read nor changed (reading a FIFO would
    /// wait for a writer forever).
    #[error(
        "`{}` is {kind}{}, not a regular file: a SQLite database must be one (it was not opened)",
        path.display(),
        link_target.as_ref().map(|target| format!(" (through a symbolic link to `{}`)", target.display())).unwrap_or_default()
    )]
    NotARegularFile {
        /// The database path.
        path: PathBuf,
        /// What is there.
        kind: FileKind,
        /// Where the symbolic link at `path` leads, when it is one.
        link_target: Option<PathBuf>,
    },

    /// The file is a SQLite database, but visibly damaged (e.g. truncated).
    /// It was not modified.
    #[error("the database file `{}` is damaged ({reason}); the file was left untouched", path.display())]
    DamagedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The database file or its directory cannot be written (SQLite needs
    /// to write the file and to create `-wal`/`-shm` files beside it).
    /// Found at startup, before any write was attempted for real.
    #[error("the database at `{}` cannot be written: {reason}", path.display())]
    ReadOnlyLocation {
        /// The database file.
        path: PathBuf,
        /// What the check found.
        reason: String,
    },

    /// The database records migrations this build does not know: it was
    /// written by a newer version of this module. Nothing was changed.
    #[error(
        "the database schema is newer than this build: it records migration(s) {} that this build does not know; \
         upgrade interview-persistence to use it (nothing was changed)",
        unknown.join(", ")
    )]
    SchemaTooNew {
        /// The applied migrations this build does not have.
        unknown: Vec<String>,
    },

    /// The schema is not up to date: run `init` (or `migration up`) first.
    #[error("the database schema is not up to date: pending migration(s) {}; run `interview-db init`", pending.join(", "))]
    SchemaPending {
        /// The migrations not applied yet.
        pending: Vec<String>,
    },

    /// The database has interview tables but records no migration, and they
    /// match neither the schema the Python module made nor this module's:
    /// it cannot be adopted. Nothing was changed.
    #[error(
        "the database's tables match neither the Python module's schema nor this module's \
         (closest: {closest}); nothing was changed. Differences: {}",
        differences.join("; ")
    )]
    UnrecognizedSchema {
        /// The schema the tables come closest to (`python module` or
        /// `interview-persistence`).
        closest: &'static str,
        /// Each difference from that schema.
        differences: Vec<String>,
    },

    /// A database the Python module made holds rows this module's rules
    /// refuse; nothing was changed. The findings say which rows and why.
    #[error("the database cannot be adopted as it is; nothing was changed. {findings}")]
    AdoptionRefused {
        /// What the checks found.
        findings: crate::schema::AdoptionFindings,
    },

    /// A backup could not be made: the one written before adopting a
    /// database (nothing was changed), or one asked for with
    /// [`backup`](crate::backup::backup) (nothing is left at its path).
    #[error("cannot write the backup `{}`: {reason}", path.display())]
    Backup {
        /// The backup file.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// The call's arguments are inconsistent (nothing was written).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The call ties together rows of different sessions, or a row to a
    /// session it does not belong to (nothing was written).
    #[error("rows of different sessions: {0}")]
    SessionMismatch(String),

    /// No row of `entity` has this id. The message names the kind of row
    /// and the id only.
    #[error("{entity} `{id}` not found")]
    NotFound {
        /// The kind of row looked for.
        entity: EntityKind,
        /// The id looked for (for a concept element, its `element_id`
        /// within the session the call named).
        id: String,
    },

    /// A unique rule refused the write. `conflict` says which rule, from
    /// the statement the repository was running (never from the driver's
    /// message); the message shows that and no driver text, which stays
    /// in `source` for logs.
    #[error("{conflict}")]
    Conflict {
        /// Which row the write collided with.
        conflict: ConflictKind,
        /// The database's error, for logs (boxed: the kind already makes
        /// this variant the largest).
        #[source]
        source: Box<DbErr>,
    },

    /// A foreign key refused the write: it names a row that does not exist.
    #[error("reference to a row that does not exist: {0}")]
    InvalidReference(#[source] DbErr),

    /// A CHECK or NOT NULL rule refused the value, or (PostgreSQL) the
    /// column type cannot hold it.
    #[error("value refused by the schema: {0}")]
    InvalidValue(#[source] DbErr),

    /// A stored value the entity cannot hold, written by another program:
    /// a timestamp that is not one (`infinity`, a year past chrono's
    /// range, text in no timestamp form), text that is not UTF-8, a number
    /// out of its column's range, JSON that does not parse. Nothing was
    /// read; the row must be repaired where it is.
    #[error("a stored value cannot be read: {0}")]
    UnreadableValue(#[source] DbErr),

    /// The database stayed locked by another writer for longer than the
    /// busy timeout (or, on PostgreSQL, a deadlock or serialization
    /// failure). Retrying later may succeed.
    #[error("database busy: {0}")]
    Busy(#[source] DbErr),

    /// The database or its disk is full.
    #[error("database or disk full: {0}")]
    StorageFull(#[source] DbErr),

    /// The database file is damaged.
    #[error("database corrupt: {0}")]
    Corrupt(#[source] DbErr),

    /// The database cannot be written (read-only file, directory or
    /// connection).
    #[error("database is read-only: {0}")]
    ReadOnly(#[source] DbErr),

    /// The task committing writes stopped before it could answer: the
    /// database was closed before the write was queued, or the runtime that
    /// opened the database is shutting down. A write queued before
    /// [`Database::close`](crate::Database::close) is not abandoned.
    #[error("the write was abandoned: the database was closed, or its runtime is shutting down")]
    WriteAbandoned,

    /// A write that waited its whole busy timeout for the SQLite writer
    /// while its own task held the writer through an open
    /// [`WriteTransaction`](crate::WriteTransaction) (a repository write,
    /// or a second `begin_write`, inside the transaction's task): it was
    /// waiting for that transaction, which cannot end while its own task
    /// waits. Nothing was written; do the work inside the transaction, or
    /// end it first.
    #[error(
        "this task holds the writer in an open write transaction; a write from it would wait \
         for itself (write inside that transaction, or end it first)"
    )]
    WriterHeldByThisTask,

    /// The role lacks a privilege the call needs (PostgreSQL
    /// `insufficient_privilege`). Not worth retrying.
    #[error("permission denied: {0}")]
    PermissionDenied(#[source] DbErr),

    /// The statement ran past its time limit (PostgreSQL
    /// `statement_timeout`) or was cancelled; it did not complete.
    #[error("the statement timed out: {0}")]
    Timeout(#[source] DbErr),

    /// The role the service connects as may not write the interview tables
    /// (found at start-up, before any write).
    #[error(
        "the database role may not {privilege} on `{table}`; grant it, or connect as a role that has it"
    )]
    MissingPrivilege {
        /// The table.
        table: String,
        /// The missing privilege (`INSERT`, `UPDATE`, `DELETE`).
        privilege: &'static str,
    },

    /// The driver could not open the database or talk to the server (or
    /// lost it: a terminated backend or a server restart). Retrying later
    /// may succeed: the pool opens a new connection.
    #[error("cannot connect to the database: {0}")]
    Connection(#[source] DbErr),

    /// Something is already at the path a backup or a copy would create;
    /// it is never overwritten.
    #[error("`{}` exists; it was left as it is (choose a new name)", path.display())]
    DestinationExists {
        /// The path.
        path: PathBuf,
    },

    /// A directory could not be searched for leftover temporary copies, or
    /// one could not be removed.
    #[error("cannot clean up the leftover temporary copy `{}`: {source}", path.display())]
    Cleanup {
        /// The leftover file, or the directory searched.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The operation does not exist for this backend or build; the message
    /// says what to use instead.
    #[error("not supported: {0}")]
    Unsupported(String),

    /// A copy was refused before anything was written to the target: the
    /// reason says why (a target that is not empty, schema versions that
    /// differ, a value the target cannot hold, …).
    #[error("copy refused; the target was left as it was: {0}")]
    CopyRefused(String),

    /// The copy's verification found the target different from the source
    /// snapshot; the target's transaction was rolled back. The report says
    /// which tables differ.
    #[error("the copy does not match its source; the target was left as it was")]
    CopyMismatch(Box<crate::copy::CopyReport>),

    /// Any other database error.
    #[error(transparent)]
    Database(DbErr),
}

/// The kind of row an [`Error::NotFound`] looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntityKind {
    /// An interview session (`sessions`).
    Session,
    /// An utterance of the transcript (`utterances`).
    Utterance,
    /// A knowledge-graph node (`kg_nodes`).
    Node,
    /// A knowledge-graph edge (`kg_edges`).
    Edge,
    /// A concept element of a session (`concept_elements`), by its
    /// `element_id`.
    ConceptElement,
    /// The record of an erased session (`session_erasures`).
    Erasure,
    /// A canonical slot (`canonical_slots`).
    Slot,
    /// A canonical edge (`canonical_edges`).
    CanonicalEdge,
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Session => "session",
            Self::Utterance => "utterance",
            Self::Node => "node",
            Self::Edge => "edge",
            Self::ConceptElement => "concept element",
            Self::Erasure => "erasure record of session",
            Self::Slot => "canonical slot",
            Self::CanonicalEdge => "canonical edge",
        })
    }
}

/// What an [`Error::NotARegularFile`] found at the database path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A FIFO (named pipe): opening it for reading waits for a writer.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device (e.g. `/dev/null`).
    CharacterDevice,
    /// A block device (a disk or partition).
    BlockDevice,
    /// Anything else that is not a regular file.
    Other,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Directory => "a directory",
            Self::Fifo => "a FIFO (named pipe)",
            Self::Socket => "a Unix socket",
            Self::CharacterDevice => "a character device",
            Self::BlockDevice => "a block device",
            Self::Other => "a special file",
        })
    }
}

/// Which unique rule an [`Error::Conflict`] ran into, named by the
/// repository.
///
/// How it is named: a one-statement write (a session, an utterance, a
/// node, an edge, scores) is named from that statement. A whole turn
/// ([`TurnRepository::record_turn`](crate::repositories::TurnRepository::record_turn))
/// is named, on PostgreSQL, from the statement of the batch that failed;
/// on SQLite, whose batch runs as one multi-statement query (the driver
/// does not say which statement failed), and for seeded elements on both
/// backends, the kind is inferred from the rows present right after the
/// rollback — another writer may commit or remove a row in between, so
/// it can then be wrong, or [`ConflictKind::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictKind {
    /// A session with this id exists.
    DuplicateSession {
        /// The id asked for.
        session_id: String,
    },
    /// The turn was recorded already: the session has scores or an
    /// utterance of this turn (a retried or repeated `record_turn`, or
    /// scores saved twice).
    DuplicateTurn {
        /// The session.
        session_id: String,
        /// The turn.
        turn_number: i32,
    },
    /// The speaker already spoke in this turn of the session.
    DuplicateUtterance {
        /// The session.
        session_id: String,
        /// The turn.
        turn_number: i32,
        /// Who spoke (`user` or `system`).
        speaker: String,
    },
    /// The session already has a current node with this label and type
    /// (or the call itself creates two).
    DuplicateCurrentNode {
        /// The session.
        session_id: String,
        /// The node's label.
        label: String,
        /// The node's type.
        node_type: String,
    },
    /// An edge of this type between these two nodes exists (or the call
    /// itself creates two).
    DuplicateEdge {
        /// Where it starts.
        source_node_id: String,
        /// Where it ends.
        target_node_id: String,
        /// Its type, as stored (`leads_to`, …).
        edge_type: String,
    },
    /// The session already has a concept element with this id (or the
    /// call itself seeds it twice).
    DuplicateElement {
        /// The session.
        session_id: String,
        /// The element id.
        element_id: String,
    },
    /// The session already has a canonical slot with this name and node
    /// type.
    DuplicateSlot {
        /// The session.
        session_id: String,
        /// The slot's name.
        slot_name: String,
        /// Its node type.
        node_type: String,
    },
    /// A unique rule the call could not attribute to one of its rows: a
    /// write the repositories did not make (a caller's own
    /// [`begin_write`](crate::Database::begin_write) transaction, a
    /// migration), or a conflicting row another writer removed before the
    /// repository looked for it.
    Other,
}

impl ConflictKind {
    /// A stable, machine-readable name of the rule: `duplicate_session`,
    /// `duplicate_turn`, `duplicate_utterance`, `duplicate_current_node`,
    /// `duplicate_edge`, `duplicate_element`, `duplicate_slot` or `other`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::DuplicateSession { .. } => "duplicate_session",
            Self::DuplicateTurn { .. } => "duplicate_turn",
            Self::DuplicateUtterance { .. } => "duplicate_utterance",
            Self::DuplicateCurrentNode { .. } => "duplicate_current_node",
            Self::DuplicateEdge { .. } => "duplicate_edge",
            Self::DuplicateElement { .. } => "duplicate_element",
            Self::DuplicateSlot { .. } => "duplicate_slot",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DuplicateSession { session_id } => {
                write!(f, "session `{session_id}` exists already")
            }
            Self::DuplicateTurn {
                session_id,
                turn_number,
            } => write!(
                f,
                "turn {turn_number} of session `{session_id}` was recorded already"
            ),
            Self::DuplicateUtterance {
                session_id,
                turn_number,
                speaker,
            } => write!(
                f,
                "the {speaker} already spoke in turn {turn_number} of session `{session_id}`"
            ),
            Self::DuplicateCurrentNode {
                session_id,
                label,
                node_type,
            } => write!(
                f,
                "session `{session_id}` already has a current {node_type} node `{label}`"
            ),
            Self::DuplicateEdge {
                source_node_id,
                target_node_id,
                edge_type,
            } => write!(
                f,
                "a {edge_type} edge from node `{source_node_id}` to node `{target_node_id}` exists already"
            ),
            Self::DuplicateElement {
                session_id,
                element_id,
            } => write!(
                f,
                "session `{session_id}` already has concept element `{element_id}`"
            ),
            Self::DuplicateSlot {
                session_id,
                slot_name,
                node_type,
            } => write!(
                f,
                "session `{session_id}` already has the canonical slot `{slot_name}` of type `{node_type}`"
            ),
            Self::Other => f.write_str("conflict with an existing row (a unique rule)"),
        }
    }
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_PERM: i64 = 3;
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
pub(crate) const SQLITE_CANTOPEN: i64 = 14;
pub(crate) const SQLITE_NOTADB: i64 = 26;

impl Error {
    /// A unique violation no repository has attributed to a rule yet.
    fn unclassified_conflict(source: DbErr) -> Self {
        Self::Conflict {
            conflict: ConflictKind::Other,
            source: Box::new(source),
        }
    }

    /// The name of the constraint (for a unique rule, the unique index)
    /// that a write violated, as the database reports it: PostgreSQL
    /// names it, SQLite does not.
    pub(crate) fn violated_constraint(&self) -> Option<&str> {
        let source = match self {
            Self::Conflict { source, .. } => source.as_ref(),
            Self::InvalidReference(source)
            | Self::InvalidValue(source)
            | Self::UnreadableValue(source) => source,
            _ => return None,
        };
        driver_error(source)?.constraint()
    }

    /// Names the rule behind a [`Conflict`](Self::Conflict) that the
    /// database error alone left as [`ConflictKind::Other`]: the caller
    /// knows which statement it ran. Any other error is returned as it is.
    pub(crate) fn conflict_as(self, kind: impl FnOnce() -> ConflictKind) -> Self {
        match self {
            Self::Conflict {
                conflict: ConflictKind::Other,
                source,
            } => Self::Conflict {
                conflict: kind(),
                source,
            },
            other => other,
        }
    }

    /// A stable, machine-readable name of the error's kind, e.g.
    /// `not_found`, `conflict`, `invalid_input`, `busy`: for an HTTP body
    /// or a metric label. It never carries driver text.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::CreateDirectory { .. } => "create_directory",
            Self::ReadFile { .. } => "read_file",
            Self::NotADatabase { .. } => "not_a_database",
            Self::NotARegularFile { .. } => "not_a_regular_file",
            Self::DamagedFile { .. } => "damaged_file",
            Self::ReadOnlyLocation { .. } => "read_only_location",
            Self::SchemaTooNew { .. } => "schema_too_new",
            Self::SchemaPending { .. } => "schema_pending",
            Self::UnrecognizedSchema { .. } => "unrecognized_schema",
            Self::AdoptionRefused { .. } => "adoption_refused",
            Self::Backup { .. } => "backup",
            Self::InvalidInput(_) => "invalid_input",
            Self::SessionMismatch(_) => "session_mismatch",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::InvalidReference(_) => "invalid_reference",
            Self::InvalidValue(_) => "invalid_value",
            Self::UnreadableValue(_) => "unreadable_value",
            Self::Busy(_) => "busy",
            Self::StorageFull(_) => "storage_full",
            Self::Corrupt(_) => "corrupt",
            Self::ReadOnly(_) => "read_only",
            Self::WriteAbandoned => "write_abandoned",
            Self::WriterHeldByThisTask => "writer_held_by_this_task",
            Self::PermissionDenied(_) => "permission_denied",
            Self::Timeout(_) => "timeout",
            Self::MissingPrivilege { .. } => "missing_privilege",
            Self::Connection(_) => "connection",
            Self::DestinationExists { .. } => "destination_exists",
            Self::Cleanup { .. } => "cleanup",
            Self::Unsupported(_) => "unsupported",
            Self::CopyRefused(_) => "copy_refused",
            Self::CopyMismatch(_) => "copy_mismatch",
            Self::Database(_) => "database",
        }
    }

    /// A sqlx error (from code that talks to sqlx directly: the backup
    /// API, `COPY`), classified like SeaORM's: pool and transport failures
    /// are [`Error::Connection`], database errors by their codes.
    pub(crate) fn from_sqlx(err: sqlx::Error) -> Self {
        let runtime = |err: sqlx::Error| RuntimeErr::SqlxError(err.into());
        match err {
            sqlx::Error::PoolTimedOut => {
                Self::Connection(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))
            }
            sqlx::Error::PoolClosed => Self::Connection(DbErr::ConnectionAcquire(
                sea_orm::ConnAcquireErr::ConnectionClosed,
            )),
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                Self::from(DbErr::Conn(runtime(err)))
            }
            err => Self::from(DbErr::Exec(runtime(err))),
        }
    }

    /// The SQLite primary result code of the underlying error, if it came
    /// from SQLite.
    #[must_use]
    pub fn sqlite_code(&self) -> Option<i64> {
        self.db_err().and_then(sqlite_code)
    }

    /// The database error behind this one, if any.
    #[must_use]
    pub fn db_err(&self) -> Option<&DbErr> {
        match self {
            Self::Conflict { source, .. } => Some(source),
            Self::InvalidReference(e)
            | Self::InvalidValue(e)
            | Self::UnreadableValue(e)
            | Self::Busy(e)
            | Self::StorageFull(e)
            | Self::Corrupt(e)
            | Self::ReadOnly(e)
            | Self::PermissionDenied(e)
            | Self::Timeout(e)
            | Self::Connection(e)
            | Self::Database(e) => Some(e),
            _ => None,
        }
    }
}

/// The driver's own error inside a [`DbErr`], if there is one.
/// Whether `err` says a stored value could not be decoded into its Rust
/// type: SeaORM's type and JSON errors, and sqlx's decoding errors.
fn is_decode_failure(err: &DbErr) -> bool {
    match err {
        DbErr::Type(_) | DbErr::Json(_) | DbErr::TryIntoErr { .. } => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            matches!(
                **e,
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_)
            )
        }
        _ => false,
    }
}

fn driver_error(err: &DbErr) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e.as_database_error(),
        _ => None,
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_code(err: &DbErr) -> Option<i64> {
    let driver = driver_error(err)?;
    if let Some(extended) = crate::sqlite_failure::SqliteFailure::code_of(driver) {
        return Some(extended & 0xff);
    }
    driver.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    let extended: i64 = driver.code()?.parse().ok()?;
    Some(extended & 0xff)
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_code(_: &DbErr) -> Option<i64> {
    None
}

#[cfg(feature = "postgres")]
fn postgres_sqlstate(err: &DbErr) -> Option<String> {
    let driver = driver_error(err)?;
    driver.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    Some(driver.code()?.into_owned())
}

#[cfg(not(feature = "postgres"))]
fn postgres_sqlstate(_: &DbErr) -> Option<String> {
    None
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => return Self::unclassified_conflict(err),
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                return Self::InvalidReference(err);
            }
            _ => {}
        }
        if let Some(driver) = driver_error(&err) {
            match driver.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    return Self::unclassified_conflict(err);
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return Self::InvalidReference(err);
                }
                sqlx::error::ErrorKind::CheckViolation
                | sqlx::error::ErrorKind::NotNullViolation => return Self::InvalidValue(err),
                _ => {}
            }
        }
        if let Some(code) = sqlite_code(&err) {
            return match code {
                SQLITE_BUSY | SQLITE_LOCKED => Self::Busy(err),
                SQLITE_FULL => Self::StorageFull(err),
                SQLITE_CORRUPT | SQLITE_NOTADB => Self::Corrupt(err),
                SQLITE_READONLY | SQLITE_PERM => Self::ReadOnly(err),
                SQLITE_CANTOPEN => Self::Connection(err),
                _ => Self::Database(err),
            };
        }
        if let Some(state) = postgres_sqlstate(&err) {
            return match state.as_str() {
                // serialization_failure, deadlock_detected, lock_not_available
                "40001" | "40P01" | "55P03" => Self::Busy(err),
                // disk_full, insufficient_resources
                "53100" | "53000" => Self::StorageFull(err),
                // data_corrupted, index_corrupted
                "XX001" | "XX002" => Self::Corrupt(err),
                // read_only_sql_transaction
                "25006" => Self::ReadOnly(err),
                // insufficient_privilege
                "42501" => Self::PermissionDenied(err),
                // query_canceled: statement_timeout (or a cancel request)
                "57014" => Self::Timeout(err),
                // connection_exception; admin_shutdown, crash_shutdown,
                // cannot_connect_now (a terminated backend, a restart)
                s if s.starts_with("08") || matches!(s, "57P01" | "57P02" | "57P03") => {
                    Self::Connection(err)
                }
                // data_exception: a value the column type cannot hold (a NUL
                // byte in text, a number out of range, …)
                s if s.starts_with("22") => Self::InvalidValue(err),
                _ => Self::Database(err),
            };
        }
        if is_decode_failure(&err) {
            return Self::UnreadableValue(err);
        }
        match err {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => Self::Connection(err),
            _ => Self::Database(err),
        }
    }
}
