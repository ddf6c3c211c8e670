//! The knowledge graph: nodes, the edges between them, and its shape.

use entity::kg_edge::{self, EdgeType};
use entity::{EdgeId, Embedding, NodeId, SessionId, Stance, UtteranceId};
use entity::{kg_node, utterance};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, prelude::Json,
};

use crate::database::Database;
use crate::error::{ConflictKind, EntityKind, Error, Result};
use sea_orm::Order;

use super::graph_summary::{GraphSummary, summarise};
use super::{by_bytes, check_fraction, check_json_object, insert_one, new_id, now_utc};

/// A node to create.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNode {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// What the node is called.
    pub label: String,
    /// Its type, set by the methodology (e.g. `attribute`, `value`).
    pub node_type: String,
    /// Extraction confidence in [0, 1].
    pub confidence: f64,
    /// Methodology-specific properties: a JSON object (anything else is
    /// refused with `InvalidInput`).
    #[serde(default = "super::empty_object")]
    pub properties: Json,
    /// The utterances it was extracted from.
    #[serde(default)]
    pub source_utterance_ids: Vec<UtteranceId>,
    /// Verbatim quotes of those utterances; empty ones are dropped, as the
    /// Python system drops them.
    #[serde(default)]
    pub source_quotes: Vec<String>,
    /// The participant's stance (default neutral).
    #[serde(default)]
    pub stance: Stance,
    /// Its sentence embedding, for similarity look-ups.
    #[serde(default)]
    pub embedding: Option<Embedding>,
}

impl NewNode {
    /// A node with the schema's defaults: confidence 0.8, no properties, no
    /// provenance.
    #[must_use]
    pub fn new(session_id: &SessionId, label: &str, node_type: &str) -> Self {
        Self {
            session_id: session_id.to_owned(),
            label: label.to_owned(),
            node_type: node_type.to_owned(),
            confidence: 0.8,
            properties: Json::Object(serde_json::Map::new()),
            source_utterance_ids: Vec::new(),
            source_quotes: Vec::new(),
            stance: Stance::Neutral,
            embedding: None,
        }
    }

    /// The row this node becomes, with a new id.
    pub(crate) fn into_model(self) -> Result<kg_node::Model> {
        check_fraction("confidence", self.confidence)?;
        check_json_object("node properties", &self.properties)?;
        Ok(kg_node::Model {
            id: new_id().into(),
            session_id: self.session_id,
            label: self.label,
            node_type: self.node_type,
            confidence: self.confidence,
            properties: Some(self.properties),
            source_utterance_ids: self.source_utterance_ids.into(),
            recorded_at: now_utc(),
            superseded_by: None,
            stance: self.stance,
            embedding: self.embedding,
            source_quotes: self
                .source_quotes
                .into_iter()
                .filter(|quote| !quote.is_empty())
                .collect::<Vec<_>>()
                .into(),
        })
    }
}

/// Changes to a node; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeUpdate {
    /// A new label.
    pub label: Option<String>,
    /// A new confidence in [0, 1].
    pub confidence: Option<f64>,
    /// New properties (replacing the old ones): a JSON object.
    pub properties: Option<Json>,
    /// New quotes (replacing the old ones, kept as given: the Python
    /// `update_node` does not drop empty ones either).
    pub source_quotes: Option<Vec<String>>,
}

/// An edge to create between two nodes of one session.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEdge {
    /// The session it belongs to (both nodes must belong to it too).
    pub session_id: SessionId,
    /// Where it starts.
    pub source_node_id: NodeId,
    /// Where it ends.
    pub target_node_id: NodeId,
    /// What it expresses.
    pub edge_type: EdgeType,
    /// Extraction confidence in [0, 1].
    pub confidence: f64,
    /// Methodology-specific properties: a JSON object (anything else is
    /// refused with `InvalidInput`).
    #[serde(default = "super::empty_object")]
    pub properties: Json,
    /// The utterances it was extracted from.
    #[serde(default)]
    pub source_utterance_ids: Vec<UtteranceId>,
}

impl NewEdge {
    /// An edge with the schema's defaults: confidence 0.8, no properties,
    /// no provenance.
    #[must_use]
    pub fn new(
        session_id: &SessionId,
        source_node_id: &NodeId,
        target_node_id: &NodeId,
        edge_type: EdgeType,
    ) -> Self {
        Self {
            session_id: session_id.to_owned(),
            source_node_id: source_node_id.to_owned(),
            target_node_id: target_node_id.to_owned(),
            edge_type,
            confidence: 0.8,
            properties: Json::Object(serde_json::Map::new()),
            source_utterance_ids: Vec::new(),
        }
    }

