//! What is stored does not depend on the path a row took: every entity is
//! written through the library's write paths into one SQLite file — the
//! writer's rusqlite statements (`create`, `save`, `create_node`,
//! `scoring.save`, `record_turn`, `update_metrics`) and SeaORM's over sqlx
//! (`create_with_elements`, `seed`, `create_edge`, `mark_covered`, inside
//! `begin_write`) — and the same models, read back, are inserted into a
//! second file through SeaORM alone. Both files must hold the same values,
//! column by column, storage class included (`typeof(x) || quote(x)`). Both
//! files have a `sessions` table whose physical column order differs from
//! the entity's (a column dropped and added back, and one the entity does
//! not know), as the Python system's start-up ALTERs leave them.

use interview_persistence::entity::concept_element::Priority;
use interview_persistence::entity::kg_edge::EdgeType;
use interview_persistence::entity::utterance::Speaker;
use interview_persistence::entity::{
    concept_element, kg_edge, kg_node, scoring_history, session, utterance,
};
use interview_persistence::repositories::{
    NewEdge, NewNode, NewScores, NewUtterance, Repositories, TurnScores,
};
use interview_persistence::{Database, WriteTransaction};
use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel, Statement};
use serde_json::json;

use crate::fixtures::{TABLES, reorder_the_sessions_columns};
use crate::helpers;
use crate::repositories::{element, new_session};
use crate::turn_builders::chain_turn;

/// Every row of `table`, by id: each column as `typeof(x):quote(x)`.
async fn stored(db: &Database, table: &str) -> Vec<Vec<String>> {
    let conn = db.connection();
    let backend = conn.get_database_backend();
    let columns: Vec<String> = conn
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        ))
        .await
        .expect("columns")
        .iter()
        .map(|row| row.try_get_by_index(0).expect("a name"))
        .collect();
    let cells = columns
        .iter()
        .map(|c| format!("'{c}=' || typeof(\"{c}\") || ':' || quote(\"{c}\")"))
        .collect::<Vec<_>>()
        .join(", ");
    conn.query_all_raw(Statement::from_string(
        backend,
        format!("SELECT {cells} FROM \"{table}\" ORDER BY id"),
    ))
    .await
    .expect("rows")
    .iter()
    .map(|row| {
        (0..columns.len())
            .map(|i| row.try_get_by_index(i).expect("a cell"))
            .collect()
    })
    .collect()
}

