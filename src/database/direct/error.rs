//! rusqlite's errors, classified like sqlx's: the SQLite extended result
//! code is kept in a driver error that the crate's classification
//! (`Error::from(DbErr)`, `Error::sqlite_code`) reads as it reads sqlx's.

use std::borrow::Cow;
use std::sync::Arc;

use sea_orm::sqlx;
use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::{DbErr, RuntimeErr};

use crate::error::Error;

// Extended result codes of the constraint kinds (sqlite3.h).
const SQLITE_CONSTRAINT_CHECK: i32 = 275;
const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
const SQLITE_CONSTRAINT_NOTNULL: i32 = 1299;
const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// An error SQLite reported on a direct connection.
#[derive(Debug)]
pub(crate) struct DirectSqliteError {
    extended_code: i32,
    message: String,
}

impl std::fmt::Display for DirectSqliteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.extended_code, self.message)
    }
}

impl std::error::Error for DirectSqliteError {}

impl DatabaseError for DirectSqliteError {
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

/// The SQLite extended result code of a driver error from a direct
/// connection (`None` for any other error).
pub(crate) fn sqlite_error_code(driver: &(dyn DatabaseError + 'static)) -> Option<i64> {
    driver
        .try_downcast_ref::<DirectSqliteError>()
        .map(|e| i64::from(e.extended_code))
}

/// Classifies a rusqlite error as the crate classifies sqlx's.
pub(crate) fn from_rusqlite(err: rusqlite::Error) -> Error {
    let db_err = match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let database = DirectSqliteError {
                extended_code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            };
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Database(
                Box::new(database),
            ))))
        }
        other => DbErr::Exec(RuntimeErr::Internal(other.to_string())),
    };
    Error::from(db_err)
}
