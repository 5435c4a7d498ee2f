//! Whole calls driven through the session with hand-made events.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ivrx_intel::{Label, Score, TrackerHit};
use ivrx_telnyx::events::Event;
use serde_json::{json, Value};

use super::*;
use crate::policy::Reason;

const CALLER: &str = "v3:caller-leg";

struct Call {
    s: Session,
    t: DateTime<Utc>,
    /// Every effect of the inputs given through `event` and `input`.
    log: Vec<Effect>,
}

fn settings(mode: TransferMode) -> Arc<SessionSettings> {
    let mut s = SessionSettings::default();
    s.transfer.mode = mode;
    Arc::new(s)
}

impl Call {
    fn new() -> Self {
        Self::with(settings(TransferMode::Warm))
    }

    fn with(settings: Arc<SessionSettings>) -> Self {
        Self {
            s: Session::new("conv-1", settings),
            t: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
            log: Vec::new(),
        }
    }

    fn event(&mut self, event_type: &str, payload: Value) -> Vec<Effect> {
        self.t += Duration::milliseconds(500);
        let event = Event::from_parts(event_type, &payload).unwrap();
        self.input(Input::Webhook { event: Box::new(event), occurred_at: Some(self.t), received_at: self.t })
    }

    /// Hands the session an input, keeping its effects in the log.
    fn input(&mut self, input: Input) -> Vec<Effect> {
        let fx = self.s.handle(input);
        self.log.extend(fx.iter().cloned());
        fx
    }

    fn caller_state(&self) -> String {
        self.s.tag(Role::Caller, None)
    }

    fn on_caller(&mut self, event_type: &str, mut extra: Value) -> Vec<Effect> {
        extra["call_control_id"] = json!(CALLER);
        extra["client_state"] = json!(self.caller_state());
        self.event(event_type, extra)
    }

    fn on_agent(&mut self, ccid: &str, attempt: u32, event_type: &str, mut extra: Value) -> Vec<Effect> {
        extra["call_control_id"] = json!(ccid);
        extra["client_state"] = json!(self.s.tag(Role::Agent, Some(attempt)));
        self.event(event_type, extra)
    }

    /// Incoming call, answered, greeting and menu under way.
    fn answered() -> Self {
        let mut c = Call::new();
        c.start();
        c
    }

    fn start(&mut self) {
        let fx = self.event(
            "call.initiated",
            json!({"call_control_id": CALLER, "call_leg_id": "leg-a", "call_session_id": "sess-a",
                   "direction": "incoming", "from": "+15551230000", "to": "+18005550100", "state": "parked"}),
        );
        let answer = actions(&fx);
        assert_eq!(answer.len(), 1);
        assert_eq!(answer[0].name(), "answer");
        assert!(LegTag::decode(answer[0].client_state()).is_some());
        self.on_caller("call.answered", json!({}));
    }

    /// A final caller utterance, scored at once with the given score.
    fn say(&mut self, text: &str, score: f64, trackers: &[&str]) -> Vec<Effect> {
        let fx = self.on_caller(
            "call.transcription",
            json!({"transcription_data": {"transcript": text, "confidence": 0.93, "is_final": true, "transcription_track": "inbound"}}),
        );
        let Some(Effect::Score(req)) = fx.iter().find(|e| matches!(e, Effect::Score(_))) else {
            panic!("no score request for {text:?}: {fx:?}")
        };
        let score = Score {
            score,
            label: Label::from_score(score),
            trackers: trackers.iter().map(|t| TrackerHit::new(t.to_string(), t.to_string())).collect(),
            engine: "test".into(),
        };
        let seq = req.seq;
        self.t += Duration::milliseconds(1);
        self.input(Input::Scored { seq, score, at: self.t })
    }

    fn speak_ended(&mut self, role_ccid: &str) -> Vec<Effect> {
        if role_ccid == CALLER {
            self.on_caller("call.speak.ended", json!({"status": "completed"}))
        } else {
            let attempt = self.s.transfer.as_ref().map(|t| t.attempt).unwrap_or(1);
            self.on_agent(role_ccid, attempt, "call.speak.ended", json!({"status": "completed"}))
        }
    }

    fn press(&mut self, digits: &str) -> Vec<Effect> {
        self.on_caller("call.gather.ended", json!({"digits": digits, "status": "valid"}))
    }
}

fn actions(fx: &[Effect]) -> Vec<Action> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(Command { request: Request::Action(a), .. }) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn names(fx: &[Effect]) -> Vec<&'static str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c.action_name()),
            _ => None,
        })
        .collect()
}

