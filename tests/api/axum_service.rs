//! The HTTP service example (`examples/axum_service`), served on
//! 127.0.0.1 at a random port from the example's own router, and called
//! over real HTTP with reqwest, on both backends.

use std::time::Duration;

use entity::session;
use interview_persistence::Database;
use reqwest::StatusCode;
use sea_orm::{EntityTrait, QuerySelect};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::fixtures::{count, exec};
use crate::on_both_backends;
use crate::service_app;

on_both_backends!(
    health_answers_200_with_the_report_when_the_database_is_healthy,
    health_answers_503_when_a_migration_is_pending,
    health_answers_503_without_driver_text_when_the_database_is_gone,
    a_session_a_turn_and_its_context_round_trip_over_http,
    a_turn_posted_twice_answers_409_without_driver_text,
    an_unknown_session_answers_404,
    a_confidence_out_of_range_answers_422_and_writes_nothing,
    malformed_or_mistyped_json_answers_4xx,
    shutdown_lets_a_turn_in_flight_finish_then_closes_the_database,
    a_recent_count_above_the_cap_answers_422_and_the_server_lives_on,
    a_query_that_does_not_parse_answers_400_json,
    unknown_routes_and_wrong_methods_answer_json,
    a_request_past_the_timeout_answers_503_json_and_a_retry_tells_whether_it_landed,
);

/// The example's router, served on a random local port.
struct Served {
    base: String,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), String>>,
}

async fn serve(db: &Database) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(service_app::serve(listener, db.clone(), async {
        let _ = stop.await;
    }));
    let server = tokio::spawn(async move {
        server
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    });
    Served {
        base,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server,
    }
}

impl Served {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        answer(response).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST");
        answer(response).await
    }
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

fn a_session() -> Value {
    json!({
        "session": {
            "methodology": "means_end_chain",
            "concept_id": "oat-milk",
            "concept_name": "Oat milk latte",
            "config": {"max_turns": 20}
        },
        "elements": [
            {"element_id": "e0", "label": "Taste", "priority": "high"},
            {"element_id": "e1", "label": "Price"}
        ]
    })
}

fn a_turn(session_id: &str, turn_number: i32) -> Value {
    json!({
        "session_id": session_id,
        "turn_number": turn_number,
        "user_utterance": {"text": "Because it is creamy", "discourse_markers": ["because"]},
        "nodes": [
            {"label": format!("creamy-{turn_number}"), "node_type": "attribute", "confidence": 0.8},
            {"label": format!("indulgence-{turn_number}"), "node_type": "value", "confidence": 0.7,
             "properties": {"source": "llm"}}
        ],
        "edges": [
            {"source": {"new": 0}, "target": {"new": 1}, "edge_type": "leads_to", "confidence": 0.6}
        ],
        "scores": {"coverage_score": 0.5, "depth_score": 0.4, "saturation_score": 0.1,
                   "novelty_score": 0.9, "strategy_selected": "deepen"},
        "covered_elements": [["e0", {"new": 0}]],
        "coverage_score": 0.5,
        "system_utterance": {"text": "Why does that matter to you?"}
    })
}

/// Starts a session over HTTP and returns its id.
async fn started(served: &Served) -> String {
    let (status, body) = served.post("/sessions", &a_session()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["session"]["id"].as_str().expect("an id").to_owned()
}

/// What an error body must never show.
fn assert_no_driver_text(body: &Value) {
    let text = body.to_string();
    for leak in [
        "UNIQUE",
        "constraint",
        "INSERT",
        "SELECT",
        "duplicate key",
        "SQLSTATE",
        "sqlite",
        "postgres",
        "password",
    ] {
        assert!(!text.contains(leak), "`{leak}` in the error body: {text}");
    }
}

async fn health_answers_200_with_the_report_when_the_database_is_healthy(db: &Database) {
    let served = serve(db).await;
    let (status, report) = served.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "healthy");
    assert_eq!(report["session_count"], 0);
    assert_eq!(report["pending_migrations"], json!([]));
}

async fn health_answers_503_when_a_migration_is_pending(db: &Database) {
    // A release deployed before its migration ran: the newest migration is
    // not recorded, so the schema is pending.
    exec(
        db,
        "DELETE FROM seaql_migrations WHERE version = (SELECT MAX(version) FROM seaql_migrations)",
    )
    .await
    .expect("forget the newest migration");
    let served = serve(db).await;
    let (status, report) = served.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "unhealthy");
    assert_eq!(
        report["pending_migrations"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["problems"], json!(["pending_migrations"]));
    assert_safe_health_body(db, &report);
}

