//! Cells of a direct connection's rows decoded into Rust values, for the
//! repositories' row decoders (`repositories::rows`), each entity column
//! found by its name ([`Arranged`]: a row's order is its
//! statement's, and `RETURNING *` follows the table's physical order,
//! which columns added by `ALTER TABLE` change), accepting what SeaORM over
//! sqlx accepts: the same timestamp formats (with the module's own format
//! parsed first, without trial), JSON as text, integers where a float is
//! declared. A value of the wrong kind is a typed error naming its column.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rusqlite::types::ValueRef;
use sea_orm::{ActiveEnum, DbErr, EntityTrait, IdenStatic, Iterable};

use super::DirectRow;

/// Where a decoder reads its cells from.
pub(crate) trait Cells {
    /// The value of column `i`.
    fn cell(&self, i: usize) -> Result<ValueRef<'_>, DbErr>;
}

impl Cells for rusqlite::Row<'_> {
    fn cell(&self, i: usize) -> Result<ValueRef<'_>, DbErr> {
        self.get_ref(i)
            .map_err(|err| DbErr::Type(format!("column {i}: {err}")))
    }
}

impl Cells for DirectRow {
    fn cell(&self, i: usize) -> Result<ValueRef<'_>, DbErr> {
        self.value(i)
            .ok_or_else(|| DbErr::Type(format!("the row has no column {i}")))
    }
}

/// Where each column of an entity sits in a statement's rows, found by
/// name once per statement.
#[derive(Debug, Clone)]
pub(crate) struct Layout(Vec<usize>);

impl Layout {
    /// The positions of `E`'s columns, in the entity's order, among
    /// `columns` (a statement's column names, in its order).
    ///
    /// # Errors
    /// A `DbErr::Type` naming a column of `E` the statement does not return.
    pub(crate) fn of<'a, E: EntityTrait>(
        columns: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<Self, DbErr> {
        E::Column::iter()
            .map(|column| {
                let name = column.as_str();
                columns
                    .clone()
                    .position(|c| c == name)
                    .ok_or_else(|| DbErr::Type(format!("the row has no column `{name}`")))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// A row read through a [`Layout`]: cell `i` is the entity's `i`-th
/// column, wherever the statement put it.
pub(crate) struct Arranged<'a, C: ?Sized> {
    row: &'a C,
    layout: &'a Layout,
}

impl<'a, C: Cells + ?Sized> Arranged<'a, C> {
    /// `row`, read through `layout`.
    pub(crate) fn new(row: &'a C, layout: &'a Layout) -> Self {
        Self { row, layout }
    }
}

impl<C: Cells + ?Sized> Cells for Arranged<'_, C> {
    fn cell(&self, i: usize) -> Result<ValueRef<'_>, DbErr> {
        let at = *self
            .layout
            .0
            .get(i)
            .ok_or_else(|| DbErr::Type(format!("the entity has no column {i}")))?;
        self.row.cell(at)
    }
}

fn wrong(column: &str, expected: &str, value: ValueRef<'_>) -> DbErr {
    DbErr::Type(format!(
        "column `{column}`: expected {expected}, found {}",
        value.data_type()
    ))
}

pub(crate) fn text<C: Cells + ?Sized>(row: &C, i: usize, column: &str) -> Result<String, DbErr> {
    match row.cell(i)? {
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|_| DbErr::Type(format!("column `{column}`: text that is not UTF-8"))),
        other => Err(wrong(column, "text", other)),
    }
}

pub(crate) fn optional_text<C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<Option<String>, DbErr> {
    match row.cell(i)? {
        ValueRef::Null => Ok(None),
        _ => text(row, i, column).map(Some),
    }
}

fn real(value: ValueRef<'_>, column: &str) -> Result<f64, DbErr> {
    match value {
        ValueRef::Real(x) => Ok(x),
        // An INTEGER in a REAL column (SQLite stores 1.0 as 1 in a column
        // without REAL affinity, and Python's module may have written one).
        #[allow(clippy::cast_precision_loss)]
        ValueRef::Integer(n) => Ok(n as f64),
        other => Err(wrong(column, "a number", other)),
    }
}

pub(crate) fn float<C: Cells + ?Sized>(row: &C, i: usize, column: &str) -> Result<f64, DbErr> {
    real(row.cell(i)?, column)
}

pub(crate) fn optional_float<C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<Option<f64>, DbErr> {
    match row.cell(i)? {
        ValueRef::Null => Ok(None),
        value => real(value, column).map(Some),
    }
}

pub(crate) fn int32<C: Cells + ?Sized>(row: &C, i: usize, column: &str) -> Result<i32, DbErr> {
    match row.cell(i)? {
        ValueRef::Integer(n) => i32::try_from(n)
            .map_err(|_| DbErr::Type(format!("column `{column}`: {n} is out of range"))),
        other => Err(wrong(column, "an integer", other)),
    }
}

