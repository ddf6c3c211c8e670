//! The one write path on SQLite: a thread that owns the writer connections
//! (rusqlite for batches, SeaORM's for leases) and takes every write of
//! this process from one queue, in order.
//!
//! SQLite has one writer at a time. Instead of letting writers race for
//! the lock in SQLite's busy handler (which polls with sleeps of up to
//! 100 ms), every write of this process is a job on this queue:
//!
//! - a **batch** (the statements of one call, run on the thread as
//!   `BEGIN IMMEDIATE` … `COMMIT` with cached prepared statements). Batches that are queued together are
//!   committed as one transaction (group commit); if that transaction
//!   fails, each batch is run alone so that one bad write cannot take the
//!   others down. A batch whose caller stopped waiting before the thread
//!   took it from the queue is dropped unrun: a cancelled write never lands
//!   later, behind writes that came after it.
//! - a **lease**: the writer connection lent to one caller for an
//!   interactive transaction ([`Database::begin_write`](super::Database::begin_write)),
//!   or to the checkpointer while it finishes a checkpoint. The queue waits
//!   until the lease is dropped.
//!
//! Each caller gets its answer as soon as its transaction has committed
//! (or failed), from the thread itself: nobody waits for anyone else's turn
//! to read their own outcome.
//!
//! No caller waits without a bound. The queue holds at most
//! [`QUEUE_CAPACITY`] jobs (a full queue is backpressure), and every wait
//! — for room in the queue, for the thread to take the job, for a lease —
//! counts against the caller's busy timeout and ends in [`Error::Busy`].
//! A job the caller gave up on is claimed as such first, so the thread
//! never runs it: `Busy` always means nothing was written. A caller that
//! gave up while its own task held the lease (a repository write inside
//! an open `begin_write`, which would wait for itself) is answered
//! [`Error::WriterHeldByThisTask`] instead. That is decided at the
//! deadline, not up front: futures joined in one task (`tokio::join!`)
//! may rightly wait for each other's lease.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio::sync::{mpsc, oneshot};

use super::FailedBatch;
use super::batch::{StatementBatch, WrittenRow};
use super::checkpoint::Checkpointer;
use super::direct::DirectWriter;
use crate::error::{Error, Result};

/// The sending end of the writer's queue. Cheap to clone; the thread ends
/// when every `Writer` is gone (a [`WeakWriter`] does not keep it alive).
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
    busy_timeout: Duration,
    holder: LeaseHolder,
    leases: Arc<AtomicUsize>,
    /// The rusqlite connection, held by the thread while it commits a
    /// group or lends the writer, taken by a caller that finds it free
    /// (see [`Writer::write`]); `None` once closed.
    direct: SharedDirect,
    checkpointer: Arc<Checkpointer>,
    /// Whether a write may run in place (see [`Writer::try_inline`]): not
    /// when commits fsync (`synchronous=FULL`).
    inline_writes: bool,
}

/// The writer's rusqlite connection, shared by the thread and callers that
/// find it idle.
type SharedDirect = Arc<Mutex<Option<DirectWriter>>>;

/// A handle on the writer that does not keep its thread alive (held by the
/// checkpointer, which the writer itself keeps alive).
#[derive(Debug, Clone)]
pub(crate) struct WeakWriter {
    jobs: mpsc::WeakSender<Job>,
    busy_timeout: Duration,
    holder: LeaseHolder,
    leases: Arc<AtomicUsize>,
    direct: SharedDirect,
    checkpointer: std::sync::Weak<Checkpointer>,
    inline_writes: bool,
}

/// One lease queued or lent, counted in the writer's `leases` until the
/// request is dropped (the thread drops it once the lease ended, or
/// unserved).
#[derive(Debug)]
struct LeaseCount(Arc<AtomicUsize>);

impl LeaseCount {
    fn new(leases: &Arc<AtomicUsize>) -> Self {
        leases.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(leases))
    }
}

impl Drop for LeaseCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Who holds the current lease: a write from the same caller would wait
/// for its own lease.
type LeaseHolder = Arc<Mutex<Option<Caller>>>;

/// The task a call runs in, or, outside any task (the future a runtime's
/// `block_on` runs: `#[tokio::main]`, `#[tokio::test]`), the thread that
/// runs it: such a future never moves to another thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Caller {
    fn current() -> Self {
        tokio::task::try_id().map_or_else(|| Self::Thread(std::thread::current().id()), Self::Task)
    }
}

