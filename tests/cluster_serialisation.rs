//! A model check of the per-call serialisation of several instances on one
//! PostgreSQL database: the same webhooks of one call, delivered to two
//! in-process servers in many interleavings (each webhook to one instance,
//! to the other, or to both at once; earlier ones delivered again later),
//! give the same recorded events and send the same commands as one instance
//! on SQLite, the embedded default that has no lease to hand over.
//!
//! Webhooks go out in the carrier's order, each one once the one before was
//! acknowledged, and a webhook that answers a command (the call answered,
//! the caller bridged to the agent) only once that command reached the
//! stand-in for the command API. The owner processes in the background
//! meanwhile, so a webhook stored by one instance races the owner's
//! checkpoint on the other. The schedules come from a fixed seed: the test
//! is the same on every run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use tokio::sync::Notify;

use ivrx::intel::LocalEngine;
use ivrx::server::{self, ServerHandle, ServerOptions, ServerParts};
use ivrx::session::SessionSettings;
use ivrx::settings::TransferMode;
use ivrx::store::{Location, SharedStore, SqliteStore, StoreOptions};
use ivrx::telnyx::{ClientConfig, TelnyxClient, WebhookSigner};

/// Longest wait for what the servers do in the background: far more than they need.
const PATIENCE: Duration = Duration::from_secs(60);

/// Schedules generated from the fixed seed, besides the hand-written ones.
const GENERATED: u32 = 32;

/// The commands the stand-in for the command API received: leg, action, body.
#[derive(Clone, Default)]
struct Commands {
    log: Arc<Mutex<Vec<(String, String, Value)>>>,
    bell: Arc<Notify>,
}

impl Commands {
    /// The first `action` sent to `leg`, once it came.
    async fn wait_for(&self, leg: &str, action: &str) -> Value {
        let found = async {
            loop {
                let bell = self.bell.notified();
                let sent =
                    self.log.lock().unwrap().iter().find(|(l, a, _)| l == leg && a == action).map(|c| c.2.clone());
                if let Some(body) = sent {
                    return body;
                }
                bell.await;
            }
        };
        match tokio::time::timeout(PATIENCE, found).await {
            Ok(body) => body,
            Err(_) => panic!("no {action} for {leg}: {:?}", self.log.lock().unwrap()),
        }
    }

    /// `(action, command_id)` of each command sent to `leg`, each command once
    /// (a command sent again keeps its command_id).
    fn sent_to(&self, leg: &str) -> Vec<(String, String)> {
        let mut seen = Vec::new();
        for (l, action, body) in self.log.lock().unwrap().iter() {
            let id = body["command_id"].as_str().unwrap_or_default().to_string();
            if l == leg && !seen.iter().any(|(_, i)| *i == id) {
                seen.push((action.clone(), id));
            }
        }
        seen
    }
}

