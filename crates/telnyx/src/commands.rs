//! Call Control command bodies (`POST /v2/calls/{id}/actions/{action}` and
//! `POST /v2/calls`), shared by the REST client, which sends them, and the
//! sandbox carrier, which parses and validates them like Telnyx does.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::string_enum::wire_names;

/// Fields every action accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Common {
    /// Base64 state echoed on later webhooks of the leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key: a repeat on the same call within 60 s is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// One SIP header to send (`custom_headers`, `sip_headers`), echoed on the
/// webhooks of the leg it was sent on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipHeader {
    /// The header's name (`sip_headers` takes only `User-to-User`).
    pub name: String,
    /// Its value.
    pub value: String,
}

macro_rules! body {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            pub common: Common,
            $($(#[$fm])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
            /// Fields this version does not model, sent and kept verbatim.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

body!(
    /// `answer`
    Answer {
        webhook_url: String,
        stream_url: String,
        stream_track: String,
        /// Start transcription at answer time.
        transcription: bool,
        transcription_config: Value,
        /// Headers for the SIP answer.
        custom_headers: Vec<SipHeader>,
        sip_headers: Vec<SipHeader>,
    }
);

body!(
    /// `speak`: text to speech on the leg.
    Speak {
        /// Required, at most 3000 characters.
        payload: String,
        /// Required: `male`, `female` or a provider voice such as `AWS.Polly.Joanna-Neural`.
        voice: String,
        language: String,
        /// `text` or `ssml`.
        payload_type: String,
        /// `basic` or `premium`.
        service_level: String,
    }
);

body!(
    /// `gather_using_speak`: play a prompt and collect DTMF digits.
    GatherUsingSpeak {
        payload: String,
        voice: String,
        language: String,
        payload_type: String,
        service_level: String,
        invalid_payload: String,
        valid_digits: String,
        minimum_digits: u32,
        maximum_digits: u32,
        maximum_tries: u32,
        terminating_digit: String,
        timeout_millis: u64,
        inter_digit_timeout_millis: u64,
    }
);

body!(
    /// `gather`: collect DTMF digits without a prompt.
    Gather {
        minimum_digits: u32,
        maximum_digits: u32,
        valid_digits: String,
        terminating_digit: String,
        timeout_millis: u64,
        initial_timeout_millis: u64,
        inter_digit_timeout_millis: u64,
        gather_id: String,
    }
);

body!(
    /// `transcription_start`. Both the current body (`transcription_engine`,
    /// `transcription_engine_config`, `transcription_tracks`) and the older flat
    /// one (`language`, `interim_results`) are accepted.
    TranscriptionStart {
        transcription_engine: String,
        transcription_engine_config: Value,
        /// `inbound` (default), `outbound` or `both`.
        transcription_tracks: String,
        language: String,
        interim_results: bool,
    }
);

body!(
    /// `transfer`: dial a new leg and bridge it to this one when it answers.
    Transfer {
        /// Required: the number or SIP URI to transfer to.
        to: String,
        from: String,
        from_display_name: String,
        /// 5–600, default 30.
        timeout_secs: u32,
        time_limit_secs: u32,
        audio_url: String,
        /// State for the new (B) leg's webhooks.
        target_leg_client_state: String,
        webhook_url: String,
        /// Headers for the new leg's INVITE.
        custom_headers: Vec<SipHeader>,
        sip_headers: Vec<SipHeader>,
    }
);

body!(
    /// `bridge`: connect this leg with another live leg, or with the first
    /// call waiting in a queue (`ActionBridgeParams`).
    Bridge {
        /// The other leg; required unless `queue` is given.
        call_control_id: String,
        /// A queue's name: bridge with the call at its head, which leaves the
        /// queue whether the bridge succeeds or not (an error when it is empty).
        queue: String,
        park_after_unbridge: String,
    }
);

body!(
    /// `enqueue`: put the call in a queue, created on first use
    /// (`ActionEnqueueParams`); `call.enqueued` follows.
    Enqueue {
        /// Required: the queue's name.
        queue_name: String,
        /// Seconds after which the call is removed from the queue
        /// (`call.dequeued` with reason `timeout`).
        max_wait_time_secs: u32,
        /// Most calls in the queue at once (default 100); fixed when the queue is created.
        max_size: u32,
        /// The call stays in the queue after it hangs up (bridging with it then fails).
        keep_after_hangup: bool,
    }
);

body!(
    /// `playback_start`: play audio (hold music) on the leg.
    PlaybackStart {
        audio_url: String,
        media_name: String,
        /// A count or `"infinity"`.
        #[serde(rename = "loop")]
        loop_: Value,
        overlay: bool,
        target_legs: String,
    }
);

body!(
    /// `streaming_start`: fork the media to a WebSocket.
    StreamingStart {
        stream_url: String,
        /// `inbound_track`, `outbound_track` or `both_tracks`.
        stream_track: String,
        stream_codec: String,
    }
);

body!(
    /// `record_start`.
    RecordStart {
        /// Required: `wav` or `mp3`.
        format: String,
        /// Required: `single` or `dual`.
        channels: String,
    }
);

body!(
    /// Actions with no fields of their own (`hangup`, `transcription_stop`, …).
    Plain {}
);

/// `PUT /v2/calls/{id}/actions/client_state_update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientStateUpdate {
    /// Required: the new state.
    pub client_state: String,
}

/// `POST /v2/calls`: place an outbound call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dial {
    /// Required: the Call Control application id.
    pub connection_id: String,
    /// Required: the caller id number.
    pub from: String,
    /// Required: the number or SIP URI to call.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// Another call's call_control_id: the new call shares its call session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Ring time before giving up, 5–600 (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_config: Option<Value>,
    /// Headers for the INVITE (echoed on the new leg's webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_headers: Option<Vec<SipHeader>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_headers: Option<Vec<SipHeader>>,
    /// Fields this version does not model, sent and kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One Call Control action on an existing call.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Answer(Answer),
    Speak(Speak),
    GatherUsingSpeak(GatherUsingSpeak),
    Gather(Gather),
    GatherStop(Plain),
    TranscriptionStart(TranscriptionStart),
    TranscriptionStop(Plain),
    Transfer(Transfer),
    Bridge(Bridge),
    Enqueue(Enqueue),
    /// `leave_queue` (`ActionLeaveQueueParams`): `call.dequeued` with reason `leave`.
    LeaveQueue(Plain),
    Hangup(Plain),
    PlaybackStart(PlaybackStart),
    PlaybackStop(Plain),
    StreamingStart(StreamingStart),
    StreamingStop(Plain),
    RecordStart(RecordStart),
    RecordStop(Plain),
    ClientStateUpdate(ClientStateUpdate),
}

/// A command body that Telnyx would refuse with 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Code 10004: a required parameter is absent.
    #[error("missing required parameter {pointer}")]
    Missing {
        /// JSON pointer of the parameter, e.g. `/to`.
        pointer: String,
    },
    /// Code 90012: a parameter has a value Telnyx does not accept.
    #[error("invalid value for {pointer}: {detail}")]
    Invalid {
        /// JSON pointer of the parameter.
        pointer: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Code 10015 (bad request): the body is not a JSON object, or the action is unknown.
    #[error("{0}")]
    BadRequest(String),
}

/// What an action is, without its body: its name on the wire and how the
/// carrier treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Answer,
    Speak,
    GatherUsingSpeak,
    Gather,
    GatherStop,
    TranscriptionStart,
    TranscriptionStop,
    Transfer,
    Bridge,
    Enqueue,
    LeaveQueue,
    Hangup,
    PlaybackStart,
    PlaybackStop,
    StreamingStart,
    StreamingStop,
    RecordStart,
    RecordStop,
    ClientStateUpdate,
}

