//! The shape of a SQLite schema as SQLite itself reports it — tables,
//! columns (type, nullability, default, key), foreign keys, indexes and
//! CHECK constraints — so that two schemas can be compared whatever their
//! DDL's formatting, and every difference named.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use crate::error::Result;

/// The interview tables adoption looks at, in foreign-key order.
pub(crate) use migration::INTERVIEW_TABLES;

/// One column, as `PRAGMA table_info` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColumnShape {
    pub(crate) name: String,
    pub(crate) declared_type: String,
    pub(crate) not_null: bool,
    pub(crate) default: Option<String>,
    pub(crate) primary_key: bool,
}

/// One foreign key, as `PRAGMA foreign_key_list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ForeignKeyShape {
    pub(crate) from: String,
    pub(crate) table: String,
    pub(crate) to: String,
    pub(crate) on_delete: String,
}

/// One index: its columns, whether unique, and its WHERE clause. Indexes
/// SQLite made for a UNIQUE or PRIMARY KEY constraint are named by what
/// they are, not by SQLite's automatic name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IndexShape {
    pub(crate) name: String,
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
    pub(crate) partial: Option<String>,
}

/// One table's shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TableShape {
    pub(crate) columns: Vec<ColumnShape>,
    pub(crate) foreign_keys: BTreeSet<ForeignKeyShape>,
    pub(crate) indexes: BTreeSet<IndexShape>,
    pub(crate) checks: BTreeSet<String>,
    /// The `CREATE TABLE` statement, as SQLite keeps it.
    pub(crate) sql: String,
}

/// The shapes of the tables looked at (absent tables are missing).
pub(crate) type SchemaShape = BTreeMap<String, TableShape>;

