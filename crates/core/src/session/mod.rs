//! The call session: a sans-I/O state machine for one conversation.
//!
//! `event in → effects out`. The server feeds it webhook events, scores and
//! manual requests; it answers with [`Effect`]s: commands to send to Telnyx,
//! utterances to score, and [`DomainEvent`]s to store and stream. It does no
//! I/O and reads no clock (times come with the inputs), so tests drive it
//! directly and a stored session can be resumed after a restart.
//!
//! One conversation spans the caller's leg and any agent leg: the conversation
//! id stays the same when the agent joins. With Symbl in PSTN mode the caller
//! is put in a conference that Symbl's phone leg and later the agent join
//! (see [`SymblInput`]); Symbl's dial-in leg is identified by [`symbl_leg`].
//!
//! No agent is left on a dead line: every agent leg ivrx no longer needs (an
//! attempt given up, a late answer, a caller gone) is released — hung up with
//! one `command_id` until Telnyx confirms it or answers that the leg is gone —
//! and at most one agent leg per decision is ever bridged to the caller (see
//! [`agent_legs`]).

mod agent_legs;
mod callback;
mod flow;
pub mod symbl_leg;
mod symbl_link;
pub mod text;
mod transfer;
mod waiting;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ivrx_intel::{Label, Score, TrackerHit};
use ivrx_telnyx::commands::{Action, Dial};
use ivrx_telnyx::conferences::ConferenceCommand;
use ivrx_telnyx::events::Event;
use ivrx_telnyx::transcription::TranscriptionRequest;
use serde::{Deserialize, Serialize};

use self::agent_legs::Joined;
use crate::policy::{Decision, PolicyConfig, PolicySnapshot, PolicyState, Reason};
use crate::settings::{default_queues, IvrConfig, QueueConfig, TransferConfig, TransferMode, WaitQueueConfig};

pub use agent_legs::{check_one_agent_at_a_time, LegCheck, ENDED_UNOBSERVED};
pub use symbl_link::SymblInput;
pub use transfer::{ManualTransfer, TransferRefused};

/// What ivrx writes into a leg's `client_state`: which conversation the leg
/// belongs to and what part it plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegTag {
    /// Format marker; always 1.
    pub ivrx: u8,
    /// The conversation id.
    pub conv: String,
    /// The leg's part in the conversation.
    pub role: Role,
    /// For agent legs: which transfer attempt (1-based) the leg belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl LegTag {
    /// Decodes a raw `client_state`; anything not written by ivrx is `None`.
    pub fn decode(raw: Option<&str>) -> Option<LegTag> {
        ivrx_telnyx::client_state::decode::<LegTag>(raw).ours().filter(|t| t.ivrx == 1)
    }

    fn encode(&self) -> String {
        // A tag is a few short strings: far below the 4 KiB limit, always serialisable.
        ivrx_telnyx::client_state::encode(self).unwrap_or_default()
    }
}

/// A leg's part in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The customer's leg (inbound call, or the party `ivrx dial` called).
    Caller,
    /// An agent's leg.
    Agent,
    /// Symbl's phone leg (PSTN mode): it listens in the conference.
    Symbl,
}

impl Role {
    /// `caller`, `agent` or `symbl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caller => "caller",
            Role::Agent => "agent",
            Role::Symbl => "symbl",
        }
    }
}

/// Who said something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The customer.
    Caller,
    /// The live agent.
    Agent,
    /// The IVR's own speech.
    Ivr,
}

impl Speaker {
    /// `caller`, `agent` or `ivr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
            Speaker::Ivr => "ivr",
        }
    }
}

