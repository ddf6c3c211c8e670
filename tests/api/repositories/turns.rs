//! Whole turns (`src/repositories/turns.rs`): recorded atomically, read in
//! one snapshot, safe under concurrent read-then-write calls; every float
//! checked, the turn count never going back, hostile values stored as data.

use interview_persistence::entity::SessionId;
use std::sync::Arc;

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewEdge, NewNode, NewScores, NewSession, NewUtterance, NodeRef, NodeUpdate, Repositories,
    TurnEdge, TurnRecord, TurnScores,
};
use interview_persistence::{ConflictKind, Database, EntityKind, Error};
use serde_json::json;

use crate::fixtures::{count, exec};
use crate::on_both_backends;
use crate::turn_builders::{chain_turn, labeled_turn};

use super::{element, new_session};

on_both_backends!(
    an_edge_a_turn_repeats_is_refused_as_a_duplicate_edge,
    a_turn_lands_whole_and_returns_its_ids,
    a_turn_that_fails_midway_leaves_no_row_behind,
    a_turn_for_a_missing_session_or_element_is_refused_and_writes_nothing,
    a_turn_naming_nodes_wrongly_is_refused_before_any_write,
    the_turn_context_holds_what_planning_the_next_question_needs,
    concurrent_read_then_write_calls_lose_no_update,
    nan_and_infinite_scores_are_refused_before_any_write,
    scores_outside_zero_to_one_are_refused,
    the_turn_count_is_the_highest_turn_recorded_whatever_the_order,
    turns_recorded_concurrently_leave_the_highest_turn_count,
    hostile_values_are_stored_as_data,
    json_nested_too_deep_is_refused_clearly,
    limits_above_i64_max_read_everything_instead_of_panicking,
    a_turn_whose_system_question_alone_exists_is_a_duplicate_utterance,
    json_that_must_be_an_object_refuses_anything_else,
    duplicates_within_one_turn_are_named,
);

/// The turn as it is, and with extras that write the session's row (a
/// tracker state): on SQLite the two lay out the turn's statements
/// differently, and a conflict must be named the same in both.
fn with_and_without_session_extras(turn: TurnRecord) -> [TurnRecord; 2] {
    let mut with_extras = turn.clone();
    with_extras.node_tracker_state = Some(json!({"states": {}}));
    [turn, with_extras]
}

async fn started(repos: &Repositories) -> String {
    let (session, _) = repos
        .sessions
        .create_with_elements(
            new_session(),
            vec![element("e0", Priority::High), element("e1", Priority::Low)],
        )
        .await
        .expect("start a session");
    session.id.to_string()
}

/// Rows of each table that belong to `turn` of the session.
async fn rows_of_turn(db: &Database, session_id: &SessionId, turn: i32) -> [i64; 3] {
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
        .record_turn(labeled_turn(
            &session_id.as_str().into(),
            1,
            &["t1-a", "t1-b", "t1-c"],
        ))
        .await
        .expect("record");
    assert_eq!(recorded.node_ids.len(), 3);
    assert_eq!(recorded.edge_ids.len(), 2);
    assert_eq!(recorded.newly_covered, ["e0"]);

    let transcript = repos
        .utterances
        .transcript(&session_id.as_str().into())
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
    let nodes = repos
        .graph
        .current_nodes(&session_id.as_str().into())
        .await
        .expect("nodes");
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
    let edges = repos
        .graph
        .edges(&session_id.as_str().into())
        .await
        .expect("edges");
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
        .latest(&session_id.as_str().into())
        .await
        .expect("latest")
        .expect("scores");
    assert_eq!(scores.id, recorded.scores_id);
    let session = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    assert_eq!((session.turn_count, session.coverage_score), (1, Some(0.1)));
    let elements = repos
        .concept_elements
        .elements(&session_id.as_str().into())
        .await
        .expect("elements");
    assert_eq!(
        elements[0].covered_by_node_id.as_ref(),
        Some(&recorded.node_ids[0])
    );

    // A later turn covering the same element keeps the first cover, and may
    // link to an existing node.
    let mut second = labeled_turn(&session_id.as_str().into(), 2, &["t2-a"]);
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
        .elements(&session_id.as_str().into())
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
        crate::fixtures::turn_count(&repos, &session_id.as_str().into()).await,
        2
    );
}