/// The shape of `tables` in the SQLite database behind `conn`.
pub(crate) async fn inspect(conn: &impl ConnectionTrait, tables: &[&str]) -> Result<SchemaShape> {
    let mut shape = SchemaShape::new();
    for &table in tables {
        let Some(sql) = table_sql(conn, table).await? else {
            continue;
        };
        let columns = rows(conn, &format!("PRAGMA table_info(\"{table}\")"), &[])
            .await?
            .iter()
            .map(|row| {
                Ok(ColumnShape {
                    name: row.try_get_by_index(1)?,
                    declared_type: row.try_get_by_index::<String>(2)?.to_ascii_uppercase(),
                    not_null: row.try_get_by_index::<i64>(3)? != 0,
                    default: row
                        .try_get_by_index::<Option<String>>(4)?
                        .map(|d| normalise(&d)),
                    primary_key: row.try_get_by_index::<i64>(5)? != 0,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let foreign_keys = rows(conn, &format!("PRAGMA foreign_key_list(\"{table}\")"), &[])
            .await?
            .iter()
            .map(|row| {
                Ok(ForeignKeyShape {
                    table: row.try_get_by_index(2)?,
                    from: row.try_get_by_index(3)?,
                    to: row
                        .try_get_by_index::<Option<String>>(4)?
                        .unwrap_or_default(),
                    on_delete: row.try_get_by_index(6)?,
                })
            })
            .collect::<Result<BTreeSet<_>>>()?;
        let mut indexes = BTreeSet::new();
        for row in rows(conn, &format!("PRAGMA index_list(\"{table}\")"), &[]).await? {
            let name: String = row.try_get_by_index(1)?;
            let unique = row.try_get_by_index::<i64>(2)? != 0;
            let origin: String = row.try_get_by_index(3)?;
            let columns = rows(conn, &format!("PRAGMA index_info(\"{name}\")"), &[])
                .await?
                .iter()
                .map(|r| Ok(r.try_get_by_index::<Option<String>>(2)?.unwrap_or_default()))
                .collect::<Result<Vec<String>>>()?;
            let index_sql = rows(
                conn,
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?",
                &[name.as_str()],
            )
            .await?
            .first()
            .map(|r| r.try_get_by_index::<Option<String>>(0))
            .transpose()?
            .flatten();
            let partial = index_sql.as_deref().and_then(where_clause);
            let name = match origin.as_str() {
                "pk" => "(primary key)".to_owned(),
                "u" => "(unique constraint)".to_owned(),
                _ => name,
            };
            indexes.insert(IndexShape {
                name,
                columns,
                unique,
                partial,
            });
        }
        shape.insert(
            table.to_owned(),
            TableShape {
                columns,
                foreign_keys,
                indexes,
                checks: check_clauses(&sql).into_iter().collect(),
                sql,
            },
        );
    }
    Ok(shape)
}

/// Every difference between `actual` and `expected`, one sentence each.
pub(crate) fn differences(actual: &SchemaShape, expected: &SchemaShape) -> Vec<String> {
    let mut found = Vec::new();
    for (table, want) in expected {
        let Some(have) = actual.get(table) else {
            found.push(format!("table `{table}` is missing"));
            continue;
        };
        for column in &want.columns {
            match have.columns.iter().find(|c| c.name == column.name) {
                None => found.push(format!("{table}: column `{}` is missing", column.name)),
                Some(c) if c != column => found.push(format!(
                    "{table}.{}: {} where {} was expected",
                    column.name,
                    describe(c),
                    describe(column)
                )),
                Some(_) => {}
            }
        }
        for column in &have.columns {
            if !want.columns.iter().any(|c| c.name == column.name) {
                found.push(format!("{table}: column `{}` is not expected", column.name));
            }
        }
        for fk in want.foreign_keys.difference(&have.foreign_keys) {
            found.push(format!(
                "{table}: foreign key {} is missing",
                describe_foreign_key(fk)
            ));
        }
        for fk in have.foreign_keys.difference(&want.foreign_keys) {
            found.push(format!(
                "{table}: foreign key {} is not expected",
                describe_foreign_key(fk)
            ));
        }
        for index in want.indexes.difference(&have.indexes) {
            found.push(format!(
                "{table}: index {} is missing",
                describe_index(index)
            ));
        }
        for index in have.indexes.difference(&want.indexes) {
            found.push(format!(
                "{table}: index {} is not expected",
                describe_index(index)
            ));
        }
        for check in want.checks.difference(&have.checks) {
            found.push(format!("{table}: CHECK ({check}) is missing"));
        }
        for check in have.checks.difference(&want.checks) {
            found.push(format!("{table}: CHECK ({check}) is not expected"));
        }
    }
    found
}

pub(crate) fn describe(column: &ColumnShape) -> String {
    format!(
        "{}{}{}{}",
        column.declared_type,
        if column.not_null { " NOT NULL" } else { "" },
        column
            .default
            .as_ref()
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default(),
        if column.primary_key {
            " PRIMARY KEY"
        } else {
            ""
        }
    )
}

/// A foreign key as a difference names it.
pub(crate) fn describe_foreign_key(fk: &ForeignKeyShape) -> String {
    format!(
        "{} → {}({}) ON DELETE {}",
        fk.from, fk.table, fk.to, fk.on_delete
    )
}

pub(crate) fn describe_index(index: &IndexShape) -> String {
    format!(
        "{}{} on ({}){}",
        if index.unique { "UNIQUE " } else { "" },
        index.name,
        index.columns.join(", "),
        index
            .partial
            .as_ref()
            .map(|w| format!(" WHERE {w}"))
            .unwrap_or_default()
    )
}

/// A private in-memory SQLite database, foreign keys off (as migrations
/// and the Python start-ups run), to build a reference schema in.
pub(crate) async fn scratch_connection() -> Result<sea_orm::DatabaseConnection> {
    let mut options = sea_orm::ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).sqlx_logging(false);
    #[cfg(feature = "sqlite")]
    options.map_sqlx_sqlite_opts(|o| o.foreign_keys(false));
    Ok(sea_orm::Database::connect(options).await?)
}

/// The `CREATE TABLE` statement of `table`, if it exists.
pub(crate) async fn table_sql(conn: &impl ConnectionTrait, table: &str) -> Result<Option<String>> {
    Ok(rows(
        conn,
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
        &[table],
    )
    .await?
    .first()
    .map(|row| row.try_get_by_index::<String>(0))
    .transpose()?)
}

/// The rows `sql` returns, with `values` bound.
pub(crate) async fn rows(
    conn: &impl ConnectionTrait,
    sql: &str,
    values: &[&str],
) -> Result<Vec<QueryResult>> {
    Ok(conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values.iter().map(|v| (*v).into()),
        ))
        .await?)
}

/// SQL text compared by meaning as far as formatting goes: lower case,
/// without quotes around identifiers and without white space.
fn normalise(sql: &str) -> String {
    sql.chars()
        .filter(|c| !c.is_whitespace() && *c != '"' && *c != '`')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `sql` without its comments (`-- …` to the end of the line, `/* … */`),
/// quoted text left as it is. The Python system's edge-type CHECK carries
/// `-- methodology` comments inside its `IN (…)` list.
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            (None, '\'' | '"' | '`') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '-') if chars.peek() == Some(&'-') => {
                // To the end of the line; the line break stays (white space).
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = '\0';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// A normalised CHECK of the shape `column IN (literal, …)` with its
/// literals sorted and each once: the set of values is what the CHECK
/// means, not the order the schema listed them in. Any other CHECK is
/// returned as it is.
fn canonical_check(check: String) -> String {
    let Some(open) = check.find("in(") else {
        return check;
    };
    let (column, list) = (&check[..open], &check[open + 3..]);
    let Some(list) = list.strip_suffix(')') else {
        return check;
    };
    let literal = |item: &str| {
        (item.len() >= 2
            && item.starts_with('\'')
            && item.ends_with('\'')
            && !item[1..item.len() - 1].contains('\''))
            || (!item.is_empty()
                && item
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == '.'))
    };
    if column.is_empty() || !column.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return check;
    }
    let mut items: Vec<&str> = list.split(',').collect();
    if !items.iter().all(|item| literal(item)) {
        return check;
    }
    items.sort_unstable();
    items.dedup();
    format!("{column}in({})", items.join(","))
}

