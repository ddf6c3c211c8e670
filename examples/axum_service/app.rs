//! The HTTP service over the library: the router, its error responses and
//! its graceful shutdown. `main.rs` runs it; the tests
//! (`tests/api/axum_service.rs`) include this file and serve this very
//! router on 127.0.0.1.
//!
//! | route | does |
//! |---|---|
//! | `GET /health` | the health report; 200 when healthy, 503 otherwise (`status`, `latest_migration`, `pending_migrations`, `problems`: kinds only, the full report goes to the log) |
//! | `POST /sessions` | `{"session": NewSession, "elements": [NewConceptElement]}` → 201 `{"session", "elements"}` |
//! | `POST /sessions/{id}/turns` | a `TurnRecord` (its `session_id` must be `{id}`) → 201 `RecordedTurn` |
//! | `GET /sessions/{id}/context?recent=10` | the `TurnContext` (`recent` at most 1000, 422 above) |
//!
//! Every error answers JSON `{"error": kind, "message": …}` (plus
//! `conflict` or `entity` when there is one), whose message never holds
//! SQL, driver text or credentials; the full error goes to the log. That
//! includes the service's own refusals: a body that is not the JSON the
//! route takes (`invalid_body`, 400/413/415/422), a query string or path
//! that does not parse (`invalid_query` / `invalid_path`, 400), an unknown
//! route (`not_found`, 404), a wrong method (`method_not_allowed`, 405), a
//! request past [`REQUEST_TIMEOUT`] (`timeout`, 503 with `Retry-After`) and
//! a handler that panics (`internal`, 500; the panic goes to the log).
//!
//! A request that timed out is dropped, but a turn the writer had already
//! taken still commits (or fails) whole: a client that retries a timed-out
//! turn and hears 409 `duplicate_turn` knows the first attempt landed.

use std::any::Any;
use std::future::Future;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use interview_persistence::entity::{SessionId, concept_element, session};
use interview_persistence::repositories::{
    NewConceptElement, NewSession, RecordedTurn, Repositories, TurnContext, TurnRecord,
};
use interview_persistence::{Database, Error, check_health};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// How long one request may take before the service answers 503
/// `timeout` and drops it: a turn not yet taken by the writer is then
/// never written; one the writer took already commits or fails whole (a
/// retry answering 409 `duplicate_turn` means it landed). 503 rather than
/// 408 (the client was not slow) or 504 (there is no upstream): the
/// database could not serve in time, as [`Error::Timeout`] answers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The utterances a context holds when the query does not say.
const DEFAULT_RECENT_UTTERANCES: u64 = 10;

/// The most utterances one context request may ask for; more answers 422.
pub const MAX_RECENT_UTTERANCES: u64 = 1000;

/// What the handlers share: the database and its repositories (both
/// cheap to clone).
#[derive(Clone)]
struct AppState {
    db: Database,
    repos: Repositories,
}

/// The service's routes over `db`, with request tracing, a timeout
/// ([`REQUEST_TIMEOUT`]), and a JSON 500 for a handler that panics.
pub fn router(db: Database) -> Router {
    router_with_timeout(db, REQUEST_TIMEOUT)
}

/// [`router`] with another request timeout (the tests use a short one).
pub fn router_with_timeout(db: Database, timeout: Duration) -> Router {
    let repos = Repositories::new(&db);
    Router::new()
        .route("/health", get(health))
        .route("/sessions", post(create_session))
        .route("/sessions/{session_id}/turns", post(record_turn))
        .route("/sessions/{session_id}/context", get(turn_context))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(CatchPanicLayer::custom(panic_answer))
        .layer(TraceLayer::new_for_http())
        .with_state(AppState { db, repos })
}

/// Serves [`router`] on `listener` until `shutdown` completes, lets the
/// requests in flight finish, then closes the database (every write
/// queued before is committed first).
///
/// # Errors
/// The server's I/O error, or the database's when closing it fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: Database,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let app = router(db.clone());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Err(err) = &served {
        tracing::error!(error = %err, "the server failed; closing the database");
    } else {
        tracing::info!("requests in flight are done; closing the database");
    }
    // Closed either way: the writes queued so far are committed first.
    let closed = db.close().await;
    served?;
    closed?;
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

