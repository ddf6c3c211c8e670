//! Creating and migrating the database: the Python module's five tests and
//! what tracked migrations add.

use interview_persistence::schema::schema_status;
use interview_persistence::{
    Database, DatabaseConfig, Error, IntegrityFinding, IntegrityMethod, check_health, init_database,
};
use sea_orm::ConnectionTrait;

use crate::fixtures;
use crate::fixtures::{TABLES, count, exec};
use crate::helpers;
use crate::on_both_backends;
use interview_persistence::migration::{Migrator, MigratorTrait};
use interview_persistence::schema::known_migrations;
use interview_persistence::{Backend, HealthStatus};
use sea_orm::EntityTrait;

on_both_backends!(
    init_creates_all_six_tables,
    a_standalone_connection_answers_select_1,
    a_fresh_database_is_healthy_with_zero_sessions,
    an_utterance_for_an_unknown_session_is_refused_by_the_foreign_key,
    init_twice_keeps_every_row_and_applies_nothing_again,
    migrating_down_then_up_restores_the_schema,
    the_schema_recorded_as_applied_matches_the_migration_list,
    a_database_with_a_migration_from_a_newer_build_is_refused_without_ddl,
);

async fn table_exists(db: &impl ConnectionTrait, table: &str) -> bool {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        _ => {
            format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("ask the catalogue")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count") == 1
}

async fn init_creates_all_six_tables(db: &Database) {
    for table in TABLES {
        assert!(
            table_exists(db.connection(), table).await,
            "table {table} is missing"
        );
    }
}

async fn a_standalone_connection_answers_select_1(db: &Database) {
    let connection = db
        .dedicated_connection()
        .await
        .expect("open a dedicated connection");
    let row = connection
        .query_one_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            "SELECT 1",
        ))
        .await
        .expect("SELECT 1")
        .expect("one row");
    assert_eq!(row.try_get_by_index::<i32>(0).expect("an integer"), 1);
    connection.close().await.expect("close it");
}

async fn a_fresh_database_is_healthy_with_zero_sessions(db: &Database) {
    let report = check_health(db).await;
    assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
    assert_eq!(report.session_count, Some(0));
    assert_eq!(report.pending_migrations, Vec::<String>::new());
    assert_eq!(report.latest_migration, known_migrations().last().cloned());
    assert_eq!(report.foreign_keys, Some(true));
    assert!(report.error.is_none());
    match db.backend() {
        Backend::Sqlite => {
            assert_eq!(report.integrity, Some(IntegrityFinding::Ok));
            assert_eq!(report.integrity_check, IntegrityMethod::Quick);
            assert_eq!(report.journal_mode.as_deref(), Some("wal"));
        }
        Backend::Postgres => {
            // The test server runs without data checksums (the Debian
            // default): nothing is checked, and the report says so.
            assert_eq!(report.integrity, Some(IntegrityFinding::NotChecked));
            assert_eq!(report.integrity_check, IntegrityMethod::NotRun);
            assert!(
                !report.path.contains("interview_test:interview_test"),
                "password shown: {}",
                report.path
            );
        }
    }
    let json = serde_json::to_value(&report).expect("serialise");
    for key in [
        "status",
        "session_count",
        "integrity",
        "path",
        "integrity_check",
        "backend",
        "latest_migration",
        "pending_migrations",
        "journal_mode",
        "foreign_keys",
        "writable",
        "elapsed_ms",
    ] {
        assert!(json.get(key).is_some(), "key {key} missing from {json}");
    }
    assert_eq!(json["status"], "healthy");
}

async fn an_utterance_for_an_unknown_session_is_refused_by_the_foreign_key(db: &Database) {
    let refused = fixtures::exec(
        db,
        "INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
         VALUES ('u1', 'nonexistent', 1, 'user', 'test')",
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(interview_persistence::Error::InvalidReference(_))
        ),
        "{refused:?}"
    );
    assert_eq!(count(db, "utterances").await, 0);
}

async fn init_twice_keeps_every_row_and_applies_nothing_again(db: &Database) {
    let session = fixtures::insert_session(db).await;
    let again = init_database(db.config()).await.expect("init again");
    let found = entity::session::Entity::find_by_id(session.id.clone())
        .one(again.connection())
        .await
        .expect("read the session");
    assert_eq!(found, Some(session));
    assert_eq!(
        count(&again, "seaql_migrations").await,
        known_migrations().len() as i64
    );
    again.close().await.expect("close");
}