/// The agent legs released: (call_control_id, command_id, round).
fn releases(fx: &[Effect]) -> Vec<(String, String, u32)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Release { command, round } => {
                assert_eq!(command.action_name(), "hangup");
                assert_eq!(command.role, Role::Agent);
                Some((command.call_control_id.clone().unwrap_or_default(), command.command_id().to_string(), *round))
            }
            _ => None,
        })
        .collect()
}

fn dials(fx: &[Effect]) -> Vec<Dial> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send(Command { request: Request::Dial(d), .. }) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

/// The domain events the effects record, in order.
pub(super) fn events(fx: &[Effect]) -> Vec<DomainEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(r) => Some(r.event.clone()),
            _ => None,
        })
        .collect()
}

fn transfer_statuses(fx: &[Effect]) -> Vec<TransferStatus> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::Transfer { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn inbound_call_is_answered_then_greeted_with_the_menu_and_transcribed() {
    let mut c = Call::new();
    let fx = c.event(
        "call.initiated",
        json!({"call_control_id": CALLER, "direction": "incoming", "from": "+1555", "to": "+1800"}),
    );
    assert_eq!(names(&fx), vec!["answer"]);
    // Transcription starts with the answer: nothing the caller says is lost.
    let Action::Answer(a) = &actions(&fx)[0] else { panic!() };
    assert_eq!(a.transcription, Some(true));
    assert_eq!(
        a.transcription_config,
        Some(json!({"transcription_engine": "Google", "transcription_tracks": "inbound",
                    "transcription_engine_config": {"language": "en", "interim_results": true}}))
    );
    let kinds: Vec<_> = events(&fx).iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, vec!["call_started", "leg_joined"]);
    let fx = c.on_caller("call.answered", json!({}));
    assert_eq!(names(&fx), vec!["gather_using_speak"], "no separate transcription_start");
    let a = actions(&fx);
    let Action::GatherUsingSpeak(g) = &a[0] else { panic!() };
    assert!(g.payload.as_deref().unwrap().starts_with("Thank you for calling"));
    assert_eq!(g.valid_digits.as_deref(), Some("1230"));
    assert_eq!(c.s.phase(), Phase::Ivr);
}

#[test]
fn command_ids_are_unique_and_deterministic() {
    let mut a = Call::answered();
    let mut b = Call::answered();
    let fa = a.say("hello there", 0.1, &[]);
    let fb = b.say("hello there", 0.1, &[]);
    let ids_a: Vec<_> = actions(&fa).iter().map(|x| x.command_id().unwrap().to_string()).collect();
    let ids_b: Vec<_> = actions(&fb).iter().map(|x| x.command_id().unwrap().to_string()).collect();
    assert_eq!(ids_a, ids_b);
    assert!(ids_a.iter().all(|id| id.starts_with("conv-1-")));
}

#[test]
fn duplicate_events_do_not_repeat_commands() {
    let mut c = Call::answered();
    assert!(names(&c.on_caller("call.answered", json!({}))).is_empty());
    let fx = c.event("call.initiated", json!({"call_control_id": CALLER, "direction": "incoming"}));
    assert!(names(&fx).is_empty());
}

/// The prompt of the reply gather an utterance got.
fn reply_prompt(fx: &[Effect]) -> String {
    let a = actions(fx);
    match a.last() {
        Some(Action::GatherUsingSpeak(g)) => g.payload.clone().unwrap_or_default(),
        other => panic!("expected a reply prompt, got {other:?} in {a:?}"),
    }
}

#[test]
fn replies_fit_the_sentiment_and_keep_listening_for_keys() {
    let mut c = Call::answered();
    let fx = c.say("i have a question", 0.0, &[]);
    assert_eq!(names(&fx), vec!["gather_stop", "gather_using_speak"], "the greeting's gather is replaced");
    assert_eq!(reply_prompt(&fx), c.s.settings.ivr.acknowledgement);
    let fx = c.say("that is really annoying", -0.6, &[]);
    assert_eq!(reply_prompt(&fx), c.s.settings.ivr.empathy);
    let fx = c.say("oh that is great news", 0.7, &[]);
    assert_eq!(reply_prompt(&fx), c.s.settings.ivr.positive_reply);
}

