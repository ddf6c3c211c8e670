//! The calls the Python pipeline makes every turn that the first design
//! did not have (`session_state`, `graph_lookup`, `graph_state`,
//! `canonical`, `signals`, `export`), on both backends: what each
//! promises, where it differs from the Python call on purpose, and what a
//! misbehaving caller gets.

use entity::canonical_slot::SlotStatus;
use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use entity::{EMBEDDING_DIMENSIONS, Embedding, SessionId, Stance};
use interview_persistence::repositories::{
    NODE_SIMILARITY_THRESHOLD, NewEdge, NewNode, NewSignals, NewSlot, Repositories, SessionState,
    Signals, SignalsSaved,
};
use interview_persistence::{ConflictKind, Database, EntityKind, Error};
use serde_json::json;

use crate::on_both_backends;

use super::{is_not_found, new_session, utterance};

on_both_backends!(
    the_node_tracker_state_round_trips_and_a_missing_session_is_not_found,
    config_merges_are_shallow_and_concurrent_ones_lose_no_key,
    a_state_with_negative_or_non_finite_values_is_refused_and_changes_nothing,
    labels_are_found_whatever_their_case_in_any_script,
    similar_nodes_come_best_first_of_one_type_and_current_only,
    a_node_keeps_its_stance_quotes_and_embedding_bytes,
    slots_are_created_found_promoted_once_and_found_by_similarity,
    mapping_a_node_keeps_each_slots_support_equal_to_its_nodes,
    canonical_edges_gather_each_surface_edge_once_even_when_added_at_once,
    the_slot_and_edge_reports_say_what_supports_them,
    a_second_save_of_a_turns_signals_keeps_the_first,
    an_export_holds_every_row_of_the_session_and_nothing_of_another,
    record_turn_writes_stances_quotes_and_embeddings,
    record_turn_writes_velocity_focus_mappings_canonical_edges_and_signals_at_once,
    a_turn_whose_canonical_edge_fails_leaves_no_row_of_it,
    a_turns_canonical_edges_count_each_surface_edge_once_across_turns,
    concurrent_mappings_and_moves_leave_each_slots_support_equal_to_its_nodes,
);

/// A unit-ish embedding pointing mostly along `axis`, tilted by `tilt`
/// along the next one.
pub fn embedding(axis: usize, tilt: f32) -> Embedding {
    let mut values = vec![0.0; EMBEDDING_DIMENSIONS];
    values[axis] = 1.0;
    values[(axis + 1) % EMBEDDING_DIMENSIONS] = tilt;
    Embedding::new(values).expect("an embedding")
}

async fn a_session(repos: &Repositories) -> SessionId {
    repos
        .sessions
        .create(new_session())
        .await
        .expect("create")
        .id
}

/// A session with the ten concept elements the benchmark turns cover.
async fn a_session_with_elements(repos: &Repositories) -> SessionId {
    let elements = (0..10)
        .map(|e| super::element(&format!("e{e}"), entity::concept_element::Priority::High))
        .collect();
    repos
        .sessions
        .create_with_elements(new_session(), elements)
        .await
        .expect("create")
        .0
        .id
}

async fn the_node_tracker_state_round_trips_and_a_missing_session_is_not_found(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    assert_eq!(
        repos.sessions.node_tracker_state(&id).await.expect("get"),
        None
    );
    let tracker = json!({"nodes": {"n1": {"focus_count": 2, "label": "ß"}}, "turn": 3});
    repos
        .sessions
        .set_node_tracker_state(&id, tracker.clone())
        .await
        .expect("set");
    assert_eq!(
        repos.sessions.node_tracker_state(&id).await.expect("get"),
        Some(tracker)
    );
    assert!(is_not_found(
        &repos.sessions.node_tracker_state(&"nope".into()).await,
        EntityKind::Session
    ));
    assert!(is_not_found(
        &repos
            .sessions
            .set_node_tracker_state(&"nope".into(), json!({}))
            .await,
        EntityKind::Session
    ));
}

