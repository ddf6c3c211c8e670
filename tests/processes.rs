//! Several processes on one SQLite file.
//!
//! The binary re-runs itself as child processes, each in one role, all on
//! one database file for a bounded time:
//! - three **writers** record turns through the public API, each on its own
//!   session, a turn every [`WRITE_PAUSE`] (hundreds a second: a hundred
//!   times what live interviews send), and print every answer with how long
//!   it took;
//! - a **reader** holds read transactions open (250 ms each, 100 ms apart);
//! - a **health** loop runs `check_health_at` (what `interview-db health`
//!   runs) every 100 ms;
//! - an **outside lock holder** (plain rusqlite, another program) takes the
//!   write lock twice: once for less than the busy timeout, once for more.
//!
//! The parent samples the WAL's size every 10 ms, then checks:
//! - every acknowledged turn is in the file whole, no turn is there in part,
//!   and `integrity_check` says `ok`;
//! - no write waited longer than one busy timeout (plus a small margin for
//!   the scheduler), and every failure is `Busy` and falls in the long lock
//!   hold; none is a `Conflict` (a committed turn reported as failed and then
//!   retried);
//! - the WAL stayed within [`WAL_BOUND_FACTOR`] times `wal_size_limit`;
//! - every health report was healthy and came within one busy timeout;
//! - the writers went on after each lock hold.
//!
//! Then a second phase: four writer processes with no pause at all, on a
//! file of their own, for 6 s; the WAL stays within twice
//! `wal_size_limit` (the writers' backpressure on the WAL), and every
//! acknowledged turn is there whole.
//!
//! `PROCESSES_SECONDS` (default 10) sets how long the writers run, and
//! `PROCESSES_WRITE_PAUSE_MS` (default 5) the writers' pause; at 0 they
//! write flat out, where SQLite's busy handler, which polls with sleeps
//! rather than queueing, can starve one process past the busy timeout: a
//! measurement, not a check this test makes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use interview_persistence::health::{HealthOptions, check_health_at};
use interview_persistence::repositories::Repositories;
use interview_persistence::{DatabaseConfig, Error, init_database};
use sea_orm::TransactionTrait;
use sea_orm::{ConnectionTrait, Statement};

#[path = "common/acknowledged.rs"]
mod acknowledged;
#[path = "common/single_test.rs"]
mod single_test;
#[path = "common/turns.rs"]
mod turn_builders;

use acknowledged::{Failure, create_session, integrity, verify_session};
use turn_builders::chain_turn;

const ROLE: &str = "INTERVIEW_PROCESS_ROLE";
const WRITERS: usize = 3;
/// The busy timeout every process uses.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// The WAL size the processes truncate to after a checkpoint.
const WAL_SIZE_LIMIT: u64 = 8 * 1024 * 1024;
/// How far past `wal_size_limit` the WAL may grow: what the writers append
/// while the reader's 250 ms snapshot holds it back and an escalated
/// checkpoint waits; without escalation it grows far past that.
const WAL_BOUND_FACTOR: u64 = 3;
/// The outside lock holds: (start after, hold for). The first is shorter
/// than the busy timeout (every write must wait it out and succeed), the
/// second longer (writes fail with `Busy` after one busy timeout).
const LOCK_HOLDS: [(Duration, Duration); 2] = [
    (Duration::from_millis(1500), Duration::from_millis(1000)),
    (Duration::from_millis(4500), Duration::from_millis(3000)),
];
/// The reader's read transactions: held this long, one after another with
/// [`READ_PAUSE`] between.
const READ_HOLD: Duration = Duration::from_millis(250);
const READ_PAUSE: Duration = Duration::from_millis(100);
/// The writers' pause between two turns.
const WRITE_PAUSE: Duration = Duration::from_millis(5);
/// What the scheduler of a loaded 2-core machine may add to a wait.
const MARGIN: Duration = Duration::from_millis(750);

