//! Kill -9 keeps every acknowledged turn.
//!
//! The binary re-runs itself as a child that records turns with
//! `record_turn` and prints each turn's number only after the commit
//! returned. The parent kills it with SIGKILL after a seeded random delay,
//! reopens the database and checks that every acknowledged turn is there
//! with all its rows, that no turn is there in part, and that
//! `integrity_check` says `ok`. Many rounds on one database file, bounded
//! in count and time; the seed is printed, and `CRASH_SEED` replays it.
//!
//! `CRASH_ROUNDS` (default 12) and `CRASH_SECONDS` (default 60) set the
//! bounds: `CRASH_ROUNDS=500 CRASH_SECONDS=1800 cargo test --test crash`
//! is the long mode. SQLite only: PostgreSQL's durability is the server's.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use interview_persistence::repositories::{NewConceptElement, NewSession, Repositories};
use interview_persistence::{DatabaseConfig, init_database};
use sea_orm::ConnectionTrait;
use serde_json::json;

#[path = "common/turns.rs"]
mod turn_builders;

use turn_builders::chain_turn;

const CHILD: &str = "INTERVIEW_CRASH_CHILD";

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(CHILD) {
        let session = std::env::var("INTERVIEW_CRASH_SESSION").unwrap_or_default();
        return match child(Path::new(&path), &session) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let rounds: u32 = env_number("CRASH_ROUNDS", 12);
    let seconds: u64 = env_number("CRASH_SECONDS", 60);
    println!("running 1 test\ncrash: seed {seed}, up to {rounds} rounds or {seconds} s");
    match parent(seed, rounds, Duration::from_secs(seconds)) {
        Ok(summary) => {
            println!("test kill_9_keeps_every_acknowledged_turn ... ok ({summary})");
            println!("crash: 1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("test kill_9_keeps_every_acknowledged_turn ... FAILED");
            println!("{e}\nreplay with CRASH_SEED={seed}");
            println!("crash: 0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so a seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

type Failure = Box<dyn std::error::Error>;

fn parent(seed: u64, rounds: u32, budget: Duration) -> Result<String, Failure> {
    let dir = tempfile::Builder::new()
        .prefix("crash")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let path = dir.path().join("interview.db");
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut done, mut acknowledged_total) = (0, 0);
    while done < rounds && started.elapsed() < budget {
        let session_id = format!("crash-session-{done}");
        let delay = Duration::from_millis(30 + rng.next() % 400);
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD, &path)
            .env("INTERVIEW_CRASH_SESSION", &session_id)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| {
                    line.strip_prefix("ack ")
                        .and_then(|t| t.parse::<i32>().ok())
                })
                .collect::<Vec<i32>>()
        });
        std::thread::sleep(delay);
        child.kill()?; // SIGKILL
        child.wait()?;
        let acknowledged = reader.join().map_err(|_| "reader panicked")?;
        acknowledged_total += acknowledged.len();
        runtime
            .block_on(verify(&path, &session_id, &acknowledged))
            .map_err(|e| {
                format!(
                    "round {done} (killed after {delay:?}, {} turns acknowledged): {e}",
                    acknowledged.len()
                )
            })?;
        done += 1;
    }
    if done == 0 {
        return Err("no round ran".into());
    }
    Ok(format!(
        "{done} rounds, {acknowledged_total} acknowledged turns, all present"
    ))
}

/// Checks the database after a kill: every acknowledged turn whole, no
/// turn in part, the file intact.
async fn verify(path: &Path, session_id: &str, acknowledged: &[i32]) -> Result<(), Failure> {
    let db = init_database(&DatabaseConfig::sqlite_file(path)?).await?;
    let conn = db.connection();
    let integrity: String = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await?
        .ok_or("no integrity row")?
        .try_get_by_index(0)?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}").into());
    }
    let per_turn = |table: &str| {
        format!(
            "SELECT turn_number, COUNT(*) FROM {table} WHERE session_id = '{session_id}' GROUP BY turn_number"
        )
    };
    let rows = |sql: String| async move {
        conn.query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|r| {
                    (
                        r.try_get_by_index::<i32>(0).unwrap_or(-1),
                        r.try_get_by_index::<i64>(1).unwrap_or(-1),
                    )
                })
                .collect::<std::collections::BTreeMap<i32, i64>>()
        })
    };
    let utterances = rows(per_turn("utterances")).await?;
    let scores = rows(per_turn("scoring_history")).await?;
    let nodes = rows(format!(
        "SELECT CAST(json_extract(properties, '$.turn') AS INTEGER), COUNT(*) FROM kg_nodes \
         WHERE session_id = '{session_id}' GROUP BY 1"
    ))
    .await?;
    let edges = rows(format!(
        "SELECT CAST(json_extract(properties, '$.turn') AS INTEGER), COUNT(*) FROM kg_edges \
         WHERE session_id = '{session_id}' GROUP BY 1"
    ))
    .await?;
    for turn in acknowledged {
        if !utterances.contains_key(turn) || !scores.contains_key(turn) {
            return Err(format!("acknowledged turn {turn} is missing").into());
        }
    }
    for (turn, n) in &utterances {
        let whole = *n == 2
            && scores.get(turn) == Some(&1)
            && nodes.get(turn) == Some(&4)
            && edges.get(turn) == Some(&3);
        if !whole {
            return Err(format!(
                "turn {turn} is partial: {n} utterances, {:?} scores, {:?} nodes, {:?} edges",
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
        return Err(
            format!("rows of turns without utterances: {scores:?} {nodes:?} {edges:?}").into(),
        );
    }
    let recorded = utterances.keys().copied().max().unwrap_or(0);
    let turn_count: i32 = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT turn_count FROM sessions WHERE id = '{session_id}'"),
        ))
        .await?
        .map_or(Ok(0), |r| r.try_get_by_index(0))?;
    if turn_count != recorded {
        return Err(format!("session says {turn_count} turns, {recorded} are recorded").into());
    }
    db.close().await?;
    Ok(())
}

/// The child: records turns as fast as it can until it is killed.
fn child(path: &Path, session_id: &str) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = init_database(&DatabaseConfig::sqlite_file(path)?).await?;
        let repos = Repositories::new(&db);
        let elements = (0..10)
            .map(|k| NewConceptElement {
                element_id: format!("e{k}"),
                label: format!("Element {k}"),
                element_type: "attribute".into(),
                priority: entity::concept_element::Priority::Medium,
            })
            .collect();
        let mut session = NewSession {
            id: Some(session_id.to_owned()),
            methodology: "means_end_chain".into(),
            concept_id: "oat-milk".into(),
            concept_name: "Oat milk latte".into(),
            config: json!({}),
        };
        session.config = json!({"crash_test": true});
        repos
            .sessions
            .create_with_elements(session, elements)
            .await?;
        let mut stdout = std::io::stdout().lock();
        for t in 1.. {
            repos.turns.record_turn(chain_turn(session_id, t)).await?;
            writeln!(stdout, "ack {t}")?;
            stdout.flush()?;
        }
        Ok(())
    })
}