pub(crate) fn optional_blob<C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<Option<Vec<u8>>, DbErr> {
    match row.cell(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(bytes) => Ok(Some(bytes.to_vec())),
        other => Err(wrong(column, "a BLOB", other)),
    }
}

pub(crate) fn json<T: serde::de::DeserializeOwned, C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<Option<T>, DbErr> {
    let bytes = match row.cell(i)? {
        ValueRef::Null => return Ok(None),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes,
        other => return Err(wrong(column, "JSON text", other)),
    };
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|err| DbErr::Json(format!("column `{column}`: {err}")))
}

pub(crate) fn required<T>(value: Option<T>, column: &str) -> Result<T, DbErr> {
    value.ok_or_else(|| DbErr::Type(format!("column `{column}`: NULL in a NOT NULL field")))
}

pub(crate) fn enumerated<E: ActiveEnum<Value = String>, C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<E, DbErr> {
    E::try_from_value(&text(row, i, column)?)
}

pub(crate) fn timestamp<C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<NaiveDateTime, DbErr> {
    let value = row.cell(i)?;
    let parsed = match value {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| module_timestamp(text).or_else(|| other_timestamp(text))),
        ValueRef::Integer(seconds) => Utc
            .timestamp_opt(seconds, 0)
            .single()
            .map(|t| t.naive_utc()),
        ValueRef::Real(julian_day) => from_julian_day(julian_day),
        _ => None,
    };
    parsed.ok_or_else(|| wrong(column, "a timestamp", value))
}

pub(crate) fn optional_timestamp<C: Cells + ?Sized>(
    row: &C,
    i: usize,
    column: &str,
) -> Result<Option<NaiveDateTime>, DbErr> {
    match row.cell(i)? {
        ValueRef::Null => Ok(None),
        _ => timestamp(row, i, column).map(Some),
    }
}

/// The format this module (sqlx) writes, `YYYY-MM-DD HH:MM:SS[.fffffffff]`,
/// read without trying formats one after another.
fn module_timestamp(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            let digits = number(20..b.len())?;
            let scale = 10u32.pow(9 - u32::try_from(fraction.len()).ok()?);
            digits * scale
        }
        _ => return None,
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    let time =
        NaiveTime::from_hms_nano_opt(number(11..13)?, number(14..16)?, number(17..19)?, nanos)?;
    Some(date.and_time(time))
}

/// Every other text format sqlx reads, in sqlx's order (RFC 3339 first),
/// kept as the local time of its offset, as sqlx does.
fn other_timestamp(text: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.naive_local());
    }
    FORMATS.iter().find_map(|format| {
        DateTime::<FixedOffset>::parse_from_str(text, format)
            .map(|t| t.naive_local())
            .or_else(|_| NaiveDateTime::parse_from_str(text, format))
            .ok()
    })
}

/// A Julian day number as sqlx reads one.
fn from_julian_day(day: f64) -> Option<NaiveDateTime> {
    let seconds = (day - 2_440_587.5) * 86_400.0;
    if !seconds.is_finite() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let (whole, nanos) = (seconds.trunc() as i64, (seconds.fract() * 1e9).abs() as u32);
    Utc.timestamp_opt(whole, nanos)
        .single()
        .map(|t| t.naive_utc())
}

/// A text column of a returned row, by name (`None` when absent, NULL or
/// not text).
pub(crate) fn returned_text(row: &DirectRow, column: &str) -> Option<String> {
    text(row, row.position(column)?, column).ok()
}

/// A timestamp column of a returned row, by name (`None` when absent,
/// NULL or not a timestamp).
pub(crate) fn returned_timestamp(row: &DirectRow, column: &str) -> Option<NaiveDateTime> {
    timestamp(row, row.position(column)?, column).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_format_reads_as_sqlx_reads_it() {
        for text in [
            "2026-11-27 19:12:17",
            "2026-11-27 19:12:17.5",
            "2026-11-27 19:12:17.123",
            "2026-11-27 19:12:17.123456",
            "2026-11-27 19:12:17.123456789",
            "0001-01-01 00:00:00",
        ] {
            let expected = NaiveDateTime::parse_from_str(text, "%F %T%.f").ok();
            assert!(expected.is_some(), "{text}");
            assert_eq!(module_timestamp(text), expected, "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_other_formats() {
        for text in [
            "2026-11-27T19:12:17",
            "2026-11-27 19:12",
            "2026-11-27 19:12:17.",
            "2026-11-27 19:12:17.1234567890",
            "2026-11-27 19:12:17+00:00",
            "2026-13-27 19:12:17",
            "2026-11-27 25:12:17",
            "２０２６-11-27 19:12:17",
        ] {
            assert_eq!(module_timestamp(text), None, "{text}");
        }
        assert_eq!(
            other_timestamp("2026-11-27T19:12:17+02:00"),
            NaiveDateTime::parse_from_str("2026-11-27 19:12:17", "%F %T").ok()
        );
        assert_eq!(
            other_timestamp("2026-11-27 19:12"),
            NaiveDateTime::parse_from_str("2026-11-27 19:12", "%F %R").ok()
        );
    }
}
