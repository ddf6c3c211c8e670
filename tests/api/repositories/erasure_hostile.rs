//! The erasure (`sessions.delete`) tried as a hostile caller would, on
//! SQLite: sessions recorded side by side, cancellation before and after
//! the commit, statistics, temporary files, odd ids, umask 000.

use interview_persistence::entity::SessionId;
use std::path::{Path, PathBuf};
use std::time::Duration;

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewNode, NewSession, NewUtterance, NodeRef, NodeUpdate, Repositories, TurnEdge, TurnNode,
    TurnRecord, TurnScores, TurnUtterance,
};
use interview_persistence::{DatabaseConfig, EntityKind, init_database};
use sea_orm::TransactionTrait;
use serde_json::json;

use crate::fixtures::{count, file_of, found_in_files, integrity, left_in_files_after};
use crate::turn_builders::chain_turn;

use super::{element, is_not_found, new_session};

fn tag() -> String {
    format!("ZQ{}", uuid::Uuid::new_v4().simple())
}

fn turn(session_id: &SessionId, t: i32, mark: &str, nodes: usize) -> TurnRecord {
    TurnRecord {
        session_id: session_id.to_owned(),
        turn_number: t,
        user_utterance: TurnUtterance {
            text: format!("{mark}answer {t}"),
            discourse_markers: vec![format!("{mark}discourse")],
        },
        nodes: (0..nodes)
            .map(|k| TurnNode {
                label: format!("{mark}label {t}.{k} {}", "l".repeat(40)),
                node_type: "attribute".into(),
                confidence: 0.8,
                properties: json!({"said": format!("{mark}nodeproperty")}),
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            })
            .collect(),
        edges: vec![TurnEdge {
            source: NodeRef::New(0),
            target: NodeRef::New(1),
            edge_type: EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({"why": format!("{mark}edgeproperty")}),
        }],
        scores: TurnScores {
            coverage_score: 0.1,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: "deepen".into(),
            strategy_reasoning: Some(format!("{mark}reasoning")),
            scorer_details: json!({"quote": format!("{mark}scorerdetail")}),
        },
        covered_elements: vec![],
        coverage_score: 0.1,
        system_utterance: Some(TurnUtterance {
            text: format!("{mark}question"),
            discourse_markers: vec![],
        }),
        node_tracker_state: None,
        config_patch: None,
        velocity: None,
        focus: None,
        slot_mappings: Vec::new(),
        canonical_edges: Vec::new(),
        signals: None,
    }
}

async fn marked_session(repos: &Repositories, mark: &str) -> String {
    let mut new = new_session();
    new.config = json!({"note": format!("{mark}config")});
    repos
        .sessions
        .create(new)
        .await
        .expect("create")
        .id
        .to_string()
}

/// A marked session with `turns` turns of `nodes` marked nodes each.
async fn marked_session_with_turns(
    repos: &Repositories,
    mark: &str,
    turns: i32,
    nodes: usize,
) -> String {
    let erased = marked_session(repos, mark).await;
    for t in 1..=turns {
        repos
            .turns
            .record_turn(turn(&erased.as_str().into(), t, mark, nodes))
            .await
            .expect("turn");
    }
    erased
}

/// Sessions recorded turn by turn side by side (as a service interviewing
/// several participants at once does): index pages split in their middle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_session_recorded_beside_others_leaves_none_of_its_text_in_the_file() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let path = file_of(db);
    let repos = Repositories::new(db);
    let mark = tag();
    let erased = marked_session(&repos, &mark).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(
            repos
                .sessions
                .create(new_session())
                .await
                .expect("create")
                .id,
        );
    }
    for t in 1..=40 {
        repos
            .turns
            .record_turn(turn(&erased.as_str().into(), t, &mark, 4))
            .await
            .expect("turn");
        for (i, other) in others.iter().enumerate() {
            repos
                .turns
                .record_turn(turn(other, t, &format!("OTHER{i}"), 4))
                .await
                .expect("turn");
        }
    }
    let needles = vec![mark.clone()];
    assert!(!found_in_files(&path, &needles).is_empty());
    let record = repos
        .sessions
        .delete(&erased.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(true));
    assert_eq!(integrity(db).await, "ok");
    let left = found_in_files(&path, &needles);
    assert!(left.is_empty(), "erased text left in: {left:?}");
}