async fn a_turn_that_fails_midway_leaves_no_row_behind(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    repos
        .turns
        .record_turn(labeled_turn(
            &session_id.as_str().into(),
            1,
            &["t1-a", "t1-b"],
        ))
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
    let mut clashing = labeled_turn(&session_id.as_str().into(), 2, &["t2-a", "t2-b", "t1-a"]);
    clashing.covered_elements = vec![("e1".into(), NodeRef::New(0))];
    let refused = repos.turns.record_turn(clashing).await;
    assert!(
        matches!(
            &refused,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateCurrentNode { session_id: s, label, node_type },
                ..
            }) if *s == session_id && label == "t1-a" && node_type == "attribute"
        ),
        "{refused:?}"
    );
    says_no_driver_text(&refused);
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 2).await,
        [0, 0, 0]
    );

    // Recording turn 1 again fails at its user utterance, the batch's
    // first insert after the session update.
    let refused = repos
        .turns
        .record_turn(labeled_turn(&session_id.as_str().into(), 1, &["t1-x"]))
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateTurn { session_id: s, turn_number: 1 },
                ..
            }) if *s == session_id
        ),
        "{refused:?}"
    );
    says_no_driver_text(&refused);
    let Err(err) = &refused else { unreachable!() };
    assert!(
        std::error::Error::source(err).is_some(),
        "the database error stays as the source, for logs"
    );

    let after = [
        count(db, "utterances").await,
        count(db, "kg_nodes").await,
        count(db, "kg_edges").await,
        count(db, "scoring_history").await,
        count(db, "concept_elements WHERE is_covered").await,
    ];
    assert_eq!(after, before, "a refused turn left rows behind");
    let session = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    assert_eq!(
        (session.turn_count, session.coverage_score),
        (1, Some(0.1)),
        "metrics rolled back"
    );

    // The database is still writable, and the turn goes through once fixed.
    repos
        .turns
        .record_turn(labeled_turn(
            &session_id.as_str().into(),
            2,
            &["t2-a", "t2-b"],
        ))
        .await
        .expect("turn 2, fixed");
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 2).await,
        [2, 1, 2]
    );
}

/// A refusal's message names the rule, never the driver's words.
fn says_no_driver_text<T: std::fmt::Debug>(refused: &Result<T, Error>) {
    let message = refused.as_ref().expect_err("refused").to_string();
    for driver_words in [
        "UNIQUE",
        "constraint",
        "duplicate key",
        "SQLSTATE",
        "INSERT",
    ] {
        assert!(
            !message.contains(driver_words),
            "`{driver_words}` in the message: {message}"
        );
    }
}

async fn an_edge_a_turn_repeats_is_refused_as_a_duplicate_edge(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let recorded = repos
        .turns
        .record_turn(labeled_turn(
            &session_id.as_str().into(),
            1,
            &["t1-a", "t1-b"],
        ))
        .await
        .expect("turn 1");
    let (a, b) = (&recorded.node_ids[0], &recorded.node_ids[1]);
    let mut again = labeled_turn(&session_id.as_str().into(), 2, &["t2-a"]);
    again.edges = vec![TurnEdge {
        source: NodeRef::Existing(a.clone()),
        target: NodeRef::Existing(b.clone()),
        edge_type: EdgeType::LeadsTo,
        confidence: 0.5,
        properties: json!({}),
    }];
    let refused = repos.turns.record_turn(again).await;
    assert!(
        matches!(
            &refused,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateEdge { source_node_id, target_node_id, edge_type },
                ..
            }) if source_node_id == a && target_node_id == b && edge_type == "leads_to"
        ),
        "{refused:?}"
    );
    says_no_driver_text(&refused);
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 2).await,
        [0, 0, 0]
    );
}

