//! `copy`: a study moved between backends, all or nothing, with proof.

use entity::session_erasure;
use interview_persistence::copy::{CopyReport, CopyStatus};
use interview_persistence::{CopyOptions, Database, DatabaseConfig, Error, copy, init_database};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use super::study::hostile_study;
use crate::fixtures::{Contents, TABLES, contents, count, files_in, populate};
use crate::helpers;

/// A SQLite study of its own: the directory, its configuration and the
/// open database.
async fn sqlite_study() -> (tempfile::TempDir, DatabaseConfig, Database) {
    let (dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    hostile_study(&db).await;
    (dir, config, db)
}

/// Everything in `db`, erasure records included.
async fn everything(db: &Database) -> (Contents, Vec<session_erasure::Model>) {
    (
        contents(db.connection()).await,
        session_erasure::Entity::find()
            .order_by_asc(session_erasure::Column::SessionId)
            .all(db.connection())
            .await
            .expect("erasures"),
    )
}

fn small_pages() -> CopyOptions {
    // Pages smaller than the tables, so paging is exercised.
    CopyOptions {
        page_rows: 7,
        ..CopyOptions::default()
    }
}

fn assert_verified(report: &CopyReport) {
    assert_eq!(report.status, CopyStatus::Verified, "{report:?}");
    // The six, the four later Python tables, the erasure records.
    assert_eq!(report.tables.len(), 11);
    for table in &report.tables {
        assert!(table.matches, "{table:?}");
        assert_eq!(table.source_rows, table.target_rows);
        assert_eq!(table.source_checksum, table.target_checksum);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_copied_sqlite_to_postgresql_to_sqlite_comes_back_identical() {
    let (dir, source_config, source) = sqlite_study().await;
    let original = everything(&source).await;
    source.close().await.expect("close the source");
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };

    let there = copy(&source_config, &postgres_config, small_pages())
        .await
        .expect("SQLite → PostgreSQL");
    let back_config = DatabaseConfig::sqlite_file(dir.path().join("back.db")).expect("a path");
    let back = copy(&postgres_config, &back_config, CopyOptions::default())
        .await
        .expect("PostgreSQL → SQLite");

    assert_verified(&there);
    assert_verified(&back);
    assert!(there.created_schema && back.created_schema);
    for (a, b) in there.tables.iter().zip(&back.tables) {
        assert_eq!(a.table, b.table);
        assert_eq!(a.source_checksum, b.target_checksum, "{}", a.table);
        assert!(a.source_rows > 0, "{} has rows to copy", a.table);
    }
    let postgres = Database::connect(&postgres_config)
        .await
        .expect("PostgreSQL");
    assert_eq!(
        everything(&postgres).await,
        original,
        "PostgreSQL holds every value"
    );
    postgres.close().await.expect("close");
    let back = init_database(&back_config).await.expect("the copy opens");
    assert_eq!(
        everything(&back).await,
        original,
        "SQLite holds every value again"
    );
    let health = interview_persistence::check_health(&back).await;
    assert!(health.is_healthy(), "{health:?}");
    back.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_copied_sqlite_to_sqlite_keeps_nul_characters_and_every_value() {
    let (dir, source_config, source) = sqlite_study().await;
    insert_nul_text(&source).await;
    let original = everything(&source).await;
    source.close().await.expect("close");
    let target_config = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("a path");

    let report = copy(&source_config, &target_config, small_pages())
        .await
        .expect("copy");

    assert_verified(&report);
    let target = Database::connect(&target_config).await.expect("open");
    assert_eq!(everything(&target).await, original);
    target.close().await.expect("close");
    assert!(
        !files_in(dir.path()).iter().any(|f| f.contains(".partial")),
        "{:?}",
        files_in(dir.path())
    );
}

/// A session whose utterance holds a NUL character, and a node whose
/// properties hold one in a JSON string.
async fn insert_nul_text(db: &Database) -> (String, String) {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    let txn = db.begin_write().await.expect("the writer");
    let session = crate::fixtures::session_model("session-nul");
    session
        .clone()
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("a session");
    let utterance = entity::utterance::Model {
        id: "utterance-with-nul".into(),
        text: "before\0after".into(),
        ..crate::fixtures::utterance_model(&session.id, 1)
    };
    utterance
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("an utterance");
    let node = entity::kg_node::Model {
        id: "node-with-nul".into(),
        properties: Some(serde_json::json!({"note": "a\u{0}b"})),
        ..crate::fixtures::node_model(&session.id, "nul")
    };
    node.into_active_model()
        .insert(&*txn)
        .await
        .expect("a node");
    txn.commit().await.expect("commit");
    ("utterance-with-nul".into(), "node-with-nul".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_found_before_anything_is_written_to_postgresql() {
    let (_dir, source_config, source) = sqlite_study().await;
    insert_nul_text(&source).await;
    source.close().await.expect("close");
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };
    let target = init_database(&postgres_config).await.expect("init");

    let refused = copy(&source_config, &postgres_config, CopyOptions::default()).await;

    match refused {
        Err(Error::CopyRefused(reason)) => {
            assert!(
                reason.contains("`utterances` row `utterance-with-nul`"),
                "{reason}"
            );
            assert!(reason.contains("`text`"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
    for table in TABLES {
        assert_eq!(count(&target, table).await, 0, "{table} stays empty");
    }
    target.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_inside_a_json_string_is_found_too() {
    let (_dir, source_config, source) = sqlite_study().await;
    insert_nul_text(&source).await;
    // Only the JSON one is left.
    crate::fixtures::exec(
        &source,
        "DELETE FROM utterances WHERE id = 'utterance-with-nul'",
    )
    .await
    .expect("delete");
    source.close().await.expect("close");
    let Some((_postgres, postgres_config)) = helpers::postgres_config().await else {
        return;
    };

    let refused = copy(&source_config, &postgres_config, CopyOptions::default()).await;

    match refused {
        Err(Error::CopyRefused(reason)) => {
            assert!(
                reason.contains("`kg_nodes` row `node-with-nul`"),
                "{reason}"
            );
            assert!(reason.contains("`properties`"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
}

/// A target that already holds a row.
async fn copying_into_a_database_with_rows_is_refused_and_changes_nothing(target: &Database) {
    let session = crate::fixtures::insert_session(target).await;
    let before = everything(target).await;
    let (_dir, source_config, source) = sqlite_study().await;
    source.close().await.expect("close");

    let refused = copy(&source_config, target.config(), CopyOptions::default()).await;

    match refused {
        Err(Error::CopyRefused(reason)) => {
            assert!(reason.contains("`sessions` has 1 rows"), "{reason}");
        }
        other => panic!("expected CopyRefused, got {other:?}"),
    }
    assert_eq!(everything(target).await, before);
    assert_eq!(before.0.sessions[0].id, session.id);
}

/// A target whose `kg_edges` refuses the 3rd row: sessions, utterances and
/// nodes were written by then.
async fn a_copy_that_fails_midway_leaves_the_target_as_it_was(target: &Database) {
    let outside = helpers::outside_connection(target).await;
    let trigger = match outside.get_database_backend() {
        sea_orm::DbBackend::Postgres => vec![
            "CREATE FUNCTION fail_midway() RETURNS trigger AS $$ BEGIN \
               IF (SELECT count(*) FROM kg_edges) >= 2 THEN RAISE EXCEPTION 'fail midway'; END IF; \
               RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER fail_midway BEFORE INSERT ON kg_edges \
               FOR EACH ROW EXECUTE FUNCTION fail_midway()",
        ],
        _ => vec![
            "CREATE TRIGGER fail_midway BEFORE INSERT ON kg_edges \
               WHEN (SELECT count(*) FROM kg_edges) >= 2 \
               BEGIN SELECT RAISE(ABORT, 'fail midway'); END",
        ],
    };
    for sql in trigger {
        outside.execute_unprepared(sql).await.expect("the trigger");
    }
    outside.close().await.expect("close");
    let (_dir, source_config, source) = sqlite_study().await;
    source.close().await.expect("close");

    let failed = copy(
        &source_config,
        target.config(),
        CopyOptions {
            page_rows: 1,
            ..CopyOptions::default()
        },
    )
    .await;

    let failure = format!("{failed:?}");
    assert!(
        failure.contains("fail midway"),
        "it failed at the edges: {failure}"
    );
    for table in TABLES {
        assert_eq!(
            count(target, table).await,
            0,
            "{table}: nothing of the copy is left"
        );
    }
    assert_eq!(count(target, "session_erasures").await, 0);
}

crate::on_both_backends!(
    copying_into_a_database_with_rows_is_refused_and_changes_nothing,
    a_copy_that_fails_midway_leaves_the_target_as_it_was,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_given_up_midway_leaves_no_file_at_the_target() {
    let (dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    populate(&db, 30).await;
    db.close().await.expect("close");
    let mut given_up = 0;
    for (attempt, millis) in [0u64, 1, 5, 20, 50].into_iter().enumerate() {
        let target = dir.path().join(format!("copy-{attempt}.db"));
        let target_config = DatabaseConfig::sqlite_file(&target).expect("a path");
        let outcome = tokio::time::timeout(
            std::time::Duration::from_millis(millis),
            copy(&config, &target_config, small_pages()),
        )
        .await;
        match outcome {
            Ok(report) => assert_verified(&report.expect("a copy that finished")),
            Err(_) => {
                given_up += 1;
                assert!(
                    !target.exists(),
                    "a copy given up leaves no file at its name"
                );
            }
        }
        // Connections of a dropped copy close in the background: give them
        // a moment, then nothing temporary may be left.
        let partial = || -> Vec<String> {
            files_in(dir.path())
                .into_iter()
                .filter(|name| name.contains(".partial"))
                .collect()
        };
        for _ in 0..40 {
            if partial().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            partial().is_empty(),
            "temporary files left: {:?}",
            partial()
        );
    }
    assert!(given_up > 0, "some attempt was given up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_onto_its_own_source_or_from_nowhere_is_refused() {
    let (dir, config, db) = sqlite_study().await;
    let before = everything(&db).await;
    db.close().await.expect("close");
    let missing = DatabaseConfig::sqlite_file(dir.path().join("missing.db")).expect("a path");
    let elsewhere = DatabaseConfig::sqlite_file(dir.path().join("elsewhere.db")).expect("a path");

    let onto_itself = copy(&config, &config, CopyOptions::default()).await;
    let from_nowhere = copy(&missing, &elsewhere, CopyOptions::default()).await;

    assert!(
        matches!(onto_itself, Err(Error::CopyRefused(_))),
        "{onto_itself:?}"
    );
    assert!(
        matches!(from_nowhere, Err(Error::CopyRefused(_))),
        "{from_nowhere:?}"
    );
    assert!(!dir.path().join("missing.db").exists());
    assert!(!dir.path().join("elsewhere.db").exists());
    let db = Database::connect(&config).await.expect("open");
    assert_eq!(everything(&db).await, before);
    db.close().await.expect("close");
}

/// `-0.0` compares equal to `0.0`, but SQLite drops its sign where
/// PostgreSQL keeps it: the same write would hold different values.
async fn negative_zero_is_refused_so_that_both_backends_hold_the_same_value(db: &Database) {
    use interview_persistence::repositories::{NewNode, Repositories};
    let repos = Repositories::new(db);
    let session = crate::fixtures::start(&repos).await;

    let refused = repos
        .graph
        .create_node(NewNode {
            confidence: -0.0,
            ..NewNode::new(&session, "signed", "attribute")
        })
        .await;

    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(count(db, "kg_nodes").await, 0);
}

crate::on_both_backends!(negative_zero_is_refused_so_that_both_backends_hold_the_same_value);

/// A target with interview tables but no migration records (a
/// Python-made file, another program's tables) is refused: the copy
/// neither adopts nor migrates it, and writes none of its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_tables_but_no_migration_records_is_refused() {
    let (dir, source_config, source) = sqlite_study().await;
    source.close().await.expect("close");
    let sqlite_target = DatabaseConfig::sqlite_file(dir.path().join("foreign.db")).expect("a path");
    let postgres = helpers::postgres_config().await;
    let mut targets = vec![sqlite_target];
    targets.extend(postgres.as_ref().map(|(_, config)| config.clone()));
    for target in &targets {
        let outside = helpers::outside_connection_to(target).await;
        outside
            .execute_unprepared("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
            .await
            .expect("a table");
        outside.close().await.expect("close");

        let refused = copy(&source_config, target, CopyOptions::default()).await;

        match refused {
            Err(Error::CopyRefused(reason)) => {
                assert!(reason.contains("no migration records"), "{reason}");
            }
            other => panic!("{}: expected CopyRefused, got {other:?}", target.url),
        }
        let outside = helpers::outside_connection_to(target).await;
        let sessions: i64 = outside
            .query_one_raw(sea_orm::Statement::from_string(
                outside.get_database_backend(),
                "SELECT count(*) FROM sessions",
            ))
            .await
            .expect("count")
            .expect("a row")
            .try_get_by_index(0)
            .expect("a count");
        outside.close().await.expect("close");
        assert_eq!(sessions, 0, "{}: no row was written", target.url);
    }
}

/// A SQLite target in rollback-journal mode that a copy refuses — one
/// holding a study, one with another program's table — keeps its bytes
/// and its journal mode: it is inspected read-only before it is opened for
/// writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_leaves_a_sqlite_target_byte_for_byte_as_it_was() {
    use sea_orm::sqlx::{self, Connection};
    let (dir, source_config, source) = sqlite_study().await;
    source.close().await.expect("close");
    let with_rows = dir.path().join("archive.db");
    crate::fixtures::rollback_journal_study(&with_rows, 2).await;
    let foreign = dir.path().join("foreign.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&foreign)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a plain connection");
    sqlx::query("CREATE TABLE sessions (id TEXT PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("a table");
    conn.close().await.expect("close");

    for (target, why) in [
        (&with_rows, "not empty"),
        (&foreign, "no migration records"),
    ] {
        let before = crate::fixtures::sha256_of(target);
        let config = DatabaseConfig::sqlite_file(target).expect("a path");

        let refused = copy(&source_config, &config, CopyOptions::default()).await;

        match refused {
            Err(Error::CopyRefused(reason)) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{}: expected CopyRefused, got {other:?}", target.display()),
        }
        assert_eq!(
            crate::fixtures::sha256_of(target),
            before,
            "{}: the target's bytes are unchanged",
            target.display()
        );
        assert_eq!(
            crate::fixtures::journal_bytes(target),
            (1, 1),
            "{}: still a rollback journal",
            target.display()
        );
    }
}
