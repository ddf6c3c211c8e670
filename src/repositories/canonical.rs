//! The canonical graph (the Python system's dual graph): slots that
//! gather a session's surface nodes, the mapping of each node to its
//! slot, and the surface edges aggregated between slots.
//!
//! Deliberate differences from the Python `CanonicalSlotRepository`, each
//! so that a repeated call (a retried turn) changes nothing it should
//! not:
//! - a slot's `support_count` is the number of nodes mapped to it,
//!   counted again whenever a mapping to or from it changes (Python adds
//!   one per call, so a node mapped twice counts twice): mapping a node to
//!   the slot it already maps to leaves the support as it is, moving it to
//!   another slot moves its support too;
//! - adding a surface edge a canonical edge already holds changes nothing
//!   (Python adds one to `support_count` without adding the id), so
//!   `support_count` is the number of surface edges it aggregates;
//! - promoting an active slot keeps its first promotion (Python overwrites
//!   the turn and time);
//! - ids are `slot_` / `cedge_` and 32 hex digits of a UUIDv7 (Python:
//!   12 of a UUIDv4), time-ordered like every other id here;
//! - a call naming a missing slot or node fails with `NotFound` where
//!   Python does nothing or returns `None`, and slots and nodes of two
//!   sessions cannot be joined (`SessionMismatch`).

use chrono::NaiveDateTime;
use entity::canonical_edge;
use entity::canonical_slot::{self, SlotStatus};
use entity::kg_edge;
use entity::kg_node;
use entity::slot_mapping;
use entity::{CanonicalEdgeId, EdgeId, Embedding, NodeId, SessionId, SlotId};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::error::{ConflictKind, EntityKind, Error, Result};

use super::graph::node_not_found;
use super::similarity::{best_first, check_threshold, in_match_order};
use super::{by_bytes, check_fraction, insert_one, now_utc};

/// A canonical slot to create.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSlot {
    /// The session.
    pub session_id: SessionId,
    /// Its canonical name (one slot per name and node type).
    pub slot_name: String,
    /// What it means.
    #[serde(default)]
    pub description: Option<String>,
    /// The node type of the nodes it gathers.
    pub node_type: String,
    /// The turn it was first proposed in (from 1).
    pub first_seen_turn: i32,
    /// Its embedding.
    #[serde(default)]
    pub embedding: Option<Embedding>,
    /// Candidate (the default) or already active.
    #[serde(default = "candidate")]
    pub status: SlotStatus,
}

fn candidate() -> SlotStatus {
    SlotStatus::Candidate
}

/// An active slot with the surface nodes mapped to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotWithProvenance {
    /// The slot.
    pub slot: canonical_slot::Model,
    /// The nodes mapped to it, oldest mapping first.
    pub surface_node_ids: Vec<NodeId>,
}

/// A canonical edge with what its surface edges say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanonicalEdgeWithConfidence {
    /// The edge.
    pub edge: canonical_edge::Model,
    /// The mean confidence of its surface edges that still exist; `None`
    /// when none does (Python: 0.0, rounded to three places).
    pub average_confidence: Option<f64>,
}

/// A node of the session with the slot it maps to, if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeWithSlot {
    /// The node (superseded ones included, as in the Python report).
    pub node: kg_node::Model,
    /// Its mapping, if it has one.
    pub mapping: Option<slot_mapping::Model>,
    /// The name of the slot it maps to.
    pub slot_name: Option<String>,
}

/// Canonical slots, their mappings and canonical edges.
#[derive(Debug, Clone)]
pub struct CanonicalGraphRepository {
    db: Database,
}

fn slot_not_found(id: &SlotId) -> Error {
    Error::NotFound {
        entity: EntityKind::Slot,
        id: id.to_string(),
    }
}

pub(crate) fn prefixed_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

async fn lock_slot(conn: &impl ConnectionTrait, id: &SlotId) -> Result<canonical_slot::Model> {
    canonical_slot::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| slot_not_found(id))
}

