//! The health check (`src/health.rs`): what it checks, how thoroughly,
//! and what it reports.

use interview_persistence::{
    Database, DatabaseConfig, Error, HealthOptions, IntegrityFinding, IntegrityMethod,
    check_health, check_health_at, init_database,
};
use sea_orm::ConnectionTrait;

use crate::fixtures::{
    Immutable, TmpfsMount, a_closed_database_with_turns, exec, file_of, files_beside, wal_of,
};
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
    assert_eq!(auto.integrity_check, IntegrityMethod::NotRun);
    assert_eq!(
        serde_json::to_value(&auto).expect("json")["integrity_check"],
        "none"
    );
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
        let ran = match integrity {
            interview_persistence::IntegrityCheck::Full => IntegrityMethod::Full,
            _ => IntegrityMethod::Quick,
        };
        assert_eq!(report.integrity_check, ran, "{integrity:?}");
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

/// A closed, current database at `path`.
async fn a_closed_database_at(path: &std::path::Path) -> DatabaseConfig {
    let config = DatabaseConfig::sqlite_file(path).expect("config");
    init_database(&config)
        .await
        .expect("init")
        .close()
        .await
        .expect("close");
    config
}

/// `init` refuses the database with `ReadOnlyLocation`, and `health` on
/// the same configuration is unhealthy with `writable: false` and the
/// very same error: the two agree on what "cannot be written" means.
async fn assert_init_and_health_agree_it_cannot_be_written(
    config: &DatabaseConfig,
) -> interview_persistence::HealthReport {
    let refused = match init_database(config).await {
        Err(err @ Error::ReadOnlyLocation { .. }) => err,
        other => panic!(
            "init: expected ReadOnlyLocation, got {:?}",
            other.map(|_| ())
        ),
    };
    assert!(
        refused.to_string().contains("cannot be written"),
        "{refused}"
    );
    let report = check_health_at(config, HealthOptions::default()).await;
    assert!(!report.is_healthy(), "health calls it healthy: {report:?}");
    assert_eq!(report.writable, Some(false), "{report:?}");
    let error = report.error.as_deref().unwrap_or("");
    assert!(
        error.contains(&refused.to_string()),
        "health and init disagree:\n  init:   {refused}\n  health: {error}"
    );
    report
}

#[tokio::test]
async fn health_and_init_agree_that_an_immutable_file_cannot_be_written() {
    // Under target/, on the machine's ext4 disk (chattr works there).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().join("interview.db");
    let config = a_closed_database_at(&path).await;
    let before = std::fs::read(&path).expect("read");
    let Some(_immutable) = Immutable::new(&[&path]) else {
        return; // said why, and failed under CI
    };

    let report = assert_init_and_health_agree_it_cannot_be_written(&config).await;
    // What can be read is still reported.
    assert_eq!(report.integrity, Some(IntegrityFinding::Ok), "{report:?}");
    assert_eq!(report.session_count, Some(0), "{report:?}");
    // A URL that declares the database read-only asks for no writing.
    let read_only = DatabaseConfig::new(
        interview_persistence::DatabaseUrl::sqlite_file_read_only(&path).expect("a read-only URL"),
    );
    let report = check_health_at(&read_only, HealthOptions::default()).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.writable, None, "{report:?}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file changed"
    );
}

#[tokio::test]
async fn health_and_init_agree_that_a_file_in_a_directory_that_takes_no_new_files_cannot_be_written()
 {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().join("interview.db");
    let config = a_closed_database_at(&path).await;
    assert_eq!(
        files_beside(&path),
        ["interview.db"],
        "closing removes -wal and -shm"
    );
    // The directory (not the file) immutable: SQLite cannot create the
    // -wal and -shm it needs, as on a read-only mount.
    let Some(_immutable) = Immutable::new(&[dir.path()]) else {
        return;
    };
    assert_init_and_health_agree_it_cannot_be_written(&config).await;
}

#[tokio::test]
async fn health_and_init_agree_that_a_file_on_a_read_only_mount_cannot_be_written() {
    let Some(mount) = TmpfsMount::new() else {
        return; // said why
    };
    let path = mount.path().join("interview.db");
    let config = a_closed_database_at(&path).await;
    mount.remount_read_only();
    assert_init_and_health_agree_it_cannot_be_written(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_of_an_open_database_reports_its_file_turned_immutable_as_unwritable() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().join("interview.db");
    let config = a_closed_database_at(&path).await;
    let db = init_database(&config).await.expect("init");
    let report = check_health(&db).await;
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.writable, Some(true), "{report:?}");

    let Some(immutable) = Immutable::new(&[&path]) else {
        return;
    };
    let report = check_health(&db).await;
    assert!(!report.is_healthy(), "{report:?}");
    assert_eq!(report.writable, Some(false), "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("cannot be written"),
        "{report:?}"
    );
    drop(immutable);
    assert!(check_health(&db).await.is_healthy());
    db.close().await.expect("close");
}