async fn health(State(state): State<AppState>) -> Response {
    let report = check_health(&state.db).await;
    if report.is_healthy() {
        return (StatusCode::OK, Json(report)).into_response();
    }
    // The endpoint is unauthenticated: the driver's error (which may name
    // a role or host), the file's path, the integrity complaint and the
    // warnings go to the log only; the answer names kinds of problems.
    tracing::warn!(?report, "unhealthy");
    let body = json!({
        "status": report.status,
        "latest_migration": report.latest_migration,
        "pending_migrations": report.pending_migrations,
        "problems": health_problems(&report),
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// What is wrong with an unhealthy database, as fixed kinds:
/// `unreachable` (the check could not run), `read_only` (the database
/// cannot be written), `integrity_check_failed`, `foreign_keys_off`,
/// `pending_migrations`, or `unhealthy` for anything
/// else (a schema newer than this build, sessions that could not be
/// counted); the log has the details.
fn health_problems(report: &interview_persistence::HealthReport) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if report.integrity.is_none() {
        problems.push("unreachable");
    }
    if report.writable == Some(false) {
        problems.push("read_only");
    }
    if report.integrity.as_ref().is_some_and(|i| i.is_failure()) {
        problems.push("integrity_check_failed");
    }
    if report.foreign_keys == Some(false) {
        problems.push("foreign_keys_off");
    }
    if !report.pending_migrations.is_empty() {
        problems.push("pending_migrations");
    }
    if problems.is_empty() {
        problems.push("unhealthy");
    }
    problems
}

/// `POST /sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    session: NewSession,
    #[serde(default)]
    elements: Vec<NewConceptElement>,
}

#[derive(Serialize)]
struct CreatedSession {
    session: session::Model,
    elements: Vec<concept_element::Model>,
}

async fn create_session(
    State(state): State<AppState>,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedSession>), ApiError> {
    let Json(body) = body?;
    let (session, elements) = state
        .repos
        .sessions
        .create_with_elements(body.session, body.elements)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedSession { session, elements }),
    ))
}

async fn record_turn(
    State(state): State<AppState>,
    session_id: Result<Path<SessionId>, PathRejection>,
    body: Result<Json<TurnRecord>, JsonRejection>,
) -> Result<(StatusCode, Json<RecordedTurn>), ApiError> {
    let Path(session_id) = session_id?;
    let Json(turn) = body?;
    if turn.session_id != session_id {
        return Err(Error::SessionMismatch(format!(
            "the turn names session `{}` but was posted to session `{session_id}`",
            turn.session_id
        ))
        .into());
    }
    let recorded = state.repos.turns.record_turn(turn).await?;
    Ok((StatusCode::CREATED, Json(recorded)))
}

#[derive(Deserialize)]
struct ContextQuery {
    recent: Option<u64>,
}

async fn turn_context(
    State(state): State<AppState>,
    session_id: Result<Path<SessionId>, PathRejection>,
    query: Result<Query<ContextQuery>, QueryRejection>,
) -> Result<Json<TurnContext>, ApiError> {
    let Path(session_id) = session_id?;
    let Query(query) = query?;
    let recent = query.recent.unwrap_or(DEFAULT_RECENT_UTTERANCES);
    if recent > MAX_RECENT_UTTERANCES {
        return Err(Error::InvalidInput(format!(
            "recent={recent} is above the most a context holds, {MAX_RECENT_UTTERANCES}"
        ))
        .into());
    }
    Ok(Json(state.repos.turns.context(&session_id, recent).await?))
}

/// An unknown route: 404 `not_found`.
async fn no_route(method: Method, uri: Uri) -> Response {
    tracing::info!(%method, path = uri.path(), "no such route");
    refusal(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see the service's routes",
    )
}

/// A known route called with another method: 405 `method_not_allowed`
/// (axum adds the `Allow` header).
async fn wrong_method(method: Method, uri: Uri) -> Response {
    tracing::info!(%method, path = uri.path(), "method not allowed");
    refusal(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("{method} is not allowed on this route"),
    )
}

/// Answers 503 `timeout` (with `Retry-After`) when the request takes
/// longer than `limit`, dropping it.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%method, path, ?limit, "request timed out");
            let mut response = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long and was dropped; a turn may still have \
                 been recorded (a retry answering 409 duplicate_turn means it was)",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// A JSON error answer of the service's own.
fn refusal(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"error": kind, "message": message}))).into_response()
}

/// A handler's panic, answered as a JSON 500; what it said goes to the
/// log only.
fn panic_answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let said = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!(panic = said, "a handler panicked");
    let body = json!({"error": "internal", "message": "internal error"});
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// An error as the service answers it.
enum ApiError {
    /// The library's error.
    Library(Error),
    /// A body that is not JSON, or not the JSON the route takes.
    Body(JsonRejection),
    /// A query string that does not parse.
    Query(QueryRejection),
    /// A path whose parameters do not parse.
    Path(PathRejection),
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::Query(rejection)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::Path(rejection)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self::Library(err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::Body(rejection)
    }
}