/// The caller gives up (a request timeout) while the erasure's checkpoint
/// waits for a reader: the PRAGMA goes on in sqlx's worker thread and
/// truncates the WAL once the reader ends (held up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_dropped_while_its_checkpoint_waits_for_a_reader_still_truncates() {
    let (_dir, mut config) = crate::helpers::sqlite_config();
    config.busy_timeout = Duration::from_secs(3);
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let mark = tag();
    let erased = marked_session_with_turns(&repos, &mark, 5, 2).await;
    let reader = db.dedicated_connection().await.expect("reader");
    let snapshot = reader.begin().await.expect("begin");
    assert!(crate::fixtures::count_in(&snapshot, "utterances").await > 0);

    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        repos.sessions.delete(&erased.as_str().into()),
    )
    .await;
    assert!(cancelled.is_err(), "the delete should still be waiting");
    // The erasure did commit.
    assert!(
        repos
            .sessions
            .erasure(&erased.as_str().into())
            .await
            .is_ok()
    );
    assert!(is_not_found(
        &repos.sessions.get(&erased.as_str().into()).await,
        EntityKind::Session
    ));

    drop(snapshot);
    reader.close().await.expect("close reader");
    // Well past the busy timeout and many checkpoint rounds.
    let left =
        left_in_files_after(&path, std::slice::from_ref(&mark), Duration::from_secs(6)).await;
    assert!(left.is_empty(), "erased text left in: {left:?}");
    db.close().await.expect("close");
}

/// The private files of `sqlite::memory:` databases of this process.
fn memory_dirs() -> Vec<PathBuf> {
    let prefix = format!("interview-memory-{}-", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// On `sqlite::memory:` (no checkpointer) a reader's snapshot makes the
/// erasure report `wal_truncated: false`; the text still goes once the
/// reader ends (held up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_database_loses_the_erased_text_once_the_reader_ends() {
    let before = memory_dirs();
    let mut config = DatabaseConfig::new("sqlite::memory:".parse().expect("url"));
    config.busy_timeout = Duration::from_millis(300);
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let dir = memory_dirs()
        .into_iter()
        .find(|d| !before.contains(d))
        .expect("the private directory");
    let path = dir.join("memory.db");
    let repos = Repositories::new(&db);
    let mark = tag();
    let erased = marked_session_with_turns(&repos, &mark, 5, 2).await;
    let reader = db.dedicated_connection().await.expect("reader");
    let snapshot = reader.begin().await.expect("begin");
    assert!(crate::fixtures::count_in(&snapshot, "utterances").await > 0);
    let needles = vec![mark.clone()];
    assert!(!found_in_files(&path, &needles).is_empty(), "not written");
    let record = repos
        .sessions
        .delete(&erased.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(false));
    let held = found_in_files(&path, &needles);
    assert!(!held.is_empty(), "gone while the reader held it");
    drop(snapshot);
    reader.close().await.expect("close reader");
    // Writes go on, as in a running service.
    let other = crate::fixtures::start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&other, 1))
        .await
        .expect("turn");
    let left = left_in_files_after(&path, &needles, Duration::from_secs(5)).await;
    assert!(left.is_empty(), "erased text left in: {left:?}");
    db.close().await.expect("close");
}

