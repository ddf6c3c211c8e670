//! The migrated schema (`migration/`): the database itself refuses what SCHEMA.md forbids, even when a writer
//! bypasses the entities with raw SQL, and every refusal arrives as the
//! same error kind on both backends.

use interview_persistence::{Database, Error};

use crate::fixtures::{TABLES, count, exec};
use crate::on_both_backends;

mod dual_graph;
mod edge_vocabulary;
mod erasure_counts;
mod sqlite_rebuild;

on_both_backends!(
    a_session_with_an_unknown_status_is_refused,
    an_utterance_with_an_unknown_speaker_is_refused,
    an_edge_with_an_unknown_type_is_refused,
    an_element_with_an_unknown_priority_is_refused,
    a_confidence_outside_zero_to_one_is_refused,
    a_second_current_node_with_the_same_label_and_type_is_refused,
    a_superseded_duplicate_node_is_allowed,
    a_duplicate_edge_is_refused,
    a_duplicate_utterance_turn_and_score_turn_and_element_are_refused,
    a_missing_required_value_is_refused,
    defaults_fill_every_optional_column,
    deleting_a_session_deletes_its_rows_in_every_table,
    deleting_a_node_unlinks_what_it_superseded_and_covered,
);

const SESSION: &str = "INSERT INTO sessions (id, methodology, concept_id, concept_name) \
                       VALUES ('s1', 'means_end_chain', 'oat-milk', 'Oat milk latte')";

fn node(id: &str, label: &str, superseded_by: Option<&str>) -> String {
    let superseded_by = superseded_by.map_or("NULL".to_owned(), |s| format!("'{s}'"));
    format!(
        "INSERT INTO kg_nodes (id, session_id, label, node_type, superseded_by) \
         VALUES ('{id}', 's1', '{label}', 'attribute', {superseded_by})"
    )
}

fn edge(id: &str, source: &str, target: &str, edge_type: &str) -> String {
    format!(
        "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) \
         VALUES ('{id}', 's1', '{source}', '{target}', '{edge_type}')"
    )
}

async fn setup(db: &Database) {
    exec(db, SESSION).await.expect("insert the session");
}

fn assert_invalid_value(result: Result<(), Error>) {
    assert!(
        matches!(result, Err(Error::InvalidValue(_))),
        "expected InvalidValue, got {result:?}"
    );
}

fn assert_conflict(result: Result<(), Error>) {
    assert!(
        matches!(
            result,
            Err(Error::Conflict {
                conflict: interview_persistence::ConflictKind::Other,
                ..
            })
        ),
        "expected an unattributed Conflict (raw SQL), got {result:?}"
    );
}

async fn a_session_with_an_unknown_status_is_refused(db: &Database) {
    assert_invalid_value(
        exec(
            db,
            "INSERT INTO sessions (id, methodology, concept_id, concept_name, status) \
             VALUES ('s1', 'm', 'c', 'n', 'paused')",
        )
        .await,
    );
    assert_eq!(count(db, "sessions").await, 0);
    exec(db, SESSION).await.expect("a valid session");
    assert_invalid_value(exec(db, "UPDATE sessions SET status = 'ACTIVE'").await);
}

async fn an_utterance_with_an_unknown_speaker_is_refused(db: &Database) {
    setup(db).await;
    assert_invalid_value(
        exec(
            db,
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
             VALUES ('u1', 's1', 1, 'moderator', 'hello')",
        )
        .await,
    );
    assert_eq!(count(db, "utterances").await, 0);
}

/// The vocabulary is the `edge_types` table: an unknown type names a row
/// that is not there, refused by the foreign key.
async fn an_edge_with_an_unknown_type_is_refused(db: &Database) {
    setup(db).await;
    exec(db, &node("n1", "creamy", None)).await.expect("node 1");
    exec(db, &node("n2", "tasty", None)).await.expect("node 2");
    let refused = exec(db, &edge("e1", "n1", "n2", "causes")).await;
    assert!(
        matches!(refused, Err(Error::InvalidReference(_))),
        "expected InvalidReference, got {refused:?}"
    );
    exec(db, &edge("e1", "n1", "n2", "leads_to"))
        .await
        .expect("a known type");
    exec(db, &edge("e2", "n2", "n1", "revises"))
        .await
        .expect("the other known type");
}

