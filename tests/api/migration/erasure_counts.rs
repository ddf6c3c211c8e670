//! Migration 7 (`count_dual_graph_erasures`): an erasure record counts the
//! four later Python tables too; a record kept from before reads them as
//! not counted, and the migration goes down and up keeping every record.

use interview_persistence::Database;
use interview_persistence::migration::{Migrator, MigratorTrait};
use interview_persistence::repositories::Repositories;
use interview_persistence::schema::{known_migrations, migrate, schema_status};

use crate::fixtures::{count, exec, populate};
use crate::helpers;
use crate::on_both_backends;

on_both_backends!(
    an_erasure_recorded_before_the_counts_existed_reads_them_as_not_counted,
    the_count_migration_goes_down_and_up_keeping_every_erasure_record,
);

async fn an_erasure_recorded_before_the_counts_existed_reads_them_as_not_counted(db: &Database) {
    // As a build before migration 7 wrote it: the six tables' counts only.
    exec(
        db,
        "INSERT INTO session_erasures (session_id, erased_at, utterance_rows, kg_node_rows, \
         kg_edge_rows, scoring_history_rows, concept_element_rows, scrubbed_at) \
         VALUES ('erased-long-ago', '2026-12-01 10:00:00', 4, 3, 2, 2, 1, '2026-12-01 10:00:01')",
    )
    .await
    .expect("an old record");
    let record = Repositories::new(db)
        .sessions
        .erasure(&"erased-long-ago".into())
        .await
        .expect("the record");
    assert_eq!(
        (
            record.rows.canonical_slots,
            record.rows.surface_to_slot_mapping,
            record.rows.canonical_edges,
            record.rows.qualitative_signals
        ),
        (None, None, None, None)
    );
    assert_eq!(record.rows.total(), 1 + 4 + 3 + 2 + 2 + 1);
    // A negative count is refused by the table itself.
    let negative = exec(
        db,
        "UPDATE session_erasures SET canonical_edge_rows = -1 WHERE session_id = 'erased-long-ago'",
    )
    .await;
    assert!(negative.is_err(), "{negative:?}");
}

async fn the_count_migration_goes_down_and_up_keeping_every_erasure_record(db: &Database) {
    populate(db, 3).await;
    let repos = Repositories::new(db);
    let session = repos.sessions.list(None, 1).await.expect("list")[0]
        .id
        .clone();
    let erased = repos.sessions.delete(&session).await.expect("erase");
    assert!(erased.rows.qualitative_signals.is_some());

    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    Migrator::down(&outside, Some(1)).await.expect("down");
    outside.close().await.expect("close");
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(
        status.pending,
        [known_migrations().last().cloned().expect("one")]
    );
    let gone = exec(db, "SELECT canonical_slot_rows FROM session_erasures").await;
    assert!(gone.is_err(), "the column survived the down");
    assert_eq!(count(db, "session_erasures").await, 1);

    migrate(db).await.expect("up again");
    let record = repos.sessions.erasure(&session).await.expect("the record");
    assert_eq!(record.rows.utterances, erased.rows.utterances);
    assert_eq!(record.rows.kg_nodes, erased.rows.kg_nodes);
    // The counts the down dropped are not known any more.
    assert_eq!(record.rows.canonical_slots, None);
    assert_eq!(record.scrubbed_at.is_some(), erased.scrubbed_at.is_some());
}
