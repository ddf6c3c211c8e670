//! Whole turns: everything one turn produces, written in one transaction,
//! and everything the next question is planned from, read in one snapshot.

use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use entity::{EdgeId, ElementId, FocusEntry, NodeId, ScoringId, SessionId, UtteranceId};
use entity::{concept_element, kg_edge, kg_node, scoring_history, session, utterance};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, prelude::Json};
use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::error::{ConflictKind, Error, Result};

use super::concept_elements::{cover_once, element_guard, element_not_found};
use super::graph::{
    NewEdge, NewNode, check_nodes_of_session, current_nodes, duplicate_edge, duplicate_node,
    session_edges,
};
use super::insert::insert_row;
#[cfg(feature = "postgres")]
use super::placeholders::Placeholders;
use super::scoring::{NewScores, TurnScores, history};
use super::sessions::not_found;
use super::sql_cache::{self, CachedSql, cached};
use super::turn_extras::{
    Extras, ExtrasPlan, Progress, TurnCanonicalEdge, TurnSignals, TurnSlotMapping, TurnVelocity,
    check_slots_of_session,
};
use super::utterances::{NewUtterance, check_turn, last_utterances};
use super::{check_fraction, now_utc};
use crate::database::StatementBatch;

/// What someone said in the turn.
///
/// Deserialises from `{"text": "…", "discourse_markers": ["because"]}`
/// (markers optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnUtterance {
    /// The words.
    pub text: String,
    /// Discourse markers found in them.
    #[serde(default)]
    pub discourse_markers: Vec<String>,
}

/// A node named by a turn: one the turn creates (by its index in
/// [`TurnRecord::nodes`]) or one that exists already (by id).
///
/// Deserialises from `{"new": 0}` or `{"existing": "<node id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NodeRef {
    /// The turn's `nodes[i]`.
    New(usize),
    /// An existing node of the same session.
    Existing(NodeId),
}

/// A node the turn extracted. Its provenance is the turn's user utterance.
///
/// Deserialises from `{"label", "node_type", "confidence", "properties"}`
/// (properties optional, `{}`); the confidence is checked when the turn
/// is recorded, like every value.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnNode {
    /// What the node is called.
    pub label: String,
    /// Its type, set by the methodology.
    pub node_type: String,
    /// Extraction confidence in [0, 1].
    pub confidence: f64,
    /// Methodology-specific properties: a JSON object (anything else is
    /// refused with `InvalidInput` when the turn is recorded).
    #[serde(default = "super::empty_object")]
    pub properties: Json,
    /// Verbatim quotes of the answer that produced it (empty ones are
    /// dropped).
    #[serde(default)]
    pub source_quotes: Vec<String>,
    /// The participant's stance (default neutral).
    #[serde(default)]
    pub stance: entity::Stance,
    /// Its sentence embedding.
    #[serde(default)]
    pub embedding: Option<entity::Embedding>,
}

impl TurnNode {
    /// A node with no properties, quotes or embedding, neutral.
    #[must_use]
    pub fn new(label: &str, node_type: &str, confidence: f64) -> Self {
        Self {
            label: label.to_owned(),
            node_type: node_type.to_owned(),
            confidence,
            properties: super::empty_object(),
            source_quotes: Vec::new(),
            stance: entity::Stance::Neutral,
            embedding: None,
        }
    }
}

/// An edge the turn extracted. Its provenance is the turn's user utterance.
///
/// Deserialises from `{"source": {"new": 0}, "target": {"existing": "…"},
/// "edge_type": "leads_to", "confidence": 0.7}` (properties optional).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnEdge {
    /// Where it starts.
    pub source: NodeRef,
    /// Where it ends.
    pub target: NodeRef,
    /// What it expresses.
    pub edge_type: EdgeType,
    /// Extraction confidence in [0, 1].
    pub confidence: f64,
    /// Methodology-specific properties: a JSON object (anything else is
    /// refused with `InvalidInput` when the turn is recorded).
    #[serde(default = "super::empty_object")]
    pub properties: Json,
}