impl ActionKind {
    /// Every action, in declaration order.
    pub const ALL: [ActionKind; 19] = [
        ActionKind::Answer,
        ActionKind::Speak,
        ActionKind::GatherUsingSpeak,
        ActionKind::Gather,
        ActionKind::GatherStop,
        ActionKind::TranscriptionStart,
        ActionKind::TranscriptionStop,
        ActionKind::Transfer,
        ActionKind::Bridge,
        ActionKind::Enqueue,
        ActionKind::LeaveQueue,
        ActionKind::Hangup,
        ActionKind::PlaybackStart,
        ActionKind::PlaybackStop,
        ActionKind::StreamingStart,
        ActionKind::StreamingStop,
        ActionKind::RecordStart,
        ActionKind::RecordStop,
        ActionKind::ClientStateUpdate,
    ];

    /// The action's path segment, e.g. `gather_using_speak`.
    pub const fn name(self) -> &'static str {
        match self {
            ActionKind::Answer => "answer",
            ActionKind::Speak => "speak",
            ActionKind::GatherUsingSpeak => "gather_using_speak",
            ActionKind::Gather => "gather",
            ActionKind::GatherStop => "gather_stop",
            ActionKind::TranscriptionStart => "transcription_start",
            ActionKind::TranscriptionStop => "transcription_stop",
            ActionKind::Transfer => "transfer",
            ActionKind::Bridge => "bridge",
            ActionKind::Enqueue => "enqueue",
            ActionKind::LeaveQueue => "leave_queue",
            ActionKind::Hangup => "hangup",
            ActionKind::PlaybackStart => "playback_start",
            ActionKind::PlaybackStop => "playback_stop",
            ActionKind::StreamingStart => "streaming_start",
            ActionKind::StreamingStop => "streaming_stop",
            ActionKind::RecordStart => "record_start",
            ActionKind::RecordStop => "record_stop",
            ActionKind::ClientStateUpdate => "client_state_update",
        }
    }

    /// The action with this path segment.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Media and bridging actions: Telnyx refuses them (`90034`) on a leg
    /// that has not been answered yet.
    pub const fn needs_answer(self) -> bool {
        matches!(
            self,
            ActionKind::Speak
                | ActionKind::Gather
                | ActionKind::GatherUsingSpeak
                | ActionKind::TranscriptionStart
                | ActionKind::PlaybackStart
                | ActionKind::RecordStart
                | ActionKind::Bridge
                | ActionKind::Transfer
                | ActionKind::Enqueue
        )
    }

    /// The `…_stop` actions: they stop what a hangup stops anyway, so one
    /// refused because the call has ended did no harm.
    pub const fn is_stop(self) -> bool {
        matches!(
            self,
            ActionKind::GatherStop
                | ActionKind::TranscriptionStop
                | ActionKind::PlaybackStop
                | ActionKind::StreamingStop
                | ActionKind::RecordStop
        )
    }

    /// True for the one action Telnyx takes as `PUT` rather than `POST`.
    pub const fn is_put(self) -> bool {
        matches!(self, ActionKind::ClientStateUpdate)
    }
}

