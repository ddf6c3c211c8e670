//! `sessions`: one adaptive research interview.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where an interview stands. Stored as `active`, `completed` or `abandoned`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// The interview is running.
    #[sea_orm(string_value = "active")]
    Active,
    /// The interview ended normally.
    #[sea_orm(string_value = "completed")]
    Completed,
    /// The interview was given up before it ended.
    #[sea_orm(string_value = "abandoned")]
    Abandoned,
}

/// A row of `sessions`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::SessionId,
    /// Interview methodology, e.g. `means_end_chain`.
    pub methodology: String,
    /// Id of the concept the interview explores.
    pub concept_id: String,
    /// Human-readable name of that concept.
    pub concept_name: String,
    /// Where the interview stands (default `active`).
    pub status: SessionStatus,
    /// Methodology settings (default `{}`).
    pub config: Json,
    /// When the session was created (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
    /// When the session last changed (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub updated_at: DateTime,
    /// When the session was completed (UTC), if it was.
    #[serde(with = "crate::utc_timestamp::option", default)]
    pub completed_at: Option<DateTime>,
    /// How many turns have been recorded (default 0).
    pub turn_count: i32,
    /// Latest coverage score (default 0.0).
    pub coverage_score: Option<f64>,
    /// The Python pipeline's node-state tracker, serialised (JSON), once
    /// it has saved one.
    pub node_tracker_state: Option<Json>,
    /// The highest surface-graph velocity (new nodes per turn) so far
    /// (default 0.0).
    pub surface_velocity_peak: f64,
    /// How many surface nodes there were after the previous turn
    /// (default 0).
    pub prev_surface_node_count: i32,
    /// The highest canonical-graph velocity so far (default 0.0).
    pub canonical_velocity_peak: f64,
    /// How many canonical slots there were after the previous turn
    /// (default 0).
    pub prev_canonical_node_count: i32,
    /// Which strategy and node each turn focused on (default `[]`).
    pub focus_history: crate::FocusHistory,
}

/// How a session relates to the rows that belong to it.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The transcript.
    #[sea_orm(has_many = "super::utterance::Entity")]
    Utterance,
    /// The knowledge-graph nodes.
    #[sea_orm(has_many = "super::kg_node::Entity")]
    KgNode,
    /// The knowledge-graph edges.
    #[sea_orm(has_many = "super::kg_edge::Entity")]
    KgEdge,
    /// The scores of each turn.
    #[sea_orm(has_many = "super::scoring_history::Entity")]
    ScoringHistory,
    /// The concept elements to cover.
    #[sea_orm(has_many = "super::concept_element::Entity")]
    ConceptElement,
}

impl Related<super::utterance::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Utterance.def()
    }
}

impl Related<super::kg_node::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::KgNode.def()
    }
}

impl Related<super::kg_edge::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::KgEdge.def()
    }
}

impl Related<super::scoring_history::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ScoringHistory.def()
    }
}

impl Related<super::concept_element::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ConceptElement.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
