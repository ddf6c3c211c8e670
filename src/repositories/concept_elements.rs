//! Concept elements: what an interview must cover, and what it has.

use entity::{ElementId, NodeId, SessionId};
use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use entity::concept_element::{self, Priority};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::error::{ConflictKind, EntityKind, Error, Result};
use sea_orm::Order;

use super::graph::check_nodes_of_session;
use super::sql_cache::{self, CachedSql, cached, try_cached};
use super::{by_bytes, new_id, now_utc};

/// An element to seed.
///
/// Deserialises from `{"element_id", "label", "element_type", "priority"}`
/// with `element_type` (`attribute`) and `priority` (`medium`) optional;
/// the priority takes the strings the column stores (`high`, `medium`,
/// `low`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConceptElement {
    /// The element's id within the concept, e.g. `e0`.
    pub element_id: ElementId,
    /// Its name.
    pub label: String,
    /// Its kind (the schema's default is `attribute`).
    #[serde(default = "default_element_type")]
    pub element_type: String,
    /// How much covering it matters.
    #[serde(default = "default_priority")]
    pub priority: Priority,
}

fn default_element_type() -> String {
    "attribute".into()
}

fn default_priority() -> Priority {
    Priority::Medium
}

/// Covered and total elements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PriorityCoverage {
    /// How many are covered.
    pub covered: u64,
    /// How many there are.
    pub total: u64,
}

impl PriorityCoverage {
    /// `covered / total`, or 0 when there is nothing to cover.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.covered as f64 / self.total as f64
        }
    }
}

/// A session's coverage, overall and by priority.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CoverageSummary {
    /// All elements.
    pub overall: PriorityCoverage,
    /// By priority (`high`, `medium`, `low`; absent priorities are left out).
    pub by_priority: BTreeMap<String, PriorityCoverage>,
}

/// The concept elements of each session.
#[derive(Debug, Clone)]
pub struct ConceptElementRepository {
    db: Database,
}

impl ConceptElementRepository {
    /// The repository over `db`.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Seeds a session's elements, all or none.
    ///
    /// # Errors
    /// [`Error::Conflict`] ([`ConflictKind::DuplicateElement`]) when an
    /// element id repeats (in the call or in the session);
    /// [`Error::InvalidReference`] when the session does not exist.
    #[tracing::instrument(skip(self, elements), fields(count = elements.len()))]
    pub async fn seed(
        &self,
        session_id: &SessionId,
        elements: Vec<NewConceptElement>,
    ) -> Result<Vec<concept_element::Model>> {
        let models = element_models(session_id, elements);
        if models.is_empty() {
            return Ok(models);
        }
        let inserted = async {
            let txn = self.db.begin_write().await?;
            insert_elements(&*txn, &models).await?;
            txn.commit().await
        }
        .await;
        match inserted {
            Ok(()) => Ok(models),
            Err(err @ Error::Conflict { .. }) => {
                // Rolled back: the ids the session holds now are the ones
                // the insert ran into (unless another writer removed them).
                let existing = self
                    .elements(session_id)
                    .await
                    .map(|rows| rows.into_iter().map(|e| e.element_id).collect::<Vec<_>>())
                    .unwrap_or_default();
                let kind = duplicate_element(session_id, &models, &existing);
                Err(err.conflict_as(|| kind.unwrap_or(ConflictKind::Other)))
            }
            Err(err) => Err(err),
        }
    }

