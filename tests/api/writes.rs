//! The one write path: cancelled writes, every write call at once, floats
//! and turn order, on both backends.

use std::sync::Arc;
use std::time::Duration;

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::session::SessionStatus;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewEdge, NewNode, NewScores, NewUtterance, NodeUpdate, Repositories, TurnScores,
};
use interview_persistence::{Database, Error};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::fixtures::count;
use crate::on_both_backends;
use crate::repositories::{element, new_session};
use crate::turn_builders::chain_turn;

on_both_backends!(
    a_turn_cancelled_while_it_waits_for_the_writer_never_lands,
    every_write_call_at_once_loses_nothing_and_meets_no_busy_error,
    nan_and_infinite_scores_are_refused_before_any_write,
    scores_outside_zero_to_one_are_refused,
    the_turn_count_is_the_highest_turn_recorded_whatever_the_order,
    turns_recorded_concurrently_leave_the_highest_turn_count,
);

async fn started(repos: &Repositories) -> String {
    let (session, _) = repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("start a session");
    session.id
}

/// Holds the writer (SQLite) or the session's row (PostgreSQL) so that a
/// turn of `session_id` has to wait.
async fn block_the_session(
    db: &Database,
    session_id: &str,
) -> interview_persistence::WriteTransaction {
    let txn = db.begin_write().await.expect("the writer");
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        match txn.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                "UPDATE sessions SET updated_at = updated_at WHERE id = $1"
            }
            _ => "UPDATE sessions SET updated_at = updated_at WHERE id = ?",
        },
        [session_id.into()],
    ))
    .await
    .expect("lock the session");
    txn
}