async fn a_turn_for_a_missing_session_or_element_is_refused_and_writes_nothing(db: &Database) {
    let repos = Repositories::new(db);
    let refused = repos
        .turns
        .record_turn(labeled_turn(&"no-such-session".into(), 1, &["a"]))
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::NotFound {
                entity: EntityKind::Session,
                ..
            })
        ),
        "{refused:?}"
    );

    let session_id = started(&repos).await;
    let mut unknown_element = labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]);
    unknown_element.covered_elements = vec![("e9".into(), NodeRef::New(0))];
    let refused = repos.turns.record_turn(unknown_element).await;
    assert!(
        matches!(
            &refused,
            Err(Error::NotFound {
                entity: EntityKind::ConceptElement,
                id,
            }) if id == "e9"
        ),
        "{refused:?}"
    );
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 1).await,
        [0, 0, 0]
    );
    assert_eq!(
        count(db, "concept_elements").await,
        2,
        "the guard inserted nothing"
    );
    assert_eq!(
        crate::fixtures::turn_count(&repos, &session_id.as_str().into()).await,
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

    let mut out_of_range = labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]);
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

    let mut cross = labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]);
    cross.covered_elements = vec![("e0".into(), NodeRef::Existing(foreign.id.clone()))];
    assert!(matches!(
        repos.turns.record_turn(cross).await,
        Err(Error::SessionMismatch(_))
    ));

    let mut missing = labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]);
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
            entity: EntityKind::Node,
            ..
        })
    ));

    let mut bad_confidence = labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]);
    bad_confidence.nodes[0].confidence = f64::NAN;
    assert!(matches!(
        repos.turns.record_turn(bad_confidence).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        repos
            .turns
            .record_turn(labeled_turn(&session_id.as_str().into(), 0, &[]))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 1).await,
        [0, 0, 0]
    );
}

async fn the_turn_context_holds_what_planning_the_next_question_needs(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    for t in 1..=6 {
        let labels: Vec<String> = (0..4).map(|k| format!("t{t}-{k}")).collect();
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        repos
            .turns
            .record_turn(labeled_turn(&session_id.as_str().into(), t, &labels))
            .await
            .expect("record");
    }
    let context = repos
        .turns
        .context(&session_id.as_str().into(), 10)
        .await
        .expect("context");
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
        repos.turns.context(&"nope".into(), 10).await,
        Err(Error::NotFound {
            entity: EntityKind::Session,
            ..
        })
    ));
}

