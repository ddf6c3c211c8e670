//! The edge types of every methodology the system interviews with, in a
//! table of their own that `kg_edges.edge_type` references.
//!
//! Why a table and not a wider CHECK: SQLite cannot alter a CHECK, so every
//! new methodology would mean another rebuild of `kg_edges` (the Python
//! system went from 2 to 37 types, and patched `sqlite_schema` with
//! `PRAGMA writable_schema` to get there). With the vocabulary in
//! `edge_types`, a future methodology is an `INSERT` in a migration; the
//! foreign key refuses an edge of an unknown type exactly as the CHECK did.
//! The types are listed here, frozen with this migration: a later one adds
//! its own.
//!
//! On SQLite `kg_edges` is rebuilt (CHECK out, foreign key in) with the
//! table-rebuild step, every row and index kept; on PostgreSQL the
//! constraint is swapped with `ALTER TABLE`. `down` goes back to the
//! two-type CHECK, and refuses — changing nothing — while any edge uses a
//! type that CHECK cannot hold.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::sqlite_rebuild::{Indexes, Rebuild, rebuild_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every edge type, with the methodology that introduced it.
const EDGE_TYPES: [(&str, &str); 37] = [
    ("leads_to", "generic"),
    ("revises", "generic"),
    ("occurs_in", "jobs_to_be_done"),
    ("triggered_by", "jobs_to_be_done"),
    ("triggers", "jobs_to_be_done"),
    ("addresses", "jobs_to_be_done"),
    ("conflicts_with", "jobs_to_be_done"),
    ("enables", "jobs_to_be_done"),
    ("supports", "jobs_to_be_done"),
    ("means_to", "means_end_chain"),
    ("ends_to", "means_end_chain"),
    ("occurred_in", "critical_incident"),
    ("involved", "critical_incident"),
    ("resulted_in", "critical_incident"),
    ("elicited", "critical_incident"),
    ("attributed_to", "critical_incident"),
    ("led_to_learning", "critical_incident"),
    ("influenced", "critical_incident"),
    ("similar_to", "critical_incident"),
    ("contrasts_with", "critical_incident"),
    ("evaluated_by", "repertory_grid"),
    ("opposite_of", "repertory_grid"),
    ("rated_on", "repertory_grid"),
    ("similar_on", "repertory_grid"),
    ("differs_on", "repertory_grid"),
    ("implies", "repertory_grid"),
    ("closer_to_ideal", "repertory_grid"),
    ("defines", "repertory_grid"),
    ("transitions_to", "customer_journey"),
    ("evokes", "customer_journey"),
    ("disrupts", "customer_journey"),
    ("via_channel", "customer_journey"),
    ("expected_at", "customer_journey"),
    ("confirmed_by", "customer_journey"),
    ("violated_by", "customer_journey"),
    ("triggered", "customer_journey"),
    ("resolved_by", "customer_journey"),
];

/// The two types the first migration's CHECK allows.
const FIRST_EDGE_TYPES: [&str; 2] = ["leads_to", "revises"];

#[derive(DeriveIden)]
enum EdgeTypes {
    Table,
    Name,
    Methodology,
}

