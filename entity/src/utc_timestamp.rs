//! How timestamps serialise: UTC, with a `Z`, to the microsecond —
//! `2026-11-27T12:21:26.182211Z` — so that a client never has to guess
//! the zone of a [`DateTime`](sea_orm::prelude::DateTime) (a
//! `NaiveDateTime`, always UTC in this store).
//!
//! This is serde only: what the database stores (SQLite's
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` text, PostgreSQL's `timestamp`) is a
//! data contract with the Python system and does not change. Reading
//! accepts the value with or without the `Z`, and with a space instead of
//! the `T` (the stored form), with any number of fraction digits.
//!
//! Used as `#[serde(with = "entity::utc_timestamp")]`, `…::option` for an
//! `Option`, and `…::utc` for a `chrono::DateTime<Utc>`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The written form: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// `value` in the written form.
#[must_use]
pub fn format(value: &NaiveDateTime) -> String {
    value.format(FORMAT).to_string()
}

/// Reads `text` written as [`FORMAT`], or without the `Z`, or with a
/// space for the `T`; fraction digits optional.
///
/// # Errors
/// A message saying what was expected when `text` is none of these.
pub fn parse(text: &str) -> Result<NaiveDateTime, String> {
    let naive = text.strip_suffix('Z').unwrap_or(text);
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())
        .ok_or_else(|| format!("`{text}` is not a UTC timestamp like 2026-11-27T12:21:26.182211Z"))
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
