//! The connections `src/database/mod.rs` opens, SQLite-specific: pragmas on
//! every pooled connection, the
//! shared in-memory database, the synchronous level. These have no
//! PostgreSQL counterpart.

use interview_persistence::{
    Database, DatabaseConfig, DatabaseUrl, Synchronous, check_health, init_database,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, TransactionTrait};

use crate::fixtures::{self, count};
use crate::helpers;

async fn pragma(conn: &impl ConnectionTrait, name: &str) -> String {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("PRAGMA {name}"),
        ))
        .await
        .expect("read the pragma")
        .expect("one row");
    row.try_get_by_index::<String>(0)
        .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
        .expect("a value")
}

/// Holds `n` pooled connections at once (each inside an open transaction).
async fn hold_connections(db: &Database, n: u32) -> Vec<DatabaseTransaction> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(
            db.connection()
                .begin()
                .await
                .expect("take a pooled connection"),
        );
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_foreign_keys_synchronous_and_busy_timeout_hold_on_every_pooled_connection() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    assert!(
        db.config().max_connections > 1,
        "the pool must hold more than one connection"
    );
    let held = hold_connections(db, db.config().max_connections).await;
    for (i, connection) in held.iter().enumerate() {
        assert_eq!(
            pragma(connection, "journal_mode").await,
            "wal",
            "connection {i}"
        );
        assert_eq!(
            pragma(connection, "foreign_keys").await,
            "1",
            "connection {i}"
        );
        assert_eq!(
            pragma(connection, "synchronous").await,
            "1",
            "connection {i}: NORMAL is 1"
        );
        assert_eq!(
            pragma(connection, "busy_timeout").await,
            "5000",
            "connection {i}"
        );
    }
    drop(held);
    let dedicated = db.dedicated_connection().await.expect("dedicated");
    assert_eq!(pragma(&dedicated, "foreign_keys").await, "1");
    assert_eq!(pragma(&dedicated, "journal_mode").await, "wal");
}

#[tokio::test]
async fn synchronous_full_and_the_busy_timeout_are_configurable() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.synchronous = Synchronous::Full;
    config.busy_timeout = std::time::Duration::from_millis(1234);
    let db = init_database(&config).await.expect("init");
    let held = hold_connections(&db, 3).await;
    for connection in &held {
        assert_eq!(pragma(connection, "synchronous").await, "2", "FULL is 2");
        assert_eq!(pragma(connection, "busy_timeout").await, "1234");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pooled_connection_sees_the_same_in_memory_database() {
    helpers::init_tracing();
    let config = DatabaseConfig::new(DatabaseUrl::sqlite_memory());
    let db = init_database(&config).await.expect("init in memory");
    fixtures::insert_session(&db).await;

    let held = hold_connections(&db, config.max_connections).await;
    for connection in &held {
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(
                connection.get_database_backend(),
                "SELECT COUNT(*) FROM sessions",
            ))
            .await
            .expect("count")
            .expect("row");
        assert_eq!(row.try_get_by_index::<i64>(0).expect("count"), 1);
        assert_eq!(pragma(connection, "foreign_keys").await, "1");
    }
    drop(held);
    let dedicated = db.dedicated_connection().await.expect("dedicated");
    let row = dedicated
        .query_one_raw(sea_orm::Statement::from_string(
            dedicated.get_database_backend(),
            "SELECT COUNT(*) FROM sessions",
        ))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(row.try_get_by_index::<i64>(0).expect("count"), 1);

    let report = check_health(&db).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.path, ":memory:");

    // Two in-memory databases are two databases.
    let other = init_database(&config).await.expect("another one");
    assert_eq!(count(&other, "sessions").await, 0);
}

#[tokio::test]
async fn a_database_created_here_is_a_plain_wal_file_with_its_constraints_in_the_schema() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    // The WAL mode is persistent: it is in the file header (bytes 18-19 are 2).
    db.connection()
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let path = fixtures::file_of(db);
    let header = std::fs::read(&path).expect("read the file");
    assert_eq!(&header[..16], b"SQLite format 3\0");
    assert_eq!(
        (header[18], header[19]),
        (2, 2),
        "the file is not in WAL mode"
    );

    let schema = db
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL",
        ))
        .await
        .expect("read the schema")
        .into_iter()
        .map(|r| r.try_get_by_index::<String>(0).expect("sql"))
        .collect::<Vec<_>>()
        .join("\n");
    for rule in [
        "ON DELETE CASCADE",
        "ON DELETE SET NULL",
        "CHECK (\"status\" IN ('active', 'completed', 'abandoned'))",
        "CHECK (\"confidence\" BETWEEN 0 AND 1)",
        "WHERE \"superseded_by\" IS NULL",
        "CREATE UNIQUE INDEX \"uq_kg_edges_source_target_type\"",
    ] {
        assert!(schema.contains(rule), "missing from the schema: {rule}");
    }
}
