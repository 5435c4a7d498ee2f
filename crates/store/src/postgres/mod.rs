//! The PostgreSQL backend: the same tables and the same meaning as SQLite,
//! on a database server that several `ivrx serve` instances can share.
//!
//! Writes go through the shared write queue (see [`crate::journal`]): one
//! task per store commits the queued writes in batches, one transaction per
//! batch (its statements pipelined, see [`pipeline`]: a batch of webhooks
//! commits in one round trip), so the webhook path never waits on the
//! database; a transition's events, session state and consumed webhooks
//! commit together. While no
//! write is waiting, the task checks every [`PROBE_EVERY`] that the database
//! answers, so an unreachable database shows in the store's health (and
//! `/readyz`) before a write has to fail. Reads take a connection from the
//! pool. Migrations run at open under an advisory lock ([`schema`]).

mod checkpoint;
mod cluster;
mod connect;
mod pipeline;
mod read;
mod schema;
mod write;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt};
use ivrx_core::session::Recorded;

pub(crate) use connect::config;
use connect::Db;

use crate::journal::{Batcher, WriteQueue, Writes};
use crate::location::PostgresUrl;
use crate::model::{CallAudit, Conversation, Filters, OpenLeg, PendingWebhook, TransferAttempt};
use crate::port::{Analytics, Audit, Conversations, Recovery, Store};
use crate::{IdMatch, StoreError, StoreOptions};

/// How often an idle writer checks that the database answers.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Calls [`Analytics::calls`] reads at a time.
const CALLS_PER_PAGE: usize = 64;

/// A store in a PostgreSQL database.
pub struct PostgresStore {
    db: Db,
    writes: Writes,
    cluster: cluster::PgCluster,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("db", &self.db.name).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, creates or upgrades the schema (once across instances
    /// starting together) and starts the writer task. Must be called
    /// within a tokio runtime, which the writer then runs on.
    pub async fn open(url: &PostgresUrl, options: StoreOptions) -> Result<Self, StoreError> {
        let db = Db::new(url, options.lock_timeout)?;
        schema::migrate(&db).await?;
        let (queue, batcher) = WriteQueue::new(&options, db.name.clone());
        tokio::spawn(run_writer(db.clone(), batcher));
        let writes = Writes::new(queue, db.name.clone());
        let cluster = cluster::PgCluster { db: db.clone(), redact_pii: options.redact_pii };
        Ok(Self { db, writes, cluster })
    }

    /// Connects to an existing ivrx database for reading only: nothing is
    /// created, migrated or written.
    pub async fn open_read_only(url: &PostgresUrl) -> Result<Self, StoreError> {
        let db = Db::new(url, crate::StoreOptions::default().lock_timeout)?;
        schema::check(&db).await?;
        let writes = Writes::read_only(db.name.clone());
        let cluster = cluster::PgCluster { db: db.clone(), redact_pii: true };
        Ok(Self { db, writes, cluster })
    }

    /// Every text value of every table, one per line (privacy audits).
    pub async fn every_text(&self) -> Result<String, StoreError> {
        self.db.every_text().await
    }
}

/// Whether the database answers.
async fn probe(db: &Db) -> Result<(), StoreError> {
    let client = db.get().await?;
    client.simple_query("SELECT 1").await.map_err(db.err())?;
    Ok(())
}

/// The writer task: commits batches until every sender is gone; checks the
/// database while idle.
async fn run_writer(db: Db, mut batcher: Batcher) {
    loop {
        match tokio::time::timeout(PROBE_EVERY, batcher.fill()).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(_idle) => {
                batcher.probed(probe(&db).await);
                continue;
            }
        }
        let began = std::time::Instant::now();
        let result = match db.get().await {
            Ok(client) => {
                let pool_ms = began.elapsed().as_secs_f64() * 1e3;
                let r = write::commit(client, &db.begin, batcher.ops()).await.map_err(db.failed());
                tracing::debug!(target: "ivrx::latency", stage = "write_batch", ops = batcher.ops().len(), pool_ms, total_ms = began.elapsed().as_secs_f64() * 1e3);
                r
            }
            Err(e) => Err(e),
        };
        if let Some(wait) = batcher.settle(result) {
            tokio::time::sleep(wait).await;
        }
    }
}

crate::journal::journal_via!(PostgresStore, writes);

#[async_trait]
impl Conversations for PostgresStore {
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.db.conversation(id).await
    }

    async fn transfers(&self, id: &str) -> Result<Vec<TransferAttempt>, StoreError> {
        self.db.transfers(id).await
    }

    async fn insights(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        self.db.insights(id).await
    }

    async fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError> {
        self.db.events(id, after_n).await
    }

    async fn conversation_for_call(&self, call_control_id: &str) -> Result<Option<String>, StoreError> {
        self.db.conversation_for_call(call_control_id).await
    }

    async fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError> {
        self.db.latest_conversation(active_only).await
    }

    async fn find_conversation(&self, given: &str) -> Result<IdMatch, StoreError> {
        self.db.find_conversation(given).await
    }

    async fn short_ids(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        self.db.short_ids(ids).await
    }
}

#[async_trait]
impl Recovery for PostgresStore {
    async fn active_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.db.active_sessions().await
    }

    async fn session(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.db.session(id).await
    }

    async fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<PendingWebhook>, StoreError> {
        self.db.unprocessed_webhooks(id).await
    }

    async fn recent_event_ids(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.db.recent_event_ids(since).await
    }

    async fn open_legs(&self) -> Result<Vec<OpenLeg>, StoreError> {
        self.db.open_legs().await
    }
}

#[async_trait]
impl Analytics for PostgresStore {
    async fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        self.db.count(filters).await
    }

    fn calls(&self, filters: Filters) -> BoxStream<'static, Result<Conversation, StoreError>> {
        let pages = read::Pages { db: self.db.clone(), filters, after: None, buffered: VecDeque::new(), done: false };
        futures_util::stream::unfold(pages, |mut pages| async move {
            pages.next(CALLS_PER_PAGE).await.map(|call| (call, pages))
        })
        .boxed()
    }

    async fn existing(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.db.existing(ids).await
    }
}

#[async_trait]
impl Audit for PostgresStore {
    async fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError> {
        self.db.missing_webhooks(event_ids).await
    }

    async fn audit_calls(&self, call_control_ids: &[String]) -> Result<Vec<CallAudit>, StoreError> {
        self.db.audit_calls(call_control_ids).await
    }
}

impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.db.name.clone()
    }

    fn cluster(&self) -> Option<&dyn crate::cluster::Cluster> {
        Some(&self.cluster)
    }
}
