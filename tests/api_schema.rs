//! The schema check: what ivrx sends and what its sandbox carrier sends are
//! valid under the official Telnyx SDK's generated types (the machine-readable
//! Call Control definition), and what the definition refuses, the sandbox
//! refuses too.
//!
//! - Every request body ivrx builds: the real `ivrx serve` runs in live mode
//!   against a sandbox carrier in this process through whole calls (warm and
//!   cold transfers, hold music, re-prompts, goodbyes, refused agents, each
//!   transcription engine, an outbound call), and every body the carrier
//!   received is checked, strictly: no field the definition lacks.
//! - Every webhook the sandbox emits: those calls, plus a tour of the commands
//!   ivrx does not use (playback by media name, streaming, recording, custom
//!   and SIP headers, conferences, an SMS), each envelope checked against its event model.
//! - `tests/interop/refusals.json`: bodies the definition refuses, covering
//!   every action ivrx uses; the SDK's types must refuse each, and the sandbox
//!   must answer each with 422, the same error code and `source.pointer`.
//! - ivrx's field tables (`telnyx::spec`) equal the SDK's, field by field.
//!
//! The checker is `tests/interop/telnyx_schema.py`, run in the pinned SDK's venv.

mod carrier;
mod interop;
mod serve_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use carrier::{rt, wait_for, Carrier, LiveServe};
use ivrx::sandbox::{PartyBehavior, PlaceCall, Script};
use ivrx::telnyx::commands::ACTION_NAMES;
use ivrx::telnyx::events::KNOWN_EVENT_TYPES;
use ivrx::telnyx::spec::{Field, Kind, BODIES, ENGINE_CONFIGS};
use serde_json::{json, Value};

/// Runs the checker on one job and returns its answer.
fn check(job: &Value) -> Value {
    let python = interop::venv();
    let mut child = Command::new(python)
        .arg(interop::script("telnyx_schema.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the schema checker");
    child.stdin.take().expect("stdin").write_all(job.to_string().as_bytes()).expect("send the job");
    let out = child.wait_with_output().expect("checker output");
    assert!(out.status.success(), "the checker failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the checker answers JSON");
    assert_eq!(answer["sdk_version"], interop::TELNYX_VERSION);
    answer
}

fn list(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
}

// ------------------------------------------------------------------ tables

fn field_json(f: &Field) -> Value {
    let (kind, values): (&str, Option<Value>) = match f.kind {
        Kind::Str => ("Str", None),
        Kind::Base64 => ("Base64", None),
        Kind::Voice => ("Voice", None),
        Kind::Bool => ("Bool", None),
        Kind::Int => ("Int", None),
        Kind::Number => ("Number", None),
        Kind::OneOf(v) => ("OneOf", Some(json!(v))),
        Kind::Const(c) => ("Const", Some(json!([c]))),
        Kind::IntOneOf(v) => ("IntOneOf", Some(json!(v))),
        Kind::StrOrInt => ("StrOrInt", None),
        Kind::StrOrStrs => ("StrOrStrs", None),
        Kind::Strs => ("Strs", None),
        Kind::Array => ("Array", None),
        Kind::Object => ("Object", None),
        Kind::CustomHeaders => ("CustomHeaders", None),
        Kind::SipHeaders => ("SipHeaders", None),
        Kind::TranscriptionConfig => ("TranscriptionConfig", None),
        Kind::EngineConfig => ("EngineConfig", None),
    };
    let mut v = json!({"name": f.name, "required": f.required, "kind": kind});
    if let Some(values) = values {
        v["values"] = values;
    }
    v
}

fn tables() -> Value {
    let fields = |fs: &[Field]| fs.iter().map(field_json).collect::<Vec<_>>();
    let bodies: BTreeMap<&str, Vec<Value>> = BODIES.iter().map(|(n, fs)| (*n, fields(fs))).collect();
    let engines: BTreeMap<&str, Vec<Vec<Value>>> =
        ENGINE_CONFIGS.iter().map(|(e, shapes)| (*e, shapes.iter().map(|s| fields(s)).collect())).collect();
    json!({"bodies": bodies, "engines": engines})
}

#[test]
fn ivrxs_field_tables_are_the_sdks() {
    let answer = check(&json!({"tables": tables()}));
    let diffs = list(&answer["table_differences"]);
    assert!(diffs.is_empty(), "telnyx::spec differs from the SDK's types:\n{}", diffs.join("\n"));
}

// ------------------------------------------------------------------ refusals

/// The actions ivrx never sends (what the calls below really send is checked
/// against the rest).
const ACTIONS_IVRX_DOES_NOT_USE: &[&str] = &[
    "transcription_stop",
    "streaming_start",
    "streaming_stop",
    "record_start",
    "record_stop",
    "client_state_update",
    "leave_queue",
];

/// Every body ivrx sends: the call actions it uses, `dial` and the conference commands.
fn actions_ivrx_uses() -> Vec<&'static str> {
    let actions = ACTION_NAMES.iter().copied().filter(|a| !ACTIONS_IVRX_DOES_NOT_USE.contains(a));
    actions.chain(["dial", "conference_create", "conference_join", "conference_leave"]).collect()
}

