//! Background WAL checkpoints for SQLite files.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses its
//! threshold, so every few dozen turns one writer pays for copying the WAL
//! back into the database and for two fsyncs. This module turns the
//! automatic checkpoint off (`wal_autocheckpoint=0` on the module's
//! connections) and runs `PRAGMA wal_checkpoint(PASSIVE)` from a task of its
//! own, on a connection of its own, after every
//! [`checkpoint_after_commits`](crate::DatabaseConfig::checkpoint_after_commits)
//! write transactions and at least every
//! [`checkpoint_interval`](crate::DatabaseConfig::checkpoint_interval).
//!
//! A passive checkpoint blocks neither writers nor readers, but under a
//! steady stream of writes it never catches up with the end of the WAL, and
//! SQLite restarts the WAL from its beginning only once everything was
//! copied. So each round is two passes: the first copies the bulk (and pays
//! the fsyncs) while writers go on; the second runs while this process's
//! writers wait in line and copies the few frames appended meanwhile. The
//! next write then restarts the WAL, truncating the file to
//! [`wal_size_limit`](crate::DatabaseConfig::wal_size_limit) if it grew past
//! it (`journal_size_limit`). A reader that keeps one transaction open
//! holds the WAL back until it ends; the next round after that shrinks it.
//!
//! After an erasure the WAL is truncated to zero bytes at once
//! ([`truncate_wal`]), so that no older version of an erased row stays in
//! it. When a reader's snapshot prevented that, the checkpointer is asked
//! to [`truncate_when_possible`](Checkpointer::truncate_when_possible): its
//! rounds then end with a `TRUNCATE` checkpoint that does not wait for
//! readers, until one succeeds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::Notify;

use super::writer::WeakWriter;

/// Counts commits and wakes the checkpoint task.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    commits: AtomicU64,
    after_commits: u64,
    wake: Notify,
    /// An erasure could not truncate the WAL: do it at the next round
    /// that finds no reader holding it back.
    truncate_pending: AtomicBool,
}

impl Checkpointer {
    /// A counter that asks for a checkpoint every `after_commits` commits.
    pub(crate) fn new(after_commits: u32) -> Arc<Self> {
        Arc::new(Self {
            commits: AtomicU64::new(0),
            after_commits: u64::from(after_commits.max(1)),
            wake: Notify::new(),
            truncate_pending: AtomicBool::new(false),
        })
    }

    /// Starts the checkpoint task on `connection`; it ends when the last
    /// handle on this checkpointer is dropped or the connection is closed.
    /// It pauses this process's writers through `writer`'s queue.
    /// `busy_timeout` is the connection's, restored after a truncation
    /// that must not wait.
    pub(crate) fn start(
        self: &Arc<Self>,
        connection: DatabaseConnection,
        writer: WeakWriter,
        interval: Duration,
        busy_timeout: Duration,
    ) {
        tokio::spawn(run(
            Arc::downgrade(self),
            connection,
            writer,
            interval,
            busy_timeout,
        ));
    }

    /// Asks the task to truncate the WAL to zero bytes as soon as no
    /// reader holds it back (an erasure could not).
    pub(crate) fn truncate_when_possible(&self) {
        self.truncate_pending.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Records a committed write transaction.
    pub(crate) fn committed(&self) {
        let commits = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if commits.is_multiple_of(self.after_commits) {
            self.wake.notify_one();
        }
    }
}

async fn run(
    checkpointer: Weak<Checkpointer>,
    connection: DatabaseConnection,
    writer: WeakWriter,
    interval: Duration,
    busy_timeout: Duration,
) {
    while let Some(alive) = checkpointer.upgrade() {
        tokio::select! {
            () = alive.wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        let truncate = alive.truncate_pending.load(Ordering::Acquire);
        drop(alive);
        if checkpointer.strong_count() == 0 {
            break;
        }
        let bulk = checkpoint(&connection).await;
        let catch_up = match bulk {
            Ok(()) => {
                let Some(queue) = writer.upgrade() else { break };
                let Ok(_writers_wait) = queue.lease().await else {
                    break; // the writer stopped
                };
                if truncate {
                    truncate_without_waiting(&connection, busy_timeout)
                        .await
                        .map(|truncated| {
                            if truncated && let Some(alive) = checkpointer.upgrade() {
                                alive.truncate_pending.store(false, Ordering::Release);
                                tracing::info!("WAL truncated after an erasure");
                            }
                        })
                } else {
                    checkpoint(&connection).await
                }
            }
            Err(err) => Err(err),
        };
        if let Err(err) = catch_up {
            if matches!(err, sea_orm::DbErr::ConnectionAcquire(_)) {
                break; // the pool was closed
            }
            tracing::warn!(error = %err, "WAL checkpoint failed; will retry");
        }
    }
    let _ = connection.close().await;
}

async fn checkpoint(connection: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    connection
        .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
        .await
        .map(|_| ())
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `connection`: copies the whole WAL
/// into the database file and truncates it to zero bytes. `false` when it
/// could not (a reader holds an old snapshot past the busy timeout, or
/// another connection was checkpointing): SQLite reports that in the
/// result row, not as an error.
pub(crate) async fn truncate_wal(connection: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    let row = connection
        .query_one_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ))
        .await?;
    let busy = match row {
        Some(row) => row.try_get_by_index::<i64>(0)?,
        None => 1,
    };
    Ok(busy == 0)
}

/// [`truncate_wal`] with no busy timeout, so that a reader holding the WAL
/// back does not keep this process's writers waiting; the connection's
/// busy timeout is restored afterwards.
async fn truncate_without_waiting(
    connection: &DatabaseConnection,
    busy_timeout: Duration,
) -> Result<bool, sea_orm::DbErr> {
    connection
        .execute_unprepared("PRAGMA busy_timeout = 0")
        .await?;
    let truncated = truncate_wal(connection).await;
    connection
        .execute_unprepared(&format!(
            "PRAGMA busy_timeout = {}",
            busy_timeout.as_millis()
        ))
        .await?;
    truncated
}
