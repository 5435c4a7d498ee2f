//! Webhook delivery: the real envelope, Ed25519-signed, one call at a time.
//!
//! Webhooks of one call session (an A leg and its transfer legs) are delivered
//! in order, each waiting for the previous one's answer; different calls are
//! delivered concurrently. A worker task exists only while a session has
//! webhooks waiting. A non-2xx answer or a timeout is retried with
//! `meta.attempt` incremented, a fresh signature and timestamp, and backoff;
//! retries go to the failover URL when one is configured.
//!
//! With several webhook URLs the sandbox also plays the load balancer in
//! front of the application's instances ([`Balancer`]): webhooks addressed to
//! the application go round-robin over the URLs, and within one attempt a URL
//! that refuses the connection, times out or answers 5xx is passed over for
//! the next one, as a load balancer retries the next upstream. Only when every
//! URL has failed does the attempt fail and the carrier's retries above apply.

use ivrx_http::error_chain::error_chain;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivrx_telnyx::events::Envelope;
use ivrx_telnyx::{WebhookSigner, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chaos::{Chaos, ChaosRng, DeliveryPlan};
use super::clock::SandboxClock;
use super::stats::DeliveryStats;
use super::world::Emitted;

/// How webhooks are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryConfig {
    /// Attempts per webhook, including the first (4).
    pub attempts: u32,
    /// How long one attempt may take, real time (2 s).
    pub timeout: Duration,
    /// Wait before the second attempt; doubled after each failure (250 ms).
    pub backoff: Duration,
    /// Longest wait between attempts (4 s).
    pub max_backoff: Duration,
    /// When a webhook has waited this long (real time) for the application's
    /// answer, the sandbox clock stands still until no webhook has (100 ms;
    /// `None`: never). Time spent on chaos delays and on backoff after a
    /// failed attempt does not count: those are the carrier's own waits.
    pub hold_after: Option<Duration>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            attempts: 4,
            timeout: Duration::from_secs(2),
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            hold_after: Some(Duration::from_millis(100)),
        }
    }
}

impl DeliveryConfig {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        self.backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_backoff)
    }
}

/// One delivery attempt, as kept in the webhook log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `data.id` of the event.
    pub event_id: String,
    /// `data.event_type`.
    pub event_type: String,
    /// The leg the event is about.
    pub call_control_id: String,
    /// Where it was sent.
    pub url: String,
    /// `meta.attempt`.
    pub attempt: u32,
    /// A chaos duplicate of an event already delivered.
    pub duplicate: bool,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed without an answer.
    pub error: Option<String>,
    /// Real time the attempt was sent.
    pub sent_at: String,
    /// The envelope as sent.
    pub body: Value,
}

impl DeliveryRecord {
    /// True when the receiver answered 2xx.
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The envelope, typed.
    pub fn envelope(&self) -> Option<Envelope> {
        serde_json::from_value(self.body.clone()).ok()
    }
}

/// A bounded log: the newest `cap` entries.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    cap: usize,
    items: VecDeque<T>,
}

impl<T: Clone> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), items: VecDeque::new() }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() >= self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }
}

/// The load balancer in front of the application: its URLs, tried in turn.
#[derive(Debug)]
pub(crate) struct Balancer {
    /// The application's webhook URLs; the first also names the application
    /// in the simulation (webhooks addressed to it are balanced).
    urls: Vec<Arc<str>>,
    /// Where the next call session's first webhook goes.
    next_session: AtomicUsize,
}

impl Balancer {
    /// A balancer over `urls` (at least one).
    pub fn new(urls: Vec<Arc<str>>) -> Self {
        debug_assert!(!urls.is_empty());
        Self { urls, next_session: AtomicUsize::new(0) }
    }

    /// Where a new call session's rotation starts: spread over the URLs.
    fn first(&self) -> usize {
        if self.urls.len() < 2 {
            return 0;
        }
        self.next_session.fetch_add(1, Ordering::Relaxed) % self.urls.len()
    }

    /// True when sessions keep a rotation between bursts.
    fn rotates(&self) -> bool {
        self.urls.len() > 1
    }

    /// The URLs a webhook addressed to `url` may go to: the whole pool when it
    /// is addressed to the application, else `url` alone (a leg given its own
    /// `webhook_url`).
    fn upstreams<'a>(&'a self, url: &'a Arc<str>) -> &'a [Arc<str>] {
        if self.urls.first().is_some_and(|u| Arc::ptr_eq(u, url) || u == url) {
            &self.urls
        } else {
            std::slice::from_ref(url)
        }
    }
}

