//! The simulation driven directly, without HTTP: a tiny in-test "application"
//! reacts to webhooks at exact virtual times, so every assertion about order
//! and timing is exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, Dial};
use serde_json::{json, Value};

use super::world::{CommandError, Emitted, Executed, Now, World, WorldConfig};
use super::{LegState, PartyBehavior, PlaceCall, Script, TimingModel};

struct Sim {
    w: World,
    v: Duration,
    real: Instant,
    epoch: DateTime<Utc>,
    log: Vec<(f64, Emitted)>,
}

fn epoch() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

impl Sim {
    fn new(parties: &[(&str, PartyBehavior)]) -> Self {
        Self::scaled(parties, 1.0)
    }

    /// A sandbox whose clock runs `time_scale` times faster than real time.
    fn scaled(parties: &[(&str, PartyBehavior)], time_scale: f64) -> Self {
        let cfg = WorldConfig {
            timing: TimingModel::default(),
            connection_id: "1234567890123456789".into(),
            webhook_url: Arc::from("http://127.0.0.1:9/hook"),
            parties: parties.iter().map(|(n, b)| (n.to_string(), b.clone())).collect::<HashMap<_, _>>(),
            default_agent: PartyBehavior::default_agent(),
            epoch: epoch(),
            time_scale,
            recording_base: "http://127.0.0.1:9/sandbox/v1/recordings".into(),
        };
        Self { w: World::new(cfg), v: Duration::ZERO, real: Instant::now(), epoch: epoch(), log: Vec::new() }
    }

    fn now(&self) -> Now {
        Now { v: self.v, real: self.real }
    }

    fn drain(&mut self) {
        for e in self.w.take_outbox() {
            let t = DateTime::parse_from_rfc3339(&e.occurred_at).unwrap().with_timezone(&Utc) - self.epoch;
            self.log.push((t.num_microseconds().unwrap() as f64 / 1e6, e));
        }
    }

    /// Advances virtual time to `secs`.
    fn to(&mut self, secs: f64) {
        self.v = Duration::from_secs_f64(secs);
        let now = self.now();
        self.w.advance(now);
        self.drain();
    }

    /// Advances in 10 ms steps until an event matches (or `limit` seconds).
    fn until(&mut self, ccid: &str, event_type: &str, limit: f64) -> (f64, Value) {
        let start = self.log.len();
        loop {
            if let Some((t, e)) =
                self.log[start..].iter().find(|(_, e)| &*e.call_control_id == ccid && e.event_type == event_type)
            {
                return (*t, e.payload.clone());
            }
            assert!(self.v.as_secs_f64() < limit, "no {event_type} for {ccid} by {limit}s: {:?}", self.types(ccid));
            let next = self.v + Duration::from_millis(10);
            self.to(next.as_secs_f64());
        }
    }

    fn place(&mut self, script: &str) -> String {
        let now = self.now();
        let info = self.w.place_inbound(now, PlaceCall::new(Script::parse(script).unwrap()));
        self.drain();
        info.call_control_id
    }

    fn cmd(&mut self, ccid: &str, name: &str, body: Value) -> Result<Executed, CommandError> {
        let action = Action::parse(name, body).unwrap();
        let now = self.now();
        let r = self.w.command(now, ccid, action);
        self.drain();
        r
    }

    fn ok(&mut self, ccid: &str, name: &str, body: Value) {
        assert_eq!(self.cmd(ccid, name, body), Ok(Executed::Done), "{name}");
    }