/// Labels, configs and nodes rewritten several times, a 1 MB utterance
/// (overflow pages), then the erasure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updated_and_huge_values_leave_nothing() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let path = file_of(db);
    let repos = Repositories::new(db);
    let mark = tag();
    let other = crate::fixtures::start(&repos).await;
    let erased = marked_session(&repos, &mark).await;
    repos
        .concept_elements
        .seed(&erased.as_str().into(), vec![element("e0", Priority::High)])
        .await
        .expect("seed");
    let recorded = repos
        .turns
        .record_turn(turn(&erased.as_str().into(), 1, &mark, 3))
        .await
        .expect("turn");
    repos
        .turns
        .record_turn(chain_turn(&other, 1))
        .await
        .expect("t");
    for v in 0..5 {
        repos
            .sessions
            .replace_config(
                &erased.as_str().into(),
                json!({"note": format!("{mark}config v{v} {}", "c".repeat(v * 300))}),
            )
            .await
            .expect("replace");
        repos
            .graph
            .update_node(
                &recorded.node_ids[0],
                NodeUpdate {
                    label: Some(format!("{mark}relabel v{v} {}", "r".repeat(v * 200))),
                    confidence: None,
                    properties: Some(json!({"p": format!("{mark}prop v{v}")})),
                    source_quotes: None,
                },
            )
            .await
            .expect("update");
    }
    repos
        .graph
        .replace_node(
            &recorded.node_ids[1],
            NewNode {
                session_id: erased.clone().into(),
                label: format!("{mark}replacement"),
                node_type: "attribute".into(),
                confidence: 0.5,
                properties: json!({}),
                source_utterance_ids: vec![],
                source_quotes: Vec::new(),
                stance: Default::default(),
                embedding: None,
            },
        )
        .await
        .expect("replace node");
    repos
        .utterances
        .save(NewUtterance {
            session_id: erased.clone().into(),
            turn_number: 2,
            speaker: Speaker::User,
            text: format!("{mark}huge {}", "h".repeat(1 << 20)),
            discourse_markers: vec![],
        })
        .await
        .expect("1 MB");
    repos
        .turns
        .record_turn(chain_turn(&other, 2))
        .await
        .expect("t");
    let needles = vec![mark.clone()];
    assert!(!found_in_files(&path, &needles).is_empty());
    let record = repos
        .sessions
        .delete(&erased.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(true));
    let left = found_in_files(&path, &needles);
    assert!(left.is_empty(), "erased text left in: {left:?}");
    // The huge value's filler is gone too (its overflow pages).
    let filler = vec!["h".repeat(4000)];
    assert!(
        found_in_files(&path, &filler).is_empty(),
        "overflow pages left"
    );
    assert_eq!(integrity(db).await, "ok");
}

/// The record's counts are the rows that went; two deletes at once erase
/// once; an id with quotes and a 1 MB id work; a re-used id keeps its last
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_concurrent_deletes_and_odd_ids() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let mark = tag();
    for id in [
        "it's \"quoted\"; DROP TABLE sessions; --".to_owned(),
        "x".repeat(1 << 20),
    ] {
        let mut new: NewSession = new_session();
        new.id = Some(id.clone().into());
        repos.sessions.create(new).await.expect("create odd id");
        repos
            .concept_elements
            .seed(
                &id.as_str().into(),
                vec![element("e0", Priority::High), element("e1", Priority::Low)],
            )
            .await
            .expect("seed");
        for t in 1..=3 {
            repos
                .turns
                .record_turn(turn(&id.as_str().into(), t, &mark, 3))
                .await
                .expect("turn");
        }
        let tables = [
            "utterances",
            "kg_nodes",
            "kg_edges",
            "scoring_history",
            "concept_elements",
        ];
        let mut before = Vec::new();
        for t in tables {
            before.push(count(db, t).await);
        }
        let session = SessionId::from(id.as_str());
        let (a, b) = tokio::join!(
            repos.sessions.delete(&session),
            repos.sessions.delete(&session)
        );
        let record = match (a, b) {
            (Ok(r), Err(e)) | (Err(e), Ok(r)) => {
                assert!(
                    matches!(e, interview_persistence::Error::NotFound { .. }),
                    "{e:?}"
                );
                r
            }
            other => panic!("one delete must win: {other:?}"),
        };
        let mut after = Vec::new();
        for t in tables {
            after.push(count(db, t).await);
        }
        let went: Vec<i64> = before.iter().zip(&after).map(|(b, a)| b - a).collect();
        let json = serde_json::to_value(&record).expect("json");
        let rows = &json["rows"];
        let said: Vec<i64> = tables.iter().map(|t| rows[*t].as_i64().unwrap()).collect();
        assert_eq!(said, went, "{json}");
        assert_eq!(rows["sessions"], 1);
        assert!(!json.to_string().contains(&mark));
        // Re-used id: erased again, last record kept.
        let mut new: NewSession = new_session();
        new.id = Some(id.clone().into());
        repos.sessions.create(new).await.expect("re-create");
        let again = repos
            .sessions
            .delete(&id.as_str().into())
            .await
            .expect("erase again");
        let stored = repos
            .sessions
            .erasure(&id.as_str().into())
            .await
            .expect("record");
        assert_eq!(stored.erased_at, again.erased_at);
        assert_eq!(
            serde_json::to_value(&stored).unwrap()["rows"]["utterances"],
            0
        );
    }
    assert_eq!(integrity(db).await, "ok");
}

