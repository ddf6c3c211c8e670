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
    /// Where `column` is in the row.
    pub(crate) fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// The row's column names, in order.
    pub(crate) fn columns(&self) -> impl Iterator<Item = &str> + Clone {
        self.columns.iter().map(String::as_str)
    }

    /// The value of column `i`.
    pub(crate) fn value(&self, i: usize) -> Option<ValueRef<'_>> {
        self.values.get(i).map(ValueRef::from)
    }
}

/// Runs `statement`, appending the rows it returns to `rows`.
pub(super) fn run(
    conn: &Connection,
    statement: &Statement,
    rows: &mut Vec<DirectRow>,
) -> rusqlite::Result<()> {
    let values = statement.values.as_ref().map_or(&[][..], |Values(v)| v);
    let mut prepared = prepare_bound(conn, &statement.sql, values)?;
    // The columns are read from the first row, not before the first step:
    // a cached statement is prepared again inside that step when another
    // connection changed the schema, and may then have other columns.
    let mut columns: Option<(usize, Arc<[String]>)> = None;
    let mut returned = prepared.raw_query();
    while let Some(row) = returned.next()? {
        let (width, names) = columns.get_or_insert_with(|| {
            let statement = row.as_ref();
            let names: Arc<[String]> = statement
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            (statement.column_count(), names)
        });
        let values = (0..*width)
            .map(|i| row.get::<_, SqliteValue>(i))
            .collect::<rusqlite::Result<_>>()?;
        rows.push(DirectRow {
            columns: Arc::clone(names),
            values,
        });
    }
    Ok(())
}

/// `sql` from the connection's statement cache, with `params` bound in
/// order as sqlx's SQLite driver binds them.
pub(super) fn prepare_bound<'conn>(
    conn: &'conn Connection,
    sql: &str,
    params: &[Value],
) -> rusqlite::Result<rusqlite::CachedStatement<'conn>> {
    let mut prepared = conn.prepare_cached(sql)?;
    for (i, value) in params.iter().enumerate() {
        prepared.raw_bind_parameter(i + 1, bindable(value)?)?;
    }
    Ok(prepared)
}

/// A SeaORM value as sqlx's SQLite driver binds it.
pub(super) fn bindable(value: &Value) -> rusqlite::Result<ToSqlOutput<'_>> {
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
        Value::ChronoDateTime(t) => text(t.map(|t| timestamp_text(&t))),
        Value::Json(j) => text(j.as_ref().map(|j| j.to_string())),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("a value of a type this module never writes: {other:?}").into(),
            ));
        }
    })
}

/// `t` as sqlx writes a timestamp, chrono's `%F %T%.f` (the fraction
/// left out when zero, else 3, 6 or 9 digits), without interpreting a
/// format string for each of a turn's dozen timestamps.
fn timestamp_text(t: &chrono::NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let nanos = t.nanosecond();
    if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
        // Years chrono writes with a sign, and leap seconds.
        return t.format("%F %T%.f").to_string();
    }
    let mut text = String::with_capacity(29);
    let _ = write!(
        text,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let _ = if nanos == 0 {
        Ok(())
    } else if nanos.is_multiple_of(1_000_000) {
        write!(text, ".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(text, ".{:06}", nanos / 1_000)
    } else {
        write!(text, ".{nanos:09}")
    };
    text
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::timestamp_text;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).and_then(|d| d.and_hms_opt(19, 5, 7));
        let Some(day) = day else {
            panic!("a valid date");
        };
        let nanos = [
            0,
            1,
            999,
            1_000,
            120_000,
            123_456_000,
            500_000_000,
            123_456_789,
            999_999_999,
        ];
        let mut times: Vec<NaiveDateTime> = nanos
            .iter()
            .filter_map(|&n| chrono::Timelike::with_nanosecond(&day, n))
            .collect();
        times.extend(
            [(1, 1, 1), (9999, 12, 31), (10_000, 1, 1), (-1, 6, 1)]
                .iter()
                .filter_map(|&(y, m, d)| NaiveDate::from_ymd_opt(y, m, d)?.and_hms_opt(0, 0, 0)),
        );
        assert_eq!(times.len(), nanos.len() + 4);
        for t in times {
            assert_eq!(timestamp_text(&t), t.format("%F %T%.f").to_string());
        }
    }
}
