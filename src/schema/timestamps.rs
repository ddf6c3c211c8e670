//! What the Python system's timestamps mean. It wrote four shapes:
//! `YYYY-MM-DD HH:MM:SS` (SQLite's `datetime('now')`, UTC), RFC 3339 with
//! an offset (`datetime.now(timezone.utc).isoformat()`), `YYYY-MM-DDTHH:MM:SS[.ffffff]`
//! without a zone from `utcnow()` (UTC), and the same shape from
//! `datetime.now()` (the host's local time) for nodes' and edges'
//! `recorded_at`. Adoption rewrites every one of them to this module's
//! UTC form; the proof before COMMIT compares the instants.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The columns whose zone-less values the Python code wrote in the host's
/// local time (graph_repo's `datetime.now().isoformat()`).
const LOCAL_TIME_COLUMNS: [(&str, &str); 2] =
    [("kg_nodes", "recorded_at"), ("kg_edges", "recorded_at")];

/// Whether a zone-less value of `table.column` is the host's local time.
#[must_use]
pub(crate) fn written_in_local_time(table: &str, column: &str) -> bool {
    LOCAL_TIME_COLUMNS.contains(&(table, column))
}

/// What one timestamp text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// Already this module's form (`YYYY-MM-DD HH:MM:SS[.f]`, UTC).
    Ours(NaiveDateTime),
    /// Another shape, meaning this UTC instant.
    Rewritten(NaiveDateTime),
    /// A local time the zone's clocks skipped (a spring-forward gap).
    NotInZone,
    /// Local time the zone's clocks passed twice (the fall-back hour):
    /// the earlier instant.
    Ambiguous(NaiveDateTime),
    /// Not a timestamp of any shape the Python code wrote.
    Unreadable,
}

/// Reads `text`, a value of `table.column`, with the Python host's zone.
#[must_use]
pub(crate) fn read(text: &str, table: &str, column: &str, zone: Tz) -> Reading {
    if let Some(ours) = ours(text) {
        return Reading::Ours(ours);
    }
    if text.as_bytes().get(10).is_none_or(|b| *b != b'T') {
        return Reading::Unreadable;
    }
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(text) {
        if !no_leap_second(&with_offset.naive_local()) {
            return Reading::Unreadable;
        }
        return Reading::Rewritten(with_offset.naive_utc());
    }
    let Some(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .filter(no_leap_second)
    else {
        return Reading::Unreadable;
    };
    if !written_in_local_time(table, column) {
        return Reading::Rewritten(naive);
    }
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(local) => Reading::Rewritten(local.naive_utc()),
        LocalResult::Ambiguous(earlier, _) => Reading::Ambiguous(earlier.naive_utc()),
        LocalResult::None => Reading::NotInZone,
    }
}

impl Reading {
    /// The UTC instant, where there is one.
    #[must_use]
    pub(crate) fn instant(self) -> Option<NaiveDateTime> {
        match self {
            Self::Ours(t) | Self::Rewritten(t) | Self::Ambiguous(t) => Some(t),
            Self::NotInZone | Self::Unreadable => None,
        }
    }
}

/// Values the Python system wrote beside this module since adoption, per
/// `table.column`: timestamps in its own shapes (a `T` between date and
/// time), which this module reads as they are. Reads every row of the
/// tables; tables or columns the database lacks are left out.
///
/// # Errors
/// The classified database error.
pub(crate) async fn python_written_values(
    conn: &impl sea_orm::ConnectionTrait,
) -> crate::error::Result<std::collections::BTreeMap<String, u64>> {
    let shape = super::inspect::inspect(conn, &super::ADOPTED_TABLES).await?;
    let mut counts = std::collections::BTreeMap::new();
    for (table, table_shape) in &shape {
        for column in table_shape
            .columns
            .iter()
            .filter(|c| c.declared_type == "DATETIME_TEXT")
        {
            let c = &column.name;
            let count = crate::database::query_value::<i64>(
                conn,
                &format!(
                    "SELECT count(*) FROM \"{table}\" WHERE typeof(\"{c}\") = 'text' \
                     AND substr(\"{c}\", 11, 1) = 'T'"
                ),
            )
            .await?
            .unwrap_or(0);
            if count > 0 {
                counts.insert(format!("{table}.{c}"), u64::try_from(count).unwrap_or(0));
            }
        }
    }
    Ok(counts)
}