fn refusals() -> Vec<Value> {
    let text = std::fs::read_to_string(interop::script("refusals.json")).expect("read refusals.json");
    serde_json::from_str(&text).expect("refusals.json is JSON")
}

/// Sends a body to the sandbox the way the client would and returns (status, answer).
fn send(c: &Carrier, action: &str, body: &Value) -> (u16, Value) {
    let base = c.sandbox.api_base();
    let (method, url) = match action {
        "dial" => ("POST", format!("{base}/calls")),
        "conference_create" => ("POST", format!("{base}/conferences")),
        "conference_join" => ("POST", format!("{base}/conferences/c-1/actions/join")),
        "conference_leave" => ("POST", format!("{base}/conferences/c-1/actions/leave")),
        "client_state_update" => ("PUT", format!("{base}/calls/v3:any/actions/client_state_update")),
        a => ("POST", format!("{base}/calls/v3:any/actions/{a}")),
    };
    let key = c.sandbox.api_key();
    let body = body.clone();
    rt().block_on(async move {
        let client = reqwest::Client::new();
        let req = if method == "PUT" { client.put(url) } else { client.post(url) };
        let r = req.bearer_auth(key).json(&body).send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn the_sandbox_refuses_every_body_the_definition_refuses() {
    let list_ = refusals();
    assert!(list_.len() >= 40, "{} refusals", list_.len());
    for action in actions_ivrx_uses() {
        assert!(list_.iter().any(|r| r["action"] == action), "no refusal for {action}, an action ivrx uses");
    }
    let job: Vec<Value> = list_
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"label": format!("refusal {i}"), "action": r["action"], "body": r["body"]}))
        .collect();
    let answer = check(&json!({"refusals": job}));
    let accepted = list(&answer["accepted_refusals"]);
    assert!(
        accepted.is_empty(),
        "the SDK's types accept these, so they do not belong in the list:\n{}",
        accepted.join("\n")
    );

    let c = Carrier::start(20.0, |_| {});
    let mut wrong = Vec::new();
    for (i, r) in list_.iter().enumerate() {
        let action = r["action"].as_str().unwrap();
        let (status, answer) = send(&c, action, &r["body"]);
        let error = &answer["errors"][0];
        let got = (status, error["code"].as_str().unwrap_or(""), error["source"]["pointer"].as_str().unwrap_or(""));
        let want = (422, r["code"].as_str().unwrap(), r["pointer"].as_str().unwrap());
        if got != want {
            wrong.push(format!("refusal {i} {action} {}: got {got:?}, want {want:?} ({answer})", r["body"]));
        }
    }
    assert!(wrong.is_empty(), "the sandbox answered these unlike Telnyx:\n{}", wrong.join("\n"));
}

// ------------------------------------------------------------------ bodies and webhooks

const OPERATOR: &str =
    "say hi i need some help with my account\npress 0\npause 25\nsay thanks for picking up\nhangup\n";
const SILENT: &str = "pause 120\nhangup\n";
const SELF_SERVICE: &str = "press 1\npause 3\nsay ok thats all thank you\npause 15\nhangup\n";
const ASKS_FOR_HUMAN: &str = "say i want to talk to a real person please\npause 25\nsay thank you\nhangup\n";
const CHATTY: &str = "say hello\npause 30\nsay are you there\npause 30\nhangup\n";
const PSTN_CALLER: &str = "say my internet has been down since yesterday\nsay this is ridiculous and terrible i want to talk to a real person\npause 25\nsay thanks\nhangup\n";
const WAITS_IN_LINE: &str = "say i want to talk to a real person please\npause 90\nsay thank you\nhangup\n";
const BUYER: &str = "say i would like to upgrade my plan what does it cost\npause 25\nsay great\nhangup\n";