#[test]
fn a_spoken_menu_keyword_gets_the_self_service_answer_once() {
    let mut c = Call::answered();
    let fx = c.say("my internet keeps dropping", -0.2, &[]);
    assert!(reply_prompt(&fx).contains("restart your router"));
    let fx = c.say("i already restarted the router and my internet still drops", -0.4, &[]);
    assert_eq!(reply_prompt(&fx), c.s.settings.ivr.empathy, "the same answer is not read twice");
}

#[test]
fn scores_are_applied_in_utterance_order() {
    let mut c = Call::answered();
    let f1 =
        c.on_caller("call.transcription", json!({"transcription_data": {"transcript": "first", "is_final": true}}));
    let f2 =
        c.on_caller("call.transcription", json!({"transcription_data": {"transcript": "second", "is_final": true}}));
    let seq = |fx: &[Effect]| match fx.iter().find(|e| matches!(e, Effect::Score(_))) {
        Some(Effect::Score(r)) => r.seq,
        _ => panic!(),
    };
    let (s1, s2) = (seq(&f1), seq(&f2));
    let score = |v: f64| Score { score: v, label: Label::from_score(v), trackers: vec![], engine: "t".into() };
    let early = c.s.handle(Input::Scored { seq: s2, score: score(0.1), at: c.t });
    assert!(events(&early).is_empty(), "the second score waits for the first");
    let fx = c.s.handle(Input::Scored { seq: s1, score: score(0.2), at: c.t });
    let seqs: Vec<u32> = events(&fx)
        .iter()
        .filter_map(|e| match e {
            DomainEvent::Scored { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![s1, s2]);
    // A repeated score changes nothing.
    assert!(c.s.handle(Input::Scored { seq: s1, score: score(0.2), at: c.t }).is_empty());
}

#[test]
fn interim_transcripts_are_streamed_not_scored() {
    let mut c = Call::answered();
    let fx =
        c.on_caller("call.transcription", json!({"transcription_data": {"transcript": "i want", "is_final": false}}));
    assert!(matches!(events(&fx)[..], [DomainEvent::Interim { .. }]));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Score(_))));
}

/// Presses 0 and walks a warm transfer to a connected agent.
fn warm_transfer_to_connected(c: &mut Call) -> String {
    let fx = c.press("0");
    let d = dials(&fx);
    assert_eq!(d.len(), 1, "{fx:?}");
    assert_eq!(d[0].to, "+18005550201");
    assert_eq!(d[0].from, "+18005550100");
    assert_eq!(d[0].timeout_secs, Some(20));
    assert!(
        matches!(fx.iter().find(|e| matches!(e, Effect::Send(_))), Some(Effect::Send(cmd)) if cmd.is_transfer_start()),
        "the dial goes out first"
    );
    let decision = events(&fx).into_iter().find_map(|e| match e {
        DomainEvent::Decision { decision, source } => Some((decision, source)),
        _ => None,
    });
    let (decision, source) = decision.unwrap();
    assert_eq!(decision.reason, crate::policy::Reason::Operator);
    assert_eq!(source, DecisionSource::Menu);
    assert!(names(&fx).contains(&"speak"), "the caller hears the bridging line");
    let tag = LegTag::decode(d[0].client_state.as_deref()).unwrap();
    assert_eq!((tag.role, tag.attempt), (Role::Agent, Some(1)));

    let agent = "v3:agent-1";
    let fx = c.on_agent(agent, 1, "call.initiated", json!({"direction": "outgoing"}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Ringing]);
    let fx = c.speak_ended(CALLER);
    assert_eq!(names(&fx), vec!["playback_start"], "hold music, never silence");
    let fx = c.on_agent(agent, 1, "call.answered", json!({}));
    assert_eq!(names(&fx), vec!["speak"], "the agent was dialled with transcription: no transcription_start");
    let a = actions(&fx);
    let Action::Speak(brief) = &a[0] else { panic!("{a:?}") };
    assert!(brief.payload.as_deref().unwrap().contains("pressed 0"), "{brief:?}");
    let fx = c.speak_ended(agent);
    assert_eq!(names(&fx), vec!["playback_stop", "bridge"]);
    let Action::Bridge(b) = &actions(&fx)[1] else { panic!() };
    assert_eq!(b.call_control_id.as_deref(), Some(agent));
    let fx = c.on_caller("call.bridged", json!({}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Connected]);
    assert!(names(&fx).is_empty(), "transcription is already running on the agent leg");
    assert!(c.on_agent(agent, 1, "call.bridged", json!({})).is_empty());
    assert_eq!(c.s.phase(), Phase::WithAgent);
    agent.to_string()
}

