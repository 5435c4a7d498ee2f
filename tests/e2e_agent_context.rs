//! End to end: the caller's context reaches the agent's side. The agent's
//! leg is dialled with `custom_headers` (as its `call.initiated` shows), and
//! a CRM receiver gets one signed event per transfer decision and outcome,
//! retried after a 500.

mod serve_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use ivrx::server::notify::crm::{self, CrmEvent};
use serde_json::Value;
use serve_support::{caller_lines, conv, events, Serve};

const FRUSTRATED: &str = include_str!("../examples/frustrated.ivrx");

/// The `call.initiated` payloads of the agent legs, as the server stored them.
fn agent_initiated(s: &Serve) -> Vec<Value> {
    let db = rusqlite::Connection::open(s.db()).unwrap();
    let mut q = db.prepare("SELECT body FROM webhooks WHERE event_type = 'call.initiated' ORDER BY rowid").unwrap();
    let bodies: Vec<String> = q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["data"]["payload"].clone())
        .filter(|p| p["direction"] == "outgoing")
        .collect()
}

fn headers_of(payload: &Value) -> Vec<(String, String)> {
    let list = payload["custom_headers"].as_array().cloned().unwrap_or_default();
    list.iter().map(|h| (h["name"].as_str().unwrap().into(), h["value"].as_str().unwrap().into())).collect()
}

#[test]
fn the_agent_leg_rings_with_the_callers_context_and_no_caller_words_when_redacting() {
    let s = Serve::start("", &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!(r["transferred"], true, "{r}");
    let legs = agent_initiated(&s);
    assert_eq!(legs.len(), 1, "{legs:#?}");
    let h = headers_of(&legs[0]);
    let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("X-Ivrx-Conversation-Id"), Some(conv(&r)), "{h:?}");
    assert_eq!(get("X-Ivrx-Reason").as_deref(), r["reason"].as_str());
    assert_eq!(get("X-Ivrx-Queue").as_deref(), Some("support"));
    let score: f64 = get("X-Ivrx-Score").unwrap().parse().unwrap();
    assert!((-1.0..0.0).contains(&score), "{score}");
    // Only a tracker's phrase (configuration, not the caller's words) may go out.
    assert_eq!(get("X-Ivrx-Trigger").as_deref(), r["trigger_phrase"].as_str(), "{h:?} {r}");
    let words = caller_lines(&r).join(" ");
    assert!(h.iter().all(|(_, v)| v.len() < 12 || !words.contains(v.as_str())), "no caller words: {h:?}");
}

#[test]
fn header_names_are_configurable_and_values_cut_without_redaction() {
    let config = "[storage]\nredact_pii = false\n[transfer.headers]\nreason = \"X-Case-Reason\"\nscore = \"\"\nmax_value_chars = 16\n";
    let s = Serve::start(config, &[]);
    let r = s.dial(FRUSTRATED);
    let h = headers_of(&agent_initiated(&s)[0]);
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["X-Ivrx-Conversation-Id", "X-Case-Reason", "X-Ivrx-Trigger", "X-Ivrx-Queue"], "{h:?}");
    let trigger = &h[2].1;
    assert!(trigger.chars().count() <= 16 && !trigger.is_empty(), "{trigger:?}");
    assert!(r["conversation_id"].as_str().unwrap().starts_with(&h[0].1), "cut to 16: {h:?}");
}

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes, u16)>>>;

/// A CRM on loopback that answers its first request 500, then 200, and keeps
/// every request with what it answered.
fn crm_receiver() -> (String, Received, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hooks/ivrx",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                let mut g = keep.lock().unwrap();
                let status = if g.is_empty() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                g.push((headers, body, status.as_u16()));
                status
            }
        }),
    );
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/hooks/ivrx?token=t0", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (url, got, rt)
}

const SECRET: &str = "0123456789abcdef-crm-secret";

#[test]
fn the_crm_gets_one_signed_event_per_decision_and_outcome_retried_after_a_500() {
    let (url, got, _rt) = crm_receiver();
    let config = format!("[notify.crm]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nbackoff_ms = 50\n");
    let s = Serve::start(&config, &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!(r["transfer_status"], "connected", "{r}");
    let id = conv(&r);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.lock().unwrap().iter().filter(|(_, _, s)| *s == 200).count() < 2 {
        assert!(Instant::now() < deadline, "CRM events never came: {:?}", got.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(50));
    }
    let now = chrono::Utc::now().timestamp();
    let mut taken: Vec<CrmEvent> = Vec::new();
    let requests = got.lock().unwrap().clone();
    for (headers, body, status) in &requests {
        let h = |n| headers.get(n).and_then(|v| v.to_str().ok());
        crm::verify(
            SECRET.as_bytes(),
            h(crm::TIMESTAMP_HEADER),
            h(crm::SIGNATURE_HEADER),
            body,
            now,
            Duration::from_secs(300),
        )
        .expect("signed with the shared secret");
        let event: CrmEvent = serde_json::from_slice(body).unwrap();
        assert_eq!(h(crm::EVENT_ID_HEADER), Some(event.id.as_str()));
        if *status == 200 {
            taken.push(event);
        }
    }
    assert_eq!(requests.len(), 3, "the first was answered 500 and sent again");
    let first: CrmEvent = serde_json::from_slice(&requests[0].1).unwrap();
    assert_eq!(first.id, taken[0].id, "the retry is the same event");
    let kinds: Vec<&str> = taken.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["transfer.decided", "transfer.connected"]);
    let decided = &taken[0];
    assert_eq!((decided.conversation_id.as_str(), decided.queue.as_str()), (id.as_str(), "support"));
    assert_eq!(decided.reason, r["reason"].as_str().unwrap());
    assert_eq!((decided.caller.as_deref(), decided.attempt), (Some("+15555550100"), 0));
    assert_eq!(decided.watch, format!("ivrx watch {id}"));
    assert_eq!((taken[1].attempt, taken[1].agent.as_deref()), (1, Some("+18005550201")));

    // What happened to each is recorded, the URL without its token.
    let deadline = Instant::now() + Duration::from_secs(30);
    let recorded = loop {
        let n: Vec<Value> =
            events(&s.db(), &id).into_iter().filter(|e| e["type"] == "notification" && e["channel"] == "crm").collect();
        if n.len() == 2 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen: Vec<(&str, u64)> =
        recorded.iter().map(|e| (e["status"].as_str().unwrap(), e["attempts"].as_u64().unwrap())).collect();
    assert_eq!(seen, [("sent", 2), ("sent", 1)], "{recorded:#?}");
    assert!(recorded.iter().all(|e| !e["to"].as_str().unwrap().contains("token")), "{recorded:#?}");
}

#[test]
fn an_unreachable_crm_is_recorded_as_failed_and_the_call_goes_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[notify.crm]\nurl = \"http://127.0.0.1:{port}/hooks\"\nsecret = \"{SECRET}\"\nmax_attempts = 2\nbackoff_ms = 20\n"
    );
    let s = Serve::start(&config, &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!(
        (r["transfer_status"].as_str(), r["end_reason"].as_str()),
        (Some("connected"), Some("completed_with_agent"))
    );
    let id = conv(&r);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: Vec<Value> = events(&s.db(), &id).into_iter().filter(|e| e["channel"] == "crm").collect();
        if n.len() == 2 {
            assert!(n.iter().all(|e| e["status"] == "failed" && e["attempts"] == 2), "{n:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "{n:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
