//! Where the database is and how to open it.
//!
//! [`DatabaseConfig::from_env`] reads the same settings the Python system
//! read (`DATABASE_URL`, else its file path `DATABASE_PATH`, else the
//! embedded default [`DEFAULT_DATABASE_PATH`]); every field can also be set
//! in code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};

/// The embedded default: a SQLite file relative to the working directory.
pub use migration::location::DEFAULT_DATABASE_PATH;

/// Which database server a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An embedded SQLite file (or an in-memory database).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

impl From<Backend> for sea_orm::DbBackend {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite,
            Backend::Postgres => Self::Postgres,
        }
    }
}

/// Where a SQLite URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A file on disk.
    File {
        /// The database file (relative paths are relative to the working
        /// directory).
        path: PathBuf,
        /// Whether a missing file may be created: true unless the URL sets
        /// `mode=ro` or `mode=rw`.
        create: bool,
    },
    /// `sqlite::memory:` (or `mode=memory`): a database of the handle's own,
    /// gone with its last clone. It is a private file in the system's
    /// temporary directory (readable by this user only), not SQLite's
    /// shared-cache memory database, whose table locks would make readers
    /// and the writer wait for each other.
    Memory,
}

/// A validated database URL. Its `Debug` and `Display` never show a
/// credential: not the userinfo's password, nor a `password=` (or any
/// other secret-named) query parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl DatabaseUrl {
    /// Validates `url`: `sqlite:…` (a file path or `:memory:`, see sqlx's
    /// SQLite URL syntax) or `postgres://…` / `postgresql://…`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the scheme is not one of those or the rest
    /// of the URL cannot be parsed.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: redact(url),
            reason,
        };
        let backend = if url.starts_with("sqlite:") {
            sqlite_filename(url).map_err(invalid)?;
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(not(feature = "postgres")) {
                return Err(invalid(
                    "this build has no PostgreSQL support (the `postgres` feature is off)".into(),
                ));
            }
            let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(invalid("a PostgreSQL URL needs a host".into()));
            }
            Backend::Postgres
        } else {
            return Err(invalid(
                "the scheme must be `sqlite:`, `postgres://` or `postgresql://`".into(),
            ));
        };
        Ok(Self {
            raw: url.to_owned(),
            backend,
        })
    }

    /// The URL of a SQLite database file at `path`, created if missing.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the path is not valid UTF-8.
    pub fn sqlite_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::parse(&migration::location::sqlite_url_for_path(utf8(
            path.as_ref(),
        )?))
    }

    /// The URL of the SQLite file at `path`, opened read-only (`mode=ro`):
    /// nothing is created, written or switched to WAL.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the path is not valid UTF-8.
    pub fn sqlite_file_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let url = migration::location::sqlite_url_for_path(utf8(path.as_ref())?);
        Self::parse(&url.replace("?mode=rwc", "?mode=ro"))
    }

    /// A private in-memory SQLite database (`sqlite::memory:`).
    #[must_use]
    pub fn sqlite_memory() -> Self {
        Self {
            raw: "sqlite::memory:".into(),
            backend: Backend::Sqlite,
        }
    }

    /// The backend the URL names.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL itself, password included: hand it to a driver, never to a
    /// log.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL to give the driver, without any credential, and the
    /// password apart (the `password` query parameter, which the driver
    /// prefers, else the userinfo's). The driver and SeaORM log their
    /// connect options at trace level, and sqlx warns about unknown
    /// parameters with their values: neither gets to see a secret.
    pub(crate) fn driver_parts(&self) -> (String, Option<String>) {
        if self.backend != Backend::Postgres {
            return (self.raw.clone(), None);
        }
        let Ok(mut parsed) = url::Url::parse(&self.raw) else {
            return (self.raw.clone(), None);
        };
        let from_query = parsed
            .query_pairs()
            .filter(|(name, _)| name == "password")
            .map(|(_, value)| value.into_owned())
            .last();
        let from_userinfo = parsed.password().map(|password| {
            percent_encoding::percent_decode_str(password)
                .decode_utf8_lossy()
                .into_owned()
        });
        let _ = parsed.set_password(None);
        if parsed
            .query_pairs()
            .any(|(name, _)| mentions_a_secret(&name))
        {
            let kept: Vec<(String, String)> = parsed
                .query_pairs()
                .filter(|(name, _)| !mentions_a_secret(name))
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect();
            if kept.is_empty() {
                parsed.set_query(None);
            } else {
                parsed.query_pairs_mut().clear().extend_pairs(kept);
            }
        }
        parsed.set_fragment(None);
        (parsed.to_string(), from_query.or(from_userinfo))
    }

    /// Whether a SQLite URL opens the database read-only (`mode=ro`).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.backend == Backend::Sqlite
            && self.raw.split_once('?').is_some_and(|(_, params)| {
                url::form_urlencoded::parse(params.as_bytes())
                    .any(|(key, value)| key == "mode" && value == "ro")
            })
    }

    /// What to call the database in reports: the SQLite file path,
    /// `:memory:`, or the URL with its password redacted.
    #[must_use]
    pub fn display_location(&self) -> String {
        match self.sqlite_location() {
            Some(SqliteLocation::File { path, .. }) => path.display().to_string(),
            Some(SqliteLocation::Memory) => ":memory:".into(),
            None => self.to_string(),
        }
    }

    /// Where a SQLite URL points; `None` for other backends.
    #[must_use]
    pub fn sqlite_location(&self) -> Option<SqliteLocation> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self.raw.trim_start_matches("sqlite:");
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
        let mode = url::form_urlencoded::parse(params.as_bytes())
            .find(|(key, _)| key == "mode")
            .map(|(_, value)| value.into_owned());
        if database == ":memory:" || mode.as_deref() == Some("memory") {
            return Some(SqliteLocation::Memory);
        }
        // Parsing succeeded in `parse`, so this cannot fail; sqlx owns the
        // decoding rules of the path. `..` is resolved by name, so that
        // `a/b/../c.db` is `a/c.db` and opening it creates no `a/b`.
        let path = lexically_normal(
            &sqlite_filename(&self.raw).unwrap_or_else(|_| PathBuf::from(database)),
        );
        Some(SqliteLocation::File {
            path,
            create: mode.is_none() || mode.as_deref() == Some("rwc"),
        })
    }
}