async fn insert_all<E: EntityTrait>(txn: &WriteTransaction, models: Vec<E::Model>)
where
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    for model in models {
        E::insert(model.into_active_model())
            .exec_without_returning(&**txn)
            .await
            .expect("insert through SeaORM");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_stores_the_same_values_whichever_path_wrote_it() {
    let written = helpers::sqlite().await;
    let db = &written.db;
    reorder_the_sessions_columns(db).await;
    let repos = Repositories::new(db);

    // sqlx (begin_write): a session with its elements, more elements.
    let (with_elements, _) = repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("create_with_elements");
    let id = with_elements.id;
    repos
        .concept_elements
        .seed(
            &id,
            vec![
                element("e1", Priority::Medium),
                element("e2", Priority::Low),
            ],
        )
        .await
        .expect("seed");
    // rusqlite (the writer's batches): a session, a turn, single rows.
    repos.sessions.create(new_session()).await.expect("create");
    repos
        .turns
        .record_turn(chain_turn(&id, 1))
        .await
        .expect("record_turn");
    let said = repos
        .utterances
        .save(NewUtterance {
            session_id: id.clone(),
            turn_number: 2,
            speaker: Speaker::User,
            text: "it's \"creamy\"; 1e300 🥛 \u{0}-free".into(),
            discourse_markers: vec!["because".into(), "$1".into()],
        })
        .await
        .expect("utterances.save");
    let a = repos
        .graph
        .create_node(NewNode {
            session_id: id.clone(),
            label: "creamy".into(),
            node_type: "attribute".into(),
            confidence: 0.1 + 0.2,
            properties: json!({"f": [5e-324, -0.0, 1.7976931348623157e308], "u": u64::MAX}),
            source_utterance_ids: vec![said.id.clone()],
            source_quotes: Vec::new(),
            stance: Default::default(),
            embedding: None,
        })
        .await
        .expect("create_node");
    let b = repos
        .graph
        .create_node(NewNode {
            session_id: id.clone(),
            label: "indulgence".into(),
            node_type: "value".into(),
            confidence: 1.0,
            properties: json!({}),
            source_utterance_ids: vec![],
            source_quotes: Vec::new(),
            stance: Default::default(),
            embedding: None,
        })
        .await
        .expect("create_node");
    // sqlx again: an edge between them, a cover.
    repos
        .graph
        .create_edge(NewEdge {
            session_id: id.clone(),
            source_node_id: a.id.clone(),
            target_node_id: b.id.clone(),
            edge_type: EdgeType::LeadsTo,
            confidence: 0.0,
            properties: json!({"k": "v"}),
            source_utterance_ids: vec![said.id.clone()],
        })
        .await
        .expect("create_edge");
    repos
        .concept_elements
        .mark_covered(&id, &"e1".into(), &a.id)
        .await
        .expect("mark_covered");
    repos
        .scoring
        .save(NewScores {
            session_id: id.clone(),
            turn_number: 2,
            scores: TurnScores {
                coverage_score: 1.0,
                depth_score: 0.0,
                saturation_score: 1e-300,
                novelty_score: None,
                richness_score: Some(0.5),
                strategy_selected: "deepen".into(),
                strategy_reasoning: None,
                scorer_details: json!({"nested": {"list": [1, 2.5, null]}}),
            },
        })
        .await
        .expect("scoring.save");
    // rusqlite: an UPDATE … RETURNING of the session.
    repos
        .sessions
        .update_metrics(&id, 2, 0.125)
        .await
        .expect("update_metrics");

    // The same models, read back, inserted through SeaORM alone.
    let conn = db.connection();
    let copy = helpers::sqlite().await;
    reorder_the_sessions_columns(&copy.db).await;
    let txn = copy.db.begin_write().await.expect("the writer");
    insert_all::<session::Entity>(
        &txn,
        session::Entity::find().all(conn).await.expect("sessions"),
    )
    .await;
    insert_all::<utterance::Entity>(
        &txn,
        utterance::Entity::find()
            .all(conn)
            .await
            .expect("utterances"),
    )
    .await;
    insert_all::<kg_node::Entity>(
        &txn,
        kg_node::Entity::find().all(conn).await.expect("nodes"),
    )
    .await;
    insert_all::<kg_edge::Entity>(
        &txn,
        kg_edge::Entity::find().all(conn).await.expect("edges"),
    )
    .await;
    insert_all::<scoring_history::Entity>(
        &txn,
        scoring_history::Entity::find()
            .all(conn)
            .await
            .expect("scores"),
    )
    .await;
    insert_all::<concept_element::Entity>(
        &txn,
        concept_element::Entity::find()
            .all(conn)
            .await
            .expect("elements"),
    )
    .await;
    txn.commit().await.expect("commit");

    for table in TABLES {
        let (ours, theirs) = (stored(db, table).await, stored(&copy.db, table).await);
        assert!(!ours.is_empty(), "{table}: nothing written");
        assert_eq!(ours, theirs, "{table}: the paths stored different values");
    }
    // The cells carry their storage class: a float stored as text, or a
    // timestamp in another shape, would differ.
    let nodes = stored(db, "kg_nodes").await;
    assert!(
        nodes[0].iter().any(|c| c.starts_with("confidence=real:")),
        "{nodes:?}"
    );
    assert!(
        nodes[0].iter().any(|c| c.starts_with("recorded_at=text:'")),
        "{nodes:?}"
    );
}