    /// The row this edge becomes, with a new id.
    pub(crate) fn into_model(self) -> Result<kg_edge::Model> {
        check_fraction("confidence", self.confidence)?;
        check_json_object("edge properties", &self.properties)?;
        Ok(kg_edge::Model {
            id: new_id().into(),
            session_id: self.session_id,
            source_node_id: self.source_node_id,
            target_node_id: self.target_node_id,
            edge_type: self.edge_type,
            confidence: self.confidence,
            properties: Some(self.properties),
            source_utterance_ids: self.source_utterance_ids.into(),
            recorded_at: now_utc(),
        })
    }
}

/// Nodes and edges of each session's knowledge graph.
#[derive(Debug, Clone)]
pub struct GraphRepository {
    db: Database,
}

pub(crate) fn node_not_found(id: &NodeId) -> Error {
    Error::NotFound {
        entity: EntityKind::Node,
        id: id.to_string(),
    }
}

fn edge_not_found(id: &EdgeId) -> Error {
    Error::NotFound {
        entity: EntityKind::Edge,
        id: id.to_string(),
    }
}

/// The conflict of a second current node with this label and type.
pub(crate) fn duplicate_node(session_id: &SessionId, label: &str, node_type: &str) -> ConflictKind {
    ConflictKind::DuplicateCurrentNode {
        session_id: session_id.to_string(),
        label: label.to_owned(),
        node_type: node_type.to_owned(),
    }
}

/// The conflict of a second edge of this type between these nodes.
pub(crate) fn duplicate_edge(edge: &kg_edge::Model) -> ConflictKind {
    ConflictKind::DuplicateEdge {
        source_node_id: edge.source_node_id.to_string(),
        target_node_id: edge.target_node_id.to_string(),
        edge_type: sea_orm::ActiveEnum::to_value(&edge.edge_type),
    }
}

