//! `backup`: a consistent, verified copy of a live SQLite database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use interview_persistence::repositories::Repositories;
use interview_persistence::{
    DatabaseConfig, DatabaseUrl, Error, HealthOptions, IntegrityCheck, backup, check_health_with,
};

use crate::acknowledged::{create_session, verify_session};
use crate::fixtures::{count, files_in};
use crate::helpers;
use crate::turn_builders::benchmark_turn;

/// Opens the backup at `path` read-only.
async fn open_backup(path: &std::path::Path) -> interview_persistence::Database {
    let config = DatabaseConfig::new(DatabaseUrl::sqlite_file_read_only(path).expect("a path"));
    interview_persistence::Database::connect(&config)
        .await
        .expect("the backup opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_turns_are_written_holds_every_turn_acknowledged_before_it() {
    let test_db = helpers::sqlite().await;
    let db = test_db.db.clone();
    let repos = Repositories::new(&db);
    let acknowledged: Arc<Mutex<BTreeMap<String, Vec<i32>>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (repos, acknowledged, stop) = (repos.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let session = interview_persistence::repositories::new_id();
            create_session(&repos, &session.as_str().into())
                .await
                .expect("a session");
            let mut turn = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                repos
                    .turns
                    .record_turn(benchmark_turn(&session.as_str().into(), turn))
                    .await
                    .expect("a turn");
                acknowledged
                    .lock()
                    .expect("the list")
                    .entry(session.clone())
                    .or_default()
                    .push(turn);
                turn += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = acknowledged.lock().expect("the list").clone();
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("nested/backups/interview-backup.db");
    let report = backup(&db, &path).await.expect("the backup");
    let during = acknowledged.lock().expect("the list").clone();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer");
    }
    let after: usize = acknowledged
        .lock()
        .expect("the list")
        .values()
        .map(Vec::len)
        .sum();
    let at_backup: usize = during.values().map(Vec::len).sum();
    assert!(
        after > at_backup,
        "turns went on being recorded after the backup"
    );
    assert!(
        before.values().map(Vec::len).sum::<usize>() > 8,
        "the writers were busy: {before:?}"
    );

    let copy = open_backup(&path).await;
    let health = check_health_with(
        &copy,
        HealthOptions {
            integrity: IntegrityCheck::Full,
        },
    )
    .await;
    assert!(health.is_healthy(), "{health:?}");
    for (session, turns) in &before {
        verify_session(&copy, &session.into(), turns)
            .await
            .unwrap_or_else(|e| panic!("the backup: {e}"));
    }
    for row in &report.tables {
        assert_eq!(
            u64::try_from(count(&copy, row.table).await).expect("a count"),
            row.rows,
            "{}: the report counts the rows the copy holds",
            row.table
        );
    }
    assert_eq!(report.integrity.to_string(), "ok");
    assert_eq!(
        report.latest_migration.as_deref(),
        Some(
            interview_persistence::schema::known_migrations()
                .last()
                .expect("migrations")
                .as_str()
        )
    );
    copy.close().await.expect("close");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        assert_eq!(mode(&path), 0o600, "the backup is owner-only");
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }
    assert_eq!(
        files_in(path.parent().expect("dir")),
        vec!["interview-backup.db".to_owned()],
        "one self-contained file, nothing left beside it"
    );
    let header = std::fs::read(&path).expect("the backup");
    assert_eq!(
        (header[18], header[19]),
        (1, 1),
        "a rollback-journal file: it needs no -wal to be whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_never_overwrites_a_file_that_is_there() {
    let test_db = helpers::sqlite().await;
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("backup.db");
    std::fs::write(&path, b"last week's backup").expect("a file");

    let refused = backup(&test_db.db, &path).await;

    assert!(
        matches!(&refused, Err(Error::DestinationExists { path: p }) if *p == path),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read(&path).expect("the file"),
        b"last week's backup"
    );
    assert_eq!(files_in(dir.path()), vec!["backup.db".to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_given_up_midway_leaves_nothing_behind() {
    let test_db = helpers::sqlite().await;
    crate::fixtures::populate(&test_db.db, 20).await;
    let dir = tempfile::tempdir().expect("a directory");
    let mut given_up = 0;
    for (attempt, micros) in [0u64, 50, 200, 500, 1_000, 2_000, 5_000]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("backup-{attempt}.db"));
        let outcome =
            tokio::time::timeout(Duration::from_micros(micros), backup(&test_db.db, &path)).await;
        match outcome {
            Ok(report) => {
                report.expect("a backup that finished");
                let copy = open_backup(&path).await;
                assert!(
                    check_health_with(&copy, HealthOptions::default())
                        .await
                        .is_healthy()
                );
                copy.close().await.expect("close");
            }
            Err(_) => {
                given_up += 1;
                assert!(!path.exists(), "a backup given up is not at its name");
            }
        }
        let partial: Vec<String> = files_in(dir.path())
            .into_iter()
            .filter(|name| name.ends_with(".partial") || name.contains(".partial-"))
            .collect();
        assert!(partial.is_empty(), "temporary files left: {partial:?}");
    }
    assert!(given_up > 0, "some attempt was given up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_postgresql_says_what_to_use_instead() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("backup.db");

    let refused = backup(&test_db.db, &path).await;

    match refused {
        Err(Error::Unsupported(message)) => {
            assert!(message.contains("pg_dump"), "{message}");
            assert!(message.contains("interview-db copy"), "{message}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(!path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_rollback_journal_file_leaves_its_bytes_and_journal_mode_as_they_were() {
    let dir = tempfile::tempdir().expect("a directory");
    let source = dir.path().join("restored.db");
    crate::fixtures::rollback_journal_study(&source, 5).await;
    let before = crate::fixtures::sha256_of(&source);
    let destination = dir.path().join("backups/again.db");

    let config = DatabaseConfig::sqlite_file(&source).expect("a path");
    let report = interview_persistence::backup_at(&config, &destination)
        .await
        .expect("the backup");

    assert_eq!(
        crate::fixtures::sha256_of(&source),
        before,
        "the source's bytes are unchanged"
    );
    assert_eq!(
        crate::fixtures::journal_bytes(&source),
        (1, 1),
        "the source is still in rollback-journal mode"
    );
    let copy = open_backup(&destination).await;
    for row in &report.tables {
        assert_eq!(
            u64::try_from(count(&copy, row.table).await).expect("a count"),
            row.rows,
            "{}: the backup holds the rows of the source",
            row.table
        );
    }
    assert!(
        report
            .tables
            .iter()
            .any(|t| t.table == "utterances" && t.rows > 0),
        "{report:?}"
    );
    copy.close().await.expect("close");
}

/// The pid of a process that has exited (and been reaped): no process has
/// it now, unless the system reused it meanwhile.
fn pid_of_a_dead_process() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn `true`");
    let pid = child.id();
    child.wait().expect("`true` exits");
    pid
}

/// Writes what a backup killed midway by SIGKILL leaves in `dir`: a
/// partial copy and its WAL, named for process `pid`.
fn leave_a_partial(dir: &std::path::Path, pid: u32) -> Vec<String> {
    let names = vec![
        format!(".interview-{pid}-0.partial"),
        format!(".interview-{pid}-0.partial-wal"),
    ];
    for name in &names {
        std::fs::write(dir.join(name), b"a participant's words").expect("a leftover");
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_backup_into_a_directory_removes_what_a_dead_process_left_there() {
    let test_db = helpers::sqlite().await;
    let dir = tempfile::tempdir().expect("a directory");
    let left = leave_a_partial(dir.path(), pid_of_a_dead_process());

    backup(&test_db.db, &dir.path().join("monday.db"))
        .await
        .expect("the backup");

    assert_eq!(
        files_in(dir.path()),
        vec!["monday.db".to_owned()],
        "the leftovers {left:?} were removed"
    );
}

/// A child process that lives until dropped (killed then).
struct LiveProcess(std::process::Child);

impl Drop for LiveProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_removes_what_dead_processes_and_this_one_left_and_keeps_a_live_processs() {
    let dir = tempfile::tempdir().expect("a directory");
    let dead = leave_a_partial(dir.path(), pid_of_a_dead_process());
    let ours = leave_a_partial(dir.path(), std::process::id());
    // Killed by the deadline of its own even if this test dies first.
    let live = LiveProcess(
        std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn `sleep`"),
    );
    let kept = leave_a_partial(dir.path(), live.0.id());

    let report = interview_persistence::clean(dir.path()).expect("clean");

    let names = |leftovers: &[interview_persistence::Leftover]| -> Vec<String> {
        leftovers
            .iter()
            .map(|l| {
                l.path
                    .file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    };
    let mut removed: Vec<String> = dead.iter().chain(&ours).cloned().collect();
    removed.sort();
    assert_eq!(names(&report.removed), removed, "{report:?}");
    assert_eq!(names(&report.kept), kept, "a live process's are kept");
    assert_eq!(
        files_in(dir.path()),
        kept,
        "only the live process's are left"
    );
    drop(live);
}