/// This module's form of an instant, as the writer writes it.
#[must_use]
pub(crate) fn module_form(instant: NaiveDateTime) -> String {
    instant.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// `YYYY-MM-DD HH:MM:SS` then nothing or `.` and digits, a real date and
/// time.
fn ours(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    if b.len() < 19 || b[10] != b' ' {
        return None;
    }
    match &b[19..] {
        [] => {}
        [b'.', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .filter(no_leap_second)
}

/// chrono reads second 60 (a leap second, kept as a nanosecond count of a
/// second or more); no Python code wrote one and SQLite reads none.
fn no_leap_second(t: &NaiveDateTime) -> bool {
    chrono::Timelike::nanosecond(t) < 1_000_000_000
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::{Reading, module_form, read};
    use chrono::NaiveDateTime;
    use chrono_tz::Tz;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a test instant")
    }

    #[test]
    fn each_shape_the_python_code_wrote_is_read_for_the_instant_it_means() {
        let berlin: Tz = "Europe/Berlin".parse().expect("a zone");
        assert_eq!(
            read("2026-02-01 10:00:00", "utterances", "created_at", berlin),
            Reading::Ours(at("2026-02-01 10:00:00"))
        );
        assert_eq!(
            read(
                "2026-02-01T10:00:00.250000+00:00",
                "utterances",
                "created_at",
                berlin
            ),
            Reading::Rewritten(at("2026-02-01 10:00:00.25"))
        );
        assert_eq!(
            read(
                "2026-02-01T11:00:00+01:00",
                "utterances",
                "created_at",
                berlin
            ),
            Reading::Rewritten(at("2026-02-01 10:00:00"))
        );
        assert_eq!(
            read(
                "2026-02-01T10:00:00.000001",
                "utterances",
                "created_at",
                berlin
            ),
            Reading::Rewritten(at("2026-02-01 10:00:00.000001"))
        );
        // Nodes' and edges' recorded_at: the host's local time, CET in winter
        // and CEST in summer.
        assert_eq!(
            read("2026-02-01T11:00:00", "kg_nodes", "recorded_at", berlin),
            Reading::Rewritten(at("2026-02-01 10:00:00"))
        );
        assert_eq!(
            read("2026-07-01T12:00:00", "kg_edges", "recorded_at", berlin),
            Reading::Rewritten(at("2026-07-01 10:00:00"))
        );
        assert_eq!(
            read("2026-07-01T12:00:00", "kg_edges", "recorded_at", Tz::UTC),
            Reading::Rewritten(at("2026-07-01 12:00:00"))
        );
    }

    #[test]
    fn a_local_time_the_clocks_skipped_or_passed_twice_is_told_apart() {
        let berlin: Tz = "Europe/Berlin".parse().expect("a zone");
        assert_eq!(
            read("2026-03-29T02:30:00", "kg_nodes", "recorded_at", berlin),
            Reading::NotInZone
        );
        assert_eq!(
            read("2026-10-25T02:30:00", "kg_nodes", "recorded_at", berlin),
            Reading::Ambiguous(at("2026-10-25 00:30:00"))
        );
    }

    #[test]
    fn what_no_python_code_wrote_is_unreadable() {
        for text in [
            "2026-02-30 10:00:00",
            "2026-02-01 24:00:00",
            "2026-02-01 10:00:00+00:00",
            "2026-02-01T25:00:00",
            "yesterday",
            "2026-02-01 10:00:00.",
            "2026-02-01 23:59:60",
            "2026-02-01T10:00:60",
            "2026-02-01T10:00:60+00:00",
        ] {
            assert_eq!(
                read(text, "kg_nodes", "recorded_at", Tz::UTC),
                Reading::Unreadable,
                "{text}"
            );
        }
    }

    #[test]
    fn the_module_form_is_what_the_writer_writes() {
        assert_eq!(
            module_form(at("2026-02-01 10:00:00")),
            "2026-02-01 10:00:00"
        );
        assert_eq!(
            module_form(at("2026-02-01 10:00:00.25")),
            "2026-02-01 10:00:00.250"
        );
    }
}
