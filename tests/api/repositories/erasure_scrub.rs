//! The scrub an erasure owes (`session_erasures.scrubbed_at`) against what
//! an adversarial review tried: a reused id erased again, a lock that
//! holds up PostgreSQL's vacuum, a schema from before the record.

use std::time::{Duration, Instant};

use entity::kg_edge::EdgeType;
use interview_persistence::entity::SessionId;
use interview_persistence::repositories::{NewSession, Repositories};
use interview_persistence::repositories::{
    NodeRef, TurnEdge, TurnNode, TurnRecord, TurnScores, TurnUtterance,
};
use interview_persistence::{DatabaseConfig, init_database};
use serde_json::json;

use crate::fixtures::{file_of, found_in_files};

use super::new_session;

fn turn(session_id: &SessionId, t: i32, mark: &str, nodes: usize) -> TurnRecord {
    TurnRecord {
        session_id: session_id.to_owned(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: format!("{mark}answer {t}"),
            discourse_markers: vec![format!("{mark}discourse")],
        },
        nodes: (0..nodes)
            .map(|k| TurnNode {
                label: format!("{mark}label {t}.{k} {}", "l".repeat(40)),
                node_type: "attribute".into(),
                confidence: 0.8,
                properties: json!({"said": format!("{mark}nodeproperty")}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            })
            .collect(),
        edges: vec![TurnEdge {
            source: NodeRef::New(0),
            target: NodeRef::New(1),
            edge_type: EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({"why": format!("{mark}edgeproperty")}),
        }],
        scores: TurnScores {
            coverage_score: 0.1,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: "deepen".into(),
            strategy_reasoning: Some(format!("{mark}reasoning")),
            scorer_details: json!({"quote": format!("{mark}scorerdetail")}),
        },
        covered_elements: vec![],
        coverage_score: 0.1,
        system_utterance: Some(TurnUtterance {
            text: format!("{mark}question"),
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

fn tag() -> String {
    format!("ZQ{}", uuid::Uuid::new_v4().simple())
}

/// Records `turns` turns of the session `id` side by side with `others`,
/// its text marked with `mark` (index pages split in their middle, so a
/// delete without `VACUUM` leaves moved cells behind).
async fn record_side_by_side(
    repos: &Repositories,
    id: &str,
    others: &[interview_persistence::entity::SessionId],
    mark: &str,
    turns: i32,
    others_from: i32,
) {
    for t in 1..=turns {
        repos
            .turns
            .record_turn(turn(&id.into(), t, mark, 4))
            .await
            .expect("turn");
        for (i, other) in others.iter().enumerate() {
            repos
                .turns
                .record_turn(turn(other, others_from + t, &format!("OTHER{i}"), 4))
                .await
                .expect("turn");
        }
    }
}

/// A session id erased while a reader held the WAL (its truncation is left
/// to the checkpointer), then reused and erased again: the checkpointer's
/// truncation records the scrub of the *second* erasure as done although
/// no `VACUUM` ran after it, and the second erasure's own scrub then finds
/// nothing owed. The erasure record says `scrubbed_at` set and
/// `vacuumed: true`, yet the second erasure's text is still in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_id_erased_again_is_not_recorded_scrubbed_before_its_own_vacuum() {
    let (_dir, mut config): (_, DatabaseConfig) = crate::helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(1500);
    config.checkpoint_interval = Duration::from_millis(20);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let id = uuid::Uuid::now_v7().to_string();
    let with_id = || NewSession {
        id: Some(id.as_str().into()),
        config: json!({"note": "x"}),
        ..new_session()
    };
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(
            repos
                .sessions
                .create(new_session())
                .await
                .expect("create")
                .id,
        );
    }

    // First life of the id, erased while a reader holds a snapshot: the
    // WAL cannot be truncated, the checkpointer is left to do it.
    repos.sessions.create(with_id()).await.expect("create");
    let first = tag();
    record_side_by_side(&repos, &id, &others, &first, 5, 0).await;
    let reader = db.dedicated_connection().await.expect("a reader");
    let snapshot = sea_orm::TransactionTrait::begin(&reader)
        .await
        .expect("begin");
    assert!(crate::fixtures::count_in(&snapshot, "utterances").await > 0);
    let record = repos
        .sessions
        .delete(&id.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(false));
    assert_eq!(record.scrubbed_at, None);

    // The id is reused (a caller's own id), and its new text recorded.
    repos
        .sessions
        .create(with_id())
        .await
        .expect("create again");
    let second = tag();
    record_side_by_side(&repos, &id, &others, &second, 40, 100).await;
    assert!(!found_in_files(&path, std::slice::from_ref(&second)).is_empty());
    // Statistics gathered once (`ANALYZE`, as `PRAGMA optimize` does):
    // sqlite_stat4 samples index keys, labels among them.
    let outside = crate::helpers::outside_connection(&db).await;
    sea_orm::ConnectionTrait::execute_unprepared(&outside, "ANALYZE")
        .await
        .expect("analyze");
    outside.close().await.expect("close");

    // The second erasure. A write transaction held meanwhile only orders
    // the queue as chance would: the erasure's `begin_write`, then the
    // checkpointer's round (the reader has ended by then), then the
    // erasure's scrub.
    let gate = db.begin_write().await.expect("gate");
    let erasing = {
        let repos = repos.clone();
        let id = id.clone();
        tokio::spawn(async move { repos.sessions.delete(&id.as_str().into()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(snapshot);
    reader.close().await.expect("close the reader");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(gate);
    let started = Instant::now();
    let record = tokio::time::timeout(Duration::from_secs(20), erasing)
        .await
        .expect("the erasure answers in time")
        .expect("the task")
        .expect("erase");
    eprintln!(
        "second erasure answered in {:?}: {record:?}",
        started.elapsed()
    );

    let samples: i64 = crate::fixtures::query_one(
        &db,
        &format!(
            "SELECT count(*) FROM sqlite_stat4 WHERE instr(sample, CAST('{second}' AS BLOB)) > 0"
        ),
    )
    .await;
    let mut left = found_in_files(&path, std::slice::from_ref(&second));
    if samples > 0 {
        left.push((format!("{samples} live sqlite_stat4 rows"), String::new()));
    }
    let stored = repos
        .sessions
        .erasure(&id.as_str().into())
        .await
        .expect("record");
    assert!(
        stored.scrubbed_at.is_none() || left.is_empty(),
        "the second erasure is recorded as scrubbed ({:?}, vacuumed {:?}) while its text is \
         still in {left:?}",
        stored.scrubbed_at,
        record.vacuumed
    );
    db.close().await.expect("close");
}

/// PostgreSQL: while another session holds a lock that conflicts with
/// `VACUUM` on one of the six tables (SHARE UPDATE EXCLUSIVE: an `ANALYZE`,
/// a `CREATE INDEX CONCURRENTLY`, the autovacuum of an anti-wraparound
/// pass), an owed scrub's `VACUUM` waits for it without any bound, and so
/// does `Database::connect`, which completes owed scrubs before it
/// returns. Reads and writes of the tables go on meanwhile (the lock does
/// not block them); only opening hangs. On SQLite every step of the same
/// path is bounded by the busy timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_on_postgres_does_not_hang_behind_a_lock_that_holds_up_an_owed_vacuum() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let Some((_database, mut config)) = crate::helpers::postgres_config().await else {
        return;
    };
    config.busy_timeout = Duration::from_secs(1);
    config.acquire_timeout = Duration::from_secs(2);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session = crate::fixtures::start(&repos).await;
    repos
        .turns
        .record_turn(crate::turn_builders::chain_turn(&session, 1))
        .await
        .expect("turn");

    // Another session holds SHARE UPDATE EXCLUSIVE on one table for a
    // while (as ANALYZE or CREATE INDEX CONCURRENTLY do).
    let outside = crate::helpers::outside_connection(&db).await;
    let holder = outside.begin().await.expect("begin");
    holder
        .execute_unprepared("LOCK TABLE kg_edges IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .expect("lock");

    // The erasure commits; its scrub's VACUUM waits behind the lock.
    let erasing = {
        let repos = repos.clone();
        let session = session.clone();
        tokio::spawn(async move { repos.sessions.delete(&session).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while repos.sessions.erasure(&session).await.is_err() {
        assert!(Instant::now() < deadline, "the erasure never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Writes and reads of the table go on beside the lock.
    let other = crate::fixtures::start(&repos).await;
    repos
        .turns
        .record_turn(crate::turn_builders::chain_turn(&other, 1))
        .await
        .expect("a turn beside the lock");

    // A process starting now (a service restarted) opens the database.
    let started = Instant::now();
    let opened = tokio::time::timeout(
        Duration::from_secs(15),
        interview_persistence::Database::connect(&config),
    )
    .await;
    let erase_answered = erasing.is_finished();
    let waiting_vacuums: i64 = holder
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM%' \
             AND wait_event_type = 'Lock'",
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row")
        .try_get_by_index(0)
        .expect("count");
    let _ = holder.rollback().await;
    let _ = outside.close().await;
    let opened = opened.unwrap_or_else(|_| {
        panic!(
            "Database::connect did not return within {:?} (busy timeout {:?}, acquire timeout \
             {:?}); the erasure itself had answered: {erase_answered}; VACUUMs waiting for a lock: \
             {waiting_vacuums}",
            started.elapsed(),
            config.busy_timeout,
            config.acquire_timeout,
        )
    });
    opened.expect("connect").close().await.expect("close");
    db.close().await.expect("close");
}

/// A database erased under the previous schema (migrations 1-3: the
/// record without `scrubbed_at`): the migration says such records "count
/// as owed" (the first open after the upgrade scrubs the file), and
/// docs/health.md says `erasures_unscrubbed` is `null` "before the schema
/// has the record". Health says `[]` — no scrub owed — instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_of_a_database_erased_before_scrubbed_at_does_not_say_nothing_is_owed() {
    use interview_persistence::migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let (_dir, config) = crate::helpers::sqlite_config();
    let mut options = sea_orm::ConnectOptions::new(config.url.expose());
    options
        .max_connections(1)
        .map_sqlx_sqlite_opts(|o| o.foreign_keys(false));
    let outside = sea_orm::Database::connect(options).await.expect("connect");
    Migrator::up(&outside, Some(3))
        .await
        .expect("migrate to the version before scrubbed_at");
    outside
        .execute_unprepared(
            "INSERT INTO session_erasures (session_id, erased_at) \
             VALUES ('erased-before', '2026-11-30 10:00:00.000000')",
        )
        .await
        .expect("an erasure of the previous version");
    outside.close().await.expect("close");

    let health = interview_persistence::check_health_at(
        &config,
        interview_persistence::HealthOptions::default(),
    )
    .await;
    assert_ne!(
        health.erasures_unscrubbed,
        Some(Vec::new()),
        "health says no scrub is owed: {health:?}"
    );
}
