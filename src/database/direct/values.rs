//! SeaORM statements run on a rusqlite connection: their values bound as
//! sqlx binds them (so that what is stored is byte for byte the same),
//! and the rows they return kept as SQLite gave them.

use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};
use sea_orm::sea_query::{OptionEnum, Value};
use sea_orm::{Statement, Values};

/// A row a write returned (`RETURNING`), with its column names.
#[derive(Debug, Clone)]
pub(crate) struct DirectRow {
    columns: Arc<[String]>,
    values: Vec<SqliteValue>,
}

impl DirectRow {
    /// The value of `column`, if the row has it.
    pub(crate) fn get(&self, column: &str) -> Option<ValueRef<'_>> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.values.get(i).map(ValueRef::from)
    }

    /// Every value, in column order.
    pub(crate) fn values(&self) -> impl Iterator<Item = ValueRef<'_>> {
        self.values.iter().map(ValueRef::from)
    }
}

/// Runs `statement`, appending the rows it returns to `rows`.
pub(super) fn run(
    conn: &Connection,
    statement: &Statement,
    rows: &mut Vec<DirectRow>,
) -> rusqlite::Result<()> {
    let mut prepared = conn.prepare_cached(&statement.sql)?;
    if let Some(Values(values)) = &statement.values {
        for (i, value) in values.iter().enumerate() {
            prepared.raw_bind_parameter(i + 1, bindable(value)?)?;
        }
    }
    let width = prepared.column_count();
    if width == 0 {
        prepared.raw_execute()?;
        return Ok(());
    }
    let columns: Arc<[String]> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut returned = prepared.raw_query();
    while let Some(row) = returned.next()? {
        let values = (0..width)
            .map(|i| row.get::<_, SqliteValue>(i))
            .collect::<rusqlite::Result<_>>()?;
        rows.push(DirectRow {
            columns: Arc::clone(&columns),
            values,
        });
    }
    Ok(())
}

/// A SeaORM value as sqlx's SQLite driver binds it.
fn bindable(value: &Value) -> rusqlite::Result<ToSqlOutput<'_>> {
    use ToSqlOutput::{Borrowed, Owned};
    let integer = |n: Option<i64>| Owned(n.map_or(SqliteValue::Null, SqliteValue::Integer));
    let text = |s: Option<String>| Owned(s.map_or(SqliteValue::Null, SqliteValue::Text));
    Ok(match value {
        Value::Bool(b) => integer(b.map(i64::from)),
        Value::TinyInt(n) => integer(n.map(i64::from)),
        Value::SmallInt(n) => integer(n.map(i64::from)),
        Value::Int(n) => integer(n.map(i64::from)),
        Value::BigInt(n) => integer(*n),
        Value::TinyUnsigned(n) => integer(n.map(i64::from)),
        Value::SmallUnsigned(n) => integer(n.map(i64::from)),
        Value::Unsigned(n) => integer(n.map(i64::from)),
        Value::BigUnsigned(n) => match n {
            Some(n) => integer(Some(i64::try_from(*n).map_err(|_| {
                rusqlite::Error::ToSqlConversionFailure("an unsigned value above i64::MAX".into())
            })?)),
            None => integer(None),
        },
        Value::Float(x) => Owned(x.map_or(SqliteValue::Null, |x| SqliteValue::Real(f64::from(x)))),
        Value::Double(x) => Owned(x.map_or(SqliteValue::Null, SqliteValue::Real)),
        Value::String(Some(s)) => Borrowed(ValueRef::Text(s.as_bytes())),
        Value::String(None) => Owned(SqliteValue::Null),
        Value::Enum(OptionEnum::Some(e)) => Borrowed(ValueRef::Text(e.value.as_bytes())),
        Value::Enum(OptionEnum::None(_)) => Owned(SqliteValue::Null),
        Value::Char(c) => text(c.map(|c| c.to_string())),
        Value::Bytes(Some(b)) => Borrowed(ValueRef::Blob(b)),
        Value::Bytes(None) => Owned(SqliteValue::Null),
        Value::ChronoDate(d) => text(d.map(|d| d.format("%F").to_string())),
        Value::ChronoTime(t) => text(t.map(|t| t.format("%T%.f").to_string())),
        Value::ChronoDateTime(t) => text(t.map(|t| t.format("%F %T%.f").to_string())),
        Value::Json(j) => text(j.as_ref().map(|j| j.to_string())),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("a value of a type this module never writes: {other:?}").into(),
            ));
        }
    })
}
