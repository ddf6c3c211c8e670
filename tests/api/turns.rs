//! Whole turns: recorded atomically, read in one snapshot, and safe under
//! concurrent read-then-write calls.

use std::sync::Arc;

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use interview_persistence::repositories::{NewNode, NodeRef, Repositories, TurnEdge};
use interview_persistence::{Database, Error};
use serde_json::json;

use crate::fixtures::{count, exec};
use crate::on_both_backends;
use crate::repositories::{element, new_session};
use crate::turn_builders::labeled_turn;

on_both_backends!(
    a_turn_lands_whole_and_returns_its_ids,
    a_turn_that_fails_midway_leaves_no_row_behind,
    a_turn_for_a_missing_session_or_element_is_refused_and_writes_nothing,
    a_turn_naming_nodes_wrongly_is_refused_before_any_write,
    the_turn_context_holds_what_planning_the_next_question_needs,
    concurrent_read_then_write_calls_lose_no_update,
    turns_committed_together_keep_their_own_outcomes,
);

async fn started(repos: &Repositories) -> String {
    let (session, _) = repos
        .sessions
        .create_with_elements(
            new_session(),
            vec![element("e0", Priority::High), element("e1", Priority::Low)],
        )
        .await
        .expect("start a session");
    session.id
}

/// Rows of each table that belong to `turn` of the session.
async fn rows_of_turn(db: &Database, session_id: &str, turn: i32) -> [i64; 3] {
    [
        count(db, &format!("utterances WHERE session_id = '{session_id}' AND turn_number = {turn}")).await,
        count(db, &format!("scoring_history WHERE session_id = '{session_id}' AND turn_number = {turn}")).await,
        count(db, &format!("kg_nodes WHERE session_id = '{session_id}' AND properties IS NOT NULL AND recorded_at IS NOT NULL AND label LIKE 't{turn}-%'")).await,
    ]
}

async fn a_turn_lands_whole_and_returns_its_ids(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let recorded = repos
        .turns
        .record_turn(labeled_turn(&session_id, 1, &["t1-a", "t1-b", "t1-c"]))
        .await
        .expect("record");
    assert_eq!(recorded.node_ids.len(), 3);
    assert_eq!(recorded.edge_ids.len(), 2);
    assert_eq!(recorded.newly_covered, ["e0"]);

    let transcript = repos
        .utterances
        .transcript(&session_id)
        .await
        .expect("transcript");
    assert_eq!(transcript.len(), 2);
    assert_eq!(
        (transcript[0].id.as_str(), transcript[0].speaker),
        (recorded.user_utterance_id.as_str(), Speaker::User)
    );
    assert_eq!(
        Some(&transcript[1].id),
        recorded.system_utterance_id.as_ref()
    );
    let nodes = repos.graph.current_nodes(&session_id).await.expect("nodes");
    assert_eq!(
        nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        recorded.node_ids
    );
    for node in &nodes {
        assert_eq!(
            node.source_utterance_ids.0,
            vec![recorded.user_utterance_id.clone()],
            "provenance"
        );
    }
    let edges = repos.graph.edges(&session_id).await.expect("edges");
    assert_eq!(
        edges.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        recorded.edge_ids
    );
    assert_eq!(
        (
            edges[0].source_node_id.as_str(),
            edges[0].target_node_id.as_str()
        ),
        (recorded.node_ids[0].as_str(), recorded.node_ids[1].as_str())
    );
    let scores = repos
        .scoring
        .latest(&session_id)
        .await
        .expect("latest")
        .expect("scores");
    assert_eq!(scores.id, recorded.scores_id);
    let session = repos.sessions.get(&session_id).await.expect("session");
    assert_eq!((session.turn_count, session.coverage_score), (1, Some(0.1)));
    let elements = repos
        .concept_elements
        .elements(&session_id)
        .await
        .expect("elements");
    assert_eq!(
        elements[0].covered_by_node_id.as_ref(),
        Some(&recorded.node_ids[0])
    );

    // A later turn covering the same element keeps the first cover, and may
    // link to an existing node.
    let mut second = labeled_turn(&session_id, 2, &["t2-a"]);
    second.edges.push(TurnEdge {
        source: NodeRef::Existing(recorded.node_ids[2].clone()),
        target: NodeRef::New(0),
        edge_type: EdgeType::LeadsTo,
        confidence: 0.6,
        properties: json!({}),
    });
    second
        .covered_elements
        .push(("e1".into(), NodeRef::Existing(recorded.node_ids[1].clone())));
    second.system_utterance = None;
    let recorded_2 = repos
        .turns
        .record_turn(second)
        .await
        .expect("record turn 2");
    assert_eq!(recorded_2.newly_covered, ["e1"]);
    assert_eq!(recorded_2.system_utterance_id, None);
    let elements = repos
        .concept_elements
        .elements(&session_id)
        .await
        .expect("elements");
    assert_eq!(
        elements[0].covered_by_node_id.as_ref(),
        Some(&recorded.node_ids[0]),
        "first cover kept"
    );
    assert_eq!(
        elements[1].covered_by_node_id.as_ref(),
        Some(&recorded.node_ids[1])
    );
    assert_eq!(
        repos
            .sessions
            .get(&session_id)
            .await
            .expect("session")
            .turn_count,
        2
    );
}

