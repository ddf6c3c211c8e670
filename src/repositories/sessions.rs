//! Interview sessions.

use chrono::{DateTime, Utc};
use entity::SessionId;
use entity::session::{self, SessionStatus};
use entity::{
    canonical_edge, canonical_slot, concept_element, kg_edge, kg_node, qualitative_signal,
    scoring_history, session_erasure, slot_mapping, utterance,
};
use sea_orm::sea_query::{Expr, Func, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, prelude::Json,
};
use serde::{Deserialize, Serialize};

use crate::config::Backend;
use crate::database::{Database, StatementBatch};
use crate::error::{ConflictKind, EntityKind, Error, Result};
use sea_orm::Order;

use super::concept_elements::{
    NewConceptElement, duplicate_element, element_models, insert_elements,
};
use super::{by_bytes, check_fraction, check_json_object, insert_one, new_id, now_utc};

/// What it takes to start an interview.
///
/// Deserialises from `{"methodology", "concept_id", "concept_name"}`, with
/// `id` and `config` (a JSON object, `{}` when left out) optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// The id to use; a new UUIDv7 when `None`.
    #[serde(default)]
    pub id: Option<SessionId>,
    /// Interview methodology, e.g. `means_end_chain`.
    pub methodology: String,
    /// Id of the concept explored.
    pub concept_id: String,
    /// Name of the concept explored.
    pub concept_name: String,
    /// Methodology settings (a JSON object).
    #[serde(default = "super::empty_object")]
    pub config: Json,
}

/// Sessions: create, read, list, change status and metrics, config,
/// delete (an erasure), and the records of erasures.
#[derive(Debug, Clone)]
pub struct SessionRepository {
    db: Database,
}

/// How many rows of each table an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ErasedRows {
    /// `sessions` rows (1).
    pub sessions: u64,
    /// `utterances` rows.
    pub utterances: u64,
    /// `kg_nodes` rows.
    pub kg_nodes: u64,
    /// `kg_edges` rows.
    pub kg_edges: u64,
    /// `scoring_history` rows.
    pub scoring_history: u64,
    /// `concept_elements` rows.
    pub concept_elements: u64,
    /// `canonical_slots` rows; `None` in a record kept from before these
    /// four tables were counted.
    pub canonical_slots: Option<u64>,
    /// `surface_to_slot_mapping` rows (`None`: not counted, as above).
    pub surface_to_slot_mapping: Option<u64>,
    /// `canonical_edges` rows (`None`: not counted).
    pub canonical_edges: Option<u64>,
    /// `qualitative_signals` rows (`None`: not counted).
    pub qualitative_signals: Option<u64>,
}

impl ErasedRows {
    /// Every row removed, in all the tables counted.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.sessions
            + self.utterances
            + self.kg_nodes
            + self.kg_edges
            + self.scoring_history
            + self.concept_elements
            + [
                self.canonical_slots,
                self.surface_to_slot_mapping,
                self.canonical_edges,
                self.qualitative_signals,
            ]
            .into_iter()
            .flatten()
            .sum::<u64>()
    }
}

/// The record that a session was erased: which, when, and how many rows
/// went — none of its content. [`SessionRepository::delete`] returns it and
/// keeps it in `session_erasures`, where it outlives the erasure
/// ([`SessionRepository::erasure`], [`SessionRepository::erasures`]).
///
/// Serialises to JSON for an auditor (what `interview-db erase` prints):
/// `{"session_id":"…","erased_at":"2026-11-27T10:00:00.123456Z","rows":{…},
/// "backend":"sqlite","wal_truncated":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureRecord {
    /// The id the erased session had.
    pub session_id: SessionId,
    /// When it was erased (serialised `…Z`, to the microsecond).
    #[serde(with = "entity::utc_timestamp::utc")]
    pub erased_at: DateTime<Utc>,
    /// How many rows of each table went.
    pub rows: ErasedRows,
    /// The backend the session was erased from.
    pub backend: Backend,
    /// SQLite, as returned by [`delete`](SessionRepository::delete): whether
    /// the WAL was truncated to zero bytes after the delete committed, so
    /// that no older version of the session's pages stays in it. `false`
    /// when a reader held a snapshot from before the delete past the busy
    /// timeout: the old frames stay until the background checkpointer
    /// truncates the WAL, once that reader is done (`scrubbed_at` stays
    /// `null` until then). `None` on PostgreSQL
    /// and for records read back from the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_truncated: Option<bool>,
    /// As returned by [`delete`](SessionRepository::delete): whether the
    /// database was vacuumed after the delete committed (SQLite: the whole
    /// file rewritten, so no old copy of a row survives in it; PostgreSQL:
    /// the six tables' dead tuples removed). `None` for records read back
    /// from the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vacuumed: Option<bool>,
    /// When the old copies of the erased rows were removed from the files
    /// (vacuum, and on SQLite the WAL truncated); `null` while that scrub
    /// is owed: a crash cut it short, or a reader of another process held
    /// the WAL. The next open, or `interview-db erase --resume`, completes
    /// it.
    #[serde(with = "entity::utc_timestamp::utc_option")]
    pub scrubbed_at: Option<DateTime<Utc>>,
}

