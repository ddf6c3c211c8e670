//! Where the database is: one rule for the library, `interview-db` and this
//! crate's binary (`cargo run -p migration`, `sea-orm-cli migrate`), so
//! that no tool can migrate a different file than the service opens.

/// The embedded default: a SQLite file relative to the working directory.
pub const DEFAULT_DATABASE_PATH: &str = "data/interview.db";

/// The database URL the settings name: `DATABASE_URL`, else the SQLite
/// file `DATABASE_PATH` (the Python system's setting), else
/// [`DEFAULT_DATABASE_PATH`]. `lookup` reads a setting; empty counts as
/// unset.
pub fn database_url_from(lookup: impl Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| lookup(name).filter(|value| !value.is_empty());
    match (set("DATABASE_URL"), set("DATABASE_PATH")) {
        (Some(url), _) => url,
        (None, Some(path)) => sqlite_url_for_path(&path),
        (None, None) => sqlite_url_for_path(DEFAULT_DATABASE_PATH),
    }
}

/// The URL of the SQLite file at `path`, created if missing (`mode=rwc`).
/// What sqlx would read as the query, a fragment or an escape is
/// percent-encoded, so any file name works.
#[must_use]
pub fn sqlite_url_for_path(path: &str) -> String {
    let encoded = path
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    format!("sqlite://{encoded}?mode=rwc")
}