impl FromStr for DatabaseUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.raw))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&redact(&self.raw))
            .finish()
    }
}

/// `path` with `.` dropped and each `name/..` pair removed, by name alone
/// (leading `..` kept): what the operator meant, without creating or
/// passing through directories that `..` steps back out of.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(normal.components().next_back(), Some(Component::Normal(_))) =>
            {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

/// The file a SQLite URL names, decoded as sqlx decodes it, or why the URL
/// cannot be used.
#[cfg(feature = "sqlite")]
fn sqlite_filename(url: &str) -> std::result::Result<PathBuf, String> {
    sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .map(|options| options.get_filename().to_path_buf())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "sqlite"))]
fn sqlite_filename(_: &str) -> std::result::Result<PathBuf, String> {
    Err("this build has no SQLite support (the `sqlite` feature is off)".into())
}

/// `path` as text, which a URL needs.
fn utf8(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| Error::InvalidUrl {
        url: path.display().to_string(),
        reason: "the path is not valid UTF-8".into(),
    })
}

/// The write-ahead log beside a SQLite database file.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// What stands in for a secret in a URL that is shown.
const REDACTED: &str = "***";

/// Whether a URL query parameter carries a secret: `password` (which sqlx
/// reads for PostgreSQL), `sslpassword`, and anything named like a
/// password, token or secret, compared case-insensitively after
/// percent-decoding (so `PassWord` and `pass%77ord` count too).
/// Whether `text` contains a word that names a secret.
fn mentions_a_secret(text: &str) -> bool {
    const SECRET_WORDS: [&str; 6] = ["pass", "pwd", "secret", "token", "credential", "auth"];
    let text = text.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| text.contains(word))
}

