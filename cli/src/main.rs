//! `interview-db`: create, migrate and check the interview store, erase a
//! participant's session, back it up, and copy a study between databases.
//!
//! Data (the health report, the erasure record, the backup and copy
//! reports, as JSON) goes to stdout; logs and progress go to stderr (filter
//! logs with `RUST_LOG`).

mod progress;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use interview_persistence::config::SqliteLocation;
use interview_persistence::repositories::Repositories;
use interview_persistence::schema::{AdoptionOptions, AdoptionReport, require_current};
use interview_persistence::{
    CopyOptions, Database, DatabaseConfig, Error, HealthOptions, HealthReport, InitOptions,
    IntegrityCheck, check_health_at, check_health_with, init_database_with,
};

/// Create, migrate and check the interview store; erase a session.
///
/// The database is `--database-url`, else `DATABASE_URL`, else the SQLite
/// file `DATABASE_PATH`, else `data/interview.db`.
#[derive(Debug, Parser)]
#[command(name = "interview-db", version, about)]
struct Cli {
    /// Database URL (`sqlite://path/to/file.db`, `sqlite::memory:`,
    /// `postgres://user:password@host/db`); overrides the environment.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database or bring its schema up to date, then print the
    /// health report. Safe to run at every start. A SQLite file the Python
    /// module made is checked, backed up beside itself and adopted; the
    /// report then has an `adoption` key.
    Init {
        /// Repair duplicate current nodes of a Python-made file (each group
        /// chained, the newest current) instead of refusing it.
        #[arg(long)]
        repair_duplicate_nodes: bool,
        /// The zone the Python host ran in (`Europe/Berlin`): a Python-made
        /// file's nodes and edges carry that zone's local time without an
        /// offset, rewritten to UTC when the file is adopted. The adoption
        /// report prints the zone it used.
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        python_local_time_zone: interview_persistence::chrono_tz::Tz,
    },
    /// Print the health report; exit 0 when healthy, 1 otherwise. Never
    /// changes the database. By default SQLite files up to 32 MiB get a
    /// `quick_check`, larger ones none (it reads the whole file); the
    /// report's `integrity_check` says which ran. A quick check cannot see
    /// an index that disagrees with its table: only `--full` finds it.
    Health {
        /// Run SQLite's full `integrity_check` (every page, and every index
        /// against its table).
        #[arg(long, conflicts_with = "quick")]
        full: bool,
        /// Run SQLite's `quick_check` whatever the file's size.
        #[arg(long)]
        quick: bool,
    },
    /// Erase one participant's session: delete it and everything of it in
    /// every table, scrub the deleted text from the files (SQLite: zeroed
    /// free space and a truncated WAL; PostgreSQL: VACUUM), keep a record
    /// of the erasure without its content, and print that record as JSON.
    /// Copies made before (backups) still hold the session: see README.
    /// Exits 1, printing nothing, when there is no such session. A session
    /// erased before gets its record printed again (its scrub completed
    /// first if a crash cut it short); exits 1 while its scrub stays owed.
    ///
    /// With `--resume` (and no id): completes every scrub still owed and
    /// prints what it did as JSON; exits 1 when one stays owed (a reader of
    /// another process holds the WAL: run it again once it is done).
    Erase {
        /// The id of the session to erase.
        #[arg(required_unless_present = "resume", conflicts_with = "resume")]
        session_id: Option<String>,
        /// Complete the scrubs that earlier erasures still owe.
        #[arg(long)]
        resume: bool,
    },
    /// Print one session as JSON: every row of it in every table (the
    /// transcript, the graph with its quotes, stances and embeddings, the
    /// scores, the qualitative signals, the concept elements, the
    /// canonical slots and edges), read from one snapshot. Exits 1,
    /// printing nothing, when there is no such session.
    Export {
        /// The id of the session to export.
        session_id: String,
    },
    /// Write a consistent copy of the live SQLite database to a new file
    /// while interviews go on, verify it (integrity, schema version, row
    /// counts), and print the report as JSON. Never overwrites a file. On
    /// PostgreSQL, says what to use instead (`pg_dump`, or `copy`).
    Backup {
        /// The backup file to create (must not exist).
        destination: PathBuf,
    },
    /// Remove the temporary copies (`.interview-<pid>-<n>.partial` and
    /// their -journal/-wal/-shm) that killed backups and copies left in a
    /// directory, and print what was removed and what was kept (those of a
    /// live process, being written now) as JSON. Each is a copy of the
    /// study, erased sessions included.
    Clean {
        /// The directory (a backup's or a copy target's).
        directory: PathBuf,
    },
    /// Copy every row of a study into an empty database — SQLite →
    /// PostgreSQL, PostgreSQL → SQLite, SQLite → SQLite — in one
    /// transaction, verified by row counts and checksums printed as JSON.
    /// Exits 1 (the target as it was) when refused or when the target
    /// does not match.
    Copy {
        /// The database to copy from (a URL, or a SQLite file path);
        /// default: the configured database.
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The empty database to copy into (a URL, or the path of a SQLite
        /// file, created if missing).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Rows read per query.
        #[arg(long, default_value_t = CopyOptions::default().page_rows)]
        page_rows: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn".into()),
        )
        .init();

    let cli = Cli::parse();
    let config = match DatabaseConfig::from_env().and_then(|config| match &cli.database_url {
        Some(url) => config.with_url(url),
        None => Ok(config),
    }) {
        Ok(config) => config,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::from(2);
        }
    };

