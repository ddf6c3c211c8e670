//! Adoption tried as a hostile or careless environment would: impossible
//! dates and UTC offsets, views and triggers of other applications, two
//! processes at once, a rollback-journal file, odd paths, empty ids,
//! cancellation, and reals that must come through exactly.

use std::path::{Path, PathBuf};

use interview_persistence::repositories::Repositories;
use interview_persistence::{Error, InitOptions, init_database_with};
use rusqlite::Connection;

use super::{PYTHON_DDL, backups_beside, config, plant};

/// A minimal Python-made file: one session with one node, in `journal` mode.
fn python_file_in(dir: &Path, name: &str, journal: &str) -> PathBuf {
    let path = dir.join(name);
    let db = Connection::open(&path).expect("open");
    db.pragma_update(None, "journal_mode", journal)
        .expect("journal mode");
    db.execute_batch(PYTHON_DDL).expect("the Python DDL");
    db.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO sessions (id, methodology, concept_id, concept_name, created_at, updated_at)
             VALUES ('s1', 'means_end_chain', 'c', 'n', '2026-05-01 09:00:00', '2026-05-01 09:00:00');
         INSERT INTO kg_nodes (id, session_id, label, node_type, recorded_at)
             VALUES ('n1', 's1', 'creamy', 'attribute', '2026-05-01 09:01:00');",
    )
    .expect("rows");
    drop(db);
    path
}

fn python_file(dir: &Path) -> PathBuf {
    python_file_in(dir, "interview.db", "WAL")
}

/// A timestamp SQLite's `datetime()` accepts but chrono cannot parse
/// (February 30th; hour 24) passes the preflight: the file is adopted and
/// the session can no longer be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impossible_date_is_refused_or_readable_after_adoption() {
    for stamp in ["2026-02-30 09:00:00", "2026-05-01 24:00:00"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = python_file(dir.path());
        plant(
            &path,
            &format!(
                "INSERT INTO sessions (id, methodology, concept_id, concept_name, created_at) \
                 VALUES ('s-odd', 'm', 'c', 'n', '{stamp}')"
            ),
        );
        match init_database_with(&config(&path), InitOptions::default()).await {
            Err(Error::AdoptionRefused { .. }) => {}
            Err(other) => panic!("{stamp}: unexpected error {other}"),
            Ok((db, _)) => {
                let read = Repositories::new(&db).sessions.get(&"s-odd".into()).await;
                assert!(
                    read.is_ok(),
                    "{stamp}: adopted, but the session cannot be read: {}",
                    read.err().map(|e| e.to_string()).unwrap_or_default()
                );
            }
        }
    }
}

/// A timestamp with a UTC offset (what Python's `isoformat(sep=' ')` of an
/// aware datetime writes) passes the preflight, and is then read as if the
/// local time were UTC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_with_an_offset_is_refused_or_read_as_utc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    plant(
        &path,
        "INSERT INTO sessions (id, methodology, concept_id, concept_name, created_at) \
         VALUES ('s-tz', 'm', 'c', 'n', '2026-05-01 09:00:00+02:00')",
    );
    match init_database_with(&config(&path), InitOptions::default()).await {
        Err(Error::AdoptionRefused { .. }) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok((db, _)) => {
            let s = Repositories::new(&db)
                .sessions
                .get(&"s-tz".into())
                .await
                .expect("read");
            assert_eq!(
                s.created_at.to_string(),
                "2026-05-01 07:00:00",
                "09:00+02:00 is 07:00 UTC"
            );
        }
    }
}

