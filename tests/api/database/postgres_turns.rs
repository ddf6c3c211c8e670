//! PostgreSQL: a turn written as ONE prepared statement with every value
//! bound (`TurnPlan::postgres_statement`): hostile values round-trip and
//! never appear in the SQL text, cancellation, the pool's limit, conflicts
//! named from the violated index, timeouts, and other writes.

use interview_persistence::entity::SessionId;
use std::time::Duration;

use interview_persistence::entity::kg_edge::EdgeType;
use interview_persistence::repositories::{
    NodeRef, Repositories, TurnEdge, TurnNode, TurnRecord, TurnScores, TurnUtterance,
};
use interview_persistence::{ConflictKind, Error};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::json;

use crate::fixtures::{count, start};
use crate::helpers;

fn hostile_text() -> String {
    let mut s =
        String::from("a\\b\\\\c 'q' ''x\" $1 $2 ? ?? -- c /* d */ e\\' E'x' $$dollar$$ :x [0] ");
    for c in 1u32..32 {
        s.push(char::from_u32(c).unwrap());
    }
    s.push('\u{7f}');
    s.push_str("\u{85}\u{2028}\u{FEFF}🥛 \\n \\0 \\x41 \\u0041 \\101 ");
    s
}

fn turn(session_id: &SessionId, t: i32, text: &str, floats: [f64; 4]) -> TurnRecord {
    TurnRecord {
        session_id: session_id.to_owned(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: text.to_owned(),
            discourse_markers: vec![text.to_owned(), "$1".into(), "\\".into()],
        },
        nodes: vec![
            TurnNode {
                label: text.to_owned(),
                node_type: format!("type {text}"),
                confidence: floats[0],
                properties: json!({text: text, "f": [5e-324, 1e-300, 1e300, 0.30000000000000004, 1.7976931348623157e308, -0.0, u64::MAX, i64::MIN]}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            },
            TurnNode {
                label: "plain".into(),
                node_type: "attribute".into(),
                confidence: floats[1],
                properties: json!({}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            },
        ],
        edges: vec![TurnEdge {
            source: NodeRef::New(0),
            target: NodeRef::New(1),
            edge_type: EdgeType::LeadsTo,
            confidence: floats[2],
            properties: json!({"k": text}),
        }],
        scores: TurnScores {
            coverage_score: floats[0],
            depth_score: floats[1],
            saturation_score: floats[2],
            novelty_score: Some(floats[3]),
            richness_score: None,
            strategy_selected: text.to_owned(),
            strategy_reasoning: Some(text.to_owned()),
            scorer_details: json!({"x": text, "n": 5e-324}),
        },
        covered_elements: vec![("e0".into(), NodeRef::New(0))],
        coverage_score: floats[3],
        system_utterance: None,
        node_tracker_state: None,
        config_patch: None,
        velocity: None,
        focus: None,
        slot_mappings: Vec::new(),
        canonical_edges: Vec::new(),
        signals: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip_bound_in_one_statement() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    let text = hostile_text();
    let floats = [5e-324, 1e-300, 0.1 + 0.2, 1.0 - f64::EPSILON / 2.0];
    let recorded = repos
        .turns
        .record_turn(turn(&session_id, 1, &text, floats))
        .await
        .expect("record");
    assert_eq!(recorded.newly_covered, ["e0"]);
    let ctx = repos.turns.context(&session_id, 10).await.expect("ctx");
    let u = &ctx.recent_utterances[0];
    assert_eq!(u.text, text);
    assert_eq!(
        u.discourse_markers.as_ref().unwrap().0,
        vec![text.clone(), "$1".into(), "\\".into()]
    );
    let n = ctx
        .current_nodes
        .iter()
        .find(|n| n.label == text)
        .expect("node");
    assert_eq!(n.node_type, format!("type {text}"));
    assert_eq!(n.confidence.to_bits(), floats[0].to_bits());
    let expected_props = json!({text.clone(): text, "f": [5e-324, 1e-300, 1e300, 0.30000000000000004, 1.7976931348623157e308, -0.0, u64::MAX, i64::MIN]});
    assert_eq!(n.properties.as_ref().unwrap(), &expected_props);
    let s = &ctx.scoring_history[0];
    assert_eq!(s.coverage_score.unwrap().to_bits(), floats[0].to_bits());
    assert_eq!(s.depth_score.to_bits(), floats[1].to_bits());
    assert_eq!(s.saturation_score.to_bits(), floats[2].to_bits());
    assert_eq!(s.novelty_score.unwrap().to_bits(), floats[3].to_bits());
    assert_eq!(s.strategy_selected, text);
    assert_eq!(
        ctx.session.coverage_score.unwrap().to_bits(),
        floats[3].to_bits()
    );
    assert_eq!(ctx.edges[0].confidence.to_bits(), floats[2].to_bits());
    // update_metrics RETURNING through the script, decoded from text rows
    let updated = repos
        .sessions
        .update_metrics(&session_id, i32::MAX, 5e-324)
        .await
        .expect("metrics");
    assert_eq!(updated.turn_count, i32::MAX);
    assert_eq!(
        updated.coverage_score.unwrap().to_bits(),
        5e-324f64.to_bits()
    );
    let again = repos.sessions.get(&session_id).await.expect("get");
    assert_eq!(updated, again);
    let cfg = json!({"a": text, "b": [1e300, 5e-324], "c": null});
    let replaced = repos
        .sessions
        .replace_config(&session_id, cfg.clone())
        .await
        .expect("cfg");
    assert_eq!(replaced.config, cfg);
}

async fn states(db: &interview_persistence::Database) -> Vec<(i32, String, String)> {
    let rows = db
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pid, coalesce(state, ''), left(query, 60) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        ))
        .await
        .expect("states");
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
            )
        })
        .collect()
}