/// Settings the session reads, derived from the configuration (`ivrx.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// The IVR flow.
    pub ivr: IvrConfig,
    /// Agent queues.
    pub queues: BTreeMap<String, QueueConfig>,
    /// Transfer behaviour.
    pub transfer: TransferConfig,
    /// Escalation policy.
    pub policy: PolicyConfig,
    /// Call Control application id, for dialling agents.
    pub connection_id: String,
    /// Webhook URL to give dialled legs (`None`: the application's default).
    pub webhook_url: Option<String>,
    /// Symbl in PSTN mode: the caller goes into a conference that Symbl dials
    /// into, and Symbl's transcripts are the caller's utterances.
    pub symbl_pstn: bool,
    /// The transcription engine and its configuration.
    pub transcription: TranscriptionRequest,
    /// No word of the caller's leaves ivrx in headers (`[storage] redact_pii`).
    pub redact_pii: bool,
    /// `[queue]`: when no agent answers, the caller waits in a Telnyx call
    /// queue (`None`: back to the IVR).
    pub wait_queue: Option<WaitQueueConfig>,
}

impl Default for SessionSettings {
    /// The default configuration's flow, queues, transfers, policy and transcription.
    fn default() -> Self {
        Self {
            ivr: IvrConfig::default(),
            queues: default_queues(),
            transfer: TransferConfig::default(),
            policy: PolicyConfig::default(),
            connection_id: "1684641123236054244".into(),
            webhook_url: None,
            symbl_pstn: false,
            transcription: TranscriptionRequest::default(),
            redact_pii: true,
            wait_queue: None,
        }
    }
}

/// An input to the session.
#[derive(Debug, Clone)]
pub enum Input {
    /// A webhook event (already verified and de-duplicated).
    Webhook {
        /// The event.
        event: Box<Event>,
        /// `occurred_at` of the event, when it had one.
        occurred_at: Option<DateTime<Utc>>,
        /// When the server received it.
        received_at: DateTime<Utc>,
    },
    /// The score for an utterance the session asked to be scored.
    Scored {
        /// The utterance's sequence number.
        seq: u32,
        /// The score.
        score: Score,
        /// When the score became available.
        at: DateTime<Utc>,
    },
    /// PSTN mode: what happened on Symbl's side of the call.
    Symbl(SymblInput),
    /// The conference the caller is in was created (the answer to the create
    /// command; `conference.created` says the same).
    ConferenceReady {
        /// The conference id.
        conference_id: String,
        /// When the answer came.
        at: DateTime<Utc>,
    },
    /// Telnyx answered an agent dial with the new leg's ids.
    Dialled {
        /// The dial's command id.
        command_id: String,
        /// The new leg.
        call_control_id: String,
        /// Its `call_leg_id`.
        call_leg_id: Option<String>,
        /// Its `call_session_id`.
        call_session_id: Option<String>,
        /// When the answer came.
        at: DateTime<Utc>,
    },
    /// What Telnyx says of a leg whose end the record does not show
    /// (`GET /v2/calls/{call_control_id}`), asked when ivrx may have missed
    /// its end: after a restart, and periodically.
    LegChecked(LegCheck),
    /// The caller waiting in the call queue is now at its head (the calls
    /// ahead of them left it): their session may try the agents.
    QueueHead {
        /// When the call ahead left.
        at: DateTime<Utc>,
    },
    /// Time for a pending callback's next round of agents (see
    /// [`Session::callback_retry`]).
    CallbackDue {
        /// Now, on the conversation's clock.
        at: DateTime<Utc>,
    },
    /// A command the session asked for failed for good (after retries).
    CommandFailed {
        /// The command's id.
        command_id: String,
        /// Action name (`dial`, `speak`, …).
        action: String,
        /// Which leg it was for.
        role: Role,
        /// True for 90018 (call already ended): a final state, not a fault.
        call_gone: bool,
        /// The error, for the record.
        error: String,
        /// When it failed.
        at: DateTime<Utc>,
    },
}

/// A command for Telnyx.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The leg the action goes to (`None` for a dial).
    pub call_control_id: Option<String>,
    /// The leg's role.
    pub role: Role,
    /// What to send.
    pub request: Request,
}

