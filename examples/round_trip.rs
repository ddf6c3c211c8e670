//! How long one round trip to a pooled SQLite connection takes (`SELECT 1`
//! through SeaORM and sqlx's worker thread), to explain the turn benchmark.

use std::time::Instant;

use interview_persistence::{Database, DatabaseConfig, DatabaseUrl};
use sea_orm::{ConnectionTrait, TransactionTrait};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for flavor in ["multi_thread", "current_thread"] {
        let runtime = match flavor {
            "multi_thread" => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?,
            _ => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        };
        runtime.block_on(async {
            let dir = tempfile::tempdir()?;
            let config = DatabaseConfig::new(DatabaseUrl::sqlite_file(dir.path().join("rt.db"))?);
            let db = Database::connect(&config).await?;
            let n = 5000;
            let started = Instant::now();
            for _ in 0..n {
                db.connection().execute_unprepared("SELECT 1").await?;
            }
            let pooled = started.elapsed().as_secs_f64() / f64::from(n) * 1e6;
            let txn = db.connection().begin().await?;
            let started = Instant::now();
            for _ in 0..n {
                txn.execute_unprepared("SELECT 1").await?;
            }
            let in_txn = started.elapsed().as_secs_f64() / f64::from(n) * 1e6;
            let ten = ["SELECT 1"; 10].join(";\n");
            let started = Instant::now();
            for _ in 0..n {
                txn.execute_unprepared(&ten).await?;
            }
            let ten_statements = started.elapsed().as_secs_f64() / f64::from(n) * 1e6;
            let ten_values = ["SELECT ?"; 10].join(";\n");
            let started = Instant::now();
            for _ in 0..n {
                txn.query_all_raw(sea_orm::Statement::from_sql_and_values(
                    sea_orm::DbBackend::Sqlite,
                    &ten_values,
                    (0..10).map(sea_orm::Value::from).collect::<Vec<_>>(),
                ))
                .await?;
            }
            let ten_bound = started.elapsed().as_secs_f64() / f64::from(n) * 1e6;
            drop(txn);
            println!("{flavor}: {pooled:.1} µs per pooled round trip, {in_txn:.1} µs inside a transaction, {ten_statements:.1} µs for 10 statements in one, {ten_bound:.1} µs for 10 bound statements returning rows");
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
    }
    Ok(())
}
