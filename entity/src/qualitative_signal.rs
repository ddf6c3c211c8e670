//! `qualitative_signals`: what an LLM read in each turn's answer beyond
//! the graph (uncertainty, reasoning, emotion, …).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `qualitative_signals`. One per (session, turn).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "qualitative_signals")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::SignalId,
    /// The session it belongs to.
    pub session_id: crate::SessionId,
    /// The turn read.
    pub turn_number: i32,
    /// The model that read it.
    pub llm_model: Option<String>,
    /// How long the reading took, in milliseconds.
    pub extraction_latency_ms: Option<i64>,
    /// What went wrong while reading, if anything.
    pub extraction_errors: Option<crate::StringList>,
    /// Signs of uncertainty (JSON), if any.
    pub uncertainty_signal: Option<Json>,
    /// How the participant reasoned (JSON), if read.
    pub reasoning_signal: Option<Json>,
    /// Emotional tone (JSON), if read.
    pub emotional_signal: Option<Json>,
    /// Contradictions with earlier answers (JSON), if any.
    pub contradiction_signal: Option<Json>,
    /// Where the participant's knowledge ran out (JSON), if it did.
    pub knowledge_ceiling_signal: Option<Json>,
    /// How deep the concept went (JSON), if read.
    pub concept_depth_signal: Option<Json>,
    /// When it was recorded (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
}

/// How a signal row relates to other rows.
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
