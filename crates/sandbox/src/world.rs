//! The simulated network: every leg, every timer and the webhooks they cause.
//!
//! The world is plain data driven from outside: the HTTP layer calls
//! [`World::command`], [`World::dial`] and [`World::place_inbound`]; the
//! scheduler calls [`World::advance`] whenever the next timer is due. Each call
//! first fires the timers that are due, so events happen in virtual-time order
//! whatever thread drives them. Webhooks go to an outbox that the caller drains
//! (in order) into delivery. Nothing here does I/O, which is what makes the
//! turn-taking model testable to the millisecond.
//!
//! The world is composed of sub-states that own their data: the timer queue
//! ([`Timers`]), each leg's [`Media`] and [`Party`](super::party::Party), the
//! [`Conferences`] and the [`Listeners`]. They know nothing of the world; it
//! tells them what happened and does what their answers call for (timers,
//! webhooks, the other legs): legs, calls and commands here, and the routing
//! of each sub-state in `world/media.rs`, `world/party.rs` and
//! `world/conference.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, ActionKind, Bridge, CallInfo, Dial, SipHeader, TranscriptionStart, Transfer};
use ivrx_telnyx::events::{EventData, EventType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::clock::rfc3339;
use super::conference::{Conferences, Listeners};
use super::ids;
use super::legs::{self, AnswerOutcome, CommandIds, LegState, Refusal};
use super::media::Media;
use super::party::{Party, PartyBehavior};
use super::queues::Queues;
use super::timers::{Due, Slot, SlotGens, Timer, Timers};
use super::timing::{secs, TimingModel};
use super::PlaceCall;

mod conference;
mod media;
mod party;
mod queue;

/// Virtual time since the sandbox started.
pub(crate) type VTime = Duration;

/// The current moment, in virtual time (simulation) and real time (command_id
/// windows, retention).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub v: VTime,
    pub real: Instant,
}

/// What the world needs to know about its surroundings.
#[derive(Debug, Clone)]
pub(crate) struct WorldConfig {
    pub timing: TimingModel,
    pub connection_id: String,
    pub webhook_url: Arc<str>,
    pub parties: HashMap<String, PartyBehavior>,
    pub default_agent: PartyBehavior,
    /// Wall-clock time of `VTime` zero.
    pub epoch: DateTime<Utc>,
    /// Virtual seconds per real second (see [`World::wall`]).
    pub time_scale: f64,
    /// Prefix of the (fake) recording URLs.
    pub recording_base: String,
}

/// One webhook, ready for delivery.
#[derive(Debug, Clone)]
pub(crate) struct Emitted {
    /// Delivery order is kept per session (the A leg and its transfer legs).
    pub session: u64,
    pub call_control_id: Arc<str>,
    pub url: Arc<str>,
    pub event_type: &'static str,
    pub id: String,
    pub occurred_at: String,
    pub payload: Value,
}

impl Emitted {
    /// The envelope's `occurred_at`: absent when the payload carries its own
    /// (`conference.created`, `conference.ended`).
    pub fn envelope_occurred_at(&self) -> Option<&str> {
        self.payload.get("occurred_at").is_none().then_some(self.occurred_at.as_str())
    }

    /// The webhook's `data` record, as delivery posts it.
    pub fn event_data(self) -> EventData {
        EventData {
            record_type: "event".into(),
            event_type: self.event_type.into(),
            occurred_at: self.envelope_occurred_at().map(str::to_string),
            id: self.id,
            payload: self.payload,
            extra: Map::new(),
        }
    }
}

/// Why a command was not executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CommandError {
    #[error("call not found")]
    NotFound,
    #[error("call has already ended")]
    CallEnded,
    #[error("call has not been answered yet")]
    NotAnswered,
    #[error("invalid value for {pointer}: {detail}")]
    Invalid { pointer: String, detail: String },
    #[error("{0}")]
    Unprocessable(String),
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::CallEnded => CommandError::CallEnded,
            Refusal::NotAnswered => CommandError::NotAnswered,
        }
    }
}

/// Whether an accepted command ran or was a repeat of an earlier `command_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Executed {
    Done,
    Duplicate,
}

/// What `GET /sandbox/v1/legs/audit` finds, from the carrier's side: legs
/// placed for a call (dialled with `link_to` it, or transferred to from it)
/// left up after it ended, and calls bridged with more than one such leg.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LegAudit {
    /// Legs still up whose call has hung up.
    pub left_up: Vec<LeftUp>,
    /// Calls bridged, one after the other or at once, with more than one leg placed for them.
    pub bridged_to_several: Vec<String>,
    /// Legs placed for one call and bridged with another (an agent dialled
    /// for one waiting caller who got a different one).
    #[serde(default)]
    pub bridged_elsewhere: Vec<String>,
}

/// A leg left up after the call it was placed for hung up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftUp {
    /// The leg.
    pub call_control_id: String,
    /// The call it was placed for.
    pub linked_to: String,
    /// True when its party answered.
    pub answered: bool,
}

/// A leg as the control API reports it (`GET /sandbox/v1/calls/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegStatus {
    /// The leg's `call_control_id`.
    pub call_control_id: String,
    /// The leg's `call_leg_id`.
    pub call_leg_id: String,
    /// The session shared with transfer legs.
    pub call_session_id: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
    /// Calling number.
    pub from: String,
    /// Called number.
    pub to: String,
    /// `parked`, `ringing`, `answered`, `bridged` or `hangup`.
    pub state: LegState,
    /// Why it hung up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<String>,
    /// Who hung up (`caller`, `callee`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_source: Option<String>,
    /// Virtual time the leg started.
    pub start_time: String,
    /// Virtual time it was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_time: Option<String>,
    /// Virtual time it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The leg it is bridged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridged_with: Option<String>,
    /// The leg's current `client_state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// The simulated party on this leg has run all its steps.
    pub script_finished: bool,
    /// The call takes more steps (`POST /sandbox/v1/calls/{id}/steps`).
    pub live: bool,
    /// The conference the leg is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Parked,
    Ringing,
    Answered,
    HungUp,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub peer: u64,
    /// `park_after_unbridge: "self"` on this leg: stay up when the peer leaves.
    pub park_after_unbridge: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Inbound,
    Dialed,
    Transfer { a: u64 },
}