    let (report, adoption) = match cli.command {
        Command::Init {
            repair_duplicate_nodes,
            python_local_time_zone,
        } => {
            let options = InitOptions {
                adoption: AdoptionOptions {
                    repair_duplicate_current_nodes: repair_duplicate_nodes,
                    python_local_time_zone,
                    ..AdoptionOptions::default()
                },
            };
            match init_database_with(&config, options).await {
                Ok((db, init)) => {
                    let report = check_health_with(&db, HealthOptions::default()).await;
                    let _ = db.close().await;
                    (report, init.adoption)
                }
                Err(err) => {
                    tracing::error!(error = %err, "init failed");
                    return ExitCode::FAILURE;
                }
            }
        }
        Command::Health { full, quick } => {
            let options = HealthOptions {
                integrity: match (full, quick) {
                    (true, _) => IntegrityCheck::Full,
                    (false, true) => IntegrityCheck::Quick,
                    (false, false) => IntegrityCheck::Auto,
                },
            };
            (check_health_at(&config, options).await, None)
        }
        Command::Erase {
            session_id: Some(session_id),
            ..
        } => return erase(&config, &session_id).await,
        Command::Erase {
            session_id: None, ..
        } => return resume_erasures(&config).await,
        Command::Export { session_id } => return export(&config, &session_id).await,
        Command::Backup { destination } => return backup(&config, &destination).await,
        Command::Clean { directory } => return clean(&directory),
        Command::Copy {
            from,
            to,
            page_rows,
        } => return copy(config, from.as_deref(), &to, page_rows).await,
    };
    print_report(&report, adoption.as_ref())
}

/// Opens a database that must already exist: a SQLite file that is not
/// there is an error, not a new file. `consequence` ends each error message
/// (what the caller did not do). `None` once the error is logged.
async fn open_existing(config: &DatabaseConfig, consequence: &str) -> Option<Database> {
    if let Some(SqliteLocation::File { path, .. }) = config.url.sqlite_location()
        && !path.is_file()
    {
        tracing::error!(path = %path.display(), "there is no database file here{consequence}");
        return None;
    }
    match Database::connect(config).await {
        Ok(db) => Some(db),
        Err(err) => {
            tracing::error!(error = %err, "cannot open the database{consequence}");
            None
        }
    }
}

