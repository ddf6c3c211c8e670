//! rusqlite's errors, classified like sqlx's: the SQLite extended result
//! code is kept in a [`SqliteFailure`], which the crate's classification
//! reads as it reads sqlx's own.

use sea_orm::{DbErr, RuntimeErr};

use crate::error::Error;
use crate::sqlite_failure::SqliteFailure;

/// Classifies a rusqlite error as the crate classifies sqlx's.
pub(crate) fn from_rusqlite(err: rusqlite::Error) -> Error {
    let db_err = match err {
        rusqlite::Error::SqliteFailure(failure, message) => SqliteFailure::into_db_err(
            failure.extended_code,
            message.unwrap_or_else(|| failure.to_string()),
        ),
        other => DbErr::Exec(RuntimeErr::Internal(other.to_string())),
    };
    Error::from(db_err)
}