/// An operator runs `ANALYZE` (or `PRAGMA optimize`, which SQLite
/// recommends) once: with STAT4 (libsqlite3-sys builds it) the index
/// samples in `sqlite_stat4` are copies of index keys — labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyzed_database_keeps_no_erased_label_in_sqlite_stat4() {
    use sea_orm::ConnectionTrait;
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let mark = tag();
    let other = crate::fixtures::start(&repos).await;
    repos
        .turns
        .record_turn(chain_turn(&other, 1))
        .await
        .expect("t");
    let erased = marked_session_with_turns(&repos, &mark, 10, 3).await;
    let outside = crate::helpers::outside_connection(db).await;
    outside
        .execute_unprepared("ANALYZE")
        .await
        .expect("analyze");
    outside.close().await.expect("close");
    let record = repos
        .sessions
        .delete(&erased.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(true));
    // Not a byte search (see the interleaving test): the live rows of
    // sqlite_stat4 themselves still hold the erased labels.
    let samples: i64 = crate::fixtures::query_one(
        db,
        &format!(
            "SELECT count(*) FROM sqlite_stat4 WHERE instr(sample, CAST('{mark}' AS BLOB)) > 0"
        ),
    )
    .await;
    assert_eq!(
        samples, 0,
        "sqlite_stat4 rows still quoting the erased session"
    );
}

