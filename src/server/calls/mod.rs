//! Conversations in progress, in four parts that each own their data:
//!
//! - [`registry`]: which conversations are in progress and which legs belong
//!   to them; routes each webhook to its conversation and answers id lookups;
//! - [`worker`]: one task per conversation, so events of one call are handled
//!   in order while different calls run in parallel. It runs the sans-I/O
//!   [`Session`](crate::session::Session) and carries out the effects it
//!   returns, one by one;
//! - [`sender`]: the conversation's commands to Telnyx, sent in order (agent
//!   releases apart), sent again within the retry window, kept in the outbox
//!   until answered;
//! - [`scoring`]: the conversation's scoring backend (local, Symbl text,
//!   Symbl PSTN), which owns the fallback to the local engine and the storage
//!   of Symbl's summary.
//!
//! After each batch of inputs a worker checkpoints atomically: the domain
//! events, the session's new state and the ids of the webhooks it processed.
//! A worker started for a conversation that already has stored state (after a
//! restart) restores the snapshot, sends again the commands it had decided on
//! that Telnyx had not answered (see [`outbox`](super::outbox)), and replays
//! the webhooks that were acknowledged but not yet processed; command ids are
//! deterministic, so a command that had already gone out is ignored by Telnyx
//! as a repeat.

pub mod registry;
pub mod scoring;
pub mod sender;
pub mod wait_lines;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use self::registry::{Busy, Calls, ManualError, Route, Slot, INBOX, RESERVED_FOR_REPORTS};
pub use self::scoring::Engine;
pub use self::worker::{Webhook, WorkerInbox, WorkerMsg};
use super::live::LiveHub;
use super::metrics::Metrics;
use crate::session::SessionSettings;
use crate::store::SharedStore;
use crate::telnyx::TelnyxClient;

/// What the workers share.
pub struct Shared {
    /// Session settings.
    pub settings: Arc<SessionSettings>,
    /// The Telnyx (or sandbox) API client.
    pub client: TelnyxClient,
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: SharedStore,
    /// The live event hub.
    pub live: Arc<LiveHub>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long an ended conversation's worker waits for late webhooks.
    pub grace: Duration,
    /// How long a command failing for a passing reason is sent again, in
    /// rounds of the client's attempts, from its first attempt.
    pub retry_window: Duration,
    /// Under several instances on one database: this instance and how long
    /// its conversations stay its own without renewal (`None`: the only instance).
    pub ownership: Option<Ownership>,
    /// Alerts when a call turns.
    pub alerts: super::notify::Alerts,
}

/// This instance among several sharing one database (see [`crate::store::cluster`]).
#[derive(Debug, Clone)]
pub struct Ownership {
    /// This instance's name in the conversations' leases.
    pub instance: String,
    /// How long a lease lasts without renewal: how soon another instance
    /// takes over the conversations of one that died.
    pub term: Duration,
    /// Conversations found owned by another live instance, and when: for a
    /// lease term this instance does not try to take them on each webhook.
    pub elsewhere: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// Conversations whose lease a worker of this instance holds: a webhook
    /// for one of them wakes no other instance when stored.
    held: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl Ownership {
    /// This instance, holding conversations for `term` without renewal.
    pub fn new(term: Duration) -> Self {
        Ownership { instance: uuid::Uuid::new_v4().to_string(), term, elsewhere: Arc::default(), held: Arc::default() }
    }

    /// Notes whether a worker of this instance holds `conv`'s lease.
    pub fn set_held(&self, conv: &str, held: bool) {
        if let Ok(mut g) = self.held.lock() {
            if held {
                g.insert(conv.to_string());
            } else {
                g.remove(conv);
            }
        }
    }

    /// True while a worker of this instance holds `conv`'s lease.
    pub fn holds(&self, conv: &str) -> bool {
        self.held.lock().is_ok_and(|g| g.contains(conv))
    }

    /// Notes that another live instance owns `conv`.
    pub fn owned_elsewhere(&self, conv: &str) {
        if let Ok(mut g) = self.elsewhere.lock() {
            let now = std::time::Instant::now();
            if g.len() > 100_000 {
                g.retain(|_, t| now.duration_since(*t) < self.term);
            }
            g.insert(conv.to_string(), now);
        }
    }

    /// True while another live instance was lately found owning `conv`.
    pub fn is_elsewhere(&self, conv: &str) -> bool {
        let Ok(g) = self.elsewhere.lock() else { return false };
        g.get(conv).is_some_and(|t| t.elapsed() < self.term)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{SqliteStore, StoreOptions};
    use crate::telnyx::ClientConfig;

    /// What the workers share, over a store in `dir` and a command API nowhere.
    pub(crate) fn shared(engine: Engine, dir: &Path) -> Shared {
        crate::http::tls::install_crypto_provider();
        let store = SqliteStore::open(&dir.join("ivrx.db"), StoreOptions::default()).unwrap();
        Shared {
            settings: Arc::new(SessionSettings::default()),
            client: TelnyxClient::new(ClientConfig::new("http://127.0.0.1:9/v2", "KEY")).unwrap(),
            engine,
            store: Arc::new(store),
            live: Arc::default(),
            metrics: Arc::new(Metrics::new()),
            grace: Duration::from_secs(1),
            retry_window: Duration::from_secs(1),
            ownership: None,
            alerts: Default::default(),
        }
    }
}