    /// The session's elements in element-id order.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn elements(&self, session_id: &SessionId) -> Result<Vec<concept_element::Model>> {
        Ok(concept_element::Entity::find()
            .filter(concept_element::Column::SessionId.eq(session_id))
            .order_by(
                by_bytes(self.db.backend().into(), concept_element::Column::ElementId),
                Order::Asc,
            )
            .all(self.db.connection())
            .await?)
    }

    /// Marks an element covered by a node of the same session. Covering is
    /// done once: an element already covered keeps its first node and time.
    /// Returns the element as it now is.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing element or node;
    /// [`Error::SessionMismatch`] when the node belongs to another session.
    #[tracing::instrument(skip(self))]
    pub async fn mark_covered(
        &self,
        session_id: &SessionId,
        element_id: &ElementId,
        node_id: &NodeId,
    ) -> Result<concept_element::Model> {
        let txn = self.db.begin_write().await?;
        check_nodes_of_session(&*txn, &[node_id], session_id).await?;
        let statement = cover_once(
            txn.get_database_backend(),
            session_id,
            element_id,
            node_id,
            now_utc(),
        );
        if txn.query_all_raw(statement).await?.is_empty() {
            return Err(element_not_found(session_id, element_id));
        }
        let element = find_element(&*txn, session_id, element_id).await?;
        txn.commit().await?;
        Ok(element)
    }

    /// Covered and total elements, overall and by priority.
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn coverage(&self, session_id: &SessionId) -> Result<CoverageSummary> {
        let rows: Vec<(Priority, bool)> = concept_element::Entity::find()
            .select_only()
            .column(concept_element::Column::Priority)
            .column(concept_element::Column::IsCovered)
            .filter(concept_element::Column::SessionId.eq(session_id))
            .into_tuple()
            .all(self.db.connection())
            .await?;
        let mut summary = CoverageSummary::default();
        for (priority, covered) in rows {
            let name = sea_orm::ActiveEnum::to_value(&priority);
            for bucket in [
                &mut summary.overall,
                summary.by_priority.entry(name).or_default(),
            ] {
                bucket.total += 1;
                bucket.covered += u64::from(covered);
            }
        }
        Ok(summary)
    }
}

pub(crate) fn element_models(
    session_id: &SessionId,
    elements: Vec<NewConceptElement>,
) -> Vec<concept_element::Model> {
    elements
        .into_iter()
        .map(|e| concept_element::Model {
            id: new_id(),
            session_id: session_id.to_owned(),
            element_id: e.element_id,
            label: e.label,
            element_type: e.element_type,
            priority: e.priority,
            is_covered: false,
            covered_at: None,
            covered_by_node_id: None,
        })
        .collect()
}