fn main() -> ExitCode {
    let seconds: u64 = std::env::var("PROCESSES_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // At least 10 s: the writers must go on for a while after the long
    // lock hold, which ends 7.5 s in.
    let run_for = Duration::from_secs(seconds.max(10));
    if let Ok(role) = std::env::var(ROLE) {
        let path = PathBuf::from(std::env::var("INTERVIEW_PROCESS_DB").unwrap_or_default());
        let result = match role.as_str() {
            "writer" => writer(
                &path,
                &std::env::var("INTERVIEW_PROCESS_SESSION").unwrap_or_default(),
                run_for,
                None,
            ),
            "flat_out_writer" => writer(
                &path,
                &std::env::var("INTERVIEW_PROCESS_SESSION").unwrap_or_default(),
                FLAT_OUT_FOR,
                Some(Duration::ZERO),
            ),
            "reader" => reader(&path, run_for),
            "health" => health(&path, run_for),
            "locker" => locker(&path),
            other => Err(format!("unknown role {other}").into()),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{role}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if single_test::invocation("several_processes_share_one_file") != single_test::Invocation::Run {
        return ExitCode::SUCCESS;
    }
    println!("running 1 test");
    match parent(run_for) {
        Ok(summary) => {
            println!("test several_processes_share_one_file ... ok\n{summary}");
            println!("processes: 1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("test several_processes_share_one_file ... FAILED\n{e}");
            println!("processes: 0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn config(path: &Path) -> Result<DatabaseConfig, Failure> {
    let mut config = DatabaseConfig::sqlite_file(path)?;
    config.busy_timeout = BUSY_TIMEOUT;
    config.wal_size_limit = WAL_SIZE_LIMIT;
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// One line a child printed, with when the parent read it.
struct Line {
    at: Duration,
    text: String,
}

fn spawn(role: &str, path: &Path, session: &str) -> Result<Child, Failure> {
    Ok(Command::new(std::env::current_exe()?)
        .env(ROLE, role)
        .env("INTERVIEW_PROCESS_DB", path)
        .env("INTERVIEW_PROCESS_SESSION", session)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?)
}

/// Reads a child's lines on a thread, stamped with the time since `epoch`.
fn collect(
    child: &mut Child,
    epoch: Instant,
) -> Result<std::thread::JoinHandle<Vec<Line>>, Failure> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    Ok(std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|text| Line {
                at: epoch.elapsed(),
                text,
            })
            .collect()
    }))
}

/// A database file of its own in a temporary directory (`prefix`), with
/// `count` sessions `<name>-<n>` created: the directory, the file, the ids.
fn study_with_sessions(
    prefix: &str,
    name: &str,
    count: usize,
) -> Result<(tempfile::TempDir, PathBuf, Vec<String>), Failure> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let path = dir.path().join("interview.db");
    let sessions: Vec<String> = (0..count).map(|w| format!("{name}-{w}")).collect();
    runtime()?.block_on(async {
        let db = init_database(&config(&path)?).await?;
        let repos = Repositories::new(&db);
        for session in &sessions {
            create_session(&repos, &session.into()).await?;
        }
        db.close().await?;
        Ok::<(), Failure>(())
    })?;
    Ok((dir, path, sessions))
}

fn parent(run_for: Duration) -> Result<String, Failure> {
    let (_dir, path, sessions) = study_with_sessions("processes", "process-session", WRITERS)?;

    let epoch = Instant::now();
    let mut children = Vec::new();
    for session in &sessions {
        children.push(("writer", session.clone(), spawn("writer", &path, session)?));
    }
    for role in ["reader", "health", "locker"] {
        children.push((role, String::new(), spawn(role, &path, "")?));
    }
    let mut readers = Vec::new();
    for (role, session, child) in &mut children {
        readers.push((*role, session.clone(), collect(child, epoch)?));
    }

    // Sample the WAL until every child is gone (bounded: the children stop
    // on their own; a hung one is killed after twice the run time).
    let wal = wal_path(&path);
    let (mut wal_peak, mut samples, mut over_limit) = (0u64, 0u32, 0u32);
    let deadline = Instant::now() + 2 * run_for + Duration::from_secs(10);
    loop {
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        wal_peak = wal_peak.max(size);
        samples += 1;
        over_limit += u32::from(size > WAL_SIZE_LIMIT);
        let mut running = false;
        for (_, _, child) in &mut children {
            running |= child.try_wait()?.is_none();
        }
        if !running {
            break;
        }
        if Instant::now() > deadline {
            for (_, _, child) in &mut children {
                let _ = child.kill();
            }
            return Err("a child process did not stop in time".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (role, _, child) in &mut children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("the {role} process failed: {status}").into());
        }
    }

    let mut outputs = Vec::new();
    for (role, session, lines) in readers {
        outputs.push((
            role,
            session,
            lines.join().map_err(|_| "a reader thread panicked")?,
        ));
    }
    // The outside process's lock holds, on the parent's clock: it prints
    // each as it releases the lock.
    let mut lock_spans = Vec::new();
    for (_, _, lines) in outputs.iter().filter(|(role, _, _)| *role == "locker") {
        for line in lines {
            let fields: Vec<u64> = line
                .text
                .split_whitespace()
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            let held = Duration::from_micros(fields[1].saturating_sub(fields[0]));
            lock_spans.push((line.at.saturating_sub(held), line.at));
        }
    }
    if lock_spans.len() != LOCK_HOLDS.len() {
        return Err(format!(
            "the outside process took the lock {} times",
            lock_spans.len()
        )
        .into());
    }
    let (long_hold_from, long_hold_until) = lock_spans[1];

    let mut report = Vec::new();
    let mut acknowledged_by_session = Vec::new();
    let (mut writes, mut busy, mut longest_wait) = (0usize, 0usize, Duration::ZERO);
    let (mut health_reports, mut slowest_health) = (0usize, Duration::ZERO);
    for (role, session, lines) in outputs {
        match role {
            "writer" => {
                let mut acknowledged = Vec::new();
                for line in &lines {
                    let fields: Vec<&str> = line.text.split_whitespace().collect();
                    let wait = Duration::from_micros(
                        fields
                            .get(2)
                            .and_then(|f| f.parse().ok())
                            .unwrap_or(u64::MAX),
                    );
                    longest_wait = longest_wait.max(wait);
                    writes += 1;
                    match fields.first().copied() {
                        Some("ack") => acknowledged.push(fields[1].parse::<i32>()?),
                        Some("busy") => {
                            busy += 1;
                            // Only the hold past the busy timeout fails
                            // writes: the wait overlapped it.
                            let asked = line.at.saturating_sub(wait);
                            if line.at < long_hold_from || asked > long_hold_until + MARGIN {
                                return Err(format!(
                                    "{session}: Busy at {:?} after {wait:?}, outside the long lock hold {long_hold_from:?}..{long_hold_until:?}: `{}`",
                                    line.at, line.text
                                )
                                .into());
                            }
                        }
                        _ => {
                            return Err(
                                format!("{session}: unexpected answer `{}`", line.text).into()
                            );
                        }
                    }
                    if wait > BUSY_TIMEOUT + MARGIN {
                        return Err(format!(
                            "{session}: a write waited {wait:?} (`{}`), more than one busy timeout ({BUSY_TIMEOUT:?})",
                            line.text
                        )
                        .into());
                    }
                }
                let after = lines
                    .iter()
                    .filter(|l| l.text.starts_with("ack") && l.at > long_hold_until + MARGIN)
                    .count();
                if after == 0 {
                    return Err(
                        format!("{session}: no turn acknowledged after the lock holds").into(),
                    );
                }
                report.push(format!(
                    "{session}: {} turns acknowledged",
                    acknowledged.len()
                ));
                acknowledged_by_session.push((session, acknowledged));
            }
            "health" => {
                for line in &lines {
                    let fields: Vec<&str> = line.text.split_whitespace().collect();
                    let took = Duration::from_micros(
                        fields
                            .get(2)
                            .and_then(|f| f.parse().ok())
                            .unwrap_or(u64::MAX),
                    );
                    slowest_health = slowest_health.max(took);
                    health_reports += 1;
                    if fields.get(1) != Some(&"healthy") || took > BUSY_TIMEOUT {
                        return Err(format!("health reported `{}`", line.text).into());
                    }
                }
            }
            _ => {}
        }
    }
    if health_reports < 10 {
        return Err(format!("only {health_reports} health reports").into());
    }
    // The short hold must not fail anything; the long one must fail some.
    if busy == 0 {
        return Err(
            "no write failed with Busy while the lock was held past the busy timeout".into(),
        );
    }

    runtime()?.block_on(async {
        let db = init_database(&config(&path)?).await?;
        let integrity = integrity(&db).await?;
        if integrity != "ok" {
            return Err::<(), Failure>(format!("integrity_check: {integrity}").into());
        }
        for (session, acknowledged) in &acknowledged_by_session {
            verify_session(&db, &session.into(), acknowledged).await?;
        }
        db.close().await?;
        Ok(())
    })?;

    report.push(format!(
        "{writes} writes, {busy} Busy (all in the long lock hold), longest wait {longest_wait:?}; \
         {health_reports} health reports, slowest {slowest_health:?}; \
         WAL peak {:.1} MiB (limit {} MiB), above the limit in {over_limit} of {samples} samples",
        wal_peak as f64 / 1048576.0,
        WAL_SIZE_LIMIT / 1048576
    ));
    if wal_peak > WAL_BOUND_FACTOR * WAL_SIZE_LIMIT {
        return Err(format!(
            "{}\nthe WAL grew to {wal_peak} bytes, more than {WAL_BOUND_FACTOR} × wal_size_limit ({WAL_SIZE_LIMIT}); \
             above the limit in {over_limit} of {samples} samples",
            report.join("\n")
        )
        .into());
    }
    report.push(flat_out()?);
    Ok(report.join("\n"))
}

/// Writer processes in the flat-out phase.
const FLAT_OUT_WRITERS: usize = 4;
/// How long they write.
const FLAT_OUT_FOR: Duration = Duration::from_secs(6);
/// The bound the WAL keeps with flat-out writers: twice `wal_size_limit`.
const FLAT_OUT_WAL_BOUND_FACTOR: u64 = 2;

/// The second phase: [`FLAT_OUT_WRITERS`] processes record turns with no
/// pause between them, on a file of their own, for [`FLAT_OUT_FOR`]. The
/// WAL, sampled every 5 ms, stays within twice `wal_size_limit` (the
/// writers' backpressure), every writer got turns through, and every
/// acknowledged turn is there whole.
fn flat_out() -> Result<String, Failure> {
    let (_dir, path, sessions) =
        study_with_sessions("flat-out", "flat-out-session", FLAT_OUT_WRITERS)?;
    let epoch = Instant::now();
    let mut children = Vec::new();
    for session in &sessions {
        let mut child = spawn("flat_out_writer", &path, session)?;
        let lines = collect(&mut child, epoch)?;
        children.push((session.clone(), child, lines));
    }
    let wal = wal_path(&path);
    let (mut wal_peak, mut samples) = (0u64, 0u32);
    let deadline = Instant::now() + 3 * FLAT_OUT_FOR + Duration::from_secs(10);
    loop {
        wal_peak = wal_peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        samples += 1;
        let mut running = false;
        for (_, child, _) in &mut children {
            running |= child.try_wait()?.is_none();
        }
        if !running {
            break;
        }
        if Instant::now() > deadline {
            for (_, child, _) in &mut children {
                let _ = child.kill();
            }
            return Err("a flat-out writer did not stop in time".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut acknowledged_by_session = Vec::new();
    let (mut turns, mut busy) = (0usize, 0usize);
    for (session, mut child, lines) in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a flat-out writer failed: {status}").into());
        }
        let mut acknowledged = Vec::new();
        for line in lines.join().map_err(|_| "a reader thread panicked")? {
            let fields: Vec<&str> = line.text.split_whitespace().collect();
            match fields.first().copied() {
                Some("ack") => acknowledged.push(fields[1].parse::<i32>()?),
                Some("busy") => busy += 1,
                _ => return Err(format!("{session}: `{}`", line.text).into()),
            }
        }
        if acknowledged.is_empty() {
            return Err(format!("{session}: no turn went through").into());
        }
        turns += acknowledged.len();
        acknowledged_by_session.push((session, acknowledged));
    }
    runtime()?.block_on(async {
        let db = init_database(&config(&path)?).await?;
        let integrity = integrity(&db).await?;
        if integrity != "ok" {
            return Err::<(), Failure>(format!("integrity_check: {integrity}").into());
        }
        for (session, acknowledged) in &acknowledged_by_session {
            verify_session(&db, &session.into(), acknowledged).await?;
        }
        db.close().await?;
        Ok(())
    })?;
    let summary = format!(
        "flat out: {FLAT_OUT_WRITERS} processes, {turns} turns in {FLAT_OUT_FOR:?} ({busy} Busy), \
         WAL peak {:.1} MiB (limit {} MiB) in {samples} samples",
        wal_peak as f64 / 1048576.0,
        WAL_SIZE_LIMIT / 1048576
    );
    if wal_peak > FLAT_OUT_WAL_BOUND_FACTOR * WAL_SIZE_LIMIT {
        return Err(format!(
            "{summary}\nthe WAL grew to {wal_peak} bytes, more than \
             {FLAT_OUT_WAL_BOUND_FACTOR} × wal_size_limit ({WAL_SIZE_LIMIT})"
        )
        .into());
    }
    Ok(summary)
}

fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn micros(d: Duration) -> u128 {
    d.as_micros()
}

/// Records turns for `run_for`; prints `ack <turn> <µs>` or
/// `busy <turn> <µs>` for each answer. Any other error ends the process.
fn writer(
    path: &Path,
    session_id: &str,
    run_for: Duration,
    pause: Option<Duration>,
) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let db = init_database(&config(path)?).await?;
        let repos = Repositories::new(&db);
        let started = Instant::now();
        let mut stdout = std::io::stdout().lock();
        let pause = pause.unwrap_or_else(|| {
            std::env::var("PROCESSES_WRITE_PAUSE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(WRITE_PAUSE, Duration::from_millis)
        });
        let mut t = 1;
        while started.elapsed() < run_for {
            let asked = Instant::now();
            let answer = repos
                .turns
                .record_turn(chain_turn(&session_id.into(), t))
                .await;
            let took = micros(asked.elapsed());
            match answer {
                Ok(_) => {
                    writeln!(stdout, "ack {t} {took}")?;
                    t += 1;
                }
                // Not written: the same turn again.
                Err(Error::Busy(err)) => writeln!(stdout, "busy {t} {took} {err}")?,
                Err(other) => {
                    writeln!(stdout, "error {t} {took} {other}")?;
                    return Err(other.into());
                }
            }
            stdout.flush()?;
            tokio::time::sleep(pause).await;
        }
        db.close().await?;
        Ok(())
    })
}

/// Holds read transactions as [`READ_HOLD`] says, for `run_for`.
fn reader(path: &Path, run_for: Duration) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let db = init_database(&config(path)?).await?;
        let connection = db.dedicated_connection().await?;
        let started = Instant::now();
        while started.elapsed() < run_for {
            let snapshot = connection.begin().await?;
            snapshot
                .query_one_raw(Statement::from_string(
                    snapshot.get_database_backend(),
                    "SELECT COUNT(*) FROM utterances",
                ))
                .await?;
            tokio::time::sleep(READ_HOLD).await;
            snapshot.commit().await?;
            tokio::time::sleep(READ_PAUSE).await;
        }
        connection.close().await?;
        db.close().await?;
        Ok(())
    })
}

