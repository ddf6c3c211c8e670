//! Brings the schema to the Python system's newest shape (`schema.sql` at
//! `acc4088`), keeping what this module already had: the six tables, with
//! `concept_elements` and the coverage columns.
//!
//! - `sessions` gains the node-state tracker (`node_tracker_state`, JSON or
//!   NULL), the velocity columns (`surface_velocity_peak`,
//!   `prev_surface_node_count`, `canonical_velocity_peak`,
//!   `prev_canonical_node_count`) and `focus_history` (a JSON list);
//! - `kg_nodes` gains `stance` (−1, 0 or 1), `embedding` (the bytes of 384
//!   little-endian float32, `bytea` on PostgreSQL) and `source_quotes` (a
//!   JSON list of verbatim quotes);
//! - four tables are created: `canonical_slots`, `surface_to_slot_mapping`,
//!   `canonical_edges` (the dual graph) and `qualitative_signals`, with the
//!   Python names, keys, cascades, defaults and UNIQUE constraints;
//! - `scoring_history.coverage_score` becomes nullable: the newer Python
//!   system dropped the column and its insert leaves it out. NULL means
//!   "the writer did not score coverage"; a default of 0.0 would have
//!   claimed a coverage nobody measured. This module's own writes always
//!   set it. On SQLite that is a table rebuild (a NOT NULL cannot be
//!   altered), every row and index kept.
//!
//! - on SQLite, the nullable JSON columns of the first migration
//!   (`utterances.discourse_markers`, `kg_nodes.properties`,
//!   `kg_edges.properties`, `scoring_history.scorer_details`) had
//!   `CHECK (json_valid(col))`, which refuses NULL under SQLite before
//!   3.45 (`json_valid(NULL)` was 0; it is NULL since, which passes): the
//!   newest Python system, on its system SQLite, writes `scorer_details`
//!   NULL and was refused. Their CHECK becomes `col IS NULL OR
//!   json_valid(col)`, the same under every SQLite. Those four tables are
//!   rebuilt (the table-rebuild step), `kg_nodes` with its new columns.
//!
//! New columns are added at the end of their tables, where the Python
//! system's own `ALTER TABLE … ADD COLUMN` put them; the readers find
//! columns by name. Deliberate differences from `schema.sql`: SQLite JSON
//! columns carry `CHECK (json_valid(..))` like the others here, new
//! timestamp columns default to the millisecond UTC form the module keeps
//! and on PostgreSQL carry the finite-timestamp CHECK of migration 5, and
//! `idx_kg_nodes_stance` (an index of the whole table on a three-valued
//! column, which no query here uses) is not created.
//!
//! `down` drops the four tables and the new columns, and refuses —
//! changing nothing — while a scoring row has no coverage score.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::sqlite_rebuild::{Indexes, Rebuild, rebuild_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables this migration creates, parents first.
pub const NEW_TABLES: [&str; 4] = [
    "canonical_slots",
    "surface_to_slot_mapping",
    "canonical_edges",
    "qualitative_signals",
];

/// The columns added to `sessions`: (column, SQLite definition,
/// PostgreSQL definition).
const SESSION_COLUMNS: [(&str, &str, &str); 6] = [
    (
        "node_tracker_state",
        r#"jsonb_text NULL CHECK ("node_tracker_state" IS NULL OR json_valid("node_tracker_state"))"#,
        "jsonb NULL",
    ),
    (
        "surface_velocity_peak",
        "double NOT NULL DEFAULT 0.0",
        "double precision NOT NULL DEFAULT 0.0",
    ),
    (
        "prev_surface_node_count",
        "integer NOT NULL DEFAULT 0",
        "integer NOT NULL DEFAULT 0",
    ),
    (
        "canonical_velocity_peak",
        "double NOT NULL DEFAULT 0.0",
        "double precision NOT NULL DEFAULT 0.0",
    ),
    (
        "prev_canonical_node_count",
        "integer NOT NULL DEFAULT 0",
        "integer NOT NULL DEFAULT 0",
    ),
    (
        "focus_history",
        r#"jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("focus_history"))"#,
        "jsonb NOT NULL DEFAULT '[]'",
    ),
];

/// The columns added to `kg_nodes` on PostgreSQL (SQLite rebuilds the
/// table with them: [`kg_nodes_definition`]).
const POSTGRES_NODE_COLUMNS: [(&str, &str); 3] = [
    (
        "stance",
        r#"integer NOT NULL DEFAULT 0 CONSTRAINT "ck_kg_nodes_stance" CHECK ("stance" IN (-1, 0, 1))"#,
    ),
    ("embedding", "bytea NULL"),
    ("source_quotes", "jsonb NOT NULL DEFAULT '[]'"),
];