/// A turn given up on while it waits for a lock: the server has the
/// whole statement, so the turn lands whole or not at all, and its retry
/// says which. The statement the server waits on carries no participant's
/// words: they are bound values, not SQL text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_given_up_while_it_waits_lands_whole_or_not_at_all_and_its_sql_holds_no_words() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    let holder = db.connection().begin().await.expect("a transaction");
    holder
        .execute_unprepared("LOCK TABLE kg_edges IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    let words = "the participant said: oat milk 🥛 reminds me of home";
    let fut = {
        let repos = repos.clone();
        let t = turn(&session_id, 1, words, [0.5, 0.5, 0.5, 0.5]);
        async move { repos.turns.record_turn(t).await }
    };
    let task = tokio::spawn(tokio::time::timeout(Duration::from_millis(2000), fut));
    let (_, query) = helpers::lock_waiter(db, Duration::from_secs(30)).await;
    assert!(query.starts_with("WITH progress AS"), "{query}");
    assert!(
        !query.contains("oat milk") && !query.contains('🥛'),
        "a participant's words in the SQL text: {query}"
    );
    let res = task.await.expect("joined");
    assert!(res.is_err(), "the turn should have waited past its timeout");
    holder.commit().await.expect("release");

    // The server ends the statement once the lock is free.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while states(db)
        .await
        .iter()
        .any(|(_, state, _)| state == "active")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (utterances, nodes, edges) = (
        count(db, "utterances").await,
        count(db, "kg_nodes").await,
        count(db, "kg_edges").await,
    );
    let landed = utterances > 0;
    let expected = if landed { (2, 2, 1) } else { (0, 0, 0) };
    assert_eq!((utterances, nodes, edges), expected, "a partial turn");
    let retried = repos
        .turns
        .record_turn(turn(&session_id, 1, words, [0.5, 0.5, 0.5, 0.5]))
        .await;
    match retried {
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateTurn { .. },
            ..
        }) => assert!(landed, "refused, but nothing landed"),
        Ok(_) => assert!(!landed, "written twice"),
        other => panic!("the retry answered {other:?}"),
    }
}

async fn backends(conn: &impl ConnectionTrait) -> i64 {
    conn.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'interview-persistence'",
    ))
    .await
    .expect("count")
    .expect("row")
    .try_get_by_index::<i64>(0)
    .expect("i64")
}