/// `kg_edges` as this migration leaves it on SQLite.
const KG_EDGES_WITH_VOCABULARY: &str = r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "source_node_id" text NOT NULL,
    "target_node_id" text NOT NULL,
    "edge_type" text NOT NULL,
    "confidence" double NOT NULL DEFAULT 0.8 CHECK ("confidence" BETWEEN 0 AND 1),
    "properties" jsonb_text NULL DEFAULT '{}' CHECK (json_valid("properties")),
    "source_utterance_ids" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("source_utterance_ids")),
    "recorded_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("source_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("target_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("edge_type") REFERENCES "edge_types" ("name")"#;

/// `kg_edges` as the first migration made it on SQLite (for `down`).
const KG_EDGES_WITH_CHECK: &str = r#""id" text NOT NULL PRIMARY KEY,
    "session_id" text NOT NULL,
    "source_node_id" text NOT NULL,
    "target_node_id" text NOT NULL,
    "edge_type" text NOT NULL CHECK ("edge_type" IN ('leads_to', 'revises')),
    "confidence" double NOT NULL DEFAULT 0.8 CHECK ("confidence" BETWEEN 0 AND 1),
    "properties" jsonb_text NULL DEFAULT '{}' CHECK (json_valid("properties")),
    "source_utterance_ids" jsonb_text NOT NULL DEFAULT '[]' CHECK (json_valid("source_utterance_ids")),
    "recorded_at" datetime_text NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    FOREIGN KEY ("session_id") REFERENCES "sessions" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("source_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("target_node_id") REFERENCES "kg_nodes" ("id") ON DELETE CASCADE"#;

const KG_EDGES_COLUMNS: [&str; 9] = [
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EdgeTypes::Table)
                    .col(
                        ColumnDef::new(EdgeTypes::Name)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(EdgeTypes::Methodology).text().not_null())
                    .take(),
            )
            .await?;
        let mut insert = Query::insert()
            .into_table(EdgeTypes::Table)
            .columns([EdgeTypes::Name, EdgeTypes::Methodology])
            .take();
        for (name, methodology) in EDGE_TYPES {
            insert.values_panic([name.into(), methodology.into()]);
        }
        manager.exec_stmt(insert).await?;

        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Sqlite => {
                rebuild_table(
                    conn,
                    &Rebuild {
                        table: "kg_edges",
                        definition: KG_EDGES_WITH_VOCABULARY,
                        columns: &KG_EDGES_COLUMNS,
                        indexes: Indexes::Keep,
                    },
                )
                .await
            }
            _ => {
                for check in postgres_edge_type_checks(conn).await? {
                    conn.execute_unprepared(&format!(
                        "ALTER TABLE kg_edges DROP CONSTRAINT \"{check}\""
                    ))
                    .await?;
                }
                conn.execute_unprepared(
                    "ALTER TABLE kg_edges ADD CONSTRAINT fk_kg_edges_edge_type \
                     FOREIGN KEY (edge_type) REFERENCES edge_types (name)",
                )
                .await
                .map(|_| ())
            }
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        let backend = manager.get_database_backend();
        let outside = conn
            .query_one_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT COUNT(*), MIN(edge_type) FROM kg_edges WHERE edge_type NOT IN ({})",
                    FIRST_EDGE_TYPES
                        .iter()
                        .map(|t| format!("'{t}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
            .await?;
        if let Some(row) = outside {
            let count: i64 = row.try_get_by_index(0)?;
            if count > 0 {
                let example: Option<String> = row.try_get_by_index(1)?;
                return Err(DbErr::Migration(format!(
                    "cannot undo the edge-type vocabulary: {count} edge(s) use types the earlier \
                     schema cannot hold (e.g. `{}`); nothing was changed. Delete or retype those \
                     edges first",
                    example.unwrap_or_default()
                )));
            }
        }
        match backend {
            DbBackend::Sqlite => {
                rebuild_table(
                    conn,
                    &Rebuild {
                        table: "kg_edges",
                        definition: KG_EDGES_WITH_CHECK,
                        columns: &KG_EDGES_COLUMNS,
                        indexes: Indexes::Keep,
                    },
                )
                .await?;
            }
            _ => {
                conn.execute_unprepared(
                    "ALTER TABLE kg_edges DROP CONSTRAINT fk_kg_edges_edge_type",
                )
                .await?;
                conn.execute_unprepared(
                    "ALTER TABLE kg_edges ADD CONSTRAINT kg_edges_edge_type_check \
                     CHECK (edge_type IN ('leads_to', 'revises'))",
                )
                .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(EdgeTypes::Table).take())
            .await
    }
}

/// The names of the CHECK constraints on `kg_edges.edge_type` (PostgreSQL
/// names them itself: `kg_edges_edge_type_check`).
async fn postgres_edge_type_checks<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>, DbErr> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT conname::text FROM pg_constraint \
             WHERE conrelid = 'kg_edges'::regclass AND contype = 'c' \
             AND pg_get_constraintdef(oid) LIKE '%edge_type%'",
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}
