//! `backup` and `copy` against hostile values and callers: values a
//! backend cannot hold, names that belong to the live database, non-UTF-8
//! names, current-thread runtimes, sources kept in rollback-journal mode,
//! targets with commented keys.

use interview_persistence::copy::CopyStatus;
use interview_persistence::{
    CopyOptions, Database, DatabaseConfig, Error, backup, copy, init_database,
};

use crate::fixtures::{count, exec, populate, query_one};
use crate::helpers;

/// A SQLite study of its own (closed), a few turns in it.
async fn sqlite_source(prepare: &[&str]) -> (tempfile::TempDir, DatabaseConfig) {
    let (dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    populate(&db, 3).await;
    for sql in prepare {
        exec(&db, sql).await.expect(sql);
    }
    db.close().await.expect("close");
    (dir, config)
}

/// SQLite stores a NaN as NULL: a PostgreSQL NaN is refused before
/// anything is written (and the checksum, hashing float bits, would tell
/// NaN from NULL anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nan_score_from_postgresql_is_refused_before_anything_is_written_to_sqlite() {
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };
    let source = init_database(&postgres_config).await.expect("init");
    populate(&source, 2).await;
    exec(&source, "UPDATE scoring_history SET novelty_score = 'NaN'")
        .await
        .expect("NaN");
    source.close().await.expect("close");
    let dir = tempfile::tempdir().expect("a directory");
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let copied = copy(&postgres_config, &target_config, CopyOptions::default()).await;

    match copied {
        Err(Error::CopyRefused(reason)) => {
            assert!(reason.contains("`novelty_score` holds NaN"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
    assert!(!dir.path().join("copy.db").exists());
}

/// PostgreSQL keeps microseconds: a SQLite time with nanoseconds is
/// refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_finer_than_postgresql_keeps_is_refused_before_anything_is_written() {
    let (_dir, source_config) =
        sqlite_source(&["UPDATE utterances SET created_at = '2026-01-02 03:04:05.123456789'"])
            .await;
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };

    let copied = copy(&source_config, &postgres_config, CopyOptions::default()).await;

    match copied {
        Err(Error::CopyRefused(reason)) => {
            assert!(reason.contains("finer than the microsecond"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
}

/// PostgreSQL holds ±Infinity, and a SQLite REAL does too (scores have no
/// CHECK): the copy carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_score_copies_from_sqlite_to_postgresql() {
    let (_dir, source_config) =
        sqlite_source(&["UPDATE scoring_history SET novelty_score = 9e999"]).await;
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };

    let copied = copy(&source_config, &postgres_config, CopyOptions::default()).await;

    let report = copied.expect("±Infinity fits PostgreSQL's double precision");
    assert_eq!(report.status, CopyStatus::Verified);
}

/// SQLite stores -0.0 as 0: a PostgreSQL -0.0 is refused before anything
/// is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_zero_postgresql_holds_is_found_before_writing_to_sqlite() {
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };
    let source = init_database(&postgres_config).await.expect("init");
    populate(&source, 2).await;
    exec(&source, "UPDATE kg_nodes SET confidence = '-0'")
        .await
        .expect("-0");
    source.close().await.expect("close");
    let dir = tempfile::tempdir().expect("a directory");
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let copied = copy(&postgres_config, &target_config, CopyOptions::default()).await;

    match copied {
        Err(Error::CopyRefused(reason)) => assert!(reason.contains("negative zero"), "{reason}"),
        other => panic!("expected CopyRefused, got {other:?}"),
    }
}

/// A backup destination whose name is not UTF-8 (a legal Unix file name,
/// which the CLI accepts as a `PathBuf`).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_to_a_non_utf8_file_name_is_written() {
    use std::os::unix::ffi::OsStrExt;
    let test_db = helpers::sqlite().await;
    populate(&test_db.db, 2).await;
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"backup-\xff.db"));

    let made = backup(&test_db.db, &path).await;

    assert!(made.is_ok(), "{made:?}");
    assert!(path.exists());
}