fn same_session(what: &str, owner: &SessionId, session_id: &SessionId) -> Result<()> {
    if owner == session_id {
        Ok(())
    } else {
        Err(Error::SessionMismatch(format!(
            "{what} belongs to session {owner}, not {session_id}"
        )))
    }
}

/// Sets the support of the slots `slots` selects to the number of nodes
/// mapped to each (the same SQL on both backends).
pub(crate) fn recount_support(
    slots: sea_orm::sea_query::SimpleExpr,
) -> sea_orm::sea_query::UpdateStatement {
    use sea_orm::sea_query::{Expr, Query};
    Query::update()
        .table(canonical_slot::Entity)
        .value(
            canonical_slot::Column::SupportCount,
            Expr::cust(
                r#"(SELECT COUNT(*) FROM "surface_to_slot_mapping" AS "m" WHERE "m"."canonical_slot_id" = "canonical_slots"."id")"#,
            ),
        )
        .and_where(slots)
        .to_owned()
}

impl CanonicalGraphRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Creates a slot with no support (the Python `create_slot`).
    ///
    /// # Errors
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateSlot`]) when the
    /// session has a slot of this name and node type;
    /// [`Error::InvalidReference`] when the session does not exist;
    /// [`Error::InvalidInput`] for a turn below 1.
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, slot_name = %new.slot_name))]
    pub async fn create_slot(&self, new: NewSlot) -> Result<canonical_slot::Model> {
        super::utterances::check_turn(new.first_seen_turn)?;
        let now = now_utc();
        let active = new.status == SlotStatus::Active;
        let model = canonical_slot::Model {
            id: prefixed_id("slot_").into(),
            session_id: new.session_id,
            slot_name: new.slot_name,
            description: new.description,
            node_type: new.node_type,
            status: new.status,
            support_count: 0,
            first_seen_turn: new.first_seen_turn,
            promoted_turn: active.then_some(new.first_seen_turn),
            embedding: new.embedding,
            created_at: now,
            promoted_at: active.then_some(now),
        };
        insert_one(&self.db, model.clone().into_active_model())
            .await
            .map_err(|err| {
                err.conflict_as(|| ConflictKind::DuplicateSlot {
                    session_id: model.session_id.to_string(),
                    slot_name: model.slot_name.clone(),
                    node_type: model.node_type.clone(),
                })
            })?;
        Ok(model)
    }

    /// The slot `slot_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn slot(&self, slot_id: &SlotId) -> Result<canonical_slot::Model> {
        canonical_slot::Entity::find_by_id(slot_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| slot_not_found(slot_id))
    }

    /// The session's active slots, of one node type or all, newest first
    /// (the Python `get_active_slots`).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn active_slots(
        &self,
        session_id: &SessionId,
        node_type: Option<&str>,
    ) -> Result<Vec<canonical_slot::Model>> {
        let mut query = canonical_slot::Entity::find()
            .filter(canonical_slot::Column::SessionId.eq(session_id))
            .filter(canonical_slot::Column::Status.eq(SlotStatus::Active));
        if let Some(node_type) = node_type {
            query = query.filter(canonical_slot::Column::NodeType.eq(node_type));
        }
        Ok(query
            .order_by_desc(canonical_slot::Column::CreatedAt)
            .order_by(
                by_bytes(self.db.backend().into(), canonical_slot::Column::Id),
                sea_orm::Order::Desc,
            )
            .all(self.db.connection())
            .await?)
    }

    /// The session's slot with exactly this name and node type, whatever
    /// its status (the Python `find_slot_by_name_and_type`).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn find_slot(
        &self,
        session_id: &SessionId,
        slot_name: &str,
        node_type: &str,
    ) -> Result<Option<canonical_slot::Model>> {
        Ok(canonical_slot::Entity::find()
            .filter(canonical_slot::Column::SessionId.eq(session_id))
            .filter(canonical_slot::Column::SlotName.eq(slot_name))
            .filter(canonical_slot::Column::NodeType.eq(node_type))
            .one(self.db.connection())
            .await?)
    }

    /// The session's slots of `node_type` and `status` whose embedding has
    /// a cosine similarity of at least `threshold` with `embedding`, best
    /// first (the Python `find_similar_slots`, whose threshold comes from
    /// its configuration: here the caller passes it). One snapshot.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a threshold outside [−1, 1] (or NaN);
    /// the classified database error.
    #[tracing::instrument(skip(self, embedding))]
    pub async fn find_similar_slots(
        &self,
        session_id: &SessionId,
        node_type: &str,
        embedding: &Embedding,
        threshold: f64,
        status: SlotStatus,
    ) -> Result<Vec<(canonical_slot::Model, f64)>> {
        check_threshold(threshold)?;
        let snapshot = self.db.begin_read().await?;
        let rows: Vec<(SlotId, Vec<u8>)> = canonical_slot::Entity::find()
            .filter(canonical_slot::Column::SessionId.eq(session_id))
            .filter(canonical_slot::Column::NodeType.eq(node_type))
            .filter(canonical_slot::Column::Status.eq(status))
            .filter(canonical_slot::Column::Embedding.is_not_null())
            .order_by_asc(canonical_slot::Column::CreatedAt)
            .order_by(
                by_bytes(self.db.backend().into(), canonical_slot::Column::Id),
                sea_orm::Order::Asc,
            )
            .select_only()
            .column(canonical_slot::Column::Id)
            .column(canonical_slot::Column::Embedding)
            .into_tuple()
            .all(&snapshot)
            .await?;
        let matches = best_first(embedding, rows, threshold);
        let slots = if matches.is_empty() {
            Vec::new()
        } else {
            canonical_slot::Entity::find()
                .filter(canonical_slot::Column::Id.is_in(matches.iter().map(|(id, _)| id)))
                .all(&snapshot)
                .await?
        };
        snapshot.commit().await?;
        Ok(in_match_order(matches, slots, |row| &row.id))
    }

    /// Maps a surface node to a slot of its session at `similarity_score`
    /// in `assigned_turn`, replacing the node's previous mapping, and keeps
    /// each slot's `support_count` equal to the nodes mapped to it (see the
    /// module's notes), in one write transaction.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing node or slot;
    /// [`Error::SessionMismatch`] when they belong to different sessions;
    /// [`Error::InvalidInput`] for a similarity outside [0, 1] or a turn
    /// below 1.
    #[tracing::instrument(skip(self))]
    pub async fn map_surface_to_slot(
        &self,
        surface_node_id: &NodeId,
        slot_id: &SlotId,
        similarity_score: f64,
        assigned_turn: i32,
    ) -> Result<slot_mapping::Model> {
        check_fraction("similarity score", similarity_score)?;
        super::utterances::check_turn(assigned_turn)?;
        let txn = self.db.begin_write().await?;
        // The node's mapping first, then every slot the call touches in id
        // order: two calls moving nodes between the same slots lock in one
        // order (no deadlock), and the recount below starts after any
        // other call on these slots committed, so on PostgreSQL (READ
        // COMMITTED: each statement sees what committed before it began)
        // it counts that call's mapping too.
        let previous = slot_mapping::Entity::find_by_id(surface_node_id)
            .lock_exclusive()
            .one(&*txn)
            .await?;
        let mut touched = vec![slot_id.clone()];
        touched.extend(previous.as_ref().map(|p| p.canonical_slot_id.clone()));
        touched.sort();
        touched.dedup();
        let locked = canonical_slot::Entity::find()
            .filter(canonical_slot::Column::Id.is_in(touched.iter()))
            .order_by_asc(canonical_slot::Column::Id)
            .lock_exclusive()
            .all(&*txn)
            .await?;
        let slot = locked
            .into_iter()
            .find(|s| s.id == *slot_id)
            .ok_or_else(|| slot_not_found(slot_id))?;
        let node_session: Option<SessionId> = kg_node::Entity::find_by_id(surface_node_id)
            .select_only()
            .column(kg_node::Column::SessionId)
            .into_tuple()
            .one(&*txn)
            .await?;
        let node_session = node_session.ok_or_else(|| node_not_found(surface_node_id))?;
        same_session(
            &format!("node {surface_node_id}"),
            &node_session,
            &slot.session_id,
        )?;
        let mapping = slot_mapping::Model {
            surface_node_id: surface_node_id.to_owned(),
            canonical_slot_id: slot_id.to_owned(),
            similarity_score,
            assigned_turn,
            assigned_at: now_utc(),
        };
        slot_mapping::Entity::insert(mapping.clone().into_active_model())
            .on_conflict(
                OnConflict::column(slot_mapping::Column::SurfaceNodeId)
                    .update_columns([
                        slot_mapping::Column::CanonicalSlotId,
                        slot_mapping::Column::SimilarityScore,
                        slot_mapping::Column::AssignedTurn,
                        slot_mapping::Column::AssignedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&*txn)
            .await?;
        let recount = recount_support(canonical_slot::Column::Id.is_in(touched));
        txn.execute(&recount).await?;
        txn.commit().await?;
        Ok(mapping)
    }

    /// Makes a candidate slot active, recording the turn and time; an
    /// active slot keeps its first promotion. Returns the slot.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such slot;
    /// [`Error::InvalidInput`] for a turn below 1.
    #[tracing::instrument(skip(self))]
    pub async fn promote_slot(
        &self,
        slot_id: &SlotId,
        turn_number: i32,
    ) -> Result<canonical_slot::Model> {
        super::utterances::check_turn(turn_number)?;
        let txn = self.db.begin_write().await?;
        let slot = lock_slot(&*txn, slot_id).await?;
        if slot.status == SlotStatus::Active {
            txn.commit().await?;
            return Ok(slot);
        }
        let mut active = slot.into_active_model();
        active.status = Set(SlotStatus::Active);
        active.promoted_turn = Set(Some(turn_number));
        active.promoted_at = Set(Some(now_utc()));
        let promoted = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(promoted)
    }

    /// The mapping of a surface node, if it has one (the Python
    /// `get_mapping_for_node`).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn mapping_of(
        &self,
        surface_node_id: &NodeId,
    ) -> Result<Option<slot_mapping::Model>> {
        Ok(slot_mapping::Entity::find_by_id(surface_node_id)
            .one(self.db.connection())
            .await?)
    }

    /// Records that the surface edge `surface_edge_id` joins nodes of the
    /// two slots: the canonical edge (session, source, target, type) is
    /// created with it, or gains it (each surface edge once, see the
    /// module's notes). One write transaction, safe against a concurrent
    /// call for the same edge on both backends. Returns the edge.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing slot; [`Error::SessionMismatch`]
    /// when a slot belongs to another session.
    #[tracing::instrument(skip(self))]
    pub async fn add_or_update_canonical_edge(
        &self,
        session_id: &SessionId,
        source_slot_id: &SlotId,
        target_slot_id: &SlotId,
        edge_type: &str,
        surface_edge_id: &EdgeId,
    ) -> Result<canonical_edge::Model> {
        let txn = self.db.begin_write().await?;
        for slot_id in [source_slot_id, target_slot_id] {
            let owner: Option<SessionId> = canonical_slot::Entity::find_by_id(slot_id)
                .select_only()
                .column(canonical_slot::Column::SessionId)
                .into_tuple()
                .one(&*txn)
                .await?;
            let owner = owner.ok_or_else(|| slot_not_found(slot_id))?;
            same_session(&format!("slot {slot_id}"), &owner, session_id)?;
        }
        let now = now_utc();
        // Make sure the row exists (a concurrent first call inserts it
        // once), then lock it and add the surface edge.
        let blank = canonical_edge::Model {
            id: prefixed_id("cedge_").into(),
            session_id: session_id.to_owned(),
            source_slot_id: source_slot_id.to_owned(),
            target_slot_id: target_slot_id.to_owned(),
            edge_type: edge_type.to_owned(),
            support_count: 0,
            surface_edge_ids: entity::StringList::default(),
            created_at: now,
            updated_at: now,
        };
        canonical_edge::Entity::insert(blank.into_active_model())
            .on_conflict(
                OnConflict::columns([
                    canonical_edge::Column::SessionId,
                    canonical_edge::Column::SourceSlotId,
                    canonical_edge::Column::TargetSlotId,
                    canonical_edge::Column::EdgeType,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&*txn)
            .await?;
        let edge = canonical_edge::Entity::find()
            .filter(canonical_edge::Column::SessionId.eq(session_id))
            .filter(canonical_edge::Column::SourceSlotId.eq(source_slot_id))
            .filter(canonical_edge::Column::TargetSlotId.eq(target_slot_id))
            .filter(canonical_edge::Column::EdgeType.eq(edge_type))
            .lock_exclusive()
            .one(&*txn)
            .await?
            .ok_or_else(|| Error::Conflict {
                conflict: ConflictKind::Other,
                source: Box::new(sea_orm::DbErr::RecordNotFound(
                    "the canonical edge went between its insert and its update".into(),
                )),
            })?;
        let mut surface_edges = edge.surface_edge_ids.clone();
        if !surface_edges.add_once(surface_edge_id.as_str()) {
            txn.commit().await?;
            return Ok(edge);
        }
        let updated_at: NaiveDateTime = now.max(edge.updated_at);
        let support = i32::try_from(surface_edges.len()).unwrap_or(i32::MAX);
        let mut active = edge.into_active_model();
        active.surface_edge_ids = Set(surface_edges);
        active.support_count = Set(support);
        active.updated_at = Set(updated_at);
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// The canonical edge `edge_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn canonical_edge(&self, edge_id: &CanonicalEdgeId) -> Result<canonical_edge::Model> {
        canonical_edge::Entity::find_by_id(edge_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| Error::NotFound {
                entity: EntityKind::CanonicalEdge,
                id: edge_id.to_string(),
            })
    }

    /// The session's canonical edges, oldest first.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn canonical_edges(
        &self,
        session_id: &SessionId,
    ) -> Result<Vec<canonical_edge::Model>> {
        canonical_edges(self.db.connection(), session_id).await
    }

    /// The session's active slots, most supported first, each with the
    /// nodes mapped to it (the Python `get_slots_with_provenance`). One
    /// snapshot.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn slots_with_provenance(
        &self,
        session_id: &SessionId,
    ) -> Result<Vec<SlotWithProvenance>> {
        let snapshot = self.db.begin_read().await?;
        let slots = canonical_slot::Entity::find()
            .filter(canonical_slot::Column::SessionId.eq(session_id))
            .filter(canonical_slot::Column::Status.eq(SlotStatus::Active))
            .order_by_desc(canonical_slot::Column::SupportCount)
            .order_by_asc(canonical_slot::Column::CreatedAt)
            .order_by(
                by_bytes(self.db.backend().into(), canonical_slot::Column::Id),
                sea_orm::Order::Asc,
            )
            .all(&snapshot)
            .await?;
        let mappings = slot_mappings(&snapshot, session_id).await?;
        snapshot.commit().await?;
        Ok(slots
            .into_iter()
            .map(|slot| SlotWithProvenance {
                surface_node_ids: mappings
                    .iter()
                    .filter(|m| m.canonical_slot_id == slot.id)
                    .map(|m| m.surface_node_id.clone())
                    .collect(),
                slot,
            })
            .collect())
    }

    /// The session's canonical edges, most supported first, each with the
    /// mean confidence of its surface edges (the Python
    /// `get_edges_with_metadata`). One snapshot.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn edges_with_confidence(
        &self,
        session_id: &SessionId,
    ) -> Result<Vec<CanonicalEdgeWithConfidence>> {
        let snapshot = self.db.begin_read().await?;
        let mut edges = canonical_edges(&snapshot, session_id).await?;
        // Stable: equal support keeps the oldest first.
        edges.sort_by_key(|edge| std::cmp::Reverse(edge.support_count));
        let confidences: Vec<(EdgeId, f64)> = kg_edge::Entity::find()
            .filter(kg_edge::Column::SessionId.eq(session_id))
            .select_only()
            .column(kg_edge::Column::Id)
            .column(kg_edge::Column::Confidence)
            .into_tuple()
            .all(&snapshot)
            .await?;
        snapshot.commit().await?;
        let confidence_of = |id: &str| {
            confidences
                .iter()
                .find(|(edge, _)| edge.as_str() == id)
                .map(|(_, c)| *c)
        };
        Ok(edges
            .into_iter()
            .map(|edge| {
                let found: Vec<f64> = edge
                    .surface_edge_ids
                    .iter()
                    .filter_map(|id| confidence_of(id))
                    .collect();
                let average_confidence =
                    (!found.is_empty()).then(|| found.iter().sum::<f64>() / found.len() as f64);
                CanonicalEdgeWithConfidence {
                    edge,
                    average_confidence,
                }
            })
            .collect())
    }

    /// Every node of the session, newest first, with the slot it maps to
    /// (the Python `GraphRepository.get_nodes_with_canonical_mapping`).
    /// One snapshot.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn nodes_with_slots(&self, session_id: &SessionId) -> Result<Vec<NodeWithSlot>> {
        let snapshot = self.db.begin_read().await?;
        let nodes = kg_node::Entity::find()
            .filter(kg_node::Column::SessionId.eq(session_id))
            .order_by_desc(kg_node::Column::RecordedAt)
            .order_by(
                by_bytes(self.db.backend().into(), kg_node::Column::Id),
                sea_orm::Order::Desc,
            )
            .all(&snapshot)
            .await?;
        let mappings = slot_mappings(&snapshot, session_id).await?;
        let names: Vec<(SlotId, String)> = canonical_slot::Entity::find()
            .filter(canonical_slot::Column::SessionId.eq(session_id))
            .select_only()
            .column(canonical_slot::Column::Id)
            .column(canonical_slot::Column::SlotName)
            .into_tuple()
            .all(&snapshot)
            .await?;
        snapshot.commit().await?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let mapping = mappings
                    .iter()
                    .find(|m| m.surface_node_id == node.id)
                    .cloned();
                let slot_name = mapping.as_ref().and_then(|m| {
                    names
                        .iter()
                        .find(|(id, _)| *id == m.canonical_slot_id)
                        .map(|(_, name)| name.clone())
                });
                NodeWithSlot {
                    node,
                    mapping,
                    slot_name,
                }
            })
            .collect())
    }
}

