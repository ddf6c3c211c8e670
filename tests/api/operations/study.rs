//! A study that exercises every column: the repositories' rows, and rows
//! written straight through the entities with every nullable column both
//! NULL and set, hostile text, 1 MB values, odd floats, superseded nodes
//! whose successor sorts before them, and an erasure record.

use entity::canonical_slot::{self, SlotStatus};
use entity::{
    EMBEDDING_DIMENSIONS, Embedding, SessionId, Stance, canonical_edge, qualitative_signal,
    slot_mapping,
};
use entity::{concept_element, kg_edge, kg_node, scoring_history, session, utterance};
use interview_persistence::Database;
use interview_persistence::repositories::Repositories;
use sea_orm::{ActiveModelTrait, IntoActiveModel};
use serde_json::json;

use crate::fixtures::{
    edge_model, element_model, node_model, now, populate, score_model, session_model,
    utterance_model,
};

/// Text a careless copy would mangle: quotes, SQL, backslashes (also one
/// spelling `\u0000` without being a NUL), control characters, right-to-left
/// marks, combining characters and emoji.
pub const HOSTILE: &str = "'; DROP TABLE sessions; -- \"quoted\" \\ \\u0000 \\x00 %s {} \
    tab\tline\r\nnew ☃ e\u{301} \u{202E}rtl\u{202C} 👩\u{200D}🔬 \u{FEFF}";

/// One megabyte of multi-byte text.
pub fn megabyte() -> String {
    "é".repeat(512 * 1024)
}

