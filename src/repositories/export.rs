//! A whole session as one document: every row of it in every table, read
//! in one snapshot — what the Python system's export (and the JSON its
//! Cloud Run deployment uploads) holds, and what it leaves out.

use chrono::{DateTime, Utc};
use entity::SessionId;
use entity::{
    canonical_edge, canonical_slot, concept_element, kg_edge, kg_node, qualitative_signal,
    scoring_history, session, slot_mapping, utterance,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use crate::database::Database;
use crate::error::Result;

use super::by_bytes;
use super::canonical::{canonical_edges, session_slots, slot_mappings};
use super::graph::session_edges;
use super::scoring::history;
use super::sessions::not_found;
use super::signals::session_signals;
use super::utterances::in_order;

/// Every row of one session, from one snapshot.
///
/// Against the Python export (`ExportService`, JSON): it holds all of that
/// — session metadata, the transcript, the current nodes and every edge,
/// the scoring history and every turn's qualitative signals — and more:
/// superseded nodes (with `superseded_by`), each node's stance, quotes and
/// embedding, the concept elements, the canonical slots, mappings and
/// edges, the session's config, completion time and pipeline state
/// (Python writes `{}` and `null` there). It does not compute what the
/// Python export derives from its configuration rather than from rows:
/// each utterance's interview phase, and the note pointing to a
/// visualisation. Serialises with the entities' field names; timestamps
/// are UTC with a `Z`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionExport {
    /// When the read began (the snapshot is of that moment or just after).
    pub exported_at: DateTime<Utc>,
    /// The session row.
    pub session: session::Model,
    /// The transcript, in conversation order (the opening question first).
    pub utterances: Vec<utterance::Model>,
    /// Every node, superseded ones included, oldest first.
    pub nodes: Vec<kg_node::Model>,
    /// Every edge, oldest first.
    pub edges: Vec<kg_edge::Model>,
    /// The scores, in turn order.
    pub scoring_history: Vec<scoring_history::Model>,
    /// The qualitative signals, in turn order.
    pub qualitative_signals: Vec<qualitative_signal::Model>,
    /// The concept elements, by element id.
    pub concept_elements: Vec<concept_element::Model>,
    /// The canonical slots, oldest first.
    pub canonical_slots: Vec<canonical_slot::Model>,
    /// The nodes' slot mappings, oldest first.
    pub slot_mappings: Vec<slot_mapping::Model>,
    /// The canonical edges, oldest first.
    pub canonical_edges: Vec<canonical_edge::Model>,
}

/// Reads a whole session.
#[derive(Debug, Clone)]
pub struct ExportRepository {
    db: Database,
}

impl ExportRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Every row of the session, from one snapshot: a turn committing
    /// meanwhile is in it whole or not at all.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when there is no such
    /// session; the classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn export(&self, session_id: &SessionId) -> Result<SessionExport> {
        let backend: sea_orm::DbBackend = self.db.backend().into();
        let exported_at = Utc::now();
        let snapshot = self.db.begin_read().await?;
        let session = session::Entity::find_by_id(session_id)
            .one(&snapshot)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let utterances = in_order(
            utterance::Entity::find().filter(utterance::Column::SessionId.eq(session_id)),
            backend,
        )
        .all(&snapshot)
        .await?;
        let nodes = kg_node::Entity::find()
            .filter(kg_node::Column::SessionId.eq(session_id))
            .order_by_asc(kg_node::Column::RecordedAt)
            .order_by(by_bytes(backend, kg_node::Column::Id), sea_orm::Order::Asc)
            .all(&snapshot)
            .await?;
        let edges = session_edges(&snapshot, session_id).await?;
        let scoring_history = history(&snapshot, session_id).await?;
        let qualitative_signals = session_signals(&snapshot, session_id).await?;
        let concept_elements = concept_element::Entity::find()
            .filter(concept_element::Column::SessionId.eq(session_id))
            .order_by(
                by_bytes(backend, concept_element::Column::ElementId),
                sea_orm::Order::Asc,
            )
            .all(&snapshot)
            .await?;
        let canonical_slots = session_slots(&snapshot, session_id).await?;
        let slot_mappings = slot_mappings(&snapshot, session_id).await?;
        let canonical_edges = canonical_edges(&snapshot, session_id).await?;
        snapshot.commit().await?;
        Ok(SessionExport {
            exported_at,
            session,
            utterances,
            nodes,
            edges,
            scoring_history,
            qualitative_signals,
            concept_elements,
            canonical_slots,
            slot_mappings,
            canonical_edges,
        })
    }
}