/// `url` with every credential replaced by `***`: the password of the
/// userinfo (`user:password@`) and the value of every query parameter that
/// [`mentions_a_secret`] names. A URL that cannot be parsed keeps only
/// its scheme when anything in it could be a secret.
pub(crate) fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        let suspicious = url.contains('@') || mentions_a_secret(url);
        return match (suspicious, url.split_once(':')) {
            (false, _) => url.to_owned(),
            (true, Some((scheme, _))) => format!("{scheme}:{REDACTED}"),
            (true, None) => REDACTED.into(),
        };
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have a password at all.
        let _ = parsed.set_password(Some(REDACTED));
    }
    if parsed
        .query_pairs()
        .any(|(name, _)| mentions_a_secret(&name))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if mentions_a_secret(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // A fragment is never sent to a server, but may hold anything.
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(REDACTED));
    }
    parsed.to_string()
}

/// SQLite's `synchronous` level for every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// With WAL: a commit survives an application crash; a power loss may
    /// roll back the last commits. No fsync per commit.
    #[default]
    Normal,
    /// A commit also survives a power loss, at one fsync per commit.
    Full,
}

impl FromStr for Synchronous {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            _ => Err(Error::InvalidConfig {
                name: "DATABASE_SYNCHRONOUS",
                value: s.to_owned(),
                reason: "expected `normal` or `full`".into(),
            }),
        }
    }
}

/// The environment variables [`DatabaseConfig::from_env`] reads.
const SETTINGS: [&str; 5] = [
    "DATABASE_URL",
    "DATABASE_PATH",
    "DATABASE_MAX_CONNECTIONS",
    "DATABASE_BUSY_TIMEOUT_MS",
    "DATABASE_SYNCHRONOUS",
];

/// The longest busy timeout SQLite takes (its argument is a C `int` of
/// milliseconds; sqlx panics on more).
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How to reach and open the database. Build it with
/// [`DatabaseConfig::from_env`] or [`DatabaseConfig::new`] and adjust the
/// public fields.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Where the database is.
    pub url: DatabaseUrl,
    /// Most connections the pool opens. Above one, so that readers never
    /// wait for a writer (SeaORM would give SQLite a single connection).
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// How long a caller waits for a free pooled connection.
    pub acquire_timeout: Duration,
    /// SQLite: how long a statement waits for another connection's lock
    /// before failing with a busy error.
    pub busy_timeout: Duration,
    /// SQLite: the `synchronous` level.
    pub synchronous: Synchronous,
    /// Log every SQL statement (at `debug`) through the driver.
    pub log_statements: bool,
    /// SQLite files: checkpoint the WAL after this many write transactions
    /// (a passive checkpoint in the background, off the writers' path).
    pub checkpoint_after_commits: u32,
    /// SQLite files: checkpoint the WAL at least this often.
    pub checkpoint_interval: Duration,
    /// SQLite files: once checkpointed, the WAL file is truncated to this
    /// many bytes (`journal_size_limit`).
    pub wal_size_limit: u64,
    /// SQLite files: the most pages the file may grow to
    /// (`max_page_count`, set on every connection that writes); a write
    /// past it fails with [`Error::StorageFull`](crate::Error::StorageFull)
    /// and writes nothing. `None`: SQLite's own limit.
    pub max_page_count: Option<u32>,
}