/// A nullable JSON column's CHECK on SQLite: as the first migration wrote
/// it (`down`), or the same under every SQLite (`up`).
fn json_check(column: &str, up: bool) -> String {
    if up {
        format!(r#"CHECK ("{column}" IS NULL OR json_valid("{column}"))"#)
    } else {
        format!(r#"CHECK (json_valid("{column}"))"#)
    }
}

const NOW: &str = "DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))";

fn utterances_definition(up: bool) -> String {
    format!(
        r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "turn_number" integer NOT NULL,
    "speaker" text NOT NULL CHECK ("speaker" IN ('system', 'user')),
    "text" text NOT NULL,
    "discourse_markers" jsonb_text NULL DEFAULT '[]' {markers},
    "created_at" datetime_text NOT NULL {NOW},
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE"#,
        markers = json_check("discourse_markers", up)
    )
}

const UTTERANCE_COLUMNS: [&str; 7] = [
    "id",
    "session_id",
    "turn_number",
    "speaker",
    "text",
    "discourse_markers",
    "created_at",
];

/// `kg_nodes` with the new columns (`up`) or as migration 5 left it.
fn kg_nodes_definition(up: bool) -> String {
    let new_columns = if up {
        r#"
    "stance" integer NOT NULL DEFAULT 0 CHECK ("stance" IN (-1, 0, 1)),
    "embedding" blob NULL,
    "source_quotes" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("source_quotes")),"#
    } else {
        ""
    };
    format!(
        r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "label" text NOT NULL,
    "node_type" text NOT NULL,
    "confidence" double NOT NULL DEFAULT 0.8 CHECK ("confidence" BETWEEN 0 AND 1),
    "properties" jsonb_text NULL DEFAULT '{{}}' {properties},
    "source_utterance_ids" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("source_utterance_ids")),
    "recorded_at" datetime_text NOT NULL {NOW},
    "superseded_by" text NULL,{new_columns}
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("superseded_by") REFERENCES "kg_nodes" ("id") ON DELETE SET NULL"#,
        properties = json_check("properties", up)
    )
}

/// The columns of `kg_nodes` before this migration (all copied either way).
const NODE_COLUMNS: [&str; 9] = [
    "id",
    "session_id",
    "label",
    "node_type",
    "confidence",
    "properties",
    "source_utterance_ids",
    "recorded_at",
    "superseded_by",
];

fn kg_edges_definition(up: bool) -> String {
    format!(
        r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "source_node_id" text NOT NULL,
    "target_node_id" text NOT NULL,
    "edge_type" text NOT NULL,
    "confidence" double NOT NULL DEFAULT 0.8 CHECK ("confidence" BETWEEN 0 AND 1),
    "properties" jsonb_text NULL DEFAULT '{{}}' {properties},
    "source_utterance_ids" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("source_utterance_ids")),
    "recorded_at" datetime_text NOT NULL {NOW},
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("source_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("target_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("edge_type") REFERENCES "edge_types" ("name")"#,
        properties = json_check("properties", up)
    )
}

const EDGE_COLUMNS: [&str; 9] = [
    "id",
    "session_id",
    "source_node_id",
    "target_node_id",
    "edge_type",
    "confidence",
    "properties",
    "source_utterance_ids",
    "recorded_at",
];

/// The new tables on SQLite, with their indexes.
const SQLITE_TABLES: &str = r#"
CREATE TABLE "canonical_slots" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "slot_name" text NOT NULL,
    "description" text NULL,
    "node_type" text NOT NULL,
    "status" text NOT NULL DEFAULT 'candidate' CHECK ("status" IN ('candidate', 'active')),
    "support_count" integer NOT NULL DEFAULT 0,
    "first_seen_turn" integer NOT NULL,
    "promoted_turn" integer NULL,
    "embedding" blob NULL,
    "created_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    "promoted_at" datetime_text NULL,
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "uq_canonical_slots_session_name_type" ON "canonical_slots" ("session_id", "slot_name", "node_type");
CREATE INDEX "idx_canonical_slots_session" ON "canonical_slots" ("session_id");
CREATE INDEX "idx_canonical_slots_status" ON "canonical_slots" ("session_id", "status");
CREATE INDEX "idx_canonical_slots_type" ON "canonical_slots" ("session_id", "node_type");
CREATE TABLE "surface_to_slot_mapping" (
    "surface_node_id" text NOT NULL PRIMARY KEY,
    "canonical_slot_id" text NOT NULL,
    "similarity_score" double NOT NULL,
    "assigned_turn" integer NOT NULL,
    "assigned_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FOREIGN KEY ("surface_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("canonical_slot_id") REFERENCES "canonical_slots" ("id") ON DELETE CASCADE
);
CREATE INDEX "idx_surface_mapping_slot" ON "surface_to_slot_mapping" ("canonical_slot_id");
CREATE TABLE "canonical_edges" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "source_slot_id" text NOT NULL,
    "target_slot_id" text NOT NULL,
    "edge_type" text NOT NULL,
    "support_count" integer NOT NULL DEFAULT 1,
    "surface_edge_ids" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("surface_edge_ids")),
    "created_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    "updated_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("source_slot_id") REFERENCES "canonical_slots" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("target_slot_id") REFERENCES "canonical_slots" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "uq_canonical_edges_session_source_target_type" ON "canonical_edges" ("session_id", "source_slot_id", "target_slot_id", "edge_type");
