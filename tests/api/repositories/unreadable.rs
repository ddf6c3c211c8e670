//! Values a database can hold and the entities cannot: a timestamp of
//! `infinity` or past chrono's years, text that is not UTF-8. SQLite
//! stores them (another program wrote them): every read that meets one
//! answers [`Error::UnreadableValue`], on every path, and nothing panics.
//! PostgreSQL refuses them when they are written (`infinity` and such
//! years by the module's CHECK constraints, bad UTF-8 by the server), so
//! no read can meet one there.

use interview_persistence::repositories::Repositories;
use interview_persistence::{Backend, Database, Error};

use crate::fixtures::exec;
use crate::on_both_backends;

on_both_backends!(
    a_timestamp_of_infinity_is_refused_or_read_as_a_typed_error,
    a_year_past_chronos_range_is_refused_or_read_as_a_typed_error,
    text_that_is_not_utf8_is_refused_or_read_as_a_typed_error,
);

/// A session `s1` whose `created_at` is `timestamp` (an SQL expression).
fn session_created_at(timestamp: &str) -> String {
    format!(
        "INSERT INTO sessions (id, methodology, concept_id, concept_name, created_at) \
         VALUES ('s1', 'means_end_chain', 'c', 'n', {timestamp})"
    )
}

/// Every read of session `s1` fails with [`Error::UnreadableValue`].
async fn every_read_of_the_session_is_a_typed_error(db: &Database) {
    let repos = Repositories::new(db);
    let id = "s1".into();
    let got = repos.sessions.get(&id).await;
    assert!(
        matches!(got, Err(Error::UnreadableValue(_))),
        "get: {got:?}"
    );
    let listed = repos.sessions.list(None, 10).await;
    assert!(
        matches!(listed, Err(Error::UnreadableValue(_))),
        "list: {listed:?}"
    );
    let context = repos.turns.context(&id, 10).await;
    assert!(
        matches!(context, Err(Error::UnreadableValue(_))),
        "context: {context:?}"
    );
}

async fn a_timestamp_of_infinity_is_refused_or_read_as_a_typed_error(db: &Database) {
    match db.backend() {
        Backend::Sqlite => {
            exec(db, &session_created_at("'infinity'"))
                .await
                .expect("SQLite stores any text");
            every_read_of_the_session_is_a_typed_error(db).await;
        }
        Backend::Postgres => {
            for value in ["'infinity'", "'-infinity'"] {
                let refused = exec(db, &session_created_at(value)).await;
                assert!(
                    matches!(&refused, Err(Error::InvalidValue(e)) if e.to_string().contains("ck_sessions_created_at_finite")),
                    "{value}: {refused:?}"
                );
            }
        }
    }
}

async fn a_year_past_chronos_range_is_refused_or_read_as_a_typed_error(db: &Database) {
    match db.backend() {
        Backend::Sqlite => {
            exec(db, &session_created_at("'300000-01-01 00:00:00'"))
                .await
                .expect("SQLite stores any text");
            every_read_of_the_session_is_a_typed_error(db).await;
        }
        Backend::Postgres => {
            let refused = exec(db, &session_created_at("'270000-01-01 00:00:00'")).await;
            assert!(
                matches!(&refused, Err(Error::InvalidValue(_))),
                "{refused:?}"
            );
            // The last year chrono holds is still accepted.
            exec(db, &session_created_at("'262142-12-31 23:59:59'"))
                .await
                .expect("year 262142");
            let got = Repositories::new(db).sessions.get(&"s1".into()).await;
            assert_eq!(
                got.expect("read back").created_at.format("%Y").to_string(),
                "+262142"
            );
        }
    }
}

async fn text_that_is_not_utf8_is_refused_or_read_as_a_typed_error(db: &Database) {
    match db.backend() {
        Backend::Sqlite => {
            exec(
                db,
                "INSERT INTO sessions (id, methodology, concept_id, concept_name) \
                 VALUES ('s1', 'means_end_chain', 'c', CAST(x'4f6174c328' AS TEXT))",
            )
            .await
            .expect("SQLite stores the bytes");
            every_read_of_the_session_is_a_typed_error(db).await;
            // An utterance too: the transcript and the context read it.
            exec(
                db,
                "INSERT INTO sessions (id, methodology, concept_id, concept_name) \
                 VALUES ('s2', 'means_end_chain', 'c', 'n'); \
                 INSERT INTO utterances (id, session_id, turn_number, speaker, text) \
                 VALUES ('u1', 's2', 1, 'user', CAST(x'c328' AS TEXT))",
            )
            .await
            .expect("SQLite stores the bytes");
            let repos = Repositories::new(db);
            let transcript = repos.utterances.transcript(&"s2".into()).await;
            assert!(
                matches!(transcript, Err(Error::UnreadableValue(_))),
                "transcript: {transcript:?}"
            );
            let context = repos.turns.context(&"s2".into(), 10).await;
            assert!(
                matches!(context, Err(Error::UnreadableValue(_))),
                "context: {context:?}"
            );
        }
        Backend::Postgres => {
            let refused = exec(
                db,
                "INSERT INTO sessions (id, methodology, concept_id, concept_name) \
                 VALUES ('s1', 'means_end_chain', 'c', convert_from('\\x4f6174c328'::bytea, 'UTF8'))",
            )
            .await;
            assert!(
                matches!(&refused, Err(Error::InvalidValue(_))),
                "{refused:?}"
            );
        }
    }
}

/// A PostgreSQL database that already holds an `infinity` (written before
/// the constraints existed): `init` fails with a typed error naming the
/// constraint, and the schema stays at the version before, its rows as
/// they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_on_postgres_refuses_a_stored_infinity_and_stays_at_the_previous_version() {
    use interview_persistence::migration::{Migrator, MigratorTrait};
    let Some((_database, config)) = crate::helpers::postgres_config().await else {
        return;
    };
    let outside = sea_orm::Database::connect(config.url.expose())
        .await
        .expect("connect");
    let before_the_constraints = Migrator::migrations()
        .iter()
        .position(|m| m.name().ends_with("_require_finite_timestamps"))
        .expect("the constraints' migration") as u32;
    Migrator::up(&outside, Some(before_the_constraints))
        .await
        .expect("migrate to the version before");
    sea_orm::ConnectionTrait::execute_unprepared(&outside, &session_created_at("'infinity'"))
        .await
        .expect("no constraint yet");

    let refused = interview_persistence::init_database(&config).await;
    assert!(
        matches!(&refused, Err(Error::InvalidValue(e)) if e.to_string().contains("ck_sessions_created_at_finite")),
        "{:?}",
        refused.as_ref().err()
    );
    let status = interview_persistence::schema::schema_status(&outside)
        .await
        .expect("status");
    assert_eq!(status.applied.len() as u32, before_the_constraints);
    let stored: String = sea_orm::ConnectionTrait::query_one_raw(
        &outside,
        sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT created_at::text FROM sessions WHERE id = 's1'",
        ),
    )
    .await
    .expect("read")
    .expect("the row")
    .try_get_by_index(0)
    .expect("text");
    assert_eq!(stored, "infinity");
    outside.close().await.expect("close");
}
