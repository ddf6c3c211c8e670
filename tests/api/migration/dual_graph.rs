//! Migration 6 (`add_python_dual_graph`) on populated databases, both
//! backends: up and down keep every row of the six tables, the new
//! columns take their defaults, and `down` refuses — changing nothing —
//! while a scoring row has no coverage score.

use interview_persistence::migration::{Migrator, MigratorTrait};
use interview_persistence::repositories::{NewNode, NewSignals, NewSlot, Repositories};
use interview_persistence::schema::{known_migrations, migrate, schema_status};
use interview_persistence::{Database, Error};

use crate::fixtures::{contents, count, exec, populate};
use crate::helpers;
use crate::on_both_backends;

on_both_backends!(
    the_dual_graph_migration_goes_down_and_up_keeping_every_row_of_the_six_tables,
    undoing_it_is_refused_while_a_scoring_row_has_no_coverage_and_changes_nothing,
    a_scoring_row_without_coverage_and_a_node_without_the_new_columns_are_accepted,
);

const DUAL_GRAPH: &str = "m20261203_000006_add_python_dual_graph";

/// The migrations of this build from the dual graph's on.
fn from_the_dual_graph() -> Vec<String> {
    let all = known_migrations();
    let at = all
        .iter()
        .position(|m| m == DUAL_GRAPH)
        .expect("the dual graph migration");
    all[at..].to_vec()
}

/// Takes the database back to migration 5 as the migration binary would:
/// the migrations after the dual graph's first (they go down whatever the
/// rows), then it, whose result is returned.
async fn down_one(db: &Database) -> Result<(), sea_orm::DbErr> {
    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    let later = u32::try_from(from_the_dual_graph().len() - 1).expect("a few");
    if later > 0 {
        Migrator::down(&outside, Some(later))
            .await
            .expect("revert the migrations after the dual graph");
    }
    let result = Migrator::down(&outside, Some(1)).await;
    outside.close().await.expect("close");
    result
}

async fn the_dual_graph_migration_goes_down_and_up_keeping_every_row_of_the_six_tables(
    db: &Database,
) {
    populate(db, 6).await;
    let repos = Repositories::new(db);
    let session = repos.sessions.list(None, 1).await.expect("list")[0]
        .id
        .clone();
    repos
        .canonical
        .create_slot(NewSlot {
            session_id: session.clone(),
            slot_name: "gone with the down".into(),
            description: None,
            node_type: "attribute".into(),
            first_seen_turn: 1,
            embedding: None,
            status: entity::canonical_slot::SlotStatus::Candidate,
        })
        .await
        .expect("a slot");
    let before = contents(db.connection()).await;
    assert!(!before.nodes.is_empty() && !before.scores.is_empty());

    down_one(db).await.expect("down");
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(status.pending, from_the_dual_graph());
    for table in interview_persistence::migration::LATER_PYTHON_TABLES {
        let gone = exec(db, &format!("SELECT 1 FROM {table}")).await;
        assert!(gone.is_err(), "{table} survived the down");
    }
    assert!(exec(db, "SELECT stance FROM kg_nodes").await.is_err());

    migrate(db).await.expect("up again");
    let after = contents(db.connection()).await;
    // The six tables' rows as they were (their new columns were at their
    // defaults); the dropped slot is gone.
    assert_eq!(after.sessions, before.sessions);
    assert_eq!(after.utterances, before.utterances);
    assert_eq!(after.nodes, before.nodes);
    assert_eq!(after.edges, before.edges);
    assert_eq!(after.scores, before.scores);
    assert_eq!(after.elements, before.elements);
    assert!(after.slots.is_empty());
    if db.backend() == interview_persistence::Backend::Sqlite {
        let dangling: i64 =
            crate::fixtures::query_one(db, "SELECT COUNT(*) FROM pragma_foreign_key_check").await;
        assert_eq!(dangling, 0);
    }
}

