//! The SQLite backend: one file in WAL mode, the embedded default.
//!
//! All writes go through one writer thread that commits the queued writes in
//! batches (see [`crate::journal`]), so the webhook path never waits on the
//! disk; a second thread checkpoints the WAL off the commit path
//! ([`checkpoint`]). Reads open their own read-only connection each time, so
//! they never wait on the writer, and run on tokio's blocking pool.

mod checkpoint;
mod ids;
mod read;
mod schema;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt};
use ivrx_core::session::Recorded;
use rusqlite::Connection;

pub use read::Reader;

use crate::journal::{Batcher, WriteQueue, Writes};
use crate::model::{CallAudit, Conversation, Filters, OpenLeg, PendingWebhook, TransferAttempt};
use crate::port::{Analytics, Audit, Conversations, Recovery, Store};
use crate::{IdMatch, StoreError, StoreOptions};

/// Calls [`Analytics::calls`] hands over at a time.
const CALLS_PER_BATCH: usize = 64;
/// Batches read ahead of the consumer.
const BATCHES_IN_FLIGHT: usize = 4;

/// A store in a SQLite file.
pub struct SqliteStore {
    reader: Reader,
    writes: Writes,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.reader.path()).finish_non_exhaustive()
    }
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::database(path.display().to_string(), source)
}

/// Opens a connection with the pragmas ivrx relies on.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let err = sqlite_err(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(&err)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(&err)?;
    Ok(conn)
}

/// Opens (creating if needed) and migrates the database at `path`.
pub(crate) fn open_and_migrate(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.display().to_string(), source })?;
    }
    let mut conn = connect(path)?;
    let found: i64 = conn
        .query_row(
            "SELECT COALESCE((SELECT max(version) FROM schema_migrations), 0)
             WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations')",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    if found > schema::latest_version() {
        return Err(StoreError::TooNew { store: path.display().to_string(), found, known: schema::latest_version() });
    }
    schema::migrate(&mut conn).map_err(sqlite_err(path))?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens the database (creating it and its directory if needed), applies
    /// migrations and starts the writer.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let conn = open_and_migrate(path)?;
        let err = sqlite_err(path);
        conn.busy_timeout(options.lock_timeout).map_err(&err)?;
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::WRITER_SAFETY_PAGES).map_err(&err)?;
        let (queue, batcher) = WriteQueue::new(&options, path.display().to_string());
        let (checkpoints, stop) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("ivrx-checkpoint".into()).spawn({
            let p = path.to_path_buf();
            move || checkpoint::run(p, stop)
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "WAL checkpoints stay on the commit path");
            conn.pragma_update(None, "wal_autocheckpoint", 1000).map_err(&err)?;
        }
        std::thread::Builder::new()
            .name("ivrx-store".into())
            .spawn(move || {
                run_writer(conn, batcher);
                drop(checkpoints);
            })
            .map_err(|source| StoreError::Io { path: path.display().to_string(), source })?;
        let writes = Writes::new(queue, path.display().to_string());
        Ok(Self { reader: Reader::new(path.to_path_buf()), writes })
    }

    /// Opens an existing database for reading only: nothing is created,
    /// migrated or written.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing { store: path.display().to_string() });
        }
        Ok(Self { reader: Reader::new(path.to_path_buf()), writes: Writes::read_only(path.display().to_string()) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// The synchronous reader of this file.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Runs a read on tokio's blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|e| StoreError::database(reader_name(&self.reader), e))?
    }
}

fn reader_name(r: &Reader) -> String {
    r.path().display().to_string()
}

/// The writer thread: commits batches until every sender is gone.
fn run_writer(mut conn: Connection, mut batcher: Batcher) {
    let path = conn.path().map(PathBuf::from).unwrap_or_default();
    while batcher.fill_blocking() {
        let result = write::commit(&mut conn, batcher.ops()).map_err(sqlite_err(&path));
        if let Some(wait) = batcher.settle(result) {
            std::thread::sleep(wait);
        }
    }
}

crate::journal::journal_via!(SqliteStore, writes);

#[async_trait]
impl Conversations for SqliteStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.conversation(&id)).await
    }

    async fn transfers(&self, id: &str) -> Result<Vec<TransferAttempt>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.transfers(&id)).await
    }

    async fn insights(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.insights(&id)).await
    }

    async fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.events(&id, after_n)).await
    }

    async fn conversation_for_call(&self, call_control_id: &str) -> Result<Option<String>, StoreError> {
        let ccid = call_control_id.to_string();
        self.read(move |r| r.conversation_for_call(&ccid)).await
    }

    async fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError> {
        self.read(move |r| r.latest_conversation(active_only)).await
    }

    async fn find_conversation(&self, given: &str) -> Result<IdMatch, StoreError> {
        let given = given.to_string();
        self.read(move |r| r.find_conversation(&given)).await
    }

    async fn short_ids(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |r| ids.into_iter().map(|id| r.short_id(&id).map(|short| (id, short))).collect()).await
    }
}

#[async_trait]
impl Recovery for SqliteStore {
    async fn active_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.read(|r| r.active_sessions()).await
    }

    async fn session(&self, id: &str) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.session(&id)).await
    }

    async fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<PendingWebhook>, StoreError> {
        let id = id.to_string();
        self.read(move |r| r.unprocessed_webhooks(&id)).await
    }

    async fn recent_event_ids(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.read(move |r| r.recent_event_ids(since)).await
    }

    async fn open_legs(&self) -> Result<Vec<OpenLeg>, StoreError> {
        self.read(Reader::open_legs).await
    }
}

#[async_trait]
impl Analytics for SqliteStore {
    async fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        let filters = filters.clone();
        self.read(move |r| r.count(&filters)).await
    }

    fn calls(&self, filters: Filters) -> BoxStream<'static, Result<Conversation, StoreError>> {
        let reader = self.reader.clone();
        // Calls cross from the reading thread to the consumer in batches (one
        // wake-up per batch, not per call), a few batches in flight.
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<Conversation>, StoreError>>(BATCHES_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(CALLS_PER_BATCH);
            let read = reader.for_each_conversation(&filters, |c| {
                batch.push(c);
                batch.len() < CALLS_PER_BATCH || tx.blocking_send(Ok(std::mem::take(&mut batch))).is_ok()
            });
            if !batch.is_empty() {
                let _ = tx.blocking_send(Ok(batch));
            }
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(e));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|batch| (batch, rx)) })
            .flat_map(|batch| {
                let calls: Vec<_> = match batch {
                    Ok(calls) => calls.into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures_util::stream::iter(calls)
            })
            .boxed()
    }

    async fn existing(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |r| r.existing(&ids)).await
    }
}

#[async_trait]
impl Audit for SqliteStore {
    async fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let ids = event_ids.to_vec();
        self.read(move |r| r.missing_webhooks(&ids)).await
    }

    async fn audit_calls(&self, call_control_ids: &[String]) -> Result<Vec<CallAudit>, StoreError> {
        let ids = call_control_ids.to_vec();
        self.read(move |r| r.audit_calls(&ids)).await
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.reader.path().display().to_string()
    }
}
