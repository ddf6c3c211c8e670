//! `kg_nodes`: the knowledge-graph nodes extracted from the answers.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `kg_nodes`.
///
/// A node is *current* while `superseded_by` is `None`; at most one current
/// node of a session has a given (label, node type).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "kg_nodes")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::NodeId,
    /// The session this node belongs to.
    pub session_id: crate::SessionId,
    /// What the node is called.
    pub label: String,
    /// Free text set by the methodology, e.g. `attribute` or `value`.
    pub node_type: String,
    /// Extraction confidence in [0, 1] (default 0.8).
    pub confidence: f64,
    /// Methodology-specific properties (default `{}`).
    pub properties: Option<Json>,
    /// Ids of the utterances the node was extracted from (default `[]`).
    pub source_utterance_ids: crate::StringList,
    /// When it was recorded (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub recorded_at: DateTime,
    /// The node that replaced this one; set to NULL if that node is deleted.
    pub superseded_by: Option<crate::NodeId>,
    /// The participant's stance towards it (default neutral).
    pub stance: crate::Stance,
    /// Its sentence embedding, if it has one (for similarity look-ups).
    #[sea_orm(column_type = "Blob")]
    pub embedding: Option<crate::Embedding>,
    /// Verbatim quotes of the answers it was extracted from, each once
    /// (default `[]`).
    pub source_quotes: crate::StringList,
}

/// How a node relates to other rows.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The session it belongs to.
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
    /// The node that superseded this one.
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::SupersededBy",
        to = "Column::Id",
        on_delete = "SetNull"
    )]
    SupersededBy,
    /// Edges that start at this node.
    #[sea_orm(has_many = "super::kg_edge::Entity", via_rel = "Relation::Source")]
    OutgoingEdges,
    /// Edges that end at this node.
    #[sea_orm(has_many = "super::kg_edge::Entity", via_rel = "Relation::Target")]
    IncomingEdges,
    /// Concept elements this node covered.
    #[sea_orm(has_many = "super::concept_element::Entity")]
    CoveredElements,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::concept_element::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CoveredElements.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
