//! A small HTTP service over interview-persistence (axum): health, create
//! a session, record a turn, read the turn context. The routes, the error
//! responses and the shutdown live in `app.rs`, which the tests serve too.
//!
//! ```sh
//! cargo run --example axum_service            # DATABASE_URL / DATABASE_PATH, as the library reads them (README: Configuration)
//! LISTEN_ADDR=127.0.0.1:8080 RUST_LOG=info,tower_http=debug cargo run --example axum_service
//! ```
//!
//! ctrl-c or SIGTERM stops taking connections, lets the requests in flight
//! finish, then closes the database.

mod app;

use interview_persistence::{DatabaseConfig, init_database};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let db = init_database(&DatabaseConfig::from_env()?).await?;
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, database = %db.config().url, "listening");
    app::serve(listener, db, app::shutdown_signal()).await
}