/// The caller gives up (a request timeout, a client disconnect) after the
/// erasure committed, while its WAL truncation waits in the writer's queue
/// behind another write: nobody ever truncates the WAL, and the erased
/// session's pages stay in it (no reader involved at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cancelled_after_its_commit_still_scrubs_the_file_and_wal() {
    let (_dir, mut config) = crate::helpers::sqlite_config();
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let mark = tag();
    let erased = marked_session_with_turns(&repos, &mark, 5, 2).await;
    // Another write of this process holds the writer...
    let first = db.begin_write().await.expect("first write");
    // ...the erasure queues behind it...
    let delete = {
        let db = db.clone();
        let erased = erased.clone();
        tokio::spawn(async move {
            Repositories::new(&db)
                .sessions
                .delete(&erased.as_str().into())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and a third write queues behind the erasure's transaction.
    let third = {
        let db = db.clone();
        tokio::spawn(async move {
            let txn = db.begin_write().await.expect("third write");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            drop(txn);
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(first);
    // The erasure commits, then waits for the writer to truncate the WAL.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        repos
            .sessions
            .erasure(&erased.as_str().into())
            .await
            .is_ok(),
        "committed"
    );
    delete.abort(); // the caller's future is dropped
    assert!(delete.await.is_err(), "it was still waiting");
    third.await.expect("third");
    // Many checkpoint rounds later:
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = found_in_files(&path, std::slice::from_ref(&mark));
    assert!(
        left.is_empty(),
        "erased text left in: {left:?}; WAL {} bytes",
        crate::fixtures::wal_bytes(&path)
    );
    db.close().await.expect("close");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Under umask 000 (re-run in a child process, as the CLI test does):
/// directories created several levels deep, the file, -wal, -shm, and the
/// adoption backup are owner-only; the Python-made file keeps its mode.
#[test]
fn everything_created_under_umask_000_is_owner_only() {
    const CHILD: &str = "INTERVIEW_UMASK_000_CHILD";
    // The child writes it after its last assertion: a filter matching no
    // test would make the child "pass" without checking anything.
    const CHECKED: &str = "checked";
    let Some(dir) = std::env::var_os(CHILD) else {
        let dir = tempfile::tempdir().expect("dir");
        let exe = std::env::current_exe().expect("exe");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 000 && exec \"$0\" \"$@\"")
            .arg(exe)
            .args([
                "--exact",
                "repositories::erasure_hostile::everything_created_under_umask_000_is_owner_only",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .status()
            .expect("run the child");
        assert!(status.success(), "the child failed");
        assert!(
            dir.path().join(CHECKED).exists(),
            "the child ran no check (wrong test filter?)"
        );
        return;
    };
    let dir = PathBuf::from(dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // A new database several directories down.
        let path = dir.join("a/b/c/interview.db");
        let db = init_database(&DatabaseConfig::sqlite_file(&path).expect("config"))
            .await
            .expect("init");
        let repos = Repositories::new(&db);
        let id = crate::fixtures::start(&repos).await;
        repos
            .turns
            .record_turn(chain_turn(&id, 1))
            .await
            .expect("turn");
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
        }
        for f in ["interview.db", "interview.db-wal", "interview.db-shm"] {
            assert_eq!(mode(&dir.join("a/b/c").join(f)), 0o600, "{f}");
        }
        db.close().await.expect("close");

        // A Python-made file (0666 under this umask) adopted: the backup.
        let python = dir.join("py");
        std::fs::create_dir(&python).expect("mkdir");
        let ppath = python.join("interview.db");
        let conn = rusqlite::Connection::open(&ppath).expect("open");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        conn.execute_batch(include_str!("../../../src/schema/python/2026-01-21.sql"))
            .expect("ddl");
        drop(conn);
        let before = mode(&ppath);
        let (db, _) = interview_persistence::init_database_with(
            &DatabaseConfig::sqlite_file(&ppath).expect("config"),
            interview_persistence::InitOptions::default(),
        )
        .await
        .expect("adopt");
        db.close().await.expect("close");
        assert_eq!(mode(&ppath), before, "the existing file's mode changed");
        let mut backups = 0;
        for entry in std::fs::read_dir(&python).expect("list").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("before-adoption") {
                backups += 1;
                assert_eq!(mode(&entry.path()), 0o600, "{name}");
            }
        }
        assert!(backups >= 1, "no backup found");
    });
    std::fs::write(dir.join(CHECKED), b"").expect("mark the check done");
}

/// The erasure's cascading DELETE runs in a statement journal (foreign-key
/// actions); past 64 KiB SQLite spills it to an unlinked file in /var/tmp
/// holding the ORIGINAL pages — the text being erased — which nothing
/// scrubs (seen with strace: ~1.1 MB of a 1 MB utterance, markers
/// included, written to /var/tmp/etilqs_*). `temp_store=MEMORY` on the
/// writer keeps statement journals in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_keeps_temporary_journals_in_memory() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let txn = db.begin_write().await.expect("the writer");
    let row = sea_orm::ConnectionTrait::query_one_raw(
        &*txn,
        sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Sqlite, "PRAGMA temp_store"),
    )
    .await
    .expect("pragma")
    .expect("a row");
    let temp_store: i64 = row.try_get_by_index(0).expect("value");
    drop(txn);
    assert_eq!(
        temp_store, 2,
        "temp_store is not MEMORY on the writer (0 = default: files)"
    );
}
