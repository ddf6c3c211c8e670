//! A PostgreSQL server restarted under a running process: the calls made
//! while it is down fail as lost connections (never a generic database
//! error), the next calls recover on their own, and no turn is half
//! written.
//!
//! Its own test binary, because it restarts the test server:
//! `scripts/test.sh` runs it after every other test, one at a time, so
//! nothing else is using the server.
//! The restart is `POSTGRES_RESTART_COMMAND`, which `scripts/test.sh`
//! exports when it started the server itself (with
//! `POSTGRES_RESTART_REQUIRED=1`); without it the test is skipped, loudly —
//! a server named by the caller may not be ours to restart — except when
//! the script started the server under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use interview_persistence::Error;
use interview_persistence::repositories::Repositories;

#[path = "common/acknowledged.rs"]
#[allow(dead_code)]
mod acknowledged;
#[path = "common/databases.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "common/turns.rs"]
mod turn_builders;

use turn_builders::chain_turn;

/// What one `record_turn` answered while the server restarted.
#[derive(Debug)]
enum Answer {
    Recorded {
        at: Instant,
    },
    ConnectionLost,
    /// The retry of a turn whose first try committed but lost its answer
    /// with the connection: PostgreSQL cannot tell the client which.
    AlreadyRecorded,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_under_a_running_process_loses_no_turn_and_calls_recover() {
    let Ok(restart) = std::env::var("POSTGRES_RESTART_COMMAND").map(|c| c.trim().to_owned()) else {
        assert!(
            !helpers::postgres_required(),
            "CI=true but POSTGRES_RESTART_COMMAND is unset: run the tests through scripts/test.sh"
        );
        eprintln!("SKIPPED: POSTGRES_RESTART_COMMAND is unset");
        return;
    };
    if restart.is_empty() {
        assert!(
            !helpers::postgres_required(),
            "CI=true but scripts/test.sh found no way to restart the server"
        );
        return;
    }
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = &interview_persistence::entity::SessionId::from("restart-session");
    acknowledged::create_session(&repos, session_id)
        .await
        .expect("a session");

    let restarted_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let writer = tokio::spawn({
        let repos = repos.clone();
        let restarted_at = restarted_at.clone();
        let session_id = session_id.clone();
        async move {
            let session_id = &session_id;
            let mut answers = Vec::new();
            let mut turn = 1;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let answer = repos.turns.record_turn(chain_turn(session_id, turn)).await;
                let retrying = matches!(answers.last(), Some((_, Answer::ConnectionLost)));
                let answer = match answer {
                    Ok(_) => Answer::Recorded { at: Instant::now() },
                    Err(Error::Connection(_)) => Answer::ConnectionLost,
                    Err(Error::Conflict {
                        conflict: interview_persistence::ConflictKind::DuplicateTurn { .. },
                        ..
                    }) if retrying => Answer::AlreadyRecorded,
                    Err(other) => panic!("turn {turn}: {other:?} is not a lost connection"),
                };
                match answer {
                    Answer::ConnectionLost => tokio::time::sleep(Duration::from_millis(50)).await,
                    _ => turn += 1,
                }
                answers.push((turn, answer));
                let recorded_since_restart = restarted_at
                    .lock()
                    .expect("lock")
                    .map(|restarted| {
                        answers
                            .iter()
                            .filter(
                                |(_, a)| matches!(a, Answer::Recorded { at } if *at > restarted),
                            )
                            .count()
                    })
                    .unwrap_or(0);
                if recorded_since_restart >= 20 || Instant::now() > deadline {
                    return answers;
                }
            }
        }
    });

    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&restart)
            .status()
    })
    .await
    .expect("the restart task")
    .expect("run the restart command");
    assert!(status.success(), "the restart command failed: {status}");
    *restarted_at.lock().expect("lock") = Some(Instant::now());

    let answers = writer.await.expect("the writer");
    let lost = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::ConnectionLost))
        .count();
    let restarted = restarted_at.lock().expect("lock").expect("restarted");
    let recovered = answers
        .iter()
        .filter(|(_, a)| matches!(a, Answer::Recorded { at } if *at > restarted))
        .count();
    assert!(
        recovered >= 20,
        "only {recovered} turns recorded after the restart: {answers:?}"
    );

    // Every turn is whole: two utterances, one score row, four nodes and
    // three edges each.
    let acknowledged::TurnRows {
        utterances,
        scores,
        nodes,
        edges,
    } = acknowledged::turn_rows(db, session_id)
        .await
        .expect("count per turn");
    let highest = answers.last().map_or(0, |(turn, _)| *turn - 1);
    assert_eq!(
        utterances.keys().copied().collect::<Vec<_>>(),
        (1..=highest).collect::<Vec<_>>(),
        "every acknowledged turn, and no other"
    );
    for (turn, n) in &utterances {
        assert_eq!(*n, 2, "turn {turn}: utterances");
        assert_eq!(scores.get(turn), Some(&1), "turn {turn}: scores");
        assert_eq!(nodes.get(turn), Some(&4), "turn {turn}: nodes");
        assert_eq!(edges.get(turn), Some(&3), "turn {turn}: edges");
    }
    assert_eq!(scores.len(), utterances.len());
    eprintln!(
        "restart: {} turns, {lost} calls lost their connection, {recovered} recorded after",
        utterances.len()
    );
}
