//! `utterances`: the transcript, one row per speaker per turn.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Who spoke. Stored as `system` or `user`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The interviewer (the system's question).
    #[sea_orm(string_value = "system")]
    System,
    /// The interviewee (the answer).
    #[sea_orm(string_value = "user")]
    User,
}

/// A row of `utterances`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "utterances")]
pub struct Model {
    /// UUID string.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: crate::UtteranceId,
    /// The session this utterance belongs to.
    pub session_id: crate::SessionId,
    /// The turn, counted from 1; unique per (session, speaker).
    pub turn_number: i32,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Discourse markers found in the text (default `[]`).
    pub discourse_markers: Option<crate::StringList>,
    /// When it was recorded (UTC).
    #[serde(with = "crate::utc_timestamp")]
    pub created_at: DateTime,
}

/// How an utterance relates to other rows.
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
