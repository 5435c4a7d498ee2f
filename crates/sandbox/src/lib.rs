//! The sandbox carrier: a local stand-in for Telnyx Call Control.
//!
//! It serves the Call Control REST API under `/v2` (same paths, bodies, answers
//! and error codes), delivers Ed25519-signed webhooks in the real envelope and
//! documented order, and simulates the people on the line: scripted callers
//! ([`Script`]) and dialled parties ([`PartyBehavior`]). An application cannot
//! tell it from Telnyx except by the base URL and the public key.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ivrx_sandbox::{PlaceCall, Sandbox, SandboxConfig, Script};
//! let mut config = SandboxConfig::new("http://127.0.0.1:8080/webhooks/telnyx");
//! config.time_scale = 20.0;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sandbox = Sandbox::start(config, listener).await?;
//! // Point the Telnyx client at sandbox.api_base() with sandbox.api_key(), and
//! // verify webhooks with sandbox.public_key_base64(). Then:
//! let script = Script::parse("say my internet is down\nhangup").expect("valid script");
//! let call = sandbox.place_call(PlaceCall::new(script)).expect("sandbox running");
//! # let _ = call; Ok(()) }
//! ```
//!
//! With several [`webhook_urls`](SandboxConfig::webhook_urls) the sandbox
//! stands in for a load balancer in front of several instances of the
//! application: webhooks go round-robin (consecutive webhooks of one call to
//! different URLs), and a URL that refuses the connection, times out or
//! answers 5xx is passed over for the next one within the same attempt.
//!
//! Messaging (`POST /v2/messages`, the `message.sent` and `message.finalized`
//! webhooks) works as on Telnyx too (see the `messaging` module).
//!
//! Conferences (`POST /v2/conferences`, `…/actions/join`, `…/actions/leave`)
//! work as on Telnyx, with their webhooks; participants hear each other (see
//! the `conference` module).
//!
//! [`offline::OfflineCarrier`] runs the same simulation in process, with no
//! HTTP, on a virtual clock its driver moves (`ivrx eval` plays labelled
//! scripts through it and the real call session).
//!
//! Timing and turn-taking are documented in [`timing`]; the control API under
//! `/sandbox/v1` in [`control`](self#control-api).
//!
//! # Control API
//!
//! Bearer `api_key` required, except for the public key.
//!
//! | request | what it does |
//! |---|---|
//! | `POST /sandbox/v1/calls` `{from?, to?, script, live?, caller_id_name?}` | places a simulated inbound call → `{"data": CallInfo}` |
//! | `POST /sandbox/v1/calls/{id}/steps` `{"step": "say …"}` | appends steps to a live call |
//! | `GET /sandbox/v1/calls/{id}` | the leg's status ([`LegStatus`]) |
//! | `GET /sandbox/v1/calls/{id}/wait?timeout_secs=N` | waits (virtual seconds) until the leg hangs up → status, `timed_out` |
//! | `GET /sandbox/v1/calls/{id}/report` | what the configured [`CallReporter`] says about the call |
//! | `GET /sandbox/v1/calls/{id}/heard` | what the party on the leg hears, as newline-delimited [`Heard`] JSON, until it hangs up |
//! | `POST /sandbox/v1/parties` `{number, behavior, script?}` | how a number behaves when dialled |
//! | `GET /sandbox/v1/webhooks`, `GET /sandbox/v1/commands` | the logs (when `record_log`) |
//! | `GET /sandbox/v1/deliveries` | delivery counters, acknowledgement latency and attempts per webhook URL ([`DeliverySummary`]) |
//! | `POST /sandbox/v1/deliveries/reset` `{track?, record_log?}` | opens a new statistics window; `track` keeps acknowledged ids and latencies, `record_log` pauses or resumes the logs |
//! | `GET /sandbox/v1/deliveries/ids?offset=N&limit=M` | acknowledged event ids of the window, paged → `{data, total, next_offset}` |
//! | `GET /sandbox/v1/legs/audit` | legs placed for a call (dialled with `link_to` it, or transferred to from it) still up after it hung up, and calls bridged with more than one of them ([`LegAudit`]) |
//! | `GET /sandbox/v1/messages` | every SMS sent through `POST /v2/messages` → `{"data": [SandboxMessage]}` |
//! | `GET /sandbox/v1/public-key` | `{"public_key": "<base64>"}` |
//!
//! [`ControlClient`] is the typed client of these routes.

pub mod script;