#[test]
fn warm_transfer_dials_briefs_and_bridges() {
    let mut c = Call::answered();
    let agent = warm_transfer_to_connected(&mut c);
    // Agent speech is stored with speaker agent, the conversation id unchanged.
    let fx = c.on_agent(
        &agent,
        1,
        "call.transcription",
        json!({"transcription_data": {"transcript": "hi how can i help", "is_final": true}}),
    );
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::Utterance { speaker: Speaker::Agent, .. })));
    let Some(Effect::Score(req)) = fx.iter().find(|e| matches!(e, Effect::Score(_))) else { panic!("{fx:?}") };
    let score = Score { score: 0.3, label: Label::Neutral, trackers: vec![], engine: "test".into() };
    c.s.handle(Input::Scored { seq: req.seq, score, at: c.t });
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}));
    assert!(names(&fx).is_empty(), "{fx:?}");
    assert_eq!(releases(&fx)[0].0, agent, "the agent leg is released");
    assert!(!events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })), "not over while the agent is up");
    let fx = c.on_agent(&agent, 1, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(events(&fx)
        .iter()
        .any(|e| matches!(e, DomainEvent::CallEnded { reason } if reason == "completed_with_agent")));
}

/// What the shell does beyond storing and streaming, as the session asks it.
fn shell_effects(fx: &[Effect]) -> Vec<Effect> {
    fx.iter()
        .filter(|e| matches!(e, Effect::RouteLeg { .. } | Effect::Decided(_) | Effect::FinishScoring))
        .cloned()
        .collect()
}

#[test]
fn the_session_asks_for_routing_counting_and_finishing_explicitly() {
    let mut c = Call::answered();
    let route = |ccid: &str, leg: Option<&str>| Effect::RouteLeg {
        call_control_id: ccid.into(),
        call_leg_id: leg.map(str::to_string),
    };
    assert_eq!(shell_effects(&c.log), vec![route(CALLER, Some("leg-a"))], "the caller's leg, by both ids");
    let agent = warm_transfer_to_connected(&mut c);
    let since_answer = &c.log[c.log.iter().position(|e| matches!(e, Effect::Decided(_))).unwrap()..];
    assert_eq!(shell_effects(since_answer), vec![Effect::Decided(Reason::Operator), route(&agent, None)]);
    c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}));
    let fx = c.on_agent(&agent, 1, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert_eq!(shell_effects(&fx), vec![Effect::FinishScoring], "once the end is recorded");
    assert!(matches!(events(&fx).last(), Some(DomainEvent::CallEnded { .. })));
}

#[test]
fn the_decision_and_the_transfer_outcome_are_told_once_each_with_the_caller() {
    let mut c = Call::answered();
    warm_transfer_to_connected(&mut c);
    let notices: Vec<(NoticeKind, Option<String>, Reason)> = (c.log.iter())
        .filter_map(|e| match e {
            Effect::Notify(n) => Some((n.kind, n.caller.clone(), n.decision.reason)),
            _ => None,
        })
        .collect();
    let caller = c.log.iter().find_map(|e| match e {
        Effect::Record(Recorded { event: DomainEvent::CallStarted { from, .. }, .. }) => from.clone(),
        _ => None,
    });
    assert!(caller.is_some());
    assert_eq!(
        notices,
        vec![
            (NoticeKind::Decided, caller.clone(), Reason::Operator),
            (NoticeKind::Connected, caller, Reason::Operator)
        ]
    );
}

#[test]
fn a_goodbye_hangup_racing_the_callers_own_hangup_still_records_the_end() {
    let mut c = Call::answered();
    c.say("thats all thanks bye", 0.5, &[]);
    assert_eq!(names(&c.speak_ended(CALLER)), vec!["hangup"]);
    // The caller hung up first: our hangup is answered 90018, then the caller's webhook arrives.
    let fx = c.s.handle(Input::CommandFailed {
        command_id: "x".into(),
        action: "hangup".into(),
        role: Role::Caller,
        call_gone: true,
        error: "call has already ended (90018)".into(),
        at: c.t,
    });
    let kinds: Vec<_> = events(&fx).iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, vec!["leg_ended", "call_ended"], "the call is over even if no webhook follows");
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}));
    assert!(fx.is_empty(), "the late webhook changes nothing: {fx:?}");
}

