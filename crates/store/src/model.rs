//! The rows the port reads and writes, in domain types: reasons, speakers,
//! statuses and labels are the core's and the intelligence crate's enums, and
//! times are times. Every backend returns exactly these.

use chrono::{DateTime, Utc};
use ivrx_core::policy::Reason;
use ivrx_core::session::{DecisionSource, Recorded, Role, Speaker, TransferStatus};
use ivrx_core::settings::TransferMode;
use ivrx_intel::{Label, TrackerHit};
use serde::{Deserialize, Serialize};

/// Whether a conversation is still going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// The call is in progress.
    #[default]
    Active,
    /// The call has ended.
    Ended,
}

impl ConversationStatus {
    /// `active` or `ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Active => "active",
            ConversationStatus::Ended => "ended",
        }
    }
}

/// One conversation: the IVR part and the agent part of one call, with its
/// utterances in order. The one row type for a conversation, whoever reads it
/// (reports, `watch`, the admin API, `analyze`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    /// Conversation id.
    pub id: String,
    /// When the call started. `None` only in a store written by other tools
    /// that holds a start this build cannot read (ivrx always writes one).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// `incoming`, `outgoing`, `import`, `synthetic`, …
    pub direction: Option<String>,
    /// The caller's number.
    pub caller: Option<String>,
    /// The number called.
    pub callee: Option<String>,
    /// The caller's leg.
    pub caller_call_control_id: Option<String>,
    /// Active or ended.
    pub status: ConversationStatus,
    /// Why the call ended (`completed_with_agent`, `caller_hung_up`, …).
    pub end_reason: Option<String>,
    /// Length of the call.
    pub duration_ms: Option<i64>,
    /// The transfer decision, if one was made.
    pub decision: Option<StoredDecision>,
    /// The last transfer state.
    pub transfer_status: Option<TransferStatus>,
    /// True once the caller was connected to an agent.
    pub transferred: bool,
    /// Call start to the agent connected.
    pub connected_ms: Option<i64>,
    /// Every utterance, in order.
    pub utterances: Vec<Utterance>,
    /// The callback the caller accepted, if any.
    pub callback: Option<CallbackTimes>,
}

/// When a conversation's callback was requested, placed (an agent on the
/// line, the caller dialled) and answered by the caller (its `callback` events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTimes {
    /// The caller accepted it.
    pub requested_at: Option<DateTime<Utc>>,
    /// The caller was called back.
    pub placed_at: Option<DateTime<Utc>>,
    /// The caller answered.
    pub answered_at: Option<DateTime<Utc>>,
}

impl CallbackTimes {
    /// Folds one stored `callback` event (its body, and when it happened) in;
    /// false when it is none of the three.
    pub fn mark(&mut self, body: &str, at: DateTime<Utc>) -> bool {
        let status = serde_json::from_str::<serde_json::Value>(body).ok();
        let slot = match status.as_ref().and_then(|v| v["status"].as_str()) {
            Some("requested") => &mut self.requested_at,
            Some("placed") => &mut self.placed_at,
            Some("answered") => &mut self.answered_at,
            _ => return false,
        };
        slot.get_or_insert(at);
        true
    }

    /// From the request to the caller answering.
    pub fn wait_ms(&self) -> Option<i64> {
        Some((self.answered_at? - self.requested_at?).num_milliseconds())
    }
}

impl Conversation {
    /// The caller's utterances, in the order they were said.
    pub fn caller_utterances(&self) -> impl Iterator<Item = &Utterance> {
        self.utterances.iter().filter(|u| u.is_caller())
    }
}

/// The transfer decision as the conversation records it. Only the reason is
/// certain to be there: stores written by other tools may lack the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDecision {
    /// Why.
    pub reason: Reason,
    /// Who decided: the policy, the menu or a supervisor.
    pub source: Option<DecisionSource>,
    /// The queue decided for.
    pub queue: Option<String>,
    /// 1-based caller index of the trigger utterance (none for keypad and manual decisions).
    pub trigger_index: Option<u32>,
    /// The trigger utterance's text.
    pub trigger_text: Option<String>,
    /// The tracker phrase that mattered.
    pub trigger_phrase: Option<String>,
    /// Call start to the decision.
    pub decision_ms: Option<i64>,
}

/// One utterance with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Sequence number within the conversation.
    pub seq: u32,
    /// Who said it.
    pub speaker: Speaker,
    /// 1-based index among the caller's utterances (caller only).
    pub caller_index: Option<u32>,
    /// Milliseconds since the call started.
    pub offset_ms: i64,
    /// The (possibly redacted) text.
    pub text: String,
    /// The transcription's confidence.
    pub confidence: Option<f64>,
    /// The engine's score, when scored (finite values only).
    pub score: Option<f64>,
    /// The engine's label.
    pub label: Option<Label>,
    /// Tracker hits.
    pub trackers: Vec<TrackerHit>,
    /// Which engine scored it (`local`, `symbl`).
    pub engine: Option<String>,
}

