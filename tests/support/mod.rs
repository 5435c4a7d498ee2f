//! Test support shared by the integration tests: a sandbox carrier on a
//! loopback port, a webhook receiver that verifies every signature with
//! [`WebhookVerifier`], and the real [`TelnyxClient`] pointed at the sandbox.
//!
//! ```ignore
//! mod support;
//! let h = support::Harness::start().await;
//! let a = h.place("say hello\nhangup");
//! h.hooks.wait_for(&a, "call.initiated").await;
//! h.client.answer(&a, Default::default()).await.unwrap();
//! ```

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use ivrx::sandbox::{PlaceCall, Sandbox, SandboxConfig, SandboxHandle, Script};
use ivrx::telnyx::events::Envelope;
use ivrx::telnyx::{ClientConfig, RetryPolicy, TelnyxClient, WebhookVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use tokio::sync::Notify;

/// How long a test waits for a webhook (real time) before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// One webhook as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The parsed envelope.
    pub envelope: Envelope,
    /// The raw body.
    pub raw: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    /// `data.event_type`.
    pub fn event_type(&self) -> &str {
        &self.envelope.data.event_type
    }

    /// `payload.call_control_id`.
    pub fn ccid(&self) -> &str {
        self.envelope.data.payload["call_control_id"].as_str().unwrap_or_default()
    }

    /// `meta.attempt`.
    pub fn attempt(&self) -> u32 {
        self.envelope.meta.as_ref().map_or(0, |m| m.attempt)
    }

    /// The payload.
    pub fn payload(&self) -> &serde_json::Value {
        &self.envelope.data.payload
    }
}

struct FailRule {
    event_type: String,
    remaining: usize,
}

struct ReceiverState {
    verifier: WebhookVerifier,
    all: Mutex<Vec<Received>>,
    fail: Mutex<Vec<FailRule>>,
    bad_signatures: AtomicUsize,
    notify: Notify,
}

/// A webhook endpoint on a loopback port that verifies signatures.
#[derive(Clone)]
pub struct Receiver {
    /// Where to send webhooks.
    pub url: String,
    state: Arc<ReceiverState>,
}

async fn receive(State(s): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let now = chrono::Utc::now().timestamp();
    if let Err(e) =
        s.verifier.verify(header(SIGNATURE_HEADER).as_deref(), header(TIMESTAMP_HEADER).as_deref(), &body, now)
    {
        eprintln!("webhook with a bad signature: {e}");
        s.bad_signatures.fetch_add(1, Ordering::SeqCst);
        s.notify.notify_waiters();
        return StatusCode::UNAUTHORIZED;
    }
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    let envelope = match Envelope::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("unparseable webhook: {e}");
            s.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return StatusCode::BAD_REQUEST;
        }
    };
    let answered = {
        let mut fail = s.fail.lock().unwrap();
        match fail.iter_mut().find(|r| r.remaining > 0 && r.event_type == envelope.data.event_type) {
            Some(rule) => {
                rule.remaining -= 1;
                500
            }
            None => 200,
        }
    };
    s.all.lock().unwrap().push(Received { envelope, raw: body.to_vec(), answered });
    s.notify.notify_waiters();
    StatusCode::from_u16(answered).unwrap_or(StatusCode::OK)
}

impl Receiver {
    /// Starts a receiver that trusts `public_key` (base64).
    pub async fn start(public_key: &str) -> Self {
        let state = Arc::new(ReceiverState {
            verifier: WebhookVerifier::from_base64(public_key).expect("sandbox public key"),
            all: Mutex::new(Vec::new()),
            fail: Mutex::new(Vec::new()),
            bad_signatures: AtomicUsize::new(0),
            notify: Notify::new(),
        });
        let app = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/webhooks/telnyx", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state }
    }

    /// Answers 500 to the next `times` deliveries of `event_type`.
    pub fn fail_next(&self, event_type: &str, times: usize) {
        self.state.fail.lock().unwrap().push(FailRule { event_type: event_type.into(), remaining: times });
    }

    /// Webhooks refused for a bad signature or body.
    pub fn bad_signatures(&self) -> usize {
        self.state.bad_signatures.load(Ordering::SeqCst)
    }

    /// Every delivery, accepted or not, in arrival order.
    pub fn all(&self) -> Vec<Received> {
        self.state.all.lock().unwrap().clone()
    }