/// The session's canonical edges, oldest first.
pub(crate) async fn canonical_edges(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<canonical_edge::Model>> {
    Ok(canonical_edge::Entity::find()
        .filter(canonical_edge::Column::SessionId.eq(session_id))
        .order_by_asc(canonical_edge::Column::CreatedAt)
        .order_by(
            by_bytes(conn.get_database_backend(), canonical_edge::Column::Id),
            sea_orm::Order::Asc,
        )
        .all(conn)
        .await?)
}

/// The session's canonical slots, oldest first.
pub(crate) async fn session_slots(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<canonical_slot::Model>> {
    Ok(canonical_slot::Entity::find()
        .filter(canonical_slot::Column::SessionId.eq(session_id))
        .order_by_asc(canonical_slot::Column::CreatedAt)
        .order_by(
            by_bytes(conn.get_database_backend(), canonical_slot::Column::Id),
            sea_orm::Order::Asc,
        )
        .all(conn)
        .await?)
}

/// The mappings of the session's nodes, oldest first.
pub(crate) async fn slot_mappings(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<slot_mapping::Model>> {
    let slots = canonical_slot::Entity::find()
        .filter(canonical_slot::Column::SessionId.eq(session_id))
        .select_only()
        .column(canonical_slot::Column::Id)
        .as_query()
        .to_owned();
    Ok(slot_mapping::Entity::find()
        .filter(slot_mapping::Column::CanonicalSlotId.in_subquery(slots))
        .order_by_asc(slot_mapping::Column::AssignedAt)
        .order_by(
            by_bytes(
                conn.get_database_backend(),
                slot_mapping::Column::SurfaceNodeId,
            ),
            sea_orm::Order::Asc,
        )
        .all(conn)
        .await?)
}
