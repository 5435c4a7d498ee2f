//! Typed Call Control webhook events, parsed from the real envelope.
//!
//! ```json
//! {"data": {"record_type": "event", "event_type": "call.initiated", "id": "…",
//!           "occurred_at": "…", "payload": { … }},
//!  "meta": {"attempt": 1, "delivered_to": "…"}}
//! ```
//!
//! Unknown event types become [`Event::Unknown`] and unknown fields are kept in
//! each payload's `extra` map: a newer Telnyx never breaks an older ivrx.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::string_enum::{string_enum, wire_names};

/// Why a webhook body could not be turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON, or not the `{"data": …}` envelope.
    #[error("malformed webhook envelope: {0}")]
    Envelope(#[source] serde_json::Error),
    /// The envelope is fine but a known event's payload has the wrong shape.
    #[error("malformed `{event_type}` payload: {source}")]
    Payload {
        /// The event type whose payload failed.
        event_type: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}

/// The webhook envelope exactly as Telnyx posts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event record.
    pub data: EventData,
    /// Delivery metadata (attempt number, target URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Anything else at the top level, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `data` object of a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// Always `"event"` for Call Control webhooks.
    #[serde(default = "default_record_type")]
    pub record_type: String,
    /// For example `call.initiated`.
    pub event_type: String,
    /// Unique event id (UUID): the key for de-duplication.
    pub id: String,
    /// RFC 3339 time the event happened at the carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// The event's payload; see [`Event`] for the typed view.
    #[serde(default)]
    pub payload: Value,
    /// Anything else in `data`, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_record_type() -> String {
    "event".to_string()
}

/// The `meta` object of a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// 1 for the first delivery, incremented on each retry.
    #[serde(default)]
    pub attempt: u32,
    /// The URL the webhook was delivered to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_to: Option<String>,
    /// Anything else in `meta`, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Envelope {
    /// Parses the raw webhook body.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        serde_json::from_slice(body).map_err(EventError::Envelope)
    }

    /// The typed event inside this envelope.
    pub fn event(&self) -> Result<Event, EventError> {
        Event::from_data(&self.data)
    }
}

/// Identifiers that most call events carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallIds {
    /// `v3:<url-safe base64>`: the handle commands are sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_control_id: Option<String>,
    /// UUID of this leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_leg_id: Option<String>,
    /// UUID shared by the legs of one call session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_session_id: Option<String>,
    /// The Call Control application (numeric string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Base64 state set by the app on an earlier command, or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
}

string_enum! {
    /// Which way a call leg goes, seen from the Call Control application.
    pub enum Direction {
        /// A call into the application.
        Incoming => "incoming",
        /// A call the application placed.
        Outgoing => "outgoing",
    }
}

string_enum! {
    /// Why a leg hung up (`hangup_cause`).
    pub enum HangupCause {
        /// Ordinary end of call.
        NormalClearing => "normal_clearing",
        /// Nobody answered in time.
        Timeout => "timeout",
        /// The callee was busy.
        UserBusy => "user_busy",
        /// The caller gave up before an answer.
        OriginatorCancel => "originator_cancel",
        /// The callee refused the call.
        CallRejected => "call_rejected",
        /// A configured time limit ended the call.
        TimeLimit => "time_limit",
        /// The number does not exist.
        NotFound => "not_found",
        /// No answer.
        NoAnswer => "no_answer",
        /// Unknown cause.
        Unspecified => "unspecified",
    }
}

string_enum! {
    /// Which side ended the call (`hangup_source`).
    pub enum HangupSource {
        /// The calling party.
        Caller => "caller",
        /// The called party.
        Callee => "callee",
        /// Not known.
        Unknown => "unknown",
    }
}

string_enum! {
    /// How a `speak` finished.
    pub enum SpeakStatus {
        /// Played to the end.
        Completed => "completed",
        /// The call hung up while speaking.
        CallHangup => "call_hangup",
        /// Cancelled by answering-machine detection.
        CancelledAmd => "cancelled_amd",
    }
}