    /// Accepted webhooks, once per `data.id`, in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        let mut seen = std::collections::HashSet::new();
        self.all().into_iter().filter(|r| r.answered == 200 && seen.insert(r.envelope.data.id.clone())).collect()
    }

    /// Accepted webhooks of one leg: by its call_control_id, or by its
    /// call_leg_id for the events that have none (`call.recording.saved`).
    pub fn events(&self, ccid: &str) -> Vec<Received> {
        let all = self.accepted();
        let leg_id = |r: &Received| r.payload()["call_leg_id"].as_str().map(str::to_string);
        let legs: std::collections::HashSet<String> =
            all.iter().filter(|r| r.ccid() == ccid).filter_map(leg_id).collect();
        all.into_iter()
            .filter(|r| r.ccid() == ccid || (r.ccid().is_empty() && leg_id(r).is_some_and(|l| legs.contains(&l))))
            .collect()
    }

    /// Event types of one leg, in order.
    pub fn types(&self, ccid: &str) -> Vec<String> {
        self.events(ccid).iter().map(|r| r.event_type().to_string()).collect()
    }

    /// Waits until an accepted webhook matches `pred`; returns the first match.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&Received) -> bool) -> Received {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.accepted().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert_eq!(self.bad_signatures(), 0, "a webhook failed signature verification");
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen: Vec<_> = self.accepted().iter().map(|r| format!("{} {}", r.event_type(), r.ccid())).collect();
                panic!("timed out waiting for {what}; received: {seen:#?}");
            }
        }
    }

    /// Waits for the first `event_type` of a leg.
    pub async fn wait_for(&self, ccid: &str, event_type: &str) -> Received {
        self.wait_nth(ccid, event_type, 1).await
    }

    /// Waits for the `n`-th (1-based) `event_type` of a leg.
    pub async fn wait_nth(&self, ccid: &str, event_type: &str, n: usize) -> Received {
        let what = format!("{event_type} #{n} on {ccid}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found: Vec<_> = self.events(ccid).into_iter().filter(|r| r.event_type() == event_type).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert_eq!(self.bad_signatures(), 0, "a webhook failed signature verification");
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; received on that leg: {:?}", self.types(ccid));
            }
        }
    }

    /// Waits for the final inbound/outbound transcript on a leg whose text starts with `prefix`.
    pub async fn wait_final(&self, ccid: &str, track: &str, prefix: &str) -> Received {
        let what = format!("final {track} transcript {prefix:?} on {ccid}");
        self.wait_until(&what, |r| {
            let d = &r.payload()["transcription_data"];
            r.ccid() == ccid
                && r.event_type() == "call.transcription"
                && d["is_final"] == true
                && d["transcription_track"] == track
                && d["transcript"].as_str().is_some_and(|t| t.starts_with(prefix))
        })
        .await
    }
}

/// A sandbox, a verifying receiver and a client, ready for a test.
pub struct Harness {
    /// The running sandbox.
    pub sandbox: SandboxHandle,
    /// The real Telnyx client, pointed at the sandbox.
    pub client: TelnyxClient,
    /// The webhook receiver.
    pub hooks: Receiver,
}

impl Harness {
    /// A sandbox at ×20 with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A sandbox at ×20, adjusted by `configure` (the webhook URL is set after).
    pub async fn start_with(configure: impl FnOnce(&mut SandboxConfig)) -> Self {
        Self::start_inner(configure, false).await.0
    }

    async fn start_inner(configure: impl FnOnce(&mut SandboxConfig), with_failover: bool) -> (Self, Option<Receiver>) {
        let mut config = Self::config();
        configure(&mut config);
        let key = config.signer.public_key_base64();
        let hooks = Receiver::start(&key).await;
        config.webhook_urls = vec![hooks.url.clone()];
        let failover = if with_failover { Some(Receiver::start(&key).await) } else { None };
        if let Some(f) = &failover {
            config.failover_url = Some(f.url.clone());
        }
        (Self::start_config(config, hooks).await, failover)
    }

    fn config() -> SandboxConfig {
        let mut config = SandboxConfig::new("http://127.0.0.1:9/unset");
        config.time_scale = 20.0;
        config.record_log = true;
        config.delivery.backoff = Duration::from_millis(50);
        config
    }

    /// A sandbox at ×20 delivering round-robin over `n` receivers (the first
    /// is also `hooks`), then over the URLs `configure` appends to
    /// `webhook_urls`.
    pub async fn start_balanced(n: usize, configure: impl FnOnce(&mut SandboxConfig)) -> (Self, Vec<Receiver>) {
        let mut config = Self::config();
        let key = config.signer.public_key_base64();
        let mut receivers = Vec::new();
        for _ in 0..n.max(1) {
            receivers.push(Receiver::start(&key).await);
        }
        config.webhook_urls = receivers.iter().map(|r| r.url.clone()).collect();
        configure(&mut config);
        (Self::start_config(config, receivers[0].clone()).await, receivers)
    }

    async fn start_config(config: SandboxConfig, hooks: Receiver) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sandbox");
        let sandbox = Sandbox::start(config, listener).await.expect("start sandbox");
        let mut cc = ClientConfig::new(sandbox.api_base(), sandbox.api_key());
        cc.retry = RetryPolicy { base_backoff: Duration::from_millis(20), ..RetryPolicy::default() };
        let client = TelnyxClient::new(cc).expect("client");
        Self { sandbox, client, hooks }
    }

    /// Like [`start_with`](Self::start_with), with a second receiver as the
    /// failover URL.
    pub async fn start_with_failover(configure: impl FnOnce(&mut SandboxConfig)) -> (Self, Receiver) {
        let (h, failover) = Self::start_inner(configure, true).await;
        (h, failover.expect("failover receiver"))
    }

    /// Places a simulated inbound call with `script`; returns its call_control_id.
    pub fn place(&self, script: &str) -> String {
        let script = Script::parse(script).expect("valid script");
        self.sandbox.place_call(PlaceCall::new(script)).expect("place call").call_control_id
    }

    /// A raw HTTP client for requests the typed client would not send.
    pub fn http(&self) -> reqwest::Client {
        ivrx::http::tls::install_crypto_provider();
        reqwest::Client::new()
    }
}
