//! Taking over the files the Python system wrote, one per era of its
//! history and one carried through all of them
//! (`tests/fixtures/python_eras.py`: each era's start-up, then rows written
//! as that era's code wrote them, in its four timestamp shapes, with turn-0
//! opening questions and the host's local time on nodes and edges), and
//! the newest Python system working on the file afterwards.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use interview_persistence::chrono_tz::Tz;
use interview_persistence::copy::CopyStatus;
use interview_persistence::repositories::Repositories;
use interview_persistence::schema::{AdoptionOptions, AdoptionReport};
use interview_persistence::{
    CopyOptions, DatabaseConfig, Error, InitOptions, check_health, copy, init_database_with,
};
use serde_json::Value;

use crate::helpers;

/// The zone the fixtures' Python host ran in: an hour ahead of UTC in
/// winter, two in summer.
const HOST_ZONE: &str = "Europe/Berlin";

/// Runs a Python fixture script with the host's zone under a deadline and
/// returns what it printed.
fn python(script: &str, args: &[&str]) -> Value {
    super::python_fixture(script, args, &[("PYTHON_HOST_ZONE", HOST_ZONE)])
}

/// A file of `era` in a directory of its own, and what the fixture wrote.
fn python_file(era: &str) -> (tempfile::TempDir, PathBuf, Vec<Value>) {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("interview.db");
    let written = python("python_eras.py", &[era, path.to_str().expect("UTF-8")]);
    let written = written.as_array().expect("a list").clone();
    (dir, path, written)
}

fn options() -> InitOptions {
    InitOptions {
        adoption: AdoptionOptions {
            python_local_time_zone: HOST_ZONE.parse::<Tz>().expect("a zone"),
            ..AdoptionOptions::default()
        },
    }
}

fn at(value: &Value) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(value.as_str().expect("a time"), "%Y-%m-%d %H:%M:%S%.f")
        .expect("the fixture's instant")
}

/// Every row of `E`'s table, decoded into its entity: the table's name
/// and how many.
async fn decoded<E: sea_orm::EntityTrait>(conn: &sea_orm::DatabaseConnection) -> (String, u64) {
    let table = sea_orm::EntityName::table_name(&E::default()).to_owned();
    let rows = E::find()
        .all(conn)
        .await
        .unwrap_or_else(|err| panic!("{table} decodes: {err}"));
    (table, rows.len() as u64)
}

/// Every row of every table decodes into its entity, as many as the
/// adoption counted (a table it did not count holds none).
async fn every_row_decodes(db: &interview_persistence::Database, report: &AdoptionReport) {
    use interview_persistence::entity as e;
    let conn = db.connection();
    for (table, rows) in [
        decoded::<e::session::Entity>(conn).await,
        decoded::<e::utterance::Entity>(conn).await,
        decoded::<e::kg_node::Entity>(conn).await,
        decoded::<e::kg_edge::Entity>(conn).await,
        decoded::<e::scoring_history::Entity>(conn).await,
        decoded::<e::concept_element::Entity>(conn).await,
        decoded::<e::canonical_slot::Entity>(conn).await,
        decoded::<e::slot_mapping::Entity>(conn).await,
        decoded::<e::canonical_edge::Entity>(conn).await,
        decoded::<e::qualitative_signal::Entity>(conn).await,
    ] {
        assert_eq!(
            rows,
            report.rows.get(&table).copied().unwrap_or(0),
            "{table}"
        );
    }
}