/// How an outbound leg's ringing ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingOutcome {
    Answer,
    HangUp(&'static str),
}

/// What a dial asked for once the far end answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct OnAnswer {
    pub stream_url: Option<String>,
    pub transcription: Option<TranscriptionStart>,
}

/// Who is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The simulated person on the leg (caller or agent).
    Party,
    /// The IVR's text to speech on the leg.
    Ivr,
}

/// One line being spoken.
#[derive(Debug, Clone)]
pub(crate) struct Speech {
    pub seq: u32,
    pub text: Arc<str>,
    pub words: usize,
    pub start: VTime,
}

/// A transcript to send (interim or final).
#[derive(Debug, Clone)]
pub(crate) struct Tick {
    pub source: Source,
    pub seq: u32,
    pub text: Arc<str>,
    /// Words spoken so far (interims); the whole line for the final.
    pub words: usize,
    pub is_final: bool,
    pub start: VTime,
}

/// One call leg.
#[derive(Debug)]
pub(crate) struct Leg {
    pub ccid: Arc<str>,
    pub leg_uuid: Box<str>,
    pub session: u64,
    pub session_uuid: Arc<str>,
    /// When the leg's call session began (its first leg's start).
    pub began: VTime,
    pub incoming: bool,
    pub from: Box<str>,
    pub to: Box<str>,
    pub caller_id_name: Option<Box<str>>,
    /// `custom_headers` and `sip_headers` of the dial or transfer that made the leg.
    pub headers: Option<Box<Headers>>,
    pub phase: Phase,
    pub bridge: Option<Link>,
    pub start: VTime,
    pub answered_at: Option<VTime>,
    pub ended_at: Option<VTime>,
    pub hangup: Option<(&'static str, &'static str)>,
    pub client_state: Option<Box<str>>,
    pub url: Arc<str>,
    pub origin: Origin,
    /// Transfer legs still ringing for this (A) leg.
    pub transfers: Vec<u64>,
    pub ring_outcome: RingOutcome,
    pub on_answer: Option<Box<OnAnswer>>,
    pub party: Option<Box<Party>>,
    pub media: Media,
    pub commands: CommandIds,
    pub gens: SlotGens,
    pub speech_seq: u32,
    pub live: bool,
    /// The call this leg was placed for: a dial's `link_to`, a transfer's A leg.
    pub link: Option<u64>,
    /// Every leg this one has been bridged with.
    pub peers: Vec<u64>,
}

impl Leg {
    /// The leg's state-machine state.
    pub fn state(&self) -> LegState {
        match self.phase {
            Phase::Parked => LegState::Parked,
            Phase::Ringing => LegState::Ringing,
            Phase::HungUp => LegState::HungUp,
            Phase::Answered if self.bridge.is_some() => LegState::Bridged,
            Phase::Answered => LegState::Answered,
        }
    }

    pub fn alive(&self) -> bool {
        self.phase != Phase::HungUp
    }

    /// The `hangup_source` when the application (the carrier side) ends this leg.
    pub fn app_side(&self) -> &'static str {
        if self.incoming {
            "callee"
        } else {
            "caller"
        }
    }

    /// The `hangup_source` when the simulated person on this leg ends it.
    pub fn party_side(&self) -> &'static str {
        if self.incoming {
            "caller"
        } else {
            "callee"
        }
    }
}

/// SIP headers a dial or transfer set, echoed on the new leg's webhooks.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Headers {
    pub custom: Vec<SipHeader>,
    pub sip: Vec<SipHeader>,
}

impl Headers {
    fn of(custom: Option<&Vec<SipHeader>>, sip: Option<&Vec<SipHeader>>) -> Option<Box<Headers>> {
        let h = Headers { custom: custom.cloned().unwrap_or_default(), sip: sip.cloned().unwrap_or_default() };
        (!h.custom.is_empty() || !h.sip.is_empty()).then(|| Box::new(h))
    }

    /// Adds `custom_headers` / `sip_headers` to a payload.
    fn add_to(&self, fields: &mut Value) {
        if !self.custom.is_empty() {
            fields["custom_headers"] = json!(self.custom);
        }
        if !self.sip.is_empty() {
            fields["sip_headers"] = json!(self.sip);
        }
    }
}

/// A new leg's description.
struct NewLeg {
    /// The call session to join (delivery queue, call_session_id, when it
    /// began), or a new one.
    session: Option<(u64, Arc<str>, VTime)>,
    incoming: bool,
    from: String,
    to: String,
    caller_id_name: Option<String>,
    headers: Option<Box<Headers>>,
    client_state: Option<String>,
    url: Arc<str>,
    origin: Origin,
    phase: Phase,
    party: Option<Box<Party>>,
    live: bool,
}

/// How long an ended leg is remembered (for 90018 answers and status queries).
const ENDED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Most ended legs remembered at once.
const MAX_ENDED: usize = 50_000;

/// Every leg and timer of one sandbox.
pub(crate) struct World {
    pub cfg: WorldConfig,
    pub legs: HashMap<u64, Leg>,
    by_ccid: HashMap<Arc<str>, u64>,
    next_leg: u64,
    next_session: u64,
    timers: Timers,
    outbox: Vec<Emitted>,
    dial_ids: HashMap<String, (Instant, CallInfo)>,
    ended: VecDeque<(Instant, u64)>,
    hung_up: Vec<Arc<str>>,
    /// Conferences and their participants.
    confs: Conferences,
    /// Legs someone listens to ([`super::SandboxHandle::listen`]).
    listeners: Listeners,
    /// Call queues (`enqueue`).
    queues: Queues,
    /// When each `busy:SECONDS` number was first called.
    busy_since: HashMap<String, VTime>,
}