string_enum! {
    /// How a gather finished.
    pub enum GatherStatus {
        /// Digits matching the constraints were collected.
        Valid => "valid",
        /// Digits were collected but did not match.
        Invalid => "invalid",
        /// Nothing (enough) was pressed in time.
        Timeout => "timeout",
        /// The call hung up during the gather.
        CallHangup => "call_hangup",
        /// Another command cancelled the gather.
        Cancelled => "cancelled",
        /// Cancelled by answering-machine detection.
        CancelledAmd => "cancelled_amd",
    }
}

string_enum! {
    /// Which track a transcript came from.
    pub enum TranscriptionTrack {
        /// The leg that started transcription (the far party on that leg).
        Inbound => "inbound",
        /// The other direction.
        Outbound => "outbound",
    }
}

/// `call.initiated`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInitiated {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id_name: Option<String>,
    /// `parked` or `bridging`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.answered`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallAnswered {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.hangup`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallHangup {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<HangupCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_source: Option<HangupSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_hangup_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Events that carry only the call ids (`call.speak.started`, `call.bridged`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallNotice {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.speak.ended`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakEnded {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SpeakStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.gather.ended`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatherEnded {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatherStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.dtmf.received`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DtmfReceived {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// One key: `0`–`9`, `*`, `#`, `A`–`D`.
    #[serde(default)]
    pub digit: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `transcription_data` of a `call.transcription` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionData {
    #[serde(default)]
    pub transcript: String,
    /// 0..1, as reported by the recogniser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// `false` for interim results that may still change.
    #[serde(default = "default_true")]
    pub is_final: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_track: Option<TranscriptionTrack>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_true() -> bool {
    true
}

/// `call.transcription` (and the legacy `transcription`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcription {
    #[serde(flatten)]
    pub ids: CallIds,
    pub transcription_data: TranscriptionData,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.playback.started` and `call.playback.ended`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playback {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_name: Option<String>,
    /// Only on `ended`: `completed`, `call_hangup`, `cancelled`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.recording.saved`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingSaved {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_urls: Option<RecordingUrls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_ended_at: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where a saved recording can be downloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingUrls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mp3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wav: Option<String>,
}

/// `streaming.started`, `streaming.stopped` and `streaming.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Streaming {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    /// Only on `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Conference events (`conference.created`, `conference.participant.joined`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConferenceNotice {
    #[serde(flatten)]
    pub ids: CallIds,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
    /// `conference.ended` only: `all_left`, `host_left`, `time_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.enqueued` (`CallEnqueued` in the SDK's types): the call is in a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnqueued {
    #[serde(flatten)]
    pub ids: CallIds,
    /// The queue's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The call's position in the queue (1: next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_position: Option<u32>,
    /// How long calls spend in the queue on average, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_avg_wait_time_secs: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `call.dequeued` (`CallLeftQueueWebhookEvent` in the SDK's types): the call left a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallDequeued {
    #[serde(flatten)]
    pub ids: CallIds,
    /// The queue's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The call's last position in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Why it left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DequeueReason>,
    /// Seconds it spent in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_time_secs: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

string_enum! {
    /// Why a call left a queue (`reason` of `call.dequeued`).
    pub enum DequeueReason {
        /// Bridged with the call that took it from the queue (`bridge` with `queue`).
        Bridged => "bridged",
        /// A bridge is being set up.
        BridgingInProcess => "bridging-in-process",
        /// The call hung up.
        Hangup => "hangup",
        /// `leave_queue`.
        Leave => "leave",
        /// It waited `max_wait_time_secs`.
        Timeout => "timeout",
    }
}

/// A typed Call Control event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    CallInitiated(CallInitiated),
    CallAnswered(CallAnswered),
    CallHangup(CallHangup),
    SpeakStarted(CallNotice),
    SpeakEnded(SpeakEnded),
    GatherEnded(GatherEnded),
    DtmfReceived(DtmfReceived),
    /// `call.transcription`, or the legacy `transcription` name.
    Transcription(Transcription),
    CallBridged(CallNotice),
    PlaybackStarted(Playback),
    PlaybackEnded(Playback),
    RecordingSaved(RecordingSaved),
    StreamingStarted(Streaming),
    StreamingStopped(Streaming),
    StreamingFailed(Streaming),
    ConferenceCreated(ConferenceNotice),
    ConferenceEnded(ConferenceNotice),
    ConferenceParticipantJoined(ConferenceNotice),
    ConferenceParticipantLeft(ConferenceNotice),
    CallEnqueued(CallEnqueued),
    CallDequeued(CallDequeued),
    /// An event type this version does not know; logged and ignored.
    Unknown {
        /// The `event_type` as received.
        event_type: String,
        /// The payload, verbatim.
        payload: Value,
    },
}

