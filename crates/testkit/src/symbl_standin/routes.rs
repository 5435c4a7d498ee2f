//! The stand-in's HTTP and WebSocket API, shaped as Symbl documents it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ivrx_symbl::TextRequest;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::state::{RecordedRequest, Refusal};
use super::Shared;

/// The whole API.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1/process/text", post(process_text))
        .route("/v1/process/text/{conversation_id}", axum::routing::put(append_text))
        .route("/v1/job/{job_id}", get(job))
        .route("/v1/conversations/{id}/messages", get(messages))
        .route("/v1/conversations/{id}/topics", get(topics))
        .route("/v1/conversations/{id}/trackers-detected", get(trackers))
        .route("/v1/endpoint:connect", post(endpoint_connect))
        .route("/session/subscribe/{connection_id}", get(subscribe))
        .route_layer(middleware::from_fn_with_state(shared.clone(), require_token));
    Router::new()
        .route("/oauth2/token:generate", post(token_generate))
        .merge(api)
        .layer(middleware::from_fn_with_state(shared.clone(), faults_and_log))
        .with_state(shared)
}

fn refusal((status, message): Refusal) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "message": message }))).into_response()
}

/// Delay, injected failures and the request log, around every request.
async fn faults_and_log(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let delay = shared.lock().faults.delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let injected = {
        let mut state = shared.lock();
        if state.faults.fail_next > 0 {
            state.faults.fail_next -= 1;
            Some((state.faults.fail_status, state.faults.retry_after.clone()))
        } else {
            None
        }
    };
    let response = match injected {
        Some((status, retry_after)) => {
            let mut r = refusal((status, "fault injected by the Symbl stand-in".into()));
            if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            r
        }
        None => next.run(request).await,
    };
    shared.lock().log.push(RecordedRequest { method, path, status: response.status().as_u16() });
    response
}

/// 401 unless the request carries a valid token (`Authorization: Bearer` or `x-api-key`).
async fn require_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let token = bearer_or_api_key(request.headers());
    let valid = token.is_some_and(|t| shared.lock().token_valid(&t));
    if !valid {
        return refusal((401, "Unauthorized. Please generate a new access token.".into()));
    }
    next.run(request).await
}

fn bearer_or_api_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| (400, format!("Bad Request: {e}")))
}

async fn token_generate(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: Value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return refusal(r),
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    let mut state = shared.lock();
    let accepted = field("type") == "application"
        && field("appId") == shared.config.app_id
        && field("appSecret") == shared.config.app_secret
        && !state.faults.refuse_tokens;
    if !accepted {
        return refusal((401, "Unauthorized: invalid appId or appSecret".into()));
    }
    let lifetime = std::time::Duration::from_secs(shared.config.token_lifetime_secs);
    let token = state.issue_token(lifetime);
    Json(json!({"accessToken": token, "expiresIn": shared.config.token_lifetime_secs})).into_response()
}

fn text_request(body: &[u8]) -> Result<TextRequest, Refusal> {
    let request: TextRequest = parse_json(body)?;
    if request.messages.is_empty() {
        return Err((400, "Bad Request: messages must not be empty".into()));
    }
    Ok(request)
}

async fn process_text(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match text_request(&body) {
        Ok(r) => r,
        Err(r) => return refusal(r),
    };
    let polls = shared.config.job_polls_in_progress;
    let (conversation_id, job_id) = shared.lock().create_text_job(&request.messages, request.trackers, polls);
    (StatusCode::CREATED, Json(json!({"conversationId": conversation_id, "jobId": job_id}))).into_response()
}

async fn append_text(State(shared): State<Arc<Shared>>, Path(conversation_id): Path<String>, body: Bytes) -> Response {
    let request = match text_request(&body) {
        Ok(r) => r,
        Err(r) => return refusal(r),
    };
    let polls = shared.config.job_polls_in_progress;
    let appended = shared.lock().append_text_job(&conversation_id, &request.messages, request.trackers, polls);
    match appended {
        Ok(job_id) => {
            (StatusCode::CREATED, Json(json!({"conversationId": conversation_id, "jobId": job_id}))).into_response()
        }
        Err(r) => refusal(r),
    }
}

