//! A turn's context on SQLite, read on a direct connection (see
//! `database::direct`): the same queries the SeaORM path runs, their SQL
//! built once, rows decoded straight into the entity models.

use std::sync::OnceLock;

use entity::{SessionId, kg_edge, kg_node, scoring_history, session, utterance};
use sea_orm::{DbBackend, EntityTrait, QueryTrait};

use super::graph::{current_nodes_query, session_edges_query};
use super::scoring::history_query;
use super::turns::TurnContext;
use super::utterances::last_utterances_query;
use crate::database::direct::{decode, query_rows};
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
    conn: &rusqlite::Connection,
    session_id: &SessionId,
    recent_utterances: u64,
) -> Result<Option<TurnContext>> {
    let sql = sql();
    let id: &dyn rusqlite::ToSql = &session_id.as_str();
    let Some(session) =
        query_rows::<session::Entity, _>(conn, &sql.session, &[id], |row| decode::session(row))?
            .into_iter()
            .next()
    else {
        return Ok(None);
    };
    // Clamped to i64::MAX, as the SeaORM path's `row_limit`.
    let limit = i64::try_from(super::row_limit(recent_utterances)).unwrap_or(i64::MAX);
    let mut recent =
        query_rows::<utterance::Entity, _>(conn, &sql.utterances, &[id, &limit], |row| {
            decode::utterance(row)
        })?;
    recent.reverse();
    Ok(Some(TurnContext {
        session,
        current_nodes: query_rows::<kg_node::Entity, _>(conn, &sql.nodes, &[id], |row| {
            decode::node(row)
        })?,
        edges: query_rows::<kg_edge::Entity, _>(conn, &sql.edges, &[id], |row| decode::edge(row))?,
        recent_utterances: recent,
        scoring_history: query_rows::<scoring_history::Entity, _>(
            conn,
            &sql.scores,
            &[id],
            |row| decode::scores(row),
        )?,
    }))
}
