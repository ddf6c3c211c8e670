//! What a turn writes beyond the transcript, graph, scores and coverage,
//! in the same transaction as the rest of it (`record_turn`): the session's
//! velocity and focus, its nodes' slot mappings, the canonical edges its
//! edges feed, and its qualitative signals. The same meaning as the staged
//! calls (`update_state`, `map_surface_to_slot`,
//! `add_or_update_canonical_edge`, `SignalRepository::save`), as
//! statements appended to the turn's batch.

use entity::canonical_slot;
use entity::slot_mapping;
use entity::{FocusEntry, NodeId, SessionId, SlotId};
use sea_orm::sea_query::OnConflict;

use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryFilter,
    QuerySelect, QueryTrait, Statement, Value,
};
use serde::Deserialize;

use crate::error::{Error, Result};

use super::canonical::{prefixed_id, recount_support};
use super::check_fraction;
use super::placeholders::{Placeholders, greatest};
use super::signals::{NewSignals, Signals, insert_unless_saved, signal_row};
use super::sql_cache::{self, CachedSql, cached};
use super::turns::NodeRef;

/// The graphs' velocity after the turn, as the Python scoring stage
/// computes it. Set only when the turn is the session's newest (a turn
/// recorded late does not move it back).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnVelocity {
    /// The highest surface-graph velocity so far (finite, not negative).
    pub surface_velocity_peak: f64,
    /// Surface nodes after the turn (not negative).
    pub prev_surface_node_count: i32,
    /// The highest canonical-graph velocity so far (finite, not negative).
    pub canonical_velocity_peak: f64,
    /// Canonical slots after the turn (not negative).
    pub prev_canonical_node_count: i32,
}

/// A node of the turn mapped to a canonical slot of the session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnSlotMapping {
    /// The node: one the turn creates, or an existing one.
    pub node: NodeRef,
    /// The slot.
    pub slot_id: SlotId,
    /// The similarity it was mapped at, in [0, 1].
    pub similarity_score: f64,
}

/// One of the turn's edges added to the canonical edge between two slots.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnCanonicalEdge {
    /// Where the canonical edge starts.
    pub source_slot_id: SlotId,
    /// Where it ends.
    pub target_slot_id: SlotId,
    /// Its type (free text).
    pub edge_type: String,
    /// The turn's edge it gains, by its index in the turn's `edges`.
    pub surface_edge: usize,
}

/// The turn's qualitative signals (kept out, as a second save is, when the
/// turn has some already).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnSignals {
    /// The model that read them.
    pub llm_model: Option<String>,
    /// How long the reading took, in milliseconds (not negative).
    pub extraction_latency_ms: Option<i64>,
    /// What went wrong while reading.
    pub extraction_errors: Vec<String>,
    /// The signals.
    pub signals: Signals,
}

/// Fails unless `peak` is a finite number ≥ 0 (and not −0).
pub(crate) fn check_peak(what: &str, peak: f64) -> Result<()> {
    if peak.is_finite() && peak >= 0.0 && peak.is_sign_positive() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {peak} is not a finite number ≥ 0"
        )))
    }
}

/// Fails if `count` is negative.
pub(crate) fn check_count(what: &str, count: i32) -> Result<()> {
    if count < 0 {
        Err(Error::InvalidInput(format!("{what} {count} is negative")))
    } else {
        Ok(())
    }
}

impl TurnVelocity {
    fn check(&self) -> Result<()> {
        check_peak("surface velocity peak", self.surface_velocity_peak)?;
        check_peak("canonical velocity peak", self.canonical_velocity_peak)?;
        check_count("previous surface node count", self.prev_surface_node_count)?;
        check_count(
            "previous canonical node count",
            self.prev_canonical_node_count,
        )
    }
}

/// The extras of one turn, checked, with node references resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtrasPlan {
    velocity: Option<TurnVelocity>,
    focus: Option<FocusEntry>,
    tracker: Option<serde_json::Value>,
    config_patch: Option<serde_json::Map<String, serde_json::Value>>,
    mappings: Vec<(NodeId, SlotId, f64)>,
    /// (source slot, target slot, type, surface edge id).
    canonical_edges: Vec<(SlotId, SlotId, String, String)>,
    signals: Option<entity::qualitative_signal::Model>,
}