async fn an_element_with_an_unknown_priority_is_refused(db: &Database) {
    setup(db).await;
    assert_invalid_value(
        exec(
            db,
            "INSERT INTO concept_elements (id, session_id, element_id, label, priority) \
             VALUES ('c1', 's1', 'e0', 'Taste', 'urgent')",
        )
        .await,
    );
    assert_eq!(count(db, "concept_elements").await, 0);
}

async fn a_confidence_outside_zero_to_one_is_refused(db: &Database) {
    setup(db).await;
    for confidence in ["1.01", "-0.01"] {
        assert_invalid_value(
            exec(
                db,
                &format!(
                    "INSERT INTO kg_nodes (id, session_id, label, node_type, confidence) \
                     VALUES ('n1', 's1', 'creamy', 'attribute', {confidence})"
                ),
            )
            .await,
        );
    }
    for (id, confidence) in [("n0", "0"), ("n1", "1")] {
        exec(
            db,
            &format!(
                "INSERT INTO kg_nodes (id, session_id, label, node_type, confidence) \
                 VALUES ('{id}', 's1', 'label {id}', 'attribute', {confidence})"
            ),
        )
        .await
        .expect("the bounds are allowed");
    }
    exec(db, &edge("e1", "n0", "n1", "leads_to"))
        .await
        .expect("edge");
    assert_invalid_value(exec(db, "UPDATE kg_edges SET confidence = 2").await);
}

async fn a_second_current_node_with_the_same_label_and_type_is_refused(db: &Database) {
    setup(db).await;
    exec(db, &node("n1", "creamy", None))
        .await
        .expect("the first node");
    assert_conflict(exec(db, &node("n2", "creamy", None)).await);
    assert_eq!(count(db, "kg_nodes").await, 1);
    // Another type, or another session, is another node.
    exec(
        db,
        "INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('n3', 's1', 'creamy', 'value')",
    )
    .await
    .expect("same label, other type");
}

async fn a_superseded_duplicate_node_is_allowed(db: &Database) {
    setup(db).await;
    exec(db, &node("n1", "creamy", None))
        .await
        .expect("the first node");
    exec(
        db,
        "UPDATE kg_nodes SET label = 'creamy (old)' WHERE id = 'n1'",
    )
    .await
    .expect("rename");
    exec(db, &node("n2", "creamy", None))
        .await
        .expect("the replacement");
    exec(
        db,
        "UPDATE kg_nodes SET label = 'creamy', superseded_by = 'n2' WHERE id = 'n1'",
    )
    .await
    .expect("supersede the first");
    exec(db, &node("n3", "creamy", Some("n2")))
        .await
        .expect("another superseded one");
    assert_eq!(count(db, "kg_nodes").await, 3);
    // Making a superseded node current again collides with the current one.
    assert_conflict(
        exec(
            db,
            "UPDATE kg_nodes SET superseded_by = NULL WHERE id = 'n1'",
        )
        .await,
    );
}

async fn a_duplicate_edge_is_refused(db: &Database) {
    setup(db).await;
    exec(db, &node("n1", "creamy", None)).await.expect("node 1");
    exec(db, &node("n2", "tasty", None)).await.expect("node 2");
    exec(db, &edge("e1", "n1", "n2", "leads_to"))
        .await
        .expect("the edge");
    assert_conflict(exec(db, &edge("e2", "n1", "n2", "leads_to")).await);
    exec(db, &edge("e3", "n1", "n2", "revises"))
        .await
        .expect("another type is another edge");
    assert_eq!(count(db, "kg_edges").await, 2);
}