#[test]
fn a_call_gone_answer_to_releasing_the_agent_still_ends_the_call() {
    let mut c = Call::answered();
    warm_transfer_to_connected(&mut c);
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing"}));
    let (_, command_id, _) = releases(&fx).remove(0);
    let fx = c.s.handle(Input::CommandFailed {
        command_id,
        action: "hangup".into(),
        role: Role::Agent,
        call_gone: true,
        error: "call has already ended (90018)".into(),
        at: c.t,
    });
    assert!(
        matches!(events(&fx)[..], [DomainEvent::LegEnded { role: Role::Agent, .. }, DomainEvent::CallEnded { .. }]),
        "{fx:?}"
    );
}

#[test]
fn a_goodbye_to_a_caller_already_gone_still_ends_the_call() {
    // The caller hangs up while the IVR says goodbye; the goodbye and the
    // hangup are both answered 90018 before the caller's call.hangup arrives.
    let mut c = Call::answered();
    c.say("thats all thank you bye", 0.6, &[]);
    let gone = |action: &str, c: &Call| Input::CommandFailed {
        command_id: "x".into(),
        action: action.into(),
        role: Role::Caller,
        call_gone: true,
        error: "call has already ended (90018)".into(),
        at: c.t,
    };
    let fx = c.s.handle(gone("speak", &c));
    assert_eq!(names(&fx), vec!["hangup"]);
    let fx = c.s.handle(gone("hangup", &c));
    assert!(
        matches!(events(&fx)[..], [DomainEvent::LegEnded { role: Role::Caller, .. }, DomainEvent::CallEnded { .. }]),
        "{fx:?}"
    );
    assert!(c.s.is_ended());
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { reason } if reason == "caller_done")));
    // The late call.hangup changes nothing.
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn exactly_once_whatever_the_triggers() {
    let mut c = Call::answered();
    c.press("0");
    // Another 0, a trigger phrase and a manual request during the transfer: nothing new.
    assert!(dials(&c.press("0")).is_empty());
    assert!(dials(&c.say("get me a human now", -0.8, &["asks_for_human"])).is_empty());
    assert_eq!(c.s.request_transfer(ManualTransfer::default(), c.t), Err(TransferRefused::InProgress));
}

#[test]
fn an_agent_who_does_not_answer_is_followed_by_the_next_then_the_ivr_takes_over() {
    let mut c = Call::answered();
    c.press("0");
    c.on_agent("v3:a1", 1, "call.initiated", json!({}));
    let fx = c.on_agent("v3:a1", 1, "call.hangup", json!({"hangup_cause": "timeout"}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::AttemptFailed, TransferStatus::Dialing]);
    assert_eq!(dials(&fx)[0].to, "+18005550202");
    // A late duplicate of the first agent's hangup is ignored.
    assert!(c.on_agent("v3:a1", 1, "call.hangup", json!({"hangup_cause": "timeout"})).is_empty());
    c.on_agent("v3:a2", 2, "call.initiated", json!({}));
    let fx = c.on_agent("v3:a2", 2, "call.hangup", json!({"hangup_cause": "call_rejected"}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::AttemptFailed, TransferStatus::Failed]);
    let details: Vec<_> = events(&fx)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::Transfer { detail, .. } => detail,
            _ => None,
        })
        .collect();
    assert_eq!(details, vec!["refused".to_string(), "no agent answered".to_string()]);
    let a = actions(&fx);
    let Some(Action::GatherUsingSpeak(g)) = a.last() else { panic!("{a:?}") };
    assert!(g.payload.as_deref().unwrap().starts_with("I'm sorry, nobody is available"));
    assert_eq!(c.s.phase(), Phase::Ivr, "the caller stays with the IVR");
    // The policy never transfers again on its own …
    assert!(dials(&c.say("this is useless", -0.9, &["bot_frustration"])).is_empty());
    // … but the caller can ask again.
    assert_eq!(dials(&c.press("0")).len(), 1);
}

#[test]
fn a_caller_who_hangs_up_mid_transfer_leaves_a_consistent_record() {
    let mut c = Call::answered();
    c.press("0");
    c.on_agent("v3:a1", 1, "call.initiated", json!({}));
    c.on_agent("v3:a1", 1, "call.answered", json!({}));
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Abandoned]);
    let hangups: Vec<_> = releases(&fx).into_iter().map(|(ccid, _, _)| ccid).collect();
    assert_eq!(hangups, vec!["v3:a1".to_string()], "the agent is released");
    assert!(!events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { .. })));
    // The agent's briefing ending and its hangup afterwards issue nothing; the hangup ends the record.
    assert!(names(&c.speak_ended("v3:a1")).is_empty());
    let fx = c.on_agent("v3:a1", 1, "call.hangup", json!({"hangup_cause": "normal_clearing"}));
    assert!(names(&fx).is_empty());
    assert!(events(&fx)
        .iter()
        .any(|e| matches!(e, DomainEvent::CallEnded { reason } if reason == "caller_hangup_during_transfer")));
    assert_eq!(c.s.request_transfer(ManualTransfer::default(), c.t), Err(TransferRefused::Ended));
}