CREATE INDEX "idx_canonical_edges_session" ON "canonical_edges" ("session_id");
CREATE INDEX "idx_canonical_edges_source" ON "canonical_edges" ("source_slot_id");
CREATE INDEX "idx_canonical_edges_target" ON "canonical_edges" ("target_slot_id");
CREATE TABLE "qualitative_signals" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "turn_number" integer NOT NULL,
    "llm_model" text NULL,
    "extraction_latency_ms" integer NULL,
    "extraction_errors" jsonb_text NULL CHECK ("extraction_errors" IS NULL OR json_valid("extraction_errors")),
    "uncertainty_signal" jsonb_text NULL CHECK ("uncertainty_signal" IS NULL OR json_valid("uncertainty_signal")),
    "reasoning_signal" jsonb_text NULL CHECK ("reasoning_signal" IS NULL OR json_valid("reasoning_signal")),
    "emotional_signal" jsonb_text NULL CHECK ("emotional_signal" IS NULL OR json_valid("emotional_signal")),
    "contradiction_signal" jsonb_text NULL CHECK ("contradiction_signal" IS NULL OR json_valid("contradiction_signal")),
    "knowledge_ceiling_signal" jsonb_text NULL CHECK ("knowledge_ceiling_signal" IS NULL OR json_valid("knowledge_ceiling_signal")),
    "concept_depth_signal" jsonb_text NULL CHECK ("concept_depth_signal" IS NULL OR json_valid("concept_depth_signal")),
    "created_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX "uq_qualitative_signals_session_turn" ON "qualitative_signals" ("session_id", "turn_number");
CREATE INDEX "idx_qualitative_signals_session" ON "qualitative_signals" ("session_id");
"#;

