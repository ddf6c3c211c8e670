//! The migration command line, what `cargo run -p migration -- …` and
//! `sea-orm-cli migrate …` run:
//!
//! ```text
//! migration [-u URL] status | up [-n N] | down [-n N] | reset | refresh | fresh
//!           [--confirm-delete-sessions N]
//! ```
//!
//! It finds the database exactly as the library does (`-u`, else
//! `DATABASE_URL`, else the SQLite file `DATABASE_PATH`, else
//! `data/interview.db`), opens SQLite with the library's pragmas but
//! foreign keys off (a table rebuild checks them itself before it commits),
//! and refuses what would destroy a study by accident:
//! - a command that would revert the first migration (the one that creates
//!   the tables) on a database that holds sessions runs only with
//!   `--confirm-delete-sessions N` (or `INTERVIEW_CONFIRM_DELETE_SESSIONS=N`,
//!   which `sea-orm-cli` passes through), N being the number of sessions
//!   that will go;
//! - `fresh` reverts this module's migrations and applies them again, like
//!   `refresh`: it never drops tables that are not this module's (SeaORM's
//!   own `fresh` drops every table of the database);
//! - a database the Python module made (its tables, no migration recorded)
//!   is left alone: `interview-db init` checks and adopts it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait, location, sqlite_pragmas};
use sea_orm_migration::sea_orm::sqlx::sqlite::SqliteSynchronous;
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};

/// Apply, revert and inspect the interview store's migrations.
#[derive(Debug, Parser)]
#[command(name = "migration", version, about)]
struct Cli {
    /// Database URL; else DATABASE_URL, else the SQLite file DATABASE_PATH,
    /// else data/interview.db.
    #[arg(short = 'u', long, global = true, value_name = "URL")]
    database_url: Option<String>,

    /// PostgreSQL schema to migrate (the search path).
    #[arg(
        short = 's',
        long,
        global = true,
        env = "DATABASE_SCHEMA",
        value_name = "SCHEMA"
    )]
    database_schema: Option<String>,

    /// Confirms that the command may delete every interview: the number of
    /// sessions the database holds, which the refusal names.
    #[arg(
        long,
        global = true,
        env = "INTERVIEW_CONFIRM_DELETE_SESSIONS",
        value_name = "N"
    )]
    confirm_delete_sessions: Option<u64>,

    /// Show the SQL statements run.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum Command {
    /// Show which migrations are applied and pending.
    Status,
    /// Apply pending migrations (all, or the next N).
    Up {
        /// How many.
        #[arg(short, long)]
        num: Option<u32>,
    },
    /// Revert the last N applied migrations (default 1).
    Down {
        /// How many.
        #[arg(short, long, default_value_t = 1)]
        num: u32,
    },
    /// Revert every applied migration: deletes every interview.
    Reset,
    /// Revert every applied migration, then apply them all again: deletes
    /// every interview.
    Refresh,
    /// The same as `refresh` (only this module's tables are dropped).
    Fresh,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.verbose {
        // The migrator reports through `tracing`; without a subscriber it
        // says nothing.
        eprintln!("(verbose: set RUST_LOG to see the SQL through your own subscriber)");
    }
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("migration: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<(), String> {
    let url = match &cli.database_url {
        Some(url) => url.clone(),
        None => location::database_url_from(|name| std::env::var(name).ok()),
    };
    let command = cli.command.unwrap_or(Command::Up { num: None });
    // Looked at first through a connection that changes nothing (no WAL
    // switch, no migration table created): a refused database is left
    // byte for byte as it was.
    let (applied, tables_exist) = {
        let probe = connect_to_look(&url, cli.database_schema.as_deref()).await?;
        let applied = if table_exists(&probe, "seaql_migrations").await? {
            usize::try_from(count(&probe, "SELECT COUNT(*) FROM seaql_migrations").await?)
                .unwrap_or(0)
        } else {
            0
        };
        let tables_exist = table_exists(&probe, "sessions").await?;
        let _ = probe.close().await;
        (applied, tables_exist)
    };
    if applied == 0 && tables_exist {
        return Err(
            "this database has the interview tables but records no migration: it was made by \
             the Python module (or its migration table was deleted). Nothing was changed. \
             `interview-db init` checks such a database and adopts it."
                .into(),
        );
    }
    let reverts_the_tables = match command {
        Command::Status | Command::Up { .. } => false,
        Command::Down { num } => num as usize >= applied,
        Command::Reset | Command::Refresh | Command::Fresh => true,
    };
    let db = connect(&url, cli.database_schema.as_deref()).await?;
    if reverts_the_tables && applied > 0 {
        confirm_data_loss(&db, cli.confirm_delete_sessions).await?;
        // Confirmed: the rows go first, so that no migration's `down`
        // refuses because of what they hold (an edge of a type the older
        // vocabulary lacks, say).
        delete_interviews(&db).await?;
    }
    let result = match command {
        Command::Status => Migrator::status(&db).await,
        Command::Up { num } => Migrator::up(&db, num).await,
        Command::Down { num } => Migrator::down(&db, Some(num)).await,
        Command::Reset => Migrator::reset(&db).await,
        Command::Refresh | Command::Fresh => Migrator::refresh(&db).await,
    };
    result.map_err(|e| format!("{command:?} failed, and its transaction was rolled back: {e}"))?;
    if !matches!(command, Command::Status) {
        print_status(&db).await?;
    }
    Ok(())
}

