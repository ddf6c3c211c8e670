//! `surface_to_slot_mapping`: which canonical slot each surface node maps
//! to.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `surface_to_slot_mapping`: at most one per surface node.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "surface_to_slot_mapping")]
pub struct Model {
    /// The surface node (`kg_nodes.id`); deleting it deletes the mapping.
    #[sea_orm(primary_key, auto_increment = false)]
    pub surface_node_id: crate::NodeId,
    /// The slot it maps to; deleting the slot deletes the mapping.
    pub canonical_slot_id: crate::SlotId,
    /// The cosine similarity the mapping was made at.
    pub similarity_score: f64,
    /// The turn it was made in.
    pub assigned_turn: i32,
    /// When it was made (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub assigned_at: DateTime,
}

/// How a mapping relates to other rows.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The surface node.
    #[sea_orm(
        belongs_to = "super::kg_node::Entity",
        from = "Column::SurfaceNodeId",
        to = "super::kg_node::Column::Id",
        on_delete = "Cascade"
    )]
    SurfaceNode,
    /// The slot.
    #[sea_orm(
        belongs_to = "super::canonical_slot::Entity",
        from = "Column::CanonicalSlotId",
        to = "super::canonical_slot::Column::Id",
        on_delete = "Cascade"
    )]
    Slot,
}

impl Related<super::canonical_slot::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Slot.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