/// The status an error answers with.
fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::InvalidInput(_)
        | Error::InvalidValue(_)
        | Error::SessionMismatch(_)
        | Error::InvalidReference(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Busy(_) | Error::Connection(_) | Error::Timeout(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What the client is told. Only the kinds whose message the library
/// writes itself (ids, labels, numbers — never the driver's words) show
/// it; the others get a fixed sentence.
fn public_message(err: &Error) -> String {
    match err {
        Error::NotFound { .. } | Error::Conflict { .. } | Error::InvalidInput(_) => err.to_string(),
        // Its text may name another session's id (a node's owner).
        Error::SessionMismatch(_) => "the request names a row of another session".into(),
        Error::InvalidValue(_) => "a value was refused by the schema".into(),
        Error::InvalidReference(_) => "the request names a row that does not exist".into(),
        Error::Busy(_) => "the database is busy; retry later".into(),
        Error::Connection(_) => "the database cannot be reached; retry later".into(),
        Error::Timeout(_) => "the database did not answer in time; retry later".into(),
        _ => "internal error".into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = match self {
            Self::Body(rejection) => {
                tracing::info!(error = %rejection, "refused a request body");
                let body = json!({"error": "invalid_body", "message": rejection.body_text()});
                return (rejection.status(), Json(body)).into_response();
            }
            Self::Query(rejection) => {
                tracing::info!(error = %rejection, "refused a query string");
                return refusal(rejection.status(), "invalid_query", &rejection.body_text());
            }
            Self::Path(rejection) => {
                tracing::info!(error = %rejection, "refused a path");
                return refusal(rejection.status(), "invalid_path", &rejection.body_text());
            }
            Self::Library(err) => err,
        };
        let status = status_of(&err);
        // The whole error, with its source (the driver's error), goes to
        // the log only.
        let source = std::error::Error::source(&err).map(ToString::to_string);
        if status.is_server_error() {
            tracing::error!(error = %err, source, kind = err.kind(), "request failed");
        } else {
            tracing::info!(error = %err, source, kind = err.kind(), "request refused");
        }
        let mut body = json!({"error": err.kind(), "message": public_message(&err)});
        match &err {
            Error::Conflict { conflict, .. } => body["conflict"] = json!(conflict.name()),
            Error::NotFound { entity, .. } => body["entity"] = json!(entity),
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if matches!(err, Error::Busy(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The answers to errors no HTTP scenario provokes on demand (a lock held
/// past the busy timeout, a lost server, a refused value), checked on the
/// response itself: status, `Retry-After`, and a body without the driver's
/// words.
#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::DbErr;

    const DRIVER_TEXT: &str = "UNIQUE constraint failed: kg_nodes.label (SQLSTATE 23505) \
                               postgres://app:secret@db/interviews";

    async fn answered(err: Error) -> (StatusCode, Option<HeaderValue>, serde_json::Value) {
        let response = ApiError::from(err).into_response();
        let status = response.status();
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let body = serde_json::from_slice(&bytes).expect("a JSON body");
        (status, retry_after, body)
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500_without_its_message() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    panic!("secret state: postgres://app:secret@db");
                    #[allow(unreachable_code)]
                    ()
                }),
            )
            .layer(CatchPanicLayer::custom(panic_answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let url = format!("http://{}/boom", listener.local_addr().expect("an address"));
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(url).await.expect("an answer");
        assert_eq!(response.status().as_u16(), 500);
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        server.abort();
        assert_eq!(body["error"], "internal");
        assert!(!body.to_string().contains("secret"), "{body}");
    }

    #[tokio::test]
    async fn busy_answers_503_with_retry_after_and_no_driver_text() {
        let (status, retry_after, body) =
            answered(Error::Busy(DbErr::Custom(DRIVER_TEXT.into()))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after, Some(HeaderValue::from_static("1")));
        assert_eq!(body["error"], "busy");
        assert!(!body.to_string().contains("secret"), "{body}");
        assert!(!body.to_string().contains("UNIQUE"), "{body}");
    }

    #[tokio::test]
    async fn lost_connections_timeouts_and_refused_values_keep_the_driver_text_out() {
        for (err, expected) in [
            (
                Error::Connection(DbErr::Custom(DRIVER_TEXT.into())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::Timeout(DbErr::Custom(DRIVER_TEXT.into())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::InvalidValue(DbErr::Custom(DRIVER_TEXT.into())),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Error::InvalidReference(DbErr::Custom(DRIVER_TEXT.into())),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Error::Database(DbErr::Custom(DRIVER_TEXT.into())),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ] {
            let kind = err.kind();
            let (status, retry_after, body) = answered(err).await;
            assert_eq!(status, expected, "{kind}");
            assert_eq!(retry_after, None, "{kind}");
            assert_eq!(body["error"], kind);
            for leak in ["secret", "UNIQUE", "SQLSTATE", "postgres://"] {
                assert!(!body.to_string().contains(leak), "{kind}: {body}");
            }
        }
    }
}
