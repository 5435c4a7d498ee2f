//! A local stand-in for the Symbl.ai API, written from Symbl's documentation,
//! for tests (a test fixture, not shipped behaviour: only tests depend on
//! this crate).
//!
//! It serves on a loopback port:
//!
//! - `POST /oauth2/token:generate` (checks `appId`/`appSecret`, tokens expire
//!   after [`StandinConfig::token_lifetime_secs`]);
//! - `POST /v1/process/text`, `PUT /v1/process/text/{conversationId}`,
//!   `GET /v1/job/{jobId}` (`in_progress` for
//!   [`StandinConfig::job_polls_in_progress`] polls, then `completed`; the
//!   messages become visible on completion);
//! - `GET /v1/conversations/{id}/messages?sentiment=true`, `…/topics?sentiment=true`,
//!   `…/trackers-detected`;
//! - `POST /v1/endpoint:connect` (`start`/`stop`) and the subscription WebSocket
//!   `GET /session/subscribe/{connectionId}`, fed by [`SymblStandin::push_speech`].
//!
//! Every API route needs a valid token (`Authorization: Bearer` or `x-api-key`);
//! unknown conversations, jobs and connections answer 404. Sentiment, topics and
//! trackers are deterministic: see [`analysis`]. Fault knobs:
//! [`SymblStandin::refuse_tokens`], [`SymblStandin::revoke_tokens`], [`SymblStandin::fail_next`],
//! [`SymblStandin::set_delay`], [`SymblStandin::fail_jobs`], [`SymblStandin::refuse_connections`],
//! [`SymblStandin::go_down`].
//!
//! Telephony: Symbl's real service dials the number it is given. The stand-in
//! does so through a [`Dialer`] hook ([`SymblStandin::set_dialer`]); what the
//! call hears comes back through the [`SpeechSink`] the dialer is handed, and
//! becomes the connection's real-time results. [`telephony::SandboxDialer`]
//! dials into a sandbox carrier and relays what its leg hears in a conference.

pub mod analysis;
mod routes;
mod state;
pub mod telephony;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use state::RecordedRequest;
use state::State;

/// How the stand-in behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandinConfig {
    /// The app id it accepts.
    pub app_id: String,
    /// The app secret it accepts.
    pub app_secret: String,
    /// `expiresIn` of issued tokens, in seconds; tokens are refused after that.
    pub token_lifetime_secs: u64,
    /// How many polls a job answers `in_progress` before `completed`.
    pub job_polls_in_progress: u32,
}

impl Default for StandinConfig {
    fn default() -> Self {
        Self {
            app_id: "standin-app-id".into(),
            app_secret: "standin-app-secret".into(),
            token_lifetime_secs: 86_400,
            job_polls_in_progress: 1,
        }
    }
}

pub(crate) struct Shared {
    config: StandinConfig,
    base_url: String,
    state: Mutex<State>,
    dialer: Mutex<Option<Arc<dyn Dialer>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dialer(&self) -> Option<Arc<dyn Dialer>> {
        self.dialer.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A telephony connection the stand-in was asked to start
/// (`endpoint:connect` with a `pstn` endpoint).
#[derive(Debug, Clone)]
pub struct PstnDial {
    /// The connection.
    pub connection_id: String,
    /// The number to call, as sent (Symbl takes digits without `+`).
    pub phone_number: String,
    /// Keys to press once answered (`,` is a one-second pause).
    pub dtmf: Option<String>,
    /// Where what the call hears goes.
    pub speech: SpeechSink,
}

/// Feeds what Symbl's phone leg hears into its connection's results.
#[derive(Clone)]
pub struct SpeechSink {
    shared: std::sync::Weak<Shared>,
    connection_id: String,
}

impl std::fmt::Debug for SpeechSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechSink").field("connection_id", &self.connection_id).finish()
    }
}

impl SpeechSink {
    /// `speaker` said `text` on the call (see [`SymblStandin::push_speech`]).
    /// False once the connection stopped or the stand-in is gone.
    pub fn heard(&self, speaker: &str, text: &str) -> bool {
        self.heard_at(speaker, text, None)
    }

    /// Like [`SpeechSink::heard`], said from `start` to `end` (the messages carry these times).
    pub fn heard_at(
        &self,
        speaker: &str,
        text: &str,
        when: Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>,
    ) -> bool {
        let Some(shared) = self.shared.upgrade() else { return false };
        let pushed = shared.lock().speak(&self.connection_id, speaker, text, when).is_some();
        pushed
    }

    /// The connection it feeds.
    pub fn connection_id(&self) -> &str {
        &self.connection_id
    }
}

/// Places Symbl's phone calls for the stand-in.
pub trait Dialer: Send + Sync {
    /// Calls `dial.phone_number`, presses `dial.dtmf` once answered, and feeds
    /// what the call hears to `dial.speech`. Must not block: spawn the work.
    fn dial(&self, dial: PstnDial);
    /// The connection stopped (or Symbl went down): hang the call up.
    fn hang_up(&self, connection_id: &str);
}

