//! Test databases: every test gets its own, on SQLite (a file in a fresh
//! temporary directory) or on PostgreSQL (a fresh database on the server
//! named by `POSTGRES_TEST_URL`, dropped when the test ends, pass or fail).

use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use interview_persistence::{Database, DatabaseConfig, init_database};
use sea_orm::ConnectionTrait;
use tempfile::TempDir;

/// The server the PostgreSQL tests use: a maintenance URL whose role may
/// create databases. `scripts/test.sh` starts one and sets it.
pub const POSTGRES_TEST_URL: &str = "POSTGRES_TEST_URL";

/// Shows the library's tracing output when `TEST_LOG` is set.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "debug,sqlx=warn".into()),
                )
                .with_test_writer()
                .init();
        }
    });
}

/// A database that exists for one test. Dropping it removes the
/// temporary directory or drops the PostgreSQL database.
pub struct TestDb {
    /// The initialised database.
    pub db: Database,
    _sqlite_dir: Option<TempDir>,
    _postgres: Option<PostgresDatabase>,
}

/// A configuration for a SQLite file `interview.db` in a fresh temporary
/// directory; nothing is created yet.
pub fn sqlite_config() -> (TempDir, DatabaseConfig) {
    init_tracing();
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let config =
        DatabaseConfig::sqlite_file(dir.path().join("interview.db")).expect("a valid path");
    (dir, config)
}

/// An initialised SQLite database of its own.
pub async fn sqlite() -> TestDb {
    let (dir, config) = sqlite_config();
    let db = init_database(&config)
        .await
        .expect("init a SQLite database");
    TestDb {
        db,
        _sqlite_dir: Some(dir),
        _postgres: None,
    }
}

/// Whether PostgreSQL tests must run (CI) rather than be skipped.
pub fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A fresh, empty PostgreSQL database and the configuration that reaches
/// it, or `None` (said loudly) when no server is configured outside CI.
///
/// # Panics
/// Under `CI=true` when `POSTGRES_TEST_URL` is unset or the server cannot
/// be reached: CI must not pass by skipping a backend.
pub async fn postgres_config() -> Option<(PostgresDatabase, DatabaseConfig)> {
    init_tracing();
    let Some(maintenance_url) = std::env::var(POSTGRES_TEST_URL)
        .ok()
        .filter(|v| !v.is_empty())
    else {
        assert!(
            !postgres_required(),
            "CI=true but {POSTGRES_TEST_URL} is unset: run the tests through scripts/test.sh"
        );
        eprintln!(
            "SKIPPED (PostgreSQL): {POSTGRES_TEST_URL} is unset; run scripts/test.sh to test on PostgreSQL too"
        );
        return None;
    };
    let database = PostgresDatabase::create(&maintenance_url).await;
    let config = DatabaseConfig::new(
        database
            .url()
            .parse()
            .expect("the test database URL parses"),
    );
    Some((database, config))
}

/// An initialised PostgreSQL database of its own, or `None` as
/// [`postgres_config`] says.
pub async fn postgres() -> Option<TestDb> {
    let (database, config) = postgres_config().await?;
    let db = init_database(&config)
        .await
        .expect("init a PostgreSQL database");
    Some(TestDb {
        db,
        _sqlite_dir: None,
        _postgres: Some(database),
    })
}

/// A database created on the test server for one test, dropped (with its
/// connections) when this value is dropped, also during a panic.
pub struct PostgresDatabase {
    maintenance_url: String,
    name: String,
}

impl PostgresDatabase {
    async fn create(maintenance_url: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "interview_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = sea_orm::Database::connect(maintenance_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_TEST_URL}: {e}"));
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .expect("drop a leftover test database");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Self {
            maintenance_url: maintenance_url.to_owned(),
            name,
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.maintenance_url).expect("a valid maintenance URL");
        url.set_path(&self.name);
        url.to_string()
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let url = self.maintenance_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop cannot await, and may run inside the test's runtime: use a
        // runtime of its own on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = sea_orm::Database::connect(url.as_str()).await?;
                admin.execute_unprepared(&sql).await?;
                admin.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// A plain connection to the same database, opened as another program
/// would (no pragmas of the module's, not through its writer): for tests
/// that play a second process, an outside lock holder or an obstacle.
pub async fn outside_connection(db: &Database) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(db.config().url.expose())
        .await
        .expect("an outside connection")
}

/// A plain connection to the database `config` names.
pub async fn outside_connection_to(config: &DatabaseConfig) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(config.url.expose())
        .await
        .expect("an outside connection")
}

/// [`outside_connection`] with foreign keys off, as the migration binary
/// connects (SQLite; on PostgreSQL the same as `outside_connection`).
pub async fn outside_connection_without_foreign_keys(db: &Database) -> sea_orm::DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(db.config().url.expose());
    options
        .max_connections(1)
        .map_sqlx_sqlite_opts(|o| o.foreign_keys(false));
    sea_orm::Database::connect(options)
        .await
        .expect("an outside connection")
}

/// The pid and query of a backend of `db`'s PostgreSQL database that waits
/// for a lock, once one does; panics after `within`.
///
/// It polls on a pooled connection, one statement per transaction:
/// statistics views are snapshots per transaction, so a poll from inside a
/// lock holder's open transaction keeps seeing its first answer and would
/// wait forever.
pub async fn lock_waiter(db: &Database, within: std::time::Duration) -> (i32, String) {
    use sea_orm::{DbBackend, Statement};
    let deadline = std::time::Instant::now() + within;
    loop {
        let row = db
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pid, query FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("read pg_stat_activity");
        if let Some(row) = row {
            return (
                row.try_get_by_index::<i32>(0).expect("a pid"),
                row.try_get_by_index::<String>(1).expect("a query"),
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no backend waited for a lock within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs each named scenario (`async fn(&Database)`) as two tests,
/// `<scenario>::sqlite` and `<scenario>::postgres`, each on a fresh
/// initialised database of its own.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let test_db = $crate::helpers::sqlite().await;
                super::$scenario(&test_db.db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(test_db) = $crate::helpers::postgres().await {
                    super::$scenario(&test_db.db).await;
                }
            }
        }
    )+};
}
