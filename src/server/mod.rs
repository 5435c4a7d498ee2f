//! `ivrx serve`: the axum webhook server.
//!
//! Webhooks are verified, de-duplicated, stored and acknowledged at once; each
//! conversation has a worker that runs its [`Session`](crate::session::Session),
//! scores utterances, sends commands in order and checkpoints to the store.

pub mod api;
pub mod board;
pub mod calls;
mod cluster;
pub mod dedupe;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod reconcile;
pub mod symbl_link;
pub mod token;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use self::calls::{Calls, Engine, Ownership, Shared};
use self::dedupe::RecentSet;
use self::live::LiveHub;
use self::metrics::Metrics;
pub use crate::http::serve::Limits;
use crate::session::SessionSettings;
use crate::store::SharedStore;
use crate::telnyx::{RetryPolicy, TelnyxClient, WebhookVerifier};

/// State shared by the handlers.
pub struct App {
    /// Verifies webhook signatures.
    pub verifier: WebhookVerifier,
    /// Signatures seen within the tolerance, with the bytes they signed (one
    /// reused for other bytes is refused).
    pub signatures: RecentSet,
    /// Event ids seen recently (repeats are acknowledged and ignored).
    pub seen: RecentSet,
    /// Conversations in progress.
    pub calls: Calls,
    /// The store.
    pub store: SharedStore,
    /// The live event hub.
    pub live: Arc<LiveHub>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Token for the admin and live-stream APIs.
    pub admin_token: String,
    /// Longest wait for the raw webhook to be committed before acknowledging.
    pub ack_wait: Duration,
    /// Held while a webhook is queued for storage and handed to its worker,
    /// so both see webhooks in the same order.
    pub dispatch_order: std::sync::Mutex<()>,
}

/// Everything the server needs.
pub struct ServerOptions {
    /// Where to listen.
    pub listener: TcpListener,
    /// Path of the webhook endpoint.
    pub webhook_path: String,
    /// Webhook signature verifier (live key, or the sandbox's).
    pub verifier: WebhookVerifier,
    /// Command client (Telnyx, or the sandbox).
    pub client: TelnyxClient,
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: SharedStore,
    /// Session settings.
    pub settings: Arc<SessionSettings>,
    /// Admin token.
    pub admin_token: String,
    /// Largest accepted webhook body.
    pub max_body_bytes: usize,
    /// How long ended conversations wait for late webhooks.
    pub grace: Duration,
    /// How long a command failing for a passing reason is sent again.
    pub retry_window: Duration,
    /// How often the legs whose end the record does not show are checked
    /// with Telnyx (they always are at start; `None`: only then).
    pub reconcile_every: Option<Duration>,
    /// The signature tolerance (how long a replayed signature is remembered).
    pub signature_tolerance: Duration,
    /// Mount the load-run audit endpoints ([`crate::loadtest::audit`]): only
    /// when serving against a sandbox carrier (embedded or standalone), never
    /// against Telnyx.
    pub load_audit: bool,
    /// With a store several instances share: how long a conversation stays
    /// with an instance that stops renewing its lease (how soon another
    /// takes over the calls of one that died).
    pub lease_term: Duration,
    /// Alerts when a call turns (`[notify]`).
    pub notify: notify::NotifySettings,
    /// `[storage] redact_pii`: the board, alerts and CRM events show the
    /// caller's words redacted, as the store keeps them.
    pub redact_pii: bool,
}

/// The parts of a server that come from outside the configuration.
pub struct ServerParts {
    /// Where to listen.
    pub listener: TcpListener,
    /// Webhook signature verifier.
    pub verifier: WebhookVerifier,
    /// Command client.
    pub client: TelnyxClient,
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: SharedStore,
    /// Session settings.
    pub settings: Arc<SessionSettings>,
    /// Admin token.
    pub admin_token: String,
}

impl ServerOptions {
    /// A server with `parts` and the limits, windows and redaction of
    /// `config`; no alerts and no load-run audit.
    pub fn new(parts: ServerParts, config: &crate::config::Config) -> Self {
        let ServerParts { listener, verifier, client, engine, store, settings, admin_token } = parts;
        let server = &config.server;
        Self {
            listener,
            webhook_path: server.webhook_path.clone(),
            verifier,
            client,
            engine,
            store,
            settings,
            admin_token,
            max_body_bytes: server.max_body_bytes,
            grace: Duration::from_secs(server.ended_call_grace_secs),
            retry_window: Duration::from_millis(config.telnyx.retry_window_ms),
            reconcile_every: (server.reconcile_secs > 0).then(|| Duration::from_secs(server.reconcile_secs)),
            signature_tolerance: Duration::from_secs(config.telnyx.signature_tolerance_secs),
            load_audit: false,
            lease_term: Duration::from_millis(config.storage.lease_ms),
            notify: notify::NotifySettings::default(),
            redact_pii: config.storage.redact_pii,
        }
    }
}