async fn undoing_it_is_refused_while_a_scoring_row_has_no_coverage_and_changes_nothing(
    db: &Database,
) {
    populate(db, 2).await;
    let session = Repositories::new(db)
        .sessions
        .list(None, 1)
        .await
        .expect("list")[0]
        .id
        .clone();
    // The newest Python system's scoring insert: no coverage column.
    exec(
        db,
        &format!(
            "INSERT INTO scoring_history (id, session_id, turn_number, depth_score, \
             saturation_score, novelty_score, richness_score, strategy_selected, \
             strategy_reasoning, scorer_details) \
             VALUES ('py-score', '{session}', 99, 0.0, 1.0, NULL, NULL, 'explore', NULL, NULL)"
        ),
    )
    .await
    .expect("the Python insert");
    let before = contents(db.connection()).await;
    let refused = down_one(db).await;
    match refused {
        Err(sea_orm::DbErr::Migration(message)) => {
            assert!(message.contains("no coverage score"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The dual graph stays applied (only the migrations after it went).
    assert_eq!(
        schema_status(db.connection())
            .await
            .expect("status")
            .pending,
        from_the_dual_graph()[1..]
    );
    assert_eq!(contents(db.connection()).await, before);
}

async fn a_scoring_row_without_coverage_and_a_node_without_the_new_columns_are_accepted(
    db: &Database,
) {
    let repos = Repositories::new(db);
    let session = repos
        .sessions
        .create(crate::repositories::new_session())
        .await
        .expect("session");
    let node = repos
        .graph
        .create_node(NewNode::new(&session.id, "n", "attribute"))
        .await
        .expect("node");
    // Columns left out take the defaults the Python schema gives them.
    exec(
        db,
        &format!(
            "INSERT INTO kg_nodes (id, session_id, label, node_type) \
             VALUES ('raw', '{}', 'raw', 'attribute')",
            session.id
        ),
    )
    .await
    .expect("a node without the new columns");
    let raw = repos.graph.node(&"raw".into()).await.expect("read");
    assert_eq!(
        (raw.stance, raw.embedding.clone(), raw.source_quotes.len()),
        (entity::Stance::Neutral, None, 0)
    );
    let stored = repos.sessions.get(&session.id).await.expect("session");
    assert_eq!(
        (
            stored.surface_velocity_peak,
            stored.prev_surface_node_count,
            stored.focus_history.len(),
            stored.node_tracker_state.clone()
        ),
        (0.0, 0, 0, None)
    );
    exec(
        db,
        &format!(
            "INSERT INTO scoring_history (id, session_id, turn_number, depth_score, \
             saturation_score, strategy_selected) VALUES ('s', '{}', 1, 0.0, 1.0, 'x')",
            session.id
        ),
    )
    .await
    .expect("a score without coverage");
    let history = repos.scoring.history(&session.id).await.expect("history");
    assert_eq!(history[0].coverage_score, None);
    // The new tables cascade from the session, and from the node.
    repos
        .signals
        .save(NewSignals {
            session_id: session.id.clone(),
            turn_number: 1,
            llm_model: None,
            extraction_latency_ms: None,
            extraction_errors: vec![],
            signals: Default::default(),
        })
        .await
        .expect("signals");
    let _ = node;
    repos.sessions.delete(&session.id).await.expect("erase");
    for table in interview_persistence::migration::LATER_PYTHON_TABLES {
        assert_eq!(count(db, table).await, 0, "{table}");
    }
    let refused = exec(
        db,
        "INSERT INTO qualitative_signals (id, session_id, turn_number) VALUES ('q', 'nope', 1)",
    )
    .await;
    assert!(
        matches!(refused, Err(Error::InvalidReference(_))),
        "{refused:?}"
    );
}

/// SQLite: the Python system's start-up indexes `stance`; `down` drops that
/// index with the column instead of failing to make it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undoing_it_after_the_python_start_up_indexed_the_stance_works() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 2).await;
    exec(
        db,
        "CREATE INDEX IF NOT EXISTS idx_kg_nodes_stance ON kg_nodes(stance)",
    )
    .await
    .expect("the Python index");
    let before = contents(db.connection()).await;
    down_one(db).await.expect("down");
    migrate(db).await.expect("up again");
    assert_eq!(contents(db.connection()).await.nodes, before.nodes);
}

/// SQLite: a table another program added a column to is not rebuilt (the
/// column would be lost): the migration is refused, naming it, and the
/// file stays at the previous version with the column and its values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_a_column_another_program_added_is_refused_and_left_as_it_was() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 2).await;
    down_one(db).await.expect("down to migration 5");
    exec(
        db,
        "ALTER TABLE utterances ADD COLUMN sentiment TEXT DEFAULT 'calm'",
    )
    .await
    .expect("another program's column");
    let refused = migrate(db).await;
    assert!(
        matches!(&refused, Err(e) if e.to_string().contains("sentiment")),
        "{refused:?}"
    );
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(status.pending, from_the_dual_graph());
    let calm: i64 = crate::fixtures::query_one(
        db,
        "SELECT COUNT(*) FROM utterances WHERE sentiment = 'calm'",
    )
    .await;
    assert_eq!(calm, count(db, "utterances").await);
}

/// A file one migration behind (before `init` with this build): health
/// still counts its sessions and backup still copies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_backup_work_on_a_file_not_migrated_to_the_dual_graph_yet() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    populate(db, 2).await;
    down_one(db).await.expect("down to migration 5");
    let report = interview_persistence::check_health(db).await;
    assert!(!report.is_healthy(), "a migration is pending");
    assert_eq!(report.session_count, Some(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = interview_persistence::backup::backup(db, &dir.path().join("copy.db"))
        .await
        .expect("the backup");
    assert!(
        backup
            .tables
            .iter()
            .any(|t| t.table == "sessions" && t.rows == 3)
    );
    assert!(!backup.tables.iter().any(|t| t.table == "canonical_slots"));
}
