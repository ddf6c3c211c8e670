//! The `concept_elements` repository (`src/repositories/concept_elements.rs`), on both backends.

use entity::concept_element::Priority;
use interview_persistence::repositories::{NewNode, Repositories};
use interview_persistence::{ConflictKind, Database, EntityKind, Error};

use crate::on_both_backends;

use super::{element, is_not_found, new_session};

on_both_backends!(
    elements_are_seeded_covered_once_and_summarised,
    elements_list_in_byte_order_on_both_backends,
);

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
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateElement { element_id, .. },
            ..
        }) if element_id == "e0"
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
            .seed(&"nope".into(), vec![element("e0", Priority::Low)])
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
        .mark_covered(&session.id, &"e0".into(), &first.id)
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
        .mark_covered(&session.id, &"e0".into(), &second.id)
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
            .mark_covered(&session.id, &"e1".into(), &foreign.id)
            .await,
        Err(Error::SessionMismatch(_))
    ));
    assert!(is_not_found(
        &repos
            .concept_elements
            .mark_covered(&session.id, &"e9".into(), &first.id)
            .await,
        EntityKind::ConceptElement
    ));
    assert!(is_not_found(
        &repos
            .concept_elements
            .mark_covered(&session.id, &"e1".into(), &"nope".into())
            .await,
        EntityKind::Node
    ));
    repos
        .concept_elements
        .mark_covered(&session.id, &"e2".into(), &second.id)
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

/// Text is ordered by its bytes on both backends: a PostgreSQL database
/// with a language's collation would put `a` before `B` and ignore case
/// and accents at first (see the ICU test below for such a database).
async fn elements_list_in_byte_order_on_both_backends(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos.sessions.create(new_session()).await.expect("create");
    let ids = ["b", "B", "a-2", "a1", "Z", "é", "10", "9"];
    repos
        .concept_elements
        .seed(
            &session.id,
            ids.iter().map(|id| element(id, Priority::Low)).collect(),
        )
        .await
        .expect("seed");
    let listed: Vec<String> = repos
        .concept_elements
        .elements(&session.id)
        .await
        .expect("elements")
        .into_iter()
        .map(|e| e.element_id.into_string())
        .collect();
    let mut by_bytes: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    by_bytes.sort();
    assert_eq!(listed, by_bytes);
}

/// The same on a PostgreSQL database whose collation is a language's (ICU
/// `en-US`), where ordering by the column alone gives `a1, a-2, b, B, é, …`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elements_list_in_byte_order_on_a_postgres_database_with_a_language_collation() {
    use sea_orm::ConnectionTrait;
    let Ok(maintenance) = std::env::var(crate::helpers::POSTGRES_TEST_URL) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but POSTGRES_TEST_URL is unset"
        );
        eprintln!("SKIPPED (PostgreSQL): POSTGRES_TEST_URL is unset");
        return;
    };
    let name = format!("interview_test_icu_{}", std::process::id());
    let admin = sea_orm::Database::connect(maintenance.as_str())
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop");
    admin
        .execute_unprepared(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
        .await
        .expect("an ICU database");
    let mut url = url::Url::parse(&maintenance).expect("url");
    url.set_path(&name);
    let config = interview_persistence::DatabaseConfig::new(url.as_str().parse().expect("a URL"));
    let db = interview_persistence::init_database(&config)
        .await
        .expect("init");
    elements_list_in_byte_order_on_both_backends(&db).await;
    db.close().await.expect("close");
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .expect("drop");
}