#[test]
fn cold_transfer_uses_the_transfer_command() {
    let mut c = Call::with(settings(TransferMode::Cold));
    c.start();
    let fx = c.press("0");
    let a = actions(&fx);
    let Some(Action::Transfer(t)) = a.iter().find(|a| a.name() == "transfer") else { panic!("{a:?}") };
    assert_eq!(t.to.as_deref(), Some("+18005550201"));
    let tag = LegTag::decode(t.target_leg_client_state.as_deref()).unwrap();
    assert_eq!(tag.attempt, Some(1));
    let fx = c.on_agent("v3:b1", 1, "call.initiated", json!({}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Ringing]);
    let fx = c.on_agent("v3:b1", 1, "call.hangup", json!({"hangup_cause": "timeout"}));
    let a = actions(&fx);
    assert!(matches!(a.last(), Some(Action::Transfer(t)) if t.to.as_deref() == Some("+18005550202")));
    c.on_agent("v3:b2", 2, "call.initiated", json!({}));
    c.on_agent("v3:b2", 2, "call.bridged", json!({}));
    let fx = c.on_agent("v3:b2", 2, "call.answered", json!({}));
    assert_eq!(transfer_statuses(&fx), vec![TransferStatus::Connected]);
    assert_eq!(c.s.phase(), Phase::WithAgent);
}

#[test]
fn manual_transfer_goes_through_the_same_guard() {
    let mut c = Call::new();
    c.event("call.initiated", json!({"call_control_id": CALLER, "direction": "incoming"}));
    assert_eq!(c.s.request_transfer(ManualTransfer::default(), c.t), Err(TransferRefused::NotAnswered));
    c.on_caller("call.answered", json!({}));
    let bad = ManualTransfer { queue: Some("nope".into()), to: None };
    assert_eq!(c.s.request_transfer(bad, c.t), Err(TransferRefused::UnknownQueue("nope".into())));
    let fx = c.s.request_transfer(ManualTransfer { queue: Some("sales".into()), to: None }, c.t).unwrap();
    assert_eq!(dials(&fx)[0].to, "+18005550301");
    assert_eq!(c.s.request_transfer(ManualTransfer::default(), c.t), Err(TransferRefused::InProgress));
    let direct =
        Call::answered().s.request_transfer(ManualTransfer { queue: None, to: Some("+1999".into()) }, c.t).unwrap();
    assert_eq!(dials(&direct)[0].to, "+1999");
}

#[test]
fn silence_is_reprompted_then_the_call_ends_politely() {
    let mut c = Call::answered();
    for _ in 0..2 {
        let fx = c.on_caller("call.gather.ended", json!({"status": "timeout"}));
        assert_eq!(names(&fx), vec!["gather_using_speak"]);
    }
    let fx = c.on_caller("call.gather.ended", json!({"status": "timeout"}));
    assert_eq!(names(&fx), vec!["speak"]);
    assert_eq!(c.s.phase(), Phase::Closing);
    let fx = c.speak_ended(CALLER);
    assert_eq!(names(&fx), vec!["hangup"]);
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "callee"}));
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::CallEnded { reason } if reason == "no_input")));
}

#[test]
fn a_gather_timeout_while_an_utterance_awaits_its_score_just_listens_again() {
    let mut c = Call::answered();
    let fx = c.on_caller(
        "call.transcription",
        json!({"transcription_data": {"transcript": "i am calling about", "is_final": true}}),
    );
    assert!(fx.iter().any(|e| matches!(e, Effect::Score(_))));
    let fx = c.on_caller("call.gather.ended", json!({"status": "timeout"}));
    assert_eq!(names(&fx), vec!["gather"]);
}

#[test]
fn speaking_resets_the_reprompt_count() {
    let mut c = Call::answered();
    c.on_caller("call.gather.ended", json!({"status": "timeout"}));
    c.on_caller("call.gather.ended", json!({"status": "timeout"}));
    c.say("sorry i am here", 0.0, &[]);
    let fx = c.on_caller("call.gather.ended", json!({"status": "timeout"}));
    assert_eq!(names(&fx), vec!["gather_using_speak"], "a fresh re-prompt, not goodbye");
}