/// Erases `session_id` from an existing database whose schema is current
/// (it neither creates a database nor migrates one) and prints the
/// erasure record.
async fn erase(config: &DatabaseConfig, session_id: &str) -> ExitCode {
    let Some(db) = open_existing(config, "; nothing was erased").await else {
        return ExitCode::FAILURE;
    };
    let id = interview_persistence::entity::SessionId::from(session_id);
    let sessions = Repositories::new(&db).sessions;
    let erased = match require_current(db.connection()).await {
        Ok(_) => sessions.delete(&id).await,
        Err(err) => Err(err),
    };
    // No such session: erased before? Opening completed its scrub if it
    // was owed; its record says so.
    let earlier = match &erased {
        Err(Error::NotFound { .. }) => sessions.erasure(&id).await.ok(),
        _ => None,
    };
    let _ = db.close().await;
    let leftovers = leftovers_beside(config);
    match erased {
        Ok(record) => print_record(&record, &leftovers),
        Err(Error::NotFound { .. }) => match earlier {
            Some(record) => {
                tracing::info!(
                    erased_at = %record.erased_at,
                    "session `{session_id}` was erased before: its record follows"
                );
                print_record(&record, &leftovers)
            }
            None => {
                tracing::error!("no session `{session_id}`: nothing was erased");
                ExitCode::FAILURE
            }
        },
        Err(err) => {
            tracing::error!(error = %err, "erasing session `{session_id}` failed");
            ExitCode::FAILURE
        }
    }
}

/// Prints the export of `session_id` from an existing database whose
/// schema is current.
async fn export(config: &DatabaseConfig, session_id: &str) -> ExitCode {
    let Some(db) = open_existing(config, "").await else {
        return ExitCode::FAILURE;
    };
    let id = interview_persistence::entity::SessionId::from(session_id);
    let exported = match require_current(db.connection()).await {
        Ok(_) => Repositories::new(&db).export.export(&id).await,
        Err(err) => Err(err),
    };
    let _ = db.close().await;
    match exported {
        Ok(export) => print_json(&export),
        Err(Error::NotFound { .. }) => {
            tracing::error!("no session `{session_id}`");
            ExitCode::FAILURE
        }
        Err(err) => {
            tracing::error!(error = %err, "exporting session `{session_id}` failed");
            ExitCode::FAILURE
        }
    }
}