/// Every event type ivrx knows, by its name on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    CallInitiated,
    CallAnswered,
    CallHangup,
    SpeakStarted,
    SpeakEnded,
    GatherEnded,
    DtmfReceived,
    /// `call.transcription`.
    Transcription,
    /// `transcription`, the older name of `call.transcription`.
    LegacyTranscription,
    CallBridged,
    PlaybackStarted,
    PlaybackEnded,
    RecordingSaved,
    StreamingStarted,
    StreamingStopped,
    StreamingFailed,
    ConferenceCreated,
    ConferenceEnded,
    ConferenceParticipantJoined,
    ConferenceParticipantLeft,
    CallEnqueued,
    CallDequeued,
}

impl EventType {
    /// Every event type, in the order of the protocol reference.
    pub const ALL: [EventType; 22] = [
        EventType::CallInitiated,
        EventType::CallAnswered,
        EventType::CallHangup,
        EventType::SpeakStarted,
        EventType::SpeakEnded,
        EventType::GatherEnded,
        EventType::DtmfReceived,
        EventType::Transcription,
        EventType::LegacyTranscription,
        EventType::CallBridged,
        EventType::PlaybackStarted,
        EventType::PlaybackEnded,
        EventType::RecordingSaved,
        EventType::StreamingStarted,
        EventType::StreamingStopped,
        EventType::StreamingFailed,
        EventType::ConferenceCreated,
        EventType::ConferenceEnded,
        EventType::ConferenceParticipantJoined,
        EventType::ConferenceParticipantLeft,
        EventType::CallEnqueued,
        EventType::CallDequeued,
    ];

    /// The `event_type` on the wire.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::CallInitiated => "call.initiated",
            EventType::CallAnswered => "call.answered",
            EventType::CallHangup => "call.hangup",
            EventType::SpeakStarted => "call.speak.started",
            EventType::SpeakEnded => "call.speak.ended",
            EventType::GatherEnded => "call.gather.ended",
            EventType::DtmfReceived => "call.dtmf.received",
            EventType::Transcription => "call.transcription",
            EventType::LegacyTranscription => "transcription",
            EventType::CallBridged => "call.bridged",
            EventType::PlaybackStarted => "call.playback.started",
            EventType::PlaybackEnded => "call.playback.ended",
            EventType::RecordingSaved => "call.recording.saved",
            EventType::StreamingStarted => "streaming.started",
            EventType::StreamingStopped => "streaming.stopped",
            EventType::StreamingFailed => "streaming.failed",
            EventType::ConferenceCreated => "conference.created",
            EventType::ConferenceEnded => "conference.ended",
            EventType::ConferenceParticipantJoined => "conference.participant.joined",
            EventType::ConferenceParticipantLeft => "conference.participant.left",
            EventType::CallEnqueued => "call.enqueued",
            EventType::CallDequeued => "call.dequeued",
        }
    }

    /// The event type with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Every event type ivrx knows, in the order of the protocol reference.
pub const KNOWN_EVENT_TYPES: &[&str] = wire_names!(EventType);

impl Event {
    /// Builds the typed event from an envelope's `data`.
    pub fn from_data(data: &EventData) -> Result<Self, EventError> {
        Self::from_parts(&data.event_type, &data.payload)
    }