async fn a_turn_cancelled_while_it_waits_for_the_writer_never_lands(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = started(&repos).await;
    let before = repos.sessions.get(&session_id).await.expect("session");

    let blocker = block_the_session(db, &session_id).await;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        repos.turns.record_turn(chain_turn(&session_id, 1)),
    )
    .await;
    assert!(cancelled.is_err(), "the turn should still be waiting");
    blocker.rollback().await.expect("release");

    // Later writes of the session, and of another one, go through.
    let abandoned = repos
        .sessions
        .update_status(&session_id, SessionStatus::Abandoned)
        .await
        .expect("abandon the session");
    let other = started(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&other, 1))
        .await
        .expect("another session's turn");

    let after = repos.sessions.get(&session_id).await.expect("session");
    assert_eq!(after.status, SessionStatus::Abandoned);
    assert_eq!(after.turn_count, 0, "the cancelled turn landed");
    assert_eq!(after.coverage_score, before.coverage_score);
    assert!(after.updated_at >= abandoned.updated_at);
    assert_eq!(
        count(
            db,
            &format!("scoring_history WHERE session_id = '{session_id}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(db, &format!("utterances WHERE session_id = '{session_id}'")).await,
        0
    );
    // Retrying the cancelled turn is not a conflict: it never happened.
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("the retried turn");
}

const TASKS: usize = 6;
const ROUNDS: i32 = 8;

/// One task's share of the mix: every write call of every repository,
/// `begin_write` included, on its own session, plus read-then-write calls
/// on a node and a counter that every task shares.
async fn write_everything(
    repos: Repositories,
    db: Database,
    task: usize,
    hub_node: String,
    hub_session: String,
) {
    let (session, _) = repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("create_with_elements");
    let id = session.id;
    repos
        .concept_elements
        .seed(
            &id,
            vec![
                element("e1", Priority::Low),
                element("e2", Priority::Medium),
            ],
        )
        .await
        .expect("seed");
    for round in 1..=ROUNDS {
        repos
            .turns
            .record_turn(chain_turn(&id, round))
            .await
            .expect("record_turn");
        let said = repos
            .utterances
            .save(NewUtterance {
                session_id: id.clone(),
                turn_number: 1000 + round,
                speaker: Speaker::User,
                text: format!("aside {round}"),
                discourse_markers: vec![],
            })
            .await
            .expect("utterances.save");
        repos
            .scoring
            .save(NewScores {
                session_id: id.clone(),
                turn_number: 1000 + round,
                scores: TurnScores {
                    coverage_score: 0.5,
                    depth_score: 0.5,
                    saturation_score: 0.5,
                    novelty_score: None,
                    richness_score: None,
                    strategy_selected: "broaden".into(),
                    strategy_reasoning: None,
                    scorer_details: json!({}),
                },
            })
            .await
            .expect("scoring.save");
        let a = repos
            .graph
            .create_node(NewNode::new(&id, &format!("extra{round}"), "value"))
            .await
            .expect("create_node");
        repos
            .graph
            .update_node(
                &a.id,
                NodeUpdate {
                    confidence: Some(0.5),
                    ..NodeUpdate::default()
                },
            )
            .await
            .expect("update_node");
        repos
            .graph
            .add_node_provenance(&a.id, &said.id)
            .await
            .expect("add_node_provenance");
        let (_, b) = repos
            .graph
            .replace_node(&a.id, NewNode::new(&id, &format!("extra{round}"), "value"))
            .await
            .expect("replace_node");
        let c = repos
            .graph
            .create_node(NewNode::new(&id, &format!("other{round}"), "value"))
            .await
            .expect("create_node");
        let edge = repos
            .graph
            .create_edge(NewEdge::new(&id, &b.id, &c.id, EdgeType::LeadsTo))
            .await
            .expect("create_edge");
        repos
            .graph
            .add_edge_provenance(&edge.id, &said.id)
            .await
            .expect("add_edge_provenance");
        let d = repos
            .graph
            .create_node(NewNode::new(&id, &format!("old{round}"), "value"))
            .await
            .expect("create_node");
        repos
            .graph
            .supersede_node(&d.id, &c.id)
            .await
            .expect("supersede_node");
        repos
            .concept_elements
            .mark_covered(&id, "e1", &b.id)
            .await
            .expect("mark_covered");
        repos
            .sessions
            .replace_config(&id, json!({"round": round}))
            .await
            .expect("replace_config");
        // Shared: a provenance list every task appends to, and a counter
        // every task increments by reading then writing.
        let shared = repos
            .utterances
            .save(NewUtterance {
                session_id: hub_session.clone(),
                turn_number: i32::try_from(task).expect("small") * 100 + round,
                speaker: Speaker::User,
                text: "shared".into(),
                discourse_markers: vec![],
            })
            .await
            .expect("a shared utterance");
        repos
            .graph
            .add_node_provenance(&hub_node, &shared.id)
            .await
            .expect("shared add_node_provenance");
        let txn = db.begin_write().await.expect("begin_write");
        let backend = txn.get_database_backend();
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                match backend {
                    sea_orm::DbBackend::Postgres => {
                        "SELECT turn_count FROM sessions WHERE id = $1 FOR UPDATE"
                    }
                    _ => "SELECT turn_count FROM sessions WHERE id = ?",
                },
                [hub_session.clone().into()],
            ))
            .await
            .expect("read the counter")
            .expect("the hub session");
        let counter: i32 = row.try_get_by_index(0).expect("a count");
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            match backend {
                sea_orm::DbBackend::Postgres => "UPDATE sessions SET turn_count = $1 WHERE id = $2",
                _ => "UPDATE sessions SET turn_count = ? WHERE id = ?",
            },
            [(counter + 1).into(), hub_session.clone().into()],
        ))
        .await
        .expect("write the counter");
        txn.commit().await.expect("commit the counter");

        let throwaway = repos.sessions.create(new_session()).await.expect("create");
        repos
            .sessions
            .update_status(&throwaway.id, SessionStatus::Completed)
            .await
            .expect("update_status");
        repos.sessions.delete(&throwaway.id).await.expect("delete");
    }
    repos
        .sessions
        .update_metrics(&id, ROUNDS, 0.75)
        .await
        .expect("update_metrics");
}