impl Command {
    /// The command id (always set by the session).
    pub fn command_id(&self) -> &str {
        match &self.request {
            Request::Action(a) => a.command_id().unwrap_or_default(),
            Request::Dial(d) => d.command_id.as_deref().unwrap_or_default(),
            Request::Conference(c) => c.command_id().unwrap_or_default(),
        }
    }

    /// The action name (`dial` for a dial, `conference_join` …).
    pub fn action_name(&self) -> &'static str {
        match &self.request {
            Request::Action(a) => a.name(),
            Request::Dial(_) => "dial",
            Request::Conference(c) => c.name(),
        }
    }

    /// True for a `…_stop` action ([`Action::is_stop`]): refused because the
    /// call has ended, it did no harm.
    pub fn is_stop(&self) -> bool {
        matches!(&self.request, Request::Action(a) if a.is_stop())
    }

    /// True for a hangup of an agent leg (released apart from the ordered commands).
    pub fn is_agent_hangup(&self) -> bool {
        self.role == Role::Agent && matches!(&self.request, Request::Action(Action::Hangup(_)))
    }

    /// True for the command that starts reaching an agent (dial or transfer).
    pub fn is_transfer_start(&self) -> bool {
        matches!(&self.request, Request::Dial(_) | Request::Action(Action::Transfer(_)))
    }

    /// True when its failure needs no answer from the session: a stop
    /// (`gather_stop`, `playback_stop`, `transcription_stop`) to a leg that has
    /// already ended stopped what it was meant to.
    pub fn failure_is_moot(&self, call_gone: bool) -> bool {
        call_gone && self.is_stop()
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// An action on an existing leg.
    Action(Action),
    /// `POST /calls`.
    Dial(Dial),
    /// `POST /conferences` and the conference actions.
    Conference(ConferenceCommand),
}

/// An utterance to score; the driver answers with [`Input::Scored`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRequest {
    /// Sequence number within the conversation.
    pub seq: u32,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// The external engine's ids for it (Symbl's message ids in PSTN mode):
    /// its score is theirs. Empty: score the text.
    pub refs: Vec<String>,
}

/// What the session asks the world to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to Telnyx, in order after the conversation's earlier ones.
    Send(Command),
    /// Release an agent leg: send its hangup apart from the ordered commands,
    /// after a backoff that grows with `round` (0: at once). A failure other
    /// than "the call is gone" comes back as [`Input::CommandFailed`], and the
    /// session releases it again: the same `command_id`, the next round.
    Release {
        /// The hangup.
        command: Command,
        /// How many times it was sent before.
        round: u32,
    },
    /// Score an utterance.
    Score(ScoreRequest),
    /// Store a domain event and stream it to live followers; nothing more.
    Record(Recorded),
    /// Route this leg's webhooks to the conversation from now on: by its
    /// `call_control_id`, and by its `call_leg_id` for the events that carry
    /// none (`call.recording.saved`).
    RouteLeg {
        /// The leg.
        call_control_id: String,
        /// Its `call_leg_id`, when known.
        call_leg_id: Option<String>,
    },
    /// The transfer decision was taken (counted by reason).
    Decided(Reason),
    /// People outside the call are told (supervisor alerts, a CRM): the
    /// transfer was decided, or reached its outcome.
    Notify(Box<Notice>),
    /// Text the caller (a callback's confirmation); what happens to the SMS
    /// comes back as a [`DomainEvent::Notification`] to record.
    TextCaller(CallerText),
    /// Every utterance is scored and none will come any more (the end is
    /// recorded): the scoring backend finishes, storing the external engine's
    /// summary of the call if it makes one (Symbl in text mode).
    FinishScoring,
    /// PSTN mode: ask Symbl to dial into the call. The driver picks the DTMF
    /// code Symbl presses, and answers with [`SymblInput`]s.
    StartSymbl,
    /// PSTN mode: Symbl's phone leg is on the call; the time it had to call
    /// in no longer runs.
    SymblJoined,
    /// PSTN mode: Symbl leaves the call. `fallback`: Symbl failed, so every
    /// utterance from now on (and any still waiting) is scored locally and no
    /// summary is fetched; otherwise the call ended: fetch and store Symbl's
    /// topics and trackers.
    StopSymbl {
        /// Symbl failed for this call.
        fallback: bool,
    },
}