async fn config_merges_are_shallow_and_concurrent_ones_lose_no_key(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await; // config {"max_turns": 50}
    let patch = |value: serde_json::Value| value.as_object().expect("an object").clone();
    repos
        .sessions
        .merge_config(
            &id,
            patch(json!({"metadata": {"llm_usage": {"tokens": 1}, "a": 1}})),
        )
        .await
        .expect("merge");
    let merged = repos
        .sessions
        .merge_config(
            &id,
            patch(json!({"metadata": {"llm_usage": {"tokens": 2}}})),
        )
        .await
        .expect("merge");
    // One level deep: `metadata` is replaced whole, `max_turns` stays.
    assert_eq!(
        merged,
        json!({"max_turns": 50, "metadata": {"llm_usage": {"tokens": 2}}})
    );
    assert_eq!(repos.sessions.config(&id).await.expect("config"), merged);

    // Twenty merges at once, each of its own key: none is lost.
    let merges = (0..20).map(|i| {
        let sessions = repos.sessions.clone();
        let id = id.clone();
        tokio::spawn(async move {
            sessions
                .merge_config(&id, patch(json!({format!("key{i}"): i})))
                .await
        })
    });
    for merge in merges.collect::<Vec<_>>() {
        merge.await.expect("the task").expect("merge");
    }
    let config = repos.sessions.config(&id).await.expect("config");
    for i in 0..20 {
        assert_eq!(config[format!("key{i}")], json!(i), "key{i} was lost");
    }
    assert!(is_not_found(
        &repos
            .sessions
            .merge_config(&"nope".into(), patch(json!({})))
            .await,
        EntityKind::Session
    ));
    // Keys a JSON path cannot quote merge too (another way on SQLite).
    let odd = json!({"say \"hi\"": 1, "back\\slash": [null, true], "tab\there": {"x": null}});
    let merged = repos
        .sessions
        .merge_config(&id, patch(odd.clone()))
        .await
        .expect("odd keys");
    for (key, value) in odd.as_object().expect("an object") {
        assert_eq!(&merged[key], value, "{key}");
    }
    assert_eq!(repos.sessions.config(&id).await.expect("config"), merged);
    // Values keep nulls and nesting as they are (a shallow merge, not a
    // JSON merge patch, which would drop the nulls).
    let merged = repos
        .sessions
        .merge_config(
            &id,
            patch(json!({"metadata": {"a": null, "b": [1, {"c": null}]}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        merged["metadata"],
        json!({"a": null, "b": [1, {"c": null}]})
    );
    // A turn carries a merge in its transaction; a failed turn merges
    // nothing.
    let mut turn = crate::turn_builders::benchmark_turn(&id, 1);
    turn.config_patch = Some(patch(json!({"metadata": {"llm_usage": {"tokens": 7}}})));
    let recorded = repos.turns.record_turn(turn).await;
    assert!(
        matches!(
            recorded,
            Err(Error::NotFound {
                entity: EntityKind::ConceptElement,
                ..
            })
        ),
        "this session has no elements: {recorded:?}"
    );
    assert_eq!(
        repos.sessions.config(&id).await.expect("config")["metadata"],
        json!({"a": null, "b": [1, {"c": null}]}),
        "a failed turn merged its config"
    );
    let with_elements = a_session_with_elements(&repos).await;
    let mut turn = crate::turn_builders::benchmark_turn(&with_elements, 1);
    turn.config_patch = Some(patch(json!({"metadata": {"llm_usage": {"tokens": 7}}})));
    repos.turns.record_turn(turn).await.expect("turn");
    assert_eq!(
        repos.sessions.config(&with_elements).await.expect("config"),
        json!({"max_turns": 50, "metadata": {"llm_usage": {"tokens": 7}}})
    );
}

async fn a_state_with_negative_or_non_finite_values_is_refused_and_changes_nothing(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let before = repos.sessions.get(&id).await.expect("get");
    let good = SessionState::of(&before);
    for bad in [
        SessionState {
            surface_velocity_peak: f64::NAN,
            ..good.clone()
        },
        SessionState {
            canonical_velocity_peak: f64::INFINITY,
            ..good.clone()
        },
        SessionState {
            surface_velocity_peak: -0.0,
            ..good.clone()
        },
        SessionState {
            prev_surface_node_count: -1,
            ..good.clone()
        },
        SessionState {
            turn_count: -3,
            ..good.clone()
        },
    ] {
        let refused = repos.sessions.update_state(&id, bad.clone()).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(repos.sessions.get(&id).await.expect("get"), before);
}

async fn labels_are_found_whatever_their_case_in_any_script(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let graph = &repos.graph;
    for (stored, asked) in [
        ("Crème Brûlée", "CRÈME BRÛLÉE"),
        ("Straße", "STRASSE"),
        ("ΣΟΦΊΑ", "σοφία"),
        ("Офис", "оФИС"),
        ("İstanbul", "İSTANBUL"),
    ] {
        let node = graph
            .create_node(NewNode::new(&id, stored, "attribute"))
            .await
            .expect("node");
        let found = graph
            .find_node_by_label(&id, asked, "attribute")
            .await
            .expect("find");
        assert_eq!(found.map(|n| n.id), Some(node.id), "{asked} → {stored}");
    }
    // An exact match wins over an earlier node differing in case.
    graph
        .create_node(NewNode::new(&id, "latte", "attribute"))
        .await
        .expect("node");
    let exact = graph
        .create_node(NewNode::new(&id, "LATTE", "attribute"))
        .await
        .expect("node");
    let found = graph
        .find_node_by_label(&id, "LATTE", "attribute")
        .await
        .expect("find");
    assert_eq!(found.map(|n| n.id), Some(exact.id));
    // Another session's node is never found.
    let other = a_session(&repos).await;
    assert_eq!(
        graph
            .find_node_by_label(&other, "straße", "attribute")
            .await
            .expect("find"),
        None
    );
}

async fn similar_nodes_come_best_first_of_one_type_and_current_only(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let graph = &repos.graph;
    let node = |label: &str, node_type: &str, embedding: Option<Embedding>| NewNode {
        embedding,
        ..NewNode::new(&id, label, node_type)
    };
    let near = graph
        .create_node(node("near", "attribute", Some(embedding(0, 0.3))))
        .await
        .expect("near");
    let same = graph
        .create_node(node("same", "attribute", Some(embedding(0, 0.0))))
        .await
        .expect("same");
    graph
        .create_node(node("far", "attribute", Some(embedding(5, 0.0))))
        .await
        .expect("far");
    graph
        .create_node(node("other type", "value", Some(embedding(0, 0.0))))
        .await
        .expect("other type");
    graph
        .create_node(node("no embedding", "attribute", None))
        .await
        .expect("none");
    let replaced = graph
        .create_node(node("replaced", "attribute", Some(embedding(0, 0.01))))
        .await
        .expect("replaced");
    graph
        .supersede_node(&replaced.id, &near.id)
        .await
        .expect("supersede");

    let found = graph
        .find_similar_nodes(
            &id,
            "attribute",
            &embedding(0, 0.0),
            NODE_SIMILARITY_THRESHOLD,
        )
        .await
        .expect("similar");
    let ids: Vec<_> = found.iter().map(|(n, _)| n.id.clone()).collect();
    assert_eq!(ids, [same.id.clone(), near.id.clone()]);
    assert!((found[0].1 - 1.0).abs() < 1e-6, "{}", found[0].1);
    assert!(
        (found[1].1 - 1.0 / 1.09f64.sqrt()).abs() < 1e-6,
        "{}",
        found[1].1
    );
    assert_eq!(found[0].0, graph.node(&same.id).await.expect("get"));

    for bad in [f64::NAN, 1.5, -2.0] {
        let refused = graph
            .find_similar_nodes(&id, "attribute", &embedding(0, 0.0), bad)
            .await;
        assert!(matches!(refused, Err(Error::InvalidInput(_))), "{bad}");
    }
}

async fn a_node_keeps_its_stance_quotes_and_embedding_bytes(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let mut values: Vec<f32> = (0..EMBEDDING_DIMENSIONS).map(|i| i as f32 / 7.0).collect();
    values[0] = f32::from_bits(1);
    values[1] = -0.0;
    let stored = Embedding::new(values).expect("embedding");
    let node = repos
        .graph
        .create_node(NewNode {
            stance: Stance::Negative,
            embedding: Some(stored.clone()),
            source_quotes: vec!["« ça » 🙂".into()],
            ..NewNode::new(&id, "bytes", "attribute")
        })
        .await
        .expect("node");
    let read = repos.graph.node(&node.id).await.expect("get");
    assert_eq!(read, node);
    assert_eq!(read.stance, Stance::Negative);
    let bytes = read.embedding.expect("an embedding").to_le_bytes();
    assert_eq!(
        bytes,
        stored.to_le_bytes(),
        "every byte, −0 and subnormals too"
    );
    let length: i64 = crate::fixtures::query_one(
        db,
        &format!(
            "SELECT CAST({}(embedding) AS BIGINT) FROM kg_nodes WHERE id = '{}'",
            if db.backend() == interview_persistence::Backend::Postgres {
                "octet_length"
            } else {
                "length"
            },
            node.id
        ),
    )
    .await;
    assert_eq!(length, 1536);
    // The database holds the stance to −1, 0 and 1 whoever writes.
    let refused = crate::fixtures::exec(
        db,
        &format!("UPDATE kg_nodes SET stance = 2 WHERE id = '{}'", node.id),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::InvalidValue(_))),
        "{refused:?}"
    );
    // An embedding of the wrong length is refused before any write.
    assert!(Embedding::new(vec![0.0; 383]).is_err());
    assert!(Embedding::from_le_bytes(&[0; 1535]).is_err());
    assert!(Embedding::new(vec![f32::NAN; EMBEDDING_DIMENSIONS]).is_err());
}

fn slot(session: &SessionId, name: &str, embedding: Option<Embedding>) -> NewSlot {
    NewSlot {
        session_id: session.clone(),
        slot_name: name.into(),
        description: Some(format!("about {name}")),
        node_type: "attribute".into(),
        first_seen_turn: 1,
        embedding,
        status: SlotStatus::Candidate,
    }
}

async fn slots_are_created_found_promoted_once_and_found_by_similarity(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let canonical = &repos.canonical;
    let energy = canonical
        .create_slot(slot(&id, "energy_stability", Some(embedding(0, 0.0))))
        .await
        .expect("slot");
    assert!(energy.id.starts_with("slot_"));
    assert_eq!(
        (energy.status, energy.support_count),
        (SlotStatus::Candidate, 0)
    );
    assert_eq!(canonical.slot(&energy.id).await.expect("get"), energy);
    assert!(is_not_found(
        &canonical.slot(&"slot_x".into()).await,
        EntityKind::Slot
    ));
    let duplicate = canonical
        .create_slot(slot(&id, "energy_stability", None))
        .await;
    assert!(
        matches!(
            &duplicate,
            Err(Error::Conflict {
                conflict: ConflictKind::DuplicateSlot { slot_name, .. },
                ..
            }) if slot_name == "energy_stability"
        ),
        "{duplicate:?}"
    );
    assert_eq!(
        canonical
            .find_slot(&id, "energy_stability", "attribute")
            .await
            .expect("find"),
        Some(energy.clone())
    );
    assert_eq!(
        canonical
            .find_slot(&id, "energy_stability", "value")
            .await
            .expect("find"),
        None
    );
    assert!(
        canonical
            .active_slots(&id, None)
            .await
            .expect("active")
            .is_empty()
    );

    let promoted = canonical
        .promote_slot(&energy.id, 3)
        .await
        .expect("promote");
    assert_eq!(
        (promoted.status, promoted.promoted_turn),
        (SlotStatus::Active, Some(3))
    );
    assert!(promoted.promoted_at.is_some());
    // Promoted again: the first promotion stays (Python overwrites it).
    let again = canonical.promote_slot(&energy.id, 7).await.expect("again");
    assert_eq!(again, promoted);
    assert_eq!(
        canonical
            .active_slots(&id, Some("attribute"))
            .await
            .expect("active"),
        std::slice::from_ref(&promoted)
    );
    assert!(
        canonical
            .active_slots(&id, Some("value"))
            .await
            .expect("active")
            .is_empty()
    );

    canonical
        .create_slot(slot(&id, "far", Some(embedding(9, 0.0))))
        .await
        .expect("slot");
    let candidate = canonical
        .create_slot(slot(&id, "candidate", Some(embedding(0, 0.1))))
        .await
        .expect("slot");
    let similar = canonical
        .find_similar_slots(
            &id,
            "attribute",
            &embedding(0, 0.05),
            0.8,
            SlotStatus::Active,
        )
        .await
        .expect("similar");
    assert_eq!(similar.len(), 1);
    assert_eq!(similar[0].0, promoted);
    let candidates = canonical
        .find_similar_slots(
            &id,
            "attribute",
            &embedding(0, 0.05),
            0.8,
            SlotStatus::Candidate,
        )
        .await
        .expect("similar");
    assert_eq!(
        candidates
            .iter()
            .map(|(s, _)| s.id.clone())
            .collect::<Vec<_>>(),
        [candidate.id]
    );
    assert!(matches!(
        canonical
            .create_slot(NewSlot {
                first_seen_turn: 0,
                ..slot(&id, "zero", None)
            })
            .await,
        Err(Error::InvalidInput(_))
    ));
}

async fn mapping_a_node_keeps_each_slots_support_equal_to_its_nodes(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let canonical = &repos.canonical;
    let a = canonical
        .create_slot(slot(&id, "a", None))
        .await
        .expect("a");
    let b = canonical
        .create_slot(slot(&id, "b", None))
        .await
        .expect("b");
    let node = repos
        .graph
        .create_node(NewNode::new(&id, "surface", "attribute"))
        .await
        .expect("node");
    let mapping = canonical
        .map_surface_to_slot(&node.id, &a.id, 0.91, 2)
        .await
        .expect("map");
    assert_eq!(
        canonical.mapping_of(&node.id).await.expect("mapping"),
        Some(mapping)
    );
    assert_eq!(canonical.slot(&a.id).await.expect("a").support_count, 1);
    // The same mapping again (a retried turn): support unchanged.
    canonical
        .map_surface_to_slot(&node.id, &a.id, 0.95, 3)
        .await
        .expect("again");
    assert_eq!(canonical.slot(&a.id).await.expect("a").support_count, 1);
    assert_eq!(
        canonical
            .mapping_of(&node.id)
            .await
            .expect("mapping")
            .map(|m| (m.similarity_score, m.assigned_turn)),
        Some((0.95, 3))
    );
    // Moved to another slot: the support moves with it.
    canonical
        .map_surface_to_slot(&node.id, &b.id, 0.85, 4)
        .await
        .expect("move");
    assert_eq!(canonical.slot(&a.id).await.expect("a").support_count, 0);
    assert_eq!(canonical.slot(&b.id).await.expect("b").support_count, 1);

    // Refused, changing nothing: a missing node or slot, another
    // session's slot, a similarity that is not a fraction.
    let other = a_session(&repos).await;
    let foreign = canonical
        .create_slot(slot(&other, "a", None))
        .await
        .expect("slot");
    assert!(is_not_found(
        &canonical
            .map_surface_to_slot(&"nope".into(), &a.id, 0.9, 1)
            .await,
        EntityKind::Node
    ));
    assert!(is_not_found(
        &canonical
            .map_surface_to_slot(&node.id, &"slot_nope".into(), 0.9, 1)
            .await,
        EntityKind::Slot
    ));
    assert!(matches!(
        canonical
            .map_surface_to_slot(&node.id, &foreign.id, 0.9, 1)
            .await,
        Err(Error::SessionMismatch(_))
    ));
    for bad in [f64::NAN, 1.01, -0.1] {
        assert!(matches!(
            canonical.map_surface_to_slot(&node.id, &a.id, bad, 1).await,
            Err(Error::InvalidInput(_))
        ));
    }
    assert_eq!(canonical.slot(&b.id).await.expect("b").support_count, 1);
    // Deleting the node deletes its mapping (cascade).
    crate::fixtures::exec(
        db,
        &format!("DELETE FROM kg_nodes WHERE id = '{}'", node.id),
    )
    .await
    .expect("delete the node");
    assert_eq!(canonical.mapping_of(&node.id).await.expect("mapping"), None);
}

/// Two surface edges between the slots' nodes.
async fn two_surface_edges(
    repos: &Repositories,
    id: &SessionId,
) -> (entity::EdgeId, entity::EdgeId) {
    let graph = &repos.graph;
    let n = |label: &'static str| graph.create_node(NewNode::new(id, label, "attribute"));
    let (x, y, z) = (
        n("x").await.expect("x"),
        n("y").await.expect("y"),
        n("z").await.expect("z"),
    );
    let xy = graph
        .create_edge(NewEdge {
            confidence: 0.6,
            ..NewEdge::new(id, &x.id, &y.id, EdgeType::LeadsTo)
        })
        .await
        .expect("edge");
    let xz = graph
        .create_edge(NewEdge {
            confidence: 0.9,
            ..NewEdge::new(id, &x.id, &z.id, EdgeType::LeadsTo)
        })
        .await
        .expect("edge");
    (xy.id, xz.id)
}

async fn canonical_edges_gather_each_surface_edge_once_even_when_added_at_once(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let canonical = &repos.canonical;
    let a = canonical
        .create_slot(slot(&id, "a", None))
        .await
        .expect("a");
    let b = canonical
        .create_slot(slot(&id, "b", None))
        .await
        .expect("b");
    let (xy, xz) = two_surface_edges(&repos, &id).await;

    let first = canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "leads_to", &xy)
        .await
        .expect("create");
    assert!(first.id.starts_with("cedge_"));
    assert_eq!(
        (first.support_count, first.surface_edge_ids.to_vec()),
        (1, vec![xy.to_string()])
    );
    let same = canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "leads_to", &xy)
        .await
        .expect("again");
    assert_eq!(same, first, "a surface edge counts once");

    // Many at once, of ids new and old: each id once, the count its length.
    let calls = (0..12).map(|i| {
        let canonical = repos.canonical.clone();
        let (id, a, b) = (id.clone(), a.id.clone(), b.id.clone());
        let edge = if i % 2 == 0 {
            xz.clone()
        } else {
            format!("surface-{i}").into()
        };
        tokio::spawn(async move {
            canonical
                .add_or_update_canonical_edge(&id, &a, &b, "leads_to", &edge)
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.expect("the task").expect("add");
    }
    let edges = canonical.canonical_edges(&id).await.expect("edges");
    assert_eq!(edges.len(), 1, "one canonical edge for (a, b, leads_to)");
    assert_eq!(edges[0].surface_edge_ids.len(), 2 + 6);
    assert_eq!(edges[0].support_count, 8);
    assert_eq!(
        canonical.canonical_edge(&edges[0].id).await.expect("get"),
        edges[0]
    );
    assert!(edges[0].updated_at >= first.updated_at);

    // Another type is another edge; a foreign or missing slot is refused.
    let other_type = canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "enables", &xy)
        .await
        .expect("another type");
    assert_ne!(other_type.id, first.id);
    let other = a_session(&repos).await;
    let foreign = canonical
        .create_slot(slot(&other, "f", None))
        .await
        .expect("slot");
    assert!(matches!(
        canonical
            .add_or_update_canonical_edge(&id, &a.id, &foreign.id, "leads_to", &xy)
            .await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(is_not_found(
        &canonical
            .add_or_update_canonical_edge(&id, &"slot_nope".into(), &b.id, "leads_to", &xy)
            .await,
        EntityKind::Slot
    ));
    assert!(is_not_found(
        &canonical.canonical_edge(&"cedge_nope".into()).await,
        EntityKind::CanonicalEdge
    ));
}

async fn the_slot_and_edge_reports_say_what_supports_them(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let canonical = &repos.canonical;
    let a = canonical
        .create_slot(slot(&id, "a", None))
        .await
        .expect("a");
    let b = canonical
        .create_slot(slot(&id, "b", None))
        .await
        .expect("b");
    canonical.promote_slot(&a.id, 1).await.expect("promote");
    canonical.promote_slot(&b.id, 1).await.expect("promote");
    let nodes = repos.graph.current_nodes(&id).await.expect("nodes");
    assert!(nodes.is_empty());
    let (xy, xz) = two_surface_edges(&repos, &id).await;
    let nodes = repos.graph.current_nodes(&id).await.expect("nodes");
    for node in &nodes[..2] {
        canonical
            .map_surface_to_slot(&node.id, &b.id, 0.9, 1)
            .await
            .expect("map");
    }
    canonical
        .map_surface_to_slot(&nodes[2].id, &a.id, 0.9, 1)
        .await
        .expect("map");

    let report = canonical.slots_with_provenance(&id).await.expect("report");
    assert_eq!(report.len(), 2);
    assert_eq!(report[0].slot.id, b.id, "most supported first");
    assert_eq!(
        report[0].surface_node_ids,
        [nodes[0].id.clone(), nodes[1].id.clone()]
    );
    assert_eq!(report[1].surface_node_ids, [nodes[2].id.clone()]);

    canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "leads_to", &xy)
        .await
        .expect("edge");
    canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "leads_to", &xz)
        .await
        .expect("edge");
    canonical
        .add_or_update_canonical_edge(&id, &b.id, &a.id, "leads_to", &"gone".into())
        .await
        .expect("edge");
    let edges = canonical.edges_with_confidence(&id).await.expect("edges");
    assert_eq!(edges[0].edge.support_count, 2);
    assert!((edges[0].average_confidence.expect("a mean") - 0.75).abs() < 1e-12);
    assert_eq!(edges[1].average_confidence, None, "no surface edge exists");

    let with_slots = canonical.nodes_with_slots(&id).await.expect("nodes");
    assert_eq!(with_slots.len(), 3);
    assert!(with_slots.iter().all(|n| n.mapping.is_some()));
    assert_eq!(with_slots[0].node.id, nodes[2].id, "newest first");
    assert_eq!(with_slots[0].slot_name.as_deref(), Some("a"));
}

async fn a_second_save_of_a_turns_signals_keeps_the_first(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let llm = NewSignals {
        session_id: id.clone(),
        turn_number: 1,
        llm_model: Some("gpt-test".into()),
        extraction_latency_ms: Some(812),
        extraction_errors: vec![],
        signals: Signals {
            uncertainty: Some(json!({"level": "high", "markers": ["maybe"]})),
            concept_depth: Some(json!({"depth": 3})),
            emotional: Some(serde_json::Value::Null),
            ..Signals::default()
        },
    };
    let first = repos.signals.save(llm.clone()).await.expect("save");
    let SignalsSaved::Saved(row) = &first else {
        panic!("the first save stores: {first:?}")
    };
    assert_eq!(row.emotional_signal, None, "a JSON null is stored as NULL");
    assert_eq!(row.extraction_errors.as_ref().map(|e| e.len()), Some(0));
    // The Python stage's second save of the turn: kept out, reported.
    let methodology = NewSignals {
        llm_model: Some("methodology_signals".into()),
        extraction_latency_ms: Some(0),
        signals: Signals::default(),
        ..llm.clone()
    };
    let second = repos.signals.save(methodology).await.expect("second save");
    assert_eq!(second, SignalsSaved::AlreadySaved(row.clone()));
    assert_eq!(
        repos.signals.of_turn(&id, 1).await.expect("get"),
        Some(row.clone())
    );

    // Saves of one turn at once: exactly one row, and every caller is
    // told which.
    let saves = (0..8).map(|i| {
        let signals = repos.signals.clone();
        let new = NewSignals {
            turn_number: 2,
            llm_model: Some(format!("model {i}")),
            ..llm.clone()
        };
        tokio::spawn(async move { signals.save(new).await })
    });
    let mut outcomes: Vec<SignalsSaved> = Vec::new();
    for save in saves.collect::<Vec<_>>() {
        outcomes.push(save.await.expect("the task").expect("save"));
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, SignalsSaved::Saved(_)))
            .count(),
        1
    );
    assert!(outcomes.iter().all(|o| o.row() == outcomes[0].row()));
    let all = repos.signals.all(&id).await.expect("all");
    assert_eq!(
        all.iter().map(|s| s.turn_number).collect::<Vec<_>>(),
        [1, 2]
    );

    assert!(matches!(
        repos
            .signals
            .save(NewSignals {
                turn_number: -1,
                ..llm.clone()
            })
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        repos
            .signals
            .save(NewSignals {
                extraction_latency_ms: Some(-5),
                ..llm.clone()
            })
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        repos
            .signals
            .save(NewSignals {
                session_id: "nope".into(),
                ..llm
            })
            .await,
        Err(Error::InvalidReference(_))
    ));
}

