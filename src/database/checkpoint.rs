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
//! Several processes on one file each run their own checkpointer, and each
//! pauses only its own writers: the others keep appending, so the passes
//! never reach the end of the WAL and it is never restarted (it grew to
//! gigabytes with four busy processes). So when a round still finds more
//! than half of `wal_size_limit` (at least 1 MiB) in the WAL after its
//! passes, it escalates to
//! `PRAGMA wal_checkpoint(TRUNCATE)`, which takes SQLite's write lock
//! through the busy handler — pausing every process's writers, for the few
//! frames left — copies the rest and truncates the WAL to zero bytes. Its
//! wait is capped at [`ESCALATION_WAIT`] (at most a quarter of the busy
//! timeout), because while it waits for a reader on an old snapshot it
//! holds the write lock (plus the time to copy what is left). After one
//! that could not truncate, the next escalation waits [`ESCALATION_RETRY`],
//! doubled for each failure in a row up to [`ESCALATION_BACKOFF_MAX`], so
//! that a long reader does not make every round stall the writers.
//!
//! After an erasure the WAL is truncated to zero bytes at once
//! ([`truncate_wal`]), so that no older version of an erased row stays in
//! it. When a reader's snapshot prevented that, the checkpointer is asked
//! to [`truncate_when_possible`](Checkpointer::truncate_when_possible): its
//! rounds then end with a `TRUNCATE` checkpoint that does not wait for
//! readers, until one succeeds, and then record those erasures' scrub as
//! done (see `scrub`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::Notify;

use super::writer::WeakWriter;
use super::{query_value, set_busy_timeout};
use crate::error::Error;

/// The longest an escalated (`TRUNCATE`) checkpoint waits for the write
/// lock and for readers, while it keeps every process's writers waiting.
pub(crate) const ESCALATION_WAIT: Duration = Duration::from_millis(250);

/// How soon a round follows an escalation that could not truncate: longer
/// than the longest sleep of SQLite's busy handler (100 ms), so that other
/// processes' writers, polling for the lock, get it between two attempts.
const ESCALATION_RETRY: Duration = Duration::from_millis(150);

/// The longest pause between two escalations that could not truncate.
const ESCALATION_BACKOFF_MAX: Duration = Duration::from_millis(2400);

/// The checkpoint task's settings, from [`DatabaseConfig`](crate::DatabaseConfig).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointSettings {
    /// Checkpoint at least this often.
    pub(crate) interval: Duration,
    /// The connections' busy timeout, restored after a pass that must
    /// wait less.
    pub(crate) busy_timeout: Duration,
    /// Frames past this many bytes that a round could not copy make it
    /// escalate to a `TRUNCATE` checkpoint.
    pub(crate) wal_size_limit: u64,
}

/// Counts commits and wakes the checkpoint task.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    commits: AtomicU64,
    after_commits: u64,
    wake: Notify,
    /// An erasure could not truncate the WAL: do it at the next round
    /// that finds no reader holding it back.
    truncate_pending: AtomicBool,
    /// The erasures whose scrub that truncation completes.
    scrubs_pending: Mutex<Vec<super::scrub::OwedScrub>>,
}

impl Checkpointer {
    /// A counter that asks for a checkpoint every `after_commits` commits.
    pub(crate) fn new(after_commits: u32) -> Arc<Self> {
        Arc::new(Self {
            commits: AtomicU64::new(0),
            after_commits: u64::from(after_commits.max(1)),
            wake: Notify::new(),
            truncate_pending: AtomicBool::new(false),
            scrubs_pending: Mutex::new(Vec::new()),
        })
    }

    /// Starts the checkpoint task on `connection`; it ends when the last
    /// handle on this checkpointer is dropped or the connection is closed.
    /// It pauses this process's writers through `writer`'s queue.
    pub(crate) fn start(
        self: &Arc<Self>,
        connection: DatabaseConnection,
        writer: WeakWriter,
        settings: CheckpointSettings,
    ) {
        tokio::spawn(run(Arc::downgrade(self), connection, writer, settings));
    }