/// A backup named like the source's rollback journal (`<db>-journal`)
/// must not harm the live database nor be eaten by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_named_like_the_sources_journal_harms_neither() {
    let test_db = helpers::sqlite().await;
    populate(&test_db.db, 2).await;
    let file = crate::fixtures::file_of(&test_db.db);
    let mut journal = file.as_os_str().to_owned();
    journal.push("-journal");
    let journal = std::path::PathBuf::from(journal);
    // Control: another process can open the live database before.
    let before = Database::connect(test_db.db.config())
        .await
        .expect("open before");
    assert!(count(&before, "sessions").await > 0);
    before.close().await.expect("close");

    let made = backup(&test_db.db, &journal).await;

    assert!(matches!(made, Err(Error::Backup { .. })), "{made:?}");
    assert!(!journal.exists());
    // Another process still opens the live database.
    let again = Database::connect(test_db.db.config()).await.expect("open");
    assert!(count(&again, "sessions").await > 0);
    again.close().await.expect("close");
}

/// Index metadata the copy's drop-and-recreate must keep: comments on a
/// secondary index and on a foreign key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_target_keeps_its_index_and_key_comments() {
    let (_dir, source_config) = sqlite_source(&[]).await;
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };
    let target = init_database(&postgres_config).await.expect("init");
    exec(
        &target,
        "DO $$ DECLARE i text; k text; BEGIN \
           SELECT indexrelid::regclass::text INTO i FROM pg_index \
             WHERE indrelid = 'utterances'::regclass AND NOT indisprimary LIMIT 1; \
           EXECUTE format('COMMENT ON INDEX %s IS %L', i, 'kept index'); \
           SELECT conname INTO k FROM pg_constraint \
             WHERE conrelid = 'utterances'::regclass AND contype = 'f' LIMIT 1; \
           EXECUTE format('COMMENT ON CONSTRAINT %I ON utterances IS %L', k, 'kept key'); \
         END $$",
    )
    .await
    .expect("comments");
    let comments =
        "SELECT count(*) FROM pg_description WHERE description IN ('kept index', 'kept key')";
    let before: i64 = query_one(&target, comments).await;
    assert_eq!(before, 2);

    let report = copy(&source_config, &postgres_config, CopyOptions::default())
        .await
        .expect("copy");

    assert_eq!(report.status, CopyStatus::Verified);
    let after: i64 = query_one(&target, comments).await;
    target.close().await.expect("close");
    assert_eq!(
        after, 2,
        "the copy dropped the comments of recreated indexes and keys"
    );
}

/// "Copy must read the source": opening a SQLite source through
/// `Database::connect` (a writer, `journal_mode=WAL`) switches a file kept
/// in rollback-journal mode to WAL for good — the source is changed by a
/// copy that only reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_from_a_sqlite_file_leaves_its_journal_mode_alone() {
    use sea_orm::ConnectionTrait;
    let (dir, source_config) = sqlite_source(&[]).await;
    let outside = sea_orm::Database::connect(source_config.url.expose())
        .await
        .expect("an outside connection");
    outside
        .execute_unprepared("PRAGMA journal_mode=DELETE")
        .await
        .expect("rollback journal");
    outside.close().await.expect("close");
    let journal_mode = || async {
        let outside = sea_orm::Database::connect(source_config.url.expose())
            .await
            .expect("an outside connection");
        let mode: String = outside
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "PRAGMA journal_mode",
            ))
            .await
            .expect("pragma")
            .expect("a row")
            .try_get_by_index(0)
            .expect("text");
        outside.close().await.expect("close");
        mode
    };
    assert_eq!(journal_mode().await, "delete");
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let report = copy(&source_config, &target_config, CopyOptions::default())
        .await
        .expect("copy");

    assert_eq!(report.status, CopyStatus::Verified);
    assert_eq!(
        journal_mode().await,
        "delete",
        "the copy changed its source"
    );
}

