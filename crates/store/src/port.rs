//! The storage port: what the server writes ([`Journal`]) and what the server,
//! `watch`, `transfer`, the admin API and `analyze` read ([`Conversations`],
//! [`Recovery`], [`Analytics`], [`Audit`]). Each backend implements all of them;
//! the rest of ivrx holds an `Arc<dyn Store>` and never sees SQL.
//!
//! Writes are units: a [`Transition`] (one conversation's events, its
//! session's new state and the webhooks it consumed) commits atomically, so a
//! backend can serialise a conversation's transitions (a row lock) and make an
//! event id unique across instances without the callers changing. Writes are
//! queued and never block the caller; each returns a [`Durable`] that resolves
//! once the write is committed, which a caller may await (the webhook
//! acknowledgement does) or drop.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use ivrx_core::session::Recorded;
use tokio::sync::oneshot;

use crate::cluster::Cluster;
use crate::model::{
    CallAudit, CallReport, Conversation, Filters, OpenLeg, PendingWebhook, Receipt, TransferAttempt, Transition,
    WebhookRecord,
};
use crate::{IdMatch, StoreError, StoreHealth};

/// What the server writes.
pub trait Journal: Send + Sync {
    /// Queues one conversation's transition; it commits atomically.
    fn commit(&self, transition: Transition) -> Durable<()>;

    /// Queues a raw webhook; the receipt says whether the store already held its event id.
    fn record_webhook(&self, webhook: WebhookRecord) -> Durable<Receipt>;

    /// Queues what an external engine made of a whole conversation (topics,
    /// trackers), replacing what that engine stored before.
    fn record_insights(&self, conversation_id: &str, source: &str, insights: serde_json::Value) -> Durable<()>;

    /// Resolves once everything queued before it is committed.
    fn flush(&self) -> Durable<()>;

    /// How writing is going, for `/readyz` and `/metrics`.
    fn health(&self) -> &StoreHealth;
}

/// What `watch`, `transfer`, the admin API and call reports read.
#[async_trait]
pub trait Conversations: Send + Sync {
    /// One conversation with its utterances.
    async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// A conversation's transfer attempts, in order.
    async fn transfers(&self, id: &str) -> Result<Vec<TransferAttempt>, StoreError>;

    /// What external engines made of a conversation, by engine (e.g. `symbl`).
    async fn insights(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError>;

    /// The stored domain events after `after_n`, in order.
    async fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError>;

    /// The conversation a leg belongs to.
    async fn conversation_for_call(&self, call_control_id: &str) -> Result<Option<String>, StoreError>;

    /// The newest conversation (`active_only`: only calls still going).
    async fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError>;

    /// The conversation `given` names: its id or a leg's call_control_id, in
    /// full or by a unique prefix (see [`crate::ids`]).
    async fn find_conversation(&self, given: &str) -> Result<IdMatch, StoreError>;

    /// For each of `ids`, the shortest prefix of at least
    /// [`SHORT_ID`](crate::ids::SHORT_ID) characters that names it alone (the
    /// whole id when none does), as tables print them.
    async fn short_ids(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError>;

    /// What happened in one call.
    async fn report(&self, id: &str) -> Result<Option<CallReport>, StoreError> {
        let Some(c) = self.conversation(id).await? else { return Ok(None) };
        let transfers = self.transfers(id).await?;
        let insights = self.insights(id).await?;
        Ok(Some(CallReport::new(c, transfers, insights)))
    }
}

/// What a restarted server reads to resume the calls in progress.
#[async_trait]
pub trait Recovery: Send + Sync {
    /// Conversations whose session has not ended.
    async fn active_sessions(&self) -> Result<Vec<String>, StoreError>;

    /// The saved state of one session.
    async fn session(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Webhooks routed to a conversation and accepted but not processed by it yet, oldest first.
    async fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<PendingWebhook>, StoreError>;

    /// Ids of webhooks received since `since`, to refuse repeats after a restart.
    async fn recent_event_ids(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError>;

    /// The legs whose end the record does not show, to ask the carrier about
    /// (reconciliation).
    async fn open_legs(&self) -> Result<Vec<OpenLeg>, StoreError>;
}

/// What `ivrx analyze` reads.
#[async_trait]
pub trait Analytics: Send + Sync {
    /// How many conversations match.
    async fn count(&self, filters: &Filters) -> Result<u64, StoreError>;

    /// The matching conversations with their utterances, oldest first
    /// (`started_at`, then id), streamed: a backend holds only a bounded
    /// number of them in memory at once.
    fn calls(&self, filters: Filters) -> BoxStream<'static, Result<Conversation, StoreError>>;

    /// The ids among `ids` that name stored conversations.
    async fn existing(&self, ids: &[String]) -> Result<Vec<String>, StoreError>;
}

/// What load runs check (`ivrx dial --sandbox --load`).
#[async_trait]
pub trait Audit: Send + Sync {
    /// The ids among `event_ids` that the webhook log does not hold.
    async fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError>;

    /// What the store holds about each call (by its first leg), in the order given.
    async fn audit_calls(&self, call_control_ids: &[String]) -> Result<Vec<CallAudit>, StoreError>;
}

/// A whole store: the journal and every reading side.
pub trait Store: Journal + Conversations + Recovery + Analytics + Audit {
    /// The database as people see it (a path, or a URL with its password masked).
    fn describe(&self) -> String;

    /// Conversation ownership across instances, for a backend several
    /// instances share (`None`: this store serves one instance).
    fn cluster(&self) -> Option<&dyn Cluster> {
        None
    }
}

/// A store shared by the server's tasks.
pub type SharedStore = Arc<dyn Store>;

/// A queued write: resolves once it is committed. Dropping it does not cancel the write.
#[must_use = "a write is queued either way; await this to know it is committed"]
pub struct Durable<T>(DurableInner<T>);

enum DurableInner<T> {
    Waiting(oneshot::Receiver<T>),
    Failed(Option<StoreError>),
}

impl<T> Durable<T> {
    /// A write that resolves when `rx` is answered (an error if its sender is dropped).
    pub fn waiting(rx: oneshot::Receiver<T>) -> Self {
        Durable(DurableInner::Waiting(rx))
    }

    /// A write that was refused.
    pub fn failed(error: StoreError) -> Self {
        Durable(DurableInner::Failed(Some(error)))
    }
}

impl<T> Future for Durable<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            DurableInner::Waiting(rx) => Pin::new(rx).poll(cx).map(|r| r.map_err(|_| StoreError::Closed)),
            DurableInner::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(StoreError::Closed))),
        }
    }
}