    /// Builds the typed event from an event type and its payload.
    pub fn from_parts(event_type: &str, payload: &Value) -> Result<Self, EventError> {
        fn p<T: serde::de::DeserializeOwned>(event_type: &str, v: &Value) -> Result<T, EventError> {
            T::deserialize(v).map_err(|source| EventError::Payload { event_type: event_type.to_string(), source })
        }
        let t = event_type;
        Ok(match EventType::from_name(t) {
            Some(EventType::CallInitiated) => Event::CallInitiated(p(t, payload)?),
            Some(EventType::CallAnswered) => Event::CallAnswered(p(t, payload)?),
            Some(EventType::CallHangup) => Event::CallHangup(p(t, payload)?),
            Some(EventType::SpeakStarted) => Event::SpeakStarted(p(t, payload)?),
            Some(EventType::SpeakEnded) => Event::SpeakEnded(p(t, payload)?),
            Some(EventType::GatherEnded) => Event::GatherEnded(p(t, payload)?),
            Some(EventType::DtmfReceived) => Event::DtmfReceived(p(t, payload)?),
            Some(EventType::Transcription | EventType::LegacyTranscription) => Event::Transcription(p(t, payload)?),
            Some(EventType::CallBridged) => Event::CallBridged(p(t, payload)?),
            Some(EventType::PlaybackStarted) => Event::PlaybackStarted(p(t, payload)?),
            Some(EventType::PlaybackEnded) => Event::PlaybackEnded(p(t, payload)?),
            Some(EventType::RecordingSaved) => Event::RecordingSaved(p(t, payload)?),
            Some(EventType::StreamingStarted) => Event::StreamingStarted(p(t, payload)?),
            Some(EventType::StreamingStopped) => Event::StreamingStopped(p(t, payload)?),
            Some(EventType::StreamingFailed) => Event::StreamingFailed(p(t, payload)?),
            Some(EventType::ConferenceCreated) => Event::ConferenceCreated(p(t, payload)?),
            Some(EventType::ConferenceEnded) => Event::ConferenceEnded(p(t, payload)?),
            Some(EventType::ConferenceParticipantJoined) => Event::ConferenceParticipantJoined(p(t, payload)?),
            Some(EventType::ConferenceParticipantLeft) => Event::ConferenceParticipantLeft(p(t, payload)?),
            Some(EventType::CallEnqueued) => Event::CallEnqueued(p(t, payload)?),
            Some(EventType::CallDequeued) => Event::CallDequeued(p(t, payload)?),
            None => Event::Unknown { event_type: t.to_string(), payload: payload.clone() },
        })
    }

    /// The event's type; `None` for one this version does not know.
    pub fn kind(&self) -> Option<EventType> {
        Some(match self {
            Event::CallInitiated(_) => EventType::CallInitiated,
            Event::CallAnswered(_) => EventType::CallAnswered,
            Event::CallHangup(_) => EventType::CallHangup,
            Event::SpeakStarted(_) => EventType::SpeakStarted,
            Event::SpeakEnded(_) => EventType::SpeakEnded,
            Event::GatherEnded(_) => EventType::GatherEnded,
            Event::DtmfReceived(_) => EventType::DtmfReceived,
            Event::Transcription(_) => EventType::Transcription,
            Event::CallBridged(_) => EventType::CallBridged,
            Event::PlaybackStarted(_) => EventType::PlaybackStarted,
            Event::PlaybackEnded(_) => EventType::PlaybackEnded,
            Event::RecordingSaved(_) => EventType::RecordingSaved,
            Event::StreamingStarted(_) => EventType::StreamingStarted,
            Event::StreamingStopped(_) => EventType::StreamingStopped,
            Event::StreamingFailed(_) => EventType::StreamingFailed,
            Event::ConferenceCreated(_) => EventType::ConferenceCreated,
            Event::ConferenceEnded(_) => EventType::ConferenceEnded,
            Event::ConferenceParticipantJoined(_) => EventType::ConferenceParticipantJoined,
            Event::ConferenceParticipantLeft(_) => EventType::ConferenceParticipantLeft,
            Event::CallEnqueued(_) => EventType::CallEnqueued,
            Event::CallDequeued(_) => EventType::CallDequeued,
            Event::Unknown { .. } => return None,
        })
    }

    /// The canonical event type name (`transcription` reports `call.transcription`).
    pub fn event_type(&self) -> &str {
        match self {
            Event::Unknown { event_type, .. } => event_type,
            known => known.kind().map_or("", EventType::name),
        }
    }