impl Utterance {
    /// True for the caller's speech.
    pub fn is_caller(&self) -> bool {
        self.speaker == Speaker::Caller
    }
}

/// One transfer attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferAttempt {
    /// 1-based attempt of its decision.
    pub attempt: u32,
    /// The queue.
    pub queue: String,
    /// The agent's number.
    pub target: String,
    /// Warm or cold.
    pub mode: TransferMode,
    /// Where the attempt got to.
    pub status: TransferStatus,
    /// Why it failed, when it did.
    pub detail: Option<String>,
    /// Call start to the agent being dialled.
    pub requested_ms: Option<i64>,
    /// … to the agent answering.
    pub answered_ms: Option<i64>,
    /// … to caller and agent connected.
    pub connected_ms: Option<i64>,
    /// … to the attempt ending.
    pub ended_ms: Option<i64>,
}

/// An utterance in a [`CallReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportUtterance {
    /// 1-based among this speaker's utterances (for the caller, the index
    /// `trigger_index` refers to).
    pub index: u32,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// The score.
    pub score: Option<f64>,
    /// Milliseconds since the call started.
    pub offset_ms: i64,
    /// Names of the trackers that fired.
    pub trackers: Vec<String>,
    /// Which engine scored it (`local`, `symbl`).
    pub engine: Option<String>,
}

/// What happened in one call: the object `ivrx dial --json` prints and the
/// admin API answers. A view of a [`Conversation`], its transfer attempts and
/// insights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    /// Conversation id.
    pub conversation_id: String,
    /// True when the caller was connected to an agent.
    pub transferred: bool,
    /// The queue a transfer was decided for, if any.
    pub queue: Option<String>,
    /// Why, if a transfer was decided.
    pub reason: Option<Reason>,
    /// 1-based index of the caller utterance that triggered the transfer (null for keypad and manual).
    pub trigger_index: Option<u32>,
    /// The phrase that mattered, when a tracker fired.
    pub trigger_phrase: Option<String>,
    /// Last transfer state.
    pub transfer_status: Option<TransferStatus>,
    /// Milliseconds from the start of the call to the decision.
    pub decision_ms: Option<i64>,
    /// Milliseconds from the start of the call to the agent joining.
    pub connected_ms: Option<i64>,
    /// Why the call ended.
    pub end_reason: Option<String>,
    /// Length of the call.
    pub duration_ms: Option<i64>,
    /// Every utterance.
    pub utterances: Vec<ReportUtterance>,
    /// Every transfer attempt.
    pub transfers: Vec<TransferAttempt>,
    /// What external engines made of the call (e.g. Symbl topics and trackers), by engine.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub insights: serde_json::Map<String, serde_json::Value>,
}

impl CallReport {
    /// The report of a conversation.
    pub fn new(
        c: Conversation,
        transfers: Vec<TransferAttempt>,
        insights: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let mut counts = std::collections::HashMap::<Speaker, u32>::new();
        let utterances = c
            .utterances
            .into_iter()
            .map(|u| {
                let n = counts.entry(u.speaker).or_default();
                *n += 1;
                let mut trackers: Vec<String> = u.trackers.into_iter().map(|h| h.tracker).collect();
                trackers.dedup();
                ReportUtterance {
                    index: u.caller_index.unwrap_or(*n),
                    speaker: u.speaker,
                    text: u.text,
                    score: u.score,
                    offset_ms: u.offset_ms,
                    trackers,
                    engine: u.engine,
                }
            })
            .collect();
        let d = c.decision;
        CallReport {
            conversation_id: c.id,
            transferred: c.transferred,
            queue: d.as_ref().and_then(|d| d.queue.clone()),
            reason: d.as_ref().map(|d| d.reason),
            trigger_index: d.as_ref().and_then(|d| d.trigger_index),
            trigger_phrase: d.as_ref().and_then(|d| d.trigger_phrase.clone()),
            transfer_status: c.transfer_status,
            decision_ms: d.as_ref().and_then(|d| d.decision_ms),
            connected_ms: c.connected_ms,
            end_reason: c.end_reason,
            duration_ms: c.duration_ms,
            utterances,
            transfers,
            insights,
        }
    }
}

/// What became of a received webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// Routed to a conversation (or to the Symbl dial-in handling).
    Accepted,
    /// No conversation ivrx knows.
    Unrouted,
    /// An event type ivrx does not handle: logged and ignored.
    UnknownEvent,
    /// A messaging webhook (an SMS's delivery): taken by the alerts, never
    /// by a conversation's worker.
    Message,
}

impl WebhookOutcome {
    /// `accepted`, `unrouted`, `unknown_event` or `message`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Unrouted => "unrouted",
            WebhookOutcome::UnknownEvent => "unknown_event",
            WebhookOutcome::Message => "message",
        }
    }
}

