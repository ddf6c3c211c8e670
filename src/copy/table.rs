//! One table's rows, read from the source snapshot in pages of its primary
//! key and written to the target in multi-row inserts, through the entity
//! models: the same decoding and encoding the repositories use, so every
//! value keeps its type on either backend.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, ConnectionTrait, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable, ModelTrait, PrimaryKeyToColumn, QueryFilter, QueryOrder,
    QuerySelect, Value,
};
use serde::Serialize;

use super::CopyProgress;
use super::checksum::TableChecksum;
use super::target::TargetTransaction;
use crate::error::{Error, Result};

/// The most bind parameters one insert carries: under SQLite's 32,766 and
/// PostgreSQL's 65,535.
const MAX_PARAMETERS: usize = 30_000;

/// A row to fix once every row of its table is in: a node inserted as its
/// own successor, and the node that really superseded it.
pub(super) struct Successor {
    pub(super) node_id: String,
    pub(super) superseded_by: String,
}

/// What one table needs beside its entity: a way to take out of a row what
/// must wait until the whole table is written.
pub(super) trait CopiedTable: EntityTrait
where
    Self::Model: Serialize + IntoActiveModel<Self::ActiveModel> + Send + Sync,
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + Send,
{
    /// Takes out of `row` a reference to a row of the same table that may
    /// come later in the copy (none by default).
    fn defer_self_reference(_row: &mut Self::Model) -> Option<Successor> {
        None
    }
}

impl CopiedTable for entity::session::Entity {}
impl CopiedTable for entity::utterance::Entity {}
impl CopiedTable for entity::kg_edge::Entity {}
impl CopiedTable for entity::scoring_history::Entity {}
impl CopiedTable for entity::concept_element::Entity {}
impl CopiedTable for entity::session_erasure::Entity {}
impl CopiedTable for entity::canonical_slot::Entity {}
impl CopiedTable for entity::slot_mapping::Entity {}
impl CopiedTable for entity::canonical_edge::Entity {}
impl CopiedTable for entity::qualitative_signal::Entity {}

/// A superseded node may be read before the node that superseded it (ids
/// are not ordered by time in files the Python module wrote). It is
/// inserted as its own successor — a reference that exists, and not NULL,
/// which would make it a second *current* node under the partial unique
/// index — and pointed at its real successor once all nodes are in.
impl CopiedTable for entity::kg_node::Entity {
    fn defer_self_reference(row: &mut Self::Model) -> Option<Successor> {
        let superseded_by = row.superseded_by.take()?;
        row.superseded_by = Some(row.id.clone());
        Some(Successor {
            node_id: row.id.to_string(),
            superseded_by: superseded_by.into_string(),
        })
    }
}

/// The primary-key column of `E` (every table here has a one-column text
/// key).
fn key_column<E: EntityTrait>() -> Result<E::Column> {
    E::PrimaryKey::iter()
        .next()
        .map(PrimaryKeyToColumn::into_column)
        .ok_or_else(|| Error::Unsupported("a table without a primary key".into()))
}

fn key_of<E: EntityTrait>(row: &E::Model, column: E::Column) -> Result<String> {
    match row.get(column) {
        Value::String(Some(key)) => Ok(key.to_string()),
        other => Err(Error::Unsupported(format!(
            "a primary key that is not text: {other:?}"
        ))),
    }
}

/// Reads the page of `E` after `after` (by primary key) from `conn`.
async fn page<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    key: E::Column,
    after: Option<&str>,
    rows: usize,
) -> Result<Vec<E::Model>> {
    let mut select = E::find().order_by_asc(key).limit(rows as u64);
    if let Some(after) = after {
        select = select.filter(key.gt(after));
    }
    Ok(select.all(conn).await?)
}

/// About how many bytes of rows a page holds in memory: pages of a table
/// whose rows are large (megabyte answers) hold fewer rows.
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Rows of the first page of a table, before its rows' size is known.
const FIRST_PAGE_ROWS: usize = 256;

/// How many rows the next page asks for, now that `rows` rows took `bytes`:
/// about [`PAGE_BYTES`], at least one, at most `page_rows`.
fn next_page_rows(bytes: usize, rows: usize, page_rows: usize) -> usize {
    (PAGE_BYTES / (bytes / rows.max(1)).max(1)).clamp(1, page_rows)
}

