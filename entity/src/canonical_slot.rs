//! `canonical_slots`: the abstract concepts the surface nodes of a session
//! map to (the Python system's dual graph).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a slot stands: a `candidate` until enough surface nodes support
/// it, then `active`. Stored as that text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    /// Proposed, not yet supported enough (the default).
    #[sea_orm(string_value = "candidate")]
    Candidate,
    /// Promoted: part of the canonical graph.
    #[sea_orm(string_value = "active")]
    Active,
}

/// A row of `canonical_slots`. One per (session, slot name, node type).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "canonical_slots")]
pub struct Model {
    /// `slot_` and twelve hex digits, as the Python system makes them.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::SlotId,
    /// The session it belongs to.
    pub session_id: crate::SessionId,
    /// The canonical name, e.g. `energy_stability`.
    pub slot_name: String,
    /// What the slot means.
    pub description: Option<String>,
    /// The node type of the surface nodes it gathers.
    pub node_type: String,
    /// Candidate or active (default candidate).
    pub status: SlotStatus,
    /// How many surface-node mappings support it (default 0).
    pub support_count: i32,
    /// The turn it was first proposed in.
    pub first_seen_turn: i32,
    /// The turn it was promoted in, once it is active.
    pub promoted_turn: Option<i32>,
    /// Its embedding, if it has one.
    #[sea_orm(column_type = "Blob")]
    pub embedding: Option<crate::Embedding>,
    /// When it was created (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
    /// When it was promoted (UTC).
    #[serde(with = "crate::utc_timestamp::option", default)]
    pub promoted_at: Option<DateTime>,
}

/// How a slot relates to other rows.
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
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