    /// The call ids of the event, when it has them.
    pub fn ids(&self) -> Option<&CallIds> {
        Some(match self {
            Event::CallInitiated(e) => &e.ids,
            Event::CallAnswered(e) => &e.ids,
            Event::CallHangup(e) => &e.ids,
            Event::SpeakStarted(e) | Event::CallBridged(e) => &e.ids,
            Event::SpeakEnded(e) => &e.ids,
            Event::GatherEnded(e) => &e.ids,
            Event::DtmfReceived(e) => &e.ids,
            Event::Transcription(e) => &e.ids,
            Event::PlaybackStarted(e) | Event::PlaybackEnded(e) => &e.ids,
            Event::RecordingSaved(e) => &e.ids,
            Event::StreamingStarted(e) | Event::StreamingStopped(e) | Event::StreamingFailed(e) => &e.ids,
            Event::ConferenceCreated(e)
            | Event::ConferenceEnded(e)
            | Event::ConferenceParticipantJoined(e)
            | Event::ConferenceParticipantLeft(e) => &e.ids,
            Event::CallEnqueued(e) => &e.ids,
            Event::CallDequeued(e) => &e.ids,
            Event::Unknown { .. } => return None,
        })
    }

    /// The `call_control_id` the event is about, when it has one.
    pub fn call_control_id(&self) -> Option<&str> {
        self.ids()?.call_control_id.as_deref()
    }

    /// The raw `client_state` of the event, when it has one.
    pub fn client_state(&self) -> Option<&str> {
        self.ids()?.client_state.as_deref()
    }