mod api;
mod chaos;
pub mod client;
pub mod clock;
mod conference;
mod control;
mod delivery;
pub mod gather;
mod ids;
pub mod legs;
mod media;
mod messaging;
pub mod offline;
mod party;
mod queues;
pub mod stats;
mod timers;
pub mod timing;
mod world;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivrx_telnyx::commands::CallInfo;
use ivrx_telnyx::WebhookSigner;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch, Notify};

pub use chaos::{Chaos, ChaosError};
pub use client::{ControlClient, ControlError, HeardLines, PlaceRequest};
pub use clock::SandboxClock;
pub use conference::Heard;
pub use delivery::{DeliveryConfig, DeliveryRecord};
pub use legs::LegState;
pub use messaging::{message_codes, SandboxMessage};
pub use party::{default_agent_script, parse_agent_spec, BehaviorError, PartyBehavior, DEFAULT_AGENT_SCRIPT};
pub use script::{Directive, Script, Step};
pub use stats::{DeliverySummary, UrlDeliveries};
pub use timing::TimingModel;
pub use world::{LeftUp, LegAudit, LegStatus};

use chaos::{ApiFault, ChaosRng};
use delivery::{Balancer, Delivery, Ring};
use world::{AppendError, Emitted, Now, VTime, World, WorldConfig};

/// Produces a report about a call (for `GET /sandbox/v1/calls/{id}/report`),
/// given its `call_control_id`. The server plugs in its conversation summary.
pub type CallReporter = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Option<Value>> + Send>> + Send + Sync>;

/// Everything a sandbox needs to start.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Clients must send `Authorization: Bearer <api_key>`.
    pub api_key: String,
    /// Where webhooks go (unless a dial or transfer names another URL): the
    /// application's instances, round-robin like a load balancer (see the
    /// `delivery` module); one URL is one instance.
    pub webhook_urls: Vec<String>,
    /// Where retries go when set.
    pub failover_url: Option<String>,
    /// Signs the webhooks; its public key is what the application verifies with.
    pub signer: WebhookSigner,
    /// Virtual seconds per real second (1 = real time; tests use 20–50).
    pub time_scale: f64,
    /// The Call Control application id reported in webhooks.
    pub connection_id: String,
    /// Fault injection.
    pub chaos: Chaos,
    /// How configured numbers behave when dialled or transferred to.
    pub agents: Vec<(String, PartyBehavior)>,
    /// How every other number behaves (an agent answering after 3 s).
    pub default_agent: PartyBehavior,
    /// Webhook retries.
    pub delivery: DeliveryConfig,
    /// The simulation's durations.
    pub timing: TimingModel,
    /// Answers `GET /sandbox/v1/calls/{id}/report`.
    pub reporter: Option<CallReporter>,
    /// Keep the webhook and command logs (bounded by `log_capacity`).
    pub record_log: bool,
    /// Most entries each log keeps (the newest win).
    pub log_capacity: usize,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("webhook_urls", &self.webhook_urls)
            .field("failover_url", &self.failover_url)
            .field("public_key", &self.signer.public_key_base64())
            .field("time_scale", &self.time_scale)
            .field("connection_id", &self.connection_id)
            .field("chaos", &self.chaos)
            .field("agents", &self.agents)
            .field("default_agent", &self.default_agent)
            .field("delivery", &self.delivery)
            .field("timing", &self.timing)
            .field("reporter", &self.reporter.is_some())
            .field("record_log", &self.record_log)
            .finish_non_exhaustive()
    }
}

impl SandboxConfig {
    /// Defaults: a fresh API key and signing key, real time, calm chaos, the
    /// standard agent for every number, logs on (10 000 entries each).
    pub fn new(webhook_url: impl Into<String>) -> Self {
        Self {
            api_key: ids::api_key(),
            webhook_urls: vec![webhook_url.into()],
            failover_url: None,
            signer: WebhookSigner::generate(),
            time_scale: 1.0,
            connection_id: ids::connection_id(),
            chaos: Chaos::default(),
            agents: Vec::new(),
            default_agent: PartyBehavior::default_agent(),
            delivery: DeliveryConfig::default(),
            timing: TimingModel::default(),
            reporter: None,
            record_log: true,
            log_capacity: 10_000,
        }
    }