async fn an_export_holds_every_row_of_the_session_and_nothing_of_another(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session_with_elements(&repos).await;
    let other = a_session_with_elements(&repos).await;
    for session in [&id, &other] {
        for t in 1..=3 {
            repos
                .turns
                .record_turn(crate::turn_builders::benchmark_turn(session, t))
                .await
                .expect("turn");
        }
    }
    repos
        .utterances
        .save(utterance(&id, 0, Speaker::System, "What comes to mind?"))
        .await
        .expect("the opening question");
    let a = repos
        .canonical
        .create_slot(slot(&id, "a", None))
        .await
        .expect("slot");
    let b = repos
        .canonical
        .create_slot(slot(&id, "b", None))
        .await
        .expect("slot");
    let nodes = repos.graph.current_nodes(&id).await.expect("nodes");
    repos
        .canonical
        .map_surface_to_slot(&nodes[0].id, &a.id, 0.9, 1)
        .await
        .expect("map");
    let edges = repos.graph.edges(&id).await.expect("edges");
    repos
        .canonical
        .add_or_update_canonical_edge(&id, &a.id, &b.id, "leads_to", &edges[0].id)
        .await
        .expect("edge");
    repos
        .signals
        .save(NewSignals {
            session_id: id.clone(),
            turn_number: 1,
            llm_model: None,
            extraction_latency_ms: None,
            extraction_errors: vec!["timeout".into()],
            signals: Signals::default(),
        })
        .await
        .expect("signals");

    let export = repos.export.export(&id).await.expect("export");
    assert_eq!(export.session, repos.sessions.get(&id).await.expect("get"));
    assert_eq!(
        export.utterances,
        repos.utterances.transcript(&id).await.expect("transcript")
    );
    assert_eq!(
        export.utterances[0].turn_number, 0,
        "the opening question first"
    );
    assert_eq!(
        export.nodes,
        repos.graph.all_nodes(&id).await.expect("nodes")
    );
    assert_eq!(export.edges, edges);
    assert_eq!(
        export.scoring_history,
        repos.scoring.history(&id).await.expect("scores")
    );
    assert_eq!(export.scoring_history.len(), 3);
    assert_eq!(export.qualitative_signals.len(), 1);
    assert_eq!(export.canonical_slots.len(), 2);
    assert_eq!(export.slot_mappings.len(), 1);
    assert_eq!(export.canonical_edges.len(), 1);
    assert!(
        export.nodes.iter().all(|n| n.session_id == id)
            && export.edges.iter().all(|e| e.session_id == id)
            && export.utterances.iter().all(|u| u.session_id == id),
        "another session's rows leaked in"
    );
    let json = serde_json::to_value(&export).expect("JSON");
    assert_eq!(json["session"]["id"], json!(id.as_str()));
    assert!(is_not_found(
        &repos.export.export(&"nope".into()).await,
        EntityKind::Session
    ));
}

