//! Reading the configuration, and keeping passwords out of sight.

use std::collections::HashMap;
use std::path::PathBuf;

use interview_persistence::config::{DEFAULT_DATABASE_PATH, SqliteLocation};
use interview_persistence::{Backend, DatabaseConfig, DatabaseUrl, Error, Synchronous};

fn from(vars: &[(&str, &str)]) -> Result<DatabaseConfig, Error> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    DatabaseConfig::from_lookup(|name| vars.get(name).cloned())
}

fn file_of(config: &DatabaseConfig) -> PathBuf {
    match config.url.sqlite_location() {
        Some(SqliteLocation::File { path, create: true }) => path,
        other => panic!("expected a creatable file, got {other:?}"),
    }
}

#[test]
fn without_settings_the_embedded_default_file_is_used() {
    let config = from(&[]).expect("config");
    assert_eq!(config.url.backend(), Backend::Sqlite);
    assert_eq!(file_of(&config), PathBuf::from(DEFAULT_DATABASE_PATH));
    assert!(config.max_connections > 1);
    assert_eq!(config.synchronous, Synchronous::Normal);
}

#[test]
fn database_path_names_a_sqlite_file_and_database_url_wins_over_it() {
    let config = from(&[("DATABASE_PATH", "/srv/interviews/db #1?.sqlite")]).expect("config");
    assert_eq!(
        file_of(&config),
        PathBuf::from("/srv/interviews/db #1?.sqlite")
    );

    let config = from(&[
        ("DATABASE_PATH", "/ignored.db"),
        (
            "DATABASE_URL",
            "postgres://app:s3cret@db.internal:5432/interviews",
        ),
    ])
    .expect("config");
    assert_eq!(config.url.backend(), Backend::Postgres);
    assert_eq!(config.max_connections, 10);
}

#[test]
fn tuning_variables_are_read_and_bad_values_name_their_variable() {
    let config = from(&[
        ("DATABASE_MAX_CONNECTIONS", "3"),
        ("DATABASE_BUSY_TIMEOUT_MS", "250"),
        ("DATABASE_SYNCHRONOUS", "FULL"),
    ])
    .expect("config");
    assert_eq!(config.max_connections, 3);
    assert_eq!(config.busy_timeout, std::time::Duration::from_millis(250));
    assert_eq!(config.synchronous, Synchronous::Full);

    for (name, value) in [
        ("DATABASE_MAX_CONNECTIONS", "many"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("DATABASE_BUSY_TIMEOUT_MS", "-1"),
        ("DATABASE_SYNCHRONOUS", "off"),
    ] {
        match from(&[(name, value)]) {
            Err(err @ Error::InvalidConfig { .. }) => {
                assert!(err.to_string().contains(name), "{err}");
            }
            other => panic!("{name}={value}: expected InvalidConfig, got {other:?}"),
        }
    }
}

#[test]
fn a_password_never_appears_in_debug_or_display() {
    let config = from(&[(
        "DATABASE_URL",
        "postgres://app:s3cret@db.internal:5432/interviews",
    )])
    .expect("config");
    let shown = [
        format!("{config:?}"),
        format!("{}", config.url),
        format!("{:?}", config.url),
    ];
    for text in shown {
        assert!(!text.contains("s3cret"), "password shown: {text}");
        assert!(text.contains("db.internal"), "host hidden too: {text}");
    }
    assert!(
        config.url.expose().contains("s3cret"),
        "the driver still gets it"
    );

    match DatabaseUrl::parse("mysql://app:s3cret@db.internal/interviews") {
        Err(err) => assert!(!err.to_string().contains("s3cret"), "{err}"),
        Ok(url) => panic!("mysql accepted: {url}"),
    }
}

#[test]
fn with_url_switches_backend_and_its_default_pool_size() {
    let config = from(&[]).expect("config");
    let config = config
        .with_url("postgres://u@localhost/db")
        .expect("switch");
    assert_eq!(config.url.backend(), Backend::Postgres);
    assert_eq!(config.max_connections, 10);
    let config = config.with_url("sqlite::memory:").expect("switch back");
    assert_eq!(config.url.sqlite_location(), Some(SqliteLocation::Memory));
    assert_eq!(config.max_connections, 8);
}
