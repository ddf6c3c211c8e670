//! The one write path (`src/database/writer.rs`): cancelled writes, every
//! write call at once, group commit, busy and full databases, and no write
//! around the writer.

use interview_persistence::entity::SessionId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::session;
use entity::session::SessionStatus;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewEdge, NewNode, NewScores, NewUtterance, NodeUpdate, Repositories, TurnScores,
};
use interview_persistence::{
    ConflictKind, Database, DatabaseConfig, DatabaseUrl, Error, init_database,
};
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use serde_json::json;

use crate::fixtures::{count, integrity, query_one, start};
use crate::helpers;
use crate::on_both_backends;
use crate::repositories::{element, new_session};
use crate::turn_builders::{chain_turn, labeled_turn};

on_both_backends!(
    a_turn_cancelled_while_it_waits_lands_whole_or_not_at_all,
    every_write_call_at_once_loses_nothing_and_meets_no_busy_error,
    turns_committed_together_keep_their_own_outcomes,
);

/// Holds the writer (SQLite) or the session's row (PostgreSQL) so that a
/// turn of `session_id` has to wait.
async fn block_the_session(
    db: &Database,
    session_id: &SessionId,
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

async fn a_turn_cancelled_while_it_waits_lands_whole_or_not_at_all(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    let before = repos.sessions.get(&session_id).await.expect("session");

    let blocker = block_the_session(db, &session_id).await;
    // From another task: a write from the blocker's own task is refused
    // on SQLite (it would wait for itself). On SQLite the cancelled turn
    // never lands: it was still in the queue.
    let cancelled = tokio::spawn({
        let repos = repos.clone();
        let turn = chain_turn(&session_id, 1);
        async move {
            tokio::time::timeout(Duration::from_millis(300), repos.turns.record_turn(turn))
                .await
                .is_err()
        }
    });
    assert!(
        cancelled.await.expect("joined"),
        "the turn should still be waiting"
    );
    blocker.rollback().await.expect("release");
    if db.backend() == interview_persistence::Backend::Postgres {
        return a_turn_given_up_on_the_server_lands_whole_or_not_at_all(db, &session_id).await;
    }

    // Later writes of the session, and of another one, go through.
    let abandoned = repos
        .sessions
        .update_status(&session_id, SessionStatus::Abandoned)
        .await
        .expect("abandon the session");
    let other = start(&repos).await;
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

/// PostgreSQL: a turn is one statement in its own transaction, and the
/// server runs a statement it was sent to its end whether or not the
/// client still waits: the turn given up on while it waited for a lock
/// lands whole or not at all, and its retry says which.
async fn a_turn_given_up_on_the_server_lands_whole_or_not_at_all(
    db: &Database,
    session_id: &SessionId,
) {
    let repos = Repositories::new(db);
    // The server finishes the statement once the lock is free.
    let deadline = Instant::now() + Duration::from_secs(10);
    let landed = loop {
        let active: i64 = crate::fixtures::query_one(
            db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .await;
        // Counted after the server said it runs nothing more: counted
        // before, a turn finishing in between would read as not landed.
        if active == 0 {
            let scores = count(
                db,
                &format!("scoring_history WHERE session_id = '{session_id}'"),
            )
            .await;
            break scores == 1;
        }
        assert!(Instant::now() < deadline, "the given-up turn never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let session = repos.sessions.get(session_id).await.expect("session");
    let utterances = count(db, &format!("utterances WHERE session_id = '{session_id}'")).await;
    let nodes = count(db, &format!("kg_nodes WHERE session_id = '{session_id}'")).await;
    if landed {
        assert_eq!(
            (session.turn_count, utterances, nodes),
            (1, 2, 4),
            "a partial turn"
        );
    } else {
        assert_eq!(
            (session.turn_count, utterances, nodes),
            (0, 0, 0),
            "a partial turn"
        );
    }
    let retried = repos.turns.record_turn(chain_turn(session_id, 1)).await;
    match retried {
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateTurn { .. },
            ..
        }) => assert!(landed, "the retry was refused but nothing landed"),
        Ok(_) => assert!(!landed, "the retry was written twice"),
        other => panic!("the retry answered {other:?}"),
    }
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
            .mark_covered(&id, &"e1".into(), &b.id)
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
                session_id: hub_session.clone().into(),
                turn_number: i32::try_from(task).expect("small") * 100 + round,
                speaker: Speaker::User,
                text: "shared".into(),
                discourse_markers: vec![],
            })
            .await
            .expect("a shared utterance");
        repos
            .graph
            .add_node_provenance(&hub_node.as_str().into(), &shared.id)
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
            hub_node.to_string(),
            hub_session.to_string(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_readers_at_once_see_whole_turns_and_no_busy_error() {
    let test_db = helpers::sqlite().await;
    let repos = Arc::new(Repositories::new(&test_db.db));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(start(&repos).await);
    }
    let sessions = Arc::new(sessions);
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(3);

    let mut writers = tokio::task::JoinSet::new();
    for session_id in sessions.iter() {
        let (repos, stop) = (Arc::clone(&repos), Arc::clone(&stop));
        let session_id = session_id.clone();
        writers.spawn(async move {
            let mut t = 0;
            while !stop.load(Ordering::Relaxed) && t < 400 {
                repos
                    .turns
                    .record_turn(chain_turn(&session_id, t + 1))
                    .await?;
                t += 1;
            }
            Ok::<(String, i32), Error>((session_id.to_string(), t))
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..4 {
        let (repos, stop, sessions) =
            (Arc::clone(&repos), Arc::clone(&stop), Arc::clone(&sessions));
        readers.spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let session_id = &sessions[(reads as usize + reader) % sessions.len()];
                let context = repos.turns.context(session_id, 10).await?;
                let turns = context.scoring_history.len();
                let whole = context.session.turn_count as usize == turns
                    && context.current_nodes.len() == 4 * turns
                    && context.edges.len() == 3 * turns;
                if !whole {
                    return Ok(Err(format!(
                        "half a turn seen: {} turns counted, {turns} scored, {} nodes, {} edges",
                        context.session.turn_count,
                        context.current_nodes.len(),
                        context.edges.len()
                    )));
                }
                reads += 1;
            }
            Ok::<Result<u32, String>, Error>(Ok(reads))
        });
    }
    tokio::time::sleep_until(deadline.into()).await;
    stop.store(true, Ordering::Relaxed);

    let mut written = 0;
    while let Some(done) = writers.join_next().await {
        let (session_id, turns) = done
            .expect("writer ran")
            .expect("no write failed (busy or otherwise)");
        assert_eq!(
            crate::fixtures::turn_count(&repos, &session_id.as_str().into()).await,
            turns
        );
        assert_eq!(
            repos
                .scoring
                .history(&session_id.as_str().into())
                .await
                .expect("history")
                .len(),
            turns as usize,
            "lost turns"
        );
        written += turns;
    }
    let mut reads = 0;
    while let Some(done) = readers.join_next().await {
        reads += done
            .expect("reader ran")
            .expect("no read failed")
            .expect("readers saw whole turns");
    }
    assert!(
        written > 0 && reads > 0,
        "{written} turns written, {reads} reads"
    );
}

/// Writes that queued while the lock was taken are committed together,
/// and SQLite waits no longer than the member with the least time left:
/// when that wait fails, only the members whose own busy timeout ran out
/// get `Busy` (with SQLite's code); a write queued late waits out its own
/// time and lands when the lock comes free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_queued_late_is_not_refused_busy_on_behalf_of_an_early_one() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_secs(1);
    let db = init_database(&config).await.expect("init");
    let repos = Arc::new(Repositories::new(&db));
    let sessions = [
        start(&repos).await,
        start(&repos).await,
        start(&repos).await,
    ];
    let other = helpers::outside_connection(&db).await;
    other
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .expect("take the lock");
    let started = Instant::now();
    let mut turns = Vec::new();
    for (session_id, after) in sessions.iter().zip([0, 50, 900]) {
        let (repos, session_id) = (Arc::clone(&repos), session_id.clone());
        turns.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after)).await;
            repos.turns.record_turn(chain_turn(&session_id, 1)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1400).saturating_sub(started.elapsed())).await;
    other
        .execute_unprepared("ROLLBACK")
        .await
        .expect("release the lock");
    let mut answers = Vec::new();
    for turn in turns {
        answers.push(turn.await.expect("the turn's task"));
    }
    for early in &answers[..2] {
        assert!(
            matches!(early, Err(Error::Busy(_))),
            "an early write waited its whole timeout: {early:?}"
        );
        let code = early.as_ref().err().and_then(Error::sqlite_code);
        assert_eq!(code, Some(5), "Busy keeps SQLite's code");
    }
    assert!(
        answers[2].is_ok(),
        "the write queued at 900 ms had until 1,900 ms and the lock came free at 1,400 ms: {:?}",
        answers[2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_cannot_get_the_lock_in_time_gets_a_typed_busy_error() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(200);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;

    // Another writer (as another process would) holds the write lock.
    let other = helpers::outside_connection(&db).await;
    other
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .expect("take the lock");
    let started = Instant::now();
    let refused = repos.turns.record_turn(chain_turn(&session_id, 1)).await;
    assert!(
        matches!(refused, Err(Error::Busy(_))),
        "expected Busy, got {refused:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "it did not wait the busy timeout"
    );
    assert!(matches!(refused.unwrap_err().sqlite_code(), Some(5)));
    other
        .execute_unprepared("ROLLBACK")
        .await
        .expect("release the lock");

    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("the same turn, once the lock is free");
    assert_eq!(
        repos
            .scoring
            .history(&session_id)
            .await
            .expect("history")
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_writes_with_a_typed_error_and_recovers_when_space_returns() {
    let (_dir, mut config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn 1");
    let page_count: i64 = query_one(&db, "PRAGMA page_count").await;
    db.close().await.expect("close");

    // `max_page_count` holds on every connection that writes.
    config.max_page_count = Some(u32::try_from(page_count + 2).expect("a small file"));
    let db = Database::connect(&config).await.expect("reopen with a cap");
    let repos = Repositories::new(&db);
    let mut t = 2;
    let refused = loop {
        match repos.turns.record_turn(chain_turn(&session_id, t)).await {
            Ok(_) if t < 500 => t += 1,
            Ok(_) => panic!("500 turns fit in two more pages"),
            Err(err) => break err,
        }
    };
    assert!(
        matches!(refused, Error::StorageFull(_)),
        "expected StorageFull, got {refused:?}"
    );
    assert_eq!(refused.sqlite_code(), Some(13));
    let recorded = t - 1;
    let context = repos
        .turns
        .context(&session_id, 10)
        .await
        .expect("reads still work");
    assert_eq!(
        context.scoring_history.len(),
        recorded as usize,
        "a partial turn remains"
    );
    assert_eq!(context.session.turn_count, recorded);
    assert_eq!(context.current_nodes.len(), 4 * recorded as usize);
    db.close().await.expect("close");

    config.max_page_count = None;
    let db = Database::connect(&config)
        .await
        .expect("reopen without the cap");
    Repositories::new(&db)
        .turns
        .record_turn(chain_turn(&session_id, t))
        .await
        .expect("writes work again");
    assert_eq!(integrity(&db).await, "ok");
}

/// Turns recorded at the same moment may be committed as one group on
/// SQLite: one bad turn among them fails alone, the others land whole.
async fn turns_committed_together_keep_their_own_outcomes(db: &Database) {
    let repos = Arc::new(Repositories::new(db));
    let mut sessions = Vec::new();
    for _ in 0..8 {
        let session_id = start(&repos).await;
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
                    matches!(
                        outcome,
                        Err(Error::Conflict {
                            conflict: ConflictKind::DuplicateTurn { turn_number: 1, .. },
                            ..
                        })
                    ),
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

async fn memory_db() -> Database {
    let config = DatabaseConfig::new(DatabaseUrl::sqlite_memory());
    init_database(&config).await.expect("init in memory")
}

/// On a file (WAL) a read snapshot held by a task never stops a write. On
/// `sqlite::memory:` (shared cache) the write waits for the reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_writes_while_a_read_snapshot_is_open() {
    let db = memory_db().await;
    let repos = Repositories::new(&db);
    repos
        .sessions
        .create(new_session())
        .await
        .expect("a session");

    let read = db.begin_read().await.expect("read txn");
    let seen = session::Entity::find().all(&read).await.expect("read");
    assert_eq!(seen.len(), 1);
    let write = tokio::time::timeout(
        Duration::from_secs(10),
        repos.sessions.create(new_session()),
    )
    .await;
    assert!(
        matches!(write, Ok(Ok(_))),
        "a write while a read snapshot is open: {:?}",
        write.map(|r| r.map(|_| ()))
    );
    drop(read);
}

/// On a file (WAL) a read never waits for an open write transaction. On
/// `sqlite::memory:` it waits for it: a task that reads while it holds
/// `begin_write` never finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_reads_beside_an_open_write_transaction() {
    let db = memory_db().await;
    let repos = Repositories::new(&db);
    let id = repos
        .sessions
        .create(new_session())
        .await
        .expect("a session")
        .id;

    let txn = db.begin_write().await.expect("begin_write");
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "UPDATE sessions SET turn_count = 7 WHERE id = ?",
        [id.clone().into()],
    ))
    .await
    .expect("update");
    let read = tokio::time::timeout(Duration::from_secs(10), repos.sessions.get(&id)).await;
    assert!(
        matches!(&read, Ok(Ok(s)) if s.turn_count == 0),
        "a read beside an open write transaction: {:?}",
        read.map(|r| r.map(|s| s.turn_count))
    );
    txn.rollback().await.expect("rollback");
}

/// Same two scenarios on a file: the reference behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_file_reads_and_writes_do_not_wait_for_each_other() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let id = repos
        .sessions
        .create(new_session())
        .await
        .expect("a session")
        .id;
    let read = db.begin_read().await.expect("read txn");
    session::Entity::find().all(&read).await.expect("read");
    tokio::time::timeout(
        Duration::from_secs(10),
        repos.sessions.create(new_session()),
    )
    .await
    .expect("in time")
    .expect("write");
    drop(read);
    let txn = db.begin_write().await.expect("begin_write");
    txn.execute_unprepared("UPDATE sessions SET turn_count = 7")
        .await
        .expect("update");
    let s = tokio::time::timeout(Duration::from_secs(10), repos.sessions.get(&id))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(s.turn_count, 0);
    txn.rollback().await.expect("rollback");
}

/// A group where one member fails and others return rows: every good
/// member commits and gets its own rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_member_of_a_group_leaves_the_others_their_own_rows() {
    let test_db = crate::helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(start(&repos).await);
    }
    let blocker = db.begin_write().await.expect("hold the writer");
    let mut handles = Vec::new();
    for (i, id) in sessions.iter().enumerate() {
        let repos = repos.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            if i == 1 {
                // Fails: no such session (foreign key).
                repos
                    .utterances
                    .save(NewUtterance {
                        session_id: "missing".into(),
                        turn_number: 1,
                        speaker: Speaker::User,
                        text: "x".into(),
                        discourse_markers: vec![],
                    })
                    .await
                    .map(|_| Vec::new())
            } else {
                repos
                    .turns
                    .record_turn(chain_turn(&id, 1))
                    .await
                    .map(|t| t.newly_covered)
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(blocker);
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.expect("joined"));
    }
    assert_eq!(
        results[0].as_ref().expect("turn 0"),
        &vec!["e0".to_string()]
    );
    assert!(results[1].is_err());
    assert_eq!(
        results[2].as_ref().expect("turn 2"),
        &vec!["e0".to_string()]
    );
    assert_eq!(count(&db, "scoring_history").await, 2);
}

