//! PostgreSQL: a batch in one script, two round trips.
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
//! Two round trips whatever the batch's size: `BEGIN` and the script in
//! one message, then `COMMIT`. Not `COMMIT` in the same message: a caller
//! that gives up while the script waits for a lock must not see it commit
//! later. A connection whose caller gave up before `COMMIT` was answered
//! is closed instead of going back to the pool, so the server rolls back
//! whatever it had done.

use sea_orm::sea_query::{self, OptionEnum, PostgresQueryBuilder, Value};
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::postgres::{PgPool, Postgres};
use sea_orm::sqlx::{self};
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
    for statement in batch.script_statements() {
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
    let mut held = HeldConnection(Some(pool.acquire().await.map_err(Error::from_sqlx)?));
    let conn = held.connection();
    let rows = match sqlx::raw_sql(sqlx::AssertSqlSafe(format!("BEGIN;\n{script}")))
        .fetch_all(&mut **conn)
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            let error = Error::from_sqlx(err);
            // A failed script leaves its transaction open, aborted.
            if sqlx::raw_sql("ROLLBACK").execute(&mut **conn).await.is_ok() {
                held.give_back();
            }
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
    sqlx::raw_sql("COMMIT")
        .execute(&mut **conn)
        .await
        .map_err(Error::from_sqlx)?;
    held.give_back();
    Ok(ScriptOutcome::Committed(
        rows.into_iter()
            .map(|row| WrittenRow::Pooled(QueryResult::from(row)))
            .collect(),
    ))
}

/// A pooled connection that may be inside a transaction: given back to the
/// pool once it is known to be outside one, closed otherwise (dropped
/// mid-call, or after an error whose outcome is unknown), so that the
/// server rolls the transaction back.
struct HeldConnection(Option<PoolConnection<Postgres>>);

impl HeldConnection {
    fn connection(&mut self) -> &mut PoolConnection<Postgres> {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("the connection is held until given back"))
    }

    fn give_back(mut self) {
        drop(self.0.take());
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Dropping the detached connection closes its socket.
            drop(conn.detach());
        }
    }
}
