//! `canonical_edges`: the surface edges of a session aggregated between
//! canonical slots.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `canonical_edges`. One per (session, source slot, target
/// slot, edge type).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "canonical_edges")]
pub struct Model {
    /// `cedge_` and twelve hex digits, as the Python system makes them.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::CanonicalEdgeId,
    /// The session it belongs to.
    pub session_id: crate::SessionId,
    /// Where it starts.
    pub source_slot_id: crate::SlotId,
    /// Where it ends.
    pub target_slot_id: crate::SlotId,
    /// The surface edges' type. Free text: the Python system holds this
    /// column to no vocabulary.
    pub edge_type: String,
    /// How many surface edges it aggregates (default 1).
    pub support_count: i32,
    /// Their ids, each once (default `[]`).
    pub surface_edge_ids: crate::StringList,
    /// When it was created (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
    /// When a surface edge was last added (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub updated_at: DateTime,
}

/// How a canonical edge relates to other rows.
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