/// Copies every row of `E` from `source` to `target`, at most `page_rows`
/// (and about [`PAGE_BYTES`]) at a time, and returns the checksum of what was read and the rows whose
/// self-reference waits.
pub(super) async fn copy<E>(
    source: &impl ConnectionTrait,
    target: &mut TargetTransaction,
    page_rows: usize,
    progress: &dyn CopyProgress,
) -> Result<(TableChecksum, Vec<Successor>)>
where
    E: CopiedTable,
    E::Model: Serialize + IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let table = E::default().table_name();
    let key = key_column::<E>()?;
    let mut checksum = TableChecksum::default();
    let mut successors = Vec::new();
    let mut asked = page_rows.min(FIRST_PAGE_ROWS);
    let mut rows = page::<E>(source, key, None, asked).await?;
    // Each page is written while the next one is read: the two databases'
    // connections work at the same time.
    while let Some(final_row) = rows.last() {
        let last = key_of::<E>(final_row, key)?;
        let read = rows.len();
        let mut models = Vec::with_capacity(read);
        let mut bytes = 0;
        for mut row in rows {
            bytes += checksum.add::<E>(&row);
            successors.extend(E::defer_self_reference(&mut row));
            models.push(row);
        }
        let write = target.write::<E>(models);
        let complete = read < asked;
        asked = next_page_rows(bytes, read, page_rows);
        let next = async {
            if complete {
                Ok(Vec::new())
            } else {
                page::<E>(source, key, Some(&last), asked).await
            }
        };
        let (written, next) = tokio::join!(write, next);
        written?;
        rows = next?;
        progress.advanced(table, read as u64);
    }
    Ok((checksum, successors))
}

/// Inserts `rows` of `E` in multi-row `INSERT`s, as many rows each as the
/// backends' parameter limits allow.
pub(super) async fn insert<E>(target: &impl ConnectionTrait, rows: Vec<E::Model>) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let per_insert = (MAX_PARAMETERS / E::Column::iter().count().max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        E::insert_many(
            rows.by_ref()
                .take(per_insert)
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(target)
        .await?;
    }
    Ok(())
}

/// Points each node inserted as its own successor at its real one.
pub(super) async fn restore_successors(
    target: &impl ConnectionTrait,
    successors: &[Successor],
) -> Result<()> {
    use entity::kg_node::Column;
    // Two values a row; one UPDATE per chunk, matched by id.
    // A CASE is searched arm by arm, so chunks stay small.
    for chunk in successors.chunks(500) {
        let mut case = sea_orm::sea_query::CaseStatement::new();
        for successor in chunk {
            case = case.case(
                Column::Id.eq(successor.node_id.as_str()),
                Expr::val(successor.superseded_by.as_str()),
            );
        }
        let update = Query::update()
            .table(entity::kg_node::Entity)
            .value(Column::SupersededBy, case)
            .and_where(Column::Id.is_in(chunk.iter().map(|s| s.node_id.as_str())))
            .to_owned();
        target.execute(&update).await?;
    }
    Ok(())
}

/// Reads every row of `E` back from `conn`, in pages by primary key as
/// [`copy`] reads (about [`PAGE_BYTES`] each, so large rows are not held
/// together), and checksums it the way [`copy`] did. Pages, not a row
/// stream: sqlx hands a streamed SQLite row to the reading task one at a
/// time, a hand-off per row.
pub(super) async fn checksum<E>(
    conn: &impl ConnectionTrait,
    page_rows: usize,
) -> Result<TableChecksum>
where
    E: EntityTrait,
{
    let key = key_column::<E>()?;
    let mut checksum = TableChecksum::default();
    let mut asked = page_rows.min(FIRST_PAGE_ROWS);
    let mut last: Option<String> = None;
    loop {
        let rows = page::<E>(conn, key, last.as_deref(), asked).await?;
        let Some(final_row) = rows.last() else {
            break;
        };
        last = Some(key_of::<E>(final_row, key)?);
        let bytes: usize = rows.iter().map(|row| checksum.add::<E>(row)).sum();
        if rows.len() < asked {
            break;
        }
        asked = next_page_rows(bytes, rows.len(), page_rows);
    }
    Ok(checksum)
}