async fn record_turn_writes_stances_quotes_and_embeddings(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session_with_elements(&repos).await;
    let mut turn = crate::turn_builders::benchmark_turn(&id, 1);
    turn.nodes[0].stance = Stance::Positive;
    turn.nodes[0].source_quotes = vec!["I love it".into(), String::new()];
    turn.nodes[0].embedding = Some(embedding(3, 0.5));
    turn.nodes[1].embedding = None;
    let recorded = repos.turns.record_turn(turn).await.expect("turn");
    let first = repos.graph.node(&recorded.node_ids[0]).await.expect("node");
    assert_eq!(first.stance, Stance::Positive);
    assert_eq!(first.source_quotes.to_vec(), ["I love it"]);
    assert_eq!(first.embedding, Some(embedding(3, 0.5)));
    let second = repos.graph.node(&recorded.node_ids[1]).await.expect("node");
    assert_eq!((second.stance, second.embedding), (Stance::Neutral, None));
    let found = repos
        .graph
        .find_similar_nodes(&id, &first.node_type, &embedding(3, 0.5), 0.99)
        .await
        .expect("similar");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, first);
}

fn a_slot_for(session: &SessionId, name: &str) -> NewSlot {
    slot(session, name, None)
}

/// Two slots of the session, `a` and `b`.
async fn slots_a_and_b(
    repos: &Repositories,
    session: &SessionId,
) -> (entity::canonical_slot::Model, entity::canonical_slot::Model) {
    let mut made = Vec::new();
    for name in ["a", "b"] {
        made.push(
            repos
                .canonical
                .create_slot(a_slot_for(session, name))
                .await
                .expect("a slot"),
        );
    }
    let b = made.pop().expect("b");
    let a = made.pop().expect("a");
    (a, b)
}

