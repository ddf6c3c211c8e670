//! PostgreSQL: every timestamp column refuses what the entities cannot
//! hold, `'infinity'`, `'-infinity'` and years past chrono's range
//! (262142), with a CHECK constraint per column.
//!
//! A `timestamp` column accepts those values, and sqlx's decoder panics
//! on them (`NaiveDateTime + TimeDelta overflowed`) instead of returning
//! an error: a row another program wrote that way took a read, or a copy,
//! down with a panic. With these constraints such a row cannot be
//! written: the writer gets a check violation naming the column. A
//! database that already holds one fails this migration with that
//! violation and stays at the previous version, untouched; `SELECT … WHERE
//! NOT isfinite(col)` finds the rows to fix.
//!
//! SQLite stores timestamps as text, which the module parses itself and
//! refuses with a typed error: nothing to do there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every timestamp column of the module's tables, as (table, column).
const TIMESTAMP_COLUMNS: [(&str, &str); 10] = [
    ("sessions", "created_at"),
    ("sessions", "updated_at"),
    ("sessions", "completed_at"),
    ("utterances", "created_at"),
    ("kg_nodes", "recorded_at"),
    ("kg_edges", "recorded_at"),
    ("scoring_history", "created_at"),
    ("concept_elements", "covered_at"),
    ("session_erasures", "erased_at"),
    ("session_erasures", "scrubbed_at"),
];

/// The constraint's name: `ck_<table>_<column>_finite`.
fn constraint(table: &str, column: &str) -> String {
    format!("ck_{table}_{column}_finite")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, column) in TIMESTAMP_COLUMNS {
            // NULL passes a CHECK: optional columns stay optional.
            db.execute_unprepared(&format!(
                r#"ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK (isfinite("{column}") AND "{column}" < '262143-01-01')"#,
                name = constraint(table, column),
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, column) in TIMESTAMP_COLUMNS {
            db.execute_unprepared(&format!(
                r#"ALTER TABLE "{table}" DROP CONSTRAINT "{name}""#,
                name = constraint(table, column),
            ))
            .await?;
        }
        Ok(())
    }
}