    fn types(&self, ccid: &str) -> Vec<&'static str> {
        self.log.iter().filter(|(_, e)| &*e.call_control_id == ccid).map(|(_, e)| e.event_type).collect()
    }

    fn events(&self, ccid: &str, event_type: &str) -> Vec<(f64, Value)> {
        self.log
            .iter()
            .filter(|(_, e)| &*e.call_control_id == ccid && e.event_type == event_type)
            .map(|(t, e)| (*t, e.payload.clone()))
            .collect()
    }

    fn transcripts(&self, ccid: &str) -> Vec<(f64, String, bool, String)> {
        self.events(ccid, "call.transcription")
            .into_iter()
            .map(|(t, p)| {
                let d = &p["transcription_data"];
                (
                    t,
                    d["transcript"].as_str().unwrap().to_string(),
                    d["is_final"].as_bool().unwrap(),
                    d["transcription_track"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn state(&self, ccid: &str) -> LegState {
        self.w.status(ccid).unwrap().state
    }

    /// The other legs (transfer/dial legs) of the simulation, in creation order.
    fn legs_other_than(&self, ccid: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for (_, e) in &self.log {
            let c = e.call_control_id.to_string();
            if c != ccid && !seen.contains(&c) {
                seen.push(c);
            }
        }
        seen
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.011
}

#[test]
fn silent_ivr_caller_listens_five_seconds_then_speaks_and_hangs_up() {
    let mut s = Sim::new(&[]);
    let a = s.place("say hello there\nhangup");
    assert_eq!(s.types(&a), ["call.initiated"]);
    let init = &s.events(&a, "call.initiated")[0].1;
    assert_eq!(init["direction"], "incoming");
    assert_eq!(init["state"], "parked");
    assert_eq!(init["from"], super::DEFAULT_CALLER);
    assert_eq!(s.state(&a), LegState::Parked);
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "transcription_start", json!({"language": "en", "interim_results": true}));
    let (t, _) = s.until(&a, "call.hangup", 20.0);
    // 5 s listening, 0.8 s speaking, 4 s waiting for a reply.
    assert!(close(t, 9.8), "{t}");
    let tr = s.transcripts(&a);
    assert_eq!(tr.len(), 1, "a two-word line has no interim: {tr:?}");
    assert!(close(tr[0].0, 6.2) && tr[0].1 == "hello there" && tr[0].2 && tr[0].3 == "inbound", "{tr:?}");
    let h = &s.events(&a, "call.hangup")[0].1;
    assert_eq!((h["hangup_cause"].as_str(), h["hangup_source"].as_str()), (Some("normal_clearing"), Some("caller")));
    assert_eq!(s.types(&a), ["call.initiated", "call.answered", "call.transcription", "call.hangup"]);
    assert_eq!(s.state(&a), LegState::HungUp);
}

#[test]
fn transcription_started_with_the_answer_hears_the_first_words_and_follows_the_engine() {
    // Finals only: Telnyx's engine has no interim results, nor has Google unless asked.
    for (config, interims) in [
        (json!({"transcription_engine": "Telnyx", "transcription_engine_config": {"language": "en"}}), false),
        (json!({"transcription_engine": "Google"}), false),
        (json!({"transcription_engine_config": {"interim_results": true}}), true),
        (
            json!({"transcription_engine": "Deepgram", "transcription_engine_config": {
                "transcription_engine": "deepgram/nova-3", "transcription_model": "deepgram/nova-3",
                "interim_results": true}}),
            true,
        ),
        (
            json!({"transcription_engine": "Azure", "transcription_engine_config": {
                "transcription_engine": "Azure", "region": "eastus", "interim_results": true}}),
            false,
        ),
    ] {
        let mut s = Sim::new(&[]);
        let a = s.place("say i would like to check my balance please\nhangup");
        s.ok(&a, "answer", json!({"transcription": true, "transcription_config": config}));
        s.to(12.0);
        let tr = s.transcripts(&a);
        assert_eq!(tr.iter().filter(|t| t.2).count(), 1, "{config}: the first line is heard: {tr:?}");
        assert_eq!(tr.iter().any(|t| !t.2), interims, "{config}: {tr:?}");
    }
    // Without `transcription: true` the config alone starts nothing.
    let mut s = Sim::new(&[]);
    let a = s.place("say i would like to check my balance please\nhangup");
    s.ok(&a, "answer", json!({"transcription_config": {"transcription_engine": "Google"}}));
    s.to(12.0);
    assert!(s.transcripts(&a).is_empty());
}

#[test]
fn caller_waits_for_the_first_prompt_then_interims_then_final() {
    let mut s = Sim::new(&[]);
    let a = s.place("say i would like to check my balance please\nhangup");
    s.ok(&a, "answer", json!({}));
    s.ok(
        &a,
        "transcription_start",
        json!({"transcription_engine": "Google", "transcription_tracks": "both",
               "transcription_engine_config": {"language": "en", "interim_results": true}}),
    );
    // Five words: 2 s of IVR speech.
    s.ok(&a, "speak", json!({"payload": "welcome how can i help", "voice": "female"}));
    let (t_end, p) = s.until(&a, "call.speak.ended", 5.0);
    assert!(close(t_end, 2.0), "{t_end}");
    assert_eq!(p["status"], "completed");
    s.to(8.0);
    let tr = s.transcripts(&a);
    let inbound: Vec<_> = tr.iter().filter(|t| t.3 == "inbound").collect();
    // 8 words from t=2.5 (the prompt ended at 2.0, then the 0.5 s turn gap):
    // interims after words 2, 4, 6; the final 0.4 s after the last word.
    let expect = [
        (3.3, "i would", false),
        (4.1, "i would like to", false),
        (4.9, "i would like to check my", false),
        (6.1, "i would like to check my balance please", true),
    ];
    assert_eq!(inbound.len(), expect.len(), "{inbound:?}");
    for (got, want) in inbound.iter().zip(expect) {
        assert!(close(got.0, want.0) && got.1 == want.1 && got.2 == want.2, "{got:?} vs {want:?}");
    }
    let outbound: Vec<_> = tr.iter().filter(|t| t.3 == "outbound").map(|t| (t.1.as_str(), t.2)).collect();
    assert_eq!(
        outbound,
        [("welcome how", false), ("welcome how can i", false), ("welcome how can i help", true)],
        "the IVR's own speech is the outbound track"
    );
    let conf = |t: &str| crate::timing::confidence(t);
    let finals = s.events(&a, "call.transcription");
    let last = finals.iter().find(|(_, p)| p["transcription_data"]["is_final"] == true).unwrap();
    assert!(last.1["transcription_data"]["confidence"].as_f64().unwrap() >= 0.8);
    assert_eq!(last.1["transcription_data"]["confidence"].as_f64().unwrap(), conf("welcome how can i help"));
}

#[test]
fn speech_before_transcription_start_is_not_transcribed() {
    let mut s = Sim::new(&[]);
    let a = s.place("say first line here\nsay second line here\nhangup");
    s.ok(&a, "answer", json!({}));
    // Caller speaks 5.0–6.2; transcription starts in the middle of it.
    s.to(5.5);
    s.ok(&a, "transcription_start", json!({}));
    s.until(&a, "call.hangup", 30.0);
    let texts: Vec<_> = s.transcripts(&a).into_iter().filter(|t| t.2).map(|t| t.1).collect();
    assert_eq!(texts, ["second line here"]);
}

#[test]
fn speaks_queue_and_play_one_after_another() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "speak", json!({"payload": "one two three four five", "voice": "male"}));
    s.ok(&a, "speak", json!({"payload": "six", "voice": "male"}));
    s.to(5.0);
    let times: Vec<_> = s
        .log
        .iter()
        .filter(|(_, e)| e.event_type.starts_with("call.speak"))
        .map(|(t, e)| (e.event_type, (t * 10.0).round() / 10.0))
        .collect();
    assert_eq!(
        times,
        [
            ("call.speak.started", 0.0),
            ("call.speak.ended", 2.0),
            ("call.speak.started", 2.0),
            ("call.speak.ended", 2.6)
        ]
    );
}

#[test]
fn gather_using_speak_with_press_stops_the_prompt() {
    let mut s = Sim::new(&[]);
    let a = s.place("press 2\nhangup");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "speak", json!({"payload": "welcome", "voice": "female"}));
    s.until(&a, "call.speak.ended", 2.0);
    let menu = "press one for billing two for technical support three for sales or zero for an operator";
    s.ok(
        &a,
        "gather_using_speak",
        json!({"payload": menu, "voice": "female", "valid_digits": "0123", "maximum_digits": 1}),
    );
    let (t, g) = s.until(&a, "call.gather.ended", 10.0);
    assert_eq!((g["digits"].as_str(), g["status"].as_str()), (Some("2"), Some("valid")));
    // The welcome ended at 0.6 s and the menu started; after the 0.5 s turn gap
    // the caller sees the gather and presses 1 s later, long before the menu's end.
    assert!(close(t, 2.1), "{t}");
    let d = s.events(&a, "call.dtmf.received");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1["digit"], "2");
    assert_eq!(
        s.types(&a),
        [
            "call.initiated",
            "call.answered",
            "call.speak.started",
            "call.speak.ended",
            "call.dtmf.received",
            "call.gather.ended"
        ]
    );
    s.until(&a, "call.hangup", 10.0);
}

