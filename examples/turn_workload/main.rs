//! The turn workload of `shared/BENCHMARKS.md`: persist interview turns the
//! way the interview system does, and print one JSON line of figures.
//!
//! ```sh
//! cargo run --release --example turn_workload -- \
//!     --database-url sqlite://target/bench/turns.db --sessions 20 --turns 50 --concurrency 1
//! # the raw-SQLite baseline of BENCHMARKS.md, on the same machine:
//! cargo run --release --example turn_workload -- --impl rusqlite --database-url sqlite://target/bench/raw.db
//! ```
//!
//! The SQLite file is deleted first; a PostgreSQL database is emptied first
//! (its `public` schema is dropped and re-created). `scripts/bench.sh` runs
//! both implementations side by side and prints the ratios.

mod raw_postgres;
mod raw_sqlite;
// The benchmark's turn, shared with the tests.
#[path = "../../tests/common/turns.rs"]
mod turn_builders;

use interview_persistence::entity::SessionId;
use turn_builders::benchmark_turn;
pub use turn_builders::{ANSWER, NODE_TYPES};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use entity::concept_element::Priority;
use interview_persistence::config::SqliteLocation;
use interview_persistence::repositories::{NewConceptElement, NewSession, Repositories};
use interview_persistence::{Backend, DatabaseConfig, DatabaseUrl, check_health, init_database};
use sea_orm::ConnectionTrait;
use serde_json::json;

/// Which implementation persists the turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Implementation {
    /// This module, through its public repository API.
    InterviewPersistence,
    /// Raw SQLite through rusqlite: one connection, prepared statements.
    Rusqlite,
    /// Raw PostgreSQL through sqlx: one prepared statement per turn.
    Sqlx,
}

/// Which UUIDs the raw baseline generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdKind {
    /// Random UUIDv4.
    V4,
    /// Time-ordered UUIDv7.
    V7,
}

#[derive(Debug, Parser)]
struct Args {
    /// A SQLite file (deleted first) or a PostgreSQL database (emptied first).
    #[arg(long, default_value = "sqlite://target/bench/turns.db")]
    database_url: String,
    /// How many interview sessions.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// How many turns per session.
    #[arg(long, default_value_t = 50)]
    turns: usize,
    /// How many sessions are driven at the same time.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// The implementation measured.
    #[arg(long = "impl", value_enum, default_value_t = Implementation::InterviewPersistence)]
    implementation: Implementation,
    /// Ids of the raw baseline (this module always uses UUIDv7).
    #[arg(long, value_enum, default_value_t = IdKind::V7)]
    ids: IdKind,
    /// Repeat the read phase this many times (its figure is the mean), for
    /// steadier read figures and profiles.
    #[arg(long, default_value_t = 1)]
    read_rounds: usize,
    /// SQLite `synchronous=FULL` instead of NORMAL.
    #[arg(long)]
    full_sync: bool,
    /// After the read phase, erase every session one by one
    /// (`sessions.delete`) and report the time each took.
    #[arg(long)]
    erase: bool,
}