/// The stand-in for the command API: every command succeeds.
async fn command_api() -> (String, Commands) {
    let commands = Commands::default();
    async fn action(
        State(c): State<Commands>,
        Path((leg, action)): Path<(String, String)>,
        Json(body): Json<Value>,
    ) -> Json<Value> {
        c.log.lock().unwrap().push((leg, action, body));
        c.bell.notify_waiters();
        Json(json!({"data": {"result": "ok"}}))
    }
    let app = Router::new().route("/v2/calls/{id}/actions/{action}", post(action)).with_state(commands.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v2", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (base, commands)
}

/// Servers on one store, the signer their webhooks are signed with and the
/// command API they send to.
struct Deployment {
    servers: Vec<ServerHandle>,
    store: SharedStore,
    signer: WebhookSigner,
    commands: Commands,
    http: reqwest::Client,
}

impl Deployment {
    async fn start(store: SharedStore, instances: usize) -> Deployment {
        let (base, commands) = command_api().await;
        let signer = WebhookSigner::generate();
        // Cold transfers: the session's commands answer nothing it must wait for.
        let mut settings = SessionSettings::default();
        settings.transfer.mode = TransferMode::Cold;
        let settings = Arc::new(settings);
        let mut servers = Vec::new();
        for _ in 0..instances {
            let server = server::start(ServerOptions {
                max_body_bytes: 64 * 1024,
                grace: Duration::from_millis(100),
                reconcile_every: None,
                ..ServerOptions::new(
                    ServerParts {
                        listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                        verifier: signer.verifier(),
                        client: TelnyxClient::new(ClientConfig::new(base.clone(), "KEY")).unwrap(),
                        engine: ivrx::server::calls::Engine::Local(Arc::new(LocalEngine::default())),
                        store: store.clone(),
                        settings: settings.clone(),
                        admin_token: "a-token-for-the-model-check".into(),
                    },
                    &ivrx::config::Config::default(),
                )
            })
            .await
            .unwrap();
            servers.push(server);
        }
        Deployment { servers, store, signer, commands, http: reqwest::Client::new() }
    }

    /// Delivers `body` to server `i`, freshly signed as the carrier does each
    /// attempt; it must be acknowledged.
    async fn deliver(&self, i: usize, body: &[u8]) {
        let ts = chrono::Utc::now().timestamp();
        let url = format!("http://{}/webhooks/telnyx", self.servers[i].addr);
        let r = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(ivrx::telnyx::SIGNATURE_HEADER, self.signer.sign(ts, body))
            .header(ivrx::telnyx::TIMESTAMP_HEADER, ts.to_string())
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(status, 200, "instance {i}: {}", r.text().await.unwrap_or_default());
    }

    /// Plays `call` with `schedule`; what the store recorded and the commands sent, once the call ended.
    async fn play(&self, call: &Call, schedule: &Schedule) -> Outcome {
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        let mut caller_state = Value::Null;
        for step in STEPS {
            let (event_type, payload) = match step {
                Step::After(action) => {
                    let body = self.commands.wait_for(&call.caller(), action).await;
                    if let Some(state) = body.get("client_state").filter(|s| !s.is_null()) {
                        caller_state = state.clone();
                    }
                    continue;
                }
                Step::Webhook(event_type, payload) => (event_type, payload),
            };
            let k = bodies.len();
            bodies.push(call.webhook(k, event_type, payload, &caller_state));
            match schedule.to[k] {
                To::One(i) => self.deliver(i % self.servers.len(), &bodies[k]).await,
                To::Both => {
                    let last = self.servers.len() - 1;
                    tokio::join!(self.deliver(0, &bodies[k]), self.deliver(last, &bodies[k]));
                }
            }
            if let Some((earlier, i)) = schedule.again[k] {
                self.deliver(i % self.servers.len(), &bodies[earlier.index(k + 1)]).await;
            }
        }
        self.ended(call).await
    }

    /// The call's recorded events and commands, once its session ended in
    /// the store with every webhook processed.
    async fn ended(&self, call: &Call) -> Outcome {
        let conv = call.conversation();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let active = self.store.active_sessions().await.unwrap();
            let pending = self.store.unprocessed_webhooks(&conv).await.unwrap();
            if !active.contains(&conv) && pending.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(!left.is_zero(), "{conv} did not end: {} webhooks not processed", pending.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let events = self.store.events(&conv, 0).await.unwrap();
        let mut recorded = Vec::new();
        for (i, r) in events.iter().enumerate() {
            assert_eq!(r.n, i as u64 + 1, "events numbered once each, in order");
            // Only the call's own ids differ between runs.
            let event = serde_json::to_string(&r.event).unwrap();
            recorded.push(event.replace(&call.id, "CALL"));
        }
        let commands = self
            .commands
            .sent_to(&call.caller())
            .into_iter()
            .map(|(a, id)| (a, id.replace(&call.id, "CALL")))
            .collect();
        Outcome { recorded, commands }
    }

    async fn stop(self) {
        for s in self.servers {
            s.shutdown().await;
        }
    }
}

/// What a call left: its recorded events (as JSON, the call's ids made
/// alike) and the commands sent for it, each once.
#[derive(Debug, PartialEq)]
struct Outcome {
    recorded: Vec<String>,
    commands: Vec<(String, String)>,
}

impl Outcome {
    /// How many recorded events contain each of `parts`.
    fn count(&self, parts: &[&str]) -> usize {
        self.recorded.iter().filter(|e| parts.iter().all(|p| e.contains(p))).count()
    }
}

/// What the carrier does next: send a webhook of the caller's leg, or wait
/// for the command a webhook answers.
enum Step {
    Webhook(&'static str, &'static str),
    After(&'static str),
}

/// The call: it is answered, the caller speaks, asks for a person, is
/// transferred (cold) and hangs up once with the agent.
const STEPS: &[Step] = &[
    Step::Webhook("call.initiated", r#"{"direction": "incoming", "state": "parked"}"#),
    Step::After("answer"),
    Step::Webhook("call.answered", "{}"),
    Step::Webhook(
        "call.transcription",
        r#"{"transcription_data": {"transcript": "hi I have a question about my bill", "confidence": 0.93, "is_final": true}}"#,
    ),
    Step::Webhook(
        "call.transcription",
        r#"{"transcription_data": {"transcript": "it is wrong again this month", "confidence": 0.91, "is_final": true}}"#,
    ),
    Step::Webhook(
        "call.transcription",
        r#"{"transcription_data": {"transcript": "let me speak to a real person please", "confidence": 0.95, "is_final": true}}"#,
    ),
    Step::After("transfer"),
    Step::Webhook("call.bridged", "{}"),
    Step::Webhook("call.hangup", r#"{"hangup_cause": "normal_clearing", "hangup_source": "caller"}"#),
];

/// How many webhooks [`STEPS`] sends.
fn webhooks() -> usize {
    STEPS.iter().filter(|s| matches!(s, Step::Webhook(..))).count()
}

/// One call's ids, distinct for each run on a shared database.
struct Call {
    id: String,
}

impl Call {
    fn caller(&self) -> String {
        format!("v3:caller-{}", self.id)
    }

    fn conversation(&self) -> String {
        format!("session-{}", self.id)
    }

    /// Webhook `k` of the call (its event id and time depend on `k` alone).
    fn webhook(&self, k: usize, event_type: &str, payload: &str, client_state: &Value) -> Vec<u8> {
        let mut payload: Value = serde_json::from_str(payload).unwrap();
        payload["call_control_id"] = json!(self.caller());
        payload["call_leg_id"] = json!(format!("leg-{}", self.id));
        payload["call_session_id"] = json!(self.conversation());
        payload["from"] = json!("+15555550100");
        payload["to"] = json!("+15555550142");
        payload["client_state"] = client_state.clone();
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z").unwrap()
            + chrono::Duration::milliseconds(700 * k as i64);
        serde_json::to_vec(&json!({
            "data": {"record_type": "event", "event_type": event_type, "id": format!("event-{}-{k}", self.id),
                     "occurred_at": at.to_rfc3339(), "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "http://lb/webhooks/telnyx"}
        }))
        .unwrap()
    }
}

/// Which instance a webhook goes to.
#[derive(Debug, Clone, Copy)]
enum To {
    One(usize),
    /// Both at once (a load balancer retrying a delivery it thought lost).
    Both,
}

/// Where each webhook goes, and which earlier webhook (if any) is delivered
/// again right after it, to which instance.
#[derive(Debug, Clone)]
struct Schedule {
    to: Vec<To>,
    again: Vec<Option<(prop::sample::Index, usize)>>,
}

impl Schedule {
    fn each(to: impl Fn(usize) -> To) -> Schedule {
        let n = webhooks();
        Schedule { to: (0..n).map(to).collect(), again: vec![None; n] }
    }
}

fn schedule() -> impl Strategy<Value = Schedule> {
    let n = webhooks();
    let to = prop_oneof![Just(To::One(0)), Just(To::One(1)), Just(To::Both)];
    let again = proptest::option::weighted(0.3, (any::<prop::sample::Index>(), 0..2usize));
    (prop::collection::vec(to, n), prop::collection::vec(again, n)).prop_map(|(to, again)| Schedule { to, again })
}

#[test]
fn two_instances_record_what_one_records_whatever_the_interleaving() {
    let Some(pg) = ivrx_testkit::postgres::cluster() else { return };
    ivrx::http::tls::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = pg.fresh_database();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let next_call = || Call { id: format!("c{}", calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) };

    let (one, pair) = rt.block_on(async {
        let sqlite = SqliteStore::open(&home.path().join("ivrx.db"), StoreOptions::default()).unwrap();
        let one = Deployment::start(Arc::new(sqlite), 1).await;
        let postgres = Location::parse(&url).unwrap();
        let store = ivrx::store::open(&postgres, StoreOptions::default()).await.unwrap();
        let pair = Deployment::start(store, 2).await;
        (one, pair)
    });

    let reference = rt.block_on(one.play(&next_call(), &Schedule::each(|_| To::One(0))));
    assert_eq!(reference.count(&[r#""type":"decision""#]), 1, "one decision: {reference:#?}");
    let attempts = reference.count(&[r#""type":"transfer""#, r#""status":"dialing""#]);
    assert_eq!(attempts, 1, "one transfer: {reference:#?}");
    assert_eq!(reference.count(&[r#""type":"call_ended""#]), 1, "{reference:#?}");
    let transfers = reference.commands.iter().filter(|(a, _)| a == "transfer").count();
    assert_eq!(transfers, 1, "{reference:#?}");

    let fixed = [
        ("one instance on PostgreSQL", Schedule::each(|_| To::One(0))),
        ("alternating", Schedule::each(|k| To::One(k % 2))),
        ("alternating the other way", Schedule::each(|k| To::One(k % 2 + 1))),
        ("every webhook to both at once", Schedule::each(|_| To::Both)),
    ];
    for (name, schedule) in fixed {
        let got = rt.block_on(pair.play(&next_call(), &schedule));
        assert_eq!(got, reference, "{name}: {schedule:?}");
    }
    let config = Config { cases: GENERATED, failure_persistence: None, max_shrink_iters: 32, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let outcome = runner.run(&schedule(), |schedule| {
        let got = rt.block_on(pair.play(&next_call(), &schedule));
        prop_assert_eq!(&got, &reference, "{:?}", schedule);
        Ok(())
    });
    rt.block_on(async {
        one.stop().await;
        pair.stop().await;
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
