//! The webhook endpoint and admin API against a recording stand-in for the
//! command API: signatures, replays, malformed input, duplicates, tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

use ivrx::config::Config;
use ivrx::intel::LocalEngine;
use ivrx::server::{self, ServerHandle, ServerOptions, ServerParts};
use ivrx::session::SessionSettings;
use ivrx::store::{SqliteStore, StoreOptions};
use ivrx::telnyx::{ClientConfig, TelnyxClient, WebhookSigner};

type Log = Arc<Mutex<Vec<(String, String, Value)>>>;

/// The commands the stand-in received, and a bell rung at each one.
#[derive(Clone, Default)]
struct Received {
    log: Log,
    bell: Arc<Notify>,
}

impl Received {
    fn push(&self, entry: (String, String, Value)) {
        self.log.lock().unwrap().push(entry);
        self.bell.notify_waiters();
    }
}

async fn fake_api() -> (String, Received) {
    let received = Received::default();
    async fn action(
        State(r): State<Received>,
        Path((id, action)): Path<(String, String)>,
        Json(b): Json<Value>,
    ) -> Json<Value> {
        r.push((id, action, b));
        Json(json!({"data": {"result": "ok"}}))
    }
    async fn dial(State(r): State<Received>, Json(b): Json<Value>) -> Json<Value> {
        r.push((String::new(), "dial".into(), b));
        Json(
            json!({"data": {"call_control_id": "v3:agent", "call_leg_id": "l", "call_session_id": "s", "is_alive": false, "record_type": "call"}}),
        )
    }
    // Every call is gone when asked about.
    async fn retrieve(Path(id): Path<String>) -> Json<Value> {
        Json(json!({"data": {"call_control_id": id, "call_leg_id": "l", "call_session_id": "s", "is_alive": false,
                             "record_type": "call", "end_time": "2026-01-01T12:00:00Z"}}))
    }
    let app = Router::new()
        .route("/v2/calls/{id}/actions/{action}", post(action))
        .route("/v2/calls/{id}", axum::routing::get(retrieve))
        .route("/v2/calls", post(dial))
        .with_state(received.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v2", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, received)
}

struct Fixture {
    server: ServerHandle,
    signer: WebhookSigner,
    log: Log,
    bell: Arc<Notify>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

const TOKEN: &str = "test-admin-token-0123456789";

async fn fixture() -> Fixture {
    ivrx::http::tls::install_crypto_provider();
    let (base, Received { log, bell }) = fake_api().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("ivrx.db"), StoreOptions::default()).unwrap());
    let signer = WebhookSigner::generate();
    let server = server::start(ServerOptions {
        max_body_bytes: 16 * 1024,
        grace: Duration::from_secs(5),
        reconcile_every: None,
        ..ServerOptions::new(
            ServerParts {
                listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                verifier: signer.verifier(),
                client: TelnyxClient::new(ClientConfig::new(base, "KEY")).unwrap(),
                engine: ivrx::server::calls::Engine::Local(Arc::new(LocalEngine::default())),
                store,
                settings: Arc::new(SessionSettings::default()),
                admin_token: TOKEN.into(),
            },
            &Config::default(),
        )
    })
    .await
    .unwrap();
    // The stand-in says every call is gone: a leg recorded before the pass
    // made at start asks about it would be taken for one that ended while
    // ivrx was not listening. Webhooks come once that pass is done.
    let started = tokio::time::timeout(PATIENCE, server.reconciled_at_start()).await;
    assert_eq!(started.expect("the reconciliation at start finishes").open, 0, "nothing was stored before");
    Fixture { server, signer, log, bell, http: reqwest::Client::new(), _dir: dir }
}

/// What `probe` finds, once it finds something (asked every 10 ms, up to [`PATIENCE`]).
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Longest wait for what the server does in the background: far more than it
/// needs on a busy machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn envelope(id: &str, event_type: &str, payload: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": {"record_type": "event", "event_type": event_type, "id": id,
                 "occurred_at": chrono::Utc::now().to_rfc3339(), "payload": payload},
        "meta": {"attempt": 1, "delivered_to": "http://x/webhooks/telnyx"}
    }))
    .unwrap()
}

