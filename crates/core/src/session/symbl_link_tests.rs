//! PSTN-mode calls driven through the session with hand-made inputs.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ivrx_intel::{Label, Score, TrackerHit};
use ivrx_telnyx::conferences::ConferenceCommand;
use ivrx_telnyx::events::Event;
use serde_json::{json, Value};

use super::super::tests::events;
use super::super::*;
use crate::settings::TransferMode;

const CALLER: &str = "v3:caller-leg";
const SYMBL: &str = "v3:symbl-leg";
const AGENT: &str = "v3:agent-1";
const CONF: &str = "conf-1";

struct Call {
    s: Session,
    t: DateTime<Utc>,
}

fn settings(mode: TransferMode) -> Arc<SessionSettings> {
    let mut s = SessionSettings { symbl_pstn: true, ..SessionSettings::default() };
    s.transfer.mode = mode;
    Arc::new(s)
}

fn sends(fx: &[Effect]) -> Vec<&Command> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// The `transcription` flag of the answer among the effects.
fn answer_transcribes(fx: &[Effect]) -> Option<bool> {
    sends(fx).iter().find_map(|c| match &c.request {
        Request::Action(Action::Answer(a)) => Some(a.transcription == Some(true)),
        _ => None,
    })
}

fn names(fx: &[Effect]) -> Vec<&'static str> {
    sends(fx).iter().map(|c| c.action_name()).collect()
}

fn kinds(fx: &[Effect]) -> Vec<&'static str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(r) => Some(r.event.kind()),
            _ => None,
        })
        .collect()
}

fn conference(fx: &[Effect]) -> Vec<(&'static str, &ConferenceCommand)> {
    sends(fx)
        .into_iter()
        .filter_map(|c| match &c.request {
            Request::Conference(cc) => Some((cc.name(), cc)),
            _ => None,
        })
        .collect()
}

impl Call {
    fn new(mode: TransferMode) -> Self {
        Self { s: Session::new("conv-1", settings(mode)), t: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap() }
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.t += Duration::milliseconds(500);
        self.t
    }

    fn event(&mut self, event_type: &str, payload: Value) -> Vec<Effect> {
        let at = self.tick();
        let event = Event::from_parts(event_type, &payload).unwrap();
        self.s.handle(Input::Webhook { event: Box::new(event), occurred_at: Some(at), received_at: at })
    }

    fn on(&mut self, ccid: &str, role: Role, attempt: Option<u32>, event_type: &str, mut extra: Value) -> Vec<Effect> {
        extra["call_control_id"] = json!(ccid);
        extra["client_state"] = json!(self.s.tag(role, attempt));
        self.event(event_type, extra)
    }

    /// A conference webhook about `participant` (conference webhooks carry the creator's state).
    fn conf_event(&mut self, event_type: &str, participant: &str) -> Vec<Effect> {
        let state = self.s.tag(Role::Caller, None);
        self.event(event_type, json!({"call_control_id": participant, "client_state": state, "conference_id": CONF}))
    }

    fn symbl(&mut self, input: SymblInput) -> Vec<Effect> {
        self.s.handle(Input::Symbl(input))
    }

    fn arrived(&mut self, ccid: &str) -> Vec<Effect> {
        let at = self.tick();
        self.symbl(SymblInput::LegArrived {
            call_control_id: ccid.into(),
            call_leg_id: None,
            call_session_id: None,
            from: Some("+15555550142".into()),
            to: Some("+15555550198".into()),
            at,
        })
    }

    fn failed(&mut self, reason: &str) -> Vec<Effect> {
        let at = self.tick();
        self.symbl(SymblInput::Failed { reason: reason.into(), at })
    }

    /// Symbl hears a settled message and scores it.
    fn heard(&mut self, text: &str, score: f64, trackers: &[&str]) -> Vec<Effect> {
        let at = self.tick();
        let fx = self.symbl(SymblInput::Heard { text: text.into(), is_final: true, message_ids: vec!["m".into()], at });
        let Some(Effect::Score(req)) = fx.iter().find(|e| matches!(e, Effect::Score(_))) else {
            panic!("no score request for {text:?}: {fx:?}")
        };
        assert_eq!(req.refs, ["m"], "Symbl's message ids go with the request");
        let score = Score {
            score,
            label: Label::from_score(score),
            trackers: trackers.iter().map(|t| TrackerHit::new(*t, *t)).collect(),
            engine: "symbl".into(),
        };
        let seq = req.seq;
        self.s.handle(Input::Scored { seq, score, at })
    }