#[test]
fn gather_retries_after_invalid_input_then_ends_invalid() {
    let mut s = Sim::new(&[]);
    let a = s.place("press 9\npress 8\nhangup");
    s.ok(&a, "answer", json!({}));
    s.ok(
        &a,
        "gather_using_speak",
        json!({"payload": "press one or two", "voice": "female", "valid_digits": "12", "maximum_digits": 1,
               "maximum_tries": 2, "invalid_payload": "sorry that is not a valid choice"}),
    );
    let (_, g) = s.until(&a, "call.gather.ended", 30.0);
    assert_eq!((g["digits"].as_str(), g["status"].as_str()), (Some("8"), Some("invalid")));
    assert_eq!(s.events(&a, "call.dtmf.received").len(), 2);
}

#[test]
fn gather_times_out_without_input() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "gather", json!({"initial_timeout_millis": 2000}));
    let (t, g) = s.until(&a, "call.gather.ended", 10.0);
    assert!(close(t, 2.0), "{t}");
    assert_eq!((g["digits"].as_str(), g["status"].as_str()), (Some(""), Some("timeout")));
    s.ok(&a, "gather", json!({}));
    s.ok(&a, "gather_stop", json!({}));
    let ended = s.events(&a, "call.gather.ended");
    assert_eq!(ended.last().unwrap().1["status"], "cancelled");
}

#[test]
fn transfer_to_an_answering_agent_bridges_and_they_take_turns() {
    let mut s = Sim::new(&[]);
    let a = s.place("say i want to talk to a real person\npause 5\nsay my router keeps dropping\nhangup");
    s.ok(&a, "answer", json!({"client_state": "YQ=="}));
    s.ok(&a, "transcription_start", json!({"transcription_tracks": "both"}));
    s.ok(&a, "speak", json!({"payload": "how can i help", "voice": "female"}));
    let (t_final, _) = loop {
        let (t, p) = s.until(&a, "call.transcription", 20.0);
        if p["transcription_data"]["is_final"] == true && p["transcription_data"]["transcription_track"] == "inbound" {
            break (t, p);
        }
    };
    assert!(close(t_final, 1.6 + 0.5 + 3.2 + 0.4), "{t_final}");
    s.ok(&a, "transfer", json!({"to": "+15550002000", "target_leg_client_state": "Yg==", "timeout_secs": 20}));
    let b = s.legs_other_than(&a)[0].clone();
    let init = &s.events(&b, "call.initiated")[0].1;
    assert_eq!(init["direction"], "outgoing");
    assert_eq!(init["state"], "bridging");
    assert_eq!(init["client_state"], "Yg==");
    assert_eq!(init["call_session_id"], s.events(&a, "call.initiated")[0].1["call_session_id"]);
    assert_eq!(s.state(&b), LegState::Ringing);
    let (t_bridge, _) = s.until(&b, "call.answered", 20.0);
    assert!(close(t_bridge, t_final + 3.0), "default agent rings 3 s: {t_bridge}");
    // One session: A bridged, B bridged, B answered, in that order.
    let order: Vec<_> = s
        .log
        .iter()
        .filter(|(t, _)| close(*t, t_bridge))
        .map(|(_, e)| (e.call_control_id.to_string(), e.event_type))
        .collect();
    assert_eq!(&order[..3], [(a.clone(), "call.bridged"), (b.clone(), "call.bridged"), (b.clone(), "call.answered")]);
    assert_eq!(s.events(&a, "call.bridged")[0].1["client_state"], "YQ==");
    assert_eq!(s.events(&b, "call.bridged")[0].1["client_state"], "Yg==");
    assert_eq!(s.state(&a), LegState::Bridged);
    s.until(&a, "call.hangup", 60.0);
    s.to(s.v.as_secs_f64() + 1.0);
    // The agent spoke first; the caller answered after; both transcribed on A.
    let finals: Vec<_> = s.transcripts(&a).into_iter().filter(|t| t.2).map(|t| (t.1, t.3)).collect();
    let agent_first = finals.iter().position(|(t, _)| t.starts_with("hi this is alex")).unwrap();
    let caller_next = finals.iter().position(|(t, _)| t == "my router keeps dropping").unwrap();
    assert!(agent_first < caller_next, "{finals:?}");
    assert_eq!(finals[agent_first].1, "outbound");
    assert_eq!(finals[caller_next].1, "inbound");
    // The caller hung up: both legs end, B follows A.
    let ha = &s.events(&a, "call.hangup")[0].1;
    let hb = &s.events(&b, "call.hangup")[0].1;
    assert_eq!((ha["hangup_source"].as_str(), hb["hangup_cause"].as_str()), (Some("caller"), Some("normal_clearing")));
    assert_eq!(hb["hangup_source"], "caller", "for B, the hangup came from its calling side");
    // No speech overlapped: every party line started after the other side's ended.
    assert_eq!(s.state(&b), LegState::HungUp);
}

#[test]
fn failed_transfers_hang_up_only_the_b_leg() {
    let mut s = Sim::new(&[
        ("+1refuse", PartyBehavior::Refuse),
        ("+1busy", PartyBehavior::Busy),
        ("+1none", PartyBehavior::NoAnswer),
    ]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    let cases = [("+1refuse", "call_rejected", 3.0), ("+1busy", "user_busy", 1.0), ("+1none", "timeout", 5.0)];
    for (i, (to, cause, ring)) in cases.into_iter().enumerate() {
        let t0 = s.v.as_secs_f64();
        s.ok(&a, "transfer", json!({"to": to, "timeout_secs": 5}));
        let b = s.legs_other_than(&a)[i].clone();
        let (t, h) = s.until(&b, "call.hangup", 100.0);
        assert_eq!(h["hangup_cause"], cause);
        assert_eq!(h["hangup_source"], "callee");
        assert!(close(t - t0, ring), "{to}: {}", t - t0);
        assert_eq!(s.types(&b), ["call.initiated", "call.hangup"]);
        assert_eq!(s.state(&a), LegState::Answered, "A stays up");
    }
    s.ok(&a, "speak", json!({"payload": "sorry nobody is available", "voice": "female"}));
    s.ok(&a, "hangup", json!({}));
    assert_eq!(s.events(&a, "call.hangup")[0].1["hangup_source"], "callee");
}

#[test]
fn caller_hanging_up_during_a_transfer_cancels_the_b_leg() {
    let mut s = Sim::new(&[("+1slow", PartyBehavior::Answer { after_secs: 10.0, script: None })]);
    let a = s.place("pause 1\nhangup");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "transfer", json!({"to": "+1slow"}));
    let b = s.legs_other_than(&a)[0].clone();
    s.until(&a, "call.hangup", 20.0);
    let hb = &s.events(&b, "call.hangup")[0].1;
    assert_eq!(hb["hangup_cause"], "originator_cancel");
    s.to(30.0);
    assert!(s.events(&b, "call.answered").is_empty());
}

