//! `POST /webhooks/telnyx`: verify the signature over the raw bytes (fresh
//! timestamp, never reused for other bytes), parse, de-duplicate on the event
//! id, route, hold room in the conversation's inbox, store the raw webhook,
//! hand it to the conversation's worker and acknowledge. A delivery of an
//! event already stored (a carrier retry, or the very same signed bytes
//! again) is acknowledged as a duplicate and changes nothing. When the
//! conversation's inbox is full the webhook is refused with `503` before it
//! is remembered as seen or stored, so that Telnyx's next delivery of it is
//! taken. The slow work (scoring, commands) happens after the acknowledgement.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::calls::{Route, Webhook, WorkerMsg};
use super::dedupe::Seen;
use super::App;
use crate::store::{WebhookOutcome, WebhookRecord};
use crate::telnyx::events::{Envelope, Event};
use crate::telnyx::messaging::{is_messaging_event, MessageEvent};
use crate::telnyx::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub(super) fn reply(status: StatusCode, key: &str, value: impl Into<String>) -> Response {
    (status, Json(json!({ key: value.into() }))).into_response()
}

/// The webhook endpoint.
pub async fn receive(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let t0 = Instant::now();
    let response = handle(&app, &headers, &body, t0).await;
    app.metrics.ack(t0.elapsed());
    response
}

async fn handle(app: &App, headers: &HeaderMap, body: &Bytes, t0: Instant) -> Response {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ok =
            ct.to_str().map(|s| s.trim_start().to_ascii_lowercase().starts_with("application/json")).unwrap_or(false);
        if !ok {
            app.metrics.webhook("-", "bad_content_type");
            return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, "error", "webhooks must be application/json");
        }
    }
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header(SIGNATURE_HEADER).map(str::trim);
    // A signature seen before over other bytes is a replay, whatever it verifies as.
    if signature.is_some_and(|sig| app.signatures.check(sig, body, t0) == Seen::Other) {
        app.metrics.webhook("-", "replayed");
        tracing::warn!("webhook refused: a signature seen before with another body (replay)");
        return reply(StatusCode::UNAUTHORIZED, "error", "signature refused: replayed for another body");
    }
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = app.verifier.verify(signature, header(TIMESTAMP_HEADER), body, now) {
        app.metrics.webhook("-", "bad_signature");
        tracing::warn!(error = %e, "webhook refused: signature");
        return reply(StatusCode::UNAUTHORIZED, "error", format!("signature refused: {e}"));
    }
    // The same signed bytes again are a repeated delivery: its event id says
    // whether it was processed (then it is acknowledged as a duplicate).
    if let Some(sig) = signature {
        app.signatures.remember(sig, body, t0);
    }
    let envelope = match Envelope::parse(body) {
        Ok(e) => e,
        Err(e) => {
            app.metrics.webhook("-", "malformed");
            return reply(StatusCode::BAD_REQUEST, "error", e.to_string());
        }
    };
    if is_messaging_event(&envelope.data.event_type) {
        return message_webhook(app, &envelope, body, t0).await;
    }
    let event = match envelope.event() {
        Ok(e) => e,
        Err(e) => {
            app.metrics.webhook(&envelope.data.event_type, "malformed");
            return reply(StatusCode::BAD_REQUEST, "error", e.to_string());
        }
    };
    let event_id = envelope.data.id.clone();
    if event_id.is_empty() || event_id.len() > 200 {
        app.metrics.webhook(event.event_type(), "malformed");
        return reply(StatusCode::BAD_REQUEST, "error", "data.id must be a non-empty event id");
    }
    let duplicate = || {
        app.metrics.webhook(event.event_type(), "duplicate");
        reply(StatusCode::OK, "status", "duplicate")
    };
    // A repeat of an event already taken; asked again below, once room is held.
    if app.seen.check(&event_id, &[], t0) != Seen::New {
        return duplicate();
    }
    let mut route = app.calls.route(&event);
    let unknown = matches!(event, Event::Unknown { .. });
    if route == Route::Unrouted && !unknown && app.calls.shared().ownership.is_some() {
        route = super::cluster::route_stored(app, &event).await.unwrap_or(route);
    }
    let outcome = match (&route, unknown) {
        (_, true) => WebhookOutcome::UnknownEvent,
        (Route::Unrouted, _) => WebhookOutcome::Unrouted,
        (Route::To(_) | Route::New(_) | Route::DialIn, false) => WebhookOutcome::Accepted,
    };
    if unknown {
        tracing::info!(event_type = event.event_type(), "unknown webhook event logged and ignored");
    }
    let conversation_id = match &route {
        Route::To(c) | Route::New(c) => Some(c.clone()),
        Route::DialIn | Route::Unrouted => None,
    };
    // Room in the worker's inbox before the event counts as seen: only a
    // webhook its worker will take is remembered, stored and acknowledged.
    // Under several instances the store is the inbox: see `cluster::accept`.
    let cluster = app.calls.shared().ownership.is_some();
    let slot = match (&conversation_id, outcome) {
        (Some(conv), WebhookOutcome::Accepted) if !cluster => {
            match app.calls.reserve(conv, matches!(route, Route::New(_))) {
                Ok(slot) => Some(slot),
                Err(busy) => {
                    app.metrics.webhook(event.event_type(), "busy");
                    tracing::warn!(conversation = %conv, event_type = event.event_type(), "webhook refused: {busy}");
                    let retry = [(RETRY_AFTER, "1")];
                    return (StatusCode::SERVICE_UNAVAILABLE, retry, Json(json!({ "error": busy.to_string() })))
                        .into_response();
                }
            }
        }
        _ => None,
    };
    if !app.seen.insert(&event_id, t0) {
        return duplicate();
    }
    let received_at = chrono::Utc::now();
    let record = WebhookRecord {
        event_id: event_id.clone(),
        received_at,
        event_type: event.event_type().to_string(),
        call_control_id: event.call_control_id().map(str::to_string),
        conversation_id: conversation_id.clone(),
        attempt: envelope.meta.as_ref().map(|m| m.attempt),
        outcome,
        body: String::from_utf8_lossy(body).into_owned(),
        wake_others: true,
    };
    if cluster {
        let webhook = Webhook::new(event, &envelope, received_at, t0);
        return super::cluster::accept(app, record, route, webhook).await;
    }
    // Stored in the order the worker will see it: a replay after a crash then
    // processes webhooks exactly as they were first processed, so the
    // commands it decides again carry the same command_ids.
    let order = app.dispatch_order.lock().unwrap_or_else(|p| p.into_inner());
    let committed = app.store.record_webhook(record);
    app.metrics.webhook(event.event_type(), outcome.as_str());
    if let (Route::DialIn, WebhookOutcome::Accepted) = (&route, outcome) {
        app.calls.dial_in(&event);
    }
    if let Some(slot) = slot {
        slot.send(WorkerMsg::Webhook(Webhook::new(event, &envelope, received_at, t0)));
    }
    drop(order);
    // Acknowledge once the raw webhook is on disk, so an accepted event survives
    // a crash; when the store is failing, acknowledge anyway and keep it queued.
    if !app.store.health().is_failing() {
        let _ = tokio::time::timeout(app.ack_wait, committed).await;
    }
    reply(StatusCode::OK, "status", outcome.as_str())
}

