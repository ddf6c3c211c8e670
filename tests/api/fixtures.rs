//! Rows to test with, written through the entities.

use chrono::{NaiveDateTime, SubsecRound, Utc};
use entity::{concept_element, kg_edge, kg_node, scoring_history, session, utterance};
use interview_persistence::entity::{NodeId, SessionId};
use std::path::{Path, PathBuf};

use interview_persistence::repositories::Repositories;
use interview_persistence::{Database, Error, init_database};

use crate::helpers;
use crate::turn_builders::chain_turn;
use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel};
use serde_json::json;

/// Now, in UTC, at the microsecond precision both backends keep.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// A fresh UUID-like id unique within the test process.
pub fn id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{:08}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An active session model with every column set.
pub fn session_model(id: &str) -> session::Model {
    let now = now();
    session::Model {
        id: id.into(),
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        status: session::SessionStatus::Active,
        config: json!({"max_turns": 50}),
        created_at: now,
        updated_at: now,
        completed_at: None,
        turn_count: 0,
        coverage_score: Some(0.0),
        node_tracker_state: None,
        surface_velocity_peak: 0.0,
        prev_surface_node_count: 0,
        canonical_velocity_peak: 0.0,
        prev_canonical_node_count: 0,
        focus_history: Default::default(),
    }
}

/// Inserts a session through a write transaction and returns it as stored.
pub async fn insert_session(db: &Database) -> session::Model {
    let txn = db.begin_write().await.expect("the writer");
    let session = session_model(&id("session"))
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("insert a session");
    txn.commit().await.expect("commit");
    session
}

/// A user utterance of `session_id` at `turn`.
pub fn utterance_model(session_id: &SessionId, turn: i32) -> utterance::Model {
    utterance::Model {
        id: id("utterance").into(),
        session_id: session_id.to_owned(),
        turn_number: turn,
        speaker: utterance::Speaker::User,
        text: "Because it tastes creamy, since I skip dairy.".into(),
        discourse_markers: Some(["because", "since"].into()),
        created_at: now(),
    }
}

/// A current node of `session_id`.
pub fn node_model(session_id: &SessionId, label: &str) -> kg_node::Model {
    kg_node::Model {
        id: id("node").into(),
        session_id: session_id.to_owned(),
        label: label.to_owned(),
        node_type: "attribute".into(),
        confidence: 0.8,
        properties: Some(json!({"turn": 1})),
        source_utterance_ids: ["u-1"].into(),
        recorded_at: now(),
        superseded_by: None,
        stance: Default::default(),
        embedding: None,
        source_quotes: Default::default(),
    }
}

/// A `leads_to` edge.
pub fn edge_model(session_id: &SessionId, source: &NodeId, target: &NodeId) -> kg_edge::Model {
    kg_edge::Model {
        id: id("edge").into(),
        session_id: session_id.to_owned(),
        source_node_id: source.to_owned(),
        target_node_id: target.to_owned(),
        edge_type: kg_edge::EdgeType::LeadsTo,
        confidence: 0.7,
        properties: Some(json!({})),
        source_utterance_ids: ["u-1"].into(),
        recorded_at: now(),
    }
}

/// The scores of `turn`.
pub fn score_model(session_id: &SessionId, turn: i32) -> scoring_history::Model {
    scoring_history::Model {
        id: id("score").into(),
        session_id: session_id.to_owned(),
        turn_number: turn,
        coverage_score: Some(0.01),
        depth_score: 0.5,
        saturation_score: 0.1,
        novelty_score: Some(0.9),
        richness_score: None,
        strategy_selected: "deepen".into(),
        strategy_reasoning: Some("the last answer named a consequence".into()),
        scorer_details: Some(json!({"depth": {"chain": 3}})),
        created_at: now(),
    }
}

/// An uncovered element.
pub fn element_model(session_id: &SessionId, element_id: &str) -> concept_element::Model {
    concept_element::Model {
        id: id("element"),
        session_id: session_id.to_owned(),
        element_id: element_id.to_owned().into(),
        label: format!("Element {element_id}"),
        element_type: "attribute".into(),
        priority: concept_element::Priority::High,
        is_covered: false,
        covered_at: None,
        covered_by_node_id: None,
    }
}