impl World {
    pub fn new(cfg: WorldConfig) -> Self {
        Self {
            cfg,
            legs: HashMap::new(),
            by_ccid: HashMap::new(),
            next_leg: 1,
            next_session: 1,
            timers: Timers::default(),
            outbox: Vec::new(),
            dial_ids: HashMap::new(),
            ended: VecDeque::new(),
            hung_up: Vec::new(),
            confs: Conferences::default(),
            listeners: Listeners::default(),
            queues: Queues::default(),
            busy_since: HashMap::new(),
        }
    }

    // ----- time -------------------------------------------------------------

    /// Fires every timer due at or before `now`, in time order.
    pub fn advance(&mut self, now: Now) {
        while let Some(t) = self.timers.pop_due(now.v) {
            self.fire(t);
        }
        self.prune(now.real);
    }

    /// When the next timer is due.
    pub fn next_deadline(&self) -> Option<VTime> {
        self.timers.next_deadline()
    }

    /// The webhooks produced since the last call, in order.
    pub fn take_outbox(&mut self) -> Vec<Emitted> {
        std::mem::take(&mut self.outbox)
    }

    /// The legs that hung up since the last call (for hangup waiters).
    pub fn take_hung_up(&mut self) -> Vec<Arc<str>> {
        std::mem::take(&mut self.hung_up)
    }

    /// The wall-clock time, formatted, that webhooks give for virtual moment
    /// `at` of a call session that began at `began`: the session begins at the
    /// real time it began (the virtual time it took to get there, scaled back),
    /// and within it time runs virtual. So with a faster clock, calls keep
    /// real start times while their events keep realistic offsets.
    pub fn wall(&self, began: VTime, at: VTime) -> String {
        let start = super::clock::scale_duration(began, 1.0 / self.cfg.time_scale);
        let d = start.saturating_add(at.saturating_sub(began));
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        rfc3339(self.cfg.epoch.checked_add_signed(d).unwrap_or(self.cfg.epoch))
    }

    /// [`World::wall`] for a leg's call session.
    pub fn time(&self, leg: u64, at: VTime) -> String {
        self.wall(self.legs.get(&leg).map_or(at, |l| l.began), at)
    }

    pub(crate) fn set_timer(&mut self, leg: u64, slot: Slot, at: VTime) {
        if let Some(l) = self.legs.get_mut(&leg) {
            self.timers.set(leg, &mut l.gens, slot, at);
        }
    }

    pub(crate) fn cancel_timer(&mut self, leg: u64, slot: Slot) {
        if let Some(l) = self.legs.get_mut(&leg) {
            l.gens.cancel(slot);
        }
    }

    pub(crate) fn push_tick(&mut self, leg: u64, at: VTime, tick: Tick) {
        self.timers.push_tick(leg, at, tick);
    }

    fn fire(&mut self, t: Timer) {
        let Some(leg) = self.legs.get(&t.leg) else { return };
        let (id, at) = (t.leg, t.at);
        match t.due(&leg.gens) {
            None => {}
            Some(Due::Transcript(tick)) => self.transcript_due(id, at, *tick),
            Some(Due::Slot(slot)) => match slot {
                Slot::Ring => self.ring_due(id, at),
                Slot::Media => self.media_due(id, at),
                Slot::Gather => self.gather_due(id, at, false),
                Slot::GatherOverall => self.gather_due(id, at, true),
                Slot::Playback => self.playback_due(id, at),
                Slot::Party => self.party_due(id, at),
                Slot::Queue => self.queue_wait_due(id, at),
            },
        }
    }

    fn prune(&mut self, real: Instant) {
        self.confs.prune(real);
        while let Some(&(t, id)) = self.ended.front() {
            if real.saturating_duration_since(t) < ENDED_RETENTION && self.ended.len() <= MAX_ENDED {
                break;
            }
            self.ended.pop_front();
            if let Some(leg) = self.legs.remove(&id) {
                self.by_ccid.remove(&leg.ccid);
            }
        }
    }

    // ----- webhooks ---------------------------------------------------------

    /// Queues a webhook for a leg: the call ids, the leg's client_state, and
    /// `fields` (an object). `parties` adds `from` and `to`.
    pub(crate) fn emit(&mut self, id: u64, at: VTime, event_type: EventType, parties: bool, fields: Value) {
        let Some(leg) = self.legs.get(&id) else { return };
        let mut p = self.call_fields(leg, leg.client_state.as_deref());
        if parties {
            p.insert("from".into(), Value::from(&*leg.from));
            p.insert("to".into(), Value::from(&*leg.to));
        }
        if let Value::Object(m) = fields {
            p.extend(m);
        }
        let (session, began, ccid, url) = (leg.session, leg.began, leg.ccid.clone(), leg.url.clone());
        self.push_emitted((session, began), ccid, url, event_type, at, Value::Object(p));
    }

