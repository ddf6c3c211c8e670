//! The edge-type vocabulary migration
//! (`migration/src/m20261127_000002_create_edge_type_vocabulary.rs`) on
//! populated databases, both ways, on both backends.

use entity::kg_edge::EdgeType;
use interview_persistence::migration::{Migrator, MigratorTrait};
use interview_persistence::repositories::{NewEdge, NewNode, Repositories};
use interview_persistence::schema::{known_migrations, migrate, schema_status};
use interview_persistence::{Database, Error};

use crate::fixtures::{contents, count, exec, populate};
use crate::helpers;
use crate::on_both_backends;

on_both_backends!(
    the_vocabulary_migration_keeps_every_row_of_a_populated_database,
    undoing_the_vocabulary_is_refused_while_an_edge_uses_a_new_type_and_changes_nothing,
);

/// How many of this build's migrations come after the vocabulary's.
fn migrations_after_the_vocabulary() -> usize {
    let known = known_migrations();
    let at = known
        .iter()
        .position(|m| m.ends_with("_create_edge_type_vocabulary"))
        .expect("the vocabulary migration");
    known.len() - at - 1
}

/// Reverts the vocabulary migration as the migration binary would (foreign
/// keys off, one transaction each): those applied after it first (they go
/// down whatever the rows), then it, whose result is returned.
async fn revert_the_vocabulary(db: &Database) -> Result<(), sea_orm::DbErr> {
    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    let applied = schema_status(db.connection())
        .await
        .expect("status")
        .applied
        .len();
    let after =
        applied.saturating_sub(known_migrations().len() - migrations_after_the_vocabulary());
    if after > 0 {
        Migrator::down(&outside, Some(after as u32))
            .await
            .expect("revert the migrations after the vocabulary");
    }
    let result = Migrator::down(&outside, Some(1)).await;
    outside.close().await.expect("close");
    result
}

async fn the_vocabulary_migration_keeps_every_row_of_a_populated_database(db: &Database) {
    // Written through today's entities, then taken back to the first
    // migration (every `down` keeps the rows of the six tables).
    populate(db, 12).await;
    let before = contents(db.connection()).await;
    revert_the_vocabulary(db)
        .await
        .expect("back to the first migration");
    assert!(!before.edges.is_empty() && before.nodes.iter().any(|n| n.superseded_by.is_some()));
    assert!(
        before
            .elements
            .iter()
            .any(|e| e.covered_by_node_id.is_some())
    );

    let status = migrate(db).await.expect("init's migration");
    assert_eq!(status.applied, known_migrations());
    assert_eq!(
        contents(db.connection()).await,
        before,
        "a row changed or went"
    );
    if db.backend() == interview_persistence::Backend::Sqlite {
        let dangling: Vec<sea_orm::QueryResult> = sea_orm::ConnectionTrait::query_all_raw(
            db.connection(),
            sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, "PRAGMA foreign_key_check"),
        )
        .await
        .expect("foreign_key_check");
        assert!(dangling.is_empty(), "{} rows point nowhere", dangling.len());
    }

    // The new vocabulary is in force: a methodology's type is accepted, an
    // unknown one refused.
    let repos = Repositories::new(db);
    let session = &before.sessions[0].id;
    let a = repos
        .graph
        .create_node(NewNode::new(session, "job", "job"))
        .await
        .expect("node");
    let b = repos
        .graph
        .create_node(NewNode::new(session, "place", "context"))
        .await
        .expect("node");
    repos
        .graph
        .create_edge(NewEdge::new(session, &a.id, &b.id, EdgeType::OccursIn))
        .await
        .expect("a jobs-to-be-done edge");
    let refused = exec(
        db,
        &format!(
            "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) \
             VALUES ('x', '{session}', '{}', '{}', 'causes')",
            a.id, b.id
        ),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::InvalidReference(_))),
        "{refused:?}"
    );
    assert_eq!(count(db, "edge_types").await, 37);
}

async fn undoing_the_vocabulary_is_refused_while_an_edge_uses_a_new_type_and_changes_nothing(
    db: &Database,
) {
    populate(db, 3).await;
    let repos = Repositories::new(db);
    let session = repos.sessions.list(None, 1).await.expect("list")[0]
        .id
        .clone();
    let a = repos
        .graph
        .create_node(NewNode::new(&session, "pole", "construct"))
        .await
        .expect("node");
    let b = repos
        .graph
        .create_node(NewNode::new(&session, "other pole", "construct"))
        .await
        .expect("node");
    let edge = repos
        .graph
        .create_edge(NewEdge::new(&session, &a.id, &b.id, EdgeType::OppositeOf))
        .await
        .expect("a repertory-grid edge");
    let before = contents(db.connection()).await;

    let refused = revert_the_vocabulary(db).await;
    match refused {
        Err(sea_orm::DbErr::Migration(message)) => {
            assert!(message.contains("opposite_of"), "{message}");
            assert!(message.contains("nothing was changed"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        schema_status(db.connection())
            .await
            .expect("status")
            .applied,
        known_migrations()[..known_migrations().len() - migrations_after_the_vocabulary()]
    );
    // Read back through today's entities: every row as it was.
    migrate(db).await.expect("up again");
    assert_eq!(contents(db.connection()).await, before);

    // Without such edges, down goes back to the two-type CHECK.
    exec(
        db,
        &format!("DELETE FROM kg_edges WHERE id = '{}'", edge.id),
    )
    .await
    .expect("delete");
    revert_the_vocabulary(db).await.expect("down");
    assert_eq!(count(db, "kg_edges").await, before.edges.len() as i64 - 1);
    let refused = exec(
        db,
        &format!(
            "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) \
             VALUES ('y', '{session}', '{}', '{}', 'opposite_of')",
            a.id, b.id
        ),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::InvalidValue(_))),
        "{refused:?}"
    );
}