    /// Caller in, Symbl in, both in the conference, the greeting playing.
    fn in_conference(mode: TransferMode) -> Self {
        let mut c = Call::new(mode);
        let fx = c.event(
            "call.initiated",
            json!({"call_control_id": CALLER, "direction": "incoming", "from": "+15551230000", "to": "+18005550100"}),
        );
        assert!(fx.contains(&Effect::StartSymbl), "{fx:?}");
        assert!(names(&fx).is_empty(), "the caller waits (ringing) for Symbl");
        let fx = c.arrived(SYMBL);
        assert_eq!(kinds(&fx), vec!["leg_joined"]);
        assert!(fx.contains(&Effect::SymblJoined), "{fx:?}");
        assert!(fx.contains(&Effect::RouteLeg { call_control_id: SYMBL.into(), call_leg_id: None }), "{fx:?}");
        assert_eq!(names(&fx), vec!["answer"], "Symbl is there: the caller is answered");
        assert_eq!(answer_transcribes(&fx), Some(false), "Symbl is the caller's ears, not Telnyx");
        let fx = c.on(CALLER, Role::Caller, None, "call.answered", json!({}));
        assert_eq!(names(&fx), vec!["conference_create", "gather_using_speak"], "no Telnyx transcription");
        let create = conference(&fx);
        let ConferenceCommand::Create(body) = create[0].1 else { panic!() };
        assert_eq!((body.call_control_id.as_str(), body.name.as_str()), (CALLER, "conv-1"));
        assert_eq!(LegTag::decode(body.client_state.as_deref()).unwrap().role, Role::Caller);
        let fx = c.conf_event("conference.created", CALLER);
        let joins = conference(&fx);
        assert_eq!(joins.len(), 1, "{fx:?}");
        let ConferenceCommand::Join { conference_id, body } = joins[0].1 else { panic!() };
        assert_eq!((conference_id.as_str(), body.call_control_id.as_str()), (CONF, SYMBL));
        assert_eq!(LegTag::decode(body.client_state.as_deref()).unwrap().role, Role::Symbl);
        // The REST answer to the create says the same thing: nothing new.
        let at = c.tick();
        assert!(c.s.handle(Input::ConferenceReady { conference_id: CONF.into(), at }).is_empty());
        c.conf_event("conference.participant.joined", CALLER);
        assert!(c.conf_event("conference.participant.joined", SYMBL).is_empty());
        c
    }
}

#[test]
fn symbl_calls_in_before_the_caller_is_answered_and_joins_the_callers_conference() {
    let c = Call::in_conference(TransferMode::Warm);
    assert_eq!(c.s.phase(), Phase::Ivr);
    assert!(c.s.leg_ids().contains(&SYMBL.to_string()));
}

#[test]
fn symbl_transcripts_are_the_callers_utterances_scored_by_symbl() {
    let mut c = Call::in_conference(TransferMode::Warm);
    let at = c.tick();
    let fx = c.symbl(SymblInput::Heard { text: "my internet".into(), is_final: false, message_ids: vec![], at });
    assert!(matches!(events(&fx)[..], [DomainEvent::Interim { speaker: Speaker::Caller, .. }]));
    let fx = c.heard("my internet has been down since yesterday", -0.1, &[]);
    let utterance = events(&fx).into_iter().find(|e| matches!(e, DomainEvent::Scored { .. }));
    assert!(matches!(utterance, Some(DomainEvent::Scored { engine, .. }) if engine == "symbl"));
    assert_eq!(names(&fx).last(), Some(&"gather_using_speak"), "the IVR replies");
}

