//! The `sessions` repository (`src/repositories/sessions.rs`), on both backends.

use interview_persistence::entity::SessionId;
use std::path::Path;
use std::time::{Duration, Instant};

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::session::SessionStatus;
use interview_persistence::repositories::{
    ErasedRows, ErasureRecord, NewConceptElement, NodeRef, Repositories, TurnEdge, TurnNode,
    TurnRecord, TurnScores, TurnUtterance,
};
use interview_persistence::{Backend, ConflictKind, Database, EntityKind, Error, init_database};
use sea_orm::{EntityTrait, TransactionTrait};
use serde_json::json;

use crate::fixtures::{
    TABLES, count, file_of, found_in_files, integrity, left_in_files_after, wal_bytes,
};
use crate::on_both_backends;
use crate::turn_builders::chain_turn;

use super::{element, is_not_found, new_session};

on_both_backends!(
    sessions_are_created_read_listed_and_deleted,
    session_status_and_metrics_and_config_change_as_asked,
    a_session_and_its_elements_are_created_together_or_not_at_all,
    an_erasure_record_survives_the_erasure_with_the_counts_and_none_of_the_content,
);

async fn sessions_are_created_read_listed_and_deleted(db: &Database) {
    let repos = Repositories::new(db);
    let first = repos.sessions.create(new_session()).await.expect("create");
    assert_eq!(
        uuid::Uuid::parse_str(first.id.as_str())
            .expect("a UUID")
            .get_version_num(),
        7
    );
    assert_eq!(first.status, SessionStatus::Active);
    assert_eq!(repos.sessions.get(&first.id).await.expect("get"), first);

    let mut named = new_session();
    named.id = Some("session-named".into());
    let second = repos
        .sessions
        .create(named.clone())
        .await
        .expect("create with an id");
    assert_eq!(second.id, "session-named");
    assert!(matches!(
        repos.sessions.create(named).await,
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateSession { session_id },
            ..
        }) if session_id == "session-named"
    ));
    let mut bad = new_session();
    bad.config = json!([1, 2]);
    assert!(matches!(
        repos.sessions.create(bad).await,
        Err(Error::InvalidInput(_))
    ));

    let third = repos.sessions.create(new_session()).await.expect("create");
    repos
        .sessions
        .update_status(&third.id, SessionStatus::Abandoned)
        .await
        .expect("abandon");
    let all: Vec<String> = repos
        .sessions
        .list(None, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id.into_string())
        .collect();
    assert_eq!(
        all,
        [third.id.clone(), second.id.clone(), first.id.clone()],
        "newest first"
    );
    let active: Vec<String> = repos
        .sessions
        .list(Some(SessionStatus::Active), 10)
        .await
        .expect("list active")
        .into_iter()
        .map(|s| s.id.into_string())
        .collect();
    assert_eq!(active, [second.id.clone(), first.id.clone()]);
    assert_eq!(repos.sessions.list(None, 1).await.expect("limit").len(), 1);

    let record = repos.sessions.delete(&second.id).await.expect("delete");
    assert_eq!(record.session_id, second.id);
    assert!(is_not_found(
        &repos.sessions.get(&second.id).await,
        EntityKind::Session
    ));
    assert!(is_not_found(
        &repos.sessions.delete(&second.id).await,
        EntityKind::Session
    ));
    assert!(is_not_found(
        &repos.sessions.delete(&"never-was".into()).await,
        EntityKind::Session
    ));
    assert!(
        is_not_found(
            &repos.sessions.erasure(&"never-was".into()).await,
            EntityKind::Erasure
        ),
        "deleting an unknown id recorded an erasure"
    );
}

