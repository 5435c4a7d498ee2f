//! Request and response bodies of the Symbl REST API, as documented. Every
//! response type ignores fields it does not know and defaults the ones that
//! Symbl may leave out; identifiers are read whether Symbl sends them as
//! strings or numbers.

use ivrx_intel::TrackerConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// Reads an id sent as a string or a number.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Id::deserialize(d)? {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
    })
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "id_string")] String);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

fn id_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "id_string")] String);
    Ok(Option::<Vec<Wrap>>::deserialize(d)?.unwrap_or_default().into_iter().map(|w| w.0).collect())
}

// ---------------------------------------------------------------- requests

/// A message's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The text.
    #[serde(default)]
    pub content: String,
    /// `text/plain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Who said something.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Speaker {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User id (often an email address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// When a message was said (RFC 3339 timestamps).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDuration {
    /// Start.
    pub start_time: String,
    /// End.
    pub end_time: String,
}

/// One message sent to the Async Text API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    /// The text.
    pub payload: Payload,
    /// The speaker.
    pub from: Speaker,
    /// When it was said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<MessageDuration>,
}

impl TextMessage {
    /// A plain-text message from a named speaker.
    pub fn new(speaker: &str, content: &str) -> Self {
        Self {
            payload: Payload { content: content.to_string(), content_type: Some("text/plain".into()) },
            from: Speaker { name: Some(speaker.to_string()), user_id: None },
            duration: None,
        }
    }

    /// Sets when the message was said.
    pub fn with_duration(mut self, start_time: String, end_time: String) -> Self {
        self.duration = Some(MessageDuration { start_time, end_time });
        self
    }
}

/// A tracker sent with a text job: a name and the literal phrases that count
/// (ivrx's pattern syntax expanded, exclusions and wildcards left out: Symbl's
/// vocabulary is plain phrases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerSpec {
    /// The tracker's name.
    pub name: String,
    /// Its phrases.
    pub vocabulary: Vec<String>,
}

impl From<&TrackerConfig> for TrackerSpec {
    fn from(t: &TrackerConfig) -> Self {
        let mut vocabulary: Vec<String> = Vec::new();
        for phrase in t.phrases.iter().flat_map(|p| ivrx_intel::phrases::literal_phrases(p)) {
            if !vocabulary.contains(&phrase) {
                vocabulary.push(phrase);
            }
        }
        Self { name: t.name.clone(), vocabulary }
    }
}

/// Body of `POST /v1/process/text` and `PUT /v1/process/text/{conversationId}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextRequest {
    /// Conversation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The messages.
    pub messages: Vec<TextMessage>,
    /// Trackers to detect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trackers: Vec<TrackerSpec>,
}

impl TextRequest {
    /// A request with these messages.
    pub fn new(messages: Vec<TextMessage>) -> Self {
        Self { name: None, messages, trackers: Vec::new() }
    }
}

/// The PSTN endpoint Symbl dials into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PstnEndpoint {
    /// `pstn`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The number Symbl calls.
    pub phone_number: String,
    /// Digits Symbl presses after connecting (conference PINs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf: Option<String>,
}

/// Body of `POST /v1/endpoint:connect` with `operation: start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectRequest {
    /// `start`.
    pub operation: String,
    /// Where Symbl dials.
    pub endpoint: PstnEndpoint,
    /// Post-call actions (none by default).
    #[serde(default)]
    pub actions: Vec<serde_json::Value>,
    /// Free-form data attached to the conversation.
    #[serde(default)]
    pub data: serde_json::Value,
    /// Whether speaker events are pushed.
    #[serde(default)]
    pub push_speaker_events: bool,
}

impl ConnectRequest {
    /// Dial `phone_number` (then press `dtmf`) with speaker events on.
    pub fn pstn(phone_number: &str, dtmf: Option<&str>) -> Self {
        Self {
            operation: "start".into(),
            endpoint: PstnEndpoint {
                kind: "pstn".into(),
                phone_number: phone_number.to_string(),
                dtmf: dtmf.map(str::to_string),
            },
            actions: Vec::new(),
            data: serde_json::json!({}),
            push_speaker_events: true,
        }
    }
}

// --------------------------------------------------------------- responses

/// `{accessToken, expiresIn}`. No `Debug`: it holds the token.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) expires_in: Option<f64>,
}

