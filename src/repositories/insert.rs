//! INSERTs of whole rows whose SQL is built once per entity and backend:
//! a turn inserts a dozen rows of four entities, and building the same
//! SQL text through sea-query for each of them was a measurable part of
//! a turn's cost. The text is what SeaORM builds for the same row
//! (checked by the tests below); only the values are new each time.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use sea_orm::{
    DbBackend, EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryTrait, Statement, Values,
};

/// The most rows of a multi-row INSERT whose SQL is kept.
const MAX_CACHED_ROWS: usize = 32;

/// SQL by row type, backend and row count.
type SqlCache = RwLock<HashMap<(TypeId, u8, usize), Arc<str>>>;

fn backend_key(backend: DbBackend) -> u8 {
    match backend {
        DbBackend::MySql => 0,
        DbBackend::Postgres => 1,
        DbBackend::Sqlite => 2,
        _ => 3,
    }
}

/// `INSERT INTO <table> (<every column>) VALUES (…)` for `model`.
pub(crate) fn insert_row<M>(backend: DbBackend, model: &M) -> Statement
where
    M: ModelTrait + Clone + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + 'static,
{
    insert_rows(backend, std::slice::from_ref(model))
}

/// One `INSERT INTO <table> (<every column>) VALUES (…), (…), …` for
/// `models` (at least one).
pub(crate) fn insert_rows<M>(backend: DbBackend, models: &[M]) -> Statement
where
    M: ModelTrait + Clone + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> + 'static,
{
    static CACHE: OnceLock<SqlCache> = OnceLock::new();
    let cache = CACHE.get_or_init(SqlCache::default);
    let key = (TypeId::of::<M>(), backend_key(backend), models.len());
    let cached = cache
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .cloned();
    let sql = match cached {
        Some(sql) => sql,
        None => {
            let built = <M::Entity as EntityTrait>::insert_many(
                models.iter().map(|m| m.clone().into_active_model()),
            )
            .build(backend)
            .sql;
            let sql: Arc<str> = built.into();
            // Row counts are the caller's: only the usual ones are kept, so
            // that the cache stays small whatever turns come.
            if models.len() <= MAX_CACHED_ROWS {
                cache
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, Arc::clone(&sql));
            }
            sql
        }
    };
    let values = models
        .iter()
        .flat_map(|model| {
            <M::Entity as EntityTrait>::Column::iter().map(move |column| model.get(column))
        })
        .collect();
    Statement::from_sql_and_values(backend, sql.as_ref(), Values(values))
}

#[cfg(test)]
mod tests {
    use entity::{kg_edge, kg_node, scoring_history, utterance};
    use sea_orm::{DbBackend, EntityTrait, IntoActiveModel, QueryTrait};
    use serde_json::json;

    use super::{insert_row, insert_rows};
    use crate::repositories::graph::{NewEdge, NewNode};
    use crate::repositories::scoring::{NewScores, TurnScores};
    use crate::repositories::utterances::NewUtterance;

    fn same_as_seaorm<M>(model: &M)
    where
        M: sea_orm::ModelTrait
            + Clone
            + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel>
            + 'static,
    {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            // Twice: the second comes from the cache.
            for _ in 0..2 {
                let expected =
                    <M::Entity as EntityTrait>::insert(model.clone().into_active_model())
                        .build(backend);
                let cached = insert_row(backend, model);
                assert_eq!(cached.sql, expected.sql);
                assert_eq!(cached.values, expected.values);
                let three = [model.clone(), model.clone(), model.clone()];
                let expected = <M::Entity as EntityTrait>::insert_many(
                    three.iter().map(|m| m.clone().into_active_model()),
                )
                .build(backend);
                let cached = insert_rows(backend, &three);
                assert_eq!(cached.sql, expected.sql);
                assert_eq!(cached.values, expected.values);
            }
        }
    }

    #[test]
    fn a_cached_insert_is_the_statement_seaorm_builds() -> crate::Result<()> {
        let utterance = NewUtterance {
            session_id: "s".into(),
            turn_number: 3,
            speaker: utterance::Speaker::User,
            text: "it's \"calm\"".into(),
            discourse_markers: vec!["because".into()],
        }
        .into_model();
        same_as_seaorm(&utterance);
        let node: kg_node::Model = NewNode {
            session_id: "s".into(),
            label: "calm".into(),
            node_type: "consequence".into(),
            confidence: 0.8,
            properties: json!({"turn": 3}),
            source_utterance_ids: vec![utterance.id.clone()],
        }
        .into_model()?;
        same_as_seaorm(&node);
        let edge: kg_edge::Model = NewEdge {
            session_id: "s".into(),
            source_node_id: node.id.clone(),
            target_node_id: node.id.clone(),
            edge_type: kg_edge::EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({}),
            source_utterance_ids: vec![],
        }
        .into_model()?;
        same_as_seaorm(&edge);
        let scores: scoring_history::Model = NewScores {
            session_id: "s".into(),
            turn_number: 3,
            scores: TurnScores {
                coverage_score: 0.3,
                depth_score: 0.5,
                saturation_score: 0.1,
                novelty_score: None,
                richness_score: Some(1.0),
                strategy_selected: "deepen".into(),
                strategy_reasoning: None,
                scorer_details: json!({"depth": 2}),
            },
        }
        .into_model()?;
        same_as_seaorm(&scores);
        Ok(())
    }
}
