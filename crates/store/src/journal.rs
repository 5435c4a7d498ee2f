//! The write queue every backend shares: writes are queued without waiting,
//! redacted on the way in, and committed in batches by one writer (for
//! SQLite, a thread; for PostgreSQL, a task). When a commit fails (disk full, database locked) the
//! batch is kept and retried with back-off, the failure is logged loudly and
//! reported by [`StoreHealth`]: accepted writes are not lost while the
//! process runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::model::{Receipt, Transition, WebhookRecord};
use crate::port::Durable;
use crate::{redact, StoreError, StoreOptions};

/// How the store is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Writes waiting to be committed.
    pub pending: AtomicU64,
    /// Writes committed.
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

/// One queued write, as a backend commits it.
#[derive(Debug)]
pub(crate) enum WriteOp {
    /// A conversation's transition.
    Transition(Transition),
    /// A raw webhook.
    Webhook(WebhookRecord),
    /// An external engine's summary of a conversation.
    Insights { conversation_id: String, source: String, insights: serde_json::Value },
}

/// Who waits for a write.
enum Reply {
    Committed(oneshot::Sender<()>),
    Receipt(oneshot::Sender<Receipt>),
}

enum Queued {
    Write(WriteOp, Reply),
    Flush(oneshot::Sender<()>),
}

/// The sending side, held by a store. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WriteQueue {
    tx: mpsc::UnboundedSender<Queued>,
    health: Arc<StoreHealth>,
}

impl WriteQueue {
    /// A queue and the batcher its writer drains it with.
    pub(crate) fn new(options: &StoreOptions, store: String) -> (Self, Batcher) {
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(StoreHealth::default());
        let batcher = Batcher {
            rx,
            ops: Vec::with_capacity(options.batch),
            replies: Vec::with_capacity(options.batch),
            flushes: Vec::new(),
            health: health.clone(),
            redact_pii: options.redact_pii,
            batch: options.batch.max(1),
            backoff: FIRST_BACKOFF,
            store,
        };
        (Self { tx, health }, batcher)
    }

    pub(crate) fn health(&self) -> &StoreHealth {
        &self.health
    }

    fn queue(&self, item: Queued) -> bool {
        let counted = matches!(item, Queued::Write(..));
        if counted {
            self.health.pending.fetch_add(1, Ordering::Relaxed);
        }
        if self.tx.send(item).is_err() {
            if counted {
                self.health.pending.fetch_sub(1, Ordering::Relaxed);
            }
            tracing::error!("the store writer has stopped; a write was dropped");
            return false;
        }
        true
    }

    fn write<T>(&self, op: WriteOp, reply: impl FnOnce(oneshot::Sender<T>) -> Reply) -> Durable<T> {
        let (tx, rx) = oneshot::channel();
        if self.queue(Queued::Write(op, reply(tx))) {
            Durable::waiting(rx)
        } else {
            Durable::failed(StoreError::Closed)
        }
    }

    pub(crate) fn commit(&self, transition: Transition) -> Durable<()> {
        self.write(WriteOp::Transition(transition), Reply::Committed)
    }

    pub(crate) fn record_webhook(&self, webhook: WebhookRecord) -> Durable<Receipt> {
        self.write(WriteOp::Webhook(webhook), Reply::Receipt)
    }

    pub(crate) fn record_insights(
        &self,
        conversation_id: &str,
        source: &str,
        insights: serde_json::Value,
    ) -> Durable<()> {
        let op =
            WriteOp::Insights { conversation_id: conversation_id.to_string(), source: source.to_string(), insights };
        self.write(op, Reply::Committed)
    }

    pub(crate) fn flush(&self) -> Durable<()> {
        let (tx, rx) = oneshot::channel();
        if self.queue(Queued::Flush(tx)) {
            Durable::waiting(rx)
        } else {
            Durable::failed(StoreError::Closed)
        }
    }
}

/// A backend's write side: its queue, or none when the store was opened
/// read-only (every write is then refused with [`StoreError::ReadOnly`]).
/// A backend's [`Journal`](crate::Journal) is this ([`journal_via`]).
pub(crate) struct Writes {
    queue: Option<WriteQueue>,
    store: String,
    read_only: StoreHealth,
}

impl Writes {
    /// Writes through `queue`.
    pub(crate) fn new(queue: WriteQueue, store: String) -> Self {
        Writes { queue: Some(queue), store, read_only: StoreHealth::default() }
    }

    /// No writes: the store is read-only.
    pub(crate) fn read_only(store: String) -> Self {
        Writes { queue: None, store, read_only: StoreHealth::default() }
    }

    fn with<T>(&self, write: impl FnOnce(&WriteQueue) -> Durable<T>) -> Durable<T> {
        match &self.queue {
            Some(q) => write(q),
            None => Durable::failed(StoreError::ReadOnly { store: self.store.clone() }),
        }
    }

    pub(crate) fn commit(&self, transition: Transition) -> Durable<()> {
        self.with(|q| q.commit(transition))
    }

    pub(crate) fn record_webhook(&self, webhook: WebhookRecord) -> Durable<Receipt> {
        self.with(|q| q.record_webhook(webhook))
    }

    pub(crate) fn record_insights(&self, id: &str, source: &str, insights: serde_json::Value) -> Durable<()> {
        self.with(|q| q.record_insights(id, source, insights))
    }

    pub(crate) fn flush(&self) -> Durable<()> {
        self.with(WriteQueue::flush)
    }