#[test]
fn a_caller_who_is_done_hears_goodbye() {
    let mut c = Call::answered();
    let fx = c.say("thats all thank you bye", 0.6, &[]);
    assert_eq!(names(&fx), vec!["gather_stop", "speak"]);
    let Action::Speak(s) = &actions(&fx)[1] else { panic!() };
    assert_eq!(s.payload.as_deref(), Some(c.s.settings.ivr.goodbye.as_str()));
    assert_eq!(names(&c.speak_ended(CALLER)), vec!["hangup"]);
}

#[test]
fn menu_digits_answer_or_transfer() {
    let mut c = Call::answered();
    let fx = c.press("1");
    assert_eq!(names(&fx), vec!["gather_using_speak"]);
    assert!(reply_prompt(&fx).starts_with("Your latest bill"));
    let fx = c.press("3");
    assert_eq!(dials(&fx)[0].to, "+18005550301");
    let mut c = Call::answered();
    let fx = c.press("7");
    assert_eq!(names(&fx), vec!["gather_using_speak"]);
}

#[test]
fn a_call_gone_answer_is_a_final_state_not_a_crash() {
    let mut c = Call::answered();
    let fx = c.s.handle(Input::CommandFailed {
        command_id: "conv-1-3".into(),
        action: "gather_using_speak".into(),
        role: Role::Caller,
        call_gone: true,
        error: "call has already ended (90018)".into(),
        at: c.t,
    });
    assert!(names(&fx).is_empty());
    assert!(matches!(events(&fx)[..], [DomainEvent::CommandFailed { call_gone: true, .. }]));
}

#[test]
fn a_failed_dial_moves_to_the_next_agent() {
    let mut c = Call::answered();
    let fx = c.press("0");
    let fx = c.s.handle(Input::CommandFailed {
        command_id: dials(&fx)[0].command_id.clone().unwrap(),
        action: "dial".into(),
        role: Role::Agent,
        call_gone: false,
        error: "Telnyx API server error 503 after 5 attempts".into(),
        at: c.t,
    });
    assert_eq!(dials(&fx)[0].to, "+18005550202");
}

#[test]
fn a_failed_goodbye_still_hangs_up() {
    let mut c = Call::answered();
    c.say("bye", 0.0, &[]);
    let fx = c.s.handle(Input::CommandFailed {
        command_id: "x".into(),
        action: "speak".into(),
        role: Role::Caller,
        call_gone: false,
        error: "invalid value".into(),
        at: c.t,
    });
    assert_eq!(names(&fx), vec!["hangup"]);
}

#[test]
fn a_session_survives_serialisation_mid_transfer() {
    let mut c = Call::answered();
    c.press("0");
    c.on_agent("v3:a1", 1, "call.initiated", json!({}));
    let json = serde_json::to_string(&c.s).unwrap();
    let restored: Session = serde_json::from_str(&json).unwrap();
    c.s = restored.with_settings(settings(TransferMode::Warm));
    let fx = c.on_agent("v3:a1", 1, "call.answered", json!({}));
    assert_eq!(names(&fx), vec!["speak"]);
    let ids: Vec<_> = actions(&fx).iter().map(|a| a.command_id().unwrap().to_string()).collect();
    assert!(ids[0].starts_with("conv-1-"));
}

#[test]
fn offsets_count_from_the_start_of_the_call() {
    let mut c = Call::answered();
    let fx =
        c.on_caller("call.transcription", json!({"transcription_data": {"transcript": "hello", "is_final": true}}));
    let Some(Effect::Record(r)) = fx.iter().find(|e| matches!(e, Effect::Record(r) if r.event.kind() == "utterance"))
    else {
        panic!()
    };
    assert_eq!(r.offset_ms, 1000);
    assert_eq!(r.conversation_id, "conv-1");
}

#[test]
fn events_of_unknown_legs_or_foreign_state_are_ignored() {
    let mut c = Call::answered();
    let fx = c.event("call.hangup", json!({"call_control_id": "v3:stranger", "client_state": "aGVsbG8="}));
    assert!(fx.is_empty());
}