fn initiated(id: &str) -> Vec<u8> {
    envelope(
        id,
        "call.initiated",
        json!({"call_control_id": "v3:caller", "call_session_id": "sess-1",
        "direction": "incoming", "from": "+1555", "to": "+1800", "state": "parked"}),
    )
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.addr, path)
    }

    async fn post_raw(&self, body: Vec<u8>, sig: Option<String>, ts: Option<String>, ct: &str) -> (u16, Value) {
        let mut req = self.http.post(self.url("/webhooks/telnyx")).header("content-type", ct).body(body);
        if let Some(s) = sig {
            req = req.header("telnyx-signature-ed25519", s);
        }
        if let Some(t) = ts {
            req = req.header("telnyx-timestamp", t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, body: Vec<u8>) -> (u16, Value) {
        let ts = chrono::Utc::now().timestamp();
        let sig = self.signer.sign(ts, &body);
        self.post_raw(body, Some(sig), Some(ts.to_string()), "application/json").await
    }

    /// The actions received so far, once there are at least `n`.
    async fn actions(&self, n: usize) -> Vec<String> {
        let received = || self.log.lock().unwrap().iter().map(|(_, a, _)| a.clone()).collect::<Vec<String>>();
        let enough = async {
            loop {
                // Listening before looking: a command arriving in between still rings.
                let bell = self.bell.notified();
                let got = received();
                if got.len() >= n {
                    return got;
                }
                bell.await;
            }
        };
        match tokio::time::timeout(PATIENCE, enough).await {
            Ok(got) => got,
            Err(_) => panic!("fewer than {n} actions within {PATIENCE:?}: {:?}", received()),
        }
    }
}

#[tokio::test]
async fn a_signed_webhook_is_acknowledged_and_the_call_answered() {
    let f = fixture().await;
    let (status, body) = f.post(initiated("e1")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    assert_eq!(f.actions(1).await, vec!["answer"]);
    let log = f.log.lock().unwrap();
    assert_eq!(log[0].0, "v3:caller");
    assert!(log[0].2["command_id"].as_str().unwrap().starts_with("sess-1-"));
}

#[tokio::test]
async fn duplicates_are_acknowledged_once_processed_once() {
    let f = fixture().await;
    f.post(initiated("e1")).await;
    let (status, body) = f.post(initiated("e1")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    // The next event's effects mark the point by which a second answer would have gone out.
    let cs = f.actions(1).await;
    assert_eq!(cs, vec!["answer"]);
    let state = f.log.lock().unwrap()[0].2["client_state"].as_str().unwrap().to_string();
    f.post(envelope("e2", "call.answered", json!({"call_control_id": "v3:caller", "client_state": state}))).await;
    // Transcription started with the answer: no transcription_start.
    assert_eq!(f.actions(2).await, vec!["answer", "gather_using_speak"]);
}

#[tokio::test]
async fn a_webhook_for_a_full_inbox_is_refused_unacknowledged_then_taken_when_delivered_again() {
    let f = fixture().await;
    f.post(initiated("e1")).await;
    assert_eq!(f.actions(1).await, vec!["answer"]);
    let state = f.log.lock().unwrap()[0].2["client_state"].as_str().unwrap().to_string();
    let calls = &f.server.app.calls;
    let conv = calls.resolve("v3:caller").expect("the call is in progress");
    // Hold every place the inbox gives to messages from outside.
    let mut held = Vec::new();
    while let Ok(slot) = calls.reserve(&conv, false) {
        held.push(slot);
        assert!(held.len() <= ivrx::server::calls::INBOX, "the inbox is bounded");
    }
    assert!(held.len() + ivrx::server::calls::RESERVED_FOR_REPORTS <= ivrx::server::calls::INBOX);
    let answered = envelope("e2", "call.answered", json!({"call_control_id": "v3:caller", "client_state": state}));
    let (status, body) = f.post(answered.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("inbox is full"), "{body}");
    let store = &f.server.app.store;
    store.flush().await.unwrap();
    assert_eq!(store.missing_webhooks(&["e2".to_string()]).await.unwrap(), ["e2"], "not stored: not acknowledged");
    let metrics = f.server.app.metrics.render();
    assert!(metrics.contains(r#"outcome="busy""#), "the refusal is counted: {metrics}");
    // Telnyx delivers it again once there is room: not a duplicate, taken and acted on.
    drop(held);
    let (status, body) = f.post(answered).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")), "{body}");
    assert_eq!(f.actions(2).await, vec!["answer", "gather_using_speak"]);
    store.flush().await.unwrap();
    assert!(store.missing_webhooks(&["e2".to_string()]).await.unwrap().is_empty(), "stored once acknowledged");
}

#[tokio::test]
async fn forged_stale_missing_malformed_and_replayed_signatures_get_401() {
    let f = fixture().await;
    let body = initiated("e1");
    let now = chrono::Utc::now().timestamp();
    let other = WebhookSigner::generate();
    let cases = [
        (Some(other.sign(now, &body)), Some(now.to_string()), "forged"),
        (Some(f.signer.sign(now - 600, &body)), Some((now - 600).to_string()), "stale"),
        (None, Some(now.to_string()), "missing signature"),
        (Some(f.signer.sign(now, &body)), None, "missing timestamp"),
        (Some("not-base64!!".into()), Some(now.to_string()), "bad base64"),
        (Some("AAAA".into()), Some(now.to_string()), "wrong length"),
    ];
    for (sig, ts, what) in cases {
        let (status, err) = f.post_raw(body.clone(), sig, ts, "application/json").await;
        assert_eq!(status, 401, "{what}: {err}");
        assert!(err["error"].as_str().unwrap().starts_with("signature refused"), "{what}: {err}");
    }
    // A good one is accepted; the same bytes and signature again are a
    // repeated delivery of a stored event: acknowledged as a duplicate.
    let sig = f.signer.sign(now, &body);
    let (status, _) = f.post_raw(body.clone(), Some(sig.clone()), Some(now.to_string()), "application/json").await;
    assert_eq!(status, 200);
    let (status, ok) = f.post_raw(body.clone(), Some(sig.clone()), Some(now.to_string()), "application/json").await;
    assert_eq!((status, ok["status"].as_str()), (200, Some("duplicate")), "{ok}");
    // That signature over other bytes is a replay; a stale one is refused even for a stored event.
    let (status, err) = f.post_raw(initiated("e2"), Some(sig), Some(now.to_string()), "application/json").await;
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap().contains("replayed"), "{err}");
    let (status, err) = f
        .post_raw(
            body.clone(),
            Some(f.signer.sign(now - 600, &body)),
            Some((now - 600).to_string()),
            "application/json",
        )
        .await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(f.actions(1).await, vec!["answer"], "nothing forged got through");
}

#[tokio::test]
async fn malformed_bodies_wrong_types_and_oversize_get_clean_4xx() {
    let f = fixture().await;
    let (s, e) = f.post(b"{not json".to_vec()).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) =
        f.post(br#"{"data": {"event_type": "call.dtmf.received", "id": "x", "payload": {"digit": 7}}}"#.to_vec()).await;
    assert_eq!(s, 400);
    let (s, _) = f.post(envelope("", "call.hangup", json!({}))).await;
    assert_eq!(s, 400);
    let body = initiated("e9");
    let ts = chrono::Utc::now().timestamp();
    let (s, _) = f.post_raw(body.clone(), Some(f.signer.sign(ts, &body)), Some(ts.to_string()), "text/plain").await;
    assert_eq!(s, 415);
    let big = envelope("e10", "call.hangup", json!({"padding": "x".repeat(20_000)}));
    let (s, _) = f.post(big).await;
    assert_eq!(s, 413);
}

#[tokio::test]
async fn unknown_events_and_unknown_calls_are_logged_and_ignored() {
    let f = fixture().await;
    let (s, b) =
        f.post(envelope("u1", "call.machine.premium.detection.ended", json!({"call_control_id": "v3:x"}))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("unknown_event")));
    let (s, b) = f.post(envelope("u2", "call.hangup", json!({"call_control_id": "v3:nobody"}))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("unrouted")));
    f.post(initiated("e3")).await;
    assert_eq!(f.actions(1).await, vec!["answer"], "only the real call produced a command");
}

#[tokio::test]
async fn a_saved_recording_reaches_its_call_without_a_call_control_id() {
    let f = fixture().await;
    let leg = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1";
    let init = envelope(
        "r1",
        "call.initiated",
        json!({"call_control_id": "v3:caller", "call_leg_id": leg, "call_session_id": "sess-1",
               "direction": "incoming", "from": "+1555", "to": "+1800", "state": "parked"}),
    );
    f.post(init).await;
    assert_eq!(f.actions(1).await, vec!["answer"]);
    // Telnyx's shape: the leg and session ids, no call_control_id; the state
    // may be null (a recording started by someone else).
    let saved = json!({"call_leg_id": leg, "call_session_id": "sess-1", "connection_id": "1", "client_state": null,
                       "channels": "single", "recording_started_at": "2020-07-10T05:08:59Z",
                       "recording_ended_at": "2020-07-10T05:09:59Z",
                       "recording_urls": {"mp3": "https://x/r.mp3", "wav": "https://x/r.wav"}});
    let (s, b) = f.post(envelope("r2", "call.recording.saved", saved)).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("accepted")), "routed by call_leg_id");
    let other = json!({"call_leg_id": "00000000-0000-0000-0000-000000000000", "channels": "single"});
    let (s, b) = f.post(envelope("r3", "call.recording.saved", other)).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("unrouted")));
}