async fn a_turn_that_fails_midway_leaves_no_row_behind(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    repos
        .turns
        .record_turn(labeled_turn(&session_id, 1, &["t1-a", "t1-b"]))
        .await
        .expect("turn 1");
    let before = [
        count(db, "utterances").await,
        count(db, "kg_nodes").await,
        count(db, "kg_edges").await,
        count(db, "scoring_history").await,
        count(db, "concept_elements WHERE is_covered").await,
    ];

    // Turn 2's third node repeats a current node of turn 1: the session
    // update, the utterances and two nodes are written before it fails.
    let mut clashing = labeled_turn(&session_id, 2, &["t2-a", "t2-b", "t1-a"]);
    clashing.covered_elements = vec![("e1".into(), NodeRef::New(0))];
    let refused = repos.turns.record_turn(clashing).await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    assert_eq!(rows_of_turn(db, &session_id, 2).await, [0, 0, 0]);

    // Recording turn 1 again fails at its scores, after its nodes.
    let refused = repos
        .turns
        .record_turn(labeled_turn(&session_id, 1, &["t1-x"]))
        .await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");

    let after = [
        count(db, "utterances").await,
        count(db, "kg_nodes").await,
        count(db, "kg_edges").await,
        count(db, "scoring_history").await,
        count(db, "concept_elements WHERE is_covered").await,
    ];
    assert_eq!(after, before, "a refused turn left rows behind");
    let session = repos.sessions.get(&session_id).await.expect("session");
    assert_eq!(
        (session.turn_count, session.coverage_score),
        (1, Some(0.1)),
        "metrics rolled back"
    );

    // The database is still writable, and the turn goes through once fixed.
    repos
        .turns
        .record_turn(labeled_turn(&session_id, 2, &["t2-a", "t2-b"]))
        .await
        .expect("turn 2, fixed");
    assert_eq!(rows_of_turn(db, &session_id, 2).await, [2, 1, 2]);
}

