//! Changing what SQLite cannot `ALTER` — a CHECK, a foreign key, a column
//! type — without losing a row: the table rebuild of
//! <https://sqlite.org/lang_altertable.html#otheralter> (section 7).
//!
//! The steps, in the documented order: with foreign keys **off on this
//! connection** (checked here: the caller sets it before the transaction
//! begins, where the pragma takes effect), remember the table's indexes and
//! triggers, create the new table under a temporary name, copy every row,
//! drop the old table, rename the new one into its place, recreate the
//! indexes and triggers, then check that the row count is unchanged and
//! that `PRAGMA foreign_key_check` finds nothing. Any failure returns an
//! error, and the caller's transaction (migrations here always run in one)
//! rolls all of it back.
//!
//! Why foreign keys must be off: with them on, `DROP TABLE parent` deletes
//! the rows of every child table through `ON DELETE CASCADE` — rebuilding
//! `kg_nodes` would silently empty `kg_edges` — and `PRAGMA foreign_keys`
//! does nothing inside a transaction. [`rebuild_table`] refuses to run
//! with them on, so that trap cannot be fallen into.
//!
//! `interview-db init` (the library's `init_database`) and this crate's
//! binary (`cargo run -p migration`, `sea-orm-cli migrate`) both run
//! migrations with foreign keys off and check them before committing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// What the rebuilt table keeps of the old one's indexes. (Its triggers
/// always come back as they were, and so do views and other tables'
/// triggers that name it, which SQLite makes step aside for the rename.)
#[derive(Debug, Clone)]
pub enum Indexes {
    /// Recreate every index the old table had, as it was.
    Keep,
    /// Drop the old ones and create these instead (full `CREATE INDEX`
    /// statements).
    Replace(Vec<String>),
}

/// One table rebuild.
#[derive(Debug, Clone)]
pub struct Rebuild<'a> {
    /// The table, under its own name (it keeps it).
    pub table: &'a str,
    /// What goes between the parentheses of the new `CREATE TABLE`: its
    /// columns and table constraints. A foreign key to the table itself
    /// names the table (`REFERENCES "kg_nodes"`), as it will be called.
    pub definition: &'a str,
    /// The columns copied, by name; each must exist in both tables. Columns
    /// of the new table left out take their defaults.
    pub columns: &'a [&'a str],
    /// The indexes and triggers of the rebuilt table.
    pub indexes: Indexes,
}

/// Rebuilds `rebuild.table` as `rebuild.definition` says, keeping every
/// row. Must run inside a transaction on a SQLite connection whose foreign
/// keys are off.
///
/// # Errors
/// `DbErr::Migration` when foreign keys are on (nothing is done), when a
/// row did not make it across, or when `foreign_key_check` finds a row
/// pointing nowhere; any database error of the steps (a row the new
/// table's constraints refuse, say). The caller's transaction must then
/// roll back.
pub async fn rebuild_table<C: ConnectionTrait>(
    conn: &C,
    rebuild: &Rebuild<'_>,
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Sqlite {
        return Err(DbErr::Migration(format!(
            "the table rebuild of `{}` is for SQLite only",
            rebuild.table
        )));
    }
    if query_i64(conn, "PRAGMA foreign_keys").await? != 0 {
        return Err(DbErr::Migration(format!(
            "refusing to rebuild `{}` with foreign keys on: DROP TABLE would delete the rows \
             of its child tables through ON DELETE CASCADE. Run migrations through \
             `interview-db init` or this crate's binary, which turn foreign keys off \
             before the transaction begins",
            rebuild.table
        )));
    }
    let table = quote(rebuild.table);
    let temporary = quote(&format!("interview_rebuild_{}", rebuild.table));
    let mut kept = match &rebuild.indexes {
        Indexes::Keep => schema_statements(conn, rebuild.table, &["index"]).await?,
        Indexes::Replace(statements) => statements.clone(),
    };
    // The table's own triggers always come back (another application's
    // audit trigger, say).
    kept.extend(schema_statements(conn, rebuild.table, &["trigger"]).await?);
    // Views, and triggers of other tables, that name this one: SQLite
    // refuses the rename while they do, so they step aside and come back.
    let mentioning = schema_objects_with_names(conn, rebuild.table).await?;
    let before = query_i64(conn, &format!("SELECT COUNT(*) FROM {table}")).await?;
    let columns = rebuild
        .columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");

    conn.execute_unprepared(&format!(
        "CREATE TABLE {temporary} ({})",
        rebuild.definition
    ))
    .await?;
    conn.execute_unprepared(&format!(
        "INSERT INTO {temporary} ({columns}) SELECT {columns} FROM {table}"
    ))
    .await?;
    for (kind, name, _) in &mentioning {
        conn.execute_unprepared(&format!("DROP {kind} {}", quote(name)))
            .await?;
    }
    conn.execute_unprepared(&format!("DROP TABLE {table}"))
        .await?;
    conn.execute_unprepared(&format!("ALTER TABLE {temporary} RENAME TO {table}"))
        .await?;
    for statement in kept.iter().chain(mentioning.iter().map(|(_, _, sql)| sql)) {
        conn.execute_unprepared(statement).await?;
    }

    let after = query_i64(conn, &format!("SELECT COUNT(*) FROM {table}")).await?;
    if after != before {
        return Err(DbErr::Migration(format!(
            "rebuilding `{}` kept {after} of its {before} rows",
            rebuild.table
        )));
    }
    check_foreign_keys(conn).await
}

/// Fails when `PRAGMA foreign_key_check` finds a row that points nowhere,
/// naming up to ten of them.
///
/// # Errors
/// `DbErr::Migration` listing the rows, or the database error.
pub async fn check_foreign_keys<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA foreign_key_check",
        ))
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = rows
        .iter()
        .take(10)
        .map(|row| {
            let table: String = row.try_get_by_index(0).unwrap_or_default();
            let rowid: Option<i64> = row.try_get_by_index(1).unwrap_or_default();
            let parent: String = row.try_get_by_index(2).unwrap_or_default();
            format!(
                "{table} row {} → {parent}",
                rowid.map_or("?".into(), |r| r.to_string())
            )
        })
        .collect();
    Err(DbErr::Migration(format!(
        "{} row(s) point to rows that do not exist: {}",
        rows.len(),
        shown.join("; ")
    )))
}

/// The statements of `table`'s objects of the given kinds (`index`,
/// `trigger`), as SQLite keeps them (indexes SQLite makes itself for UNIQUE
/// and PRIMARY KEY have none, and come back with the table's definition).
///
/// # Errors
/// The database error.
pub async fn schema_statements<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    kinds: &[&str],
) -> Result<Vec<String>, DbErr> {
    let kinds = kinds
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!(
                "SELECT sql FROM sqlite_schema WHERE tbl_name = ? AND type IN ({kinds}) \
                 AND sql IS NOT NULL ORDER BY type, name"
            ),
            [table.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// Views, and triggers on other tables, whose SQL names `table`: (kind,
/// name, statement).
async fn schema_objects_with_names<C: ConnectionTrait>(
    conn: &C,
    table: &str,
) -> Result<Vec<(String, String, String)>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT type, name, sql FROM sqlite_schema \
             WHERE (type = 'view' OR (type = 'trigger' AND tbl_name <> ?1)) \
             AND sql IS NOT NULL AND instr(lower(sql), lower(?1)) > 0 ORDER BY type, name",
            [table.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<String>(0)?.to_ascii_uppercase(),
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
            ))
        })
        .collect()
}

async fn query_i64<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("`{sql}` returned no row")))?;
    row.try_get_by_index(0)
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