/// Answer to a text job: the conversation and the job processing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    /// The conversation.
    #[serde(deserialize_with = "id_string")]
    pub conversation_id: String,
    /// The job.
    #[serde(deserialize_with = "id_string")]
    pub job_id: String,
}

/// State of an async job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    /// Queued.
    Scheduled,
    /// Running.
    InProgress,
    /// Done: results can be read.
    Completed,
    /// Failed.
    Failed,
    /// A status Symbl did not document; treated as still running.
    Other(String),
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "scheduled" => JobStatus::Scheduled,
            "in_progress" => JobStatus::InProgress,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            _ => JobStatus::Other(s),
        })
    }
}

/// `GET /v1/job/{jobId}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    /// The job id.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub id: Option<String>,
    /// Its state.
    pub status: JobStatus,
}

/// Polarity of a text, -1.0 to 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Polarity {
    /// The score.
    pub score: f64,
}

/// Sentiment of a message or topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// Polarity score.
    pub polarity: Polarity,
    /// `negative`, `neutral` or `positive`.
    #[serde(default)]
    pub suggested: Option<String>,
}

/// Who said a message, as the Conversation API reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageSender {
    /// Speaker id.
    #[serde(default, deserialize_with = "opt_id_string", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// User id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One message of a conversation (`GET /v1/conversations/{id}/messages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationMessage {
    /// Message id.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// The text.
    #[serde(default)]
    pub text: String,
    /// The speaker.
    #[serde(default)]
    pub from: Option<MessageSender>,
    /// Start (RFC 3339).
    #[serde(default)]
    pub start_time: Option<String>,
    /// End (RFC 3339).
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds from the start of the conversation.
    #[serde(default)]
    pub time_offset: Option<f64>,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// The conversation.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub conversation_id: Option<String>,
    /// Present when asked for with `sentiment=true`.
    #[serde(default)]
    pub sentiment: Option<Sentiment>,
}

/// `{messages: [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessagesResponse {
    #[serde(default)]
    pub(crate) messages: Vec<ConversationMessage>,
}

/// A topic of a conversation (`GET /v1/conversations/{id}/topics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Topic {
    /// Topic id.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub id: Option<String>,
    /// The topic.
    #[serde(default)]
    pub text: String,
    /// `topic`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Relevance, 0..1.
    #[serde(default)]
    pub score: Option<f64>,
    /// Messages that mention it.
    #[serde(default, deserialize_with = "id_list")]
    pub message_ids: Vec<String>,
    /// Present when asked for with `sentiment=true`.
    #[serde(default)]
    pub sentiment: Option<Sentiment>,
}

/// `{topics: [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TopicsResponse {
    #[serde(default)]
    pub(crate) topics: Vec<Topic>,
}

/// A message a tracker matched in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The message id.
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    /// Its text.
    #[serde(default)]
    pub text: Option<String>,
    /// Where the match starts; -1 for a similar, not exact, match.
    #[serde(default)]
    pub offset: Option<i64>,
}

/// One vocabulary entry a tracker matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackerMatch {
    /// `vocabulary`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The vocabulary phrase that matched.
    #[serde(default)]
    pub value: String,
    /// Messages it matched in.
    #[serde(default)]
    pub message_refs: Vec<MessageRef>,
    /// Insights it matched in.
    #[serde(default)]
    pub insight_refs: Vec<serde_json::Value>,
}

/// A tracker found in a conversation (`GET /v1/conversations/{id}/trackers-detected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedTracker {
    /// Tracker id.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub id: Option<String>,
    /// Tracker name.
    #[serde(default)]
    pub name: String,
    /// What matched.
    #[serde(default)]
    pub matches: Vec<TrackerMatch>,
}