/// A group that commits: each member gets its own rows back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_group_gives_each_member_its_own_rows() {
    let test_db = crate::helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(start(&repos).await);
    }
    // Session 1 has e0 covered already: its turn returns a row, not new.
    repos
        .turns
        .record_turn(chain_turn(&sessions[1], 1))
        .await
        .expect("first");
    let blocker = db.begin_write().await.expect("hold the writer");
    let mut handles = Vec::new();
    for id in &sessions {
        let repos = repos.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            repos
                .turns
                .record_turn(chain_turn(&id, 2))
                .await
                .map(|t| t.newly_covered)
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    drop(blocker);
    let mut got = Vec::new();
    for h in handles {
        got.push(h.await.expect("joined").expect("turn"));
    }
    let e0 = vec!["e0".to_string()];
    assert_eq!(got, vec![e0.clone(), vec![], e0.clone(), e0]);
}

/// A `begin_write` cancelled while it waits (timeout, abort) does not wedge
/// the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_write_transactions_do_not_wedge_the_writer() {
    let test_db = crate::helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let blocker = db.begin_write().await.expect("hold the writer");
    let other_task = db.clone();
    let timed_out = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_millis(100), other_task.begin_write())
            .await
            .is_err()
    });
    assert!(timed_out.await.expect("joined"), "begin_write did not wait");
    let db2 = db.clone();
    let aborted = tokio::spawn(async move {
        let _txn = db2.begin_write().await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = repos.clone();
    let write = tokio::spawn(async move { r.sessions.create(new_session()).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    aborted.abort();
    drop(blocker);
    tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .expect("the queued write went through in time")
        .expect("joined")
        .expect("write");
    // The aborted task got the lease after the blocker, or never: either
    // way the writer is free again.
    tokio::time::timeout(Duration::from_secs(5), db.begin_write())
        .await
        .expect("writer free")
        .expect("begin");
}

/// A task holding a WriteTransaction panics: its writes roll back and the
/// writer is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_holding_a_write_transaction_rolls_it_back() {
    let test_db = crate::helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let queued = {
        let r = repos.clone();
        let db2 = db.clone();
        let panicking = tokio::spawn(async move {
            let txn = db2.begin_write().await.expect("begin");
            txn.execute_unprepared(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('p', 'm', 'c', 'n')",
            )
            .await
            .expect("insert");
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!("boom");
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let w = tokio::spawn(async move { r.sessions.create(new_session()).await });
        assert!(panicking.await.is_err());
        w
    };
    tokio::time::timeout(Duration::from_secs(5), queued)
        .await
        .expect("in time")
        .expect("joined")
        .expect("write");
    assert_eq!(count(&db, "sessions WHERE id = 'p'").await, 0);
    assert_eq!(count(&db, "sessions").await, 1);
}

/// `close()` while writes are queued: it lets them land (a graceful
/// shutdown loses none), then refuses later writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_the_writes_queued_before_it() {
    let (dir, config) = crate::helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let blocker = db.begin_write().await.expect("hold the writer");
    let mut writes = Vec::new();
    for _ in 0..4 {
        let r = repos.clone();
        writes.push(tokio::spawn(async move {
            r.sessions.create(new_session()).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let closing = tokio::spawn(db.clone().close());
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(blocker);
    tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .expect("close returned")
        .expect("joined")
        .expect("closed");
    let mut ok = 0;
    for w in writes {
        let r = tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("write answered")
            .expect("joined");
        assert!(
            r.is_ok(),
            "a write queued before close failed: {:?}",
            r.map(|_| ())
        );
        ok += 1;
    }
    let late = repos.sessions.create(new_session()).await;
    assert!(
        matches!(late, Err(Error::WriteAbandoned)),
        "{:?}",
        late.map(|_| ())
    );
    drop(repos);
    drop(db);
    let again = init_database(&config).await.expect("reopen");
    assert_eq!(ok, 4);
    assert_eq!(
        count(&again, "sessions").await,
        4,
        "a queued write was lost"
    );

    drop(dir);
}

/// Two handles (two pools, two writer tasks) on one file in one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_lose_nothing() {
    let (_dir, config) = crate::helpers::sqlite_config();
    let a = init_database(&config).await.expect("a");
    let b = init_database(&config).await.expect("b");
    let (ra, rb) = (Repositories::new(&a), Repositories::new(&b));
    let (sa, _) = ra
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("a session");
    let (sb, _) = rb
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("b session");
    let mut tasks = tokio::task::JoinSet::new();
    for t in 1..=40 {
        let (ra, rb, sa, sb) = (ra.clone(), rb.clone(), sa.id.clone(), sb.id.clone());
        tasks.spawn(async move { ra.turns.record_turn(chain_turn(&sa, t)).await.map(|_| ()) });
        tasks.spawn(async move { rb.turns.record_turn(chain_turn(&sb, t)).await.map(|_| ()) });
    }
    // One handle holds a write transaction for a while meanwhile.
    let txn = a.begin_write().await.expect("a writes");
    tokio::time::sleep(Duration::from_millis(500)).await;
    txn.commit().await.expect("commit");
    while let Some(done) = tasks.join_next().await {
        done.expect("joined").expect("a turn");
    }
    assert_eq!(count(&a, "scoring_history").await, 80);
    assert_eq!(crate::fixtures::turn_count(&ra, &sb.id).await, 40);
}

/// Another process holds the write lock far longer than the busy timeout
/// while eight turns queue: each caller hears `Busy` within about one busy
/// timeout of calling — not one timeout per write ahead of it — and the
/// same turns go through once the lock is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_behind_another_process_lock_wait_one_busy_timeout_at_most() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(400);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(start(&repos).await);
    }
    let other = helpers::outside_connection(&db).await;
    other
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .expect("the lock");
    let mut tasks = tokio::task::JoinSet::new();
    for session in sessions.clone() {
        let repos = repos.clone();
        tasks.spawn(async move {
            let called = Instant::now();
            let result = repos.turns.record_turn(chain_turn(&session, 1)).await;
            (called.elapsed(), result.map(|_| ()))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (waited, result) = done.expect("joined");
        assert!(matches!(result, Err(Error::Busy(_))), "{result:?}");
        assert!(
            waited < Duration::from_millis(900),
            "a caller waited {waited:?} for Busy with a 400 ms busy timeout"
        );
    }
    other.execute_unprepared("ROLLBACK").await.expect("release");
    for session in &sessions {
        repos
            .turns
            .record_turn(chain_turn(session, 1))
            .await
            .expect("the same turn, once the lock is free");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_the_task_that_holds_the_writer_fails_in_time_instead_of_waiting_for_itself() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(300);
    let db = &init_database(&config).await.expect("init");
    let repos = Repositories::new(db);
    let txn = db.begin_write().await.expect("hold the writer");

    let within = Duration::from_secs(3);
    let write = tokio::time::timeout(within, repos.sessions.create(new_session()))
        .await
        .expect("the write answered instead of waiting for its own task forever");
    assert!(
        matches!(write, Err(Error::WriterHeldByThisTask)),
        "{write:?}"
    );
    let second = tokio::time::timeout(within, db.begin_write())
        .await
        .expect("a second begin_write answered instead of waiting forever");
    assert!(
        matches!(second, Err(Error::WriterHeldByThisTask)),
        "{:?}",
        second.map(|_| ())
    );
    assert_eq!(
        Error::WriterHeldByThisTask.kind(),
        "writer_held_by_this_task"
    );

    // Work inside the transaction is the way, and once it ends the task
    // writes as usual.
    txn.execute_unprepared(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('inside', 'm', 'c', 'n')",
    )
    .await
    .expect("a write inside the transaction");
    txn.commit().await.expect("commit");
    tokio::time::timeout(within, repos.sessions.create(new_session()))
        .await
        .expect("in time")
        .expect("a write after the transaction ended");
    assert_eq!(count(db, "sessions").await, 2);
}

/// With the writer held past the busy timeout, more writes than the queue
/// holds are each answered `Busy` within about one busy timeout (those
/// that found the queue full, and those that waited in it), as is a
/// `begin_write`; none of them lands once the writer is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_behind_a_writer_held_too_long_answer_busy_in_time_and_never_land() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(300);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let holder = db.begin_write().await.expect("hold the writer");

    let writes = interview_persistence::WRITER_QUEUE_CAPACITY + 44;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..writes {
        let repos = repos.clone();
        handles.push(tokio::spawn(async move {
            repos.sessions.create(new_session()).await
        }));
    }
    let lease = {
        let db = db.clone();
        tokio::spawn(async move { db.begin_write().await.map(|_| ()) })
    };
    for handle in handles {
        let answer = tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("every write answered in time")
            .expect("joined");
        assert!(matches!(answer, Err(Error::Busy(_))), "{answer:?}");
    }
    let answer = tokio::time::timeout(Duration::from_secs(10), lease)
        .await
        .expect("begin_write answered in time")
        .expect("joined");
    assert!(matches!(answer, Err(Error::Busy(_))), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusals took {:?} for a busy timeout of 300 ms",
        started.elapsed()
    );

    drop(holder);
    repos
        .sessions
        .create(new_session())
        .await
        .expect("a write once the writer is free");
    assert_eq!(count(&db, "sessions").await, 1, "a refused write landed");
}

/// Futures joined in one task may wait for each other's write transaction:
/// that is no self-deadlock, and neither is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactions_joined_in_one_task_wait_for_each_other() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let insert = |id: &'static str| async move {
        let txn = db.begin_write().await?;
        txn.execute_unprepared(&format!(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('{id}', 'm', 'c', 'n')"
        ))
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        txn.commit().await
    };
    let (a, b, c) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            insert("a"),
            insert("b"),
            repos.sessions.create(new_session())
        )
    })
    .await
    .expect("in time");
    a.expect("the first transaction");
    b.expect("the second transaction, after the first");
    c.expect("a repository write, after both");
    assert_eq!(count(db, "sessions").await, 3);
}
