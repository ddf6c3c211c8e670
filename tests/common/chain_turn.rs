//! One turn of the benchmark's shape, shared by the test binaries that
//! include this file (`#[path]`): a user answer, four nodes chained by three
//! `leads_to` edges (each tagged `{"turn": t}`), scores, a cover of element
//! `e0` and the next question.

use interview_persistence::repositories::{
    NodeRef, TurnEdge, TurnNode, TurnRecord, TurnScores, TurnUtterance,
};
use serde_json::json;

/// The benchmark's coverage after turn `t`, t/100, at most 1 (a fraction).
pub fn coverage(t: i32) -> f64 {
    (f64::from(t) / 100.0).min(1.0)
}

/// Turn `t` of `session_id`, whose session has an element `e0`.
pub fn chain_turn(session_id: &str, t: i32) -> TurnRecord {
    TurnRecord {
        session_id: session_id.to_owned(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: "Because it is creamy, since I skip dairy, and it calms my mornings.".repeat(3),
            discourse_markers: vec!["because".into(), "since".into()],
        },
        nodes: (0..4)
            .map(|k| TurnNode {
                label: format!("n{t}_{k}"),
                node_type: "attribute".into(),
                confidence: 0.8,
                properties: json!({"turn": t}),
            })
            .collect(),
        edges: (0..3)
            .map(|k| TurnEdge {
                source: NodeRef::New(k),
                target: NodeRef::New(k + 1),
                edge_type: entity::kg_edge::EdgeType::LeadsTo,
                confidence: 0.7,
                properties: json!({"turn": t}),
            })
            .collect(),
        scores: TurnScores {
            coverage_score: coverage(t),
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: "deepen".into(),
            strategy_reasoning: None,
            scorer_details: json!({}),
        },
        covered_elements: vec![("e0".into(), NodeRef::New(0))],
        coverage_score: coverage(t),
        system_utterance: Some(TurnUtterance {
            text: "Why does that matter?".into(),
            discourse_markers: vec![],
        }),
    }
}
