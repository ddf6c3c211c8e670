//! Adopting a SQLite file the Python module made (`src/schema/adopt.rs`):
//! every row kept and readable, every finding refused with the file
//! unchanged, the opt-in repair, schemas that differ refused, a failure
//! before COMMIT leaving the file as it was, adopting twice, and the Python
//! module still working on the file afterwards.
//!
//! The fixtures are built as the Python module built them: its DDL
//! (`src/schema/python/2026-01-21.sql`) run through SQLite by
//! another driver (rusqlite), rows with `datetime('now')` timestamps.

use std::path::{Path, PathBuf};

use entity::kg_edge::EdgeType;
use entity::session::SessionStatus;
use interview_persistence::repositories::Repositories;
use interview_persistence::schema::{AdoptionOptions, known_migrations, schema_status};
use interview_persistence::{Error, InitOptions, check_health, init_database_with};
use rusqlite::Connection;

use super::{PYTHON_DDL, backups_beside, config, plant};

/// A file the Python module made, in WAL mode as its `init_database` left
/// it, with three sessions: one with turns, nodes (one superseded), edges,
/// scores and a covered element; one completed; one empty.
fn python_file(dir: &Path) -> PathBuf {
    let path = dir.join("interview.db");
    let db = Connection::open(&path).expect("open");
    db.pragma_update(None, "journal_mode", "WAL").expect("wal");
    db.execute_batch(PYTHON_DDL).expect("the Python DDL");
    db.execute_batch(
        r#"
        PRAGMA foreign_keys = ON;
        INSERT INTO sessions (id, methodology, concept_id, concept_name, config, created_at, updated_at, turn_count, coverage_score)
            VALUES ('s1', 'means_end_chain', 'oat-milk', 'Oat milk latte', '{"max_turns": 20, "language": "en"}',
                    '2026-05-01 09:00:00', '2026-05-01 09:05:00', 2, 0.25);
        INSERT INTO sessions (id, methodology, concept_id, concept_name, status, completed_at)
            VALUES ('s2', 'jobs_to_be_done', 'commute', 'Commute', 'completed', datetime('now'));
        INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s3', 'means_end_chain', 'tea', 'Tea');
        INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers, created_at)
            VALUES ('u1', 's1', 1, 'user', 'Because it is creamy — "really", l''idée 🥛', '["because", "since"]', '2026-05-01 09:01:00'),
                   ('u2', 's1', 1, 'system', 'Why does that matter?', '[]', '2026-05-01 09:01:01'),
                   ('u3', 's1', 2, 'user', 'It calms me.', NULL, '2026-05-01 09:02:00');
        INSERT INTO kg_nodes (id, session_id, label, node_type, confidence, properties, source_utterance_ids, recorded_at)
            VALUES ('n1', 's1', 'creamy', 'attribute', 0.9, '{"turn": 1}', '["u1"]', '2026-05-01 09:01:00'),
                   ('n2', 's1', 'calm', 'value', 0.7, NULL, '["u1", "u3"]', '2026-05-01 09:02:00'),
                   ('n3', 's1', 'creamy', 'attribute', 0.8, '{}', '[]', '2026-05-01 09:03:00');
        UPDATE kg_nodes SET superseded_by = 'n3' WHERE id = 'n1';
        INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, confidence, source_utterance_ids)
            VALUES ('e1', 's1', 'n1', 'n2', 'leads_to', 0.7, '["u1"]'),
                   ('e2', 's1', 'n3', 'n1', 'revises', 1.0, '[]');
        INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, saturation_score, novelty_score, strategy_selected, strategy_reasoning, scorer_details)
            VALUES ('sc1', 's1', 1, 0.1, 0.5, 0.1, 0.9, 'deepen', 'a consequence', '{"depth": {"chain": 1}}'),
                   ('sc2', 's1', 2, 0.25, 0.6, 0.2, NULL, 'broaden', NULL, NULL);
        INSERT INTO concept_elements (id, session_id, element_id, label, priority, is_covered, covered_at, covered_by_node_id)
            VALUES ('ce1', 's1', 'e0', 'Taste', 'high', 1, '2026-05-01 09:01:00', 'n1'),
                   ('ce2', 's1', 'e1', 'Price', 'low', 0, NULL, NULL);
        "#,
    )
    .expect("the Python module's rows");
    drop(db);
    path
}

