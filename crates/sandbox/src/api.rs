//! The Telnyx-compatible REST API under `/v2`: dial, retrieve and call actions,
//! with Telnyx's validation and error bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::{Json, Router};
use ivrx_telnyx::commands::{Action, ActionKind, Dial, ValidationError};
use ivrx_telnyx::conferences::{ConferenceCreate, ConferenceJoin, ConferenceLeave};
use ivrx_telnyx::errors::{codes, ApiErrorBody, ApiErrorItem};
use serde_json::{json, Value};

use super::chaos::ApiFault;
use super::conference::{ConfAction, ConfError};
use super::world::{CommandError, Executed};
use super::{CommandRecord, Shared};

/// An error answer: status and one Telnyx error item.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub item: Box<ApiErrorItem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self { status, item: Box::new(ApiErrorItem::new(code, title, detail)) }
    }

    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.item = Box::new(self.item.with_pointer(pointer));
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, "Resource not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, "Bad Request", detail)
    }

    pub fn invalid(pointer: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_VALUE, "Invalid value for parameter", detail)
            .with_pointer(pointer)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ApiErrorBody { errors: vec![*self.item] })).into_response()
    }
}

/// Maps a body validation failure to Telnyx's answer.
pub(crate) fn validation_error(e: ValidationError) -> ApiError {
    match e {
        ValidationError::Missing { pointer } => {
            let field = pointer.trim_start_matches('/').to_string();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::MISSING_PARAMETER,
                "Missing required parameter",
                format!("The '{field}' parameter is required."),
            )
            .with_pointer(pointer)
        }
        ValidationError::Invalid { pointer, detail } => ApiError::invalid(&pointer, detail),
        ValidationError::BadRequest(detail) => ApiError::bad_request(detail),
    }
}

pub(crate) fn command_error(e: CommandError, ccid: &str) -> ApiError {
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    match e {
        CommandError::NotFound => ApiError::not_found(format!("Call {ccid} was not found.")),
        CommandError::CallEnded => ApiError::new(
            unprocessable,
            codes::CALL_ENDED,
            "Call has already ended",
            "This call is no longer active and can't receive commands.",
        ),
        CommandError::NotAnswered => ApiError::new(
            unprocessable,
            codes::NOT_ANSWERED,
            "Call has not been answered yet",
            "This command can only be sent once the call has been answered.",
        ),
        CommandError::Invalid { pointer, detail } => ApiError::invalid(&pointer, detail),
        CommandError::Unprocessable(detail) => {
            ApiError::new(unprocessable, codes::BAD_REQUEST, "Unprocessable command", detail)
        }
    }
}

/// Parses a request body; an empty body is `null`.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))
}

/// True when the request carries `Authorization: Bearer <api key>`.
pub(crate) fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let v = v.trim();
    let token = match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return false,
    };
    constant_time_eq(token.as_bytes(), s.api_key.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        codes::AUTH_FAILED,
        "Authentication failed",
        "The API key is missing or invalid. Send it as `Authorization: Bearer <API key>`.",
    )
}

pub(crate) fn record(method: &Method, path: &str) -> CommandRecord {
    CommandRecord {
        received_at: super::clock::rfc3339(chrono::Utc::now()),
        method: method.to_string(),
        path: path.chars().take(300).collect(),
        action: None,
        call_control_id: None,
        command_id: None,
        status: 0,
        error_code: None,
        duplicate: false,
        dropped: false,
        body: Value::Null,
    }
}

/// Marks a request whose command runs but whose answer is dropped (chaos).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerDropped;

type Dropped = Option<Extension<AnswerDropped>>;

/// Logs a request's outcome and turns it into the answer.
pub(crate) fn finish(s: &Shared, mut rec: CommandRecord, outcome: Result<Value, ApiError>) -> Response {
    match outcome {
        Ok(v) => {
            rec.status = 200;
            s.log_command(rec);
            (StatusCode::OK, Json(v)).into_response()
        }
        Err(e) => {
            rec.status = e.status.as_u16();
            rec.error_code = Some(e.item.code.clone());
            s.log_command(rec);
            e.into_response()
        }
    }
}

async fn require_api_key(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if authorized(&s, req.headers()) {
        return next.run(req).await;
    }
    let rec = record(req.method(), req.uri().path());
    finish(&s, rec, Err(unauthorized()))
}

