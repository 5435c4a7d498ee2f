//! The sandbox carrier end to end over loopback: the real `TelnyxClient` sends
//! commands, a receiver verifies every webhook's Ed25519 signature, and the
//! tests assert the exact webhooks each command produces and the exact error
//! answers. Time runs ×20; every wait is on a webhook, never on a sleep.

mod support;

use std::time::Duration;

use ivrx::sandbox::{Chaos, LegState, PartyBehavior, Script};
use ivrx::telnyx::commands::{
    Action, Answer, Bridge, Dial, GatherUsingSpeak, Plain, Speak, TranscriptionStart, Transfer,
};
use ivrx::telnyx::{ClientConfig, RetryPolicy, TelnyxClient, TelnyxError};
use serde_json::{json, Value};
use support::Harness;

fn speak(text: &str) -> Speak {
    Speak { payload: Some(text.into()), voice: Some("female".into()), ..Speak::default() }
}

fn transfer(to: &str) -> Transfer {
    Transfer { to: Some(to.into()), ..Transfer::default() }
}

fn agent(after_secs: f64, script: &str) -> PartyBehavior {
    PartyBehavior::Answer { after_secs, script: Some(Script::parse(script).unwrap()) }
}

/// Answers an inbound call and waits for `call.answered`.
async fn answer(h: &Harness, a: &str) {
    h.hooks.wait_for(a, "call.initiated").await;
    h.client.answer(a, Answer::default()).await.expect("answer");
    h.hooks.wait_for(a, "call.answered").await;
}

/// A harness whose webhooks suffer the chaos `set` turns on, from a fixed
/// `seed`, and an inbound call it has answered.
async fn answered_under_chaos(seed: u64, set: impl FnOnce(&mut Chaos)) -> (Harness, String) {
    let h = Harness::start_with(|c| {
        set(&mut c.chaos);
        c.chaos.seed = Some(seed);
    })
    .await;
    let a = h.place("");
    answer(&h, &a).await;
    (h, a)
}

/// An outbound call on the sandbox's connection.
fn outbound(h: &Harness, from: &str, to: &str) -> Dial {
    Dial { connection_id: h.sandbox.connection_id(), from: from.into(), to: to.into(), ..Dial::default() }
}

/// Sends a control API request with the sandbox's API key.
async fn send(request: reqwest::RequestBuilder, key: &str) -> reqwest::Response {
    request.bearer_auth(key).send().await.unwrap()
}

