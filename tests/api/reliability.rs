//! Faults and hostile input: what survives what. SQLite-specific unless a
//! test says it runs on both backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use entity::concept_element::Priority;
use interview_persistence::repositories::{NewNode, NewSession, Repositories};
use interview_persistence::{
    Database, DatabaseConfig, Error, HealthOptions, IntegrityFinding, check_health,
    check_health_at, init_database,
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::json;

use crate::fixtures::{count, exec, query_one};
use crate::helpers;
use crate::on_both_backends;
use crate::repositories::{element, new_session};
use crate::turn_builders::chain_turn;

on_both_backends!(
    hostile_values_are_stored_as_data,
    json_nested_too_deep_is_refused_clearly
);

async fn start(repos: &Repositories) -> String {
    repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("start a session")
        .0
        .id
}

fn file_of(db: &Database) -> PathBuf {
    match db.sqlite_location() {
        Some(interview_persistence::config::SqliteLocation::File { path, .. }) => path.clone(),
        other => panic!("a SQLite file, got {other:?}"),
    }
}

fn wal_of(db: &Database) -> PathBuf {
    let mut wal = file_of(db).into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn wal_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
}

async fn integrity(db: &Database) -> String {
    query_one(db, "PRAGMA integrity_check").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_readers_at_once_see_whole_turns_and_no_busy_error() {
    let test_db = helpers::sqlite().await;
    let repos = Arc::new(Repositories::new(&test_db.db));
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(start(&repos).await);
    }
    let sessions = Arc::new(sessions);
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(3);

    let mut writers = tokio::task::JoinSet::new();
    for session_id in sessions.iter().cloned() {
        let (repos, stop) = (Arc::clone(&repos), Arc::clone(&stop));
        writers.spawn(async move {
            let mut t = 0;
            while !stop.load(Ordering::Relaxed) && t < 400 {
                repos
                    .turns
                    .record_turn(chain_turn(&session_id, t + 1))
                    .await?;
                t += 1;
            }
            Ok::<(String, i32), Error>((session_id, t))
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    for reader in 0..4 {
        let (repos, stop, sessions) =
            (Arc::clone(&repos), Arc::clone(&stop), Arc::clone(&sessions));
        readers.spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let session_id = &sessions[(reads as usize + reader) % sessions.len()];
                let context = repos.turns.context(session_id, 10).await?;
                let turns = context.scoring_history.len();
                let whole = context.session.turn_count as usize == turns
                    && context.current_nodes.len() == 4 * turns
                    && context.edges.len() == 3 * turns;
                if !whole {
                    return Ok(Err(format!(
                        "half a turn seen: {} turns counted, {turns} scored, {} nodes, {} edges",
                        context.session.turn_count,
                        context.current_nodes.len(),
                        context.edges.len()
                    )));
                }
                reads += 1;
            }
            Ok::<Result<u32, String>, Error>(Ok(reads))
        });
    }
    tokio::time::sleep_until(deadline.into()).await;
    stop.store(true, Ordering::Relaxed);

    let mut written = 0;
    while let Some(done) = writers.join_next().await {
        let (session_id, turns) = done
            .expect("writer ran")
            .expect("no write failed (busy or otherwise)");
        assert_eq!(
            repos
                .sessions
                .get(&session_id)
                .await
                .expect("session")
                .turn_count,
            turns
        );
        assert_eq!(
            repos
                .scoring
                .history(&session_id)
                .await
                .expect("history")
                .len(),
            turns as usize,
            "lost turns"
        );
        written += turns;
    }
    let mut reads = 0;
    while let Some(done) = readers.join_next().await {
        reads += done
            .expect("reader ran")
            .expect("no read failed")
            .expect("readers saw whole turns");
    }
    assert!(
        written > 0 && reads > 0,
        "{written} turns written, {reads} reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_grows_under_a_long_reader_and_shrinks_back_under_the_limit_after_it() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.wal_size_limit = 256 * 1024;
    config.checkpoint_after_commits = 4;
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;

    let reader = db.dedicated_connection().await.expect("a reader");
    let snapshot = reader.begin().await.expect("begin");
    snapshot
        .execute_unprepared("SELECT COUNT(*) FROM kg_nodes")
        .await
        .expect("hold a snapshot");
    for t in 1..=60 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let grown = wal_bytes(&path);
    assert!(
        grown > 2 * config.wal_size_limit,
        "the WAL did not grow past the limit: {grown} bytes"
    );

    drop(snapshot);
    reader.close().await.expect("close the reader");
    let mut t = 61;
    let started = Instant::now();
    while wal_bytes(&path) > config.wal_size_limit && started.elapsed() < Duration::from_secs(10) {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
        t += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shrunk = wal_bytes(&path);
    assert!(
        shrunk <= config.wal_size_limit,
        "the WAL stayed at {shrunk} bytes (grew to {grown})"
    );
    assert_eq!(integrity(&db).await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_writes_with_a_typed_error_and_recovers_when_space_returns() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("turn 1");
    let limit = |pages: i64| async move {
        let txn = db.begin_write().await.expect("the writer");
        txn.execute_unprepared(&format!("PRAGMA max_page_count = {pages}"))
            .await
            .expect("set the limit");
        txn.commit().await.expect("commit");
    };
    let page_count: i64 = query_one(db, "PRAGMA page_count").await;
    limit(page_count + 2).await;

    let mut t = 2;
    let refused = loop {
        match repos.turns.record_turn(chain_turn(&session_id, t)).await {
            Ok(_) if t < 500 => t += 1,
            Ok(_) => panic!("500 turns fit in two more pages"),
            Err(err) => break err,
        }
    };
    assert!(
        matches!(refused, Error::StorageFull(_)),
        "expected StorageFull, got {refused:?}"
    );
    assert_eq!(refused.sqlite_code(), Some(13));
    let recorded = t - 1;
    let context = repos
        .turns
        .context(&session_id, 10)
        .await
        .expect("reads still work");
    assert_eq!(
        context.scoring_history.len(),
        recorded as usize,
        "a partial turn remains"
    );
    assert_eq!(context.session.turn_count, recorded);
    assert_eq!(context.current_nodes.len(), 4 * recorded as usize);

    limit(1_073_741_823).await;
    repos
        .turns
        .record_turn(chain_turn(&session_id, t))
        .await
        .expect("writes work again");
    assert_eq!(integrity(db).await, "ok");
}

/// A database with 20 turns, closed (so its WAL is folded in); returns the
/// directory and the file.
async fn a_closed_database_with_turns() -> (tempfile::TempDir, PathBuf) {
    let (dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    for t in 1..=20 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
    }
    let path = file_of(&db);
    db.close().await.expect("close");
    assert_eq!(wal_bytes(&path), 0, "closing folds the WAL in");
    (dir, path)
}

fn files_beside(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path.parent().expect("a directory"))
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_truncated_copy_of_a_database_is_refused_and_left_unchanged() {
    let (dir, original) = a_closed_database_with_turns().await;
    let bytes = std::fs::read(&original).expect("read");
    let truncated = dir.path().join("copy").join("truncated.db");
    std::fs::create_dir(truncated.parent().expect("parent")).expect("mkdir");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write half");
    let config = DatabaseConfig::sqlite_file(&truncated).expect("config");

    for result in [
        Database::connect(&config).await.map(|_| ()),
        init_database(&config).await.map(|_| ()),
    ] {
        match result {
            Err(Error::DamagedFile { reason, .. }) => {
                assert!(reason.contains("truncated"), "{reason}")
            }
            other => panic!("expected DamagedFile, got {other:?}"),
        }
    }
    let report = check_health_at(&config, HealthOptions::default()).await;
    assert!(!report.is_healthy());
    assert!(report.error.as_deref().unwrap_or("").contains("truncated"));
    assert_eq!(
        std::fs::read(&truncated).expect("read"),
        bytes[..bytes.len() / 2],
        "the file changed"
    );
    assert_eq!(
        files_beside(&truncated),
        ["truncated.db"],
        "something was created beside it"
    );
}

#[tokio::test]
async fn a_damaged_page_makes_health_unhealthy_and_init_refuse_to_migrate() {
    let (_dir, path) = a_closed_database_with_turns().await;
    // Make a migration pending, then damage a page in the middle.
    {
        let config = DatabaseConfig::sqlite_file(&path).expect("config");
        let db = Database::connect(&config).await.expect("connect");
        exec(&db, "DELETE FROM seaql_migrations")
            .await
            .expect("forget");
        db.close().await.expect("close");
    }
    let mut bytes = std::fs::read(&path).expect("read");
    let page = 4096;
    let middle = bytes.len() / page / 2 * page;
    for b in &mut bytes[middle + 8..middle + 600] {
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

async fn hostile_values_are_stored_as_data(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let hostile = [
        "Robert'); DROP TABLE sessions; --",
        "\"double\" 'single' `back` ; -- /* comment */",
        "SELECT * FROM kg_nodes WHERE 1=1 OR ''=''",
        "emoji 🥛☕️👩🏽‍🔬 and ZWJ",
        "עברית مرحبا right-to-left \u{202E}override",
        "percent %s %d %% and backslash \\ and newline\nand tab\t",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let node = repos
            .graph
            .create_node(NewNode::new(&session.id, text, &format!("type {text}")))
            .await
            .expect("store a hostile label");
        assert_eq!(repos.graph.node(&node.id).await.expect("read").label, *text);
        let found = repos
            .graph
            .find_current_node(&session.id, text, &format!("type {text}"))
            .await
            .expect("find");
        assert_eq!(
            found.map(|n| n.id),
            Some(node.id),
            "value {i} did not match itself"
        );
    }
    let megabyte = "ü".repeat(512 * 1024);
    let mut config = serde_json::Map::new();
    config.insert("notes".into(), json!(megabyte));
    config.insert(hostile[0].into(), json!(hostile[1]));
    let updated = repos
        .sessions
        .replace_config(&session.id, json!(config))
        .await
        .expect("a 1 MB config");
    assert_eq!(
        repos.sessions.config(&session.id).await.expect("read"),
        updated.config
    );
    assert_eq!(count(db, "sessions").await, 1, "the table survived");

    let with_nul = NewNode::new(&session.id, "nul \0 byte", "attribute");
    match db.backend() {
        interview_persistence::Backend::Sqlite => {
            let node = repos
                .graph
                .create_node(with_nul)
                .await
                .expect("SQLite stores a NUL byte");
            assert_eq!(
                repos.graph.node(&node.id).await.expect("read").label,
                "nul \0 byte"
            );
        }
        interview_persistence::Backend::Postgres => {
            let refused = repos.graph.create_node(with_nul).await;
            assert!(
                matches!(refused, Err(Error::InvalidValue(_))),
                "PostgreSQL text has no NUL: {refused:?}"
            );
        }
    }
}

async fn json_nested_too_deep_is_refused_clearly(db: &Database) {
    let repos = Repositories::new(db);
    let nested = |depth: usize| {
        let mut value = json!("bottom");
        for _ in 1..depth {
            value = json!({"d": value});
        }
        value
    };
    let mut deep = NewSession { ..new_session() };
    deep.config = nested(100);
    let session = repos
        .sessions
        .create(deep)
        .await
        .expect("100 levels are fine");
    assert_eq!(
        repos
            .sessions
            .get(&session.id)
            .await
            .expect("read back")
            .config,
        nested(100)
    );

    let mut too_deep = new_session();
    too_deep.config = nested(1_000);
    match repos.sessions.create(too_deep).await {
        Err(Error::InvalidInput(reason)) => assert!(reason.contains("deeper than"), "{reason}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let mut node = NewNode::new(&session.id, "deep", "attribute");
    node.properties = nested(129);
    assert!(matches!(
        repos.graph.create_node(node).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(count(db, "kg_nodes").await, 0);
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

/// Makes a path immutable with `chattr +i` (which binds root too) and
/// undoes it on drop.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// `None` (said loudly) where `chattr +i` does not work, e.g. on tmpfs;
    /// under `CI=true` that fails the test instead.
    fn new(paths: &[&Path]) -> Option<Self> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .args(paths)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let required = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!required, "chattr +i is unavailable on this machine's disk");
            eprintln!("SKIPPED (read-only location): chattr +i is not supported here");
        }
        ok.then(|| Self(paths.iter().map(|p| p.to_path_buf()).collect()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

/// Creates the database `config` names, and closes it.
async fn create(config: &DatabaseConfig) {
    init_database(config)
        .await
        .expect("init")
        .close()
        .await
        .expect("close");
}

#[tokio::test]
async fn a_database_in_a_read_only_place_fails_at_startup_with_a_typed_error() {
    helpers::init_tracing();
    // Under target/, which lives on the machine's ext4 disk (chattr works
    // there; tmpfs would not take it).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let existing = dir.path().join("existing.db");
    let config = DatabaseConfig::sqlite_file(&existing).expect("config");
    create(&config).await;
    let fresh = DatabaseConfig::sqlite_file(dir.path().join("fresh.db")).expect("config");

    // First only the file: SQLite opens it read-only without a word.
    let read_only_file = dir.path().join("read-only-file.db");
    let file_config = DatabaseConfig::sqlite_file(&read_only_file).expect("config");
    create(&file_config).await;
    let Some(file_guard) = Immutable::new(&[&read_only_file]) else {
        return; // said why, and failed under CI
    };
    match init_database(&file_config).await {
        Err(Error::ReadOnlyLocation { path, reason }) => {
            assert_eq!(path, read_only_file);
            assert!(!reason.is_empty());
        }
        other => panic!("a read-only file: expected ReadOnlyLocation at startup, got {other:?}"),
    }
    drop(file_guard);

    let _guard = Immutable::new(&[dir.path(), &existing]).expect("chattr +i worked a moment ago");
    for config in [&config, &fresh] {
        match init_database(config).await {
            Err(err @ Error::ReadOnlyLocation { .. }) => {
                assert!(err.to_string().contains("cannot be written"), "{err}");
            }
            other => panic!(
                "{}: expected ReadOnlyLocation at startup, got {other:?}",
                config.url
            ),
        }
    }
    let report = check_health_at(&config, HealthOptions::default()).await;
    assert!(!report.is_healthy());
}

#[tokio::test]
async fn health_skips_the_file_scan_on_a_large_database_unless_asked() {
    let test_db = helpers::sqlite().await;
    let db = &test_db.db;
    // ~40 MB of session rows, past the automatic quick-check limit.
    exec(
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
         INSERT INTO sessions (id, methodology, concept_id, concept_name, config) \
         SELECT 'big-' || i, 'm', 'c', hex(randomblob(524288)), '{}' FROM n",
    )
    .await
    .expect("fill");
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
    exec(
        db,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
         INSERT INTO sessions (id, methodology, concept_id, concept_name, config) \
         SELECT 'big-' || i, 'm', 'c', hex(randomblob(524288)), '{}' FROM n",
    )
    .await
    .expect("fill");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_cannot_get_the_lock_in_time_gets_a_typed_busy_error() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(200);
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;

    // Another writer (as another process would) holds the write lock.
    let other = helpers::outside_connection(&db).await;
    other
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .expect("take the lock");
    let started = Instant::now();
    let refused = repos.turns.record_turn(chain_turn(&session_id, 1)).await;
    assert!(
        matches!(refused, Err(Error::Busy(_))),
        "expected Busy, got {refused:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "it did not wait the busy timeout"
    );
    assert!(matches!(refused.unwrap_err().sqlite_code(), Some(5)));
    other
        .execute_unprepared("ROLLBACK")
        .await
        .expect("release the lock");

    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("the same turn, once the lock is free");
    assert_eq!(
        repos
            .scoring
            .history(&session_id)
            .await
            .expect("history")
            .len(),
        1
    );
}
