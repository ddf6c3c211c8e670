//! The turn as the Python system writes it today, and the similarity
//! look-up (`shared/BENCHMARKS.md`, "The turn as the Python system writes
//! it today"), through this module or through raw SQLite (rusqlite, one
//! connection, cached prepared statements, the schema `init` creates).
//! Prints one JSON line.
//!
//! ```sh
//! cargo run --release --example today_workload -- --phase turns --database-url sqlite://target/bench/today.db
//! cargo run --release --example today_workload -- --phase turns --impl rusqlite --database-url sqlite://target/bench/today-raw.db
//! cargo run --release --example today_workload -- --phase similarity --database-url sqlite://target/bench/similar.db
//! ```
//!
//! A turn here is the benchmark turn of BENCHMARKS.md plus, per node, a
//! stance (cycling −1, 0, 1), a quote and a 384-float embedding seeded from
//! its label; each node mapped to its type's canonical slot (created in
//! turn 1); one canonical edge upserted per surface edge; a qualitative-
//! signals row; the session's velocity, a focus entry and a ~2 KB tracker
//! state, and the merge of `{"llm_usage": …}` into the config — all in
//! `record_turn`'s one transaction, as the raw baseline does it in one.

#[path = "../tests/common/turns.rs"]
mod turn_builders;

