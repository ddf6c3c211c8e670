//! The health check (`src/health.rs`): what it checks, how thoroughly,
//! and what it reports.

use interview_persistence::{
    Database, DatabaseConfig, Error, HealthOptions, IntegrityFinding, check_health,
    check_health_at, init_database,
};
use sea_orm::ConnectionTrait;

use crate::fixtures::{a_closed_database_with_turns, exec, file_of, wal_of};
use crate::helpers;

/// 40 sessions of ~1 MB each.
async fn fill_40_mb(db: &interview_persistence::Database) {
    exec(
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
         INSERT INTO sessions (id, methodology, concept_id, concept_name, config) \
         SELECT 'big-' || i, 'm', 'c', hex(randomblob(524288)), '{}' FROM n",
    )
    .await
    .expect("fill");
}

#[tokio::test]
async fn health_skips_the_file_scan_on_a_large_database_unless_asked() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    // ~40 MB of session rows, past the automatic quick-check limit.
    fill_40_mb(db).await;
    helpers::outside_connection(db)
        .await
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let size = std::fs::metadata(file_of(db)).expect("size").len();
    assert!(
        size > interview_persistence::AUTO_QUICK_CHECK_LIMIT,
        "{size} bytes"
    );

    let auto = check_health(db).await;
    assert!(auto.is_healthy(), "{auto:?}");
    assert_eq!(auto.integrity, Some(IntegrityFinding::Skipped));
    assert_eq!(auto.session_count, Some(40));
    for integrity in [
        interview_persistence::IntegrityCheck::Quick,
        interview_persistence::IntegrityCheck::Full,
    ] {
        let report =
            interview_persistence::check_health_with(db, HealthOptions { integrity }).await;
        assert_eq!(
            report.integrity,
            Some(IntegrityFinding::Ok),
            "{integrity:?}"
        );
    }
}

#[tokio::test]
async fn health_checks_a_small_database_whose_files_grew_large() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    // ~40 MB written then deleted: the file keeps its free pages, the WAL
    // file keeps its size, but the pages in use are few.
    fill_40_mb(db).await;
    exec(db, "DELETE FROM sessions").await.expect("empty");
    let outside = helpers::outside_connection(db).await;
    outside
        .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
        .await
        .expect("checkpoint");
    let files: u64 = [file_of(db), wal_of(db)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    assert!(
        files > interview_persistence::AUTO_QUICK_CHECK_LIMIT,
        "{files} bytes of files"
    );

    let auto = check_health(db).await;
    assert!(auto.is_healthy(), "{auto:?}");
    assert_eq!(auto.integrity, Some(IntegrityFinding::Ok), "{auto:?}");
}

#[tokio::test]
async fn a_damaged_page_makes_health_unhealthy_and_init_refuse_to_migrate() {
    let (_dir, path) = a_closed_database_with_turns().await;
    // Make a migration pending, then damage a page in use: the root page
    // of kg_nodes (a page picked by its place in the file may be free, or
    // damaged only in its unused space, which no check reads).
    let root_page = {
        let config = DatabaseConfig::sqlite_file(&path).expect("config");
        let db = Database::connect(&config).await.expect("connect");
        exec(&db, "DELETE FROM seaql_migrations")
            .await
            .expect("forget");
        let root: i64 = crate::fixtures::query_one(
            &db,
            "SELECT rootpage FROM sqlite_master WHERE name = 'kg_nodes'",
        )
        .await;
        db.close().await.expect("close");
        usize::try_from(root).expect("a page number")
    };
    let mut bytes = std::fs::read(&path).expect("read");
    let page = 4096;
    let start = (root_page - 1) * page;
    for b in &mut bytes[start + 8..start + 600] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).expect("damage");

    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let report = check_health_at(&config, HealthOptions::default()).await;
    assert!(!report.is_healthy(), "{report:?}");
    assert!(
        report
            .integrity
            .as_ref()
            .is_some_and(IntegrityFinding::is_failure)
            || report.error.as_deref().unwrap_or("").contains("integrity"),
        "{report:?}"
    );

    let refused = init_database(&config).await;
    match &refused {
        Err(Error::DamagedFile { reason, .. }) => {
            assert!(reason.contains("nothing was migrated"), "{reason}")
        }
        other => panic!("expected DamagedFile, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        bytes,
        "the file was modified"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_warns_about_a_database_file_others_can_read_and_leaves_its_mode_as_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    db.close().await.expect("close");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let db = init_database(&config).await.expect("init again");
    let report = check_health(&db).await;
    assert!(
        report.is_healthy(),
        "a warning is not unhealthy: {report:?}"
    );
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("0644"),
        "{}",
        report.warnings[0]
    );
    assert!(
        report.warnings[0].contains(&path.display().to_string()),
        "{}",
        report.warnings[0]
    );
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["warnings"][0], report.warnings[0].as_str());
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the module changed an existing file's mode");
    db.close().await.expect("close");
}

#[tokio::test]
async fn health_on_a_mistyped_path_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("no/such/dir/interview.db");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let report = check_health_at(&config, HealthOptions::default()).await;
    assert!(!report.is_healthy());
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("no database file"),
        "{report:?}"
    );
    assert!(!dir.path().join("no").exists(), "a directory was created");
}

#[tokio::test]
async fn health_leaves_a_rollback_journal_file_byte_for_byte_and_reads_mode_ro_files() {
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    db.close().await.expect("close");
    {
        let db = rusqlite::Connection::open(&path).expect("open");
        db.pragma_update(None, "journal_mode", "DELETE")
            .expect("rollback journal");
    }
    let before = std::fs::read(&path).expect("read");
    let report = check_health_at(&config, HealthOptions::default()).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.journal_mode.as_deref(), Some("delete"));
    assert!(
        std::fs::read(&path).expect("read") == before,
        "health changed the file"
    );

    let read_only = DatabaseConfig::new(
        interview_persistence::DatabaseUrl::sqlite_file_read_only(&path).expect("a read-only URL"),
    );
    let report = check_health_at(&read_only, HealthOptions::default()).await;
    assert!(report.is_healthy(), "{report:?}");
    assert!(
        std::fs::read(&path).expect("read") == before,
        "health changed the file"
    );
}
