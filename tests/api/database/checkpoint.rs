//! Background WAL checkpoints (`src/database/checkpoint.rs`): the WAL
//! stays bounded.

use std::time::{Duration, Instant};

use interview_persistence::init_database;
use interview_persistence::repositories::Repositories;
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::fixtures::{file_of, integrity, start, wal_bytes};
use crate::helpers;
use crate::turn_builders::chain_turn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_grows_under_a_long_reader_and_shrinks_back_under_the_limit_after_it() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.wal_size_limit = 256 * 1024;
    config.checkpoint_after_commits = 4;
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;

    let reader = db.dedicated_connection().await.expect("a reader");
    let snapshot = reader.begin().await.expect("begin");
    snapshot
        .execute_unprepared("SELECT COUNT(*) FROM kg_nodes")
        .await
        .expect("hold a snapshot");
    for t in 1..=60 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = wal_bytes(&path);
    assert!(
        grown > 2 * config.wal_size_limit,
        "the WAL did not grow past the limit: {grown} bytes"
    );

    drop(snapshot);
    reader.close().await.expect("close the reader");
    let mut t = 61;
    let started = Instant::now();
    while wal_bytes(&path) > config.wal_size_limit && started.elapsed() < Duration::from_secs(10) {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
        t += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shrunk = wal_bytes(&path);
    assert!(
        shrunk <= config.wal_size_limit,
        "the WAL stayed at {shrunk} bytes (grew to {grown})"
    );
    assert_eq!(integrity(&db).await, "ok");
}
