//! Checks that every acknowledged turn of a session is in the database
//! whole and that no turn is there in part; shared by the kill -9 test
//! and the multi-process test (through `#[path]`).
//!
//! The turns are `turn_builders::chain_turn`s: two utterances, one score
//! row, four nodes and three edges each, every node and edge marked with
//! its turn in `properties.turn`.

use interview_persistence::entity::SessionId;
use std::collections::BTreeMap;

use interview_persistence::Database;
use interview_persistence::repositories::{NewConceptElement, NewSession, Repositories};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

/// A failed check, in words.
pub type Failure = Box<dyn std::error::Error>;

/// Creates session `session_id` with the ten elements `e0`..`e9` that
/// `chain_turn` and `benchmark_turn` cover.
///
/// # Errors
/// The repository's error.
pub async fn create_session(repos: &Repositories, session_id: &SessionId) -> Result<(), Failure> {
    let elements = (0..10)
        .map(|k| NewConceptElement {
            element_id: format!("e{k}").into(),
            label: format!("Element {k}"),
            element_type: "attribute".into(),
            priority: entity::concept_element::Priority::Medium,
        })
        .collect();
    let session = NewSession {
        id: Some(session_id.to_owned()),
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        config: json!({"process_test": true}),
    };
    repos
        .sessions
        .create_with_elements(session, elements)
        .await?;
    Ok(())
}

/// `PRAGMA integrity_check`'s first row.
///
/// # Errors
/// The query's error.
pub async fn integrity(db: &Database) -> Result<String, Failure> {
    let conn = db.connection();
    Ok(conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await?
        .ok_or("no integrity row")?
        .try_get_by_index(0)?)
}

/// Every turn of `acknowledged` is in `session_id` whole, no turn is
/// there in part, and the session's `turn_count` is its highest turn.
///
/// # Errors
/// What is missing or partial, in words.
pub async fn verify_session(
    db: &Database,
    session_id: &SessionId,
    acknowledged: &[i32],
) -> Result<(), Failure> {
    let TurnRows {
        utterances,
        scores,
        nodes,
        edges,
    } = turn_rows(db, session_id).await?;
    for turn in acknowledged {
        if !utterances.contains_key(turn) || !scores.contains_key(turn) {
            return Err(format!("{session_id}: acknowledged turn {turn} is missing").into());
        }
    }
    for (turn, n) in &utterances {
        let whole = *n == 2
            && scores.get(turn) == Some(&1)
            && nodes.get(turn) == Some(&4)
            && edges.get(turn) == Some(&3);
        if !whole {
            return Err(format!(
                "{session_id}: turn {turn} is partial: {n} utterances, {:?} scores, {:?} nodes, {:?} edges",
                scores.get(turn),
                nodes.get(turn),
                edges.get(turn)
            )
            .into());
        }
    }
    if scores.len() != utterances.len()
        || nodes.len() != utterances.len()
        || edges.len() != utterances.len()
    {
        return Err(format!(
            "{session_id}: rows of turns without utterances: {scores:?} {nodes:?} {edges:?}"
        )
        .into());
    }
    let recorded = utterances.keys().copied().max().unwrap_or(0);
    let conn = db.connection();
    let turn_count: i32 = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT turn_count FROM sessions WHERE id = '{session_id}'"),
        ))
        .await?
        .map_or(Ok(0), |r| r.try_get_by_index(0))?;
    if turn_count != recorded {
        return Err(format!(
            "{session_id}: the session says {turn_count} turns, {recorded} are recorded"
        )
        .into());
    }
    Ok(())
}

/// A session's rows counted per turn: utterances and scores by
/// `turn_number`, nodes and edges by `properties.turn`.
pub struct TurnRows {
    pub utterances: BTreeMap<i32, i64>,
    pub scores: BTreeMap<i32, i64>,
    pub nodes: BTreeMap<i32, i64>,
    pub edges: BTreeMap<i32, i64>,
}

/// Counts `session_id`'s rows per turn, on either backend.
///
/// # Errors
/// The query's error.
pub async fn turn_rows(db: &Database, session_id: &SessionId) -> Result<TurnRows, Failure> {
    let conn = db.connection();
    let backend = conn.get_database_backend();
    let marked_turn = match backend {
        DbBackend::Postgres => "(properties->>'turn')::int",
        _ => "CAST(json_extract(properties, '$.turn') AS INTEGER)",
    };
    let per = |table: &str, turn: &str| {
        let sql = format!(
            "SELECT {turn}, COUNT(*) FROM {table} WHERE session_id = '{session_id}' GROUP BY 1"
        );
        async move {
            conn.query_all_raw(Statement::from_string(backend, sql))
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| {
                            (
                                r.try_get_by_index::<i32>(0).unwrap_or(-1),
                                r.try_get_by_index::<i64>(1).unwrap_or(-1),
                            )
                        })
                        .collect::<BTreeMap<i32, i64>>()
                })
        }
    };
    Ok(TurnRows {
        utterances: per("utterances", "turn_number").await?,
        scores: per("scoring_history", "turn_number").await?,
        nodes: per("kg_nodes", marked_turn).await?,
        edges: per("kg_edges", marked_turn).await?,
    })
}