#[test]
fn unanswered_inbound_call_gives_up_after_thirty_seconds() {
    let mut s = Sim::new(&[]);
    let a = s.place("say hello");
    let (t, h) = s.until(&a, "call.hangup", 40.0);
    assert!(close(t, 30.0), "{t}");
    assert_eq!((h["hangup_cause"].as_str(), h["hangup_source"].as_str()), (Some("originator_cancel"), Some("caller")));
    assert_eq!(s.cmd(&a, "answer", json!({})), Err(CommandError::CallEnded));
}

#[test]
fn commands_are_refused_where_telnyx_refuses_them() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    for name in ["speak", "gather_using_speak"] {
        assert_eq!(s.cmd(&a, name, json!({"payload": "x", "voice": "male"})), Err(CommandError::NotAnswered));
    }
    assert_eq!(s.cmd(&a, "transfer", json!({"to": "+1"})), Err(CommandError::NotAnswered));
    assert_eq!(s.cmd(&a, "transcription_start", json!({})), Err(CommandError::NotAnswered));
    assert_eq!(s.cmd("v3:nope", "hangup", json!({})), Err(CommandError::NotFound));
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "answer", json!({}));
    assert_eq!(s.types(&a).iter().filter(|t| **t == "call.answered").count(), 1, "answering twice is a no-op");
    s.ok(&a, "hangup", json!({}));
    for name in ["hangup", "answer", "gather_stop", "client_state_update"] {
        let body = if name == "client_state_update" { json!({"client_state": "YQ=="}) } else { json!({}) };
        assert_eq!(s.cmd(&a, name, body), Err(CommandError::CallEnded), "{name}");
    }
}

#[test]
fn a_repeated_command_id_is_not_executed_twice() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    s.ok(&a, "answer", json!({"command_id": "c1"}));
    let speak = json!({"payload": "hi", "voice": "male", "command_id": "c2"});
    assert_eq!(s.cmd(&a, "speak", speak.clone()), Ok(Executed::Done));
    assert_eq!(s.cmd(&a, "speak", speak), Ok(Executed::Duplicate));
    s.to(3.0);
    assert_eq!(s.events(&a, "call.speak.started").len(), 1);
    // A retried hangup after the call ended still answers ok.
    s.ok(&a, "hangup", json!({"command_id": "c3"}));
    assert_eq!(s.cmd(&a, "hangup", json!({"command_id": "c3"})), Ok(Executed::Duplicate));
    // Dial: the same command_id returns the same call.
    let d: Dial =
        serde_json::from_value(json!({"connection_id": "1", "from": "+1", "to": "+2", "command_id": "d1"})).unwrap();
    let now = s.now();
    assert!(!s.w.is_repeat_dial("d1", now));
    let first = s.w.dial(now, d.clone()).unwrap();
    assert!(s.w.is_repeat_dial("d1", now), "the command log marks the repeat");
    let second = s.w.dial(now, d).unwrap();
    assert_eq!(first.call_control_id, second.call_control_id);
    s.drain();
    assert_eq!(s.events(&first.call_control_id, "call.initiated").len(), 1);
}

#[test]
fn a_faster_clock_keeps_real_start_times_and_virtual_offsets_and_linked_legs_share_them() {
    let mut s = Sim::scaled(&[("+1agent", PartyBehavior::Answer { after_secs: 2.0, script: None })], 10.0);
    // An hour of virtual time passes (six real minutes) before the call.
    s.to(3600.0);
    let a = s.place("pause 60\nhangup\n");
    let initiated = s.events(&a, "call.initiated")[0].clone();
    assert!(close(initiated.0, 360.0), "the call starts at its real time: {}", initiated.0);
    assert_eq!(initiated.1["start_time"], "2024-01-01T00:06:00.000000Z");
    s.to(3605.0);
    s.ok(&a, "answer", json!({}));
    let (t, _) = s.events(&a, "call.answered")[0];
    assert!(close(t, 365.0), "5 virtual seconds into the call: {t}");
    // The agent's leg, linked to the caller's, shares its session and times.
    let dial: Dial =
        serde_json::from_value(json!({"connection_id": "1", "from": "+1ivr", "to": "+1agent", "link_to": a})).unwrap();
    let now = s.now();
    let c = s.w.dial(now, dial.clone()).unwrap();
    assert_eq!(c.call_session_id, s.w.status(&a).unwrap().call_session_id);
    s.drain();
    let (t, _) = s.until(&c.call_control_id, "call.answered", 3650.0);
    assert!(close(t, 367.0), "{t}");
    let unlinked = Dial { link_to: Some("v3:nobody".into()), command_id: None, ..dial };
    let now = s.now();
    assert!(matches!(s.w.dial(now, unlinked), Err(CommandError::Invalid { pointer, .. }) if pointer == "/link_to"));
}

