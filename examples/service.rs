//! The README's example: a service starting up, recording one turn and
//! reading what planning the next question needs.
//!
//! `cargo run --example service` (uses `DATABASE_URL`, `DATABASE_PATH` or
//! `data/interview.db`).

use interview_persistence::entity::{Stance, concept_element::Priority, kg_edge::EdgeType};
use interview_persistence::repositories::{
    NewConceptElement, NewSession, NodeRef, Repositories, TurnEdge, TurnNode, TurnRecord,
    TurnScores, TurnUtterance,
};
use interview_persistence::{ConflictKind, DatabaseConfig, Error, check_health, init_database};
use serde_json::json;

#[tokio::main]
async fn main() -> interview_persistence::Result<()> {
    // Once at start-up: connect and apply pending migrations (idempotent).
    let db = init_database(&DatabaseConfig::from_env()?).await?;
    // Cheap to clone: hand a clone to each request handler.
    let repos = Repositories::new(&db);

    let (session, _) = repos
        .sessions
        .create_with_elements(
            NewSession {
                id: None,
                methodology: "means_end_chain".into(),
                concept_id: "oat-milk".into(),
                concept_name: "Oat milk latte".into(),
                config: json!({"max_turns": 20}),
            },
            vec![NewConceptElement {
                element_id: "e0".into(),
                label: "Taste".into(),
                element_type: "attribute".into(),
                priority: Priority::High,
            }],
        )
        .await?;

    // Everything one turn produces, in ONE transaction: all of it or none.
    let answer = TurnUtterance {
        text: "Because it is creamy…".into(),
        discourse_markers: vec!["because".into()],
    };
    let scores = TurnScores {
        coverage_score: 0.1,
        depth_score: 0.5,
        saturation_score: 0.1,
        novelty_score: Some(0.9),
        richness_score: None,
        strategy_selected: "deepen".into(),
        strategy_reasoning: None,
        scorer_details: json!({}),
    };
    let turn = TurnRecord {
        nodes: vec![
            TurnNode {
                source_quotes: vec!["it is creamy".into()],
                stance: Stance::Positive,
                ..TurnNode::new("creamy", "attribute", 0.8)
            },
            TurnNode::new("indulgence", "value", 0.7),
        ],
        edges: vec![TurnEdge {
            source: NodeRef::New(0),
            target: NodeRef::New(1),
            edge_type: EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({}),
        }],
        covered_elements: vec![("e0".into(), NodeRef::New(0))],
        system_utterance: Some(TurnUtterance {
            text: "Why does that matter to you?".into(),
            discourse_markers: vec![],
        }),
        // The Python pipeline's per-turn state rides in the same
        // transaction: velocity, focus, tracker, slot mappings, canonical
        // edges, qualitative signals, a config merge.
        config_patch: json!({"metadata": {"llm_usage": {"tokens": 812}}})
            .as_object()
            .cloned(),
        ..TurnRecord::new(&session.id, 1, answer, scores, 0.1)
    };
    match repos.turns.record_turn(turn).await {
        Ok(recorded) => println!("nodes {:?}", recorded.node_ids),
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateTurn { .. },
            ..
        }) => println!("turn 1 was recorded already"),
        Err(other) => return Err(other),
    }

    // What planning the next question reads, in one snapshot.
    let context = repos.turns.context(&session.id, 10).await?;
    println!("{} current nodes", context.current_nodes.len());

    // For a health endpoint: never fails, serialises to JSON.
    // (a health endpoint answers 503 unless `is_healthy()`: never compare
    // the status text)
    let report = check_health(&db).await;
    let code = if report.is_healthy() { 200 } else { 503 };
    println!(
        "{code} {}",
        serde_json::to_string(&report).unwrap_or_default()
    );
    Ok(())
}