pub(crate) async fn insert_elements(
    conn: &impl ConnectionTrait,
    models: &[concept_element::Model],
) -> Result<()> {
    concept_element::Entity::insert_many(
        models
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The one statement that covers an element: the first cover writes its
/// node and time, a later one keeps them. It returns the element's
/// `element_id`, `covered_at` and `covered_by_node_id` as they now stand,
/// and no row when the session has no such element.
pub(crate) fn cover_once(
    backend: DbBackend,
    session_id: &SessionId,
    element_id: &ElementId,
    node_id: &NodeId,
    covered_at: NaiveDateTime,
) -> Statement {
    static SQL: CachedSql = sql_cache::new();
    let sql = cached(backend, &SQL, || {
        build_cover_once(backend, session_id, element_id, node_id, covered_at).sql
    });
    // In the order of the built text's placeholders (a unit test compares).
    let values: Vec<sea_orm::Value> = vec![
        true.into(),
        Some(covered_at).into(),
        true.into(),
        Some(node_id.to_owned()).into(),
        true.into(),
        session_id.into(),
        element_id.into(),
    ];
    Statement::from_sql_and_values(backend, sql, values)
}

/// [`cover_once`] built through sea-query: the text it caches.
pub(crate) fn build_cover_once(
    backend: DbBackend,
    session_id: &SessionId,
    element_id: &ElementId,
    node_id: &NodeId,
    covered_at: NaiveDateTime,
) -> Statement {
    use concept_element::Column;
    let first = |column: Column, value: sea_orm::Value| -> Expr {
        Expr::case(Expr::col(Column::IsCovered).eq(true), Expr::col(column))
            .finally(Expr::val(value))
            .into()
    };
    let statement = Query::update()
        .table(concept_element::Entity)
        .value(
            Column::CoveredAt,
            first(Column::CoveredAt, Some(covered_at).into()),
        )
        .value(
            Column::CoveredByNodeId,
            first(Column::CoveredByNodeId, Some(node_id.to_owned()).into()),
        )
        .value(Column::IsCovered, true)
        .and_where(Expr::col(Column::SessionId).eq(session_id))
        .and_where(Expr::col(Column::ElementId).eq(element_id))
        .returning(Query::returning().columns([
            Column::ElementId,
            Column::CoveredAt,
            Column::CoveredByNodeId,
        ]))
        .to_owned();
    backend.build(&statement)
}

/// A statement that fails (NOT NULL on `label`) exactly when the session
/// has no such element, so that a multi-statement write stops there before
/// anything commits. It inserts nothing otherwise.
///
/// # Errors
/// [`Error::InvalidInput`] if the statement cannot be built.
pub(crate) fn element_guard(
    backend: DbBackend,
    session_id: &SessionId,
    element_id: &ElementId,
) -> Result<Statement> {
    static SQL: CachedSql = sql_cache::new();
    let sql = try_cached(backend, &SQL, || {
        build_element_guard(backend, session_id, element_id).map(|built| built.sql)
    })?;
    // In the order of the built text's placeholders (a unit test compares).
    let values: Vec<sea_orm::Value> = vec![
        new_id().into(),
        session_id.into(),
        element_id.into(),
        Option::<String>::None.into(),
        1.into(),
        session_id.into(),
        element_id.into(),
    ];
    Ok(Statement::from_sql_and_values(backend, sql, values))
}

/// [`element_guard`] built through sea-query: the text it caches.
pub(crate) fn build_element_guard(
    backend: DbBackend,
    session_id: &SessionId,
    element_id: &ElementId,
) -> Result<Statement> {
    use concept_element::Column;
    let exists = Query::select()
        .expr(Expr::val(1))
        .from(concept_element::Entity)
        .and_where(Expr::col(Column::SessionId).eq(session_id))
        .and_where(Expr::col(Column::ElementId).eq(element_id))
        .to_owned();
    let guard = Query::insert()
        .into_table(concept_element::Entity)
        .columns([
            Column::Id,
            Column::SessionId,
            Column::ElementId,
            Column::Label,
        ])
        .select_from(
            Query::select()
                .exprs([
                    Expr::val(new_id()),
                    Expr::val(session_id),
                    Expr::val(element_id),
                    Expr::val(Option::<String>::None),
                ])
                .and_where(Expr::exists(exists).not())
                .to_owned(),
        )
        .map_err(|e| Error::InvalidInput(e.to_string()))?
        .to_owned();
    Ok(backend.build(&guard))
}

async fn find_element(
    conn: &impl ConnectionTrait,
    session_id: &SessionId,
    element_id: &ElementId,
) -> Result<concept_element::Model> {
    concept_element::Entity::find()
        .filter(concept_element::Column::SessionId.eq(session_id))
        .filter(concept_element::Column::ElementId.eq(element_id))
        .one(conn)
        .await?
        .ok_or_else(|| element_not_found(session_id, element_id))
}

pub(crate) fn element_not_found(session_id: &SessionId, element_id: &ElementId) -> Error {
    tracing::debug!(%session_id, %element_id, "no such concept element");
    Error::NotFound {
        entity: EntityKind::ConceptElement,
        id: element_id.to_string(),
    }
}

/// The element id an insert of `models` ran into: the first one the call
/// repeats, else the first one `existing` (the session's ids) holds.
pub(crate) fn duplicate_element(
    session_id: &SessionId,
    models: &[concept_element::Model],
    existing: &[ElementId],
) -> Option<ConflictKind> {
    let repeated = models.iter().enumerate().find_map(|(i, m)| {
        models[..i]
            .iter()
            .any(|earlier| earlier.element_id == m.element_id)
            .then_some(&m.element_id)
    });
    let taken = || {
        models
            .iter()
            .map(|m| &m.element_id)
            .find(|id| existing.contains(id))
    };
    repeated
        .or_else(taken)
        .map(|element_id| ConflictKind::DuplicateElement {
            session_id: session_id.to_string(),
            element_id: element_id.to_string(),
        })
}
