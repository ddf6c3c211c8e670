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

use interview_persistence::repositories::Repositories;
use interview_persistence::{DatabaseConfig, init_database};

#[path = "common/acknowledged.rs"]
mod acknowledged;
#[path = "common/single_test.rs"]
mod single_test;
#[path = "common/turns.rs"]
mod turn_builders;

use acknowledged::{Failure, create_session, integrity, verify_session};
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
    if single_test::invocation("kill_9_keeps_every_acknowledged_turn")
        != single_test::Invocation::Run
    {
        return ExitCode::SUCCESS;
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
    let integrity = integrity(&db).await?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}").into());
    }
    verify_session(&db, &session_id.into(), acknowledged).await?;
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
        create_session(&repos, &session_id.into()).await?;
        let mut stdout = std::io::stdout().lock();
        for t in 1.. {
            repos
                .turns
                .record_turn(chain_turn(&session_id.into(), t))
                .await?;
            writeln!(stdout, "ack {t}")?;
            stdout.flush()?;
        }
        Ok(())
    })
}
