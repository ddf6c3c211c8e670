//! PostgreSQL: a turn's batch in one script, two round trips.
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
//! Two round trips whatever the batch's size (plus the pool's liveness
//! check when it hands out the connection): `BEGIN` and the script in one
//! message, then `COMMIT`. Not `COMMIT` in the same message: a caller that
//! gives up while the script runs (waiting for a lock, say) must not see it
//! commit later. Such a connection is not given back to the pool as it is:
//! a task of its own waits for the script to end, rolls it back, and only
//! then lets the pool have the connection, so the pool's limit still
//! counts it meanwhile (a closed socket would free the slot while the
//! server still ran the script, holding its locks). A caller that gives up
//! after `COMMIT` was sent cannot know whether it committed, as with any
//! client.
//!
//! Only batches that ask for it use a script (a turn's, see
//! `StatementBatch::set_script`): its returned rows come back as text,
//! which sqlx cannot read for every timestamp PostgreSQL holds (`BC`
//! dates, years past 9999); the rows a turn returns are its own.

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

/// The batch as one script, or `None` when it did not ask for one or a
/// value cannot be written into it exactly.
pub(crate) fn script(batch: &StatementBatch) -> Option<String> {
    let mut sql = String::new();
    for statement in batch.script()? {
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
            } else if let Some(conn) = held.0.take() {
                drop(conn.detach());
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
/// pool as it is once known to be outside one; otherwise (dropped mid-call,
/// or after an error) rolled back first by a task of its own, which holds
/// it, and so its slot in the pool, until the server has answered; closed
/// if that fails or no runtime is there to run the task.
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
        let Some(mut conn) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    // Waits for what the script still has to answer.
                    if sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await.is_err() {
                        drop(conn.detach());
                    }
                });
            }
            // Dropping the detached connection closes its socket.
            Err(_) => drop(conn.detach()),
        }
    }
}
