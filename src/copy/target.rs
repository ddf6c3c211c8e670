//! The copy's write transaction on the target: SeaORM's (SQLite, through
//! the module's writer) or, on PostgreSQL, a sqlx transaction that can
//! stream `COPY`.

use std::collections::BTreeMap;

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel};
use serde::Serialize;

use super::checksum::TableChecksum;
use super::table::{self, Successor};
use crate::database::{Database, WriteTransaction, query_value};
use crate::error::Result;
use crate::schema::DATA_TABLES;

/// Rows per data table.
pub(super) type Counts = BTreeMap<&'static str, u64>;

/// The target's write transaction.
pub(super) enum TargetTransaction {
    /// SQLite: the module's writer, through SeaORM.
    Sqlite(WriteTransaction),
    /// PostgreSQL: a pooled connection's transaction, and the keys and
    /// indexes to make again once the rows are in.
    #[cfg(feature = "postgres")]
    Postgres(super::postgres::PgTransaction, Vec<String>),
}

impl TargetTransaction {
    /// Begins it; on PostgreSQL also locks the data tables against other
    /// writers, so that the emptiness found next stays true.
    pub(super) async fn begin(db: &Database) -> Result<Self> {
        match db.backend() {
            #[cfg(feature = "postgres")]
            crate::config::Backend::Postgres => {
                use super::postgres::db_err;
                let mut txn = db
                    .connection()
                    .get_postgres_connection_pool()
                    .begin()
                    .await
                    .map_err(db_err)?;
                // A lock that does not come in time is `Busy`, not a hang:
                // the source snapshot may be on the same database under
                // another spelling of its URL, holding what the load needs.
                sea_orm::sqlx::query("SET LOCAL lock_timeout = '30s'")
                    .execute(&mut *txn)
                    .await
                    .map_err(db_err)?;
                sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(format!(
                    "LOCK TABLE {} IN EXCLUSIVE MODE",
                    DATA_TABLES.join(", ")
                )))
                .execute(&mut *txn)
                .await
                .map_err(db_err)?;
                Ok(Self::Postgres(txn, Vec::new()))
            }
            _ => Ok(Self::Sqlite(db.begin_write().await?)),
        }
    }

    /// Rows per data table, as the transaction sees them.
    pub(super) async fn counts(&mut self) -> Result<Counts> {
        let mut counts = Counts::new();
        for table in DATA_TABLES {
            let sql = format!("SELECT count(*) FROM \"{table}\"");
            let rows = match self {
                Self::Sqlite(txn) => query_value::<i64>(&**txn, &sql).await?.unwrap_or(0),
                #[cfg(feature = "postgres")]
                Self::Postgres(txn, _) => {
                    sea_orm::sqlx::query_scalar::<_, i64>(sea_orm::sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut **txn)
                        .await
                        .map_err(super::postgres::db_err)?
                }
            };
            counts.insert(table, u64::try_from(rows).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Gets an empty target ready for the rows (PostgreSQL: keys and
    /// indexes wait until they are all in).
    pub(super) async fn begin_load(&mut self) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Self::Postgres(txn, deferred) = self {
            *deferred = super::postgres::defer_keys_and_indexes(txn, &DATA_TABLES).await?;
        }
        Ok(())
    }

    /// Every row is in: what waited is made, and checked.
    pub(super) async fn end_load(&mut self) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Self::Postgres(txn, deferred) = self {
            super::postgres::restore_keys_and_indexes(txn, std::mem::take(deferred)).await?;
        }
        Ok(())
    }

    /// Writes `rows` of `E`.
    pub(super) async fn write<E>(&mut self, rows: Vec<E::Model>) -> Result<()>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        match self {
            Self::Sqlite(txn) => table::insert::<E>(&**txn, rows).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(txn, _) => super::postgres::copy_in::<E>(txn, &rows).await,
        }
    }

    /// Points each node inserted as its own successor at its real one.
    pub(super) async fn restore_successors(&mut self, successors: &[Successor]) -> Result<()> {
        if successors.is_empty() {
            return Ok(());
        }
        match self {
            Self::Sqlite(txn) => table::restore_successors(&**txn, successors).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(txn, _) => super::postgres::restore_successors(txn, successors).await,
        }
    }

    /// Reads every row of `E` back and checksums it.
    pub(super) async fn checksum<E>(&mut self, page_rows: usize) -> Result<TableChecksum>
    where
        E: EntityTrait,
        E::Model: Serialize,
    {
        match self {
            Self::Sqlite(txn) => table::checksum::<E>(&**txn, page_rows).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(txn, _) => super::postgres::checksum::<E>(txn).await,
        }
    }

    /// Commits.
    pub(super) async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(txn) => txn.commit().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(txn, _) => txn.commit().await.map_err(super::postgres::db_err),
        }
    }

    /// Rolls back (dropping does the same).
    pub(super) async fn rollback(self) -> Result<()> {
        match self {
            Self::Sqlite(txn) => txn.rollback().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(txn, _) => txn.rollback().await.map_err(super::postgres::db_err),
        }
    }
}

/// Rows per data table, as `conn` sees them.
pub(super) async fn count_rows(conn: &impl ConnectionTrait) -> Result<Counts> {
    let mut counts = Counts::new();
    for table in DATA_TABLES {
        let rows = query_value::<i64>(conn, &format!("SELECT count(*) FROM \"{table}\""))
            .await?
            .unwrap_or(0);
        counts.insert(table, u64::try_from(rows).unwrap_or(0));
    }
    Ok(counts)
}