/// An SMS to the caller ([`Effect::TextCaller`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerText {
    /// The conversation it is about.
    pub conversation_id: String,
    /// Names what it is about (`{conversation}:callback`): once per conversation.
    pub key: String,
    /// The caller's number.
    pub to: String,
    /// What it says.
    pub text: String,
}

/// What a [`Effect::Notify`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The transfer was decided.
    Decided,
    /// Caller and agent are talking.
    Connected,
    /// No agent could be reached.
    Failed,
    /// The caller hung up before an agent was connected.
    Abandoned,
}

impl NoticeKind {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Decided => "decided",
            NoticeKind::Connected => "connected",
            NoticeKind::Failed => "failed",
            NoticeKind::Abandoned => "abandoned",
        }
    }
}

/// A transfer decided or ended, for people outside the call.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Decided, or which outcome.
    pub kind: NoticeKind,
    /// The call's decision.
    pub decision: Decision,
    /// The caller's number.
    pub caller: Option<String>,
    /// For an outcome: the attempt it ended at and that attempt's agent.
    pub attempt: u32,
    /// The agent dialled last, if any.
    pub target: Option<String>,
    /// Why it failed (`no agent answered`).
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl Notice {
    /// Names this notice in conversation `conversation_id`: the same every
    /// time it is seen (a repeated webhook, a replay after a restart), so
    /// whoever is told can be told once: `{conversation}:{kind}:{ms}`.
    pub fn key(&self, conversation_id: &str) -> String {
        format!("{conversation_id}:{}:{}", self.kind.as_str(), self.at.timestamp_millis())
    }
}

/// A domain event with its place in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// The conversation.
    pub conversation_id: String,
    /// 1-based sequence number of the event within the conversation.
    pub n: u64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Milliseconds since the call started.
    pub offset_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: DomainEvent,
}

impl Recorded {
    /// Event `n` of a conversation that started at `started_at`, `offset_ms` into it.
    pub fn at_offset(
        conversation_id: &str,
        n: u64,
        started_at: DateTime<Utc>,
        offset_ms: u64,
        event: DomainEvent,
    ) -> Self {
        let at = started_at + chrono::Duration::milliseconds(offset_ms as i64);
        Recorded { conversation_id: conversation_id.to_string(), n, at, offset_ms, event }
    }
}

/// Transfer progress states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// The agent is being dialled.
    Dialing,
    /// The agent's phone rings.
    Ringing,
    /// The agent answered (warm: being briefed).
    Answered,
    /// Caller and agent are being bridged.
    Bridging,
    /// Caller and agent are talking.
    Connected,
    /// This agent could not be reached (refused, busy, no answer).
    AttemptFailed,
    /// No agent could be reached; the caller stays with the IVR.
    Failed,
    /// The caller hung up before an agent was connected.
    Abandoned,
    /// No agent could take the call: the caller waits in a call queue
    /// (`enqueue`; the detail gives the place in line).
    Queued,
    /// The caller left the queue (`call.dequeued`; the detail gives why and
    /// after how long).
    Dequeued,
}

impl TransferStatus {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Dialing => "dialing",
            TransferStatus::Ringing => "ringing",
            TransferStatus::Answered => "answered",
            TransferStatus::Bridging => "bridging",
            TransferStatus::Connected => "connected",
            TransferStatus::AttemptFailed => "attempt_failed",
            TransferStatus::Failed => "failed",
            TransferStatus::Abandoned => "abandoned",
            TransferStatus::Queued => "queued",
            TransferStatus::Dequeued => "dequeued",
        }
    }

    /// Whether the status becomes the conversation's (stored, shown on the
    /// board): leaving the queue does not — what follows it says how the
    /// transfer went, and the caller's `call.dequeued` may come after the
    /// agent's `call.bridged`.
    pub fn is_conversation_status(self) -> bool {
        self != TransferStatus::Dequeued
    }
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionSource {
    /// The escalation policy.
    Policy,
    /// The caller's keypad or spoken menu choice.
    Menu,
    /// `ivrx transfer`.
    Manual,
}

