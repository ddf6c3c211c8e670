//! The Python system's schema history, described once: what each version
//! of its start-up did to a file (`python/*.sql`), and every shape those
//! start-ups give a file, fresh or carried from version to version — the
//! shapes adoption recognises.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::inspect::{
    ColumnShape, ForeignKeyShape, IndexShape, SchemaShape, inspect, scratch_connection,
};
use crate::error::Result;

/// One version of the Python system's start-up: the scripts it ran at
/// every start, in order.
pub(crate) struct PythonVersion {
    /// The day it was current (`2026-03-12`).
    pub(crate) date: &'static str,
    scripts: &'static [&'static str],
}

const FIRST: &str = include_str!("python/2026-01-21.sql");
const SCORING_CANDIDATES: &str = include_str!("python/scoring_candidates.sql");
const SIGNALS: &str = include_str!("python/qualitative_signals.sql");
const CANONICAL: &str = include_str!("python/canonical.sql");

/// The versions whose start-up changed what a file holds, oldest first.
/// A version between two of them produced the shapes of the one before
/// (or, after 2026-02-13, shapes whose differences are a narrower
/// edge-type CHECK, an ALTER-added column and `discourse_markers`, which
/// the shapes below hold too). Tables several versions declared alike are
/// in a script of their own. (`tests/fixtures/python_eras.py` lists the
/// same.)
pub(crate) const VERSIONS: [PythonVersion; 5] = [
    PythonVersion {
        date: "2026-01-21",
        scripts: &[FIRST],
    },
    PythonVersion {
        date: "2026-01-23",
        scripts: &[
            FIRST,
            SCORING_CANDIDATES,
            include_str!("python/2026-01-23.sql"),
        ],
    },
    PythonVersion {
        date: "2026-01-27",
        scripts: &[
            include_str!("python/2026-01-27.sql"),
            SCORING_CANDIDATES,
            SIGNALS,
        ],
    },
    PythonVersion {
        date: "2026-02-12",
        scripts: &[
            SCORING_CANDIDATES,
            SIGNALS,
            include_str!("python/2026-02-12.sql"),
            CANONICAL,
        ],
    },
    PythonVersion {
        date: "2026-03-12",
        scripts: &[include_str!("python/2026-03-12.sql"), CANONICAL, SIGNALS],
    },
];

/// Every table any version made, parents before children: the interview
/// tables and one this module has no place for.
pub(crate) const PYTHON_TABLES: [&str; 11] =
    super::joined(super::ADOPTED_TABLES, ["scoring_candidates"]);

/// The statements of a script: each ends with `;` at the end of a line
/// (the scripts are written so; none has `;` inside a value).
pub(crate) fn statements(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        current.push_str(line);
        current.push('\n');
        let trimmed = line.trim_end();
        if trimmed.ends_with(';') && !trimmed.trim_start().starts_with("--") {
            found.push(std::mem::take(&mut current));
        }
    }
    found
}

/// Whether a failure of `statement` was swallowed by the Python start-up:
/// its ALTERs (a column already added, or already dropped) were.
fn failure_is_skipped(statement: &str) -> bool {
    statement
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("--"))
        .is_some_and(|line| line.starts_with("ALTER TABLE"))
}

