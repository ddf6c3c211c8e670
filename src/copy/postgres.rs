//! Writing a copy into PostgreSQL with `COPY … FROM STDIN`, on a sqlx
//! transaction of its own (SeaORM's transactions cannot stream a `COPY`),
//! and reading it back in the same transaction to verify it.
//!
//! Values go in COPY's text format, written from the entity models' own
//! values: floats in the shortest form that reads back to the same bits,
//! timestamps to the microsecond, JSON as serde_json writes it, `\N` for
//! NULL. A multi-row `INSERT` of the same rows costs more (statement
//! building and binding on the client, parsing on the server).

use futures_util::TryStreamExt;
use sea_orm::sqlx::{self, PgConnection, Postgres, Transaction};
use sea_orm::{
    DbBackend, EntityTrait, FromQueryResult, IdenStatic, Iterable, ModelTrait, QueryResult,
    QueryTrait, Value,
};
use serde::Serialize;

use super::checksum::TableChecksum;
use super::table::Successor;
use crate::error::{Error, Result};

/// The copy's transaction on the target.
pub(super) type PgTransaction = Transaction<'static, Postgres>;

/// A sqlx error as the crate's classified error.
pub(super) fn db_err(err: sqlx::Error) -> Error {
    Error::from_sqlx(err)
}

/// Writes `rows` into `E`'s table with one `COPY`.
pub(super) async fn copy_in<E: EntityTrait>(
    conn: &mut PgConnection,
    rows: &[E::Model],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let table = E::default().table_name();
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let names: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.as_str()))
        .collect();
    let mut data = String::with_capacity(rows.len() * 256);
    for row in rows {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                data.push('\t');
            }
            push_value(&mut data, &row.get(*column)).map_err(|what| {
                Error::Unsupported(format!(
                    "`{table}`.`{}`: {what} cannot be written by COPY",
                    column.as_str()
                ))
            })?;
        }
        data.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY \"{table}\" ({}) FROM STDIN",
            names.join(", ")
        ))
        .await
        .map_err(db_err)?;
    if let Err(err) = copy.send(data.into_bytes()).await {
        let _ = copy.abort("the copy failed").await;
        return Err(db_err(err));
    }
    copy.finish().await.map_err(db_err)?;
    Ok(())
}

/// Appends `value` to a COPY text-format line.
fn push_value(data: &mut String, value: &Value) -> std::result::Result<(), String> {
    use std::fmt::Write;
    let written = match value {
        Value::String(Some(text)) => {
            push_escaped(data, text);
            Ok(())
        }
        Value::Char(Some(c)) => {
            push_escaped(data, c.encode_utf8(&mut [0; 4]));
            Ok(())
        }
        Value::Bool(Some(b)) => {
            data.push(if *b { 't' } else { 'f' });
            Ok(())
        }
        Value::TinyInt(Some(n)) => write!(data, "{n}"),
        Value::SmallInt(Some(n)) => write!(data, "{n}"),
        Value::Int(Some(n)) => write!(data, "{n}"),
        Value::BigInt(Some(n)) => write!(data, "{n}"),
        Value::Double(Some(x)) => push_float(data, *x),
        Value::Float(Some(x)) => push_float(data, f64::from(*x)),
        Value::ChronoDateTime(Some(at)) => write!(data, "{}", at.format("%Y-%m-%d %H:%M:%S%.6f")),
        Value::Json(Some(json)) => {
            let text = serde_json::to_string(json).map_err(|err| err.to_string())?;
            push_escaped(data, &text);
            Ok(())
        }
        // bytea's hex form, its backslash escaped for COPY's text format.
        Value::Bytes(Some(bytes)) => {
            data.push_str("\\\\x");
            for byte in bytes {
                write!(data, "{byte:02x}").map_err(|err| err.to_string())?;
            }
            Ok(())
        }
        other if super::checksum::is_null(other) => {
            data.push_str("\\N");
            Ok(())
        }
        other => return Err(format!("the value {other:?}")),
    };
    written.map_err(|err| err.to_string())
}

/// A float as PostgreSQL reads it back to the same bits: the shortest
/// decimal (`{:?}`), and `NaN`, `Infinity`, `-Infinity` by name.
fn push_float(data: &mut String, x: f64) -> std::fmt::Result {
    use std::fmt::Write;
    if x.is_nan() {
        data.push_str("NaN");
        Ok(())
    } else if x.is_infinite() {
        data.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        Ok(())
    } else {
        write!(data, "{x:?}")
    }
}

/// COPY's text format: backslash, newline, carriage return and tab
/// escaped; everything else as it is (a NUL was refused before).
fn push_escaped(data: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => data.push_str("\\\\"),
            '\n' => data.push_str("\\n"),
            '\r' => data.push_str("\\r"),
            '\t' => data.push_str("\\t"),
            c => data.push(c),
        }
    }
}