/// Exclusive use of the writer connection; the queue moves on when it is
/// dropped.
#[derive(Debug)]
pub(crate) struct WriterLease {
    holder: LeaseHolder,
    caller: Caller,
    /// Dropped after [`Drop::drop`] has cleared the holder, so the next
    /// lease's holder is never cleared by this one.
    _release: oneshot::Sender<()>,
}

impl Drop for WriterLease {
    fn drop(&mut self) {
        let mut holder = self.holder.lock().unwrap_or_else(|e| e.into_inner());
        if *holder == Some(self.caller) {
            *holder = None;
        }
    }
}

/// How many writes (and `begin_write` calls) of one SQLite database handle
/// may wait for its writer at once: enough for several full groups of
/// group commit. Past it, callers wait for room — within their busy
/// timeout, ending in [`Error::Busy`] — so a burst cannot queue without a
/// bound.
pub const QUEUE_CAPACITY: usize = 256;

/// Who a queued job belongs to: the writer thread that takes it, or the
/// caller that gave up on it first. Exactly one of them wins.
#[derive(Debug, Default)]
struct Claim(AtomicU8);

impl Claim {
    const WAITING: u8 = 0;
    const TAKEN: u8 = 1;
    const GIVEN_UP: u8 = 2;

    /// The writer takes the job; false when its caller gave up first.
    fn take(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::TAKEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The caller gives up; false when the writer took the job first (it
    /// then runs, and answers, within the caller's busy timeout).
    fn give_up(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WAITING,
                Self::GIVEN_UP,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// How long after its deadline a caller waits for the thread to answer it
/// before giving up itself: the thread answers expired jobs with SQLite's
/// own `Busy` when it can, so the caller's own answer is for a thread that
/// is held (a lease, a long group).
const GIVE_UP_SLACK: Duration = Duration::from_millis(20);

/// The `Busy` of a job whose caller gave up before the writer took it.
fn gave_up(waiting_for: &str) -> Error {
    Error::Busy(DbErr::Custom(format!(
        "the writer stayed busy for the whole busy timeout while this call waited for {waiting_for}; \
         nothing was written"
    )))
}

enum Job {
    Batch(QueuedBatch),
    Lease(LeaseRequest),
    /// Answered once every job queued before it is done; the thread then
    /// stops taking jobs.
    Close(oneshot::Sender<()>),
}

/// The most batches committed in one group, and the most SQL text they
/// may carry: a failing group is retried batch by batch, so a backlog is
/// cut into groups whose retry stays short.
const MAX_GROUP_BATCHES: usize = 64;
const MAX_GROUP_SQL_BYTES: usize = 256 * 1024;

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Batch(_) => "Job::Batch",
            Self::Lease(_) => "Job::Lease",
            Self::Close(_) => "Job::Close",
        })
    }
}

/// A caller waiting for the writer connection.
struct LeaseRequest {
    reply: oneshot::Sender<oneshot::Sender<()>>,
    claim: Arc<Claim>,
    _counted: LeaseCount,
    /// Lend the connection with `PRAGMA foreign_keys=OFF`, turned back on
    /// by the writer thread once the lease ends, however it ends (see
    /// [`Writer::lease`] with `foreign_keys_off`).
    foreign_keys_off: bool,
}

/// A batch waiting for the writer, and where its outcome goes.
struct QueuedBatch {
    batch: StatementBatch,
    reply: oneshot::Sender<std::result::Result<Vec<WrittenRow>, FailedBatch>>,
    /// When the caller's busy timeout runs out: queued time counts, so
    /// that writes lined up behind a lock another process holds are not
    /// each given a whole timeout of their own.
    deadline: Instant,
    claim: Arc<Claim>,
}

impl QueuedBatch {
    /// Takes the batch for the writer: false when its caller stopped
    /// waiting (dropped the future, or gave up at its deadline).
    fn take(&self) -> bool {
        !self.reply.is_closed() && self.claim.take()
    }
}