    /// Checks the configuration; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(ConfigError::TimeScale(self.time_scale));
        }
        self.chaos.validate()?;
        if self.webhook_urls.is_empty() {
            return Err(ConfigError::NoWebhookUrl);
        }
        for (i, url) in self.webhook_urls.iter().enumerate() {
            check_url("webhook_url", url)?;
            if self.webhook_urls[..i].contains(url) {
                return Err(ConfigError::RepeatedUrl(url.chars().take(200).collect()));
            }
        }
        if let Some(f) = &self.failover_url {
            check_url("failover_url", f)?;
        }
        if self.api_key.trim().is_empty() || self.api_key.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::ApiKey);
        }
        if self.delivery.attempts == 0 {
            return Err(ConfigError::Attempts);
        }
        for (number, b) in
            self.agents.iter().map(|(n, b)| (n.as_str(), b)).chain([("default_agent", &self.default_agent)])
        {
            if let PartyBehavior::Answer { after_secs, .. } = b {
                if !(after_secs.is_finite() && *after_secs >= 0.0) {
                    return Err(ConfigError::Behavior(number.to_string()));
                }
            }
        }
        Ok(())
    }
}

fn check_url(field: &'static str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ConfigError::Url { field, url: url.chars().take(200).collect() }),
    }
}

/// A configuration the sandbox cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `time_scale` is not a positive number.
    #[error("time_scale must be a positive number (1 = real time, 20 = twenty times faster), got {0}")]
    TimeScale(f64),
    /// A chaos rate is out of range.
    #[error(transparent)]
    Chaos(#[from] ChaosError),
    /// A webhook URL is not an absolute http(s) URL.
    #[error("{field} must be an absolute http:// or https:// URL, got {url:?}")]
    Url {
        /// `webhook_url` or `failover_url`.
        field: &'static str,
        /// The value.
        url: String,
    },
    /// No webhook URL.
    #[error("webhook_url is required: where the application receives webhooks")]
    NoWebhookUrl,
    /// A webhook URL is listed twice.
    #[error("webhook_url {0:?} is given twice: list each instance of the application once")]
    RepeatedUrl(String),
    /// The API key is empty or has spaces or control characters.
    #[error("api_key must be a non-empty token without spaces")]
    ApiKey,
    /// Delivery would never try.
    #[error("delivery attempts must be at least 1")]
    Attempts,
    /// A behaviour has an impossible ring time.
    #[error("the answer delay for {0} must be a non-negative number of seconds")]
    Behavior(String),
}

/// A simulated inbound call to place.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceCall {
    /// The caller's number.
    pub from: String,
    /// The number called (the IVR's).
    pub to: String,
    /// What the caller says and does.
    pub script: Script,
    /// The call takes more steps later ([`SandboxHandle::append_steps`]).
    pub live: bool,
    /// Caller id name shown in `call.initiated`.
    pub caller_id_name: Option<String>,
}

/// Default caller number of simulated calls.
pub const DEFAULT_CALLER: &str = "+15555550100";
/// Default number simulated calls dial (the IVR).
pub const DEFAULT_IVR_NUMBER: &str = "+15555550199";

impl PlaceCall {
    /// A call from [`DEFAULT_CALLER`] to [`DEFAULT_IVR_NUMBER`] following `script`.
    pub fn new(script: Script) -> Self {
        Self { from: DEFAULT_CALLER.into(), to: DEFAULT_IVR_NUMBER.into(), script, live: false, caller_id_name: None }
    }
}

/// One REST request, as kept in the command log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Real time the request arrived.
    pub received_at: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// `dial`, `retrieve` or the action name.
    pub action: Option<String>,
    /// The call addressed.
    pub call_control_id: Option<String>,
    /// The request's `command_id`.
    pub command_id: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// The Telnyx error code answered, if any.
    pub error_code: Option<String>,
    /// A repeat of an executed `command_id`: answered ok, not executed.
    pub duplicate: bool,
    /// Chaos dropped the connection: the client got no answer. With status
    /// 0 the command did not run; with a status it ran (that was the answer
    /// it never got).
    #[serde(default)]
    pub dropped: bool,
    /// The request body.
    pub body: Value,
}

/// What the sandbox's library API reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No leg has this id (or it ended long ago).
    #[error("no call with call_control_id {0}")]
    UnknownCall(String),
    /// The leg has hung up.
    #[error("call {0} has already ended")]
    CallEnded(String),
    /// Only calls placed with `live: true` take new steps.
    #[error("call {0} was not placed with live: true, so it takes no new steps")]
    NotLive(String),
    /// [`SandboxHandle::shutdown`] was called.
    #[error("the sandbox has shut down")]
    ShutDown,
}

/// Starts sandboxes.
pub struct Sandbox;