impl DatabaseConfig {
    /// The defaults for `url`: 8 pooled connections on SQLite (one writer at
    /// a time, readers beside it) and 10 on PostgreSQL, one kept idle, a
    /// 30 s acquire timeout, a 5 s busy timeout, `synchronous=NORMAL`, a WAL
    /// checkpoint every 32 write transactions or every second, and a 64 MiB
    /// WAL size limit.
    #[must_use]
    pub fn new(url: DatabaseUrl) -> Self {
        let max_connections = match url.backend() {
            Backend::Sqlite => 8,
            Backend::Postgres => 10,
        };
        Self {
            url,
            max_connections,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(30),
            busy_timeout: migration::DEFAULT_BUSY_TIMEOUT,
            synchronous: Synchronous::Normal,
            log_statements: false,
            checkpoint_after_commits: 32,
            checkpoint_interval: Duration::from_secs(1),
            wal_size_limit: 64 * 1024 * 1024,
            max_page_count: None,
        }
    }

    /// The configuration for a SQLite file at `path`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the path is not valid UTF-8.
    pub fn sqlite_file(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(DatabaseUrl::sqlite_file(path)?))
    }

    /// Reads the configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `DATABASE_URL` | the database URL | — |
    /// | `DATABASE_PATH` | a SQLite file path, used when `DATABASE_URL` is unset | `data/interview.db` |
    /// | `DATABASE_MAX_CONNECTIONS` | pool size | 8 (SQLite), 10 (PostgreSQL) |
    /// | `DATABASE_BUSY_TIMEOUT_MS` | SQLite busy timeout | 5000 |
    /// | `DATABASE_SYNCHRONOUS` | `normal` or `full` | `normal` |
    ///
    /// Empty variables count as unset.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] or [`Error::InvalidConfig`] naming the variable
    /// that could not be used.
    pub fn from_env() -> Result<Self> {
        // A setting that is there but not UTF-8 is an error, not "unset":
        // treating it as unset would quietly open the default file.
        for name in SETTINGS {
            if let Some(value) = std::env::var_os(name)
                && value.to_str().is_none()
            {
                return Err(Error::InvalidConfig {
                    name,
                    value: value.to_string_lossy().into_owned(),
                    reason: "it is not valid UTF-8".into(),
                });
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests
    /// pass a map here instead of changing the process environment).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        // The one rule the migration binary follows too.
        let url = DatabaseUrl::parse(&migration::location::database_url_from(&lookup))?;
        let mut config = Self::new(url);
        if let Some(value) = lookup("DATABASE_MAX_CONNECTIONS") {
            config.max_connections = parse_number("DATABASE_MAX_CONNECTIONS", &value)?;
            if config.max_connections == 0 {
                return Err(Error::InvalidConfig {
                    name: "DATABASE_MAX_CONNECTIONS",
                    value,
                    reason: "the pool needs at least one connection".into(),
                });
            }
            config.min_connections = config.min_connections.min(config.max_connections);
        }
        if let Some(value) = lookup("DATABASE_BUSY_TIMEOUT_MS") {
            config.busy_timeout =
                Duration::from_millis(parse_number("DATABASE_BUSY_TIMEOUT_MS", &value)?);
            if config.busy_timeout > MAX_BUSY_TIMEOUT {
                return Err(Error::InvalidConfig {
                    name: "DATABASE_BUSY_TIMEOUT_MS",
                    value,
                    reason: format!("SQLite takes at most {} ms", MAX_BUSY_TIMEOUT.as_millis()),
                });
            }
        }
        if let Some(value) = lookup("DATABASE_SYNCHRONOUS") {
            config.synchronous = value.parse()?;
        }
        Ok(config)
    }

    /// Replaces the URL given by the environment (the CLI's
    /// `--database-url`), keeping the other settings but the pool size,
    /// which follows the new backend's default unless it was set.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when `url` cannot be parsed.
    pub fn with_url(self, url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        let default_before = Self::new(self.url.clone()).max_connections;
        let mut config = Self { url, ..self };
        if config.max_connections == default_before {
            config.max_connections = Self::new(config.url.clone()).max_connections;
        }
        Ok(config)
    }
}

fn parse_number<T: FromStr>(name: &'static str, value: &str) -> Result<T>
where
    T::Err: fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| Error::InvalidConfig {
            name,
            value: value.to_owned(),
            reason: e.to_string(),
        })
}