/// One raw webhook as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// `data.id`.
    pub event_id: String,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// `data.event_type`.
    pub event_type: String,
    /// The leg, when the event names one.
    pub call_control_id: Option<String>,
    /// The conversation it was routed to, if any.
    pub conversation_id: Option<String>,
    /// `meta.attempt`.
    pub attempt: Option<u32>,
    /// What became of it.
    pub outcome: WebhookOutcome,
    /// The raw body.
    pub body: String,
    /// Under several instances: whether the others are woken for it once
    /// stored. Not needed when the instance storing it holds its
    /// conversation's lease (its owner takes it without a wake-up).
    pub wake_others: bool,
}

/// Whether a webhook was new to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Stored now.
    New,
    /// The store already held a webhook with this event id.
    Repeat,
}

/// A webhook routed to a conversation that the conversation has not processed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingWebhook {
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// The raw (possibly redacted) body.
    pub body: String,
}

/// A session's saved state.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionState {
    /// The serialised session and its unanswered commands.
    pub state: String,
    /// True once the call is over and nothing is left to send.
    pub ended: bool,
}

/// One step of one conversation, committed atomically: the domain events it
/// produced, the session's state after them and the webhooks it consumed.
/// The unit a backend serialises per conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The conversation.
    pub conversation_id: String,
    /// Domain events, in order (replayed events change nothing).
    pub events: Vec<Recorded>,
    /// The session's state after them.
    pub session: Option<SessionState>,
    /// Event ids of the webhooks consumed.
    pub processed: Vec<String>,
}

impl Transition {
    /// A transition made of these events only (imports, synthetic calls, tests).
    pub fn events(conversation_id: impl Into<String>, events: Vec<Recorded>) -> Self {
        Transition { conversation_id: conversation_id.into(), events, session: None, processed: Vec::new() }
    }
}

/// Which conversations to read (`ivrx analyze --since/--until/--queue/--transferred`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filters {
    /// Only calls that started at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only calls that started before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only calls whose transfer decision named this queue.
    pub queue: Option<String>,
    /// Only calls connected to an agent (`true`) or not (`false`).
    pub transferred: Option<bool>,
}

/// What the store holds about one call (by its first leg's `call_control_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallAudit {
    /// The call's first leg.
    pub call_control_id: String,
    /// Its conversation, when the store knows the leg.
    pub conversation_id: Option<String>,
    /// True once the conversation has ended.
    pub ended: bool,
    /// Transfer decisions stored (exactly-once means 0 or 1).
    pub decisions: u32,
    /// The queue of the first decision.
    pub queue: Option<String>,
    /// The caller utterance that triggered it (null for keypad and manual).
    pub trigger_index: Option<u32>,
    /// Transfer attempts that reached `connected`.
    pub connected_transfers: u32,
    /// Agent legs that answered.
    pub agent_legs_answered: u32,
    /// Agent legs that answered and whose end the record does not show.
    #[serde(default)]
    pub agent_legs_not_ended: u32,
}

impl CallAudit {
    /// More than one decision or connected transfer. (More than one agent
    /// may answer for one decision: every one but the connected one is
    /// released, and must end.)
    pub fn double_transfer(&self) -> bool {
        self.decisions > 1 || self.connected_transfers > 1
    }
}

/// A leg whose end the record does not show (see [`Recovery::open_legs`](crate::Recovery::open_legs)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLeg {
    /// The leg.
    pub call_control_id: String,
    /// Its conversation.
    pub conversation_id: String,
    /// Caller, agent or Symbl.
    pub role: Role,
}

/// A stored enum value (`"asked_for_human"`, `"caller"`, …) read back into
/// its type; `None` for a value this build does not know.
pub fn parse_enum<T: serde::de::DeserializeOwned>(stored: &str) -> Option<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(stored)).ok()
}

/// The stored name of an enum value (its serde name).
pub fn enum_name<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_read_back_into_their_enums() {
        assert_eq!(parse_enum::<Reason>("asked_for_human"), Some(Reason::AskedForHuman));
        assert_eq!(parse_enum::<Speaker>("ivr"), Some(Speaker::Ivr));
        assert_eq!(parse_enum::<TransferStatus>("attempt_failed"), Some(TransferStatus::AttemptFailed));
        assert_eq!(parse_enum::<DecisionSource>("menu"), Some(DecisionSource::Menu));
        assert_eq!(parse_enum::<Label>("negative"), Some(Label::Negative));
        assert_eq!(parse_enum::<TransferMode>("cold"), Some(TransferMode::Cold));
        assert_eq!(parse_enum::<ConversationStatus>("ended"), Some(ConversationStatus::Ended));
        assert_eq!(parse_enum::<Reason>("from_a_newer_ivrx"), None);
        assert_eq!(enum_name(&DecisionSource::Manual).as_deref(), Some("manual"));
        assert_eq!(enum_name(&TransferMode::Warm).as_deref(), Some("warm"));
    }
}