/// Opens the database as the library does, foreign keys off. A missing
/// SQLite file's directory is created (owner-only), as the library would.
async fn connect(url: &str, schema: Option<&str>) -> Result<DatabaseConnection, String> {
    if let Some(path) = sqlite_file_of(url) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            location::create_private_directories(parent)
                .map_err(|e| format!("cannot create the directory `{}`: {e}", parent.display()))?;
        }
        // A missing file is created owner-only before SQLite opens it, as
        // the library does; an existing file keeps its mode. If it cannot
        // be created, SQLite's own attempt says why. Only where SQLite
        // would create it (`mode=rwc`).
        if url.contains("mode=rwc") {
            let _ = location::create_private_file(&path);
        }
    }
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    if let Some(schema) = schema {
        options.set_schema_search_path(schema);
    }
    options.map_sqlx_sqlite_opts(|o| {
        // Foreign keys off, so that a table rebuild cannot cascade; each
        // rebuild runs `foreign_key_check` before it commits.
        sqlite_pragmas::configure(
            o,
            SqliteSynchronous::Normal,
            sqlite_pragmas::DEFAULT_BUSY_TIMEOUT,
        )
        .foreign_keys(false)
        // As on the library's writer: what a migration frees (a rebuilt
        // table's old pages) is overwritten, not left readable.
        .pragma("secure_delete", "ON")
    });
    Database::connect(options)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// A connection that only reads: on SQLite the file opened read-only
/// without the module's pragmas (a missing file is not created).
async fn connect_to_look(url: &str, schema: Option<&str>) -> Result<DatabaseConnection, String> {
    if let Some(path) = sqlite_file_of(url)
        && !path.exists()
    {
        // Nothing to look at: an empty scratch database says so.
        return Database::connect("sqlite::memory:")
            .await
            .map_err(|e| format!("cannot open a scratch database: {e}"));
    }
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    if let Some(schema) = schema {
        options.set_schema_search_path(schema);
    }
    options.map_sqlx_sqlite_opts(|o| o.read_only(true).create_if_missing(false));
    Database::connect(options)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))
}

/// The file a `sqlite:` URL names (not for `:memory:`).
fn sqlite_file_of(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options =
        sea_orm_migration::sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (path != std::path::Path::new(":memory:")).then(|| path.to_path_buf())
}

async fn table_exists(db: &DatabaseConnection, table: &str) -> Result<bool, String> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        _ => {
            format!("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '{table}'")
        }
    };
    Ok(count(db, &sql).await? > 0)
}

/// Refuses unless `confirmed` names the number of sessions that would go.
async fn confirm_data_loss(db: &DatabaseConnection, confirmed: Option<u64>) -> Result<(), String> {
    let sessions = count(db, "SELECT COUNT(*) FROM sessions").await?;
    if sessions == 0 {
        return Ok(());
    }
    let utterances = count(db, "SELECT COUNT(*) FROM utterances").await?;
    if confirmed == Some(sessions) {
        eprintln!(
            "migration: deleting {sessions} session(s) and {utterances} utterance(s), as confirmed"
        );
        return Ok(());
    }
    let wrong = confirmed
        .map(|n| format!(" (--confirm-delete-sessions {n} does not match)"))
        .unwrap_or_default();
    Err(format!(
        "refused: this would drop the interview tables and delete {sessions} session(s) and \
         {utterances} utterance(s){wrong}. Nothing was changed. If that is what you want, run \
         it again with --confirm-delete-sessions {sessions} (or \
         INTERVIEW_CONFIRM_DELETE_SESSIONS={sessions} through sea-orm-cli)."
    ))
}

/// Deletes every interview row, children first (foreign keys are off on
/// SQLite here), in one transaction.
async fn delete_interviews(db: &DatabaseConnection) -> Result<(), String> {
    let mut sql = String::from("BEGIN;");
    // The later Python tables reference the six: they go first, where a
    // migration has created them.
    for table in migration::LATER_PYTHON_TABLES
        .iter()
        .rev()
        .chain(migration::INTERVIEW_TABLES.iter().rev())
    {
        if table_exists(db, table).await? {
            sql.push_str(&format!(" DELETE FROM {table};"));
        }
    }
    sql.push_str(" COMMIT;");
    db.execute_unprepared(&sql)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot delete the interviews: {e}"))
}

async fn count(db: &DatabaseConnection, sql: &str) -> Result<u64, String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e: DbErr| format!("`{sql}`: {e}"))?
        .ok_or_else(|| format!("`{sql}` returned no row"))?;
    let n: i64 = row.try_get_by_index(0).map_err(|e| e.to_string())?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn print_status(db: &DatabaseConnection) -> Result<(), String> {
    let applied = Migrator::get_applied_migrations(db)
        .await
        .map_err(|e| e.to_string())?;
    let pending = Migrator::get_pending_migrations(db)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "applied: [{}]; pending: [{}]",
        applied
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
        pending
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