async fn job(State(shared): State<Arc<Shared>>, Path(job_id): Path<String>) -> Response {
    let status = shared.lock().poll_job(&job_id);
    match status {
        Ok(status) => Json(json!({"id": job_id, "status": status})).into_response(),
        Err(r) => refusal(r),
    }
}

fn wants_sentiment(query: &HashMap<String, String>) -> bool {
    query.get("sentiment").is_some_and(|v| v == "true")
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let answer = shared.lock().messages_json(&id, wants_sentiment(&query));
    answer.map(Json).map(IntoResponse::into_response).unwrap_or_else(refusal)
}

async fn topics(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let answer = shared.lock().topics_json(&id, wants_sentiment(&query));
    answer.map(Json).map(IntoResponse::into_response).unwrap_or_else(refusal)
}

async fn trackers(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let answer = shared.lock().trackers_json(&id);
    answer.map(Json).map(IntoResponse::into_response).unwrap_or_else(refusal)
}

async fn endpoint_connect(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: Value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return refusal(r),
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match text(&body, "operation").as_str() {
        "start" => {
            let endpoint = body.get("endpoint").cloned().unwrap_or(Value::Null);
            let valid = match text(&endpoint, "type").as_str() {
                "pstn" => !text(&endpoint, "phoneNumber").is_empty(),
                "sip" => !text(&endpoint, "uri").is_empty(),
                _ => false,
            };
            if !valid {
                return refusal((
                    400,
                    "Bad Request: endpoint needs type pstn with phoneNumber, or sip with uri".into(),
                ));
            }
            if let Some(status) = shared.lock().faults.refuse_connections {
                return refusal((status, "the telephony endpoint cannot be reached (fault injected)".into()));
            }
            let (connection_id, conversation_id) = shared.lock().start_connection();
            let phone_number = text(&endpoint, "phoneNumber");
            let dtmf = endpoint.get("dtmf").and_then(Value::as_str).map(str::to_string);
            shared.lock().dialled.push((connection_id.clone(), phone_number.clone(), dtmf.clone()));
            if let Some(dialer) = shared.dialer() {
                let speech =
                    super::SpeechSink { shared: Arc::downgrade(&shared), connection_id: connection_id.clone() };
                dialer.dial(super::PstnDial { connection_id: connection_id.clone(), phone_number, dtmf, speech });
            }
            let ws_base = shared.base_url.replacen("http://", "ws://", 1);
            Json(json!({
                "connectionId": connection_id,
                "conversationId": conversation_id,
                "resultWebSocketUrl": format!("{ws_base}/events/{connection_id}"),
                "eventUrl": format!("{}/v1/event/{connection_id}", shared.base_url),
            }))
            .into_response()
        }
        "stop" => {
            let connection_id = text(&body, "connectionId");
            let stopped = shared.lock().stop_connection(&connection_id);
            match stopped {
                Ok(conversation_id) => {
                    if let Some(dialer) = shared.dialer() {
                        dialer.hang_up(&connection_id);
                    }
                    Json(json!({"connectionId": connection_id, "conversationId": conversation_id})).into_response()
                }
                Err(r) => refusal(r),
            }
        }
        other => refusal((400, format!("Bad Request: unknown operation {other:?}"))),
    }
}

async fn subscribe(
    State(shared): State<Arc<Shared>>,
    Path(connection_id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Registered before the handshake answer, so nothing pushed after the
    // client's connect returns can be missed.
    let (tx, rx) = mpsc::unbounded_channel();
    let registered = shared.lock().subscribe(&connection_id, tx);
    if let Err(r) = registered {
        return refusal(r);
    }
    upgrade.on_upgrade(move |socket| forward(socket, rx))
}

/// Sends pushed frames until the connection stops or the client leaves.
async fn forward(mut socket: WebSocket, mut rx: mpsc::UnboundedReceiver<String>) {
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
