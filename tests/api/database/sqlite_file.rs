//! The file checks (`src/database/sqlite_file.rs`): a file that is not a
//! database, a truncated or unwritable one, is refused with a typed error
//! and left byte-for-byte as it was.

use std::time::{Duration, Instant};

use std::os::unix::fs::FileTypeExt;

use interview_persistence::{
    Database, DatabaseConfig, Error, FileKind, HealthOptions, check_health, check_health_at,
    init_database,
};

use sea_orm::ConnectionTrait;

use crate::fixtures::{
    Immutable, a_closed_database_with_turns, answers_within, files_beside, files_in, make_fifo,
};
use crate::helpers;

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
        matches!(
            refused,
            Err(Error::NotARegularFile {
                kind: FileKind::Directory,
                ..
            })
        ),
        "{refused:?}"
    );
}

/// How long opening may take to refuse what is at the path: at once, but
/// on a loaded 2-core machine.
const AT_ONCE: Duration = Duration::from_secs(3);

/// `Database::connect`, `init_database` and `check_health_at` on the
/// database path `path` (in `config`) each answer within [`AT_ONCE`] with
/// `NotARegularFile` of `kind` (the report's error naming the path and the
/// kind), and `path` is still what it was (`still_there`).
fn assert_refused_at_once(
    config: &DatabaseConfig,
    path: &std::path::Path,
    kind: FileKind,
    link_target: Option<&std::path::Path>,
) {
    let connect = answers_within(AT_ONCE, "Database::connect", {
        let config = config.clone();
        move || async move { Database::connect(&config).await.map(|_| ()) }
    });
    let init = answers_within(AT_ONCE, "init_database", {
        let config = config.clone();
        move || async move { init_database(&config).await.map(|_| ()) }
    });
    for (call, result) in [("connect", connect), ("init", init)] {
        match result {
            Err(Error::NotARegularFile {
                path: refused,
                kind: found,
                link_target: target,
            }) => {
                assert_eq!(refused, path, "{call}");
                assert_eq!(found, kind, "{call}");
                assert_eq!(target.as_deref(), link_target, "{call}");
            }
            other => panic!("{call}: expected NotARegularFile ({kind}), got {other:?}"),
        }
    }
    let report = answers_within(AT_ONCE, "check_health_at", {
        let config = config.clone();
        move || async move { check_health_at(&config, HealthOptions::default()).await }
    });
    assert!(!report.is_healthy(), "{report:?}");
    let error = report.error.as_deref().unwrap_or("");
    assert!(
        error.contains(&path.display().to_string()) && error.contains(&kind.to_string()),
        "the report names neither the path nor what is there: {error}"
    );
}

#[test]
fn a_fifo_at_the_database_path_is_refused_at_once_without_being_opened() {
    let (dir, config) = helpers::sqlite_config();
    let path = dir.path().join("interview.db");
    make_fifo(&path);
    assert_refused_at_once(&config, &path, FileKind::Fifo, None);
    let file_type = std::fs::symlink_metadata(&path).expect("stat").file_type();
    assert!(file_type.is_fifo(), "the FIFO was replaced: {file_type:?}");
    assert_eq!(
        files_in(dir.path()),
        ["interview.db"],
        "something was created beside it"
    );
}

#[test]
fn a_symbolic_link_to_a_fifo_is_refused_as_the_fifo_it_leads_to() {
    let (dir, config) = helpers::sqlite_config();
    let fifo = dir.path().join("pipe");
    make_fifo(&fifo);
    let path = dir.path().join("interview.db");
    std::os::unix::fs::symlink(&fifo, &path).expect("symlink");
    assert_refused_at_once(&config, &path, FileKind::Fifo, Some(&fifo));
}

#[test]
fn a_unix_socket_at_the_database_path_is_refused_naming_what_it_is() {
    let (dir, config) = helpers::sqlite_config();
    let path = dir.path().join("interview.db");
    let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind a socket");
    assert_refused_at_once(&config, &path, FileKind::Socket, None);
    let file_type = std::fs::symlink_metadata(&path).expect("stat").file_type();
    assert!(
        file_type.is_socket(),
        "the socket was replaced: {file_type:?}"
    );
}

#[test]
fn a_link_to_a_character_device_is_refused_not_taken_for_an_empty_database() {
    let (dir, config) = helpers::sqlite_config();
    let path = dir.path().join("interview.db");
    std::os::unix::fs::symlink("/dev/null", &path).expect("symlink");
    assert_refused_at_once(
        &config,
        &path,
        FileKind::CharacterDevice,
        Some(std::path::Path::new("/dev/null")),
    );
    assert_eq!(
        files_in(dir.path()),
        ["interview.db"],
        "something was created beside it"
    );
}

