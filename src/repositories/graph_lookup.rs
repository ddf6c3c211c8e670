//! Finding a session's current nodes the way the Python pipeline
//! deduplicates them: by label whatever its case, and by embedding.

use entity::kg_node;
use entity::{Embedding, NodeId, SessionId};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::error::Result;

use super::graph::{GraphRepository, current_nodes_query};
use super::similarity::{best_first, check_threshold, fold_case, in_match_order};

/// The threshold the Python system matches nodes at.
pub const NODE_SIMILARITY_THRESHOLD: f64 = 0.80;

impl GraphRepository {
    /// The current node of the session with this type whose label equals
    /// `label` whatever the case — for all of Unicode (`Crème` finds
    /// `CRÈME`, `Straße` finds `STRASSE`), not only ASCII as the Python
    /// `LOWER(label) = LOWER(?)` on SQLite. An exact match wins; among
    /// labels that differ only in case, the oldest node.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn find_node_by_label(
        &self,
        session_id: &SessionId,
        label: &str,
        node_type: &str,
    ) -> Result<Option<kg_node::Model>> {
        // The usual case, on the (session, label) index.
        if let Some(node) = self.find_current_node(session_id, label, node_type).await? {
            return Ok(Some(node));
        }
        let conn = self.db().connection();
        let labels: Vec<(NodeId, String)> =
            current_nodes_query(self.db().backend().into(), session_id)
                .filter(kg_node::Column::NodeType.eq(node_type))
                .select_only()
                .column(kg_node::Column::Id)
                .column(kg_node::Column::Label)
                .into_tuple()
                .all(conn)
                .await?;
        let wanted = fold_case(label);
        let Some((id, _)) = labels.into_iter().find(|(_, l)| fold_case(l) == wanted) else {
            return Ok(None);
        };
        // Superseded between the two reads: then there is no match now.
        Ok(kg_node::Entity::find_by_id(&id)
            .filter(kg_node::Column::SupersededBy.is_null())
            .one(conn)
            .await?)
    }

    /// The session's current nodes of `node_type` whose embedding has a
    /// cosine similarity of at least `threshold` with `embedding`, best
    /// first, with that similarity (the Python `find_similar_nodes`; it
    /// uses [`NODE_SIMILARITY_THRESHOLD`]). Nodes without an embedding
    /// never match. One snapshot.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a threshold
    /// outside [−1, 1] (or NaN); the classified database error.
    #[tracing::instrument(skip(self, embedding))]
    pub async fn find_similar_nodes(
        &self,
        session_id: &SessionId,
        node_type: &str,
        embedding: &Embedding,
        threshold: f64,
    ) -> Result<Vec<(kg_node::Model, f64)>> {
        check_threshold(threshold)?;
        #[cfg(feature = "sqlite")]
        if let Some(readers) = self.db().direct_readers() {
            let (session_id, node_type) = (session_id.to_owned(), node_type.to_owned());
            let embedding = embedding.clone();
            return readers
                .read(move |conn| {
                    super::similarity_sqlite::similar_nodes(
                        conn,
                        &session_id,
                        &node_type,
                        &embedding,
                        threshold,
                    )
                })
                .await;
        }
        let snapshot = self.db().begin_read().await?;
        let rows: Vec<(NodeId, Vec<u8>)> =
            current_nodes_query(self.db().backend().into(), session_id)
                .filter(kg_node::Column::NodeType.eq(node_type))
                .filter(kg_node::Column::Embedding.is_not_null())
                .select_only()
                .column(kg_node::Column::Id)
                .column(kg_node::Column::Embedding)
                .into_tuple()
                .all(&snapshot)
                .await?;
        let matches = best_first(embedding, rows, threshold);
        if matches.is_empty() {
            snapshot.commit().await?;
            return Ok(Vec::new());
        }
        let nodes = kg_node::Entity::find()
            .filter(kg_node::Column::Id.is_in(matches.iter().map(|(id, _)| id)))
            .order_by_asc(kg_node::Column::Id)
            .all(&snapshot)
            .await?;
        snapshot.commit().await?;
        Ok(in_match_order(matches, nodes, |row| &row.id))
    }
}
