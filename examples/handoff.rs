//! The SQLite write hand-off, measured alone: how a write gets from the
//! caller's task to the one writer connection and its answer back, with
//! group commit, in two designs, against the same writes run inline.
//!
//! - `thread`: the module's design. A dedicated thread owns the connection
//!   and takes jobs from a bounded queue (`tokio::sync::mpsc`, read with
//!   `blocking_recv`); whatever is queued when it looks commits as one
//!   transaction; each caller gets its answer on a oneshot channel.
//! - `leader`: leader/follower (RocksDB's write thread, PostgreSQL's WAL
//!   flush). A caller puts its job in a shared queue and tries to take the
//!   connection's lock; the one that gets it (the leader) commits every
//!   queued job as one transaction on its own thread
//!   (`tokio::task::block_in_place`), answers the others (followers, who
//!   wait on their oneshot), and looks again until the queue is empty.
//! - `inline` (C=1 only): the caller runs its transaction on its own
//!   thread with no queue at all: the floor both designs are measured
//!   against.
//!
//! Each write is one turn's worth of rows (an utterance, four nodes, three
//! edges, a score row and the session's update), with cached statements.
//! Prints one JSON line per design: writes per second, and the ratio to
//! `inline` where it ran.
//!
//! `cargo run --release --example handoff -- [DIR] [WRITES] [C...]`
//! (default: a temporary directory, 4,000 writes, C = 1 and 8). Run it with
//! DIR on disk and on tmpfs (`/dev/shm`): on a fast disk the hand-off's CPU
//! shows; on a slow one fsync hides it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One write: the rows of one turn of `session`.
struct Write {
    session: usize,
    turn: usize,
}

/// A queued write and where its answer goes.
struct Job {
    write: Write,
    reply: oneshot::Sender<Result<(), String>>,
}

fn open(path: &Path) -> Result<Connection, BoxError> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, turn_count INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS utterances (id INTEGER PRIMARY KEY, session INTEGER, turn INTEGER, text TEXT);
         CREATE TABLE IF NOT EXISTS nodes (id INTEGER PRIMARY KEY, session INTEGER, label TEXT, kind TEXT);
         CREATE TABLE IF NOT EXISTS edges (id INTEGER PRIMARY KEY, session INTEGER, source INTEGER, target INTEGER);
         CREATE TABLE IF NOT EXISTS scores (id INTEGER PRIMARY KEY, session INTEGER, turn INTEGER, coverage REAL);",
    )?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

const ANSWER: &str = "I like it because it is creamy and it keeps me going in the morning, \
                      and the oat taste reminds me of breakfast at home.";

/// The rows of one write, in the current transaction.
fn rows(conn: &Connection, write: &Write) -> rusqlite::Result<()> {
    let (s, t) = (write.session as i64, write.turn as i64);
    conn.prepare_cached("INSERT INTO utterances (session, turn, text) VALUES (?, ?, ?)")?
        .execute(params![s, t, ANSWER])?;
    let mut nodes = [0i64; 4];
    for (k, node) in nodes.iter_mut().enumerate() {
        conn.prepare_cached("INSERT INTO nodes (session, label, kind) VALUES (?, ?, 'attribute')")?
            .execute(params![s, format!("n{t}_{k}")])?;
        *node = conn.last_insert_rowid();
    }
    for pair in nodes.windows(2) {
        conn.prepare_cached("INSERT INTO edges (session, source, target) VALUES (?, ?, ?)")?
            .execute(params![s, pair[0], pair[1]])?;
    }
    conn.prepare_cached("INSERT INTO scores (session, turn, coverage) VALUES (?, ?, 0.5)")?
        .execute(params![s, t])?;
    conn.prepare_cached(
        "INSERT INTO sessions (id, turn_count) VALUES (?, 1) \
         ON CONFLICT (id) DO UPDATE SET turn_count = turn_count + 1",
    )?
    .execute(params![s])?;
    Ok(())
}

/// Commits `jobs` as one transaction and answers each.
fn commit_group(conn: &Connection, jobs: Vec<Job>) {
    let outcome = (|| {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        for job in &jobs {
            rows(conn, &job.write)?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok::<_, rusqlite::Error>(())
    })();
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let outcome = outcome.map_err(|e| e.to_string());
    for job in jobs {
        let _ = job.reply.send(outcome.clone());
    }
}

/// The module's design: a thread of its own and a bounded queue.
#[derive(Clone)]
struct ThreadWriter {
    jobs: mpsc::Sender<Job>,
}

impl ThreadWriter {
    fn start(conn: Connection) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(256);
        std::thread::spawn(move || {
            while let Some(first) = queue.blocking_recv() {
                let mut group = vec![first];
                while let Ok(job) = queue.try_recv() {
                    group.push(job);
                }
                commit_group(&conn, group);
            }
        });
        Self { jobs }
    }

    async fn write(&self, write: Write) -> Result<(), BoxError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| "the writer stopped")?;
        Ok(answer.await.map_err(|_| "no answer")??)
    }
}

