//! `scoring_history`: the scores that steered each turn.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `scoring_history`. One per (session, turn).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "scoring_history")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::ScoringId,
    /// The session this score belongs to.
    pub session_id: crate::SessionId,
    /// The turn scored.
    pub turn_number: i32,
    /// How much of the concept the interview has covered; `None` in rows
    /// the newer Python system wrote, which no longer scores it.
    pub coverage_score: Option<f64>,
    /// How deep the laddering went.
    pub depth_score: f64,
    /// How saturated the answers are.
    pub saturation_score: f64,
    /// How new the last answer was, if scored.
    pub novelty_score: Option<f64>,
    /// How rich the last answer was, if scored.
    pub richness_score: Option<f64>,
    /// The questioning strategy chosen for the next turn.
    pub strategy_selected: String,
    /// Why that strategy was chosen.
    pub strategy_reasoning: Option<String>,
    /// Per-scorer details (default `{}`).
    pub scorer_details: Option<Json>,
    /// When it was recorded (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
}

/// How a score relates to other rows.
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
