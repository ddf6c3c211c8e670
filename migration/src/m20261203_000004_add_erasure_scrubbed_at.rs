//! Adds `session_erasures.scrubbed_at`: when the old copies of an erased
//! session's rows were removed from the files, or NULL while that scrub
//! is still owed.
//!
//! An erasure deletes the rows and records itself in one transaction;
//! the scrub (SQLite: `VACUUM` and a WAL truncated to zero bytes;
//! PostgreSQL: `VACUUM` of the tables) runs after the commit and can be
//! cut short by a crash, or kept from finishing by another process's
//! snapshot. The record written in the delete's transaction says that the
//! scrub is owed until it is done, so that the next open completes it.
//!
//! Records from before this column existed count as owed: nothing proves
//! that their scrub finished, and one more scrub costs only time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SessionErasures {
    Table,
    ScrubbedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SessionErasures::Table)
                    .add_column(
                        ColumnDef::new(SessionErasures::ScrubbedAt)
                            .date_time()
                            .null(),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plain SQL: both backends drop a column without a rebuild (SQLite
        // since 3.35), and the column has no index or constraint.
        manager
            .get_connection()
            .execute_unprepared(r#"ALTER TABLE "session_erasures" DROP COLUMN "scrubbed_at""#)
            .await
            .map(|_| ())
    }
}
