//! The admin and live-stream API (token-protected), plus health and metrics.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v1/conversations` | conversations in memory (active first) |
//! | GET | `/api/v1/conversations/{id}` | the report of one conversation (stored) |
//! | GET | `/api/v1/conversations/{id}/events` | SSE: the conversation so far, then live events until it ends |
//! | POST | `/api/v1/conversations/{id}/transfer` | manual transfer `{"queue"}` or `{"to"}` (id may be a call_control_id) |
//! | POST | `/api/v1/calls` | place an outbound call through the IVR `{"to", "from"?}` |
//! | GET | `/api/v1/calls/{call_control_id}/report?wait_secs=N` | wait for the call to end, then its report |
//! | GET | `/api/v1/board/events` | SSE: every conversation in memory (`snapshot`), then each row as it changes (`call`, `removed`) |
//! | GET | `/api/v1/stats` | latency percentiles, counts, store health, memory (`?latency=false`: without percentiles, cheap) |
//! | POST | `/api/v1/stats/reset`, `/api/v1/audit/…` | load runs against the embedded sandbox only: see [`audit`](crate::loadtest::audit) |
//! | GET | `/healthz`, `/readyz`, `/metrics` | liveness, readiness, Prometheus (no token) |
//!
//! Every `{id}` is a conversation id or a call_control_id, whole or by a unique prefix of at least
//! four characters; an ambiguous prefix is answered 400 `{"code": "ambiguous_id", "candidates": […]}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;

use super::calls::ManualError;
use super::live::BoardSubscription;
use super::App;
use crate::session::{DomainEvent, ManualTransfer, Recorded};
use crate::store::IdMatch;

/// An admin API error answer: `{"error", "code"}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string(), "code": code}))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Requires `Authorization: Bearer <admin token>`.
pub async fn require_token(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if same(t.as_bytes(), app.admin_token.as_bytes()) => next.run(req).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "bad_token", "the admin token is wrong"),
        None => error(StatusCode::UNAUTHORIZED, "no_token", "send the admin token as `Authorization: Bearer TOKEN`"),
    }
}

/// `GET /healthz`
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 503 while the store cannot write.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let h = app.store.health();
    if h.is_failing() {
        let msg = h.last_error().unwrap_or_default();
        return error(StatusCode::SERVICE_UNAVAILABLE, "store_failing", format!("store writes failing: {msg}"));
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// `GET /metrics`
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let h = app.store.health();
    let mut text = app.metrics.render();
    text.push_str(&format!(
        "# HELP ivrx_store_pending Store writes waiting.\n# TYPE ivrx_store_pending gauge\nivrx_store_pending {}\n\
         # HELP ivrx_store_failing 1 while store writes fail.\n# TYPE ivrx_store_failing gauge\nivrx_store_failing {}\n",
        h.pending.load(std::sync::atomic::Ordering::Relaxed),
        h.is_failing() as u8
    ));
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

/// `GET /api/v1/conversations`
pub async fn list(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "conversations": app.live.list() })).into_response()
}

/// Waits for queued writes before a read, but not for long: while the store
/// is failing the read answers from what is already on disk.
async fn flush_briefly(app: &App) {
    let wait = if app.store.health().is_failing() { Duration::from_millis(100) } else { Duration::from_secs(5) };
    let _ = tokio::time::timeout(wait, app.store.flush()).await;
}

/// The conversation `given` names (an id or call_control_id, whole or a unique
/// prefix), among the calls in progress and the stored ones; an ambiguous
/// prefix is answered 400 `ambiguous_id` with the candidates. Nothing found
/// gives `given` back, for the caller's own not-found answer.
async fn resolve(app: &App, given: &str) -> Result<String, Response> {
    let given = crate::store::ids::as_given(given);
    if let Some(id) = app.calls.resolve(given) {
        return Ok(id);
    }
    let live = app.calls.starting_with(given);
    let found = live.or(app.store.find_conversation(given).await.unwrap_or(IdMatch::None));
    match found {
        IdMatch::One(id) => Ok(id),
        IdMatch::None => Ok(given.to_string()),
        IdMatch::Many(candidates) => Err((
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": IdMatch::ambiguous_message(given, &candidates),
                "code": "ambiguous_id",
                "candidates": candidates,
            })),
        )
            .into_response()),
    }
}