#[tokio::test]
async fn a_zero_length_file_becomes_an_empty_database() {
    let (dir, config) = helpers::sqlite_config();
    std::fs::write(dir.path().join("interview.db"), b"").expect("touch");
    let db = init_database(&config).await.expect("init an empty file");
    assert!(check_health(&db).await.is_healthy());
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

/// The permission bits of `path`.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_and_directories_the_module_creates_are_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    helpers::init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    // An existing directory that others may read keeps its mode.
    let existing = dir.path().join("shared");
    std::fs::create_dir(&existing).expect("mkdir");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = existing.join("nested/deeper/interview.db");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let db = init_database(&config).await.expect("init");
    let repos = interview_persistence::repositories::Repositories::new(&db);
    crate::fixtures::start(&repos).await;

    let wal = path.with_file_name("interview.db-wal");
    let shm = path.with_file_name("interview.db-shm");
    assert!(wal.is_file() && shm.is_file(), "{:?}", files_beside(&path));
    for (file, expected) in [
        (existing.join("nested"), 0o700),
        (existing.join("nested/deeper"), 0o700),
        (path.clone(), 0o600),
        (wal, 0o600),
        (shm, 0o600),
        (existing.clone(), 0o755),
    ] {
        assert_eq!(
            mode_of(&file),
            expected,
            "{} has mode {:o}",
            file.display(),
            mode_of(&file)
        );
    }
    let report = check_health(&db).await;
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let json = serde_json::to_value(&report).expect("json");
    assert!(json.get("warnings").is_none(), "{json}");
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_database_is_a_file_only_its_owner_can_read() {
    let db = init_database(&DatabaseConfig::new(
        "sqlite::memory:".parse().expect("url"),
    ))
    .await
    .expect("init");
    crate::fixtures::start(&interview_persistence::repositories::Repositories::new(&db)).await;
    // The private files of every memory database of this test process.
    let prefix = format!("interview-memory-{}-", std::process::id());
    let mut checked = 0;
    for entry in std::fs::read_dir(std::env::temp_dir()).expect("read the temp dir") {
        let entry = entry.expect("entry");
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        // Another test's database may come and go meanwhile.
        let Ok(files) = std::fs::read_dir(entry.path()) else {
            continue;
        };
        assert_eq!(mode_of(&entry.path()), 0o700);
        for file in files.flatten() {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(metadata) = file.metadata() {
                assert_eq!(
                    metadata.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    file.path().display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 3,
        "found {checked} files (memory.db, -wal, -shm)"
    );
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_while_another_process_holds_the_write_lock_does_not_wait_for_it() {
    let (_dir, mut config) = helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(1000);
    create(&config).await;
    let db = interview_persistence::Database::connect(&config)
        .await
        .expect("connect");
    let other = helpers::outside_connection(&db).await;
    db.close().await.expect("close");
    other
        .execute_unprepared("BEGIN IMMEDIATE")
        .await
        .expect("the lock");
    let started = Instant::now();
    let opened = interview_persistence::Database::connect(&config).await;
    assert!(opened.is_ok(), "{:?}", opened.map(|_| ()));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "it waited {:?}",
        started.elapsed()
    );
    other.execute_unprepared("ROLLBACK").await.expect("release");
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_opened_through_a_symlink_is_judged_as_through_its_real_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let real = dir.path().join("real.db");
    // A file whose last pages are still only in its WAL, as after a
    // checkpoint a crash interrupted: shorter than its header says.
    {
        let db = rusqlite::Connection::open(&real).expect("open");
        db.pragma_update(None, "journal_mode", "WAL").expect("wal");
        db.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (zeroblob(20000));")
            .expect("rows");
        db.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .expect("checkpoint");
        db.pragma_update(None, "wal_autocheckpoint", 0)
            .expect("no autocheckpoint");
        db.execute_batch("INSERT INTO t VALUES (zeroblob(20000));")
            .expect("in the WAL");
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).expect("dir");
        std::fs::copy(&real, copy.join("real.db")).expect("copy the file");
        std::fs::copy(dir.path().join("real.db-wal"), copy.join("real.db-wal"))
            .expect("copy the WAL");
    }
    let copy = dir.path().join("copy/real.db");
    let len = std::fs::metadata(&copy).expect("size").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .expect("open")
        .set_len(len - 4096)
        .expect("shorten");
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&copy, &link).expect("symlink");

    let through_link = interview_persistence::Database::connect(
        &DatabaseConfig::sqlite_file(&link).expect("config"),
    )
    .await
    .map(|_| ());
    let through_real = interview_persistence::Database::connect(
        &DatabaseConfig::sqlite_file(&copy).expect("config"),
    )
    .await
    .map(|_| ());
    assert!(
        !matches!(through_link, Err(Error::DamagedFile { .. })),
        "the link was judged damaged: {through_link:?} (the real path: {through_real:?})"
    );
}