#[test]
fn a_frustrated_caller_is_transferred_once_into_the_same_conference() {
    let mut c = Call::in_conference(TransferMode::Warm);
    let fx = c.heard("this is terrible i want to talk to a real person", -0.8, &["asks_for_human"]);
    assert!(kinds(&fx).contains(&"decision"));
    let dial = sends(&fx).into_iter().find_map(|cmd| match &cmd.request {
        Request::Dial(d) => Some(d.clone()),
        _ => None,
    });
    let dial = dial.expect("the agent is dialled");
    assert_eq!(dial.to, "+18005550201");
    // Exactly once: another trigger during the transfer starts nothing.
    let fx = c.heard("get me a human now", -0.9, &["asks_for_human"]);
    assert!(!kinds(&fx).contains(&"decision"));
    c.on(AGENT, Role::Agent, Some(1), "call.initiated", json!({"direction": "outgoing"}));
    let fx = c.on(CALLER, Role::Caller, None, "call.speak.ended", json!({"status": "completed"}));
    assert_eq!(names(&fx), vec!["playback_start"], "hold music");
    let fx = c.on(AGENT, Role::Agent, Some(1), "call.answered", json!({}));
    assert_eq!(names(&fx), vec!["speak"], "briefed first (dialled with transcription)");
    let fx = c.on(AGENT, Role::Agent, Some(1), "call.speak.ended", json!({"status": "completed"}));
    assert_eq!(names(&fx), vec!["playback_stop", "conference_join"], "then into the same conference");
    let ConferenceCommand::Join { conference_id, body } = conference(&fx)[0].1 else { panic!() };
    assert_eq!((conference_id.as_str(), body.call_control_id.as_str()), (CONF, AGENT));
    assert_eq!(body.end_conference_on_exit, Some(true), "the call ends when the agent leaves");
    let fx = c.conf_event("conference.participant.joined", AGENT);
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::Transfer { status: TransferStatus::Connected, .. })));
    assert_eq!(names(&fx), vec!["transcription_start"], "each leg's own voice from now on");
    assert_eq!(sends(&fx)[0].role, Role::Caller);
    assert_eq!(c.s.phase(), Phase::WithAgent);
    // Symbl hears both voices now: its transcripts are no longer utterances.
    let at = c.tick();
    let fx = c.symbl(SymblInput::Heard { text: "hi this is alex".into(), is_final: true, message_ids: vec![], at });
    assert!(fx.is_empty());
    // The caller hangs up: the agent and Symbl are released, Symbl's summary is asked for.
    let fx = c.on(CALLER, Role::Caller, None, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(fx.contains(&Effect::StopSymbl { fallback: false }), "{fx:?}");
    let hangups: Vec<Role> = sends(&fx).iter().filter(|c| c.action_name() == "hangup").map(|c| c.role).collect();
    assert_eq!(hangups, vec![Role::Symbl]);
    let released = fx.iter().any(|e| matches!(e, Effect::Release { command, .. } if command.role == Role::Agent));
    assert!(released, "the agent leg is released: {fx:?}");
    // One conversation: every command and record carried the same id.
    assert!(fx.iter().all(|e| !matches!(e, Effect::Record(r) if r.conversation_id != "conv-1")));
}

#[test]
fn cold_mode_in_a_conference_joins_the_agent_without_a_briefing() {
    let mut c = Call::in_conference(TransferMode::Cold);
    let fx = c.heard("this is useless put me through to a person", -0.9, &["asks_for_human"]);
    assert!(names(&fx).contains(&"dial"), "dialled, never transferred away from the conference: {:?}", names(&fx));
    c.on(AGENT, Role::Agent, Some(1), "call.initiated", json!({}));
    let fx = c.on(AGENT, Role::Agent, Some(1), "call.answered", json!({}));
    assert!(names(&fx).contains(&"conference_join") && !names(&fx).contains(&"speak"), "{:?}", names(&fx));
}