async fn api_chaos(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match s.api_fault() {
        None => next.run(req).await,
        Some(ApiFault::ServerError) => {
            let rec = refused_record(req).await;
            let e = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "10007",
                "Unexpected error",
                "An unexpected error occurred (sandbox chaos). Retry the request.",
            );
            finish(&s, rec, Err(e))
        }
        Some(ApiFault::RateLimited) => {
            let rec = refused_record(req).await;
            let e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                "Too many requests",
                "Rate limit exceeded (sandbox chaos). Retry after the time in Retry-After.",
            );
            let mut resp = finish(&s, rec, Err(e));
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Some(ApiFault::Late) => {
            let resp = next.run(req).await;
            tokio::time::sleep(Duration::from_millis(s.chaos.api_late_ms)).await;
            resp
        }
        Some(ApiFault::Dropped { executed }) => {
            let Some(conn) = req.extensions().get::<ivrx_http::serve::Connection>().cloned() else {
                // Served without a droppable connection: nothing to drop, answer normally.
                return next.run(req).await;
            };
            let resp = if executed {
                let mut req = req;
                req.extensions_mut().insert(AnswerDropped);
                next.run(req).await
            } else {
                let mut rec = refused_record(req).await;
                rec.dropped = true;
                s.log_command(rec);
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            };
            conn.abort();
            resp
        }
    }
}

/// The log record of a request chaos refuses before it runs: what it was
/// for (action, call, `command_id`), read from its path and body.
async fn refused_record(req: Request) -> CommandRecord {
    let mut rec = record(req.method(), req.uri().path());
    let rest = req.uri().path().strip_prefix("/v2/calls").unwrap_or_default().to_string();
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    match parts.as_slice() {
        [] => rec.action = Some("dial".into()),
        [id] => (rec.action, rec.call_control_id) = (Some("retrieve".into()), Some((*id).into())),
        [id, "actions", name] => (rec.action, rec.call_control_id) = (Some((*name).into()), Some((*id).into())),
        _ => {}
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        rec.command_id = v.get("command_id").and_then(Value::as_str).map(str::to_string);
        rec.body = v;
    }
    rec
}

/// Any request that matches no route.
pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::not_found(format!("No route for {method} {}.", uri.path().chars().take(200).collect::<String>()))
        .into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::BAD_REQUEST,
        "Method not allowed",
        format!("{method} is not allowed on {}.", uri.path().chars().take(200).collect::<String>()),
    )
    .into_response()
}

/// The `/v2` routes, behind the API key check and the chaos layer.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/v2/calls", post(dial).fallback(method_not_allowed))
        .route("/v2/calls/{id}", get(retrieve).fallback(method_not_allowed))
        .route("/v2/calls/{id}/actions/{action}", post(action).put(action).fallback(method_not_allowed))
        .route("/v2/conferences", post(create_conference).fallback(method_not_allowed))
        .route("/v2/conferences/{id}", get(retrieve_conference).fallback(method_not_allowed))
        .route("/v2/conferences/{id}/actions/{action}", post(conference_action).fallback(method_not_allowed))
        .route("/v2/messages", post(super::messaging::send).fallback(method_not_allowed))
        .layer(middleware::from_fn_with_state(shared.clone(), api_chaos))
        .layer(middleware::from_fn_with_state(shared, require_api_key))
}

async fn dial(State(s): State<Arc<Shared>>, dropped: Dropped, method: Method, body: Bytes) -> Response {
    let mut rec = record(&method, "/v2/calls");
    rec.dropped = dropped.is_some();
    rec.action = Some("dial".into());
    let outcome = run_dial(&s, &body, &mut rec);
    finish(&s, rec, outcome)
}

fn run_dial(s: &Shared, body: &[u8], rec: &mut CommandRecord) -> Result<Value, ApiError> {
    let v = match parse_json(body)? {
        Value::Null => json!({}),
        v => v,
    };
    rec.body = v.clone();
    let d = Dial::parse(v).map_err(validation_error)?;
    rec.command_id = d.command_id.clone();
    let (info, repeat) = s
        .with_world(|w, now| {
            let repeat = d.command_id.as_deref().is_some_and(|id| w.is_repeat_dial(id, now));
            w.dial(now, d).map(|info| (info, repeat))
        })
        .map_err(|e| command_error(e, ""))?;
    rec.duplicate = repeat;
    rec.call_control_id = Some(info.call_control_id.clone());
    Ok(json!({ "data": info }))
}

async fn retrieve(State(s): State<Arc<Shared>>, dropped: Dropped, method: Method, Path(id): Path<String>) -> Response {
    let mut rec = record(&method, &format!("/v2/calls/{id}"));
    rec.dropped = dropped.is_some();
    rec.action = Some("retrieve".into());
    rec.call_control_id = Some(id.clone());
    let info = s.with_world(|w, now| w.call_info(&id, now.v));
    let outcome = match info {
        Some(info) => Ok(json!({ "data": info })),
        None => Err(ApiError::not_found(format!("Call {id} was not found."))),
    };
    finish(&s, rec, outcome)
}