/// A 503 from the unauthenticated `/health` names kinds only: no driver
/// text, no path or URL, no advice naming the tools.
fn assert_safe_health_body(db: &Database, report: &Value) {
    for key in ["error", "path", "warnings", "integrity", "journal_mode"] {
        assert!(
            report.get(key).is_none(),
            "`{key}` in the 503 body: {report}"
        );
    }
    let text = report.to_string();
    assert!(!text.contains(&db.display_location()), "{text}");
    assert!(!text.contains("interview-db"), "{text}");
    assert_no_driver_text(report);
}

async fn health_answers_503_without_driver_text_when_the_database_is_gone(db: &Database) {
    let served = serve(db).await;
    db.clone().close().await.expect("close the database");
    let (status, report) = served.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "unhealthy");
    assert_eq!(report["problems"], json!(["unreachable"]));
    assert_safe_health_body(db, &report);
}

async fn a_session_a_turn_and_its_context_round_trip_over_http(db: &Database) {
    let served = serve(db).await;
    let (status, created) = served.post("/sessions", &a_session()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let session_id = created["session"]["id"].as_str().expect("an id");
    assert_eq!(created["session"]["status"], "active");
    assert_eq!(created["elements"].as_array().map(Vec::len), Some(2));
    let created_at = created["session"]["created_at"].as_str().expect("a time");
    assert!(created_at.ends_with('Z'), "{created_at}");

    let (status, recorded) = served
        .post(
            &format!("/sessions/{session_id}/turns"),
            &a_turn(session_id, 1),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["node_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(recorded["edge_ids"].as_array().map(Vec::len), Some(1));
    assert_eq!(recorded["newly_covered"], json!(["e0"]));

    let (status, context) = served
        .get(&format!("/sessions/{session_id}/context?recent=5"))
        .await;
    assert_eq!(status, StatusCode::OK, "{context}");
    assert_eq!(context["session"]["turn_count"], 1);
    assert_eq!(context["session"]["coverage_score"], 0.5);
    let nodes = context["current_nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes.iter().map(|n| &n["label"]).collect::<Vec<_>>(),
        [&json!("creamy-1"), &json!("indulgence-1")]
    );
    assert_eq!(nodes[0]["id"], recorded["node_ids"][0]);
    assert_eq!(nodes[1]["confidence"], 0.7);
    assert_eq!(nodes[1]["properties"], json!({"source": "llm"}));
    let edge = &context["edges"][0];
    assert_eq!(
        (
            &edge["source_node_id"],
            &edge["target_node_id"],
            &edge["edge_type"]
        ),
        (
            &recorded["node_ids"][0],
            &recorded["node_ids"][1],
            &json!("leads_to")
        )
    );
    let said: Vec<_> = context["recent_utterances"]
        .as_array()
        .expect("utterances")
        .iter()
        .map(|u| (u["speaker"].clone(), u["text"].clone()))
        .collect();
    assert_eq!(
        said,
        [
            (json!("user"), json!("Because it is creamy")),
            (json!("system"), json!("Why does that matter to you?"))
        ]
    );
    let scores = &context["scoring_history"][0];
    assert_eq!(
        (
            &scores["turn_number"],
            &scores["strategy_selected"],
            &scores["novelty_score"]
        ),
        (&json!(1), &json!("deepen"), &json!(0.9))
    );
    assert!(
        scores["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{scores}"
    );
}

async fn a_turn_posted_twice_answers_409_without_driver_text(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    let path = format!("/sessions/{session_id}/turns");
    let (status, _) = served.post(&path, &a_turn(&session_id, 1)).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = served.post(&path, &a_turn(&session_id, 1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        (&body["error"], &body["conflict"]),
        (&json!("conflict"), &json!("duplicate_turn"))
    );
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.contains("turn 1") && message.contains(&session_id),
        "{message}"
    );
    assert_no_driver_text(&body);

    // A node repeating a current one is a different conflict.
    let mut clashing = a_turn(&session_id, 2);
    clashing["nodes"][1]["label"] = json!("creamy-1");
    clashing["nodes"][1]["node_type"] = json!("attribute");
    let (status, body) = served.post(&path, &clashing).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["conflict"], "duplicate_current_node");
    assert_no_driver_text(&body);
    assert_eq!(
        count(db, "scoring_history").await,
        1,
        "the refused turns wrote nothing"
    );
}

async fn an_unknown_session_answers_404(db: &Database) {
    let served = serve(db).await;
    let (status, body) = served.get("/sessions/no-such-session/context").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        (&body["error"], &body["entity"]),
        (&json!("not_found"), &json!("session"))
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-session")),
        "{body}"
    );

    let (status, body) = served
        .post(
            "/sessions/no-such-session/turns",
            &a_turn("no-such-session", 1),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["entity"], "session");
    assert_no_driver_text(&body);
}

async fn a_confidence_out_of_range_answers_422_and_writes_nothing(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    let path = format!("/sessions/{session_id}/turns");
    let mut too_sure = a_turn(&session_id, 1);
    too_sure["nodes"][0]["confidence"] = json!(1.5);
    let (status, body) = served.post(&path, &too_sure).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_input");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("1.5")),
        "{body}"
    );

    let mut negative_score = a_turn(&session_id, 1);
    negative_score["scores"]["depth_score"] = json!(-0.1);
    let (status, body) = served.post(&path, &negative_score).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // JSON cannot carry a NaN: the token itself is refused as bad JSON.
    let nan = a_turn(&session_id, 1)
        .to_string()
        .replace("\"confidence\":0.8", "\"confidence\":NaN");
    assert!(nan.contains("NaN"));
    let response = served
        .client
        .post(served.url(&path))
        .header("content-type", "application/json")
        .body(nan)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Properties are a JSON object: null is refused, not stored.
    let mut null_properties = a_turn(&session_id, 1);
    null_properties["nodes"][0]["properties"] = Value::Null;
    let (status, body) = served.post(&path, &null_properties).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_input", "{body}");

    let mut other_session = a_turn("someone-else", 1);
    other_session["turn_number"] = json!(1);
    let (status, body) = served.post(&path, &other_session).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "session_mismatch");
    assert_eq!(
        body["message"], "the request names a row of another session",
        "fixed text, no other session's id"
    );

    // An existing node of another session: the body does not name it.
    let (status, other) = served.post("/sessions", &a_session()).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other_id = other["session"]["id"].as_str().expect("an id").to_owned();
    let (status, theirs) = served
        .post(
            &format!("/sessions/{other_id}/turns"),
            &a_turn(&other_id, 1),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let mut borrowing = a_turn(&session_id, 1);
    borrowing["edges"][0]["target"] = json!({"existing": theirs["node_ids"][0]});
    let (status, body) = served.post(&path, &borrowing).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "session_mismatch");
    assert!(!body.to_string().contains(&other_id), "{body}");

    let mine = |table: &str| format!("{table} WHERE session_id = '{session_id}'");
    assert_eq!(
        count(db, &mine("utterances")).await,
        0,
        "nothing was written"
    );
    assert_eq!(count(db, &mine("kg_nodes")).await, 0, "nothing was written");
}