/// Something that happened in a conversation, as stored and streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// The call reached the IVR (or `ivrx dial` placed it).
    CallStarted { call_control_id: String, direction: String, from: Option<String>, to: Option<String> },
    /// A leg joined the conversation.
    LegJoined {
        role: Role,
        call_control_id: String,
        call_leg_id: Option<String>,
        call_session_id: Option<String>,
        from: Option<String>,
        to: Option<String>,
    },
    /// A leg was answered.
    LegAnswered { role: Role, call_control_id: String },
    /// A leg hung up.
    LegEnded { role: Role, call_control_id: String, cause: Option<String>, source: Option<String> },
    /// The IVR said something.
    IvrSaid { text: String },
    /// The caller pressed keys.
    Dtmf { digits: String, choice: Option<String> },
    /// A partial transcript (streamed, not stored).
    Interim { speaker: Speaker, text: String },
    /// A final transcript.
    Utterance {
        seq: u32,
        speaker: Speaker,
        text: String,
        confidence: Option<f64>,
        /// 1-based index among the caller's utterances (caller only).
        caller_index: Option<u32>,
    },
    /// The score of an utterance, with the policy's numbers after it (caller only).
    Scored {
        seq: u32,
        speaker: Speaker,
        score: f64,
        label: Label,
        trackers: Vec<TrackerHit>,
        engine: String,
        policy: Option<PolicySnapshot>,
    },
    /// The decision to transfer.
    Decision { source: DecisionSource, decision: Decision },
    /// Transfer progress.
    Transfer {
        attempt: u32,
        queue: String,
        target: String,
        mode: TransferMode,
        status: TransferStatus,
        detail: Option<String>,
        agent_call_control_id: Option<String>,
    },
    /// A command failed for good.
    CommandFailed { action: String, role: Role, call_gone: bool, error: String },
    /// The configured engine failed for this call; the rest is scored by `to`.
    EngineFallback { from: String, to: String, reason: String },
    /// An alert about the call left ivrx (an SMS to a supervisor, a CRM
    /// webhook), was delivered, or failed. `key` names the decision or
    /// outcome it is about, the same for every attempt and status.
    Notification {
        /// `sms` or `crm`.
        channel: String,
        /// What it is about, e.g. `<conversation>:decision`.
        key: String,
        /// The recipient: a number, or the CRM URL.
        to: String,
        /// `sent`, `delivered`, `failed`, `rate_limited`, `dropped`.
        status: String,
        /// Attempts made.
        attempts: u32,
        /// Why it failed, or the carrier's message id.
        detail: Option<String>,
    },
    /// A callback: `offered` after the longest wait in the queue,
    /// `requested` when the caller accepts it (a key, or words), `placed`
    /// when an agent is on the line and the caller is called, `answered`
    /// or `unanswered`.
    Callback {
        /// `offered` or `requested`.
        status: String,
        /// The number to call back.
        number: Option<String>,
        /// How it was accepted (`pressed 1`, `said "call me back"`), or placed.
        detail: Option<String>,
        /// The leg of the call the caller accepted it on.
        #[serde(default)]
        original_call_control_id: Option<String>,
    },
    /// The conversation ended.
    CallEnded { reason: String },
}