/// Every action name (the last path segment), in declaration order.
pub const ACTION_NAMES: &[&str] = wire_names!(ActionKind);

pub(crate) fn missing(pointer: &str) -> ValidationError {
    ValidationError::Missing { pointer: format!("/{pointer}") }
}

pub(crate) fn invalid(pointer: &str, detail: impl Into<String>) -> ValidationError {
    ValidationError::Invalid { pointer: format!("/{pointer}"), detail: detail.into() }
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>(body: Map<String, Value>) -> Result<T, ValidationError> {
    serde_json::from_value(Value::Object(body)).map_err(|e| {
        // serde names the field in its message ("invalid type: …, expected … at …").
        ValidationError::Invalid { pointer: "/".into(), detail: e.to_string() }
    })
}

pub use super::spec::is_valid_voice;

fn check_payload_length(payload: Option<&String>) -> Result<(), ValidationError> {
    if payload.is_some_and(|p| p.chars().count() > 3000) {
        return Err(invalid("payload", "must be at most 3000 characters"));
    }
    Ok(())
}

impl Action {
    /// What the action is.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Answer(_) => ActionKind::Answer,
            Action::Speak(_) => ActionKind::Speak,
            Action::GatherUsingSpeak(_) => ActionKind::GatherUsingSpeak,
            Action::Gather(_) => ActionKind::Gather,
            Action::GatherStop(_) => ActionKind::GatherStop,
            Action::TranscriptionStart(_) => ActionKind::TranscriptionStart,
            Action::TranscriptionStop(_) => ActionKind::TranscriptionStop,
            Action::Transfer(_) => ActionKind::Transfer,
            Action::Bridge(_) => ActionKind::Bridge,
            Action::Enqueue(_) => ActionKind::Enqueue,
            Action::LeaveQueue(_) => ActionKind::LeaveQueue,
            Action::Hangup(_) => ActionKind::Hangup,
            Action::PlaybackStart(_) => ActionKind::PlaybackStart,
            Action::PlaybackStop(_) => ActionKind::PlaybackStop,
            Action::StreamingStart(_) => ActionKind::StreamingStart,
            Action::StreamingStop(_) => ActionKind::StreamingStop,
            Action::RecordStart(_) => ActionKind::RecordStart,
            Action::RecordStop(_) => ActionKind::RecordStop,
            Action::ClientStateUpdate(_) => ActionKind::ClientStateUpdate,
        }
    }

    /// The action's path segment, e.g. `gather_using_speak`.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// See [`ActionKind::needs_answer`].
    pub fn needs_answer(&self) -> bool {
        self.kind().needs_answer()
    }

    /// See [`ActionKind::is_stop`].
    pub fn is_stop(&self) -> bool {
        self.kind().is_stop()
    }

    /// True for the one action Telnyx takes as `PUT` rather than `POST`.
    pub fn is_put(&self) -> bool {
        self.kind().is_put()
    }

    fn common(&self) -> Option<&Common> {
        Some(match self {
            Action::Answer(b) => &b.common,
            Action::Speak(b) => &b.common,
            Action::GatherUsingSpeak(b) => &b.common,
            Action::Gather(b) => &b.common,
            Action::TranscriptionStart(b) => &b.common,
            Action::Transfer(b) => &b.common,
            Action::Bridge(b) => &b.common,
            Action::Enqueue(b) => &b.common,
            Action::PlaybackStart(b) => &b.common,
            Action::StreamingStart(b) => &b.common,
            Action::RecordStart(b) => &b.common,
            Action::GatherStop(b)
            | Action::TranscriptionStop(b)
            | Action::LeaveQueue(b)
            | Action::Hangup(b)
            | Action::PlaybackStop(b)
            | Action::StreamingStop(b)
            | Action::RecordStop(b) => &b.common,
            Action::ClientStateUpdate(_) => return None,
        })
    }

    fn common_mut(&mut self) -> Option<&mut Common> {
        Some(match self {
            Action::Answer(b) => &mut b.common,
            Action::Speak(b) => &mut b.common,
            Action::GatherUsingSpeak(b) => &mut b.common,
            Action::Gather(b) => &mut b.common,
            Action::TranscriptionStart(b) => &mut b.common,
            Action::Transfer(b) => &mut b.common,
            Action::Bridge(b) => &mut b.common,
            Action::Enqueue(b) => &mut b.common,
            Action::PlaybackStart(b) => &mut b.common,
            Action::StreamingStart(b) => &mut b.common,
            Action::RecordStart(b) => &mut b.common,
            Action::GatherStop(b)
            | Action::TranscriptionStop(b)
            | Action::LeaveQueue(b)
            | Action::Hangup(b)
            | Action::PlaybackStop(b)
            | Action::StreamingStop(b)
            | Action::RecordStop(b) => &mut b.common,
            Action::ClientStateUpdate(_) => return None,
        })
    }

    /// The `command_id`, if set.
    pub fn command_id(&self) -> Option<&str> {
        self.common()?.command_id.as_deref()
    }

    /// Sets the `command_id` (ignored by `client_state_update`, which has none).
    pub fn set_command_id(&mut self, id: impl Into<String>) {
        if let Some(c) = self.common_mut() {
            c.command_id = Some(id.into());
        }
    }

    /// The `client_state` the action sets on the leg, if any.
    pub fn client_state(&self) -> Option<&str> {
        match self {
            Action::ClientStateUpdate(b) => Some(&b.client_state),
            other => other.common()?.client_state.as_deref(),
        }
    }

    /// Sets the `client_state` the action writes on the leg.
    pub fn set_client_state(&mut self, state: impl Into<String>) {
        match self {
            Action::ClientStateUpdate(b) => b.client_state = state.into(),
            other => {
                if let Some(c) = other.common_mut() {
                    c.client_state = Some(state.into());
                }
            }
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let r = match self {
            Action::Answer(b) => serde_json::to_value(b),
            Action::Speak(b) => serde_json::to_value(b),
            Action::GatherUsingSpeak(b) => serde_json::to_value(b),
            Action::Gather(b) => serde_json::to_value(b),
            Action::TranscriptionStart(b) => serde_json::to_value(b),
            Action::Transfer(b) => serde_json::to_value(b),
            Action::Bridge(b) => serde_json::to_value(b),
            Action::Enqueue(b) => serde_json::to_value(b),
            Action::PlaybackStart(b) => serde_json::to_value(b),
            Action::StreamingStart(b) => serde_json::to_value(b),
            Action::RecordStart(b) => serde_json::to_value(b),
            Action::GatherStop(b)
            | Action::TranscriptionStop(b)
            | Action::LeaveQueue(b)
            | Action::Hangup(b)
            | Action::PlaybackStop(b)
            | Action::StreamingStop(b)
            | Action::RecordStop(b) => serde_json::to_value(b),
            Action::ClientStateUpdate(b) => serde_json::to_value(b),
        };
        // Plain data with string keys always serialises.
        r.unwrap_or(Value::Null)
    }

    /// Parses and validates a request body the way Telnyx does, for the action
    /// named by the last path segment. Used by the sandbox carrier.
    pub fn parse(name: &str, body: Value) -> Result<Action, ValidationError> {
        let body = match body {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return Err(ValidationError::BadRequest("request body must be a JSON object".into())),
        };
        let kind = ActionKind::from_name(name)
            .ok_or_else(|| ValidationError::BadRequest(format!("unknown action {name:?}")))?;
        if kind == ActionKind::Bridge {
            super::spec::check(&super::spec::bridge_fields(&body), &body, "")?;
        } else if let Some(fields) = super::spec::body(name) {
            super::spec::check(fields, &body, "")?;
        }
        let action = match kind {
            ActionKind::Answer => Action::Answer(typed(body)?),
            ActionKind::Speak => {
                let b: Speak = typed(body)?;
                check_payload_length(b.payload.as_ref())?;
                Action::Speak(b)
            }
            ActionKind::GatherUsingSpeak => {
                let b: GatherUsingSpeak = typed(body)?;
                check_payload_length(b.payload.as_ref())?;
                check_digit_bounds(b.minimum_digits, b.maximum_digits)?;
                Action::GatherUsingSpeak(b)
            }
            ActionKind::Gather => {
                let b: Gather = typed(body)?;
                check_digit_bounds(b.minimum_digits, b.maximum_digits)?;
                Action::Gather(b)
            }
            ActionKind::GatherStop => Action::GatherStop(typed(body)?),
            ActionKind::TranscriptionStart => {
                let b: TranscriptionStart = typed(body)?;
                if let Some(t) = &b.transcription_tracks {
                    if !matches!(t.as_str(), "inbound" | "outbound" | "both") {
                        return Err(invalid("transcription_tracks", "must be inbound, outbound or both"));
                    }
                }
                Action::TranscriptionStart(b)
            }
            ActionKind::TranscriptionStop => Action::TranscriptionStop(typed(body)?),
            ActionKind::Transfer => {
                let b: Transfer = typed(body)?;
                if let Some(t) = b.timeout_secs {
                    if !(5..=600).contains(&t) {
                        return Err(invalid("timeout_secs", "must be between 5 and 600"));
                    }
                }
                Action::Transfer(b)
            }
            ActionKind::Bridge => Action::Bridge(typed(body)?),
            ActionKind::Enqueue => Action::Enqueue(typed(body)?),
            ActionKind::LeaveQueue => Action::LeaveQueue(typed(body)?),
            ActionKind::Hangup => Action::Hangup(typed(body)?),
            ActionKind::PlaybackStart => {
                if ["audio_url", "media_name", "playback_content"].iter().all(|f| body.get(*f).is_none()) {
                    return Err(missing("audio_url"));
                }
                Action::PlaybackStart(typed(body)?)
            }
            ActionKind::PlaybackStop => Action::PlaybackStop(typed(body)?),
            ActionKind::StreamingStart => Action::StreamingStart(typed(body)?),
            ActionKind::StreamingStop => Action::StreamingStop(typed(body)?),
            ActionKind::RecordStart => Action::RecordStart(typed(body)?),
            ActionKind::RecordStop => Action::RecordStop(typed(body)?),
            ActionKind::ClientStateUpdate => Action::ClientStateUpdate(typed(body)?),
        };
        Ok(action)
    }
}