/// Only the system's question of turn 1 exists (saved on its own): the
/// turn was not recorded, so recording it is refused as a duplicate
/// utterance of the system, not as a duplicate turn; once its scores
/// exist too, it is a duplicate turn.
async fn a_turn_whose_system_question_alone_exists_is_a_duplicate_utterance(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    repos
        .utterances
        .save(NewUtterance {
            session_id: session_id.clone().into(),
            turn_number: 1,
            speaker: Speaker::System,
            text: "What do you like about it?".into(),
            discourse_markers: vec![],
        })
        .await
        .expect("the question");
    let turn_one =
        || with_and_without_session_extras(labeled_turn(&session_id.as_str().into(), 1, &["t1-a"]));
    for turn in turn_one() {
        let refused = repos.turns.record_turn(turn).await;
        assert!(
            matches!(
                &refused,
                Err(Error::Conflict {
                    conflict: ConflictKind::DuplicateUtterance { session_id: s, turn_number: 1, speaker },
                    ..
                }) if *s == session_id && speaker == "system"
            ),
            "{refused:?}"
        );
    }
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 1).await,
        [1, 0, 0]
    );

    let scores = labeled_turn(&session_id.as_str().into(), 1, &[]).scores;
    repos
        .scoring
        .save(NewScores {
            session_id: session_id.clone().into(),
            turn_number: 1,
            scores,
        })
        .await
        .expect("the scores");
    for turn in turn_one() {
        let refused = repos.turns.record_turn(turn).await;
        assert!(
            matches!(
                &refused,
                Err(Error::Conflict {
                    conflict: ConflictKind::DuplicateTurn { turn_number: 1, .. },
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}

/// SQL's LIMIT is a signed 64-bit number: a `u64` limit above `i64::MAX`
/// once reached the driver, which panicked binding it. Clamped, such a
/// limit reads every row.
async fn limits_above_i64_max_read_everything_instead_of_panicking(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    for t in 1..=2 {
        repos
            .turns
            .record_turn(labeled_turn(
                &session_id.as_str().into(),
                t,
                &[&format!("t{t}-a")],
            ))
            .await
            .expect("record");
    }
    for limit in [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let context = repos
            .turns
            .context(&session_id.as_str().into(), limit)
            .await
            .expect("context");
        assert_eq!(context.recent_utterances.len(), 4, "{limit}");
        let last = repos
            .utterances
            .last(&session_id.as_str().into(), limit)
            .await
            .expect("last");
        assert_eq!(last.len(), 4, "{limit}");
        let strategies = repos
            .scoring
            .last_strategies(&session_id.as_str().into(), limit)
            .await
            .expect("strategies");
        assert_eq!(strategies.len(), 2, "{limit}");
        let sessions = repos.sessions.list(None, limit).await.expect("list");
        assert_eq!(sessions.len(), 1, "{limit}");
        repos.sessions.erasures(limit).await.expect("erasures");
    }
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
        .create_node(NewNode::new(
            &session_id.as_str().into(),
            "hub",
            "attribute",
        ))
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
                    .add_node_provenance(&node_id, &utterance.as_str().into())
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

async fn hostile_values_are_stored_as_data(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let hostile = [
        "Robert'); DROP TABLE sessions; --",
        "\"double\" 'single' `back` ; -- /* comment */",
        "SELECT * FROM kg_nodes WHERE 1=1 OR ''=''",
        "emoji 🥛☕️👩🏽‍🔬 and ZWJ",
        "עברית مرحبا right-to-left \u{202E}override",
        "percent %s %d %% and backslash \\ and newline\nand tab\t",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let node = repos
            .graph
            .create_node(NewNode::new(&session.id, text, &format!("type {text}")))
            .await
            .expect("store a hostile label");
        assert_eq!(repos.graph.node(&node.id).await.expect("read").label, *text);
        let found = repos
            .graph
            .find_current_node(&session.id, text, &format!("type {text}"))
            .await
            .expect("find");
        assert_eq!(
            found.map(|n| n.id),
            Some(node.id),
            "value {i} did not match itself"
        );
    }
    let megabyte = "ü".repeat(512 * 1024);
    let mut config = serde_json::Map::new();
    config.insert("notes".into(), json!(megabyte));
    config.insert(hostile[0].into(), json!(hostile[1]));
    let updated = repos
        .sessions
        .replace_config(&session.id, json!(config))
        .await
        .expect("a 1 MB config");
    assert_eq!(
        repos.sessions.config(&session.id).await.expect("read"),
        updated.config
    );
    assert_eq!(count(db, "sessions").await, 1, "the table survived");

    let with_nul = NewNode::new(&session.id, "nul \0 byte", "attribute");
    match db.backend() {
        interview_persistence::Backend::Sqlite => {
            let node = repos
                .graph
                .create_node(with_nul)
                .await
                .expect("SQLite stores a NUL byte");
            assert_eq!(
                repos.graph.node(&node.id).await.expect("read").label,
                "nul \0 byte"
            );
        }
        interview_persistence::Backend::Postgres => {
            let refused = repos.graph.create_node(with_nul).await;
            assert!(
                matches!(refused, Err(Error::InvalidValue(_))),
                "PostgreSQL text has no NUL: {refused:?}"
            );
        }
    }
}

async fn json_nested_too_deep_is_refused_clearly(db: &Database) {
    let repos = Repositories::new(db);
    let nested = |depth: usize| {
        let mut value = json!("bottom");
        for _ in 1..depth {
            value = json!({"d": value});
        }
        value
    };
    let mut deep = NewSession { ..new_session() };
    deep.config = nested(100);
    let session = repos
        .sessions
        .create(deep)
        .await
        .expect("100 levels are fine");
    assert_eq!(
        repos
            .sessions
            .get(&session.id)
            .await
            .expect("read back")
            .config,
        nested(100)
    );

    let mut too_deep = new_session();
    too_deep.config = nested(1_000);
    match repos.sessions.create(too_deep).await {
        Err(Error::InvalidInput(reason)) => assert!(reason.contains("deeper than"), "{reason}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let mut node = NewNode::new(&session.id, "deep", "attribute");
    node.properties = nested(129);
    assert!(matches!(
        repos.graph.create_node(node).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(count(db, "kg_nodes").await, 0);
}

/// A turn that repeats one of its own nodes, or its own edge, is refused
/// with the kind of what it repeats, and writes nothing.
async fn duplicates_within_one_turn_are_named(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    for turn in with_and_without_session_extras(labeled_turn(
        &session_id.as_str().into(),
        1,
        &["same", "other", "same"],
    )) {
        let refused = repos.turns.record_turn(turn).await;
        assert!(
            matches!(
                &refused,
                Err(Error::Conflict {
                    conflict: ConflictKind::DuplicateCurrentNode { label, node_type, .. },
                    ..
                }) if label == "same" && node_type == "attribute"
            ),
            "{refused:?}"
        );
    }
    let mut twice = labeled_turn(&session_id.as_str().into(), 1, &["a", "b"]);
    twice.edges.push(twice.edges[0].clone());
    for turn in with_and_without_session_extras(twice) {
        let refused = repos.turns.record_turn(turn).await;
        assert!(
            matches!(
                &refused,
                Err(Error::Conflict {
                    conflict: ConflictKind::DuplicateEdge { edge_type, .. },
                    ..
                }) if edge_type == "leads_to"
            ),
            "{refused:?}"
        );
    }
    assert_eq!(
        rows_of_turn(db, &session_id.as_str().into(), 1).await,
        [0, 0, 0]
    );
}

/// Properties and scorer details are JSON objects: `null`, an array, a
/// string or a number is refused before any write, on every path.
async fn json_that_must_be_an_object_refuses_anything_else(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let node = repos
        .graph
        .create_node(NewNode::new(
            &session_id.as_str().into(),
            "kept",
            "attribute",
        ))
        .await
        .expect("a node");
    let not_object = |result: Result<(), Error>, what: &str, bad: &serde_json::Value| match result {
        Err(Error::InvalidInput(reason)) => {
            assert!(
                reason.contains("must be a JSON object"),
                "{what} = {bad}: {reason}"
            );
        }
        other => panic!("{what} = {bad}: expected InvalidInput, got {other:?}"),
    };
    for bad in [json!(null), json!([1]), json!("x"), json!(3)] {
        let mut turn = chain_turn(&session_id.as_str().into(), 1);
        turn.nodes[0].properties = bad.clone();
        not_object(
            repos.turns.record_turn(turn).await.map(|_| ()),
            "a turn node's properties",
            &bad,
        );
        let mut turn = chain_turn(&session_id.as_str().into(), 1);
        turn.edges[0].properties = bad.clone();
        not_object(
            repos.turns.record_turn(turn).await.map(|_| ()),
            "a turn edge's properties",
            &bad,
        );
        let mut turn = chain_turn(&session_id.as_str().into(), 1);
        turn.scores.scorer_details = bad.clone();
        not_object(
            repos.turns.record_turn(turn).await.map(|_| ()),
            "scorer details",
            &bad,
        );
        let mut new = NewNode::new(&session_id.as_str().into(), "n", "attribute");
        new.properties = bad.clone();
        not_object(
            repos.graph.create_node(new).await.map(|_| ()),
            "a node's properties",
            &bad,
        );
        let mut new = NewEdge::new(
            &session_id.as_str().into(),
            &node.id,
            &node.id,
            EdgeType::LeadsTo,
        );
        new.properties = bad.clone();
        not_object(
            repos.graph.create_edge(new).await.map(|_| ()),
            "an edge's properties",
            &bad,
        );
        let update = NodeUpdate {
            properties: Some(bad.clone()),
            ..NodeUpdate::default()
        };
        not_object(
            repos.graph.update_node(&node.id, update).await.map(|_| ()),
            "updated properties",
            &bad,
        );
        let mut scores = labeled_turn(&session_id.as_str().into(), 1, &[]).scores;
        scores.scorer_details = bad.clone();
        not_object(
            repos
                .scoring
                .save(NewScores {
                    session_id: session_id.clone().into(),
                    turn_number: 1,
                    scores,
                })
                .await
                .map(|_| ()),
            "saved scorer details",
            &bad,
        );
    }
    assert_eq!(count(db, "kg_nodes").await, 1);
    assert_eq!(count(db, "kg_edges").await, 0);
    assert_eq!(count(db, "scoring_history").await, 0);
}

fn refused<T>(result: Result<T, Error>, what: &str, bad: f64) {
    assert!(
        matches!(result, Err(Error::InvalidInput(_))),
        "{what} = {bad}: expected InvalidInput, got {:?}",
        result.map(|_| ())
    );
}

/// Every way a float can be refused, applied to each float a turn or a
/// repository call stores.
async fn assert_each_float_refused(db: &Database, bad: f64) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.coverage_score = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "the session's coverage",
        bad,
    );
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.scores.depth_score = bad;
    refused(repos.turns.record_turn(turn).await, "depth", bad);
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.scores.saturation_score = bad;
    refused(repos.turns.record_turn(turn).await, "saturation", bad);
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.scores.novelty_score = Some(bad);
    refused(repos.turns.record_turn(turn).await, "novelty", bad);
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.scores.richness_score = Some(bad);
    refused(repos.turns.record_turn(turn).await, "richness", bad);
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.nodes[0].confidence = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "a node's confidence",
        bad,
    );
    let mut turn = chain_turn(&session_id.as_str().into(), 1);
    turn.edges[0].confidence = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "an edge's confidence",
        bad,
    );
    refused(
        repos
            .sessions
            .update_metrics(&session_id.as_str().into(), 1, bad)
            .await,
        "update_metrics",
        bad,
    );
    refused(
        repos
            .scoring
            .save(NewScores {
                session_id: session_id.clone().into(),
                turn_number: 1,
                scores: scores(bad),
            })
            .await,
        "scoring.save",
        bad,
    );
    let mut node = NewNode::new(&session_id.as_str().into(), "n", "value");
    node.confidence = bad;
    refused(repos.graph.create_node(node).await, "create_node", bad);

    let session = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    assert_eq!(session.turn_count, 0);
    assert_eq!(session.coverage_score, Some(0.0), "the coverage changed");
    for table in ["utterances", "kg_nodes", "kg_edges", "scoring_history"] {
        assert_eq!(
            count(db, &format!("{table} WHERE session_id = '{session_id}'")).await,
            0,
            "{table} got a row"
        );
    }
}

fn scores(value: f64) -> TurnScores {
    TurnScores {
        coverage_score: value,
        depth_score: 0.5,
        saturation_score: 0.1,
        novelty_score: None,
        richness_score: None,
        strategy_selected: "deepen".into(),
        strategy_reasoning: None,
        scorer_details: json!({}),
    }
}

async fn nan_and_infinite_scores_are_refused_before_any_write(db: &Database) {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_each_float_refused(db, bad).await;
    }
}

async fn scores_outside_zero_to_one_are_refused(db: &Database) {
    for bad in [1e308, -1e308, -0.01, 1.01] {
        assert_each_float_refused(db, bad).await;
    }
}

async fn the_turn_count_is_the_highest_turn_recorded_whatever_the_order(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let turn = |t: i32, coverage: f64| {
        let mut turn = chain_turn(&session_id.as_str().into(), t);
        turn.coverage_score = coverage;
        turn.scores.coverage_score = coverage;
        turn
    };
    repos.turns.record_turn(turn(1, 0.1)).await.expect("turn 1");
    let last = repos
        .turns
        .record_turn(turn(i32::MAX, 0.9))
        .await
        .expect("the last turn");
    assert!(!last.node_ids.is_empty());
    let at_max = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    repos
        .turns
        .record_turn(turn(3, 0.3))
        .await
        .expect("turn 3, late");
    let session = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    assert_eq!(session.turn_count, i32::MAX);
    assert_eq!(
        session.coverage_score,
        Some(0.9),
        "a late turn overwrote the coverage"
    );
    assert!(
        session.updated_at >= at_max.updated_at,
        "updated_at went backwards"
    );
}

async fn turns_recorded_concurrently_leave_the_highest_turn_count(db: &Database) {
    let repos = Arc::new(Repositories::new(db));
    let session_id = started(&repos).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 10..=29 {
        let repos = Arc::clone(&repos);
        let session_id = session_id.clone();
        tasks.spawn(async move {
            repos
                .turns
                .record_turn(chain_turn(&session_id.as_str().into(), t))
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("joined").expect("a turn");
    }
    let session = repos
        .sessions
        .get(&session_id.as_str().into())
        .await
        .expect("session");
    assert_eq!(session.turn_count, 29);
    assert_eq!(session.coverage_score, Some(0.29));
}