/// Runs raw SQL in a write transaction of its own (the pool is read-only
/// on SQLite), turning a refusal into the crate's classified error.
pub async fn exec(db: &Database, sql: &str) -> Result<(), Error> {
    let txn = db.begin_write().await?;
    txn.execute_unprepared(sql).await?;
    txn.commit().await
}

/// How many rows `table` holds.
pub async fn count(db: &Database, table: &str) -> i64 {
    let row = db
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            db.connection().get_database_backend(),
            format!("SELECT COUNT(*) FROM {table}"),
        ))
        .await
        .expect("count rows")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

/// How many rows `table` holds, as `conn` (a transaction's snapshot) sees
/// them.
pub async fn count_in(conn: &impl ConnectionTrait, table: &str) -> i64 {
    conn.query_one_raw(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        format!("SELECT COUNT(*) FROM {table}"),
    ))
    .await
    .expect("count rows")
    .expect("one row")
    .try_get_by_index::<i64>(0)
    .expect("a count")
}

/// The first column of the first row of `sql` (a PRAGMA, a scalar query).
pub async fn query_one<T: sea_orm::TryGetable>(db: &Database, sql: &str) -> T {
    db.connection()
        .query_one_raw(sea_orm::Statement::from_string(
            db.connection().get_database_backend(),
            sql,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
        .try_get_by_index(0)
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// The six tables of the schema that hold a session's rows.
pub use interview_persistence::migration::INTERVIEW_TABLES as TABLES;

/// A session with one element, `e0`.
pub async fn start(
    repos: &interview_persistence::repositories::Repositories,
) -> interview_persistence::entity::SessionId {
    repos
        .sessions
        .create_with_elements(
            crate::repositories::new_session(),
            vec![crate::repositories::element(
                "e0",
                entity::concept_element::Priority::High,
            )],
        )
        .await
        .expect("start a session")
        .0
        .id
}

pub fn file_of(db: &Database) -> PathBuf {
    match db.sqlite_location() {
        Some(interview_persistence::config::SqliteLocation::File { path, .. }) => path.clone(),
        other => panic!("a SQLite file, got {other:?}"),
    }
}

pub fn wal_of(db: &Database) -> PathBuf {
    let mut wal = file_of(db).into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

pub fn wal_bytes(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(0, |m| m.len())
}

pub async fn integrity(db: &Database) -> String {
    query_one(db, "PRAGMA integrity_check").await
}

pub fn files_beside(path: &Path) -> Vec<String> {
    files_in(path.parent().expect("a directory"))
}

/// Which of `needles` occur in any byte of `path`, `path-wal` or
/// `path-shm`, each with the suffix of the file it was found in.
pub fn found_in_files(path: &Path, needles: &[String]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let bytes = std::fs::read(PathBuf::from(&name)).unwrap_or_default();
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push((needle.clone(), suffix.to_owned()));
            }
        }
    }
    found
}

/// What [`found_in_files`] still finds once it found nothing or `within`
/// passed (the background checkpointer truncates the WAL meanwhile).
pub async fn left_in_files_after(
    path: &Path,
    needles: &[String],
    within: std::time::Duration,
) -> Vec<(String, String)> {
    let deadline = std::time::Instant::now() + within;
    while !found_in_files(path, needles).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    found_in_files(path, needles)
}

/// Makes a path immutable with `chattr +i` (which binds root too) and
/// undoes it on drop.
pub struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// `None` (said loudly) where `chattr +i` does not work, e.g. on tmpfs;
    /// under `CI=true` that fails the test instead.
    pub fn new(paths: &[&Path]) -> Option<Self> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .args(paths)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let required = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!required, "chattr +i is unavailable on this machine's disk");
            eprintln!("SKIPPED (read-only location): chattr +i is not supported here");
        }
        ok.then(|| Self(paths.iter().map(|p| p.to_path_buf()).collect()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A database with 20 turns, closed (so its WAL is folded in); returns the
/// directory and the file.
pub async fn a_closed_database_with_turns() -> (tempfile::TempDir, PathBuf) {
    let (dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session_id = start(&repos).await;
    for t in 1..=20 {
        repos
            .turns
            .record_turn(chain_turn(&session_id, t))
            .await
            .expect("record");
    }
    let path = file_of(&db);
    db.close().await.expect("close");
    assert_eq!(wal_bytes(&path), 0, "closing folds the WAL in");
    (dir, path)
}

/// Every row of the six tables and the four later Python ones, read
/// through the entities in key order: two snapshots are equal when every
/// value of every row is.
#[derive(Debug, PartialEq)]
pub struct Contents {
    pub sessions: Vec<session::Model>,
    pub utterances: Vec<utterance::Model>,
    pub nodes: Vec<kg_node::Model>,
    pub edges: Vec<kg_edge::Model>,
    pub scores: Vec<scoring_history::Model>,
    pub elements: Vec<concept_element::Model>,
    pub slots: Vec<entity::canonical_slot::Model>,
    pub mappings: Vec<entity::slot_mapping::Model>,
    pub canonical_edges: Vec<entity::canonical_edge::Model>,
    pub signals: Vec<entity::qualitative_signal::Model>,
}

/// The [`Contents`] of `db`.
pub async fn contents(db: &impl ConnectionTrait) -> Contents {
    use sea_orm::{EntityTrait, QueryOrder};
    Contents {
        sessions: session::Entity::find()
            .order_by_asc(session::Column::Id)
            .all(db)
            .await
            .expect("sessions"),
        utterances: utterance::Entity::find()
            .order_by_asc(utterance::Column::Id)
            .all(db)
            .await
            .expect("utterances"),
        nodes: kg_node::Entity::find()
            .order_by_asc(kg_node::Column::Id)
            .all(db)
            .await
            .expect("nodes"),
        edges: kg_edge::Entity::find()
            .order_by_asc(kg_edge::Column::Id)
            .all(db)
            .await
            .expect("edges"),
        scores: scoring_history::Entity::find()
            .order_by_asc(scoring_history::Column::Id)
            .all(db)
            .await
            .expect("scores"),
        slots: entity::canonical_slot::Entity::find()
            .order_by_asc(entity::canonical_slot::Column::Id)
            .all(db)
            .await
            .expect("slots"),
        mappings: entity::slot_mapping::Entity::find()
            .order_by_asc(entity::slot_mapping::Column::SurfaceNodeId)
            .all(db)
            .await
            .expect("mappings"),
        canonical_edges: entity::canonical_edge::Entity::find()
            .order_by_asc(entity::canonical_edge::Column::Id)
            .all(db)
            .await
            .expect("canonical edges"),
        signals: entity::qualitative_signal::Entity::find()
            .order_by_asc(entity::qualitative_signal::Column::Id)
            .all(db)
            .await
            .expect("signals"),
        elements: concept_element::Entity::find()
            .order_by_asc(concept_element::Column::Id)
            .all(db)
            .await
            .expect("elements"),
    }
}

/// Fills `db` with three sessions of `turns` turns each (the benchmark's
/// turns: nodes, edges, scores, covers), a replaced node per session (so
/// superseded nodes exist) and one abandoned session.
pub async fn populate(db: &Database, turns: i32) -> Vec<String> {
    use entity::concept_element::Priority;
    use interview_persistence::repositories::{NewNode, NewSession};
    let repos = Repositories::new(db);
    let mut ids = Vec::new();
    for s in 0..3 {
        let (session, _) = repos
            .sessions
            .create_with_elements(
                NewSession {
                    concept_name: format!("Oat milk latte {s}"),
                    config: serde_json::json!({"max_turns": turns}),
                    ..crate::repositories::new_session()
                },
                (0..10)
                    .map(|e| {
                        crate::repositories::element(
                            &format!("e{e}"),
                            [Priority::High, Priority::Medium, Priority::Low][e % 3],
                        )
                    })
                    .collect(),
            )
            .await
            .expect("a session");
        for t in 1..=turns {
            repos
                .turns
                .record_turn(crate::turn_builders::benchmark_turn(&session.id, t))
                .await
                .expect("a turn");
        }
        let node = repos
            .graph
            .find_current_node(&session.id, "n1_0", "attribute")
            .await
            .expect("find")
            .expect("node n1_0");
        repos
            .graph
            .replace_node(&node.id, NewNode::new(&session.id, "n1_0", "attribute"))
            .await
            .expect("replace a node");
        ids.push(session.id.to_string());
    }
    repos
        .sessions
        .update_status(
            &ids[2].as_str().into(),
            entity::session::SessionStatus::Abandoned,
        )
        .await
        .expect("abandon");
    ids
}

/// The session's `turn_count` as the repository reads it.
pub async fn turn_count(
    repos: &interview_persistence::repositories::Repositories,
    session_id: &SessionId,
) -> i32 {
    repos
        .sessions
        .get(session_id)
        .await
        .expect("read the session")
        .turn_count
}

/// Runs `call` (given a runtime of its own) on a thread of its own and
/// returns what it answered, failing the test when it has not answered
/// within `deadline`: a call blocked in a system call (opening a FIFO
/// waits for a writer) holds its thread, and no async timeout on that
/// thread could fire.
pub fn answers_within<T, F, Fut>(deadline: std::time::Duration, what: &str, call: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (sender, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _ = sender.send(runtime.block_on(call()));
    });
    answer
        .recv_timeout(deadline)
        .unwrap_or_else(|_| panic!("{what} did not answer within {deadline:?}"))
}

/// A FIFO (named pipe) at `path`, made by `mkfifo`.
pub fn make_fifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}: {made}", path.display());
}

