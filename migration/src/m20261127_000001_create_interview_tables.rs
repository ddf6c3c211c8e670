//! Creates the six tables of `SCHEMA.md` with every CHECK, UNIQUE,
//! foreign-key action, default and index, for SQLite and PostgreSQL alike.
//!
//! Deliberate departures from the Python schema (see `SCHEMA.md`):
//! - "one current node per (session, label, node_type)" is a partial unique
//!   index `WHERE superseded_by IS NULL`; the Python UNIQUE that included
//!   `superseded_by` let any number of current duplicates in, because NULLs
//!   are distinct in a unique index;
//! - `kg_nodes.superseded_by` and `concept_elements.covered_by_node_id` are
//!   `ON DELETE SET NULL`: deleting a node un-supersedes what it replaced and
//!   un-attributes what it covered (the element stays covered) instead of
//!   failing;
//! - those two columns are indexed, so that deleting a node (and so a
//!   session, by cascade) does not scan both tables once per node;
//! - on SQLite, JSON columns carry `CHECK (json_valid(..))`, which
//!   PostgreSQL's `jsonb` gives by itself.
//!
//! Timestamps default to the current UTC time in the form the column keeps
//! everywhere: `YYYY-MM-DD HH:MM:SS.SSS` text on SQLite (it sorts with the
//! Python system's `datetime('now')` values), `timestamp` in UTC on
//! PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    Methodology,
    ConceptId,
    ConceptName,
    Status,
    Config,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
    TurnCount,
    CoverageScore,
}

#[derive(DeriveIden, Clone, Copy)]
enum Utterances {
    Table,
    Id,
    SessionId,
    TurnNumber,
    Speaker,
    Text,
    DiscourseMarkers,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum KgNodes {
    Table,
    Id,
    SessionId,
    Label,
    NodeType,
    Confidence,
    Properties,
    SourceUtteranceIds,
    RecordedAt,
    SupersededBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum KgEdges {
    Table,
    Id,
    SessionId,
    SourceNodeId,
    TargetNodeId,
    EdgeType,
    Confidence,
    Properties,
    SourceUtteranceIds,
    RecordedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScoringHistory {
    Table,
    Id,
    SessionId,
    TurnNumber,
    CoverageScore,
    DepthScore,
    SaturationScore,
    NoveltyScore,
    RichnessScore,
    StrategySelected,
    StrategyReasoning,
    ScorerDetails,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ConceptElements {
    Table,
    Id,
    SessionId,
    ElementId,
    Label,
    ElementType,
    Priority,
    IsCovered,
    CoveredAt,
    CoveredByNodeId,
}

/// The vocabularies as this migration fixes them. Later migrations that
/// widen one write their own list; they never edit these.
const SESSION_STATUSES: [&str; 3] = ["active", "completed", "abandoned"];
const SPEAKERS: [&str; 2] = ["system", "user"];
const EDGE_TYPES: [&str; 2] = ["leads_to", "revises"];
const PRIORITIES: [&str; 3] = ["high", "medium", "low"];

/// Column builders that differ by backend only in their SQL spelling.
struct Columns {
    backend: DbBackend,
}

impl Columns {
    fn id(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).text().not_null().primary_key().take()
    }

    fn text(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).text().not_null().take()
    }

    /// A text column held to a closed vocabulary.
    fn one_of(&self, name: impl IntoIden + Clone, values: &[&str]) -> ColumnDef {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        ColumnDef::new(name.clone())
            .text()
            .not_null()
            .check(Expr::col(name).is_in(values))
            .take()
    }

    /// A session reference; the foreign key itself is added on the table.
    fn session_id(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).text().not_null().take()
    }

    /// A UTC timestamp defaulting to now.
    fn created_now(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name)
            .date_time()
            .not_null()
            .default(self.now())
            .take()
    }

    fn timestamp_nullable(&self, name: impl IntoIden) -> ColumnDef {
        ColumnDef::new(name).date_time().null().take()
    }

    /// A confidence in [0, 1], default 0.8.
    fn confidence(&self, name: impl IntoIden + Clone) -> ColumnDef {
        ColumnDef::new(name.clone())
            .double()
            .not_null()
            .default(0.8)
            .check(Expr::col(name).between(0.0, 1.0))
            .take()
    }

    /// A JSON document with a default (`{}` or `[]`).
    fn json(&self, name: impl IntoIden + Clone, default: &str, nullable: bool) -> ColumnDef {
        let mut column = ColumnDef::new(name.clone());
        column.json_binary().default(default.to_owned());
        if nullable {
            column.null();
        } else {
            column.not_null();
        }
        if self.backend == DbBackend::Sqlite {
            column.check(Func::cust("json_valid").arg(Expr::col(name)));
        }
        column
    }