/// Leader/follower: whoever takes the lock commits what is queued.
#[derive(Clone)]
struct LeaderWriter {
    queue: Arc<Mutex<VecDeque<Job>>>,
    conn: Arc<Mutex<Connection>>,
}

impl LeaderWriter {
    fn new(conn: Connection) -> Self {
        Self {
            queue: Arc::new(Mutex::new(VecDeque::new())),
            conn: Arc::new(Mutex::new(conn)),
        }
    }

    async fn write(&self, write: Write) -> Result<(), BoxError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(Job { write, reply });
        // Lead while there is work and nobody else leads. A caller that
        // finds the lock taken pushed its job before: the leader looks at
        // the queue again after it lets go of the lock, and leads again.
        loop {
            let Ok(conn) = self.conn.try_lock() else {
                break;
            };
            let group: Vec<Job> = self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
                .collect();
            if group.is_empty() {
                break;
            }
            tokio::task::block_in_place(|| commit_group(&conn, group));
            drop(conn);
            if self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
            {
                break;
            }
        }
        Ok(answer.await.map_err(|_| "no answer")??)
    }
}

/// Writes per second of `writes` writes by `concurrency` tasks through
/// `write`.
async fn measure<F, Fut>(writes: usize, concurrency: usize, write: F) -> Result<f64, BoxError>
where
    F: Fn(Write) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    let started = Instant::now();
    let per_task = writes / concurrency;
    let mut tasks = Vec::new();
    for session in 0..concurrency {
        let write = write.clone();
        tasks.push(tokio::spawn(async move {
            for turn in 0..per_task {
                write(Write { session, turn }).await?;
            }
            Ok::<_, BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((per_task * concurrency) as f64 / started.elapsed().as_secs_f64())
}

fn fresh(dir: &Path, name: &str) -> Result<Connection, BoxError> {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
    open(&path)
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let temporary = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| temporary.path().to_path_buf(), PathBuf::from);
    let writes: usize = args.next().map_or(Ok(4000), |w| w.parse())?;
    let concurrencies: Vec<usize> = {
        let given: Vec<usize> = args.map(|c| c.parse()).collect::<Result<_, _>>()?;
        if given.is_empty() { vec![1, 8] } else { given }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Inline, C=1: the floor.
        let inline = {
            let conn = Arc::new(Mutex::new(fresh(&dir, "inline.db")?));
            measure(writes, 1, move |write| {
                let conn = Arc::clone(&conn);
                async move {
                    let (reply, answer) = oneshot::channel();
                    tokio::task::block_in_place(|| {
                        let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                        commit_group(&conn, vec![Job { write, reply }]);
                    });
                    Ok(answer.await.map_err(|_| "no answer")??)
                }
            })
            .await?
        };
        println!(
            "{}",
            serde_json::json!({"design": "inline", "concurrency": 1, "writes_per_s": inline.round()})
        );
        for &concurrency in &concurrencies {
            let thread = ThreadWriter::start(fresh(&dir, "thread.db")?);
            let thread_rate = measure(writes, concurrency, move |write| {
                let thread = thread.clone();
                async move { thread.write(write).await }
            })
            .await?;
            let leader = LeaderWriter::new(fresh(&dir, "leader.db")?);
            let leader_rate = measure(writes, concurrency, move |write| {
                let leader = leader.clone();
                async move { leader.write(write).await }
            })
            .await?;
            for (design, rate) in [("thread", thread_rate), ("leader", leader_rate)] {
                println!(
                    "{}",
                    serde_json::json!({
                        "design": design,
                        "concurrency": concurrency,
                        "writes_per_s": rate.round(),
                        "vs_inline_c1": (rate / inline * 100.0).round() / 100.0,
                    })
                );
            }
            println!(
                "{}",
                serde_json::json!({
                    "concurrency": concurrency,
                    "leader_vs_thread": (leader_rate / thread_rate * 100.0).round() / 100.0,
                })
            );
        }
        Ok::<_, BoxError>(())
    })
}
