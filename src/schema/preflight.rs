//! What adoption checks before it changes anything: every row of a file
//! the Python module made that this module's rules would refuse, counted
//! per rule and listed by table and row id.

use std::collections::BTreeMap;
use std::fmt;

use sea_orm::ConnectionTrait;
use serde::Serialize;

use super::adopt::AdoptionOptions;
use super::inspect::{SchemaShape, rows};
use crate::error::Result;

/// How many findings a refusal lists (every rule still gets its count).
const LISTED_FINDINGS: usize = 50;

/// Why a file cannot be adopted as it is: how many rows break each rule,
/// and the first of them by table and row id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdoptionFindings {
    /// Rows found, per rule.
    pub by_rule: BTreeMap<String, u64>,
    /// The first findings (at most 50).
    pub listed: Vec<Finding>,
}

/// One row that breaks one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The table.
    pub table: String,
    /// The row's id (or `rowid N` when it has none).
    pub row_id: String,
    /// The rule it breaks.
    pub rule: String,
}

impl AdoptionFindings {
    /// Whether nothing was found.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_rule.is_empty()
    }

    fn add(&mut self, table: &str, rule: &str, row_ids: Vec<String>, total: u64) {
        if total == 0 {
            return;
        }
        *self.by_rule.entry(format!("{table}: {rule}")).or_default() += total;
        for row_id in row_ids {
            if self.listed.len() < LISTED_FINDINGS {
                self.listed.push(Finding {
                    table: table.to_owned(),
                    row_id,
                    rule: rule.to_owned(),
                });
            }
        }
    }
}

impl fmt::Display for AdoptionFindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.by_rule.values().sum();
        write!(f, "{total} row(s) break the module's rules:")?;
        for (rule, count) in &self.by_rule {
            write!(f, " {rule} ×{count};")?;
        }
        f.write_str(" first rows:")?;
        for finding in &self.listed {
            write!(
                f,
                " {} {} ({});",
                finding.table, finding.row_id, finding.rule
            )?;
        }
        Ok(())
    }
}