async fn a_turn_for_a_missing_session_or_element_is_refused_and_writes_nothing(db: &Database) {
    let repos = Repositories::new(db);
    let refused = repos
        .turns
        .record_turn(labeled_turn("no-such-session", 1, &["a"]))
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::NotFound {
                entity: "sessions",
                ..
            })
        ),
        "{refused:?}"
    );

    let session_id = started(&repos).await;
    let mut unknown_element = labeled_turn(&session_id, 1, &["t1-a"]);
    unknown_element.covered_elements = vec![("e9".into(), NodeRef::New(0))];
    let refused = repos.turns.record_turn(unknown_element).await;
    assert!(
        matches!(
            &refused,
            Err(Error::NotFound {
                entity: "concept_elements",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(rows_of_turn(db, &session_id, 1).await, [0, 0, 0]);
    assert_eq!(
        count(db, "concept_elements").await,
        2,
        "the guard inserted nothing"
    );
    assert_eq!(
        repos
            .sessions
            .get(&session_id)
            .await
            .expect("session")
            .turn_count,
        0
    );
}

async fn a_turn_naming_nodes_wrongly_is_refused_before_any_write(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let other = repos
        .sessions
        .create(new_session())
        .await
        .expect("other session");
    let foreign = repos
        .graph
        .create_node(NewNode::new(&other.id, "x", "attribute"))
        .await
        .expect("node");

    let mut out_of_range = labeled_turn(&session_id, 1, &["t1-a"]);
    out_of_range.edges.push(TurnEdge {
        source: NodeRef::New(0),
        target: NodeRef::New(5),
        edge_type: EdgeType::LeadsTo,
        confidence: 0.5,
        properties: json!({}),
    });
    assert!(matches!(
        repos.turns.record_turn(out_of_range).await,
        Err(Error::InvalidInput(_))
    ));

    let mut cross = labeled_turn(&session_id, 1, &["t1-a"]);
    cross.covered_elements = vec![("e0".into(), NodeRef::Existing(foreign.id.clone()))];
    assert!(matches!(
        repos.turns.record_turn(cross).await,
        Err(Error::SessionMismatch(_))
    ));

    let mut missing = labeled_turn(&session_id, 1, &["t1-a"]);
    missing.edges.push(TurnEdge {
        source: NodeRef::Existing("nope".into()),
        target: NodeRef::New(0),
        edge_type: EdgeType::LeadsTo,
        confidence: 0.5,
        properties: json!({}),
    });
    assert!(matches!(
        repos.turns.record_turn(missing).await,
        Err(Error::NotFound {
            entity: "kg_nodes",
            ..
        })
    ));

    let mut bad_confidence = labeled_turn(&session_id, 1, &["t1-a"]);
    bad_confidence.nodes[0].confidence = f64::NAN;
    assert!(matches!(
        repos.turns.record_turn(bad_confidence).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        repos
            .turns
            .record_turn(labeled_turn(&session_id, 0, &[]))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(rows_of_turn(db, &session_id, 1).await, [0, 0, 0]);
}

async fn the_turn_context_holds_what_planning_the_next_question_needs(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    for t in 1..=6 {
        let labels: Vec<String> = (0..4).map(|k| format!("t{t}-{k}")).collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        repos
            .turns
            .record_turn(labeled_turn(&session_id, t, &labels))
            .await
            .expect("record");
    }
    let context = repos.turns.context(&session_id, 10).await.expect("context");
    assert_eq!(context.session.turn_count, 6);
    assert_eq!(context.current_nodes.len(), 24);
    assert_eq!(context.edges.len(), 18);
    assert_eq!(
        context
            .scoring_history
            .iter()
            .map(|s| s.turn_number)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(context.recent_utterances.len(), 10);
    let last = context.recent_utterances.last().expect("an utterance");
    assert_eq!((last.turn_number, last.speaker), (6, Speaker::System));
    assert_eq!(context.recent_utterances[0].turn_number, 2);
    assert!(matches!(
        repos.turns.context("nope", 10).await,
        Err(Error::NotFound {
            entity: "sessions",
            ..
        })
    ));
}

/// 16 tasks × 100 read-then-write calls on one node's provenance (each call
/// reads the JSON array and writes it back longer): none may be lost, and
/// none may fail with a busy error.
async fn concurrent_read_then_write_calls_lose_no_update(db: &Database) {
    const TASKS: usize = 16;
    const CALLS: usize = 100;
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let node = repos
        .graph
        .create_node(NewNode::new(&session_id, "hub", "attribute"))
        .await
        .expect("node");
    // One utterance per call, written in one statement.
    let values: Vec<String> = (1..=TASKS * CALLS)
        .map(|i| format!("('u{i}', '{session_id}', {i}, 'user', 'answer {i}')"))
        .collect();
    exec(
        db,
        &format!(
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES {}",
            values.join(", ")
        ),
    )
    .await
    .expect("utterances");

    let repos = Arc::new(repos);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let repos = Arc::clone(&repos);
        let node_id = node.id.clone();
        tasks.spawn(async move {
            for call in 0..CALLS {
                let utterance = format!("u{}", task * CALLS + call + 1);
                repos
                    .graph
                    .add_node_provenance(&node_id, &utterance)
                    .await?;
            }
            Ok::<(), Error>(())
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(err) = done.expect("the task ran") {
            failures.push(err);
        }
    }
    assert!(failures.is_empty(), "calls failed: {failures:?}");
    let node = repos.graph.node(&node.id).await.expect("node");
    assert_eq!(
        node.source_utterance_ids.len(),
        TASKS * CALLS,
        "updates were lost"
    );
}

/// Turns recorded at the same moment may be committed as one group on
/// SQLite: one bad turn among them fails alone, the others land whole.
async fn turns_committed_together_keep_their_own_outcomes(db: &Database) {
    let repos = Arc::new(Repositories::new(db));
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let session_id = started(&repos).await;
        repos
            .turns
            .record_turn(labeled_turn(&session_id, 1, &["t1-a", "t1-b"]))
            .await
            .expect("turn 1");
        sessions.push(session_id);
    }
    for round in 0..5 {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, session_id) in sessions.iter().cloned().enumerate() {
            let repos = Arc::clone(&repos);
            // Session 3 repeats turn 1 (its scores exist): refused.
            let t = if i == 3 { 1 } else { round + 2 };
            tasks.spawn(async move {
                let labels = [
                    format!("t{t}-a"),
                    format!("t{t}-b"),
                    format!("t{t}-r{round}"),
                ];
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                (
                    i,
                    repos
                        .turns
                        .record_turn(labeled_turn(&session_id, t, &labels))
                        .await,
                )
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, outcome) = done.expect("task");
            if i == 3 {
                assert!(
                    matches!(outcome, Err(Error::Conflict(_))),
                    "the bad turn: {outcome:?}"
                );
            } else {
                let recorded = outcome.expect("a good turn must land");
                assert_eq!(recorded.node_ids.len(), 3);
            }
        }
    }
    for (i, session_id) in sessions.iter().enumerate() {
        let turns = if i == 3 { 1 } else { 6 };
        let context = repos.turns.context(session_id, 100).await.expect("context");
        assert_eq!(context.scoring_history.len(), turns, "session {i}");
        assert_eq!(
            context.current_nodes.len(),
            2 + 3 * (turns - 1),
            "session {i}"
        );
        assert_eq!(context.recent_utterances.len(), 2 * turns, "session {i}");
    }
}
