//! The migration binary as an operator runs it (`cargo run -p migration`,
//! which `sea-orm-cli migrate` runs too) on populated databases: the
//! destructive commands refuse without the confirmation that names what
//! goes, `fresh` drops only this module's tables, the database is found as
//! the library finds it, and a file the Python module made is left alone.
//!
//! PostgreSQL halves run when `POSTGRES_TEST_URL` names a server
//! (`scripts/test.sh` sets it); under `CI=true` they must.

use std::path::Path;
use std::process::{Command, Output};

use migration::MigratorTrait;
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// How many migrations this build has.
fn migrations() -> i64 {
    i64::try_from(migration::Migrator::migrations().len()).expect("a few")
}

fn migration(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_migration"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .env_remove("INTERVIEW_CONFIRM_DELETE_SESSIONS")
        .env_remove("DATABASE_SCHEMA");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run the migration binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn connect(url: &str) -> DatabaseConnection {
    Database::connect(url).await.expect("connect")
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .expect("query")
    .expect("a row")
    .try_get_by_index(0)
    .expect("a count")
}

/// Three sessions with an utterance, a node and an edge each, and a table
/// of another application.
async fn populate(db: &DatabaseConnection) {
    for s in 0..3 {
        db.execute_unprepared(&format!(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s{s}', 'm', 'c', 'n'); \
             INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES ('u{s}', 's{s}', 1, 'user', 'hi'); \
             INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('a{s}', 's{s}', 'a', 't'), ('b{s}', 's{s}', 'b', 't'); \
             INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('e{s}', 's{s}', 'a{s}', 'b{s}', 'leads_to')"
        ))
        .await
        .expect("populate");
    }
    db.execute_unprepared(
        "CREATE TABLE other_app_notes (note TEXT); INSERT INTO other_app_notes VALUES ('keep me')",
    )
    .await
    .expect("another application's table");
}

/// A populated SQLite file `interview.db` in a fresh directory.
async fn populated_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/interview.db?mode=rwc", dir.path().display());
    let output = migration(dir.path(), &["-u", &url, "up"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    populate(&db).await;
    db.close().await.expect("close");
    (dir, url)
}

#[tokio::test]
async fn destructive_commands_refuse_a_populated_database_without_the_confirmation() {
    let (dir, url) = populated_sqlite().await;
    let all = migrations().to_string();
    let more = (migrations() + 1).to_string();
    for args in [
        vec!["down", "-n", all.as_str()],
        vec!["down", "-n", more.as_str()],
        vec!["reset"],
        vec!["refresh"],
        vec!["fresh"],
    ] {
        let mut full = vec!["-u", url.as_str()];
        full.extend(&args);
        let output = migration(dir.path(), &full, &[]);
        assert!(!output.status.success(), "{args:?} ran");
        let message = stderr(&output);
        assert!(message.contains("3 session(s)"), "{args:?}: {message}");
        assert!(
            message.contains("--confirm-delete-sessions 3"),
            "{args:?}: {message}"
        );
        // A wrong count is refused too.
        full.extend(["--confirm-delete-sessions", "2"]);
        assert!(
            !migration(dir.path(), &full, &[]).status.success(),
            "{args:?} with 2"
        );
    }
    let db = connect(&url).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 3);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM kg_edges").await, 3);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        migrations()
    );
}

#[tokio::test]
async fn reverting_only_the_vocabulary_needs_no_confirmation_and_keeps_the_rows() {
    let (dir, url) = populated_sqlite().await;
    // Every migration but the first: the newest, the erasure records'
    // table, then the vocabulary.
    let all_but_the_first = (migrations() - 1).to_string();
    let output = migration(
        dir.path(),
        &["-u", &url, "down", "-n", &all_but_the_first],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM seaql_migrations").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM kg_edges").await, 3);
    db.close().await.expect("close");
    let output = migration(dir.path(), &["-u", &url, "up"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM kg_edges").await,
        3,
        "an edge went"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM edge_types").await, 37);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM pragma_foreign_key_check").await,
        0
    );
}

#[tokio::test]
async fn a_confirmed_fresh_drops_only_this_modules_tables() {
    let (dir, url) = populated_sqlite().await;
    // The confirmation as sea-orm-cli passes it: the environment.
    let output = migration(
        dir.path(),
        &["-u", &url, "fresh"],
        &[("INTERVIEW_CONFIRM_DELETE_SESSIONS", "3")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        migrations()
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM other_app_notes").await,
        1,
        "another application's table was dropped"
    );
}

#[tokio::test]
async fn the_database_is_found_as_the_library_finds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // DATABASE_PATH names the file; nothing is created at the default.
    let output = migration(dir.path(), &["up"], &[("DATABASE_PATH", "prod.db")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("prod.db").is_file());
    assert!(
        !dir.path().join("data").exists(),
        "the default file was created"
    );

    // Without any setting: the default, its directory created (no panic).
    let output = migration(dir.path(), &["status"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("data/interview.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data"))
            .expect("data/")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "data/ is {mode:o}");
        for file in ["prod.db", "data/interview.db"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .expect("the database file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} is {mode:o}");
        }
    }

    // A file that is not a database: a message, not a panic.
    std::fs::write(dir.path().join("notes.db"), "some notes").expect("write");
    let output = migration(dir.path(), &["up"], &[("DATABASE_PATH", "notes.db")]);
    assert!(!output.status.success());
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    assert!(std::fs::read(dir.path().join("notes.db")).expect("read") == b"some notes");
}

