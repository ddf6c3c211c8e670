//! `kg_edges`: typed, directed relations between knowledge-graph nodes.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The relation an edge expresses. Stored as its snake_case name; the
/// database holds the column to this vocabulary with a CHECK, which grows
/// only through a migration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum EdgeType {
    /// The source leads to the target (a means-end chain link).
    #[sea_orm(string_value = "leads_to")]
    LeadsTo,
    /// The source revises the target.
    #[sea_orm(string_value = "revises")]
    Revises,
}

/// A row of `kg_edges`. Unique per (source, target, edge type).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "kg_edges")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The session this edge belongs to.
    pub session_id: String,
    /// Where the edge starts.
    pub source_node_id: String,
    /// Where the edge ends.
    pub target_node_id: String,
    /// What the edge expresses.
    pub edge_type: EdgeType,
    /// Extraction confidence in [0, 1] (default 0.8).
    pub confidence: f64,
    /// Methodology-specific properties (default `{}`).
    pub properties: Option<Json>,
    /// Ids of the utterances the edge was extracted from (default `[]`).
    pub source_utterance_ids: crate::StringList,
    /// When it was recorded (UTC).
    pub recorded_at: DateTime,
}

/// How an edge relates to other rows.
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
    /// The node the edge starts at.
    #[sea_orm(
        belongs_to = "super::kg_node::Entity",
        from = "Column::SourceNodeId",
        to = "super::kg_node::Column::Id",
        on_delete = "Cascade"
    )]
    Source,
    /// The node the edge ends at.
    #[sea_orm(
        belongs_to = "super::kg_node::Entity",
        from = "Column::TargetNodeId",
        to = "super::kg_node::Column::Id",
        on_delete = "Cascade"
    )]
    Target,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
