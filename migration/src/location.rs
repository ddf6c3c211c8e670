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

/// Creates `directory` and its missing parents with mode 0700 (on Unix;
/// the umask can only remove bits from it); directories that exist are
/// left as they are. Everything made to hold participants' data — the
/// database's directories, backups, copies — is made this way, by the
/// library and by this crate's binary alike.
///
/// # Errors
/// The I/O error of creating a directory.
pub fn create_private_directories(directory: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory)
}

/// Creates `path` as an empty file readable and writable by this user only
/// (0600 on Unix, whatever the umask), before SQLite opens it: SQLite
/// gives the `-wal` and `-shm` files it creates beside a database the
/// database file's mode. A file that exists (or appeared meanwhile) is
/// left as it is.
///
/// # Errors
/// The I/O error of creating the file, other than its existing.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => Err(err),
        _ => Ok(()),
    }
}