/// On a current-thread runtime (`#[tokio::main(flavor = "current_thread")]`,
/// `#[tokio::test]`) the backup API runs inline on the runtime's only
/// thread: every other task of the process — the writer that serves the
/// interviews "that keep going", HTTP handlers — stands still until the
/// whole file is copied.
#[tokio::test]
async fn a_backup_on_a_current_thread_runtime_lets_other_tasks_run() {
    let test_db = helpers::sqlite().await;
    populate(&test_db.db, 2).await;
    exec(
        &test_db.db,
        "CREATE TABLE ballast(x BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
         INSERT INTO ballast SELECT randomblob(1048576) FROM n",
    )
    .await
    .expect("100 MB of ballast");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut longest = std::time::Duration::ZERO;
            let mut last = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                longest = longest.max(last.elapsed());
                last = std::time::Instant::now();
            }
            longest
        })
    };
    tokio::task::yield_now().await;
    let dir = tempfile::tempdir().expect("a directory");

    let report = backup(&test_db.db, &dir.path().join("backup.db"))
        .await
        .expect("backup");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let longest = ticker.await.expect("the ticker");

    assert!(
        longest < std::time::Duration::from_millis(100),
        "other tasks stood still for {longest:?} (snapshot held {} ms)",
        report.snapshot_ms
    );
}

/// JSON numbers are read into 64-bit integers or doubles: one with more
/// digits than those hold (a Python-era file may have any) would come out
/// rounded, on both sides of the checksum alike — so it is refused first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_number_a_double_cannot_hold_is_refused_before_anything_is_written() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE kg_nodes SET properties = '{\"n\":12345678901234567890123, \"phone\":\"12345678901234567890\"}' \
         WHERE id = (SELECT min(id) FROM kg_nodes)",
    ])
    .await;
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let copied = copy(&source_config, &target_config, CopyOptions::default()).await;

    match copied {
        Err(Error::CopyRefused(reason)) => {
            assert!(reason.contains("`kg_nodes` row"), "{reason}");
            assert!(reason.contains("12345678901234567890123"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
    assert!(!dir.path().join("copy.db").exists());
}

/// A refusal found in the source writes nothing to the target — not even
/// the schema a fresh target would have been given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_leaves_a_fresh_postgresql_target_without_tables() {
    let (_dir, source_config) = sqlite_source(&[
        "UPDATE utterances SET text = 'before' || char(0) || 'after' \
         WHERE id = (SELECT min(id) FROM utterances)",
    ])
    .await;
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };

    let refused = copy(&source_config, &postgres_config, CopyOptions::default()).await;

    assert!(matches!(refused, Err(Error::CopyRefused(_))), "{refused:?}");
    let target = sea_orm::Database::connect(postgres_config.url.expose())
        .await
        .expect("connect");
    let tables: i64 = sea_orm::ConnectionTrait::query_one_raw(
        &target,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        ),
    )
    .await
    .expect("count")
    .expect("a row")
    .try_get_by_index(0)
    .expect("a count");
    target.close().await.expect("close");
    assert_eq!(tables, 0, "no schema was created");
}

/// SQLite has no boolean type: a 2 in `is_covered` would read as `true`
/// and be written as 1 — a verified copy that changed a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boolean_stored_as_two_in_sqlite_is_refused_before_anything_is_written() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE concept_elements SET is_covered = 2 WHERE id = (SELECT min(id) FROM concept_elements)",
    ])
    .await;
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let refused = copy(&source_config, &target_config, CopyOptions::default()).await;

    match refused {
        Err(Error::CopyRefused(reason)) => assert!(reason.contains("`is_covered`"), "{reason}"),
        other => panic!("expected CopyRefused, got {other:?}"),
    }
    assert!(!dir.path().join("copy.db").exists());
}

/// A copy whose target is the source's own journal or WAL name would
/// leave the live database a "hot journal" that is not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_the_sources_journal_name_is_refused() {
    let (dir, source_config) = sqlite_source(&[]).await;
    for suffix in ["-journal", "-wal"] {
        let name = format!("interview.db{suffix}");
        let target_config = DatabaseConfig::sqlite_file(dir.path().join(&name)).expect("a path");

        let refused = copy(&source_config, &target_config, CopyOptions::default()).await;

        assert!(
            matches!(refused, Err(Error::CopyRefused(_))),
            "{name}: {refused:?}"
        );
        assert!(!dir.path().join(&name).exists(), "{name}");
    }
}