async fn action(
    State(s): State<Arc<Shared>>,
    dropped: Dropped,
    method: Method,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut rec = record(&method, &format!("/v2/calls/{id}/actions/{name}"));
    rec.dropped = dropped.is_some();
    rec.action = Some(name.clone());
    rec.call_control_id = Some(id.clone());
    let outcome = run_action(&s, &method, &id, &name, &body, &mut rec);
    finish(&s, rec, outcome)
}

fn run_action(
    s: &Shared,
    method: &Method,
    id: &str,
    name: &str,
    body: &[u8],
    rec: &mut CommandRecord,
) -> Result<Value, ApiError> {
    let Some(kind) = ActionKind::from_name(name) else {
        return Err(ApiError::not_found(format!(
            "Unknown call action '{}'.",
            name.chars().take(60).collect::<String>()
        )));
    };
    let want = if kind.is_put() { Method::PUT } else { Method::POST };
    if *method != want {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::BAD_REQUEST,
            "Method not allowed",
            format!("{name} must be sent with {want}."),
        ));
    }
    let v = parse_json(body)?;
    rec.body = v.clone();
    let action = Action::parse(name, v).map_err(validation_error)?;
    rec.command_id = action.command_id().map(str::to_string);
    match s.with_world(|w, now| w.command(now, id, action)) {
        Ok(Executed::Done) => Ok(json!({ "data": { "result": "ok" } })),
        Ok(Executed::Duplicate) => {
            rec.duplicate = true;
            Ok(json!({ "data": { "result": "ok" } }))
        }
        Err(e) => Err(command_error(e, id)),
    }
}

fn conference_error(e: ConfError, id: &str) -> ApiError {
    match e {
        ConfError::NoConference => ApiError::not_found(format!("Conference {id} was not found.")),
        ConfError::Ended => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::BAD_REQUEST,
            "Conference has ended",
            "This conference is no longer active and can't take participants.",
        ),
        ConfError::Call(e) => command_error(e, ""),
    }
}

async fn create_conference(State(s): State<Arc<Shared>>, method: Method, body: Bytes) -> Response {
    let mut rec = record(&method, "/v2/conferences");
    rec.action = Some("conference_create".into());
    let outcome = (|| {
        let v = parse_json(&body)?;
        rec.body = v.clone();
        let b = ConferenceCreate::parse(v).map_err(validation_error)?;
        rec.command_id = b.command_id.clone();
        rec.call_control_id = Some(b.call_control_id.clone());
        let info = s.with_world(|w, now| w.create_conference(now, b)).map_err(|e| conference_error(e, ""))?;
        Ok(json!({ "data": info }))
    })();
    finish(&s, rec, outcome)
}

async fn retrieve_conference(State(s): State<Arc<Shared>>, method: Method, Path(id): Path<String>) -> Response {
    let mut rec = record(&method, &format!("/v2/conferences/{id}"));
    rec.action = Some("conference_retrieve".into());
    let outcome = match s.with_world(|w, _| w.conference_info(&id)) {
        Some(info) => Ok(json!({ "data": info })),
        None => Err(ApiError::not_found(format!("Conference {id} was not found."))),
    };
    finish(&s, rec, outcome)
}

async fn conference_action(
    State(s): State<Arc<Shared>>,
    method: Method,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut rec = record(&method, &format!("/v2/conferences/{id}/actions/{name}"));
    rec.action = Some(format!("conference_{}", name.chars().take(40).collect::<String>()));
    let outcome = (|| {
        let v = parse_json(&body)?;
        rec.body = v.clone();
        let action = match name.as_str() {
            "join" => ConfAction::Join(ConferenceJoin::parse(v).map_err(validation_error)?),
            "leave" => ConfAction::Leave(ConferenceLeave::parse(v).map_err(validation_error)?),
            other => {
                return Err(ApiError::not_found(format!(
                    "Unknown conference action '{}' (the sandbox runs join and leave).",
                    other.chars().take(60).collect::<String>()
                )))
            }
        };
        let (ccid, cid) = match &action {
            ConfAction::Join(b) => (b.call_control_id.clone(), b.command_id.clone()),
            ConfAction::Leave(b) => (b.call_control_id.clone(), b.command_id.clone()),
        };
        rec.call_control_id = Some(ccid);
        rec.command_id = cid;
        match s.with_world(|w, now| w.conference_action(now, &id, action)) {
            Ok(Executed::Done) => Ok(json!({ "data": { "result": "ok" } })),
            Ok(Executed::Duplicate) => {
                rec.duplicate = true;
                Ok(json!({ "data": { "result": "ok" } }))
            }
            Err(e) => Err(conference_error(e, &id)),
        }
    })();
    finish(&s, rec, outcome)
}
