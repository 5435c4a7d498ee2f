//! SQLite persistence: conversations, legs, utterances with scores, decisions,
//! transfers, the domain event log, session snapshots and the raw webhook log.
//!
//! One file (WAL mode). All writes go through a single writer thread that
//! commits in batches, so the webhook path never waits on the disk. When a
//! write fails (disk full, database locked) the batch is kept and retried,
//! the failure is logged loudly and reported by [`StoreHealth`]: accepted
//! events are not lost while the process runs. Caller text is stored
//! [`redact`]ed unless redaction is turned off.

pub mod audit;
mod checkpoint;
pub mod ids;
mod projection;
pub mod read;
pub mod redact;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivrx_core::session::Recorded;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use ids::IdMatch;
pub use read::Reader;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer ivrx.
    #[error("database {path} has schema version {found}, newer than this ivrx understands ({known}); upgrade ivrx")]
    TooNew {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The writer thread has stopped.
    #[error("the store writer has stopped")]
    Closed,
}

/// Where the database lives by default: `ivrx.db` in the user's data directory.
pub fn default_path() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("ivrx").join("ivrx.db")
}

/// Opens a connection with the pragmas ivrx relies on.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Sqlite { path: path.display().to_string(), source };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
    Ok(conn)
}

/// Opens (creating if needed) and migrates the database at `path`.
pub fn open_and_migrate(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
    }
    let mut conn = connect(path)?;
    let err = |source| StoreError::Sqlite { path: path.display().to_string(), source };
    let found: i64 = conn
        .query_row(
            "SELECT COALESCE((SELECT max(version) FROM schema_migrations), 0)
             WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    if found > schema::latest_version() {
        return Err(StoreError::TooNew { path: path.display().to_string(), found, known: schema::latest_version() });
    }
    schema::migrate(&mut conn).map_err(err)?;
    Ok(conn)
}

/// One raw webhook as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRecord {
    /// `data.id`.
    pub event_id: String,
    /// When the server received it.
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// `data.event_type`.
    pub event_type: String,
    /// The leg, when the event names one.
    pub call_control_id: Option<String>,
    /// The conversation it was routed to, if any.
    pub conversation_id: Option<String>,
    /// `meta.attempt`.
    pub attempt: Option<u32>,
    /// `accepted`, `unrouted`, `unknown_event`, …
    pub outcome: String,
    /// The raw body.
    pub body: String,
}

/// A session's saved state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The conversation.
    pub conversation_id: String,
    /// The serialised session.
    pub state: String,
    /// True once the call has ended.
    pub ended: bool,
}

/// What the writer thread does.
#[derive(Debug)]
pub enum WriteOp {
    /// Store a domain event and update the tables it touches.
    Event(Recorded),
    /// Store a raw webhook; the sender, if any, is answered once it is committed.
    Webhook(WebhookRecord, Option<oneshot::Sender<()>>),
    /// What one worker batch produced, committed atomically: the domain events,
    /// the session's new state, and the webhooks it has now processed.
    Checkpoint {
        /// Domain events.
        events: Vec<Recorded>,
        /// The session's state after them.
        snapshot: Option<Snapshot>,
        /// Event ids of the webhooks the batch processed.
        processed: Vec<String>,
    },
    /// What an external engine made of a whole conversation (topics, trackers).
    Insights {
        /// The conversation.
        conversation_id: String,
        /// Which engine, e.g. `symbl`.
        source: String,
        /// The engine's summary as JSON.
        insights: serde_json::Value,
    },
    /// Answer once everything queued before it has been committed.
    Flush(oneshot::Sender<()>),
}

/// How the store is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Operations waiting to be written.
    pub pending: AtomicU64,
    /// Operations written.
    pub written: AtomicU64,
    /// Failed commit attempts.
    pub failures: AtomicU64,
}

impl StoreHealth {
    /// True while writes are failing.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// The last write error, while failing.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }
}