async fn session_status_and_metrics_and_config_change_as_asked(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");

    let completed = repos
        .sessions
        .update_status(&session.id, SessionStatus::Completed)
        .await
        .expect("complete");
    let completed_at = completed
        .completed_at
        .expect("completing sets completed_at");
    assert!(completed.updated_at >= session.updated_at);
    let again = repos
        .sessions
        .update_status(&session.id, SessionStatus::Completed)
        .await
        .expect("complete again");
    assert_eq!(
        again.completed_at,
        Some(completed_at),
        "the first completion time stays"
    );
    let reopened = repos
        .sessions
        .update_status(&session.id, SessionStatus::Active)
        .await
        .expect("reopen");
    assert_eq!(reopened.completed_at, None);
    assert!(is_not_found(
        &repos
            .sessions
            .update_status(&"nope".into(), SessionStatus::Completed)
            .await,
        EntityKind::Session
    ));

    let updated = repos
        .sessions
        .update_metrics(&session.id, 7, 0.35)
        .await
        .expect("metrics");
    assert_eq!(
        (updated.turn_count, updated.coverage_score),
        (7, Some(0.35))
    );
    assert_eq!(crate::fixtures::turn_count(&repos, &session.id).await, 7);
    assert!(matches!(
        repos.sessions.update_metrics(&session.id, -1, 0.0).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(is_not_found(
        &repos.sessions.update_metrics(&"nope".into(), 1, 0.1).await,
        EntityKind::Session
    ));

    assert_eq!(
        repos.sessions.config(&session.id).await.expect("config"),
        json!({"max_turns": 50})
    );
    let replaced = repos
        .sessions
        .replace_config(&session.id, json!({"max_turns": 20, "probe": "why"}))
        .await
        .expect("replace");
    assert_eq!(replaced.config, json!({"max_turns": 20, "probe": "why"}));
    assert_eq!(
        repos.sessions.config(&session.id).await.expect("config"),
        replaced.config
    );
    assert!(matches!(
        repos
            .sessions
            .replace_config(&session.id, json!("text"))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(is_not_found(
        &repos.sessions.config(&"nope".into()).await,
        EntityKind::Session
    ));
    assert!(is_not_found(
        &repos
            .sessions
            .replace_config(&"nope".into(), json!({}))
            .await,
        EntityKind::Session
    ));
}

async fn a_session_and_its_elements_are_created_together_or_not_at_all(db: &Database) {
    let repos = Repositories::new(db);
    let (session, elements) = repos
        .sessions
        .create_with_elements(
            new_session(),
            vec![element("e0", Priority::High), element("e1", Priority::Low)],
        )
        .await
        .expect("create with elements");
    assert_eq!(elements.len(), 2);
    assert_eq!(
        repos
            .concept_elements
            .elements(&session.id)
            .await
            .expect("elements"),
        elements
    );

    let mut doomed = new_session();
    doomed.id = Some("doomed".into());
    let refused = repos
        .sessions
        .create_with_elements(
            doomed,
            vec![element("e0", Priority::High), element("e0", Priority::Low)],
        )
        .await;
    assert!(
        matches!(
            &refused,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateElement { session_id, element_id },
                ..
            }) if session_id == "doomed" && element_id == "e0"
        ),
        "{refused:?}"
    );
    assert!(
        is_not_found(
            &repos.sessions.get(&"doomed".into()).await,
            EntityKind::Session
        ),
        "the session stayed"
    );
    assert_eq!(count(db, "concept_elements").await, 2);
}

// --- Erasure -------------------------------------------------------------

/// Strings that exist nowhere but in one session, one in every text column
/// that holds a participant's content, so that finding one in a file's
/// bytes proves that some of the session is still there.
struct Markers {
    tag: String,
}

impl Markers {
    fn new() -> Self {
        Self {
            tag: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    fn of(&self, what: &str) -> String {
        format!("MARK{}{what}", self.tag)
    }

    /// Every marker written by [`write_marked_session`].
    fn all(&self) -> Vec<String> {
        [
            "config",
            "configreplaced",
            "answer",
            "longanswer",
            "discourse",
            "question",
            "label",
            "nodeproperty",
            "edgeproperty",
            "reasoning",
            "scorerdetail",
            "elementlabel",
            "quote",
            "tracker",
            "focus",
            "signal",
            "slotname",
            "slotdescription",
            "canonicaledgetype",
        ]
        .iter()
        .map(|what| self.of(what))
        .collect()
    }
}

/// Turn `t` of a marked session: every text it writes carries a marker.
fn marked_turn(markers: &Markers, session_id: &SessionId, t: i32) -> TurnRecord {
    TurnRecord {
        session_id: session_id.to_owned(),
        turn_number: t,
        user_utterance: TurnUtterance {
            // Every fifth answer is long enough for overflow pages.
            text: if t % 5 == 0 {
                format!("{} {}", markers.of("longanswer"), "x".repeat(20_000))
            } else {
                format!("{} in turn {t}", markers.of("answer"))
            },
            discourse_markers: vec![markers.of("discourse")],
        },
        nodes: (0..2)
            .map(|k| TurnNode {
                label: format!("{} {t}.{k}", markers.of("label")),
                node_type: "attribute".into(),
                confidence: 0.8,
                properties: json!({"said": markers.of("nodeproperty")}),
                source_quotes: vec![markers.of("quote")],
                stance: Default::default(),
                embedding: None,
            })
            .collect(),
        edges: vec![TurnEdge {
            source: NodeRef::New(0),
            target: NodeRef::New(1),
            edge_type: EdgeType::LeadsTo,
            confidence: 0.7,
            properties: json!({"why": markers.of("edgeproperty")}),
        }],
        scores: TurnScores {
            coverage_score: 0.1,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: "deepen".into(),
            strategy_reasoning: Some(markers.of("reasoning")),
            scorer_details: json!({"quote": markers.of("scorerdetail")}),
        },
        covered_elements: vec![("e0".into(), NodeRef::New(0))],
        coverage_score: 0.1,
        system_utterance: Some(TurnUtterance {
            text: markers.of("question"),
            discourse_markers: vec![],
        }),
        node_tracker_state: Some(json!({"label": markers.of("tracker")})),
        config_patch: None,
        velocity: None,
        focus: Some(entity::FocusEntry {
            turn: t,
            node_id: String::new(),
            label: markers.of("focus"),
            strategy: "deepen".into(),
        }),
        slot_mappings: Vec::new(),
        canonical_edges: Vec::new(),
        signals: Some(interview_persistence::repositories::TurnSignals {
            signals: interview_persistence::repositories::Signals {
                reasoning: Some(json!({"quote": markers.of("signal")})),
                ..Default::default()
            },
            ..Default::default()
        }),
    }
}

/// A session with two elements and `turns` marked turns, whose config was
/// replaced once (so that its first version was freed by an UPDATE).
async fn write_marked_session(repos: &Repositories, markers: &Markers, turns: i32) -> String {
    let mut new = new_session();
    new.config = json!({"max_turns": 50, "note": markers.of("config")});
    let label = |id: &str| NewConceptElement {
        element_id: id.into(),
        label: format!("{} {id}", markers.of("elementlabel")),
        element_type: "attribute".into(),
        priority: Priority::High,
    };
    let (session, _) = repos
        .sessions
        .create_with_elements(new, vec![label("e0"), label("e1")])
        .await
        .expect("create the marked session");
    for t in 1..=turns {
        repos
            .turns
            .record_turn(marked_turn(markers, &session.id, t))
            .await
            .expect("record a marked turn");
    }
    // The dual graph: a slot named and described by the participant's
    // words, a node mapped to it, a canonical edge of a typed relation.
    let slot = |name: &str| interview_persistence::repositories::NewSlot {
        session_id: session.id.clone(),
        slot_name: format!("{} {name}", markers.of("slotname")),
        description: Some(markers.of("slotdescription")),
        node_type: "attribute".into(),
        first_seen_turn: 1,
        embedding: None,
        status: entity::canonical_slot::SlotStatus::Candidate,
    };
    let a = repos
        .canonical
        .create_slot(slot("a"))
        .await
        .expect("a slot");
    let b = repos
        .canonical
        .create_slot(slot("b"))
        .await
        .expect("a slot");
    let node = &repos.graph.current_nodes(&session.id).await.expect("nodes")[0];
    repos
        .canonical
        .map_surface_to_slot(&node.id, &a.id, 0.9, 1)
        .await
        .expect("map");
    let edge = &repos.graph.edges(&session.id).await.expect("edges")[0];
    repos
        .canonical
        .add_or_update_canonical_edge(
            &session.id,
            &a.id,
            &b.id,
            &markers.of("canonicaledgetype"),
            &edge.id,
        )
        .await
        .expect("a canonical edge");
    repos
        .sessions
        .replace_config(
            &session.id,
            json!({"max_turns": 40, "note": markers.of("configreplaced")}),
        )
        .await
        .expect("replace the config");
    session.id.to_string()
}

/// A session of another participant, which stays.
async fn write_other_session(repos: &Repositories, turns: i32) -> String {
    let (session, _) = repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("create another session");
    for t in 1..=turns {
        repos
            .turns
            .record_turn(chain_turn(&session.id, t))
            .await
            .expect("record a turn of the other session");
    }
    session.id.to_string()
}

/// The markers found in the files, each with the file it was found in.
fn markers_in_files(path: &Path, markers: &Markers) -> Vec<(String, String)> {
    found_in_files(path, &markers.all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_session_leaves_none_of_its_text_in_the_database_file_or_its_wal() {
    let test_db = crate::helpers::sqlite().await;
    let db = &test_db.db;
    let path = file_of(db);
    let repos = Repositories::new(db);
    let markers = Markers::new();
    let before = write_other_session(&repos, 10).await;
    let session_id = write_marked_session(&repos, &markers, 30).await;
    let after = write_other_session(&repos, 10).await;

    let found = markers_in_files(&path, &markers);
    for marker in markers.all() {
        assert!(
            found.iter().any(|(m, _)| *m == marker),
            "{marker} was never written to the files, so the test proves nothing"
        );
    }

    let record = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.wal_truncated, Some(true));
    let left = markers_in_files(&path, &markers);
    assert!(
        left.is_empty(),
        "the erased session's text remains: {left:?}"
    );
    assert_eq!(wal_bytes(&path), 0, "the WAL was not truncated");

    // The other participants' sessions are whole, and the file is sound.
    for other in [before, after] {
        let context = repos
            .turns
            .context(&other.as_str().into(), 100)
            .await
            .expect("context");
        assert_eq!(context.current_nodes.len(), 40);
    }
    assert_eq!(integrity(db).await, "ok");
    let transcript = repos
        .utterances
        .transcript(&session_id.as_str().into())
        .await
        .expect("read");
    assert!(transcript.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_holding_a_snapshot_from_before_an_erasure_delays_the_wal_truncation_until_it_ends()
 {
    let (_dir, mut config) = crate::helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(300);
    config.checkpoint_interval = Duration::from_millis(50);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let markers = Markers::new();
    write_other_session(&repos, 5).await;
    let session_id = write_marked_session(&repos, &markers, 10).await;

    let reader = db.dedicated_connection().await.expect("a reader");
    let snapshot = reader.begin().await.expect("begin");
    let seen: i64 = crate::fixtures::count_in(&snapshot, "utterances").await;
    assert!(seen > 0);

    let started = Instant::now();
    let record = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase");
    assert!(
        started.elapsed() >= config.busy_timeout,
        "the truncation did not wait for the reader"
    );
    assert_eq!(
        record.wal_truncated,
        Some(false),
        "the WAL cannot be truncated while a reader may still read it"
    );
    // What the reader's snapshot may read is still there, as the record says.
    assert_eq!(
        crate::fixtures::count_in(&snapshot, "utterances").await,
        seen
    );
    assert!(!markers_in_files(&path, &markers).is_empty());
    // The scrub is recorded as owed, and health says so.
    assert_eq!(record.scrubbed_at, None);
    let health = interview_persistence::check_health(&db).await;
    assert_eq!(
        health.erasures_unscrubbed.as_deref(),
        Some(&[session_id.clone()][..]),
        "{health:?}"
    );
    assert!(
        health.warnings.iter().any(|w| w.contains(&session_id)),
        "{health:?}"
    );
    // Writes go on meanwhile.
    write_other_session(&repos, 1).await;

    drop(snapshot);
    reader.close().await.expect("close the reader");
    let left = left_in_files_after(&path, &markers.all(), Duration::from_secs(10)).await;
    assert!(
        left.is_empty(),
        "the checkpointer did not truncate the WAL after the reader ended: {left:?}"
    );
    // The checkpointer's truncation recorded the scrub as done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while repos
        .sessions
        .erasure(&session_id.as_str().into())
        .await
        .expect("the record")
        .scrubbed_at
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the truncated WAL was never recorded as the erasure's scrub"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = interview_persistence::check_health(&db).await;
    assert_eq!(health.erasures_unscrubbed, Some(Vec::new()), "{health:?}");
    assert_eq!(integrity(&db).await, "ok");
    db.close().await.expect("close");
}

/// The process that erased ends while another one's reader still holds
/// the WAL (the CLI exits; its checkpointer with it): the scrub stays
/// recorded as owed, health at rest reports it, and the next open, once
/// the reader is gone, completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrub_a_reader_prevented_stays_owed_after_the_process_ends_and_the_next_open_completes_it()
 {
    let (_dir, mut config) = crate::helpers::sqlite_config();
    config.busy_timeout = Duration::from_millis(200);
    let db = init_database(&config).await.expect("init");
    let path = file_of(&db);
    let repos = Repositories::new(&db);
    let markers = Markers::new();
    write_other_session(&repos, 5).await;
    let session_id = write_marked_session(&repos, &markers, 10).await;

    // Another process's reader, on a snapshot from before the erasure.
    let reader = db.dedicated_connection().await.expect("a reader");
    let snapshot = reader.begin().await.expect("begin");
    assert!(crate::fixtures::count_in(&snapshot, "utterances").await > 0);
    let record = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase");
    assert_eq!(
        (record.wal_truncated, record.scrubbed_at),
        (Some(false), None)
    );
    db.close().await.expect("the erasing process ends");

    let at_rest = interview_persistence::check_health_at(
        &config,
        interview_persistence::HealthOptions::default(),
    )
    .await;
    assert_eq!(
        at_rest.erasures_unscrubbed.as_deref(),
        Some(&[session_id.clone()][..]),
        "{at_rest:?}"
    );
    assert!(
        !markers_in_files(&path, &markers).is_empty(),
        "the reader's snapshot keeps the old pages, so the test proves something"
    );

    drop(snapshot);
    reader.close().await.expect("close the reader");
    let db = interview_persistence::Database::connect(&config)
        .await
        .expect("the next open");
    let at_open = db.scrubbed_at_open().expect("opening found the scrub owed");
    assert_eq!(at_open.completed, vec![session_id.clone()]);
    assert!(at_open.still_owed().is_empty());
    assert_eq!(
        markers_in_files(&path, &markers),
        Vec::<(String, String)>::new(),
        "the erased text remains after the next open"
    );
    let stored = Repositories::new(&db)
        .sessions
        .erasure(&session_id.as_str().into())
        .await
        .expect("the record");
    assert!(stored.scrubbed_at.is_some());
    assert_eq!(integrity(&db).await, "ok");
    db.close().await.expect("close");
}

async fn an_erasure_record_survives_the_erasure_with_the_counts_and_none_of_the_content(
    db: &Database,
) {
    let repos = Repositories::new(db);
    let markers = Markers::new();
    let other = write_other_session(&repos, 2).await;
    let session_id = write_marked_session(&repos, &markers, 3).await;

    let record = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase");
    let expected = ErasedRows {
        sessions: 1,
        utterances: 6,
        kg_nodes: 6,
        kg_edges: 3,
        scoring_history: 3,
        concept_elements: 2,
        canonical_slots: Some(2),
        surface_to_slot_mapping: Some(1),
        canonical_edges: Some(1),
        qualitative_signals: Some(3),
    };
    assert_eq!(record.session_id, session_id);
    assert_eq!(record.rows, expected);
    assert_eq!(record.rows.total(), 28);
    assert_eq!(record.backend, db.backend());
    let age = chrono::Utc::now() - record.erased_at;
    assert!(age >= chrono::Duration::zero() && age < chrono::Duration::seconds(60));
    match db.backend() {
        Backend::Sqlite => assert_eq!(
            (record.wal_truncated, record.vacuumed),
            (Some(true), Some(true))
        ),
        Backend::Postgres => {
            assert_eq!((record.wal_truncated, record.vacuumed), (None, Some(true)))
        }
    }

    // Nothing of the session is left in any table; the other one is whole.
    for table in TABLES {
        let column = if table == "sessions" {
            "id"
        } else {
            "session_id"
        };
        let left = count(db, &format!("{table} WHERE {column} = '{session_id}'")).await;
        assert_eq!(left, 0, "{table} kept rows of the erased session");
    }
    assert_eq!(
        repos
            .utterances
            .transcript(&other.as_str().into())
            .await
            .expect("read")
            .len(),
        4
    );

    // The record outlives the session, and says only id, time and counts.
    let kept = repos
        .sessions
        .erasure(&session_id.as_str().into())
        .await
        .expect("the record");
    assert_eq!(
        kept,
        ErasureRecord {
            wal_truncated: None,
            vacuumed: None,
            ..record.clone()
        }
    );
    assert_eq!(
        repos.sessions.erasures(10).await.expect("records"),
        std::slice::from_ref(&kept)
    );
    let row = entity::session_erasure::Entity::find_by_id(session_id.clone())
        .one(db.connection())
        .await
        .expect("read the row")
        .expect("the row");
    let stored = format!(
        "{}{}",
        serde_json::to_string(&row).expect("json"),
        serde_json::to_string(&kept).expect("json")
    );
    for marker in markers.all() {
        assert!(!stored.contains(&marker), "the record holds {marker}");
    }
    let printed = serde_json::to_value(&record).expect("json");
    assert_eq!(printed["rows"]["utterances"], 6);
    assert_eq!(printed["session_id"], session_id.as_str());

    // An id erased again (a caller reused it) keeps its last erasure.
    let mut again = new_session();
    again.id = Some(session_id.clone().into());
    repos.sessions.create(again).await.expect("reuse the id");
    let second = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase again");
    assert_eq!(second.rows.total(), 1);
    let kept = repos
        .sessions
        .erasure(&session_id.as_str().into())
        .await
        .expect("the record");
    assert_eq!(kept.rows, second.rows);
    assert!(kept.erased_at >= record.erased_at);
    assert_eq!(repos.sessions.erasures(10).await.expect("records").len(), 1);
}

#[tokio::test]
async fn on_postgres_an_erasure_vacuums_every_table_of_the_session() {
    let Some(test_db) = crate::helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let markers = Markers::new();
    let session_id = write_marked_session(&repos, &markers, 3).await;
    let vacuums = |db: &Database| {
        let db = db.clone();
        async move {
            crate::fixtures::query_one::<i64>(
                &db,
                "SELECT COALESCE(SUM(vacuum_count), 0)::bigint FROM pg_stat_user_tables \
                 WHERE relname IN ('sessions', 'utterances', 'kg_nodes', 'kg_edges', \
                 'scoring_history', 'concept_elements', 'canonical_slots', \
                 'surface_to_slot_mapping', 'canonical_edges', 'qualitative_signals')",
            )
            .await
        }
    };
    let vacuumed_before = vacuums(db).await;

    let record = repos
        .sessions
        .delete(&session_id.as_str().into())
        .await
        .expect("erase");
    assert_eq!(record.vacuumed, Some(true));
    // VACUUM reports to the statistics as it ends: each of the ten tables
    // was vacuumed once by the erasure.
    assert_eq!(vacuums(db).await - vacuumed_before, 10);
    assert_eq!(count(db, "surface_to_slot_mapping").await, 0);
    let with_session_id = interview_persistence::migration::LATER_PYTHON_TABLES
        .into_iter()
        .filter(|t| *t != "surface_to_slot_mapping");
    for table in TABLES.into_iter().chain(with_session_id) {
        let column = if table == "sessions" {
            "id"
        } else {
            "session_id"
        };
        let left = count(db, &format!("{table} WHERE {column} = '{session_id}'")).await;
        assert_eq!(left, 0, "{table} kept rows of the erased session");
    }
}