/// Before the load, on tables the role owns: drops the foreign keys and the
/// indexes that back no constraint (primary keys stay), and returns the
/// statements that make them again — as `pg_restore` loads data before
/// it builds indexes and checks keys. Checking a foreign key row by row
/// and growing six indexes one entry at a time costs more than the rows
/// themselves; built once at the end, the same checks cost far less. All of it is inside the copy's transaction, so a
/// failure leaves the schema as it was. Tables owned by another role
/// keep their keys and indexes (the load is slower, nothing else
/// changes).
pub(super) async fn defer_keys_and_indexes(
    conn: &mut PgConnection,
    tables: &[&str],
) -> Result<Vec<String>> {
    let owned: Option<bool> = sqlx::query_scalar(
        "SELECT bool_and(pg_has_role(relowner, 'USAGE')) FROM pg_class \
         WHERE oid = ANY($1::text[]::regclass[])",
    )
    .bind(tables)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    if owned != Some(true) {
        return Ok(Vec::new());
    }
    // (make, drop, comment): a comment goes with what it describes.
    let indexes: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %s', i.indexrelid::regclass), \
                CASE WHEN obj_description(i.indexrelid, 'pg_class') IS NOT NULL THEN \
                  format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, \
                         obj_description(i.indexrelid, 'pg_class')) END \
         FROM pg_index i WHERE i.indrelid = ANY($1::text[]::regclass[]) \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) \
         ORDER BY i.indexrelid",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let keys: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, \
                       pg_get_constraintdef(oid)), \
                format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
                CASE WHEN obj_description(oid, 'pg_constraint') IS NOT NULL THEN \
                  format('COMMENT ON CONSTRAINT %I ON %s IS %L', conname, conrelid::regclass, \
                         obj_description(oid, 'pg_constraint')) END \
         FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::text[]::regclass[]) \
         ORDER BY oid",
    )
    .bind(tables)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut recreate = Vec::with_capacity(2 * (indexes.len() + keys.len()));
    for (create, drop, comment) in indexes.into_iter().chain(keys) {
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        recreate.push(create);
        // No comment, no statement.
        recreate.extend(comment);
    }
    Ok(recreate)
}

/// Runs what [`defer_keys_and_indexes`] returned: indexes first, then the
/// foreign keys, each checked against every row.
pub(super) async fn restore_keys_and_indexes(
    conn: &mut PgConnection,
    statements: Vec<String>,
) -> Result<()> {
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Points each node inserted as its own successor at its real one, in one
/// statement.
pub(super) async fn restore_successors(
    conn: &mut PgConnection,
    successors: &[Successor],
) -> Result<()> {
    let (ids, targets): (Vec<&str>, Vec<&str>) = successors
        .iter()
        .map(|s| (s.node_id.as_str(), s.superseded_by.as_str()))
        .unzip();
    sqlx::query(
        "UPDATE kg_nodes AS n SET superseded_by = v.superseded_by \
         FROM UNNEST($1::text[], $2::text[]) AS v(id, superseded_by) WHERE n.id = v.id",
    )
    .bind(ids)
    .bind(targets)
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Reads every row of `E` back through the entity (the same decoding the
/// source went through) and checksums it.
pub(super) async fn checksum<E>(conn: &mut PgConnection) -> Result<TableChecksum>
where
    E: EntityTrait,
    E::Model: Serialize,
{
    let select = E::find().build(DbBackend::Postgres).to_string();
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(conn);
    let mut checksum = TableChecksum::default();
    while let Some(row) = rows.try_next().await.map_err(db_err)? {
        let model = E::Model::from_query_result(&QueryResult::from(row), "")?;
        checksum.add::<E>(&model);
    }
    Ok(checksum)
}

#[cfg(test)]
mod tests {
    use super::push_value;
    use sea_orm::Value;

    #[test]
    fn copy_text_escapes_what_copy_reads_as_syntax_and_writes_null_as_backslash_n() {
        let mut line = String::new();
        for value in [
            Value::String(Some("a\\b\tc\nd\re".into())),
            Value::String(None),
            Value::Double(Some(0.1 + 0.2)),
            Value::Double(Some(f64::from_bits(1))),
            Value::Bool(Some(true)),
        ] {
            push_value(&mut line, &value)
                .map_err(|e| e.to_string())
                .ok();
            line.push('|');
        }
        assert_eq!(line, "a\\\\b\\tc\\nd\\re|\\N|0.30000000000000004|5e-324|t|");
        let mut special = String::new();
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
            push_value(&mut special, &Value::Double(Some(x)))
                .map_err(|e| e.to_string())
                .ok();
            special.push('|');
        }
        assert_eq!(special, "NaN|Infinity|-Infinity|-0.0|");
    }
}
