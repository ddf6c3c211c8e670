//! `concept_elements`: what an interview has to cover, and what it has.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// How much covering an element matters. Stored as `high`, `medium` or `low`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Must be covered.
    #[sea_orm(string_value = "high")]
    High,
    /// Should be covered (the default).
    #[sea_orm(string_value = "medium")]
    Medium,
    /// Nice to cover.
    #[sea_orm(string_value = "low")]
    Low,
}

/// A row of `concept_elements`. Unique per (session, element id).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "concept_elements")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The session this element belongs to.
    pub session_id: crate::SessionId,
    /// The element's id within the concept, e.g. `e0`.
    pub element_id: crate::ElementId,
    /// Human-readable name.
    pub label: String,
    /// Kind of element (default `attribute`).
    pub element_type: String,
    /// How much covering it matters (default `medium`).
    pub priority: Priority,
    /// Whether a node has covered it (default false).
    pub is_covered: bool,
    /// When it was covered (UTC).
    #[serde(with = "crate::utc_timestamp::option", default)]
    pub covered_at: Option<DateTime>,
    /// The node that covered it; set to NULL if that node is deleted.
    pub covered_by_node_id: Option<crate::NodeId>,
}

/// How an element relates to other rows.
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
    /// The node that covered it.
    #[sea_orm(
        belongs_to = "super::kg_node::Entity",
        from = "Column::CoveredByNodeId",
        to = "super::kg_node::Column::Id",
        on_delete = "SetNull"
    )]
    CoveredBy,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::kg_node::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CoveredBy.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