#[test]
fn dial_answers_after_two_seconds_and_bridge_parks_after_unbridge() {
    let mut s = Sim::new(&[
        ("+1cust", PartyBehavior::Answer { after_secs: 2.0, script: Some(Script::default()) }),
        ("+1quiet", PartyBehavior::Answer { after_secs: 1.0, script: Some(Script::default()) }),
    ]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    let dial = |to: &str| -> Dial {
        serde_json::from_value(json!({"connection_id": "1", "from": "+1ivr", "to": to, "client_state": "ZA=="}))
            .unwrap()
    };
    let now = s.now();
    let c = s.w.dial(now, dial("+1cust")).unwrap().call_control_id;
    s.drain();
    assert_eq!(s.events(&c, "call.initiated")[0].1["client_state"], "ZA==");
    let (t, _) = s.until(&c, "call.answered", 5.0);
    assert!(close(t, 2.0), "{t}");
    s.ok(&a, "bridge", json!({"call_control_id": c, "park_after_unbridge": "self"}));
    assert_eq!(s.events(&a, "call.bridged").len(), 1);
    assert_eq!(s.events(&c, "call.bridged").len(), 1);
    assert_eq!(
        s.cmd(&a, "bridge", json!({"call_control_id": "v3:none"})).unwrap_err(),
        CommandError::Invalid {
            pointer: "/call_control_id".into(),
            detail: "no call with this call_control_id".into()
        }
    );
    s.ok(&c, "hangup", json!({}));
    assert_eq!(s.state(&a), LegState::Answered, "A parks after the unbridge");
    // Without park_after_unbridge the other leg follows.
    let now = s.now();
    let q = s.w.dial(now, dial("+1quiet")).unwrap().call_control_id;
    s.drain();
    s.until(&q, "call.answered", 5.0);
    s.ok(&q, "bridge", json!({"call_control_id": a}));
    s.ok(&q, "hangup", json!({}));
    assert_eq!(s.state(&a), LegState::HungUp);
    let h = &s.events(&a, "call.hangup")[0].1;
    assert_eq!((h["hangup_cause"].as_str(), h["hangup_source"].as_str()), (Some("normal_clearing"), Some("callee")));
}

#[test]
fn hangup_ends_media_first_then_saves_the_recording() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "record_start", json!({"format": "mp3", "channels": "single"}));
    s.ok(&a, "playback_start", json!({"audio_url": "http://x/hold.mp3", "loop": "infinity"}));
    s.to(60.0);
    assert!(s.events(&a, "call.playback.ended").is_empty(), "infinity plays on");
    s.ok(&a, "speak", json!({"payload": "a rather long sentence that will not finish", "voice": "male"}));
    s.to(61.0);
    s.ok(&a, "hangup", json!({}));
    let tail: Vec<_> = s.types(&a).into_iter().skip(2).collect();
    assert_eq!(
        tail,
        [
            "call.playback.started",
            "call.speak.started",
            "call.speak.ended",
            "call.playback.ended",
            "call.hangup",
            "call.recording.saved"
        ]
    );
    assert_eq!(s.events(&a, "call.speak.ended")[0].1["status"], "call_hangup");
    assert_eq!(s.events(&a, "call.playback.ended")[0].1["status"], "call_hangup");
    let rec = &s.events(&a, "call.recording.saved")[0].1;
    assert!(rec["recording_urls"]["mp3"].as_str().unwrap().ends_with(".mp3"));
    assert!(rec["recording_urls"]["wav"].as_str().unwrap().ends_with(".wav"));
    assert_eq!(rec["channels"], "single");
    // Telnyx's shape: the leg and session, not the call_control_id (a recording outlives its call).
    let keys: Vec<&str> = rec.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "call_leg_id",
            "call_session_id",
            "channels",
            "client_state",
            "connection_id",
            "recording_ended_at",
            "recording_started_at",
            "recording_urls"
        ]
    );
    // The hangup reports the call's quality: 20 ms packets for the minute it was up.
    let q = &s.events(&a, "call.hangup")[0].1["call_quality_stats"];
    assert_eq!(q["inbound"]["packet_count"], "3050", "{q}");
    assert_eq!(q["outbound"]["packet_count"], "3050");
    assert!(s.events(&a, "call.hangup")[0].1.get("end_time").is_none(), "not a field of call.hangup");
}

#[test]
fn webhooks_carry_the_optional_fields_telnyx_sends() {
    let mut s = Sim::new(&[("+1agent", PartyBehavior::Answer { after_secs: 1.0, script: Some(Script::default()) })]);
    let a = s.place("");
    let init = &s.events(&a, "call.initiated")[0].1;
    assert_eq!(init["caller_id_name"], super::DEFAULT_CALLER, "the number when the network has no name");
    s.ok(&a, "answer", json!({}));
    assert_eq!(s.events(&a, "call.answered")[0].1["state"], "answered");
    let headers = json!([{"name": "X-Case", "value": "42"}]);
    let uui = json!([{"name": "User-to-User", "value": "case=42"}]);
    s.ok(&a, "transfer", json!({"to": "+1agent", "custom_headers": headers, "sip_headers": uui}));
    let b = s.legs_other_than(&a).pop().expect("the transfer leg");
    s.to(3.0);
    for event in ["call.initiated", "call.answered"] {
        let p = &s.events(&b, event)[0].1;
        assert_eq!(
            (&p["custom_headers"], &p["sip_headers"]),
            (&headers, &uui),
            "{event} echoes the transfer's headers"
        );
    }
    assert!(s.events(&a, "call.answered")[0].1.get("custom_headers").is_none(), "only on the leg they were sent on");
    s.ok(&b, "playback_start", json!({"media_name": "hold"}));
    assert_eq!(s.events(&b, "call.playback.started")[0].1["media_name"], "hold");
    s.ok(&a, "hangup", json!({}));
    let never = s.place("");
    s.ok(&never, "hangup", json!({}));
    assert!(s.events(&never, "call.hangup")[0].1.get("call_quality_stats").is_none(), "no stats for a call never up");
}

#[test]
fn playback_loops_and_stops() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "playback_start", json!({"audio_url": "http://x/a.mp3", "loop": 2}));
    let (t, p) = s.until(&a, "call.playback.ended", 20.0);
    assert!(close(t, 10.0), "{t}");
    assert_eq!(p["status"], "completed");
    s.ok(&a, "playback_start", json!({"media_name": "hold", "loop": "infinity"}));
    s.ok(&a, "playback_stop", json!({}));
    assert_eq!(s.events(&a, "call.playback.ended").last().unwrap().1["status"], "cancelled");
    s.ok(&a, "streaming_start", json!({"stream_url": "wss://x/stream"}));
    s.ok(&a, "streaming_stop", json!({}));
    assert_eq!(s.events(&a, "streaming.started").len(), 1);
    assert_eq!(s.events(&a, "streaming.stopped").len(), 1);
}

#[test]
fn client_state_applies_to_later_webhooks() {
    let mut s = Sim::new(&[]);
    let a = s.place("");
    assert_eq!(s.events(&a, "call.initiated")[0].1["client_state"], Value::Null);
    s.ok(&a, "answer", json!({"client_state": "b25l"}));
    assert_eq!(s.events(&a, "call.answered")[0].1["client_state"], "b25l");
    assert_eq!(s.cmd(&a, "client_state_update", json!({"client_state": "dHdv"})), Ok(Executed::Done));
    s.ok(&a, "speak", json!({"payload": "hi", "voice": "male"}));
    assert_eq!(s.events(&a, "call.speak.started")[0].1["client_state"], "dHdv");
}

#[test]
fn live_calls_take_new_steps() {
    let mut s = Sim::new(&[]);
    let now = s.now();
    let mut call = PlaceCall::new(Script::default());
    call.live = true;
    let a = s.w.place_inbound(now, call).call_control_id;
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "transcription_start", json!({}));
    s.to(10.0);
    let steps = Script::parse("say are you there").unwrap().steps;
    let now = s.now();
    s.w.append_steps(now, &a, steps).unwrap();
    s.to(12.0);
    let finals: Vec<_> = s.transcripts(&a).into_iter().filter(|t| t.2).map(|t| t.1).collect();
    assert_eq!(finals, ["are you there"]);
    let other = s.place("");
    let now = s.now();
    assert!(s.w.append_steps(now, &other, vec![]).is_err(), "only live calls take steps");
}

