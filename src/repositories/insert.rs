//! INSERTs of whole rows whose SQL is built once per entity and backend:
//! a turn inserts a dozen rows of four entities, and building the same
//! SQL text through sea-query for each of them was a measurable part of
//! a turn's cost. The text is what SeaORM builds for the same row
//! (checked by the tests below); only the values are new each time.
//!
//! On PostgreSQL, [`unnest_insert`] writes any number of rows of one
//! entity as one `INSERT … SELECT … FROM UNNEST(…)` with one bound array
//! per column, for a turn written as one statement: values are always
//! bound, never written into the SQL text.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

#[cfg(feature = "postgres")]
use sea_orm::sea_query::ArrayType;
#[cfg(feature = "postgres")]
use sea_orm::{ColumnTrait, ColumnType, EntityName, IdenStatic, Value};
use sea_orm::{
    DbBackend, EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryTrait, Statement, Values,
};

#[cfg(feature = "postgres")]
use super::placeholders::Placeholders;
#[cfg(feature = "postgres")]
use crate::error::{Error, Result};

/// The most rows of a multi-row INSERT whose SQL is kept.
const MAX_CACHED_ROWS: usize = 32;

/// SQL by row type, backend and row count.
type SqlCache = RwLock<HashMap<(TypeId, u8, usize), Arc<str>>>;

fn backend_key(backend: DbBackend) -> u8 {
    match backend {
        DbBackend::MySql => 0,
        DbBackend::Postgres => 1,
        DbBackend::Sqlite => 2,
        _ => 3,
    }
}

/// `INSERT INTO <table> (<every column>) VALUES (…)` for `model`.
pub(crate) fn insert_row<M>(backend: DbBackend, model: &M) -> Statement
where
    M: ModelTrait + Clone + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + 'static,
{
    insert_rows(backend, std::slice::from_ref(model))
}

/// One `INSERT INTO <table> (<every column>) VALUES (…), (…), …` for
/// `models` (at least one).
pub(crate) fn insert_rows<M>(backend: DbBackend, models: &[M]) -> Statement
where
    M: ModelTrait + Clone + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + 'static,
{
    static CACHE: OnceLock<SqlCache> = OnceLock::new();
    let cache = CACHE.get_or_init(SqlCache::default);
    let key = (TypeId::of::<M>(), backend_key(backend), models.len());
    let cached = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .cloned();
    let sql = match cached {
        Some(sql) => sql,
        None => {
            let built = <M::Entity as EntityTrait>::insert_many(
                models.iter().map(|m| m.clone().into_active_model()),
            )
            .build(backend)
            .sql;
            let sql: Arc<str> = built.into();
            // Row counts are the caller's: only the usual ones are kept, so
            // that the cache stays small whatever turns come.
            if models.len() <= MAX_CACHED_ROWS {
                cache
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, Arc::clone(&sql));
            }
            sql
        }
    };
    let values = models
        .iter()
        .flat_map(|model| {
            <M::Entity as EntityTrait>::Column::iter().map(move |column| model.get(column))
        })
        .collect();
    Statement::from_sql_and_values(backend, sql.as_ref(), Values(values))
}

#[cfg(feature = "postgres")]
/// How a column's values travel in an array: the array's element type and
/// the SQL that turns an element back into the column's type.
struct ArrayColumn {
    array_type: ArrayType,
    element_sql: &'static str,
    /// The cast applied to an element (JSON travels as text).
    cast: &'static str,
}

#[cfg(feature = "postgres")]
fn array_column(column_type: &ColumnType) -> Option<ArrayColumn> {
    let (array_type, element_sql, cast) = match column_type {
        ColumnType::String(_)
        | ColumnType::Text
        | ColumnType::Char(_)
        | ColumnType::Enum { .. } => (ArrayType::String, "text", ""),
        ColumnType::Integer => (ArrayType::Int, "int4", ""),
        ColumnType::BigInteger => (ArrayType::BigInt, "int8", ""),
        ColumnType::Double => (ArrayType::Double, "float8", ""),
        ColumnType::Boolean => (ArrayType::Bool, "bool", ""),
        ColumnType::DateTime | ColumnType::Timestamp => {
            (ArrayType::ChronoDateTime, "timestamp", "")
        }
        ColumnType::Json | ColumnType::JsonBinary => (ArrayType::String, "text", "::jsonb"),
        ColumnType::Blob | ColumnType::VarBinary(_) | ColumnType::Binary(_) => {
            (ArrayType::Bytes, "bytea", "")
        }
        _ => return None,
    };
    Some(ArrayColumn {
        array_type,
        element_sql,
        cast,
    })
}