/// Calls through a live `ivrx serve` with this configuration and environment;
/// returns what the carrier logged. `setup` runs once the server is up.
fn run_calls(
    config: &str,
    env: &[(&str, &str)],
    scripts: &[&str],
    setup: impl FnOnce(&Carrier, &LiveServe),
) -> (Vec<Value>, Vec<Value>) {
    let c = Carrier::start(20.0, |_| {});
    let s = LiveServe::start_with(&c, config, env, &[]);
    setup(&c, &s);
    let calls: Vec<String> = scripts.iter().map(|script| c.call(script)).collect();
    for ccid in &calls {
        c.wait_hangup(ccid, 900);
        s.report(ccid);
    }
    // Every leg down (agents hang up after the caller).
    wait_for("every leg to end", Duration::from_secs(60), || {
        let log = c.sandbox.webhook_log();
        let legs: BTreeSet<String> = log.iter().map(|d| d.call_control_id.clone()).collect();
        legs.iter()
            .all(|l| c.sandbox.call_status(l).is_none_or(|st| st.state == ivrx::sandbox::LegState::HungUp))
            .then_some(())
    });
    let bodies = c
        .commands()
        .into_iter()
        .filter(|r| r.action.as_deref().is_some_and(|a| a != "retrieve" && a != "conference_retrieve"))
        .map(|r| json!({"action": r.action, "body": r.body, "status": r.status, "error": r.error_code}))
        .collect();
    let webhooks = c.sandbox.webhook_log().into_iter().map(|d| d.body).collect();
    (bodies, webhooks)
}

