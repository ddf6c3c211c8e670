//! A session's per-turn state as the Python pipeline keeps it: the turn
//! count, the velocity of both graphs, the focus history, the node-state
//! tracker, and the shallow merge into its config.

use entity::session::{self, SessionStatus};
use entity::{FocusHistory, SessionId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel, QuerySelect, prelude::Json,
};
use serde::Deserialize;

use crate::error::{Error, Result};

use super::placeholders::{Placeholders, greatest};
use super::sessions::{SessionRepository, not_found};
use super::turn_extras::{check_count, check_peak};
use super::{check_json_depth, check_json_depth_at, check_json_object, now_utc};
use crate::database::StatementBatch;

/// Fails unless every value of `patch` nests shallow enough to be read
/// back once merged (one level below the config object).
pub(crate) fn check_patch(patch: &serde_json::Map<String, Json>) -> Result<()> {
    // Each value lands one level down, inside the config object.
    for (key, value) in patch {
        check_json_depth_at(&format!("config key `{key}`"), value, 2)?;
    }
    Ok(())
}

/// The shallow merge of `patch` into the session's config as ONE
/// statement: PostgreSQL's `config || patch` (jsonb's concatenation is
/// exactly a one-level merge), SQLite's `json_set` of each key. `None` on
/// SQLite when a key holds a character a JSON path cannot quote (`"`,
/// `\`, a control character): the caller merges in a transaction then.
/// A config that is not an object is replaced by the patch, as the
/// transaction path does.
pub(crate) fn config_merge(
    backend: sea_orm::DbBackend,
    session_id: &SessionId,
    patch: &serde_json::Map<String, Json>,
    now: chrono::NaiveDateTime,
    returning: bool,
) -> Option<sea_orm::Statement> {
    let mut sql = Placeholders::new(backend);
    let merged = merged_config(&mut sql, patch)?;
    let greatest = greatest(backend);
    let now = sql.bind(now);
    let session = sql.bind(session_id.as_str());
    let returning = if returning { " RETURNING *" } else { "" };
    Some(sea_orm::Statement::from_sql_and_values(
        backend,
        format!(
            r#"UPDATE "sessions" SET "config" = {merged}, "updated_at" = {greatest}("updated_at", {now}) WHERE "id" = {session}{returning}"#
        ),
        sql.into_values(),
    ))
}

/// The SQL expression of the session's config with `patch` merged in (see
/// [`config_merge`]), its values bound through `sql`; `None` on SQLite for
/// a key a JSON path cannot quote.
pub(crate) fn merged_config(
    sql: &mut Placeholders,
    patch: &serde_json::Map<String, Json>,
) -> Option<String> {
    use sea_orm::{DbBackend, Value};
    if sql.backend() == DbBackend::Postgres {
        let patch = sql.bind(Value::from(Json::Object(patch.clone()).to_string()));
        return Some(format!(
            r#"CASE WHEN jsonb_typeof("config") = 'object' THEN "config" ELSE '{{}}'::jsonb END || {patch}::jsonb"#
        ));
    }
    if patch
        .keys()
        .any(|k| k.chars().any(|c| c == '"' || c == '\\' || c.is_control()))
    {
        return None;
    }
    let base = r#"CASE WHEN json_type("config") = 'object' THEN "config" ELSE '{}' END"#;
    if patch.is_empty() {
        return Some(base.to_owned());
    }
    let mut merged = format!("json_set({base}");
    for (key, value) in patch {
        let path = sql.bind(Value::from(format!("$.\"{key}\"")));
        let value = sql.bind(Value::from(value.to_string()));
        merged.push_str(&format!(", {path}, json({value})"));
    }
    merged.push(')');
    Some(merged)
}

/// What the Python pipeline's `update_state` writes after each turn
/// (`SessionState` less what it never stores, `last_strategy` and `mode`).
///
/// Deserialises from JSON with the fields' names; `focus_history` may be
/// left out (`[]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionState {
    /// Turns completed (not negative).
    pub turn_count: i32,
    /// The highest surface-graph velocity so far (finite, not negative).
    pub surface_velocity_peak: f64,
    /// Surface nodes after this turn (not negative).
    pub prev_surface_node_count: i32,
    /// The highest canonical-graph velocity so far (finite, not negative).
    pub canonical_velocity_peak: f64,
    /// Canonical slots after this turn (not negative).
    pub prev_canonical_node_count: i32,
    /// The focus of every turn so far, replacing what was stored.
    #[serde(default)]
    pub focus_history: FocusHistory,
}

impl SessionState {
    /// The state a session has now.
    #[must_use]
    pub fn of(session: &session::Model) -> Self {
        Self {
            turn_count: session.turn_count,
            surface_velocity_peak: session.surface_velocity_peak,
            prev_surface_node_count: session.prev_surface_node_count,
            canonical_velocity_peak: session.canonical_velocity_peak,
            prev_canonical_node_count: session.prev_canonical_node_count,
            focus_history: session.focus_history.clone(),
        }
    }