async fn report_of(app: &App, id: &str) -> Response {
    flush_briefly(app).await;
    match app.store.report(id).await {
        Ok(Some(r)) => Json(r).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no conversation {id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
    }
}

/// `GET /api/v1/conversations/{id}`
pub async fn conversation(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match resolve(&app, &id).await {
        Ok(id) => report_of(&app, &id).await,
        Err(ambiguous) => ambiguous,
    }
}

/// A manual transfer request body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Queue to transfer to.
    pub queue: Option<String>,
    /// Number to transfer to.
    pub to: Option<String>,
}

/// `POST /api/v1/conversations/{id}/transfer`
pub async fn transfer(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    body: Option<Json<TransferBody>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let req = ManualTransfer { queue: body.queue, to: body.to };
    let id = match resolve(&app, &id).await {
        Ok(id) => id,
        Err(ambiguous) => return ambiguous,
    };
    match app.calls.manual_transfer(&id, req).await {
        Ok(conv) => Json(json!({"conversation_id": conv, "status": "transferring"})).into_response(),
        Err(ManualError::NotFound(id)) => {
            error(StatusCode::NOT_FOUND, "not_found", format!("no conversation in progress with id {id:?}"))
        }
        Err(ManualError::Refused(r)) => error(StatusCode::CONFLICT, r.code(), r),
        Err(ManualError::Gone) => error(StatusCode::CONFLICT, "ended", "the call has already ended"),
        Err(ManualError::Busy(busy)) => error(StatusCode::SERVICE_UNAVAILABLE, "busy", busy),
        Err(e @ ManualError::Unanswered(_)) => error(StatusCode::GATEWAY_TIMEOUT, "unanswered", e),
    }
}

/// An outbound call request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialBody {
    /// Number to call.
    pub to: String,
    /// Caller id (default: the IVR number).
    pub from: Option<String>,
}

/// `POST /api/v1/calls`
pub async fn dial(State(app): State<Arc<App>>, Json(body): Json<DialBody>) -> Response {
    if body.to.trim().is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "missing_to", "`to` is required");
    }
    let from = body.from.unwrap_or_else(|| app.calls.shared().settings.ivr.number.clone());
    let conv = app.calls.dial_out(body.to, from);
    (StatusCode::ACCEPTED, Json(json!({"conversation_id": conv}))).into_response()
}

/// `?wait_secs=N`
#[derive(Debug, Default, Deserialize)]
pub struct WaitQuery {
    /// Longest wait for the call to end.
    pub wait_secs: Option<f64>,
}