/// Options for the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Redact PII from text before it is written.
    pub redact_pii: bool,
    /// Most operations committed in one transaction.
    pub batch: usize,
    /// How long a write waits for a lock held by another process before it fails (and is retried).
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { redact_pii: true, batch: 512, busy_timeout: Duration::from_secs(5) }
    }
}

/// The write side of the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    path: Arc<PathBuf>,
    tx: mpsc::UnboundedSender<WriteOp>,
    health: Arc<StoreHealth>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database, applies migrations and starts the writer thread.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let conn = open_and_migrate(path)?;
        let err = |source| StoreError::Sqlite { path: path.display().to_string(), source };
        conn.busy_timeout(options.busy_timeout).map_err(err)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_SAFETY_PAGES).map_err(err)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(StoreHealth::default());
        let h = health.clone();
        let p = path.to_path_buf();
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("ivrx-checkpoint".into()).spawn({
            let p = p.clone();
            move || checkpoint::run(p, stop)
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "WAL checkpoints stay on the commit path");
            conn.pragma_update(None, "wal_autocheckpoint", 1000).map_err(err)?;
        }
        std::thread::Builder::new()
            .name("ivrx-store".into())
            .spawn(move || {
                writer_loop(conn, rx, h, options, p);
                drop(checkpoints);
            })
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        Ok(Self { path: Arc::new(path.to_path_buf()), tx, health })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Health counters.
    pub fn health(&self) -> &Arc<StoreHealth> {
        &self.health
    }

    /// Queues a write. Never blocks.
    pub fn write(&self, op: WriteOp) {
        self.health.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(op).is_err() {
            self.health.pending.fetch_sub(1, Ordering::Relaxed);
            tracing::error!("store writer has stopped; a write was dropped");
        }
    }

    /// Queues a raw webhook; the receiver completes once it is committed.
    pub fn write_webhook(&self, record: WebhookRecord) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.write(WriteOp::Webhook(record, Some(tx)));
        rx
    }

    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(WriteOp::Flush(tx)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)
    }

    /// A reader on the same database.
    pub fn reader(&self) -> Reader {
        Reader::new(self.path.as_ref().clone())
    }
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<WriteOp>,
    health: Arc<StoreHealth>,
    options: StoreOptions,
    path: PathBuf,
) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(options.batch);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut backoff = Duration::from_millis(50);
    loop {
        if batch.is_empty() && waiters.is_empty() {
            match rx.blocking_recv() {
                Some(op) => push(op, &mut batch, &mut waiters),
                None => return,
            }
        }
        while batch.len() < options.batch {
            match rx.try_recv() {
                Ok(op) => push(op, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        match projection::commit(&mut conn, &batch, options.redact_pii) {
            Ok(()) => {
                let n = batch.len() as u64;
                health.pending.fetch_sub(n, Ordering::Relaxed);
                health.written.fetch_add(n, Ordering::Relaxed);
                batch.clear();
                // Recovered before anyone waiting on a flush hears of it.
                if health.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(db = %path.display(), "store writes recovered");
                    if let Ok(mut g) = health.last_error.lock() {
                        *g = None;
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                health.failures.fetch_add(1, Ordering::Relaxed);
                let was_failing = health.failing.swap(true, Ordering::Relaxed);
                if !was_failing {
                    tracing::error!(db = %path.display(), error = %e, pending = batch.len(),
                        "STORE WRITE FAILED: calls keep flowing, events are kept in memory and retried");
                }
                if let Ok(mut g) = health.last_error.lock() {
                    *g = Some(e.to_string());
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn push(op: WriteOp, batch: &mut Vec<WriteOp>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match op {
        WriteOp::Flush(w) => waiters.push(w),
        WriteOp::Webhook(record, Some(w)) => {
            waiters.push(w);
            batch.push(WriteOp::Webhook(record, None));
        }
        other => batch.push(other),
    }
}

#[cfg(test)]
mod tests;
