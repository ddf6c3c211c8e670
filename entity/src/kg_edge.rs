//! `kg_edges`: typed, directed relations between knowledge-graph nodes.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The relation an edge expresses: the vocabulary of every methodology the
/// system interviews with (SCHEMA.md). Stored as its snake_case name; the
/// database holds the column to the `edge_types` table, which a migration
/// extends when a methodology is added (this enum follows it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum EdgeType {
    // generic
    /// The source leads to the target (a means-end chain link).
    #[sea_orm(string_value = "leads_to")]
    LeadsTo,
    /// The source revises the target.
    #[sea_orm(string_value = "revises")]
    Revises,
    // jobs to be done
    /// A job occurs in a situation.
    #[sea_orm(string_value = "occurs_in")]
    OccursIn,
    /// A job is triggered by an event.
    #[sea_orm(string_value = "triggered_by")]
    TriggeredBy,
    /// The source triggers the target.
    #[sea_orm(string_value = "triggers")]
    Triggers,
    /// A solution addresses a job or pain.
    #[sea_orm(string_value = "addresses")]
    Addresses,
    /// The source conflicts with the target.
    #[sea_orm(string_value = "conflicts_with")]
    ConflictsWith,
    /// The source enables the target.
    #[sea_orm(string_value = "enables")]
    Enables,
    /// The source supports the target.
    #[sea_orm(string_value = "supports")]
    Supports,
    // means end chain
    /// The source is a means to the target.
    #[sea_orm(string_value = "means_to")]
    MeansTo,
    /// The source is an end the target serves.
    #[sea_orm(string_value = "ends_to")]
    EndsTo,
    // critical incident
    /// An incident occurred in a context.
    #[sea_orm(string_value = "occurred_in")]
    OccurredIn,
    /// An incident involved an actor or object.
    #[sea_orm(string_value = "involved")]
    Involved,
    /// An incident resulted in an outcome.
    #[sea_orm(string_value = "resulted_in")]
    ResultedIn,
    /// An incident elicited a reaction.
    #[sea_orm(string_value = "elicited")]
    Elicited,
    /// An outcome is attributed to a cause.
    #[sea_orm(string_value = "attributed_to")]
    AttributedTo,
    /// An incident led to a learning.
    #[sea_orm(string_value = "led_to_learning")]
    LedToLearning,
    /// The source influenced the target.
    #[sea_orm(string_value = "influenced")]
    Influenced,
    /// The source is similar to the target.
    #[sea_orm(string_value = "similar_to")]
    SimilarTo,
    /// The source contrasts with the target.
    #[sea_orm(string_value = "contrasts_with")]
    ContrastsWith,
    // repertory grid
    /// An element is evaluated by a construct.
    #[sea_orm(string_value = "evaluated_by")]
    EvaluatedBy,
    /// A construct pole is the opposite of another.
    #[sea_orm(string_value = "opposite_of")]
    OppositeOf,
    /// An element is rated on a construct.
    #[sea_orm(string_value = "rated_on")]
    RatedOn,
    /// Elements are similar on a construct.
    #[sea_orm(string_value = "similar_on")]
    SimilarOn,
    /// Elements differ on a construct.
    #[sea_orm(string_value = "differs_on")]
    DiffersOn,
    /// A construct implies another.
    #[sea_orm(string_value = "implies")]
    Implies,
    /// An element is closer to the ideal.
    #[sea_orm(string_value = "closer_to_ideal")]
    CloserToIdeal,
    /// A construct defines an element.
    #[sea_orm(string_value = "defines")]
    Defines,
    // customer journey
    /// A journey stage transitions to the next.
    #[sea_orm(string_value = "transitions_to")]
    TransitionsTo,
    /// A touchpoint evokes an emotion.
    #[sea_orm(string_value = "evokes")]
    Evokes,
    /// A pain point disrupts a stage.
    #[sea_orm(string_value = "disrupts")]
    Disrupts,
    /// A touchpoint happens via a channel.
    #[sea_orm(string_value = "via_channel")]
    ViaChannel,
    /// An expectation is held at a stage.
    #[sea_orm(string_value = "expected_at")]
    ExpectedAt,
    /// An expectation is confirmed by an experience.
    #[sea_orm(string_value = "confirmed_by")]
    ConfirmedBy,
    /// An expectation is violated by an experience.
    #[sea_orm(string_value = "violated_by")]
    ViolatedBy,
    /// A stage triggered an action.
    #[sea_orm(string_value = "triggered")]
    Triggered,
    /// A pain point is resolved by an action.
    #[sea_orm(string_value = "resolved_by")]
    ResolvedBy,
}

/// A row of `kg_edges`. Unique per (source, target, edge type).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "kg_edges")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::EdgeId,
    /// The session this edge belongs to.
    pub session_id: crate::SessionId,
    /// Where the edge starts.
    pub source_node_id: crate::NodeId,
    /// Where the edge ends.
    pub target_node_id: crate::NodeId,
    /// What the edge expresses.
    pub edge_type: EdgeType,
    /// Extraction confidence in [0, 1] (default 0.8).
    pub confidence: f64,
    /// Methodology-specific properties (default `{}`).
    pub properties: Option<Json>,
    /// Ids of the utterances the edge was extracted from (default `[]`).
    pub source_utterance_ids: crate::StringList,
    /// When it was recorded (UTC).
    #[serde(with = "crate::utc_timestamp")]
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