/// Waits (bounded) until a conversation has ended.
pub async fn wait_ended(app: &App, conv: &str, wait: Duration) {
    let Some(mut sub) = app.live.subscribe(conv) else { return };
    if sub.ended {
        return;
    }
    let _ = tokio::time::timeout(wait, async {
        loop {
            match sub.rx.recv().await {
                Ok(r) if matches!(r.event, DomainEvent::CallEnded { .. }) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// Finds the conversation of a call: in memory, else in the store. A call that
/// has just started may not be routed yet, so this retries briefly.
async fn conversation_of_call(app: &App, ccid: &str) -> Option<String> {
    for _ in 0..40 {
        if let Some(c) = app.calls.resolve(ccid) {
            return Some(c);
        }
        flush_briefly(app).await;
        if let Ok(Some(c)) = app.store.conversation_for_call(ccid).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The report of the conversation a call belongs to, once it has ended
/// (waiting at most `wait`). Used by the sandbox's `/report` too.
pub async fn report_for_call(app: &App, ccid: &str, wait: Duration) -> Option<crate::store::CallReport> {
    let conv = conversation_of_call(app, ccid).await?;
    wait_ended(app, &conv, wait).await;
    flush_briefly(app).await;
    app.store.report(&conv).await.ok()?
}

/// `GET /api/v1/calls/{call_control_id}/report`
pub async fn call_report(
    State(app): State<Arc<App>>,
    Path(ccid): Path<String>,
    Query(q): Query<WaitQuery>,
) -> Response {
    let secs = q.wait_secs.filter(|s| s.is_finite()).unwrap_or(0.0);
    let wait = Duration::from_secs_f64(secs.clamp(0.0, 3600.0));
    match report_for_call(&app, &ccid, wait).await {
        Some(r) => Json(r).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", format!("no conversation for call {ccid:?}")),
    }
}

/// `?latency=false`
#[derive(Debug, Default, Deserialize)]
pub struct StatsQuery {
    /// Include the latency percentiles (sorting every sample); default true.
    pub latency: Option<bool>,
}

/// `GET /api/v1/stats`
pub async fn stats(State(app): State<Arc<App>>, Query(q): Query<StatsQuery>) -> Response {
    let h = app.store.health();
    let latency = q.latency.unwrap_or(true);
    let summary = |s: &super::metrics::LatencySamples| latency.then(|| s.summary());
    Json(json!({
        "active_conversations": app.calls.active_count(),
        "decision_latency": summary(&app.metrics.decision_samples),
        "ack_latency": summary(&app.metrics.ack_samples),
        "store": {
            "failing": h.is_failing(),
            "last_error": h.last_error(),
            "pending": h.pending.load(std::sync::atomic::Ordering::Relaxed),
            "written": h.written.load(std::sync::atomic::Ordering::Relaxed),
        },
        "memory": crate::sysinfo::memory(),
    }))
    .into_response()
}

fn sse_event(r: &Recorded) -> SseEvent {
    let data = serde_json::to_string(r).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event(r.event.kind()).id(r.n.to_string()).data(data)
}

/// `GET /api/v1/conversations/{id}/events`: Server-Sent Events, one per domain
/// event (`event:` is its type, `data:` the JSON), first the conversation so
/// far, then live; the stream ends after `call_ended`.
pub async fn events(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let id = match resolve(&app, &id).await {
        Ok(id) => id,
        Err(ambiguous) => return ambiguous,
    };
    if let Some(sub) = app.live.subscribe(&id) {
        let last = sub.history.last().map(|r| r.n).unwrap_or(0);
        let done = sub.ended;
        let history: Vec<Result<SseEvent, Infallible>> = sub.history.iter().map(|r| Ok(sse_event(r))).collect();
        let live = stream::unfold((sub.rx, last, done), |(mut rx, last, done)| async move {
            if done {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(r) if r.n <= last && !matches!(r.event, DomainEvent::Interim { .. }) => continue,
                    Ok(r) => {
                        let ended = matches!(r.event, DomainEvent::CallEnded { .. });
                        let n = r.n.max(last);
                        return Some((Ok(sse_event(&r)), (rx, n, ended)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                        let e =
                            SseEvent::default().event("error").data(format!("{{\"error\":\"lagged\",\"missed\":{k}}}"));
                        return Some((Ok(e), (rx, last, true)));
                    }
                    Err(_) => return None,
                }
            }
        });
        let s = stream::iter(history).chain(live);
        return sse(s);
    }
    // Several instances: told of what is committed from now on.
    let committed = app.calls.shared().ownership.as_ref().and_then(|_| app.live.follow_stored(&id));
    // Not in memory: replay from the store, once the conversation's last
    // writes (queued before it left memory) are in.
    flush_briefly(&app).await;
    match app.store.events(&id, 0).await {
        Ok(events) if !events.is_empty() => {
            let items: Vec<Result<SseEvent, Infallible>> = events.iter().map(|r| Ok(sse_event(r))).collect();
            let ended = events.iter().any(|r| matches!(r.event, DomainEvent::CallEnded { .. }));
            match committed {
                Some(committed) if !ended => {
                    let last = events.last().map_or(0, |r| r.n);
                    sse(stream::iter(items).chain(follow_stored(app.clone(), id, last, committed)))
                }
                _ => sse(stream::iter(items)),
            }
        }
        Ok(_) => error(StatusCode::NOT_FOUND, "not_found", format!("no conversation {id:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
    }
}

/// The board stream's `snapshot` event.
fn board_snapshot(sub: &BoardSubscription) -> Bytes {
    let data = json!({ "calls": sub.snapshot, "at": chrono::Utc::now().to_rfc3339() });
    Bytes::from(format!("event: snapshot\ndata: {data}\n\n"))
}

/// How long the board stream may be silent before a comment keeps it open.
const BOARD_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// `GET /api/v1/board/events`: Server-Sent Events for the boards: first
/// `snapshot` (`{"calls": [row, …]}`, riskiest first), then `call` (`{"call":
/// row}`) each time a row changes and `removed` (`{"conversation_id"}`) when
/// a conversation leaves memory. A board that falls behind gets a new snapshot.
/// Rows are redacted and serialised once for every board by the hub's board
/// feed, never on the calls' path, and each of its batches is written out
/// once and sent as it is to every board: one write per batch per board.
pub async fn board_events(State(app): State<Arc<App>>) -> Response {
    let sub = app.live.board();
    let first = board_snapshot(&sub);
    let changes = stream::unfold((app, sub.rx), |(app, mut rx)| async move {
        let next = match tokio::time::timeout(BOARD_KEEP_ALIVE, rx.recv()).await {
            Err(_) => Bytes::from_static(b":\n\n"),
            Ok(Ok(batch)) => batch,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                let sub = app.live.board();
                let snapshot = board_snapshot(&sub);
                return Some((Ok::<_, Infallible>(snapshot), (app, sub.rx)));
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
        };
        Some((Ok(next), (app, rx)))
    });
    let body = axum::body::Body::from_stream(stream::once(async { Ok::<_, Infallible>(first) }).chain(changes));
    ([(CONTENT_TYPE, "text/event-stream"), (CACHE_CONTROL, "no-cache")], body).into_response()
}

/// How often a follower of a call handled elsewhere looks in the store
/// without being told (a notification may be lost with its connection).
const FOLLOW_RECHECK: Duration = Duration::from_secs(2);

/// Several instances: the events of a call another instance handles, read
/// from the store after `last` each time a checkpoint there commits, until
/// it ends.
fn follow_stored(
    app: Arc<App>,
    id: String,
    last: u64,
    committed: tokio::sync::watch::Receiver<u64>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold((committed, last, false), move |(mut committed, last, done)| {
        let (app, id) = (app.clone(), id.clone());
        async move {
            if done {
                return None;
            }
            loop {
                // Its sender gone (not expected), the store is looked in now and then.
                if let Ok(Err(_)) = tokio::time::timeout(FOLLOW_RECHECK, committed.changed()).await {
                    tokio::time::sleep(FOLLOW_RECHECK).await;
                }
                let Ok(new) = app.store.events(&id, last).await else { continue };
                let Some(n) = new.last().map(|r| r.n) else { continue };
                let ended = new.iter().any(|r| matches!(r.event, DomainEvent::CallEnded { .. }));
                let items: Vec<Result<SseEvent, Infallible>> = new.iter().map(|r| Ok(sse_event(r))).collect();
                return Some((stream::iter(items), (committed, n, ended)));
            }
        }
    })
    .flatten()
}

fn sse<S>(s: S) -> Response
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))).into_response()
}

use futures_util::StreamExt as _;