fn check_digit_bounds(min: Option<u32>, max: Option<u32>) -> Result<(), ValidationError> {
    if let Some(min) = min {
        if !(1..=128).contains(&min) {
            return Err(invalid("minimum_digits", "must be between 1 and 128"));
        }
    }
    if let Some(max) = max {
        if !(1..=128).contains(&max) {
            return Err(invalid("maximum_digits", "must be between 1 and 128"));
        }
        if min.is_some_and(|min| min > max) {
            return Err(invalid("minimum_digits", "must not exceed maximum_digits"));
        }
    }
    Ok(())
}

impl Dial {
    /// Validates a dial body the way Telnyx does.
    pub fn parse(body: Value) -> Result<Dial, ValidationError> {
        let Value::Object(body) = body else {
            return Err(ValidationError::BadRequest("request body must be a JSON object".into()));
        };
        super::spec::check(super::spec::tables::DIAL, &body, "")?;
        let d: Dial = typed(body)?;
        if let Some(t) = d.timeout_secs {
            if !(5..=600).contains(&t) {
                return Err(invalid("timeout_secs", "must be between 5 and 600"));
            }
        }
        Ok(d)
    }
}

/// `{"data": {…}}` answer of `POST /v2/calls` and `GET /v2/calls/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResponse {
    /// The call.
    pub data: CallInfo,
}

