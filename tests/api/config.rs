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

/// URLs with the secret `s3cret` in every place a driver could read one.
const SECRET_URLS: [&str; 8] = [
    "postgres://app:s3cret@db.internal:5432/interviews",
    "postgres://app@db.internal/interviews?password=s3cret",
    "postgres://app@db.internal/interviews?sslmode=require&PassWord=s3cret",
    "postgres://app@db.internal/interviews?pass%77ord=s3cret",
    "postgres://app@db.internal/interviews?sslpassword=s3cret&application_name=x",
    "postgresql://:s3cret@db.internal/interviews",
    "postgres://app@db.internal/interviews?auth_token=s3cret#s3cret",
    "postgres://app:s3cret@db.internal:5432/interviews?password=s3cret",
];

#[test]
fn a_credential_in_any_part_of_a_url_never_shows() {
    for raw in SECRET_URLS {
        let url = DatabaseUrl::parse(raw).expect("a valid URL");
        let config = DatabaseConfig::new(url.clone());
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            url.display_location(),
            format!("{config:?}"),
        ] {
            assert!(!shown.contains("s3cret"), "{raw} shows as {shown}");
        }
        assert_eq!(url.expose(), raw, "the driver gets the URL unchanged");
    }
    // A URL that does not parse is refused without showing its secret.
    for raw in [
        "postgres://app:s3cret@[bad/db",
        "postgres://app@db.internal:99999/x?password=s3cret",
    ] {
        match DatabaseUrl::parse(raw) {
            Err(err) => assert!(!err.to_string().contains("s3cret"), "{err}"),
            Ok(url) => assert!(!url.to_string().contains("s3cret"), "{url}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_reports_without_showing_its_credentials() {
    // Port 1 on loopback: refused at once, nothing leaves the machine.
    for raw in [
        "postgres://app:s3cret@127.0.0.1:1/interviews?connect_timeout=2",
        "postgres://app@127.0.0.1:1/interviews?password=s3cret&connect_timeout=2",
    ] {
        let mut config = DatabaseConfig::new(raw.parse().expect("a valid URL"));
        config.acquire_timeout = std::time::Duration::from_secs(2);
        let report = interview_persistence::check_health_at(
            &config,
            interview_persistence::HealthOptions::default(),
        )
        .await;
        assert!(!report.is_healthy());
        let json = serde_json::to_string(&report).expect("json");
        assert!(!json.contains("s3cret"), "{json}");
        assert!(
            json.contains("127.0.0.1"),
            "the report names the server: {json}"
        );
    }
}

#[test]
fn the_tracing_spans_of_a_connection_never_show_a_credential() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            for raw in SECRET_URLS.iter().take(3) {
                let raw = raw.replace("db.internal", "127.0.0.1:1");
                let raw = raw.replace(":1:5432", ":1");
                let mut config = DatabaseConfig::new(raw.parse().expect("a valid URL"));
                config.acquire_timeout = std::time::Duration::from_secs(2);
                let _ = interview_persistence::init_database(&config).await;
            }
        });
    });
    let logged = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logged.contains("127.0.0.1"),
        "the spans were not captured: {logged}"
    );
    assert!(!logged.contains("s3cret"), "{logged}");
}

#[tokio::test]
async fn an_unparseable_url_is_an_error_naming_it() {
    for url in [
        "mysql://localhost/db",
        "interview.db",
        "sqlite://data/x.db?mode=sideways",
        "postgres://",
    ] {
        match DatabaseUrl::parse(url) {
            Err(Error::InvalidUrl { url: named, reason }) => {
                assert!(!reason.is_empty());
                assert_eq!(named, url);
                assert!(
                    Error::InvalidUrl { url: named, reason }
                        .to_string()
                        .contains(url)
                );
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[test]
fn a_busy_timeout_sqlite_cannot_take_is_refused_by_name() {
    match from(&[("DATABASE_BUSY_TIMEOUT_MS", "2147483648")]) {
        Err(err @ Error::InvalidConfig { .. }) => {
            assert!(
                err.to_string().contains("DATABASE_BUSY_TIMEOUT_MS"),
                "{err}"
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    let config = from(&[("DATABASE_BUSY_TIMEOUT_MS", "2147483647")]).expect("the largest");
    assert_eq!(config.busy_timeout.as_millis(), 2_147_483_647);
}

#[tokio::test]
async fn a_busy_timeout_set_in_code_beyond_sqlites_limit_fails_to_connect_without_a_panic() {
    let (_dir, mut config) = crate::helpers::sqlite_config();
    config.busy_timeout = std::time::Duration::from_millis(1 << 31);
    let refused = interview_persistence::Database::connect(&config).await;
    assert!(
        matches!(refused, Err(Error::InvalidConfig { .. })),
        "{:?}",
        refused.map(|_| ())
    );
}

#[tokio::test]
async fn dot_dot_in_a_path_creates_no_directory_it_steps_back_out_of() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kept/never/../interview.db");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let db = interview_persistence::init_database(&config)
        .await
        .expect("init");
    assert!(dir.path().join("kept/interview.db").is_file());
    assert!(
        !dir.path().join("kept/never").exists(),
        "a directory `..` steps out of was created"
    );
    assert_eq!(
        db.display_location(),
        dir.path().join("kept/interview.db").display().to_string()
    );
    db.close().await.expect("close");
}