/// The new tables on PostgreSQL, with their indexes.
const POSTGRES_TABLES: &str = r#"
CREATE TABLE "canonical_slots" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL REFERENCES "sessions" ("id") ON DELETE CASCADE,
    "slot_name" text NOT NULL,
    "description" text NULL,
    "node_type" text NOT NULL,
    "status" text NOT NULL DEFAULT 'candidate' CHECK ("status" IN ('candidate', 'active')),
    "support_count" integer NOT NULL DEFAULT 0,
    "first_seen_turn" integer NOT NULL,
    "promoted_turn" integer NULL,
    "embedding" bytea NULL,
    "created_at" timestamp NOT NULL DEFAULT timezone('utc', now())
        CONSTRAINT "ck_canonical_slots_created_at_finite" CHECK (isfinite("created_at") AND "created_at" < '262143-01-01'),
    "promoted_at" timestamp NULL
        CONSTRAINT "ck_canonical_slots_promoted_at_finite" CHECK (isfinite("promoted_at") AND "promoted_at" < '262143-01-01')
);
CREATE UNIQUE INDEX "uq_canonical_slots_session_name_type" ON "canonical_slots" ("session_id", "slot_name", "node_type");
CREATE INDEX "idx_canonical_slots_session" ON "canonical_slots" ("session_id");
CREATE INDEX "idx_canonical_slots_status" ON "canonical_slots" ("session_id", "status");
CREATE INDEX "idx_canonical_slots_type" ON "canonical_slots" ("session_id", "node_type");
CREATE TABLE "surface_to_slot_mapping" (
    "surface_node_id" text NOT NULL PRIMARY KEY REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    "canonical_slot_id" text NOT NULL REFERENCES "canonical_slots" ("id") ON DELETE CASCADE,
    "similarity_score" double precision NOT NULL,
    "assigned_turn" integer NOT NULL,
    "assigned_at" timestamp NOT NULL DEFAULT timezone('utc', now())
        CONSTRAINT "ck_surface_to_slot_mapping_assigned_at_finite" CHECK (isfinite("assigned_at") AND "assigned_at" < '262143-01-01')
);
CREATE INDEX "idx_surface_mapping_slot" ON "surface_to_slot_mapping" ("canonical_slot_id");
CREATE TABLE "canonical_edges" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL REFERENCES "sessions" ("id") ON DELETE CASCADE,
    "source_slot_id" text NOT NULL REFERENCES "canonical_slots" ("id") ON DELETE CASCADE,
    "target_slot_id" text NOT NULL REFERENCES "canonical_slots" ("id") ON DELETE CASCADE,
    "edge_type" text NOT NULL,
    "support_count" integer NOT NULL DEFAULT 1,
    "surface_edge_ids" jsonb NOT NULL DEFAULT '[]',
    "created_at" timestamp NOT NULL DEFAULT timezone('utc', now())
        CONSTRAINT "ck_canonical_edges_created_at_finite" CHECK (isfinite("created_at") AND "created_at" < '262143-01-01'),
    "updated_at" timestamp NOT NULL DEFAULT timezone('utc', now())
        CONSTRAINT "ck_canonical_edges_updated_at_finite" CHECK (isfinite("updated_at") AND "updated_at" < '262143-01-01')
);
CREATE UNIQUE INDEX "uq_canonical_edges_session_source_target_type" ON "canonical_edges" ("session_id", "source_slot_id", "target_slot_id", "edge_type");
CREATE INDEX "idx_canonical_edges_session" ON "canonical_edges" ("session_id");
CREATE INDEX "idx_canonical_edges_source" ON "canonical_edges" ("source_slot_id");
CREATE INDEX "idx_canonical_edges_target" ON "canonical_edges" ("target_slot_id");
CREATE TABLE "qualitative_signals" (
    "id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL REFERENCES "sessions" ("id") ON DELETE CASCADE,
    "turn_number" integer NOT NULL,
    "llm_model" text NULL,
    "extraction_latency_ms" bigint NULL,
    "extraction_errors" jsonb NULL,
    "uncertainty_signal" jsonb NULL,
    "reasoning_signal" jsonb NULL,
    "emotional_signal" jsonb NULL,
    "contradiction_signal" jsonb NULL,
    "knowledge_ceiling_signal" jsonb NULL,
    "concept_depth_signal" jsonb NULL,
    "created_at" timestamp NOT NULL DEFAULT timezone('utc', now())
        CONSTRAINT "ck_qualitative_signals_created_at_finite" CHECK (isfinite("created_at") AND "created_at" < '262143-01-01')
);
CREATE UNIQUE INDEX "uq_qualitative_signals_session_turn" ON "qualitative_signals" ("session_id", "turn_number");
CREATE INDEX "idx_qualitative_signals_session" ON "qualitative_signals" ("session_id");
"#;

/// `scoring_history` on SQLite: `coverage_score` nullable and the JSON
/// CHECK fixed (`up`), or as the first migration made it.
fn scoring_history_definition(up: bool) -> String {
    format!(
        r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "turn_number" integer NOT NULL,
    "coverage_score" double {coverage},
    "depth_score" double NOT NULL,
    "saturation_score" double NOT NULL,
    "novelty_score" double NULL,
    "richness_score" double NULL,
    "strategy_selected" text NOT NULL,
    "strategy_reasoning" text NULL,
    "scorer_details" jsonb_text NULL DEFAULT '{{}}' {details},
    "created_at" datetime_text NOT NULL {NOW},
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE"#,
        coverage = if up { "NULL" } else { "NOT NULL" },
        details = json_check("scorer_details", up)
    )
}

const SCORING_COLUMNS: [&str; 12] = [
    "id",
    "session_id",
    "turn_number",
    "coverage_score",
    "depth_score",
    "saturation_score",
    "novelty_score",
    "richness_score",
    "strategy_selected",
    "strategy_reasoning",
    "scorer_details",
    "created_at",
];

