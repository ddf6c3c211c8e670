//! The `concept_elements` repository (`src/repositories/concept_elements.rs`), on both backends.

use entity::concept_element::Priority;
use interview_persistence::repositories::{NewNode, Repositories};
use interview_persistence::{Database, Error};

use crate::on_both_backends;

use super::{element, is_not_found, new_session};

on_both_backends!(elements_are_seeded_covered_once_and_summarised,);

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