/// A running server.
pub struct ServerHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Shared state.
    pub app: Arc<App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    reconciler: tokio::task::JoinHandle<()>,
    /// What the reconciliation pass made at start found, once it is done.
    reconciled: tokio::sync::watch::Receiver<Option<reconcile::Pass>>,
    cluster: tokio::task::JoinHandle<()>,
    alerts: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// Stops accepting requests and waits for the server task.
    pub async fn shutdown(mut self) {
        self.reconciler.abort();
        for a in &self.alerts {
            a.abort();
        }
        self.cluster.abort();
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
        cluster::step_down(&self.app.calls).await;
    }

    /// Waits for the reconciliation pass made at start (the legs that ended
    /// while ivrx was not listening) and says what it found.
    pub async fn reconciled_at_start(&self) -> reconcile::Pass {
        let mut rx = self.reconciled.clone();
        let found = rx.wait_for(Option::is_some).await.map(|p| *p);
        found.ok().flatten().unwrap_or_default()
    }

    /// Waits until the server stops by itself.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Builds the router. Request bodies are read within `limits.body_timeout`
/// and at most `max_body_bytes` long. With `load_audit`, the admin API also
/// has the load-run audit endpoints.
pub fn router(app: Arc<App>, webhook_path: &str, max_body_bytes: usize, limits: Limits, load_audit: bool) -> Router {
    let mut admin = Router::new()
        .route("/api/v1/conversations", get(api::list))
        .route("/api/v1/conversations/{id}", get(api::conversation))
        .route("/api/v1/conversations/{id}/events", get(api::events))
        .route("/api/v1/conversations/{id}/transfer", post(api::transfer))
        .route("/api/v1/calls", post(api::dial))
        .route("/api/v1/calls/{id}/report", get(api::call_report))
        .route("/api/v1/board/events", get(api::board_events))
        .route("/api/v1/stats", get(api::stats));
    if load_audit {
        admin = admin.merge(crate::loadtest::audit::routes());
    }
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(app.clone(), api::require_token));
    Router::new()
        .route(webhook_path, post(webhook::receive))
        .route("/board", get(board::page))
        .route("/board/board.js", get(board::script))
        .route("/board/style.css", get(board::style))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .merge(admin)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state((limits, max_body_bytes), crate::http::serve::read_body_within))
        .with_state(app)
}

/// Starts the server with the default request deadlines.
pub async fn start(options: ServerOptions) -> std::io::Result<ServerHandle> {
    start_with(options, Limits::default()).await
}

/// Starts the server, resumes calls that were in progress and checks with
/// Telnyx the legs whose end the record does not show (then periodically,
/// see [`reconcile`]). Clients must send a request's headers and body within `limits`.
pub async fn start_with(options: ServerOptions, limits: Limits) -> std::io::Result<ServerHandle> {
    let metrics = Arc::new(Metrics::new());
    let sms_retry = RetryPolicy { max_attempts: options.notify.config.max_attempts, ..options.client.retry().clone() };
    let sms_client = options.client.clone().with_retry(sms_retry);
    let (alerts, alert_senders) = notify::Alerts::new(options.notify, options.redact_pii, sms_client, metrics.clone());
    let live = Arc::new(LiveHub::new(options.redact_pii));
    let calls = Calls::new(Shared {
        settings: options.settings,
        client: options.client,
        engine: options.engine,
        store: options.store.clone(),
        live: live.clone(),
        metrics: metrics.clone(),
        grace: options.grace,
        retry_window: options.retry_window,
        ownership: options.store.cluster().map(|_| Ownership::new(options.lease_term)),
        alerts,
    });
    let alert_tasks = alert_senders.start(calls.clone());
    let seen = RecentSet::new(Duration::from_secs(3600), 1_000_000);
    // Remember the webhooks of the last hour, so a retry after a restart is still a repeat.
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    if let Ok(ids) = options.store.recent_event_ids(since).await {
        let now = std::time::Instant::now();
        for id in ids {
            seen.insert(&id, now);
        }
    }
    let app = Arc::new(App {
        verifier: options.verifier.with_tolerance(options.signature_tolerance),
        signatures: RecentSet::new(options.signature_tolerance * 2, 1_000_000),
        seen,
        calls: calls.clone(),
        store: options.store,
        live,
        metrics,
        admin_token: options.admin_token,
        ack_wait: Duration::from_millis(250),
        dispatch_order: std::sync::Mutex::new(()),
    });
    if calls.shared().ownership.is_none() {
        calls.restore().await;
    }
    let router = router(app.clone(), &options.webhook_path, options.max_body_bytes, limits, options.load_audit);
    let addr = options.listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = rx.await;
    };
    let task = tokio::spawn(crate::http::serve::serve(options.listener, router, limits, stopped));
    let (reconciled_tx, reconciled) = tokio::sync::watch::channel(None);
    let cluster = tokio::spawn(cluster::run(calls.clone()));
    let reconciler = tokio::spawn(reconcile::run(calls, options.reconcile_every, reconciled_tx));
    Ok(ServerHandle { addr, app, shutdown: Some(tx), task, reconciler, reconciled, cluster, alerts: alert_tasks })
}
