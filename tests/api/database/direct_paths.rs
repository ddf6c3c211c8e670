//! SQLite's direct paths (the writer's rusqlite connection, the readers
//! of a turn's context): closing, limits, schema changes, files other
//! programs wrote, runtimes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use interview_persistence::repositories::Repositories;
use interview_persistence::{Database, DatabaseConfig, DatabaseUrl, init_database};
use sea_orm::ConnectionTrait;

use crate::fixtures::{file_of, start, wal_bytes};
use crate::helpers;
use crate::turn_builders::chain_turn;

/// `close()` closes every connection, the direct ones (the writer
/// thread's, the context readers) included, before it returns: the last
/// one folds the WAL in, so the `.db` file alone is the whole database.
/// Twenty rounds, half with a context read, since the writer thread closing
/// late was a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_folds_the_wal_in_with_or_without_a_context_read() {
    for round in 0..20 {
        let (_dir, mut config) = helpers::sqlite_config();
        config.checkpoint_interval = Duration::from_secs(3600);
        let db = init_database(&config).await.expect("init");
        let repos = Repositories::new(&db);
        let session_id = start(&repos).await;
        repos
            .turns
            .record_turn(chain_turn(&session_id, 1))
            .await
            .expect("turn 1");
        if round % 2 == 0 {
            repos.turns.context(&session_id, 10).await.expect("context");
        }
        let path = file_of(&db);
        db.close().await.expect("close");
        assert_eq!(
            wal_bytes(&path),
            0,
            "round {round}: closing folds the WAL in"
        );
    }
}

/// A context read whose caller gave up still runs to its end on its
/// blocking thread: `close()` waits for it, so no reader is left open on
/// the file when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_a_context_read_its_caller_gave_up() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.checkpoint_interval = Duration::from_secs(3600);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    for t in 1..=300 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("turn");
    }
    let started = std::time::Instant::now();
    repos
        .turns
        .context(&session_id, u64::MAX)
        .await
        .expect("a whole read");
    let whole_read = started.elapsed();
    let path = std::fs::canonicalize(file_of(&db)).expect("the file");
    let mut given_up = 0;
    for _ in 0..50 {
        let read = repos.turns.context(&session_id, u64::MAX);
        if tokio::time::timeout(whole_read / 4, read).await.is_err() {
            given_up += 1;
            if given_up == 5 {
                break;
            }
        }
    }
    assert_eq!(given_up, 5, "reads given up while they ran");
    db.close().await.expect("close");
    assert_eq!(fds_on(&path), 0, "a reader is still open on the file");
    assert_eq!(wal_bytes(&path), 0, "closing folds the WAL in");
}

/// After `close()` reads through a clone fail, on the SeaORM path and on
/// the direct one alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_read_after_close_fails_like_every_other_read() {
    let test_db = helpers::sqlite().await;
    let repos = Repositories::new(&test_db.db);
    let session_id = start(&repos).await;
    test_db.db.clone().close().await.expect("close");
    let get = repos.sessions.get(&session_id).await;
    assert!(get.is_err(), "sessions.get after close: {get:?}");
    let context = repos.turns.context(&session_id, 10).await;
    assert!(
        context.is_err(),
        "context after close still read the file: {:?}",
        context.map(|c| c.session.id)
    );
}

/// How many descriptors of this process are open on `path`.
fn fds_on(path: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == path))
                .count()
        })
        .unwrap_or(0)
}