/// A NULL in a NOT NULL column (what a `writable_schema` patch, which the
/// Python system used, can leave; `quick_check` reports it and
/// `refuse_damaged` lets it through as "a matter for the rules") is a
/// finding of its own rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_in_a_not_null_column_is_a_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    {
        let db = Connection::open(&path).expect("open");
        db.execute_batch(
            "PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(sql, 'methodology TEXT NOT NULL', 'methodology TEXT')
                 WHERE name = 'sessions';",
        )
        .expect("relax");
    }
    {
        let db = Connection::open(&path).expect("reopen");
        db.execute_batch(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s-null', NULL, 'c', 'n');
             PRAGMA writable_schema = ON;
             UPDATE sqlite_schema SET sql = replace(sql, 'methodology TEXT,', 'methodology TEXT NOT NULL,')
                 WHERE name = 'sessions';",
        )
        .expect("plant and restore");
    }
    {
        let db = Connection::open(&path).expect("reopen");
        let ddl: String = db
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'sessions'",
                [],
                |r| r.get(0),
            )
            .expect("ddl");
        assert!(ddl.contains("methodology TEXT NOT NULL"), "{ddl}");
    }
    let before = std::fs::read(&path).expect("read");
    match init_database_with(&config(&path), InitOptions::default()).await {
        Err(Error::AdoptionRefused { findings }) => assert!(
            findings.listed.iter().any(|f| f.row_id == "s-null"
                && f.rule == "methodology is NULL where a value is required"),
            "{findings}"
        ),
        Err(other) => panic!("expected AdoptionRefused naming s-null, got: {other}"),
        Ok(_) => panic!("adopted a NULL methodology"),
    }
    assert!(
        std::fs::read(&path).expect("read") == before,
        "the file changed"
    );
}

/// A view of another application that reads an interview table: adoption
/// should leave it alone (README: other applications' objects are left
/// alone), not fail at the rename step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_of_another_application_does_not_stop_adoption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    plant(
        &path,
        "CREATE VIEW dashboard_sessions AS SELECT id, status FROM sessions",
    );
    let result = init_database_with(&config(&path), InitOptions::default()).await;
    let (db, _) = result.unwrap_or_else(|e| panic!("adoption failed: {e}"));
    drop(db);
    let conn = Connection::open(&path).expect("open");
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM dashboard_sessions", [], |r| r.get(0))
        .expect("the view still works");
    assert_eq!(n, 1);
}

/// A trigger of another application on an interview table (an audit log)
/// is silently dropped by the rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_of_another_application_survives_adoption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    plant(
        &path,
        "CREATE TABLE audit_log (what TEXT);
         CREATE TRIGGER audit_sessions AFTER INSERT ON sessions
             BEGIN INSERT INTO audit_log VALUES (new.id); END;",
    );
    let (db, _) = init_database_with(&config(&path), InitOptions::default())
        .await
        .unwrap_or_else(|e| panic!("adoption failed: {e}"));
    drop(db);
    let conn = Connection::open(&path).expect("open");
    let triggers: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'audit_sessions'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(triggers, 1, "the other application's trigger was dropped");
}

/// Two services starting at once on the same Python-made file: the second
/// should wait and find it adopted, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_inits_on_one_python_file_at_once_both_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let c = config(&path);
    let (a, b) = tokio::join!(
        init_database_with(&c, InitOptions::default()),
        init_database_with(&c, InitOptions::default())
    );
    let a = a.map(|_| ()).map_err(|e| e.to_string());
    let b = b.map(|_| ()).map_err(|e| e.to_string());
    assert!(a.is_ok() && b.is_ok(), "first: {a:?}; second: {b:?}");
    assert_eq!(backups_beside(&path).len(), 1);
}

/// A Python-made file in rollback-journal mode (Python's sqlite3 default;
/// any `sqlite3` shell `.restore` gives one) that is refused must be left
/// byte for byte as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rollback_journal_file_is_left_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file_in(dir.path(), "interview.db", "DELETE");
    plant(
        &path,
        "INSERT INTO sessions (id, methodology, concept_id, concept_name, status) \
         VALUES ('s-bad', 'm', 'c', 'n', 'paused')",
    );
    let before = std::fs::read(&path).expect("read");
    match init_database_with(&config(&path), InitOptions::default()).await {
        Err(Error::AdoptionRefused { .. }) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("adopted"),
    }
    let after = std::fs::read(&path).expect("read");
    let differing: Vec<usize> = (0..before.len().min(after.len()))
        .filter(|&i| before[i] != after[i])
        .collect();
    assert!(
        before.len() == after.len() && differing.is_empty(),
        "the refused file changed: length {} → {}, bytes at offsets {differing:?} differ",
        before.len(),
        after.len()
    );
}

