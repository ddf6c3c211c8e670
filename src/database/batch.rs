//! Statements that must commit together, as the writer runs them.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement};

#[cfg(feature = "sqlite")]
use super::direct::{DirectRow, decode};

/// A row a write returned (`RETURNING`): from the pool's driver on
/// PostgreSQL, from the direct writer on SQLite.
#[derive(Debug)]
pub(crate) enum WrittenRow {
    /// Through SeaORM.
    Pooled(QueryResult),
    /// From the SQLite writer.
    #[cfg(feature = "sqlite")]
    Direct(DirectRow),
}

impl WrittenRow {
    /// A text column, by name (`None` when absent, NULL or not text).
    pub(crate) fn text(&self, column: &str) -> Option<String> {
        match self {
            Self::Pooled(row) => row.try_get("", column).ok(),
            #[cfg(feature = "sqlite")]
            Self::Direct(row) => decode::returned_text(row, column),
        }
    }

    /// A timestamp column, by name (`None` when absent, NULL or not a
    /// timestamp).
    pub(crate) fn timestamp(&self, column: &str) -> Option<chrono::NaiveDateTime> {
        match self {
            Self::Pooled(row) => row.try_get("", column).ok(),
            #[cfg(feature = "sqlite")]
            Self::Direct(row) => decode::returned_timestamp(row, column),
        }
    }
}

/// Statements, built for one backend, that must commit together; rows they
/// return (by `RETURNING`) come back in statement order. See
/// [`Database::write_batch`](super::Database::write_batch) for how they
/// are run: on SQLite in one transaction on the writer thread, on
/// PostgreSQL one statement alone in its own implicit transaction, or
/// several one by one in a transaction, which says which failed.
#[derive(Default)]
pub(crate) struct StatementBatch {
    statements: Vec<Statement>,
    /// How many rows the batch returns when it succeeds.
    returning: usize,
    /// Whether a statement may return fewer rows than counted (a row that
    /// was not there): such a batch is committed alone, since a group's
    /// rows could not be told apart between its members.
    rows_may_be_missing: bool,
}

impl StatementBatch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A batch of one statement that returns no row.
    pub(crate) fn of(statement: Statement) -> Self {
        let mut batch = Self::new();
        batch.push(statement);
        batch
    }

    /// A batch of one statement that returns `rows` rows when it
    /// succeeds (PostgreSQL: a whole turn).
    #[cfg(feature = "postgres")]
    pub(crate) fn of_one_returning(statement: Statement, rows: usize) -> Self {
        let mut batch = Self::of(statement);
        batch.returning = rows;
        batch
    }

    /// A batch of one statement that returns at most one row (an `UPDATE`
    /// or `DELETE … RETURNING` of one row by its key, none when the row is
    /// not there).
    pub(crate) fn of_returning_at_most_one(statement: Statement) -> Self {
        let mut batch = Self::new();
        batch.push_returning_one(statement);
        batch.rows_may_be_missing = true;
        batch
    }

    pub(crate) fn push(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Adds a statement that returns exactly one row when it succeeds.
    pub(crate) fn push_returning_one(&mut self, statement: Statement) {
        self.statements.push(statement);
        self.returning += 1;
    }

    /// How many rows the batch returns when it succeeds: the writer splits
    /// a group's rows between its members by this count.
    pub(crate) fn returning(&self) -> usize {
        self.returning
    }

    /// The length of the batch's SQL text.
    pub(crate) fn sql_bytes(&self) -> usize {
        self.statements.iter().map(|s| s.sql.len()).sum()
    }

    /// Whether the batch may share a transaction with others (its row
    /// count is exact).
    pub(crate) fn can_join_a_group(&self) -> bool {
        !self.rows_may_be_missing
    }

    /// The statements, in order.
    pub(crate) fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Runs the statements one by one on `conn` (PostgreSQL: it cannot
    /// prepare several commands at once). On failure, the index of the
    /// statement that failed comes with the error.
    pub(crate) async fn run_each(
        self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<WrittenRow>, (usize, DbErr)> {
        let mut rows = Vec::new();
        for (i, statement) in self.statements.into_iter().enumerate() {
            rows.extend(
                conn.query_all_raw(statement)
                    .await
                    .map_err(|err| (i, err))?
                    .into_iter()
                    .map(WrittenRow::Pooled),
            );
        }
        Ok(rows)
    }
}