#[test]
fn ringback_ends_the_wait_so_a_caller_can_hang_up_during_the_transfer() {
    let mut s = Sim::new(&[]);
    let a = s.place("say i need a real person right now\npause 0.5\nhangup");
    s.ok(&a, "answer", json!({}));
    s.ok(&a, "transcription_start", json!({}));
    loop {
        let (_, p) = s.until(&a, "call.transcription", 20.0);
        if p["transcription_data"]["is_final"] == true {
            break;
        }
    }
    let t0 = s.v.as_secs_f64();
    s.ok(&a, "transfer", json!({"to": "+15550002000"}));
    let b = s.legs_other_than(&a)[0].clone();
    let (t, h) = s.until(&a, "call.hangup", 20.0);
    // Ringback ends the reply wait: 0.5 s turn gap + 0.5 s pause, inside the 3 s ring.
    assert!(close(t - t0, 1.0), "{}", t - t0);
    assert_eq!(h["hangup_source"], "caller");
    assert_eq!(s.types(&b), ["call.initiated", "call.hangup"]);
    assert_eq!(s.events(&b, "call.hangup")[0].1["hangup_cause"], "originator_cancel");
}

/// The bundled example callers, played against a tiny keyword IVR: greeting,
/// DTMF menu (1 billing, 2 support, 3 sales, 0 operator), transcription, and
/// a transfer on "person"/"ridiculous" (support) or "upgrade" (sales). This
/// checks the scripts' mechanics (each line reaches the IVR as one final
/// transcript, presses land in the menu, hang-ups happen where intended), not
/// the product's escalation policy.
mod examples {
    use super::*;

    const EXAMPLES: &[(&str, &str)] = &[
        ("calm", include_str!("../../../examples/calm.ivrx")),
        ("frustrated", include_str!("../../../examples/frustrated.ivrx")),
        ("asks_for_human", include_str!("../../../examples/asks_for_human.ivrx")),
        ("dtmf", include_str!("../../../examples/dtmf.ivrx")),
        ("hangs_up_during_transfer", include_str!("../../../examples/hangs_up_during_transfer.ivrx")),
        ("interested_buyer", include_str!("../../../examples/interested_buyer.ivrx")),
    ];

    /// (queue, trigger) where trigger is `Some(n)` for the n-th utterance or `None` for DTMF.
    type Expect = Option<(String, Option<usize>)>;

    fn parse_expect(v: &str) -> Expect {
        let words: Vec<&str> = v.split_whitespace().collect();
        match words.as_slice() {
            ["no-transfer"] => None,
            ["transfer", queue, "at", n] => Some((queue.to_string(), Some(n.parse().expect("n")))),
            ["transfer", queue, "by", "dtmf"] => Some((queue.to_string(), None)),
            _ => panic!("bad expect directive {v:?}"),
        }
    }

    fn queue_number(queue: &str) -> &'static str {
        match queue {
            "billing" => "+15550001001",
            "support" => "+15550001002",
            "sales" => "+15550001003",
            _ => panic!("unknown queue {queue}"),
        }
    }

    #[test]
    fn examples_are_well_formed() {
        for (name, text) in EXAMPLES {
            let first = text.lines().next().unwrap();
            assert!(first.starts_with("# ") && !first.contains(':'), "{name}: first line describes the caller");
            let script = Script::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expects: Vec<_> = script.directives_named("expect").collect();
            assert_eq!(expects.len(), 1, "{name}");
            if let Some((_, Some(n))) = parse_expect(&expects[0].value) {
                assert!((1..=script.utterances().count()).contains(&n), "{name}: at {n}");
            }
            for u in script.utterances() {
                assert!(
                    u.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == ' ' || c == '\''),
                    "{name}: {u:?}"
                );
            }
        }
    }

    #[test]
    fn examples_play_out_against_a_keyword_ivr() {
        for (name, text) in EXAMPLES {
            let script = Script::parse(text).unwrap();
            let expect = parse_expect(script.directive("expect").unwrap());
            let mut s = Sim::new(&[]);
            let a = s.place(text);
            let (mut seen, mut finals, mut decided): (usize, usize, Option<(String, Option<usize>)>) = (0, 0, None);
            while s.state(&a) != LegState::HungUp {
                assert!(s.v < Duration::from_secs(600), "{name}: the call never ended");
                let next = s.v + Duration::from_millis(10);
                s.to(next.as_secs_f64());
                let new: Vec<_> = s.log[seen..].iter().map(|(_, e)| e.clone()).collect();
                seen = s.log.len();
                for e in new.into_iter().filter(|e| *e.call_control_id == *a) {
                    let p = &e.payload;
                    let mut transfer_to = None;
                    match e.event_type {
                        "call.initiated" => {
                            s.ok(&a, "answer", json!({}));
                            s.ok(&a, "transcription_start", json!({}));
                            s.ok(&a, "speak", json!({"payload": "thanks for calling ivrx", "voice": "female"}));
                            s.ok(&a, "gather_using_speak", json!({"voice": "female", "valid_digits": "0123", "maximum_digits": 1,
                                "payload": "press 1 for billing 2 for technical support 3 for sales or 0 for an operator"}));
                        }
                        "call.gather.ended" if p["status"] == "valid" && decided.is_none() => {
                            let queue = match p["digits"].as_str().unwrap() {
                                "1" => "billing",
                                "3" => "sales",
                                _ => "support",
                            };
                            transfer_to = Some((queue.to_string(), None));
                        }
                        "call.transcription" if p["transcription_data"]["is_final"] == true => {
                            finals += 1;
                            let t = p["transcription_data"]["transcript"].as_str().unwrap();
                            if decided.is_none() {
                                if t.contains("person") || t.contains("ridiculous") {
                                    transfer_to = Some(("support".into(), Some(finals)));
                                } else if t.contains("upgrade") {
                                    transfer_to = Some(("sales".into(), Some(finals)));
                                }
                            }
                        }
                        _ => {}
                    }
                    if let Some(d) = transfer_to {
                        s.ok(&a, "speak", json!({"payload": "connecting you now", "voice": "female"}));
                        s.ok(&a, "transfer", json!({"to": queue_number(&d.0)}));
                        decided = Some(d);
                    }
                }
            }
            assert_eq!(decided, expect, "{name}");
            assert_eq!(finals, script.utterances().count(), "{name}: every line is one final transcript");
            if *name == "hangs_up_during_transfer" {
                let b = s.legs_other_than(&a)[0].clone();
                assert_eq!(s.types(&b), ["call.initiated", "call.hangup"], "{name}: B never answered");
            }
        }
    }
}

// ------------------------------------------------------------------ conferences

