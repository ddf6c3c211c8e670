//! Every repository call, with its error cases, on both backends.

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::session::SessionStatus;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewConceptElement, NewEdge, NewNode, NewScores, NewSession, NewUtterance, NodeUpdate,
    Repositories, TurnScores,
};
use interview_persistence::{Database, Error};
use serde_json::json;

use crate::fixtures::count;
use crate::on_both_backends;

on_both_backends!(
    sessions_are_created_read_listed_and_deleted,
    session_status_and_metrics_and_config_change_as_asked,
    a_session_and_its_elements_are_created_together_or_not_at_all,
    utterances_come_back_in_conversation_order,
    utterances_are_refused_for_a_repeated_turn_an_unknown_session_or_turn_zero,
    nodes_are_created_found_updated_and_superseded,
    superseding_and_edges_refuse_nodes_of_another_session,
    provenance_is_added_once_and_only_from_the_same_session,
    edges_are_created_found_and_refused_when_duplicated,
    the_graph_summary_counts_types_isolated_nodes_and_the_longest_chain,
    scores_are_saved_once_per_turn_and_read_in_turn_order,
    elements_are_seeded_covered_once_and_summarised,
);

pub fn new_session() -> NewSession {
    NewSession {
        id: None,
        methodology: "means_end_chain".into(),
        concept_id: "oat-milk".into(),
        concept_name: "Oat milk latte".into(),
        config: json!({"max_turns": 50}),
    }
}

pub fn element(id: &str, priority: Priority) -> NewConceptElement {
    NewConceptElement {
        element_id: id.into(),
        label: format!("Element {id}"),
        element_type: "attribute".into(),
        priority,
    }
}

fn utterance(session_id: &str, turn: i32, speaker: Speaker, text: &str) -> NewUtterance {
    NewUtterance {
        session_id: session_id.into(),
        turn_number: turn,
        speaker,
        text: text.into(),
        discourse_markers: vec!["because".into()],
    }
}

fn scores(session_id: &str, turn: i32, strategy: &str) -> NewScores {
    NewScores {
        session_id: session_id.into(),
        turn_number: turn,
        scores: TurnScores {
            coverage_score: f64::from(turn) / 100.0,
            depth_score: 0.5,
            saturation_score: 0.1,
            novelty_score: Some(0.9),
            richness_score: None,
            strategy_selected: strategy.into(),
            strategy_reasoning: None,
            scorer_details: json!({}),
        },
    }
}

fn is_not_found(result: &Result<impl std::fmt::Debug, Error>, entity: &str) -> bool {
    matches!(result, Err(Error::NotFound { entity: e, .. }) if *e == entity)
}

