//! Telnyx Messaging in the sandbox: `POST /v2/messages` validates and queues
//! an SMS like Telnyx does, answers with the outbound message, and delivers
//! its signed `message.sent` and `message.finalized` webhooks (to the
//! message's `webhook_url`, else the application's). Every message is kept
//! and listed at `GET /sandbox/v1/messages`. Chaos can refuse a message
//! (`422`), answer late (the message is queued all the same) or fail its
//! delivery (`message.finalized` with `delivery_failed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ivrx_telnyx::errors::{codes, ApiErrorItem};
use ivrx_telnyx::messaging::{DeliveryStatus, MessageCreate, MessageEventType, OutboundMessage, Recipient, Sender};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{parse_json, ApiError};
use super::chaos::{ChaosRng, MessageFault};
use super::world::Emitted;
use super::Shared;

/// Telnyx Messaging error codes the sandbox answers with.
pub mod message_codes {
    /// The destination cannot be reached (the API refuses the message).
    pub const NOT_ROUTABLE: &str = "40001";
    /// The carrier could not deliver the message.
    pub const UNDELIVERABLE: &str = "40008";
    /// The `from` address is not a valid sender.
    pub const INVALID_FROM: &str = "40305";
    /// The `to` address is not a valid destination.
    pub const INVALID_TO: &str = "40310";
}

/// One message the sandbox took, as `GET /sandbox/v1/messages` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxMessage {
    /// The message id.
    pub id: String,
    /// The sender.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The text.
    pub text: String,
    /// Its delivery status as it stands (`queued`, `sent`, `delivered`, `delivery_failed`).
    pub status: String,
    /// The messaging profile named in the request.
    pub messaging_profile_id: Option<String>,
    /// When the API took it (real time, RFC 3339).
    pub received_at: String,
}

/// The messages the sandbox took.
pub(crate) struct Messages {
    list: Mutex<Vec<SandboxMessage>>,
    /// Each message's webhooks are delivered in order, as one session of their own.
    next_session: AtomicU64,
    rng: Mutex<ChaosRng>,
}

/// Message webhook sessions, apart from call sessions.
const SESSION_BASE: u64 = 1 << 62;

impl Messages {
    pub fn new(seed: Option<u64>) -> Self {
        Self {
            list: Mutex::default(),
            next_session: AtomicU64::new(SESSION_BASE),
            rng: Mutex::new(ChaosRng::new(seed, 1)),
        }
    }

    /// Every message, oldest first.
    pub fn all(&self) -> Vec<SandboxMessage> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_status(&self, id: &str, status: &DeliveryStatus) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = list.iter_mut().find(|m| m.id == id) {
            m.status = status.as_str().to_string();
        }
    }
}

fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a send body as Telnyx does: the error names the field.
fn validate(v: Value) -> Result<MessageCreate, ApiError> {
    for field in ["to", "text"] {
        if v.get(field).and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::MISSING_PARAMETER,
                "Missing required parameter",
                format!("The '{field}' parameter is required."),
            )
            .with_pointer(format!("/{field}")));
        }
    }
    let body: MessageCreate = serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !is_e164(&body.to) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            message_codes::INVALID_TO,
            "Invalid 'to' address",
            "The 'to' address must be a +E.164 phone number.",
        )
        .with_pointer("/to"));
    }
    if !is_e164(&body.from) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            message_codes::INVALID_FROM,
            "Invalid 'from' address",
            "The 'from' address must be a +E.164 phone number of your account.",
        )
        .with_pointer("/from"));
    }
    if body.kind.as_deref().is_some_and(|k| k != "SMS") {
        return Err(ApiError::invalid("/type", "The sandbox sends SMS only."));
    }
    Ok(body)
}

/// The message as the API and its webhooks show it.
fn outbound(m: &SandboxMessage, status: &DeliveryStatus, errors: Vec<ApiErrorItem>) -> OutboundMessage {
    OutboundMessage {
        id: m.id.clone(),
        record_type: Some("message".into()),
        direction: Some("outbound".into()),
        from: Some(Sender { phone_number: Some(m.from.clone()), extra: Default::default() }),
        to: vec![Recipient {
            phone_number: Some(m.to.clone()),
            status: Some(status.clone()),
            extra: Default::default(),
        }],
        text: Some(m.text.clone()),
        kind: Some("SMS".into()),
        parts: Some(m.text.chars().count().div_ceil(160).max(1) as u32),
        messaging_profile_id: m.messaging_profile_id.clone(),
        errors,
        extra: Default::default(),
    }
}