/// Rebuilds the four tables whose JSON CHECK changes, each keeping its
/// rows and indexes.
async fn rebuild_sqlite_tables(db: &impl ConnectionTrait, up: bool) -> Result<(), DbErr> {
    let rebuilds: [(&str, String, &[&str]); 4] = [
        ("utterances", utterances_definition(up), &UTTERANCE_COLUMNS),
        ("kg_nodes", kg_nodes_definition(up), &NODE_COLUMNS),
        ("kg_edges", kg_edges_definition(up), &EDGE_COLUMNS),
        (
            "scoring_history",
            scoring_history_definition(up),
            &SCORING_COLUMNS,
        ),
    ];
    for (table, definition, columns) in &rebuilds {
        // The rebuild copies the columns it names: a column another program
        // added would be lost, so such a table is refused, unchanged.
        let mut known: Vec<&str> = columns.to_vec();
        if !up && *table == "kg_nodes" {
            known.extend(["stance", "embedding", "source_quotes"]);
        }
        let unknown = unknown_columns(db, table, &known).await?;
        if !unknown.is_empty() {
            return Err(DbErr::Migration(format!(
                "`{table}` has columns this migration does not know ({}): rebuilding it would \
                 lose them; nothing was changed",
                unknown.join(", ")
            )));
        }
        if !up && *table == "kg_nodes" {
            // An index on a column `down` drops (the Python system's start-up
            // creates `idx_kg_nodes_stance`) could not be made again.
            for index in indexes_on(db, table, &["stance", "embedding", "source_quotes"]).await? {
                db.execute_unprepared(&format!(r#"DROP INDEX "{index}""#))
                    .await?;
            }
        }
        rebuild_table(
            db,
            &Rebuild {
                table,
                definition,
                columns,
                indexes: Indexes::Keep,
            },
        )
        .await?;
    }
    Ok(())
}

/// The columns of `table` not among `known`.
async fn unknown_columns(
    db: &impl ConnectionTrait,
    table: &str,
    known: &[&str],
) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("SELECT name FROM pragma_table_info('{table}')"),
        ))
        .await?;
    let mut unknown = Vec::new();
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        if !known.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    Ok(unknown)
}

/// The indexes of `table` that name one of `columns`.
async fn indexes_on(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!(
                "SELECT DISTINCT i.name FROM pragma_index_list('{table}') AS i, \
                 pragma_index_info(i.name) AS c WHERE i.origin = 'c' AND c.name IN ({})",
                columns
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// Runs each `;`-terminated statement of `script`.
async fn run_script(db: &impl ConnectionTrait, script: &str) -> Result<(), DbErr> {
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        let postgres = backend == DbBackend::Postgres;
        for (column, sqlite, pg) in SESSION_COLUMNS {
            let definition = if postgres { pg } else { sqlite };
            db.execute_unprepared(&format!(
                r#"ALTER TABLE "sessions" ADD COLUMN "{column}" {definition}"#
            ))
            .await?;
        }
        if postgres {
            for (column, definition) in POSTGRES_NODE_COLUMNS {
                db.execute_unprepared(&format!(
                    r#"ALTER TABLE "kg_nodes" ADD COLUMN "{column}" {definition}"#
                ))
                .await?;
            }
            run_script(db, POSTGRES_TABLES).await?;
            db.execute_unprepared(
                r#"ALTER TABLE "scoring_history" ALTER COLUMN "coverage_score" DROP NOT NULL"#,
            )
            .await?;
        } else {
            rebuild_sqlite_tables(db, true).await?;
            run_script(db, SQLITE_TABLES).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        let unscored = db
            .query_one_raw(Statement::from_string(
                backend,
                r#"SELECT COUNT(*) FROM "scoring_history" WHERE "coverage_score" IS NULL"#,
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if unscored > 0 {
            return Err(DbErr::Migration(format!(
                "{unscored} scoring rows have no coverage score, which the previous schema \
                 requires; nothing was changed"
            )));
        }
        for table in NEW_TABLES.iter().rev() {
            db.execute_unprepared(&format!(r#"DROP TABLE "{table}""#))
                .await?;
        }
        for (column, _, _) in SESSION_COLUMNS.iter().rev() {
            db.execute_unprepared(&format!(r#"ALTER TABLE "sessions" DROP COLUMN "{column}""#))
                .await?;
        }
        if backend == DbBackend::Postgres {
            for (column, _) in POSTGRES_NODE_COLUMNS.iter().rev() {
                db.execute_unprepared(&format!(r#"ALTER TABLE "kg_nodes" DROP COLUMN "{column}""#))
                    .await?;
            }
            db.execute_unprepared(
                r#"ALTER TABLE "scoring_history" ALTER COLUMN "coverage_score" SET NOT NULL"#,
            )
            .await?;
        } else {
            rebuild_sqlite_tables(db, false).await?;
        }
        Ok(())
    }
}
