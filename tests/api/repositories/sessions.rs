//! The `sessions` repository (`src/repositories/sessions.rs`), on both backends.

use entity::concept_element::Priority;
use entity::session::SessionStatus;
use interview_persistence::repositories::Repositories;
use interview_persistence::{Database, Error};
use serde_json::json;

use crate::fixtures::count;
use crate::on_both_backends;

use super::{element, is_not_found, new_session};

on_both_backends!(
    sessions_are_created_read_listed_and_deleted,
    session_status_and_metrics_and_config_change_as_asked,
    a_session_and_its_elements_are_created_together_or_not_at_all,
);

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
