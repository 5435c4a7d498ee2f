//! Conference commands: `POST /v2/conferences` (create a conference from a
//! call, which joins it), `POST /v2/conferences/{id}/actions/join` and
//! `…/actions/leave`, and the conference record the API answers with.
//!
//! Shared by the REST client, which sends them, and the sandbox carrier, which
//! parses and validates them like Telnyx does. Webhooks: `conference.created`,
//! `conference.participant.joined`, `conference.participant.left` and
//! `conference.ended` (see [`ConferenceNotice`](super::events::ConferenceNotice)).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::commands::{invalid, typed, ValidationError};
use super::spec::check;
use super::spec::tables::{CONFERENCE_CREATE, CONFERENCE_JOIN, CONFERENCE_LEAVE};

/// `POST /v2/conferences`: creates a conference from an existing (answered)
/// call, which becomes its first participant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConferenceCreate {
    /// Required: the call that creates (and joins) the conference.
    pub call_control_id: String,
    /// Required: the conference's name.
    pub name: String,
    /// State for the creator leg and for every conference webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// `always`, `never`, `on_enter` or `on_exit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep_enabled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comfort_noise: Option<bool>,
    /// The conference ends after this many minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_audio_url: Option<String>,
    /// 2–800 (default 250).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
    /// Default true; otherwise participants wait on hold until it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_conference_on_create: Option<bool>,
    /// Fields this version does not model, sent and kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v2/conferences/{id}/actions/join`: adds a call to a conference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConferenceJoin {
    /// Required: the call that joins.
    pub call_control_id: String,
    /// State for the joining leg's later webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep_enabled: Option<String>,
    /// When this participant leaves, the conference ends and everyone else is hung up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_conference_on_exit: Option<bool>,
    /// When this participant leaves, the conference ends (nobody is hung up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_end_conference_on_exit: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_conference_on_enter: Option<bool>,
    /// `barge`, `monitor`, `none` or `whisper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_role: Option<String>,
    /// Fields this version does not model, sent and kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v2/conferences/{id}/actions/leave`: removes a call from a conference
/// (the call stays up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConferenceLeave {
    /// Required: the call that leaves.
    pub call_control_id: String,
    /// Idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beep_enabled: Option<String>,
    /// Fields this version does not model, sent and kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A conference as the API describes it (`{"data": …}` of create and retrieve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conference {
    /// The conference id (a UUID): the handle for join and leave.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// `conference`.
    #[serde(default = "conference_record_type")]
    pub record_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// `init`, `in_progress` or `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `all_left`, `ended_via_api`, `host_left` or `time_exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Fields this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn conference_record_type() -> String {
    "conference".into()
}

/// `{"data": Conference}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConferenceResponse {
    /// The conference.
    pub data: Conference,
}

/// A conference command, as the session asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ConferenceCommand {
    /// `POST /conferences`.
    Create(ConferenceCreate),
    /// `POST /conferences/{conference_id}/actions/join`.
    Join {
        /// The conference.
        conference_id: String,
        /// The body.
        body: ConferenceJoin,
    },
    /// `POST /conferences/{conference_id}/actions/leave`.
    Leave {
        /// The conference.
        conference_id: String,
        /// The body.
        body: ConferenceLeave,
    },
}

impl ConferenceCommand {
    /// `conference_create`, `conference_join` or `conference_leave` (logs, metrics).
    pub fn name(&self) -> &'static str {
        match self {
            ConferenceCommand::Create(_) => "conference_create",
            ConferenceCommand::Join { .. } => "conference_join",
            ConferenceCommand::Leave { .. } => "conference_leave",
        }
    }

    /// The call the command is about.
    pub fn call_control_id(&self) -> &str {
        match self {
            ConferenceCommand::Create(b) => &b.call_control_id,
            ConferenceCommand::Join { body, .. } => &body.call_control_id,
            ConferenceCommand::Leave { body, .. } => &body.call_control_id,
        }
    }

    /// The `command_id`, if set.
    pub fn command_id(&self) -> Option<&str> {
        match self {
            ConferenceCommand::Create(b) => b.command_id.as_deref(),
            ConferenceCommand::Join { body, .. } => body.command_id.as_deref(),
            ConferenceCommand::Leave { body, .. } => body.command_id.as_deref(),
        }
    }

    /// Sets the `command_id`.
    pub fn set_command_id(&mut self, id: impl Into<String>) {
        let id = Some(id.into());
        match self {
            ConferenceCommand::Create(b) => b.command_id = id,
            ConferenceCommand::Join { body, .. } => body.command_id = id,
            ConferenceCommand::Leave { body, .. } => body.command_id = id,
        }
    }
}