async fn malformed_or_mistyped_json_answers_4xx(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    let path = format!("/sessions/{session_id}/turns");
    let broken = served
        .client
        .post(served.url(&path))
        .header("content-type", "application/json")
        .body("{\"session_id\": ")
        .send()
        .await
        .expect("POST");
    let status = broken.status();
    let (_, body) = answer(broken).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_body");

    let mut mistyped = a_turn(&session_id, 1);
    mistyped["turn_number"] = json!("one");
    let (status, body) = served.post(&path, &mistyped).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_body");

    let mut unknown_edge = a_turn(&session_id, 1);
    unknown_edge["edges"][0]["edge_type"] = json!("LeadsTo");
    let (status, _) = served.post(&path, &unknown_edge).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let not_json = served
        .client
        .post(served.url("/sessions"))
        .body("methodology=x")
        .send()
        .await
        .expect("POST");
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(count(db, "utterances").await, 0);
}

/// `recent` above `i64::MAX` once panicked in the driver's bind; any
/// count above the service's cap now answers 422, and the cap itself is
/// served.
async fn a_recent_count_above_the_cap_answers_422_and_the_server_lives_on(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    let context = |recent: String| format!("/sessions/{session_id}/context?recent={recent}");
    for recent in [
        service_app::MAX_RECENT_UTTERANCES + 1,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX,
    ] {
        let (status, body) = served.get(&context(recent.to_string())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{recent}: {body}");
        assert_eq!(body["error"], "invalid_input", "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("1000")),
            "{body}"
        );
    }
    let (status, body) = served
        .get(&context(service_app::MAX_RECENT_UTTERANCES.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = served.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_query_that_does_not_parse_answers_400_json(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    for recent in ["abc", "-1", "1.5", "99999999999999999999999"] {
        let (status, body) = served
            .get(&format!("/sessions/{session_id}/context?recent={recent}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{recent}: {body}");
        assert_eq!(body["error"], "invalid_query", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("recent")),
            "{body}"
        );
    }
}

async fn unknown_routes_and_wrong_methods_answer_json(db: &Database) {
    let served = serve(db).await;
    let session_id = started(&served).await;
    for path in ["/nope", "/sessions/x/y/z", "/"] {
        let (status, body) = served.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["error"], "not_found", "{body}");
    }
    for (method, path) in [
        (reqwest::Method::GET, "/sessions".to_owned()),
        (
            reqwest::Method::DELETE,
            format!("/sessions/{session_id}/turns"),
        ),
        (reqwest::Method::POST, "/health".to_owned()),
    ] {
        let response = served
            .client
            .request(method.clone(), served.url(&path))
            .send()
            .await
            .expect("a request");
        let status = response.status();
        let allow = response.headers().get("allow").cloned();
        let (_, body) = answer(response).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {body}"
        );
        assert_eq!(body["error"], "method_not_allowed", "{body}");
        assert!(allow.is_some(), "{method} {path}: no Allow header");
    }
}

/// Past the request timeout the service answers a JSON 503 and drops the
/// request; the turn may or may not have landed, and a retry says which
/// (201, or 409 `duplicate_turn`): never twice.
async fn a_request_past_the_timeout_answers_503_json_and_a_retry_tells_whether_it_landed(
    db: &Database,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let app = service_app::router_with_timeout(db.clone(), Duration::from_millis(300));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let request = client.post(format!("{base}{path}")).json(&body);
        async move { answer(request.send().await.expect("POST")).await }
    };
    let (status, created) = post("/sessions".into(), a_session()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let session_id = created["session"]["id"].as_str().expect("an id").to_owned();

    // Hold the session (SQLite: the writer) so that the turn waits past
    // the timeout.
    let holder = db.begin_write().await.expect("a write transaction");
    session::Entity::find_by_id(session_id.as_str())
        .lock_exclusive()
        .one(&*holder)
        .await
        .expect("lock the session")
        .expect("the session");
    let path = format!("/sessions/{session_id}/turns");
    let response = client
        .post(format!("{base}{path}"))
        .json(&a_turn(&session_id, 1))
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let (_, body) = answer(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "timeout", "{body}");
    assert!(retry_after.is_some(), "no Retry-After");
    holder.commit().await.expect("release the session");

    let (status, body) = post(path, a_turn(&session_id, 1)).await;
    assert!(
        status == StatusCode::CREATED
            || (status == StatusCode::CONFLICT && body["conflict"] == "duplicate_turn"),
        "{status}: {body}"
    );
    assert_eq!(
        count(db, "scoring_history").await,
        1,
        "the turn landed once"
    );
    server.abort();
}

async fn shutdown_lets_a_turn_in_flight_finish_then_closes_the_database(db: &Database) {
    let mut served = serve(db).await;
    let session_id = started(&served).await;

    // Hold the session's row (SQLite: the writer itself) so that the turn
    // waits inside the service, in flight.
    let holder = db.begin_write().await.expect("a write transaction");
    session::Entity::find_by_id(session_id.as_str())
        .lock_exclusive()
        .one(&*holder)
        .await
        .expect("lock the session")
        .expect("the session");
    let client = served.client.clone();
    let url = served.url(&format!("/sessions/{session_id}/turns"));
    let turn = a_turn(&session_id, 1);
    let in_flight = tokio::spawn(async move { client.post(url).json(&turn).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished(), "the turn did not wait");

    served
        .shutdown
        .take()
        .expect("not shut down yet")
        .send(())
        .expect("the server listens for its shutdown");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !served.server.is_finished(),
        "the server stopped with a request in flight"
    );
    // A new connection is no longer accepted.
    let late = reqwest::Client::new()
        .get(served.url("/health"))
        .send()
        .await;
    assert!(
        late.is_err(),
        "a new request was served during shutdown: {late:?}"
    );

    holder.commit().await.expect("release the session");
    let response = in_flight
        .await
        .expect("the client task")
        .expect("the in-flight turn got its answer");
    let status = response.status();
    let (_, recorded) = answer(response).await;
    assert_eq!(status, StatusCode::CREATED, "{recorded}");
    assert_eq!(recorded["node_ids"].as_array().map(Vec::len), Some(2));

    tokio::time::timeout(Duration::from_secs(10), &mut served.server)
        .await
        .expect("the server stops once the turn is answered")
        .expect("the server task")
        .expect("a clean shutdown and close");
    assert!(
        db.connection().ping().await.is_err(),
        "the database was closed after the shutdown"
    );
}