/// The first JSON number of `E`'s rows in `source` that the entity models
/// would round: (row id, column, the number). Only documents that may hold
/// one are read, one at a time, to be looked at: a run of 16 digits and
/// points (a double holds 15–17 significant digits), or an exponent of
/// three digits from 300 or of four (subnormals below 1e-307, overflow
/// above 1e308; a number of at most 15 digits with a smaller exponent reads
/// back exactly). Hexadecimal ids (`…-7e1d-…`) do not look like either.
pub(super) async fn find_inexact_json_number<E: EntityTrait, C>(
    source: &C,
) -> Result<Option<(String, String, String)>>
where
    C: ConnectionTrait + sea_orm::StreamTrait,
{
    let table = E::default().table_name();
    let key = key_column::<E>()?;
    let backend = ConnectionTrait::get_database_backend(source);
    for column in E::Column::iter() {
        if !matches!(
            column.def().get_column_type(),
            ColumnType::Json | ColumnType::JsonBinary
        ) {
            continue;
        }
        let name = column.as_str();
        if STRING_LISTS.contains(&name) {
            continue;
        }
        let candidates = match backend {
            sea_orm::DbBackend::Postgres => format!(
                "SELECT CAST(\"{key}\" AS TEXT), CAST(\"{name}\" AS TEXT) FROM \"{table}\" \
                 WHERE CAST(\"{name}\" AS TEXT) ~ '[0-9.]{{16}}|[0-9][eE][-+]?([3-9][0-9][0-9]|[0-9]{{4}})'",
                key = key.as_str()
            ),
            _ => format!(
                "SELECT CAST(\"{key}\" AS TEXT), \"{name}\" FROM \"{table}\" \
                 WHERE \"{name}\" GLOB '*{}*' \
                    OR \"{name}\" GLOB '*[0-9][eE][3-9][0-9][0-9]*' \
                    OR \"{name}\" GLOB '*[0-9][eE][-+][3-9][0-9][0-9]*' \
                    OR \"{name}\" GLOB '*[0-9][eE][0-9][0-9][0-9][0-9]*' \
                    OR \"{name}\" GLOB '*[0-9][eE][-+][0-9][0-9][0-9][0-9]*'",
                "[0-9.]".repeat(16),
                key = key.as_str()
            ),
        };
        let rows = source
            .stream_raw(sea_orm::Statement::from_string(backend, candidates))
            .await?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let json: Option<String> = row.try_get_by_index(1)?;
            if let Some(number) = json
                .as_deref()
                .and_then(super::json_numbers::first_inexact_number)
            {
                return Ok(Some((
                    row.try_get_by_index(0)?,
                    name.to_owned(),
                    number.to_owned(),
                )));
            }
        }
    }
    Ok(None)
}

/// JSON columns whose entity type is a `StringList`: a number in one fails
/// to decode (the copy stops, nothing committed) rather than being
/// rounded, so they are not searched for numbers — and their ids, full of
/// digits, were most of that search's cost.
const STRING_LISTS: [&str; 5] = [
    "source_utterance_ids",
    "discourse_markers",
    "source_quotes",
    "surface_edge_ids",
    "extraction_errors",
];

/// Which way a copy goes, for [`find_unstorable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// SQLite → PostgreSQL.
    ToPostgres,
    /// PostgreSQL → SQLite.
    ToSqlite,
    /// SQLite → SQLite.
    SqliteToSqlite,
}