    pub(crate) fn health(&self) -> &StoreHealth {
        self.queue.as_ref().map_or(&self.read_only, WriteQueue::health)
    }
}

/// Implements [`Journal`](crate::Journal) for a backend by its [`Writes`] field.
macro_rules! journal_via {
    ($store:ty, $writes:ident) => {
        impl $crate::port::Journal for $store {
            fn commit(&self, transition: $crate::model::Transition) -> $crate::port::Durable<()> {
                self.$writes.commit(transition)
            }

            fn record_webhook(
                &self,
                webhook: $crate::model::WebhookRecord,
            ) -> $crate::port::Durable<$crate::model::Receipt> {
                self.$writes.record_webhook(webhook)
            }

            fn record_insights(
                &self,
                conversation_id: &str,
                source: &str,
                insights: serde_json::Value,
            ) -> $crate::port::Durable<()> {
                self.$writes.record_insights(conversation_id, source, insights)
            }

            fn flush(&self) -> $crate::port::Durable<()> {
                self.$writes.flush()
            }

            fn health(&self) -> &$crate::StoreHealth {
                self.$writes.health()
            }
        }
    };
}
pub(crate) use journal_via;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The writer's side: takes queued writes into batches and settles them once
/// the backend has tried to commit.
pub(crate) struct Batcher {
    rx: mpsc::UnboundedReceiver<Queued>,
    ops: Vec<WriteOp>,
    replies: Vec<Reply>,
    flushes: Vec<oneshot::Sender<()>>,
    health: Arc<StoreHealth>,
    redact_pii: bool,
    batch: usize,
    backoff: Duration,
    store: String,
}

impl Batcher {
    /// The batch to commit.
    pub(crate) fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    fn idle(&self) -> bool {
        self.ops.is_empty() && self.flushes.is_empty()
    }

    fn take(&mut self, item: Queued) {
        match item {
            Queued::Flush(w) => self.flushes.push(w),
            Queued::Write(op, reply) => {
                self.ops.push(if self.redact_pii { redact::write_op(op) } else { op });
                self.replies.push(reply);
            }
        }
    }

    fn top_up(&mut self) {
        while self.ops.len() < self.batch {
            match self.rx.try_recv() {
                Ok(item) => self.take(item),
                Err(_) => break,
            }
        }
    }

    /// Waits (blocking the thread) until there is something to commit; false
    /// once every sender is gone and nothing is left.
    pub(crate) fn fill_blocking(&mut self) -> bool {
        if self.idle() {
            match self.rx.blocking_recv() {
                Some(item) => self.take(item),
                None => return false,
            }
        }
        self.top_up();
        true
    }

    /// Waits until there is something to commit; false once every sender is
    /// gone and nothing is left. (Cancel-safe: nothing is taken from the
    /// queue after the one await.)
    pub(crate) async fn fill(&mut self) -> bool {
        if self.idle() {
            match self.rx.recv().await {
                Some(item) => self.take(item),
                None => return false,
            }
        }
        self.top_up();
        true
    }

    /// Records what a check of the database while idle found: an unreachable
    /// database makes the store unhealthy (so `/readyz` answers 503) before
    /// any write has to fail.
    pub(crate) fn probed(&mut self, result: Result<(), StoreError>) {
        match result {
            Ok(()) => {
                if self.health.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(db = %self.store, "the database is reachable again");
                    if let Ok(mut g) = self.health.last_error.lock() {
                        *g = None;
                    }
                }
            }
            Err(e) => {
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(db = %self.store, error = %e, "the database cannot be reached");
                }
                if let Ok(mut g) = self.health.last_error.lock() {
                    *g = Some(e.to_string());
                }
            }
        }
    }

    /// Settles a commit attempt: on success everyone waiting hears of it (a
    /// webhook's waiter learns whether it was new, from `new[i]`); on failure
    /// the batch is kept and this returns how long to wait before retrying.
    pub(crate) fn settle(&mut self, result: Result<Vec<bool>, StoreError>) -> Option<Duration> {
        match result {
            Ok(new) => {
                let n = self.ops.len() as u64;
                self.health.pending.fetch_sub(n, Ordering::Relaxed);
                self.health.written.fetch_add(n, Ordering::Relaxed);
                self.ops.clear();
                // Recovered before anyone waiting on a flush hears of it.
                if self.health.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!(db = %self.store, "store writes recovered");
                    if let Ok(mut g) = self.health.last_error.lock() {
                        *g = None;
                    }
                }
                for (i, reply) in self.replies.drain(..).enumerate() {
                    match reply {
                        Reply::Committed(w) => {
                            let _ = w.send(());
                        }
                        Reply::Receipt(w) => {
                            let receipt =
                                if new.get(i).copied().unwrap_or(true) { Receipt::New } else { Receipt::Repeat };
                            let _ = w.send(receipt);
                        }
                    }
                }
                for w in self.flushes.drain(..) {
                    let _ = w.send(());
                }
                self.backoff = FIRST_BACKOFF;
                None
            }
            Err(e) => {
                self.health.failures.fetch_add(1, Ordering::Relaxed);
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(db = %self.store, error = %e, pending = self.ops.len(),
                        "STORE WRITE FAILED: calls keep flowing, events are kept in memory and retried");
                }
                if let Ok(mut g) = self.health.last_error.lock() {
                    *g = Some(e.to_string());
                }
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Some(wait)
            }
        }
    }
}
