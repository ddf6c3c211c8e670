//! The entities (`entity/`) and the migrated schema describe the same tables, and every
//! value survives a round trip.

use chrono::NaiveDateTime;
use entity::{
    concept_element, kg_edge, kg_node, scoring_history, session, session_erasure, utterance,
};
use interview_persistence::Database;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, Iden, IntoActiveModel,
    Iterable, QueryOrder,
};
use serde_json::json;

use crate::fixtures::{self, exec};
use crate::on_both_backends;

on_both_backends!(
    every_entity_round_trips,
    timestamps_from_the_default_this_module_and_the_python_system_sort_together,
    the_entities_and_the_migrated_schema_agree,
    string_lists_written_as_python_json_text_read_back_typed,
);

/// Inserts `model` and asserts that reading it back gives it unchanged.
macro_rules! assert_round_trip {
    ($db:expr, $module:ident, $model:expr) => {{
        let model = $model;
        let inserted = model
            .clone()
            .into_active_model()
            .insert($db)
            .await
            .expect("insert");
        assert_eq!(inserted, model, "insert returned something else");
        let read = $module::Entity::find_by_id(model.id.clone())
            .one($db)
            .await
            .expect("read back")
            .expect("the row");
        assert_eq!(read, model);
    }};
}

async fn every_entity_round_trips(db: &Database) {
    let txn = db.begin_write().await.expect("the writer");
    let conn = &*txn;
    let mut session = fixtures::session_model("s-round-trip");
    session.status = session::SessionStatus::Completed;
    session.completed_at = Some(fixtures::now());
    session.config =
        json!({"max_turns": 50, "nested": {"list": [1, 2.5, null, "é"]}, "flag": true});
    session.coverage_score = None;
    session.turn_count = 42;
    assert_round_trip!(conn, session, session.clone());

    let mut utterance = fixtures::utterance_model(&session.id, 1);
    utterance.speaker = utterance::Speaker::System;
    utterance.discourse_markers = None;
    utterance.text = "Pourquoi ? — \"quotes\", 'apostrophes'; emoji 🥛 and עברית".into();
    assert_round_trip!(conn, utterance, utterance.clone());

    let target = fixtures::node_model(&session.id, "tasty");
    assert_round_trip!(conn, kg_node, target.clone());
    let mut node = fixtures::node_model(&session.id, "creamy");
    node.properties = None;
    node.confidence = 0.0;
    node.superseded_by = Some(target.id.clone());
    assert_round_trip!(conn, kg_node, node.clone());

    let mut edge = fixtures::edge_model(&session.id, &node.id, &target.id);
    edge.edge_type = kg_edge::EdgeType::Revises;
    edge.properties = None;
    edge.confidence = 1.0;
    assert_round_trip!(conn, kg_edge, edge);

    assert_round_trip!(conn, scoring_history, fixtures::score_model(&session.id, 1));
    let mut sparse_score = fixtures::score_model(&session.id, 2);
    sparse_score.novelty_score = None;
    sparse_score.strategy_reasoning = None;
    sparse_score.scorer_details = None;
    assert_round_trip!(conn, scoring_history, sparse_score);

    assert_round_trip!(
        conn,
        concept_element,
        fixtures::element_model(&session.id, "e0")
    );
    let mut covered = fixtures::element_model(&session.id, "e1");
    covered.is_covered = true;
    covered.covered_at = Some(fixtures::now());
    covered.covered_by_node_id = Some(target.id.clone());
    covered.priority = concept_element::Priority::Low;
    assert_round_trip!(conn, concept_element, covered);
    txn.commit().await.expect("commit");
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("a timestamp")
}