/// A running stand-in. Dropping it stops the server.
pub struct SymblStandin {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Mutex<Option<JoinHandle<()>>>,
    /// Duplicated handles of accepted sockets, to cut them when going down.
    sockets: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl std::fmt::Debug for SymblStandin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymblStandin").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SymblStandin {
    /// Starts a stand-in on a free loopback port.
    pub async fn start(config: StandinConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}"),
            state: Mutex::new(State::default()),
            dialer: Mutex::new(None),
        });
        let sockets: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let tracked = sockets.clone();
        let listener = listener.tap_io(move |tcp| {
            if let Some(dup) = duplicate(tcp) {
                tracked.lock().unwrap_or_else(|p| p.into_inner()).push(dup);
            }
        });
        let app = routes::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { shared, addr, server: Mutex::new(Some(server)), sockets })
    }

    /// `http://127.0.0.1:PORT`: point `SYMBL_API_BASE` here.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &StandinConfig {
        &self.shared.config
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u32 {
        self.shared.lock().tokens_issued
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// Requests answered so far whose path starts with `prefix`.
    pub fn count_requests(&self, prefix: &str) -> usize {
        self.shared.lock().log.iter().filter(|r| r.path.starts_with(prefix)).count()
    }

    /// Fault: answer every token request with 401, even with the right credentials.
    pub fn refuse_tokens(&self, refuse: bool) {
        self.shared.lock().faults.refuse_tokens = refuse;
    }

    /// Fault: answer the next `times` requests (any path) with `status`; a
    /// 429 carries `Retry-After: retry_after` when given.
    pub fn fail_next(&self, times: u32, status: u16, retry_after: Option<&str>) {
        let mut state = self.shared.lock();
        state.faults.fail_next = times;
        state.faults.fail_status = status;
        state.faults.retry_after = retry_after.map(str::to_string);
    }

    /// Fault: delay every answer by `delay` (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().faults.delay = delay;
    }

    /// Fault: forget every issued token, as if Symbl revoked them (the next
    /// API call answers 401 until a new token is fetched).
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Places the phone calls of telephony connections started from now on.
    pub fn set_dialer(&self, dialer: Arc<dyn Dialer>) {
        *self.shared.dialer.lock().unwrap_or_else(|p| p.into_inner()) = Some(dialer);
    }

    /// Fault: answer `endpoint:connect` starts with `status` (`None` to stop),
    /// as when Symbl cannot place the call.
    pub fn refuse_connections(&self, status: Option<u16>) {
        self.shared.lock().faults.refuse_connections = status;
    }

    /// Telephony connections started so far, as `(connection id, number dialled, dtmf)`.
    pub fn connections(&self) -> Vec<(String, String, Option<String>)> {
        self.shared.lock().dialled.clone()
    }

    /// Fault: jobs created from now on end `failed`.
    pub fn fail_jobs(&self, fail: bool) {
        self.shared.lock().faults.fail_jobs = fail;
    }

    /// Fault: go down. Stops accepting connections and cuts the open ones
    /// (idle keep-alive connections and WebSockets included).
    pub async fn go_down(&self) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
        let sockets = std::mem::take(&mut *self.sockets.lock().unwrap_or_else(|p| p.into_inner()));
        for s in sockets {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // Its phone legs drop with it.
        let active = self.shared.lock().stop_all_connections();
        if let Some(dialer) = self.shared.dialer() {
            for id in active {
                dialer.hang_up(&id);
            }
        }
    }

    /// Someone spoke on a telephony connection: the sentences become messages of
    /// its conversation (with sentiment, at once) and subscribers receive a
    /// partial then final `transcript_response`, a `message_response`, an
    /// `insight_response` for questions and a `topic_response` when there are
    /// topics. Returns the new message ids; `None` for an unknown or stopped connection.
    pub fn push_speech(&self, connection_id: &str, speaker: &str, text: &str) -> Option<Vec<String>> {
        self.shared.lock().speak(connection_id, speaker, text, None)
    }

    /// The trackers a conversation was given, by name (to check what a client sent).
    pub fn conversation_trackers(&self, conversation_id: &str) -> Option<Vec<String>> {
        let state = self.shared.lock();
        let c = state.conversations.get(conversation_id)?;
        Some(c.trackers.iter().map(|t| t.name.clone()).collect())
    }
}

impl Drop for SymblStandin {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            server.abort();
        }
        for s in self.sockets.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[cfg(unix)]
fn duplicate(tcp: &tokio::net::TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    tcp.as_fd().try_clone_to_owned().ok().map(std::net::TcpStream::from)
}

#[cfg(not(unix))]
fn duplicate(_tcp: &tokio::net::TcpStream) -> Option<std::net::TcpStream> {
    None
}
