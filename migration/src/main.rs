//! The migration command line: `cargo run -p migration -- up|down|status|fresh`
//! or `sea-orm-cli migrate …`, against `DATABASE_URL` (or `-u URL`).

use migration::{Migrator, sqlite_pragmas};
use sea_orm_migration::sea_orm::Database;
use sea_orm_migration::sea_orm::sqlx::sqlite::SqliteSynchronous;

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli_with_connection(Migrator, |mut options| async move {
        options.map_sqlx_sqlite_opts(|o| {
            // Foreign keys off, so that a table rebuild cannot cascade;
            // each rebuild runs `foreign_key_check` before it commits.
            sqlite_pragmas::configure(
                o,
                SqliteSynchronous::Normal,
                sqlite_pragmas::DEFAULT_BUSY_TIMEOUT,
            )
            .foreign_keys(false)
        });
        Database::connect(options).await
    })
    .await;
}