/// A file path with a space, quotes, `?` and `#`: the backup name goes
/// into a `VACUUM INTO` literal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_of_a_file_with_odd_characters_in_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("it's a \"study\" ?x=1 #2 %20");
    std::fs::create_dir(&sub).expect("mkdir");
    let path = python_file_in(&sub, "inter'view?.db", "WAL");
    let (_db, report) = init_database_with(&config(&path), InitOptions::default())
        .await
        .unwrap_or_else(|e| panic!("adoption failed: {e}"));
    let backup = report.adoption.expect("adopted").backup.expect("a backup");
    assert!(backup.exists(), "{}", backup.display());
    let copy = Connection::open(&backup).expect("open the backup");
    let n: i64 = copy
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 1);
}

/// A session whose id is the empty string: it is kept, but the checksum
/// pages start after `''`, so the report's row count (the "proof") leaves
/// it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_every_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    plant(
        &path,
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('', 'm', 'c', 'n')",
    );
    let (_db, report) = init_database_with(&config(&path), InitOptions::default())
        .await
        .unwrap_or_else(|e| panic!("adoption failed: {e}"));
    let adoption = report.adoption.expect("adopted");
    assert_eq!(adoption.rows["sessions"], 2, "rows: {:?}", adoption.rows);
}

/// Cancelling `init` (a start-up timeout) after the backup was written:
/// the file is as it was, and no backup is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_adoption_leaves_no_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    // Enough rows that the rebuild takes a while.
    {
        let db = Connection::open(&path).expect("open");
        db.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
             INSERT INTO utterances (id, session_id, turn_number, speaker, text)
             SELECT 'u' || i, 's1', i, 'user', printf('%.200c', 'x') FROM n;",
        )
        .expect("rows");
    }
    let c = config(&path);
    let task = tokio::spawn(async move { init_database_with(&c, InitOptions::default()).await });
    let started = std::time::Instant::now();
    while backups_beside(&path).is_empty() && started.elapsed().as_secs() < 60 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(!backups_beside(&path).is_empty(), "no backup appeared");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let finished = task.is_finished();
    task.abort();
    let _ = task.await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!finished, "adoption finished before it could be cancelled");
    let conn = Connection::open(&path).expect("open");
    let migrated: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'seaql_migrations'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(migrated, 0, "a cancelled adoption committed");
    // The copy goes with the future; a `VACUUM INTO` SQLite was running
    // when it went finishes first and then removes its journal, so the
    // directory is clean once that statement ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !backups_beside(&path).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        backups_beside(&path).is_empty(),
        "a cancelled adoption left {:?}",
        backups_beside(&path)
    );
}

/// After an adoption, foreign keys are back on for the writer: an orphan
/// row written through `begin_write` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_on_after_adoption() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let (db, _) = init_database_with(&config(&path), InitOptions::default())
        .await
        .expect("adopted");
    let txn = db.begin_write().await.expect("begin");
    let on = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA foreign_keys",
        ))
        .await
        .expect("pragma")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("value");
    assert_eq!(on, 1);
    let orphan = txn
        .execute_unprepared(
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES ('o', 'nobody', 1, 'user', 'x')",
        )
        .await;
    assert!(orphan.is_err(), "an orphan was accepted");
}

/// A confidence of 0.1 + 0.2 is kept exactly, not rounded to 0.3; the
/// checksum compares every real at full precision, so a copy that rounded
/// would be rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_value_is_kept_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let conn = Connection::open(&path).expect("open");
    conn.execute(
        "UPDATE kg_nodes SET confidence = ?1 WHERE id = 'n1'",
        [0.1_f64 + 0.2_f64],
    )
    .expect("plant");
    drop(conn);
    let (db, _) = init_database_with(&config(&path), InitOptions::default())
        .await
        .expect("adopted");
    let n = Repositories::new(&db)
        .graph
        .node(&"n1".into())
        .await
        .expect("n1");
    assert_eq!(n.confidence.to_bits(), (0.1_f64 + 0.2_f64).to_bits());
}
