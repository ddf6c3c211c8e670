//! The PostgreSQL baseline: the same workload written as a skilled hand
//! would write it with the driver alone (sqlx, no ORM): each turn is ONE
//! prepared statement — data-modifying CTEs, one per table, multi-row
//! inserts from `UNNEST` arrays — so a turn is one round trip and one
//! implicit transaction; reads are the same five queries as the raw
//! SQLite baseline in one `REPEATABLE READ` snapshot, decoded into owned
//! values as an ORM would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sea_orm::sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sea_orm::sqlx::{self, Column, Row, TypeInfo, ValueRef};
use serde_json::{Value, json};

use crate::{ANSWER, BoxError, NODE_TYPES, PRIORITIES, TurnBlocks, run_sessions};

/// A turn: utterances, nodes, edges, scores, the element's first cover and
/// the session's progress, all in one statement.
const TURN: &str = "\
WITH utterances_written AS (
  INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers, created_at)
  SELECT id, $1, $2, speaker, text, markers::jsonb, $3
  FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[]) AS u(id, speaker, text, markers)
), nodes_written AS (
  INSERT INTO kg_nodes (id, session_id, label, node_type, confidence, properties, source_utterance_ids, recorded_at)
  SELECT id, $1, label, node_type, confidence, properties::jsonb, $8::jsonb, $3
  FROM UNNEST($9::text[], $10::text[], $11::text[], $12::float8[], $13::text[])
    AS n(id, label, node_type, confidence, properties)
), edges_written AS (
  INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, confidence, properties, source_utterance_ids, recorded_at)
  SELECT id, $1, source, target, 'leads_to', 0.7, '{}'::jsonb, $8::jsonb, $3
  FROM UNNEST($14::text[], $15::text[], $16::text[]) AS e(id, source, target)
), scores_written AS (
  INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, saturation_score,
    novelty_score, richness_score, strategy_selected, strategy_reasoning, scorer_details, created_at)
  VALUES ($17, $1, $2, $18, 0.5, 0.1, 0.9, NULL, 'deepen', $19, $20::jsonb, $3)
), covered AS (
  UPDATE concept_elements SET is_covered = TRUE, covered_at = $3, covered_by_node_id = $21
  WHERE session_id = $1 AND element_id = $22 AND NOT is_covered
)
UPDATE sessions SET turn_count = $2, coverage_score = $18, updated_at = $3 WHERE id = $1";

const SESSION: &str = "\
WITH session_written AS (
  INSERT INTO sessions (id, methodology, concept_id, concept_name, status, config, created_at, updated_at,
    completed_at, turn_count, coverage_score)
  VALUES ($1, 'means_end_chain', 'oat-milk', 'Oat milk latte', 'active', $2::jsonb, $3, $3, NULL, 0, 0.0)
)
INSERT INTO concept_elements (id, session_id, element_id, label, element_type, priority, is_covered,
  covered_at, covered_by_node_id)
SELECT id, $1, element_id, label, 'attribute', priority, FALSE, NULL, NULL
FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[]) AS e(id, element_id, label, priority)";

const READS: [&str; 5] = [
    "SELECT * FROM sessions WHERE id = $1",
    "SELECT * FROM kg_nodes WHERE session_id = $1 AND superseded_by IS NULL \
     ORDER BY recorded_at, id COLLATE \"C\"",
    "SELECT * FROM kg_edges WHERE session_id = $1 ORDER BY recorded_at, id COLLATE \"C\"",
    "SELECT * FROM utterances WHERE session_id = $1 \
     ORDER BY turn_number DESC, created_at DESC, id COLLATE \"C\" DESC LIMIT 10",
    "SELECT * FROM scoring_history WHERE session_id = $1 ORDER BY turn_number",
];

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// Runs the write and read phases at `concurrency`; returns their
/// durations in seconds.
pub async fn run(
    url: &str,
    sessions: usize,
    turns: usize,
    concurrency: usize,
    blocks: Arc<TurnBlocks>,
    read_rows: Arc<AtomicUsize>,
) -> Result<(f64, f64), BoxError> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency.max(1))?)
        .connect(url)
        .await?;
    let ids: Arc<Vec<String>> = Arc::new((0..sessions).map(|_| id()).collect());

    let started = Instant::now();
    run_sessions(concurrency, sessions, {
        let (pool, ids) = (pool.clone(), Arc::clone(&ids));
        move |i| {
            let (pool, ids, blocks) = (pool.clone(), Arc::clone(&ids), Arc::clone(&blocks));
            async move { write_session(&pool, &ids[i], turns, &blocks).await }
        }
    })
    .await?;
    let write_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    run_sessions(concurrency, sessions, {
        let (pool, ids) = (pool.clone(), Arc::clone(&ids));
        move |i| {
            let (pool, ids, read_rows) = (pool.clone(), Arc::clone(&ids), Arc::clone(&read_rows));
            async move {
                let rows = read_session(&pool, &ids[i]).await?;
                read_rows.fetch_add(rows, Ordering::Relaxed);
                Ok::<(), BoxError>(())
            }
        }
    })
    .await?;
    let read_s = started.elapsed().as_secs_f64();
    pool.close().await;
    Ok((write_s, read_s))
}