impl DomainEvent {
    /// The event's `type` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainEvent::CallStarted { .. } => "call_started",
            DomainEvent::LegJoined { .. } => "leg_joined",
            DomainEvent::LegAnswered { .. } => "leg_answered",
            DomainEvent::LegEnded { .. } => "leg_ended",
            DomainEvent::IvrSaid { .. } => "ivr_said",
            DomainEvent::Dtmf { .. } => "dtmf",
            DomainEvent::Interim { .. } => "interim",
            DomainEvent::Utterance { .. } => "utterance",
            DomainEvent::Scored { .. } => "scored",
            DomainEvent::Decision { .. } => "decision",
            DomainEvent::Transfer { .. } => "transfer",
            DomainEvent::CommandFailed { .. } => "command_failed",
            DomainEvent::EngineFallback { .. } => "engine_fallback",
            DomainEvent::Notification { .. } => "notification",
            DomainEvent::Callback { .. } => "callback",
            DomainEvent::CallEnded { .. } => "call_ended",
        }
    }

    /// The record of an utterance's score by `engine`, with the policy's
    /// numbers after it (caller only).
    pub fn scored(seq: u32, speaker: Speaker, score: &Score, engine: &str, policy: Option<PolicySnapshot>) -> Self {
        DomainEvent::Scored {
            seq,
            speaker,
            score: score.score,
            label: score.label,
            trackers: score.trackers.clone(),
            engine: engine.to_string(),
            policy,
        }
    }
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the caller's leg to be answered.
    Ringing,
    /// The IVR is in charge: menu, listening, answering.
    Ivr,
    /// Reaching an agent.
    Transferring,
    /// Caller and agent are connected.
    WithAgent,
    /// Saying goodbye before hanging up.
    Closing,
    /// The caller's leg has ended.
    Ended,
}

/// What the session knows about one leg.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Leg {
    call_control_id: String,
    answered: bool,
    ended: bool,
    transcribing: bool,
    /// Its `LegJoined` is recorded.
    #[serde(default)]
    joined: bool,
}

/// Why a speak was sent, so that its `call.speak.ended` can be acted on.
/// Speaks on one leg play in order, so a FIFO per leg matches them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum SpeakPurpose {
    Bridging,
    Briefing,
    Goodbye,
    /// A line to a caller waiting in the queue; hold audio follows.
    Queue,
}

/// An utterance waiting for its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PendingUtterance {
    speaker: Speaker,
    text: String,
    caller_index: Option<u32>,
    offset_ms: u64,
}

/// The state of one conversation. Serialisable so a call survives a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    id: String,
    #[serde(skip)]
    settings: Arc<SessionSettings>,
    phase: Phase,
    started_at: Option<DateTime<Utc>>,
    caller: Option<Leg>,
    agent: Option<Leg>,
    next_command: u64,
    next_event: u64,
    next_seq: u32,
    caller_utterances: u32,
    /// Scores are applied in sequence order; later ones wait here.
    scored_up_to: u32,
    pending: BTreeMap<u32, PendingUtterance>,
    early_scores: BTreeMap<u32, Score>,
    /// The policy's numbers and the call's decision (the one copy of it).
    policy: PolicyState,
    transfer: Option<transfer::TransferProgress>,
    speaks: VecDeque<(Role, SpeakPurpose)>,
    gather_active: bool,
    spoke_since_gather: bool,
    reprompts: u32,
    hold_music: bool,
    end_reason: Option<String>,
    /// The menu topic the caller's problem matched, for the agent's briefing.
    topic: Option<String>,
    last_snapshot: Option<PolicySnapshot>,
    /// True once `CallEnded` was recorded (the caller's and any agent's legs are down).
    #[serde(default)]
    end_recorded: bool,
    /// PSTN mode: the conference and Symbl's leg.
    #[serde(default)]
    pstn: symbl_link::PstnState,
    /// Agent legs other than the current attempt's, released until gone.
    #[serde(default)]
    released: Vec<agent_legs::Released>,
    /// Agent dials sent and not answered yet: command id and attempt tag.
    #[serde(default)]
    dialling: Vec<(String, u32)>,
    /// Transfer attempts made in the conversation, across decisions: the
    /// `attempt` in an agent leg's tag.
    #[serde(default)]
    attempts_made: u32,
    /// The caller's number (the far end of the caller's leg).
    #[serde(default)]
    caller_number: Option<String>,
    /// A callback offered to the caller, or accepted.
    #[serde(default)]
    callback: Option<callback::Callback>,
}