async fn timestamps_from_the_default_this_module_and_the_python_system_sort_together(
    db: &Database,
) {
    // Written by the Python system: `datetime('now')` text, whole seconds.
    for (id, created_at) in [
        ("python-1", "2026-01-01 10:00:00"),
        ("python-2", "2026-01-01 23:00:00"),
    ] {
        exec(
            db,
            &format!(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name, created_at, updated_at) \
                 VALUES ('{id}', 'm', 'c', 'n', '{created_at}', '{created_at}')"
            ),
        )
        .await
        .expect("a Python-era row");
    }
    // Written by this module, between and around those.
    for (id, created_at) in [
        ("module-1", "2026-01-01 09:59:59.5"),
        ("module-2", "2026-01-01 10:00:00.25"),
        ("module-3", "2026-01-01 22:59:59.999999"),
    ] {
        let mut model = fixtures::session_model(id);
        model.created_at = at(created_at);
        let txn = db.begin_write().await.expect("the writer");
        model
            .into_active_model()
            .insert(&*txn)
            .await
            .expect("a module row");
        txn.commit().await.expect("commit");
    }
    let conn = db.connection();
    // Written by the database default: now, after all of the above.
    exec(db, "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('default-1', 'm', 'c', 'n')")
        .await
        .expect("a defaulted row");

    let ordered: Vec<String> = session::Entity::find()
        .order_by_asc(session::Column::CreatedAt)
        .all(conn)
        .await
        .expect("read in order")
        .into_iter()
        .map(|s| s.id.into_string())
        .collect();
    assert_eq!(
        ordered,
        [
            "module-1",
            "python-1",
            "module-2",
            "module-3",
            "python-2",
            "default-1"
        ]
    );
    let python = session::Entity::find_by_id("python-1")
        .one(conn)
        .await
        .expect("read")
        .expect("row");
    assert_eq!(python.created_at, at("2026-01-01 10:00:00"));

    if db.backend() == interview_persistence::Backend::Sqlite {
        // One text form per column: the defaulted row matches the others'.
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "SELECT created_at FROM sessions WHERE id = 'default-1'",
            ))
            .await
            .expect("read")
            .expect("row");
        let text: String = row.try_get_by_index(0).expect("text");
        assert!(
            NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").is_ok(),
            "default written as {text:?}"
        );
    }
}

/// The columns of `table` as the database has them: (name, nullable).
async fn table_columns(db: &Database, table: &str) -> Vec<(String, bool)> {
    let conn = db.connection();
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT column_name::text, (is_nullable = 'YES') FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
        _ => format!("SELECT name, \"notnull\" = 0 FROM pragma_table_info('{table}') ORDER BY cid"),
    };
    conn.query_all_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .expect("read the catalogue")
        .into_iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).expect("name"),
                row.try_get_by_index::<bool>(1).expect("nullable"),
            )
        })
        .collect()
}

async fn assert_entity_matches_table<E: EntityTrait>(db: &Database, entity: E) {
    let table = entity.table_name().to_owned();
    let in_database = table_columns(db, &table).await;
    assert!(!in_database.is_empty(), "table {table} has no columns");
    let in_entity: Vec<(String, bool)> = E::Column::iter()
        .map(|column| (column.to_string(), column.def().is_null()))
        .collect();
    for (name, nullable) in &in_entity {
        let found = in_database.iter().find(|(n, _)| n == name);
        assert_eq!(
            found.map(|(_, n)| n),
            Some(nullable),
            "{table}.{name}: the entity says nullable={nullable}, the database {found:?}"
        );
    }
    for (name, _) in &in_database {
        assert!(
            in_entity.iter().any(|(n, _)| n == name),
            "{table}.{name} exists in the database but not in the entity"
        );
    }
}

async fn the_entities_and_the_migrated_schema_agree(db: &Database) {
    assert_entity_matches_table(db, session::Entity).await;
    assert_entity_matches_table(db, utterance::Entity).await;
    assert_entity_matches_table(db, kg_node::Entity).await;
    assert_entity_matches_table(db, kg_edge::Entity).await;
    assert_entity_matches_table(db, scoring_history::Entity).await;
    assert_entity_matches_table(db, concept_element::Entity).await;
    assert_entity_matches_table(db, session_erasure::Entity).await;
}