/// Prints an erasure record as JSON, with the leftover copies beside the
/// database when there are any; exits 1 when its scrub is still owed.
fn print_record(
    record: &interview_persistence::repositories::ErasureRecord,
    leftovers: &[interview_persistence::Leftover],
) -> ExitCode {
    let json = serde_json::to_string(record).and_then(|json| {
        if leftovers.is_empty() {
            return Ok(json);
        }
        // Spliced as text, so that the record keeps its key order.
        Ok(format!(
            "{},\"leftover_copies\":{}}}",
            json.strip_suffix('}').unwrap_or(&json),
            serde_json::to_string(leftovers)?
        ))
    });
    match json {
        Ok(json) => {
            println!("{json}");
            if record.scrubbed_at.is_some() {
                ExitCode::SUCCESS
            } else {
                tracing::error!(
                    "the session is erased, but old copies of its rows remain in the files: \
                     run `interview-db erase --resume` once other processes let go of the database"
                );
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            tracing::error!("the session was erased, but its record cannot be printed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Completes the scrubs earlier erasures still owe and prints the report;
/// exits 1 when one stays owed.
async fn resume_erasures(config: &DatabaseConfig) -> ExitCode {
    // `connect` completes what is owed; asked again for the report.
    let Some(db) = open_existing(config, "").await else {
        return ExitCode::FAILURE;
    };
    let report = db.finish_erasures().await.map(|now| {
        // What opening completed, with what is still owed now.
        match db.scrubbed_at_open() {
            Some(at_open) if now.owed.is_empty() => at_open.clone(),
            _ => now,
        }
    });
    let _ = db.close().await;
    match report {
        Ok(report) => {
            let code = print_json(&report);
            if report.still_owed().is_empty() {
                code
            } else {
                tracing::error!(
                    still_owed = ?report.still_owed(),
                    "a scrub is still owed: a reader of another process holds the WAL"
                );
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            tracing::error!(error = %err, "the scrubs owed could not be completed");
            ExitCode::FAILURE
        }
    }
}

/// The temporary copies of killed backups and copies beside the SQLite
/// database `config` names, each warned about on stderr: they hold the
/// study as it was, the session just erased included.
fn leftovers_beside(config: &DatabaseConfig) -> Vec<interview_persistence::Leftover> {
    let Some(SqliteLocation::File { path, .. }) = config.url.sqlite_location() else {
        return Vec::new();
    };
    let directory = path.parent().unwrap_or(std::path::Path::new(""));
    let leftovers = interview_persistence::leftover_copies(directory).unwrap_or_default();
    for leftover in &leftovers {
        tracing::warn!(
            path = %leftover.path.display(),
            bytes = leftover.bytes,
            stale = leftover.stale,
            "a temporary copy of the study is beside the database and still holds what was \
             erased; remove it with `interview-db clean {}`",
            if directory.as_os_str().is_empty() { ".".into() } else { directory.display().to_string() }
        );
    }
    leftovers
}

/// Removes the leftover temporary copies in `directory` and prints what
/// was removed and kept.
fn clean(directory: &std::path::Path) -> ExitCode {
    match interview_persistence::clean(directory) {
        Ok(report) => {
            for kept in &report.kept {
                tracing::warn!(
                    path = %kept.path.display(),
                    pid = kept.pid,
                    "kept: process {} is alive (a backup or copy being written now?)",
                    kept.pid
                );
            }
            print_json(&report)
        }
        Err(err) => {
            tracing::error!(error = %err, "the clean-up failed");
            ExitCode::FAILURE
        }
    }
}

/// Backs the configured database up to `destination` and prints the
/// report. A SQLite source is opened read-only: the backup changes nothing
/// in it, not even its journal mode.
async fn backup(config: &DatabaseConfig, destination: &std::path::Path) -> ExitCode {
    if let Some(SqliteLocation::File { path, .. }) = config.url.sqlite_location()
        && !path.is_file()
    {
        tracing::error!(path = %path.display(), "there is no database file here to back up");
        return ExitCode::FAILURE;
    }
    match interview_persistence::backup_at(config, destination).await {
        Ok(report) => print_json(&report),
        Err(err) => {
            tracing::error!(error = %err, "no backup was made");
            ExitCode::FAILURE
        }
    }
}

/// Copies the study from `from` (default: the configured database) into
/// `to` and prints the report.
async fn copy(config: DatabaseConfig, from: Option<&str>, to: &str, page_rows: usize) -> ExitCode {
    let configs = match from {
        Some(from) => config.clone().with_url(&url_or_path(from)),
        None => Ok(config.clone()),
    }
    .and_then(|from| Ok((from, config.with_url(&url_or_path(to))?)));
    let (from, to) = match configs {
        Ok(configs) => configs,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::from(2);
        }
    };
    let bar = Arc::new(progress::CopyProgressBar::new());
    let options = CopyOptions {
        page_rows,
        progress: Some(bar.clone()),
    };
    let copied = interview_persistence::copy(&from, &to, options).await;
    bar.clear();
    match copied {
        Ok(report) => print_json(&report),
        Err(Error::CopyMismatch(report)) => {
            tracing::error!("the target does not match the source; nothing was committed");
            print_json(&report);
            ExitCode::FAILURE
        }
        Err(err) => {
            tracing::error!(error = %err, "the copy failed; the target was left as it was");
            ExitCode::FAILURE
        }
    }
}

/// A URL as given, or the SQLite file at a plain path.
fn url_or_path(value: &str) -> String {
    if value.contains("://") || value.starts_with("sqlite:") {
        value.to_owned()
    } else {
        interview_persistence::migration::location::sqlite_url_for_path(value)
    }
}

/// `value` as one JSON line on stdout.
fn print_json(value: &impl serde::Serialize) -> ExitCode {
    match serde_json::to_string(value) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("cannot serialise the report: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The health report as one JSON line, with what an adoption did under
/// `adoption`.
fn print_report(report: &HealthReport, adoption: Option<&AdoptionReport>) -> ExitCode {
    // Spliced as text, so that the report keeps its key order (the Python
    // module's keys first).
    let json = serde_json::to_string(report).and_then(|report| match adoption {
        None => Ok(report),
        Some(adoption) => Ok(format!(
            "{},\"adoption\":{}}}",
            report.strip_suffix('}').unwrap_or(&report),
            serde_json::to_string(adoption)?
        )),
    });
    match json {
        Ok(json) => println!("{json}"),
        Err(err) => {
            tracing::error!("cannot serialise the health report: {err}");
            return ExitCode::FAILURE;
        }
    }
    if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
