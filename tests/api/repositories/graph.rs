//! The `graph` repository (`src/repositories/graph.rs`), on both backends.

use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use interview_persistence::repositories::{NewEdge, NewNode, NodeUpdate, Repositories};
use interview_persistence::{ConflictKind, Database, EntityKind, Error};
use serde_json::json;

use crate::fixtures::count;
use crate::on_both_backends;

use super::{is_not_found, new_session, utterance};

on_both_backends!(
    nodes_are_created_found_updated_and_superseded,
    superseding_and_edges_refuse_nodes_of_another_session,
    provenance_is_added_once_and_only_from_the_same_session,
    edges_are_created_found_and_refused_when_duplicated,
    the_graph_summary_counts_types_isolated_nodes_and_the_longest_chain,
);

async fn nodes_are_created_found_updated_and_superseded(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let graph = &repos.graph;
    let creamy = graph
        .create_node(NewNode::new(&session.id, "creamy", "attribute"))
        .await
        .expect("node");
    assert_eq!(graph.node(&creamy.id).await.expect("get"), creamy);
    assert!(is_not_found(
        &graph.node(&"nope".into()).await,
        EntityKind::Node
    ));
    assert!(matches!(
        graph
            .create_node(NewNode::new(&session.id, "creamy", "attribute"))
            .await,
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateCurrentNode { label, node_type, .. },
            ..
        }) if label == "creamy" && node_type == "attribute"
    ));
    let mut bad = NewNode::new(&session.id, "x", "attribute");
    bad.confidence = 1.5;
    assert!(matches!(
        graph.create_node(bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        graph
            .create_node(NewNode::new(&"no-such-session".into(), "x", "attribute"))
            .await,
        Err(Error::InvalidReference(_))
    ));

    let found = graph
        .find_current_node(&session.id, "creamy", "attribute")
        .await
        .expect("find");
    assert_eq!(found.as_ref().map(|n| &n.id), Some(&creamy.id));
    assert_eq!(
        graph
            .find_current_node(&session.id, "creamy", "value")
            .await
            .expect("find"),
        None
    );

    let updated = graph
        .update_node(
            &creamy.id,
            NodeUpdate {
                label: Some("very creamy".into()),
                confidence: Some(0.95),
                properties: Some(json!({"intensity": "high"})),
                source_quotes: None,
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.label, "very creamy");
    assert_eq!(updated.confidence, 0.95);
    assert_eq!(updated.properties, Some(json!({"intensity": "high"})));
    assert_eq!(graph.node(&creamy.id).await.expect("get"), updated);
    let tasty = graph
        .create_node(NewNode::new(&session.id, "tasty", "attribute"))
        .await
        .expect("node");
    assert!(matches!(
        graph
            .update_node(
                &tasty.id,
                NodeUpdate {
                    label: Some("very creamy".into()),
                    ..NodeUpdate::default()
                }
            )
            .await,
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateCurrentNode { label, .. },
            ..
        }) if label == "very creamy"
    ));
    assert!(matches!(
        graph
            .update_node(
                &tasty.id,
                NodeUpdate {
                    confidence: Some(-0.1),
                    ..NodeUpdate::default()
                }
            )
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(is_not_found(
        &graph
            .update_node(&"nope".into(), NodeUpdate::default())
            .await,
        EntityKind::Node
    ));

    // Supersede tasty by a new node; replace "very creamy" keeping its label.
    let delicious = graph
        .create_node(NewNode::new(&session.id, "delicious", "attribute"))
        .await
        .expect("node");
    let superseded = graph
        .supersede_node(&tasty.id, &delicious.id)
        .await
        .expect("supersede");
    assert_eq!(
        superseded.superseded_by.as_deref(),
        Some(delicious.id.as_str())
    );
    assert!(matches!(
        graph.supersede_node(&delicious.id, &delicious.id).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(
        matches!(
            graph.supersede_node(&delicious.id, &tasty.id).await,
            Err(Error::InvalidInput(_))
        ),
        "a superseded replacement"
    );
    assert!(is_not_found(
        &graph.supersede_node(&delicious.id, &"nope".into()).await,
        EntityKind::Node
    ));

    let (old, new) = graph
        .replace_node(
            &creamy.id,
            NewNode::new(&session.id, "very creamy", "attribute"),
        )
        .await
        .expect("replace keeping the label");
    assert_eq!(old.superseded_by.as_deref(), Some(new.id.as_str()));
    assert_eq!(graph.node(&new.id).await.expect("get").superseded_by, None);
    assert!(
        matches!(
            graph
                .replace_node(&creamy.id, NewNode::new(&session.id, "other", "attribute"))
                .await,
            Err(Error::InvalidInput(_))
        ),
        "replacing an already superseded node"
    );

    let current: Vec<String> = graph
        .current_nodes(&session.id)
        .await
        .expect("current")
        .into_iter()
        .map(|n| n.label)
        .collect();
    assert_eq!(current, ["delicious", "very creamy"]);
    assert_eq!(graph.all_nodes(&session.id).await.expect("all").len(), 4);
}

async fn superseding_and_edges_refuse_nodes_of_another_session(db: &Database) {
    let repos = Repositories::new(db);
    let one = repos.sessions.create(new_session()).await.expect("create");
    let two = repos.sessions.create(new_session()).await.expect("create");
    let a = repos
        .graph
        .create_node(NewNode::new(&one.id, "a", "attribute"))
        .await
        .expect("node");
    let b = repos
        .graph
        .create_node(NewNode::new(&two.id, "b", "attribute"))
        .await
        .expect("node");
    assert!(matches!(
        repos.graph.supersede_node(&a.id, &b.id).await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(matches!(
        repos
            .graph
            .replace_node(&a.id, NewNode::new(&two.id, "a2", "attribute"))
            .await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(matches!(
        repos
            .graph
            .create_edge(NewEdge::new(&one.id, &a.id, &b.id, EdgeType::LeadsTo))
            .await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(
        matches!(
            repos
                .graph
                .create_edge(NewEdge::new(&two.id, &b.id, &b.id, EdgeType::LeadsTo))
                .await
                .map(|_| ()),
            Ok(())
        ),
        "a self-loop within one session is an edge like any other"
    );
    assert!(is_not_found(
        &repos
            .graph
            .create_edge(NewEdge::new(
                &one.id,
                &a.id,
                &"nope".into(),
                EdgeType::LeadsTo
            ))
            .await,
        EntityKind::Node
    ));
    assert_eq!(
        repos.graph.node(&a.id).await.expect("get").superseded_by,
        None
    );
    assert_eq!(count(db, "kg_nodes").await, 2);
}

async fn provenance_is_added_once_and_only_from_the_same_session(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let other = repos.sessions.create(new_session()).await.expect("create");
    let u1 = repos
        .utterances
        .save(utterance(&session.id, 1, Speaker::User, "a"))
        .await
        .expect("save");
    let u2 = repos
        .utterances
        .save(utterance(&session.id, 2, Speaker::User, "b"))
        .await
        .expect("save");
    let foreign = repos
        .utterances
        .save(utterance(&other.id, 1, Speaker::User, "c"))
        .await
        .expect("save");
    let mut new_node = NewNode::new(&session.id, "creamy", "attribute");
    new_node.source_utterance_ids = vec![u1.id.clone()];
    let node = repos.graph.create_node(new_node).await.expect("node");

    let node = repos
        .graph
        .add_node_provenance(&node.id, &u2.id)
        .await
        .expect("add");
    assert_eq!(
        node.source_utterance_ids.0,
        vec![u1.id.clone(), u2.id.clone()]
    );
    let node = repos
        .graph
        .add_node_provenance(&node.id, &u1.id)
        .await
        .expect("add again");
    assert_eq!(
        node.source_utterance_ids.0,
        vec![u1.id.clone(), u2.id.clone()],
        "no duplicate"
    );
    assert!(matches!(
        repos.graph.add_node_provenance(&node.id, &foreign.id).await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(is_not_found(
        &repos
            .graph
            .add_node_provenance(&node.id, &"nope".into())
            .await,
        EntityKind::Utterance
    ));
    assert!(is_not_found(
        &repos
            .graph
            .add_node_provenance(&"nope".into(), &u1.id)
            .await,
        EntityKind::Node
    ));

    let target = repos
        .graph
        .create_node(NewNode::new(&session.id, "tasty", "value"))
        .await
        .expect("node");
    let edge = repos
        .graph
        .create_edge(NewEdge::new(
            &session.id,
            &node.id,
            &target.id,
            EdgeType::LeadsTo,
        ))
        .await
        .expect("edge");
    assert!(edge.source_utterance_ids.is_empty());
    let edge = repos
        .graph
        .add_edge_provenance(&edge.id, &u2.id)
        .await
        .expect("add");
    let edge = repos
        .graph
        .add_edge_provenance(&edge.id, &u2.id)
        .await
        .expect("add again");
    assert_eq!(edge.source_utterance_ids.0, vec![u2.id.clone()]);
    assert!(matches!(
        repos.graph.add_edge_provenance(&edge.id, &foreign.id).await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(is_not_found(
        &repos
            .graph
            .add_edge_provenance(&"nope".into(), &u2.id)
            .await,
        EntityKind::Edge
    ));
}

async fn edges_are_created_found_and_refused_when_duplicated(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let a = repos
        .graph
        .create_node(NewNode::new(&session.id, "a", "attribute"))
        .await
        .expect("node");
    let b = repos
        .graph
        .create_node(NewNode::new(&session.id, "b", "value"))
        .await
        .expect("node");
    let mut new_edge = NewEdge::new(&session.id, &a.id, &b.id, EdgeType::LeadsTo);
    new_edge.confidence = 0.7;
    new_edge.properties = json!({"strength": 2});
    let edge = repos
        .graph
        .create_edge(new_edge.clone())
        .await
        .expect("edge");
    assert_eq!(edge.confidence, 0.7);
    assert!(matches!(
        repos.graph.create_edge(new_edge.clone()).await,
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateEdge { source_node_id, target_node_id, edge_type },
            ..
        }) if source_node_id == a.id && target_node_id == b.id && edge_type == "leads_to"
    ));
    new_edge.confidence = 2.0;
    assert!(matches!(
        repos.graph.create_edge(new_edge).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        repos
            .graph
            .find_edge(&a.id, &b.id, EdgeType::LeadsTo)
            .await
            .expect("find"),
        Some(edge.clone())
    );
    assert_eq!(
        repos
            .graph
            .find_edge(&a.id, &b.id, EdgeType::Revises)
            .await
            .expect("find"),
        None
    );
    let revision = repos
        .graph
        .create_edge(NewEdge::new(&session.id, &b.id, &a.id, EdgeType::Revises))
        .await
        .expect("another type");
    assert_eq!(
        repos.graph.edges(&session.id).await.expect("edges"),
        [edge, revision]
    );
}

async fn the_graph_summary_counts_types_isolated_nodes_and_the_longest_chain(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let graph = &repos.graph;
    let empty = graph
        .summary(&session.id)
        .await
        .expect("summary of nothing");
    assert_eq!(
        (
            empty.current_nodes,
            empty.edges,
            empty.longest_leads_to_chain
        ),
        (0, 0, 0)
    );

    let mut ids = Vec::new();
    for (label, node_type) in [
        ("a", "attribute"),
        ("b", "functional_consequence"),
        ("c", "psychosocial_consequence"),
        ("d", "value"),
        ("lonely", "attribute"),
        ("old", "attribute"),
    ] {
        ids.push(
            graph
                .create_node(NewNode::new(&session.id, label, node_type))
                .await
                .expect("node")
                .id,
        );
    }
    let link =
        |s: usize, t: usize, edge_type| NewEdge::new(&session.id, &ids[s], &ids[t], edge_type);
    for (s, t) in [(0, 1), (1, 2), (2, 3), (3, 1)] {
        graph
            .create_edge(link(s, t, EdgeType::LeadsTo))
            .await
            .expect("leads_to");
    }
    graph
        .create_edge(link(0, 3, EdgeType::Revises))
        .await
        .expect("revises");
    graph
        .create_edge(link(5, 0, EdgeType::LeadsTo))
        .await
        .expect("edge from a node about to be superseded");
    graph
        .supersede_node(&ids[5], &ids[0])
        .await
        .expect("supersede old");

    let summary = graph.summary(&session.id).await.expect("summary");
    assert_eq!(summary.current_nodes, 5);
    assert_eq!(
        summary.edges, 5,
        "the edge from the superseded node is left out"
    );
    assert_eq!(summary.nodes_by_type.get("attribute"), Some(&2));
    assert_eq!(summary.nodes_by_type.get("value"), Some(&1));
    assert_eq!(summary.edges_by_type.get("leads_to"), Some(&4));
    assert_eq!(summary.edges_by_type.get("revises"), Some(&1));
    assert_eq!(summary.isolated_nodes, [ids[4].clone()]);
    assert!(summary.has_leads_to_cycle, "b → c → d → b");
    assert_eq!(summary.longest_leads_to_chain, 3, "a → b → c → d");
}
