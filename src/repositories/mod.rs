//! Typed repositories over the six tables, one module per aggregate. The
//! services call these instead of writing SQL: they take and return entity
//! models or small domain structs, and fail with the crate's classified
//! [`Error`](crate::Error).
//!
//! Every repository holds a clone of the [`Database`] handle, so each is
//! cheap to clone and share. Writes that read before they write run in one
//! write transaction ([`Database::begin_write`]: `BEGIN IMMEDIATE` on
//! SQLite, row locks on PostgreSQL), so concurrent callers never lose an
//! update.

use chrono::{NaiveDateTime, SubsecRound, Utc};

use crate::database::Database;

pub mod concept_elements;
pub mod graph;
pub mod scoring;
pub mod sessions;
pub mod turns;
pub mod utterances;

pub use concept_elements::{
    ConceptElementRepository, CoverageSummary, NewConceptElement, PriorityCoverage,
};
pub use graph::{GraphRepository, GraphSummary, NewEdge, NewNode, NodeUpdate};
pub use scoring::{NewScores, ScoringRepository, TurnScores};
pub use sessions::{NewSession, SessionRepository};
pub use turns::{
    NodeRef, RecordedTurn, TurnContext, TurnEdge, TurnNode, TurnRecord, TurnRepository,
    TurnUtterance,
};
pub use utterances::{NewUtterance, UtteranceRepository};

/// A new id: a time-ordered UUIDv7 string. Ordered ids keep B-tree inserts
/// at the right edge of every id index instead of scattering them (the
/// turn benchmark measures the difference); within one process they are
/// strictly increasing, which also orders rows written in one instant.
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current UTC time at the microsecond precision both backends keep, so
/// a value written and read back compares equal.
#[must_use]
pub fn now_utc() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// The deepest JSON nesting the repositories accept. serde_json (and so
/// reading a row back) refuses documents nested deeper than 128 levels, so
/// a deeper one could be stored but never read again: refuse it up front.
pub const MAX_JSON_DEPTH: usize = 100;

/// Fails with [`Error::InvalidInput`](crate::Error::InvalidInput) when
/// `value` nests deeper than [`MAX_JSON_DEPTH`]. Iterative, so any depth is
/// measured without recursion.
pub(crate) fn check_json_depth(what: &str, value: &serde_json::Value) -> crate::Result<()> {
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_JSON_DEPTH {
            return Err(crate::Error::InvalidInput(format!(
                "{what} nests JSON deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        match value {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

/// Every repository over one database handle.
#[derive(Debug, Clone)]
pub struct Repositories {
    /// Interview sessions.
    pub sessions: SessionRepository,
    /// The transcript.
    pub utterances: UtteranceRepository,
    /// The knowledge graph.
    pub graph: GraphRepository,
    /// The scores of each turn.
    pub scoring: ScoringRepository,
    /// Concept elements and coverage.
    pub concept_elements: ConceptElementRepository,
    /// Whole turns, written atomically.
    pub turns: TurnRepository,
}

impl Repositories {
    /// All repositories over `db`.
    #[must_use]
    pub fn new(db: &Database) -> Self {
        Self {
            sessions: SessionRepository::new(db.clone()),
            utterances: UtteranceRepository::new(db.clone()),
            graph: GraphRepository::new(db.clone()),
            scoring: ScoringRepository::new(db.clone()),
            concept_elements: ConceptElementRepository::new(db.clone()),
            turns: TurnRepository::new(db.clone()),
        }
    }
}

/// The JSON array of `values`.
pub(crate) fn json_strings(values: &[String]) -> serde_json::Value {
    serde_json::Value::Array(
        values
            .iter()
            .cloned()
            .map(serde_json::Value::String)
            .collect(),
    )
}

/// Statements, built for one backend, that must commit together; rows they
/// return (by `RETURNING`) come back in statement order. See
/// [`Database::write_batch`](crate::Database) for how they are run: on
/// SQLite as one multi-statement transaction, on PostgreSQL one by one.
pub(crate) struct StatementBatch {
    statements: Vec<sea_orm::Statement>,
    /// How many rows the batch returns when it succeeds.
    returning: usize,
}

impl StatementBatch {
    pub(crate) fn new() -> Self {
        Self {
            statements: Vec::new(),
            returning: 0,
        }
    }

    pub(crate) fn push(&mut self, statement: sea_orm::Statement) {
        self.statements.push(statement);
    }

    /// Adds a statement that returns exactly one row when it succeeds.
    pub(crate) fn push_returning_one(&mut self, statement: sea_orm::Statement) {
        self.statements.push(statement);
        self.returning += 1;
    }

    /// How many rows the batch returns when it succeeds.
    pub(crate) fn returning(&self) -> usize {
        self.returning
    }

    /// Runs the statements one by one on `conn` (PostgreSQL: it cannot
    /// prepare several commands at once).
    pub(crate) async fn run_each(
        self,
        conn: &impl sea_orm::ConnectionTrait,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        let mut rows = Vec::new();
        for statement in self.statements {
            rows.extend(conn.query_all_raw(statement).await?);
        }
        Ok(rows)
    }

    /// The batches, in order, as one SQLite write transaction:
    /// `BEGIN IMMEDIATE; …; COMMIT`.
    /// One multi-statement query: SQLite binds the arguments across the
    /// statements in order.
    pub(crate) fn sqlite_transaction(batches: &[&Self]) -> sea_orm::Statement {
        let mut sql = String::from("BEGIN IMMEDIATE");
        let mut values = Vec::new();
        for statement in batches.iter().flat_map(|b| &b.statements) {
            sql.push_str(";\n");
            sql.push_str(&statement.sql);
            if let Some(sea_orm::Values(v)) = &statement.values {
                values.extend(v.iter().cloned());
            }
        }
        sql.push_str(";\nCOMMIT");
        sea_orm::Statement::from_sql_and_values(sea_orm::DbBackend::Sqlite, sql, values)
    }
}
