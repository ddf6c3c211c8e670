//! The `interview-db` command: data on stdout, logs on stderr, exit codes.

use std::process::{Command, Output};

// The test databases of the library's integration tests.
#[allow(dead_code)]
#[path = "../../tests/common/databases.rs"]
mod helpers;
#[path = "../../tests/common/turns.rs"]
mod turn_builders;

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

/// [`interview_db`] with a deadline: a run still going after `deadline`
/// is killed and fails the test (a command blocked in a system call, e.g.
/// opening a FIFO, would otherwise wait for the suite's own timeout).
fn interview_db_within(
    dir: &std::path::Path,
    args: &[&str],
    deadline: std::time::Duration,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_interview-db"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn interview-db");
    let started = std::time::Instant::now();
    while child.try_wait().expect("poll interview-db").is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap interview-db");
            panic!(
                "`interview-db {}` did not exit within {deadline:?} (killed); stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
        .wait_with_output()
        .expect("collect interview-db's output")
}

/// `interview-db` started in `dir` with its output discarded: a run the
/// test kills.
fn spawn_silent(dir: &std::path::Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_interview-db"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn interview-db")
}

/// How long `interview-db` may take to refuse what is at the database
/// path: at once, but a debug build on a loaded 2-core machine.
const AT_ONCE: std::time::Duration = std::time::Duration::from_secs(10);

/// `interview-db init` and `health` on `name` (in `dir`) exit 1 within
/// [`AT_ONCE`], init printing nothing and health an unhealthy report, each
/// message naming the path and `kind` (what is there).
fn assert_init_and_health_refuse(dir: &std::path::Path, name: &str, kind: &str) {
    let url = format!("sqlite://{name}");
    let init = interview_db_within(dir, &["--database-url", &url, "init"], AT_ONCE);
    assert_eq!(init.status.code(), Some(1), "init: {init:?}");
    assert!(init.stdout.is_empty(), "init printed a report: {init:?}");
    let stderr = String::from_utf8_lossy(&init.stderr);
    assert!(
        stderr.contains(name) && stderr.contains(kind),
        "init does not name the path and what it is: {stderr}"
    );

    let health = interview_db_within(dir, &["--database-url", &url, "health"], AT_ONCE);
    assert_eq!(health.status.code(), Some(1), "health: {health:?}");
    let report = report_of(&health);
    assert_eq!(report["status"], "unhealthy");
    let error = report["error"].as_str().unwrap_or("");
    assert!(
        error.contains(name) && error.contains(kind),
        "health does not name the path and what it is: {report}"
    );
}

#[test]
fn init_and_health_refuse_a_fifo_at_the_database_path_at_once_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Command::new("mkfifo")
        .arg(dir.path().join("store.db"))
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo: {made}");
    assert_init_and_health_refuse(dir.path(), "store.db", "a FIFO");
}