/// True when a load balancer would try the next URL: no answer, or a 5xx.
fn passes_over(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

#[derive(Serialize)]
struct WireEnvelope<'a> {
    data: WireData<'a>,
    meta: WireMeta<'a>,
}

#[derive(Serialize)]
struct WireData<'a> {
    record_type: &'static str,
    event_type: &'a str,
    id: &'a str,
    /// Absent when the payload carries its own (`conference.created`, `conference.ended`).
    #[serde(skip_serializing_if = "Option::is_none")]
    occurred_at: Option<&'a str>,
    payload: &'a Value,
}

#[derive(Serialize)]
struct WireMeta<'a> {
    attempt: u32,
    delivered_to: &'a str,
}

struct SessionQueue {
    items: VecDeque<Emitted>,
    /// Only with chaos on: kept between bursts so a seeded run draws one
    /// continuous stream of decisions per session.
    rng: Option<ChaosRng>,
    /// A worker task is delivering this queue.
    running: bool,
    /// Where the session's next webhook goes first, in the balancer's URLs.
    cursor: usize,
    /// When the queue last went idle (for pruning).
    idle_since: Option<Instant>,
}

/// The delivery service shared by every call.
pub(crate) struct Delivery {
    http: reqwest::Client,
    signer: WebhookSigner,
    cfg: DeliveryConfig,
    balancer: Balancer,
    failover: Option<Arc<str>>,
    chaos: Chaos,
    queues: Mutex<HashMap<u64, SessionQueue>>,
    log: Option<Mutex<Ring<DeliveryRecord>>>,
    /// The logs are kept only while this is set (and `log` exists).
    log_on: AtomicBool,
    /// Counters, and ids and latencies while a load run tracks them.
    pub stats: DeliveryStats,
    runtime: tokio::runtime::Handle,
    stopped: AtomicBool,
    last_sweep: Mutex<Instant>,
    /// Sessions whose next webhook waits for the application's answer, and since when.
    waiting: Mutex<HashMap<u64, Instant>>,
    /// Wakes the watchdog when a session starts waiting.
    waiting_changed: tokio::sync::Notify,
    clock: SandboxClock,
}

/// How long a reordered webhook waits for a next one to swap with (real).
const REORDER_WAIT: Duration = Duration::from_millis(100);

impl Delivery {
    pub fn new(
        signer: WebhookSigner,
        cfg: DeliveryConfig,
        balancer: Balancer,
        failover: Option<String>,
        chaos: Chaos,
        log_capacity: Option<usize>,
        clock: SandboxClock,
    ) -> std::io::Result<Arc<Self>> {
        ivrx_http::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("ivrx-sandbox/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(std::io::Error::other)?;
        let hold_after = cfg.hold_after;
        let delivery = Arc::new(Self {
            http,
            signer,
            cfg,
            balancer,
            failover: failover.filter(|f| !f.is_empty()).map(Arc::from),
            chaos,
            queues: Mutex::new(HashMap::new()),
            log_on: AtomicBool::new(log_capacity.is_some()),
            log: log_capacity.map(|c| Mutex::new(Ring::new(c))),
            stats: DeliveryStats::default(),
            runtime: tokio::runtime::Handle::current(),
            stopped: AtomicBool::new(false),
            last_sweep: Mutex::new(Instant::now()),
            waiting: Mutex::new(HashMap::new()),
            waiting_changed: tokio::sync::Notify::new(),
            clock,
        });
        if let Some(after) = hold_after {
            delivery.runtime.spawn(Arc::clone(&delivery).watch_overdue(after));
        }
        Ok(delivery)
    }

    /// The session's next webhook starts waiting for an answer now.
    fn waiting(&self, session: u64) {
        if self.cfg.hold_after.is_none() {
            return;
        }
        let first = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            w.insert(session, Instant::now());
            w.len() == 1
        };
        if first {
            self.waiting_changed.notify_one();
        }
    }

