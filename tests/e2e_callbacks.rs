//! End to end: callbacks. Every agent busy, the caller waits in the queue;
//! after the longest wait they are offered a callback, accept it (a key or
//! words), the callback is recorded and they are texted a confirmation
//! (Telnyx Messaging, seen at the sandbox's `GET /sandbox/v1/messages`).
//! Once an agent is free, the agent is dialled, then the caller, and both
//! are bridged, in the same conversation. A text the carrier refuses is
//! recorded and the call goes on the same. A bad `[queue.callback]` value
//! is refused at start.

mod serve_support;

use std::time::{Duration, Instant};

use serde_json::Value;
use serve_support::{block_on, conv, events, refused_at_start, Serve};

/// The bundled caller who waits, then presses 9 to be called back.
const CALLBACK: &str = include_str!("../examples/waits_then_callback.ivrx");

/// A short wait, a callback offer tried every second, and every agent busy
/// for the first 90 s after they are first called.
const CONFIG: &str = "[queue]\nmax_wait_secs = 20\n[queue.callback]\naccept_keys = \"9\"\nretry_secs = 1\n\
[sandbox.agents]\n\"+18005550201\" = \"busy:90\"\n\"+18005550202\" = \"busy:90\"\n";

/// The caller called back: answers, talks with the agent and hangs up.
const CALLED_BACK: &str = "say hello yes thanks for calling me back\npause 8\nhangup\n";

/// The server with `config`, and the caller's part when called back.
fn start(config: &str) -> Serve {
    let s = Serve::start(config, &[]);
    party(&s, ivrx::sandbox::DEFAULT_CALLER, CALLED_BACK);
    s
}

/// The statuses of the conversation's `callback` events, in order.
fn callback_statuses(ev: &[Value]) -> Vec<&str> {
    ev.iter().filter(|e| e["type"] == "callback").map(|e| e["status"].as_str().unwrap()).collect()
}