/// The expressions of every `CHECK (...)` in a `CREATE TABLE` statement,
/// normalised, comments left out.
fn check_clauses(sql: &str) -> Vec<String> {
    let sql = &strip_comments(sql);
    let lower = sql.to_ascii_lowercase();
    let bytes = sql.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find("check") {
        let start = from + at;
        from = start + 5;
        // A whole word, followed by an opening parenthesis.
        let before_ok = start == 0 || !is_word_byte(bytes[start - 1]);
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('(') {
            continue;
        }
        let open = from + (lower[from..].len() - rest.len());
        if let Some(close) = matching_parenthesis(sql, open) {
            found.push(canonical_check(normalise(&sql[open + 1..close])));
            from = close;
        }
    }
    found
}

/// The WHERE clause of a `CREATE INDEX` statement, normalised.
fn where_clause(sql: &str) -> Option<String> {
    let sql = &strip_comments(sql);
    let lower = sql.to_ascii_lowercase();
    let at = lower.rfind(" where ")?;
    Some(normalise(&sql[at + 7..]))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The index of the `)` that closes the `(` at `open`, skipping quoted
/// text.
fn matching_parenthesis(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in sql.char_indices().skip_while(|(i, _)| *i < open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{check_clauses, where_clause};

    #[test]
    fn checks_are_found_whatever_their_formatting() {
        let sql = r#"CREATE TABLE t (a TEXT CHECK (a IN ('x', 'y(z)')), "b" REAL CHECK("b" >= 0.0 AND b <= 1.0), checked INT)"#;
        assert_eq!(
            check_clauses(sql),
            vec!["ain('x','y(z)')".to_owned(), "b>=0.0andb<=1.0".to_owned()]
        );
    }

    #[test]
    fn comments_and_the_order_of_a_checks_values_do_not_matter() {
        let commented = "CREATE TABLE kg_edges (edge_type TEXT NOT NULL CHECK (edge_type IN (\n\
            -- Means-end chain (laddering)\n\
            'leads_to', 'revises', /* JTBD, (since 02-03) */\n\
            'triggers' -- added 02-13, 'not a type'\n\
            )), note TEXT CHECK (note <> '-- not a comment'))";
        let plain = "CREATE TABLE kg_edges (edge_type TEXT NOT NULL \
            CHECK (edge_type IN ('triggers','leads_to','revises','leads_to')), \
            note TEXT CHECK (note <> '-- not a comment'))";
        assert_eq!(check_clauses(commented), check_clauses(plain));
        assert_eq!(
            check_clauses(commented),
            vec![
                "edge_typein('leads_to','revises','triggers')".to_owned(),
                "note<>'--notacomment'".to_owned()
            ]
        );
    }

    #[test]
    fn a_check_of_another_shape_keeps_its_order() {
        assert_eq!(
            check_clauses("CREATE TABLE t (a INT CHECK (a IN (2, 1) OR a > 9))"),
            vec!["ain(2,1)ora>9".to_owned()]
        );
    }

    #[test]
    fn a_partial_index_keeps_its_where_clause() {
        assert_eq!(
            where_clause(r#"CREATE UNIQUE INDEX "u" ON "t" ("a") WHERE "b" IS NULL"#),
            Some("bisnull".to_owned())
        );
        assert_eq!(where_clause("CREATE INDEX i ON t(a)"), None);
    }
}
