//! Property tests: client_state and the webhook envelope survive a round trip
//! through their wire form for any content; and a call session, driven
//! through any interleaving of carrier faults, leaves no agent on the line and
//! never bridges two agents for one decision.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ivrx::session::{
    check_one_agent_at_a_time, Command, DomainEvent, Effect, Input, LegTag, Request, Role, Session, SessionSettings,
};
use ivrx::telnyx::client_state::{self, ClientState, MAX_ENCODED_LEN};
use ivrx::telnyx::commands::Action;
use ivrx::telnyx::events::{Envelope, Event};
use proptest::prelude::*;
use serde_json::{json, Value};

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Caller), Just(Role::Agent)]
}

fn leg_tag() -> impl Strategy<Value = LegTag> {
    ("\\PC{0,300}", role(), proptest::option::of(any::<u32>())).prop_map(|(conv, role, attempt)| LegTag {
        ivrx: 1,
        conv,
        role,
        attempt,
    })
}

proptest! {
    #[test]
    fn a_leg_tag_round_trips_through_client_state(tag in leg_tag()) {
        match client_state::encode(&tag) {
            Ok(s) => {
                prop_assert!(s.len() <= MAX_ENCODED_LEN);
                prop_assert_eq!(LegTag::decode(Some(&s)), Some(tag.clone()));
                // Surrounding whitespace, as some proxies add, changes nothing.
                prop_assert_eq!(LegTag::decode(Some(&format!(" {s}\n"))), Some(tag));
            }
            Err(e) => prop_assert!(matches!(e, client_state::ClientStateError::TooLong(_))),
        }
    }

    #[test]
    fn any_json_value_round_trips_through_client_state(v in json_value()) {
        if let Ok(s) = client_state::encode(&v) {
            prop_assert_eq!(client_state::decode::<Value>(Some(&s)), ClientState::Ours(v));
        }
    }

    #[test]
    fn any_string_decodes_without_panicking(raw in "\\PC{0,200}") {
        match client_state::decode::<LegTag>(Some(&raw)) {
            ClientState::Absent => prop_assert!(raw.trim().is_empty()),
            ClientState::Foreign(kept) => prop_assert_eq!(kept, raw.trim()),
            ClientState::Ours(tag) => prop_assert_eq!(Some(tag), LegTag::decode(Some(&raw))),
        }
    }

    #[test]
    fn a_webhook_envelope_round_trips(
        id in "[a-zA-Z0-9-]{1,64}",
        kind in prop_oneof![
            Just("call.initiated"), Just("call.answered"), Just("call.hangup"),
            Just("call.transcription"), Just("call.dtmf.received"), Just("call.gather.ended"),
            Just("call.speak.ended"), Just("call.bridged"), Just("call.vendor.something"),
        ],
        ccid in "v3:[A-Za-z0-9_-]{1,60}",
        tag in proptest::option::of(leg_tag()),
        text in "\\PC{0,200}",
        digit in "[0-9*#A-D]",
        attempt in 1u32..1000,
        seconds in 0i64..4_000_000_000,
        extra in json_value(),
    ) {
        let client_state = tag.as_ref().and_then(|t| client_state::encode(t).ok());
        let occurred_at = chrono::DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339());
        let mut payload = json!({
            "call_control_id": ccid, "call_leg_id": "leg", "call_session_id": "session",
            "client_state": client_state, "digit": digit, "digits": digit, "status": "completed",
            "hangup_cause": "normal_clearing", "hangup_source": "caller",
            "transcription_data": {"transcript": text, "confidence": 0.5, "is_final": true},
        });
        payload["vendor_extra"] = extra.clone();
        let body = json!({
            "data": {"record_type": "event", "event_type": kind, "id": id, "occurred_at": occurred_at, "payload": payload},
            "meta": {"attempt": attempt, "delivered_to": "https://example.com/webhooks/telnyx"},
            "extra_top_level": extra,
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let env = Envelope::parse(&bytes).unwrap();
        prop_assert_eq!(&env.data.id, &id);
        prop_assert_eq!(env.data.event_type.as_str(), kind);
        prop_assert_eq!(env.meta.as_ref().map(|m| m.attempt), Some(attempt));
        // What the server stores and replays parses to the same envelope.
        let again = Envelope::parse(&serde_json::to_vec(&env).unwrap()).unwrap();
        prop_assert_eq!(&again, &env);
        prop_assert_eq!(serde_json::to_value(&env).unwrap(), body);
        let event = env.event().unwrap();
        prop_assert_eq!(event.event_type(), kind);
        if !matches!(event, Event::Unknown { .. }) {
            prop_assert_eq!(event.call_control_id(), Some(ccid.as_str()));
            prop_assert_eq!(LegTag::decode(event.client_state()), tag.filter(|_| client_state.is_some()));
        }
        if let Event::Transcription(t) = &event {
            prop_assert_eq!(&t.transcription_data.transcript, &text);
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An agent leg the simulated carrier placed.
#[derive(Debug, Clone, PartialEq)]
struct AgentLeg {
    ccid: String,
    client_state: Option<String>,
    answered: bool,
    ended: bool,
}

/// A carrier that runs a session's commands, with faults, in an order the
/// test picks, and delivers webhooks in any order.
struct Carrier {
    s: Session,
    t: DateTime<Utc>,
    caller_up: bool,
    caller_answered: bool,
    caller_state: Option<String>,
    orders: VecDeque<Command>,
    releases: Vec<Command>,
    inbox: Vec<(&'static str, Value)>,
    agents: Vec<AgentLeg>,
    /// The agent leg bridged with the caller right now.
    bridged: Option<String>,
    /// Effects, in order.
    log: Vec<Effect>,
}

const CALLER: &str = "v3:caller";

impl Carrier {
    fn new() -> Self {
        let mut c = Carrier {
            s: Session::new("conv-p", std::sync::Arc::new(SessionSettings::default())),
            t: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            caller_up: true,
            caller_answered: false,
            caller_state: None,
            orders: VecDeque::new(),
            releases: Vec::new(),
            inbox: Vec::new(),
            agents: Vec::new(),
            bridged: None,
            log: Vec::new(),
        };
        c.deliver(
            "call.initiated",
            json!({"call_control_id": CALLER, "direction": "incoming", "from": "+1", "to": "+2"}),
        );
        c
    }

    fn feed(&mut self, input: Input) {
        for e in self.s.handle(input) {
            match &e {
                Effect::Send(c) => self.orders.push_back(c.clone()),
                Effect::Release { command, .. } => self.releases.push(command.clone()),
                _ => {}
            }
            self.log.push(e);
        }
    }

    fn deliver(&mut self, event_type: &str, payload: Value) {
        self.t += Duration::milliseconds(100);
        let event = Event::from_parts(event_type, &payload).unwrap();
        self.feed(Input::Webhook { event: Box::new(event), occurred_at: Some(self.t), received_at: self.t });
    }

    fn webhook(&mut self, event_type: &'static str, ccid: &str, mut extra: Value) {
        let state = if ccid == CALLER {
            self.caller_state.clone()
        } else {
            self.agents.iter().find(|a| a.ccid == ccid).and_then(|a| a.client_state.clone())
        };
        extra["call_control_id"] = json!(ccid);
        extra["client_state"] = json!(state);
        self.inbox.push((event_type, extra));
    }

    fn failed(&mut self, cmd: &Command, call_gone: bool) {
        let error = if call_gone { "call has already ended (90018)" } else { "server error 500 after 5 attempts" };
        let input = Input::CommandFailed {
            command_id: cmd.command_id().to_string(),
            action: cmd.action_name().to_string(),
            role: cmd.role,
            call_gone,
            error: error.into(),
            at: self.t,
        };
        self.feed(input);
    }

    fn leg_up(&self, ccid: &str) -> bool {
        if ccid == CALLER {
            return self.caller_up;
        }
        self.agents.iter().any(|a| a.ccid == ccid && !a.ended)
    }

    /// A leg hangs up (with its bridged peer).
    fn end_leg(&mut self, ccid: &str, cause: &str) {
        if !self.leg_up(ccid) {
            return;
        }
        if ccid == CALLER {
            self.caller_up = false;
        } else if let Some(a) = self.agents.iter_mut().find(|a| a.ccid == ccid) {
            a.ended = true;
        }
        self.webhook("call.hangup", ccid, json!({"hangup_cause": cause, "hangup_source": "caller"}));
        let peer = match self.bridged.clone() {
            Some(agent) if agent == ccid => Some(CALLER.to_string()),
            Some(agent) if ccid == CALLER => Some(agent),
            _ => None,
        };
        if let Some(peer) = peer {
            self.bridged = None;
            self.end_leg(&peer, "normal_clearing");
        }
    }

    /// Runs the next ordered command; `fault`: it fails for good (a dial
    /// having run anyway when `ran` is set).
    fn run_order(&mut self, fault: bool, ran: bool) {
        let Some(cmd) = self.orders.pop_front() else { return };
        if fault && !(ran && matches!(cmd.request, Request::Dial(_))) {
            self.failed(&cmd, false);
            return;
        }
        match &cmd.request {
            Request::Dial(d) => {
                let ccid = format!("v3:agent-{}", self.agents.len() + 1);
                self.agents.push(AgentLeg {
                    ccid: ccid.clone(),
                    client_state: d.client_state.clone(),
                    answered: false,
                    ended: false,
                });
                self.webhook("call.initiated", &ccid, json!({"direction": "outgoing"}));
                if fault {
                    self.failed(&cmd, false);
                } else {
                    let command_id = cmd.command_id().to_string();
                    let at = self.t;
                    self.feed(Input::Dialled {
                        command_id,
                        call_control_id: ccid,
                        call_leg_id: None,
                        call_session_id: None,
                        at,
                    });
                }
            }
            Request::Conference(_) => {}
            Request::Action(a) => {
                let ccid = cmd.call_control_id.clone().unwrap_or_default();
                if !self.leg_up(&ccid) {
                    self.failed(&cmd, true);
                    return;
                }
                match a {
                    Action::Answer(answer) => {
                        self.caller_state = answer.common.client_state.clone();
                        self.caller_answered = true;
                        self.webhook("call.answered", CALLER, json!({}));
                    }
                    Action::Speak(_) => self.webhook("call.speak.ended", &ccid, json!({"status": "completed"})),
                    Action::Bridge(b) => {
                        let agent = b.call_control_id.clone().unwrap_or_default();
                        if !self.leg_up(&agent) {
                            self.failed(&cmd, true);
                            return;
                        }
                        assert!(
                            self.bridged.as_ref().is_none_or(|x| *x == agent),
                            "{agent} bridged while {:?} still is",
                            self.bridged
                        );
                        self.bridged = Some(agent.clone());
                        self.webhook("call.bridged", CALLER, json!({}));
                        self.webhook("call.bridged", &agent, json!({}));
                    }
                    Action::Hangup(_) => self.end_leg(&ccid, "normal_clearing"),
                    _ => {}
                }
            }
        }
    }

    /// Runs release `i`: the leg is hung up, or it was gone already (90018);
    /// `fault`: the release fails for good.
    fn run_release(&mut self, i: usize, fault: bool) {
        if self.releases.is_empty() {
            return;
        }
        let cmd = self.releases.remove(i % self.releases.len());
        let ccid = cmd.call_control_id.clone().unwrap_or_default();
        if fault {
            self.failed(&cmd, false);
        } else if self.leg_up(&ccid) {
            self.end_leg(&ccid, "normal_clearing");
        } else {
            self.failed(&cmd, true);
        }
    }

    fn deliver_one(&mut self, i: usize) {
        if self.inbox.is_empty() {
            return;
        }
        let (event_type, payload) = self.inbox.remove(i % self.inbox.len());
        self.deliver(event_type, payload);
    }

    fn ringing(&self) -> Vec<String> {
        self.agents.iter().filter(|a| !a.answered && !a.ended).map(|a| a.ccid.clone()).collect()
    }

    fn step(&mut self, kind: u8, pick: usize) {
        match kind % 9 {
            0 => self.run_order(false, false),
            1 => self.run_order(true, pick % 2 == 0),
            2 => self.run_release(pick, false),
            3 => self.run_release(pick, true),
            4 | 5 => self.deliver_one(pick),
            6 => {
                let ringing = self.ringing();
                if let Some(ccid) = ringing.get(pick % ringing.len().max(1)) {
                    if let Some(a) = self.agents.iter_mut().find(|a| a.ccid == *ccid) {
                        a.answered = true;
                    }
                    self.webhook("call.answered", ccid, json!({}));
                }
            }
            7 if self.caller_up && self.caller_answered => {
                self.webhook("call.gather.ended", CALLER, json!({"digits": "0", "status": "valid"}));
            }
            7 => {}
            _ => {
                if pick % 4 == 0 {
                    self.end_leg(CALLER, "normal_clearing");
                } else if let Some(ccid) = self.ringing().get(pick % self.ringing().len().max(1)) {
                    let ccid = ccid.clone();
                    self.end_leg(&ccid, "timeout");
                }
            }
        }
    }

    /// The caller hangs up, then everything runs to the end without faults;
    /// agents who rang on ring out. Answered agents never hang up by themselves.
    fn finish(&mut self) {
        self.end_leg(CALLER, "normal_clearing");
        for _ in 0..10_000 {
            if !self.orders.is_empty() {
                self.run_order(false, false);
            } else if !self.releases.is_empty() {
                self.run_release(0, false);
            } else if !self.inbox.is_empty() {
                self.deliver_one(0);
            } else if let Some(ccid) = self.ringing().first().cloned() {
                self.end_leg(&ccid, "timeout");
            } else {
                return;
            }
        }
        panic!("the call never came to rest");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_agent_is_left_on_the_line_and_one_agent_per_decision(
        steps in prop::collection::vec((any::<u8>(), any::<usize>()), 0..160),
    ) {
        let mut c = Carrier::new();
        for (kind, pick) in steps {
            c.step(kind, pick);
        }
        c.finish();
        let up: Vec<_> = c.agents.iter().filter(|a| !a.ended).map(|a| a.ccid.clone()).collect();
        prop_assert!(up.is_empty(), "agents left on the line: {:?}", up);
        // The record shows every agent leg that answered ending, and the call ending once.
        let recorded: Vec<DomainEvent> = c.log.iter().filter_map(|e| match e {
            Effect::Record(r) => Some(r.event.clone()),
            _ => None,
        }).collect();
        for e in &recorded {
            if let DomainEvent::LegAnswered { role: Role::Agent, call_control_id } = e {
                let ended = recorded.iter().any(|x| matches!(x,
                    DomainEvent::LegEnded { role: Role::Agent, call_control_id: c, .. } if c == call_control_id));
                prop_assert!(ended, "{} answered and never ended in the record", call_control_id);
            }
        }
        let ends = recorded.iter().filter(|e| matches!(e, DomainEvent::CallEnded { .. })).count();
        prop_assert_eq!(ends, 1);
        prop_assert!(c.s.is_settled());
        // One agent per decision: a bridge goes out only once every agent
        // bridged before has been released.
        let one = check_one_agent_at_a_time(&c.log);
        prop_assert!(one.is_ok(), "{:?}", one);
    }
}