/// The Python module wrote `json.dumps(...)` text (`["a", "b"]`, with a
/// space) or left the column to its `'[]'` default; both read back as
/// `StringList`s through the repositories.
async fn string_lists_written_as_python_json_text_read_back_typed(db: &Database) {
    exec(
        db,
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('py', 'm', 'c', 'n'); \
         INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers) \
             VALUES ('u-1', 'py', 1, 'user', 'Because...', '[\"because\", \"since\"]'); \
         INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
             VALUES ('u-2', 'py', 1, 'system', 'Why?'); \
         INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers) \
             VALUES ('u-3', 'py', 2, 'user', 'Hm.', NULL); \
         INSERT INTO kg_nodes (id, session_id, label, node_type, source_utterance_ids) \
             VALUES ('n-1', 'py', 'creamy', 'attribute', '[\"u-1\", \"u-3\"]'); \
         INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('n-2', 'py', 'calm', 'value'); \
         INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, source_utterance_ids) \
             VALUES ('e-1', 'py', 'n-1', 'n-2', 'leads_to', '[\"u-1\"]')",
    )
    .await
    .expect("rows as the Python module wrote them");
    let repos = interview_persistence::repositories::Repositories::new(db);
    let transcript = repos
        .utterances
        .transcript(&"py".into())
        .await
        .expect("transcript");
    let markers: Vec<Option<entity::StringList>> = transcript
        .into_iter()
        .map(|u| u.discourse_markers)
        .collect();
    assert_eq!(
        markers,
        vec![
            Some(["because", "since"].into()),
            Some(entity::StringList::default()),
            None
        ]
    );
    let creamy = repos.graph.node(&"n-1".into()).await.expect("node");
    assert_eq!(creamy.source_utterance_ids, ["u-1", "u-3"].into());
    assert!(
        repos
            .graph
            .node(&"n-2".into())
            .await
            .expect("node")
            .source_utterance_ids
            .is_empty()
    );
    let edges = repos.graph.edges(&"py".into()).await.expect("edges");
    assert_eq!(edges[0].source_utterance_ids, ["u-1"].into());
    // And they keep working: provenance added to a Python row stays a list.
    let node = repos
        .graph
        .add_node_provenance(&"n-2".into(), &"u-2".into())
        .await
        .expect("provenance");
    assert_eq!(node.source_utterance_ids, ["u-2"].into());
}

/// RFC 3339's UTC spellings are read; other offsets are refused clearly;
/// fraction digits beyond 6 are truncated to the microsecond.
#[test]
fn utc_timestamps_are_read_in_each_utc_spelling_and_other_offsets_refused() {
    use entity::utc_timestamp::parse;
    let micro = at("2026-11-27 12:21:26.182211");
    for text in [
        "2026-11-27T12:21:26.182211Z",
        "2026-11-27T12:21:26.182211z",
        "2026-11-27T12:21:26.182211+00:00",
        "2026-11-27T12:21:26.182211-00:00",
        "2026-11-27T12:21:26.182211",
        "2026-11-27 12:21:26.182211",
        "2026-11-27T12:21:26.182211999Z",
    ] {
        assert_eq!(parse(text), Ok(micro), "{text}");
    }
    assert_eq!(
        parse("2026-11-27T12:21:26Z"),
        Ok(at("2026-11-27 12:21:26")),
        "no fraction"
    );
    assert_eq!(
        parse("2026-11-27T12:21:26.182+00:00"),
        Ok(at("2026-11-27 12:21:26.182")),
        "3 digits"
    );
    for text in [
        "2026-11-27T12:21:26.182211+02:00",
        "2026-11-27T12:21:26-05:30",
    ] {
        let refused = parse(text).expect_err(text);
        assert!(refused.contains("only UTC"), "{text}: {refused}");
    }
    let refused = parse("yesterday").expect_err("not a timestamp");
    assert!(refused.contains("is not a UTC timestamp"), "{refused}");
}