async fn sessions_are_created_read_listed_and_deleted(db: &Database) {
    let repos = Repositories::new(db);
    let first = repos.sessions.create(new_session()).await.expect("create");
    assert_eq!(
        uuid::Uuid::parse_str(&first.id)
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
        Err(Error::Conflict(_))
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
        .map(|s| s.id)
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
        .map(|s| s.id)
        .collect();
    assert_eq!(active, [second.id.clone(), first.id.clone()]);
    assert_eq!(repos.sessions.list(None, 1).await.expect("limit").len(), 1);

    repos.sessions.delete(&second.id).await.expect("delete");
    assert!(is_not_found(
        &repos.sessions.get(&second.id).await,
        "sessions"
    ));
    assert!(is_not_found(
        &repos.sessions.delete(&second.id).await,
        "sessions"
    ));
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
            .update_status("nope", SessionStatus::Completed)
            .await,
        "sessions"
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
    assert_eq!(
        repos
            .sessions
            .get(&session.id)
            .await
            .expect("get")
            .turn_count,
        7
    );
    assert!(matches!(
        repos.sessions.update_metrics(&session.id, -1, 0.0).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(is_not_found(
        &repos.sessions.update_metrics("nope", 1, 0.1).await,
        "sessions"
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
        &repos.sessions.config("nope").await,
        "sessions"
    ));
    assert!(is_not_found(
        &repos.sessions.replace_config("nope", json!({})).await,
        "sessions"
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
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
    assert!(
        is_not_found(&repos.sessions.get("doomed").await, "sessions"),
        "the session stayed"
    );
    assert_eq!(count(db, "concept_elements").await, 2);
}

async fn utterances_come_back_in_conversation_order(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let mut saved = Vec::new();
    for turn in 1..=4 {
        for (speaker, text) in [(Speaker::System, "question"), (Speaker::User, "answer")] {
            saved.push(
                repos
                    .utterances
                    .save(utterance(
                        &session.id,
                        turn,
                        speaker,
                        &format!("{text} {turn}"),
                    ))
                    .await
                    .expect("save"),
            );
        }
    }
    assert_eq!(
        repos
            .utterances
            .transcript(&session.id)
            .await
            .expect("transcript"),
        saved
    );
    assert_eq!(
        repos.utterances.last(&session.id, 3).await.expect("last 3"),
        saved[5..]
    );
    assert_eq!(
        repos
            .utterances
            .last(&session.id, 100)
            .await
            .expect("all")
            .len(),
        8
    );
    assert_eq!(
        repos
            .utterances
            .of_turn(&session.id, 2)
            .await
            .expect("turn 2"),
        saved[2..4]
    );
    assert_eq!(saved[0].discourse_markers, Some(["because"].into()));
    assert!(
        repos
            .utterances
            .transcript("other")
            .await
            .expect("empty")
            .is_empty()
    );
}

async fn utterances_are_refused_for_a_repeated_turn_an_unknown_session_or_turn_zero(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    repos
        .utterances
        .save(utterance(&session.id, 1, Speaker::User, "a"))
        .await
        .expect("save");
    assert!(matches!(
        repos
            .utterances
            .save(utterance(&session.id, 1, Speaker::User, "again"))
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        repos
            .utterances
            .save(utterance("no-such-session", 1, Speaker::User, "a"))
            .await,
        Err(Error::InvalidReference(_))
    ));
    assert!(matches!(
        repos
            .utterances
            .save(utterance(&session.id, 0, Speaker::User, "a"))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(count(db, "utterances").await, 1);
}

async fn nodes_are_created_found_updated_and_superseded(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let graph = &repos.graph;
    let creamy = graph
        .create_node(NewNode::new(&session.id, "creamy", "attribute"))
        .await
        .expect("node");
    assert_eq!(graph.node(&creamy.id).await.expect("get"), creamy);
    assert!(is_not_found(&graph.node("nope").await, "kg_nodes"));
    assert!(matches!(
        graph
            .create_node(NewNode::new(&session.id, "creamy", "attribute"))
            .await,
        Err(Error::Conflict(_))
    ));
    let mut bad = NewNode::new(&session.id, "x", "attribute");
    bad.confidence = 1.5;
    assert!(matches!(
        graph.create_node(bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        graph
            .create_node(NewNode::new("no-such-session", "x", "attribute"))
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
        Err(Error::Conflict(_))
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
        &graph.update_node("nope", NodeUpdate::default()).await,
        "kg_nodes"
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
        &graph.supersede_node(&delicious.id, "nope").await,
        "kg_nodes"
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
            .create_edge(NewEdge::new(&one.id, &a.id, "nope", EdgeType::LeadsTo))
            .await,
        "kg_nodes"
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
        &repos.graph.add_node_provenance(&node.id, "nope").await,
        "utterances"
    ));
    assert!(is_not_found(
        &repos.graph.add_node_provenance("nope", &u1.id).await,
        "kg_nodes"
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
        &repos.graph.add_edge_provenance("nope", &u2.id).await,
        "kg_edges"
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
        Err(Error::Conflict(_))
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

async fn scores_are_saved_once_per_turn_and_read_in_turn_order(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    assert_eq!(
        repos.scoring.latest(&session.id).await.expect("latest"),
        None
    );
    for (turn, strategy) in [(2, "broaden"), (1, "deepen"), (3, "deepen"), (4, "close")] {
        repos
            .scoring
            .save(scores(&session.id, turn, strategy))
            .await
            .expect("save");
    }
    assert!(matches!(
        repos.scoring.save(scores(&session.id, 2, "again")).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        repos.scoring.save(scores("nope", 1, "x")).await,
        Err(Error::InvalidReference(_))
    ));
    assert!(matches!(
        repos.scoring.save(scores(&session.id, 0, "x")).await,
        Err(Error::InvalidInput(_))
    ));
    let turns: Vec<i32> = repos
        .scoring
        .history(&session.id)
        .await
        .expect("history")
        .iter()
        .map(|s| s.turn_number)
        .collect();
    assert_eq!(turns, [1, 2, 3, 4]);
    let latest = repos
        .scoring
        .latest(&session.id)
        .await
        .expect("latest")
        .expect("some");
    assert_eq!(
        (latest.turn_number, latest.strategy_selected.as_str()),
        (4, "close")
    );
    assert_eq!(latest.novelty_score, Some(0.9));
    assert_eq!(latest.richness_score, None);
    assert_eq!(
        repos
            .scoring
            .last_strategies(&session.id, 3)
            .await
            .expect("last 3"),
        ["broaden", "deepen", "close"]
    );
}

async fn elements_are_seeded_covered_once_and_summarised(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let other = repos.sessions.create(new_session()).await.expect("create");
    let seeded = repos
        .concept_elements
        .seed(
            &session.id,
            vec![
                element("e0", Priority::High),
                element("e1", Priority::High),
                element("e2", Priority::Low),
            ],
        )
        .await
        .expect("seed");
    assert_eq!(seeded.len(), 3);
    assert!(matches!(
        repos
            .concept_elements
            .seed(
                &session.id,
                vec![element("e3", Priority::Low), element("e0", Priority::Low)]
            )
            .await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        repos
            .concept_elements
            .elements(&session.id)
            .await
            .expect("elements")
            .len(),
        3,
        "all or nothing"
    );
    assert!(matches!(
        repos
            .concept_elements
            .seed("nope", vec![element("e0", Priority::Low)])
            .await,
        Err(Error::InvalidReference(_))
    ));

    let first = repos
        .graph
        .create_node(NewNode::new(&session.id, "creamy", "attribute"))
        .await
        .expect("node");
    let second = repos
        .graph
        .create_node(NewNode::new(&session.id, "tasty", "attribute"))
        .await
        .expect("node");
    let foreign = repos
        .graph
        .create_node(NewNode::new(&other.id, "x", "attribute"))
        .await
        .expect("node");
    let covered = repos
        .concept_elements
        .mark_covered(&session.id, "e0", &first.id)
        .await
        .expect("cover");
    assert!(covered.is_covered);
    assert_eq!(
        covered.covered_by_node_id.as_deref(),
        Some(first.id.as_str())
    );
    let covered_at = covered.covered_at.expect("a time");
    let again = repos
        .concept_elements
        .mark_covered(&session.id, "e0", &second.id)
        .await
        .expect("cover again");
    assert_eq!(
        again.covered_by_node_id.as_deref(),
        Some(first.id.as_str()),
        "the first node stays"
    );
    assert_eq!(again.covered_at, Some(covered_at));
    assert!(matches!(
        repos
            .concept_elements
            .mark_covered(&session.id, "e1", &foreign.id)
            .await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(is_not_found(
        &repos
            .concept_elements
            .mark_covered(&session.id, "e9", &first.id)
            .await,
        "concept_elements"
    ));
    assert!(is_not_found(
        &repos
            .concept_elements
            .mark_covered(&session.id, "e1", "nope")
            .await,
        "kg_nodes"
    ));
    repos
        .concept_elements
        .mark_covered(&session.id, "e2", &second.id)
        .await
        .expect("cover e2");

    let summary = repos
        .concept_elements
        .coverage(&session.id)
        .await
        .expect("coverage");
    assert_eq!((summary.overall.covered, summary.overall.total), (2, 3));
    assert!((summary.overall.ratio() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        (
            summary.by_priority["high"].covered,
            summary.by_priority["high"].total
        ),
        (1, 2)
    );
    assert_eq!(
        (
            summary.by_priority["low"].covered,
            summary.by_priority["low"].total
        ),
        (1, 1)
    );
    assert!(!summary.by_priority.contains_key("medium"));
}