/// Takes `era`'s file over and checks everything a service reads of it,
/// then lets the newest Python system run a turn on it, and reads that.
async fn take_over(era: &str) -> (tempfile::TempDir, PathBuf, AdoptionReport) {
    let (dir, path, written) = python_file(era);
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let (db, init) = init_database_with(&config, options())
        .await
        .expect("adopted");
    let report = init.adoption.expect("an adoption report");
    assert_eq!(report.adopted_from, "python_module");
    assert_eq!(report.python_local_time_zone, HOST_ZONE);
    let health = check_health(&db).await;
    assert!(health.is_healthy(), "{health:?}");
    // Every value adoption saw is in this module's form now.
    assert_eq!(health.python_written_values, Some(Default::default()));
    every_row_decodes(&db, &report).await;

    let repos = Repositories::new(&db);
    for session in &written {
        let id = |key: &str| session[key].as_str().expect("an id").to_owned();
        let session_id = id("session_id").into();
        let stored = repos.sessions.get(&session_id).await.expect("the session");
        assert_eq!(stored.turn_count, 1);
        let transcript = repos
            .utterances
            .transcript(&session_id)
            .await
            .expect("the transcript");
        // The opening question at turn 0, its offset and the answer's
        // zone-less UTC both read as the instants they were.
        assert_eq!(
            transcript
                .iter()
                .map(|u| (u.turn_number, u.created_at))
                .collect::<Vec<_>>(),
            [
                (0, at(&session["opening_at"])),
                (1, at(&session["answer_at"]))
            ],
            "{era}"
        );
        // The host's local time on a node, read in its zone.
        let node = repos
            .graph
            .node(&id("node_id").into())
            .await
            .expect("the node");
        assert_eq!(node.recorded_at, at(&session["recorded_at"]), "{session}");
        let state = repos.graph.graph_state(&session_id).await.expect("state");
        assert_eq!((state.node_count, state.edge_count), (2, 1));
        let scores = repos.scoring.history(&session_id).await.expect("scores");
        assert_eq!(scores.len(), 1);
        let export = repos.export.export(&session_id).await.expect("export");
        assert_eq!(export.nodes.len(), 2);
    }
    db.close().await.expect("close");

    // The newest Python system still starts on the file, writes a turn and
    // reads it back …
    let python_turn = python("python_way_back.py", &[path.to_str().expect("UTF-8")]);
    assert_eq!(python_turn["utterance_turns"], serde_json::json!([0, 1]));
    // … and this module reads what it wrote, in its own shapes, with no
    // second adoption.
    let (db, init) = init_database_with(&config, options()).await.expect("again");
    assert!(init.adoption.is_none(), "adopted once");
    let health = check_health(&db).await;
    assert!(health.is_healthy(), "{health:?}");
    // Health names the Python system's own shapes as its, not as damage:
    // its two utterances, its two nodes and its edge of that turn.
    let python_written = health.python_written_values.clone().expect("counted");
    assert_eq!(
        python_written["utterances.created_at"], 2,
        "{python_written:?}"
    );
    assert_eq!(
        python_written["kg_nodes.recorded_at"], 2,
        "{python_written:?}"
    );
    assert_eq!(
        python_written["kg_edges.recorded_at"], 1,
        "{python_written:?}"
    );
    assert!(
        health
            .warnings
            .iter()
            .any(|w| w.contains("3 node or edge timestamp(s)")),
        "{health:?}"
    );
    let repos = Repositories::new(&db);
    let session_id = python_turn["session_id"]
        .as_str()
        .expect("id")
        .to_owned()
        .into();
    let transcript = repos
        .utterances
        .transcript(&session_id)
        .await
        .expect("the Python system's transcript");
    assert_eq!(transcript.len(), 2);
    let creamy = repos
        .graph
        .node(
            &python_turn["creamy"]
                .as_str()
                .expect("id")
                .to_owned()
                .into(),
        )
        .await
        .expect("the Python system's node");
    assert_eq!(
        creamy.source_quotes.to_vec(),
        ["It is creamy", "and so smooth"]
    );
    db.close().await.expect("close");
    (dir, path, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_the_first_version_is_taken_over_with_its_concept_elements() {
    let (_dir, _path, report) = take_over("2026-01-21").await;
    assert_eq!(report.recognised_as, "made by 2026-01-21");
    assert_eq!(report.rows["concept_elements"], 1);
    // The two utterances, the nodes' and the edge's local times.
    assert_eq!(report.rewritten_values["utterances.created_at"], 2);
    assert_eq!(report.rewritten_values["kg_nodes.recorded_at"], 2);
    assert_eq!(report.rewritten_values["kg_edges.recorded_at"], 1);
    assert!(
        report
            .created_tables
            .contains(&"canonical_slots".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_january_27_keeps_its_scoring_candidates_untouched() {
    let (_dir, path, report) = take_over("2026-01-27").await;
    assert_eq!(report.recognised_as, "made by 2026-01-27");
    assert_eq!(report.kept_tables, ["scoring_candidates"]);
    assert_eq!(report.rows["qualitative_signals"], 1);
    let db = rusqlite::Connection::open(&path).expect("open");
    let kept: (i64, String) = db
        .query_row(
            "SELECT count(*), max(tier2_results) FROM scoring_candidates",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the kept table");
    assert_eq!(
        kept,
        (1, r#"[{"scorer": "depth", "score": 0.7}]"#.to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_february_12_gets_an_empty_concept_elements_table() {
    let (_dir, _path, report) = take_over("2026-02-12").await;
    assert_eq!(report.recognised_as, "made by 2026-02-12");
    assert!(
        report
            .created_tables
            .contains(&"concept_elements".to_owned())
    );
    assert!(!report.rows.contains_key("concept_elements"));
    assert_eq!(report.rows["canonical_slots"], 2);
    assert_eq!(report.rows["surface_to_slot_mapping"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_the_newest_version_is_taken_over() {
    let (_dir, _path, report) = take_over("2026-03-12").await;
    assert_eq!(report.recognised_as, "made by 2026-03-12");
    assert_eq!(report.rows["canonical_edges"], 1);
    assert!(report.kept_tables.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_carried_from_january_through_every_version_is_taken_over() {
    let (_dir, _path, report) = take_over("long-lived").await;
    assert_eq!(
        report.recognised_as,
        "made by 2026-01-21, then started by 2026-01-23, 2026-01-27, 2026-02-12, 2026-03-12"
    );
    assert_eq!(report.rows["sessions"], 5);
    assert_eq!(report.rewritten_values["kg_nodes.recorded_at"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_long_lived_file_copies_verified_to_sqlite_and_to_postgresql() {
    let (dir, path, _written) = python_file("long-lived");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let (db, _) = init_database_with(&config, options())
        .await
        .expect("adopted");
    db.close().await.expect("close");

    let to_sqlite = DatabaseConfig::sqlite_file(dir.path().join("copy.db")).expect("config");
    let report = copy(&config, &to_sqlite, CopyOptions::default())
        .await
        .expect("copy to SQLite");
    assert_eq!(report.status, CopyStatus::Verified, "{report:?}");
    assert!(report.tables.iter().all(|t| t.matches), "{report:?}");
    assert!(
        report
            .tables
            .iter()
            .any(|t| t.table == "kg_nodes" && t.source_rows == 10)
    );

    let Some((_postgres, to_postgres)) = helpers::postgres_config().await else {
        return;
    };
    let report = copy(&config, &to_postgres, CopyOptions::default())
        .await
        .expect("copy to PostgreSQL");
    assert_eq!(report.status, CopyStatus::Verified, "{report:?}");
    assert!(report.tables.iter().all(|t| t.matches), "{report:?}");
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

/// Plants `sql` in `era`'s file, then asks `init` to adopt it: the refusal,
/// with the file byte for byte as it was and no backup beside it.
async fn refused_after(era: &str, sql: &str) -> Error {
    let (result, unchanged, backups) = init_after(era, sql).await;
    assert!(unchanged, "the refused file changed");
    assert!(backups.is_empty(), "backups left: {backups:?}");
    result.expect_err("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_time_the_host_zone_skipped_refuses_the_file_and_says_why() {
    // 02:30 on the night Berlin's clocks went from 02:00 to 03:00.
    let err = refused_after(
        "2026-03-12",
        "UPDATE kg_nodes SET recorded_at = '2026-03-29T02:30:00' WHERE label = 'Creamy'",
    )
    .await;
    let Error::AdoptionRefused { findings } = err else {
        panic!("{err:?}");
    };
    assert_eq!(findings.listed.len(), 1, "{findings}");
    assert!(
        findings.listed[0].rule.contains("Europe/Berlin skipped"),
        "{findings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_in_no_shape_the_python_code_wrote_refuses_the_file() {
    let err = refused_after(
        "2026-02-12",
        "UPDATE utterances SET created_at = '2026-02-30T10:00:00' WHERE turn_number = 1",
    )
    .await;
    let Error::AdoptionRefused { findings } = err else {
        panic!("{err:?}");
    };
    assert!(
        findings
            .to_string()
            .contains("created_at is not a timestamp"),
        "{findings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedding_of_another_size_refuses_the_file() {
    // 300 values, as a slot embedding of another model would be.
    let err = refused_after(
        "2026-02-12",
        "UPDATE canonical_slots SET embedding = zeroblob(1200) WHERE slot_name = 'texture'",
    )
    .await;
    let Error::AdoptionRefused { findings } = err else {
        panic!("{err:?}");
    };
    assert_eq!(findings.listed[0].table, "canonical_slots");
    assert!(
        findings.listed[0].rule.contains("384 float32 values"),
        "{findings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_no_python_version_had_is_named_in_the_refusal() {
    let err = refused_after("2026-03-12", "ALTER TABLE kg_nodes ADD COLUMN mood TEXT").await;
    let Error::UnrecognizedSchema { differences, .. } = err else {
        panic!("{err:?}");
    };
    assert_eq!(differences, ["kg_nodes: column `mood` is not expected"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_quotes_of_the_altered_column_are_taken_over_as_no_quotes() {
    let (_dir, path, written) = python_file("long-lived");
    let db = rusqlite::Connection::open(&path).expect("open");
    // The ALTER made the column nullable in a file this old.
    let nullable: i64 = db
        .query_row(
            "SELECT \"notnull\" FROM pragma_table_info('kg_nodes') WHERE name = 'source_quotes'",
            [],
            |r| r.get(0),
        )
        .expect("the column");
    assert_eq!(nullable, 0);
    db.execute(
        "UPDATE kg_nodes SET source_quotes = NULL WHERE label = 'Energy'",
        [],
    )
    .expect("plant");
    db.close().expect("close");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let (db, init) = init_database_with(&config, options())
        .await
        .expect("adopted");
    let report = init.adoption.expect("adopted");
    assert_eq!(report.rewritten_values["kg_nodes.source_quotes"], 5);
    let repos = Repositories::new(&db);
    let session_id = written[0]["session_id"]
        .as_str()
        .expect("id")
        .to_owned()
        .into();
    let nodes = repos.graph.current_nodes(&session_id).await.expect("nodes");
    let energy = nodes.iter().find(|n| n.label == "Energy").expect("Energy");
    assert!(energy.source_quotes.to_vec().is_empty());
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_time_the_clocks_passed_twice_is_read_as_the_earlier_instant() {
    let (_dir, path, written) = python_file("2026-03-12");
    let db = rusqlite::Connection::open(&path).expect("open");
    // 02:30 on the night Berlin's clocks went back from 03:00 to 02:00:
    // 00:30 UTC, or 01:30.
    db.execute(
        "UPDATE kg_nodes SET recorded_at = '2026-10-25T02:30:00' WHERE label = 'Creamy'",
        [],
    )
    .expect("plant");
    db.close().expect("close");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let (db, init) = init_database_with(&config, options())
        .await
        .expect("adopted");
    let report = init.adoption.expect("adopted");
    assert_eq!(report.ambiguous_local_times, 1);
    let node = Repositories::new(&db)
        .graph
        .node(
            &written[0]["node_id"]
                .as_str()
                .expect("id")
                .to_owned()
                .into(),
        )
        .await
        .expect("the node");
    assert_eq!(node.recorded_at, at(&Value::from("2026-10-25 00:30:00")));
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_that_is_not_json_refuses_the_file() {
    // The Python table declares TEXT; this module's column holds JSON.
    let err = refused_after(
        "2026-02-12",
        "UPDATE qualitative_signals SET reasoning_signal = 'it reasons'",
    )
    .await;
    let Error::AdoptionRefused { findings } = err else {
        panic!("{err:?}");
    };
    assert_eq!(
        (
            findings.listed[0].table.as_str(),
            findings.listed[0].rule.as_str()
        ),
        ("qualitative_signals", "reasoning_signal is not valid JSON")
    );
}

/// Plants `sql` in `era`'s file and runs `init` on it: the outcome,
/// whether the file is byte for byte as it was, and the backups beside it.
async fn init_after(era: &str, sql: &str) -> (Result<(), Error>, bool, Vec<String>) {
    let (dir, path, _written) = python_file(era);
    let db = rusqlite::Connection::open(&path).expect("open");
    db.execute_batch(sql).expect("plant");
    db.close().expect("close");
    let before = file_bytes(&path);
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let result = match init_database_with(&config, options()).await {
        Ok((db, _)) => {
            db.close().await.expect("close");
            Ok(())
        }
        Err(err) => Err(err),
    };
    let unchanged = file_bytes(&path) == before;
    let backups = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("before-adoption"))
        .collect();
    (result, unchanged, backups)
}

/// [`refused_after`], with findings.
async fn refused_with_findings(
    era: &str,
    sql: &str,
) -> interview_persistence::schema::AdoptionFindings {
    match refused_after(era, sql).await {
        Error::AdoptionRefused { findings } => findings,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_is_a_finding_and_a_rollback_journal_file_stays_as_it_was() {
    let findings = refused_with_findings(
        "2026-03-12",
        "PRAGMA journal_mode = DELETE; \
         UPDATE utterances SET text = CAST(X'66FF6F' AS TEXT) WHERE turn_number = 1",
    )
    .await;
    assert_eq!(findings.listed.len(), 1, "{findings}");
    assert_eq!(findings.listed[0].rule, "text is text that is not UTF-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_text_is_a_finding_named_by_its_rowid() {
    let findings =
        refused_with_findings("2026-03-12", "UPDATE scoring_history SET id = X'0102'").await;
    assert!(
        findings
            .listed
            .iter()
            .any(|f| f.rule == "id holds a value of the wrong type"
                && f.row_id.starts_with("rowid ")),
        "{findings}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leap_second_no_python_code_wrote_is_refused() {
    let findings = refused_with_findings(
        "2026-03-12",
        "UPDATE utterances SET created_at = '2026-02-01T10:00:60' WHERE turn_number = 1; \
         UPDATE kg_edges SET recorded_at = '2026-02-01 23:59:60'",
    )
    .await;
    assert_eq!(findings.by_rule.len(), 2, "{findings}");
}

static WRITES_BETWEEN_CHECKS_AND_LOCK: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Another process's turn, committed to the file: what the Python system
/// would write during a switch-over (a wrong-sized embedding among it, to
/// show the checks see it).
fn the_python_system_writes(path: &Path) {
    let n = WRITES_BETWEEN_CHECKS_AND_LOCK.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let db = rusqlite::Connection::open(path).expect("open");
    db.execute(
        "UPDATE kg_nodes SET embedding = zeroblob(1200) WHERE label = 'Energy'",
        [],
    )
    .expect("write");
    db.execute(
        "UPDATE sessions SET concept_name = concept_name || ?",
        [format!(" {n}")],
    )
    .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_the_checks_and_the_lock_has_the_file_checked_again() {
    let (_dir, path, _written) = python_file("2026-03-12");
    let config = DatabaseConfig::sqlite_file(&path).expect("config");
    let mut options = options();
    options.adoption.between_checks_and_lock = Some(the_python_system_writes);
    let err = init_database_with(&config, options)
        .await
        .expect_err("refused");
    // Checked again after the first write: the wrong-sized embedding it
    // planted is found, and nothing was adopted.
    let Error::AdoptionRefused { findings } = err else {
        panic!("{err:?}");
    };
    assert!(findings.to_string().contains("384 float32"), "{findings}");
    assert_eq!(
        WRITES_BETWEEN_CHECKS_AND_LOCK.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let db = rusqlite::Connection::open(&path).expect("open");
    let migrations: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'seaql_migrations'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(migrations, 0);
}
