//! The scores that steered each turn.

use entity::SessionId;
use entity::scoring_history;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, prelude::Json,
};

use serde::Deserialize;

use crate::database::Database;
use crate::error::{ConflictKind, Result};

use super::utterances::check_turn;
use super::{
    check_fraction, check_json_object, check_optional_fraction, insert_one, new_id, now_utc,
};

/// The scores of one turn.
///
/// Deserialises from JSON with the fields' names (`novelty_score`,
/// `richness_score`, `strategy_reasoning` and `scorer_details` optional);
/// the scores are checked when saved, not while deserialising.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnScores {
    /// How much of the concept is covered, in [0, 1].
    pub coverage_score: f64,
    /// How deep the laddering went, in [0, 1].
    pub depth_score: f64,
    /// How saturated the answers are, in [0, 1].
    pub saturation_score: f64,
    /// How new the last answer was, if scored, in [0, 1].
    #[serde(default)]
    pub novelty_score: Option<f64>,
    /// How rich the last answer was, if scored, in [0, 1].
    #[serde(default)]
    pub richness_score: Option<f64>,
    /// The strategy chosen for the next question.
    pub strategy_selected: String,
    /// Why.
    #[serde(default)]
    pub strategy_reasoning: Option<String>,
    /// Per-scorer details: a JSON object (anything else is refused with
    /// `InvalidInput`).
    #[serde(default = "super::empty_object")]
    pub scorer_details: Json,
}

impl TurnScores {
    /// Every score is a fraction in [0, 1] (NaN and infinities refused),
    /// and the details nest no deeper than JSON allows.
    fn check(&self) -> Result<()> {
        check_fraction("coverage score", self.coverage_score)?;
        check_fraction("depth score", self.depth_score)?;
        check_fraction("saturation score", self.saturation_score)?;
        check_optional_fraction("novelty score", self.novelty_score)?;
        check_optional_fraction("richness score", self.richness_score)?;
        check_json_object("scorer details", &self.scorer_details)
    }
}

/// The scores of one turn of one session, to save.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScores {
    /// The session scored.
    pub session_id: SessionId,
    /// The turn scored (one row per turn).
    pub turn_number: i32,
    /// The scores.
    pub scores: TurnScores,
}

impl NewScores {
    /// The row these scores become, with a new id.
    pub(crate) fn into_model(self) -> Result<scoring_history::Model> {
        check_turn(self.turn_number)?;
        let scores = self.scores;
        scores.check()?;
        Ok(scoring_history::Model {
            id: new_id().into(),
            session_id: self.session_id,
            turn_number: self.turn_number,
            coverage_score: Some(scores.coverage_score),
            depth_score: scores.depth_score,
            saturation_score: scores.saturation_score,
            novelty_score: scores.novelty_score,
            richness_score: scores.richness_score,
            strategy_selected: scores.strategy_selected,
            strategy_reasoning: scores.strategy_reasoning,
            scorer_details: Some(scores.scorer_details),
            created_at: now_utc(),
        })
    }
}

/// The scoring history of each session.
#[derive(Debug, Clone)]
pub struct ScoringRepository {
    db: Database,
}

impl ScoringRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Saves the scores of a turn.
    ///
    /// # Errors
    /// [`Error::Conflict`](crate::Error::Conflict)
    /// ([`ConflictKind::DuplicateTurn`]) when that turn already has scores; [`Error::InvalidReference`](crate::Error::InvalidReference)
    /// when the session does not exist;
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a turn below 1.
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, turn = new.turn_number))]
    pub async fn save(&self, new: NewScores) -> Result<scoring_history::Model> {
        let model = new.into_model()?;
        insert_one(&self.db, model.clone().into_active_model())
            .await
            .map_err(|err| {
                err.conflict_as(|| ConflictKind::DuplicateTurn {
                    session_id: model.session_id.to_string(),
                    turn_number: model.turn_number,
                })
            })?;
        Ok(model)
    }

    /// Every turn's scores, in turn order.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn history(&self, session_id: &SessionId) -> Result<Vec<scoring_history::Model>> {
        history(self.db.connection(), session_id).await
    }

    /// The scores of the latest turn, if any.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn latest(&self, session_id: &SessionId) -> Result<Option<scoring_history::Model>> {
        Ok(scoring_history::Entity::find()
            .filter(scoring_history::Column::SessionId.eq(session_id))
            .order_by_desc(scoring_history::Column::TurnNumber)
            .one(self.db.connection())
            .await?)
    }

    /// The strategies of the last `n` turns, oldest first (`n` clamped to
    /// [`MAX_ROW_LIMIT`](super::MAX_ROW_LIMIT)).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn last_strategies(&self, session_id: &SessionId, n: u64) -> Result<Vec<String>> {
        let mut newest_first: Vec<String> = scoring_history::Entity::find()
            .select_only()
            .column(scoring_history::Column::StrategySelected)
            .filter(scoring_history::Column::SessionId.eq(session_id))
            .order_by_desc(scoring_history::Column::TurnNumber)
            .limit(super::row_limit(n))
            .into_tuple()
            .all(self.db.connection())
            .await?;
        newest_first.reverse();
        Ok(newest_first)
    }
}

pub(crate) async fn history(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<scoring_history::Model>> {
    Ok(history_query(session_id).all(conn).await?)
}

/// The query behind [`history`]; its one value is the session id.
pub(crate) fn history_query(session_id: &SessionId) -> sea_orm::Select<scoring_history::Entity> {
    scoring_history::Entity::find()
        .filter(scoring_history::Column::SessionId.eq(session_id))
        .order_by_asc(scoring_history::Column::TurnNumber)
}