/// `POST /v2/messages`.
pub(crate) async fn send(State(s): State<Arc<Shared>>, method: Method, body: Bytes) -> Response {
    let mut rec = super::api::record(&method, "/v2/messages");
    rec.action = Some("message".into());
    let fault = s.messages.rng.lock().unwrap_or_else(|p| p.into_inner()).message(&s.chaos);
    let outcome = parse_json(&body).and_then(|v| {
        rec.body = v.clone();
        validate(v)
    });
    let outcome = outcome.and_then(|body| match fault {
        Some(MessageFault::Refused) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            message_codes::NOT_ROUTABLE,
            "Not routable",
            "The destination number cannot be reached (sandbox chaos).",
        )
        .with_pointer("/to")),
        _ => Ok(queue(&s, body, fault == Some(MessageFault::Undelivered))),
    });
    let late = fault == Some(MessageFault::Late) && outcome.is_ok();
    let response = super::api::finish(&s, rec, outcome.map(|m| json!({ "data": m })));
    if late {
        tokio::time::sleep(Duration::from_millis(s.chaos.api_late_ms)).await;
    }
    response
}

/// Keeps the message and queues its delivery webhooks.
fn queue(s: &Shared, body: MessageCreate, undelivered: bool) -> OutboundMessage {
    let now = super::clock::rfc3339(chrono::Utc::now());
    let m = SandboxMessage {
        id: uuid::Uuid::new_v4().to_string(),
        from: body.from,
        to: body.to,
        text: body.text,
        status: DeliveryStatus::Queued.as_str().into(),
        messaging_profile_id: body.messaging_profile_id,
        received_at: now.clone(),
    };
    let answer = outbound(&m, &DeliveryStatus::Queued, Vec::new());
    s.messages.list.lock().unwrap_or_else(|p| p.into_inner()).push(m.clone());
    let url: Arc<str> = body.webhook_url.filter(|u| !u.is_empty()).map_or_else(|| s.default_webhook_url(), Arc::from);
    let session = s.messages.next_session.fetch_add(1, Ordering::Relaxed);
    let (last, errors) = if undelivered {
        let why = ApiErrorItem::new(
            message_codes::UNDELIVERABLE,
            "Undeliverable",
            "The carrier could not deliver the message (sandbox chaos).",
        );
        (DeliveryStatus::DeliveryFailed, vec![why])
    } else {
        (DeliveryStatus::Delivered, Vec::new())
    };
    for (kind, status, errors) in [
        (MessageEventType::Sent, DeliveryStatus::Sent, Vec::new()),
        (MessageEventType::Finalized, last.clone(), errors),
    ] {
        let payload = serde_json::to_value(outbound(&m, &status, errors)).unwrap_or_default();
        s.deliver(Emitted {
            session,
            call_control_id: Arc::from(m.id.as_str()),
            url: url.clone(),
            event_type: kind.name(),
            id: uuid::Uuid::new_v4().to_string(),
            occurred_at: now.clone(),
            payload,
        });
    }
    s.messages.set_status(&m.id, &last);
    answer
}

/// `GET /sandbox/v1/messages`.
pub(crate) async fn list(State(s): State<Arc<Shared>>) -> Response {
    (StatusCode::OK, Json(json!({ "data": s.messages.all() }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_checked_like_telnyx() {
        let ok = json!({"from": "+15555550199", "to": "+15555550123", "text": "hi"});
        assert!(validate(ok).is_ok());
        let e = validate(json!({"from": "+15555550199", "text": "hi"})).unwrap_err();
        assert_eq!(e.item.code, codes::MISSING_PARAMETER);
        let e = validate(json!({"from": "+15555550199", "to": "5550123", "text": "hi"})).unwrap_err();
        assert_eq!((e.status, e.item.code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, message_codes::INVALID_TO));
        let e = validate(json!({"from": "ivrx", "to": "+15555550123", "text": "hi"})).unwrap_err();
        assert_eq!(e.item.code, message_codes::INVALID_FROM);
        let e = validate(json!({"from": "+15555550199", "to": "+15555550123", "text": " "})).unwrap_err();
        assert_eq!(e.item.source.unwrap().pointer.as_deref(), Some("/text"));
    }
}