impl Writer {
    /// Starts the writer thread: batches run on `direct`, leases lend
    /// `connection` (a pool of exactly one connection; both are
    /// connections to the same file, used one at a time). Commits are
    /// counted on `checkpointer`.
    pub(crate) fn start(
        connection: DatabaseConnection,
        direct: DirectWriter,
        checkpointer: Arc<Checkpointer>,
        busy_timeout: Duration,
        inline_writes: bool,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let runtime = tokio::runtime::Handle::current();
        let direct: SharedDirect = Arc::new(Mutex::new(Some(direct)));
        let shared = Arc::clone(&direct);
        let counted = Arc::clone(&checkpointer);
        // A thread of its own, not a task: a batch runs on it directly, so
        // that a turn costs one hand-off each way (the caller's task to
        // this thread, and back), not a task plus a blocking thread.
        let spawned = std::thread::Builder::new()
            .name("interview-writer".into())
            .spawn(move || {
                let _runtime = runtime.enter();
                run(&runtime, connection, &shared, queue, &counted, busy_timeout);
            });
        if let Err(err) = spawned {
            // The queue's receiver is gone with the closure: every write
            // answers `WriteAbandoned`.
            tracing::error!(error = %err, "cannot start the writer thread");
        }
        Self {
            jobs,
            busy_timeout,
            holder: LeaseHolder::default(),
            leases: Arc::default(),
            direct,
            checkpointer,
            inline_writes,
        }
    }

    pub(crate) fn downgrade(&self) -> WeakWriter {
        WeakWriter {
            jobs: self.jobs.downgrade(),
            busy_timeout: self.busy_timeout,
            holder: self.holder.clone(),
            leases: Arc::clone(&self.leases),
            direct: Arc::clone(&self.direct),
            checkpointer: Arc::downgrade(&self.checkpointer),
            inline_writes: self.inline_writes,
        }
    }

    /// Runs `batch` at once on the caller's own thread when the writer is
    /// idle — nothing queued, no lease queued or lent, the rusqlite
    /// connection free — and the transaction cannot wait: SQLite's busy
    /// timeout is 0 for it (a lock another process holds sends the batch
    /// to the queue, where the thread waits for it), commits do not fsync
    /// (`synchronous=NORMAL` in WAL mode; with `FULL` every write queues),
    /// and a WAL past its hard limit queues too (the thread holds writers
    /// back). What is left is the transaction's own CPU work and page-cache
    /// writes, run where the caller runs, like any other short computation
    /// of a task — so on any runtime, or none (a `LocalSet`, a
    /// current-thread runtime). Otherwise gives the batch back, to be
    /// queued.
    ///
    /// This saves the two cross-thread hand-offs a write through the queue
    /// costs (examples/handoff.rs measures them); under contention the
    /// queue and its group commit take over, since a caller that finds the
    /// connection held queues. Writes of concurrent callers have no order
    /// between them either way; one caller's writes, each awaited, keep
    /// theirs.
    fn try_inline(
        &self,
        batch: StatementBatch,
    ) -> std::result::Result<std::result::Result<Vec<WrittenRow>, FailedBatch>, StatementBatch>
    {
        if !self.inline_writes
            || self.leases.load(Ordering::SeqCst) != 0
            || self.jobs.capacity() != self.jobs.max_capacity()
        {
            return Err(batch);
        }
        let Ok(mut direct) = self.direct.try_lock() else {
            return Err(batch);
        };
        let Some(connection) = direct.as_mut() else {
            return Err(batch);
        };
        if connection.wal_past_its_hard_limit()
            || connection.set_busy_timeout(Duration::ZERO).is_err()
        {
            return Err(batch);
        }
        let result = connection.transaction(std::iter::once(&batch));
        let restored = connection.set_busy_timeout(self.busy_timeout);
        drop(direct);
        if let Err(err) = restored {
            tracing::warn!(error = %err, "cannot restore the writer's busy timeout");
        }
        match result {
            Ok(rows) => {
                self.checkpointer.committed();
                Ok(Ok(rows))
            }
            // The lock is another process's: nothing ran (the transaction
            // rolled back); the thread waits for it.
            Err((_, Error::Busy(_))) => Err(batch),
            Err((statement, error)) => Ok(Err(FailedBatch { error, statement })),
        }
    }

    /// The error of a call that gave up waiting for the writer:
    /// [`Error::WriterHeldByThisTask`] when its own task holds the lease
    /// (it waited for itself), `Busy` otherwise.
    fn gave_up(&self, waiting_for: &str) -> Error {
        let holder = *self.holder.lock().unwrap_or_else(|e| e.into_inner());
        if holder == Some(Caller::current()) {
            return Error::WriterHeldByThisTask;
        }
        gave_up(waiting_for)
    }