/// The SQL conditions under which `column` of `table` holds a value the
/// target cannot keep as it is, each with what that value is.
fn unstorable_conditions(
    table: &str,
    name: &str,
    column_type: &ColumnType,
    direction: Direction,
) -> Vec<(String, &'static str)> {
    let from_sqlite = matches!(direction, Direction::ToPostgres | Direction::SqliteToSqlite);
    let mut conditions = Vec::new();
    match (direction, column_type) {
        // PostgreSQL's `text` and `jsonb` cannot hold U+0000.
        (Direction::ToPostgres, ColumnType::Text | ColumnType::String(_) | ColumnType::Char(_)) => {
            conditions.push((
                format!("instr(CAST(\"{name}\" AS BLOB), x'00') > 0"),
                "a NUL character (PostgreSQL text cannot hold U+0000)",
            ));
        }
        // JSON text spells NUL `\u0000`; json_tree decodes it, so a literal
        // backslash before `u0000` is not taken for one.
        (Direction::ToPostgres, ColumnType::Json | ColumnType::JsonBinary) => conditions.push((
            format!(
                "(instr(\"{name}\", '\\u0000') > 0 AND EXISTS (SELECT 1 FROM json_tree(\"{table}\".\"{name}\") \
                 WHERE (type = 'text' AND instr(CAST(atom AS BLOB), x'00') > 0) \
                    OR instr(CAST(key AS BLOB), x'00') > 0))"
            ),
            "a NUL character in a JSON string (PostgreSQL jsonb cannot hold U+0000)",
        )),
        // SQLite has no boolean type: a 2 would read as `true` and be
        // written back as 1.
        (Direction::ToPostgres | Direction::SqliteToSqlite, ColumnType::Boolean) => conditions.push((
            format!("\"{name}\" NOT IN (0, 1)"),
            "a boolean stored as something other than 0 or 1",
        )),
        // SQLite stores NaN as NULL and -0 as 0.
        (Direction::ToSqlite, ColumnType::Double | ColumnType::Float) => conditions.push((
            format!("(\"{name}\" = 'NaN'::float8 OR CAST(\"{name}\" AS text) = '-0')"),
            "NaN or a negative zero (SQLite stores NaN as NULL and -0 as 0)",
        )),
        _ => {}
    }
    match column_type {
        // The decoder reads many forms and keeps no offset: a timestamp in
        // any other form than the module's UTC text would be copied as
        // another instant (`+05:00` dropped) or another text.
        ColumnType::DateTime | ColumnType::Timestamp if from_sqlite => {
            let finest = if direction == Direction::ToPostgres {
                26
            } else {
                29
            };
            conditions.push((
                format!(
                    "(\"{name}\" IS NOT NULL AND (typeof(\"{name}\") <> 'text' OR NOT (\
                     \"{name}\" GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]' \
                     OR (\"{name}\" GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*' \
                         AND substr(\"{name}\", 21) NOT GLOB '*[^0-9]*' AND length(\"{name}\") <= {finest}))))"
                ),
                if direction == Direction::ToPostgres {
                    "a timestamp not in the module's UTC form `YYYY-MM-DD HH:MM:SS[.ffffff]` (a UTC \
                     offset, a `T` or `Z`, `infinity`, a number, or a time finer than the microsecond, \
                     which PostgreSQL does not keep), which would be copied as another instant or another text"
                } else {
                    "a timestamp not in the module's UTC form `YYYY-MM-DD HH:MM:SS[.fffffffff]` (a UTC \
                     offset, a `T` or `Z`, `infinity` or a number), which would be copied as another \
                     instant or another text"
                },
            ));
        }
        // SQLite keeps JSON as text, duplicated keys and all; the decoded
        // document keeps one value per key, so the other would be lost.
        ColumnType::Json | ColumnType::JsonBinary if from_sqlite => conditions.push((
            format!(
                "(json_valid(\"{name}\") AND instr(\"{name}\", ':') > 0 AND EXISTS (\
                 SELECT 1 FROM json_tree(\"{table}\".\"{name}\") WHERE parent IS NOT NULL \
                 GROUP BY parent, key HAVING count(*) > 1))"
            ),
            "a JSON object with a duplicated key (only one of its values would be copied)",
        )),
        _ => {}
    }
    conditions
}

/// The first row of `E` in `source` holding a value the target cannot
/// keep as it is: (row id, column, what the value is). Looked for before
/// anything is written, so that the target stays as it was.
pub(super) async fn find_unstorable<E: EntityTrait>(
    source: &impl ConnectionTrait,
    direction: Direction,
) -> Result<Option<(String, String, &'static str)>> {
    let table = E::default().table_name();
    let key = key_column::<E>()?;
    let conditions: Vec<(String, String, &'static str)> = E::Column::iter()
        .flat_map(|column| {
            let name = column.as_str();
            unstorable_conditions(table, name, column.def().get_column_type(), direction)
                .into_iter()
                .map(move |(condition, what)| (name.to_owned(), condition, what))
        })
        .collect();
    if conditions.is_empty() {
        return Ok(None);
    }
    let which: String = conditions
        .iter()
        .enumerate()
        .map(|(i, (_, condition, _))| format!("WHEN {condition} THEN {i} "))
        .collect();
    let any: Vec<&str> = conditions.iter().map(|(_, c, _)| c.as_str()).collect();
    let sql = format!(
        "SELECT CAST(\"{key}\" AS TEXT), CASE {which}END FROM \"{table}\" WHERE {} LIMIT 1",
        any.join(" OR "),
        key = key.as_str(),
    );
    let row = source
        .query_one_raw(sea_orm::Statement::from_string(
            source.get_database_backend(),
            sql,
        ))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: String = row.try_get_by_index(0)?;
    let index: i32 = row.try_get_by_index(1)?;
    Ok(usize::try_from(index)
        .ok()
        .and_then(|i| conditions.get(i))
        .map(|(name, _, what)| (id, name.clone(), *what)))
}
