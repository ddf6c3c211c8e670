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
    the_opening_question_at_turn_zero_is_part_of_the_transcript_and_not_a_turn,
);

/// Every Python session starts with the system's opening question at turn
/// 0 (`../shared/PYTHON-SYSTEM.md`); answers start at 1. Turn 0 is saved,
/// read back first in the transcript and in a turn's context, and is not
/// counted: `turn_count` and `record_turn` number answered turns from 1.
async fn the_opening_question_at_turn_zero_is_part_of_the_transcript_and_not_a_turn(db: &Database) {
    let repos = Repositories::new(db);
    let session_id = crate::fixtures::start(&repos).await;
    let opening = repos
        .utterances
        .save(utterance(
            &session_id,
            0,
            Speaker::System,
            "What comes to mind when you think of an oat milk latte?",
        ))
        .await
        .expect("the opening question");
    // Only the system speaks at turn 0, once.
    assert!(matches!(
        repos
            .utterances
            .save(utterance(&session_id, 0, Speaker::User, "an answer at 0"))
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        repos
            .utterances
            .save(utterance(&session_id, 0, Speaker::System, "again"))
            .await,
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateUtterance { turn_number: 0, .. },
            ..
        })
    ));
    assert_eq!(
        repos
            .sessions
            .get(&session_id)
            .await
            .expect("get")
            .turn_count,
        0,
        "the opening question is not a turn"
    );

    repos
        .turns
        .record_turn(crate::turn_builders::chain_turn(&session_id, 1))
        .await
        .expect("turn 1 after the opening question");
    // A turn numbered 0 is refused: turn 0 is not an answered turn.
    assert!(matches!(
        repos
            .turns
            .record_turn(crate::turn_builders::chain_turn(&session_id, 0))
            .await,
        Err(Error::InvalidInput(_))
    ));

    let session = repos.sessions.get(&session_id).await.expect("get");
    assert_eq!(session.turn_count, 1);
    let transcript = repos
        .utterances
        .transcript(&session_id)
        .await
        .expect("read");
    let turns: Vec<(i32, Speaker)> = transcript
        .iter()
        .map(|u| (u.turn_number, u.speaker))
        .collect();
    assert_eq!(
        turns,
        vec![
            (0, Speaker::System),
            (1, Speaker::User),
            (1, Speaker::System)
        ]
    );
    assert_eq!(transcript[0].id, opening.id);
    let context = repos.turns.context(&session_id, 10).await.expect("context");
    assert_eq!(context.session.turn_count, 1);
    assert_eq!(context.recent_utterances.len(), 3);
    assert_eq!(context.recent_utterances[0].id, opening.id);
    let of_turn_zero = repos
        .utterances
        .of_turn(&session_id, 0)
        .await
        .expect("turn 0");
    assert_eq!(of_turn_zero.len(), 1);
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