impl GraphRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    /// Creates a current node.
    ///
    /// # Errors
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateCurrentNode`]) when the
    /// session already has a current node with this label and type;
    /// [`Error::InvalidReference`] when the session does not exist;
    /// [`Error::InvalidInput`] for a confidence outside [0, 1].
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, label = %new.label))]
    pub async fn create_node(&self, new: NewNode) -> Result<kg_node::Model> {
        let model = new.into_model()?;
        insert_one(&self.db, model.clone().into_active_model())
            .await
            .map_err(|err| {
                err.conflict_as(|| {
                    duplicate_node(&model.session_id, &model.label, &model.node_type)
                })
            })?;
        Ok(model)
    }

    /// The node `node_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn node(&self, node_id: &NodeId) -> Result<kg_node::Model> {
        kg_node::Entity::find_by_id(node_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| node_not_found(node_id))
    }

    /// The session's current (not superseded) nodes, oldest first.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn current_nodes(&self, session_id: &SessionId) -> Result<Vec<kg_node::Model>> {
        current_nodes(self.db.connection(), session_id).await
    }

    /// Every node of the session, superseded ones included, oldest first.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn all_nodes(&self, session_id: &SessionId) -> Result<Vec<kg_node::Model>> {
        Ok(kg_node::Entity::find()
            .filter(kg_node::Column::SessionId.eq(session_id))
            .order_by_asc(kg_node::Column::RecordedAt)
            .order_by(
                by_bytes(self.db.backend().into(), kg_node::Column::Id),
                Order::Asc,
            )
            .all(self.db.connection())
            .await?)
    }

    /// The current node of the session with this label and type, if any.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn find_current_node(
        &self,
        session_id: &SessionId,
        label: &str,
        node_type: &str,
    ) -> Result<Option<kg_node::Model>> {
        Ok(kg_node::Entity::find()
            .filter(kg_node::Column::SessionId.eq(session_id))
            .filter(kg_node::Column::Label.eq(label))
            .filter(kg_node::Column::NodeType.eq(node_type))
            .filter(kg_node::Column::SupersededBy.is_null())
            .one(self.db.connection())
            .await?)
    }

    /// Changes a node's label, confidence or properties.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such node; [`Error::Conflict`]
    /// ([`ConflictKind::DuplicateCurrentNode`]) when the new label collides
    /// with another current node;
    /// [`Error::InvalidInput`] for a confidence outside [0, 1].
    #[tracing::instrument(skip(self, update))]
    pub async fn update_node(
        &self,
        node_id: &NodeId,
        update: NodeUpdate,
    ) -> Result<kg_node::Model> {
        if let Some(confidence) = update.confidence {
            check_fraction("confidence", confidence)?;
        }
        if let Some(properties) = &update.properties {
            check_json_object("node properties", properties)?;
        }
        let txn = self.db.begin_write().await?;
        let node = lock_node(&*txn, node_id).await?;
        let label = update.label.clone().unwrap_or_else(|| node.label.clone());
        let mut active = node.clone().into_active_model();
        if let Some(label) = update.label {
            active.label = Set(label);
        }
        if let Some(confidence) = update.confidence {
            active.confidence = Set(confidence);
        }
        if let Some(properties) = update.properties {
            active.properties = Set(Some(properties));
        }
        if let Some(quotes) = update.source_quotes {
            active.source_quotes = Set(quotes.into());
        }
        let updated = if active.is_changed() {
            active.update(&*txn).await.map_err(|err| {
                Error::from(err)
                    .conflict_as(|| duplicate_node(&node.session_id, &label, &node.node_type))
            })?
        } else {
            node
        };
        txn.commit().await?;
        Ok(updated)
    }

    /// Adds an utterance of the node's session to its provenance; an
    /// utterance already there is not added twice.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the node or the utterance does not exist;
    /// [`Error::SessionMismatch`] when the utterance belongs to another
    /// session.
    #[tracing::instrument(skip(self))]
    pub async fn add_node_provenance(
        &self,
        node_id: &NodeId,
        utterance_id: &UtteranceId,
    ) -> Result<kg_node::Model> {
        self.add_node_source(node_id, utterance_id, None).await
    }

    /// Adds an utterance of the node's session to its provenance and, when
    /// given and not empty, a verbatim quote of it to its quotes (the
    /// Python `add_source_utterance`): each is added once, and a call that
    /// adds nothing writes nothing. One write transaction, so two calls at
    /// once keep both additions.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the node or the utterance does not exist;
    /// [`Error::SessionMismatch`] when the utterance belongs to another
    /// session.
    #[tracing::instrument(skip(self, quote))]
    pub async fn add_node_source(
        &self,
        node_id: &NodeId,
        utterance_id: &UtteranceId,
        quote: Option<&str>,
    ) -> Result<kg_node::Model> {
        let txn = self.db.begin_write().await?;
        let node = lock_node(&*txn, node_id).await?;
        check_utterance_of_session(&*txn, utterance_id, &node.session_id).await?;
        let mut provenance = node.source_utterance_ids.clone();
        let mut quotes = node.source_quotes.clone();
        let new_source = provenance.add_once(utterance_id.as_str());
        let new_quote = quote.is_some_and(|quote| !quote.is_empty() && quotes.add_once(quote));
        if !new_source && !new_quote {
            txn.commit().await?;
            return Ok(node);
        }
        let mut active = node.into_active_model();
        active.source_utterance_ids = Set(provenance);
        active.source_quotes = Set(quotes);
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Marks `old_node_id` as superseded by `new_node_id`, a current node of
    /// the same session, and returns the superseded node.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing node; [`Error::SessionMismatch`]
    /// when the nodes belong to different sessions; [`Error::InvalidInput`]
    /// when a node would supersede itself or the replacement is itself
    /// superseded.
    #[tracing::instrument(skip(self))]
    pub async fn supersede_node(
        &self,
        old_node_id: &NodeId,
        new_node_id: &NodeId,
    ) -> Result<kg_node::Model> {
        if old_node_id == new_node_id {
            return Err(Error::InvalidInput(format!(
                "node {old_node_id} cannot supersede itself"
            )));
        }
        let txn = self.db.begin_write().await?;
        let old = lock_node(&*txn, old_node_id).await?;
        let new = lock_node(&*txn, new_node_id).await?;
        if old.session_id != new.session_id {
            return Err(Error::SessionMismatch(format!(
                "node {old_node_id} belongs to session {} but its replacement {new_node_id} to session {}",
                old.session_id, new.session_id
            )));
        }
        if new.superseded_by.is_some() {
            return Err(Error::InvalidInput(format!(
                "the replacement {new_node_id} is itself superseded"
            )));
        }
        let mut active = old.into_active_model();
        active.superseded_by = Set(Some(new_node_id.to_owned()));
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Replaces a current node by a new one in one step — also when the new
    /// node keeps the label and type, which the one-current-node rule would
    /// otherwise refuse — and returns (superseded, replacement).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing node; [`Error::SessionMismatch`]
    /// when `new` names another session; [`Error::InvalidInput`] when the
    /// old node is already superseded or the confidence is outside [0, 1];
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateCurrentNode`]) when the
    /// new node collides with a third one.
    #[tracing::instrument(skip(self, new))]
    pub async fn replace_node(
        &self,
        old_node_id: &NodeId,
        new: NewNode,
    ) -> Result<(kg_node::Model, kg_node::Model)> {
        let replacement = new.into_model()?;
        let txn = self.db.begin_write().await?;
        let old = lock_node(&*txn, old_node_id).await?;
        if old.session_id != replacement.session_id {
            return Err(Error::SessionMismatch(format!(
                "node {old_node_id} belongs to session {}, not {}",
                old.session_id, replacement.session_id
            )));
        }
        if old.superseded_by.is_some() {
            return Err(Error::InvalidInput(format!(
                "node {old_node_id} is already superseded"
            )));
        }
        // The replacement is inserted pointing at the old node (so it is not
        // current yet), the old node then points at it, and finally it
        // becomes current: no instant has two current nodes, and every
        // foreign key holds at every statement.
        let mut staged = replacement.clone();
        staged.superseded_by = Some(old.id.clone());
        let collides = |err: sea_orm::DbErr| {
            Error::from(err).conflict_as(|| {
                duplicate_node(
                    &replacement.session_id,
                    &replacement.label,
                    &replacement.node_type,
                )
            })
        };
        kg_node::Entity::insert(staged.into_active_model())
            .exec_without_returning(&*txn)
            .await
            .map_err(collides)?;
        let mut old_active = old.into_active_model();
        old_active.superseded_by = Set(Some(replacement.id.clone()));
        let superseded = old_active.update(&*txn).await?;
        kg_node::Entity::update_many()
            .col_expr(
                kg_node::Column::SupersededBy,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .filter(kg_node::Column::Id.eq(replacement.id.as_str()))
            .exec(&*txn)
            .await
            .map_err(collides)?;
        txn.commit().await?;
        Ok((superseded, replacement))
    }

    /// Creates an edge between two nodes of its session.
    ///
    /// # Errors
    /// [`Error::NotFound`] when a node does not exist;
    /// [`Error::SessionMismatch`] when a node belongs to another session;
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateEdge`]) when the same
    /// edge (source, target, type) exists; [`Error::InvalidInput`] for a
    /// confidence outside [0, 1].
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, edge_type = ?new.edge_type))]
    pub async fn create_edge(&self, new: NewEdge) -> Result<kg_edge::Model> {
        let model = new.into_model()?;
        let txn = self.db.begin_write().await?;
        check_nodes_of_session(
            &*txn,
            &[&model.source_node_id, &model.target_node_id],
            &model.session_id,
        )
        .await?;
        kg_edge::Entity::insert(model.clone().into_active_model())
            .exec_without_returning(&*txn)
            .await
            .map_err(|err| Error::from(err).conflict_as(|| duplicate_edge(&model)))?;
        txn.commit().await?;
        Ok(model)
    }

    /// The edge of this type from `source_node_id` to `target_node_id`, if
    /// any.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn find_edge(
        &self,
        source_node_id: &NodeId,
        target_node_id: &NodeId,
        edge_type: EdgeType,
    ) -> Result<Option<kg_edge::Model>> {
        Ok(kg_edge::Entity::find()
            .filter(kg_edge::Column::SourceNodeId.eq(source_node_id))
            .filter(kg_edge::Column::TargetNodeId.eq(target_node_id))
            .filter(kg_edge::Column::EdgeType.eq(edge_type))
            .one(self.db.connection())
            .await?)
    }

    /// The edge `edge_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn edge(&self, edge_id: &EdgeId) -> Result<kg_edge::Model> {
        kg_edge::Entity::find_by_id(edge_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| edge_not_found(edge_id))
    }

    /// Every edge of the session, oldest first.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn edges(&self, session_id: &SessionId) -> Result<Vec<kg_edge::Model>> {
        session_edges(self.db.connection(), session_id).await
    }

    /// Adds an utterance of the edge's session to its provenance, once.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the edge or the utterance does not exist;
    /// [`Error::SessionMismatch`] when the utterance belongs to another
    /// session.
    #[tracing::instrument(skip(self))]
    pub async fn add_edge_provenance(
        &self,
        edge_id: &EdgeId,
        utterance_id: &UtteranceId,
    ) -> Result<kg_edge::Model> {
        let txn = self.db.begin_write().await?;
        let edge = kg_edge::Entity::find_by_id(edge_id)
            .lock_exclusive()
            .one(&*txn)
            .await?
            .ok_or_else(|| edge_not_found(edge_id))?;
        check_utterance_of_session(&*txn, utterance_id, &edge.session_id).await?;
        let mut provenance = edge.source_utterance_ids.clone();
        if !provenance.add_once(utterance_id.as_str()) {
            txn.commit().await?;
            return Ok(edge);
        }
        let mut active = edge.into_active_model();
        active.source_utterance_ids = Set(provenance);
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Counts and shape of the session's current graph.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn summary(&self, session_id: &SessionId) -> Result<GraphSummary> {
        let txn = self.db.begin_read().await?;
        let nodes: Vec<(String, String)> = kg_node::Entity::find()
            .select_only()
            .column(kg_node::Column::Id)
            .column(kg_node::Column::NodeType)
            .filter(kg_node::Column::SessionId.eq(session_id))
            .filter(kg_node::Column::SupersededBy.is_null())
            .order_by_asc(kg_node::Column::Id)
            .into_tuple()
            .all(&txn)
            .await?;
        let edges: Vec<(String, String, EdgeType)> = kg_edge::Entity::find()
            .select_only()
            .column(kg_edge::Column::SourceNodeId)
            .column(kg_edge::Column::TargetNodeId)
            .column(kg_edge::Column::EdgeType)
            .filter(kg_edge::Column::SessionId.eq(session_id))
            .into_tuple()
            .all(&txn)
            .await?;
        sea_orm::TransactionSession::commit(txn).await?;
        Ok(summarise(&nodes, &edges))
    }
}