use std::path::Path;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use entity::canonical_slot::SlotStatus;
use entity::{EMBEDDING_DIMENSIONS, Embedding, FocusEntry, SessionId, SlotId, Stance};
use interview_persistence::config::SqliteLocation;
use interview_persistence::repositories::{
    NewConceptElement, NewSession, NewSlot, NodeRef, Repositories, Signals, TurnCanonicalEdge,
    TurnSignals, TurnSlotMapping, TurnVelocity,
};
use interview_persistence::{DatabaseConfig, DatabaseUrl, init_database};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use turn_builders::{ANSWER, NODE_TYPES, benchmark_turn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Implementation {
    /// This module, through its repositories.
    InterviewPersistence,
    /// Raw SQLite through rusqlite.
    Rusqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    /// Today's turn.
    Turns,
    /// The similarity look-up over 500 nodes.
    Similarity,
}

#[derive(Debug, Parser)]
struct Args {
    /// A SQLite file (deleted first).
    #[arg(long, default_value = "sqlite://target/bench/today.db")]
    database_url: String,
    #[arg(long, value_enum, default_value_t = Phase::Turns)]
    phase: Phase,
    #[arg(long = "impl", value_enum, default_value_t = Implementation::InterviewPersistence)]
    implementation: Implementation,
    /// Sessions (turns phase).
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Turns per session (turns phase).
    #[arg(long, default_value_t = 50)]
    turns: usize,
    /// Current nodes of the one type searched (similarity phase).
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    /// Look-ups timed (similarity phase).
    #[arg(long, default_value_t = 200)]
    lookups: usize,
}

/// A deterministic embedding seeded from `label` (a xorshift stream).
fn embedding_of(label: &str) -> Embedding {
    let mut state = label.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    let values = (0..EMBEDDING_DIMENSIONS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    Embedding::new(values).expect("finite values")
}

fn stance(k: usize) -> Stance {
    [Stance::Negative, Stance::Neutral, Stance::Positive][k % 3]
}

/// The ~2 KB tracker state of turn `t`.
fn tracker(t: i64) -> Value {
    json!({"turn": t, "states": (0..24).map(|k| (format!("node-{k}"), json!({"focus_count": k, "last_turn": t, "label": format!("label {k} of the tracker")}))).collect::<serde_json::Map<_, _>>()})
}

fn file_of(url: &DatabaseUrl) -> Result<std::path::PathBuf, BoxError> {
    match url.sqlite_location() {
        Some(SqliteLocation::File { path, .. }) => Ok(path),
        _ => Err("this benchmark needs a SQLite file".into()),
    }
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let url = DatabaseUrl::parse(&args.database_url)?;
    let path = file_of(&url)?;
    remove_database(&path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let config = DatabaseConfig::new(url);
    let db = init_database(&config).await?;
    let implementation = match args.implementation {
        Implementation::InterviewPersistence => "interview-persistence",
        Implementation::Rusqlite => "rusqlite",
    };
    let line = match (args.phase, args.implementation) {
        (Phase::Turns, Implementation::InterviewPersistence) => {
            let repos = Repositories::new(&db);
            let started = Instant::now();
            for _ in 0..args.sessions {
                module_session(&repos, args.turns).await?;
            }
            let seconds = started.elapsed().as_secs_f64();
            json!({"impl": implementation, "phase": "today", "sessions": args.sessions, "turns": args.turns,
                   "write_turns_per_s": (args.sessions * args.turns) as f64 / seconds})
        }
        (Phase::Turns, Implementation::Rusqlite) => {
            db.close().await?;
            let (sessions, turns) = (args.sessions, args.turns);
            let seconds =
                tokio::task::spawn_blocking(move || raw_sessions(&path, sessions, turns)).await??;
            json!({"impl": implementation, "phase": "today", "sessions": args.sessions, "turns": args.turns,
                   "write_turns_per_s": (args.sessions * args.turns) as f64 / seconds})
        }
        (Phase::Similarity, implementation_kind) => {
            let repos = Repositories::new(&db);
            let session = similarity_session(&repos, args.nodes).await?;
            let queries: Vec<Embedding> = (0..args.lookups)
                .map(|i| embedding_of(&format!("node {}", i * 7 % args.nodes)))
                .collect();
            let (micros, found) = match implementation_kind {
                Implementation::InterviewPersistence => {
                    let started = Instant::now();
                    let mut found = 0;
                    for query in &queries {
                        found += repos
                            .graph
                            .find_similar_nodes(&session, "attribute", query, 0.80)
                            .await?
                            .len();
                    }
                    (
                        started.elapsed().as_secs_f64() * 1e6 / queries.len() as f64,
                        found,
                    )
                }
                Implementation::Rusqlite => {
                    db.close().await?;
                    let session = session.to_string();
                    tokio::task::spawn_blocking(move || raw_similarity(&path, &session, &queries))
                        .await??
                }
            };
            json!({"impl": implementation, "phase": "similarity", "nodes": args.nodes,
                   "lookups": args.lookups, "us_per_lookup": micros, "found": found})
        }
    };
    println!("{line}");
    Ok(())
}

fn session(turns: usize) -> NewSession {
    NewSession {
        id: None,
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        config: json!({"max_turns": turns}),
    }
}

fn elements() -> Vec<NewConceptElement> {
    use entity::concept_element::Priority;
    (0..10)
        .map(|k| NewConceptElement {
            element_id: format!("e{k}").into(),
            label: format!("Element {k}"),
            element_type: "attribute".into(),
            priority: [Priority::High, Priority::Medium, Priority::Low][k % 3],
        })
        .collect()
}

async fn module_session(repos: &Repositories, turns: usize) -> Result<(), BoxError> {
    let (session, _) = repos
        .sessions
        .create_with_elements(session(turns), elements())
        .await?;
    let mut slots: Vec<SlotId> = Vec::new();
    for t in 1..=turns {
        if t == 1 {
            for node_type in NODE_TYPES {
                let slot = repos
                    .canonical
                    .create_slot(NewSlot {
                        session_id: session.id.clone(),
                        slot_name: format!("{node_type}_slot"),
                        description: None,
                        node_type: node_type.into(),
                        first_seen_turn: 1,
                        embedding: Some(embedding_of(node_type)),
                        status: SlotStatus::Candidate,
                    })
                    .await?;
                slots.push(slot.id);
            }
        }
        let mut turn = benchmark_turn(&session.id, t as i32);
        for (k, node) in turn.nodes.iter_mut().enumerate() {
            node.stance = stance(k);
            node.source_quotes = vec![format!("quote {k} of turn {t}")];
            node.embedding = Some(embedding_of(&node.label));
        }
        turn.slot_mappings = (0..4)
            .map(|k| TurnSlotMapping {
                node: NodeRef::New(k),
                slot_id: slots[k].clone(),
                similarity_score: 0.9,
            })
            .collect();
        turn.canonical_edges = (0..3)
            .map(|k| TurnCanonicalEdge {
                source_slot_id: slots[k].clone(),
                target_slot_id: slots[k + 1].clone(),
                edge_type: "leads_to".into(),
                surface_edge: k,
            })
            .collect();
        turn.signals = Some(TurnSignals {
            llm_model: Some("methodology_signals".into()),
            extraction_latency_ms: Some(0),
            extraction_errors: vec![],
            signals: Signals {
                reasoning: Some(json!({"kind": "causal", "turn": t})),
                ..Signals::default()
            },
        });
        turn.velocity = Some(TurnVelocity {
            surface_velocity_peak: 4.0,
            prev_surface_node_count: (4 * t) as i32,
            canonical_velocity_peak: 1.0,
            prev_canonical_node_count: 4,
        });
        turn.focus = Some(FocusEntry {
            turn: t as i32,
            node_id: String::new(),
            label: format!("n{t}_0"),
            strategy: "deepen".into(),
        });
        turn.node_tracker_state = Some(tracker(t as i64));
        let usage = json!({"llm_usage": {"prompt_tokens": 812 * t, "completion_tokens": 97 * t}});
        turn.config_patch = usage.as_object().cloned();
        repos.turns.record_turn(turn).await?;
    }
    Ok(())
}

fn now() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The same work through rusqlite, each turn (config merge included) in
/// one transaction.
fn raw_sessions(path: &Path, sessions: usize, turns: usize) -> Result<f64, BoxError> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;",
    )?;
    let started = Instant::now();
    for _ in 0..sessions {
        let session_id = new_id();
        let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let at = now();
        txn.prepare_cached(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status, config, created_at, \
             updated_at, turn_count, coverage_score) VALUES (?, 'means_end_chain', 'oat-milk', 'Oat milk latte', \
             'active', ?, ?, ?, 0, 0.0)",
        )?
        .execute(params![session_id, json!({"max_turns": turns}).to_string(), at, at])?;
        for k in 0..10 {
            txn.prepare_cached(
                "INSERT INTO concept_elements (id, session_id, element_id, label, element_type, priority, \
                 is_covered) VALUES (?, ?, ?, ?, 'attribute', ?, 0)",
            )?
            .execute(params![
                new_id(),
                session_id,
                format!("e{k}"),
                format!("Element {k}"),
                ["high", "medium", "low"][k % 3]
            ])?;
        }
        txn.commit()?;
        let mut slots = Vec::new();
        for t in 1..=turns as i64 {
            let txn = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let at = now();
            if t == 1 {
                for node_type in NODE_TYPES {
                    let id = format!("slot_{}", uuid::Uuid::now_v7().simple());
                    txn.prepare_cached(
                        "INSERT INTO canonical_slots (id, session_id, slot_name, node_type, status, \
                         support_count, first_seen_turn, embedding, created_at) \
                         VALUES (?, ?, ?, ?, 'candidate', 0, 1, ?, ?)",
                    )?
                    .execute(params![
                        id,
                        session_id,
                        format!("{node_type}_slot"),
                        node_type,
                        embedding_of(node_type).to_le_bytes(),
                        at
                    ])?;
                    slots.push(id);
                }
            }
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
            let mut node_ids = Vec::new();
            for (k, node_type) in NODE_TYPES.iter().enumerate() {
                let node_id = new_id();
                let label = format!("n{t}_{k}");
                txn.prepare_cached(
                    "INSERT INTO kg_nodes (id, session_id, label, node_type, confidence, properties, \
                     source_utterance_ids, recorded_at, stance, embedding, source_quotes) \
                     VALUES (?, ?, ?, ?, 0.8, ?, ?, ?, ?, ?, ?)",
                )?
                .execute(params![
                    node_id,
                    session_id,
                    label,
                    node_type,
                    json!({"turn": t}).to_string(),
                    provenance,
                    at,
                    stance(k).as_i32(),
                    embedding_of(&label).to_le_bytes(),
                    json!([format!("quote {k} of turn {t}")]).to_string()
                ])?;
                txn.prepare_cached(
                    "INSERT INTO surface_to_slot_mapping (surface_node_id, canonical_slot_id, similarity_score, \
                     assigned_turn, assigned_at) VALUES (?, ?, 0.9, ?, ?)",
                )?
                .execute(params![node_id, slots[k], t, at])?;
                txn.prepare_cached(
                    "UPDATE canonical_slots SET support_count = support_count + 1 WHERE id = ?",
                )?
                .execute(params![slots[k]])?;
                node_ids.push(node_id);
            }
            for k in 0..3 {
                let edge_id = new_id();
                txn.prepare_cached(
                    "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, confidence, \
                     properties, source_utterance_ids, recorded_at) VALUES (?, ?, ?, ?, 'leads_to', 0.7, '{}', ?, ?)",
                )?
                .execute(params![edge_id, session_id, node_ids[k], node_ids[k + 1], provenance, at])?;
                txn.prepare_cached(
                    "INSERT INTO canonical_edges (id, session_id, source_slot_id, target_slot_id, edge_type, \
                     support_count, surface_edge_ids, created_at, updated_at) VALUES (?, ?, ?, ?, 'leads_to', 1, \
                     json_array(?5), ?6, ?6) ON CONFLICT (session_id, source_slot_id, target_slot_id, edge_type) \
                     DO UPDATE SET support_count = support_count + 1, \
                     surface_edge_ids = json_insert(surface_edge_ids, '$[#]', ?5), updated_at = ?6",
                )?
                .execute(params![
                    format!("cedge_{}", uuid::Uuid::now_v7().simple()),
                    session_id,
                    slots[k],
                    slots[k + 1],
                    edge_id,
                    at
                ])?;
            }
            let coverage = t as f64 / 100.0;
            txn.prepare_cached(
                "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, \
                 saturation_score, novelty_score, strategy_selected, strategy_reasoning, scorer_details, created_at) \
                 VALUES (?, ?, ?, ?, 0.5, 0.1, 0.9, 'deepen', ?, ?, ?)",
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
            txn.prepare_cached(
                "INSERT INTO qualitative_signals (id, session_id, turn_number, llm_model, extraction_latency_ms, \
                 extraction_errors, reasoning_signal, created_at) VALUES (?, ?, ?, 'methodology_signals', 0, '[]', ?, ?) \
                 ON CONFLICT (session_id, turn_number) DO NOTHING",
            )?
            .execute(params![new_id(), session_id, t, json!({"kind": "causal", "turn": t}).to_string(), at])?;
            let focus =
                json!({"turn": t, "node_id": "", "label": format!("n{t}_0"), "strategy": "deepen"});
            txn.prepare_cached(
                "UPDATE sessions SET turn_count = ?, coverage_score = ?, updated_at = ?, \
                 surface_velocity_peak = 4.0, prev_surface_node_count = ?, canonical_velocity_peak = 1.0, \
                 prev_canonical_node_count = 4, focus_history = json_insert(focus_history, '$[#]', json(?)), \
                 node_tracker_state = ? WHERE id = ?",
            )?
            .execute(params![t, coverage, at, 4 * t, focus.to_string(), tracker(t).to_string(), session_id])?;
            let config: String = txn
                .prepare_cached("SELECT config FROM sessions WHERE id = ?")?
                .query_row(params![session_id], |row| row.get(0))?;
            let mut config: serde_json::Map<String, Value> = serde_json::from_str(&config)?;
            config.insert(
                "llm_usage".into(),
                json!({"prompt_tokens": 812 * t, "completion_tokens": 97 * t}),
            );
            txn.prepare_cached("UPDATE sessions SET config = ? WHERE id = ?")?
                .execute(params![Value::Object(config).to_string(), session_id])?;
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
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

/// A session with `nodes` current nodes of one type, each with an
/// embedding (and as many of another type, which the look-up skips).
async fn similarity_session(repos: &Repositories, nodes: usize) -> Result<SessionId, BoxError> {
    use interview_persistence::repositories::NewNode;
    let session = repos.sessions.create(session(1)).await?;
    for i in 0..nodes {
        for node_type in ["attribute", "value"] {
            repos
                .graph
                .create_node(NewNode {
                    embedding: Some(embedding_of(&format!("node {i}"))),
                    ..NewNode::new(&session.id, &format!("node {i}"), node_type)
                })
                .await?;
        }
    }
    Ok(session.id)
}

/// The raw baseline of the look-up: read the same blobs, compute the same
/// cosines, sort the matches best first, then read the matching rows.
fn raw_similarity(
    path: &Path,
    session_id: &str,
    queries: &[Embedding],
) -> Result<(f64, usize), BoxError> {
    let conn = Connection::open(path)?;
    let started = Instant::now();
    let mut found = 0;
    for query in queries {
        let q = query.values();
        let q_norm = query.norm();
        let mut statement = conn.prepare_cached(
            "SELECT id, embedding FROM kg_nodes WHERE session_id = ? AND node_type = 'attribute' \
             AND superseded_by IS NULL AND embedding IS NOT NULL ORDER BY recorded_at, id",
        )?;
        let mut rows = statement.query(params![session_id])?;
        let mut matches: Vec<(String, f64)> = Vec::new();
        while let Some(row) = rows.next()? {
            let bytes = row.get_ref(1)?.as_blob()?;
            let (mut dot, mut norm) = (0.0f64, 0.0f64);
            for (chunk, &x) in bytes.chunks_exact(4).zip(q) {
                let v = f64::from(f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
                dot += v * f64::from(x);
                norm += v * v;
            }
            let cosine = dot / (q_norm * norm.sqrt() + 1e-8);
            if cosine >= 0.80 {
                matches.push((row.get(0)?, cosine));
            }
        }
        matches.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut node = conn.prepare_cached("SELECT * FROM kg_nodes WHERE id = ?")?;
        for (id, _) in &matches {
            let columns = node.column_count();
            node.query_row(params![id], |row| {
                for i in 0..columns {
                    let _ = row.get_ref(i)?;
                }
                Ok(())
            })?;
        }
        found += matches.len();
    }
    Ok((
        started.elapsed().as_secs_f64() * 1e6 / queries.len() as f64,
        found,
    ))
}