/// Symbl in PSTN mode: the caller is put in a conference Symbl's phone leg
/// dials into (through the carrier's control API, as the stand-in's dialer
/// does), and the agent joins the same conference.
fn pstn_calls() -> (Vec<Value>, Vec<Value>) {
    use ivrx_testkit::symbl_standin::{telephony::SandboxDialer, StandinConfig, SymblStandin};
    let standin = rt().block_on(SymblStandin::start(StandinConfig::default())).expect("start the Symbl stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("symbl.conf");
    let creds = standin.config();
    std::fs::write(&conf, format!("[credentials]\napp_id = {}\napp_secret = {}\n", creds.app_id, creds.app_secret))
        .expect("write symbl.conf");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let config = format!(
        "[engine]\nkind = \"symbl\"\nsymbl_mode = \"pstn\"\nsymbl_conf = {:?}\nsymbl_dial_in = \"+15555550198\"\n",
        conf.display().to_string()
    );
    let base = standin.base_url();
    run_calls(&config, &[("SYMBL_API_BASE", &base)], &[PSTN_CALLER], |c, _| {
        let dialer = SandboxDialer::new(c.sandbox.base_url(), c.sandbox.api_key());
        standin.set_dialer(std::sync::Arc::new(dialer));
    })
}

/// A server that answers every webhook 200, for the tour's carrier.
fn receiver(port: u16) {
    let listener = rt().block_on(tokio::net::TcpListener::bind(("127.0.0.1", port))).expect("bind the receiver");
    let app = axum::Router::new().fallback(|| async { "ok" });
    rt().spawn(async move { axum::serve(listener, app).await });
}

/// Drives the sandbox through the commands ivrx does not send, so that every
/// webhook it can emit is emitted once; returns the webhooks.
fn tour() -> Vec<Value> {
    let c = Carrier::start(20.0, |s| s.delivery.attempts = 1);
    receiver(c.server_port);
    let agent = "+18005550777";
    c.sandbox.set_party(agent, PartyBehavior::Answer { after_secs: 1.0, script: None });
    let post = |path: &str, body: Value| {
        let url = format!("{}{path}", c.sandbox.api_base());
        let key = c.sandbox.api_key();
        rt().block_on(async move {
            let r = reqwest::Client::new().post(url).bearer_auth(key).json(&body).send().await.expect("request");
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "{path}: {v}");
            v
        })
    };
    let seen = |ccid: &str, event: &str| {
        let (ccid, event) = (ccid.to_string(), event.to_string());
        wait_for(&format!("{event} on {ccid}"), Duration::from_secs(30), || {
            c.sandbox.webhook_log().iter().any(|d| d.call_control_id == ccid && d.event_type == event).then_some(())
        })
    };
    let script = Script::parse("say hello i am calling about my bill\npress 1\npause 60\nhangup\n").unwrap();
    let mut place = PlaceCall::new(script);
    place.caller_id_name = Some("Jane Doe".into());
    let a = c.sandbox.place_call(place).expect("place").call_control_id;
    let path = |ccid: &str, action: &str| format!("/calls/{ccid}/actions/{action}");
    post(
        &path(&a, "answer"),
        json!({"client_state": "dG91cg==", "transcription": true,
               "transcription_config": {"transcription_engine": "Telnyx", "transcription_engine_config": {"language": "en"}}}),
    );
    post(&path(&a, "speak"), json!({"payload": "Welcome.", "voice": "female", "language": "en-GB"}));
    seen(&a, "call.speak.ended");
    seen(&a, "call.transcription");
    post(&path(&a, "gather_using_speak"), json!({"payload": "Press 1.", "voice": "male", "valid_digits": "123"}));
    seen(&a, "call.gather.ended");
    post(&path(&a, "playback_start"), json!({"media_name": "hold-music", "loop": 1}));
    seen(&a, "call.playback.ended");
    post(&path(&a, "playback_start"), json!({"audio_url": "https://example.com/a.mp3", "overlay": true}));
    post(&path(&a, "playback_stop"), json!({}));
    post(
        &path(&a, "streaming_start"),
        json!({"stream_url": "wss://example.com/stream", "stream_track": "both_tracks"}),
    );
    post(&path(&a, "streaming_stop"), json!({}));
    post(&path(&a, "record_start"), json!({"format": "mp3", "channels": "dual"}));
    post(&path(&a, "record_stop"), json!({}));
    seen(&a, "call.recording.saved");
    post(
        &path(&a, "transfer"),
        json!({"to": agent, "custom_headers": [{"name": "X-Case", "value": "42"}],
               "sip_headers": [{"name": "User-to-User", "value": "case=42"}]}),
    );
    seen(&a, "call.bridged");
    post(&path(&a, "hangup"), json!({}));
    seen(&a, "call.hangup");

    // A call that joins a queue and leaves it.
    let q = c.call("pause 60\nhangup\n");
    post(&path(&q, "answer"), json!({}));
    post(&path(&q, "enqueue"), json!({"queue_name": "tour", "max_wait_time_secs": 60, "max_size": 5}));
    seen(&q, "call.enqueued");
    post(&path(&q, "leave_queue"), json!({}));
    seen(&q, "call.dequeued");
    post(&path(&q, "hangup"), json!({}));

    // An outbound call with headers, put in a conference another call joins and leaves.
    let d = post(
        "/calls",
        json!({"connection_id": c.sandbox.connection_id(), "from": "+18005550100", "to": agent,
               "custom_headers": [{"name": "X-Campaign", "value": "spring"}]}),
    );
    let d = d["data"]["call_control_id"].as_str().unwrap().to_string();
    seen(&d, "call.answered");
    let conf = post("/conferences", json!({"call_control_id": d, "name": "tour"}));
    let conf = conf["data"]["id"].as_str().unwrap().to_string();
    let b = c.call("pause 60\nhangup\n");
    post(&path(&b, "answer"), json!({}));
    post(&format!("/conferences/{conf}/actions/join"), json!({"call_control_id": b}));
    seen(&b, "conference.participant.joined");
    post(&format!("/conferences/{conf}/actions/leave"), json!({"call_control_id": b}));
    seen(&b, "conference.participant.left");
    post(&path(&b, "hangup"), json!({}));
    post(&path(&d, "hangup"), json!({}));
    seen(&d, "conference.ended");
    seen(&d, "call.hangup");

    // An SMS, with its delivery webhooks.
    let m = post(
        "/messages",
        json!({"from": "+18005550100", "to": "+18005550177", "text": "Transfer decided", "type": "SMS",
               "messaging_profile_id": "40017f4c-1f4e-4d8b-9e2c-0b5d6a7f8e90"}),
    );
    seen(m["data"]["id"].as_str().unwrap(), "message.finalized");
    c.sandbox.webhook_log().into_iter().map(|d| d.body).collect()
}

/// Known event types the sandbox never emits: the legacy name of
/// `call.transcription`, and `streaming.failed` (its streams do not fail).
const NOT_EMITTED: &[&str] = &["transcription", "streaming.failed"];