#[test]
fn init_and_health_refuse_a_unix_socket_at_the_database_path_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _listener =
        std::os::unix::net::UnixListener::bind(dir.path().join("store.db")).expect("bind");
    assert_init_and_health_refuse(dir.path(), "store.db", "a Unix socket");
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
    // The Python module's keys first, in its order.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(
            r#"{"status":"healthy","session_count":0,"integrity":"ok","path":"data/interview.db""#
        ),
        "{stdout}"
    );
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["session_count"], 0);
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["path"], "data/interview.db");
    assert_eq!(report["integrity_check"], "quick", "{report}");
    assert!(dir.path().join("data/interview.db").is_file());
    assert!(!output.stderr.is_empty(), "logs go to stderr");

    let output = interview_db(dir.path(), &["health", "--full"]);
    assert!(output.status.success());
    let report = report_of(&output);
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["integrity_check"], "full", "{report}");
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
    db.execute_unprepared(include_str!("../../src/schema/python/2026-01-21.sql"))
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
    assert!(String::from_utf8_lossy(&output.stdout).starts_with(r#"{"status":"healthy""#));
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

/// A session with one element and one turn, written through the library
/// into the database `config` names (initialised first); returns its id.
async fn a_session_with_a_turn(config: &interview_persistence::DatabaseConfig) -> String {
    use interview_persistence::entity::concept_element::Priority;
    use interview_persistence::repositories::{NewConceptElement, NewSession, Repositories};
    let db = interview_persistence::init_database(config)
        .await
        .expect("init");
    let repos = Repositories::new(&db);
    let (session, _) = repos
        .sessions
        .create_with_elements(
            NewSession {
                id: None,
                methodology: "means_end_chain".into(),
                concept_id: "oat-milk".into(),
                concept_name: "Oat milk latte".into(),
                config: serde_json::json!({}),
            },
            vec![NewConceptElement {
                element_id: "e0".into(),
                label: "Taste".into(),
                element_type: "attribute".into(),
                priority: Priority::High,
            }],
        )
        .await
        .expect("a session");
    repos
        .turns
        .record_turn(turn_builders::labeled_turn(&session.id, 1, &["creamy"]))
        .await
        .expect("a turn");
    db.close().await.expect("close");
    session.id.into_string()
}

/// Runs `erase` and checks that it printed one record of `session_id`
/// with the counts of [`a_session_with_a_turn`].
fn assert_erased(dir: &std::path::Path, url: &str, session_id: &str) -> Value {
    let output = interview_db(dir, &["--database-url", url, "erase", session_id]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = report_of(&output);
    assert_eq!(record["session_id"], session_id);
    assert_eq!(
        record["rows"],
        serde_json::json!({"sessions": 1, "utterances": 2, "kg_nodes": 1, "kg_edges": 0,
                           "scoring_history": 1, "concept_elements": 1, "canonical_slots": 0,
                           "surface_to_slot_mapping": 0, "canonical_edges": 0,
                           "qualitative_signals": 0})
    );
    assert!(
        record["erased_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    record
}

/// A session erased before: exit 0 and its record as it was stored (no
/// new erasure time, the same counts, its scrub done).
fn assert_erased_again(dir: &std::path::Path, url: &str, first: &Value) {
    let session_id = first["session_id"].as_str().expect("an id");
    let output = interview_db(dir, &["--database-url", url, "erase", session_id]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = report_of(&output);
    for key in ["session_id", "erased_at", "rows", "backend", "scrubbed_at"] {
        assert_eq!(again[key], first[key], "{key} differs the second time");
    }
}

/// An unknown id: exit 1, an error naming it on stderr, nothing on stdout.
fn assert_unknown(dir: &std::path::Path, url: &str, session_id: &str) {
    let output = interview_db(dir, &["--database-url", url, "erase", session_id]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(session_id),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_prints_the_erasure_record_and_an_unknown_id_fails_without_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("i.db"))
        .expect("config");
    let session_id = a_session_with_a_turn(&config).await;

    let record = assert_erased(dir.path(), "sqlite://i.db", &session_id);
    assert_eq!(record["backend"], "sqlite");
    assert_eq!(record["wal_truncated"], true);
    assert!(
        record["scrubbed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // Erased once: erasing it again prints the same record (erasure is
    // idempotent for a script that re-runs it after a crash).
    assert_erased_again(dir.path(), "sqlite://i.db", &record);
    assert_unknown(dir.path(), "sqlite://i.db", "no-such-session");

    // No database there: an error, and none is created.
    let output = interview_db(
        dir.path(),
        &["--database-url", "sqlite://missing.db", "erase", "x"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(!dir.path().join("missing.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_prints_every_row_of_one_session_and_an_unknown_id_fails_without_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("i.db"))
        .expect("config");
    let session_id = a_session_with_a_turn(&config).await;
    let other = a_session_with_a_turn(&config).await;

    let output = interview_db(
        dir.path(),
        &["--database-url", "sqlite://i.db", "export", &session_id],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let export = report_of(&output);
    assert_eq!(export["session"]["id"], session_id.as_str());
    assert_eq!(export["utterances"].as_array().map(Vec::len), Some(2));
    assert_eq!(export["nodes"][0]["label"], "creamy");
    assert_eq!(export["nodes"][0]["stance"], 0);
    assert_eq!(export["scoring_history"].as_array().map(Vec::len), Some(1));
    assert_eq!(export["concept_elements"][0]["element_id"], "e0");
    for key in [
        "qualitative_signals",
        "canonical_slots",
        "slot_mappings",
        "canonical_edges",
    ] {
        assert_eq!(export[key], serde_json::json!([]), "{key}");
    }
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(&other),
        "another session's rows are in the export"
    );
    for args in [
        vec![
            "--database-url",
            "sqlite://i.db",
            "export",
            "no-such-session",
        ],
        vec!["--database-url", "sqlite://missing.db", "export", "x"],
    ] {
        let output = interview_db(dir.path(), &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!dir.path().join("missing.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_works_on_postgres_and_vacuums() {
    let Some((_database, config)) = crate::helpers::postgres_config().await else {
        return;
    };
    let session_id = a_session_with_a_turn(&config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = config.url.expose().to_owned();
    let record = assert_erased(dir.path(), &url, &session_id);
    assert_eq!(record["backend"], "postgres");
    assert_eq!(record["vacuumed"], true);
    assert!(
        record["scrubbed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_erased_again(dir.path(), &url, &record);
}

#[test]
fn init_creates_owner_only_files_and_directories_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // umask 000: left to the umask, files would be 0644 and directories 0777.
    let output = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_interview-db"))
        .args([
            "--database-url",
            "sqlite://private/deeper/interview.db",
            "init",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_PATH")
        .output()
        .expect("run interview-db under umask 000");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (path, expected) in [
        ("private", 0o700),
        ("private/deeper", 0o700),
        ("private/deeper/interview.db", 0o600),
    ] {
        let mode = std::fs::metadata(dir.path().join(path))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, expected, "{path} has mode {mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn a_setting_that_is_not_utf8_is_an_error_and_opens_no_default_file() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_interview-db"))
        .arg("init")
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("DATABASE_PATH", std::ffi::OsStr::from_bytes(b"caf\xe9.db"))
        .output()
        .expect("run interview-db");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DATABASE_PATH") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none(),
        "something was created"
    );
}

/// Four processes running `init` on one new file at once: the lock SQLite
/// takes to switch a new file to WAL is not covered by the busy timeout, so
/// opening retries it within the timeout; every process must succeed.
#[test]
fn init_racing_on_a_new_file_from_four_processes_always_succeeds() {
    for round in 0..15 {
        let dir = tempfile::tempdir().expect("tempdir");
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_interview-db"))
                    .arg("init")
                    .current_dir(dir.path())
                    .env_remove("DATABASE_URL")
                    .env("DATABASE_PATH", "race.db")
                    .env("RUST_LOG", "warn")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn interview-db")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("wait");
            assert!(
                output.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(report_of(&output)["status"], "healthy", "round {round}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_prints_a_verified_report_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("study.db"))
        .expect("a path");
    a_session_with_a_turn(&config).await;

    let output = interview_db(
        dir.path(),
        &[
            "--database-url",
            "sqlite://study.db",
            "backup",
            "backups/monday.db",
        ],
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = report_of(&output);
    assert_eq!(report["integrity"], "ok");
    assert_eq!(report["destination"], "backups/monday.db");
    assert_eq!(
        report["tables"][0],
        serde_json::json!({"table": "sessions", "rows": 1})
    );
    assert_eq!(
        report["tables"][1],
        serde_json::json!({"table": "utterances", "rows": 2})
    );
    let first = std::fs::read(dir.path().join("backups/monday.db")).expect("the backup");

    let again = interview_db(
        dir.path(),
        &[
            "--database-url",
            "sqlite://study.db",
            "backup",
            "backups/monday.db",
        ],
    );

    assert!(!again.status.success());
    assert!(again.stdout.is_empty(), "no report for a refused backup");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(
        std::fs::read(dir.path().join("backups/monday.db")).expect("the backup"),
        first,
        "the first backup is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_a_study_to_postgresql_and_back_and_prints_matching_checksums() {
    let Some((_database, postgres)) = crate::helpers::postgres_config().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("study.db"))
        .expect("a path");
    a_session_with_a_turn(&config).await;
    let postgres_url = postgres.url.expose().to_owned();

    let there = interview_db(
        dir.path(),
        &["copy", "--from", "study.db", "--to", &postgres_url],
    );
    let back = interview_db(
        dir.path(),
        &["copy", "--from", &postgres_url, "--to", "archive/study.db"],
    );
    let into_non_empty = interview_db(
        dir.path(),
        &["copy", "--from", "study.db", "--to", &postgres_url],
    );

    for output in [&there, &back] {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let (there, back) = (report_of(&there), report_of(&back));
    assert_eq!(there["status"], "verified");
    assert_eq!(back["status"], "verified");
    assert_eq!(there["rows"], back["rows"]);
    for (a, b) in there["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .zip(back["tables"].as_array().expect("tables"))
    {
        assert_eq!(a["source_checksum"], b["target_checksum"], "{a} {b}");
    }
    assert!(dir.path().join("archive/study.db").is_file());
    assert!(!into_non_empty.status.success());
    assert!(into_non_empty.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&into_non_empty.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    let password = url::Url::parse(&postgres_url)
        .expect("url")
        .password()
        .map(str::to_owned);
    if let Some(password) = password {
        assert!(
            !stderr.contains(&format!(":{password}@")),
            "password shown: {stderr}"
        );
    }
}

/// The SHA-256 of the file at `path`, in hex.
fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).expect("read the file"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal bytes of a SQLite header (offsets 18 and 19): `(1, 1)` for
/// a rollback journal, `(2, 2)` for WAL.
fn journal_bytes(path: &std::path::Path) -> (u8, u8) {
    let header = std::fs::read(path).expect("read the file");
    (header[18], header[19])
}

/// A study with one session in the SQLite file at `path`, switched to a
/// rollback journal by a plain connection (as a restored backup or a
/// copy's archive is) and closed.
async fn a_rollback_journal_study(path: &std::path::Path) -> String {
    use sea_orm::sqlx::{self, Connection};
    let config = interview_persistence::DatabaseConfig::sqlite_file(path).expect("a path");
    let session = a_session_with_a_turn(&config).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a plain connection");
    sqlx::query("PRAGMA journal_mode=DELETE")
        .execute(&mut conn)
        .await
        .expect("journal_mode=DELETE");
    conn.close().await.expect("close");
    assert_eq!(journal_bytes(path), (1, 1), "a rollback-journal file");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_rollback_journal_file_leaves_the_source_byte_for_byte_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("restored.db");
    a_rollback_journal_study(&source).await;
    let before = sha256_of(&source);

    let output = interview_db_within(
        dir.path(),
        &[
            "--database-url",
            "sqlite://restored.db",
            "backup",
            "backups/again.db",
        ],
        AT_ONCE,
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        sha256_of(&source),
        before,
        "the source's bytes are unchanged"
    );
    assert_eq!(journal_bytes(&source), (1, 1), "still a rollback journal");
    let report = report_of(&output);
    assert_eq!(report["integrity"], "ok");
    assert_eq!(
        report["tables"][1],
        serde_json::json!({"table": "utterances", "rows": 2}),
        "the backup is complete"
    );
    assert_eq!(journal_bytes(&dir.path().join("backups/again.db")), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_into_a_sqlite_file_with_a_study_leaves_it_byte_for_byte_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("study.db"))
        .expect("a path");
    a_session_with_a_turn(&config).await;
    let archive = dir.path().join("archive.db");
    a_rollback_journal_study(&archive).await;
    let before = sha256_of(&archive);

    let output = interview_db_within(
        dir.path(),
        &["copy", "--from", "study.db", "--to", "archive.db"],
        AT_ONCE,
    );

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stdout.is_empty(), "no report for a refused copy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("left as it was"),
        "{stderr}"
    );
    assert_eq!(
        sha256_of(&archive),
        before,
        "the target's bytes are unchanged"
    );
    assert_eq!(journal_bytes(&archive), (1, 1), "still a rollback journal");
}

/// A study of about 40 MiB in `dir/study.db` (one session, and a table of
/// random bytes the backup copies too): a backup of it takes long enough
/// to be killed midway.
async fn a_large_study(dir: &std::path::Path) {
    let config =
        interview_persistence::DatabaseConfig::sqlite_file(dir.join("study.db")).expect("a path");
    a_session_with_a_turn(&config).await;
    let outside = crate::helpers::outside_connection_to(&config).await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &outside,
        "CREATE TABLE filler AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 10000) SELECT i, randomblob(4000) AS bytes FROM n",
    )
    .await
    .expect("filler");
    outside.close().await.expect("close");
}

/// The temporary files in `dir`.
fn partials_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    e.expect("an entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .filter(|name| name.starts_with(".interview-") && name.contains(".partial"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_killed_midway_leaves_a_partial_that_the_next_backup_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    a_large_study(dir.path()).await;
    let backups = dir.path().join("backups");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut delay = std::time::Duration::from_millis(20);
    let left = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no backup was caught midway within 60 s (the last delay: {delay:?})"
        );
        let _ = std::fs::remove_dir_all(&backups);
        let mut child = Command::new(env!("CARGO_BIN_EXE_interview-db"))
            .args([
                "--database-url",
                "sqlite://study.db",
                "backup",
                "backups/killed.db",
            ])
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env_remove("DATABASE_PATH")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn interview-db");
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        child.wait().expect("reap interview-db");
        let left = partials_in(&backups);
        if !left.is_empty() && !backups.join("killed.db").exists() {
            break left;
        }
        delay += std::time::Duration::from_millis(20);
    };

    let next = interview_db_within(
        dir.path(),
        &[
            "--database-url",
            "sqlite://study.db",
            "backup",
            "backups/next.db",
        ],
        std::time::Duration::from_secs(60),
    );

    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(
        partials_in(&backups),
        Vec::<String>::new(),
        "the killed backup left {left:?}; the next one removed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_warns_about_temporary_copies_left_beside_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = interview_persistence::DatabaseConfig::sqlite_file(dir.path().join("study.db"))
        .expect("a path");
    let session = a_session_with_a_turn(&config).await;
    let leftover = dir.path().join(".interview-4194000-0.partial");
    std::fs::write(&leftover, b"a copy of the study").expect("a leftover");

    let output = interview_db_within(
        dir.path(),
        &["--database-url", "sqlite://study.db", "erase", &session],
        AT_ONCE,
    );

    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(".interview-4194000-0.partial") && stderr.contains("interview-db clean"),
        "erase warns about the leftover and says how to remove it: {stderr}"
    );
    let record = report_of(&output);
    assert!(
        record["leftover_copies"][0]["path"]
            .as_str()
            .is_some_and(|path| path.ends_with(".interview-4194000-0.partial")),
        "the record names the leftover: {record}"
    );
}

#[test]
fn clean_removes_what_killed_runs_left_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new("true").spawn().expect("spawn `true`");
    let pid = child.id();
    child.wait().expect("`true` exits");
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).expect("a directory");
    for name in [
        format!(".interview-{pid}-0.partial"),
        format!(".interview-{pid}-0.partial-wal"),
    ] {
        std::fs::write(archive.join(name), b"a copy of the study").expect("a leftover");
    }
    std::fs::write(archive.join("study.db"), b"kept").expect("a file");

    let output = interview_db_within(dir.path(), &["clean", "archive"], AT_ONCE);

    assert!(output.status.success(), "{output:?}");
    let report = report_of(&output);
    assert_eq!(
        report["removed"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    assert_eq!(report["kept"], serde_json::json!([]), "{report}");
    assert_eq!(partials_in(&archive), Vec::<String>::new());
    assert!(archive.join("study.db").is_file(), "other files stay");
}

/// The marker every utterance of the erased session carries, numbered.
const ERASED_MARKER: &str = "ERASE-ME-7f3c9a";

/// A study in `dir/study.db` of four sessions written side by side (their
/// utterances interleaved in one b-tree, as turns of concurrent interviews
/// are, so that page splits leave copies of cells behind) and 24 MiB of
/// other data, so that the scrub (VACUUM) takes a while: `s0`'s utterances
/// carry [`ERASED_MARKER`]. Returns how many utterances `s0` has.
async fn four_sessions_side_by_side(dir: &std::path::Path) -> i64 {
    let config =
        interview_persistence::DatabaseConfig::sqlite_file(dir.join("study.db")).expect("a path");
    interview_persistence::init_database(&config)
        .await
        .expect("init")
        .close()
        .await
        .expect("close");
    let outside = crate::helpers::outside_connection_to(&config).await;
    let turns = 150;
    let mut sql = String::from("BEGIN;");
    for s in 0..4 {
        sql.push_str(&format!(
            "INSERT INTO sessions (id, methodology, concept_id, concept_name) \
             VALUES ('s{s}', 'means_end_chain', 'c', 'n');"
        ));
    }
    for turn in 1..=turns {
        for s in 0..4 {
            let text = if s == 0 {
                format!("{ERASED_MARKER}-{turn:04} ")
            } else {
                format!("other participant {s} ")
            };
            sql.push_str(&format!(
                "INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
                 VALUES ('u{s}-{turn}', 's{s}', {turn}, 'user', '{text}' || hex(randomblob(1500)));"
            ));
        }
    }
    sql.push_str(
        "CREATE TABLE filler AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
         WHERE i < 6000) SELECT i, randomblob(4000) AS bytes FROM n; COMMIT;",
    );
    sea_orm::ConnectionTrait::execute_unprepared(&outside, &sql)
        .await
        .expect("the study");
    outside.close().await.expect("close");
    i64::from(turns)
}

/// The study's database file and its -wal and -shm, copied to `to`.
fn copy_study(from: &std::path::Path, to: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let source = from.join(format!("study.db{suffix}"));
        if source.exists() {
            std::fs::copy(&source, to.join(format!("study.db{suffix}"))).expect("copy the study");
        }
    }
}

/// How often [`ERASED_MARKER`] occurs in the study's files, and whether
/// session `s0` is there with all `utterances` of its utterances.
fn erased_session_state(dir: &std::path::Path, utterances: i64) -> (usize, Option<bool>) {
    let mut hits = 0;
    for suffix in ["", "-wal", "-shm"] {
        let bytes = std::fs::read(dir.join(format!("study.db{suffix}"))).unwrap_or_default();
        hits += bytes
            .windows(ERASED_MARKER.len())
            .filter(|w| *w == ERASED_MARKER.as_bytes())
            .count();
    }
    let db = read_outside_the_module(dir);
    (
        hits,
        db.map(|(sessions, rows)| sessions == 1 && rows == utterances),
    )
}

/// `s0`'s session row and utterance count, read outside the module (the
/// module would complete an owed scrub on opening, which is what is
/// tested): with Python's sqlite3, read-only (`mode=ro`). `None` when
/// `s0` is gone.
fn read_outside_the_module(dir: &std::path::Path) -> Option<(i64, i64)> {
    // (It also reads `s0`'s erasure record: see SESSION_ERASURE_RECORD.)
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\n\
             c=sqlite3.connect('file:study.db?mode=ro',uri=True)\n\
             s=c.execute(\"select count(*) from sessions where id='s0'\").fetchone()[0]\n\
             u=c.execute(\"select count(*) from utterances where session_id='s0'\").fetchone()[0]\n\
             r=c.execute(\"select count(*), count(scrubbed_at) from session_erasures where session_id='s0'\").fetchone()\n\
             print(s,u,r[0],r[1])",
        )
        .current_dir(dir)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|n| n.parse::<i64>().expect("a count"));
    let sessions = numbers.next().expect("sessions");
    let rows = numbers.next().expect("utterances");
    let records = numbers.next().expect("erasure records");
    let scrubbed = numbers.next().expect("scrubbed records");
    SESSION_ERASURE_RECORD.with(|r| r.set((records, scrubbed)));
    (sessions == 1).then_some((sessions, rows))
}

thread_local! {
    /// `s0`'s erasure records and how many of them are scrubbed, as the
    /// last [`read_outside_the_module`] read them.
    static SESSION_ERASURE_RECORD: std::cell::Cell<(i64, i64)> = const { std::cell::Cell::new((0, 0)) };
}

/// `interview-db erase` killed with -9 at several moments — before the
/// delete, during the scrub after its commit, after — leaves, after the
/// next start (`init`), either the session whole or no byte of its text
/// in the file, its WAL or its shared memory. The moments are fractions
/// of an erase run to its end on the same study; kills are repeated (at
/// most 16, within 150 s) until at least one landed after the commit and
/// before the scrub finished, the case a crash used to leave for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_killed_at_any_moment_leaves_the_session_whole_or_no_byte_of_it_after_the_next_start()
{
    let template = tempfile::tempdir().expect("tempdir");
    let utterances = four_sessions_side_by_side(template.path()).await;
    let (hits, whole) = erased_session_state(template.path(), utterances);
    assert!(
        hits >= 150 && whole == Some(true),
        "the study: {hits} hits, {whole:?}"
    );

    // One erase run to its end, timed.
    let timed = tempfile::tempdir().expect("tempdir");
    copy_study(template.path(), timed.path());
    let started = std::time::Instant::now();
    let output = interview_db_within(
        timed.path(),
        &["--database-url", "sqlite://study.db", "erase", "s0"],
        std::time::Duration::from_secs(60),
    );
    let full_run = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(erased_session_state(timed.path(), utterances), (0, None));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    let fractions = [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
    let mut outcomes = Vec::new();
    let mut mid_scrub = 0;
    for round in 0..16 {
        let fraction = fractions[round % fractions.len()] - 0.03 * (round / fractions.len()) as f64;
        let delay = full_run.mul_f64(fraction);
        let dir = tempfile::tempdir().expect("tempdir");
        copy_study(template.path(), dir.path());
        let mut child = spawn_silent(
            dir.path(),
            &["--database-url", "sqlite://study.db", "erase", "s0"],
        );
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().expect("reap interview-db");
        let killed = erased_session_state(dir.path(), utterances);
        if killed.1.is_none() && killed.0 > 0 {
            mid_scrub += 1;
        }

        let start = interview_db_within(
            dir.path(),
            &["--database-url", "sqlite://study.db", "init"],
            std::time::Duration::from_secs(60),
        );
        assert!(
            start.status.success(),
            "{}",
            String::from_utf8_lossy(&start.stderr)
        );
        let after = erased_session_state(dir.path(), utterances);
        outcomes.push((delay, killed, after));
        assert!(
            after == (hits, Some(true)) || after == (0, None),
            "killed after {delay:?} ({killed:?} then), the next start left {after:?}: \
             neither the session whole ({hits} hits) nor none of it; all: {outcomes:?}"
        );
        // Erased: its record says the scrub was done (the next start
        // completed what the kill cut short). Whole: no record.
        let record = SESSION_ERASURE_RECORD.with(std::cell::Cell::get);
        let expected = if after.1.is_none() { (1, 1) } else { (0, 0) };
        assert_eq!(
            record, expected,
            "killed after {delay:?}: the erasure record (count, scrubbed) after the next start"
        );
        if mid_scrub > 0 && round + 1 >= fractions.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "out of time; outcomes: {outcomes:?}"
        );
    }
    assert!(
        mid_scrub > 0,
        "no kill landed between the commit and the end of the scrub (a full run: {full_run:?}): \
         {outcomes:?}"
    );
}

/// Runs `python3` with `args` under a deadline; its stdout.
fn python3(args: &[&str], dir: &std::path::Path) -> String {
    let mut child = Command::new("python3")
        .args(args)
        .current_dir(dir)
        .env("PYTHON_HOST_ZONE", "Europe/Berlin")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (CPython is on this machine kind)");
    let started = std::time::Instant::now();
    while child.try_wait().expect("poll python3").is_none() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "python3 hung"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("python3's output");
    assert!(
        output.status.success(),
        "python3 {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A file the Python system carried from January through every version
/// (`tests/fixtures/python_eras.py`), grown to 5,000 utterances in its
/// timestamp shapes so that adopting it takes long enough to be killed
/// midway.
fn a_large_long_lived_python_file(dir: &std::path::Path) {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/python_eras.py"
    );
    python3(&[fixture, "long-lived", "study.db"], dir);
    python3(
        &[
            "-c",
            "import sqlite3, uuid\n\
             db = sqlite3.connect('study.db')\n\
             (session,) = db.execute('SELECT id FROM sessions LIMIT 1').fetchone()\n\
             db.executemany('INSERT INTO utterances (id, session_id, turn_number, speaker, text, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)', [(str(uuid.uuid4()), session, 2 + i // 2, ('user', 'system')[i % 2], \
             'answer %d' % i, '2026-03-01T10:%02d:%02d.%06d' % (i // 60 % 60, i % 60, i)) for i in range(5000)])\n\
             db.commit()",
        ],
        dir,
    );
}

/// What a reader other than the module sees in `dir/study.db` (a copy,
/// opened by Python's sqlite3, so that the WAL a kill left is recovered
/// there, not in the file): whether migrations are recorded, and each
/// table's row count and a SHA-256 of its rows as text.
fn python_file_state(dir: &std::path::Path) -> (bool, String) {
    let scratch = tempfile::tempdir().expect("tempdir");
    copy_study(dir, scratch.path());
    let out = python3(
        &[
            "-c",
            "import sqlite3\n\
             db = sqlite3.connect('study.db')\n\
             names = [r[0] for r in db.execute(\"SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name\")]\n\
             import hashlib\n\
             print('seaql_migrations' in names)\n\
             for name in names:\n\
             \x20   if name in ('seaql_migrations', 'edge_types', 'session_erasures'): continue\n\
             \x20   rows = sorted(repr(r) for r in db.execute('SELECT * FROM \"%s\"' % name))\n\
             \x20   print(name, len(rows), hashlib.sha256('\\n'.join(rows).encode()).hexdigest())",
        ],
        scratch.path(),
    );
    let (migrated, rows) = out.split_once('\n').expect("two parts");
    (migrated == "True", rows.to_owned())
}

#[test]
fn init_killed_while_adopting_a_python_file_leaves_it_as_it_was_or_adopted() {
    let template = tempfile::tempdir().expect("tempdir");
    a_large_long_lived_python_file(template.path());
    let (migrated, original) = python_file_state(template.path());
    assert!(!migrated);
    let adopt = [
        "--database-url",
        "sqlite://study.db",
        "init",
        "--python-local-time-zone",
        "Europe/Berlin",
    ];

    // One adoption run to its end, timed.
    let timed = tempfile::tempdir().expect("tempdir");
    copy_study(template.path(), timed.path());
    let started = std::time::Instant::now();
    let output = interview_db_within(timed.path(), &adopt, std::time::Duration::from_secs(120));
    let full_run = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let adoption = &report_of(&output)["adoption"];
    assert_eq!(adoption["rewritten_values"]["utterances.created_at"], 5_010);
    let (migrated, adopted) = python_file_state(timed.path());
    assert!(migrated);

    let mut outcomes = Vec::new();
    for fraction in [0.3, 0.6, 0.85, 0.95] {
        let delay = full_run.mul_f64(fraction);
        let dir = tempfile::tempdir().expect("tempdir");
        copy_study(template.path(), dir.path());
        let mut child = spawn_silent(dir.path(), &adopt);
        std::thread::sleep(delay);
        let _ = child.kill();
        child.wait().expect("reap interview-db");
        // Killed: the Python system's file as it was, or adopted whole.
        let (migrated, rows) = python_file_state(dir.path());
        outcomes.push((delay, migrated));
        if migrated {
            assert_eq!(
                rows, adopted,
                "killed after {delay:?}: adopted, but not whole"
            );
        } else {
            assert_eq!(
                rows, original,
                "killed after {delay:?}: not adopted, but changed"
            );
        }
        // And the next start takes it over (or finds it taken over).
        let start = interview_db_within(dir.path(), &adopt, std::time::Duration::from_secs(120));
        assert!(
            start.status.success(),
            "{}",
            String::from_utf8_lossy(&start.stderr)
        );
        assert_eq!(python_file_state(dir.path()), (true, adopted.clone()));
    }
    assert!(
        outcomes.iter().any(|(_, migrated)| !migrated),
        "no kill landed before the commit: {outcomes:?} (full run {full_run:?})"
    );
    eprintln!("full run {full_run:?}; killed (after, adopted): {outcomes:?}");
}
