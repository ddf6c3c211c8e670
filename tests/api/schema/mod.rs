//! The schema (`src/schema/`): taking over the files the Python module
//! made.

mod adopt;
mod adopt_hostile;
mod python_eras;
mod way_back;

use std::path::{Path, PathBuf};

use interview_persistence::DatabaseConfig;
use rusqlite::Connection;

/// The Python module's DDL, which the fixtures are built with.
pub(crate) const PYTHON_DDL: &str = include_str!("../../../src/schema/python/2026-01-21.sql");

/// Runs SQL on the file through rusqlite (another program), with CHECKs and
/// foreign keys off, to plant what the Python module's connections could
/// have left.
pub(crate) fn plant(path: &Path, sql: &str) {
    let db = Connection::open(path).expect("open");
    db.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF; PRAGMA ignore_check_constraints = ON; {sql}"
    ))
    .expect("plant");
}

/// Runs `tests/fixtures/<script>` with CPython under a deadline, with
/// `env` set, and returns the JSON it printed.
pub(crate) fn python_fixture(
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> serde_json::Value {
    use std::time::{Duration, Instant};
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(script);
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (CPython is on this machine kind)");
    // Its output is small (JSON of ids and values): the pipe never fills.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "{} hung", script.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the fixture prints JSON")
}

pub(crate) fn config(path: &Path) -> DatabaseConfig {
    DatabaseConfig::sqlite_file(path).expect("config")
}

pub(crate) fn backups_beside(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    std::fs::read_dir(path.parent().expect("a directory"))
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("{name}.before-adoption-"))
            })
        })
        .collect()
}