/// Fills `db` with the study; returns the id of the hostile session.
pub async fn hostile_study(db: &Database) -> String {
    let sessions = populate(db, 4).await;
    // An erasure record travels with the study.
    Repositories::new(db)
        .sessions
        .delete(&sessions[1].as_str().into())
        .await
        .expect("erase a session");

    let txn = db.begin_write().await.expect("the writer");
    let id = format!("session-{HOSTILE}");
    session::Model {
        concept_name: HOSTILE.into(),
        status: session::SessionStatus::Completed,
        config: json!({
            HOSTILE: [HOSTILE, null, true, false, 0, -1, i64::MIN, u64::MAX, 0.1, 1e300, -0.5e-300],
            "nested": {"deeper": {"deepest": [[[]], {}]}},
            "big": megabyte(),
        }),
        completed_at: Some(now()),
        turn_count: i32::MAX,
        coverage_score: None,
        ..session_model(&id)
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("the hostile session");

    for (turn, text, markers) in [
        (1, megabyte(), None),
        (2, HOSTILE.to_owned(), Some([HOSTILE, "", "because"].into())),
    ] {
        utterance::Model {
            text,
            discourse_markers: markers,
            ..utterance_model(&id.as_str().into(), turn)
        }
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("an utterance");
    }

    // `zz` is superseded by `aa`, which sorts (and so is read) first; `mm`
    // by `zz2`, which sorts after it.
    let node = |suffix: &str, label: &str| kg_node::Model {
        id: format!("node-{suffix}").into(),
        ..node_model(&id.as_str().into(), label)
    };
    let nodes = [
        kg_node::Model {
            confidence: 1.0,
            properties: None,
            stance: Stance::Negative,
            embedding: Some(odd_embedding()),
            source_quotes: [HOSTILE, ""].into(),
            ..node("aa", HOSTILE)
        },
        kg_node::Model {
            confidence: f64::from_bits(1), // the smallest subnormal
            superseded_by: Some("node-aa".into()),
            properties: Some(json!({"big": megabyte(), HOSTILE: HOSTILE})),
            ..node("zz", HOSTILE)
        },
        kg_node::Model {
            confidence: 0.1 + 0.2,
            source_utterance_ids: [HOSTILE, "u-2"].into(),
            stance: Stance::Positive,
            ..node("zz2", "successor")
        },
        kg_node::Model {
            confidence: 0.0,
            superseded_by: Some("node-zz2".into()),
            ..node("mm", "successor")
        },
    ];
    for model in nodes {
        model
            .into_active_model()
            .insert(&*txn)
            .await
            .expect("a node");
    }
    kg_edge::Model {
        properties: None,
        edge_type: kg_edge::EdgeType::Revises,
        confidence: 1.0 / 3.0,
        ..edge_model(&id.as_str().into(), &"node-zz".into(), &"node-aa".into())
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("an edge");
    edge_model(&id.as_str().into(), &"node-mm".into(), &"node-zz2".into())
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("an edge");

    scoring_history::Model {
        novelty_score: None,
        richness_score: Some(0.1 + 0.2),
        strategy_reasoning: None,
        scorer_details: None,
        strategy_selected: HOSTILE.into(),
        ..score_model(&id.as_str().into(), 1)
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("scores");
    score_model(&id.as_str().into(), 2)
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("scores");

    concept_element::Model {
        is_covered: true,
        covered_at: Some(now()),
        covered_by_node_id: Some("node-aa".into()),
        label: HOSTILE.into(),
        priority: concept_element::Priority::Low,
        ..element_model(&id.as_str().into(), "e-covered")
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("a covered element");
    element_model(&id.as_str().into(), "e-open")
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("an open element");

    // The dual graph and the signals: every nullable column both NULL and
    // set, the embedding's odd floats.
    let session_id: SessionId = id.as_str().into();
    let slot = |suffix: &str, status, embedding| canonical_slot::Model {
        id: format!("slot_{suffix}").into(),
        session_id: session_id.clone(),
        slot_name: format!("{HOSTILE} {suffix}"),
        description: (suffix == "a").then(|| HOSTILE.to_owned()),
        node_type: "attribute".into(),
        status,
        support_count: 1,
        first_seen_turn: 1,
        promoted_turn: (status == SlotStatus::Active).then_some(2),
        embedding,
        created_at: now(),
        promoted_at: (status == SlotStatus::Active).then(now),
    };
    for model in [
        slot("a", SlotStatus::Active, Some(odd_embedding())),
        slot("b", SlotStatus::Candidate, None),
    ] {
        model
            .into_active_model()
            .insert(&*txn)
            .await
            .expect("a slot");
    }
    slot_mapping::Model {
        surface_node_id: "node-aa".into(),
        canonical_slot_id: "slot_a".into(),
        similarity_score: 0.1 + 0.2,
        assigned_turn: 2,
        assigned_at: now(),
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("a mapping");
    canonical_edge::Model {
        id: "cedge_a".into(),
        session_id: session_id.clone(),
        source_slot_id: "slot_a".into(),
        target_slot_id: "slot_b".into(),
        edge_type: HOSTILE.into(),
        support_count: 2,
        surface_edge_ids: [HOSTILE, "e-2"].into(),
        created_at: now(),
        updated_at: now(),
    }
    .into_active_model()
    .insert(&*txn)
    .await
    .expect("a canonical edge");
    for (turn, signal) in [
        (1, Some(json!({HOSTILE: [HOSTILE, 1e300, -0.5e-300]}))),
        (2, None),
    ] {
        qualitative_signal::Model {
            id: format!("signal-{turn}").into(),
            session_id: session_id.clone(),
            turn_number: turn,
            llm_model: signal.as_ref().map(|_| HOSTILE.to_owned()),
            extraction_latency_ms: signal.as_ref().map(|_| i64::MAX),
            extraction_errors: signal.as_ref().map(|_| [HOSTILE].into()),
            uncertainty_signal: signal.clone(),
            reasoning_signal: signal.clone(),
            emotional_signal: None,
            contradiction_signal: signal.clone(),
            knowledge_ceiling_signal: None,
            concept_depth_signal: signal,
            created_at: now(),
        }
        .into_active_model()
        .insert(&*txn)
        .await
        .expect("signals");
    }
    txn.commit().await.expect("commit the study");
    id
}

/// An embedding of awkward floats: subnormals, extremes, negative zero
/// (bytes travel as they are, so even −0 keeps its sign).
fn odd_embedding() -> Embedding {
    let mut values = vec![0.25f32; EMBEDDING_DIMENSIONS];
    values[0] = f32::from_bits(1);
    values[1] = f32::MAX;
    values[2] = f32::MIN_POSITIVE;
    values[3] = -0.0;
    values[4] = 0.1 + 0.2;
    Embedding::new(values).expect("finite values")
}