fn options(repair: bool) -> InitOptions {
    InitOptions {
        adoption: AdoptionOptions {
            repair_duplicate_current_nodes: repair,
            ..AdoptionOptions::default()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_python_module_made_is_adopted_with_every_row_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let (db, report) = init_database_with(&config(&path), options(false))
        .await
        .expect("adoption");
    let adoption = report.adoption.expect("an adoption report");
    assert_eq!(adoption.adopted_from, "python_module");
    assert_eq!(adoption.rows["sessions"], 3);
    assert_eq!(adoption.rows["kg_nodes"], 3);
    assert_eq!(adoption.rows["utterances"], 3);
    let backup = adoption.backup.expect("a backup");
    assert_eq!(backups_beside(&path), vec![backup.clone()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is {mode:o}");
    }
    // The backup is the file before adoption: the Python schema, every row.
    let copy = Connection::open(&backup).expect("open the backup");
    let sessions: i64 = copy
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(sessions, 3);
    let migrations: i64 = copy
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'seaql_migrations'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(migrations, 0);

    assert_eq!(report.schema.applied, known_migrations());
    assert!(check_health(&db).await.is_healthy());

    let repos = Repositories::new(&db);
    let s1 = repos.sessions.get(&"s1".into()).await.expect("s1");
    assert_eq!(
        s1.config,
        serde_json::json!({"max_turns": 20, "language": "en"})
    );
    assert_eq!(s1.turn_count, 2);
    assert_eq!(s1.coverage_score, Some(0.25));
    assert_eq!(s1.created_at.to_string(), "2026-05-01 09:00:00");
    let s2 = repos.sessions.get(&"s2".into()).await.expect("s2");
    assert_eq!(s2.status, SessionStatus::Completed);
    assert!(s2.completed_at.is_some());

    let transcript = repos
        .utterances
        .transcript(&"s1".into())
        .await
        .expect("transcript");
    assert_eq!(transcript.len(), 3);
    assert_eq!(
        transcript[0].text,
        "Because it is creamy — \"really\", l'idée 🥛"
    );
    assert_eq!(
        transcript[0].discourse_markers,
        Some(["because", "since"].into())
    );
    assert_eq!(transcript[2].discourse_markers, None);

    let nodes = repos.graph.all_nodes(&"s1".into()).await.expect("nodes");
    assert_eq!(nodes.len(), 3);
    let current = repos
        .graph
        .current_nodes(&"s1".into())
        .await
        .expect("current");
    assert_eq!(
        current.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["n2", "n3"]
    );
    let n2 = repos.graph.node(&"n2".into()).await.expect("n2");
    assert_eq!(n2.source_utterance_ids, ["u1", "u3"].into());
    assert_eq!(n2.properties, None);
    let edges = repos.graph.edges(&"s1".into()).await.expect("edges");
    assert_eq!(edges.len(), 2);
    assert!(edges.iter().any(|e| e.edge_type == EdgeType::Revises));
    let scores = repos.scoring.history(&"s1".into()).await.expect("scores");
    assert_eq!(
        scores[0].scorer_details,
        Some(serde_json::json!({"depth": {"chain": 1}}))
    );
    assert_eq!(scores[1].novelty_score, None);
    let elements = repos
        .concept_elements
        .elements(&"s1".into())
        .await
        .expect("elements");
    assert!(elements[0].is_covered);
    assert_eq!(elements[0].covered_by_node_id.as_deref(), Some("n1"));
    assert!(!elements[1].is_covered);

    // This module's rules hold from now on: deleting a node that another
    // points at unlinks it (SET NULL) instead of failing.
    let session = repos.sessions.get(&"s3".into()).await.expect("s3");
    repos.sessions.delete(&session.id).await.expect("delete");
    db.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_module_still_works_on_an_adopted_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let (db, _) = init_database_with(&config(&path), options(false))
        .await
        .expect("adoption");
    db.close().await.expect("close");

    // What the Python module does at start and per request: its whole
    // migration script, then reads and writes with foreign keys on.
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA foreign_keys = ON")
db.execute("PRAGMA journal_mode = WAL")
db.executescript(open(sys.argv[2]).read())
db.execute("INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('py', 'means_end_chain', 'c', 'n')")
db.execute("INSERT INTO utterances (id, session_id, turn_number, speaker, text, discourse_markers) VALUES ('pu', 'py', 1, 'user', 'hello', '[\"so\"]')")
db.execute("INSERT INTO kg_nodes (id, session_id, label, node_type, source_utterance_ids) VALUES ('pa', 'py', 'a', 'attribute', '[\"pu\"]')")
db.execute("INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('pb', 'py', 'b', 'value')")
db.execute("INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('pe', 'py', 'pa', 'pb', 'leads_to')")
db.execute("UPDATE concept_elements SET is_covered = 1, covered_at = datetime('now'), covered_by_node_id = 'n2' WHERE id = 'ce2'")
db.commit()
count = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
assert count == 4, count
print("{} sessions".format(count))
"#;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/schema/python/2026-01-21.sql");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .arg(&fixture)
        .output()
        .expect("python3 runs (CPython is on this machine kind)");
    assert!(
        output.status.success(),
        "the Python module failed on the adopted file: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (db, report) = init_database_with(&config(&path), options(false))
        .await
        .expect("init again");
    assert!(report.adoption.is_none());
    assert!(check_health(&db).await.is_healthy());
    let repos = Repositories::new(&db);
    let py = repos
        .sessions
        .get(&"py".into())
        .await
        .expect("the Python module's session");
    assert_eq!(py.status, SessionStatus::Active);
    assert_eq!(
        repos.graph.edges(&"py".into()).await.expect("edges").len(),
        1
    );
    assert_eq!(
        repos
            .utterances
            .transcript(&"py".into())
            .await
            .expect("transcript")[0]
            .discourse_markers,
        Some(["so"].into())
    );
    let elements = repos
        .concept_elements
        .elements(&"s1".into())
        .await
        .expect("elements");
    assert!(elements[1].is_covered);
}

/// Each kind of row the module's rules refuse, planted in its own copy of
/// the fixture: refused with its table, row id and rule, the file
/// byte for byte unchanged, no backup left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_preflight_finding_is_refused_and_the_file_is_left_unchanged() {
    let cases: [(&str, &str, &str); 9] = [
        (
            "utterances",
            "u-orphan",
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES ('u-orphan', 'nobody', 1, 'user', 'x')",
        ),
        (
            "kg_nodes",
            "n-dup",
            "INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('n-dup', 's1', 'calm', 'value')",
        ),
        (
            "sessions",
            "s-json",
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, config) VALUES ('s-json', 'm', 'c', 'n', '{not json')",
        ),
        (
            "kg_nodes",
            "n-list",
            "INSERT INTO kg_nodes (id, session_id, label, node_type, source_utterance_ids) VALUES ('n-list', 's1', 'x', 'y', '{\"u1\": true}')",
        ),
        (
            "sessions",
            "s-status",
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status) VALUES ('s-status', 'm', 'c', 'n', 'paused')",
        ),
        (
            "kg_edges",
            "e-range",
            "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type, confidence) VALUES ('e-range', 's1', 'n2', 'n3', 'leads_to', 1.5)",
        ),
        (
            "utterances",
            "u-time",
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text, created_at) VALUES ('u-time', 's1', 7, 'user', 'x', '27/11/2026 10:00')",
        ),
        (
            "scoring_history",
            "sc-depth",
            "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, saturation_score, strategy_selected) VALUES ('sc-depth', 's1', 9, 0.1, 3.5, 0.1, 'deepen')",
        ),
        (
            "kg_edges",
            "e-type",
            "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('e-type', 's1', 'n2', 'n3', 'causes')",
        ),
    ];
    for (table, row_id, sql) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = python_file(dir.path());
        plant(&path, sql);
        let before = std::fs::read(&path).expect("read");
        match init_database_with(&config(&path), options(false)).await {
            Err(Error::AdoptionRefused { findings }) => {
                assert!(
                    findings
                        .listed
                        .iter()
                        .any(|f| f.table == table && f.row_id == row_id),
                    "{row_id}: {findings}"
                );
                assert_eq!(
                    findings.by_rule.values().sum::<u64>() as usize,
                    findings.listed.len(),
                    "{findings}"
                );
            }
            Err(other) => panic!("{row_id}: expected AdoptionRefused, got {other}"),
            Ok(_) => panic!("{row_id}: adopted"),
        }
        assert!(
            std::fs::read(&path).expect("read") == before,
            "{row_id}: the file changed"
        );
        assert!(
            backups_beside(&path).is_empty(),
            "{row_id}: a backup was left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_current_nodes_are_repaired_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    plant(
        &path,
        "INSERT INTO kg_nodes (id, session_id, label, node_type, recorded_at) VALUES \
         ('calm-2', 's1', 'calm', 'value', '2026-05-01 09:04:00'), \
         ('calm-3', 's1', 'calm', 'value', '2026-05-01 09:05:00')",
    );
    let refused = init_database_with(&config(&path), options(false)).await;
    assert!(matches!(refused, Err(Error::AdoptionRefused { .. })));

    let (db, report) = init_database_with(&config(&path), options(true))
        .await
        .expect("repaired");
    let adoption = report.adoption.expect("adopted");
    assert_eq!(adoption.rows["kg_nodes"], 5, "a node went");
    let mut touched: Vec<(String, String)> = adoption
        .repaired_nodes
        .iter()
        .map(|n| (n.node_id.clone(), n.superseded_by.clone()))
        .collect();
    touched.sort();
    assert_eq!(
        touched,
        vec![
            ("calm-2".into(), "calm-3".into()),
            ("n2".into(), "calm-2".into())
        ]
    );
    let repos = Repositories::new(&db);
    let current = repos
        .graph
        .find_current_node(&"s1".into(), "calm", "value")
        .await
        .expect("find")
        .expect("one current");
    assert_eq!(current.id, "calm-3");
    assert_eq!(
        repos
            .graph
            .all_nodes(&"s1".into())
            .await
            .expect("all")
            .len(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_differs_by_one_column_or_one_check_is_refused_and_left_unchanged() {
    for (change, expected) in [
        ("ALTER TABLE kg_nodes ADD COLUMN weight REAL", "weight"),
        (
            "PRAGMA writable_schema = ON; \
             UPDATE sqlite_schema SET sql = replace(sql, '''abandoned''', '''abandoned'', ''paused''') WHERE name = 'sessions'; \
             PRAGMA writable_schema = OFF;",
            "paused",
        ),
        ("DROP INDEX idx_kg_edges_target", "idx_kg_edges_target"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = python_file(dir.path());
        let db = Connection::open(&path).expect("open");
        db.execute_batch(change).expect("change the schema");
        drop(db);
        let before = std::fs::read(&path).expect("read");
        match init_database_with(&config(&path), options(false)).await {
            Err(Error::UnrecognizedSchema {
                closest,
                differences,
            }) => {
                assert_eq!(closest, "python module");
                // One change: one difference, or a CHECK missing and its
                // changed form not expected.
                assert!((1..=2).contains(&differences.len()), "{differences:?}");
                assert!(
                    differences.iter().any(|d| d.contains(expected)),
                    "{differences:?}"
                );
            }
            other => panic!(
                "{change}: expected UnrecognizedSchema, got {:?}",
                other.map(|_| ())
            ),
        }
        assert!(
            std::fs::read(&path).expect("read") == before,
            "{change}: the file changed"
        );
    }
}

/// A Python file whose edge-type CHECK lists `widened` (SQL text put in
/// place of `'leads_to', 'revises'`, as the Python system patched it in
/// through `writable_schema`), holding an edge of type `edge_type`, adopted:
/// the session's edges as the repositories read them.
async fn adopted_with_the_edge_check(
    widened: &str,
    edge_type: &str,
) -> Vec<entity::kg_edge::Model> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let db = Connection::open(&path).expect("open");
    db.execute_batch("PRAGMA writable_schema = ON")
        .expect("writable schema");
    db.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, '''leads_to'', ''revises''', ?1) \
         WHERE name = 'kg_edges'",
        [widened],
    )
    .expect("widen the CHECK");
    db.execute_batch("PRAGMA writable_schema = OFF")
        .expect("writable schema off");
    drop(db);
    let db = Connection::open(&path).expect("reopen");
    db.execute(
        "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) \
         VALUES ('e-later', 's1', 'n2', 'n3', ?1)",
        [edge_type],
    )
    .expect("an edge of a later methodology");
    drop(db);

    let (db, report) = init_database_with(&config(&path), options(false))
        .await
        .expect("adopted");
    assert!(report.adoption.is_some());
    Repositories::new(&db)
        .graph
        .edges(&"s1".into())
        .await
        .expect("edges")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widened_edge_vocabulary_the_python_system_patched_in_is_recognised() {
    let edges = adopted_with_the_edge_check(
        "'leads_to', 'revises', 'means_to', 'ends_to', 'occurs_in'",
        "means_to",
    )
    .await;
    assert!(edges.iter().any(|e| e.edge_type == EdgeType::MeansTo));
}

/// The Python `schema.sql` writes its widened edge-type list with a
/// `-- methodology` comment above each group; the recogniser reads the set
/// of types, not the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_edge_check_with_comments_inside_is_recognised() {
    let edges = adopted_with_the_edge_check(
        "-- Means-end chain (laddering), since 2026-01\n'revises', 'leads_to',\n\
         /* JTBD: (job, outcome) */ 'occurs_in' -- the last, 'not_a_type'\n",
        "occurs_in",
    )
    .await;
    assert!(edges.iter().any(|e| e.edge_type == EdgeType::OccursIn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adoption_failing_before_commit_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let before = std::fs::read(&path).expect("read");
    let failing = InitOptions {
        adoption: AdoptionOptions {
            fail_before_commit: true,
            ..AdoptionOptions::default()
        },
    };
    let failed = init_database_with(&config(&path), failing).await;
    assert!(failed.is_err());
    assert!(
        std::fs::read(&path).expect("read") == before,
        "the file changed"
    );
    assert!(backups_beside(&path).is_empty(), "a backup was left");
    // Still the Python module's file: no migration table, the old UNIQUE.
    let db = Connection::open(&path).expect("open");
    let migration_table: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'seaql_migrations'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(migration_table, 0);
    let nodes: i64 = db
        .query_row("SELECT COUNT(*) FROM kg_nodes", [], |r| r.get(0))
        .expect("count");
    assert_eq!(nodes, 3);
    drop(db);
    // And it can be adopted afterwards.
    let (_, report) = init_database_with(&config(&path), options(false))
        .await
        .expect("adopted");
    assert!(report.adoption.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_twice_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = python_file(dir.path());
    let (db, first) = init_database_with(&config(&path), options(false))
        .await
        .expect("adopted");
    assert!(first.adoption.is_some());
    let contents = crate::fixtures::contents(db.connection()).await;
    db.close().await.expect("close");

    let (db, second) = init_database_with(&config(&path), options(true))
        .await
        .expect("again");
    assert!(second.adoption.is_none());
    assert_eq!(crate::fixtures::contents(db.connection()).await, contents);
    assert_eq!(backups_beside(&path).len(), 1);
    assert_eq!(
        schema_status(db.connection())
            .await
            .expect("status")
            .applied,
        known_migrations()
    );
}