/// Everything one turn produces.
///
/// Deserialises from JSON with the fields' names; `nodes`, `edges`,
/// `covered_elements` (pairs `["e0", {"new": 0}]`) and `system_utterance`
/// may be left out. Unknown fields are refused. Nothing is checked while
/// deserialising: [`TurnRepository::record_turn`] checks every value
/// (fractions in [0, 1], JSON depth, node indexes) before any write.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnRecord {
    /// The session.
    pub session_id: SessionId,
    /// The turn, counted from 1. The session's turn count becomes the
    /// highest turn recorded: turns may arrive out of order (concurrent
    /// requests), and the count never goes down.
    pub turn_number: i32,
    /// The interviewee's answer.
    pub user_utterance: TurnUtterance,
    /// Nodes extracted from it.
    #[serde(default)]
    pub nodes: Vec<TurnNode>,
    /// Edges extracted from it.
    #[serde(default)]
    pub edges: Vec<TurnEdge>,
    /// The turn's scores.
    pub scores: TurnScores,
    /// Concept elements this turn covers (element id, covering node); an
    /// element covered before keeps its first node.
    #[serde(default)]
    pub covered_elements: Vec<(ElementId, NodeRef)>,
    /// The session's coverage after the turn, in [0, 1]; kept unless no
    /// later turn was recorded already.
    pub coverage_score: f64,
    /// The next question, if the interview goes on.
    #[serde(default)]
    pub system_utterance: Option<TurnUtterance>,
    /// The graphs' velocity after the turn (set when the turn is the
    /// session's newest).
    #[serde(default)]
    pub velocity: Option<TurnVelocity>,
    /// The turn's focus, appended to the session's focus history.
    #[serde(default)]
    pub focus: Option<FocusEntry>,
    /// The pipeline's node-state tracker after the turn, replacing the
    /// saved one.
    #[serde(default)]
    pub node_tracker_state: Option<Json>,
    /// Merged into the session's config one level deep, as
    /// [`SessionRepository::merge_config`](super::SessionRepository::merge_config)
    /// merges (e.g. `{"metadata": {"llm_usage": …}}`).
    #[serde(default)]
    pub config_patch: Option<serde_json::Map<String, Json>>,
    /// Nodes of the turn (new or existing) mapped to canonical slots; each
    /// slot's support is counted again.
    #[serde(default)]
    pub slot_mappings: Vec<TurnSlotMapping>,
    /// The turn's edges added to canonical edges.
    #[serde(default)]
    pub canonical_edges: Vec<TurnCanonicalEdge>,
    /// The turn's qualitative signals (kept out when the turn has some).
    #[serde(default)]
    pub signals: Option<TurnSignals>,
}

impl TurnRecord {
    /// A turn of an answer, its scores and the session's coverage, and
    /// nothing else yet: fill in the nodes, edges, next question and the
    /// rest with struct update syntax
    /// (`TurnRecord { nodes, ..TurnRecord::new(…) }`).
    #[must_use]
    pub fn new(
        session_id: &SessionId,
        turn_number: i32,
        user_utterance: TurnUtterance,
        scores: TurnScores,
        coverage_score: f64,
    ) -> Self {
        Self {
            session_id: session_id.to_owned(),
            turn_number,
            user_utterance,
            nodes: Vec::new(),
            edges: Vec::new(),
            scores,
            covered_elements: Vec::new(),
            coverage_score,
            system_utterance: None,
            velocity: None,
            focus: None,
            node_tracker_state: None,
            config_patch: None,
            slot_mappings: Vec::new(),
            canonical_edges: Vec::new(),
            signals: None,
        }
    }
}

/// The ids a recorded turn created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedTurn {
    /// The user utterance.
    pub user_utterance_id: UtteranceId,
    /// The system utterance, if there was one.
    pub system_utterance_id: Option<UtteranceId>,
    /// The nodes, in the order of [`TurnRecord::nodes`].
    pub node_ids: Vec<NodeId>,
    /// The edges, in the order of [`TurnRecord::edges`].
    pub edge_ids: Vec<EdgeId>,
    /// The scoring row.
    pub scores_id: ScoringId,
    /// The element ids this turn covered for the first time.
    pub newly_covered: Vec<ElementId>,
}

/// What planning the next question reads: one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnContext {
    /// The session row.
    pub session: session::Model,
    /// Its current (not superseded) nodes.
    pub current_nodes: Vec<kg_node::Model>,
    /// Its edges.
    pub edges: Vec<kg_edge::Model>,
    /// Its last utterances, in conversation order.
    pub recent_utterances: Vec<utterance::Model>,
    /// Its scores, in turn order.
    pub scoring_history: Vec<scoring_history::Model>,
}

/// Records and reads whole turns.
#[derive(Debug, Clone)]
pub struct TurnRepository {
    db: Database,
}