impl Sim {
    fn create_conference(&mut self, ccid: &str, state: &str) -> String {
        let body = json!({"call_control_id": ccid, "name": "conf", "client_state": state, "command_id": "create-1"});
        let b = ivrx_telnyx::conferences::ConferenceCreate::parse(body).unwrap();
        let now = self.now();
        let info = self.w.create_conference(now, b).unwrap();
        self.drain();
        info.id
    }

    fn join(&mut self, conf: &str, body: Value) -> Result<Executed, super::conference::ConfError> {
        let b = ivrx_telnyx::conferences::ConferenceJoin::parse(body).unwrap();
        let now = self.now();
        let r = self.w.conference_action(now, conf, super::conference::ConfAction::Join(b));
        self.drain();
        r
    }

    /// Conference events, as (event type, participant call_control_id, payload).
    fn conference_events(&self) -> Vec<(&'static str, String, Value)> {
        self.log
            .iter()
            .filter(|(_, e)| e.event_type.starts_with("conference."))
            .map(|(_, e)| (e.event_type, e.call_control_id.to_string(), e.payload.clone()))
            .collect()
    }
}

#[test]
fn conference_participants_hear_each_other_and_it_ends_when_the_last_leaves() {
    let mut s = Sim::new(&[]);
    let caller = s.place("say hello is anybody there\nhangup");
    let listener = s.place("");
    s.ok(&caller, "answer", json!({}));
    s.ok(&listener, "answer", json!({}));
    let conf = s.create_conference(&caller, "Y29uZg==");
    assert_eq!(s.join(&conf, json!({"call_control_id": listener, "client_state": "bGlzdGVu"})), Ok(Executed::Done));
    assert!(s.w.listen(&listener).is_some());
    s.ok(&listener, "transcription_start", json!({"transcription_tracks": "both"}));
    assert_eq!(s.w.status(&caller).unwrap().conference_id.as_deref(), Some(conf.as_str()));

    s.until(&caller, "call.hangup", 30.0);
    // The listener heard the caller (its party speaking in the conference),
    // and its leg transcribed the caller as the outbound track.
    let heard = s.w.take_heard();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!((heard[0].text.as_str(), heard[0].source.as_str()), ("hello is anybody there", "party"));
    assert_eq!(heard[0].speaker_call_control_id, caller);
    assert_eq!(heard[0].speaker_number, super::DEFAULT_CALLER);
    let finals: Vec<_> = s.transcripts(&listener).into_iter().filter(|t| t.2).collect();
    assert_eq!(finals.len(), 1);
    assert_eq!((finals[0].1.as_str(), finals[0].3.as_str()), ("hello is anybody there", "outbound"));

    s.ok(&listener, "hangup", json!({}));
    let ev = s.conference_events();
    let kinds: Vec<_> = ev.iter().map(|(k, c, _)| (*k, c.clone())).collect();
    assert_eq!(
        kinds,
        [
            ("conference.created", caller.clone()),
            ("conference.participant.joined", caller.clone()),
            ("conference.participant.joined", listener.clone()),
            ("conference.participant.left", caller.clone()),
            ("conference.participant.left", listener.clone()),
            ("conference.ended", caller.clone()),
        ]
    );
    for (_, _, p) in &ev {
        assert_eq!(p["conference_id"], conf.as_str());
        assert_eq!(p["client_state"], "Y29uZg==", "conference webhooks carry the conference's state");
    }
    assert_eq!(ev[5].2["reason"], "all_left");
    assert_eq!(s.w.conference_info(&conf).unwrap().status.as_deref(), Some("completed"));
    // The listener's own call events carry the state it joined with.
    assert_eq!(s.events(&listener, "call.hangup")[0].1["client_state"], "bGlzdGVu");
}

#[test]
fn an_agent_joining_speaks_first_and_ending_on_exit_hangs_everyone_up() {
    let mut s = Sim::new(&[]);
    let caller = s.place("pause 30\nsay i need help with my bill\nhangup");
    s.ok(&caller, "answer", json!({}));
    let conf = s.create_conference(&caller, "YQ==");
    let now = s.now();
    let dial =
        Dial { connection_id: "1".into(), from: "+1800".into(), to: "+15550002000".into(), ..Default::default() };
    let agent = s.w.dial(now, dial).unwrap().call_control_id;
    s.drain();
    s.until(&agent, "call.answered", 10.0);
    assert_eq!(
        s.join(&conf, json!({"call_control_id": agent, "end_conference_on_exit": true})),
        Ok(Executed::Done),
        "agents join once answered"
    );
    s.w.listen(&caller);
    s.to(s.v.as_secs_f64() + 8.0);
    let heard = s.w.take_heard();
    assert!(heard.first().is_some_and(|h| h.text.starts_with("hi this is alex")), "the agent speaks first: {heard:?}");
    assert_eq!(heard[0].speaker_number, "+15550002000");
    s.ok(&agent, "hangup", json!({}));
    assert_eq!(s.state(&caller), LegState::HungUp, "end_conference_on_exit hangs the others up");
    let ended: Vec<_> = s.conference_events().into_iter().filter(|(k, _, _)| *k == "conference.ended").collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].2["reason"], "host_left");
}

#[test]
fn conference_commands_are_checked_like_telnyx() {
    use super::conference::ConfError;
    let mut s = Sim::new(&[]);
    let a = s.place("");
    let b = s.place("");
    s.ok(&a, "answer", json!({}));
    // Not answered yet: 90034; unknown conference: 404.
    assert_eq!(s.join("nope", json!({"call_control_id": b})), Err(ConfError::NoConference));
    let conf = s.create_conference(&a, "YQ==");
    assert_eq!(s.create_conference(&a, "YQ=="), conf, "a repeated command_id is the same conference");
    assert_eq!(s.join(&conf, json!({"call_control_id": b})), Err(ConfError::Call(CommandError::NotAnswered)));
    s.ok(&b, "answer", json!({}));
    assert_eq!(s.join(&conf, json!({"call_control_id": b, "command_id": "j1"})), Ok(Executed::Done));
    assert_eq!(s.join(&conf, json!({"call_control_id": b, "command_id": "j1"})), Ok(Executed::Duplicate));
    assert!(matches!(
        s.join(&conf, json!({"call_control_id": b})),
        Err(ConfError::Call(CommandError::Unprocessable(_)))
    ));
    assert!(matches!(s.cmd(&a, "bridge", json!({"call_control_id": b})), Err(CommandError::Unprocessable(_))));
    assert!(matches!(
        s.join(&conf, json!({"call_control_id": "v3:nobody"})),
        Err(ConfError::Call(CommandError::Invalid { .. }))
    ));
    s.ok(&a, "hangup", json!({}));
    s.ok(&b, "hangup", json!({}));
    let c = s.place("");
    s.ok(&c, "answer", json!({}));
    assert_eq!(s.join(&conf, json!({"call_control_id": c})), Err(ConfError::Ended));
}