async fn a_duplicate_utterance_turn_and_score_turn_and_element_are_refused(db: &Database) {
    setup(db).await;
    let utterance = |id: &str, speaker: &str| {
        format!(
            "INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
             VALUES ('{id}', 's1', 1, '{speaker}', 'text')"
        )
    };
    exec(db, &utterance("u1", "user"))
        .await
        .expect("user turn 1");
    exec(db, &utterance("u2", "system"))
        .await
        .expect("system turn 1");
    assert_conflict(exec(db, &utterance("u3", "user")).await);
    assert_conflict(exec(db, &utterance("u1", "system")).await);

    let score = |id: &str| {
        format!(
            "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, \
             saturation_score, strategy_selected) VALUES ('{id}', 's1', 1, 0.1, 0.5, 0.1, 'deepen')"
        )
    };
    exec(db, &score("h1")).await.expect("turn 1 scores");
    assert_conflict(exec(db, &score("h2")).await);

    let element = |id: &str| {
        format!(
            "INSERT INTO concept_elements (id, session_id, element_id, label) VALUES ('{id}', 's1', 'e0', 'Taste')"
        )
    };
    exec(db, &element("c1")).await.expect("element e0");
    assert_conflict(exec(db, &element("c2")).await);
}

async fn a_missing_required_value_is_refused(db: &Database) {
    assert_invalid_value(
        exec(
            db,
            "INSERT INTO sessions (id, methodology, concept_id) VALUES ('s1', 'm', 'c')",
        )
        .await,
    );
    setup(db).await;
    assert_invalid_value(
        exec(
            db,
            "INSERT INTO utterances (id, session_id, turn_number, speaker) VALUES ('u1', 's1', 1, 'user')",
        )
        .await,
    );
}

async fn defaults_fill_every_optional_column(db: &Database) {
    setup(db).await;
    exec(db, &node("n1", "creamy", None)).await.expect("node");
    exec(db, &node("n2", "tasty", None)).await.expect("node");
    exec(db, &edge("e1", "n1", "n2", "leads_to"))
        .await
        .expect("edge");
    exec(
        db,
        "INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES ('u1', 's1', 1, 'user', 't')",
    )
    .await
    .expect("utterance");
    exec(
        db,
        "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, \
         saturation_score, strategy_selected) VALUES ('h1', 's1', 1, 0.1, 0.5, 0.1, 'deepen')",
    )
    .await
    .expect("score");
    exec(
        db,
        "INSERT INTO concept_elements (id, session_id, element_id, label) VALUES ('c1', 's1', 'e0', 'Taste')",
    )
    .await
    .expect("element");

    use entity::prelude::*;
    use sea_orm::EntityTrait;
    let conn = db.connection();
    let session = Session::find_by_id("s1")
        .one(conn)
        .await
        .expect("read")
        .expect("session");
    assert_eq!(session.status, entity::session::SessionStatus::Active);
    assert_eq!(session.config, serde_json::json!({}));
    assert_eq!(session.turn_count, 0);
    assert_eq!(session.coverage_score, Some(0.0));
    assert_eq!(session.completed_at, None);
    assert_eq!(session.created_at, session.updated_at);
    let age = chrono::Utc::now().naive_utc() - session.created_at;
    assert!(
        age.num_seconds().abs() < 60,
        "created_at is not the current UTC time: {age}"
    );

    let node = KgNode::find_by_id("n1")
        .one(conn)
        .await
        .expect("read")
        .expect("node");
    assert_eq!(node.confidence, 0.8);
    assert_eq!(node.properties, Some(serde_json::json!({})));
    assert!(node.source_utterance_ids.is_empty());
    let edge = KgEdge::find_by_id("e1")
        .one(conn)
        .await
        .expect("read")
        .expect("edge");
    assert_eq!(edge.confidence, 0.8);
    assert!(edge.source_utterance_ids.is_empty());
    let utterance = Utterance::find_by_id("u1")
        .one(conn)
        .await
        .expect("read")
        .expect("utterance");
    assert_eq!(
        utterance.discourse_markers,
        Some(entity::StringList::default())
    );
    let score = ScoringHistory::find_by_id("h1")
        .one(conn)
        .await
        .expect("read")
        .expect("score");
    assert_eq!((score.novelty_score, score.richness_score), (None, None));
    assert_eq!(score.scorer_details, Some(serde_json::json!({})));
    let element = ConceptElement::find_by_id("c1")
        .one(conn)
        .await
        .expect("read")
        .expect("element");
    assert_eq!(element.element_type, "attribute");
    assert_eq!(element.priority, entity::concept_element::Priority::Medium);
    assert!(!element.is_covered);
}