#[tokio::test]
async fn a_database_the_python_module_made_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("python.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = connect(&url).await;
    db.execute_unprepared(include_str!("../../src/schema/python/2026-01-21.sql"))
        .await
        .expect("the Python module's schema");
    db.execute_unprepared(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('py', 'm', 'c', 'n')",
    )
    .await
    .expect("a row");
    db.close().await.expect("close");
    let before = std::fs::read(&path).expect("read");
    for command in ["up", "status", "reset"] {
        let output = migration(dir.path(), &["-u", &url, command], &[]);
        assert!(!output.status.success(), "{command} ran");
        assert!(
            stderr(&output).contains("interview-db init"),
            "{}",
            stderr(&output)
        );
    }
    assert!(
        std::fs::read(&path).expect("read") == before,
        "the file changed"
    );
}

/// A fresh PostgreSQL database for one test, or `None` (said loudly) when
/// no server is configured outside CI.
async fn postgres_url(name: &str) -> Option<String> {
    let Ok(maintenance) = std::env::var("POSTGRES_TEST_URL") else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but POSTGRES_TEST_URL is unset: run the tests through scripts/test.sh"
        );
        eprintln!("SKIPPED (PostgreSQL): POSTGRES_TEST_URL is unset");
        return None;
    };
    let admin = connect(&maintenance).await;
    let database = format!("migration_test_{name}_{}", std::process::id());
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await
        .expect("drop");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{database}\""))
        .await
        .expect("create");
    admin.close().await.expect("close");
    let (base, _) = maintenance.rsplit_once('/').expect("a database in the URL");
    Some(format!("{base}/{database}"))
}

#[tokio::test]
async fn on_postgres_reset_refuses_and_a_confirmed_fresh_keeps_other_tables() {
    let Some(url) = postgres_url("fresh").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let output = migration(dir.path(), &["-u", &url, "up"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    populate(&db).await;

    let output = migration(dir.path(), &["-u", &url, "reset"], &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("3 session(s)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 3);

    let output = migration(
        dir.path(),
        &["-u", &url, "fresh", "--confirm-delete-sessions", "3"],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM other_app_notes").await, 1);
    db.close().await.expect("close");
    let maintenance = std::env::var("POSTGRES_TEST_URL").expect("set above");
    let (_, database) = url.rsplit_once('/').expect("a database");
    let admin = connect(&maintenance).await;
    let _ = admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .await;
}

/// A populated file with every migration applied, whose one edge uses a
/// methodology's type (`means_to`, means-end chain).
async fn populated_with_a_methodology_edge() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/interview.db?mode=rwc", dir.path().display());
    let output = migration(dir.path(), &["-u", &url, "up"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    db.execute_unprepared(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s0', 'means_end_chain', 'c', 'n');
         INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('a', 's0', 'a', 't'), ('b', 's0', 'b', 't');
         INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('e', 's0', 'a', 'b', 'means_to');",
    )
    .await
    .expect("populate");
    db.close().await.expect("close");
    (dir, url)
}

/// `reset`, `refresh` and `fresh`, confirmed with the right number, must
/// do what they say on a study that used any methodology but the generic
/// one: they delete every session anyway, so the vocabulary's `down`
/// refusing an edge of another type should not stop them.
#[tokio::test]
async fn confirmed_destructive_commands_work_on_a_methodology_study() {
    for command in ["reset", "refresh", "fresh"] {
        let (dir, url) = populated_with_a_methodology_edge().await;
        let output = migration(
            dir.path(),
            &["-u", &url, command, "--confirm-delete-sessions", "1"],
            &[],
        );
        assert!(
            output.status.success(),
            "`{command} --confirm-delete-sessions 1` failed: {}",
            stderr(&output)
        );
    }
}

/// `down -n 0` changes nothing and needs no confirmation; a wrong number is
/// refused; `down` with only the first migration applied needs it.
#[tokio::test]
async fn down_zero_wrong_number_and_down_to_nothing() {
    let (dir, url) = populated_with_a_methodology_edge().await;
    let output = migration(dir.path(), &["-u", &url, "down", "-n", "0"], &[]);
    assert!(output.status.success(), "down -n 0: {}", stderr(&output));
    let output = migration(
        dir.path(),
        &[
            "-u",
            &url,
            "down",
            "-n",
            &migrations().to_string(),
            "--confirm-delete-sessions",
            "7",
        ],
        &[],
    );
    assert!(!output.status.success(), "a wrong number was accepted");
    assert!(
        stderr(&output).contains("does not match"),
        "{}",
        stderr(&output)
    );

    // Only migration 1 applied, populated with generic edges.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/interview.db?mode=rwc", dir.path().display());
    let output = migration(dir.path(), &["-u", &url, "up", "-n", "1"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let db = connect(&url).await;
    db.execute_unprepared(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s0', 'm', 'c', 'n');
         INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('a', 's0', 'a', 't'), ('b', 's0', 'b', 't');
         INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('e', 's0', 'a', 'b', 'leads_to');
         INSERT INTO concept_elements (id, session_id, element_id, label, covered_by_node_id) VALUES ('ce', 's0', 'x', 'X', 'a');",
    )
    .await
    .expect("populate");
    db.close().await.expect("close");
    let output = migration(dir.path(), &["-u", &url, "down"], &[]);
    assert!(
        !output.status.success(),
        "down of the only migration ran unconfirmed"
    );
    // `up` through the binary: the vocabulary's kg_edges rebuild on rows.
    let output = migration(dir.path(), &["-u", &url, "up"], &[]);
    assert!(output.status.success(), "up: {}", stderr(&output));
    let db = connect(&url).await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM kg_edges").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM kg_nodes").await, 2);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM concept_elements WHERE covered_by_node_id = 'a'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM seaql_migrations").await,
        migrations()
    );
}
