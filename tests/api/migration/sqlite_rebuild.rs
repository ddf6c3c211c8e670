//! The table-rebuild step (`migration/src/sqlite_rebuild.rs`): no row lost,
//! no cascade fired, and nothing changed when it fails.

use interview_persistence::migration::sqlite_rebuild::{Indexes, Rebuild, rebuild_table};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::fixtures::{contents, populate};
use crate::helpers;

const KG_NODES_COLUMNS: [&str; 9] = [
    "id",
    "session_id",
    "label",
    "node_type",
    "confidence",
    "properties",
    "source_utterance_ids",
    "recorded_at",
    "superseded_by",
];

/// kg_nodes rebuilt into `definition`, every column copied.
fn kg_nodes_rebuild(definition: &str, indexes: Indexes) -> Rebuild<'_> {
    Rebuild {
        table: "kg_nodes",
        definition,
        columns: &KG_NODES_COLUMNS,
        indexes,
    }
}

/// `kg_nodes`' own definition, as SQLite keeps it (between the outer
/// parentheses of its CREATE TABLE).
async fn definition_of(conn: &impl ConnectionTrait, table: &str) -> String {
    let sql: String = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?",
            [table.into()],
        ))
        .await
        .expect("schema")
        .expect("the table")
        .try_get_by_index(0)
        .expect("sql");
    let open = sql.find('(').expect("(");
    let close = sql.rfind(')').expect(")");
    sql[open + 1..close].to_owned()
}

async fn schema_text(conn: &impl ConnectionTrait) -> Vec<String> {
    conn.query_all_raw(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name",
    ))
    .await
    .expect("schema")
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).expect("text"))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_a_parent_table_keeps_every_edge_and_cover() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 6).await;
    let before = contents(db.connection()).await;
    let schema_before = schema_text(db.connection()).await;

    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    let definition = definition_of(&outside, "kg_nodes").await;
    let txn = outside.begin().await.expect("begin");
    rebuild_table(&txn, &kg_nodes_rebuild(&definition, Indexes::Keep))
        .await
        .expect("the rebuild");
    txn.commit().await.expect("commit");
    outside.close().await.expect("close");

    assert_eq!(
        contents(db.connection()).await,
        before,
        "a row changed or went"
    );
    // Same definition, same indexes: only the table's place in the file moved.
    let mut schema_after = schema_text(db.connection()).await;
    let mut schema_before = schema_before;
    schema_after.sort();
    schema_before.sort();
    assert_eq!(schema_after, schema_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_with_foreign_keys_on_is_refused_before_it_changes_anything() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 3).await;
    let before = contents(db.connection()).await;
    let outside = helpers::outside_connection(db).await; // foreign keys on
    let definition = definition_of(&outside, "kg_nodes").await;
    let txn = outside.begin().await.expect("begin");
    let refused = rebuild_table(&txn, &kg_nodes_rebuild(&definition, Indexes::Keep)).await;
    match refused {
        Err(sea_orm::DbErr::Migration(message)) => {
            assert!(message.contains("CASCADE"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    txn.commit().await.expect("commit what there is (nothing)");
    assert_eq!(contents(db.connection()).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_that_fails_after_the_copy_leaves_the_previous_table() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 3).await;
    let before = contents(db.connection()).await;
    let schema_before = schema_text(db.connection()).await;

    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    let definition = definition_of(&outside, "kg_nodes").await;
    let txn = outside.begin().await.expect("begin");
    // The new table is made, filled, swapped in — then an index fails.
    let failed = rebuild_table(
        &txn,
        &kg_nodes_rebuild(
            &definition,
            Indexes::Replace(vec![
                "CREATE INDEX broken ON kg_nodes (no_such_column)".into(),
            ]),
        ),
    )
    .await;
    assert!(failed.is_err());
    txn.rollback().await.expect("rollback");
    outside.close().await.expect("close");

    assert_eq!(contents(db.connection()).await, before);
    assert_eq!(schema_text(db.connection()).await, schema_before);
}
