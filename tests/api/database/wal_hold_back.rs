//! The WAL's hard limit (`hold_back_the_wal`) under a long reader: other
//! processes' writers are held back no longer than a quarter of the busy
//! timeout, and never answered `Busy` for it.

use std::time::{Duration, Instant};

use interview_persistence::repositories::Repositories;
use interview_persistence::{Database, Error, init_database};
use sea_orm::{ConnectionTrait, TransactionTrait};

use crate::fixtures::{file_of, start, wal_bytes};
use crate::helpers;
use crate::turn_builders::chain_turn;

/// Two processes on one file (two handles: each its own writer, queue and
/// checkpointer, as two processes have) and one long reader (an analytics
/// query, a backup in another program) on a snapshot. The WAL grows past
/// its hard limit meanwhile; from then on every write's hold-back runs a
/// `TRUNCATE` checkpoint that takes SQLite's write lock and keeps it while
/// it waits, a whole busy timeout, for the reader — so the other process's
/// writers, waiting for that lock, run out of their own busy timeout and
/// are refused `Busy`, though nothing but a reader (which never blocks a
/// writer in WAL mode) is in their way. docs/operations.md: "A reader
/// holding a snapshot for longer than that lets the write go on".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_reader_past_the_wal_hard_limit_does_not_make_other_processes_writes_fail_busy() {
    // Hard limit: 1 MiB + 4 MiB.
    two_processes_beside_a_long_reader(1 << 20).await;
}

/// The control: the same run with a WAL limit the run never reaches (no
/// hold-back): no `Busy` at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_the_same_run_under_the_hard_limit_meets_no_busy_error() {
    two_processes_beside_a_long_reader(1 << 30).await;
}

async fn two_processes_beside_a_long_reader(wal_size_limit: u64) {
    let (_dir, mut config) = helpers::sqlite_config();
    config.wal_size_limit = wal_size_limit;
    // Long enough that a loaded machine (the whole suite on two cores)
    // does not make a plain lock wait between the two processes run out;
    // the hold-back waits at most a quarter of it, and 250 ms.
    config.busy_timeout = Duration::from_millis(3000);
    let a = init_database(&config).await.expect("process a");
    let b = Database::connect(&config).await.expect("process b");
    let path = file_of(&a);
    let (ra, rb) = (Repositories::new(&a), Repositories::new(&b));
    let sa = start(&ra).await;
    let sb = start(&rb).await;

    let reader = a.dedicated_connection().await.expect("a reader");
    let snapshot = reader.begin().await.expect("begin");
    snapshot
        .execute_unprepared("SELECT COUNT(*) FROM kg_nodes")
        .await
        .expect("hold a snapshot");
    // Grow the WAL past the hard limit while the reader holds it.
    let mut t = 1;
    let filling = Instant::now() + Duration::from_secs(60);
    while wal_bytes(&path) <= 6 << 20 {
        assert!(Instant::now() < filling, "the WAL did not grow");
        let mut turn = chain_turn(&sa, t);
        turn.user_utterance.text = format!("{t} {}", "x".repeat(200_000));
        ra.turns.record_turn(turn).await.expect("a big turn");
        t += 1;
    }

    // Both processes record turns for a few seconds, one every 50 ms each.
    let until = Instant::now() + Duration::from_secs(6);
    let writer = |repos: Repositories, session, first: i32| {
        tokio::spawn(async move {
            let (mut busy, mut ok, mut slowest) = (0, 0, Duration::ZERO);
            let mut t = first;
            while Instant::now() < until {
                let began = Instant::now();
                match repos.turns.record_turn(chain_turn(&session, t)).await {
                    Ok(_) => {
                        ok += 1;
                        t += 1;
                    }
                    Err(Error::Busy(_)) => busy += 1,
                    Err(err) => panic!("turn {t}: {err:?}"),
                }
                slowest = slowest.max(began.elapsed());
                // Paced, as a service's turns come (flat out, SQLite's
                // busy handler can starve one process now and then: a
                // Busy docs/operations.md owns up to).
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (ok, busy, slowest)
        })
    };
    let in_a = writer(ra.clone(), sa.clone(), t);
    let in_b = writer(rb.clone(), sb.clone(), 1);
    let (a_ok, a_busy, a_slowest) = in_a.await.expect("a");
    let (b_ok, b_busy, b_slowest) = in_b.await.expect("b");
    drop(snapshot);
    reader.close().await.expect("close the reader");
    eprintln!(
        "a: {a_ok} turns, {a_busy} Busy, slowest {a_slowest:?}; b: {b_ok} turns, {b_busy} Busy, \
         slowest {b_slowest:?}; WAL {} bytes",
        wal_bytes(&path)
    );
    assert_eq!(
        (a_busy, b_busy),
        (0, 0),
        "writes refused Busy with no lock in their way but the hold-back's \
         (a: {a_ok} turns, b: {b_ok} turns)"
    );
    b.close().await.expect("close b");
    a.close().await.expect("close a");
}