/// Answer to `endpoint:connect` (start and stop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The telephony connection (ephemeral).
    #[serde(deserialize_with = "id_string")]
    pub connection_id: String,
    /// The conversation, for the Conversation API.
    #[serde(default, deserialize_with = "opt_id_string")]
    pub conversation_id: Option<String>,
    /// WebSocket for speaker events.
    #[serde(default)]
    pub result_web_socket_url: Option<String>,
    /// REST URL for speaker events.
    #[serde(default)]
    pub event_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_with_unknown_fields_and_numeric_ids() {
        let body = r#"{"messages": [{"id": 6412283618000896, "text": "Best package for you is $69.99 per month.",
            "from": {"name": "Roger", "email": "Roger@example.com"},
            "startTime": "2020-07-10T11:16:21.024Z", "endTime": "2020-07-10T11:16:26.724Z",
            "timeOffset": 5.9, "duration": 1, "conversationId": "6749556955938816",
            "phrases": [{"type": "action_phrase", "text": "submit the documents"}],
            "sentiment": {"polarity": {"score": 0.6}, "suggested": "positive"},
            "words": [{"word": "Best", "score": 0.91}], "somethingNew": {"a": 1}}],
            "paging": {}}"#;
        let r: MessagesResponse = serde_json::from_str(body).unwrap();
        let m = &r.messages[0];
        assert_eq!(m.id, "6412283618000896");
        assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Roger"));
        assert_eq!(m.sentiment.as_ref().unwrap().polarity.score, 0.6);
        assert_eq!(m.conversation_id.as_deref(), Some("6749556955938816"));
    }

    #[test]
    fn a_message_without_sentiment_or_text_still_parses() {
        let r: MessagesResponse = serde_json::from_str(r#"{"messages":[{"id":"1"}]}"#).unwrap();
        assert_eq!(r.messages[0].text, "");
        assert!(r.messages[0].sentiment.is_none());
        assert!(serde_json::from_str::<MessagesResponse>(r#"{"messages":[{"text":"no id"}]}"#).is_err());
    }

    #[test]
    fn topics_and_trackers_parse() {
        let t: TopicsResponse = serde_json::from_str(
            r#"{"topics":[{"id":"5907389282779136","text":"interns","type":"topic","score":0.71,
            "messageIds":["4600982711304192", 5487363432120320],"sentiment":{"polarity":{"score":0.389},"suggested":"positive"},
            "parentRefs":[]}]}"#,
        )
        .unwrap();
        assert_eq!(t.topics[0].message_ids, vec!["4600982711304192", "5487363432120320"]);
        let d: Vec<DetectedTracker> = serde_json::from_str(
            r#"[{"id":"5237067555536896","name":"PricingMention","matches":[{"type":"vocabulary","value":"What is the price",
            "messageRefs":[{"id":"4667009028587520","text":"How much does it cost?","offset":-1}],
            "insightRefs":[{"text":"How much does it cost?","offset":-1,"type":"question","id":"5420651570528256"}]}]}]"#,
        )
        .unwrap();
        assert_eq!(d[0].matches[0].message_refs[0].offset, Some(-1));
    }

    #[test]
    fn job_status_keeps_unknown_values() {
        let j: JobInfo = serde_json::from_str(r#"{"id":"9b1d","status":"in_progress"}"#).unwrap();
        assert_eq!(j.status, JobStatus::InProgress);
        let j: JobInfo = serde_json::from_str(r#"{"status":"paused","extra":1}"#).unwrap();
        assert_eq!(j.status, JobStatus::Other("paused".into()));
    }

    #[test]
    fn tracker_patterns_become_literal_vocabulary() {
        let t = TrackerConfig {
            name: "asks_for_human".into(),
            phrases: vec!["agent".into(), "real|live person".into(), "-agent id".into(), "agent".into()],
        };
        let spec = TrackerSpec::from(&t);
        assert_eq!(spec.vocabulary, ["agent", "real person", "live person"]);
    }

    #[test]
    fn requests_serialize_as_documented() {
        let mut req = TextRequest::new(vec![TextMessage::new("Caller", "hello")]);
        req.trackers.push(TrackerSpec { name: "asks_for_human".into(), vocabulary: vec!["agent".into()] });
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            serde_json::json!({"messages":[{"payload":{"content":"hello","contentType":"text/plain"},"from":{"name":"Caller"}}],
                "trackers":[{"name":"asks_for_human","vocabulary":["agent"]}]})
        );
        assert_eq!(
            serde_json::to_value(ConnectRequest::pstn("+15550100", Some("1234#"))).unwrap(),
            serde_json::json!({"operation":"start","endpoint":{"type":"pstn","phoneNumber":"+15550100","dtmf":"1234#"},
                "actions":[],"data":{},"pushSpeakerEvents":true})
        );
    }
}
