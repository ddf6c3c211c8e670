//! The `utterances` repository (`src/repositories/utterances.rs`), on both backends.

use entity::utterance::Speaker;
use interview_persistence::repositories::Repositories;
use interview_persistence::{ConflictKind, Database, Error};

use crate::fixtures::count;
use crate::on_both_backends;

use super::{new_session, utterance};

on_both_backends!(
    utterances_come_back_in_conversation_order,
    utterances_are_refused_for_a_repeated_turn_an_unknown_session_or_turn_zero,
);

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
            .transcript(&"other".into())
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
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateUtterance { turn_number: 1, speaker, .. },
            ..
        }) if speaker == "user"
    ));
    assert!(matches!(
        repos
            .utterances
            .save(utterance(&"no-such-session".into(), 1, Speaker::User, "a"))
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
