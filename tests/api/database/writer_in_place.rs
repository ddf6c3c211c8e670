//! A write that finds the writer idle runs in place (`Writer::try_inline`):
//! on every executor (a `LocalSet`, a current-thread runtime, a blocking
//! thread, a foreign executor), beside a `begin_write` in one task, and
//! racing `close`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use interview_persistence::repositories::Repositories;
use interview_persistence::{Error, init_database};

use crate::fixtures::{count, start};
use crate::helpers;
use crate::turn_builders::chain_turn;

/// A minimal executor that is not Tokio's: polls `future` on this thread,
/// parking between wake-ups, for at most 20 s.
fn plain_block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "the future did not finish in 20 s"
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_from_every_kind_of_caller_land_without_a_panic() {
    let test_db = helpers::sqlite().await;
    let repos = Repositories::new(&test_db.db);
    let session = start(&repos).await;
    let mut t = 0;
    let mut next = || {
        t += 1;
        t
    };
    // spawn_blocking + Handle::block_on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, s, n) = (repos.clone(), session.clone(), next());
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(r.turns.record_turn(chain_turn(&s, n)))
    })
    .await
    .expect("joined")
    .expect("turn from spawn_blocking");
    // A non-Tokio executor inside a task on a worker, twice in a row.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, s, n1, n2) = (repos.clone(), session.clone(), next(), next());
    tokio::spawn(async move {
        plain_block_on(r.turns.record_turn(chain_turn(&s, n1))).expect("turn 1");
        plain_block_on(r.turns.record_turn(chain_turn(&s, n2))).expect("turn 2");
    })
    .await
    .expect("joined");
    // A non-Tokio executor on a plain thread that entered the runtime.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, s, n) = (repos.clone(), session.clone(), next());
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let _entered = handle.enter();
        plain_block_on(r.turns.record_turn(chain_turn(&s, n)))
    })
    .join()
    .expect("no panic")
    .expect("turn from a plain thread");
    // A current-thread runtime on a thread of its own.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, s, n) = (repos.clone(), session.clone(), next());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(r.turns.record_turn(chain_turn(&s, n)))
    })
    .join()
    .expect("no panic")
    .expect("turn from a current-thread runtime");
    let expected = next() - 1;
    assert_eq!(
        count(&test_db.db, "scoring_history").await,
        i64::from(expected)
    );
}

/// A write from a task of a `LocalSet` on a multi-threaded runtime (the
/// way to run `!Send` futures there): before the inline path it queued
/// and awaited its answer; now it finds the writer idle and calls
/// `block_in_place`, which Tokio forbids inside a `LocalSet`, and panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_a_local_set_on_a_multi_threaded_runtime_does_not_panic() {
    let test_db = helpers::sqlite().await;
    let repos = Repositories::new(&test_db.db);
    let session = start(&repos).await;
    // The writer idle, as it is between two turns of a service.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (r, s) = (repos.clone(), session.clone());
    let spawned = tokio::task::LocalSet::new()
        .run_until(async move {
            tokio::task::spawn_local(async move { r.turns.record_turn(chain_turn(&s, 1)).await })
                .await
        })
        .await;
    match spawned {
        Ok(turn) => {
            turn.expect("turn from a LocalSet task");
        }
        Err(err) => panic!("the write from a LocalSet task panicked: {err:?}"),
    }
    assert_eq!(count(&test_db.db, "scoring_history").await, 1);
}

/// A write transaction and a write joined in one task: the write waits
/// for the transaction's commit, then lands; nothing deadlocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_joined_with_a_transaction_in_one_task_waits_for_it() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session = start(&repos).await;
    let (tx, write) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(
            async {
                let txn = db.begin_write().await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                txn.commit().await
            },
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                repos.turns.record_turn(chain_turn(&session, 1)).await
            }
        )
    })
    .await
    .expect("no deadlock");
    tx.expect("the transaction");
    write.expect("the write");
}

/// Writers keep writing through clones while the database closes: what
/// was acknowledged is there, nothing lands after `close` returned, and
/// later writes are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_racing_close_land_before_it_returns_or_not_at_all() {
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(start(&repos).await);
    }
    let mut tasks = Vec::new();
    for session in sessions {
        let (repos, acknowledged) = (repos.clone(), acknowledged.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            for t in 1.. {
                assert!(Instant::now() < deadline);
                match repos.turns.record_turn(chain_turn(&session, t)).await {
                    Ok(_) => {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Error::WriteAbandoned) => return,
                    Err(err) if err.to_string().contains("closed") => return,
                    Err(err) => panic!("{err:?}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.clone().close().await.expect("close");
    let at_close = acknowledged.load(Ordering::SeqCst);
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the writers stop")
            .expect("no panic");
    }
    let outside = helpers::outside_connection_to(&config).await;
    let rows: i64 = sea_orm::ConnectionTrait::query_one_raw(
        &outside,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT count(*) FROM scoring_history",
        ),
    )
    .await
    .expect("count")
    .expect("row")
    .try_get_by_index(0)
    .expect("i64");
    let acknowledged = acknowledged.load(Ordering::SeqCst);
    assert_eq!(
        acknowledged, at_close,
        "a write was acknowledged after close returned"
    );
    assert_eq!(
        rows as usize, acknowledged,
        "rows and acknowledged turns differ"
    );
}
