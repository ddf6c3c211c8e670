//! The one set of turn builders, shared (through `#[path]`) by the test
//! binaries and the turn benchmark: the benchmark's turn of
//! `shared/BENCHMARKS.md`, the same turn covering `e0` for tests whose
//! sessions have that element only, and a turn of chosen node labels.

#![allow(dead_code)] // each includer uses some of them

use interview_persistence::entity::SessionId;
use interview_persistence::entity::kg_edge::EdgeType;
use interview_persistence::repositories::{
    NodeRef, TurnEdge, TurnNode, TurnRecord, TurnScores, TurnUtterance,
};
use serde_json::json;

/// A ~200-character answer.
pub const ANSWER: &str = "I usually order it because it tastes creamy without being heavy, \
and since I stopped drinking dairy it is the one coffee that still feels like a treat; \
it makes the morning feel calmer and more my own.";

/// The node types of one turn, in chain order.
pub const NODE_TYPES: [&str; 4] = [
    "attribute",
    "functional_consequence",
    "psychosocial_consequence",
    "value",
];

/// The benchmark's coverage after turn `t`, t/100, at most 1 (a fraction).
pub fn coverage(t: i32) -> f64 {
    (f64::from(t) / 100.0).min(1.0)
}

/// Turn `t` of the benchmark workload: the user's answer, four nodes
/// (`n{t}_{k}`, one of each [`NODE_TYPES`], properties `{"turn": t}`)
/// chained by three `leads_to` edges, the turn's scores, a cover of
/// element `e{t mod 10}` by the first node, and the next question.
pub fn benchmark_turn(session_id: &SessionId, t: i32) -> TurnRecord {
    TurnRecord {
        session_id: session_id.clone(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: ANSWER.into(),
            discourse_markers: vec!["because".into(), "since".into()],
        },
        nodes: NODE_TYPES
            .iter()
            .enumerate()
            .map(|(k, node_type)| TurnNode {
                label: format!("n{t}_{k}"),
                node_type: (*node_type).into(),
                confidence: 0.8,
                properties: json!({"turn": t}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            })
            .collect(),
        edges: (0..3)
            .map(|k| TurnEdge {
                source: NodeRef::New(k),
                target: NodeRef::New(k + 1),
                edge_type: EdgeType::LeadsTo,
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
            strategy_reasoning: Some("the answer named a consequence worth laddering".into()),
            scorer_details: json!({"depth": {"chain": 3}, "novelty": {"new_nodes": 4}}),
        },
        covered_elements: vec![(format!("e{}", t % 10).into(), NodeRef::New(0))],
        coverage_score: coverage(t),
        system_utterance: Some(TurnUtterance {
            text: "And why does feeling calmer in the morning matter to you?".into(),
            discourse_markers: vec![],
        }),
        node_tracker_state: None,
        config_patch: None,
        velocity: None,
        focus: None,
        slot_mappings: Vec::new(),
        canonical_edges: Vec::new(),
        signals: None,
    }
}

/// [`benchmark_turn`] covering `e0`, for sessions that have that element.
pub fn chain_turn(session_id: &SessionId, t: i32) -> TurnRecord {
    TurnRecord {
        covered_elements: vec![("e0".into(), NodeRef::New(0))],
        ..benchmark_turn(session_id, t)
    }
}

/// Turn `t` with one `attribute` node per label, chained by `leads_to`
/// edges, covering `e0` by the first node when there is one; coverage
/// t/10.
pub fn labeled_turn(session_id: &SessionId, t: i32, labels: &[&str]) -> TurnRecord {
    TurnRecord {
        session_id: session_id.into(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: format!("answer {t}"),
            discourse_markers: vec!["because".into()],
        },
        nodes: labels
            .iter()
            .map(|label| TurnNode {
                label: (*label).into(),
                node_type: "attribute".into(),
                confidence: 0.8,
                properties: json!({"turn": t}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            })
            .collect(),
        edges: (1..labels.len())
            .map(|k| TurnEdge {
                source: NodeRef::New(k - 1),
                target: NodeRef::New(k),
                edge_type: EdgeType::LeadsTo,
                confidence: 0.7,
                properties: json!({}),
            })
            .collect(),
        scores: TurnScores {
            coverage_score: f64::from(t) / 10.0,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: "deepen".into(),
            strategy_reasoning: Some("why not".into()),
            scorer_details: json!({"t": t}),
        },
        covered_elements: if labels.is_empty() {
            vec![]
        } else {
            vec![("e0".into(), NodeRef::New(0))]
        },
        coverage_score: f64::from(t) / 10.0,
        system_utterance: Some(TurnUtterance {
            text: format!("question {}", t + 1),
            discourse_markers: vec![],
        }),
        node_tracker_state: None,
        config_patch: None,
        velocity: None,
        focus: None,
        slot_mappings: Vec::new(),
        canonical_edges: Vec::new(),
        signals: None,
    }
}
