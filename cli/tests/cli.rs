//! The `interview-db` command: data on stdout, logs on stderr, exit codes.

use std::process::{Command, Output};

// The test databases of the library's integration tests.
#[allow(dead_code)]
#[path = "../../tests/common/databases.rs"]
mod helpers;

use serde_json::Value;

fn interview_db(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_interview-db"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .env("RUST_LOG", "info")
        .output()
        .expect("run interview-db")
}

fn report_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout must hold only the report: {stdout}"
    );
    serde_json::from_str(&stdout).expect("stdout is one JSON report")
}

#[test]
fn init_creates_the_embedded_default_and_prints_a_healthy_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = interview_db(dir.path(), &["init"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report_of(&output);
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["session_count"], 0);
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["path"], "data/interview.db");
    assert!(dir.path().join("data/interview.db").is_file());
    assert!(!output.stderr.is_empty(), "logs go to stderr");

    let output = interview_db(dir.path(), &["health", "--full"]);
    assert!(output.status.success());
    assert_eq!(report_of(&output)["status"], "healthy");
}

#[test]
fn health_on_a_file_that_is_not_a_database_exits_non_zero_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.db"), "some notes").expect("write");
    let output = interview_db(
        dir.path(),
        &["--database-url", "sqlite://notes.db", "health"],
    );
    assert!(!output.status.success());
    let report = report_of(&output);
    assert_eq!(report["status"], "unhealthy");
    assert!(
        report["error"]
            .as_str()
            .unwrap_or("")
            .contains("not a SQLite database")
    );
    assert_eq!(
        std::fs::read(dir.path().join("notes.db")).expect("read"),
        b"some notes"
    );

    let output = interview_db(dir.path(), &["--database-url", "sqlite://notes.db", "init"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a SQLite database"));
}

#[test]
fn health_before_init_is_unhealthy_and_creates_no_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = interview_db(dir.path(), &["--database-url", "sqlite::memory:", "health"]);
    assert!(!output.status.success());
    let report = report_of(&output);
    assert_eq!(report["status"], "unhealthy");
    assert!(
        report["error"].as_str().unwrap_or("").contains("pending"),
        "{report}"
    );
}

#[test]
fn a_bad_url_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = interview_db(dir.path(), &["--database-url", "mysql://x/y", "init"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("mysql://x/y"));
}

#[tokio::test]
async fn init_and_health_work_on_postgres_and_hide_the_password() {
    let Some((_database, config)) = crate::helpers::postgres_config().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = config.url.expose().to_owned();
    let output = interview_db(dir.path(), &["--database-url", &url, "init"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report_of(&output);
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["backend"], "postgres");
    let password = url::Url::parse(&url)
        .expect("url")
        .password()
        .map(str::to_owned);
    if let Some(password) = password {
        let everything = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !everything.contains(&format!(":{password}@")),
            "password shown: {everything}"
        );
    }
    let output = interview_db(dir.path(), &["--database-url", &url, "health"]);
    assert!(output.status.success());
    assert_eq!(report_of(&output)["session_count"], 0);
    assert!(
        !dir.path().join("data").exists(),
        "a SQLite file was created"
    );
}

/// A file the Python module made, with two current nodes that share a
/// label and type (its UNIQUE let them in).
async fn python_file_with_duplicates(path: &std::path::Path) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("create");
    db.execute_unprepared(include_str!("../../src/schema/python_module_schema.sql"))
        .await
        .expect("the Python DDL");
    db.execute_unprepared(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s1', 'm', 'c', 'n'); \
         INSERT INTO kg_nodes (id, session_id, label, node_type, recorded_at) VALUES \
           ('old', 's1', 'calm', 'value', '2026-01-01 10:00:00'), \
           ('new', 's1', 'calm', 'value', '2026-01-01 11:00:00')",
    )
    .await
    .expect("rows");
    db.close().await.expect("close");
}

#[tokio::test]
async fn init_adopts_a_python_file_named_by_database_path_once_repair_is_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    python_file_with_duplicates(&dir.path().join("python.db")).await;
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_interview-db"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("DATABASE_PATH", "python.db")
            .output()
            .expect("run interview-db")
    };
    let refused = run(&["init"]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("kg_nodes") && message.contains("--repair-duplicate-nodes"),
        "{message}"
    );

    let output = run(&["init", "--repair-duplicate-nodes"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report_of(&output);
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["path"], "python.db");
    let adoption = &report["adoption"];
    assert_eq!(adoption["adopted_from"], "python_module");
    assert_eq!(adoption["repaired_nodes"][0]["node_id"], "old");
    assert_eq!(adoption["repaired_nodes"][0]["superseded_by"], "new");
    let backup = adoption["backup"].as_str().expect("a backup path");
    assert!(std::path::Path::new(backup).is_absolute() || dir.path().join(backup).is_file());

    // Once adopted, init is an ordinary start: no adoption key.
    let again = run(&["init"]);
    assert!(again.status.success());
    assert!(report_of(&again).get("adoption").is_none());
}