    fn check(&self) -> Result<()> {
        check_count("turn count", self.turn_count)?;
        check_count("previous surface node count", self.prev_surface_node_count)?;
        check_count(
            "previous canonical node count",
            self.prev_canonical_node_count,
        )?;
        check_peak("surface velocity peak", self.surface_velocity_peak)?;
        check_peak("canonical velocity peak", self.canonical_velocity_peak)?;
        if let Some(entry) = self.focus_history.iter().find(|e| e.turn < 0) {
            return Err(Error::InvalidInput(format!(
                "focus history entry of turn {} is negative",
                entry.turn
            )));
        }
        Ok(())
    }
}

impl SessionRepository {
    /// Stores the pipeline's state after a turn: the turn count, both
    /// velocity peaks and previous counts, and the focus history (replaced
    /// whole), in one statement, and returns the session. As the Python
    /// `update_state`, the turn count is set as given (the pipeline passes
    /// the turn just completed); `record_turn` instead never lowers it.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] for a negative count or turn, or a velocity
    /// that is negative, NaN or infinite.
    #[tracing::instrument(skip(self, state), fields(turn_count = state.turn_count))]
    pub async fn update_state(
        &self,
        session_id: &SessionId,
        state: SessionState,
    ) -> Result<session::Model> {
        state.check()?;
        self.update_columns(session_id, move |active| {
            active.turn_count = Set(state.turn_count);
            active.surface_velocity_peak = Set(state.surface_velocity_peak);
            active.prev_surface_node_count = Set(state.prev_surface_node_count);
            active.canonical_velocity_peak = Set(state.canonical_velocity_peak);
            active.prev_canonical_node_count = Set(state.prev_canonical_node_count);
            active.focus_history = Set(state.focus_history);
        })
        .await
    }

    /// The node-state tracker the pipeline saved for the session, if it
    /// saved one.
    ///
    /// Deliberate difference: the Python call returns `None` for a session
    /// that does not exist too; here that is [`Error::NotFound`], so that
    /// a mistyped id is not taken for a fresh tracker.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session.
    #[tracing::instrument(skip(self))]
    pub async fn node_tracker_state(&self, session_id: &SessionId) -> Result<Option<Json>> {
        let state: Option<Option<Json>> = session::Entity::find_by_id(session_id)
            .select_only()
            .column(session::Column::NodeTrackerState)
            .into_tuple()
            .one(self.db().connection())
            .await?;
        state.ok_or_else(|| not_found(session_id))
    }

    /// Replaces the saved node-state tracker (any JSON document: its shape
    /// is the pipeline's).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] for a document nested deeper than JSON
    /// allows to read back.
    #[tracing::instrument(skip(self, state))]
    pub async fn set_node_tracker_state(&self, session_id: &SessionId, state: Json) -> Result<()> {
        check_json_depth("the node tracker state", &state)?;
        self.update_columns(session_id, move |active| {
            active.node_tracker_state = Set(Some(state));
        })
        .await
        .map(|_| ())
    }

    /// Merges `patch` into the session's config, one level deep, as the
    /// Python `update_metadata` does: each key of `patch` replaces the
    /// config's value of that key (nested objects are replaced, not
    /// merged); other keys stay. Runs in one write transaction, so two
    /// merges at once never lose each other's keys (the Python version
    /// reads and writes on separate statements and can). Returns the
    /// merged config.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such session;
    /// [`Error::InvalidInput`] when the merged config nests deeper than
    /// JSON allows to read back.
    #[tracing::instrument(skip(self, patch), fields(keys = patch.len()))]
    pub async fn merge_config(
        &self,
        session_id: &SessionId,
        patch: serde_json::Map<String, Json>,
    ) -> Result<Json> {
        check_patch(&patch)?;
        if let Some(statement) = config_merge(
            self.db().backend().into(),
            session_id,
            &patch,
            now_utc(),
            true,
        ) {
            let rows = self
                .db()
                .write_batch(StatementBatch::of_returning_at_most_one(statement))
                .await?;
            return match rows.first() {
                Some(row) => Ok(super::rows::session_of(row)?.config),
                None => Err(not_found(session_id)),
            };
        }
        let txn = self.db().begin_write().await?;
        let current = session::Entity::find_by_id(session_id)
            .lock_exclusive()
            .one(&*txn)
            .await?
            .ok_or_else(|| not_found(session_id))?;
        let mut config = match current.config.clone() {
            Json::Object(map) => map,
            // A config another program stored as a non-object is replaced
            // by the merge, as Python's `dict.update` on `{}` would.
            _ => serde_json::Map::new(),
        };
        config.extend(patch);
        let config = Json::Object(config);
        check_json_object("the merged config", &config)?;
        let updated_at = now_utc().max(current.updated_at);
        let mut active = current.into_active_model();
        active.config = Set(config.clone());
        active.updated_at = Set(updated_at);
        active.update(&*txn).await?;
        txn.commit().await?;
        Ok(config)
    }

    /// The active sessions, newest first (the Python `list_active`).
    ///
    /// # Errors
    /// The classified database error.
    #[tracing::instrument(skip(self))]
    pub async fn list_active(&self) -> Result<Vec<session::Model>> {
        self.list(Some(SessionStatus::Active), super::MAX_ROW_LIMIT)
            .await
    }
}
