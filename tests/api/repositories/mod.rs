//! Every repository call, with its error cases, on both backends: one file
//! per repository, as in `src/repositories/`, and the builders they share.

use entity::concept_element::Priority;
use entity::utterance::Speaker;
use interview_persistence::entity::SessionId;
use interview_persistence::repositories::{
    NewConceptElement, NewScores, NewSession, NewUtterance, TurnScores,
};
use interview_persistence::{EntityKind, Error};
use serde_json::json;

mod concept_elements;
mod erasure_hostile;
mod erasure_scrub;
mod graph;
mod inputs;
mod pipeline;
mod python_ported;
mod scoring;
mod sessions;
mod turns;
mod unreadable;
mod utterances;

pub fn new_session() -> NewSession {
    NewSession {
        id: None,
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        config: json!({"max_turns": 50}),
    }
}

pub fn element(id: &str, priority: Priority) -> NewConceptElement {
    NewConceptElement {
        element_id: id.into(),
        label: format!("Element {id}"),
        element_type: "attribute".into(),
        priority,
    }
}

fn utterance(session_id: &SessionId, turn: i32, speaker: Speaker, text: &str) -> NewUtterance {
    NewUtterance {
        session_id: session_id.into(),
        turn_number: turn,
        speaker,
        text: text.into(),
        discourse_markers: vec!["because".into()],
    }
}

fn scores(session_id: &SessionId, turn: i32, strategy: &str) -> NewScores {
    NewScores {
        session_id: session_id.into(),
        turn_number: turn,
        scores: TurnScores {
            coverage_score: f64::from(turn) / 100.0,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: strategy.into(),
            strategy_reasoning: None,
            scorer_details: json!({}),
        },
    }
}

fn is_not_found(result: &Result<impl std::fmt::Debug, Error>, entity: EntityKind) -> bool {
    matches!(result, Err(Error::NotFound { entity: e, .. }) if *e == entity)
}
