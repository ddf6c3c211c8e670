//! PostgreSQL: a batch in ONE round trip.
//!
//! The extended protocol (prepared statements, what SeaORM and sqlx use)
//! takes one statement per round trip, and sqlx does not pipeline them:
//! a turn of a dozen statements cost a dozen round trips plus `BEGIN` and
//! `COMMIT`. The simple protocol takes several statements in one message,
//! so the batch's statements go as one script, their values written into
//! the text as literals by sea-query's PostgreSQL builder (the escaping
//! SeaORM's own debug output uses: `E'…'` strings, doubles in their
//! shortest exact form); the server stops at the first failing statement.
//!
//! The script runs inside a sqlx transaction (`BEGIN`, the script,
//! `COMMIT`: three round trips whatever the batch's size), not as
//! `BEGIN; …; COMMIT` in one message: a caller that gives up while the
//! script waits for a lock must not see it commit later. Dropping the
//! transaction makes sqlx roll it back before the connection is used
//! again, as SeaORM's transactions did.
//!
//! A value the script cannot carry exactly (a NUL byte, which PostgreSQL
//! text cannot hold; a float that is not finite; any type the repositories
//! never write) sends the batch down the statement-by-statement path,
//! which reports such values with a typed error. So does a failure the
//! server reported: that path runs the batch again and says which
//! statement failed (the script rolled back, so nothing of it remains).

use sea_orm::sea_query::{self, OptionEnum, PostgresQueryBuilder, Value};
use sea_orm::sqlx::{self, postgres::PgPool};
use sea_orm::{QueryResult, Values};

use super::batch::{StatementBatch, WrittenRow};
use crate::error::{Error, Result};

/// What running a script came to.
pub(crate) enum ScriptOutcome {
    /// It committed; the rows its statements returned, in order.
    Committed(Vec<WrittenRow>),
    /// The server refused it and it rolled back: run the batch statement
    /// by statement to learn which statement, and why.
    Refused,
}

/// The batch as one script, or `None` when a value cannot be written
/// into it exactly.
pub(crate) fn script(batch: &StatementBatch) -> Option<String> {
    let mut sql = String::new();
    for statement in batch.statements() {
        let values = match &statement.values {
            Some(Values(values)) => values.as_slice(),
            None => &[],
        };
        if !values.iter().all(exact_as_literal) {
            return None;
        }
        sql.push_str(&sea_query::inject_parameters(
            &statement.sql,
            values,
            &PostgresQueryBuilder,
        ));
        sql.push_str(";\n");
    }
    Some(sql)
}

/// Whether sea-query writes `value` as a literal PostgreSQL reads back as
/// the same value.
fn exact_as_literal(value: &Value) -> bool {
    let text = |s: Option<&str>| s.is_none_or(|s| !s.contains('\0'));
    match value {
        Value::Bool(_)
        | Value::TinyInt(_)
        | Value::SmallInt(_)
        | Value::Int(_)
        | Value::BigInt(_)
        | Value::TinyUnsigned(_)
        | Value::SmallUnsigned(_)
        | Value::Unsigned(_)
        | Value::BigUnsigned(_)
        | Value::ChronoDateTime(_)
        | Value::Json(_) => true,
        // −0 would be read back as 0.
        Value::Double(x) => x.is_none_or(|x| x.is_finite() && !(x == 0.0 && x.is_sign_negative())),
        Value::String(s) => text(s.as_deref()),
        Value::Enum(OptionEnum::Some(e)) => text(Some(e.value.as_ref())),
        Value::Enum(OptionEnum::None(_)) => true,
        _ => false,
    }
}

/// Runs `script` in a transaction on a connection of `pool`.
pub(crate) async fn run(pool: &PgPool, script: String) -> Result<ScriptOutcome> {
    let mut transaction = pool.begin().await.map_err(Error::from_sqlx)?;
    let rows = match sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .fetch_all(&mut *transaction)
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            let error = Error::from_sqlx(err);
            // Dropping the transaction rolls it back.
            drop(transaction);
            return match error {
                // A row the batch may not write: the statement-by-statement
                // run says which. Anything else (a lost connection, a
                // timeout, a lock) is the answer.
                Error::Conflict { .. } | Error::InvalidReference(_) | Error::InvalidValue(_) => {
                    Ok(ScriptOutcome::Refused)
                }
                other => Err(other),
            };
        }
    };
    transaction.commit().await.map_err(Error::from_sqlx)?;
    Ok(ScriptOutcome::Committed(
        rows.into_iter()
            .map(|row| WrittenRow::Pooled(QueryResult::from(row)))
            .collect(),
    ))
}