impl Session {
    /// A new, empty conversation.
    pub fn new(id: impl Into<String>, settings: Arc<SessionSettings>) -> Self {
        Self {
            id: id.into(),
            settings,
            phase: Phase::Ringing,
            started_at: None,
            caller: None,
            agent: None,
            next_command: 0,
            next_event: 0,
            next_seq: 0,
            caller_utterances: 0,
            scored_up_to: 0,
            pending: BTreeMap::new(),
            early_scores: BTreeMap::new(),
            policy: PolicyState::default(),
            transfer: None,
            speaks: VecDeque::new(),
            gather_active: false,
            spoke_since_gather: false,
            reprompts: 0,
            hold_music: false,
            end_reason: None,
            topic: None,
            last_snapshot: None,
            end_recorded: false,
            pstn: symbl_link::PstnState::default(),
            released: Vec::new(),
            dialling: Vec::new(),
            attempts_made: 0,
            caller_number: None,
            callback: None,
        }
    }

    /// Re-attaches settings to a session restored from storage.
    pub fn with_settings(mut self, settings: Arc<SessionSettings>) -> Self {
        self.settings = settings;
        self
    }

    /// The conversation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the conversation is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the caller's leg has ended.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// True once the end is recorded (or no caller was ever known) and
    /// nothing is left to do: no agent leg up or being released, no agent
    /// dial unanswered.
    pub fn is_settled(&self) -> bool {
        (self.end_recorded || self.caller.is_none()) && self.agent_legs_settled()
    }

    /// The caller leg's call_control_id, once known.
    pub fn caller_call_control_id(&self) -> Option<&str> {
        self.caller.as_ref().map(|l| l.call_control_id.as_str())
    }

    /// The call_control_ids of the legs this session knows.
    pub fn leg_ids(&self) -> Vec<String> {
        self.caller
            .iter()
            .chain(self.agent.iter())
            .chain(self.pstn.symbl.iter())
            .chain(self.released.iter().map(|r| &r.leg))
            .map(|l| l.call_control_id.clone())
            .collect()
    }

    /// The decision, if one was made.
    pub fn decision(&self) -> Option<&Decision> {
        self.policy.decision.as_ref()
    }

    /// The policy's running state.
    pub fn policy_state(&self) -> &PolicyState {
        &self.policy
    }

    /// Utterances still waiting for their score, in order (a worker that must
    /// stop scores them with what it has, so the conversation can end).
    pub fn unscored(&self) -> Vec<ScoreRequest> {
        self.pending
            .iter()
            .map(|(&seq, u)| ScoreRequest { seq, speaker: u.speaker, text: u.text.clone(), refs: Vec::new() })
            .collect()
    }

