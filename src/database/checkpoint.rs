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

use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl Checkpointer {
    /// A counter that asks for a checkpoint every `after_commits` commits.
    pub(crate) fn new(after_commits: u32) -> Arc<Self> {
        Arc::new(Self {
            commits: AtomicU64::new(0),
            after_commits: u64::from(after_commits.max(1)),
            wake: Notify::new(),
        })
    }

    /// Starts the checkpoint task on `connection`; it ends when the last
    /// handle on this checkpointer is dropped or the connection is closed.
    /// It pauses this process's writers through `writer`'s queue.
    pub(crate) fn start(
        self: &Arc<Self>,
        connection: DatabaseConnection,
        writer: WeakWriter,
        interval: Duration,
    ) {
        tokio::spawn(run(Arc::downgrade(self), connection, writer, interval));
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
) {
    while let Some(alive) = checkpointer.upgrade() {
        tokio::select! {
            () = alive.wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
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
                checkpoint(&connection).await
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