    /// The payload as JSON, for storage and forwarding.
    pub fn payload_json(&self) -> Value {
        let r = match self {
            Event::CallInitiated(e) => serde_json::to_value(e),
            Event::CallAnswered(e) => serde_json::to_value(e),
            Event::CallHangup(e) => serde_json::to_value(e),
            Event::SpeakStarted(e) | Event::CallBridged(e) => serde_json::to_value(e),
            Event::SpeakEnded(e) => serde_json::to_value(e),
            Event::GatherEnded(e) => serde_json::to_value(e),
            Event::DtmfReceived(e) => serde_json::to_value(e),
            Event::Transcription(e) => serde_json::to_value(e),
            Event::PlaybackStarted(e) | Event::PlaybackEnded(e) => serde_json::to_value(e),
            Event::RecordingSaved(e) => serde_json::to_value(e),
            Event::StreamingStarted(e) | Event::StreamingStopped(e) | Event::StreamingFailed(e) => {
                serde_json::to_value(e)
            }
            Event::ConferenceCreated(e)
            | Event::ConferenceEnded(e)
            | Event::ConferenceParticipantJoined(e)
            | Event::ConferenceParticipantLeft(e) => serde_json::to_value(e),
            Event::CallEnqueued(e) => serde_json::to_value(e),
            Event::CallDequeued(e) => serde_json::to_value(e),
            Event::Unknown { payload, .. } => return payload.clone(),
        };
        // Serialising plain data structs with string keys cannot fail.
        r.unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(event_type: &str, payload: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "data": {"record_type": "event", "event_type": event_type,
                     "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
                     "occurred_at": "2020-07-10T05:08:59.668179Z", "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "https://example.ngrok.io/webhooks/telnyx"}
        }))
        .unwrap()
    }

    fn ids() -> Value {
        json!({
            "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
            "call_leg_id": "428c31b6-7af4-4bcb-b7f5-5013ef9657c1",
            "call_session_id": "428c31b6-abf3-4bcb-b7f5-5013ef9657c1",
            "connection_id": "1684641123236054244",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        })
    }

    fn with(mut base: Value, more: Value) -> Value {
        let m = base.as_object_mut().unwrap();
        for (k, v) in more.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        base
    }

    fn parse(event_type: &str, payload: Value) -> Event {
        Envelope::parse(&envelope(event_type, payload)).unwrap().event().unwrap()
    }

    #[test]
    fn call_initiated_parses_every_documented_field() {
        let e = parse(
            "call.initiated",
            with(
                ids(),
                json!({"direction": "incoming", "from": "+18005550101", "to": "+18005550199",
                       "caller_id_name": "Jane", "state": "parked",
                       "start_time": "2020-07-10T05:08:59.668179Z"}),
            ),
        );
        let Event::CallInitiated(c) = e else { panic!("{e:?}") };
        assert_eq!(c.direction, Some(Direction::Incoming));
        assert_eq!(c.from.as_deref(), Some("+18005550101"));
        assert_eq!(c.state.as_deref(), Some("parked"));
        assert_eq!(c.ids.connection_id.as_deref(), Some("1684641123236054244"));
        assert!(c.extra.is_empty(), "known fields must not spill: {:?}", c.extra);
    }

    #[test]
    fn call_answered_and_bridged_parse() {
        let e = parse(
            "call.answered",
            with(ids(), json!({"from": "+1", "to": "+2", "start_time": "2020-07-10T05:08:59Z"})),
        );
        assert!(matches!(e, Event::CallAnswered(ref a) if a.to.as_deref() == Some("+2")));
        let e = parse("call.bridged", with(ids(), json!({"from": "+1", "to": "+2"})));
        assert!(matches!(e, Event::CallBridged(_)));
        assert_eq!(e.event_type(), "call.bridged");
    }

    #[test]
    fn call_hangup_parses_cause_and_source() {
        let e = parse(
            "call.hangup",
            with(
                ids(),
                json!({"hangup_cause": "timeout", "hangup_source": "callee",
                               "sip_hangup_cause": "480", "from": "+1", "to": "+2",
                               "start_time": "2020-07-10T05:08:59Z"}),
            ),
        );
        let Event::CallHangup(h) = e else { panic!() };
        assert_eq!(h.hangup_cause, Some(HangupCause::Timeout));
        assert_eq!(h.hangup_source, Some(HangupSource::Callee));
        assert_eq!(h.sip_hangup_cause.as_deref(), Some("480"));
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        let e = parse("call.hangup", with(ids(), json!({"hangup_cause": "destination_out_of_order"})));
        let Event::CallHangup(h) = e else { panic!() };
        assert_eq!(h.hangup_cause, Some(HangupCause::Other("destination_out_of_order".into())));
        assert_eq!(h.hangup_cause.unwrap().as_str(), "destination_out_of_order");
    }

    #[test]
    fn speak_events_parse() {
        assert!(matches!(parse("call.speak.started", ids()), Event::SpeakStarted(_)));
        for (wire, status) in [
            ("completed", SpeakStatus::Completed),
            ("call_hangup", SpeakStatus::CallHangup),
            ("cancelled_amd", SpeakStatus::CancelledAmd),
        ] {
            let e = parse("call.speak.ended", with(ids(), json!({"status": wire})));
            let Event::SpeakEnded(s) = e else { panic!() };
            assert_eq!(s.status, Some(status));
        }
    }

    #[test]
    fn gather_and_dtmf_parse() {
        for wire in ["valid", "invalid", "timeout", "call_hangup", "cancelled", "cancelled_amd"] {
            let e = parse(
                "call.gather.ended",
                with(ids(), json!({"digits": "12#", "status": wire, "from": "+1", "to": "+2"})),
            );
            let Event::GatherEnded(g) = e else { panic!() };
            assert_eq!(g.status.unwrap().as_str(), wire);
            assert_eq!(g.digits.as_deref(), Some("12#"));
        }
        let e = parse("call.dtmf.received", with(ids(), json!({"digit": "#", "from": "+1", "to": "+2"})));
        assert!(matches!(e, Event::DtmfReceived(ref d) if d.digit == "#"));
    }

    #[test]
    fn transcription_parses_interim_and_final_and_legacy_name() {
        let e = parse(
            "call.transcription",
            with(
                ids(),
                json!({"transcription_data": {"transcript": "i want to", "confidence": 0.91,
                                "is_final": false, "transcription_track": "inbound"}}),
            ),
        );
        let Event::Transcription(t) = e else { panic!() };
        assert!(!t.transcription_data.is_final);
        assert_eq!(t.transcription_data.transcription_track, Some(TranscriptionTrack::Inbound));
        let legacy = parse(
            "transcription",
            with(ids(), json!({"transcription_data": {"transcript": "hello", "confidence": 0.97, "is_final": true}})),
        );
        assert_eq!(legacy.event_type(), "call.transcription");
        let Event::Transcription(t) = legacy else { panic!() };
        assert_eq!(t.transcription_data.transcript, "hello");
    }

    #[test]
    fn playback_recording_and_streaming_parse() {
        let e = parse("call.playback.started", with(ids(), json!({"media_url": "http://x/a.mp3"})));
        assert!(matches!(e, Event::PlaybackStarted(_)));
        let e =
            parse("call.playback.ended", with(ids(), json!({"media_url": "http://x/a.mp3", "status": "completed"})));
        assert!(matches!(e, Event::PlaybackEnded(ref p) if p.status.as_deref() == Some("completed")));
        let e = parse(
            "call.recording.saved",
            json!({"call_leg_id": "l", "call_session_id": "s", "client_state": null, "channels": "single",
                   "recording_urls": {"mp3": "https://x/r.mp3", "wav": "https://x/r.wav"},
                   "recording_started_at": "2020-07-10T05:08:59Z", "recording_ended_at": "2020-07-10T05:09:59Z"}),
        );
        let Event::RecordingSaved(r) = e else { panic!() };
        assert_eq!(r.recording_urls.unwrap().wav.as_deref(), Some("https://x/r.wav"));
        assert!(r.ids.call_control_id.is_none());
        for t in ["streaming.started", "streaming.stopped"] {
            let e = parse(t, with(ids(), json!({"stream_url": "wss://x"})));
            assert_eq!(e.event_type(), t);
        }
        let e = parse(
            "streaming.failed",
            with(ids(), json!({"stream_url": "wss://x", "failure_reason": "connection_failed"})),
        );
        assert!(matches!(e, Event::StreamingFailed(ref s) if s.failure_reason.as_deref() == Some("connection_failed")));
    }

    #[test]
    fn every_known_type_parses_from_minimal_payload() {
        for t in KNOWN_EVENT_TYPES {
            let payload = if t.contains("transcription") {
                with(ids(), json!({"transcription_data": {"transcript": "x"}}))
            } else {
                ids()
            };
            let e = parse(t, payload);
            assert!(!matches!(e, Event::Unknown { .. }), "{t} fell through to Unknown");
        }
    }

    #[test]
    fn each_event_type_is_named_once_and_reported_by_its_event() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.name()), Some(t));
            let payload = with(ids(), json!({"transcription_data": {"transcript": "x"}}));
            let e = parse(t.name(), payload);
            let expected = if t == EventType::LegacyTranscription { EventType::Transcription } else { t };
            assert_eq!((e.kind(), e.event_type()), (Some(expected), expected.name()));
        }
        assert_eq!(KNOWN_EVENT_TYPES.len(), EventType::ALL.len());
        assert_eq!(EventType::from_name("call.machine.detection.ended"), None);
    }

    #[test]
    fn unknown_events_and_fields_are_kept() {
        let e = parse("call.machine.detection.ended", json!({"result": "human"}));
        assert_eq!(e.event_type(), "call.machine.detection.ended");
        assert!(matches!(e, Event::Unknown { ref payload, .. } if payload["result"] == "human"));

        let e = parse("call.answered", with(ids(), json!({"new_field": {"nested": 1}})));
        let Event::CallAnswered(a) = e else { panic!() };
        assert_eq!(a.extra["new_field"]["nested"], 1);
        assert_eq!(e_roundtrip(&Event::CallAnswered(a))["new_field"]["nested"], 1);
    }

    fn e_roundtrip(e: &Event) -> Value {
        e.payload_json()
    }

    #[test]
    fn envelope_keeps_meta_and_unknown_top_level() {
        let mut v: Value = serde_json::from_slice(&envelope("call.answered", ids())).unwrap();
        v["meta"]["extra_meta"] = json!(true);
        v["something_else"] = json!(1);
        let env = Envelope::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(env.meta.as_ref().unwrap().attempt, 1);
        assert!(env.meta.as_ref().unwrap().extra.contains_key("extra_meta"));
        assert!(env.extra.contains_key("something_else"));
        assert_eq!(env.data.id, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0");
        let back = serde_json::to_value(&env).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert!(matches!(Envelope::parse(b"not json"), Err(EventError::Envelope(_))));
        assert!(matches!(Envelope::parse(b"{\"data\": 3}"), Err(EventError::Envelope(_))));
        assert!(matches!(Envelope::parse(b"{}"), Err(EventError::Envelope(_))));
        let body = envelope("call.dtmf.received", json!({"digit": 5}));
        let env = Envelope::parse(&body).unwrap();
        assert!(matches!(env.event(), Err(EventError::Payload { .. })));
        let body = envelope("call.transcription", json!({"call_control_id": "x"}));
        assert!(matches!(Envelope::parse(&body).unwrap().event(), Err(EventError::Payload { .. })));
    }
}