/// Runs one version's start-up on `conn`, as the Python module did.
async fn start(conn: &DatabaseConnection, version: &PythonVersion) -> Result<()> {
    for script in version.scripts {
        for statement in statements(script) {
            match conn.execute_unprepared(&statement).await {
                Ok(_) => {}
                Err(_) if failure_is_skipped(&statement) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

/// A file shape the history produces, and how: made by one version and
/// started by each later one in turn.
pub(crate) struct HistoricShape {
    /// `made by 2026-01-21, then started by 2026-01-23, 2026-03-12`.
    pub(crate) label: String,
    pub(crate) shape: SchemaShape,
}

/// Every shape the history gives a file: made by each version, then
/// started by every later version in order (a deployment that kept
/// upgrading), each step's shape kept.
pub(crate) async fn historic_shapes() -> Result<Vec<HistoricShape>> {
    let mut shapes = Vec::new();
    for (made, version) in VERSIONS.iter().enumerate() {
        let conn = scratch_connection().await?;
        start(&conn, version).await?;
        let mut label = format!("made by {}", version.date);
        shapes.push(HistoricShape {
            label: label.clone(),
            shape: inspect(&conn, &PYTHON_TABLES).await?,
        });
        for (step, later) in VERSIONS.iter().enumerate().skip(made + 1) {
            start(&conn, later).await?;
            label.push_str(if step == made + 1 {
                ", then started by "
            } else {
                ", "
            });
            label.push_str(later.date);
            shapes.push(HistoricShape {
                label: label.clone(),
                shape: inspect(&conn, &PYTHON_TABLES).await?,
            });
        }
        let _ = conn.close().await;
    }
    Ok(shapes)
}

/// What a table has been in some version: every column (in each of its
/// declarations), index, foreign key and CHECK it has had, and those it
/// has had in every version.
#[derive(Default)]
struct TableHistory {
    columns: BTreeMap<String, Vec<ColumnShape>>,
    indexes: BTreeSet<IndexShape>,
    foreign_keys: BTreeSet<ForeignKeyShape>,
    checks: BTreeSet<String>,
    always_columns: Option<BTreeSet<String>>,
    always_indexes: Option<BTreeSet<IndexShape>>,
    always_foreign_keys: Option<BTreeSet<ForeignKeyShape>>,
    always_checks: Option<BTreeSet<String>>,
}

fn keep_common<T: Ord + Clone>(always: &mut Option<BTreeSet<T>>, now: BTreeSet<T>) {
    *always = Some(match always.take() {
        None => now,
        Some(before) => before.intersection(&now).cloned().collect(),
    });
}

/// The tables the history has made, each with what it has been, and the
/// tables every shape has.
pub(crate) struct History {
    tables: BTreeMap<String, TableHistory>,
    required_tables: BTreeSet<String>,
}

impl History {
    /// Gathers `shapes` (each first passed through `normalise`, as the
    /// file will be).
    pub(crate) fn of(shapes: &[HistoricShape]) -> Self {
        let mut tables: BTreeMap<String, TableHistory> = BTreeMap::new();
        let mut required: Option<BTreeSet<String>> = None;
        for historic in shapes {
            keep_common(&mut required, historic.shape.keys().cloned().collect());
            for (name, table) in &historic.shape {
                let history = tables.entry(name.clone()).or_default();
                for column in &table.columns {
                    let known = history.columns.entry(column.name.clone()).or_default();
                    if !known.contains(column) {
                        known.push(column.clone());
                    }
                }
                history.indexes.extend(table.indexes.iter().cloned());
                history
                    .foreign_keys
                    .extend(table.foreign_keys.iter().cloned());
                history.checks.extend(table.checks.iter().cloned());
                keep_common(
                    &mut history.always_columns,
                    table.columns.iter().map(|c| c.name.clone()).collect(),
                );
                keep_common(&mut history.always_indexes, table.indexes.clone());
                keep_common(&mut history.always_foreign_keys, table.foreign_keys.clone());
                keep_common(&mut history.always_checks, table.checks.clone());
            }
        }
        Self {
            tables,
            required_tables: required.unwrap_or_default(),
        }
    }

    /// Every way `actual` differs from what the history has made, one
    /// sentence each: a table, column, index, foreign key or CHECK no
    /// version had (a column in a declaration no version gave it
    /// included), or one every version had that is missing. Tables the
    /// history never made are other applications' and not looked at.
    pub(crate) fn differences(&self, actual: &SchemaShape) -> Vec<String> {
        let mut found = Vec::new();
        for table in &self.required_tables {
            if !actual.contains_key(table) {
                found.push(format!("table `{table}` is missing"));
            }
        }
        for (name, table) in actual {
            let Some(history) = self.tables.get(name) else {
                continue;
            };
            for column in &table.columns {
                match history.columns.get(&column.name) {
                    None => found.push(format!("{name}: column `{}` is not expected", column.name)),
                    Some(known) if !known.contains(column) => found.push(format!(
                        "{name}.{}: {} where a Python version declared {}",
                        column.name,
                        super::inspect::describe(column),
                        known
                            .iter()
                            .map(super::inspect::describe)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )),
                    Some(_) => {}
                }
            }
            for always in history.always_columns.iter().flatten() {
                if !table.columns.iter().any(|c| &c.name == always) {
                    found.push(format!("{name}: column `{always}` is missing"));
                }
            }
            let unexpected =
                |what: &str, item: String| format!("{name}: {what} {item} is not expected");
            let missing = |what: &str, item: String| format!("{name}: {what} {item} is missing");
            for index in table.indexes.difference(&history.indexes) {
                found.push(unexpected("index", super::inspect::describe_index(index)));
            }
            for index in history.always_indexes.iter().flatten() {
                if !table.indexes.contains(index) {
                    found.push(missing("index", super::inspect::describe_index(index)));
                }
            }
            for fk in table.foreign_keys.difference(&history.foreign_keys) {
                found.push(unexpected(
                    "foreign key",
                    super::inspect::describe_foreign_key(fk),
                ));
            }
            for fk in history.always_foreign_keys.iter().flatten() {
                if !table.foreign_keys.contains(fk) {
                    found.push(missing(
                        "foreign key",
                        super::inspect::describe_foreign_key(fk),
                    ));
                }
            }
            for check in table.checks.difference(&history.checks) {
                found.push(unexpected("CHECK", format!("({check})")));
            }
            for check in history.always_checks.iter().flatten() {
                if !table.checks.contains(check) {
                    found.push(missing("CHECK", format!("({check})")));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::{failure_is_skipped, statements};

    #[test]
    fn a_script_splits_at_the_semicolons_that_end_a_line() {
        let found = statements(
            "-- a comment;\nCREATE TABLE t (\n  a TEXT DEFAULT 'x;y'\n);\nALTER TABLE t ADD COLUMN b;\n",
        );
        assert_eq!(found.len(), 2);
        assert!(found[0].contains("'x;y'"));
        assert!(!failure_is_skipped(&found[0]));
        assert!(failure_is_skipped(&found[1]));
    }
}