    /// Queues `job`, waiting for room until `deadline`.
    async fn enqueue(&self, job: Job, deadline: Instant, waiting_for: &str) -> Result<()> {
        // Room at once, the usual case: no timer armed.
        let job = match self.jobs.try_send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::WriteAbandoned),
            Err(mpsc::error::TrySendError::Full(job)) => job,
        };
        match tokio::time::timeout_at(deadline.into(), self.jobs.send(job)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Error::WriteAbandoned),
            // `send` is cancel-safe: timed out, nothing was queued.
            Err(_) => Err(self.gave_up(waiting_for)),
        }
    }

    /// Queues `batch` and waits for its outcome. Dropping the returned
    /// future before the writer took the batch from the queue means it is
    /// never run.
    /// On failure, the index of the batch's statement that failed comes
    /// with the error when it is known.
    pub(crate) async fn write(
        &self,
        batch: StatementBatch,
    ) -> std::result::Result<Vec<WrittenRow>, FailedBatch> {
        let abandoned = || FailedBatch {
            error: Error::WriteAbandoned,
            statement: None,
        };
        let unplaced = |error| FailedBatch {
            error,
            statement: None,
        };
        let batch = match self.try_inline(batch) {
            Ok(outcome) => return outcome,
            Err(batch) => batch,
        };
        let deadline = Instant::now() + self.busy_timeout;
        let (reply, mut outcome) = oneshot::channel();
        let claim = Arc::new(Claim::default());
        let job = Job::Batch(QueuedBatch {
            batch,
            reply,
            deadline,
            claim: claim.clone(),
        });
        self.enqueue(job, deadline, "room in the writer's queue")
            .await
            .map_err(unplaced)?;
        // With no lease queued ahead of this batch or lent, the thread
        // reaches it within the busy timeouts of the batches before it,
        // and answers it by its deadline itself: no timer armed. A lease
        // is counted before it is queued, so one queued ahead is seen.
        if self.leases.load(Ordering::SeqCst) == 0 {
            return outcome.await.unwrap_or_else(|_| Err(abandoned()));
        }
        tokio::select! {
            answer = &mut outcome => return answer.unwrap_or_else(|_| Err(abandoned())),
            () = tokio::time::sleep_until((deadline + GIVE_UP_SLACK).into()) => {}
        }
        if claim.give_up() {
            return Err(unplaced(self.gave_up("the writer")));
        }
        // Taken just in time: it runs within what is left of SQLite's busy
        // timeout, and its outcome is the answer.
        outcome.await.unwrap_or_else(|_| Err(abandoned()))
    }

    /// Lets every write queued so far finish, then stops the thread: writes
    /// queued after it fail with [`Error::WriteAbandoned`].
    pub(crate) async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.jobs.send(Job::Close(reply)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Waits for exclusive use of the writer connection, in queue order.
    ///
    /// With `foreign_keys_off`, foreign keys are off on the connection
    /// until the lease ends: for a table rebuild, whose `DROP TABLE` would
    /// otherwise delete the children of the dropped table through `ON
    /// DELETE CASCADE`. The pragma must be set outside a transaction
    /// (inside one it does nothing), so the thread sets it before lending the
    /// connection and sets it back after the lease is dropped — a caller
    /// that fails or is cancelled cannot leave it off.
    ///
    /// # Errors
    /// [`Error::Busy`] when the writer stayed busy for the whole busy
    /// timeout, [`Error::WriterHeldByThisTask`] when this task held the
    /// lease meanwhile, [`Error::WriteAbandoned`] when the writer stopped.
    pub(crate) async fn lease(&self, foreign_keys_off: bool) -> Result<WriterLease> {
        let (reply, mut lease) = oneshot::channel();
        let deadline = Instant::now() + self.busy_timeout;
        let claim = Arc::new(Claim::default());
        let job = Job::Lease(LeaseRequest {
            reply,
            claim: claim.clone(),
            _counted: LeaseCount::new(&self.leases),
            foreign_keys_off,
        });
        self.enqueue(job, deadline, "room in the writer's queue")
            .await?;
        let release = tokio::select! {
            release = &mut lease => release,
            () = tokio::time::sleep_until(deadline.into()) => {
                if claim.give_up() {
                    return Err(self.gave_up("the writer connection"));
                }
                lease.await
            }
        }
        .map_err(|_| Error::WriteAbandoned)?;
        let caller = Caller::current();
        *self.holder.lock().unwrap_or_else(|e| e.into_inner()) = Some(caller);
        Ok(WriterLease {
            holder: self.holder.clone(),
            caller,
            _release: release,
        })
    }
}