async fn migrating_down_then_up_restores_the_schema(db: &Database) {
    // As the migration binary does it: foreign keys off (a rebuild refuses
    // to run with them on), each migration in its own transaction.
    let outside = helpers::outside_connection_without_foreign_keys(db).await;
    Migrator::down(&outside, None).await.expect("migrate down");
    outside.close().await.expect("close");
    for table in TABLES.iter().chain(&["session_erasures"]) {
        assert!(
            !table_exists(db.connection(), table).await,
            "{table} survived down"
        );
    }
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(status.applied, Vec::<String>::new());
    assert_eq!(status.pending, known_migrations());

    interview_persistence::schema::migrate(db)
        .await
        .expect("migrate up");
    for table in TABLES.iter().chain(&["session_erasures"]) {
        assert!(
            table_exists(db.connection(), table).await,
            "{table} missing after up"
        );
    }
    assert!(check_health(db).await.is_healthy());
}

async fn the_schema_recorded_as_applied_matches_the_migration_list(db: &Database) {
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(status.applied, known_migrations());
    assert!(status.pending.is_empty() && status.unknown.is_empty());
    let recorded: Vec<String> = Migrator::get_applied_migrations(db.connection())
        .await
        .expect("applied migrations")
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(recorded, known_migrations());
}

#[tokio::test]
async fn init_creates_the_file_and_its_missing_parent_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/deeper/interview.db");
    assert!(!path.exists());
    let config = interview_persistence::DatabaseConfig::sqlite_file(&path).expect("config");
    let db = init_database(&config).await.expect("init");
    assert!(path.is_file());
    assert!(check_health(&db).await.is_healthy());
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_inits_racing_on_one_fresh_database_apply_each_migration_once() {
    let mut configs = Vec::new();
    let (_dir, sqlite) = crate::helpers::sqlite_config();
    configs.push(sqlite);
    let postgres = crate::helpers::postgres_config().await;
    if let Some((_, config)) = &postgres {
        configs.push(config.clone());
    }
    for config in configs {
        let (a, b) = tokio::join!(init_database(&config), init_database(&config));
        let (a, b) = (a.expect("first init"), b.expect("second init"));
        assert_eq!(
            count(&a, "seaql_migrations").await,
            known_migrations().len() as i64
        );
        assert!(check_health(&b).await.is_healthy(), "{}", config.url);
        a.close().await.expect("close");
        b.close().await.expect("close");
    }
}

/// Runs each scenario's `init` on a fresh database that already holds a
/// relation named like the migration's last index, so the migration fails
/// after creating every table: nothing of it may remain, the relation and
/// its rows must, and once it is gone `init` completes.
async fn a_migration_that_fails_midway_leaves_the_previous_version(config: &DatabaseConfig) {
    let db = Database::connect(config).await.expect("connect");
    exec(
        &db,
        "CREATE TABLE idx_concept_elements_covered_by (note TEXT); \
         INSERT INTO idx_concept_elements_covered_by VALUES ('keep me'), ('and me')",
    )
    .await
    .expect("the obstacle and its rows");
    let refused = init_database(config).await;
    assert!(refused.is_err(), "the migration should have failed");
    let status = interview_persistence::schema::schema_status(db.connection())
        .await
        .expect("status");
    assert!(
        status.applied.is_empty(),
        "a migration was recorded: {status:?}"
    );
    let sessions_exist = db
        .connection()
        .execute_unprepared("SELECT 1 FROM sessions")
        .await
        .is_ok();
    assert!(!sessions_exist, "the migration's tables remained");
    assert_eq!(
        count(&db, "idx_concept_elements_covered_by").await,
        2,
        "data was lost"
    );

    exec(&db, "DROP TABLE idx_concept_elements_covered_by")
        .await
        .expect("remove the obstacle");
    let migrated = init_database(config).await.expect("init completes");
    assert!(check_health(&migrated).await.is_healthy());
    migrated.close().await.expect("close");
    db.close().await.expect("close");
}

#[tokio::test]
async fn a_migration_that_fails_midway_leaves_the_previous_version_on_sqlite() {
    let (_dir, config) = helpers::sqlite_config();
    a_migration_that_fails_midway_leaves_the_previous_version(&config).await;
}

#[tokio::test]
async fn a_migration_that_fails_midway_leaves_the_previous_version_on_postgres() {
    if let Some((_database, config)) = helpers::postgres_config().await {
        a_migration_that_fails_midway_leaves_the_previous_version(&config).await;
    }
}