/// A messaging webhook (`message.sent`, `message.finalized`, …), verified
/// like any other: de-duplicated on its event id, stored, and a delivery
/// update handed to the alerts. It belongs to no call; other messaging
/// events are logged and ignored.
async fn message_webhook(app: &App, envelope: &Envelope, body: &Bytes, t0: Instant) -> Response {
    let event_type = envelope.data.event_type.as_str();
    let event_id = envelope.data.id.as_str();
    if event_id.is_empty() || event_id.len() > 200 {
        app.metrics.webhook(event_type, "malformed");
        return reply(StatusCode::BAD_REQUEST, "error", "data.id must be a non-empty event id");
    }
    let event = match MessageEvent::from_parts(event_type, &envelope.data.payload) {
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            app.metrics.webhook(event_type, "malformed");
            return reply(StatusCode::BAD_REQUEST, "error", format!("{event_type} payload: {e}"));
        }
        None => None,
    };
    if !app.seen.insert(event_id, t0) {
        app.metrics.webhook(event_type, "duplicate");
        return reply(StatusCode::OK, "status", "duplicate");
    }
    let outcome = if event.is_some() { WebhookOutcome::Message } else { WebhookOutcome::UnknownEvent };
    let committed = app.store.record_webhook(WebhookRecord {
        event_id: event_id.to_string(),
        received_at: chrono::Utc::now(),
        event_type: event_type.to_string(),
        call_control_id: None,
        conversation_id: None,
        attempt: envelope.meta.as_ref().map(|m| m.attempt),
        outcome,
        body: String::from_utf8_lossy(body).into_owned(),
        wake_others: true,
    });
    app.metrics.webhook(event_type, outcome.as_str());
    match event {
        Some(e) => app.calls.shared().alerts.delivery(e),
        None => tracing::info!(event_type, "messaging webhook logged and ignored"),
    }
    if !app.store.health().is_failing() {
        let _ = tokio::time::timeout(app.ack_wait, committed).await;
    }
    reply(StatusCode::OK, "status", outcome.as_str())
}
