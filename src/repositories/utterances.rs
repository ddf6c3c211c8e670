//! The transcript: one utterance per speaker per turn.

use entity::SessionId;
use entity::utterance::{self, Speaker};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::database::Database;
use crate::error::{ConflictKind, Error, Result};
use sea_orm::Order;

use super::{by_bytes, insert_one, new_id, now_utc};

/// An utterance to save.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUtterance {
    /// The session it belongs to.
    pub session_id: SessionId,
    /// The turn, counted from 1.
    pub turn_number: i32,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Discourse markers found in it.
    #[serde(default)]
    pub discourse_markers: Vec<String>,
}

impl NewUtterance {
    /// The row this utterance becomes, with a new id.
    pub(crate) fn into_model(self) -> utterance::Model {
        utterance::Model {
            id: new_id().into(),
            session_id: self.session_id,
            turn_number: self.turn_number,
            speaker: self.speaker,
            text: self.text,
            discourse_markers: Some(self.discourse_markers.into()),
            created_at: now_utc(),
        }
    }
}

/// The transcript of each session.
#[derive(Debug, Clone)]
pub struct UtteranceRepository {
    db: Database,
}

impl UtteranceRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Saves an utterance and returns it with its id.
    ///
    /// # Errors
    /// [`Error::InvalidReference`] when the session does not exist;
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateUtterance`]) when the
    /// speaker already spoke in that turn;
    /// [`Error::InvalidInput`] for a negative turn number, or a user
    /// utterance at turn 0.
    ///
    /// Turn 0 holds the session's opening question, the system's (the
    /// Python pipeline saves it right after creating the session); the
    /// participant's answers start at turn 1. It is part of the transcript
    /// and of [`last`](Self::last), and not a turn: `turn_count` and
    /// [`record_turn`](super::turns::TurnRepository::record_turn) count
    /// and number answered turns, from 1.
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, turn = new.turn_number))]
    pub async fn save(&self, new: NewUtterance) -> Result<utterance::Model> {
        check_utterance_turn(new.turn_number, new.speaker)?;
        let model = new.into_model();
        insert_one(&self.db, model.clone().into_active_model())
            .await
            .map_err(|err| {
                err.conflict_as(|| ConflictKind::DuplicateUtterance {
                    session_id: model.session_id.to_string(),
                    turn_number: model.turn_number,
                    speaker: sea_orm::ActiveEnum::to_value(&model.speaker),
                })
            })?;
        Ok(model)
    }

    /// The last `n` utterances of a session, in conversation order (`n`
    /// clamped to [`MAX_ROW_LIMIT`](super::MAX_ROW_LIMIT)).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn last(&self, session_id: &SessionId, n: u64) -> Result<Vec<utterance::Model>> {
        last_utterances(self.db.connection(), session_id, n).await
    }

    /// Every utterance of one turn, in conversation order.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn of_turn(
        &self,
        session_id: &SessionId,
        turn_number: i32,
    ) -> Result<Vec<utterance::Model>> {
        Ok(in_order(
            utterance::Entity::find()
                .filter(utterance::Column::SessionId.eq(session_id))
                .filter(utterance::Column::TurnNumber.eq(turn_number)),
            self.db.backend().into(),
        )
        .all(self.db.connection())
        .await?)
    }

    /// The whole transcript of a session, in conversation order.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn transcript(&self, session_id: &SessionId) -> Result<Vec<utterance::Model>> {
        Ok(in_order(
            utterance::Entity::find().filter(utterance::Column::SessionId.eq(session_id)),
            self.db.backend().into(),
        )
        .all(self.db.connection())
        .await?)
    }
}

/// An utterance's turn: 0 for the system's opening question, from 1 for
/// the turns of the interview.
fn check_utterance_turn(turn_number: i32, speaker: Speaker) -> Result<()> {
    match (turn_number, speaker) {
        (0, Speaker::System) => Ok(()),
        (0, Speaker::User) => Err(Error::InvalidInput(
            "turn 0 holds the opening question: only the system speaks in it".into(),
        )),
        _ => check_turn(turn_number),
    }
}

/// A turn of the interview (an answer, its scores): from 1.
pub(crate) fn check_turn(turn_number: i32) -> Result<()> {
    if turn_number < 1 {
        return Err(Error::InvalidInput(format!(
            "turn number {turn_number} is below 1"
        )));
    }
    Ok(())
}

/// Conversation order: by turn, then by when each was recorded (ids are
/// time-ordered, which breaks ties within one instant).
pub(crate) fn in_order(
    query: sea_orm::Select<utterance::Entity>,
    backend: sea_orm::DbBackend,
) -> sea_orm::Select<utterance::Entity> {
    query
        .order_by_asc(utterance::Column::TurnNumber)
        .order_by_asc(utterance::Column::CreatedAt)
        .order_by(by_bytes(backend, utterance::Column::Id), Order::Asc)
}

pub(crate) async fn last_utterances(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
    n: u64,
) -> Result<Vec<utterance::Model>> {
    let mut newest_first = last_utterances_query(conn.get_database_backend(), session_id, n)
        .all(conn)
        .await?;
    newest_first.reverse();
    Ok(newest_first)
}

/// The query behind [`last_utterances`], newest first; its values are the
/// session id and the limit.
pub(crate) fn last_utterances_query(
    backend: sea_orm::DbBackend,
    session_id: &SessionId,
    n: u64,
) -> sea_orm::Select<utterance::Entity> {
    utterance::Entity::find()
        .filter(utterance::Column::SessionId.eq(session_id))
        .order_by_desc(utterance::Column::TurnNumber)
        .order_by_desc(utterance::Column::CreatedAt)
        .order_by(by_bytes(backend, utterance::Column::Id), Order::Desc)
        .limit(super::row_limit(n))
}