async fn record_turn_writes_velocity_focus_mappings_canonical_edges_and_signals_at_once(
    db: &Database,
) {
    use interview_persistence::repositories::{
        NodeRef, TurnCanonicalEdge, TurnSignals, TurnSlotMapping, TurnVelocity,
    };
    let repos = Repositories::new(db);
    let id = a_session_with_elements(&repos).await;
    let (a, b) = slots_a_and_b(&repos, &id).await;
    let first = repos
        .turns
        .record_turn(crate::turn_builders::benchmark_turn(&id, 1))
        .await
        .expect("turn 1");
    let existing = first.node_ids[0].clone();
    repos
        .canonical
        .map_surface_to_slot(&existing, &a.id, 0.9, 1)
        .await
        .expect("map");

    let mut turn = crate::turn_builders::benchmark_turn(&id, 2);
    turn.velocity = Some(TurnVelocity {
        surface_velocity_peak: 4.0,
        prev_surface_node_count: 8,
        canonical_velocity_peak: 1.0,
        prev_canonical_node_count: 2,
    });
    turn.focus = Some(entity::FocusEntry {
        turn: 2,
        node_id: existing.to_string(),
        label: "ünïcode".into(),
        strategy: "ladder_up".into(),
    });
    turn.slot_mappings = vec![
        TurnSlotMapping {
            node: NodeRef::New(0),
            slot_id: a.id.clone(),
            similarity_score: 0.88,
        },
        // The earlier node moves from a to b.
        TurnSlotMapping {
            node: NodeRef::Existing(existing.clone()),
            slot_id: b.id.clone(),
            similarity_score: 0.81,
        },
    ];
    turn.canonical_edges = vec![TurnCanonicalEdge {
        source_slot_id: a.id.clone(),
        target_slot_id: b.id.clone(),
        edge_type: "leads_to".into(),
        surface_edge: 0,
    }];
    turn.node_tracker_state = Some(json!({"states": {"n": {"focus_count": 2}}}));
    turn.signals = Some(TurnSignals {
        llm_model: Some("gpt-test".into()),
        extraction_latency_ms: Some(40),
        extraction_errors: vec![],
        signals: Signals {
            reasoning: Some(json!({"kind": "causal"})),
            ..Signals::default()
        },
    });
    let recorded = repos.turns.record_turn(turn).await.expect("turn 2");

    let session = repos.sessions.get(&id).await.expect("session");
    assert_eq!(
        (
            session.turn_count,
            session.surface_velocity_peak,
            session.prev_surface_node_count
        ),
        (2, 4.0, 8)
    );
    assert_eq!(
        (
            session.canonical_velocity_peak,
            session.prev_canonical_node_count
        ),
        (1.0, 2)
    );
    assert_eq!(session.focus_history.len(), 1);
    assert_eq!(session.focus_history[0].label, "ünïcode");
    assert_eq!(
        session.node_tracker_state,
        Some(json!({"states": {"n": {"focus_count": 2}}}))
    );
    let mapped = repos
        .canonical
        .mapping_of(&recorded.node_ids[0])
        .await
        .expect("mapping")
        .expect("the new node is mapped");
    assert_eq!(
        (mapped.canonical_slot_id.clone(), mapped.assigned_turn),
        (a.id.clone(), 2)
    );
    assert_eq!(
        repos
            .canonical
            .mapping_of(&existing)
            .await
            .expect("mapping")
            .map(|m| m.canonical_slot_id),
        Some(b.id.clone())
    );
    assert_eq!(
        repos.canonical.slot(&a.id).await.expect("a").support_count,
        1
    );
    assert_eq!(
        repos.canonical.slot(&b.id).await.expect("b").support_count,
        1
    );
    let edges = repos.canonical.canonical_edges(&id).await.expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(
        edges[0].surface_edge_ids.to_vec(),
        [recorded.edge_ids[0].to_string()]
    );
    assert_eq!(edges[0].support_count, 1);
    let signals = repos
        .signals
        .of_turn(&id, 2)
        .await
        .expect("signals")
        .expect("saved");
    assert_eq!(signals.reasoning_signal, Some(json!({"kind": "causal"})));

    // A late turn (1 again is a duplicate; 0 is not a turn): a turn
    // recorded after a newer one leaves the velocity as the newer set it.
    let mut late = crate::turn_builders::benchmark_turn(&id, 3);
    late.velocity = Some(TurnVelocity {
        surface_velocity_peak: 9.0,
        prev_surface_node_count: 9,
        canonical_velocity_peak: 9.0,
        prev_canonical_node_count: 9,
    });
    let mut newest = crate::turn_builders::benchmark_turn(&id, 4);
    newest.velocity = Some(TurnVelocity {
        surface_velocity_peak: 5.0,
        prev_surface_node_count: 10,
        canonical_velocity_peak: 1.0,
        prev_canonical_node_count: 2,
    });
    repos.turns.record_turn(newest).await.expect("turn 4");
    repos.turns.record_turn(late).await.expect("turn 3, late");
    let session = repos.sessions.get(&id).await.expect("session");
    assert_eq!(
        (session.turn_count, session.surface_velocity_peak),
        (4, 5.0)
    );

    // Bad extras are refused before anything is written.
    let other = a_session(&repos).await;
    let foreign = repos
        .canonical
        .create_slot(a_slot_for(&other, "f"))
        .await
        .expect("slot");
    let before = crate::fixtures::contents(db.connection()).await;
    let mut bad = crate::turn_builders::benchmark_turn(&id, 5);
    bad.slot_mappings = vec![TurnSlotMapping {
        node: NodeRef::New(0),
        slot_id: foreign.id,
        similarity_score: 0.9,
    }];
    assert!(matches!(
        repos.turns.record_turn(bad).await,
        Err(Error::SessionMismatch(_))
    ));
    let mut bad = crate::turn_builders::benchmark_turn(&id, 5);
    bad.canonical_edges = vec![TurnCanonicalEdge {
        source_slot_id: a.id.clone(),
        target_slot_id: b.id.clone(),
        edge_type: "leads_to".into(),
        surface_edge: 99,
    }];
    assert!(matches!(
        repos.turns.record_turn(bad).await,
        Err(Error::InvalidInput(_))
    ));
    let mut bad = crate::turn_builders::benchmark_turn(&id, 5);
    bad.velocity = Some(TurnVelocity {
        surface_velocity_peak: f64::NAN,
        prev_surface_node_count: 0,
        canonical_velocity_peak: 0.0,
        prev_canonical_node_count: 0,
    });
    assert!(matches!(
        repos.turns.record_turn(bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(crate::fixtures::contents(db.connection()).await, before);
}

async fn a_turn_whose_canonical_edge_fails_leaves_no_row_of_it(db: &Database) {
    use interview_persistence::repositories::TurnCanonicalEdge;
    let repos = Repositories::new(db);
    let id = a_session_with_elements(&repos).await;
    let (a, b) = slots_a_and_b(&repos, &id).await;
    let trigger: &[&str] = match db.backend() {
        interview_persistence::Backend::Postgres => &[
            "CREATE FUNCTION refuse_canonical_edges() RETURNS trigger AS $$ BEGIN \
               RAISE EXCEPTION 'refused by a trigger'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT ON canonical_edges \
               FOR EACH ROW EXECUTE FUNCTION refuse_canonical_edges()",
        ],
        interview_persistence::Backend::Sqlite => {
            &["CREATE TRIGGER refuse BEFORE INSERT ON canonical_edges \
               BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"]
        }
    };
    for sql in trigger {
        crate::fixtures::exec(db, sql).await.expect("the trigger");
    }
    let before = crate::fixtures::contents(db.connection()).await;
    let mut turn = crate::turn_builders::benchmark_turn(&id, 1);
    turn.canonical_edges = vec![TurnCanonicalEdge {
        source_slot_id: a.id,
        target_slot_id: b.id,
        edge_type: "leads_to".into(),
        surface_edge: 0,
    }];
    let failed = repos.turns.record_turn(turn).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        crate::fixtures::contents(db.connection()).await,
        before,
        "a row of the failed turn was kept"
    );
}

async fn a_turns_canonical_edges_count_each_surface_edge_once_across_turns(db: &Database) {
    use interview_persistence::repositories::TurnCanonicalEdge;
    let repos = Repositories::new(db);
    let id = a_session_with_elements(&repos).await;
    let (a, b) = slots_a_and_b(&repos, &id).await;
    let edge = |surface_edge| TurnCanonicalEdge {
        source_slot_id: a.id.clone(),
        target_slot_id: b.id.clone(),
        edge_type: "leads_to".into(),
        surface_edge,
    };
    let mut recorded = Vec::new();
    for t in 1..=2 {
        let mut turn = crate::turn_builders::benchmark_turn(&id, t);
        // Turn 1 names its edge 0 twice; turn 2 adds its edges 0 and 1.
        turn.canonical_edges = if t == 1 {
            vec![edge(0), edge(0)]
        } else {
            vec![edge(0), edge(1)]
        };
        recorded.push(repos.turns.record_turn(turn).await.expect("turn"));
    }
    let edges = repos.canonical.canonical_edges(&id).await.expect("edges");
    assert_eq!(edges.len(), 1);
    assert_eq!(
        edges[0].surface_edge_ids.to_vec(),
        [
            recorded[0].edge_ids[0].to_string(),
            recorded[1].edge_ids[0].to_string(),
            recorded[1].edge_ids[1].to_string()
        ]
    );
    assert_eq!(edges[0].support_count, 3);
}

async fn concurrent_mappings_and_moves_leave_each_slots_support_equal_to_its_nodes(db: &Database) {
    let repos = Repositories::new(db);
    let id = a_session(&repos).await;
    let (a, b) = slots_a_and_b(&repos, &id).await;
    let mut nodes = Vec::new();
    for i in 0..8 {
        nodes.push(
            repos
                .graph
                .create_node(NewNode::new(&id, &format!("n{i}"), "attribute"))
                .await
                .expect("node")
                .id,
        );
    }
    // Each node mapped to one slot and moved to the other, the calls of
    // all nodes at once, in opposite directions.
    let calls: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let canonical = repos.canonical.clone();
            let node = node.clone();
            let (first, second) = if i % 2 == 0 {
                (a.id.clone(), b.id.clone())
            } else {
                (b.id.clone(), a.id.clone())
            };
            tokio::spawn(async move {
                // Slots are locked in one order: no deadlock, so no
                // call fails (PostgreSQL reports a deadlock as `Busy`).
                for (slot, turn) in [(&first, 1), (&second, 2), (&first, 3)] {
                    canonical
                        .map_surface_to_slot(&node, slot, 0.9, turn)
                        .await
                        .expect("map");
                }
            })
        })
        .collect();
    for call in calls {
        call.await.expect("the task");
    }
    for slot in [&a.id, &b.id] {
        let mapped = repos
            .canonical
            .nodes_with_slots(&id)
            .await
            .expect("nodes")
            .iter()
            .filter(|n| {
                n.mapping
                    .as_ref()
                    .is_some_and(|m| &m.canonical_slot_id == slot)
            })
            .count();
        assert_eq!(mapped, 4);
        assert_eq!(
            repos
                .canonical
                .slot(slot)
                .await
                .expect("slot")
                .support_count,
            4,
            "support of {slot} differs from its nodes"
        );
    }
}
