//! Finishing erasures: removing the old copies of erased rows from the
//! files, and recording that it was done.
//!
//! An erasure deletes a session's rows and records itself in
//! `session_erasures` in one transaction, with `scrubbed_at` NULL: the
//! scrub is owed. The scrub runs after the commit (SQLite: `VACUUM`, then
//! the WAL truncated to zero bytes; PostgreSQL: `VACUUM` of the tables)
//! and, once it is done, sets `scrubbed_at` of every erasure it covered.
//! A crash in between leaves the record owed, and the next open
//! ([`Database::connect`], `init`) or [`Database::finish_erasures`]
//! (`interview-db erase --resume`) runs the scrub again. Health reports
//! owed scrubs until then.
//!
//! A reader of another process holding a snapshot from before the delete
//! keeps the WAL's old frames: the truncation waits for it up to the busy
//! timeout, then the scrub stays owed, and this process's checkpointer
//! truncates the WAL and records the scrub as soon as that reader is done.

use std::time::{Duration, Instant};

use chrono::SubsecRound;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use serde::Serialize;

use super::{Database, SqliteWriter, checkpoint, query_value};
use crate::config::Backend;
use crate::error::Result;

/// What [`Database::finish_erasures`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    /// The erased sessions whose scrub was owed when it started.
    pub owed: Vec<String>,
    /// Those whose scrub is now recorded as done.
    pub completed: Vec<String>,
    /// Whether the database was vacuumed (`false` when nothing was owed).
    pub vacuumed: bool,
    /// SQLite: whether the WAL was truncated to zero bytes; `None` on
    /// PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_truncated: Option<bool>,
}

impl ScrubReport {
    /// The erased sessions whose scrub is still owed.
    #[must_use]
    pub fn still_owed(&self) -> Vec<&str> {
        self.owed
            .iter()
            .filter(|id| !self.completed.contains(id))
            .map(String::as_str)
            .collect()
    }
}

/// An erasure whose scrub is owed: the session's id and when it was
/// erased, as stored (text), so that recording the scrub as done cannot
/// reach a later erasure of the same id (a caller that reused it), whose
/// record the delete's upsert rewrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwedScrub {
    pub(crate) session_id: String,
    erased_at: String,
}

/// The erasures whose scrub is owed, read on `db`; none when the database
/// has no `scrubbed_at` column yet (not migrated, or not this module's).
pub(crate) async fn owed(db: &impl ConnectionTrait) -> Result<Vec<OwedScrub>> {
    Ok(owed_if_recorded(db).await?.unwrap_or_default())
}

/// [`owed`], or `None` when the database has no `scrubbed_at` column to
/// say it (a schema from before it: its records count as owed once it is
/// migrated).
pub(crate) async fn owed_if_recorded(db: &impl ConnectionTrait) -> Result<Option<Vec<OwedScrub>>> {
    let has_column = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'session_erasures' AND column_name = 'scrubbed_at'"
        }
        _ => {
            "SELECT count(*) FROM pragma_table_info('session_erasures') WHERE name = 'scrubbed_at'"
        }
    };
    if query_value::<i64>(db, has_column).await?.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT session_id, CAST(erased_at AS TEXT) FROM session_erasures \
             WHERE scrubbed_at IS NULL ORDER BY session_id",
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(OwedScrub {
                session_id: row.try_get_by_index::<String>(0)?,
                erased_at: row.try_get_by_index::<String>(1)?,
            })
        })
        .collect::<Result<_>>()
        .map(Some)
}

/// The session ids of `owed`.
fn ids(owed: &[OwedScrub]) -> Vec<String> {
    owed.iter().map(|o| o.session_id.clone()).collect()
}

