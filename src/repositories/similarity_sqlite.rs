//! The similarity look-up on SQLite, on a direct connection (see
//! `database::direct`): the candidates' (id, embedding) read without an
//! entity per row, the matches' rows decoded straight into the models,
//! both in one read transaction.

use std::sync::OnceLock;

use entity::{Embedding, NodeId, SessionId, kg_node};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, QueryTrait};

use super::graph::current_nodes_query;
use super::rows;
use super::similarity::{best_first, in_match_order};
use crate::database::direct::DirectRead;
use crate::database::direct::decode::{optional_blob, text};
use crate::error::Result;

/// The candidates' SQL, built by the SeaORM path's builder, once.
fn candidates_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        current_nodes_query(DbBackend::Sqlite, &SessionId::from(""))
            .filter(kg_node::Column::NodeType.eq(""))
            .filter(kg_node::Column::Embedding.is_not_null())
            .select_only()
            .column(kg_node::Column::Id)
            .column(kg_node::Column::Embedding)
            .build(DbBackend::Sqlite)
            .sql
    })
}

/// The current nodes of `node_type` at cosine ≥ `threshold`, best first.
/// The caller runs it in one read transaction.
pub(super) fn similar_nodes(
    conn: &DirectRead<'_>,
    session_id: &SessionId,
    node_type: &str,
    embedding: &Embedding,
    threshold: f64,
) -> Result<Vec<(kg_node::Model, f64)>> {
    let candidates = conn.cells(
        candidates_sql(),
        &[session_id.as_str().into(), node_type.into()],
        |row| {
            Ok((
                NodeId::from(text(row, 0, "id")?),
                optional_blob(row, 1, "embedding")?.unwrap_or_default(),
            ))
        },
    )?;
    let matches = best_first(embedding, candidates, threshold);
    if matches.is_empty() {
        return Ok(Vec::new());
    }
    let statement = kg_node::Entity::find()
        .filter(kg_node::Column::Id.is_in(matches.iter().map(|(id, _)| id)))
        .build(DbBackend::Sqlite);
    let values = statement.values.map(|v| v.0).unwrap_or_default();
    let nodes = conn.rows::<kg_node::Entity, _>(&statement.sql, &values, |row| rows::node(row))?;
    Ok(in_match_order(matches, nodes, |row| &row.id))
}
