//! The baseline of BENCHMARKS.md: the same workload through raw SQLite
//! (rusqlite), one connection, cached prepared statements, the same schema
//! and pragmas. It shows what this machine can do without an ORM, so the
//! module's figures can be read as a ratio measured in the same run.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{ANSWER, IdKind, NODE_TYPES, PRIORITIES, TurnBlocks};

fn now() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn priority(k: usize) -> &'static str {
    match PRIORITIES[k % 3] {
        entity::concept_element::Priority::High => "high",
        entity::concept_element::Priority::Medium => "medium",
        entity::concept_element::Priority::Low => "low",
    }
}

/// Runs the write and read phases; returns their durations in seconds.
#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    sessions: usize,
    turns: usize,
    ids: IdKind,
    full_sync: bool,
    read_rounds: usize,
    blocks: &TurnBlocks,
    read_rows_total: &AtomicUsize,
) -> Result<(f64, f64), Box<dyn std::error::Error + Send + Sync>> {
    let new_id = move || match ids {
        IdKind::V4 => uuid::Uuid::new_v4().to_string(),
        IdKind::V7 => uuid::Uuid::now_v7().to_string(),
    };
    let mut conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA busy_timeout = 5000;",
        if full_sync { "FULL" } else { "NORMAL" }
    ))?;

    let session_ids: Vec<String> = (0..sessions).map(|_| new_id()).collect();
    let started = Instant::now();
    for session_id in &session_ids {
        let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        txn.prepare_cached(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, config, created_at, \
             updated_at, completed_at, turn_count, coverage_score) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, NULL, 0, 0.0)",
        )?
        .execute(params![
            session_id,
            "means_end_chain",
            "oat-milk",
            "Oat milk latte",
            json!({"max_turns": turns}).to_string(),
            at,
            at
        ])?;
        for k in 0..10 {
            txn.prepare_cached(
                "INSERT INTO concept_elements (id, session_id, element_id, label, element_type, priority, \
                 is_covered, covered_at, covered_by_node_id) VALUES (?, ?, ?, ?, 'attribute', ?, 0, NULL, NULL)",
            )?
            .execute(params![new_id(), session_id, format!("e{k}"), format!("Element {k}"), priority(k)])?;
        }
        txn.commit()?;

        for t in 1..=turns as i64 {
            let turn_started = Instant::now();
            let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let at = now();
            let user_id = new_id();
            let provenance = json!([user_id]).to_string();
            let mut utterance = txn.prepare_cached(
                "INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )?;
            utterance.execute(params![
                user_id,
                session_id,
                t,
                "user",
                ANSWER,
                r#"["because","since"]"#,
                at
            ])?;
            let mut node_ids = Vec::with_capacity(4);
            for (k, node_type) in NODE_TYPES.iter().enumerate() {
                let node_id = new_id();
                txn.prepare_cached(
                    "INSERT INTO kg_nodes (id, session_id, label, node_type, confidence, properties, \
                     source_utterance_ids, recorded_at, superseded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                )?
                .execute(params![
                    node_id,
                    session_id,
                    format!("n{t}_{k}"),
                    node_type,
                    0.8,
                    json!({"turn": t}).to_string(),
                    provenance,
                    at
                ])?;
                node_ids.push(node_id);
            }
            for k in 0..3 {
                txn.prepare_cached(
                    "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, confidence, \
                     properties, source_utterance_ids, recorded_at) VALUES (?, ?, ?, ?, 'leads_to', ?, '{}', ?, ?)",
                )?
                .execute(params![new_id(), session_id, node_ids[k], node_ids[k + 1], 0.7, provenance, at])?;
            }
            let coverage = t as f64 / 100.0;
            txn.prepare_cached(
                "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, \
                 saturation_score, novelty_score, richness_score, strategy_selected, strategy_reasoning, \
                 scorer_details, created_at) VALUES (?, ?, ?, ?, 0.5, 0.1, 0.9, NULL, 'deepen', ?, ?, ?)",
            )?
            .execute(params![
                new_id(),
                session_id,
                t,
                coverage,
                "the answer named a consequence worth laddering",
                json!({"depth": {"chain": 3}, "novelty": {"new_nodes": 4}}).to_string(),
                at
            ])?;
            txn.prepare_cached(
                "UPDATE concept_elements SET is_covered = 1, covered_at = ?, covered_by_node_id = ? \
                 WHERE session_id = ? AND element_id = ? AND is_covered = 0",
            )?
            .execute(params![at, node_ids[0], session_id, format!("e{}", t % 10)])?;
            txn.prepare_cached("UPDATE sessions SET turn_count = ?, coverage_score = ?, updated_at = ? WHERE id = ?")?
                .execute(params![t, coverage, at, session_id])?;
            utterance.execute(params![
                new_id(),
                session_id,
                t,
                "system",
                "And why does feeling calmer in the morning matter to you?",
                "[]",
                at
            ])?;
            drop(utterance);
            txn.commit()?;
            blocks.add(t as usize, turn_started.elapsed().as_secs_f64());
        }
    }
    let write_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for session_id in session_ids
        .iter()
        .cycle()
        .take(session_ids.len() * read_rounds)
    {
        let txn = conn.transaction()?;
        let mut rows = 0usize;
        rows += read_rows(
            &txn,
            "SELECT * FROM sessions WHERE id = ?",
            session_id,
            &[5],
        )?;
        let nodes = read_rows(
            &txn,
            "SELECT * FROM kg_nodes WHERE session_id = ? AND superseded_by IS NULL ORDER BY recorded_at, id",
            session_id,
            &[5, 6],
        )?;
        assert_eq!(nodes, 4 * turns);
        rows += nodes;
        rows += read_rows(
            &txn,
            "SELECT * FROM kg_edges WHERE session_id = ? ORDER BY recorded_at, id",
            session_id,
            &[6, 7],
        )?;
        rows += read_rows(
            &txn,
            "SELECT * FROM utterances WHERE session_id = ? ORDER BY turn_number DESC, created_at DESC, id DESC LIMIT 10",
            session_id,
            &[5],
        )?;
        rows += read_rows(
            &txn,
            "SELECT * FROM scoring_history WHERE session_id = ? ORDER BY turn_number",
            session_id,
            &[10],
        )?;
        assert!(rows > 0);
        read_rows_total.fetch_add(rows, Ordering::Relaxed);
        txn.commit()?;
    }
    let read_s = started.elapsed().as_secs_f64();
    Ok((write_s, read_s))
}

/// Reads every row and column of `sql` into owned values, parsing the JSON
/// columns, as an ORM would; returns the row count.
fn read_rows(
    conn: &Connection,
    sql: &str,
    session_id: &str,
    json_columns: &[usize],
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query(params![session_id])?;
    let mut decoded: Vec<Vec<Value>> = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            let value = match row.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(n) => json!(n),
                rusqlite::types::ValueRef::Real(x) => json!(x),
                rusqlite::types::ValueRef::Text(text) if json_columns.contains(&i) => {
                    serde_json::from_slice(text)?
                }
                rusqlite::types::ValueRef::Text(text) => {
                    Value::String(String::from_utf8(text.to_vec())?)
                }
                rusqlite::types::ValueRef::Blob(_) => Value::Null,
            };
            values.push(value);
        }
        decoded.push(values);
    }
    Ok(decoded.len())
}