/// A decimal float that a parser without correct rounding reads one step
/// off comes back exactly as written, through a copy too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floats_in_json_read_back_as_written_and_survive_a_copy() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE kg_nodes SET properties = '{\"score\":0.9226015798506805,\"tiny\":1e-30}' \
         WHERE id = (SELECT min(id) FROM kg_nodes)",
    ])
    .await;
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let report = copy(&source_config, &target_config, CopyOptions::default())
        .await
        .expect("copy");

    assert_eq!(report.status, CopyStatus::Verified);
    let header = std::fs::read(dir.path().join("copy.db")).expect("the copy");
    assert_eq!((header[18], header[19]), (1, 1), "one self-contained file");
    assert!(!dir.path().join("copy.db-wal").exists());
    for config in [&source_config, &target_config] {
        let db = Database::connect(config).await.expect("open");
        let properties: serde_json::Value =
            query_one(&db, "SELECT properties FROM kg_nodes ORDER BY id LIMIT 1").await;
        db.close().await.expect("close");
        assert_eq!(properties["score"].as_f64(), Some(0.922_601_579_850_680_5));
        assert_eq!(properties["tiny"].as_f64(), Some(1e-30));
    }
}

/// Copies the SQLite study `source_config` to a new SQLite file beside it
/// and to a fresh PostgreSQL database (when there is one), expecting both
/// refused before anything was written, with a reason naming `column` and
/// containing `what`.
async fn refused_to_both_backends(
    dir: &std::path::Path,
    source_config: &DatabaseConfig,
    column: &str,
    what: &str,
) {
    let target_config = DatabaseConfig::sqlite_file(dir.join("copy.db")).expect("a path");
    let refused = copy(source_config, &target_config, CopyOptions::default()).await;
    match refused {
        Err(Error::CopyRefused(reason)) => assert!(
            reason.contains(&format!("`{column}`")) && reason.contains(what),
            "{reason}"
        ),
        other => panic!("expected CopyRefused to SQLite, got {other:?}"),
    }
    assert!(!dir.join("copy.db").exists());
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };
    let refused = copy(source_config, &postgres_config, CopyOptions::default()).await;
    match refused {
        Err(Error::CopyRefused(reason)) => assert!(
            reason.contains(&format!("`{column}`")) && reason.contains(what),
            "{reason}"
        ),
        other => panic!("expected CopyRefused to PostgreSQL, got {other:?}"),
    }
}

/// The decoder reads `2026-01-02 03:04:05+05:00` and keeps no offset: the
/// copy would move the instant by hours while its checksums (over decoded
/// values) agreed. Refused before anything is written, to either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_with_a_utc_offset_is_refused_before_anything_is_written() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE utterances SET created_at = '2026-01-02 03:04:05+05:00' \
         WHERE id = (SELECT min(id) FROM utterances)",
    ])
    .await;
    refused_to_both_backends(dir.path(), &source_config, "created_at", "offset").await;
}

/// `infinity` (and any text in no timestamp form) in a SQLite timestamp
/// column: refused before anything is written, not a panic or a changed
/// value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_of_infinity_in_sqlite_is_refused_before_anything_is_written() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE kg_nodes SET recorded_at = 'infinity' WHERE id = (SELECT min(id) FROM kg_nodes)",
    ])
    .await;
    refused_to_both_backends(dir.path(), &source_config, "recorded_at", "infinity").await;
}

/// A JSON object with a duplicated key: SQLite keeps both, the decoded
/// document one. Refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_object_with_a_duplicated_key_is_refused_before_anything_is_written() {
    let (dir, source_config) = sqlite_source(&[
        r#"UPDATE sessions SET config = '{"max_turns": 10, "note": {"a": 1, "a": 2}}'"#,
    ])
    .await;
    refused_to_both_backends(dir.path(), &source_config, "config", "duplicated key").await;
}

/// The module's own timestamps copy as before: written by the module
/// (microseconds) and by the schema's defaults (milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_in_the_forms_the_module_writes_still_copy() {
    let (dir, source_config) = sqlite_source(&[
        "UPDATE utterances SET created_at = '2026-01-02 03:04:05' WHERE id = (SELECT min(id) FROM utterances)",
        "UPDATE utterances SET created_at = '2026-01-02 03:04:05.123' WHERE id = (SELECT max(id) FROM utterances)",
    ])
    .await;
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");
    let report = copy(&source_config, &target_config, CopyOptions::default())
        .await
        .expect("copied");
    assert_eq!(report.status, CopyStatus::Verified);
}