async fn deleting_a_session_deletes_its_rows_in_every_table(db: &Database) {
    setup(db).await;
    exec(
        db,
        "INSERT INTO sessions (id, methodology, concept_id, concept_name) VALUES ('s2', 'm', 'c', 'n')",
    )
    .await
    .expect("a second session");
    for session in ["s1", "s2"] {
        let rows = [
            format!(
                "INSERT INTO utterances (id, session_id, turn_number, speaker, text) VALUES ('u-{session}', '{session}', 1, 'user', 't')"
            ),
            format!(
                "INSERT INTO kg_nodes (id, session_id, label, node_type) VALUES ('a-{session}', '{session}', 'a', 'attribute')"
            ),
            format!(
                "INSERT INTO kg_nodes (id, session_id, label, node_type, superseded_by) VALUES ('b-{session}', '{session}', 'a', 'attribute', 'a-{session}')"
            ),
            format!(
                "INSERT INTO kg_edges (id, session_id, source_node_id, target_node_id, edge_type) VALUES ('e-{session}', '{session}', 'a-{session}', 'b-{session}', 'leads_to')"
            ),
            format!(
                "INSERT INTO scoring_history (id, session_id, turn_number, coverage_score, depth_score, saturation_score, strategy_selected) VALUES ('h-{session}', '{session}', 1, 0.1, 0.5, 0.1, 'deepen')"
            ),
            format!(
                "INSERT INTO concept_elements (id, session_id, element_id, label, is_covered, covered_by_node_id) VALUES ('c-{session}', '{session}', 'e0', 'Taste', TRUE, 'a-{session}')"
            ),
        ];
        for row in rows {
            exec(db, &row).await.expect("insert a row");
        }
    }
    exec(db, "DELETE FROM sessions WHERE id = 's1'")
        .await
        .expect("delete the session");
    for table in TABLES {
        let expected = if table == "kg_nodes" { 2 } else { 1 };
        assert_eq!(count(db, table).await, expected, "rows left in {table}");
    }
    let other_session_rows = count(db, "kg_nodes WHERE session_id = 's2'").await;
    assert_eq!(other_session_rows, 2, "the other session lost rows");
}

async fn deleting_a_node_unlinks_what_it_superseded_and_covered(db: &Database) {
    setup(db).await;
    exec(db, &node("new", "creamy", None))
        .await
        .expect("the replacement");
    exec(db, &node("old", "creamy", Some("new")))
        .await
        .expect("the superseded node");
    exec(
        db,
        "INSERT INTO concept_elements (id, session_id, element_id, label, is_covered, covered_by_node_id) \
         VALUES ('c1', 's1', 'e0', 'Taste', TRUE, 'new')",
    )
    .await
    .expect("an element covered by the node");

    exec(db, "DELETE FROM kg_nodes WHERE id = 'new'")
        .await
        .expect("delete the node");

    assert_eq!(
        count(db, "kg_nodes WHERE id = 'old' AND superseded_by IS NULL").await,
        1
    );
    assert_eq!(
        count(
            db,
            "concept_elements WHERE id = 'c1' AND covered_by_node_id IS NULL AND is_covered"
        )
        .await,
        1,
        "the element stays covered, without its node"
    );
}