/// A control API answer's JSON body.
async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn inbound_call_answer_speak_gather_transcribe_hangup() {
    let h = Harness::start().await;
    let a = h.place("press 1\nsay i have a question about my bill\n");
    let init = h.hooks.wait_for(&a, "call.initiated").await;
    assert_eq!(init.payload()["direction"], "incoming");
    assert_eq!(init.payload()["state"], "parked");
    assert_eq!(init.payload()["connection_id"], h.sandbox.connection_id());
    assert_eq!(init.attempt(), 1);
    assert!(a.starts_with("v3:"));

    h.client.answer(&a, Answer { common: client_state("c3RhcnQ="), ..Answer::default() }).await.unwrap();
    let answered = h.hooks.wait_for(&a, "call.answered").await;
    assert_eq!(answered.payload()["client_state"], "c3RhcnQ=");
    // Google, with interim results (only sent when asked for).
    let transcribe = TranscriptionStart {
        transcription_engine_config: Some(serde_json::json!({"interim_results": true})),
        ..TranscriptionStart::default()
    };
    h.client.transcription_start(&a, transcribe).await.unwrap();
    h.client.speak(&a, speak("welcome to ivrx")).await.unwrap();
    let ended = h.hooks.wait_for(&a, "call.speak.ended").await;
    assert_eq!(ended.payload()["status"], "completed");

    let menu = GatherUsingSpeak {
        payload: Some("press 1 for billing 2 for technical support 3 for sales or 0 for an operator".into()),
        voice: Some("female".into()),
        valid_digits: Some("0123".into()),
        maximum_digits: Some(1),
        ..GatherUsingSpeak::default()
    };
    h.client.gather_using_speak(&a, menu).await.unwrap();
    let gathered = h.hooks.wait_for(&a, "call.gather.ended").await;
    assert_eq!(gathered.payload()["digits"], "1");
    assert_eq!(gathered.payload()["status"], "valid");

    let final_ = h.hooks.wait_final(&a, "inbound", "i have").await;
    let data = &final_.payload()["transcription_data"];
    assert_eq!(data["transcript"], "i have a question about my bill");
    let confidence = data["confidence"].as_f64().unwrap();
    assert!((0.80..=0.98).contains(&confidence), "{confidence}");

    h.client.hangup(&a, Plain::default()).await.unwrap();
    let hangup = h.hooks.wait_for(&a, "call.hangup").await;
    assert_eq!(hangup.payload()["hangup_cause"], "normal_clearing");
    assert_eq!(hangup.payload()["hangup_source"], "callee");

    let interims: Vec<_> = h
        .hooks
        .events(&a)
        .iter()
        .filter(|r| r.event_type() == "call.transcription" && r.payload()["transcription_data"]["is_final"] == false)
        .map(|r| r.payload()["transcription_data"]["transcript"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(interims, ["i have", "i have a question", "i have a question about my"]);
    assert_eq!(
        h.hooks.types(&a),
        [
            "call.initiated",
            "call.answered",
            "call.speak.started",
            "call.speak.ended",
            "call.dtmf.received",
            "call.gather.ended",
            "call.transcription",
            "call.transcription",
            "call.transcription",
            "call.transcription",
            "call.hangup",
        ]
    );
    let status = h.sandbox.call_status(&a).unwrap();
    assert_eq!(status.state, LegState::HungUp);
    assert_eq!(status.hangup_cause.as_deref(), Some("normal_clearing"));
    assert_eq!(h.hooks.bad_signatures(), 0);
}

fn client_state(s: &str) -> ivrx::telnyx::commands::Common {
    ivrx::telnyx::commands::Common { client_state: Some(s.into()), command_id: None }
}

#[tokio::test]
async fn transfer_to_an_answering_agent_bridges_and_the_agent_talks() {
    let h = Harness::start_with(|c| {
        c.agents.push(("+15550002000".into(), agent(1.0, "say hi this is sam from support")));
    })
    .await;
    let a = h.place("say i want to speak to a real person\npause 1\nsay thanks\nhangup");
    answer(&h, &a).await;
    h.client
        .transcription_start(&a, TranscriptionStart { transcription_tracks: Some("both".into()), ..Default::default() })
        .await
        .unwrap();
    h.hooks.wait_final(&a, "inbound", "i want to speak").await;
    let t = Transfer { target_leg_client_state: Some("YWdlbnQ=".into()), ..transfer("+15550002000") };
    h.client.transfer(&a, t).await.unwrap();

    let b_init = h.hooks.wait_until("B call.initiated", |r| r.event_type() == "call.initiated" && r.ccid() != a).await;
    let b = b_init.ccid().to_string();
    assert_eq!(b_init.payload()["direction"], "outgoing");
    assert_eq!(b_init.payload()["to"], "+15550002000");
    assert_eq!(b_init.payload()["client_state"], "YWdlbnQ=");
    assert_eq!(b_init.payload()["call_session_id"], h.hooks.events(&a)[0].payload()["call_session_id"]);

    // The agent speaks first; its words are the outbound track on A. The
    // caller waits for silence and the turn gap before answering.
    let agent_said = h.hooks.wait_final(&a, "outbound", "hi this is sam").await;
    let caller_said = h.hooks.wait_final(&a, "inbound", "thanks").await;
    let pos = |r: &support::Received| h.hooks.accepted().iter().position(|x| x.envelope.data.id == r.envelope.data.id);
    assert!(pos(&agent_said) < pos(&caller_said));
    h.hooks.wait_for(&a, "call.hangup").await;
    let b_hangup = h.hooks.wait_for(&b, "call.hangup").await;
    assert_eq!(b_hangup.payload()["hangup_cause"], "normal_clearing");
    assert_eq!(b_hangup.payload()["client_state"], "YWdlbnQ=");

    assert_eq!(h.hooks.types(&b), ["call.initiated", "call.bridged", "call.answered", "call.hangup"]);
    // A and B share one session: their webhooks arrive in the documented order.
    let order: Vec<_> = h
        .hooks
        .accepted()
        .iter()
        .filter(|r| {
            matches!(r.event_type(), "call.bridged" | "call.answered" | "call.hangup")
                && !(r.ccid() == a && r.event_type() == "call.answered")
        })
        .map(|r| (if r.ccid() == a { "A" } else { "B" }, r.event_type().to_string()))
        .collect();
    let expected: Vec<(&str, String)> = vec![
        ("A", "call.bridged".into()),
        ("B", "call.bridged".into()),
        ("B", "call.answered".into()),
        ("A", "call.hangup".into()),
        ("B", "call.hangup".into()),
    ];
    assert_eq!(order, expected);
    let a_hangup = h.hooks.wait_for(&a, "call.hangup").await;
    assert_eq!(a_hangup.payload()["hangup_source"], "caller");
}

#[tokio::test]
async fn failed_transfers_hang_up_only_the_b_leg() {
    let h = Harness::start_with(|c| {
        c.agents.push(("+15550003000".into(), PartyBehavior::Refuse));
        c.agents.push(("+15550004000".into(), PartyBehavior::NoAnswer));
        c.agents.push(("+15550005000".into(), PartyBehavior::Busy));
    })
    .await;
    let a = h.place("");
    answer(&h, &a).await;
    let cases = [("+15550003000", "call_rejected"), ("+15550004000", "timeout"), ("+15550005000", "user_busy")];
    for (to, cause) in cases {
        h.client.transfer(&a, Transfer { timeout_secs: Some(5), ..transfer(to) }).await.unwrap();
        let b = h
            .hooks
            .wait_until(to, |r| r.event_type() == "call.initiated" && r.payload()["to"] == to)
            .await
            .ccid()
            .to_string();
        let hangup = h.hooks.wait_for(&b, "call.hangup").await;
        assert_eq!(hangup.payload()["hangup_cause"], cause, "{to}");
        assert_eq!(h.hooks.types(&b), ["call.initiated", "call.hangup"]);
        assert_eq!(h.sandbox.call_status(&a).unwrap().state, LegState::Answered, "A stays up after {cause}");
    }
    // A still takes commands.
    h.client.speak(&a, speak("sorry nobody is available")).await.unwrap();
    h.hooks.wait_for(&a, "call.speak.started").await;
    h.client.hangup(&a, Plain::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.hangup").await;
}

#[tokio::test]
async fn dial_then_bridge_then_hangup_takes_both_legs_down() {
    let h = Harness::start_with(|c| c.agents.push(("+15550006000".into(), agent(1.0, "")))).await;
    let a = h.place("");
    answer(&h, &a).await;
    let dial = Dial { client_state: Some("ZGlhbA==".into()), ..outbound(&h, "+15555550199", "+15550006000") };
    let info = h.client.dial(&dial).await.unwrap();
    assert!(!info.is_alive);
    assert_eq!(info.record_type, "call");
    let c = info.call_control_id;
    let init = h.hooks.wait_for(&c, "call.initiated").await;
    assert_eq!(init.payload()["direction"], "outgoing");
    assert_eq!(init.payload()["client_state"], "ZGlhbA==");
    h.hooks.wait_for(&c, "call.answered").await;
    assert!(h.client.retrieve(&c).await.unwrap().is_alive);

    h.client.bridge(&a, Bridge { call_control_id: Some(c.clone()), ..Bridge::default() }).await.unwrap();
    h.hooks.wait_for(&a, "call.bridged").await;
    h.hooks.wait_for(&c, "call.bridged").await;
    assert_eq!(h.sandbox.call_status(&a).unwrap().bridged_with.as_deref(), Some(c.as_str()));

    h.client.hangup(&a, Plain::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.hangup").await;
    h.hooks.wait_for(&c, "call.hangup").await;
    assert_eq!(h.hooks.types(&c), ["call.initiated", "call.answered", "call.bridged", "call.hangup"]);
    assert!(!h.client.retrieve(&c).await.unwrap().is_alive);
}

#[tokio::test]
async fn errors_are_the_ones_telnyx_answers() {
    let h = Harness::start().await;
    let http = h.http();
    let base = h.sandbox.api_base();

    // 401 10009 without or with a wrong key.
    for auth in [None, Some("Bearer wrong")] {
        let mut req = http.post(format!("{base}/calls")).json(&json!({}));
        if let Some(v) = auth {
            req = req.header("authorization", v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "10009");
        assert_eq!(body["errors"][0]["title"], "Authentication failed");
    }
    let bad = TelnyxClient::new(ClientConfig::new(base.clone(), "nope")).unwrap();
    assert!(matches!(bad.retrieve("v3:x").await, Err(TelnyxError::Unauthorized { .. })));

    // 404 10005 for an unknown call, on retrieve and on actions.
    assert!(matches!(h.client.retrieve("v3:unknown").await, Err(TelnyxError::NotFound { .. })));
    assert!(matches!(h.client.hangup("v3:unknown", Plain::default()).await, Err(TelnyxError::NotFound { .. })));

    // 422 10004 with the pointer of the missing field.
    let dial = Dial { connection_id: "1".into(), from: "+1".into(), to: String::new(), ..Dial::default() };
    match h.client.dial(&dial).await {
        Err(TelnyxError::MissingParameter { pointer, .. }) => assert_eq!(pointer.as_deref(), Some("/to")),
        other => panic!("{other:?}"),
    }
    let a = h.place("");
    h.hooks.wait_for(&a, "call.initiated").await;
    let no_voice = Speak { payload: Some("hi".into()), ..Speak::default() };
    match h.client.speak(&a, no_voice).await {
        Err(TelnyxError::MissingParameter { pointer, .. }) => assert_eq!(pointer.as_deref(), Some("/voice")),
        other => panic!("{other:?}"),
    }
    // 422 90012 for a value Telnyx refuses.
    let robot = Speak { voice: Some("robot".into()), ..speak("hi") };
    match h.client.speak(&a, robot).await {
        Err(TelnyxError::InvalidValue { pointer, .. }) => assert_eq!(pointer.as_deref(), Some("/voice")),
        other => panic!("{other:?}"),
    }
    // 422 90034 before answer.
    assert!(matches!(h.client.speak(&a, speak("too early")).await, Err(TelnyxError::NotAnswered { .. })));
    assert!(matches!(h.client.transfer(&a, transfer("+1")).await, Err(TelnyxError::NotAnswered { .. })));
    let raw = http
        .post(format!("{base}/calls/{a}/actions/speak"))
        .bearer_auth(h.sandbox.api_key())
        .json(&json!({"payload": "x", "voice": "male"}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    assert_eq!(raw.json::<Value>().await.unwrap()["errors"][0]["code"], "90034");

    // 422 90018 after hangup, for every command.
    h.client.answer(&a, Answer::default()).await.unwrap();
    h.client.hangup(&a, Plain::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.hangup").await;
    assert!(h.client.speak(&a, speak("gone")).await.unwrap_err().is_call_gone());
    assert!(h.client.hangup(&a, Plain::default()).await.unwrap_err().is_call_gone());

    // Unknown action, bad JSON, wrong method: clean JSON errors.
    let post = |path: String, body: &'static str| {
        http.post(format!("{base}{path}"))
            .bearer_auth(h.sandbox.api_key())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post(format!("/calls/{a}/actions/teleport"), "{}").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["code"], "10005");
    let r = post("/calls".into(), "{not json").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["code"], "10015");
    let r = post(format!("/calls/{a}/actions/speak"), "[1,2]").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(format!("/calls/{a}/actions/client_state_update"), "{\"client_state\":\"YQ==\"}").await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json::<Value>().await.unwrap()["errors"][0]["detail"].as_str().unwrap().contains("PUT"));
}

#[tokio::test]
async fn a_repeated_command_id_is_answered_ok_and_not_executed() {
    let h = Harness::start().await;
    let a = h.place("");
    answer(&h, &a).await;
    let mut action = Action::Speak(speak("only once please"));
    action.set_command_id("speak-1");
    h.client.action(&a, &action).await.unwrap();
    h.client.action(&a, &action).await.unwrap();
    h.hooks.wait_for(&a, "call.speak.ended").await;
    h.client.speak(&a, speak("and then this")).await.unwrap();
    h.hooks.wait_nth(&a, "call.speak.ended", 2).await;
    assert_eq!(h.hooks.types(&a).iter().filter(|t| *t == "call.speak.started").count(), 2);
    let speaks: Vec<_> =
        h.sandbox.command_log().into_iter().filter(|c| c.command_id.as_deref() == Some("speak-1")).collect();
    assert_eq!(speaks.len(), 2);
    assert_eq!((speaks[0].duplicate, speaks[1].duplicate), (false, true));

    let dial = Dial { command_id: Some("dial-1".into()), ..outbound(&h, "+1", "+15550007000") };
    let first = h.client.dial(&dial).await.unwrap();
    let second = h.client.dial(&dial).await.unwrap();
    assert_eq!(first.call_control_id, second.call_control_id);
    h.hooks.wait_for(&first.call_control_id, "call.answered").await;
    assert_eq!(h.hooks.types(&first.call_control_id).iter().filter(|t| *t == "call.initiated").count(), 1);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_with_the_next_attempt_number() {
    let h = Harness::start().await;
    h.hooks.fail_next("call.initiated", 1);
    let a = h.place("");
    let init = h.hooks.wait_for(&a, "call.initiated").await;
    assert_eq!(init.attempt(), 2);
    let all: Vec<_> = h.hooks.all().into_iter().filter(|r| r.event_type() == "call.initiated").collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].envelope.data.id, all[1].envelope.data.id, "a retry carries the same event id");
    assert_eq!((all[0].answered, all[1].answered), (500, 200));
    assert_ne!(all[0].raw, all[1].raw, "each attempt is re-signed with its own meta");
    // Later webhooks of the call waited for the retry: order is kept.
    h.client.answer(&a, Answer::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.answered").await;
    assert_eq!(h.hooks.types(&a), ["call.initiated", "call.answered"]);
    // The retry was logged before the next webhook of the call was sent.
    let log: Vec<_> = h.sandbox.webhook_log().into_iter().filter(|r| r.event_type == "call.initiated").collect();
    assert_eq!(log.iter().map(|r| (r.attempt, r.status)).collect::<Vec<_>>(), [(1, Some(500)), (2, Some(200))]);
}

#[tokio::test]
async fn chaos_duplicates_keep_the_event_id_and_are_signed_again() {
    let (h, a) = answered_under_chaos(42, |c| c.duplicate_rate = 1.0).await;
    h.client.hangup(&a, Plain::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.hangup").await;
    // The duplicate of the last webhook follows it.
    h.hooks
        .wait_until("the duplicate hangup", |_| {
            h.hooks.all().iter().filter(|r| r.event_type() == "call.hangup").count() == 2
        })
        .await;
    let all = h.hooks.all();
    assert_eq!(all.len(), 6, "three events, each twice");
    for pair in all.chunks(2) {
        assert_eq!(pair[0].envelope.data.id, pair[1].envelope.data.id);
    }
    assert_eq!(h.hooks.bad_signatures(), 0);
}

#[tokio::test]
async fn api_faults_are_injected_and_retries_stay_idempotent() {
    // 429 with Retry-After, and 500.
    let h = Harness::start_with(|c| c.chaos.api_rate_limit_rate = 1.0).await;
    let r = h
        .http()
        .get(format!("{}/calls/v3:x", h.sandbox.api_base()))
        .bearer_auth(h.sandbox.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.json::<Value>().await.unwrap()["errors"][0]["code"], "10011");
    let h = Harness::start_with(|c| c.chaos.api_error_rate = 1.0).await;
    let mut cc = ClientConfig::new(h.sandbox.api_base(), h.sandbox.api_key());
    cc.retry = RetryPolicy { max_attempts: 2, base_backoff: Duration::from_millis(10), ..RetryPolicy::default() };
    let client = TelnyxClient::new(cc).unwrap();
    assert!(matches!(client.retrieve("v3:x").await, Err(TelnyxError::Server { status: 500, attempts: 2 })));

    // Late answers: the client gives up on each attempt and resends the same
    // command_id; the sandbox executes it once.
    let h = Harness::start_with(|c| {
        c.chaos.api_timeout_rate = 1.0;
        c.chaos.api_late_ms = 400;
    })
    .await;
    let mut cc = ClientConfig::new(h.sandbox.api_base(), h.sandbox.api_key());
    cc.retry = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_millis(150),
        ..RetryPolicy::default()
    };
    let client = TelnyxClient::new(cc).unwrap();
    let a = h.place("");
    h.hooks.wait_for(&a, "call.initiated").await;
    assert!(matches!(client.answer(&a, Answer::default()).await, Err(TelnyxError::Timeout { attempts: 3 })));
    h.hooks.wait_for(&a, "call.answered").await;
    let answers: Vec<_> =
        h.sandbox.command_log().into_iter().filter(|c| c.action.as_deref() == Some("answer")).collect();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers.iter().filter(|c| c.duplicate).count(), 2);
    assert_eq!(h.hooks.types(&a), ["call.initiated", "call.answered"]);
}

#[tokio::test]
async fn control_api_places_watches_and_feeds_calls() {
    let h = Harness::start_with(|c| c.time_scale = 50.0).await;
    let http = h.http();
    let base = h.sandbox.base_url();
    let key = h.sandbox.api_key();

    let r: Value = http.get(format!("{base}/sandbox/v1/public-key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["public_key"], h.sandbox.public_key_base64());
    let r = http.post(format!("{base}/sandbox/v1/calls")).json(&json!({"script": "say hi"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = send(http.post(format!("{base}/sandbox/v1/calls")).json(&json!({"script": "shout hi"})), &key).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("line 1"));

    // A live call: the caller says what the test sends.
    let live = json!({"from": "+15550101010", "script": "", "live": true, "caller_id_name": "Dana"});
    let r = body(send(http.post(format!("{base}/sandbox/v1/calls")).json(&live), &key).await).await;
    let a = r["data"]["call_control_id"].as_str().unwrap().to_string();
    let init = h.hooks.wait_for(&a, "call.initiated").await;
    assert_eq!(init.payload()["caller_id_name"], "Dana");
    assert_eq!(init.payload()["from"], "+15550101010");
    h.client.answer(&a, Answer::default()).await.unwrap();
    h.client.transcription_start(&a, TranscriptionStart::default()).await.unwrap();
    let step = |step: &str| http.post(format!("{base}/sandbox/v1/calls/{a}/steps")).json(&json!({ "step": step }));
    let r = send(step("say can you hear me"), &key).await;
    assert_eq!(r.status(), 200);
    h.hooks.wait_final(&a, "inbound", "can you hear me").await;
    let st = body(send(http.get(format!("{base}/sandbox/v1/calls/{a}")), &key).await).await;
    assert_eq!(st["data"]["state"], "answered");
    assert_eq!(st["data"]["live"], true);
    send(step("hangup"), &key).await;
    let waited = body(send(http.get(format!("{base}/sandbox/v1/calls/{a}/wait?timeout_secs=600")), &key).await).await;
    assert_eq!(waited["data"]["state"], "hangup");
    assert_eq!(waited["data"]["hangup_source"], "caller");
    assert_eq!(waited["timed_out"], false);

    // An unanswered call: the caller gives up after 30 s (0.6 s here).
    let b = h.place("say hello");
    let st = h.sandbox.wait_for_hangup(&b, Duration::from_secs(60)).await.unwrap();
    assert_eq!(st.hangup_cause.as_deref(), Some("originator_cancel"));

    // Parties configured at run time.
    let party = |behavior: &str| {
        http.post(format!("{base}/sandbox/v1/parties")).json(&json!({"number": "+15550008000", "behavior": behavior}))
    };
    let r = send(party("busy"), &key).await;
    assert_eq!(r.status(), 200);
    let r = send(party("sometimes"), &key).await;
    assert_eq!(r.status(), 422);
    let dial = Dial { connection_id: "1".into(), from: "+1".into(), to: "+15550008000".into(), ..Dial::default() };
    let c = h.client.dial(&dial).await.unwrap().call_control_id;
    assert_eq!(h.hooks.wait_for(&c, "call.hangup").await.payload()["hangup_cause"], "user_busy");

    // Logs and the (absent) reporter.
    let log = body(send(http.get(format!("{base}/sandbox/v1/webhooks")), &key).await).await;
    assert!(log["data"].as_array().unwrap().len() >= 5);
    let cmds = body(send(http.get(format!("{base}/sandbox/v1/commands")), &key).await).await;
    assert!(cmds["data"].as_array().unwrap().iter().any(|c| c["action"] == "dial"));
    let r = send(http.get(format!("{base}/sandbox/v1/calls/{a}/report")), &key).await;
    assert_eq!(r.status(), 404);
    let r = send(http.get(format!("{base}/sandbox/v1/calls/v3:nope")), &key).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn reporter_answers_the_report_endpoint() {
    let h = Harness::start_with(|c| {
        c.reporter = Some(std::sync::Arc::new(|ccid: String| {
            Box::pin(async move { ccid.starts_with("v3:").then(|| json!({"call": ccid, "transferred": false})) })
        }));
    })
    .await;
    let a = h.place("");
    let report = h.http().get(format!("{}/sandbox/v1/calls/{a}/report", h.sandbox.base_url()));
    let r = body(send(report, &h.sandbox.api_key()).await).await;
    assert_eq!(r["call"], a);
    h.sandbox.shutdown();
    assert!(h.sandbox.place_call(ivrx::sandbox::PlaceCall::new(Script::default())).is_err());
}

#[tokio::test]
async fn retries_go_to_the_failover_url() {
    let (h, failover) = Harness::start_with_failover(|c| c.delivery.attempts = 3).await;
    h.hooks.fail_next("call.initiated", 5);
    let a = h.place("");
    let got = failover.wait_for(&a, "call.initiated").await;
    assert_eq!(got.attempt(), 2);
    assert_eq!(got.envelope.meta.as_ref().unwrap().delivered_to.as_deref(), Some(failover.url.as_str()));
    let primary: Vec<_> = h.hooks.all().into_iter().filter(|r| r.event_type() == "call.initiated").collect();
    assert_eq!(primary.len(), 1, "only the first attempt goes to the primary URL");
}

/// A URL nothing listens on: connections to it are refused.
fn refused_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/webhooks/telnyx", l.local_addr().unwrap())
}

/// Plays a short answered call: answer, transcription, a line, hangup; waits
/// until the carrier has delivered its last webhook. Returns the successful
/// deliveries of its leg, in the order they were made.
async fn short_call(h: &Harness) -> Vec<ivrx::sandbox::DeliveryRecord> {
    let a = h.place("say hello there\nhangup");
    h.client.answer(&a, Answer::default()).await.unwrap();
    h.client.transcription_start(&a, TranscriptionStart::default()).await.unwrap();
    let status = h.sandbox.wait_for_hangup(&a, Duration::from_secs(120)).await.unwrap();
    assert_eq!(status.state, LegState::HungUp);
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while h.sandbox.delivery_stats().queued > 0 {
        assert!(tokio::time::Instant::now() < deadline, "webhooks still queued: {:?}", h.sandbox.delivery_stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered: Vec<_> = h.sandbox.webhook_log().into_iter().filter(|d| d.call_control_id == a && d.ok()).collect();
    let types: Vec<_> = delivered.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(types.first(), Some(&"call.initiated"), "{types:?}");
    assert_eq!(types.last(), Some(&"call.hangup"), "{types:?}");
    assert!(types.contains(&"call.answered") && types.contains(&"call.transcription"), "{types:?}");
    delivered
}

#[tokio::test]
async fn several_webhook_urls_take_turns_within_a_call() {
    let (h, receivers) = Harness::start_balanced(2, |_| {}).await;
    let delivered = short_call(&h).await;
    for pair in delivered.windows(2) {
        assert_ne!(pair[0].url, pair[1].url, "consecutive webhooks of one call go to different URLs");
    }
    assert!(delivered.iter().all(|d| d.attempt == 1 && !d.duplicate));
    // Each receiver got its share, once each, in the carrier's order.
    let mut total = 0;
    for r in &receivers {
        let mine: Vec<_> = delivered.iter().filter(|d| d.url == r.url).map(|d| d.event_id.clone()).collect();
        let got: Vec<_> = r.all().iter().map(|x| x.envelope.data.id.clone()).collect();
        assert_eq!(got, mine);
        assert!(!got.is_empty());
        assert_eq!(r.bad_signatures(), 0);
        total += got.len();
    }
    assert_eq!(total, delivered.len());
    let stats = h.sandbox.delivery_stats();
    let by_url: Vec<_> = stats.by_url.iter().map(|u| (u.url.clone(), u.failed)).collect();
    let mut urls: Vec<_> = receivers.iter().map(|r| (r.url.clone(), 0)).collect();
    urls.sort();
    assert_eq!(by_url, urls);
    assert!(stats.by_url.iter().all(|u| u.acknowledged > 0));

    // A second call starts on the other URL from the first one's start.
    let second = short_call(&h).await;
    assert_ne!(second[0].url, delivered[0].url, "calls spread their first webhooks over the URLs");
}

#[tokio::test]
async fn a_url_that_refuses_or_answers_5xx_is_passed_over_within_the_attempt() {
    let refused = refused_url();
    let r = refused.clone();
    let (h, receivers) = Harness::start_balanced(2, move |c| c.webhook_urls.push(r)).await;
    receivers[1].fail_next("call.answered", 1);
    let delivered = short_call(&h).await;
    // Everything was acknowledged at the first attempt, by a listening receiver.
    assert!(delivered.iter().all(|d| d.attempt == 1 && d.url != refused), "{delivered:#?}");
    let stats = h.sandbox.delivery_stats();
    assert_eq!(stats.gave_up, 0);
    let dead = stats.by_url.iter().find(|u| u.url == refused).expect("the refused URL was tried");
    assert!(dead.attempts > 0 && dead.acknowledged == 0, "{dead:?}");
    // The 500 was answered to call.answered, which then went to another URL in the same attempt.
    let answered: Vec<_> = h
        .sandbox
        .webhook_log()
        .into_iter()
        .filter(|d| d.event_type == "call.answered" && d.url == receivers[1].url)
        .collect();
    assert_eq!(answered.iter().map(|d| (d.attempt, d.status)).collect::<Vec<_>>(), [(1, Some(500))]);
    let ok = delivered.iter().find(|d| d.event_type == "call.answered").unwrap();
    assert_eq!((ok.url.as_str(), ok.event_id.as_str()), (receivers[0].url.as_str(), answered[0].event_id.as_str()));
}

/// A URL that accepts connections and never answers.
async fn silent_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/telnyx", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn a_url_that_times_out_is_passed_over_within_the_attempt() {
    let silent = silent_url().await;
    let s = silent.clone();
    let (h, receivers) = Harness::start_balanced(1, move |c| {
        c.webhook_urls.insert(0, s);
        c.delivery.timeout = Duration::from_millis(300);
    })
    .await;
    let delivered = short_call(&h).await;
    assert!(delivered.iter().all(|d| d.attempt == 1 && d.url == receivers[0].url), "{delivered:#?}");
    let timed_out: Vec<_> = h.sandbox.webhook_log().into_iter().filter(|d| d.url == silent).collect();
    assert!(!timed_out.is_empty(), "the silent URL had its turns");
    assert!(timed_out.iter().all(|d| d.status.is_none() && d.error.is_some()), "{timed_out:#?}");
    assert_eq!(h.sandbox.delivery_stats().gave_up, 0);
}

#[tokio::test]
async fn when_every_url_fails_the_carrier_retries_with_the_next_attempt() {
    let (h, receivers) = Harness::start_balanced(2, |c| c.delivery.attempts = 3).await;
    for r in &receivers {
        r.fail_next("call.initiated", 1);
    }
    let delivered = short_call(&h).await;
    let init = &delivered[0];
    assert_eq!(init.attempt, 2, "one carrier attempt tried both URLs; the retry is attempt 2");
    let tries: Vec<_> = h
        .sandbox
        .webhook_log()
        .into_iter()
        .filter(|d| d.event_id == init.event_id)
        .map(|d| (d.attempt, d.status, d.url))
        .collect();
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert_eq!((tries[0].0, tries[0].1, tries[1].0, tries[1].1), (1, Some(500), 1, Some(500)));
    assert_ne!(tries[0].2, tries[1].2);
    assert_eq!((tries[2].0, tries[2].1), (2, Some(200)));
    assert_eq!(h.sandbox.delivery_stats().gave_up, 0);
}

#[tokio::test]
async fn chaos_reordering_swaps_neighbours_and_loses_nothing() {
    let (h, a) = answered_under_chaos(3, |c| c.reorder_rate = 1.0).await;
    // A burst: speak.started, then at hangup speak.ended, playback.ended, call.hangup, recording.saved.
    h.client
        .record_start(
            &a,
            ivrx::telnyx::commands::RecordStart {
                format: Some("mp3".into()),
                channels: Some("single".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let hold = ivrx::telnyx::commands::PlaybackStart {
        audio_url: Some("http://127.0.0.1:9/hold.mp3".into()),
        ..Default::default()
    };
    h.client.playback_start(&a, hold).await.unwrap();
    h.client.speak(&a, speak("this sentence is long enough to still be playing at the hangup")).await.unwrap();
    h.client.hangup(&a, Plain::default()).await.unwrap();
    h.hooks.wait_for(&a, "call.recording.saved").await;
    h.hooks.wait_for(&a, "call.hangup").await;
    let got = h.hooks.types(&a);
    let mut sorted = got.clone();
    let mut canonical = vec![
        "call.initiated",
        "call.answered",
        "call.playback.started",
        "call.speak.started",
        "call.speak.ended",
        "call.playback.ended",
        "call.hangup",
        "call.recording.saved",
    ];
    sorted.sort();
    canonical.sort();
    assert_eq!(sorted, canonical, "every webhook arrives exactly once");
    let pos = |t: &str| got.iter().position(|g| g == t).unwrap();
    assert!(
        pos("call.hangup") > pos("call.recording.saved")
            || pos("call.speak.ended") > pos("call.playback.ended")
            || pos("call.speak.started") < pos("call.playback.started"),
        "reordering at rate 1 swapped nothing: {got:?}"
    );
}

#[tokio::test]
async fn hostile_requests_get_clean_errors_and_the_sandbox_stays_up() {
    let h = Harness::start().await;
    let a = h.place("");
    answer(&h, &a).await;
    let http = h.http();
    let base = h.sandbox.api_base();
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!("{{\"payload\": \"{}\", \"voice\": \"female\"}}", "a".repeat(100_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00garbage".to_vec(),
        deep.into_bytes(),
        huge.into_bytes(),
        br#"{"client_state": 5}"#.to_vec(),
        br#"{"payload": null, "voice": null}"#.to_vec(),
        br#"{"payload": "x", "voice": "female", "command_id": {"nested": true}}"#.to_vec(),
        br#""just a string""#.to_vec(),
        br#"{"to": ["+1", "+2"]}"#.to_vec(),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        for path in [format!("/calls/{a}/actions/speak"), format!("/calls/{a}/actions/transfer"), "/calls".to_string()]
        {
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(h.sandbox.api_key())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!((400..500).contains(&status), "body {i} on {path}: {status}");
            let json: Value = r.json().await.unwrap_or_else(|e| panic!("body {i} on {path}: not JSON: {e}"));
            assert!(json["errors"][0]["code"].is_string(), "body {i} on {path}: {json}");
        }
    }
    for id in ["%00", "v3:%2F..%2F", &"x".repeat(5000)] {
        let r = http.get(format!("{base}/calls/{id}")).bearer_auth(h.sandbox.api_key()).send().await.unwrap();
        assert_eq!(r.status(), 404, "{id}");
    }
    // Still serving, and the call is untouched.
    h.client.speak(&a, speak("still here")).await.unwrap();
    h.hooks.wait_for(&a, "call.speak.ended").await;
}