/// What the turn's extras are made from.
pub(crate) struct Extras {
    pub(crate) velocity: Option<TurnVelocity>,
    pub(crate) focus: Option<FocusEntry>,
    pub(crate) node_tracker_state: Option<serde_json::Value>,
    pub(crate) config_patch: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) slot_mappings: Vec<TurnSlotMapping>,
    pub(crate) canonical_edges: Vec<TurnCanonicalEdge>,
    pub(crate) signals: Option<TurnSignals>,
}

impl ExtrasPlan {
    /// Checks `extras` and resolves their references: `node` a node
    /// reference, `edge_id` the id of the turn's edge `i`.
    pub(crate) fn new(
        extras: Extras,
        session_id: &SessionId,
        turn_number: i32,
        mut node: impl FnMut(NodeRef) -> Result<NodeId>,
        edge_id: impl Fn(usize) -> Option<String>,
    ) -> Result<Self> {
        if let Some(velocity) = &extras.velocity {
            velocity.check()?;
        }
        if let Some(tracker) = &extras.node_tracker_state {
            super::check_json_depth("the node tracker state", tracker)?;
        }
        if let Some(patch) = &extras.config_patch {
            super::session_state::check_patch(patch)?;
        }
        if let Some(focus) = &extras.focus
            && focus.turn < 0
        {
            return Err(Error::InvalidInput(format!(
                "focus entry of turn {} is negative",
                focus.turn
            )));
        }
        let mappings = extras
            .slot_mappings
            .into_iter()
            .map(|m| {
                check_fraction("similarity score", m.similarity_score)?;
                Ok((node(m.node)?, m.slot_id, m.similarity_score))
            })
            .collect::<Result<Vec<_>>>()?;
        let canonical_edges = extras
            .canonical_edges
            .into_iter()
            .map(|e| {
                let surface = edge_id(e.surface_edge).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "a canonical edge names the turn's edge {} but the turn has fewer",
                        e.surface_edge
                    ))
                })?;
                Ok((e.source_slot_id, e.target_slot_id, e.edge_type, surface))
            })
            .collect::<Result<Vec<_>>>()?;
        // The same canonical edge named twice for one surface edge counts
        // it once: after this, every surface edge the upserts add is new
        // to its canonical edge (it was created in this turn).
        let mut unique = Vec::with_capacity(canonical_edges.len());
        for edge in canonical_edges {
            if !unique.contains(&edge) {
                unique.push(edge);
            }
        }
        let canonical_edges = unique;
        let signals = extras
            .signals
            .map(|s| {
                signal_row(NewSignals {
                    session_id: session_id.clone(),
                    turn_number,
                    llm_model: s.llm_model,
                    extraction_latency_ms: s.extraction_latency_ms,
                    extraction_errors: s.extraction_errors,
                    signals: s.signals,
                })
            })
            .transpose()?;
        Ok(Self {
            velocity: extras.velocity,
            focus: extras.focus,
            tracker: extras.node_tracker_state,
            config_patch: extras.config_patch,
            mappings,
            canonical_edges,
            signals,
        })
    }

    /// Every slot the extras name, once.
    pub(crate) fn slots(&self) -> Vec<&SlotId> {
        let mut slots: Vec<&SlotId> = Vec::new();
        let named = self.mappings.iter().map(|(_, slot, _)| slot).chain(
            self.canonical_edges
                .iter()
                .flat_map(|(source, target, _, _)| [source, target]),
        );
        for slot in named {
            if !slots.contains(&slot) {
                slots.push(slot);
            }
        }
        slots
    }

    /// Whether the extras write the session's row.
    pub(crate) fn writes_session(&self) -> bool {
        self.velocity.is_some()
            || self.focus.is_some()
            || self.tracker.is_some()
            || self.config_patch.is_some()
    }

    /// The statements that write the extras, after the turn's own. With
    /// `progress`, the turn's progress (see [`Progress`]) is written by the
    /// extras' one UPDATE of the session instead of one of its own.
    pub(crate) fn statements(
        &self,
        backend: DbBackend,
        session_id: &SessionId,
        turn_number: i32,
        now: chrono::NaiveDateTime,
        progress: Option<Progress>,
    ) -> Result<Vec<Statement>> {
        let mut statements = Vec::new();
        let slots = self.slots();
        if !slots.is_empty() {
            statements.push(slot_guard(backend, session_id, &slots));
        }
        if self.writes_session() || progress.is_some() {
            statements.push(self.session_update(
                backend,
                session_id,
                turn_number,
                now,
                progress,
            )?);
        }
        if !self.mappings.is_empty() && backend == DbBackend::Postgres {
            // Every slot of the session locked, in id order, before the
            // mappings change: the recount below then starts after any
            // other writer of these slots committed, and sees its mappings
            // (READ COMMITTED). SQLite writes one transaction at a time.
            statements.push(Statement::from_sql_and_values(
                backend,
                r#"UPDATE "canonical_slots" SET "support_count" = "support_count" WHERE "id" IN (SELECT "id" FROM "canonical_slots" WHERE "session_id" = $1 ORDER BY "id" FOR UPDATE)"#,
                [Value::from(session_id.as_str())],
            ));
        }
        for (node_id, slot_id, similarity) in &self.mappings {
            let mapping = slot_mapping::Model {
                surface_node_id: node_id.clone(),
                canonical_slot_id: slot_id.clone(),
                similarity_score: *similarity,
                assigned_turn: turn_number,
                assigned_at: now,
            };
            statements.push(Statement::from_sql_and_values(
                backend,
                cached(backend, &MAPPING_UPSERT, || {
                    mapping_upsert(&mapping, backend).sql
                }),
                column_values(&mapping),
            ));
        }
        if !self.mappings.is_empty() {
            // A moved node's previous slot is not known here: every slot of
            // the session is counted again.
            statements.push(Statement::from_sql_and_values(
                backend,
                cached(backend, &RECOUNT, || {
                    backend
                        .build(&recount_support(
                            canonical_slot::Column::SessionId.eq(session_id),
                        ))
                        .sql
                }),
                [Value::from(session_id.as_str())],
            ));
        }
        for (source, target, edge_type, surface) in &self.canonical_edges {
            statements.push(canonical_edge_upsert(
                backend, session_id, source, target, edge_type, surface, now,
            ));
        }
        if let Some(signals) = &self.signals {
            statements.push(Statement::from_sql_and_values(
                backend,
                cached(backend, &SIGNALS_INSERT, || {
                    insert_unless_saved(signals.clone()).build(backend).sql
                }),
                column_values(signals),
            ));
        }
        Ok(statements)
    }

    /// One UPDATE of the session's row: the turn's progress when asked,
    /// the focus entry, the tracker state, the velocity (kept from a late
    /// turn) and the config merge. Every SET reads the row as it was
    /// before the statement; with the progress written separately before
    /// it, "this turn is the newest" reads `turn_count` as that left it.
    fn session_update(
        &self,
        backend: DbBackend,
        session_id: &SessionId,
        turn_number: i32,
        now: chrono::NaiveDateTime,
        progress: Option<Progress>,
    ) -> Result<Statement> {
        let mut sql = Placeholders::new(backend);
        let greatest = greatest(backend);
        let mut sets = Vec::new();
        // Numbered placeholders on both backends: the turn's number is used
        // several times.
        // Bound only where it is used: PostgreSQL is given as many values
        // as the statement names.
        let turn = if progress.is_some() || self.velocity.is_some() {
            sql.bind(turn_number)
        } else {
            String::new()
        };
        let newest = if progress.is_some() {
            format!(r#""turn_count" <= {turn}"#)
        } else {
            format!(r#""turn_count" = {turn}"#)
        };
        if let Some(Progress { coverage_score }) = progress {
            let coverage = sql.bind(coverage_score);
            let now = sql.bind(now);
            sets.push(format!(
                r#""coverage_score" = CASE WHEN {newest} THEN {coverage} ELSE "coverage_score" END"#
            ));
            sets.push(format!(
                r#""turn_count" = {greatest}("turn_count", {turn})"#
            ));
            sets.push(format!(r#""updated_at" = {greatest}("updated_at", {now})"#));
        }
        if let Some(focus) = &self.focus {
            let entry = serde_json::to_string(focus)
                .map_err(|err| Error::InvalidInput(format!("a focus entry: {err}")))?;
            let entry = sql.bind(entry);
            sets.push(match backend {
                DbBackend::Postgres => format!(
                    r#""focus_history" = "focus_history" || jsonb_build_array({entry}::jsonb)"#
                ),
                _ => format!(
                    r#""focus_history" = json_insert("focus_history", '$[#]', json({entry}))"#
                ),
            });
        }
        if let Some(tracker) = &self.tracker {
            // Replaced whatever the turn's order: the pipeline saves the
            // tracker it holds after each turn.
            // Written straight to text: a clone of a large tracker was a
            // visible part of the turn's cost.
            let text = serde_json::to_string(tracker)
                .map_err(|err| Error::InvalidInput(format!("the node tracker state: {err}")))?;
            let tracker = sql.bind(text);
            sets.push(match backend {
                DbBackend::Postgres => format!(r#""node_tracker_state" = {tracker}::jsonb"#),
                _ => format!(r#""node_tracker_state" = {tracker}"#),
            });
        }
        if let Some(velocity) = &self.velocity {
            for (column, value) in [
                (
                    "surface_velocity_peak",
                    Value::from(velocity.surface_velocity_peak),
                ),
                (
                    "prev_surface_node_count",
                    Value::from(velocity.prev_surface_node_count),
                ),
                (
                    "canonical_velocity_peak",
                    Value::from(velocity.canonical_velocity_peak),
                ),
                (
                    "prev_canonical_node_count",
                    Value::from(velocity.prev_canonical_node_count),
                ),
            ] {
                let value = sql.bind(value);
                sets.push(format!(
                    r#""{column}" = CASE WHEN {newest} THEN {value} ELSE "{column}" END"#
                ));
            }
        }
        if let Some(patch) = &self.config_patch {
            let merged = super::session_state::merged_config(&mut sql, patch).ok_or_else(|| {
                Error::InvalidInput(
                    "a config key holds `\"`, `\\` or a control character, which \
                     record_turn cannot merge on SQLite: merge it with \
                     SessionRepository::merge_config"
                        .into(),
                )
            })?;
            sets.push(format!(r#""config" = {merged}"#));
            if progress.is_none() {
                let now = sql.bind(now);
                sets.push(format!(r#""updated_at" = {greatest}("updated_at", {now})"#));
            }
        }
        let session = sql.bind(session_id.as_str());
        let (placeholders, values) = (sets.join(", "), sql.into_values());
        Ok(Statement::from_sql_and_values(
            backend,
            format!(r#"UPDATE "sessions" SET {placeholders} WHERE "id" = {session}"#),
            values,
        ))
    }
}

/// What a turn's progress writes to its session: `turn_count` becomes the
/// highest turn recorded, `coverage_score` is this turn's when it is the
/// newest, `updated_at` never goes back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    /// The turn's coverage.
    pub(crate) coverage_score: f64,
}

static MAPPING_UPSERT: CachedSql = sql_cache::new();
static RECOUNT: CachedSql = sql_cache::new();
static SIGNALS_INSERT: CachedSql = sql_cache::new();

/// A model's values in its entity's column order: the order of the
/// INSERT's columns SeaORM builds.
fn column_values<M: ModelTrait>(model: &M) -> Vec<Value> {
    <M::Entity as EntityTrait>::Column::iter()
        .map(|column| model.get(column))
        .collect()
}

fn mapping_upsert(mapping: &slot_mapping::Model, backend: DbBackend) -> Statement {
    slot_mapping::Entity::insert(mapping.clone().into_active_model())
        .on_conflict(
            OnConflict::column(slot_mapping::Column::SurfaceNodeId)
                .update_columns([
                    slot_mapping::Column::CanonicalSlotId,
                    slot_mapping::Column::SimilarityScore,
                    slot_mapping::Column::AssignedTurn,
                    slot_mapping::Column::AssignedAt,
                ])
                .to_owned(),
        )
        .build(backend)
}

/// A statement that fails (a NULL in `canonical_slots.id`, NOT NULL) unless
/// every slot of `slots` exists and belongs to the session: slots are
/// checked inside the turn's transaction, without a read before it; after
/// a failure, [`check_slots_of_session`] says which slot and why.
fn slot_guard(backend: DbBackend, session_id: &SessionId, slots: &[&SlotId]) -> Statement {
    let mut sql = Placeholders::new(backend);
    let session = sql.bind(session_id.as_str());
    let named: Vec<String> = slots.iter().map(|slot| sql.bind(slot.as_str())).collect();
    let (text, integer) = if backend == DbBackend::Postgres {
        ("NULL::text", "NULL::integer")
    } else {
        ("NULL", "NULL")
    };
    Statement::from_sql_and_values(
        backend,
        format!(
            r#"INSERT INTO "canonical_slots" ("id", "session_id", "slot_name", "node_type", "first_seen_turn") SELECT {text}, {text}, {text}, {text}, {integer} WHERE (SELECT COUNT(*) FROM "canonical_slots" WHERE "session_id" = {session} AND "id" IN ({named})) <> {count}"#,
            named = named.join(", "),
            count = slots.len(),
        ),
        sql.into_values(),
    )
}

/// Adds `surface` to the canonical edge (session, source, target, type),
/// creating it, in one statement; its support is its surface edges' count.
/// `surface` is an edge of this turn, so it is not in the list yet (the
/// staged `add_or_update_edge` checks that for an edge of any age); what
/// the upsert adds is counted without a search of the list.
fn canonical_edge_upsert(
    backend: DbBackend,
    session_id: &SessionId,
    source: &SlotId,
    target: &SlotId,
    edge_type: &str,
    surface: &str,
    now: chrono::NaiveDateTime,
) -> Statement {
    let id = prefixed_id("cedge_");
    let first = serde_json::to_string(&[surface]).unwrap_or_else(|_| "[]".to_owned());
    let mut values: Vec<Value> = vec![
        id.into(),
        session_id.as_str().into(),
        source.as_str().into(),
        target.as_str().into(),
        edge_type.into(),
        first.into(),
        now.into(),
    ];
    if backend != DbBackend::Postgres {
        // PostgreSQL appends EXCLUDED's one-element list instead.
        values.push(surface.into());
    }
    let sql = match backend {
        DbBackend::Postgres => {
            r#"INSERT INTO "canonical_edges" ("id", "session_id", "source_slot_id", "target_slot_id", "edge_type", "support_count", "surface_edge_ids", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5, 1, $6::jsonb, $7, $7) ON CONFLICT ("session_id", "source_slot_id", "target_slot_id", "edge_type") DO UPDATE SET "surface_edge_ids" = "canonical_edges"."surface_edge_ids" || EXCLUDED."surface_edge_ids", "support_count" = jsonb_array_length("canonical_edges"."surface_edge_ids") + 1, "updated_at" = GREATEST("canonical_edges"."updated_at", EXCLUDED."updated_at")"#
        }
        _ => {
            r#"INSERT INTO "canonical_edges" ("id", "session_id", "source_slot_id", "target_slot_id", "edge_type", "support_count", "surface_edge_ids", "created_at", "updated_at") VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?7) ON CONFLICT ("session_id", "source_slot_id", "target_slot_id", "edge_type") DO UPDATE SET "surface_edge_ids" = json_insert("canonical_edges"."surface_edge_ids", '$[#]', ?8), "support_count" = json_array_length("canonical_edges"."surface_edge_ids") + 1, "updated_at" = max("canonical_edges"."updated_at", excluded."updated_at")"#
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Fails unless every slot exists and belongs to `session_id` (slots never
/// change session, so this is checked before the write).
pub(crate) async fn check_slots_of_session(
    conn: &impl sea_orm::ConnectionTrait,
    slots: &[&SlotId],
    session_id: &SessionId,
) -> Result<()> {
    if slots.is_empty() {
        return Ok(());
    }
    let found: Vec<(SlotId, SessionId)> = canonical_slot::Entity::find()
        .select_only()
        .column(canonical_slot::Column::Id)
        .column(canonical_slot::Column::SessionId)
        .filter(canonical_slot::Column::Id.is_in(slots.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    for slot in slots {
        match found.iter().find(|(id, _)| id == *slot) {
            None => {
                return Err(Error::NotFound {
                    entity: crate::error::EntityKind::Slot,
                    id: slot.to_string(),
                });
            }
            Some((_, owner)) if owner != session_id => {
                return Err(Error::SessionMismatch(format!(
                    "slot {slot} belongs to session {owner}, not {session_id}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    /// The numbers of the `?n` / `$n` placeholders in `sql`, each once.
    fn placeholders(sql: &str) -> std::collections::BTreeSet<usize> {
        let bytes = sql.as_bytes();
        let mut found = std::collections::BTreeSet::new();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'?' || *b == b'$' {
                let digits: String = sql[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse() {
                    found.insert(n);
                }
            }
        }
        found
    }

    /// Fails unless `statement` names placeholders 1 to n for its n values.
    fn assert_binds_what_it_names(statement: &Statement, context: &str) {
        let bound = statement.values.as_ref().map_or(0, |v| v.0.len());
        assert_eq!(
            placeholders(&statement.sql),
            (1..=bound).collect(),
            "{context}: {}",
            statement.sql
        );
    }

    /// Every hand-written statement of the extras uses each value it binds,
    /// and binds each placeholder it uses, whatever the extras hold:
    /// PostgreSQL refuses a statement whose values and placeholders differ.
    #[test]
    fn every_bound_value_has_its_placeholder_for_every_shape_of_extras() {
        let session = SessionId::from("s");
        let now = chrono::NaiveDate::from_ymd_opt(2026, 3, 12)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("a time");
        let full = ExtrasPlan {
            velocity: Some(TurnVelocity {
                surface_velocity_peak: 1.0,
                prev_surface_node_count: 2,
                canonical_velocity_peak: 3.0,
                prev_canonical_node_count: 4,
            }),
            focus: Some(FocusEntry {
                turn: 1,
                node_id: "n".into(),
                label: "l".into(),
                strategy: "deepen".into(),
            }),
            tracker: Some(serde_json::json!({"states": {}})),
            config_patch: serde_json::json!({"a": 1, "b": [2]}).as_object().cloned(),
            mappings: vec![],
            canonical_edges: vec![(
                SlotId::from("slot_a"),
                SlotId::from("slot_b"),
                "leads_to".into(),
                "e".into(),
            )],
            signals: None,
        };
        for shape in 0..16u8 {
            let plan = ExtrasPlan {
                velocity: full.velocity.filter(|_| shape & 1 != 0),
                focus: full.focus.clone().filter(|_| shape & 2 != 0),
                tracker: full.tracker.clone().filter(|_| shape & 4 != 0),
                config_patch: full.config_patch.clone().filter(|_| shape & 8 != 0),
                ..full.clone()
            };
            for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
                let progress = [
                    None,
                    Some(Progress {
                        coverage_score: 0.5,
                    }),
                ];
                for progress in progress {
                    if !plan.writes_session() && progress.is_none() {
                        continue;
                    }
                    let statement = plan
                        .session_update(backend, &session, 3, now, progress)
                        .expect("the update");
                    assert_binds_what_it_names(
                        &statement,
                        &format!("{backend:?}, shape {shape}, {progress:?}"),
                    );
                }
                let slots = plan.slots();
                for statement in [
                    slot_guard(backend, &session, &slots),
                    canonical_edge_upsert(
                        backend,
                        &session,
                        &SlotId::from("slot_a"),
                        &SlotId::from("slot_b"),
                        "leads_to",
                        "e",
                        now,
                    ),
                ] {
                    assert_binds_what_it_names(&statement, &format!("{backend:?}"));
                }
            }
        }
    }
}