/// `max_connections` is "most connections the pool opens": with 2, a
/// burst of turn-context reads must not open dozens of SQLite connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_context_reads_opens_at_most_max_connections() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.max_connections = 2;
    config.min_connections = 0;
    let db = init_database(&config).await.expect("init");
    let repos = Arc::new(Repositories::new(&db));
    let session_id = start(&repos).await;
    for t in 1..=20 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("turn");
    }
    let path = std::fs::canonicalize(file_of(&db)).expect("path");
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak, path) = (stop.clone(), peak.clone(), path.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(fds_on(&path), Ordering::Relaxed);
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (repos, session_id) = (repos.clone(), session_id.clone());
        tasks.spawn(async move {
            for _ in 0..5 {
                repos.turns.context(&session_id, 10).await.expect("context");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    // The sqlx writer, the checkpoint connection, the direct writer, and
    // at most 2 readers of each read path.
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak <= 7,
        "{peak} descriptors open on the database file at once"
    );
}

/// A read on a file without the tables: the SQLite code survives on the
/// SeaORM path (1, SQLITE_ERROR) — and on the direct path?
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_context_read_keeps_its_sqlite_code() {
    let (_dir, config) = helpers::sqlite_config();
    let db = Database::connect(&config)
        .await
        .expect("connect without init");
    let repos = Repositories::new(&db);
    let via_seaorm = repos.sessions.get(&"s".into()).await.expect_err("no table");
    assert_eq!(via_seaorm.sqlite_code(), Some(1), "{via_seaorm:?}");
    let via_direct = repos
        .turns
        .context(&"s".into(), 10)
        .await
        .expect_err("no table");
    assert_eq!(via_direct.sqlite_code(), Some(1), "{via_direct:?}");
}

/// Rows another program (Python's sqlite3) wrote read the same on the
/// direct path as on the SeaORM path (a `mode=ro` handle uses SeaORM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_python_wrote_read_the_same_on_both_paths() {
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn 1");
    let path = file_of(&db);
    {
        let outside = rusqlite::Connection::open(&path).expect("open");
        outside.busy_timeout(Duration::from_secs(5)).expect("busy");
        let stamps = [
            "'2024-01-01T10:00:00+00:00'",
            "'2024-01-01T10:00:00.123456+02:00'",
            "'2024-01-01 10:00'",
            "'2024-01-01T10:00:00'",
            "'2024-01-01 10:00:00.1234567891'",
            "'2024-01-01 10:00:00Z'",
            "'2024-01-01 9:00:00'",
        ];
        for (i, at) in stamps.iter().enumerate() {
            outside
                .execute_batch(&format!(
                    "INSERT INTO kg_nodes (id, session_id, label, node_type, confidence, \
                     properties, source_utterance_ids, recorded_at) VALUES \
                     ('py-{i}', '{session_id}', 'py {i}', 'attribute', 1, 'null', '[]', {at});"
                ))
                .expect("insert as Python would");
        }
        outside
            .execute_batch(&format!(
                "UPDATE sessions SET updated_at = '2024-01-01T10:00:00+00:00', \
                 coverage_score = 1, turn_count = '3' WHERE id = '{session_id}';"
            ))
            .expect("update as Python would");
    }
    let direct = repos.turns.context(&session_id, 10).await;
    let ro = Database::connect(&DatabaseConfig::new(
        DatabaseUrl::sqlite_file_read_only(&path).expect("url"),
    ))
    .await
    .expect("read-only handle");
    let seaorm = Repositories::new(&ro).turns.context(&session_id, 10).await;
    match (direct, seaorm) {
        (Ok(d), Ok(s)) => {
            assert_eq!(d.session, s.session);
            assert_eq!(d.current_nodes, s.current_nodes);
            assert_eq!(d.edges, s.edges);
            assert_eq!(d.recent_utterances, s.recent_utterances);
            assert_eq!(d.scoring_history, s.scoring_history);
        }
        (d, s) => panic!("direct: {:?}\nseaorm: {:?}", d.map(|_| ()), s.map(|_| ())),
    }
}

/// A write that returns rows (`RETURNING *`) after another connection
/// changed the table: the cached statement is re-prepared by SQLite, and
/// the write must still succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_write_after_a_column_is_dropped_succeeds() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    repos
        .sessions
        .update_metrics(&session_id, 1, 0.1)
        .await
        .expect("cached");
    crate::fixtures::exec(db, "ALTER TABLE sessions ADD COLUMN note TEXT")
        .await
        .expect("add a column");
    repos
        .sessions
        .update_metrics(&session_id, 2, 0.2)
        .await
        .expect("after ADD COLUMN");
    repos
        .sessions
        .update_metrics(&session_id, 3, 0.3)
        .await
        .expect("again");
    crate::fixtures::exec(db, "ALTER TABLE sessions DROP COLUMN note")
        .await
        .expect("drop it again");
    let after = repos.sessions.update_metrics(&session_id, 4, 0.4).await;
    assert!(after.is_ok(), "after DROP COLUMN: {after:?}");
}

/// A database dropped without `close()` lets go of its file: its writer
/// thread and readers close their connections, and the last one to close
/// folds the WAL in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_dropped_without_close_releases_its_file() {
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn");
    repos.turns.context(&session_id, 10).await.expect("context");
    drop(repos);
    drop(db);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while wal_bytes(&path) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a connection is still open: the WAL holds {} bytes",
            wal_bytes(&path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A lease, a batch, a context read and `close()` on a current-thread
/// runtime (the writer thread blocks on the runtime for leases).
#[tokio::test]
async fn current_thread_runtime_lease_then_batch_then_close() {
    let test_db = helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    let txn = db.begin_write().await.expect("lease");
    txn.execute_unprepared("UPDATE sessions SET turn_count = turn_count")
        .await
        .expect("update");
    txn.commit().await.expect("commit");
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn");
    repos.turns.context(&session_id, 10).await.expect("context");
    tokio::time::timeout(Duration::from_secs(10), db.close())
        .await
        .expect("close in time")
        .expect("close");
}

/// A table whose physical column order differs from the entity's — a
/// column dropped and added back by `ALTER TABLE`, as the Python system's
/// start-up ALTERs leave them, plus a column the entity does not know —
/// is still read right: rows the writer returns (`RETURNING *`, in the
/// table's order) and the direct readers' rows are decoded by column name,
/// and come back exactly as SeaORM reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_decoded_by_column_name_whatever_the_tables_column_order() {
    use interview_persistence::entity::session;
    use interview_persistence::entity::session::SessionStatus;
    use sea_orm::EntityTrait;

    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn 1");
    crate::fixtures::reorder_the_sessions_columns(db).await;

    // RETURNING * now lists turn_count and coverage_score before
    // completed_at: read by position, completed_at would be read from
    // turn_count, and turn_count from a REAL.
    let completed = repos
        .sessions
        .update_status(&session_id, SessionStatus::Completed)
        .await
        .expect("completed");
    let updated = repos
        .sessions
        .update_metrics(&session_id, 7, 0.25)
        .await
        .expect("metrics");
    let stored = session::Entity::find_by_id(session_id.clone())
        .one(db.connection())
        .await
        .expect("read through SeaORM")
        .expect("the session");
    assert_eq!(updated, stored, "RETURNING * decoded by position");
    assert_eq!(updated.turn_count, 7);
    assert_eq!(updated.coverage_score, Some(0.25));
    assert_eq!(updated.completed_at, completed.completed_at);
    assert!(updated.completed_at.is_some());

    let context = repos.turns.context(&session_id, 10).await.expect("context");
    assert_eq!(context.session, stored, "the direct reader's session");
    assert_eq!(context.current_nodes.len(), 4);
}
