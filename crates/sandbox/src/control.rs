//! The sandbox's own control API under `/sandbox/v1`: place simulated calls,
//! feed live callers, configure numbers, wait for calls to end, read the logs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{authorized, parse_json, unauthorized, ApiError};
use super::client::PlaceRequest;
use super::timing::secs;
use super::world::AppendError;
use super::{PartyBehavior, PlaceCall, Script, Shared, DEFAULT_CALLER, DEFAULT_IVR_NUMBER};

async fn require_api_key(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if authorized(&s, req.headers()) {
        next.run(req).await
    } else {
        unauthorized().into_response()
    }
}

/// The `/sandbox/v1` routes (all but the public key need the API key).
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/v1/calls", post(place))
        .route("/sandbox/v1/calls/{id}", get(status))
        .route("/sandbox/v1/calls/{id}/steps", post(steps))
        .route("/sandbox/v1/calls/{id}/wait", get(wait))
        .route("/sandbox/v1/calls/{id}/report", get(report))
        .route("/sandbox/v1/calls/{id}/heard", get(heard))
        .route("/sandbox/v1/parties", post(set_party))
        .route("/sandbox/v1/webhooks", get(webhooks))
        .route("/sandbox/v1/commands", get(commands))
        .route("/sandbox/v1/legs/audit", get(leg_audit))
        .route("/sandbox/v1/messages", get(super::messaging::list))
        .merge(super::stats::routes())
        .layer(middleware::from_fn_with_state(shared, require_api_key))
        .route("/sandbox/v1/public-key", get(public_key))
}

fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let v = match parse_json(raw)? {
        Value::Null => json!({}),
        v => v,
    };
    serde_json::from_value(v).map_err(|e| ApiError::invalid("/", e.to_string()))
}

fn script(text: &str, pointer: &str) -> Result<Script, ApiError> {
    Script::parse(text).map_err(|e| ApiError::invalid(pointer, format!("script {e}")))
}

fn respond(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn place(State(s): State<Arc<Shared>>, raw: Bytes) -> Response {
    respond((|| {
        let b: PlaceRequest = body(&raw)?;
        if s.is_shut_down() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "10007",
                "Shutting down",
                "the sandbox is stopping",
            ));
        }
        let call = PlaceCall {
            from: b.from.filter(|f| !f.is_empty()).unwrap_or_else(|| DEFAULT_CALLER.into()),
            to: b.to.filter(|t| !t.is_empty()).unwrap_or_else(|| DEFAULT_IVR_NUMBER.into()),
            script: script(&b.script, "/script")?,
            live: b.live,
            caller_id_name: b.caller_id_name,
        };
        let mut info = s.with_world(|w, now| w.place_inbound(now, call));
        info.is_alive = true;
        Ok(json!({ "data": info }))
    })())
}

async fn status(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    respond(match s.status(&id) {
        Some(st) => Ok(json!({ "data": st })),
        None => Err(ApiError::not_found(format!("Call {id} was not found."))),
    })
}

#[derive(Deserialize)]
struct StepsBody {
    step: Option<String>,
    steps: Option<String>,
}

async fn steps(State(s): State<Arc<Shared>>, Path(id): Path<String>, raw: Bytes) -> Response {
    respond((|| {
        let b: StepsBody = body(&raw)?;
        let (text, pointer) = match (b.step, b.steps) {
            (Some(t), _) => (t, "/step"),
            (None, Some(t)) => (t, "/steps"),
            (None, None) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "10004",
                    "Missing required parameter",
                    "Send {\"step\": \"say ...\"}.",
                )
                .with_pointer("/step"))
            }
        };
        let parsed = script(&text, pointer)?;
        let added = parsed.steps.len();
        s.with_world(|w, now| w.append_steps(now, &id, parsed.steps)).map_err(|e| match e {
            AppendError::Unknown => ApiError::not_found(format!("Call {id} was not found.")),
            AppendError::Ended => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "90018",
                "Call has already ended",
                "This call is no longer active and can't take new steps.",
            ),
            AppendError::NotLive => ApiError::new(
                StatusCode::CONFLICT,
                "10015",
                "Call is not live",
                "Only calls placed with \"live\": true take new steps.",
            ),
        })?;
        Ok(json!({ "data": { "result": "ok", "steps_added": added } }))
    })())
}

#[derive(Deserialize)]
struct WaitQuery {
    timeout_secs: Option<f64>,
}

async fn wait(State(s): State<Arc<Shared>>, Path(id): Path<String>, Query(q): Query<WaitQuery>) -> Response {
    let virtual_timeout = secs(q.timeout_secs.unwrap_or(600.0));
    respond(match s.wait_hangup(&id, virtual_timeout).await {
        Some((st, timed_out)) => Ok(json!({ "data": st, "timed_out": timed_out })),
        None => Err(ApiError::not_found(format!("Call {id} was not found."))),
    })
}

async fn report(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Some(reporter) = s.reporter.clone() else {
        return ApiError::not_found("This sandbox has no call reporter configured.").into_response();
    };
    match reporter(id.clone()).await {
        Some(v) => (StatusCode::OK, Json(v)).into_response(),
        None => ApiError::not_found(format!("No report for call {id}.")).into_response(),
    }
}

/// `GET /sandbox/v1/calls/{id}/heard`: what the party on the leg hears, as
/// newline-delimited JSON ([`super::Heard`], one object per line), until the
/// leg hangs up.
async fn heard(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let rx = match s.listen(&id) {
        Ok(rx) => rx,
        Err(super::SandboxError::CallEnded(_)) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "90018",
                "Call has already ended",
                "This call is no longer active: it hears nothing.",
            )
            .into_response()
        }
        Err(_) => return ApiError::not_found(format!("Call {id} was not found.")).into_response(),
    };
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        let heard = rx.recv().await?;
        let mut line = serde_json::to_vec(&heard).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx))
    });
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(lines))
        .into_response()
}

#[derive(Deserialize)]
struct PartyBody {
    number: String,
    behavior: String,
    script: Option<String>,
}

async fn set_party(State(s): State<Arc<Shared>>, raw: Bytes) -> Response {
    respond((|| {
        let b: PartyBody = body(&raw)?;
        if b.number.trim().is_empty() {
            return Err(ApiError::invalid("/number", "number must not be empty"));
        }
        let mut behavior: PartyBehavior =
            b.behavior.parse().map_err(|e: super::BehaviorError| ApiError::invalid("/behavior", e.0))?;
        if let Some(text) = &b.script {
            let parsed = script(text, "/script")?;
            match &mut behavior {
                PartyBehavior::Answer { script, .. } => *script = Some(parsed),
                _ => return Err(ApiError::invalid("/script", "only an answering party can have a script")),
            }
        }
        let shown = behavior.to_string();
        let number = b.number.trim().to_string();
        s.with_world(|w, _| w.set_party(number.clone(), behavior));
        Ok(json!({ "data": { "number": number, "behavior": shown } }))
    })())
}

async fn webhooks(State(s): State<Arc<Shared>>) -> Response {
    Json(json!({ "data": s.delivery.log() })).into_response()
}

async fn leg_audit(State(s): State<Arc<Shared>>) -> Response {
    Json(json!({ "data": s.with_world(|w, _| w.leg_audit()) })).into_response()
}

async fn commands(State(s): State<Arc<Shared>>) -> Response {
    let log = s.commands.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).to_vec()).unwrap_or_default();
    Json(json!({ "data": log })).into_response()
}

async fn public_key(State(s): State<Arc<Shared>>) -> Response {
    Json(json!({ "public_key": s.public_key })).into_response()
}