impl TurnRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Writes everything the turn produced — user utterance, nodes, edges,
    /// scores, coverage marks, session metrics, system utterance, and what
    /// the Python pipeline adds (velocity, focus, tracker state, config
    /// merge, slot mappings, canonical edges, qualitative signals) — in ONE
    /// write transaction: all of it lands or none of it does.
    ///
    /// Cancellation: if this future is dropped (a request timeout, a client
    /// gone) before the writer took the turn from its queue, the turn is
    /// never written; once taken, it commits or fails as a whole, in its
    /// place in the order. On PostgreSQL a turn without the pipeline's
    /// extras is one statement with every value bound: once sent, the
    /// server runs it to its end; with extras it is that statement and
    /// theirs in one transaction, rolled back if given up on before its
    /// commit. Either way a turn given up on lands whole or not at all (a
    /// retry answers `DuplicateTurn` if it landed). The session's `turn_count` becomes the highest
    /// turn recorded, and its `updated_at` never goes backwards.
    ///
    /// # Errors
    /// Nothing is written on any error. [`Error::NotFound`] when the session
    /// ([`EntityKind::Session`](crate::EntityKind::Session)) or a covered
    /// element ([`EntityKind::ConceptElement`](crate::EntityKind::ConceptElement))
    /// does not exist, or an existing node is missing
    /// ([`EntityKind::Node`](crate::EntityKind::Node));
    /// [`Error::InvalidInput`] for a node index out of range, a turn below
    /// 1, or a confidence or score that is not a number in [0, 1] (NaN and
    /// infinities included; all checked before any write);
    /// [`Error::SessionMismatch`] for an existing node, or a slot, of
    /// another session ([`EntityKind::Slot`](crate::EntityKind::Slot) when
    /// a slot does not exist); [`Error::InvalidInput`] also for a
    /// canonical edge naming an edge the turn does not have, a velocity
    /// that is negative or not finite, a similarity outside [0, 1], or (on
    /// SQLite) a config key a JSON path cannot quote;
    /// [`Error::Conflict`] when the turn was recorded already
    /// ([`ConflictKind::DuplicateTurn`]: the user utterance or the scores
    /// of that turn exist), only the system utterance of that turn exists
    /// ([`ConflictKind::DuplicateUtterance`], speaker `system`), a node
    /// duplicates a current one or another node of the turn
    /// ([`ConflictKind::DuplicateCurrentNode`]), or an edge an existing one
    /// or another edge of the turn ([`ConflictKind::DuplicateEdge`]). The
    /// kind is named from the statement that failed on SQLite, from the
    /// unique index the server names on PostgreSQL (only "this turn's
    /// question exists" looks up whether the turn's scores do, to tell a
    /// repeated turn from a question recorded ahead);
    /// [`Error::Busy`] when the write lock stays taken past the busy timeout.
    #[tracing::instrument(skip_all, fields(session_id = %record.session_id, turn = record.turn_number))]
    pub async fn record_turn(&self, record: TurnRecord) -> Result<RecordedTurn> {
        let plan = TurnPlan::new(record)?;
        if !plan.existing_nodes.is_empty() {
            // Nodes never change session, and one deleted in between makes
            // an edge's foreign key fail: checking ahead is safe.
            let ids: Vec<&NodeId> = plan.existing_nodes.iter().collect();
            check_nodes_of_session(self.db.connection(), &ids, &plan.session_id).await?;
        }
        let covered_at = now_utc();
        let statements = plan.statements(self.db.backend().into(), covered_at)?;
        let rows = match self.db.write_batch_telling_where(statements).await {
            Ok(rows) => rows,
            Err(failed) => {
                return Err(self
                    .explain_failure(&plan, failed.error, failed.statement)
                    .await);
            }
        };
        Ok(RecordedTurn {
            newly_covered: newly_covered(&plan, &rows, covered_at),
            user_utterance_id: plan.utterances[0].id.clone(),
            system_utterance_id: plan.utterances.get(1).map(|u| u.id.clone()),
            node_ids: plan.nodes.iter().map(|n| n.id.clone()).collect(),
            edge_ids: plan.edges.iter().map(|e| e.id.clone()).collect(),
            scores_id: plan.scores.id,
        })
    }

    /// After a turn was refused (and rolled back): a missing session shows
    /// as the utterances' foreign key, a missing element as its guard's NOT
    /// NULL; say what was missing instead. A unique violation is named
    /// from the unique index it violated where the database names it
    /// (PostgreSQL: the rows of that table alone are then looked up, to
    /// say which), else from the statement that failed (`statement`, its
    /// index in the batch: SQLite). When neither is known it is inferred from the rows
    /// present right after the rollback: the first of the turn's inserts,
    /// in the batch's order, that collides with one (another writer may
    /// change those rows in between, so the kind can then be wrong or
    /// [`ConflictKind::Other`]).
    async fn explain_failure(
        &self,
        plan: &TurnPlan,
        err: Error,
        statement: Option<usize>,
    ) -> Error {
        let conn = self.db.connection();
        match err {
            Error::Conflict {
                conflict: ConflictKind::Other,
                ..
            } => {
                // PostgreSQL names the unique index (a turn is one
                // statement there, so no statement index says it).
                if let Some(constraint) = err.violated_constraint() {
                    return match plan.conflict_on(constraint, conn).await {
                        Ok(Some(kind)) => err.conflict_as(|| kind),
                        _ => err,
                    };
                }
                match statement
                    .and_then(|i| plan.conflict_at(self.db.connection().get_database_backend(), i))
                {
                    // The system's question of this turn exists: the turn
                    // itself was recorded only if its scores were (the one
                    // thing looked up after the rollback).
                    Some(ConflictKind::DuplicateUtterance { .. })
                        if matches!(plan.scored(conn).await, Ok(Some(_))) =>
                    {
                        return err.conflict_as(|| plan.recorded());
                    }
                    Some(kind) => return err.conflict_as(|| kind),
                    None => {}
                }
                match plan.first_collision(conn).await {
                    Ok(Some(kind)) => err.conflict_as(|| kind),
                    _ => err,
                }
            }
            Error::InvalidReference(_) => {
                match session::Entity::find_by_id(plan.session_id.as_str())
                    .one(conn)
                    .await
                {
                    Ok(None) => not_found(&plan.session_id),
                    _ => err,
                }
            }
            Error::InvalidValue(_) => {
                // On PostgreSQL the guard's NOT NULL fires before the
                // foreign keys, which are checked at the statement's end:
                // a missing session shows as a missing element there.
                if let Ok(None) = session::Entity::find_by_id(plan.session_id.as_str())
                    .one(conn)
                    .await
                {
                    return not_found(&plan.session_id);
                }
                // The slots' guard: which slot, and why.
                if let Err(slots) =
                    check_slots_of_session(conn, &plan.extras.slots(), &plan.session_id).await
                {
                    return slots;
                }
                for (element_id, _) in &plan.covers {
                    let found = concept_element::Entity::find()
                        .filter(concept_element::Column::SessionId.eq(plan.session_id.as_str()))
                        .filter(concept_element::Column::ElementId.eq(element_id.as_str()))
                        .one(conn)
                        .await;
                    if let Ok(None) = found {
                        return element_not_found(&plan.session_id, element_id);
                    }
                }
                err
            }
            err => err,
        }
    }

    /// Reads what planning the next question needs — the session, its
    /// current nodes, its edges, its last `recent_utterances` utterances and
    /// its scoring history — in one snapshot, so a turn being recorded is
    /// seen whole or not at all. `recent_utterances` is clamped to
    /// [`MAX_ROW_LIMIT`](super::MAX_ROW_LIMIT) (`u64::MAX` means all).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the session does not exist.
    #[tracing::instrument(skip(self))]
    pub async fn context(
        &self,
        session_id: &SessionId,
        recent_utterances: u64,
    ) -> Result<TurnContext> {
        #[cfg(feature = "sqlite")]
        if let Some(readers) = self.db.direct_readers() {
            let id = session_id.to_owned();
            return readers
                .read(move |conn| super::context_sqlite::read(conn, &id, recent_utterances))
                .await?
                .ok_or_else(|| not_found(session_id));
        }
        let txn = self.db.begin_read().await?;
        let session = session::Entity::find_by_id(session_id)
            .one(&txn)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let context = TurnContext {
            session,
            current_nodes: current_nodes(&txn, session_id).await?,
            edges: session_edges(&txn, session_id).await?,
            recent_utterances: last_utterances(&txn, session_id, recent_utterances).await?,
            scoring_history: history(&txn, session_id).await?,
        };
        sea_orm::TransactionSession::commit(txn).await?;
        Ok(context)
    }
}