    /// Records a fact observed outside the session (e.g. an engine fallback).
    pub fn note(&mut self, at: DateTime<Utc>, event: DomainEvent) -> Vec<Effect> {
        let mut out = Vec::new();
        self.record(at, event, &mut out);
        out
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Webhook { event, occurred_at, received_at } => {
                let at = occurred_at.unwrap_or(received_at);
                self.on_event(*event, at, &mut out);
            }
            Input::Scored { seq, score, at } => self.on_scored(seq, score, at, &mut out),
            Input::Symbl(input) => self.on_symbl(input, &mut out),
            Input::ConferenceReady { conference_id, at } => self.on_conference_ready(conference_id, at, &mut out),
            Input::Dialled { command_id, call_control_id, call_leg_id, call_session_id, at } => {
                self.on_dialled(&command_id, call_control_id, call_leg_id, call_session_id, at, &mut out)
            }
            Input::LegChecked(check) => self.on_leg_checked(check, &mut out),
            Input::QueueHead { at } => self.on_queue_head(at, &mut out),
            Input::CallbackDue { at } => self.on_callback_due(at, &mut out),
            Input::CommandFailed { command_id, action, role, call_gone, error, at } => {
                self.on_command_failed(&command_id, &action, role, call_gone, error, at, &mut out)
            }
        }
        out
    }

    fn offset(&self, at: DateTime<Utc>) -> u64 {
        match self.started_at {
            Some(s) => (at - s).num_milliseconds().max(0) as u64,
            None => 0,
        }
    }

    fn record(&mut self, at: DateTime<Utc>, event: DomainEvent, out: &mut Vec<Effect>) {
        self.next_event += 1;
        out.push(Effect::Record(Recorded {
            conversation_id: self.id.clone(),
            n: self.next_event,
            at,
            offset_ms: self.offset(at),
            event,
        }));
    }

    /// Records that a leg joined the conversation in `role` (a
    /// [`DomainEvent::LegJoined`]) and routes its webhooks here.
    fn leg_joined(&mut self, role: Role, call_control_id: String, j: Joined, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let route = Effect::RouteLeg { call_control_id: call_control_id.clone(), call_leg_id: j.call_leg_id.clone() };
        let Joined { call_leg_id, call_session_id, from, to } = j;
        self.record(at, DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to }, out);
        out.push(route);
    }

    fn next_command_id(&mut self) -> String {
        self.next_command += 1;
        format!("{}-{}", self.id, self.next_command)
    }

    /// Sends an action to a leg, with a fresh deterministic command id.
    fn send(&mut self, role: Role, mut action: Action, out: &mut Vec<Effect>) {
        let Some(leg) = self.leg(role).filter(|l| !l.ended) else { return };
        let ccid = leg.call_control_id.clone();
        action.set_command_id(self.next_command_id());
        out.push(Effect::Send(Command { call_control_id: Some(ccid), role, request: Request::Action(action) }));
    }

    fn leg(&self, role: Role) -> Option<&Leg> {
        match role {
            Role::Caller => self.caller.as_ref(),
            Role::Agent => self.agent.as_ref(),
            Role::Symbl => self.pstn.symbl.as_ref(),
        }
    }

    /// Marks a leg ended and records how; false when the leg is unknown or had already ended.
    fn end_leg(
        &mut self,
        role: Role,
        e: &ivrx_telnyx::events::CallHangup,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(leg) = self.leg_mut(role).filter(|l| !l.ended) else { return false };
        leg.ended = true;
        let call_control_id = leg.call_control_id.clone();
        let cause = e.hangup_cause.as_ref().map(|c| c.as_str().to_string());
        let source = e.hangup_source.as_ref().map(|s| s.as_str().to_string());
        self.record(at, DomainEvent::LegEnded { role, call_control_id, cause, source }, out);
        true
    }

    /// A leg is gone without a `call.hangup` to say how: ended in the record
    /// (once) with what is known.
    fn leg_gone(
        &mut self,
        role: Role,
        cause: Option<String>,
        source: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        if let Some(l) = self.leg_mut(role).filter(|l| !l.ended) {
            l.ended = true;
            let call_control_id = l.call_control_id.clone();
            self.record(at, DomainEvent::LegEnded { role, call_control_id, cause, source }, out);
        }
        self.maybe_end(at, out);
    }

    fn leg_mut(&mut self, role: Role) -> Option<&mut Leg> {
        match role {
            Role::Caller => self.caller.as_mut(),
            Role::Agent => self.agent.as_mut(),
            Role::Symbl => self.pstn.symbl.as_mut(),
        }
    }

    fn tag(&self, role: Role, attempt: Option<u32>) -> String {
        LegTag { ivrx: 1, conv: self.id.clone(), role, attempt }.encode()
    }
}

#[cfg(test)]
mod tests;
