//! Bad input gets a clear, typed error and loses nothing.

use std::path::Path;

use interview_persistence::HealthOptions;
use interview_persistence::schema::schema_status;
use interview_persistence::{
    Database, DatabaseConfig, DatabaseUrl, Error, check_health, check_health_at, init_database,
};
use sea_orm::ConnectionTrait;

use crate::fixtures::{TABLES, count, exec};
use crate::helpers;
use crate::on_both_backends;

on_both_backends!(a_database_with_a_migration_from_a_newer_build_is_refused_without_ddl);

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn assert_left_untouched_and_refused(contents: &[u8], expected_reason: &str) {
    let (dir, config) = helpers::sqlite_config();
    let path = dir.path().join("interview.db");
    std::fs::write(&path, contents).expect("write the file");

    let connect = Database::connect(&config).await;
    let init = init_database(&config).await;
    let health = check_health_at(&config, HealthOptions::default()).await;

    for result in [connect.map(|_| ()), init.map(|_| ())] {
        match result {
            Err(Error::NotADatabase { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains(expected_reason), "reason: {reason}");
            }
            other => panic!("expected NotADatabase, got {other:?}"),
        }
    }
    assert!(!health.is_healthy());
    let message = health.error.expect("an error in the report");
    assert!(message.contains("is not a SQLite database"), "{message}");
    assert_eq!(
        std::fs::read(&path).expect("read back"),
        contents,
        "the file changed"
    );
    assert_eq!(
        files_in(dir.path()),
        ["interview.db"],
        "something was created beside it"
    );
}

#[tokio::test]
async fn a_text_file_is_refused_and_left_byte_for_byte_unchanged() {
    let text = "not a database: these are someone's notes\n".repeat(100);
    assert_left_untouched_and_refused(text.as_bytes(), "header is not").await;
}

#[tokio::test]
async fn random_bytes_are_refused_and_left_byte_for_byte_unchanged() {
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_left_untouched_and_refused(&bytes, "header is not").await;
}

#[tokio::test]
async fn a_file_shorter_than_a_header_is_refused_and_left_unchanged() {
    assert_left_untouched_and_refused(b"SQLite", "shorter than").await;
}

#[tokio::test]
async fn a_directory_where_the_file_should_be_is_refused() {
    let (dir, config) = helpers::sqlite_config();
    std::fs::create_dir(dir.path().join("interview.db")).expect("mkdir");
    let refused = init_database(&config).await;
    assert!(
        matches!(refused, Err(Error::NotADatabase { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_zero_length_file_becomes_an_empty_database() {
    let (dir, config) = helpers::sqlite_config();
    std::fs::write(dir.path().join("interview.db"), b"").expect("touch");
    let db = init_database(&config).await.expect("init an empty file");
    assert!(check_health(&db).await.is_healthy());
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

#[tokio::test]
async fn an_unparseable_url_is_an_error_naming_it() {
    for url in [
        "mysql://localhost/db",
        "interview.db",
        "sqlite://data/x.db?mode=sideways",
        "postgres://",
    ] {
        match DatabaseUrl::parse(url) {
            Err(Error::InvalidUrl { url: named, reason }) => {
                assert!(!reason.is_empty());
                assert_eq!(named, url);
                assert!(
                    Error::InvalidUrl { url: named, reason }
                        .to_string()
                        .contains(url)
                );
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_directory_that_cannot_be_created_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"in the way").expect("write");
    let config = DatabaseConfig::sqlite_file(blocker.join("sub/interview.db")).expect("config");
    match init_database(&config).await {
        Err(err @ Error::CreateDirectory { .. }) => {
            let Error::CreateDirectory { path, .. } = &err else {
                unreachable!()
            };
            assert_eq!(path, &blocker.join("sub"));
            assert!(err.to_string().contains("a-file/sub"), "{err}");
        }
        other => panic!("expected CreateDirectory, got {other:?}"),
    }
    assert_eq!(std::fs::read(&blocker).expect("read"), b"in the way");
}
