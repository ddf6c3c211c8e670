//! Qualitative signals: what an LLM read in each turn's answer, one row
//! per (session, turn).

use entity::qualitative_signal;
use entity::{SessionId, SignalId, StringList};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::database::Database;
use crate::error::{Error, Result};

use super::{check_json_depth, new_id, now_utc};

/// The six signals of a turn; each is any JSON document, or `None` when
/// not read (a JSON `null` is stored as NULL too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Signals {
    /// Signs of uncertainty.
    pub uncertainty: Option<Json>,
    /// How the participant reasoned.
    pub reasoning: Option<Json>,
    /// Emotional tone.
    pub emotional: Option<Json>,
    /// Contradictions with earlier answers.
    pub contradiction: Option<Json>,
    /// Where the participant's knowledge ran out.
    pub knowledge_ceiling: Option<Json>,
    /// How deep the concept went.
    pub concept_depth: Option<Json>,
}

/// The signals of one turn, to save.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSignals {
    /// The session.
    pub session_id: SessionId,
    /// The turn read (from 0: the opening question has a turn too).
    pub turn_number: i32,
    /// The model that read it.
    #[serde(default)]
    pub llm_model: Option<String>,
    /// How long the reading took, in milliseconds (not negative).
    #[serde(default)]
    pub extraction_latency_ms: Option<i64>,
    /// What went wrong while reading (stored as `[]` when nothing did).
    #[serde(default)]
    pub extraction_errors: Vec<String>,
    /// The signals.
    #[serde(default)]
    pub signals: Signals,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "row", rename_all = "snake_case")]
pub enum SignalsSaved {
    /// The turn had no signals: these are stored.
    Saved(qualitative_signal::Model),
    /// The turn had signals already: they are kept, and returned; the
    /// new ones were not stored.
    AlreadySaved(qualitative_signal::Model),
}

impl SignalsSaved {
    /// The row the turn has now.
    #[must_use]
    pub fn row(&self) -> &qualitative_signal::Model {
        match self {
            Self::Saved(row) | Self::AlreadySaved(row) => row,
        }
    }
}

/// The row `new` becomes, with a new id, once every value is checked.
pub(crate) fn signal_row(new: NewSignals) -> Result<qualitative_signal::Model> {
    if new.turn_number < 0 {
        return Err(Error::InvalidInput(format!(
            "turn number {} is negative",
            new.turn_number
        )));
    }
    if let Some(latency) = new.extraction_latency_ms.filter(|l| *l < 0) {
        return Err(Error::InvalidInput(format!(
            "extraction latency {latency} ms is negative"
        )));
    }
    let signals = new.signals;
    for (what, signal) in [
        ("uncertainty signal", &signals.uncertainty),
        ("reasoning signal", &signals.reasoning),
        ("emotional signal", &signals.emotional),
        ("contradiction signal", &signals.contradiction),
        ("knowledge ceiling signal", &signals.knowledge_ceiling),
        ("concept depth signal", &signals.concept_depth),
    ] {
        if let Some(signal) = signal {
            check_json_depth(what, signal)?;
        }
    }
    Ok(qualitative_signal::Model {
        id: SignalId::new(new_id()),
        session_id: new.session_id,
        turn_number: new.turn_number,
        llm_model: new.llm_model,
        extraction_latency_ms: new.extraction_latency_ms,
        extraction_errors: Some(StringList::from(new.extraction_errors)),
        uncertainty_signal: stored(signals.uncertainty),
        reasoning_signal: stored(signals.reasoning),
        emotional_signal: stored(signals.emotional),
        contradiction_signal: stored(signals.contradiction),
        knowledge_ceiling_signal: stored(signals.knowledge_ceiling),
        concept_depth_signal: stored(signals.concept_depth),
        created_at: now_utc(),
    })
}

/// `INSERT … ON CONFLICT (session_id, turn_number) DO NOTHING` of `row`.
pub(crate) fn insert_unless_saved(
    row: qualitative_signal::Model,
) -> sea_orm::Insert<qualitative_signal::ActiveModel> {
    qualitative_signal::Entity::insert(row.into_active_model()).on_conflict(
        OnConflict::columns([
            qualitative_signal::Column::SessionId,
            qualitative_signal::Column::TurnNumber,
        ])
        .do_nothing()
        .to_owned(),
    )
}

/// Qualitative signals of each turn.
#[derive(Debug, Clone)]
pub struct SignalRepository {
    db: Database,
}

fn stored(signal: Option<Json>) -> Option<Json> {
    signal.filter(|s| !s.is_null())
}

impl SignalRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Saves a turn's signals unless the turn has some already. The first
    /// save of a turn wins, as in the Python system — whose scoring stage
    /// saves twice per turn and swallows the second insert's UNIQUE
    /// violation — but without an error: the outcome says which happened
    /// and returns the row kept. One statement (`INSERT … ON CONFLICT DO
    /// NOTHING`), so two saves at once keep exactly one.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a negative turn or latency, or a signal
    /// nested deeper than JSON allows to read back;
    /// [`Error::InvalidReference`] when the session does not exist.
    #[tracing::instrument(skip_all, fields(session_id = %new.session_id, turn_number = new.turn_number))]
    pub async fn save(&self, new: NewSignals) -> Result<SignalsSaved> {
        let model = signal_row(new)?;
        let txn = self.db.begin_write().await?;
        let inserted = insert_unless_saved(model.clone())
            .exec_without_returning(&*txn)
            .await?;
        let outcome = if inserted == 1 {
            SignalsSaved::Saved(model)
        } else {
            let kept = self
                .of_turn_in(&*txn, &model.session_id, model.turn_number)
                .await?
                .ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "turn {} of session {} has signals that could not be read back",
                        model.turn_number, model.session_id
                    ))
                })?;
            SignalsSaved::AlreadySaved(kept)
        };
        txn.commit().await?;
        Ok(outcome)
    }

    async fn of_turn_in(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        session_id: &SessionId,
        turn_number: i32,
    ) -> Result<Option<qualitative_signal::Model>> {
        Ok(qualitative_signal::Entity::find()
            .filter(qualitative_signal::Column::SessionId.eq(session_id))
            .filter(qualitative_signal::Column::TurnNumber.eq(turn_number))
            .one(conn)
            .await?)
    }

    /// The signals of one turn, if saved.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn of_turn(
        &self,
        session_id: &SessionId,
        turn_number: i32,
    ) -> Result<Option<qualitative_signal::Model>> {
        self.of_turn_in(self.db.connection(), session_id, turn_number)
            .await
    }

    /// Every turn's signals, in turn order (the Python
    /// `get_all_qualitative_signals`, as rows rather than a map by turn).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn all(&self, session_id: &SessionId) -> Result<Vec<qualitative_signal::Model>> {
        session_signals(self.db.connection(), session_id).await
    }
}

/// The session's signals, in turn order.
pub(crate) async fn session_signals(
    conn: &impl sea_orm::ConnectionTrait,
    session_id: &SessionId,
) -> Result<Vec<qualitative_signal::Model>> {
    Ok(qualitative_signal::Entity::find()
        .filter(qualitative_signal::Column::SessionId.eq(session_id))
        .order_by_asc(qualitative_signal::Column::TurnNumber)
        .all(conn)
        .await?)
}
