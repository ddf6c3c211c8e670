//! SQLite rows read on the direct connections (`database::direct`)
//! decoded into the entity models: one decoder per entity, each column
//! found by its name ([`Layout`]), so a table whose physical column order
//! differs from the entity's (a column added by `ALTER TABLE`) reads the
//! same. The cell decoders are the database layer's; which column is which
//! field is the entity's, and so this module's.

use entity::session;
#[cfg(feature = "sqlite")]
use entity::{kg_edge, kg_node, scoring_history, utterance};
use sea_orm::DbErr;

use crate::database::WrittenRow;
#[cfg(feature = "sqlite")]
use crate::database::direct::DirectRow;
#[cfg(feature = "sqlite")]
use crate::database::direct::decode::{
    Arranged, Cells, Layout, enumerated, float, int32, json, optional_blob, optional_float,
    optional_text, optional_timestamp, required, text, timestamp,
};
#[cfg(feature = "sqlite")]
use entity::{Embedding, Stance};

/// The row a write returned as a session, when the statement returned
/// every column of one.
pub(crate) fn session_of(row: &WrittenRow) -> Result<session::Model, DbErr> {
    match row {
        WrittenRow::Pooled(row) => {
            <session::Model as sea_orm::FromQueryResult>::from_query_result(row, "")
        }
        #[cfg(feature = "sqlite")]
        WrittenRow::Direct(row) => returned_session(row),
    }
}

#[cfg(feature = "sqlite")]
fn returned_session(row: &DirectRow) -> Result<session::Model, DbErr> {
    let layout = Layout::of::<session::Entity>(row.columns())?;
    session(&Arranged::new(row, &layout))
}

/// A session row, columns in the entity's order.
#[cfg(feature = "sqlite")]
pub(crate) fn session<C: Cells + ?Sized>(row: &C) -> Result<session::Model, DbErr> {
    Ok(session::Model {
        id: text(row, 0, "id")?.into(),
        methodology: text(row, 1, "methodology")?,
        concept_id: text(row, 2, "concept_id")?,
        concept_name: text(row, 3, "concept_name")?,
        status: enumerated(row, 4, "status")?,
        config: required(json(row, 5, "config")?, "config")?,
        created_at: timestamp(row, 6, "created_at")?,
        updated_at: timestamp(row, 7, "updated_at")?,
        completed_at: optional_timestamp(row, 8, "completed_at")?,
        turn_count: int32(row, 9, "turn_count")?,
        coverage_score: optional_float(row, 10, "coverage_score")?,
        node_tracker_state: json(row, 11, "node_tracker_state")?,
        surface_velocity_peak: float(row, 12, "surface_velocity_peak")?,
        prev_surface_node_count: int32(row, 13, "prev_surface_node_count")?,
        canonical_velocity_peak: float(row, 14, "canonical_velocity_peak")?,
        prev_canonical_node_count: int32(row, 15, "prev_canonical_node_count")?,
        focus_history: required(json(row, 16, "focus_history")?, "focus_history")?,
    })
}

/// A node row, columns in the entity's order.
#[cfg(feature = "sqlite")]
pub(crate) fn node<C: Cells + ?Sized>(row: &C) -> Result<kg_node::Model, DbErr> {
    Ok(kg_node::Model {
        id: text(row, 0, "id")?.into(),
        session_id: text(row, 1, "session_id")?.into(),
        label: text(row, 2, "label")?,
        node_type: text(row, 3, "node_type")?,
        confidence: float(row, 4, "confidence")?,
        properties: json(row, 5, "properties")?,
        source_utterance_ids: required(
            json(row, 6, "source_utterance_ids")?,
            "source_utterance_ids",
        )?,
        recorded_at: timestamp(row, 7, "recorded_at")?,
        superseded_by: optional_text(row, 8, "superseded_by")?.map(Into::into),
        stance: stance(int32(row, 9, "stance")?)?,
        embedding: optional_blob(row, 10, "embedding")?
            .map(|bytes| embedding(&bytes))
            .transpose()?,
        // NULL where the Python system's ALTER added the column without
        // NOT NULL: no quotes.
        source_quotes: json(row, 11, "source_quotes")?.unwrap_or_default(),
    })
}

/// The stance stored as `value`.
#[cfg(feature = "sqlite")]
fn stance(value: i32) -> Result<Stance, DbErr> {
    Stance::from_i32(value)
        .ok_or_else(|| DbErr::Type(format!("column `stance`: {value} is not -1, 0 or 1")))
}

/// The embedding stored as `bytes`.
#[cfg(feature = "sqlite")]
fn embedding(bytes: &[u8]) -> Result<Embedding, DbErr> {
    Embedding::from_le_bytes(bytes).map_err(|err| DbErr::Type(format!("column `embedding`: {err}")))
}

/// An edge row, columns in the entity's order.
#[cfg(feature = "sqlite")]
pub(crate) fn edge<C: Cells + ?Sized>(row: &C) -> Result<kg_edge::Model, DbErr> {
    Ok(kg_edge::Model {
        id: text(row, 0, "id")?.into(),
        session_id: text(row, 1, "session_id")?.into(),
        source_node_id: text(row, 2, "source_node_id")?.into(),
        target_node_id: text(row, 3, "target_node_id")?.into(),
        edge_type: enumerated(row, 4, "edge_type")?,
        confidence: float(row, 5, "confidence")?,
        properties: json(row, 6, "properties")?,
        source_utterance_ids: required(
            json(row, 7, "source_utterance_ids")?,
            "source_utterance_ids",
        )?,
        recorded_at: timestamp(row, 8, "recorded_at")?,
    })
}

/// An utterance row, columns in the entity's order.
#[cfg(feature = "sqlite")]
pub(crate) fn utterance<C: Cells + ?Sized>(row: &C) -> Result<utterance::Model, DbErr> {
    Ok(utterance::Model {
        id: text(row, 0, "id")?.into(),
        session_id: text(row, 1, "session_id")?.into(),
        turn_number: int32(row, 2, "turn_number")?,
        speaker: enumerated(row, 3, "speaker")?,
        text: text(row, 4, "text")?,
        discourse_markers: json(row, 5, "discourse_markers")?,
        created_at: timestamp(row, 6, "created_at")?,
    })
}

/// A scoring row, columns in the entity's order.
#[cfg(feature = "sqlite")]
pub(crate) fn scores<C: Cells + ?Sized>(row: &C) -> Result<scoring_history::Model, DbErr> {
    Ok(scoring_history::Model {
        id: text(row, 0, "id")?.into(),
        session_id: text(row, 1, "session_id")?.into(),
        turn_number: int32(row, 2, "turn_number")?,
        coverage_score: optional_float(row, 3, "coverage_score")?,
        depth_score: float(row, 4, "depth_score")?,
        saturation_score: float(row, 5, "saturation_score")?,
        novelty_score: optional_float(row, 6, "novelty_score")?,
        richness_score: optional_float(row, 7, "richness_score")?,
        strategy_selected: text(row, 8, "strategy_selected")?,
        strategy_reasoning: optional_text(row, 9, "strategy_reasoning")?,
        scorer_details: json(row, 10, "scorer_details")?,
        created_at: timestamp(row, 11, "created_at")?,
    })
}