    /// The current UTC time as the column stores it.
    fn now(&self) -> Expr {
        match self.backend {
            DbBackend::Postgres => Expr::cust("timezone('utc', now())"),
            _ => Expr::cust("strftime('%Y-%m-%d %H:%M:%f', 'now')"),
        }
    }
}

fn cascade_to_session(from: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Sessions::Table, Sessions::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

/// An index named `name` on `columns` of `table` (one iden enum per table).
fn index<T: IntoIden + Copy>(name: &str, table: T, columns: &[T]) -> IndexCreateStatement {
    let mut statement = Index::create().name(name).table(table).take();
    for column in columns {
        statement.col(*column);
    }
    statement
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns {
            backend: manager.get_database_backend(),
        };

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(c.id(Sessions::Id))
                    .col(c.text(Sessions::Methodology))
                    .col(c.text(Sessions::ConceptId))
                    .col(c.text(Sessions::ConceptName))
                    .col(
                        c.one_of(Sessions::Status, &SESSION_STATUSES)
                            .default("active")
                            .take(),
                    )
                    .col(c.json(Sessions::Config, "{}", false))
                    .col(c.created_now(Sessions::CreatedAt))
                    .col(c.created_now(Sessions::UpdatedAt))
                    .col(c.timestamp_nullable(Sessions::CompletedAt))
                    .col(
                        ColumnDef::new(Sessions::TurnCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Sessions::CoverageScore)
                            .double()
                            .null()
                            .default(0.0),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Utterances::Table)
                    .col(c.id(Utterances::Id))
                    .col(c.session_id(Utterances::SessionId))
                    .col(ColumnDef::new(Utterances::TurnNumber).integer().not_null())
                    .col(c.one_of(Utterances::Speaker, &SPEAKERS))
                    .col(c.text(Utterances::Text))
                    .col(c.json(Utterances::DiscourseMarkers, "[]", true))
                    .col(c.created_now(Utterances::CreatedAt))
                    .foreign_key(&mut cascade_to_session((
                        Utterances::Table,
                        Utterances::SessionId,
                    )))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KgNodes::Table)
                    .col(c.id(KgNodes::Id))
                    .col(c.session_id(KgNodes::SessionId))
                    .col(c.text(KgNodes::Label))
                    .col(c.text(KgNodes::NodeType))
                    .col(c.confidence(KgNodes::Confidence))
                    .col(c.json(KgNodes::Properties, "{}", true))
                    .col(c.json(KgNodes::SourceUtteranceIds, "[]", false))
                    .col(c.created_now(KgNodes::RecordedAt))
                    .col(ColumnDef::new(KgNodes::SupersededBy).text().null())
                    .foreign_key(&mut cascade_to_session((
                        KgNodes::Table,
                        KgNodes::SessionId,
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .from(KgNodes::Table, KgNodes::SupersededBy)
                            .to(KgNodes::Table, KgNodes::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KgEdges::Table)
                    .col(c.id(KgEdges::Id))
                    .col(c.session_id(KgEdges::SessionId))
                    .col(c.text(KgEdges::SourceNodeId))
                    .col(c.text(KgEdges::TargetNodeId))
                    .col(c.one_of(KgEdges::EdgeType, &EDGE_TYPES))
                    .col(c.confidence(KgEdges::Confidence))
                    .col(c.json(KgEdges::Properties, "{}", true))
                    .col(c.json(KgEdges::SourceUtteranceIds, "[]", false))
                    .col(c.created_now(KgEdges::RecordedAt))
                    .foreign_key(&mut cascade_to_session((
                        KgEdges::Table,
                        KgEdges::SessionId,
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .from(KgEdges::Table, KgEdges::SourceNodeId)
                            .to(KgNodes::Table, KgNodes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(KgEdges::Table, KgEdges::TargetNodeId)
                            .to(KgNodes::Table, KgNodes::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ScoringHistory::Table)
                    .col(c.id(ScoringHistory::Id))
                    .col(c.session_id(ScoringHistory::SessionId))
                    .col(
                        ColumnDef::new(ScoringHistory::TurnNumber)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScoringHistory::CoverageScore)
                            .double()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScoringHistory::DepthScore)
                            .double()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScoringHistory::SaturationScore)
                            .double()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ScoringHistory::NoveltyScore).double().null())
                    .col(
                        ColumnDef::new(ScoringHistory::RichnessScore)
                            .double()
                            .null(),
                    )
                    .col(c.text(ScoringHistory::StrategySelected))
                    .col(
                        ColumnDef::new(ScoringHistory::StrategyReasoning)
                            .text()
                            .null(),
                    )
                    .col(c.json(ScoringHistory::ScorerDetails, "{}", true))
                    .col(c.created_now(ScoringHistory::CreatedAt))
                    .foreign_key(&mut cascade_to_session((
                        ScoringHistory::Table,
                        ScoringHistory::SessionId,
                    )))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConceptElements::Table)
                    .col(c.id(ConceptElements::Id))
                    .col(c.session_id(ConceptElements::SessionId))
                    .col(c.text(ConceptElements::ElementId))
                    .col(c.text(ConceptElements::Label))
                    .col(
                        c.text(ConceptElements::ElementType)
                            .default("attribute")
                            .take(),
                    )
                    .col(
                        c.one_of(ConceptElements::Priority, &PRIORITIES)
                            .default("medium")
                            .take(),
                    )
                    .col(
                        ColumnDef::new(ConceptElements::IsCovered)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(c.timestamp_nullable(ConceptElements::CoveredAt))
                    .col(
                        ColumnDef::new(ConceptElements::CoveredByNodeId)
                            .text()
                            .null(),
                    )
                    .foreign_key(&mut cascade_to_session((
                        ConceptElements::Table,
                        ConceptElements::SessionId,
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ConceptElements::Table, ConceptElements::CoveredByNodeId)
                            .to(KgNodes::Table, KgNodes::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;

        for statement in indexes() {
            manager.create_index(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first; dropping a table drops its indexes.
        for table in [
            ConceptElements::Table.into_iden(),
            ScoringHistory::Table.into_iden(),
            KgEdges::Table.into_iden(),
            KgNodes::Table.into_iden(),
            Utterances::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}

/// Every index and unique rule of `SCHEMA.md`, plus the two foreign-key
/// indexes this migration adds (see the module docs).
fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index("idx_sessions_status", Sessions::Table, &[Sessions::Status]),
        index(
            "idx_sessions_created_at",
            Sessions::Table,
            &[Sessions::CreatedAt],
        ),
        index(
            "uq_utterances_session_turn_speaker",
            Utterances::Table,
            &[
                Utterances::SessionId,
                Utterances::TurnNumber,
                Utterances::Speaker,
            ],
        )
        .unique()
        .take(),
        index(
            "idx_utterances_session",
            Utterances::Table,
            &[Utterances::SessionId],
        ),
        index(
            "idx_utterances_session_turn",
            Utterances::Table,
            &[Utterances::SessionId, Utterances::TurnNumber],
        ),
        index(
            "uq_kg_nodes_current_label_type",
            KgNodes::Table,
            &[KgNodes::SessionId, KgNodes::Label, KgNodes::NodeType],
        )
        .unique()
        .and_where(Expr::col(KgNodes::SupersededBy).is_null())
        .take(),
        index(
            "idx_kg_nodes_session",
            KgNodes::Table,
            &[KgNodes::SessionId],
        ),
        index(
            "idx_kg_nodes_node_type",
            KgNodes::Table,
            &[KgNodes::NodeType],
        ),
        index(
            "idx_kg_nodes_session_label",
            KgNodes::Table,
            &[KgNodes::SessionId, KgNodes::Label],
        ),
        index(
            "idx_kg_nodes_superseded_by",
            KgNodes::Table,
            &[KgNodes::SupersededBy],
        ),
        index(
            "uq_kg_edges_source_target_type",
            KgEdges::Table,
            &[
                KgEdges::SourceNodeId,
                KgEdges::TargetNodeId,
                KgEdges::EdgeType,
            ],
        )
        .unique()
        .take(),
        index(
            "idx_kg_edges_session",
            KgEdges::Table,
            &[KgEdges::SessionId],
        ),
        index(
            "idx_kg_edges_source",
            KgEdges::Table,
            &[KgEdges::SourceNodeId],
        ),
        index(
            "idx_kg_edges_target",
            KgEdges::Table,
            &[KgEdges::TargetNodeId],
        ),
        index(
            "uq_scoring_history_session_turn",
            ScoringHistory::Table,
            &[ScoringHistory::SessionId, ScoringHistory::TurnNumber],
        )
        .unique()
        .take(),
        index(
            "idx_scoring_history_session",
            ScoringHistory::Table,
            &[ScoringHistory::SessionId],
        ),
        index(
            "uq_concept_elements_session_element",
            ConceptElements::Table,
            &[ConceptElements::SessionId, ConceptElements::ElementId],
        )
        .unique()
        .take(),
        index(
            "idx_concept_elements_session",
            ConceptElements::Table,
            &[ConceptElements::SessionId],
        ),
        index(
            "idx_concept_elements_session_covered",
            ConceptElements::Table,
            &[ConceptElements::SessionId, ConceptElements::IsCovered],
        ),
        index(
            "idx_concept_elements_covered_by",
            ConceptElements::Table,
            &[ConceptElements::CoveredByNodeId],
        ),
    ]
}