/// A call as the API describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallInfo {
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    /// Always false in the dial answer (dialling is asynchronous).
    pub is_alive: bool,
    #[serde(default = "call_record_type")]
    pub record_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_duration: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Fields this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn call_record_type() -> String {
    "call".into()
}

/// `{"data": {"result": "ok"}}`, the answer of every action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResponse {
    /// The result.
    pub data: ActionResult,
}

/// The `data` of an action answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// `"ok"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Fields this version does not model (e.g. `recording_id`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_cover_every_action_and_parse_back() {
        for name in ACTION_NAMES {
            let body = match *name {
                "speak" | "gather_using_speak" => json!({"payload": "hi", "voice": "female"}),
                "transfer" => json!({"to": "+15550001"}),
                "bridge" => json!({"call_control_id": "v3:x"}),
                "enqueue" => json!({"queue_name": "support", "max_wait_time_secs": 600}),
                "playback_start" => json!({"audio_url": "https://x/a.mp3", "loop": "infinity"}),
                "record_start" => json!({"format": "mp3", "channels": "single"}),
                "client_state_update" => json!({"client_state": "aGk="}),
                _ => json!({}),
            };
            let a = Action::parse(name, body.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a.name(), *name);
            assert_eq!(a.body(), body, "{name} body must round-trip");
        }
    }

    #[test]
    fn each_kind_says_what_the_carrier_does_with_it() {
        let names = |f: fn(ActionKind) -> bool| {
            ActionKind::ALL.into_iter().filter(|k| f(*k)).map(ActionKind::name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(ActionKind::needs_answer),
            [
                "speak",
                "gather_using_speak",
                "gather",
                "transcription_start",
                "transfer",
                "bridge",
                "enqueue",
                "playback_start",
                "record_start"
            ]
        );
        assert_eq!(
            names(ActionKind::is_stop),
            ["gather_stop", "transcription_stop", "playback_stop", "streaming_stop", "record_stop"]
        );
        assert_eq!(names(ActionKind::is_put), ["client_state_update"]);
        assert_eq!(ACTION_NAMES.len(), ActionKind::ALL.len());
        for k in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(k.name()), Some(k));
        }
        assert_eq!(ActionKind::from_name("dance"), None);
        assert!(
            matches!(Action::parse("dance", json!({})), Err(ValidationError::BadRequest(m)) if m.contains("unknown action"))
        );
    }

    #[test]
    fn missing_required_fields_name_the_pointer() {
        let cases = [
            ("speak", json!({"voice": "female"}), "/payload"),
            ("speak", json!({"payload": "x"}), "/voice"),
            ("gather_using_speak", json!({"voice": "male"}), "/payload"),
            ("transfer", json!({}), "/to"),
            ("transfer", json!({"to": ""}), "/to"),
            ("bridge", json!({}), "/call_control_id"),
            ("enqueue", json!({"max_size": 10}), "/queue_name"),
            ("record_start", json!({"channels": "single"}), "/format"),
            ("client_state_update", json!({}), "/client_state"),
        ];
        for (name, body, pointer) in cases {
            assert_eq!(Action::parse(name, body), Err(ValidationError::Missing { pointer: pointer.into() }), "{name}");
        }
        assert_eq!(
            Dial::parse(json!({"to": "+1", "from": "+2"})),
            Err(ValidationError::Missing { pointer: "/connection_id".into() })
        );
    }

    #[test]
    fn invalid_values_are_refused() {
        let e = Action::parse("speak", json!({"payload": "x", "voice": "robot"})).unwrap_err();
        assert!(matches!(e, ValidationError::Invalid { ref pointer, .. } if pointer == "/voice"));
        let e = Action::parse("speak", json!({"payload": "x".repeat(3001), "voice": "female"})).unwrap_err();
        assert!(matches!(e, ValidationError::Invalid { ref pointer, .. } if pointer == "/payload"));
        let e = Action::parse("transfer", json!({"to": "+1", "timeout_secs": 2})).unwrap_err();
        assert!(matches!(e, ValidationError::Invalid { ref pointer, .. } if pointer == "/timeout_secs"));
        let e = Action::parse("answer", json!({"client_state": "%%%"})).unwrap_err();
        assert!(matches!(e, ValidationError::Invalid { ref pointer, .. } if pointer == "/client_state"));
        let e = Action::parse("speak", json!({"payload": 3, "voice": "female"})).unwrap_err();
        assert!(matches!(e, ValidationError::Invalid { .. }));
        assert!(matches!(Action::parse("teleport", json!({})), Err(ValidationError::BadRequest(_))));
        assert!(matches!(Action::parse("hangup", json!([1])), Err(ValidationError::BadRequest(_))));
        assert!(is_valid_voice("AWS.Polly.Joanna-Neural"));
        assert!(is_valid_voice("Telnyx.KokoroTTS.af"));
        assert!(!is_valid_voice(".x"));
    }

    #[test]
    fn both_transcription_bodies_are_accepted() {
        let new = Action::parse(
            "transcription_start",
            json!({"transcription_engine": "Google", "transcription_tracks": "inbound",
                   "transcription_engine_config": {"language": "en", "interim_results": true}}),
        )
        .unwrap();
        assert!(
            matches!(new, Action::TranscriptionStart(ref t) if t.transcription_engine.as_deref() == Some("Google"))
        );
        let old = Action::parse("transcription_start", json!({"language": "en", "interim_results": true})).unwrap();
        assert!(matches!(old, Action::TranscriptionStart(ref t) if t.interim_results == Some(true)));
    }

    #[test]
    fn command_id_and_client_state_accessors() {
        let mut a = Action::Hangup(Plain::default());
        assert_eq!(a.command_id(), None);
        a.set_command_id("c-1");
        a.set_client_state("aGk=");
        assert_eq!(a.command_id(), Some("c-1"));
        assert_eq!(a.body(), json!({"command_id": "c-1", "client_state": "aGk="}));
        let mut u = Action::ClientStateUpdate(ClientStateUpdate::default());
        u.set_command_id("ignored");
        assert!(u.is_put());
        assert_eq!(u.command_id(), None);
    }

    #[test]
    fn dial_and_call_info_shapes() {
        let d = Dial::parse(json!({"connection_id": "1", "to": "+1", "from": "+2", "timeout_secs": 30, "custom": 1}))
            .unwrap();
        assert_eq!(d.extra["custom"], 1);
        let info: CallResponse = serde_json::from_value(json!({"data": {
            "call_control_id": "v3:x", "call_leg_id": "l", "call_session_id": "s",
            "is_alive": false, "record_type": "call"}}))
        .unwrap();
        assert!(!info.data.is_alive);
    }
}