/// The session's progress after a turn: `turn_count` becomes the highest
/// turn recorded and never goes down, the coverage is the one reported by
/// that highest turn (a turn recorded late does not overwrite a later
/// turn's), and `updated_at` never goes backwards.
fn session_progress(
    backend: DbBackend,
    session_id: &SessionId,
    turn_number: i32,
    coverage_score: f64,
    now: chrono::NaiveDateTime,
) -> sea_orm::Statement {
    static SQL: CachedSql = sql_cache::new();
    let sql = cached(backend, &SQL, || {
        build_session_progress(backend, session_id, turn_number, coverage_score, now).sql
    });
    // In the order of the built text's placeholders (a unit test compares).
    let values: Vec<sea_orm::Value> = vec![
        turn_number.into(),
        coverage_score.into(),
        turn_number.into(),
        now.into(),
        session_id.into(),
    ];
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// [`session_progress`] built through sea-query: the text it caches.
fn build_session_progress(
    backend: DbBackend,
    session_id: &SessionId,
    turn_number: i32,
    coverage_score: f64,
    now: chrono::NaiveDateTime,
) -> sea_orm::Statement {
    use session::Column;
    let statement = Query::update()
        .table(session::Entity)
        .value(
            Column::CoverageScore,
            Expr::case(
                Expr::col(Column::TurnCount).lte(turn_number),
                Expr::val(coverage_score),
            )
            .finally(Expr::col(Column::CoverageScore)),
        )
        .value(
            Column::TurnCount,
            Func::greatest([Expr::col(Column::TurnCount), Expr::val(turn_number)]),
        )
        .value(
            Column::UpdatedAt,
            Func::greatest([Expr::col(Column::UpdatedAt), Expr::val(now)]),
        )
        .and_where(Expr::col(Column::Id).eq(session_id))
        .to_owned();
    backend.build(&statement)
}

/// A turn turned into rows, checked before anything is written.
struct TurnPlan {
    session_id: SessionId,
    turn_number: i32,
    coverage_score: f64,
    utterances: Vec<utterance::Model>,
    nodes: Vec<kg_node::Model>,
    edges: Vec<kg_edge::Model>,
    scores: scoring_history::Model,
    covers: Vec<(ElementId, NodeId)>,
    existing_nodes: Vec<NodeId>,
    extras: ExtrasPlan,
}

/// Which covered elements the turn covered first, from the rows the cover
/// statements returned (a first cover carries this turn's time and node).
fn newly_covered(
    plan: &TurnPlan,
    rows: &[crate::database::WrittenRow],
    covered_at: chrono::NaiveDateTime,
) -> Vec<ElementId> {
    let mut newly = Vec::new();
    for row in rows {
        let element = row.text("element_id").map(ElementId::from);
        let at = row.timestamp("covered_at");
        let by = row.text("covered_by_node_id");
        let Some(element) = element else { continue };
        let ours = plan
            .covers
            .iter()
            .any(|(e, node)| *e == element && by.as_deref() == Some(node.as_str()));
        if ours && at == Some(covered_at) && !newly.contains(&element) {
            newly.push(element);
        }
    }
    newly
}

impl TurnPlan {
    /// The unique rule the batch's statement `index` runs into, by the
    /// batch's layout ([`TurnPlan::statements`]): the session's progress
    /// when it leads, the utterances, the nodes, the edges, the scores,
    /// then the covers and the extras (which run into no unique rule of
    /// the turn's own).
    fn conflict_at(&self, backend: DbBackend, index: usize) -> Option<ConflictKind> {
        let recorded = || self.recorded();
        let mut i = index.checked_sub(usize::from(self.progress_leads(backend)))?;
        if let Some(said) = self.utterances.get(i) {
            return Some(match said.speaker {
                Speaker::User => recorded(),
                speaker => self.duplicate_utterance(speaker),
            });
        }
        i -= self.utterances.len();
        if let Some(node) = self.nodes.get(i) {
            return Some(duplicate_node(
                &self.session_id,
                &node.label,
                &node.node_type,
            ));
        }
        i -= self.nodes.len();
        if let Some(edge) = self.edges.get(i) {
            return Some(duplicate_edge(edge));
        }
        i -= self.edges.len();
        (i == 0).then(recorded)
    }

    /// Whether the batch starts with the session's progress UPDATE: on
    /// SQLite, unless the extras' UPDATE of the session writes it
    /// ([`TurnPlan::statements`]). PostgreSQL's batch starts with the whole
    /// turn as one statement.
    fn progress_leads(&self, backend: DbBackend) -> bool {
        backend != DbBackend::Postgres && !self.extras.writes_session()
    }

    fn recorded(&self) -> ConflictKind {
        ConflictKind::DuplicateTurn {
            session_id: self.session_id.to_string(),
            turn_number: self.turn_number,
        }
    }

    /// The scores of this turn, if the session has them.
    async fn scored(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<scoring_history::Model>> {
        Ok(scoring_history::Entity::find()
            .filter(scoring_history::Column::SessionId.eq(self.session_id.as_str()))
            .filter(scoring_history::Column::TurnNumber.eq(self.turn_number))
            .one(conn)
            .await?)
    }

    fn duplicate_utterance(&self, speaker: Speaker) -> ConflictKind {
        ConflictKind::DuplicateUtterance {
            session_id: self.session_id.to_string(),
            turn_number: self.turn_number,
            speaker: sea_orm::ActiveEnum::to_value(&speaker),
        }
    }

    /// Which of the turn's inserts, taken in the batch's order, runs into
    /// a unique rule against what the session holds now (after the batch
    /// was rolled back) or against an earlier row of the same turn.
    async fn first_collision(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<ConflictKind>> {
        if let Some(kind) = self.utterance_collision(conn).await? {
            return Ok(Some(kind));
        }
        if let Some(kind) = self.node_collision(conn).await? {
            return Ok(Some(kind));
        }
        if let Some(kind) = self.edge_collision(conn).await? {
            return Ok(Some(kind));
        }
        Ok(self.scored(conn).await?.map(|_| self.recorded()))
    }

    /// The conflict behind the unique index `constraint` that the turn
    /// violated (PostgreSQL names it): which of the turn's rows of that
    /// table collides, looked up in that table alone. `None` for an index
    /// the turn's rows do not answer to.
    async fn conflict_on(
        &self,
        constraint: &str,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<ConflictKind>> {
        match constraint {
            "uq_utterances_session_turn_speaker" => self.utterance_collision(conn).await,
            "uq_kg_nodes_current_label_type" => self.node_collision(conn).await,
            "uq_kg_edges_source_target_type" => self.edge_collision(conn).await,
            "uq_scoring_history_session_turn" => Ok(Some(self.recorded())),
            _ => Ok(None),
        }
    }

    /// An utterance of this turn that exists already: the turn was
    /// recorded (its user utterance, or its question and its scores), or
    /// only its question was.
    async fn utterance_collision(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<ConflictKind>> {
        let recorded = || self.recorded();
        let speakers: Vec<Speaker> = self.utterances.iter().map(|u| u.speaker).collect();
        let spoken: Vec<Speaker> = utterance::Entity::find()
            .select_only()
            .column(utterance::Column::Speaker)
            .filter(utterance::Column::SessionId.eq(self.session_id.as_str()))
            .filter(utterance::Column::TurnNumber.eq(self.turn_number))
            .filter(utterance::Column::Speaker.is_in(speakers))
            .into_tuple()
            .all(conn)
            .await?;
        if spoken.contains(&Speaker::User) {
            return Ok(Some(recorded()));
        }
        if let Some(&speaker) = spoken.first() {
            // Only the system's question of this turn is there: the turn
            // itself was recorded only if its scores were.
            return Ok(Some(if self.scored(conn).await?.is_some() {
                recorded()
            } else {
                self.duplicate_utterance(speaker)
            }));
        }
        Ok(None)
    }

    /// The first node of the turn that duplicates a current node of the
    /// session or an earlier node of the turn.
    async fn node_collision(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<ConflictKind>> {
        let labels = self.nodes.iter().map(|n| n.label.as_str());
        let current: Vec<(String, String)> = kg_node::Entity::find()
            .select_only()
            .column(kg_node::Column::Label)
            .column(kg_node::Column::NodeType)
            .filter(kg_node::Column::SessionId.eq(self.session_id.as_str()))
            .filter(kg_node::Column::SupersededBy.is_null())
            .filter(kg_node::Column::Label.is_in(labels))
            .into_tuple()
            .all(conn)
            .await?;
        for (i, node) in self.nodes.iter().enumerate() {
            let same =
                |label: &str, node_type: &str| label == node.label && node_type == node.node_type;
            if self.nodes[..i].iter().any(|n| same(&n.label, &n.node_type))
                || current.iter().any(|(l, t)| same(l, t))
            {
                return Ok(Some(duplicate_node(
                    &self.session_id,
                    &node.label,
                    &node.node_type,
                )));
            }
        }
        Ok(None)
    }

    /// The first edge of the turn that duplicates an existing edge or an
    /// earlier edge of the turn.
    async fn edge_collision(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Option<ConflictKind>> {
        let sources = self.edges.iter().map(|e| e.source_node_id.as_str());
        let existing: Vec<(NodeId, NodeId, EdgeType)> = kg_edge::Entity::find()
            .select_only()
            .column(kg_edge::Column::SourceNodeId)
            .column(kg_edge::Column::TargetNodeId)
            .column(kg_edge::Column::EdgeType)
            .filter(kg_edge::Column::SourceNodeId.is_in(sources))
            .into_tuple()
            .all(conn)
            .await?;
        for (i, edge) in self.edges.iter().enumerate() {
            let same = |s: &NodeId, t: &NodeId, kind: EdgeType| {
                *s == edge.source_node_id && *t == edge.target_node_id && kind == edge.edge_type
            };
            if self.edges[..i]
                .iter()
                .any(|e| same(&e.source_node_id, &e.target_node_id, e.edge_type))
                || existing.iter().any(|(s, t, kind)| same(s, t, *kind))
            {
                return Ok(Some(duplicate_edge(edge)));
            }
        }
        Ok(None)
    }

    /// The turn's writes, in order: session metrics, utterances, nodes,
    /// edges, scores, then one cover per element, which returns the
    /// element's covering as it now stands (a first cover writes this
    /// turn's node and `covered_at`; a later one keeps the first).
    fn statements(
        &self,
        backend: DbBackend,
        covered_at: chrono::NaiveDateTime,
    ) -> Result<StatementBatch> {
        // On SQLite a turn whose extras write the session's row writes its
        // progress in that same UPDATE: one rewrite of the row, not two.
        // PostgreSQL's turn statement writes the progress itself.
        let progress_leads = self.progress_leads(backend);
        let mut batch = self.core_statements(backend, covered_at, progress_leads)?;
        let progress = (backend != DbBackend::Postgres && !progress_leads).then_some(Progress {
            coverage_score: self.coverage_score,
        });
        for statement in self.extras.statements(
            backend,
            &self.session_id,
            self.turn_number,
            covered_at,
            progress,
        )? {
            batch.push(statement);
        }
        Ok(batch)
    }

    /// The turn's own rows (progress, utterances, nodes, edges, scores,
    /// covers), before the extras: one statement on PostgreSQL, one per
    /// row on SQLite.
    fn core_statements(
        &self,
        backend: DbBackend,
        covered_at: chrono::NaiveDateTime,
        with_progress: bool,
    ) -> Result<StatementBatch> {
        #[cfg(feature = "postgres")]
        if backend == DbBackend::Postgres {
            return self.postgres_statement(covered_at);
        }
        let mut batch = StatementBatch::new();
        if with_progress {
            batch.push(session_progress(
                backend,
                &self.session_id,
                self.turn_number,
                self.coverage_score,
                covered_at,
            ));
        }
        // One row per INSERT: a multi-row INSERT inside a transaction
        // makes SQLite keep a statement journal to undo a half-done
        // statement, which measurably slowed every turn; single-row
        // statements cost nothing extra in one batch.
        for utterance in &self.utterances {
            batch.push(insert_row(backend, utterance));
        }
        for node in &self.nodes {
            batch.push(insert_row(backend, node));
        }
        for edge in &self.edges {
            batch.push(insert_row(backend, edge));
        }
        batch.push(insert_row(backend, &self.scores));
        // Per covered element: its guard, then its cover.
        let covers = self
            .covers
            .iter()
            .map(|(element_id, node_id)| {
                let guard = element_guard(backend, &self.session_id, element_id)?;
                let cover = cover_once(backend, &self.session_id, element_id, node_id, covered_at);
                Ok((guard, cover))
            })
            .collect::<Result<Vec<_>>>()?;
        for (guard, cover) in covers {
            batch.push(guard);
            batch.push_returning_one(cover);
        }
        Ok(batch)
    }

    /// PostgreSQL: the whole turn as ONE statement of data-modifying
    /// CTEs — the session's progress, each table's rows as one `INSERT …
    /// FROM UNNEST` of bound arrays, the covered elements' guard and
    /// covers — returning the covers' rows: one round trip, in the
    /// statement's own transaction, with every value bound. Foreign keys
    /// are checked at the end of the statement, so edges and covers may
    /// name the nodes it inserts. An element covered twice in one turn is
    /// covered once, by its first node (as the statements one by one do).
    #[cfg(feature = "postgres")]
    fn postgres_statement(&self, covered_at: chrono::NaiveDateTime) -> Result<StatementBatch> {
        use super::insert::unnest_insert;
        let mut bound = Placeholders::new(DbBackend::Postgres);
        let v = &mut bound;
        let session = v.bind(self.session_id.as_str());
        let turn = v.bind(self.turn_number);
        let coverage = v.bind(self.coverage_score);
        let now = v.bind(covered_at);
        let mut ctes = vec![format!(
            "progress AS (UPDATE \"sessions\" SET \
             \"coverage_score\" = CASE WHEN \"turn_count\" <= {turn} THEN {coverage} ELSE \"coverage_score\" END, \
             \"turn_count\" = GREATEST(\"turn_count\", {turn}), \
             \"updated_at\" = GREATEST(\"updated_at\", {now}) \
             WHERE \"id\" = {session})"
        )];
        ctes.push(format!(
            "utterances_written AS ({})",
            unnest_insert(&self.utterances, v)?
        ));
        if !self.nodes.is_empty() {
            ctes.push(format!(
                "nodes_written AS ({})",
                unnest_insert(&self.nodes, v)?
            ));
        }
        if !self.edges.is_empty() {
            ctes.push(format!(
                "edges_written AS ({})",
                unnest_insert(&self.edges, v)?
            ));
        }
        ctes.push(format!(
            "scores_written AS ({})",
            unnest_insert(std::slice::from_ref(&self.scores), v)?
        ));
        let mut covers: Vec<(&ElementId, &NodeId)> = Vec::new();
        for (element, node) in &self.covers {
            if !covers.iter().any(|(e, _)| *e == element) {
                covers.push((element, node));
            }
        }
        let primary = if covers.is_empty() {
            "SELECT 1 WHERE FALSE".to_owned()
        } else {
            let guard_ids = v.bind(
                covers
                    .iter()
                    .map(|_| super::new_id())
                    .collect::<Vec<String>>(),
            );
            let elements = v.bind(
                covers
                    .iter()
                    .map(|(e, _)| e.to_string())
                    .collect::<Vec<String>>(),
            );
            let nodes = v.bind(
                covers
                    .iter()
                    .map(|(_, n)| n.to_string())
                    .collect::<Vec<String>>(),
            );
            // The guard inserts a row with a NULL label (refused: NOT
            // NULL) exactly when the session has no such element.
            ctes.push(format!(
                "elements_guarded AS (INSERT INTO \"concept_elements\" \
                 (\"id\", \"session_id\", \"element_id\", \"label\") \
                 SELECT g.\"id\", {session}, g.\"element_id\", NULL::text \
                 FROM UNNEST({guard_ids}::text[], {elements}::text[]) AS g(\"id\", \"element_id\") \
                 WHERE NOT EXISTS (SELECT 1 FROM \"concept_elements\" c \
                 WHERE c.\"session_id\" = {session} AND c.\"element_id\" = g.\"element_id\"))"
            ));
            ctes.push(format!(
                "covered AS (UPDATE \"concept_elements\" c SET \
                 \"covered_at\" = CASE WHEN c.\"is_covered\" THEN c.\"covered_at\" ELSE {now} END, \
                 \"covered_by_node_id\" = CASE WHEN c.\"is_covered\" THEN c.\"covered_by_node_id\" ELSE w.\"node_id\" END, \
                 \"is_covered\" = TRUE \
                 FROM UNNEST({elements}::text[], {nodes}::text[]) AS w(\"element_id\", \"node_id\") \
                 WHERE c.\"session_id\" = {session} AND c.\"element_id\" = w.\"element_id\" \
                 RETURNING c.\"element_id\", c.\"covered_at\", c.\"covered_by_node_id\")"
            ));
            "SELECT \"element_id\", \"covered_at\", \"covered_by_node_id\" FROM covered".to_owned()
        };
        let sql = format!("WITH {} {primary}", ctes.join(", "));
        Ok(StatementBatch::of_one_returning(
            sea_orm::Statement::from_sql_and_values(DbBackend::Postgres, sql, bound.into_values()),
            covers.len(),
        ))
    }

    fn new(record: TurnRecord) -> Result<Self> {
        check_turn(record.turn_number)?;
        check_fraction("the session's coverage score", record.coverage_score)?;
        let session_id = record.session_id;
        let utterance = |speaker, said: TurnUtterance| {
            NewUtterance {
                session_id: session_id.clone(),
                turn_number: record.turn_number,
                speaker,
                text: said.text,
                discourse_markers: said.discourse_markers,
            }
            .into_model()
        };
        let mut utterances = vec![utterance(Speaker::User, record.user_utterance)];
        if let Some(next_question) = record.system_utterance {
            utterances.push(utterance(Speaker::System, next_question));
        }
        let provenance = vec![utterances[0].id.clone()];

        let nodes = record
            .nodes
            .into_iter()
            .map(|node| {
                NewNode {
                    session_id: session_id.clone(),
                    label: node.label,
                    node_type: node.node_type,
                    confidence: node.confidence,
                    properties: node.properties,
                    source_utterance_ids: provenance.clone(),
                    source_quotes: node.source_quotes,
                    stance: node.stance,
                    embedding: node.embedding,
                }
                .into_model()
            })
            .collect::<Result<Vec<_>>>()?;

        let mut existing_nodes = Vec::new();
        let mut resolve = |node: NodeRef| -> Result<NodeId> {
            match node {
                NodeRef::New(i) => nodes.get(i).map(|n| n.id.clone()).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "the turn names new node {i} but creates {} node(s)",
                        nodes.len()
                    ))
                }),
                NodeRef::Existing(id) => {
                    if !existing_nodes.contains(&id) {
                        existing_nodes.push(id.clone());
                    }
                    Ok(id)
                }
            }
        };
        let mut edges = Vec::with_capacity(record.edges.len());
        for edge in record.edges {
            edges.push(
                NewEdge {
                    session_id: session_id.clone(),
                    source_node_id: resolve(edge.source)?,
                    target_node_id: resolve(edge.target)?,
                    edge_type: edge.edge_type,
                    confidence: edge.confidence,
                    properties: edge.properties,
                    source_utterance_ids: provenance.clone(),
                }
                .into_model()?,
            );
        }
        let covers = record
            .covered_elements
            .into_iter()
            .map(|(element_id, node)| Ok((element_id, resolve(node)?)))
            .collect::<Result<Vec<_>>>()?;
        let extras = ExtrasPlan::new(
            Extras {
                velocity: record.velocity,
                focus: record.focus,
                node_tracker_state: record.node_tracker_state,
                config_patch: record.config_patch,
                slot_mappings: record.slot_mappings,
                canonical_edges: record.canonical_edges,
                signals: record.signals,
            },
            &session_id,
            record.turn_number,
            &mut resolve,
            |i| edges.get(i).map(|e| e.id.to_string()),
        )?;

        let scores = NewScores {
            session_id: session_id.clone(),
            turn_number: record.turn_number,
            scores: record.scores,
        }
        .into_model()?;

        Ok(Self {
            session_id,
            turn_number: record.turn_number,
            coverage_score: record.coverage_score,
            utterances,
            nodes,
            edges,
            scores,
            covers,
            existing_nodes,
            extras,
        })
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    /// The cached statements bind their values in the order of the text
    /// sea-query builds, on both backends.
    #[test]
    fn the_cached_turn_statements_are_the_built_ones() {
        let session = SessionId::from("s");
        let element = ElementId::from("e");
        let node = NodeId::from("n");
        let at = chrono::NaiveDate::from_ymd_opt(2026, 3, 12)
            .and_then(|d| d.and_hms_micro_opt(10, 1, 2, 345_678))
            .expect("a time");
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            // Twice: the first call builds the text, the second uses it.
            for _ in 0..2 {
                assert_eq!(
                    session_progress(backend, &session, 7, 0.25, at),
                    build_session_progress(backend, &session, 7, 0.25, at)
                );
                assert_eq!(
                    cover_once(backend, &session, &element, &node, at),
                    super::super::concept_elements::build_cover_once(
                        backend, &session, &element, &node, at
                    )
                );
                let fast = element_guard(backend, &session, &element).expect("guard");
                let built = super::super::concept_elements::build_element_guard(
                    backend, &session, &element,
                )
                .expect("guard");
                // The guard's first value is a fresh id each time.
                let rest = |s: &sea_orm::Statement| {
                    (s.sql.clone(), s.values.as_ref().map(|v| v.0[1..].to_vec()))
                };
                assert_eq!(rest(&fast), rest(&built));
            }
        }
    }
}