#[test]
fn every_body_ivrx_builds_and_every_webhook_the_sandbox_emits_is_valid_under_the_sdks_types() {
    let mut bodies = Vec::new();
    let mut webhooks = Vec::new();
    let mut collect = |(b, w): (Vec<Value>, Vec<Value>)| {
        bodies.extend(b);
        webhooks.extend(w);
    };
    // Warm transfers with hold music and a refusing first agent, re-prompts,
    // self-service and goodbyes, sales; then an outbound call.
    collect(run_calls("", &[], &[OPERATOR, SILENT, SELF_SERVICE, BUYER, CHATTY], |c, s| {
        c.sandbox.set_party("+18005550201", PartyBehavior::Refuse);
        let token = s.token();
        let url = format!("{}/api/v1/calls", s.url);
        rt().block_on(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"to": "+18005550301"}))
                .send()
                .await
                .expect("dial out");
            assert!(r.status().is_success(), "{:?}", r.text().await);
        });
    }));
    collect(run_calls("[transfer]\nmode = \"cold\"\n", &[], &[OPERATOR, ASKS_FOR_HUMAN], |_, _| {}));
    // Every agent busy for a while: the caller waits in a call queue and is
    // bridged with the first agent free.
    collect(run_calls("[queue]\nname = \"tour-wait\"\n", &[], &[WAITS_IN_LINE], |c, _| {
        for agent in ["+18005550201", "+18005550202"] {
            c.sandbox.set_party(agent, PartyBehavior::BusyFor { secs: 20.0 });
        }
    }));
    for engine in [
        "[ivr]\ntranscription_engine = \"Telnyx\"\nlanguage = \"cy-GB\"\n",
        "[ivr]\ntranscription_engine = \"Deepgram\"\n[transcription.deepgram]\ntranscription_model = \"deepgram/nova-2\"\n",
        "[ivr]\ntranscription_engine = \"Azure\"\n[transcription.azure]\nregion = \"eastus\"\n",
        "[transcription.google]\nmodel = \"phone_call\"\nuse_enhanced = true\nhints = [\"router\"]\n",
    ] {
        collect(run_calls(engine, &[], &[ASKS_FOR_HUMAN], |_, _| {}));
    }
    collect(pstn_calls());
    collect((Vec::new(), tour()));

    // (A command racing a hangup is answered 90018: the call state, not the body.)
    let refused: Vec<&Value> =
        bodies.iter().filter(|b| matches!(b["error"].as_str(), Some("10004" | "90012" | "10015"))).collect();
    assert!(refused.is_empty(), "the sandbox refused bodies ivrx sent: {refused:#?}");
    let used: BTreeSet<&str> = bodies.iter().filter_map(|b| b["action"].as_str()).collect();
    let uses = actions_ivrx_uses();
    for action in &used {
        assert!(uses.contains(action), "ivrx sends {action}: take it off ACTIONS_IVRX_DOES_NOT_USE");
    }
    assert!(used.contains("enqueue"), "the queued caller's bodies were checked: {used:?}");
    let emitted: BTreeSet<&str> = webhooks.iter().filter_map(|w| w["data"]["event_type"].as_str()).collect();
    for t in KNOWN_EVENT_TYPES.iter().filter(|t| !NOT_EMITTED.contains(t)) {
        assert!(emitted.contains(t), "no {t} was emitted: {emitted:?}");
    }

    // One body per distinct shape is enough for the checker.
    let mut seen = BTreeSet::new();
    let requests: Vec<Value> = bodies
        .iter()
        .filter(|b| seen.insert(shape(&b["body"]) + b["action"].as_str().unwrap_or_default()))
        .enumerate()
        .map(|(i, b)| json!({"label": format!("body {i}"), "action": b["action"], "body": b["body"]}))
        .collect();
    let mut seen = BTreeSet::new();
    let hooks: Vec<Value> = webhooks
        .iter()
        .filter(|w| seen.insert(shape(w)))
        .enumerate()
        .map(|(i, w)| json!({"label": format!("webhook {i}"), "envelope": w}))
        .collect();
    let answer = check(&json!({"requests": requests, "webhooks": hooks}));
    let errors = list(&answer["errors"]);
    assert!(errors.is_empty(), "not valid under the SDK's types:\n{}", errors.join("\n"));
    println!(
        "checked {} distinct bodies of {} sent ({used:?}) and {} distinct webhooks of {} emitted ({} types)",
        requests.len(),
        bodies.len(),
        hooks.len(),
        webhooks.len(),
        emitted.len()
    );
}

/// The shape of a JSON value: its keys and value kinds, with closed-list
/// values kept (ids, times and text vary from call to call).
fn shape(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    (
                        "event_type"
                        | "status"
                        | "state"
                        | "direction"
                        | "hangup_cause"
                        | "hangup_source"
                        | "transcription_engine"
                        | "transcription_track"
                        | "is_final"
                        | "language"
                        | "channels",
                        _,
                    ) => format!("{k}={v}"),
                    _ => format!("{k}:{}", shape(v)),
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => {
            format!("[{}]", a.iter().map(shape).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join("|"))
        }
        Value::String(_) => "s".into(),
        Value::Number(_) => "n".into(),
        Value::Bool(_) => "b".into(),
        Value::Null => "null".into(),
    }
}