#[test]
fn symbl_failing_before_it_calls_in_answers_the_caller_on_telnyx_transcription() {
    let mut c = Call::new(TransferMode::Warm);
    c.event("call.initiated", json!({"call_control_id": CALLER, "direction": "incoming"}));
    let fx = c.failed("Symbl could not dial in: refused");
    assert_eq!(kinds(&fx), vec!["engine_fallback"]);
    assert!(fx.contains(&Effect::StopSymbl { fallback: true }));
    assert_eq!(c.s.symbl_failure(), Some("Symbl could not dial in: refused"), "for the operator's log");
    assert_eq!(names(&fx), vec!["answer"]);
    assert_eq!(answer_transcribes(&fx), Some(true), "Telnyx transcribes from the answer once Symbl is out");
    let fx = c.on(CALLER, Role::Caller, None, "call.answered", json!({}));
    assert_eq!(names(&fx), vec!["gather_using_speak"], "no conference");
    // A Symbl leg that calls in late is hung up; a second failure is not recorded twice.
    let fx = c.arrived(SYMBL);
    assert_eq!(names(&fx), vec!["hangup"]);
    assert!(kinds(&fx).is_empty());
    assert!(c.failed("again").is_empty());
    // Telnyx transcripts are scored by the local engine (no Symbl refs).
    let fx = c.on(
        CALLER,
        Role::Caller,
        None,
        "call.transcription",
        json!({"transcription_data": {"transcript": "hello", "is_final": true, "transcription_track": "inbound"}}),
    );
    assert!(matches!(fx.iter().find(|e| matches!(e, Effect::Score(_))), Some(Effect::Score(r)) if r.refs.is_empty()));
}

#[test]
fn symbl_leaving_mid_call_falls_back_once_and_the_call_goes_on() {
    let mut c = Call::in_conference(TransferMode::Warm);
    c.heard("hello there", 0.1, &[]);
    let fx = c.on(SYMBL, Role::Symbl, None, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert_eq!(kinds(&fx), vec!["leg_ended", "engine_fallback"]);
    assert!(fx.contains(&Effect::StopSymbl { fallback: true }));
    assert_eq!(names(&fx), vec!["transcription_start"], "Telnyx transcribes the caller from now on");
    let at = c.tick();
    let late = c.symbl(SymblInput::Heard { text: "late".into(), is_final: true, message_ids: vec!["x".into()], at });
    assert!(late.is_empty(), "Symbl is no longer listened to");
    // A transfer still joins the agent into the caller's conference.
    c.event(
        "call.gather.ended",
        json!({"call_control_id": CALLER, "client_state": c.s.tag(Role::Caller, None), "digits": "0", "status": "valid"}),
    );
    c.on(AGENT, Role::Agent, Some(1), "call.answered", json!({}));
    let fx = c.on(AGENT, Role::Agent, Some(1), "call.speak.ended", json!({"status": "completed"}));
    assert!(names(&fx).contains(&"conference_join"), "{:?}", names(&fx));
}

#[test]
fn a_failed_conference_or_join_falls_back() {
    let mut c = Call::new(TransferMode::Warm);
    c.event("call.initiated", json!({"call_control_id": CALLER, "direction": "incoming"}));
    c.arrived(SYMBL);
    c.on(CALLER, Role::Caller, None, "call.answered", json!({}));
    let at = c.tick();
    let fx = c.s.handle(Input::CommandFailed {
        command_id: "x".into(),
        action: "conference_create".into(),
        role: Role::Caller,
        call_gone: false,
        error: "422".into(),
        at,
    });
    assert_eq!(kinds(&fx), vec!["command_failed", "engine_fallback"]);
    assert!(names(&fx).contains(&"transcription_start"));
    let hangups: Vec<Role> = sends(&fx).iter().filter(|c| c.action_name() == "hangup").map(|c| c.role).collect();
    assert_eq!(hangups, vec![Role::Symbl], "Symbl's leg is released");
}

#[test]
fn pstn_state_survives_a_restart() {
    let c = Call::in_conference(TransferMode::Warm);
    let json = serde_json::to_string(&c.s).unwrap();
    let restored: Session = serde_json::from_str(&json).unwrap();
    let restored = restored.with_settings(settings(TransferMode::Warm));
    assert!(restored.awaits_symbl(), "a resumed worker knows its link to Symbl is gone");
    assert_eq!(restored.leg_ids(), c.s.leg_ids());
}

#[test]
fn the_ivrs_own_prompts_heard_by_symbl_are_not_caller_utterances() {
    let mut c = Call::in_conference(TransferMode::Warm);
    let greeting = c.s.settings.ivr.greeting.clone();
    let at = c.tick();
    let echo = SymblInput::Heard { text: greeting.to_uppercase(), is_final: true, message_ids: vec!["e".into()], at };
    assert!(c.symbl(echo).is_empty(), "the greeting coming back through the conference");
    let fx = c.heard("yes", 0.2, &[]);
    assert!(kinds(&fx).contains(&"scored"), "short answers are never taken for an echo");
}