/// Runs the health check every 100 ms for `run_for`; prints
/// `health <status> <µs>`.
fn health(path: &Path, run_for: Duration) -> Result<(), Failure> {
    runtime()?.block_on(async {
        let config = config(path)?;
        let started = Instant::now();
        let mut stdout = std::io::stdout().lock();
        while started.elapsed() < run_for {
            let asked = Instant::now();
            let report = check_health_at(&config, HealthOptions::default()).await;
            let took = micros(asked.elapsed());
            let status = if report.is_healthy() {
                "healthy"
            } else {
                "unhealthy"
            };
            writeln!(
                stdout,
                "health {status} {took} {}",
                report.error.unwrap_or_default()
            )?;
            stdout.flush()?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
}

/// Another program: takes the write lock (`BEGIN IMMEDIATE`) as
/// [`LOCK_HOLDS`] says; prints `locked <from µs> <until µs>`.
fn locker(path: &Path) -> Result<(), Failure> {
    let started = Instant::now();
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(30))?;
    let mut stdout = std::io::stdout().lock();
    for (after, hold) in LOCK_HOLDS {
        std::thread::sleep(after.saturating_sub(started.elapsed()));
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let from = started.elapsed();
        std::thread::sleep(hold);
        connection.execute_batch("COMMIT")?;
        writeln!(
            stdout,
            "locked {} {}",
            micros(from),
            micros(started.elapsed())
        )?;
        stdout.flush()?;
    }
    Ok(())
}