    /// Asks the task to truncate the WAL to zero bytes as soon as no
    /// reader holds it back (an erasure could not), then to record the
    /// scrub of the erasures `completing` as done.
    pub(crate) fn truncate_when_possible(&self, completing: Vec<super::scrub::OwedScrub>) {
        let mut pending = self
            .scrubs_pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for owed in completing {
            if !pending.contains(&owed) {
                pending.push(owed);
            }
        }
        drop(pending);
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
    settings: CheckpointSettings,
) {
    // Bytes per WAL frame: a page and its 24-byte header.
    let page_size = query_value::<i64>(&connection, "PRAGMA page_size").await;
    let frame_bytes = page_size
        .ok()
        .flatten()
        .and_then(|size| u64::try_from(size).ok())
        .unwrap_or(4096)
        + 24;
    let escalation_wait = ESCALATION_WAIT.min(settings.busy_timeout / 4);
    // Half the limit, but not below 1 MiB: a `wal_size_limit` of 0 (a valid
    // `journal_size_limit`) must not make every round escalate.
    let escalate_past = (settings.wal_size_limit / 2).max(1 << 20);
    // Escalations in a row that could not truncate (a reader on an old
    // snapshot, or the write lock not free in time), and the earliest time
    // of the next one: ESCALATION_RETRY after a failure, doubled for each
    // in a row up to ESCALATION_BACKOFF_MAX, so that a long reader does not
    // make every round (they come every few dozen commits) stall writers.
    let mut failed_escalations: u32 = 0;
    let mut escalate_not_before = tokio::time::Instant::now();
    while let Some(alive) = checkpointer.upgrade() {
        let pause = if failed_escalations > 0 {
            settings
                .interval
                .min(escalate_not_before.saturating_duration_since(tokio::time::Instant::now()))
        } else {
            settings.interval
        };
        tokio::select! {
            () = alive.wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
        let truncate = alive.truncate_pending.load(Ordering::Acquire);
        drop(alive);
        if checkpointer.strong_count() == 0 {
            break;
        }
        let round = async {
            checkpoint(&connection).await?;
            let Some(queue) = writer.upgrade() else {
                return Ok(Round::WriterStopped);
            };
            let writers_wait = match queue.lease(false).await {
                Ok(lease) => lease,
                // The writer was busy for a whole busy timeout: the next
                // round tries again.
                Err(Error::Busy(_)) => return Ok(Round::Deferred),
                Err(_) => return Ok(Round::WriterStopped),
            };
            if truncate {
                let truncated =
                    truncate_waiting_at_most(&connection, Duration::ZERO, settings.busy_timeout)
                        .await?;
                if truncated && let Some(alive) = checkpointer.upgrade() {
                    alive.truncate_pending.store(false, Ordering::Release);
                    let completed = std::mem::take(
                        &mut *alive
                            .scrubs_pending
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner),
                    );
                    drop(alive);
                    // Still holding the writer: no write came in between.
                    if let Err(err) = super::scrub::record_done(&connection, &completed).await {
                        tracing::warn!(error = %err, "the WAL was truncated, but the erasures' scrub could not be recorded");
                    }
                    tracing::info!(sessions = completed.len(), "WAL truncated after an erasure");
                }
                return Ok(Round::Done);
            }
            let frames = checkpoint(&connection).await?;
            // Rounds come every few dozen commits, and the WAL restarts at
            // the first write after a round copied it all: past half its
            // limit, it did not (another process's writers or a reader
            // kept it from it). This process's writers wait in line
            // meanwhile, like every other process's.
            let over = frames.saturating_mul(frame_bytes) > escalate_past;
            if over && tokio::time::Instant::now() < escalate_not_before {
                return Ok(Round::Deferred);
            }
            if over {
                let truncated =
                    truncate_waiting_at_most(&connection, escalation_wait, settings.busy_timeout)
                        .await?;
                drop(writers_wait);
                tracing::debug!(frames, truncated, "escalated to a TRUNCATE checkpoint");
                return Ok(Round::Escalated { truncated });
            }
            drop(writers_wait);
            Ok::<_, sea_orm::DbErr>(Round::Done)
        };
        match round.await {
            Ok(Round::Done) => failed_escalations = 0,
            Ok(Round::Deferred) => {}
            Ok(Round::Escalated { truncated: true }) => failed_escalations = 0,
            Ok(Round::Escalated { truncated: false }) => {
                failed_escalations = failed_escalations.saturating_add(1);
                let backoff = ESCALATION_RETRY
                    .saturating_mul(1 << (failed_escalations - 1).min(4))
                    .min(ESCALATION_BACKOFF_MAX);
                escalate_not_before = tokio::time::Instant::now() + backoff;
            }
            Ok(Round::WriterStopped) => break,
            Err(sea_orm::DbErr::ConnectionAcquire(_)) => break, // the pool was closed
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed; will retry"),
        }
    }
    let _ = connection.close().await;
}

/// How a checkpoint round ended.
enum Round {
    /// The WAL is under the escalation threshold (or an erasure's
    /// truncation ran).
    Done,
    /// Nothing done this round: past the threshold, but the last
    /// escalation failed too recently, or the writer stayed busy for a
    /// whole busy timeout.
    Deferred,
    /// The WAL was past its limit; `truncated` when the escalated
    /// checkpoint could restart it.
    Escalated {
        truncated: bool,
    },
    WriterStopped,
}

/// `PRAGMA wal_checkpoint(mode)`'s row: whether it was kept from finishing
/// (busy) and the number of frames in the WAL (-1, not in WAL mode, reads
/// as 0).
async fn wal_checkpoint(
    connection: &DatabaseConnection,
    mode: &str,
) -> Result<(bool, u64), sea_orm::DbErr> {
    let row = connection
        .query_one_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            format!("PRAGMA wal_checkpoint({mode})"),
        ))
        .await?;
    Ok(match row {
        Some(row) => (
            row.try_get_by_index::<i64>(0)? != 0,
            u64::try_from(row.try_get_by_index::<i64>(1)?).unwrap_or(0),
        ),
        None => (true, 0),
    })
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copies what it can without waiting;
/// returns the number of frames in the WAL.
async fn checkpoint(connection: &DatabaseConnection) -> Result<u64, sea_orm::DbErr> {
    Ok(wal_checkpoint(connection, "PASSIVE").await?.1)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `connection`: copies the whole WAL
/// into the database file and truncates it to zero bytes. `false` when it
/// could not (a reader holds an old snapshot past the busy timeout, or
/// another connection was checkpointing): SQLite reports that in the
/// result row, not as an error.
pub(crate) async fn truncate_wal(connection: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    Ok(!wal_checkpoint(connection, "TRUNCATE").await?.0)
}

/// [`truncate_wal`] waiting at most `wait` for the write lock and for
/// readers (an erasure's follow-up does not wait at all, so that a reader
/// holding the WAL back does not keep writers waiting); the connection's
/// `busy_timeout` is restored afterwards.
async fn truncate_waiting_at_most(
    connection: &DatabaseConnection,
    wait: Duration,
    busy_timeout: Duration,
) -> Result<bool, sea_orm::DbErr> {
    set_busy_timeout(connection, wait).await?;
    let truncated = truncate_wal(connection).await;
    set_busy_timeout(connection, busy_timeout).await?;
    truncated
}