fn object(body: Value) -> Result<Map<String, Value>, ValidationError> {
    match body {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(ValidationError::BadRequest("request body must be a JSON object".into())),
    }
}

impl ConferenceCreate {
    /// Validates a create body the way Telnyx does.
    pub fn parse(body: Value) -> Result<Self, ValidationError> {
        let body = object(body)?;
        check(CONFERENCE_CREATE, &body, "")?;
        let b: ConferenceCreate = typed(body)?;
        if let Some(n) = b.max_participants {
            if !(2..=800).contains(&n) {
                return Err(invalid("max_participants", "must be between 2 and 800"));
            }
        }
        Ok(b)
    }
}

impl ConferenceJoin {
    /// Validates a join body the way Telnyx does.
    pub fn parse(body: Value) -> Result<Self, ValidationError> {
        let body = object(body)?;
        check(CONFERENCE_JOIN, &body, "")?;
        typed(body)
    }
}

impl ConferenceLeave {
    /// Validates a leave body the way Telnyx does.
    pub fn parse(body: Value) -> Result<Self, ValidationError> {
        let body = object(body)?;
        check(CONFERENCE_LEAVE, &body, "")?;
        typed(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_round_trip_and_keep_unknown_fields() {
        let body = json!({"call_control_id": "v3:a", "name": "conv-1", "client_state": "aGk=", "command_id": "c1",
                          "beep_enabled": "never", "region": "US"});
        let c = ConferenceCreate::parse(body.clone()).unwrap();
        assert_eq!(c.extra["region"], "US");
        assert_eq!(serde_json::to_value(&c).unwrap(), body);
        let j = ConferenceJoin::parse(json!({"call_control_id": "v3:b", "end_conference_on_exit": true})).unwrap();
        assert_eq!(j.end_conference_on_exit, Some(true));
        assert_eq!(ConferenceLeave::parse(json!({"call_control_id": "v3:b"})).unwrap().call_control_id, "v3:b");
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let missing = |b: Value| ConferenceCreate::parse(b).unwrap_err();
        assert_eq!(missing(json!({"name": "x"})), ValidationError::Missing { pointer: "/call_control_id".into() });
        assert_eq!(missing(json!({"call_control_id": "v3:a"})), ValidationError::Missing { pointer: "/name".into() });
        let e = ConferenceCreate::parse(json!({"call_control_id": "v3:a", "name": "x", "max_participants": 1}));
        assert!(matches!(e, Err(ValidationError::Invalid { ref pointer, .. }) if pointer == "/max_participants"));
        let e = ConferenceJoin::parse(json!({"call_control_id": "v3:a", "client_state": "%%"}));
        assert!(matches!(e, Err(ValidationError::Invalid { ref pointer, .. }) if pointer == "/client_state"));
        let e = ConferenceJoin::parse(json!({"call_control_id": "v3:a", "supervisor_role": "boss"}));
        assert!(matches!(e, Err(ValidationError::Invalid { ref pointer, .. }) if pointer == "/supervisor_role"));
        assert!(matches!(ConferenceLeave::parse(json!([1])), Err(ValidationError::BadRequest(_))));
    }

    #[test]
    fn the_api_record_parses() {
        let r: ConferenceResponse = serde_json::from_value(json!({"data": {
            "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "name": "Business", "record_type": "conference",
            "created_at": "2019-01-23T18:10:02.574Z", "expires_at": "2019-01-23T18:10:02.574Z",
            "connection_id": "3fa8", "status": "in_progress", "region": "US", "new_field": 1}}))
        .unwrap();
        assert_eq!(r.data.status.as_deref(), Some("in_progress"));
        assert_eq!(r.data.extra["new_field"], 1);
    }

    #[test]
    fn commands_know_their_names_and_ids() {
        let mut c = ConferenceCommand::Join {
            conference_id: "c".into(),
            body: ConferenceJoin { call_control_id: "v3:x".into(), ..Default::default() },
        };
        assert_eq!(c.name(), "conference_join");
        assert_eq!(c.call_control_id(), "v3:x");
        c.set_command_id("id-1");
        assert_eq!(c.command_id(), Some("id-1"));
    }
}
