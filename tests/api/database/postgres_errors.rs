//! PostgreSQL errors by their real names: a terminated backend is a lost
//! connection the next call recovers from, a statement timeout a timeout,
//! a missing privilege a permission error — and a role that may not write
//! fails at start-up, not at its first write.

use interview_persistence::repositories::{NewNode, Repositories};
use interview_persistence::{Error, init_database};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::fixtures::{count, start, turn_count};
use crate::helpers;
use crate::repositories::new_session;
use crate::turn_builders::chain_turn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_backend_is_a_lost_connection_and_the_next_call_recovers() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    // A transaction holds its connection, so the pool cannot swap it.
    let victim = db.connection().begin().await.expect("a transaction");
    let pid: i32 = victim
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid()",
        ))
        .await
        .expect("pid")
        .expect("a row")
        .try_get_by_index(0)
        .expect("an int");
    db.connection()
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .expect("terminate");
    let lost = victim
        .execute_unprepared("SELECT 1")
        .await
        .map_err(Error::from);
    assert!(matches!(lost, Err(Error::Connection(_))), "{lost:?}");
    drop(victim);
    // The pool goes on.
    let repos = Repositories::new(db);
    repos
        .sessions
        .create(new_session())
        .await
        .expect("a write after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_terminated_mid_turn_leaves_no_part_of_the_turn_and_the_retry_records_it() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let db = &test_db.db;
    let repos = Repositories::new(db);
    let session_id = start(&repos).await;
    // Another transaction holds kg_edges, so the turn stops midway — its
    // session update, utterances and nodes written, its edges waiting —
    // with its backend there to terminate.
    let holder = db.connection().begin().await.expect("a transaction");
    holder
        .execute_unprepared("LOCK TABLE kg_edges IN EXCLUSIVE MODE")
        .await
        .expect("lock kg_edges");
    let turn = tokio::spawn({
        let repos = repos.clone();
        let session_id = session_id.clone();
        async move { repos.turns.record_turn(chain_turn(&session_id, 1)).await }
    });
    let (waiting_pid, _) = helpers::lock_waiter(db, std::time::Duration::from_secs(30)).await;
    assert!(!turn.is_finished(), "the turn did not wait for kg_edges");
    holder
        .execute_unprepared(&format!("SELECT pg_terminate_backend({waiting_pid})"))
        .await
        .expect("terminate the turn's backend");
    holder.commit().await.expect("release kg_edges");

    let lost = turn.await.expect("the turn task");
    assert!(matches!(lost, Err(Error::Connection(_))), "{lost:?}");
    assert_eq!(
        count(db, "utterances").await,
        0,
        "a part of the turn stayed"
    );
    assert_eq!(count(db, "scoring_history").await, 0);
    assert_eq!(count(db, "kg_nodes").await, 0);
    assert_eq!(turn_count(&repos, &session_id).await, 0);

    repos
        .turns
        .record_turn(chain_turn(&session_id, 1))
        .await
        .expect("the retry records the turn");
    assert_eq!(turn_count(&repos, &session_id).await, 1);
    assert_eq!(count(db, "utterances").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_is_a_timeout() {
    let Some(test_db) = helpers::postgres().await else {
        return;
    };
    let txn = test_db.db.connection().begin().await.expect("begin");
    txn.execute_unprepared("SET LOCAL statement_timeout = 50")
        .await
        .expect("set");
    let slow = txn
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .map_err(Error::from);
    assert!(matches!(slow, Err(Error::Timeout(_))), "{slow:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_not_write_is_refused_at_start_up_by_privilege() {
    let Some((_database, config)) = helpers::postgres_config().await else {
        return;
    };
    let db = init_database(&config).await.expect("init");
    let repos = Repositories::new(&db);
    let session = repos
        .sessions
        .create(new_session())
        .await
        .expect("a session");
    // The owner gives up INSERT on one table, as a read-mostly role would
    // lack it.
    db.connection()
        .execute_unprepared("REVOKE INSERT ON kg_nodes FROM CURRENT_USER")
        .await
        .expect("revoke");
    let refused = repos
        .graph
        .create_node(NewNode::new(&session.id, "creamy", "attribute"))
        .await;
    assert!(
        matches!(refused, Err(Error::PermissionDenied(_))),
        "{refused:?}"
    );
    db.close().await.expect("close");

    match init_database(&config).await {
        Err(Error::MissingPrivilege { table, privilege }) => {
            assert_eq!((table.as_str(), privilege), ("kg_nodes", "INSERT"));
        }
        other => panic!("expected MissingPrivilege, got {:?}", other.map(|_| ())),
    }
}
