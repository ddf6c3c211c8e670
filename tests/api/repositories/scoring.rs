//! The `scoring` repository (`src/repositories/scoring.rs`), on both backends.

use interview_persistence::repositories::Repositories;
use interview_persistence::{ConflictKind, Database, Error};

use crate::on_both_backends;

use super::{new_session, scores};

on_both_backends!(scores_are_saved_once_per_turn_and_read_in_turn_order,);

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
        Err(Error::Conflict {
            conflict: ConflictKind::DuplicateTurn { turn_number: 2, .. },
            ..
        })
    ));
    assert!(matches!(
        repos.scoring.save(scores(&"nope".into(), 1, "x")).await,
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
