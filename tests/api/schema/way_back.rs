//! The way back during a switch-over: the newest Python system runs its
//! start-up and one whole turn of persistence statements
//! (`tests/fixtures/python_way_back.py`, CPython's `sqlite3`) on a file
//! this module made and migrated, reads its rows back — and then this
//! module opens the same file, healthy, and reads the Python system's rows
//! through its repositories.

use entity::canonical_slot::SlotStatus;
use entity::{EMBEDDING_DIMENSIONS, Embedding, Stance};
use interview_persistence::repositories::Repositories;
use interview_persistence::{check_health, init_database};
use serde_json::json;

use crate::helpers;

fn embedding(axis: usize, tilt: f32) -> Embedding {
    let mut values = vec![0.0; EMBEDDING_DIMENSIONS];
    values[axis] = 1.0;
    values[(axis + 1) % EMBEDDING_DIMENSIONS] = tilt;
    Embedding::new(values).expect("an embedding")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_python_system_runs_a_turn_on_a_file_this_module_made_and_both_read_it() {
    let (_dir, config) = helpers::sqlite_config();
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let ours = repos
        .sessions
        .create(crate::repositories::new_session())
        .await
        .expect("a session of ours");
    db.close().await.expect("close");
    let path = config.url.sqlite_location().and_then(|l| match l {
        interview_persistence::config::SqliteLocation::File { path, .. } => Some(path),
        _ => None,
    });
    let path = path.expect("a file");

    let python = super::python_fixture("python_way_back.py", &[path.to_str().expect("UTF-8")], &[]);
    // Its start-up changed nothing of the schema: every column is there.
    assert_eq!(python["altered"], json!([]));
    assert_eq!(python["patched"], json!(false));
    // Its reads: the label look-up, the similarity, the graph state, the
    // reports, the signals saved twice, the state.
    assert_eq!(python["found"], python["creamy"]);
    let similar = python["similar"].as_array().expect("similar");
    assert_eq!(similar.len(), 1);
    assert_eq!(similar[0][0], python["creamy"]);
    assert!(similar[0][1].as_f64().expect("a cosine") > 0.97);
    assert_eq!(python["second_save_refused"], json!(true));
    assert_eq!(python["node_count"], json!(2));
    assert_eq!(
        python["nodes_by_type"],
        json!({"attribute": 1, "consequence": 1})
    );
    let provenance = &python["provenance"][0];
    assert_eq!(provenance["slot_id"], python["texture"]);
    assert_eq!(provenance["surface_node_ids"], python["creamy"]);
    assert_eq!(provenance["support_count"], json!(1));
    assert_eq!(python["avg_confidence"], json!(0.8));
    assert_eq!(
        python["signals"],
        json!([{"turn_number": 1, "llm_model": "gpt-first", "uncertainty_signal": "{\"level\": \"low\"}"}])
    );
    assert_eq!(
        python["config"],
        json!({"max_turns": 12, "metadata": {"llm_usage": {"tokens": 321}}})
    );
    assert_eq!(python["utterance_turns"], json!([0, 1]));
    assert_eq!(
        python["creamy_quotes"],
        json!(["It is creamy", "and so smooth"])
    );
    assert_eq!(python["creamy_stance"], json!(1));
    let bytes: String = embedding(0, 0.2)
        .to_le_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(python["creamy_embedding_hex"], json!(bytes));

    // This module opens the file again, healthy, and reads the rows the
    // Python system wrote.
    let db = init_database(&config).await.expect("init again");
    let health = check_health(&db).await;
    assert!(health.is_healthy(), "{health:?}");
    let repos = Repositories::new(&db);
    let text = |key: &str| python[key].as_str().expect("an id").to_owned();
    let session_id = text("session_id").into();
    let session = repos.sessions.get(&session_id).await.expect("the session");
    assert_eq!(
        (
            session.turn_count,
            session.surface_velocity_peak,
            session.prev_canonical_node_count
        ),
        (1, 2.0, 1)
    );
    assert_eq!(session.focus_history[0].strategy, "ladder_up");
    assert_eq!(session.focus_history[0].node_id, text("creamy"));
    assert!(
        repos
            .sessions
            .node_tracker_state(&session_id)
            .await
            .expect("tracker")
            .is_some()
    );
    let creamy = repos
        .graph
        .node(&text("creamy").into())
        .await
        .expect("the node");
    assert_eq!(creamy.stance, Stance::Positive);
    assert_eq!(creamy.embedding, Some(embedding(0, 0.2)));
    assert_eq!(
        creamy.source_quotes.to_vec(),
        ["It is creamy", "and so smooth"]
    );
    let found = repos
        .graph
        .find_similar_nodes(&session_id, "attribute", &embedding(0, 0.0), 0.8)
        .await
        .expect("similar");
    assert_eq!(found.len(), 1);
    let found = repos
        .graph
        .find_node_by_label(&session_id, "CREAMY", "attribute")
        .await
        .expect("label");
    assert_eq!(found.map(|n| n.id), Some(creamy.id.clone()));
    let texture = repos
        .canonical
        .slot(&text("texture").into())
        .await
        .expect("the slot");
    assert_eq!(
        (texture.status, texture.support_count),
        (SlotStatus::Active, 1)
    );
    assert_eq!(
        repos
            .canonical
            .mapping_of(&creamy.id)
            .await
            .expect("mapping")
            .map(|m| m.canonical_slot_id),
        Some(texture.id.clone())
    );
    let edges = repos
        .canonical
        .canonical_edges(&session_id)
        .await
        .expect("edges");
    assert_eq!(edges[0].surface_edge_ids.to_vec(), [text("edge_id")]);
    let signals = repos.signals.all(&session_id).await.expect("signals");
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].llm_model.as_deref(), Some("gpt-first"));
    assert_eq!(signals[0].uncertainty_signal, Some(json!({"level": "low"})));
    let scores = repos.scoring.history(&session_id).await.expect("scores");
    assert_eq!(
        (
            scores[0].coverage_score,
            scores[0].strategy_selected.as_str()
        ),
        (None, "ladder_up")
    );
    let state = repos
        .graph
        .graph_state(&session_id)
        .await
        .expect("graph state");
    assert_eq!(
        (state.node_count, state.edge_count, state.max_depth),
        (2, 1, 2)
    );
    let transcript = repos
        .utterances
        .transcript(&session_id)
        .await
        .expect("the transcript");
    assert_eq!(
        transcript.iter().map(|u| u.turn_number).collect::<Vec<_>>(),
        [0, 1]
    );
    let export = repos.export.export(&session_id).await.expect("export");
    assert_eq!(export.nodes.len(), 2);
    // And our own session is untouched.
    assert_eq!(repos.sessions.get(&ours.id).await.expect("ours"), ours);
    db.close().await.expect("close");
}