/// Element priorities, cycling.
pub const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let url = DatabaseUrl::parse(&args.database_url)?;
    let mut config = DatabaseConfig::new(url.clone());
    if args.full_sync {
        config.synchronous = interview_persistence::Synchronous::Full;
    }
    config.max_connections = config.max_connections.max(args.concurrency as u32 + 1);
    reset(&config).await?;

    let started = Instant::now();
    let db = init_database(&config).await?;
    let init_ms = started.elapsed().as_secs_f64() * 1000.0;

    let blocks = Arc::new(TurnBlocks::new(args.turns));
    let read_rows = Arc::new(AtomicUsize::new(0));
    let (write_s, read_s, implementation, erase_ms) = match args.implementation {
        Implementation::InterviewPersistence => {
            let repos = Repositories::new(&db);
            let ids = Arc::new(session_ids(args.sessions));
            let write_s = timed(run_sessions(args.concurrency, args.sessions, {
                let repos = repos.clone();
                let ids = Arc::clone(&ids);
                let turns = args.turns;
                let blocks = Arc::clone(&blocks);
                move |i| {
                    let repos = repos.clone();
                    let ids = Arc::clone(&ids);
                    let blocks = Arc::clone(&blocks);
                    async move { write_session(&repos, &ids[i], turns, &blocks).await }
                }
            }))
            .await?;
            let read_s = timed(run_sessions(
                args.concurrency,
                args.sessions * args.read_rounds,
                {
                    let repos = repos.clone();
                    let ids = Arc::clone(&ids);
                    let turns = args.turns;
                    let read_rows = Arc::clone(&read_rows);
                    move |i| {
                        let repos = repos.clone();
                        let ids = Arc::clone(&ids);
                        let read_rows = Arc::clone(&read_rows);
                        async move {
                            let context = repos.turns.context(&ids[i % ids.len()], 10).await?;
                            assert_eq!(context.current_nodes.len(), 4 * turns);
                            let rows = 1
                                + context.current_nodes.len()
                                + context.edges.len()
                                + context.recent_utterances.len()
                                + context.scoring_history.len();
                            read_rows.fetch_add(rows, Ordering::Relaxed);
                            Ok::<(), interview_persistence::Error>(())
                        }
                    }
                },
            ))
            .await?;
            let mut erase_ms = Vec::new();
            if args.erase {
                for id in ids.iter() {
                    let started = Instant::now();
                    repos.sessions.delete(id).await?;
                    erase_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (write_s, read_s, "interview-persistence", erase_ms)
        }
        Implementation::Rusqlite => {
            let Some(SqliteLocation::File { path, .. }) = config.url.sqlite_location() else {
                return Err("the rusqlite baseline needs a SQLite file".into());
            };
            // The schema comes from this module's migration; the baseline
            // writes and reads it with its own connection.
            db.connection()
                .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                .await?;
            let (sessions, turns, ids, full, rounds) = (
                args.sessions,
                args.turns,
                args.ids,
                args.full_sync,
                args.read_rounds,
            );
            let raw_blocks = Arc::clone(&blocks);
            let raw_rows = Arc::clone(&read_rows);
            let figures = tokio::task::spawn_blocking(move || {
                raw_sqlite::run(
                    &path,
                    sessions,
                    turns,
                    ids,
                    full,
                    rounds,
                    &raw_blocks,
                    &raw_rows,
                )
            })
            .await?
            .map_err(|e| e.to_string())?;
            (figures.0, figures.1, "rusqlite", Vec::new())
        }
        Implementation::Sqlx => {
            if url.backend() != Backend::Postgres {
                return Err("the sqlx baseline needs a PostgreSQL URL".into());
            }
            let (write_s, read_s) = raw_postgres::run(
                &args.database_url,
                args.sessions,
                args.turns,
                args.concurrency,
                Arc::clone(&blocks),
                Arc::clone(&read_rows),
            )
            .await
            .map_err(|e| e.to_string())?;
            (write_s, read_s, "sqlx", Vec::new())
        }
    };

    let started = Instant::now();
    let report = check_health(&db).await;
    let health_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !report.is_healthy() {
        return Err(format!("unhealthy after the run: {:?}", report.error).into());
    }
    let db_bytes = database_bytes(&db).await?;
    db.close().await?;

    let total_turns = (args.sessions * args.turns) as f64;
    let reads = (args.sessions * args.read_rounds) as f64;
    println!(
        "{}",
        json!({
            "impl": implementation,
            "ids": match (args.implementation, args.ids) {
                (Implementation::Rusqlite, IdKind::V4) => "v4",
                _ => "v7",
            },
            "backend": url.backend(),
            "sessions": args.sessions,
            "turns": args.turns,
            "concurrency": args.concurrency,
            "init_ms": round(init_ms),
            "write_turns_per_s": round(total_turns / write_s),
            "read_sessions_per_s": round(reads / read_s),
            "read_us_per_session": round(read_s * 1e6 / reads),
            "read_us_per_row": (read_s * 1e8 / read_rows.load(Ordering::Relaxed).max(1) as f64).round() / 100.0,
            "turn_us_by_100": blocks.means_us(),
            "peak_rss_kb": peak_rss_kb(),
            "health_ms": round(health_ms),
            "db_bytes": db_bytes,
            "erase_ms_mean": (!erase_ms.is_empty())
                .then(|| round(erase_ms.iter().sum::<f64>() / erase_ms.len() as f64)),
            "erase_ms_max": erase_ms.iter().copied().reduce(f64::max).map(round),
        })
    );
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Session ids decided up front, so the read phase knows them.
fn session_ids(sessions: usize) -> Vec<SessionId> {
    (0..sessions)
        .map(|_| interview_persistence::repositories::new_id().into())
        .collect()
}

async fn timed<F>(work: F) -> Result<f64, BoxError>
where
    F: std::future::Future<Output = Result<(), BoxError>>,
{
    let started = Instant::now();
    work.await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Any error of the benchmark.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `job(i)` for every session index, `concurrency` at a time; the
/// first error stops the run.
pub async fn run_sessions<J, F, E>(
    concurrency: usize,
    sessions: usize,
    job: J,
) -> Result<(), BoxError>
where
    J: Fn(usize) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError> + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let next = Arc::clone(&next);
        let job = Arc::clone(&job);
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sessions {
                    return Ok::<(), BoxError>(());
                }
                job(i).await.map_err(Into::into)?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

async fn write_session(
    repos: &Repositories,
    session_id: &SessionId,
    turns: usize,
    blocks: &TurnBlocks,
) -> interview_persistence::Result<()> {
    let elements = (0..10)
        .map(|k| NewConceptElement {
            element_id: format!("e{k}").into(),
            label: format!("Element {k}"),
            element_type: "attribute".into(),
            priority: PRIORITIES[k % 3],
        })
        .collect();
    repos
        .sessions
        .create_with_elements(
            NewSession {
                id: Some(session_id.clone()),
                methodology: "means_end_chain".into(),
                concept_id: "oat-milk".into(),
                concept_name: "Oat milk latte".into(),
                config: json!({"max_turns": turns}),
            },
            elements,
        )
        .await?;
    let turns = i32::try_from(turns)
        .map_err(|_| interview_persistence::Error::InvalidInput("too many turns".into()))?;
    for t in 1..=turns {
        let started = Instant::now();
        repos
            .turns
            .record_turn(benchmark_turn(session_id, t))
            .await?;
        blocks.add(t as usize, started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Time spent per turn, by blocks of 100 turns of a session (turns 1–100,
/// 101–200, …), summed over sessions: whether a turn costs more as its
/// session grows.
pub struct TurnBlocks {
    blocks: Mutex<Vec<(f64, usize)>>,
}

impl TurnBlocks {
    fn new(turns: usize) -> Self {
        Self {
            blocks: Mutex::new(vec![(0.0, 0); turns.div_ceil(100)]),
        }
    }

    /// Counts turn `t` (from 1), which took `seconds`.
    pub fn add(&self, t: usize, seconds: f64) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(block) = blocks.get_mut((t - 1) / 100) {
            block.0 += seconds;
            block.1 += 1;
        }
    }

    fn means_us(&self) -> Vec<f64> {
        let blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks
            .iter()
            .map(|&(seconds, n)| round(seconds * 1e6 / n.max(1) as f64))
            .collect()
    }
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Deletes the SQLite file (and its WAL) or empties the PostgreSQL database.
async fn reset(config: &DatabaseConfig) -> Result<(), BoxError> {
    match config.url.sqlite_location() {
        Some(SqliteLocation::File { path, .. }) => {
            for suffix in ["", "-wal", "-shm"] {
                let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
                match std::fs::remove_file(&file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Some(SqliteLocation::Memory) => {}
        None => {
            let db = interview_persistence::Database::connect(config).await?;
            db.connection()
                .execute_unprepared("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
                .await?;
            db.close().await?;
        }
    }
    Ok(())
}

async fn database_bytes(db: &interview_persistence::Database) -> Result<u64, BoxError> {
    Ok(match (db.backend(), db.sqlite_location()) {
        (Backend::Sqlite, Some(SqliteLocation::File { path, .. })) => {
            let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
            std::fs::metadata(path)?.len() + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
        }
        (Backend::Postgres, _) => {
            let row = db
                .connection()
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_database_size(current_database())",
                ))
                .await?
                .ok_or("no size")?;
            u64::try_from(row.try_get_by_index::<i64>(0)?)?
        }
        _ => 0,
    })
}