/// A tmpfs mounted on a temporary directory, remounted read-only on
/// demand and unmounted when dropped: a read-only mount as an operator
/// has one. Mounting needs root (CAP_SYS_ADMIN): `None`, said loudly,
/// where it is not allowed.
pub struct TmpfsMount {
    dir: tempfile::TempDir,
}

impl TmpfsMount {
    pub fn new() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED (read-only mount): mounting a tmpfs is not allowed here");
        }
        mounted.then_some(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Remounts it read-only (every file on it must be closed).
    pub fn remount_read_only(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "remount read-only: {status}");
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The SHA-256 of the file at `path`, in hex.
pub fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("read the file");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The journal bytes of a SQLite header (file offsets 18 and 19): `(1, 1)`
/// for a rollback journal, `(2, 2)` for WAL.
pub fn journal_bytes(path: &Path) -> (u8, u8) {
    let header = std::fs::read(path).expect("read the file");
    (header[18], header[19])
}

/// A study of `turns` turns in the SQLite file at `path`, made by this
/// module and then switched to a rollback journal (`journal_mode=DELETE`,
/// as a restored backup or a copy's archive is) by a plain connection,
/// closed; nothing else has it open.
pub async fn rollback_journal_study(path: &Path, turns: i32) {
    use sea_orm::sqlx::{self, Connection};
    let config = interview_persistence::DatabaseConfig::sqlite_file(path).expect("a path");
    let db = init_database(&config).await.expect("init");
    populate(&db, turns).await;
    db.close().await.expect("close");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a plain connection");
    sqlx::query("PRAGMA journal_mode=DELETE")
        .execute(&mut conn)
        .await
        .expect("journal_mode=DELETE");
    conn.close().await.expect("close");
    assert_eq!(journal_bytes(path), (1, 1), "a rollback-journal file");
}

/// Moves `completed_at` behind `coverage_score` in `sessions` (dropped and
/// added back, as the Python system's start-up ALTERs leave columns) and
/// adds a column the entity does not know, through a connection of
/// another program: the table's physical column order then differs from
/// the entity's.
pub async fn reorder_the_sessions_columns(db: &Database) {
    let outside = crate::helpers::outside_connection(db).await;
    for sql in [
        "ALTER TABLE sessions DROP COLUMN completed_at",
        "ALTER TABLE sessions ADD COLUMN completed_at datetime_text NULL",
        "ALTER TABLE sessions ADD COLUMN another_programs_notes TEXT",
    ] {
        outside.execute_unprepared(sql).await.expect(sql);
    }
    outside.close().await.expect("close");
}
