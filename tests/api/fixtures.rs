//! Rows to test with, written through the entities.

use chrono::{NaiveDateTime, SubsecRound, Utc};
use entity::{concept_element, kg_edge, kg_node, scoring_history, session, utterance};
use interview_persistence::{Database, Error};
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use serde_json::json;

/// Now, in UTC, at the microsecond precision both backends keep.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A fresh UUID-like id unique within the test process.
pub fn id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{:08}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An active session model with every column set.
pub fn session_model(id: &str) -> session::Model {
    let now = now();
    session::Model {
        id: id.to_owned(),
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        status: session::SessionStatus::Active,
        config: json!({"max_turns": 50}),
        created_at: now,
        updated_at: now,
        completed_at: None,
        turn_count: 0,
        coverage_score: Some(0.0),
    }
}

/// Inserts a session through a write transaction and returns it as stored.
pub async fn insert_session(db: &Database) -> session::Model {
    let txn = db.begin_write().await.expect("the writer");
    let session = session_model(&id("session"))
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("insert a session");
    txn.commit().await.expect("commit");
    session
}

/// A user utterance of `session_id` at `turn`.
pub fn utterance_model(session_id: &str, turn: i32) -> utterance::Model {
    utterance::Model {
        id: id("utterance"),
        session_id: session_id.to_owned(),
        turn_number: turn,
        speaker: utterance::Speaker::User,
        text: "Because it tastes creamy, since I skip dairy.".into(),
        discourse_markers: Some(["because", "since"].into()),
        created_at: now(),
    }
}

/// A current node of `session_id`.
pub fn node_model(session_id: &str, label: &str) -> kg_node::Model {
    kg_node::Model {
        id: id("node"),
        session_id: session_id.to_owned(),
        label: label.to_owned(),
        node_type: "attribute".into(),
        confidence: 0.8,
        properties: Some(json!({"turn": 1})),
        source_utterance_ids: ["u-1"].into(),
        recorded_at: now(),
        superseded_by: None,
    }
}

/// A `leads_to` edge.
pub fn edge_model(session_id: &str, source: &str, target: &str) -> kg_edge::Model {
    kg_edge::Model {
        id: id("edge"),
        session_id: session_id.to_owned(),
        source_node_id: source.to_owned(),
        target_node_id: target.to_owned(),
        edge_type: kg_edge::EdgeType::LeadsTo,
        confidence: 0.7,
        properties: Some(json!({})),
        source_utterance_ids: ["u-1"].into(),
        recorded_at: now(),
    }
}

/// The scores of `turn`.
pub fn score_model(session_id: &str, turn: i32) -> scoring_history::Model {
    scoring_history::Model {
        id: id("score"),
        session_id: session_id.to_owned(),
        turn_number: turn,
        coverage_score: 0.01,
        depth_score: 0.5,
        saturation_score: 0.1,
        novelty_score: Some(0.9),
        richness_score: None,
        strategy_selected: "deepen".into(),
        strategy_reasoning: Some("the last answer named a consequence".into()),
        scorer_details: Some(json!({"depth": {"chain": 3}})),
        created_at: now(),
    }
}

/// An uncovered element.
pub fn element_model(session_id: &str, element_id: &str) -> concept_element::Model {
    concept_element::Model {
        id: id("element"),
        session_id: session_id.to_owned(),
        element_id: element_id.to_owned(),
        label: format!("Element {element_id}"),
        element_type: "attribute".into(),
        priority: concept_element::Priority::High,
        is_covered: false,
        covered_at: None,
        covered_by_node_id: None,
    }
}

/// Runs raw SQL in a write transaction of its own (the pool is read-only
/// on SQLite), turning a refusal into the crate's classified error.
pub async fn exec(db: &Database, sql: &str) -> Result<(), Error> {
    let txn = db.begin_write().await?;
    txn.execute_unprepared(sql).await?;
    txn.commit().await
}

/// How many rows `table` holds.
pub async fn count(db: &Database, table: &str) -> i64 {
    let row = db
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            db.connection().get_database_backend(),
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .expect("count rows")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// The first column of the first row of `sql` (a PRAGMA, a scalar query).
pub async fn query_one<T: sea_orm::TryGetable>(db: &Database, sql: &str) -> T {
    db.connection()
        .query_one_raw(sea_orm::Statement::from_string(
            db.connection().get_database_backend(),
            sql,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
        .try_get_by_index(0)
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// The six tables of the schema.
pub const TABLES: [&str; 6] = [
    "sessions",
    "utterances",
    "kg_nodes",
    "kg_edges",
    "scoring_history",
    "concept_elements",
];