    /// The session has nothing waiting for the application (idle, or in the carrier's own wait).
    fn not_waiting(&self, session: u64) {
        if self.cfg.hold_after.is_some() {
            self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&session);
        }
    }

    /// Holds the clock while any webhook has waited `after` for its answer.
    async fn watch_overdue(self: Arc<Self>, after: Duration) {
        const POLL: Duration = Duration::from_millis(10);
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                self.clock.release();
                return;
            }
            let changed = self.waiting_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let oldest = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).values().min().copied();
            match oldest {
                Some(t) if t.elapsed() >= after => self.clock.hold(),
                _ => self.clock.release(),
            }
            match oldest {
                Some(_) => tokio::time::sleep(POLL).await,
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
                }
            }
        }
    }

    /// Queues a webhook behind its session's earlier ones.
    pub fn push(self: &Arc<Self>, e: Emitted) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let session = e.session;
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let q = queues.entry(session).or_insert_with(|| SessionQueue {
            items: VecDeque::with_capacity(4),
            rng: (!self.chaos.delivery_is_calm()).then(|| ChaosRng::new(self.chaos.seed, session)),
            running: false,
            cursor: self.balancer.first(),
            idle_since: None,
        });
        q.items.push_back(e);
        self.stats.queued();
        if q.running {
            return;
        }
        q.running = true;
        q.idle_since = None;
        self.sweep(&mut queues);
        drop(queues);
        self.waiting(session);
        let me = Arc::clone(self);
        self.runtime.spawn(me.run(session));
    }

    /// Forgets sessions idle for a long time (their chaos generators).
    fn sweep(&self, queues: &mut HashMap<u64, SessionQueue>) {
        const IDLE: Duration = Duration::from_secs(15 * 60);
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if queues.len() < 1024 || last.elapsed() < Duration::from_secs(60) {
            return;
        }
        *last = Instant::now();
        queues.retain(|_, q| q.running || q.idle_since.is_none_or(|t| t.elapsed() < IDLE));
    }

    /// Stops delivering (webhooks still queued are dropped).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        self.stats.dropped(queues.values().map(|q| q.items.len() as u64).sum());
        queues.clear();
    }

    /// Pauses (`false`) or resumes the webhook and command logs; they exist
    /// only when the sandbox was started with `record_log`. Returns whether
    /// logs are now kept.
    pub fn set_logging(&self, on: bool) -> bool {
        let on = on && self.log.is_some();
        self.log_on.store(on, Ordering::Relaxed);
        on
    }

    /// True while the logs are kept.
    pub fn logging(&self) -> bool {
        self.log_on.load(Ordering::Relaxed)
    }

    /// The delivery log (empty when logging is off).
    pub fn log(&self) -> Vec<DeliveryRecord> {
        self.log.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).to_vec()).unwrap_or_default()
    }

    /// Takes the session's next webhook and where it goes first, having kept
    /// `cursor` (where the previous one's rotation ended); removes the queue
    /// (ending the worker) when there is none.
    fn take(&self, session: u64, cursor: Option<usize>) -> Option<(Emitted, DeliveryPlan, usize)> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let q = queues.get_mut(&session)?;
        if let Some(c) = cursor {
            q.cursor = c;
        }
        match q.items.pop_front() {
            Some(e) => {
                let plan = q.rng.as_mut().map(|r| r.delivery(&self.chaos)).unwrap_or_default();
                Some((e, plan, q.cursor))
            }
            // Kept idle: the chaos stream or the rotation carries on with the next burst.
            None if q.rng.is_some() || self.balancer.rotates() => {
                q.running = false;
                q.idle_since = Some(Instant::now());
                None
            }
            None => {
                queues.remove(&session);
                None
            }
        }
    }

    /// For a reorder: the webhook after the current one, if it comes soon.
    async fn take_following(&self, session: u64) -> Option<(Emitted, DeliveryPlan)> {
        let deadline = tokio::time::Instant::now() + REORDER_WAIT;
        loop {
            {
                let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                let q = queues.get_mut(&session)?;
                if let Some(e) = q.items.pop_front() {
                    let mut plan = q.rng.as_mut().map(|r| r.delivery(&self.chaos)).unwrap_or_default();
                    plan.reorder = false;
                    return Some((e, plan));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn run(self: Arc<Self>, session: u64) {
        self.deliver_queue(session).await;
        self.not_waiting(session);
    }

    async fn deliver_queue(&self, session: u64) {
        let mut kept = None;
        while let Some((e, plan, mut cursor)) = self.take(session, kept) {
            let mut batch = vec![(e, plan)];
            if plan.reorder {
                if let Some(next) = self.take_following(session).await {
                    batch.insert(0, next);
                }
            }
            for (e, plan) in batch {
                if self.stopped.load(Ordering::Relaxed) {
                    return;
                }
                if plan.delay_ms > 0 {
                    self.not_waiting(session);
                    tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
                    self.waiting(session);
                }
                self.deliver(&e, false, &mut cursor).await;
                if plan.duplicate {
                    self.deliver(&e, true, &mut cursor).await;
                }
                self.stats.done();
                // The next webhook waits from now.
                self.waiting(session);
            }
            kept = Some(cursor);
        }
    }

    /// Delivers one webhook: up to `cfg.attempts` carrier attempts, each
    /// tried on the balancer's URLs from `cursor` until one answers (see the
    /// module docs). Leaves `cursor` on the URL after the one that took it.
    async fn deliver(&self, e: &Emitted, duplicate: bool, cursor: &mut usize) {
        let attempts = self.cfg.attempts.max(1);
        let pool = self.balancer.upstreams(&e.url);
        for attempt in 1..=attempts {
            let targets = match &self.failover {
                Some(f) if attempt > 1 => std::slice::from_ref(f),
                _ => pool,
            };
            // A single URL has no rotation to keep.
            let rotating = targets.len() > 1;
            let mut next = if rotating { *cursor } else { 0 };
            let mut answer = None;
            for _ in 0..targets.len() {
                if self.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let at = next % targets.len();
                next = at + 1;
                answer = self.post(e, duplicate, attempt, &targets[at]).await;
                if !passes_over(answer) {
                    break;
                }
            }
            if rotating {
                *cursor = next;
            }
            if answer.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            if attempt < attempts {
                self.not_waiting(e.session);
                tokio::time::sleep(self.cfg.backoff_after(attempt)).await;
                self.waiting(e.session);
            }
        }
        self.stats.gave_up();
        tracing::warn!(event_type = e.event_type, id = %e.id, attempts, "webhook not delivered; giving up");
    }

    /// Posts the webhook once to `url`, signed now; logs and counts it.
    /// Returns the receiver's status, `None` when it did not answer.
    async fn post(&self, e: &Emitted, duplicate: bool, attempt: u32, url: &str) -> Option<u16> {
        let wire = WireEnvelope {
            data: WireData {
                record_type: "event",
                event_type: e.event_type,
                id: &e.id,
                occurred_at: e.envelope_occurred_at(),
                payload: &e.payload,
            },
            meta: WireMeta { attempt, delivered_to: url },
        };
        let body = match serde_json::to_vec(&wire) {
            Ok(b) => b,
            Err(err) => {
                tracing::error!(error = %err, "webhook could not be serialised");
                return None;
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.signer.sign(timestamp, &body);
        let log = self.log.as_ref().filter(|_| self.logging());
        let logged_body = log.map(|_| serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null));
        let sent_at = Instant::now();
        let sent = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .timeout(self.cfg.timeout)
            .body(body)
            .send()
            .await;
        let (status, error) = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // Read the answer so the connection can be reused.
                let _ = resp.bytes().await;
                (Some(status), None)
            }
            Err(err) => (None, Some(error_chain(&err))),
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        self.stats.attempt(&e.id, url, ok.then(|| sent_at.elapsed()), duplicate);
        if duplicate && status.is_some() && !ok {
            self.stats.refused_duplicate();
        }
        tracing::debug!(event_type = e.event_type, id = %e.id, attempt, url, ?status, ?error, "webhook delivery");
        if let (Some(log), Some(body)) = (log, logged_body) {
            let record = DeliveryRecord {
                event_id: e.id.clone(),
                event_type: e.event_type.to_string(),
                call_control_id: e.call_control_id.to_string(),
                url: url.to_string(),
                attempt,
                duplicate,
                status,
                error,
                sent_at: super::clock::rfc3339(chrono::Utc::now()),
                body,
            };
            log.lock().unwrap_or_else(|p| p.into_inner()).push(record);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = DeliveryConfig::default();
        assert_eq!(c.backoff_after(1), Duration::from_millis(250));
        assert_eq!(c.backoff_after(2), Duration::from_millis(500));
        assert_eq!(c.backoff_after(10), Duration::from_secs(4));
        assert_eq!(c.backoff_after(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.to_vec(), vec![2, 3, 4]);
    }

    #[test]
    fn wire_envelope_parses_as_the_real_one() {
        let payload = serde_json::json!({"call_control_id": "v3:x"});
        let w = WireEnvelope {
            data: WireData {
                record_type: "event",
                event_type: "call.answered",
                id: "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
                occurred_at: Some("2020-07-10T05:08:59.668179Z"),
                payload: &payload,
            },
            meta: WireMeta { attempt: 2, delivered_to: "http://127.0.0.1:1/hook" },
        };
        let env = Envelope::parse(&serde_json::to_vec(&w).unwrap()).unwrap();
        assert_eq!(env.data.event_type, "call.answered");
        assert_eq!(env.meta.as_ref().unwrap().attempt, 2);
        assert_eq!(env.event().unwrap().call_control_id(), Some("v3:x"));
    }
}
