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

pub use concept_elements::{ConceptElementRepository, CoverageSummary, NewConceptElement, PriorityCoverage};
pub use graph::{GraphRepository, GraphSummary, NewEdge, NewNode, NodeUpdate};
pub use scoring::{NewScores, ScoringRepository};
pub use sessions::{NewSession, SessionRepository};
pub use turns::{NodeRef, RecordedTurn, TurnContext, TurnEdge, TurnNode, TurnRecord, TurnRepository, TurnScores, TurnUtterance};
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
    serde_json::Value::Array(values.iter().cloned().map(serde_json::Value::String).collect())
}