/// Records the scrub of the erasures `done` as done, on `db`: each only
/// if it is still the erasure it was (same id, same erasure time).
pub(crate) async fn record_done(db: &impl ConnectionTrait, done: &[OwedScrub]) -> Result<()> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "UPDATE session_erasures SET scrubbed_at = $1 \
             WHERE scrubbed_at IS NULL AND session_id = $2 AND CAST(erased_at AS TEXT) = $3"
        }
        _ => {
            "UPDATE session_erasures SET scrubbed_at = ? \
             WHERE scrubbed_at IS NULL AND session_id = ? AND CAST(erased_at AS TEXT) = ?"
        }
    };
    let now = chrono::Utc::now().naive_utc().trunc_subsecs(6);
    for owed in done {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                Value::from(now),
                Value::from(owed.session_id.as_str()),
                Value::from(owed.erased_at.as_str()),
            ],
        ))
        .await?;
    }
    Ok(())
}

impl Database {
    /// Completes the scrub every recorded erasure still owes (see
    /// `session_erasures.scrubbed_at`): an erasure cut short by a crash,
    /// or one whose WAL truncation a reader of another process prevented.
    /// Nothing happens when nothing is owed. [`connect`](Self::connect)
    /// runs it; `interview-db erase --resume` too.
    ///
    /// On SQLite it holds this process's writer throughout: `VACUUM`
    /// rewrites the whole file, then the WAL is truncated to zero bytes,
    /// waiting for readers up to the busy timeout. When a reader still
    /// holds it, the scrubs stay owed ([`ScrubReport::still_owed`]) and the
    /// checkpointer records them once it could truncate the WAL.
    ///
    /// # Errors
    /// The classified database error when the records cannot be read or
    /// written; a `VACUUM` that fails is reported in the
    /// [`ScrubReport`], not as an error.
    #[tracing::instrument(skip(self))]
    pub async fn finish_erasures(&self) -> Result<ScrubReport> {
        match (&self.inner.writer, self.backend()) {
            (Some(writer), _) => self.finish_on_sqlite(writer).await,
            (None, Backend::Postgres) => self.finish_on_postgres().await,
            // A read-only SQLite database: nothing may be written.
            (None, Backend::Sqlite) => Ok(ScrubReport::default()),
        }
    }

    async fn finish_on_sqlite(&self, writer: &SqliteWriter) -> Result<ScrubReport> {
        let _writers_wait = writer.queue.lease(false).await?;
        let connection = &writer.connection;
        let owed = owed(connection).await?;
        if owed.is_empty() {
            return Ok(ScrubReport::default());
        }
        let vacuumed = vacuum_sqlite(connection).await?;
        let truncated = self.truncate_wal_holding_the_writer(writer).await?;
        let completed = match (vacuumed, truncated) {
            (true, true) => {
                record_done(connection, &owed).await?;
                // The record's page is all the WAL holds now; truncated
                // again so that the WAL is empty, as the erasure left it.
                // Not waited for: nothing erased is in that page.
                checkpoint::truncate_wal(connection).await?;
                ids(&owed)
            }
            (true, false) => {
                writer.checkpointer.truncate_when_possible(owed.clone());
                Vec::new()
            }
            (false, _) => Vec::new(),
        };
        report(ids(&owed), completed, vacuumed, Some(truncated))
    }