#[test]
fn a_leg_dialled_with_link_to_shares_the_session_and_is_audited_after_its_call_ends() {
    let mut s = Sim::new(&[
        ("+1a1", PartyBehavior::Answer { after_secs: 1.0, script: Some(Script::default()) }),
        ("+1a2", PartyBehavior::Answer { after_secs: 1.0, script: Some(Script::default()) }),
    ]);
    let caller = s.place("");
    s.ok(&caller, "answer", json!({}));
    let dial = |to: &str, link: &str| -> Dial {
        serde_json::from_value(json!({"connection_id": "1", "from": "+1ivr", "to": to, "link_to": link})).unwrap()
    };
    let now = s.now();
    assert_eq!(
        s.w.dial(now, dial("+1a1", "v3:nobody")).unwrap_err(),
        CommandError::Invalid { pointer: "/link_to".into(), detail: "no call with this call_control_id".into() }
    );
    let a1 = s.w.dial(now, dial("+1a1", &caller)).unwrap();
    let a2 = s.w.dial(now, dial("+1a2", &caller)).unwrap();
    s.drain();
    let session = |ccid: &str| s.events(ccid, "call.initiated")[0].1["call_session_id"].clone();
    assert_eq!(session(&a1.call_control_id), session(&caller), "link_to shares the call session");
    assert_eq!(a1.call_session_id, a2.call_session_id);
    s.to(2.0);
    assert_eq!(s.state(&a2.call_control_id), LegState::Answered);
    // Bridged with one, then the other: one call bridged with two legs placed for it.
    s.ok(&caller, "bridge", json!({"call_control_id": a1.call_control_id, "park_after_unbridge": "self"}));
    s.ok(&a1.call_control_id, "hangup", json!({}));
    assert!(s.w.leg_audit().bridged_to_several.is_empty());
    s.ok(&caller, "bridge", json!({"call_control_id": a2.call_control_id}));
    assert_eq!(s.w.leg_audit().bridged_to_several, vec![caller.clone()]);
    // A third, never bridged, is left up when the caller hangs up (the bridged one goes with it).
    let a3 = s.w.dial(s.now(), dial("+1a1", &caller)).unwrap().call_control_id;
    s.drain();
    assert!(s.w.leg_audit().left_up.is_empty(), "the caller is still up");
    s.ok(&caller, "hangup", json!({}));
    let audit = s.w.leg_audit();
    assert_eq!(audit.left_up.len(), 1, "{audit:?}");
    assert_eq!(
        (audit.left_up[0].call_control_id.as_str(), audit.left_up[0].linked_to.as_str()),
        (a3.as_str(), caller.as_str())
    );
    assert!(!audit.left_up[0].answered);
    s.ok(&a3, "hangup", json!({}));
    assert!(s.w.leg_audit().left_up.is_empty());
}

#[test]
fn queues_serve_first_in_first_out_and_say_why_a_call_left() {
    let mut s = Sim::new(&[("+1agent", PartyBehavior::Answer { after_secs: 1.0, script: None })]);
    let (a, b, c) = (s.place("pause 100\nhangup"), s.place("pause 100\nhangup"), s.place("pause 45\nhangup"));
    for leg in [&a, &b, &c] {
        s.ok(leg, "answer", json!({}));
    }
    // A call in no queue cannot leave one; a full queue takes no more.
    assert!(matches!(s.cmd(&a, "leave_queue", json!({})), Err(CommandError::Unprocessable(_))));
    s.ok(&a, "enqueue", json!({"queue_name": "support", "max_size": 2}));
    s.ok(&b, "enqueue", json!({"queue_name": "support", "max_wait_time_secs": 30}));
    assert!(
        matches!(s.cmd(&c, "enqueue", json!({"queue_name": "support"})), Err(CommandError::Unprocessable(m)) if m.contains("full"))
    );
    let positions: Vec<_> =
        [&a, &b].iter().map(|l| s.events(l, "call.enqueued")[0].1["current_position"].as_u64()).collect();
    assert_eq!(positions, [Some(1), Some(2)]);
    assert_eq!(s.events(&a, "call.enqueued")[0].1["queue"], "support");

    // An agent bridged with the queue gets its head; the next waits on, then times out.
    let info =
        s.w.dial(
            s.now(),
            Dial { connection_id: "1".into(), from: "+1".into(), to: "+1agent".into(), ..Default::default() },
        )
        .unwrap();
    s.drain();
    let agent = info.call_control_id;
    s.until(&agent, "call.answered", 10.0);
    s.ok(&agent, "bridge", json!({"queue": "support"}));
    let left = s.events(&a, "call.dequeued")[0].1.clone();
    assert_eq!((left["reason"].as_str(), left["queue_position"].as_u64()), (Some("bridged"), Some(1)));
    assert_eq!(s.state(&a), LegState::Bridged);
    assert_eq!(s.w.status(&a).unwrap().bridged_with.as_deref(), Some(agent.as_str()));
    let (t, left) = s.until(&b, "call.dequeued", 40.0);
    assert_eq!((left["reason"].as_str(), left["wait_time_secs"].as_u64()), (Some("timeout"), Some(30)));
    assert!(close(t, 30.0), "{t}");
    assert_eq!(s.state(&b), LegState::Answered, "out of the queue, still on the line");

    // An empty queue: the bridge is refused. A queued call that hangs up leaves it.
    let other =
        s.w.dial(
            s.now(),
            Dial { connection_id: "1".into(), from: "+1".into(), to: "+1agent".into(), ..Default::default() },
        )
        .unwrap();
    s.drain();
    s.until(&other.call_control_id, "call.answered", 50.0);
    assert!(
        matches!(s.cmd(&other.call_control_id, "bridge", json!({"queue": "support"})), Err(CommandError::Unprocessable(m)) if m.contains("empty"))
    );
    s.ok(&c, "enqueue", json!({"queue_name": "support"}));
    let (_, left) = s.until(&c, "call.dequeued", 120.0);
    assert_eq!(left["reason"], "hangup");
    let types = s.types(&c);
    let (dq, hu) = (types.iter().position(|t| *t == "call.dequeued"), types.iter().position(|t| *t == "call.hangup"));
    assert!(dq < hu, "dequeued before the hangup: {types:?}");
}
