//! How timestamps serialise: UTC, with a `Z`, to the microsecond —
//! `2026-11-27T12:21:26.182211Z` — so that a client never has to guess
//! the zone of a [`DateTime`](sea_orm::prelude::DateTime) (a
//! `NaiveDateTime`, always UTC in this store).
//!
//! This is serde only: what the database stores (SQLite's
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` text, PostgreSQL's `timestamp`) is a
//! data contract with the Python system and does not change. Reading
//! accepts the value with a `Z`, a `z`, `+00:00` or `-00:00` (Python's
//! `isoformat()` writes `+00:00`) or with no offset, and with a space
//! instead of the `T` (the stored form); any other offset is refused (the
//! store keeps UTC only). Fraction digits are optional; beyond 6 they are
//! truncated to the microsecond, the precision both backends keep.
//!
//! Used as `#[serde(with = "entity::utc_timestamp")]`, `…::option` for an
//! `Option`, and `…::utc` for a `chrono::DateTime<Utc>`.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The written form: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// `value` in the written form.
#[must_use]
pub fn format(value: &NaiveDateTime) -> String {
    value.format(FORMAT).to_string()
}

/// Reads `text` written as [`FORMAT`], with `Z`, `z`, `+00:00`, `-00:00`
/// or no offset, with a `T` or a space; fraction digits optional, more
/// than 6 truncated to the microsecond.
///
/// # Errors
/// A message saying what was expected when `text` is none of these, or
/// that its offset is not UTC.
pub fn parse(text: &str) -> Result<NaiveDateTime, String> {
    let naive = ["Z", "z", "+00:00", "-00:00"]
        .iter()
        .find_map(|utc| text.strip_suffix(utc))
        .unwrap_or(text);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())
        .map(|value| value.trunc_subsecs(6))
        .ok_or_else(|| {
            let offset = text.len().checked_sub(6).and_then(|at| text.get(at..));
            match offset {
                Some(offset)
                    if offset.starts_with(['+', '-'])
                        && offset.as_bytes()[3] == b':'
                        && DateTime::parse_from_rfc3339(text).is_ok() =>
                {
                    format!("`{text}` has the offset {offset}: only UTC timestamps (Z or +00:00) are accepted")
                }
                _ => format!("`{text}` is not a UTC timestamp like 2026-11-27T12:21:26.182211Z"),
            }
        })
}

/// Writes a timestamp as [`FORMAT`].
///
/// # Errors
/// The serializer's.
pub fn serialize<S: Serializer>(value: &NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&value.format(FORMAT))
}

/// Reads a timestamp as [`parse`] does.
///
/// # Errors
/// When the text is not such a timestamp.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same for an optional timestamp (`null` when absent).
pub mod option {
    use super::{Deserialize, Deserializer, FORMAT, NaiveDateTime, Serializer, parse};

    /// Writes the timestamp as [`FORMAT`], or `null`.
    ///
    /// # Errors
    /// The serializer's.
    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub fn serialize<S: Serializer>(
        value: &Option<NaiveDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.collect_str(&value.format(FORMAT)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a timestamp as [`parse`] does, or `null`.
    ///
    /// # Errors
    /// When the text is not such a timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<NaiveDateTime>, D::Error> {
        Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?
            .map(|text| parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The same for a `chrono::DateTime<Utc>`.
pub mod utc {
    use super::{DateTime, Deserializer, Serializer, Utc};

    /// Writes the timestamp as [`FORMAT`](super::FORMAT).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::serialize(&value.naive_utc(), serializer)
    }

    /// Reads a timestamp as [`parse`](super::parse) does.
    ///
    /// # Errors
    /// When the text is not such a timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        super::deserialize(deserializer).map(|naive| naive.and_utc())
    }
}

/// The same for an optional `chrono::DateTime<Utc>` (`null` when absent).
pub mod utc_option {
    use super::{DateTime, Deserializer, NaiveDateTime, Serializer, Utc};

    /// Writes the timestamp as [`FORMAT`](super::FORMAT), or `null`.
    ///
    /// # Errors
    /// The serializer's.
    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        super::option::serialize(&value.map(|v| v.naive_utc()), serializer)
    }

    /// Reads a timestamp as [`parse`](super::parse) does, or `null`.
    ///
    /// # Errors
    /// When the text is not such a timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        super::option::deserialize(deserializer)
            .map(|naive: Option<NaiveDateTime>| naive.map(|n| n.and_utc()))
    }
}