impl WeakWriter {
    /// The writer, while its thread runs.
    pub(crate) fn upgrade(&self) -> Option<Writer> {
        let checkpointer = self.checkpointer.upgrade()?;
        self.jobs.upgrade().map(|jobs| Writer {
            jobs,
            busy_timeout: self.busy_timeout,
            holder: self.holder.clone(),
            leases: Arc::clone(&self.leases),
            direct: Arc::clone(&self.direct),
            checkpointer,
            inline_writes: self.inline_writes,
        })
    }
}

fn run(
    runtime: &tokio::runtime::Handle,
    connection: DatabaseConnection,
    direct: &SharedDirect,
    mut queue: mpsc::Receiver<Job>,
    checkpointer: &Checkpointer,
    busy_timeout: Duration,
) {
    let lock = || {
        direct
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    // A lease found while gathering a group waits here for its turn.
    let mut next: Option<Job> = None;
    let mut closing = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.blocking_recv() {
                Some(job) => job,
                None => break,
            },
        };
        match job {
            // Leases lend the sqlx connection; this thread waits, as the
            // queue does, until the lease is dropped.
            // Holding the rusqlite connection meanwhile, so that no caller
            // writes on it inline during the lease.
            Job::Lease(request) => {
                let _held = lock();
                runtime.block_on(lend(&connection, request));
            }
            Job::Close(reply) => {
                closing = Some(reply);
                break;
            }
            Job::Batch(first) => {
                let mut sql_bytes = first.batch.sql_bytes();
                let mut group = vec![first];
                while group.len() < MAX_GROUP_BATCHES && sql_bytes < MAX_GROUP_SQL_BYTES {
                    match queue.try_recv() {
                        Ok(Job::Batch(batch)) => {
                            sql_bytes += batch.batch.sql_bytes();
                            group.push(batch);
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // Taken from the queue now: a caller gone before this point
                // never sees its write land.
                group.retain(QueuedBatch::take);
                let group = refuse_expired(group);
                if group.is_empty() {
                    continue;
                }
                // Within the time the most pressed member has left.
                let within = group
                    .iter()
                    .map(|w| w.deadline.saturating_duration_since(Instant::now()))
                    .min()
                    .unwrap_or(busy_timeout);
                let mut held = lock();
                let Some(direct) = held.as_mut() else {
                    // Closed: nothing is written any more.
                    continue;
                };
                direct.hold_back_the_wal(within);
                commit(direct, group, checkpointer, busy_timeout);
            }
        }
    }
    // The direct connection is closed before `close` is answered, so that
    // the last connection to the file (whose close folds the WAL in) is
    // closed by the time `Database::close` returns.
    drop(lock().take());
    if let Some(reply) = closing {
        // Closed while `Database::close` waits, so that the runtime is still
        // there: a pool dropped after this thread answered could be dropped
        // while the runtime shuts down, and sqlx's drop then panics on this
        // thread ("a Tokio 1.x context was found, but it is being
        // shutdown").
        runtime.block_on(connection.close_by_ref()).ok();
        let _ = reply.send(());
    }
}

/// How much shorter than the configured busy timeout a caller's remaining
/// time must be before the writer shortens SQLite's wait for it (a round
/// trip each way, so not for every millisecond spent in the queue).
const BUSY_TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// Answers `Busy` to the writes whose busy timeout ran out while they
/// waited in the queue (behind a lock another process held), and returns
/// the others.
fn refuse_expired(group: Vec<QueuedBatch>) -> Vec<QueuedBatch> {
    let now = Instant::now();
    let (expired, live): (Vec<_>, Vec<_>) = group.into_iter().partition(|w| w.deadline <= now);
    for write in expired {
        let _ = write.reply.send(Err(FailedBatch {
            error: Error::Busy(DbErr::Custom(
                "the database stayed locked for the whole busy timeout while this write \
                 waited in line; nothing was written"
                    .into(),
            )),
            statement: None,
        }));
    }
    live
}

/// Lends the connection until the lease is dropped.
async fn lend(connection: &DatabaseConnection, request: LeaseRequest) {
    if request.reply.is_closed() || !request.claim.take() {
        return;
    }
    if request.foreign_keys_off
        && let Err(err) = connection
            .execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
    {
        // Dropping the request tells the caller the lease failed.
        tracing::error!(error = %err, "cannot turn foreign keys off for a rebuild");
        return;
    }
    let (release, released) = oneshot::channel();
    if request.reply.send(release).is_ok() {
        // Err once the lease is dropped: that is the signal.
        let _ = released.await;
        // A transaction dropped without commit only queues its rollback on
        // sqlx's worker thread; a round trip behind it makes sure it ran,
        // so that the next batch's `BEGIN IMMEDIATE` on the other
        // connection does not find this one still holding the lock.
        if let Err(err) = connection.execute_unprepared("SELECT 1").await {
            tracing::warn!(error = %err, "the writer connection did not answer after a lease");
        }
    }
    if request.foreign_keys_off {
        // A holder cancelled mid-way may have left a transaction it began
        // itself (adoption's `BEGIN IMMEDIATE`) open: roll it back (an
        // error when none is open is harmless), so that the pragma, which
        // does nothing inside a transaction, takes effect.
        let _ = connection.execute_unprepared("ROLLBACK").await;
        if let Err(err) = connection
            .execute_unprepared("PRAGMA foreign_keys = ON")
            .await
        {
            tracing::error!(error = %err, "cannot turn foreign keys back on");
        }
    }
}

/// Commits `group` in order: runs of batches that may share a transaction
/// together, any other batch alone.
fn commit(
    connection: &mut DirectWriter,
    group: Vec<QueuedBatch>,
    checkpointer: &Checkpointer,
    busy_timeout: Duration,
) {
    let mut together = Vec::new();
    for write in group {
        if write.batch.can_join_a_group() {
            together.push(write);
        } else {
            let run = std::mem::take(&mut together);
            commit_together(connection, run, checkpointer, busy_timeout);
            commit_together(connection, vec![write], checkpointer, busy_timeout);
        }
    }
    commit_together(connection, together, checkpointer, busy_timeout);
}

/// How close to its deadline a write counts as out of time after SQLite
/// answered `SQLITE_BUSY` (its busy handler sleeps in steps).
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// Commits `group` as one transaction, or each member alone when a member
/// fails it, and answers every member.
///
/// SQLite waits for the lock no longer than the member with the least time
/// left has (another process may hold the lock). When the lock, not a
/// member, fails the group, the members whose own time ran out are
/// answered `Busy`, with SQLite's error, and the others try again with
/// what they have left: a write queued late is not refused on behalf of
/// one queued early.
fn commit_together(
    connection: &mut DirectWriter,
    mut group: Vec<QueuedBatch>,
    checkpointer: &Checkpointer,
    busy_timeout: Duration,
) {
    while group.len() > 1 {
        match attempt(connection, &group, busy_timeout) {
            Ok(mut rows) => {
                checkpointer.committed();
                for write in group {
                    let rest = rows.split_off(write.batch.returning().min(rows.len()));
                    let _ = write.reply.send(Ok(std::mem::replace(&mut rows, rest)));
                }
                return;
            }
            Err((_, Error::Busy(err))) => {
                let now = Instant::now() + DEADLINE_MARGIN;
                let (expired, live): (Vec<_>, Vec<_>) =
                    group.into_iter().partition(|w| w.deadline <= now);
                for write in expired {
                    let _ = write.reply.send(Err(FailedBatch {
                        error: Error::Busy(err.clone()),
                        statement: None,
                    }));
                }
                group = live;
            }
            // A member's fault: each runs alone below.
            Err(_) => break,
        }
    }
    for write in group {
        let result = attempt(connection, std::slice::from_ref(&write), busy_timeout);
        if result.is_ok() {
            checkpointer.committed();
        }
        let _ = write
            .reply
            .send(result.map_err(|(statement, error)| FailedBatch { error, statement }));
    }
}

/// One transaction of `group`'s batches, SQLite's busy timeout shortened
/// to the least time a member has left.
fn attempt(
    connection: &mut DirectWriter,
    group: &[QueuedBatch],
    busy_timeout: Duration,
) -> std::result::Result<Vec<WrittenRow>, (Option<usize>, Error)> {
    let now = Instant::now();
    let left = group
        .iter()
        .map(|w| w.deadline.saturating_duration_since(now))
        .min()
        .unwrap_or(busy_timeout);
    let shortened = left + BUSY_TIMEOUT_SLACK < busy_timeout;
    if shortened {
        let _ = connection.set_busy_timeout(left);
    }
    let result = connection.transaction(group.iter().map(|w| &w.batch));
    if shortened {
        let _ = connection.set_busy_timeout(busy_timeout);
    }
    result
}
