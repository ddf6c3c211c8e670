//! `session_erasures`: the record that a session was erased — its id, when,
//! and how many rows of each table went — without any of its content.
//! No foreign key: the session it records is gone.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `session_erasures`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "session_erasures")]
pub struct Model {
    /// The id the erased session had.
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_id: crate::SessionId,
    /// When it was erased (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub erased_at: DateTime,
    /// How many `utterances` rows were erased.
    pub utterance_rows: i64,
    /// How many `kg_nodes` rows were erased.
    pub kg_node_rows: i64,
    /// How many `kg_edges` rows were erased.
    pub kg_edge_rows: i64,
    /// How many `scoring_history` rows were erased.
    pub scoring_history_rows: i64,
    /// How many `concept_elements` rows were erased.
    pub concept_element_rows: i64,
    /// How many `canonical_slots` rows were erased; `None` in a record
    /// written before this count was kept.
    pub canonical_slot_rows: Option<i64>,
    /// How many `surface_to_slot_mapping` rows were erased (`None`: not
    /// counted, as above).
    pub slot_mapping_rows: Option<i64>,
    /// How many `canonical_edges` rows were erased (`None`: not counted).
    pub canonical_edge_rows: Option<i64>,
    /// How many `qualitative_signals` rows were erased (`None`: not
    /// counted).
    pub qualitative_signal_rows: Option<i64>,
    /// When the old copies of the erased rows were removed from the files
    /// (SQLite: the file vacuumed and its WAL truncated; PostgreSQL: the
    /// tables vacuumed); `None` while that scrub is still owed.
    #[serde(with = "crate::utc_timestamp::option")]
    pub scrubbed_at: Option<DateTime>,
}

/// No relations: the session is gone.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