    async fn finish_on_postgres(&self) -> Result<ScrubReport> {
        let owed = owed(&self.connection).await?;
        if owed.is_empty() {
            return Ok(ScrubReport::default());
        }
        // The tables that hold participants' words: the six and the later
        // Python ones (absent from a database not migrated that far, which
        // `vacuum` skips).
        let tables: Vec<&str> = migration::INTERVIEW_TABLES
            .iter()
            .chain(&migration::LATER_PYTHON_TABLES)
            .copied()
            .collect();
        let vacuumed = match self.vacuum(&tables).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "VACUUM after an erasure failed");
                false
            }
        };
        let completed = if vacuumed {
            record_done(&self.connection, &owed).await?;
            ids(&owed)
        } else {
            Vec::new()
        };
        report(ids(&owed), completed, vacuumed, None)
    }

    /// SQLite: copies every frame of the WAL into the database file and
    /// truncates the WAL to zero bytes (`PRAGMA wal_checkpoint(TRUNCATE)`),
    /// holding this process's writer meanwhile, so that no older version
    /// of a page (an erased session's rows) stays in the WAL. The caller
    /// holds the writer.
    ///
    /// A reader holding a snapshot older than the last commit keeps the
    /// frames it may read: the checkpoint waits for it up to the busy
    /// timeout (retrying while another connection's checkpoint runs), then
    /// gives up with `false`.
    async fn truncate_wal_holding_the_writer(&self, writer: &SqliteWriter) -> Result<bool> {
        let deadline = Instant::now() + self.inner.config.busy_timeout;
        loop {
            if checkpoint::truncate_wal(&writer.connection).await? {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// PostgreSQL: `VACUUM`s `tables` (outside a transaction), so that the
    /// dead tuples of deleted rows are removed and their space reusable.
    /// Nothing on SQLite.
    pub(crate) async fn vacuum(&self, tables: &[&str]) -> Result<()> {
        if self.backend() != Backend::Postgres || tables.is_empty() {
            return Ok(());
        }
        let names = tables
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let present = query_value::<String>(
            &self.connection,
            &format!(
                "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables \
                 WHERE schemaname = current_schema() AND tablename IN ({names})"
            ),
        )
        .await?;
        let Some(tables) = present.filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        // On a connection of its own, whose lock waits are bounded by the
        // busy timeout: VACUUM waits for any lock that conflicts with
        // SHARE UPDATE EXCLUSIVE (an ANALYZE, CREATE INDEX CONCURRENTLY,
        // another vacuum) without a bound, and opening (which completes
        // owed scrubs) must not hang behind one. A vacuum that times out
        // leaves the scrub owed.
        let connection = self.dedicated_connection().await?;
        let vacuumed = async {
            connection
                .execute_unprepared(&format!(
                    "SET lock_timeout = {}",
                    self.inner.config.busy_timeout.as_millis().max(1)
                ))
                .await?;
            connection
                .execute_unprepared(&format!("VACUUM {tables}"))
                .await
        }
        .await;
        let _ = connection.close().await;
        vacuumed?;
        Ok(())
    }
}

/// Rewrites the whole SQLite file (`VACUUM`), so that no copy of an
/// erased row survives anywhere in it — not in free pages, not in the
/// unused space of pages whose cells SQLite moved while balancing a
/// b-tree (which `secure_delete` does not clear) — after refreshing
/// `sqlite_stat4`'s sampled keys when statistics were gathered
/// (`ANALYZE`). The writer connection keeps temporary files in memory
/// (`temp_store=MEMORY`), so the copy `VACUUM` makes never reaches a
/// temporary directory. `false` when `VACUUM` failed (logged).
async fn vacuum_sqlite(connection: &DatabaseConnection) -> Result<bool> {
    let statistics = query_value::<String>(
        connection,
        "SELECT name FROM sqlite_schema WHERE name = 'sqlite_stat1'",
    )
    .await?
    .is_some();
    if statistics {
        connection.execute_unprepared("ANALYZE").await?;
    }
    Ok(match connection.execute_unprepared("VACUUM").await {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(error = %err, "VACUUM after an erasure failed");
            false
        }
    })
}

fn report(
    owed: Vec<String>,
    completed: Vec<String>,
    vacuumed: bool,
    wal_truncated: Option<bool>,
) -> Result<ScrubReport> {
    let report = ScrubReport {
        owed,
        completed,
        vacuumed,
        wal_truncated,
    };
    let still_owed = report.still_owed().len();
    if still_owed == 0 {
        tracing::info!(sessions = report.completed.len(), "erasures scrubbed");
    } else {
        tracing::warn!(
            still_owed,
            "an erasure's scrub is still owed: old copies of erased rows remain in the files \
             until it is done (the next open, or `interview-db erase --resume`)"
        );
    }
    Ok(report)
}
