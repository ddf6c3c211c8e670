//! An SQLite failure reported by a driver other than sqlx (rusqlite, on
//! the writer's and the direct readers' connections), carried as sqlx's
//! driver error so that the crate classifies every SQLite failure one way:
//! from its extended result code (`Error::from(DbErr)`,
//! `Error::sqlite_code`), never from its message.
//!
//! It lives beside the error type, not in `database/`, so that the crate's
//! base type depends on no driver adapter.

use std::borrow::Cow;
use std::sync::Arc;

use sea_orm::sqlx;
use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::{DbErr, RuntimeErr};

// Extended result codes of the constraint kinds (sqlite3.h).
const SQLITE_CONSTRAINT_CHECK: i32 = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_NOTNULL: i32 = 1299;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// An SQLite failure: its extended result code and SQLite's message.
#[derive(Debug)]
pub(crate) struct SqliteFailure {
    extended_code: i32,
    message: String,
}

impl SqliteFailure {
    /// The failure as the `DbErr` a statement's execution returns.
    pub(crate) fn into_db_err(extended_code: i32, message: String) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Database(
            Box::new(Self {
                extended_code,
                message,
            }),
        ))))
    }

    /// The extended result code of `driver`, when it is such a failure.
    pub(crate) fn code_of(driver: &(dyn DatabaseError + 'static)) -> Option<i64> {
        driver
            .try_downcast_ref::<Self>()
            .map(|e| i64::from(e.extended_code))
    }
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.extended_code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.extended_code.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.extended_code {
            SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY => ErrorKind::UniqueViolation,
            SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