#[tokio::test]
async fn a_newer_schema_with_pending_migrations_runs_no_ddl_at_all() {
    // Only the migration table exists, recording an unknown migration: the
    // first migration of this build is pending, and must not run.
    let (_dir, config) = helpers::sqlite_config();
    let db = Database::connect(&config).await.expect("connect");
    exec(&db, "CREATE TABLE seaql_migrations (version varchar NOT NULL PRIMARY KEY, applied_at integer NOT NULL)")
        .await
        .expect("create the migration table");
    exec(
        &db,
        "INSERT INTO seaql_migrations VALUES ('m29990101_000001_from_the_future', 0)",
    )
    .await
    .expect("record it");
    let refused = init_database(&config).await;
    assert!(
        matches!(refused, Err(Error::SchemaTooNew { .. })),
        "{refused:?}"
    );
    let tables = count(&db, "sqlite_master WHERE type = 'table'").await;
    assert_eq!(tables, 1, "DDL ran");
    let status = schema_status(db.connection()).await.expect("status");
    assert_eq!(status.unknown, ["m29990101_000001_from_the_future"]);
    for table in TABLES {
        let exists = db
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                db.connection().get_database_backend(),
                format!("SELECT 1 FROM sqlite_master WHERE name = '{table}'"),
            ))
            .await
            .expect("ask");
        assert!(exists.is_none(), "{table} was created");
    }
}

async fn a_database_with_a_migration_from_a_newer_build_is_refused_without_ddl(db: &Database) {
    exec(db, "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s1', 'm', 'c', 'n')")
        .await
        .expect("a session");
    exec(db, "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29990101_000001_from_the_future', 0)")
        .await
        .expect("record a migration this build does not know");

    let refused = init_database(db.config()).await;
    match refused {
        Err(Error::SchemaTooNew { unknown }) => {
            assert_eq!(unknown, ["m29990101_000001_from_the_future"]);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = Error::SchemaTooNew {
        unknown: vec!["m2999".into()],
    }
    .to_string();
    assert!(message.contains("newer than this build"), "{message}");

    let report = check_health(db).await;
    assert!(!report.is_healthy());
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("newer than this build")
    );
    assert_eq!(count(db, "sessions").await, 1, "rows were touched");
}

/// With the server's default isolation at REPEATABLE READ, a transaction's
/// snapshot is taken when its first statement starts — the advisory lock's
/// wait included — so a migration that waited for another must still see
/// what that one committed. Five races on fresh databases, each init must
/// succeed and apply each migration once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inits_racing_under_repeatable_read_by_default_apply_each_migration_once() {
    for _ in 0..5 {
        let Some((database, config)) = crate::helpers::postgres_config().await else {
            return;
        };
        let admin = helpers::outside_connection_to(&config).await;
        let name = database
            .url()
            .rsplit('/')
            .next()
            .expect("a name")
            .to_owned();
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
            ))
            .await
            .expect("repeatable read by default");
        admin.close().await.expect("close");
        let (a, b) = tokio::join!(init_database(&config), init_database(&config));
        let (a, b) = (a.expect("first init"), b.expect("second init"));
        assert_eq!(
            count(&a, "seaql_migrations").await,
            known_migrations().len() as i64
        );
        a.close().await.expect("close");
        b.close().await.expect("close");
    }
}

/// Init's refusal of a schema from a newer build comes before the file is
/// opened for writing: a rollback-journal file stays byte for byte as it
/// was (opening it for writing would switch it to WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_a_newer_schema_in_a_rollback_journal_file_leaving_its_bytes_as_they_were() {
    use sea_orm::sqlx::{self, Connection};
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("newer.db");
    fixtures::rollback_journal_study(&path, 1).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a plain connection");
    sqlx::query(
        "INSERT INTO seaql_migrations (version, applied_at) \
         VALUES ('m29990101_000001_from_the_future', 0)",
    )
    .execute(&mut conn)
    .await
    .expect("record a migration this build does not know");
    conn.close().await.expect("close");
    let before = fixtures::sha256_of(&path);

    let refused = init_database(&DatabaseConfig::sqlite_file(&path).expect("a path")).await;

    assert!(
        matches!(refused, Err(Error::SchemaTooNew { .. })),
        "{refused:?}"
    );
    assert_eq!(
        fixtures::sha256_of(&path),
        before,
        "the file's bytes are unchanged"
    );
    assert_eq!(
        fixtures::journal_bytes(&path),
        (1, 1),
        "still a rollback journal"
    );
}
