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