#[test]
fn the_call_ends_in_the_record_only_once_every_utterance_is_scored() {
    let mut c = Call::answered();
    let fx = c.on_caller(
        "call.transcription",
        json!({"transcription_data": {"transcript": "thanks bye", "is_final": true, "transcription_track": "inbound"}}),
    );
    let Some(Effect::Score(req)) = fx.iter().find(|e| matches!(e, Effect::Score(_))) else { panic!("{fx:?}") };
    let seq = req.seq;
    let fx = c.on_caller("call.hangup", json!({"hangup_cause": "normal_clearing", "hangup_source": "caller"}));
    assert!(!events(&fx).iter().any(|e| e.kind() == "call_ended"), "a score is still due");
    assert!(c.s.is_ended());
    assert_eq!(c.s.unscored().len(), 1);
    let score = Score { score: 0.2, label: Label::Neutral, trackers: vec![], engine: "symbl".into() };
    let fx = c.s.handle(Input::Scored { seq, score, at: c.t });
    let kinds: Vec<_> = events(&fx).iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, vec!["scored", "call_ended"]);
    assert!(c.s.unscored().is_empty());
}

fn decisions(fx: &[Effect]) -> Vec<(DecisionSource, Decision)> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            DomainEvent::Decision { source, decision } => Some((source, decision)),
            _ => None,
        })
        .collect()
}

/// The one decision among `fx`.
fn one_decision(fx: &[Effect]) -> (DecisionSource, Decision) {
    let mut found = decisions(fx);
    assert_eq!(found.len(), 1, "{fx:?}");
    found.remove(0)
}

fn fail_every_agent(c: &mut Call) {
    for (attempt, leg) in [(1, "v3:a1"), (2, "v3:a2")] {
        c.on_agent(leg, attempt, "call.initiated", json!({}));
        c.on_agent(leg, attempt, "call.hangup", json!({"hangup_cause": "timeout"}));
    }
    assert_eq!(c.s.phase(), Phase::Ivr);
}

#[test]
fn the_decision_is_the_claimed_one_and_kept_once() {
    let mut c = Call::answered();
    let fx = c.say("get me a human", -0.4, &["asks_for_human"]);
    let (source, made) = one_decision(&fx);
    assert_eq!(source, DecisionSource::Policy);
    assert_eq!(c.s.decision(), Some(&made));
    assert_eq!(c.s.policy_state().decision.as_ref(), Some(&made), "one copy: the policy's claim");
    fail_every_agent(&mut c);
    // After the failed transfer the caller asks again, on the keypad: the new decision replaces the old.
    let fx = c.press("3");
    let (source, again) = one_decision(&fx);
    assert_eq!(source, DecisionSource::Menu);
    assert_eq!((again.reason, again.queue.as_str()), (Reason::MenuChoice, "sales"));
    assert_eq!(c.s.decision(), Some(&again));
    assert_eq!(c.s.policy_state().decision.as_ref(), Some(&again));
    // A session restored from storage keeps it.
    let json = serde_json::to_string(&c.s).unwrap();
    let restored: Session = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.decision(), Some(&again));
}

#[test]
fn the_policy_decides_only_while_the_ivr_has_the_caller() {
    let mut c = Call::answered();
    c.say("thats all thank you bye", 0.6, &[]);
    assert_eq!(c.s.phase(), Phase::Closing);
    // A late utterance while the IVR says goodbye moves the numbers but decides nothing …
    let fx = c.say("agent", -0.2, &["asks_for_human"]);
    assert!(decisions(&fx).is_empty());
    assert!(!c.s.policy_state().decided && c.s.decision().is_none());
    assert_eq!(c.s.policy_state().utterances, 2);
    // … so a supervisor can still transfer the call.
    let fx = c.s.request_transfer(ManualTransfer::default(), c.t).unwrap();
    assert_eq!(dials(&fx).len(), 1);
    assert_eq!(c.s.decision().map(|d| d.reason), Some(Reason::Manual));
}

#[test]
fn keys_are_routed_by_the_menu_in_either_case() {
    let mut s = SessionSettings::default();
    s.policy.operator_digit = "A".into();
    let mut c = Call::with(Arc::new(s));
    c.start();
    let fx = c.press("0");
    assert!(dials(&fx).is_empty(), "0 is not the operator key here");
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::Dtmf { choice: None, .. })));
    let fx = c.press("a");
    assert!(events(&fx).iter().any(|e| matches!(e, DomainEvent::Dtmf { choice: Some(x), .. } if x == "operator")));
    let (source, d) = one_decision(&fx);
    assert_eq!(source, DecisionSource::Menu);
    assert_eq!((d.reason, d.queue.as_str()), (Reason::Operator, "support"));
}

#[path = "agent_legs_tests.rs"]
mod agent_legs;

#[path = "waiting_tests.rs"]
mod waiting;
