//! Adds to `session_erasures` the counts of the four later Python tables
//! an erasure deletes from (by cascade): `canonical_slot_rows`,
//! `slot_mapping_rows` (`surface_to_slot_mapping`), `canonical_edge_rows`
//! and `qualitative_signal_rows`.
//!
//! Nullable, with no default: a record written before this migration did
//! not count those tables, and NULL says so (0 would claim that nothing
//! went). A count is never negative.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SessionErasures {
    Table,
    CanonicalSlotRows,
    SlotMappingRows,
    CanonicalEdgeRows,
    QualitativeSignalRows,
}

/// The new columns, in the order they are added.
const COUNTS: [SessionErasures; 4] = [
    SessionErasures::CanonicalSlotRows,
    SessionErasures::SlotMappingRows,
    SessionErasures::CanonicalEdgeRows,
    SessionErasures::QualitativeSignalRows,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in COUNTS {
            manager
                .alter_table(
                    Table::alter()
                        .table(SessionErasures::Table)
                        .add_column(
                            ColumnDef::new(column)
                                .big_integer()
                                .null()
                                .check(Expr::col(column).gte(0))
                                .take(),
                        )
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plain SQL: both backends drop a column whose only constraint is
        // its own CHECK without a rebuild (SQLite since 3.35).
        for column in COUNTS.iter().rev() {
            let name = column.to_string();
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    r#"ALTER TABLE "session_erasures" DROP COLUMN "{name}""#
                ))
                .await?;
        }
        Ok(())
    }
}