    /// The fields a webhook about `leg` starts with: its call ids, the
    /// connection id and `client_state`.
    pub(crate) fn call_fields(&self, leg: &Leg, client_state: Option<&str>) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("call_control_id".into(), Value::from(&*leg.ccid));
        p.insert("call_leg_id".into(), Value::from(&*leg.leg_uuid));
        p.insert("call_session_id".into(), Value::from(&*leg.session_uuid));
        p.insert("connection_id".into(), Value::from(self.cfg.connection_id.as_str()));
        p.insert("client_state".into(), client_state.map_or(Value::Null, Value::from));
        p
    }

    /// Queues a built webhook payload for delivery, in a call session (its id
    /// and when it began).
    pub(crate) fn push_emitted(
        &mut self,
        (session, began): (u64, VTime),
        call_control_id: Arc<str>,
        url: Arc<str>,
        event_type: EventType,
        at: VTime,
        payload: Value,
    ) {
        let occurred_at = self.wall(began, at);
        let e = Emitted {
            session,
            call_control_id,
            url,
            event_type: event_type.name(),
            id: ids::uuid(),
            occurred_at,
            payload,
        };
        self.outbox.push(e);
    }

    // ----- lookups ----------------------------------------------------------

    pub fn leg_id(&self, ccid: &str) -> Option<u64> {
        self.by_ccid.get(ccid).copied()
    }

    /// `GET /v2/calls/{id}`.
    pub fn call_info(&self, ccid: &str, now: VTime) -> Option<CallInfo> {
        let leg = self.legs.get(&self.leg_id(ccid)?)?;
        let end = leg.ended_at.unwrap_or(now);
        let duration = leg.answered_at.map(|a| end.saturating_sub(a).as_secs()).unwrap_or(0);
        Some(CallInfo {
            call_control_id: leg.ccid.to_string(),
            call_leg_id: leg.leg_uuid.to_string(),
            call_session_id: leg.session_uuid.to_string(),
            is_alive: leg.alive(),
            record_type: "call".into(),
            client_state: leg.client_state.as_deref().map(str::to_string),
            call_duration: Some(duration),
            start_time: Some(self.wall(leg.began, leg.start)),
            end_time: leg.ended_at.map(|t| self.wall(leg.began, t)),
            extra: Map::new(),
        })
    }

    /// `GET /sandbox/v1/legs/audit`: the legs placed for a call that are
    /// still up after that call hung up, and the calls bridged with more than
    /// one of the legs placed for them.
    pub fn leg_audit(&self) -> LegAudit {
        let mut audit = LegAudit::default();
        for leg in self.legs.values() {
            let Some(caller) = leg.link.and_then(|c| self.legs.get(&c)) else { continue };
            if leg.alive() && !caller.alive() {
                audit.left_up.push(LeftUp {
                    call_control_id: leg.ccid.to_string(),
                    linked_to: caller.ccid.to_string(),
                    answered: leg.answered_at.is_some(),
                });
            }
        }
        for (&id, leg) in &self.legs {
            let placed_for_it = leg.peers.iter().filter(|p| self.legs.get(p).is_some_and(|l| l.link == Some(id)));
            if placed_for_it.count() > 1 {
                audit.bridged_to_several.push(leg.ccid.to_string());
            }
            if leg.link.is_some_and(|l| leg.peers.iter().any(|p| *p != l)) {
                audit.bridged_elsewhere.push(leg.ccid.to_string());
            }
        }
        audit.left_up.sort_by(|a, b| a.call_control_id.cmp(&b.call_control_id));
        audit.bridged_to_several.sort();
        audit.bridged_elsewhere.sort();
        audit
    }

    /// `GET /sandbox/v1/calls/{id}`.
    pub fn status(&self, ccid: &str) -> Option<LegStatus> {
        let id = self.leg_id(ccid)?;
        let leg = self.legs.get(&id)?;
        Some(LegStatus {
            call_control_id: leg.ccid.to_string(),
            call_leg_id: leg.leg_uuid.to_string(),
            call_session_id: leg.session_uuid.to_string(),
            direction: if leg.incoming { "incoming" } else { "outgoing" }.into(),
            from: leg.from.to_string(),
            to: leg.to.to_string(),
            state: leg.state(),
            hangup_cause: leg.hangup.map(|h| h.0.to_string()),
            hangup_source: leg.hangup.map(|h| h.1.to_string()),
            start_time: self.wall(leg.began, leg.start),
            answered_time: leg.answered_at.map(|t| self.wall(leg.began, t)),
            end_time: leg.ended_at.map(|t| self.wall(leg.began, t)),
            bridged_with: leg.bridge.and_then(|b| self.legs.get(&b.peer)).map(|p| p.ccid.to_string()),
            client_state: leg.client_state.as_deref().map(str::to_string),
            script_finished: leg.party.as_ref().is_some_and(|p| p.finished()),
            live: leg.live,
            conference_id: self.confs.conference_of(id).map(|c| c.to_string()),
        })
    }

    /// How `number` behaves when called at `at`: a `busy:SECONDS` number is
    /// busy for SECONDS from the first call to it, then answers as the
    /// standard agent.
    fn behavior_for(&mut self, number: &str, at: VTime) -> PartyBehavior {
        match self.cfg.parties.get(number).cloned().unwrap_or_else(|| self.cfg.default_agent.clone()) {
            PartyBehavior::BusyFor { secs: s } => {
                let since = *self.busy_since.entry(number.to_string()).or_insert(at);
                if at < since.saturating_add(secs(s)) {
                    PartyBehavior::Busy
                } else {
                    PartyBehavior::default_agent()
                }
            }
            b => b,
        }
    }

    /// Sets how a number behaves when dialled or transferred to.
    pub fn set_party(&mut self, number: String, behavior: PartyBehavior) {
        self.cfg.parties.insert(number, behavior);
    }

    // ----- creating legs ----------------------------------------------------

    fn new_leg(&mut self, n: NewLeg, at: VTime) -> u64 {
        let id = self.next_leg;
        self.next_leg += 1;
        let (session, session_uuid, began) = n.session.unwrap_or_else(|| {
            let s = self.next_session;
            self.next_session += 1;
            (s, Arc::from(ids::uuid()), at)
        });
        let ccid: Arc<str> = Arc::from(ids::call_control_id());
        let leg = Leg {
            ccid: ccid.clone(),
            leg_uuid: ids::uuid().into(),
            session,
            session_uuid,
            began,
            incoming: n.incoming,
            from: n.from.into(),
            to: n.to.into(),
            caller_id_name: n.caller_id_name.map(Into::into),
            headers: n.headers,
            phase: n.phase,
            bridge: None,
            start: at,
            answered_at: None,
            ended_at: None,
            hangup: None,
            client_state: n.client_state.map(Into::into),
            url: n.url,
            origin: n.origin,
            transfers: Vec::new(),
            ring_outcome: RingOutcome::Answer,
            on_answer: None,
            party: n.party,
            media: Media::default(),
            commands: CommandIds::default(),
            gens: SlotGens::default(),
            speech_seq: 0,
            live: n.live,
            link: match n.origin {
                Origin::Transfer { a } => Some(a),
                _ => None,
            },
            peers: Vec::new(),
        };
        self.legs.insert(id, leg);
        self.by_ccid.insert(ccid, id);
        id
    }

    fn info(&self, id: u64) -> Option<CallInfo> {
        let leg = self.legs.get(&id)?;
        Some(dial_answer(leg.ccid.to_string(), leg.leg_uuid.to_string(), leg.session_uuid.to_string()))
    }

    fn emit_initiated(&mut self, id: u64, at: VTime) {
        let Some(leg) = self.legs.get(&id) else { return };
        let mut f = json!({
            "direction": if leg.incoming { "incoming" } else { "outgoing" },
            "state": if leg.incoming { "parked" } else { "bridging" },
            "start_time": self.wall(leg.began, leg.start),
        });
        // Inbound calls carry the caller's name, or the number when the
        // network has none; outbound ones the name the command gave.
        match (&leg.caller_id_name, leg.incoming) {
            (Some(name), _) => f["caller_id_name"] = Value::from(&**name),
            (None, true) => f["caller_id_name"] = Value::from(&*leg.from),
            (None, false) => {}
        }
        if let Some(h) = &leg.headers {
            h.add_to(&mut f);
        }
        self.emit(id, at, EventType::CallInitiated, true, f);
    }

    /// `call.answered`: the start time, the state, and the headers the leg was made with.
    fn emit_answered(&mut self, id: u64, at: VTime) {
        let Some(leg) = self.legs.get(&id) else { return };
        let mut f = json!({ "start_time": self.time(id, leg.start), "state": "answered" });
        if let Some(h) = &leg.headers {
            h.add_to(&mut f);
        }
        self.emit(id, at, EventType::CallAnswered, true, f);
    }

    /// A simulated caller dials the application: `call.initiated` (incoming,
    /// parked); the application has [`TimingModel::answer_deadline`] to answer.
    pub fn place_inbound(&mut self, now: Now, call: PlaceCall) -> CallInfo {
        let at = now.v;
        let party = Party::new(call.script.steps);
        let id = self.new_leg(
            NewLeg {
                session: None,
                incoming: true,
                from: call.from,
                to: call.to,
                caller_id_name: call.caller_id_name,
                headers: None,
                client_state: None,
                url: self.cfg.webhook_url.clone(),
                origin: Origin::Inbound,
                phase: Phase::Parked,
                party: Some(Box::new(party)),
                live: call.live,
            },
            at,
        );
        self.emit_initiated(id, at);
        let deadline = at.saturating_add(self.cfg.timing.answer_deadline);
        self.set_timer(id, Slot::Ring, deadline);
        let mut info = self.info(id).unwrap_or_else(unreachable_info);
        info.is_alive = true;
        info
    }

    /// True when a dial with this `command_id` ran within the repeat window
    /// (a new dial with it is answered with the same call, not placed again).
    pub fn is_repeat_dial(&self, command_id: &str, now: Now) -> bool {
        self.dial_ids.get(command_id).is_some_and(|(t, _)| now.real.saturating_duration_since(*t) < legs::DEDUPE_WINDOW)
    }

    /// `POST /v2/calls`.
    pub fn dial(&mut self, now: Now, d: Dial) -> Result<CallInfo, CommandError> {
        self.dial_ids.retain(|_, (t, _)| now.real.saturating_duration_since(*t) < legs::DEDUPE_WINDOW);
        if let Some(cid) = &d.command_id {
            if let Some((_, info)) = self.dial_ids.get(cid) {
                return Ok(info.clone());
            }
        }
        if let Some(cs) = &d.client_state {
            check_base64_state(cs)?;
        }
        let at = now.v;
        // `link_to`: a linked call shares the other's call_session_id and
        // clock; its webhooks keep a delivery queue of their own, as every
        // dialled leg's.
        let link = match d.link_to.as_deref() {
            Some(other) => Some(self.leg_id(other).ok_or_else(|| CommandError::Invalid {
                pointer: "/link_to".into(),
                detail: "no call with this call_control_id".into(),
            })?),
            None => None,
        };
        let session = link.and_then(|l| self.legs.get(&l)).map(|l| (l.session_uuid.clone(), l.began));
        let session = session.map(|(uuid, began)| {
            self.next_session += 1;
            (self.next_session - 1, uuid, began)
        });
        let behavior = self.behavior_for(&d.to, at);
        let url: Arc<str> = d.webhook_url.as_deref().map_or_else(|| self.cfg.webhook_url.clone(), Arc::from);
        let id = self.new_leg(
            NewLeg {
                session,
                incoming: false,
                from: d.from.clone(),
                to: d.to.clone(),
                caller_id_name: d.from_display_name.clone(),
                headers: Headers::of(d.custom_headers.as_ref(), d.sip_headers.as_ref()),
                client_state: d.client_state.clone(),
                url,
                origin: Origin::Dialed,
                phase: Phase::Ringing,
                party: behavior.party(),
                live: false,
            },
            at,
        );
        let on_answer = OnAnswer {
            stream_url: d.stream_url.clone(),
            transcription: if d.transcription == Some(true) {
                Some(transcription_config(d.transcription_config.as_ref()))
            } else {
                None
            },
        };
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.on_answer = Some(Box::new(on_answer));
            leg.link = link;
        }
        self.emit_initiated(id, at);
        let timeout = d.timeout_secs.map(|s| secs(f64::from(s))).unwrap_or(self.cfg.timing.ring_timeout);
        self.schedule_ring(id, at, &behavior, timeout);
        let info = self.info(id).unwrap_or_else(unreachable_info);
        if let Some(cid) = d.command_id {
            self.dial_ids.insert(cid, (now.real, info.clone()));
        }
        Ok(info)
    }

    fn schedule_ring(&mut self, id: u64, at: VTime, behavior: &PartyBehavior, timeout: Duration) {
        let t = &self.cfg.timing;
        let (outcome, after) = match behavior {
            PartyBehavior::Answer { after_secs, .. } => {
                let after = secs(*after_secs);
                if after < timeout {
                    (RingOutcome::Answer, after)
                } else {
                    (RingOutcome::HangUp("timeout"), timeout)
                }
            }
            PartyBehavior::NoAnswer => (RingOutcome::HangUp("timeout"), timeout),
            PartyBehavior::Refuse => (RingOutcome::HangUp("call_rejected"), t.agent_ring.min(timeout)),
            PartyBehavior::Busy | PartyBehavior::BusyFor { .. } => {
                (RingOutcome::HangUp("user_busy"), t.busy_after.min(timeout))
            }
        };
        if let Some(leg) = self.legs.get_mut(&id) {
            leg.ring_outcome = outcome;
        }
        self.set_timer(id, Slot::Ring, at.saturating_add(after));
    }

    fn ring_due(&mut self, id: u64, at: VTime) {
        let Some(leg) = self.legs.get(&id) else { return };
        match (leg.phase, leg.ring_outcome) {
            (Phase::Parked, _) => self.hangup_leg(id, at, "originator_cancel", "caller"),
            (Phase::Ringing, RingOutcome::Answer) => self.far_end_answers(id, at),
            (Phase::Ringing, RingOutcome::HangUp(cause)) => self.hangup_leg(id, at, cause, "callee"),
            _ => {}
        }
    }

    /// An outbound leg is picked up: a dial gets `call.answered`; a transfer
    /// bridges to its A leg (`call.bridged` on A and B, then B `call.answered`).
    fn far_end_answers(&mut self, id: u64, at: VTime) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        leg.phase = Phase::Answered;
        leg.answered_at = Some(at);
        let origin = leg.origin;
        let on_answer = leg.on_answer.take();
        match origin {
            Origin::Transfer { a } => {
                if let Some(a_leg) = self.legs.get_mut(&a) {
                    a_leg.transfers.retain(|&b| b != id);
                }
                let a_alive = self.legs.get(&a).is_some_and(Leg::alive);
                if !a_alive {
                    self.hangup_leg(id, at, "normal_clearing", "caller");
                    return;
                }
                // A cold transfer moves A away from whatever it was connected to.
                if let Some(old) = self.legs.get(&a).and_then(|l| l.bridge) {
                    self.unlink(a);
                    self.hangup_leg(old.peer, at, "normal_clearing", "caller");
                }
                self.stop_playback(a, at, "cancelled");
                self.link(a, id, false);
                self.emit(a, at, EventType::CallBridged, true, json!({}));
                self.emit(id, at, EventType::CallBridged, true, json!({}));
                self.emit_answered(id, at);
                self.party_bridged(id, at, true);
                self.party_bridged(a, at, false);
            }
            Origin::Dialed | Origin::Inbound => {
                self.emit_answered(id, at);
                if let Some(on) = on_answer {
                    if let Some(url) = on.stream_url {
                        self.start_streaming(id, at, url);
                    }
                    if let Some(t) = on.transcription {
                        self.start_transcription(id, at, &t);
                    }
                }
                self.party_answered(id, at);
            }
        }
    }

    fn link(&mut self, x: u64, y: u64, x_parks: bool) {
        for (leg, peer, parks) in [(x, y, x_parks), (y, x, false)] {
            if let Some(l) = self.legs.get_mut(&leg) {
                l.bridge = Some(Link { peer, park_after_unbridge: parks });
                if !l.peers.contains(&peer) {
                    l.peers.push(peer);
                }
            }
        }
    }

    fn unlink(&mut self, x: u64) {
        let Some(link) = self.legs.get_mut(&x).and_then(|l| l.bridge.take()) else { return };
        if let Some(p) = self.legs.get_mut(&link.peer) {
            if p.bridge.is_some_and(|b| b.peer == x) {
                p.bridge = None;
            }
        }
    }

    // ----- hanging up -------------------------------------------------------

    /// Ends a leg: media and gathers end with `call_hangup`, then `call.hangup`,
    /// then `call.recording.saved` when recording. A bridged peer hangs up too
    /// (`normal_clearing`, from the carrier's side of the peer) unless it parks
    /// after unbridge; ringing transfer legs are cancelled (`originator_cancel`).
    pub(crate) fn hangup_leg(&mut self, id: u64, at: VTime, cause: &'static str, source: &'static str) {
        if !self.legs.get(&id).is_some_and(Leg::alive) {
            return;
        }
        // The party goes first so that nothing below makes it act.
        if let Some(p) = self.legs.get_mut(&id).and_then(|l| l.party.as_mut()) {
            p.gone();
        }
        for slot in [Slot::Ring, Slot::Party] {
            self.cancel_timer(id, slot);
        }
        self.end_media_on_hangup(id, at);
        self.leave_queue_on_hangup(id, at);
        let Some(leg) = self.legs.get_mut(&id) else { return };
        leg.phase = Phase::HungUp;
        leg.ended_at = Some(at);
        leg.hangup = Some((cause, source));
        let link = leg.bridge.take();
        let transfers = std::mem::take(&mut leg.transfers);
        let origin = leg.origin;
        let recording = leg.media.close();
        let (start, answered_at) = (leg.start, leg.answered_at);
        let mut fields = json!({
            "hangup_cause": cause,
            "hangup_source": source,
            "sip_hangup_cause": sip_cause(cause),
            "start_time": self.time(id, start),
            "state": "hangup",
        });
        if let Some(answered) = answered_at {
            fields["call_quality_stats"] = quality_stats(at.saturating_sub(answered));
        }
        self.emit(id, at, EventType::CallHangup, true, fields);
        if let Some(r) = recording {
            self.emit_recording_saved(id, at, &r);
        }
        if let Some(leg) = self.legs.get(&id) {
            self.hung_up.push(leg.ccid.clone());
        }
        self.ended.push_back((Instant::now(), id));
        self.listeners.forget(id);
        self.leave_conference(id, at);
        if let Origin::Transfer { a } = origin {
            if let Some(a_leg) = self.legs.get_mut(&a) {
                a_leg.transfers.retain(|&b| b != id);
            }
        }
        for b in transfers {
            self.hangup_leg(b, at, "originator_cancel", "caller");
        }
        if let Some(link) = link {
            let parks =
                self.legs.get_mut(&link.peer).and_then(|p| p.bridge.take()).is_some_and(|l| l.park_after_unbridge);
            if parks {
                self.party_poll(link.peer, at);
            } else {
                // Seen from the peer, the hangup comes from the carrier's side
                // of its own leg, whoever started it.
                let side = self.legs.get(&link.peer).map_or("unknown", Leg::app_side);
                self.hangup_leg(link.peer, at, "normal_clearing", side);
            }
        }
    }

    // ----- commands ---------------------------------------------------------

    /// Runs one action on a leg, the way Telnyx would.
    pub fn command(&mut self, now: Now, ccid: &str, action: Action) -> Result<Executed, CommandError> {
        let id = self.leg_id(ccid).ok_or(CommandError::NotFound)?;
        let at = now.v;
        let state = {
            let leg = self.legs.get_mut(&id).ok_or(CommandError::NotFound)?;
            if let Some(cid) = action.command_id() {
                if leg.commands.is_duplicate(cid, now.real) {
                    return Ok(Executed::Duplicate);
                }
            }
            let state = leg.state();
            legs::check_command(state, action.kind())?;
            state
        };
        // Checks that need more than the leg's own state.
        let bridge_peer = match &action {
            Action::Bridge(b) if b.queue.is_some() && b.call_control_id.is_none() => {
                self.check_bridge_from(id)?;
                self.queue_head(id, b.queue.as_deref().unwrap_or_default())?;
                None
            }
            Action::Bridge(b) => Some(self.check_bridge(id, b)?),
            Action::Enqueue(_) if self.queues.queue_of(id).is_some() => {
                return Err(CommandError::Unprocessable("the call is already in a queue".into()))
            }
            Action::LeaveQueue(_) if self.queues.queue_of(id).is_none() => {
                return Err(CommandError::Unprocessable("the call is not in a queue".into()))
            }
            Action::Answer(_) if legs::answer(state) == AnswerOutcome::NotInbound => {
                return Err(CommandError::Unprocessable(
                    "an outgoing call is answered by the called party, not with the answer command".into(),
                ))
            }
            _ => None,
        };
        if let Some(leg) = self.legs.get_mut(&id) {
            if let Some(cs) = action.client_state() {
                leg.client_state = Some(cs.into());
            }
            if let Some(cid) = action.command_id() {
                leg.commands.record(cid, now.real);
            }
        }
        match action {
            Action::Answer(b) => {
                if legs::answer(state) == AnswerOutcome::Answer {
                    self.answer(id, at, b);
                }
            }
            Action::Speak(b) => {
                let ssml = b.payload_type.as_deref() == Some("ssml");
                self.speak(id, at, b.payload.as_deref().unwrap_or_default(), ssml);
            }
            Action::GatherUsingSpeak(b) => self.gather_using_speak(id, at, &b),
            Action::Gather(b) => self.gather(id, at, &b),
            Action::GatherStop(_) => self.stop_gather(id, at),
            Action::TranscriptionStart(b) => self.start_transcription(id, at, &b),
            Action::TranscriptionStop(_) => {
                if let Some(l) = self.legs.get_mut(&id) {
                    l.media.stop_transcription();
                }
            }
            Action::Transfer(b) => self.transfer(id, at, &b),
            Action::Bridge(b) => {
                let parks = b.park_after_unbridge.as_deref() == Some("self");
                let peer = match b.queue.as_deref() {
                    Some(queue) if bridge_peer.is_none() => self.take_queue_head(queue, at),
                    _ => bridge_peer,
                };
                if let Some(peer) = peer {
                    self.bridge(id, peer, at, parks);
                }
            }
            Action::Enqueue(b) => self.enqueue(id, at, &b)?,
            Action::LeaveQueue(_) => self.leave_queue(id, at)?,
            Action::Hangup(_) => {
                let (cause, source) = match self.legs.get(&id) {
                    Some(l) if l.phase == Phase::Ringing => ("originator_cancel", l.app_side()),
                    Some(l) => ("normal_clearing", l.app_side()),
                    None => return Ok(Executed::Done),
                };
                self.hangup_leg(id, at, cause, source);
            }
            Action::PlaybackStart(b) => self.start_playback(id, at, &b),
            Action::PlaybackStop(_) => self.stop_playback(id, at, "cancelled"),
            Action::StreamingStart(b) => self.start_streaming(id, at, b.stream_url.unwrap_or_default()),
            Action::StreamingStop(_) => self.stop_streaming(id, at),
            Action::RecordStart(b) => self.start_recording(id, at, &b),
            Action::RecordStop(_) => self.stop_recording(id, at),
            Action::ClientStateUpdate(_) => {}
        }
        Ok(Executed::Done)
    }

    fn answer(&mut self, id: u64, at: VTime, b: ivrx_telnyx::commands::Answer) {
        self.cancel_timer(id, Slot::Ring);
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if let Some(url) = b.webhook_url.as_deref().filter(|u| !u.is_empty()) {
            leg.url = Arc::from(url);
        }
        leg.phase = Phase::Answered;
        leg.answered_at = Some(at);
        self.emit_answered(id, at);
        if let Some(url) = b.stream_url {
            self.start_streaming(id, at, url);
        }
        if b.transcription == Some(true) {
            let t = transcription_config(b.transcription_config.as_ref());
            self.start_transcription(id, at, &t);
        }
        self.party_answered(id, at);
    }

    fn check_bridge(&self, id: u64, b: &Bridge) -> Result<u64, CommandError> {
        let other = b.call_control_id.as_deref().unwrap_or_default();
        let peer = self.leg_id(other).ok_or_else(|| CommandError::Invalid {
            pointer: "/call_control_id".into(),
            detail: "no call with this call_control_id".into(),
        })?;
        if peer == id {
            return Err(CommandError::Invalid {
                pointer: "/call_control_id".into(),
                detail: "a call cannot be bridged to itself".into(),
            });
        }
        let p = self.legs.get(&peer).ok_or(CommandError::NotFound)?;
        legs::check_command(p.state(), ActionKind::Bridge)?;
        self.check_bridge_from(id)?;
        if self.confs.conference_of(peer).is_some() {
            return Err(CommandError::Unprocessable("one of the calls is in a conference".into()));
        }
        if p.bridge.is_some() {
            return Err(CommandError::Unprocessable("one of the calls is already bridged".into()));
        }
        Ok(peer)
    }

    /// `id` may be bridged: in no conference, bridged with no one.
    fn check_bridge_from(&self, id: u64) -> Result<(), CommandError> {
        let me = self.legs.get(&id).ok_or(CommandError::NotFound)?;
        if self.confs.conference_of(id).is_some() {
            return Err(CommandError::Unprocessable("one of the calls is in a conference".into()));
        }
        if me.bridge.is_some() {
            return Err(CommandError::Unprocessable("one of the calls is already bridged".into()));
        }
        Ok(())
    }

    fn bridge(&mut self, x: u64, y: u64, at: VTime, x_parks: bool) {
        self.stop_playback(x, at, "cancelled");
        self.stop_playback(y, at, "cancelled");
        self.link(x, y, x_parks);
        self.emit(x, at, EventType::CallBridged, true, json!({}));
        self.emit(y, at, EventType::CallBridged, true, json!({}));
        // Dialled parties (agents) speak first, then inbound callers listen.
        let mut order = [x, y];
        order.sort_by_key(|id| self.legs.get(id).is_some_and(|l| l.incoming));
        for id in order {
            let agent = self.legs.get(&id).is_some_and(|l| !l.incoming);
            self.party_bridged(id, at, agent);
        }
    }

    fn transfer(&mut self, a: u64, at: VTime, b: &Transfer) {
        let to = b.to.clone().unwrap_or_default();
        let behavior = self.behavior_for(&to, at);
        let timeout = b.timeout_secs.map(|s| secs(f64::from(s))).unwrap_or(self.cfg.timing.ring_timeout);
        let Some(a_leg) = self.legs.get(&a) else { return };
        let session = Some((a_leg.session, a_leg.session_uuid.clone(), a_leg.began));
        let from = b.from.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| a_leg.from.to_string());
        let url: Arc<str> = b.webhook_url.as_deref().map_or_else(|| self.cfg.webhook_url.clone(), Arc::from);
        let bid = self.new_leg(
            NewLeg {
                session,
                incoming: false,
                from,
                to,
                caller_id_name: b.from_display_name.clone(),
                headers: Headers::of(b.custom_headers.as_ref(), b.sip_headers.as_ref()),
                client_state: b.target_leg_client_state.clone(),
                url,
                origin: Origin::Transfer { a },
                phase: Phase::Ringing,
                party: behavior.party(),
                live: false,
            },
            at,
        );
        if let Some(a_leg) = self.legs.get_mut(&a) {
            a_leg.transfers.push(bid);
        }
        self.emit_initiated(bid, at);
        self.schedule_ring(bid, at, &behavior, timeout);
        self.party_hears_ringback(a, at);
    }

    /// Adds steps to a live call's script.
    pub fn append_steps(&mut self, now: Now, ccid: &str, steps: Vec<super::script::Step>) -> Result<(), AppendError> {
        let id = self.leg_id(ccid).ok_or(AppendError::Unknown)?;
        let leg = self.legs.get_mut(&id).ok_or(AppendError::Unknown)?;
        if !leg.alive() {
            return Err(AppendError::Ended);
        }
        if !leg.live {
            return Err(AppendError::NotLive);
        }
        let Some(party) = leg.party.as_mut() else { return Err(AppendError::NotLive) };
        let resume = party.append(steps);
        if resume {
            self.party_next(id, now.v);
        }
        Ok(())
    }
}

