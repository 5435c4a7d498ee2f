//! Telnyx Messaging: the `POST /v2/messages` body, the outbound message it
//! answers with, and the delivery webhooks `message.sent` and
//! `message.finalized` (the same signed envelope as Call Control webhooks,
//! whose payload is the outbound message with each recipient's status).
//! Field names follow the API definition (`message_send_params`,
//! `outbound_message_payload`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::errors::ApiErrorItem;
use super::string_enum::string_enum;

/// `POST /v2/messages`: one SMS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageCreate {
    /// Sending number (+E.164).
    pub from: String,
    /// Destination number (+E.164).
    pub to: String,
    /// The text (required for SMS).
    pub text: String,
    /// The messaging profile the sending number belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_profile_id: Option<String>,
    /// Where delivery webhooks for this message go (else the profile's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// `SMS` or `MMS`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Fields this version does not model, sent and kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// A recipient's delivery status.
    pub enum DeliveryStatus {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Delivered => "delivered",
        Expired => "expired",
        SendingFailed => "sending_failed",
        DeliveryFailed => "delivery_failed",
        DeliveryUnconfirmed => "delivery_unconfirmed",
    }
}

impl DeliveryStatus {
    /// True when the message did not reach the recipient and never will.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::SendingFailed | Self::DeliveryFailed | Self::Expired)
    }
}

/// The sending side of a message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sender {
    /// The sending number.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Fields this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One recipient of a message, with its delivery status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    /// The number.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// Where its delivery stands.
    #[serde(default)]
    pub status: Option<DeliveryStatus>,
    /// Fields this version does not model (`carrier`, `line_type`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An outbound message: the answer to `POST /v2/messages` (under `data`) and
/// the payload of its delivery webhooks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// The message id.
    #[serde(default)]
    pub id: String,
    /// `message`.
    #[serde(default)]
    pub record_type: Option<String>,
    /// `outbound`.
    #[serde(default)]
    pub direction: Option<String>,
    /// The sender.
    #[serde(default)]
    pub from: Option<Sender>,
    /// Each recipient with its status.
    #[serde(default)]
    pub to: Vec<Recipient>,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// `SMS` or `MMS`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Message parts (segments).
    #[serde(default)]
    pub parts: Option<u32>,
    /// The messaging profile.
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
    /// Why delivery failed or is unconfirmed.
    #[serde(default)]
    pub errors: Vec<ApiErrorItem>,
    /// Fields this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OutboundMessage {
    /// The status of the first recipient (messages ivrx sends have one).
    pub fn status(&self) -> Option<&DeliveryStatus> {
        self.to.first().and_then(|r| r.status.as_ref())
    }
}

/// The answer to `POST /v2/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    /// The message as queued.
    pub data: OutboundMessage,
}

/// A delivery webhook of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEventType {
    /// `message.sent`: handed to the carrier.
    Sent,
    /// `message.finalized`: delivered, or failed for good.
    Finalized,
}

impl MessageEventType {
    /// The event type with this wire name (`None`: not a message delivery event).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "message.sent" => Some(Self::Sent),
            "message.finalized" => Some(Self::Finalized),
            _ => None,
        }
    }

    /// The `event_type` on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sent => "message.sent",
            Self::Finalized => "message.finalized",
        }
    }
}

/// True for the `event_type` of any messaging webhook (`message.sent`,
/// `message.finalized`, `message.received`, …), which carry a message rather
/// than a call.
pub fn is_messaging_event(event_type: &str) -> bool {
    event_type.starts_with("message.")
}

/// A typed delivery webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEvent {
    /// Which one.
    pub kind: MessageEventType,
    /// The message as it stands.
    pub message: OutboundMessage,
}

impl MessageEvent {
    /// Reads a delivery webhook from its event type and payload; `None` for a
    /// messaging event that is not a delivery update (e.g. `message.received`).
    pub fn from_parts(event_type: &str, payload: &Value) -> Option<Result<Self, serde_json::Error>> {
        let kind = MessageEventType::from_name(event_type)?;
        Some(OutboundMessage::deserialize(payload).map(|message| MessageEvent { kind, message }))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_send_body_has_the_documented_names() {
        let body = MessageCreate {
            from: "+15555550199".into(),
            to: "+15555550123".into(),
            text: "hello".into(),
            messaging_profile_id: Some("40017f4c-0000-4000-8000-000000000000".into()),
            kind: Some("SMS".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"from": "+15555550199", "to": "+15555550123", "text": "hello",
                   "messaging_profile_id": "40017f4c-0000-4000-8000-000000000000", "type": "SMS"})
        );
    }

    #[test]
    fn a_finalized_webhook_reads_with_its_recipient_status() {
        let payload = json!({
            "id": "msg-1", "record_type": "message", "direction": "outbound", "type": "SMS",
            "from": {"phone_number": "+15555550199", "carrier": "Telnyx"},
            "to": [{"phone_number": "+15555550123", "status": "delivery_failed", "line_type": "Wireless"}],
            "text": "hi", "parts": 1,
            "errors": [{"code": "40008", "title": "Undeliverable"}],
            "cost": {"amount": "0.0040", "currency": "USD"}
        });
        let e = MessageEvent::from_parts("message.finalized", &payload).unwrap().unwrap();
        assert_eq!(e.kind, MessageEventType::Finalized);
        assert_eq!(e.message.status(), Some(&DeliveryStatus::DeliveryFailed));
        assert!(e.message.status().unwrap().is_failure());
        assert_eq!(e.message.errors[0].code, "40008");
        assert!(e.message.extra.contains_key("cost"));
        assert!(MessageEvent::from_parts("message.received", &payload).is_none());
        assert!(is_messaging_event("message.received") && !is_messaging_event("call.initiated"));
        let odd = json!({"id": "m", "to": [{"phone_number": "+1", "status": "carrier_said_maybe"}]});
        let e = MessageEvent::from_parts("message.sent", &odd).unwrap().unwrap();
        assert_eq!(e.message.status(), Some(&DeliveryStatus::Other("carrier_said_maybe".into())));
        assert!(!e.message.status().unwrap().is_failure());
    }
}