async fn lock_node(conn: &impl ConnectionTrait, node_id: &NodeId) -> Result<kg_node::Model> {
    kg_node::Entity::find_by_id(node_id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| node_not_found(node_id))
}

/// Fails unless every node exists and belongs to `session_id`.
pub(crate) async fn check_nodes_of_session(
    conn: &impl ConnectionTrait,
    node_ids: &[&NodeId],
    session_id: &SessionId,
) -> Result<()> {
    let found: Vec<(NodeId, SessionId)> = kg_node::Entity::find()
        .select_only()
        .column(kg_node::Column::Id)
        .column(kg_node::Column::SessionId)
        .filter(kg_node::Column::Id.is_in(node_ids.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    for id in node_ids {
        match found.iter().find(|(found_id, _)| found_id == *id) {
            None => return Err(node_not_found(id)),
            Some((_, other)) if other != session_id => {
                return Err(Error::SessionMismatch(format!(
                    "node {id} belongs to session {other}, not {session_id}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn check_utterance_of_session(
    conn: &impl ConnectionTrait,
    utterance_id: &UtteranceId,
    session_id: &SessionId,
) -> Result<()> {
    let owner: Option<SessionId> = utterance::Entity::find_by_id(utterance_id)
        .select_only()
        .column(utterance::Column::SessionId)
        .into_tuple()
        .one(conn)
        .await?;
    match owner {
        None => Err(Error::NotFound {
            entity: EntityKind::Utterance,
            id: utterance_id.to_string(),
        }),
        Some(owner) if owner != *session_id => Err(Error::SessionMismatch(format!(
            "utterance {utterance_id} belongs to session {owner}, not {session_id}"
        ))),
        Some(_) => Ok(()),
    }
}

pub(crate) async fn current_nodes(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<kg_node::Model>> {
    Ok(current_nodes_query(conn.get_database_backend(), session_id)
        .all(conn)
        .await?)
}

/// The query behind [`current_nodes`]; its one value is the session id.
pub(crate) fn current_nodes_query(
    backend: sea_orm::DbBackend,
    session_id: &SessionId,
) -> sea_orm::Select<kg_node::Entity> {
    kg_node::Entity::find()
        .filter(kg_node::Column::SessionId.eq(session_id))
        .filter(kg_node::Column::SupersededBy.is_null())
        .order_by_asc(kg_node::Column::RecordedAt)
        .order_by(by_bytes(backend, kg_node::Column::Id), Order::Asc)
}

pub(crate) async fn session_edges(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<kg_edge::Model>> {
    Ok(session_edges_query(conn.get_database_backend(), session_id)
        .all(conn)
        .await?)
}

/// The query behind [`session_edges`]; its one value is the session id.
pub(crate) fn session_edges_query(
    backend: sea_orm::DbBackend,
    session_id: &SessionId,
) -> sea_orm::Select<kg_edge::Entity> {
    kg_edge::Entity::find()
        .filter(kg_edge::Column::SessionId.eq(session_id))
        .order_by_asc(kg_edge::Column::RecordedAt)
        .order_by(by_bytes(backend, kg_edge::Column::Id), Order::Asc)
}
