//! Creates `session_erasures`: the record that a session was erased, when,
//! and how many rows of each table went with it — and nothing of what the
//! session held.
//!
//! It has no foreign key to `sessions` (the session it records is gone),
//! and it holds only the session's id, the time and counts, so that it can
//! outlive the erasure it records without keeping a participant's words.
//! A session id erased twice (an id a caller reused) keeps the record of
//! its last erasure.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum SessionErasures {
    Table,
    SessionId,
    ErasedAt,
    UtteranceRows,
    KgNodeRows,
    KgEdgeRows,
    ScoringHistoryRows,
    ConceptElementRows,
}

/// A row count: never negative.
fn count(name: SessionErasures) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .default(0)
        .check(Expr::col(name).gte(0))
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The current UTC time as the other tables' timestamps keep it.
        let now = match manager.get_database_backend() {
            DbBackend::Postgres => Expr::cust("timezone('utc', now())"),
            _ => Expr::cust("strftime('%Y-%m-%d %H:%M:%f', 'now')"),
        };
        manager
            .create_table(
                Table::create()
                    .table(SessionErasures::Table)
                    .col(
                        ColumnDef::new(SessionErasures::SessionId)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SessionErasures::ErasedAt)
                            .date_time()
                            .not_null()
                            .default(now),
                    )
                    .col(count(SessionErasures::UtteranceRows))
                    .col(count(SessionErasures::KgNodeRows))
                    .col(count(SessionErasures::KgEdgeRows))
                    .col(count(SessionErasures::ScoringHistoryRows))
                    .col(count(SessionErasures::ConceptElementRows))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_erasures_erased_at")
                    .table(SessionErasures::Table)
                    .col(SessionErasures::ErasedAt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SessionErasures::Table).take())
            .await
    }
}