#[tokio::test]
async fn the_admin_api_requires_the_token() {
    let f = fixture().await;
    let r = f.http.get(f.url("/api/v1/conversations")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = f.http.get(f.url("/api/v1/conversations")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = f.http.get(f.url("/api/v1/conversations")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = f
        .http
        .post(f.url("/api/v1/conversations/nope/transfer"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    for open in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(f.http.get(f.url(open)).send().await.unwrap().status(), 200, "{open}");
    }
}

#[tokio::test]
async fn the_load_run_audit_endpoints_are_served_only_against_the_sandbox() {
    let f = fixture().await;
    for path in ["/api/v1/audit/webhooks", "/api/v1/audit/calls", "/api/v1/stats/reset"] {
        let r = f.http.post(f.url(path)).bearer_auth(TOKEN).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path} is not served in live mode");
    }
}

#[tokio::test]
async fn a_manual_transfer_goes_through_the_guard() {
    let f = fixture().await;
    f.post(initiated("e1")).await;
    let state = f.actions(1).await;
    assert_eq!(state, vec!["answer"]);
    let cs = f.log.lock().unwrap()[0].2["client_state"].as_str().unwrap().to_string();
    let answered = envelope("e2", "call.answered", json!({"call_control_id": "v3:caller", "client_state": cs}));
    f.post(answered).await;
    assert_eq!(f.actions(2).await, vec!["answer", "gather_using_speak"], "the IVR has the caller");
    let transfer =
        |to: Value| f.http.post(f.url("/api/v1/conversations/v3:caller/transfer")).bearer_auth(TOKEN).json(&to).send();
    let r = transfer(json!({"queue": "sales"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = transfer(json!({"queue": "sales"})).await.unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "in_progress");
    let actions = f.actions(5).await;
    assert_eq!(actions.iter().filter(|a| *a == "dial").count(), 1, "{actions:?}");
}

#[tokio::test]
async fn a_leg_whose_hangup_never_comes_is_recorded_as_ended_once_two_checks_find_it_gone() {
    let f = fixture().await;
    f.post(initiated("e1")).await;
    let store = &f.server.app.store;
    let open = eventually("the caller's leg is recorded", || async {
        Some(store.open_legs().await.unwrap()).filter(|o| !o.is_empty())
    })
    .await;
    let conv = open[0].conversation_id.clone();
    let calls = &f.server.app.calls;
    let mut suspects = std::collections::HashSet::new();
    let first = ivrx::server::reconcile::pass(calls, &mut suspects, false).await;
    assert_eq!((first.open, first.gone), (1, 0), "a leg found gone once may have its hangup on the way");
    let second = ivrx::server::reconcile::pass(calls, &mut suspects, false).await;
    assert_eq!((second.open, second.gone), (1, 1));
    let ended = eventually("the leg's end is recorded", || async {
        store.flush().await.unwrap();
        let ended = store
            .events(&conv, 0)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.event {
                ivrx::session::DomainEvent::LegEnded { cause, source, .. } => Some((cause, source)),
                _ => None,
            })
            .collect::<Vec<_>>();
        Some(ended).filter(|e| !e.is_empty())
    })
    .await;
    let expected = (Some("ended_while_not_listening".to_string()), Some("reconciliation".to_string()));
    assert_eq!(ended, vec![expected]);
    assert!(store.open_legs().await.unwrap().is_empty());
    // At start, a leg found gone is reported at once.
    assert_eq!(ivrx::server::reconcile::pass(calls, &mut suspects, true).await.open, 0);
}