async fn write_session(
    pool: &PgPool,
    session_id: &str,
    turns: usize,
    blocks: &TurnBlocks,
) -> Result<(), BoxError> {
    let priority = |k: usize| match PRIORITIES[k % 3] {
        entity::concept_element::Priority::High => "high",
        entity::concept_element::Priority::Medium => "medium",
        entity::concept_element::Priority::Low => "low",
    };
    sqlx::query(SESSION)
        .bind(session_id)
        .bind(json!({"max_turns": turns}).to_string())
        .bind(now())
        .bind((0..10).map(|_| id()).collect::<Vec<_>>())
        .bind((0..10).map(|k| format!("e{k}")).collect::<Vec<_>>())
        .bind((0..10).map(|k| format!("Element {k}")).collect::<Vec<_>>())
        .bind((0..10).map(priority).collect::<Vec<_>>())
        .execute(pool)
        .await?;
    for t in 1..=turns {
        let started = Instant::now();
        let turn = i32::try_from(t)?;
        let user_id = id();
        let node_ids: Vec<String> = (0..NODE_TYPES.len()).map(|_| id()).collect();
        let coverage = t as f64 / 100.0;
        sqlx::query(TURN)
            .bind(session_id)
            .bind(turn)
            .bind(now())
            .bind(vec![user_id.clone(), id()])
            .bind(vec!["user", "system"])
            .bind(vec![
                ANSWER,
                "And why does feeling calmer in the morning matter to you?",
            ])
            .bind(vec![r#"["because","since"]"#, "[]"])
            .bind(json!([user_id]).to_string())
            .bind(&node_ids)
            .bind(
                (0..NODE_TYPES.len())
                    .map(|k| format!("n{t}_{k}"))
                    .collect::<Vec<_>>(),
            )
            .bind(NODE_TYPES.to_vec())
            .bind(vec![0.8_f64; NODE_TYPES.len()])
            .bind(vec![json!({"turn": t}).to_string(); NODE_TYPES.len()])
            .bind((0..3).map(|_| id()).collect::<Vec<_>>())
            .bind(node_ids[..3].to_vec())
            .bind(node_ids[1..4].to_vec())
            .bind(id())
            .bind(coverage)
            .bind("the answer named a consequence worth laddering")
            .bind(json!({"depth": {"chain": 3}, "novelty": {"new_nodes": 4}}).to_string())
            .bind(&node_ids[0])
            .bind(format!("e{}", t % 10))
            .execute(pool)
            .await?;
        blocks.add(t, started.elapsed().as_secs_f64());
    }
    Ok(())
}

async fn read_session(pool: &PgPool, session_id: &str) -> Result<usize, BoxError> {
    let mut txn = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *txn)
        .await?;
    let mut rows = 0;
    for sql in READS {
        let found = sqlx::query(sql)
            .bind(session_id)
            .fetch_all(&mut *txn)
            .await?;
        let decoded = found.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        rows += decoded.len();
    }
    txn.commit().await?;
    Ok(rows)
}

/// Every column into an owned value, JSON columns parsed, as an ORM
/// would (a `bytea` is read into its bytes and kept as its length).
fn decode(row: &PgRow) -> Result<Vec<Value>, BoxError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        if row.try_get_raw(i)?.is_null() {
            values.push(Value::Null);
            continue;
        }
        let value = match column.type_info().name() {
            "TEXT" => Value::String(row.try_get::<String, _>(i)?),
            "INT4" => json!(row.try_get::<i32, _>(i)?),
            "FLOAT8" => json!(row.try_get::<f64, _>(i)?),
            "BOOL" => json!(row.try_get::<bool, _>(i)?),
            "TIMESTAMP" => json!(row.try_get::<chrono::NaiveDateTime, _>(i)?.to_string()),
            "JSONB" | "JSON" => row.try_get::<Value, _>(i)?,
            "BYTEA" => json!(row.try_get::<Vec<u8>, _>(i)?.len()),
            other => return Err(format!("unexpected column type {other}").into()),
        };
        values.push(value);
    }
    Ok(values)
}