/// A SQLite varint at `at` in `bytes`: its value and its length.
fn varint(bytes: &[u8], at: usize) -> (u64, usize) {
    let mut value = 0u64;
    for i in 0..9 {
        let byte = bytes[at + i];
        if i == 8 {
            return ((value << 8) | u64::from(byte), 9);
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    unreachable!("a varint is at most 9 bytes")
}

/// Changes one byte of one key of the index `idx_kg_nodes_session_label`
/// in the closed database at `path`: the last byte of the label in the
/// last cell of its last leaf page, raised by one. The largest key stays
/// the largest, so the file remains a valid b-tree that `quick_check`
/// passes, but that index entry no longer matches its row.
fn damage_one_index_key(path: &std::path::Path) {
    let index = "idx_kg_nodes_session_label";
    let (page_size, leaf) = {
        let db = rusqlite::Connection::open(path).expect("open");
        let page_size: i64 = db
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .expect("page size");
        // dbstat (the bundled SQLite has it) lists the pages of a b-tree.
        let leaf: i64 = db
            .query_row(
                "SELECT max(pageno) FROM dbstat WHERE name = ?1 AND pagetype = 'leaf'",
                [index],
                |row| row.get(0),
            )
            .expect("the index's leaf pages");
        (
            usize::try_from(page_size).expect("a size"),
            usize::try_from(leaf).expect("a page number"),
        )
    };
    let mut bytes = std::fs::read(path).expect("read");
    let page = &mut bytes[(leaf - 1) * page_size..leaf * page_size];
    assert_eq!(page[0], 0x0A, "page {leaf} is not an index leaf page");
    let cells = usize::from(u16::from_be_bytes([page[3], page[4]]));
    assert!(cells > 0, "an empty leaf");
    // The cell pointer array (after the 8-byte leaf header) is in key
    // order: its last entry is the largest key of the page.
    let pointer = 8 + 2 * (cells - 1);
    let cell = usize::from(u16::from_be_bytes([page[pointer], page[pointer + 1]]));
    let (_payload, payload_len) = varint(page, cell);
    let record = cell + payload_len;
    let (header_size, mut at) = varint(page, record);
    // Serial types: session_id, label, rowid.
    let mut types = Vec::new();
    while at < usize::try_from(header_size).expect("a size") {
        let (serial_type, len) = varint(page, record + at);
        types.push(serial_type);
        at += len;
    }
    let text_len = |t: u64| {
        assert!(t >= 13 && t % 2 == 1, "serial type {t} is not text");
        usize::try_from((t - 13) / 2).expect("a length")
    };
    let label_start = record + at + text_len(types[0]);
    let label_end = label_start + text_len(types[1]);
    page[label_end - 1] += 1;
    std::fs::write(path, &bytes).expect("write the damage");

    let db = rusqlite::Connection::open(path).expect("open");
    let check = |pragma: &str| -> String {
        db.query_row(pragma, [], |row| row.get(0))
            .expect("the check")
    };
    assert_eq!(
        check("PRAGMA quick_check"),
        "ok",
        "the damage must be one quick_check cannot see"
    );
    assert_ne!(
        check("PRAGMA integrity_check"),
        "ok",
        "the damage is not one"
    );
}

#[tokio::test]
async fn health_says_which_integrity_check_ran_and_only_the_full_one_finds_a_damaged_index_key() {
    let (_dir, path) = a_closed_database_with_turns().await;
    damage_one_index_key(&path);
    let config = DatabaseConfig::sqlite_file(&path).expect("config");

    for options in [
        HealthOptions::default(),
        HealthOptions {
            integrity: interview_persistence::IntegrityCheck::Quick,
        },
    ] {
        let report = check_health_at(&config, options).await;
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(
            report.integrity_check,
            IntegrityMethod::Quick,
            "{options:?}"
        );
        assert_eq!(json["integrity_check"], "quick", "{options:?}: {json}");
        // What a quick check says of it, it says as a quick check's.
        assert_eq!(json["integrity"], "ok", "{options:?}: {json}");
    }

    let full = check_health_at(
        &config,
        HealthOptions {
            integrity: interview_persistence::IntegrityCheck::Full,
        },
    )
    .await;
    let json = serde_json::to_value(&full).expect("json");
    assert_eq!(full.integrity_check, IntegrityMethod::Full);
    assert_eq!(json["integrity_check"], "full", "{json}");
    assert!(!full.is_healthy(), "{full:?}");
    let finding = json["integrity"].as_str().unwrap_or("");
    assert!(
        finding.contains("idx_kg_nodes_session_label"),
        "the full check does not name the index: {json}"
    );
}