/// README: "keeps its own pool of DATABASE_MAX_CONNECTIONS connections —
/// keep instances × pool size below the server's max_connections".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_turns_do_not_exceed_the_pool_size_on_the_server() {
    let Some((_database, mut config)) = helpers::postgres_config().await else {
        return;
    };
    config.max_connections = 2;
    config.min_connections = 0;
    let db = interview_persistence::init_database(&config)
        .await
        .expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    let outside = helpers::outside_connection(&db).await;
    let holder = outside.begin().await.expect("a transaction");
    holder
        .execute_unprepared("LOCK TABLE kg_edges IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    // A service whose requests time out while the lock is held; each
    // retry gives up after 200 ms.
    for t in 1..=8 {
        let r = tokio::time::timeout(
            Duration::from_millis(200),
            repos
                .turns
                .record_turn(turn(&session_id, t, "x", [0.5, 0.5, 0.5, 0.5])),
        )
        .await;
        assert!(r.is_err(), "turn {t} should wait for the lock");
    }
    let open = backends(&holder).await;
    holder.rollback().await.expect("release");
    assert!(
        open <= i64::from(config.max_connections),
        "{open} server connections for a pool of {}",
        config.max_connections
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_metrics_reads_back_any_session_the_entities_can_hold() {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    for (i, date) in [
        chrono::NaiveDate::from_ymd_opt(1999, 12, 31).unwrap(),
        chrono::NaiveDate::from_ymd_opt(0, 6, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(10000, 1, 1).unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut model = crate::fixtures::session_model(&format!("far-{i}"));
        model.created_at = date.and_hms_opt(12, 0, 0).unwrap();
        let txn = db.begin_write().await.expect("writer");
        model
            .clone()
            .into_active_model()
            .insert(&*txn)
            .await
            .expect("insert");
        txn.commit().await.expect("commit");
        let read = repos.sessions.get(&model.id).await.expect("get");
        assert_eq!(read.created_at, model.created_at);
        let updated = repos.sessions.update_metrics(&model.id, 7, 0.5).await;
        let after = repos.sessions.get(&model.id).await.expect("get").turn_count;
        eprintln!(
            "{date}: {:?}; turn_count now {after}",
            updated.as_ref().map(|m| m.turn_count)
        );
        assert!(
            updated.is_ok(),
            "{date}: {updated:?} (turn_count now {after})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minimal_turn_and_its_conflicts_are_named_from_the_violated_index() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    let mut t = turn(&session_id, 1, "only", [0.5, 0.5, 0.5, 0.5]);
    t.nodes.clear();
    t.edges.clear();
    t.covered_elements.clear();
    let r = repos.turns.record_turn(t.clone()).await.expect("minimal");
    assert!(r.node_ids.is_empty() && r.newly_covered.is_empty());
    let again = repos.turns.record_turn(t.clone()).await;
    assert!(
        matches!(
            &again,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateTurn { .. },
                ..
            })
        ),
        "{again:?}"
    );
    // scores alone exist for turn 2
    let mut t2 = t.clone();
    t2.turn_number = 2;
    repos
        .scoring
        .save(interview_persistence::repositories::NewScores {
            session_id: session_id.clone(),
            turn_number: 2,
            scores: t2.scores.clone(),
        })
        .await
        .expect("scores");
    let dup = repos.turns.record_turn(t2).await;
    assert!(
        matches!(
            &dup,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateTurn { turn_number: 2, .. },
                ..
            })
        ),
        "{dup:?}"
    );
    assert_eq!(count(db, "utterances").await, 1);
    // a node duplicating a current one, and an edge repeated within the turn
    let mut t3 = turn(&session_id, 3, "n", [0.5, 0.5, 0.5, 0.5]);
    t3.edges.push(t3.edges[0].clone());
    let dup_edge = repos.turns.record_turn(t3).await;
    assert!(
        matches!(
            &dup_edge,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateEdge { .. },
                ..
            })
        ),
        "{dup_edge:?}"
    );
    let t4 = turn(&session_id, 4, "n", [0.5, 0.5, 0.5, 0.5]);
    repos.turns.record_turn(t4).await.expect("t4");
    let t5 = turn(&session_id, 5, "n", [0.5, 0.5, 0.5, 0.5]);
    let dup_node = repos.turns.record_turn(t5).await;
    assert!(
        matches!(
            &dup_node,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateCurrentNode { .. },
                ..
            })
        ),
        "{dup_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_on_the_server_answers_busy_and_the_turn_retries() {
    let Some((_database, mut config)) = helpers::postgres_config().await else {
        return;
    };
    config.max_connections = 1;
    let db = interview_persistence::init_database(&config)
        .await
        .expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    let outside = helpers::outside_connection(&db).await;
    outside
        .execute_unprepared("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET lock_timeout = 200', current_database()); END $$")
        .await
        .expect("set");
    db.close().await.ok();
    let db = interview_persistence::init_database(&config)
        .await
        .expect("init");
    let repos2 = Repositories::new(&db);
    let _ = repos;
    let holder = outside.begin().await.expect("txn");
    holder
        .execute_unprepared("LOCK TABLE kg_edges IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    let r = repos2
        .turns
        .record_turn(turn(&session_id, 1, "x", [0.5, 0.5, 0.5, 0.5]))
        .await;
    eprintln!("lock_timeout: {r:?}");
    assert!(matches!(r, Err(Error::Busy(_))), "{r:?}");
    holder.rollback().await.unwrap();
    repos2
        .turns
        .record_turn(turn(&session_id, 1, "x", [0.5, 0.5, 0.5, 0.5]))
        .await
        .expect("after");
}