/// The conversation's events of `kind`, once `done` holds for them (an
/// SMS's outcome is recorded when the carrier has answered).
fn until(s: &Serve, conv: &str, kind: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: Vec<Value> = events(&s.db(), conv).into_iter().filter(|e| e["type"] == kind).collect();
        if done(&n) {
            return n;
        }
        assert!(Instant::now() < deadline, "{kind} never settled: {n:#?}\n{}", s.log.lock().unwrap().join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Gives `number` a scripted party: what it does when called.
fn party(s: &Serve, number: &str, script: &str) {
    let url = format!("{}/sandbox/v1/parties", s.sandbox);
    let body = serde_json::json!({"number": number, "behavior": "answer:2", "script": script});
    block_on(async {
        let r = reqwest::Client::new().post(url).bearer_auth("sandbox").json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap());
    })
}

/// What the carrier says of the legs placed for calls (`GET /sandbox/v1/legs/audit`).
fn leg_audit(s: &Serve) -> Value {
    let url = format!("{}/sandbox/v1/legs/audit", s.sandbox);
    block_on(async {
        let r = reqwest::Client::new().get(url).bearer_auth("sandbox").send().await.unwrap();
        r.json::<Value>().await.unwrap()["data"].clone()
    })
}

fn caller_number(ev: &[Value]) -> String {
    let started = ev.iter().find(|e| e["type"] == "call_started").unwrap();
    started["from"].as_str().unwrap().to_string()
}

#[test]
fn after_the_longest_wait_the_caller_accepts_a_callback_with_a_key_and_is_texted_a_confirmation() {
    let s = start(CONFIG);
    let r = s.dial(CALLBACK);
    let id = conv(&r);
    let ev = events(&s.db(), &id);
    let number = caller_number(&ev);

    let callbacks: Vec<(&str, &str, &str)> = ev
        .iter()
        .filter(|e| e["type"] == "callback")
        .map(|e| {
            (e["status"].as_str().unwrap(), e["number"].as_str().unwrap(), e["detail"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(callbacks[..2], [("offered", number.as_str(), ""), ("requested", number.as_str(), "pressed 9")]);
    let said: Vec<&str> = ev.iter().filter(|e| e["type"] == "ivr_said").filter_map(|e| e["text"].as_str()).collect();
    assert!(
        said.iter().any(|t| t.contains("nobody could take your call in time. Press 9 or say call me back")),
        "{said:#?}"
    );
    assert!(said.iter().any(|t| t.starts_with("Thank you. We will call you back")), "{said:#?}");

    // The confirmation SMS: taken by the carrier once, recorded as sent.
    let sent = until(&s, &id, "notification", |n| !n.is_empty());
    assert_eq!(
        (sent[0]["status"].as_str(), sent[0]["to"].as_str()),
        (Some("sent"), Some(number.as_str())),
        "{sent:#?}"
    );
    assert_eq!(sent[0]["key"], format!("{id}:callback"));
    let texts: Vec<Value> = s.messages().into_iter().filter(|m| m["to"] == number.as_str()).collect();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert_eq!(texts[0]["text"], format!("We will call you back at {number} as soon as an agent is free."));
}

#[test]
fn a_caller_can_accept_the_callback_by_saying_so() {
    let s = start(CONFIG);
    let script =
        "say i need to talk to a real person right now\npause 45\nsay yes please call me back\npause 30\nhangup\n";
    let r = s.dial(script);
    let ev = events(&s.db(), &conv(&r));
    let requested = ev.iter().find(|e| e["type"] == "callback" && e["status"] == "requested").expect("requested");
    assert_eq!(requested["detail"], "said \"call me back\"");
}

#[test]
fn a_confirmation_the_carrier_refuses_is_recorded_and_the_call_ends_the_same() {
    let s = start(&format!("{CONFIG}[sandbox.chaos]\nmessage_refuse_rate = 1.0\n"));
    let r = s.dial(CALLBACK);
    assert_eq!(r["end_reason"], "completed_with_agent", "the callback is unaffected: {r}");
    let id = conv(&r);
    let failed = until(&s, &id, "notification", |n| !n.is_empty());
    assert_eq!(failed[0]["status"], "failed", "{failed:#?}");
    assert!(failed[0]["detail"].as_str().unwrap_or_default().contains("40001"), "{failed:#?}");
    let ev = events(&s.db(), &id);
    assert_eq!(
        callback_statuses(&ev),
        ["offered", "requested", "placed", "answered"],
        "still recorded and called back"
    );
    assert!(s.messages().is_empty());
}

#[test]
fn a_bad_callback_value_is_refused_at_start_with_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (config, key, fix) in [
        ("[queue]\n[queue.callback]\naccept_keys = \"1\"\n", "queue.callback.accept_keys", "key of the IVR menu"),
        ("[queue]\n[queue.callback]\naccept_keys = \"x\"\n", "queue.callback.accept_keys", "keypad keys"),
        ("[queue]\n[queue.callback]\naccept_phrases = []\n", "queue.callback.accept_phrases", "at least one phrase"),
        ("[queue]\n[queue.callback]\nsms_text = \"\"\n", "queue.callback.sms_text", "1600"),
    ] {
        refused_at_start(dir.path(), config, key, fix);
    }
}

#[test]
fn once_an_agent_is_free_the_agent_is_dialled_then_the_caller_and_both_are_bridged_in_the_same_conversation() {
    let s = start(CONFIG);
    let r = s.dial(CALLBACK);
    let id = conv(&r);
    let ended = until(&s, &id, "call_ended", |e| !e.is_empty());
    assert_eq!(ended[0]["reason"], "completed_with_agent", "{ended:#?}");
    let ev = events(&s.db(), &id);
    assert_eq!(callback_statuses(&ev), ["offered", "requested", "placed", "answered"], "{ev:#?}");
    let original = caller_ccid_of(&ev, 0);
    for cb in ev.iter().filter(|e| e["type"] == "callback") {
        assert_eq!(cb["original_call_control_id"], original.as_str(), "linked to the original call: {cb}");
    }

    // Agent first, then the caller: the caller's new leg joins after the agent answered.
    let requested = ev.iter().position(|e| e["type"] == "callback" && e["status"] == "requested").unwrap();
    let after: Vec<&Value> = ev[requested..].iter().collect();
    let agent_up =
        after.iter().position(|e| e["type"] == "transfer" && e["status"] == "answered").expect("an agent answered");
    let caller_joined = after
        .iter()
        .position(|e| e["type"] == "leg_joined" && e["role"] == "caller")
        .expect("the caller's new leg joined");
    let connected = after.iter().position(|e| e["type"] == "transfer" && e["status"] == "connected").expect("bridged");
    assert!(agent_up < caller_joined && caller_joined < connected, "{after:#?}");
    let new_leg = caller_ccid_of(&ev, 1);
    assert_ne!(new_leg, original, "a new leg to the caller");
    let connected_count = ev.iter().filter(|e| e["type"] == "transfer" && e["status"] == "connected").count();
    assert_eq!(connected_count, 1, "one agent");

    // `ivrx analyze` counts it, with its wait from the request to the caller answering.
    let out = s.command(&["analyze", "--db", s.db().to_str().unwrap(), "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cb = &report["callbacks"];
    assert_eq!((cb["requested"].as_u64(), cb["placed"].as_u64(), cb["answered"].as_u64()), (Some(1), Some(1), Some(1)));
    // (Each simulated call keeps its own clock, so the sandbox's wait is not compared to a figure.)
    assert_eq!(cb["wait"]["count"], 1, "{cb}");
    assert!(cb["wait"]["median_ms"].is_number(), "{cb}");
    let out = s.command(&["analyze", "--db", s.db().to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Callbacks") && text.contains("wait to answer"), "{text}");

    // The carrier saw the agent's leg bridged with the caller's, and nothing left up.
    let audit = leg_audit(&s);
    assert!(audit["left_up"].as_array().unwrap().is_empty(), "{audit:#}");
    assert!(audit["bridged_elsewhere"].as_array().unwrap().is_empty(), "{audit:#}");
}

/// The `n`th caller leg of a conversation.
fn caller_ccid_of(ev: &[Value], n: usize) -> String {
    let joined: Vec<&Value> = ev.iter().filter(|e| e["type"] == "leg_joined" && e["role"] == "caller").collect();
    joined[n]["call_control_id"].as_str().unwrap().to_string()
}

#[test]
fn a_pending_callback_is_placed_after_a_restart() {
    // Agents busy for 200 s: the callback is still pending when the server is killed.
    let config = CONFIG.replace("busy:90", "busy:200");
    let mut s = start(&config);
    let script = s.script("callback", CALLBACK);
    let mut caller = s
        .command(&["dial", "--sandbox", "--json", "--script", script.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the caller accepted and was hung up on.
    let deadline = Instant::now() + Duration::from_secs(120);
    let id = loop {
        let accepted = rusqlite::Connection::open(s.db()).ok().and_then(|c| {
            c.query_row("SELECT conversation_id FROM events WHERE kind = 'callback' LIMIT 1", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
        });
        if let Some(id) = accepted {
            let ev = events(&s.db(), &id);
            let hung_up = ev.iter().any(|e| e["type"] == "leg_ended" && e["role"] == "caller");
            if hung_up && ev.iter().any(|e| e["type"] == "callback" && e["status"] == "requested") {
                break id;
            }
        }
        assert!(Instant::now() < deadline, "the callback was never requested");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = caller.kill();
    let _ = caller.wait();
    let before = events(&s.db(), &id);
    assert!(!before.iter().any(|e| e["type"] == "call_ended" || e["status"] == "placed"), "pending: {before:#?}");

    s.restart();
    party(&s, ivrx::sandbox::DEFAULT_CALLER, CALLED_BACK);
    let ended = until(&s, &id, "call_ended", |e| !e.is_empty());
    assert_eq!(ended[0]["reason"], "completed_with_agent", "{ended:#?}");
    let ev = events(&s.db(), &id);
    assert_eq!(callback_statuses(&ev), ["offered", "requested", "placed", "answered"], "{ev:#?}");
    assert!(leg_audit(&s)["left_up"].as_array().unwrap().is_empty());
}