/// Every row this module's rules would refuse, found before anything
/// changes: `python` is the file's shape, `ours` this module's.
pub(crate) async fn preflight(
    conn: &impl ConnectionTrait,
    python: &SchemaShape,
    ours: &SchemaShape,
    options: AdoptionOptions,
) -> Result<AdoptionFindings> {
    let mut findings = AdoptionFindings::default();
    let has = |table: &str, column: &str| {
        python
            .get(table)
            .is_some_and(|t| t.columns.iter().any(|c| c.name == column))
    };

    // Rows written with foreign keys off that point nowhere.
    let dangling = rows(conn, "PRAGMA foreign_key_check", &[]).await?;
    let mut by_table: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in &dangling {
        let table: String = row.try_get_by_index(0)?;
        let rowid: Option<i64> = row.try_get_by_index(1)?;
        let parent: String = row.try_get_by_index(2)?;
        let id = match (rowid, key_of(python, &table)) {
            (Some(rowid), Some(key)) => rows(
                conn,
                &format!(
                    "SELECT {} FROM \"{table}\" WHERE rowid = {rowid}",
                    row_name(key)
                ),
                &[],
            )
            .await?
            .first()
            .map(named)
            .transpose()?
            .unwrap_or_else(|| format!("rowid {rowid}")),
            (Some(rowid), None) => format!("rowid {rowid}"),
            (None, _) => "?".into(),
        };
        by_table.entry((table, parent)).or_default().push(id);
    }
    for ((table, parent), ids) in by_table {
        let total = ids.len() as u64;
        findings.add(
            &table,
            &format!("points to a missing {parent} row"),
            ids,
            total,
        );
    }

    if !options.repair_duplicate_current_nodes {
        check(
            conn,
            &mut findings,
            "kg_nodes",
            "id",
            "a second current node with the same session, label and type (repairable: --repair-duplicate-nodes)",
            "superseded_by IS NULL AND EXISTS (SELECT 1 FROM kg_nodes m WHERE m.superseded_by IS NULL \
             AND m.session_id = t.session_id AND m.label = t.label AND m.node_type = t.node_type AND m.id <> t.id)",
        )
        .await?;
    }

    // Every column holds what this module's column of that name takes.
    // (Tables this module has no place for are kept as they are.)
    for (table, shape) in python {
        let (Some(target), Some(key)) = (ours.get(table), key_of(python, table)) else {
            continue;
        };
        let text_columns: Vec<&str> = shape
            .columns
            .iter()
            .filter(|c| {
                target.columns.iter().any(|t| {
                    t.name == c.name
                        && matches!(
                            t.declared_type.as_str(),
                            "TEXT" | "JSONB_TEXT" | "DATETIME_TEXT"
                        )
                })
            })
            .map(|c| c.name.as_str())
            .collect();
        utf8_rule(conn, &mut findings, table, key, &text_columns).await?;
        for column in &shape.columns {
            let Some(declared) = target.columns.iter().find(|c| c.name == column.name) else {
                continue;
            };
            let c = format!("\"{}\"", column.name);
            let allowed = match declared.declared_type.as_str() {
                "DOUBLE" => "'real', 'integer'",
                "INTEGER" | "BOOLEAN" => "'integer'",
                "BLOB" => "'blob'",
                _ => "'text'", // text, JSON, timestamps
            };
            check(
                conn,
                &mut findings,
                table,
                key,
                &format!("{} holds a value of the wrong type", column.name),
                // typeof, not IS NOT NULL: SQLite takes a NOT NULL column's
                // IS NOT NULL for true without reading it.
                &format!("typeof({c}) NOT IN ('null', {allowed})"),
            )
            .await?;
            // A NULL where this module requires a value (a `writable_schema`
            // patch can leave one), unless adoption knows what it means.
            if declared.not_null && super::adopt::null_meaning(table, &column.name).is_none() {
                check(
                    conn,
                    &mut findings,
                    table,
                    key,
                    &format!("{} is NULL where a value is required", column.name),
                    &format!("typeof({c}) = 'null'"),
                )
                .await?;
            }
            match declared.declared_type.as_str() {
                "JSONB_TEXT" => {
                    check(
                        conn,
                        &mut findings,
                        table,
                        key,
                        &format!("{} is not valid JSON", column.name),
                        &format!("typeof({c}) = 'text' AND NOT json_valid({c})"),
                    )
                    .await?;
                }
                "DATETIME_TEXT" => {
                    timestamps_rule(conn, &mut findings, table, key, &column.name, options).await?;
                }
                _ => {}
            }
        }
        check(
            conn,
            &mut findings,
            table,
            key,
            &format!("has no {key}"),
            &format!("\"{key}\" IS NULL"),
        )
        .await?;
    }
    for (table, column) in [
        ("kg_nodes", "source_utterance_ids"),
        ("kg_edges", "source_utterance_ids"),
        ("utterances", "discourse_markers"),
        ("kg_nodes", "source_quotes"),
        ("canonical_edges", "surface_edge_ids"),
    ] {
        if !has(table, column) {
            continue;
        }
        check(
            conn,
            &mut findings,
            table,
            "id",
            &format!("{column} is not a JSON array of strings"),
            &format!(
                "{column} IS NOT NULL AND json_valid({column}) AND (json_type({column}) <> 'array' \
                 OR EXISTS (SELECT 1 FROM json_each(t.{column}) WHERE type <> 'text'))"
            ),
        )
        .await?;
    }
    for table in ["kg_nodes", "canonical_slots"] {
        if !has(table, "embedding") {
            continue;
        }
        check(
            conn,
            &mut findings,
            table,
            "id",
            &format!(
                "embedding is not {} float32 values ({} bytes); set it to NULL for the pipeline to compute it again",
                entity::EMBEDDING_DIMENSIONS,
                entity::EMBEDDING_BYTES
            ),
            &format!(
                "typeof(embedding) = 'blob' AND length(embedding) <> {}",
                entity::EMBEDDING_BYTES
            ),
        )
        .await?;
    }
    let vocabulary = {
        use sea_orm::{ActiveEnum, Iterable};
        entity::kg_edge::EdgeType::iter()
            .map(|t| format!("'{}'", t.to_value()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let fraction = |c: &str| format!("{c} IS NOT NULL AND NOT ({c} BETWEEN 0.0 AND 1.0)");
    // (table, the column the rule reads, rule, condition)
    let rules: Vec<(&str, &str, String, String)> = vec![
        (
            "sessions",
            "status",
            "status is not active, completed or abandoned".into(),
            "status NOT IN ('active', 'completed', 'abandoned')".into(),
        ),
        (
            "sessions",
            "turn_count",
            "turn_count is negative".into(),
            "turn_count < 0".into(),
        ),
        (
            "sessions",
            "coverage_score",
            "coverage_score is not in [0, 1]".into(),
            fraction("coverage_score"),
        ),
        (
            "utterances",
            "speaker",
            "speaker is not system or user".into(),
            "speaker NOT IN ('system', 'user')".into(),
        ),
        (
            "utterances",
            "turn_number",
            "turn_number is below 1, other than the system's opening question at 0".into(),
            "(turn_number < 0 OR (turn_number = 0 AND speaker <> 'system'))".into(),
        ),
        (
            "kg_nodes",
            "confidence",
            "confidence is not in [0, 1]".into(),
            fraction("confidence"),
        ),
        (
            "kg_nodes",
            "stance",
            "stance is not -1, 0 or 1".into(),
            "stance NOT IN (-1, 0, 1)".into(),
        ),
        (
            "kg_edges",
            "confidence",
            "confidence is not in [0, 1]".into(),
            fraction("confidence"),
        ),
        (
            "kg_edges",
            "edge_type",
            "edge_type is not a known edge type".into(),
            format!("edge_type NOT IN ({vocabulary})"),
        ),
        (
            "scoring_history",
            "turn_number",
            "turn_number is below 1".into(),
            "turn_number < 1".into(),
        ),
        (
            "scoring_history",
            "coverage_score",
            "coverage_score is not in [0, 1]".into(),
            fraction("coverage_score"),
        ),
        (
            "scoring_history",
            "depth_score",
            "depth_score is not in [0, 1]".into(),
            fraction("depth_score"),
        ),
        (
            "scoring_history",
            "saturation_score",
            "saturation_score is not in [0, 1]".into(),
            fraction("saturation_score"),
        ),
        (
            "scoring_history",
            "novelty_score",
            "novelty_score is not in [0, 1]".into(),
            fraction("novelty_score"),
        ),
        (
            "scoring_history",
            "richness_score",
            "richness_score is not in [0, 1]".into(),
            fraction("richness_score"),
        ),
        (
            "concept_elements",
            "priority",
            "priority is not high, medium or low".into(),
            "priority NOT IN ('high', 'medium', 'low')".into(),
        ),
        (
            "concept_elements",
            "is_covered",
            "is_covered is not 0 or 1".into(),
            "is_covered NOT IN (0, 1)".into(),
        ),
        (
            "canonical_slots",
            "status",
            "status is not candidate or active".into(),
            "status NOT IN ('candidate', 'active')".into(),
        ),
    ];
    for (table, column, rule, condition) in rules {
        if has(table, column) {
            check(conn, &mut findings, table, "id", &rule, &condition).await?;
        }
    }
    Ok(findings)
}

/// The SQL naming a row of a table whose key is `key`: the key's bytes
/// when it is text, else `rowid N` (a key of another type, or NULL).
fn row_name(key: &str) -> String {
    format!(
        "CASE typeof(\"{key}\") WHEN 'text' THEN CAST(\"{key}\" AS BLOB) \
         ELSE CAST('rowid ' || rowid AS BLOB) END"
    )
}

/// A row's name, selected first by [`row_name`]; bytes that are not UTF-8
/// are shown replaced.
fn named(row: &sea_orm::QueryResult) -> Result<String> {
    Ok(String::from_utf8_lossy(&row.try_get_by_index::<Vec<u8>>(0)?).into_owned())
}

/// Text values that are not UTF-8 (SQLite stores what it is given; no
/// Python code wrote such a value, and no Rust string can hold one), in
/// every column of `table` this module reads as text, a page at a time.
async fn utf8_rule(
    conn: &impl ConnectionTrait,
    findings: &mut AdoptionFindings,
    table: &str,
    key: &str,
    columns: &[&str],
) -> Result<()> {
    const PAGE: usize = 2000;
    if columns.is_empty() {
        return Ok(());
    }
    let selected = columns
        .iter()
        .map(|c| format!("CASE typeof(\"{c}\") WHEN 'text' THEN CAST(\"{c}\" AS BLOB) END"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut found: BTreeMap<&str, (Vec<String>, u64)> = BTreeMap::new();
    let mut last = i64::MIN;
    loop {
        let page = rows(
            conn,
            &format!(
                "SELECT rowid, {}, {selected} FROM \"{table}\" WHERE rowid > {last} \
                 ORDER BY rowid LIMIT {PAGE}",
                row_name(key)
            ),
            &[],
        )
        .await?;
        for row in &page {
            last = row.try_get_by_index(0)?;
            for (i, column) in columns.iter().enumerate() {
                let Some(bytes) = row.try_get_by_index::<Option<Vec<u8>>>(2 + i)? else {
                    continue;
                };
                if std::str::from_utf8(&bytes).is_err() {
                    let entry = found.entry(column).or_default();
                    entry.1 += 1;
                    if entry.0.len() < LISTED_FINDINGS {
                        entry.0.push(
                            String::from_utf8_lossy(&row.try_get_by_index::<Vec<u8>>(1)?)
                                .into_owned(),
                        );
                    }
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
    }
    for (column, (ids, total)) in found {
        findings.add(
            table,
            &format!("{column} is text that is not UTF-8"),
            ids,
            total,
        );
    }
    Ok(())
}

/// The column a table's rows are named by in findings: its primary key.
fn key_of<'a>(shape: &'a SchemaShape, table: &str) -> Option<&'a str> {
    shape
        .get(table)?
        .columns
        .iter()
        .find(|c| c.primary_key)
        .map(|c| c.name.as_str())
}

/// Timestamps that are neither this module's form nor one of the Python
/// code's shapes, or local times the Python host's zone never showed.
async fn timestamps_rule(
    conn: &impl ConnectionTrait,
    findings: &mut AdoptionFindings,
    table: &str,
    key: &str,
    column: &str,
    options: AdoptionOptions,
) -> Result<()> {
    let c = format!("\"{column}\"");
    // This module's form, checked by SQLite: the date and time as it
    // writes them back through a day number (an impossible date such as
    // Feb 30 or 24:00 comes back different), then nothing or a fraction.
    // Everything else is read in Rust.
    let candidates = rows(
        conn,
        &format!(
            "SELECT {}, CAST({c} AS BLOB) FROM \"{table}\" t \
             WHERE typeof({c}) = 'text' AND NOT (\
               substr({c}, 1, 19) IS strftime('%Y-%m-%d %H:%M:%S', julianday({c})) \
               AND (length({c}) = 19 OR (substr({c}, 20, 1) = '.' \
                 AND length({c}) > 20 AND substr({c}, 21) NOT GLOB '*[^0-9]*'))) \
             ORDER BY rowid",
            row_name(key)
        ),
        &[],
    )
    .await?;
    let zone = options.python_local_time_zone;
    let mut unreadable = Vec::new();
    let mut not_in_zone = Vec::new();
    for row in &candidates {
        let id = named(row)?;
        // Text that is not UTF-8 is the UTF-8 rule's finding.
        let Ok(text) = String::from_utf8(row.try_get_by_index::<Vec<u8>>(1)?) else {
            continue;
        };
        match super::timestamps::read(&text, table, column, zone) {
            super::timestamps::Reading::Unreadable => unreadable.push(id),
            super::timestamps::Reading::NotInZone => not_in_zone.push(id),
            _ => {}
        }
    }
    let (total, listed) = (
        unreadable.len() as u64,
        unreadable.into_iter().take(LISTED_FINDINGS).collect(),
    );
    findings.add(
        table,
        &format!(
            "{column} is not a timestamp the Python system wrote (`YYYY-MM-DD HH:MM:SS`, ISO 8601 \
             with or without an offset)"
        ),
        listed,
        total,
    );
    let (total, listed) = (
        not_in_zone.len() as u64,
        not_in_zone.into_iter().take(LISTED_FINDINGS).collect(),
    );
    findings.add(
        table,
        &format!(
            "{column} is a local time that {} skipped (clocks went forward): is \
             --python-local-time-zone the Python host's zone?",
            zone.name()
        ),
        listed,
        total,
    );
    Ok(())
}

/// Adds to `findings` the rows of `table` (aliased `t`) where `condition`
/// holds.
async fn check(
    conn: &impl ConnectionTrait,
    findings: &mut AdoptionFindings,
    table: &str,
    key: &str,
    rule: &str,
    condition: &str,
) -> Result<()> {
    let total = crate::database::query_value::<i64>(
        conn,
        &format!("SELECT COUNT(*) FROM \"{table}\" t WHERE {condition}"),
    )
    .await?
    .unwrap_or(0);
    if total == 0 {
        return Ok(());
    }
    let ids = rows(
        conn,
        &format!(
            "SELECT {} FROM \"{table}\" t WHERE {condition} \
             ORDER BY rowid LIMIT {LISTED_FINDINGS}",
            row_name(key)
        ),
        &[],
    )
    .await?
    .iter()
    .map(named)
    .collect::<Result<Vec<_>>>()?;
    findings.add(table, rule, ids, u64::try_from(total).unwrap_or(0));
    Ok(())
}