async fn every_write_call_at_once_loses_nothing_and_meets_no_busy_error(db: &Database) {
    let repos = Repositories::new(db);
    let hub_session = repos.sessions.create(new_session()).await.expect("hub").id;
    let hub_node = repos
        .graph
        .create_node(NewNode::new(&hub_session, "hub", "attribute"))
        .await
        .expect("hub node")
        .id;

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(write_everything(
            repos.clone(),
            db.clone(),
            task,
            hub_node.clone(),
            hub_session.clone(),
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a task panicked: a write failed");
    }

    let rounds = i64::from(ROUNDS);
    let tasks = TASKS as i64;
    let sessions = repos.sessions.list(None, 1000).await.expect("list");
    assert_eq!(
        sessions.len() as i64,
        tasks + 1,
        "throwaway sessions remain or sessions were lost"
    );
    for session in sessions.iter().filter(|s| s.id != hub_session) {
        let id = &session.id;
        assert_eq!(session.turn_count, ROUNDS);
        assert_eq!(session.coverage_score, Some(0.75));
        assert_eq!(session.config, json!({"round": ROUNDS}));
        let of = |table: &str| format!("{table} WHERE session_id = '{id}'");
        assert_eq!(count(db, &of("utterances")).await, 3 * rounds);
        assert_eq!(count(db, &of("scoring_history")).await, 2 * rounds);
        // 4 per turn, and per round: a replaced node, its replacement, a
        // second node, and a superseded one.
        assert_eq!(count(db, &of("kg_nodes")).await, 8 * rounds);
        assert_eq!(count(db, &of("kg_edges")).await, 4 * rounds);
        assert_eq!(count(db, &of("concept_elements")).await, 3);
        // e0 by the turns, e1 by mark_covered.
        assert_eq!(
            count(
                db,
                &format!("concept_elements WHERE session_id = '{id}' AND is_covered = true")
            )
            .await,
            2
        );
    }
    let hub = repos.graph.node(&hub_node).await.expect("hub node");
    assert_eq!(
        hub.source_utterance_ids.len(),
        TASKS * ROUNDS as usize,
        "a provenance update was lost"
    );
    let hub = repos.sessions.get(&hub_session).await.expect("hub session");
    assert_eq!(
        i64::from(hub.turn_count),
        tasks * rounds,
        "an increment was lost"
    );
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
    let mut turn = chain_turn(&session_id, 1);
    turn.coverage_score = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "the session's coverage",
        bad,
    );
    let mut turn = chain_turn(&session_id, 1);
    turn.scores.depth_score = bad;
    refused(repos.turns.record_turn(turn).await, "depth", bad);
    let mut turn = chain_turn(&session_id, 1);
    turn.scores.saturation_score = bad;
    refused(repos.turns.record_turn(turn).await, "saturation", bad);
    let mut turn = chain_turn(&session_id, 1);
    turn.scores.novelty_score = Some(bad);
    refused(repos.turns.record_turn(turn).await, "novelty", bad);
    let mut turn = chain_turn(&session_id, 1);
    turn.scores.richness_score = Some(bad);
    refused(repos.turns.record_turn(turn).await, "richness", bad);
    let mut turn = chain_turn(&session_id, 1);
    turn.nodes[0].confidence = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "a node's confidence",
        bad,
    );
    let mut turn = chain_turn(&session_id, 1);
    turn.edges[0].confidence = bad;
    refused(
        repos.turns.record_turn(turn).await,
        "an edge's confidence",
        bad,
    );
    refused(
        repos.sessions.update_metrics(&session_id, 1, bad).await,
        "update_metrics",
        bad,
    );
    refused(
        repos
            .scoring
            .save(NewScores {
                session_id: session_id.clone(),
                turn_number: 1,
                scores: scores(bad),
            })
            .await,
        "scoring.save",
        bad,
    );
    let mut node = NewNode::new(&session_id, "n", "value");
    node.confidence = bad;
    refused(repos.graph.create_node(node).await, "create_node", bad);

    let session = repos.sessions.get(&session_id).await.expect("session");
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
        let mut turn = chain_turn(&session_id, t);
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
    let at_max = repos.sessions.get(&session_id).await.expect("session");
    repos
        .turns
        .record_turn(turn(3, 0.3))
        .await
        .expect("turn 3, late");
    let session = repos.sessions.get(&session_id).await.expect("session");
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
        tasks.spawn(async move { repos.turns.record_turn(chain_turn(&session_id, t)).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("joined").expect("a turn");
    }
    let session = repos.sessions.get(&session_id).await.expect("session");
    assert_eq!(session.turn_count, 29);
    assert_eq!(session.coverage_score, Some(0.29));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_the_read_pool_is_refused_on_sqlite() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let refused = db
        .connection()
        .execute_unprepared(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('x', 'm', 'c', 'n')",
        )
        .await
        .map_err(Error::from);
    assert!(matches!(refused, Err(Error::ReadOnly(_))), "{refused:?}");
    let dedicated = db.dedicated_connection().await.expect("dedicated");
    let refused = dedicated
        .execute_unprepared("DELETE FROM sessions")
        .await
        .map_err(Error::from);
    assert!(matches!(refused, Err(Error::ReadOnly(_))), "{refused:?}");
    assert_eq!(count(db, "sessions").await, 0);
}