/// A running sandbox. Cheap to clone; [`shutdown`](Self::shutdown) stops it.
#[derive(Clone)]
pub struct SandboxHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle").field("base_url", &self.shared.base_url).finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    world: Mutex<World>,
    delivery: Arc<Delivery>,
    clock: SandboxClock,
    api_key: String,
    public_key: String,
    connection_id: String,
    base_url: String,
    local_addr: SocketAddr,
    wake: Notify,
    hangup_waiters: Mutex<HashMap<Arc<str>, Vec<oneshot::Sender<()>>>>,
    listeners: Mutex<HashMap<Arc<str>, Vec<mpsc::UnboundedSender<Heard>>>>,
    commands: Option<Mutex<Ring<CommandRecord>>>,
    chaos: Chaos,
    api_rng: Mutex<ChaosRng>,
    reporter: Option<CallReporter>,
    shutdown: watch::Sender<bool>,
    messages: messaging::Messages,
    /// Where webhooks go when a request names no URL.
    webhook_url: Arc<str>,
}

impl Shared {
    fn now(&self) -> Now {
        Now { v: self.clock.elapsed(), real: Instant::now() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the world at the current moment (after due timers), then
    /// hands the webhooks it produced to delivery, in order.
    pub(crate) fn with_world<R>(&self, f: impl FnOnce(&mut World, Now) -> R) -> R {
        let mut w = self.lock();
        let now = self.now();
        w.advance(now);
        let before = w.next_deadline();
        let r = f(&mut w, now);
        let after = w.next_deadline();
        self.flush(&mut w);
        drop(w);
        // The scheduler sleeps until the earliest deadline it saw; wake it only
        // when something now falls due earlier.
        if after.is_some() && (before.is_none() || after < before) {
            self.wake.notify_one();
        }
        r
    }

    /// The scheduler's step: fires due timers, returns the next deadline.
    fn tick(&self) -> Option<VTime> {
        let mut w = self.lock();
        w.advance(self.now());
        self.flush(&mut w);
        w.next_deadline()
    }

    fn flush(&self, w: &mut World) {
        for e in w.take_outbox() {
            self.delivery.push(e);
        }
        let heard = w.take_heard();
        let hung_up = w.take_hung_up();
        if !heard.is_empty() || !hung_up.is_empty() {
            let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            for h in heard {
                if let Some(list) = listeners.get_mut(h.call_control_id.as_str()) {
                    list.retain(|tx| tx.send(h.clone()).is_ok());
                }
            }
            // A leg that hung up hears nothing more: its streams end.
            for ccid in &hung_up {
                listeners.remove(ccid);
            }
        }
        if !hung_up.is_empty() {
            let mut waiters = self.hangup_waiters.lock().unwrap_or_else(|p| p.into_inner());
            for ccid in hung_up {
                for tx in waiters.remove(&ccid).unwrap_or_default() {
                    let _ = tx.send(());
                }
            }
        }
    }

    /// See [`SandboxHandle::listen`].
    pub(crate) fn listen(&self, ccid: &str) -> Result<mpsc::UnboundedReceiver<Heard>, SandboxError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Registered under the world's lock, so no line said after this is missed.
        let mut w = self.lock();
        let Some(id) = w.listen(ccid) else {
            let ended = w.leg_id(ccid).is_some();
            drop(w);
            return Err(if ended {
                SandboxError::CallEnded(ccid.to_string())
            } else {
                SandboxError::UnknownCall(ccid.to_string())
            });
        };
        let key: Arc<str> = w.legs.get(&id).map(|l| l.ccid.clone()).unwrap_or_else(|| Arc::from(ccid));
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().push(tx);
        drop(w);
        Ok(rx)
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(crate) fn log_command(&self, r: CommandRecord) {
        if r.duplicate {
            self.delivery.stats.repeated_command();
        }
        if let Some(log) = self.commands.as_ref().filter(|_| self.delivery.logging()) {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(r);
        }
    }

    /// Queues a webhook that comes from no call (a message's delivery).
    pub(crate) fn deliver(&self, e: Emitted) {
        self.delivery.push(e);
    }

    /// Where webhooks go when a request names no URL.
    pub(crate) fn default_webhook_url(&self) -> Arc<str> {
        self.webhook_url.clone()
    }

    pub(crate) fn api_fault(&self) -> Option<ApiFault> {
        if self.chaos.api_is_calm() {
            return None;
        }
        self.api_rng.lock().unwrap_or_else(|p| p.into_inner()).api(&self.chaos)
    }

    pub(crate) fn status(&self, ccid: &str) -> Option<LegStatus> {
        self.with_world(|w, _| w.status(ccid))
    }

    /// Waits up to `timeout` of virtual time (however long the clock is
    /// held) for the leg to hang up. `None`: unknown leg;
    /// `Some((status, timed_out))` otherwise.
    pub(crate) async fn wait_hangup(&self, ccid: &str, timeout: Duration) -> Option<(LegStatus, bool)> {
        let until = self.clock.elapsed().saturating_add(timeout.min(Duration::from_secs(24 * 3600)));
        let (tx, rx) = oneshot::channel();
        {
            // Registered before the status check, so a hangup in between is not missed.
            let mut waiters = self.hangup_waiters.lock().unwrap_or_else(|p| p.into_inner());
            let list = waiters.entry(Arc::from(ccid)).or_default();
            list.retain(|t| !t.is_closed());
            list.push(tx);
        }
        let Some(status) = self.status(ccid) else {
            self.hangup_waiters.lock().unwrap_or_else(|p| p.into_inner()).remove(ccid);
            return None;
        };
        if status.state == LegState::HungUp {
            return Some((status, false));
        }
        let mut stop = self.shutdown.subscribe();
        tokio::select! {
            _ = rx => {}
            _ = self.clock.sleep_until(until) => {}
            _ = stop.changed() => {}
        }
        let status = self.status(ccid)?;
        let timed_out = status.state != LegState::HungUp;
        Some((status, timed_out))
    }
}

fn url_for(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

async fn scheduler(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        // Armed before the deadline is read, so a hold ending in between is not missed.
        let resumed = shared.clock.resumed();
        tokio::pin!(resumed);
        resumed.as_mut().enable();
        let next = shared.tick();
        let clock = shared.clock.clone();
        let sleep = async move {
            match next {
                Some(v) => tokio::time::sleep_until(clock.real_deadline(v)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = resumed => {}
            _ = shared.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

impl Sandbox {
    /// Starts a sandbox serving on `listener`: the `/v2` REST API, the
    /// `/sandbox/v1` control API, webhook delivery and the simulation clock.
    /// Fails with `InvalidInput` when the configuration does not
    /// [validate](SandboxConfig::validate).
    pub async fn start(config: SandboxConfig, listener: tokio::net::TcpListener) -> std::io::Result<SandboxHandle> {
        config.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let local_addr = listener.local_addr()?;
        let base_url = url_for(local_addr);
        let clock = SandboxClock::new(config.time_scale);
        let log_capacity = config.record_log.then_some(config.log_capacity);
        let webhook_urls: Vec<Arc<str>> = config.webhook_urls.iter().map(|u| Arc::from(u.as_str())).collect();
        let delivery = Delivery::new(
            config.signer.clone(),
            config.delivery.clone(),
            Balancer::new(webhook_urls.clone()),
            config.failover_url.clone(),
            config.chaos.clone(),
            log_capacity,
            clock.clone(),
        )?;
        let world = World::new(WorldConfig {
            timing: config.timing.clone(),
            connection_id: config.connection_id.clone(),
            webhook_url: webhook_urls[0].clone(),
            parties: config.agents.iter().cloned().collect(),
            default_agent: config.default_agent.clone(),
            epoch: clock.epoch(),
            time_scale: clock.time_scale(),
            recording_base: format!("{base_url}/sandbox/v1/recordings"),
        });
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            delivery,
            clock,
            api_key: config.api_key.clone(),
            public_key: config.signer.public_key_base64(),
            connection_id: config.connection_id.clone(),
            base_url,
            local_addr,
            wake: Notify::new(),
            hangup_waiters: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            commands: log_capacity.map(|c| Mutex::new(Ring::new(c))),
            api_rng: Mutex::new(ChaosRng::new(config.chaos.seed, 0)),
            chaos: config.chaos.clone(),
            reporter: config.reporter.clone(),
            shutdown: watch::channel(false).0,
            messages: messaging::Messages::new(config.chaos.seed),
            webhook_url: webhook_urls[0].clone(),
        });
        let app = api::router(shared.clone())
            .merge(control::router(shared.clone()))
            .fallback(api::not_found)
            .with_state(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        let stopped = async move {
            let _ = stop.changed().await;
        };
        tokio::spawn(ivrx_http::serve::serve(listener, app, ivrx_http::serve::Limits::default(), stopped));
        tokio::spawn(scheduler(shared.clone()));
        tracing::info!(base_url = %shared.base_url, public_key = %shared.public_key, "sandbox carrier started");
        Ok(SandboxHandle { shared })
    }
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The REST API base for the Telnyx client: `base_url() + "/v2"`.
    pub fn api_base(&self) -> String {
        format!("{}/v2", self.shared.base_url)
    }

    /// The address the sandbox listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The public key that verifies its webhooks (base64, as `TELNYX_PUBLIC_KEY`).
    pub fn public_key_base64(&self) -> String {
        self.shared.public_key.clone()
    }

    /// The API key clients must send.
    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    /// The Call Control application id in its webhooks (for `POST /v2/calls`).
    pub fn connection_id(&self) -> String {
        self.shared.connection_id.clone()
    }

    /// The virtual clock.
    pub fn clock(&self) -> SandboxClock {
        self.shared.clock.clone()
    }

    /// Places a simulated inbound call: the application receives
    /// `call.initiated` and must answer.
    pub fn place_call(&self, call: PlaceCall) -> Result<CallInfo, SandboxError> {
        if self.shared.is_shut_down() {
            return Err(SandboxError::ShutDown);
        }
        Ok(self.shared.with_world(|w, now| w.place_inbound(now, call)))
    }

    /// Appends steps to a call placed with `live: true`.
    pub fn append_steps(&self, call_control_id: &str, steps: Vec<Step>) -> Result<(), SandboxError> {
        self.shared.with_world(|w, now| w.append_steps(now, call_control_id, steps)).map_err(|e| match e {
            AppendError::Unknown => SandboxError::UnknownCall(call_control_id.to_string()),
            AppendError::Ended => SandboxError::CallEnded(call_control_id.to_string()),
            AppendError::NotLive => SandboxError::NotLive(call_control_id.to_string()),
        })
    }

    /// What the party on a leg hears from now on, line by line once each line
    /// has been said: the IVR on its leg, a bridged peer, conference peers
    /// (see the conference module). The stream ends when the leg hangs up.
    pub fn listen(&self, call_control_id: &str) -> Result<mpsc::UnboundedReceiver<Heard>, SandboxError> {
        self.shared.listen(call_control_id)
    }

    /// Sets how a number behaves when dialled or transferred to.
    pub fn set_party(&self, number: impl Into<String>, behavior: PartyBehavior) {
        let number = number.into();
        self.shared.with_world(|w, _| w.set_party(number, behavior));
    }

    /// A leg's status.
    pub fn call_status(&self, call_control_id: &str) -> Option<LegStatus> {
        self.shared.status(call_control_id)
    }

    /// Legs left up after the call they were placed for hung up, and calls
    /// bridged with more than one leg placed for them.
    pub fn leg_audit(&self) -> LegAudit {
        self.shared.with_world(|w, _| w.leg_audit())
    }

    /// Waits until the leg hangs up or `timeout` (virtual) passes; returns its
    /// status either way (check `state`).
    pub async fn wait_for_hangup(&self, call_control_id: &str, timeout: Duration) -> Result<LegStatus, SandboxError> {
        match self.shared.wait_hangup(call_control_id, timeout).await {
            Some((status, _)) => Ok(status),
            None => Err(SandboxError::UnknownCall(call_control_id.to_string())),
        }
    }

    /// Every webhook delivery attempt so far (the newest `log_capacity`).
    pub fn webhook_log(&self) -> Vec<DeliveryRecord> {
        self.shared.delivery.log()
    }

    /// Delivery counters and, in a tracking window, acknowledgement latency.
    pub fn delivery_stats(&self) -> DeliverySummary {
        DeliverySummary {
            logging: self.shared.delivery.logging(),
            clock_held_secs: self.shared.clock.held().as_secs_f64(),
            ..self.shared.delivery.stats.summary()
        }
    }

    /// Opens a new statistics window (see [`stats`]); `track` keeps the ids
    /// and latencies of acknowledged webhooks.
    pub fn reset_delivery_stats(&self, track: bool) {
        self.shared.delivery.stats.reset(track);
    }

    /// Every REST request so far (the newest `log_capacity`).
    pub fn command_log(&self) -> Vec<CommandRecord> {
        self.shared.commands.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).to_vec()).unwrap_or_default()
    }

    /// Stops serving, simulating and delivering.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
        self.shared.delivery.stop();
    }

    /// True after [`shutdown`](Self::shutdown).
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_shut_down()
    }
}

#[cfg(test)]
mod tests;
