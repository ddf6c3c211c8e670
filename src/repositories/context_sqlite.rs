//! A turn's context on SQLite, read on a direct connection (see
//! `database::direct`): the same queries the SeaORM path runs, their SQL
//! built once, rows decoded straight into the entity models.

use std::sync::OnceLock;

use entity::{SessionId, kg_edge, kg_node, scoring_history, session, utterance};
use sea_orm::{DbBackend, EntityTrait, QueryTrait};

use super::graph::{current_nodes_query, session_edges_query};
use super::rows;
use super::scoring::history_query;
use super::turns::TurnContext;
use super::utterances::last_utterances_query;
use crate::database::direct::DirectRead;
use crate::error::Result;

/// The SQL of the five queries, built by the same builders as the SeaORM
/// path's (so the two cannot drift apart), once per process.
struct ContextSql {
    session: String,
    nodes: String,
    edges: String,
    utterances: String,
    scores: String,
}

fn sql() -> &'static ContextSql {
    static SQL: OnceLock<ContextSql> = OnceLock::new();
    SQL.get_or_init(|| {
        let backend = DbBackend::Sqlite;
        ContextSql {
            session: session::Entity::find_by_id(SessionId::from(""))
                .build(backend)
                .sql,
            nodes: current_nodes_query(backend, &SessionId::from(""))
                .build(backend)
                .sql,
            edges: session_edges_query(backend, &SessionId::from(""))
                .build(backend)
                .sql,
            utterances: last_utterances_query(backend, &SessionId::from(""), 1)
                .build(backend)
                .sql,
            scores: history_query(&SessionId::from("")).build(backend).sql,
        }
    })
}

/// The context of `session_id`, `None` when the session does not exist.
/// The caller runs it in one read transaction.
pub(super) fn read(
    conn: &DirectRead<'_>,
    session_id: &SessionId,
    recent_utterances: u64,
) -> Result<Option<TurnContext>> {
    let sql = sql();
    let id = || sea_orm::Value::from(session_id.as_str());
    let Some(session) = conn
        .rows::<session::Entity, _>(&sql.session, &[id()], |row| rows::session(row))?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    // Clamped to i64::MAX, as the SeaORM path's `row_limit`.
    let limit = i64::try_from(super::row_limit(recent_utterances)).unwrap_or(i64::MAX);
    let mut recent = conn.rows::<utterance::Entity, _>(
        &sql.utterances,
        &[id(), sea_orm::Value::from(limit)],
        |row| rows::utterance(row),
    )?;
    recent.reverse();
    Ok(Some(TurnContext {
        session,
        current_nodes: conn
            .rows::<kg_node::Entity, _>(&sql.nodes, &[id()], |row| rows::node(row))?,
        edges: conn.rows::<kg_edge::Entity, _>(&sql.edges, &[id()], |row| rows::edge(row))?,
        recent_utterances: recent,
        scoring_history: conn
            .rows::<scoring_history::Entity, _>(&sql.scores, &[id()], |row| rows::scores(row))?,
    }))
}
