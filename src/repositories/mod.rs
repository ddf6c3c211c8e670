//! Typed repositories over the six tables and the four the Python system
//! added later, one module per aggregate. The
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
use sea_orm::{ActiveModelTrait, EntityTrait, QueryTrait};

use crate::database::{Database, StatementBatch};

pub mod canonical;
pub mod concept_elements;
#[cfg(feature = "sqlite")]
mod context_sqlite;
pub mod export;
pub mod graph;
mod graph_lookup;
mod graph_state;
mod graph_summary;
mod insert;
mod placeholders;
mod rows;
pub mod scoring;
mod session_state;
pub mod sessions;
pub mod signals;
mod similarity;
#[cfg(feature = "sqlite")]
mod similarity_sqlite;
mod sql_cache;
mod turn_extras;
pub mod turns;
pub mod utterances;

pub use canonical::{
    CanonicalEdgeWithConfidence, CanonicalGraphRepository, NewSlot, NodeWithSlot,
    SlotWithProvenance,
};
pub use concept_elements::{
    ConceptElementRepository, CoverageSummary, NewConceptElement, PriorityCoverage,
};
pub use export::{ExportRepository, SessionExport};
pub use graph::{GraphRepository, NewEdge, NewNode, NodeUpdate};
pub use graph_lookup::NODE_SIMILARITY_THRESHOLD;
pub use graph_state::GraphState;
pub use graph_summary::GraphSummary;
pub use scoring::{NewScores, ScoringRepository, TurnScores};
pub use session_state::SessionState;
pub use sessions::{ErasedRows, ErasureRecord, NewSession, SessionRepository};
pub use signals::{NewSignals, SignalRepository, Signals, SignalsSaved};
pub use turn_extras::{TurnCanonicalEdge, TurnSignals, TurnSlotMapping, TurnVelocity};
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

/// The largest row count a read takes: SQL's `LIMIT` is a signed 64-bit
/// number (and the driver binds it as one), so every `u64` limit the
/// repositories take is clamped to this, `i64::MAX`. No table holds that
/// many rows, so a larger limit means the same thing, "all of them".
pub const MAX_ROW_LIMIT: u64 = i64::MAX as u64;

/// `limit`, clamped to [`MAX_ROW_LIMIT`] (binding a larger one would
/// panic in the driver).
pub(crate) fn row_limit(limit: u64) -> u64 {
    limit.min(MAX_ROW_LIMIT)
}

/// Fails with [`Error::InvalidInput`](crate::Error::InvalidInput) unless
/// `value` is a finite number in [0, 1]. Every float the module stores —
/// confidences, coverage and the turn's scores — is such a fraction, and
/// is checked here before any write: SQLite would store a NaN as NULL and
/// PostgreSQL would keep it, so neither backend may be left to decide.
/// Negative zero is refused too: SQLite stores it as `0.0`, PostgreSQL
/// keeps its sign, so the same value would differ between the backends
/// (and a study holding one could not be copied from PostgreSQL to SQLite
/// with its proof).
pub(crate) fn check_fraction(what: &str, value: f64) -> crate::Result<()> {
    if (0.0..=1.0).contains(&value) && value.is_sign_positive() {
        Ok(())
    } else {
        Err(crate::Error::InvalidInput(format!(
            "{what} {value} is not a number in [0, 1]"
        )))
    }
}

/// [`check_fraction`] for an optional score.
pub(crate) fn check_optional_fraction(what: &str, value: Option<f64>) -> crate::Result<()> {
    value.map_or(Ok(()), |value| check_fraction(what, value))
}

/// The deepest JSON nesting the repositories accept. serde_json (and so
/// reading a row back) refuses documents nested deeper than 128 levels, so
/// a deeper one could be stored but never read again: refuse it up front.
pub const MAX_JSON_DEPTH: usize = 100;

/// Fails with [`Error::InvalidInput`](crate::Error::InvalidInput) when
/// `value` nests deeper than [`MAX_JSON_DEPTH`]. Iterative, so any depth is
/// measured without recursion.
pub(crate) fn check_json_depth(what: &str, value: &serde_json::Value) -> crate::Result<()> {
    check_json_depth_at(what, value, 1)
}

/// [`check_json_depth`] for a `value` that sits at `depth` inside the
/// document it will be stored in (2 for a value of a top-level key).
pub(crate) fn check_json_depth_at(
    what: &str,
    value: &serde_json::Value,
    depth: usize,
) -> crate::Result<()> {
    let mut stack = vec![(value, depth)];
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

/// Fails with [`Error::InvalidInput`](crate::Error::InvalidInput) unless
/// `value` is a JSON object (not `null`, an array, a string or a number)
/// nesting no deeper than [`MAX_JSON_DEPTH`]: every JSON column the
/// repositories write — a session's config, node and edge properties,
/// scorer details — is documented and read as an object.
pub(crate) fn check_json_object(what: &str, value: &serde_json::Value) -> crate::Result<()> {
    if !value.is_object() {
        return Err(crate::Error::InvalidInput(format!(
            "{what} must be a JSON object"
        )));
    }
    check_json_depth(what, value)
}

/// `{}`: the default of a JSON-object field left out of a deserialised
/// input.
fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
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
    /// The canonical graph: slots, mappings, canonical edges.
    pub canonical: CanonicalGraphRepository,
    /// Each turn's qualitative signals.
    pub signals: SignalRepository,
    /// Whole sessions, read as one document.
    pub export: ExportRepository,
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
            canonical: CanonicalGraphRepository::new(db.clone()),
            signals: SignalRepository::new(db.clone()),
            export: ExportRepository::new(db.clone()),
        }
    }
}

/// `column`, to order text by its bytes on both backends: SQLite compares
/// bytes, PostgreSQL its database's collation (where `a` comes before
/// `B`), so without this the same call would list rows in two orders.
pub(crate) fn by_bytes(
    backend: sea_orm::DbBackend,
    column: impl sea_orm::ColumnTrait,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{Expr, IntoIden};
    let name = column.into_iden().to_string();
    match backend {
        sea_orm::DbBackend::Postgres => Expr::cust(format!("\"{name}\" COLLATE \"C\"")),
        _ => Expr::cust(format!("\"{name}\"")),
    }
}

/// Inserts one row through the writer, as a one-statement write.
pub(crate) async fn insert_one<A: ActiveModelTrait>(db: &Database, row: A) -> crate::Result<()> {
    let statement = <A::Entity as EntityTrait>::insert(row).build(db.backend().into());
    db.write_batch(StatementBatch::of(statement)).await?;
    Ok(())
}