#[cfg(feature = "postgres")]
/// A cell as an array element: a NULL becomes a placeholder of the
/// element type, flagged in the column's null mask (an array bound through
/// sqlx cannot hold NULL elements).
fn element(value: Value, column: &ArrayColumn) -> Option<(Value, bool)> {
    Some(match value {
        Value::String(Some(s)) => (Value::String(Some(s)), false),
        Value::Int(Some(v)) => (Value::Int(Some(v)), false),
        Value::BigInt(Some(v)) => (Value::BigInt(Some(v)), false),
        Value::Double(Some(v)) => (Value::Double(Some(v)), false),
        Value::Bool(Some(v)) => (Value::Bool(Some(v)), false),
        Value::ChronoDateTime(Some(v)) => (Value::ChronoDateTime(Some(v)), false),
        Value::Json(Some(json)) => (Value::String(Some(json.to_string())), false),
        Value::Bytes(Some(bytes)) => (Value::Bytes(Some(bytes)), false),
        Value::String(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::Double(None)
        | Value::Bool(None)
        | Value::ChronoDateTime(None)
        | Value::Json(None)
        | Value::Bytes(None) => (
            match column.array_type {
                ArrayType::Int => Value::Int(Some(0)),
                ArrayType::BigInt => Value::BigInt(Some(0)),
                ArrayType::Double => Value::Double(Some(0.0)),
                ArrayType::Bool => Value::Bool(Some(false)),
                ArrayType::ChronoDateTime => Value::ChronoDateTime(Some(Default::default())),
                ArrayType::Bytes => Value::Bytes(Some(Vec::new())),
                _ => Value::String(Some(String::new())),
            },
            true,
        ),
        _ => return None,
    })
}

#[cfg(feature = "postgres")]
/// PostgreSQL: `INSERT INTO "<table>" (<every column>) SELECT … FROM
/// UNNEST($a::type[], …) AS r(…)` for `models` (at least one), each
/// column's values bound through `values` as one array (plus a `bool[]` null
/// mask for a column that holds NULL in some rows but not all).
///
/// # Errors
/// [`Error::Unsupported`] for a column type this does not bind as an
/// array (none of the interview tables has one).
pub(crate) fn unnest_insert<M>(models: &[M], values: &mut Placeholders) -> Result<String>
where
    M: ModelTrait,
{
    let table = <M::Entity as Default>::default().table_name().to_owned();
    let mut names = Vec::new();
    let mut selected = Vec::new();
    let mut arrays = Vec::new();
    for column in <M::Entity as EntityTrait>::Column::iter() {
        let name = column.as_str();
        let def = column.def();
        let unsupported = || Error::Unsupported(format!("binding {table}.{name} as an array"));
        let array = array_column(def.get_column_type()).ok_or_else(unsupported)?;
        let mut elements = Vec::with_capacity(models.len());
        let mut nulls = Vec::with_capacity(models.len());
        for model in models {
            let (value, null) = element(model.get(column), &array).ok_or_else(unsupported)?;
            elements.push(value);
            nulls.push(null);
        }
        let cell = format!("r.\"{name}\"");
        let expression = if nulls.iter().all(|null| *null) {
            format!("NULL::{}{}", array.element_sql, array.cast)
        } else if nulls.iter().any(|null| *null) {
            let mask = values.bind(nulls);
            arrays.push(format!("{mask}::bool[]"));
            let mask_name = format!("{name}__null");
            names.push(format!("\"{mask_name}\""));
            format!(
                "CASE WHEN r.\"{mask_name}\" THEN NULL ELSE {cell}{} END",
                array.cast
            )
        } else {
            format!("{cell}{}", array.cast)
        };
        let placeholder = values.bind(Value::Array(
            array.array_type.clone(),
            Some(Box::new(elements)),
        ));
        arrays.push(format!("{placeholder}::{}[]", array.element_sql));
        names.push(format!("\"{name}\""));
        selected.push((format!("\"{name}\""), expression));
    }
    let columns: Vec<&str> = selected.iter().map(|(c, _)| c.as_str()).collect();
    let expressions: Vec<&str> = selected.iter().map(|(_, e)| e.as_str()).collect();
    Ok(format!(
        "INSERT INTO \"{table}\" ({}) SELECT {} FROM UNNEST({}) AS r({})",
        columns.join(", "),
        expressions.join(", "),
        arrays.join(", "),
        names.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use entity::{kg_edge, kg_node, scoring_history, utterance};
    use sea_orm::{DbBackend, EntityTrait, IntoActiveModel, QueryTrait};
    use serde_json::json;

    use super::{insert_row, insert_rows};
    use crate::repositories::graph::{NewEdge, NewNode};
    use crate::repositories::scoring::{NewScores, TurnScores};
    use crate::repositories::utterances::NewUtterance;

    fn same_as_seaorm<M>(model: &M)
    where
        M: sea_orm::ModelTrait
            + Clone
            + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>
            + 'static,
    {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            // Twice: the second comes from the cache.
            for _ in 0..2 {
                let expected =
                    <M::Entity as EntityTrait>::insert(model.clone().into_active_model())
                        .build(backend);
                let cached = insert_row(backend, model);
                assert_eq!(cached.sql, expected.sql);
                assert_eq!(cached.values, expected.values);
                let three = [model.clone(), model.clone(), model.clone()];
                let expected = <M::Entity as EntityTrait>::insert_many(
                    three.iter().map(|m| m.clone().into_active_model()),
                )
                .build(backend);
                let cached = insert_rows(backend, &three);
                assert_eq!(cached.sql, expected.sql);
                assert_eq!(cached.values, expected.values);
            }
        }
    }

    #[test]
    fn a_cached_insert_is_the_statement_seaorm_builds() -> crate::Result<()> {
        let utterance = NewUtterance {
            session_id: "s".into(),
            turn_number: 3,
            speaker: utterance::Speaker::User,
            text: "it's \"calm\"".into(),
            discourse_markers: vec!["because".into()],
        }
        .into_model();
        same_as_seaorm(&utterance);
        let node: kg_node::Model = NewNode {
            session_id: "s".into(),
            label: "calm".into(),
            node_type: "consequence".into(),
            confidence: 0.8,
            properties: json!({"turn": 3}),
            source_utterance_ids: vec![utterance.id.clone()],
            source_quotes: Vec::new(),
            stance: Default::default(),
            embedding: None,
        }
        .into_model()?;
        same_as_seaorm(&node);
        let edge: kg_edge::Model = NewEdge {
            session_id: "s".into(),
            source_node_id: node.id.clone(),
            target_node_id: node.id.clone(),
            edge_type: kg_edge::EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({}),
            source_utterance_ids: vec![],
        }
        .into_model()?;
        same_as_seaorm(&edge);
        let scores: scoring_history::Model = NewScores {
            session_id: "s".into(),
            turn_number: 3,
            scores: TurnScores {
                coverage_score: 0.3,
                depth_score: 0.5,
                saturation_score: 0.1,
                novelty_score: None,
                richness_score: Some(1.0),
                strategy_selected: "deepen".into(),
                strategy_reasoning: None,
                scorer_details: json!({"depth": 2}),
            },
        }
        .into_model()?;
        same_as_seaorm(&scores);
        Ok(())
    }

    /// Rows of one entity as one `INSERT … FROM UNNEST`: one bound array
    /// per column, a null mask only for a column NULL in some rows, a typed
    /// NULL for a column NULL in all, and no value in the SQL text.
    #[cfg(feature = "postgres")]
    #[test]
    fn unnest_binds_every_value_and_masks_the_nulls_of_a_mixed_column() -> crate::Result<()> {
        use sea_orm::Value;
        use sea_orm::sea_query::ArrayType;

        let row = |novelty: Option<f64>| {
            NewScores {
                session_id: "s".into(),
                turn_number: 1,
                scores: TurnScores {
                    coverage_score: 0.25,
                    depth_score: 0.5,
                    saturation_score: 0.1,
                    novelty_score: novelty,
                    richness_score: None,
                    strategy_selected: "it's $1 -- not sql".into(),
                    strategy_reasoning: None,
                    scorer_details: json!({"k": "v"}),
                },
            }
            .into_model()
        };
        let rows: Vec<scoring_history::Model> = vec![row(Some(0.9))?, row(None)?];
        let mut bound = super::Placeholders::new(sea_orm::DbBackend::Postgres);
        bound.bind("taken");
        let sql = super::unnest_insert(&rows, &mut bound)?;
        let values = bound.into_values();
        assert!(
            sql.starts_with("INSERT INTO \"scoring_history\" (\"id\", "),
            "{sql}"
        );
        assert!(!sql.contains("$1 --") && !sql.contains("0.25"), "{sql}");
        assert!(
            sql.contains("$2::text[]"),
            "placeholders follow those bound before: {sql}"
        );
        assert!(
            sql.contains(
                "CASE WHEN r.\"novelty_score__null\" THEN NULL ELSE r.\"novelty_score\" END"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("NULL::float8"),
            "richness is NULL in every row: {sql}"
        );
        assert!(sql.contains("r.\"scorer_details\"::jsonb"), "{sql}");
        assert!(values.contains(&Value::Array(
            ArrayType::Bool,
            Some(Box::new(vec![
                Value::Bool(Some(false)),
                Value::Bool(Some(true))
            ]))
        )));
        assert!(
            values
                .iter()
                .any(|v| matches!(v, Value::Array(ArrayType::String, Some(items))
            if items.contains(&Value::String(Some("it's $1 -- not sql".into())))))
        );
        Ok(())
    }
}