/// Why steps could not be added to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendError {
    Unknown,
    Ended,
    NotLive,
}

/// The answer to a dial: the new call's ids, not alive yet.
fn dial_answer(call_control_id: String, call_leg_id: String, call_session_id: String) -> CallInfo {
    CallInfo {
        call_control_id,
        call_leg_id,
        call_session_id,
        is_alive: false,
        record_type: "call".into(),
        client_state: None,
        call_duration: None,
        start_time: None,
        end_time: None,
        extra: Map::new(),
    }
}

fn unreachable_info() -> CallInfo {
    dial_answer(String::new(), String::new(), String::new())
}

fn check_base64_state(cs: &str) -> Result<(), CommandError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(cs).map(|_| ()).map_err(|_| CommandError::Invalid {
        pointer: "/client_state".into(),
        detail: "must be a valid Base-64 encoded string".into(),
    })
}

/// The transcription settings of `answer`'s or `dial`'s `transcription_config`.
fn transcription_config(v: Option<&Value>) -> TranscriptionStart {
    v.cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
}

/// `call_quality_stats` of a leg that was up for `talk` (20 ms packets both
/// ways, none lost: the sandbox's network is perfect).
fn quality_stats(talk: Duration) -> Value {
    let packets = (talk.as_millis() / 20).to_string();
    json!({
        "inbound": {"jitter_max_variance": "0", "jitter_packet_count": "0", "mos": "4.50",
                    "packet_count": packets, "skip_packet_count": "0"},
        "outbound": {"packet_count": packets, "skip_packet_count": "0"},
    })
}

/// The SIP response a hangup cause corresponds to.
fn sip_cause(cause: &str) -> &'static str {
    match cause {
        "timeout" => "480",
        "user_busy" => "486",
        "call_rejected" => "603",
        "originator_cancel" => "487",
        _ => "unspecified",
    }
}