impl ErasureRecord {
    fn from_model(model: session_erasure::Model, backend: Backend) -> Self {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Self {
            session_id: model.session_id,
            erased_at: model.erased_at.and_utc(),
            rows: ErasedRows {
                sessions: 1,
                utterances: count(model.utterance_rows),
                kg_nodes: count(model.kg_node_rows),
                kg_edges: count(model.kg_edge_rows),
                scoring_history: count(model.scoring_history_rows),
                concept_elements: count(model.concept_element_rows),
                canonical_slots: model.canonical_slot_rows.map(count),
                surface_to_slot_mapping: model.slot_mapping_rows.map(count),
                canonical_edges: model.canonical_edge_rows.map(count),
                qualitative_signals: model.qualitative_signal_rows.map(count),
            },
            backend,
            wal_truncated: None,
            vacuumed: None,
            scrubbed_at: model.scrubbed_at.map(|at| at.and_utc()),
        }
    }
}

/// How many mappings an erasure of `session_id` deletes: a mapping has no
/// session column, and goes with its node or with its slot (a file the
/// Python system wrote may map a node to another session's slot).
async fn mappings_of(conn: &impl ConnectionTrait, session_id: &SessionId) -> Result<i64> {
    use sea_orm::Condition;
    use sea_orm::sea_query::Query;
    let slots = Query::select()
        .column(canonical_slot::Column::Id)
        .from(canonical_slot::Entity)
        .and_where(canonical_slot::Column::SessionId.eq(session_id))
        .to_owned();
    let nodes = Query::select()
        .column(kg_node::Column::Id)
        .from(kg_node::Entity)
        .and_where(kg_node::Column::SessionId.eq(session_id))
        .to_owned();
    let n = slot_mapping::Entity::find()
        .filter(
            Condition::any()
                .add(slot_mapping::Column::CanonicalSlotId.in_subquery(slots))
                .add(slot_mapping::Column::SurfaceNodeId.in_subquery(nodes)),
        )
        .count(conn)
        .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// How many rows of `E` belong to `session_id`.
async fn count_of<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    column: E::Column,
    session_id: &SessionId,
) -> Result<i64>
where
    E::Model: Sync,
{
    let n = E::find().filter(column.eq(session_id)).count(conn).await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

fn session_model(new: NewSession) -> Result<session::Model> {
    check_config(&new.config)?;
    let now = now_utc();
    Ok(session::Model {
        id: new.id.unwrap_or_else(|| new_id().into()),
        methodology: new.methodology,
        concept_id: new.concept_id,
        concept_name: new.concept_name,
        status: SessionStatus::Active,
        config: new.config,
        created_at: now,
        updated_at: now,
        completed_at: None,
        turn_count: 0,
        coverage_score: Some(0.0),
        node_tracker_state: None,
        surface_velocity_peak: 0.0,
        prev_surface_node_count: 0,
        canonical_velocity_peak: 0.0,
        prev_canonical_node_count: 0,
        focus_history: entity::FocusHistory::default(),
    })
}

fn check_config(config: &Json) -> Result<()> {
    check_json_object("a session's config", config)
}

fn duplicate_session(session_id: &SessionId) -> ConflictKind {
    ConflictKind::DuplicateSession {
        session_id: session_id.to_string(),
    }
}

pub(crate) fn not_found(id: &SessionId) -> Error {
    Error::NotFound {
        entity: EntityKind::Session,
        id: id.to_string(),
    }
}

impl SessionRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    pub(super) fn db(&self) -> &Database {
        &self.db
    }

    /// Creates an active session with no turns.
    ///
    /// # Errors
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateSession`]) when the id
    /// is taken; [`Error::InvalidInput`] when the config is not a JSON
    /// object.
    #[tracing::instrument(skip_all, fields(session_id))]
    pub async fn create(&self, new: NewSession) -> Result<session::Model> {
        let model = session_model(new)?;
        tracing::Span::current().record("session_id", model.id.as_str());
        insert_one(&self.db, model.clone().into_active_model())
            .await
            .map_err(|err| err.conflict_as(|| duplicate_session(&model.id)))?;
        Ok(model)
    }

    /// Creates an active session and seeds its concept elements, in one
    /// transaction: both land or neither does.
    ///
    /// # Errors
    /// As [`create`](Self::create) and
    /// [`ConceptElementRepository::seed`](super::ConceptElementRepository::seed)
    /// ([`ConflictKind::DuplicateElement`] when an element id repeats).
    #[tracing::instrument(skip_all, fields(session_id, elements = elements.len()))]
    pub async fn create_with_elements(
        &self,
        new: NewSession,
        elements: Vec<NewConceptElement>,
    ) -> Result<(session::Model, Vec<concept_element::Model>)> {
        let model = session_model(new)?;
        tracing::Span::current().record("session_id", model.id.as_str());
        let elements = element_models(&model.id, elements);
        let txn = self.db.begin_write().await?;
        session::Entity::insert(model.clone().into_active_model())
            .exec_without_returning(&*txn)
            .await
            .map_err(|err| Error::from(err).conflict_as(|| duplicate_session(&model.id)))?;
        if !elements.is_empty() {
            // The session is new: only the call itself can repeat an id.
            insert_elements(&*txn, &elements).await.map_err(|err| {
                err.conflict_as(|| {
                    duplicate_element(&model.id, &elements, &[]).unwrap_or(ConflictKind::Other)
                })
            })?;
        }
        txn.commit().await?;
        Ok((model, elements))
    }

    /// The session `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is none.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, session_id: &SessionId) -> Result<session::Model> {
        session::Entity::find_by_id(session_id)
            .one(self.db.connection())
            .await?
            .ok_or_else(|| not_found(session_id))
    }

    /// Sessions newest first, of one status or all, at most `limit`
    /// (clamped to [`MAX_ROW_LIMIT`](super::MAX_ROW_LIMIT)).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn list(
        &self,
        status: Option<SessionStatus>,
        limit: u64,
    ) -> Result<Vec<session::Model>> {
        let mut query = session::Entity::find()
            .order_by_desc(session::Column::CreatedAt)
            .order_by(
                by_bytes(self.db.backend().into(), session::Column::Id),
                Order::Desc,
            )
            .limit(super::row_limit(limit));
        if let Some(status) = status {
            query = query.filter(session::Column::Status.eq(status));
        }
        Ok(query.all(self.db.connection()).await?)
    }

    /// Sets the status. Completing sets `completed_at` (kept if it was
    /// already completed); any other status clears it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn update_status(
        &self,
        session_id: &SessionId,
        status: SessionStatus,
    ) -> Result<session::Model> {
        let txn = self.db.begin_write().await?;
        let current = session::Entity::find_by_id(session_id)
            .lock_exclusive()
            .one(&*txn)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let now = now_utc();
        let completed_at = match (status, current.completed_at) {
            (SessionStatus::Completed, Some(at)) => Some(at),
            (SessionStatus::Completed, None) => Some(now),
            _ => None,
        };
        let mut active = current.into_active_model();
        active.status = Set(status);
        active.completed_at = Set(completed_at);
        active.updated_at = Set(now);
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        Ok(updated)
    }

    /// Records the session's progress: how many turns, and the coverage.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] for a negative turn count or a coverage that
    /// is not a number in [0, 1].
    #[tracing::instrument(skip(self))]
    pub async fn update_metrics(
        &self,
        session_id: &SessionId,
        turn_count: i32,
        coverage_score: f64,
    ) -> Result<session::Model> {
        if turn_count < 0 {
            return Err(Error::InvalidInput(format!(
                "turn count {turn_count} is negative"
            )));
        }
        check_fraction("coverage score", coverage_score)?;
        self.update_columns(session_id, |active| {
            active.turn_count = Set(turn_count);
            active.coverage_score = Set(Some(coverage_score));
        })
        .await
    }

    /// The session's methodology settings.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn config(&self, session_id: &SessionId) -> Result<Json> {
        let config: Option<Json> = session::Entity::find_by_id(session_id)
            .select_only()
            .column(session::Column::Config)
            .into_tuple()
            .one(self.db.connection())
            .await?;
        config.ok_or_else(|| not_found(session_id))
    }

    /// Replaces the session's settings.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] when `config` is not a JSON object.
    #[tracing::instrument(skip(self, config))]
    pub async fn replace_config(
        &self,
        session_id: &SessionId,
        config: Json,
    ) -> Result<session::Model> {
        check_config(&config)?;
        self.update_columns(session_id, move |active| active.config = Set(config))
            .await
    }

    /// Erases the session: deletes it and, by cascade, every row of it in
    /// every table, and records the erasure — the session's id, the time,
    /// and how many rows of each table went, nothing of their content —
    /// in `session_erasures`, all in one write transaction.
    ///
    /// After the commit, the deleted text is gone from the files too, not
    /// only from queries:
    /// - SQLite overwrites freed space with zeros (`secure_delete` is on
    ///   for every write), and the WAL, which still holds the pages as they
    ///   were before the delete, is checkpointed and truncated to zero bytes
    ///   while this process's writers wait. A reader holding a snapshot
    ///   from before the delete keeps those pages: the truncation waits for
    ///   it up to the busy timeout, then the record says
    ///   `wal_truncated: false` and the background checkpointer truncates
    ///   the WAL once that reader is done.
    /// - PostgreSQL keeps deleted rows as dead tuples until a vacuum: the
    ///   ten tables holding a session's rows are `VACUUM`ed (`vacuumed` in the record). A vacuum
    ///   makes the space reusable but does not overwrite it, and WAL
    ///   segments, replicas and backups keep their copies (see README).
    ///
    /// A failure after the commit (the WAL truncation or the vacuum) does
    /// not make the call fail — the session is erased — but shows as
    /// `false` in the record and is logged.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session (nothing is
    /// recorded), or the classified database error of the transaction
    /// (nothing was deleted).
    #[tracing::instrument(skip(self))]
    pub async fn delete(&self, session_id: &SessionId) -> Result<ErasureRecord> {
        let erased_at = now_utc();
        let txn = self.db.begin_write().await?;
        // Locks the session (PostgreSQL: FOR UPDATE), so that no row of it
        // can be added between the counts and the delete.
        session::Entity::find_by_id(session_id)
            .select_only()
            .column(session::Column::Id)
            .lock_exclusive()
            .into_tuple::<String>()
            .one(&*txn)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let model = session_erasure::Model {
            session_id: session_id.to_owned(),
            erased_at,
            utterance_rows: count_of::<utterance::Entity>(
                &*txn,
                utterance::Column::SessionId,
                session_id,
            )
            .await?,
            kg_node_rows: count_of::<kg_node::Entity>(
                &*txn,
                kg_node::Column::SessionId,
                session_id,
            )
            .await?,
            kg_edge_rows: count_of::<kg_edge::Entity>(
                &*txn,
                kg_edge::Column::SessionId,
                session_id,
            )
            .await?,
            scoring_history_rows: count_of::<scoring_history::Entity>(
                &*txn,
                scoring_history::Column::SessionId,
                session_id,
            )
            .await?,
            concept_element_rows: count_of::<concept_element::Entity>(
                &*txn,
                concept_element::Column::SessionId,
                session_id,
            )
            .await?,
            canonical_slot_rows: Some(
                count_of::<canonical_slot::Entity>(
                    &*txn,
                    canonical_slot::Column::SessionId,
                    session_id,
                )
                .await?,
            ),
            slot_mapping_rows: Some(mappings_of(&*txn, session_id).await?),
            canonical_edge_rows: Some(
                count_of::<canonical_edge::Entity>(
                    &*txn,
                    canonical_edge::Column::SessionId,
                    session_id,
                )
                .await?,
            ),
            qualitative_signal_rows: Some(
                count_of::<qualitative_signal::Entity>(
                    &*txn,
                    qualitative_signal::Column::SessionId,
                    session_id,
                )
                .await?,
            ),
            // Owed until the scrub after the commit records it as done.
            scrubbed_at: None,
        };
        // A session id erased before (a caller reused it) keeps the record
        // of its last erasure.
        session_erasure::Entity::insert(model.clone().into_active_model())
            .on_conflict(
                // Every column but the id: a count added later is replaced
                // too, not kept from the earlier erasure.
                OnConflict::column(session_erasure::Column::SessionId)
                    .update_columns(
                        <session_erasure::Column as sea_orm::Iterable>::iter()
                            .filter(|c| !matches!(c, session_erasure::Column::SessionId)),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&*txn)
            .await?;
        session::Entity::delete_by_id(session_id)
            .exec(&*txn)
            .await?;
        txn.commit().await?;

        // The scrubbing runs in a task of its own: a caller that gives up
        // (a request timeout) cannot leave the erased rows' old copies in
        // the file or the WAL. A crash meanwhile leaves the scrub recorded
        // as owed (`scrubbed_at` NULL), which the next open completes.
        let db = self.db.clone();
        let scrub = tokio::spawn(async move { db.finish_erasures().await });
        let outcome = match scrub.await {
            Ok(Ok(report)) => Some(report),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "the erasure committed, but the file could not be scrubbed");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "the erasure committed, but its scrubbing task stopped");
                None
            }
        };
        // Read back: a scrub running for another erasure may have covered
        // this one.
        let stored = session_erasure::Entity::find_by_id(session_id)
            .one(self.db.connection())
            .await?
            .unwrap_or(model);
        let mut record = ErasureRecord::from_model(stored, self.db.backend());
        let scrubbed = record.scrubbed_at.is_some();
        match &outcome {
            Some(report) if report.owed.iter().any(|id| id == session_id.as_str()) => {
                record.vacuumed = Some(report.vacuumed);
                record.wal_truncated = report.wal_truncated;
            }
            // Scrubbed by another erasure's scrub, or not at all.
            _ => {
                record.vacuumed = Some(scrubbed);
                record.wal_truncated = (self.db.backend() == Backend::Sqlite).then_some(scrubbed);
            }
        }
        if !scrubbed {
            tracing::warn!(
                "the erased session's old copies remain in the files until its scrub is done: \
                 the next open, or `interview-db erase --resume`, completes it"
            );
        }
        tracing::info!(rows = record.rows.total(), "session erased");
        Ok(record)
    }

    /// The record of the erasure of session `session_id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] ([`EntityKind::Erasure`]) when no session of
    /// that id was erased.
    #[tracing::instrument(skip(self))]
    pub async fn erasure(&self, session_id: &SessionId) -> Result<ErasureRecord> {
        session_erasure::Entity::find_by_id(session_id)
            .one(self.db.connection())
            .await?
            .map(|model| ErasureRecord::from_model(model, self.db.backend()))
            .ok_or_else(|| Error::NotFound {
                entity: EntityKind::Erasure,
                id: session_id.to_string(),
            })
    }

    /// The records of erasures, most recent first, at most `limit`
    /// (clamped to [`MAX_ROW_LIMIT`](super::MAX_ROW_LIMIT)).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn erasures(&self, limit: u64) -> Result<Vec<ErasureRecord>> {
        Ok(session_erasure::Entity::find()
            .order_by_desc(session_erasure::Column::ErasedAt)
            .order_by(
                by_bytes(self.db.backend().into(), session_erasure::Column::SessionId),
                Order::Desc,
            )
            .limit(super::row_limit(limit))
            .all(self.db.connection())
            .await?
            .into_iter()
            .map(|model| ErasureRecord::from_model(model, self.db.backend()))
            .collect())
    }

    /// Updates the columns `change` sets, and `updated_at` (to now, unless a
    /// later write already set it later), in one write.
    pub(super) async fn update_columns(
        &self,
        session_id: &SessionId,
        change: impl FnOnce(&mut session::ActiveModel),
    ) -> Result<session::Model> {
        let mut active = session::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(session_id.to_owned()),
            ..Default::default()
        };
        change(&mut active);
        // `updated_at` never goes back, whatever order writes commit in.
        let updated_at =
            Func::greatest([Expr::col(session::Column::UpdatedAt), Expr::val(now_utc())]);
        let statement = session::Entity::update_many()
            .set(active)
            .col_expr(session::Column::UpdatedAt, updated_at.into())
            .filter(session::Column::Id.eq(session_id))
            .into_query()
            .returning_all()
            .to_owned();
        let rows = self
            .db
            .write_batch(StatementBatch::of_returning_at_most_one(
                sea_orm::DbBackend::from(self.db.backend()).build(&statement),
            ))
            .await?;
        match rows.first() {
            Some(row) => Ok(super::rows::session_of(row)?),
            None => Err(not_found(session_id)),
        }
    }
}
