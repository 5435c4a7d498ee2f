//! The port for several `ivrx serve` instances on one database: which
//! instance owns a conversation ([`Lease`]), checkpoints that commit only
//! while their lease is current (the fencing token), and the wake-ups that
//! tell an owner another instance stored a webhook or a [`Request`] for its
//! conversation.
//!
//! A lease is a row per conversation with an owner, an epoch and an expiry.
//! Taking a lease that is free, expired or the taker's own raises the epoch;
//! a checkpoint locks the lease row (`FOR UPDATE`) and commits only if the
//! epoch is still the one its worker was given, so a worker that lost its
//! lease (its instance was slow, partitioned or presumed dead) can never
//! commit again, whatever the timing. Only a backend shared by several
//! instances implements this (PostgreSQL); SQLite is one instance.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;

use crate::model::Transition;
use crate::StoreError;

/// A conversation owned by one instance, at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The conversation.
    pub conversation_id: String,
    /// The owning instance.
    pub owner: String,
    /// The fencing token: raised each time the conversation changes hands.
    pub epoch: i64,
}

/// What asking for a conversation's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is the asker's now.
    Owned(Lease),
    /// Another instance holds a lease that has not expired.
    Held {
        /// The instance that holds it.
        owner: String,
    },
}

/// What a fenced checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// Committed under the current epoch; the lease runs for another term.
    Committed,
    /// Not committed: the conversation has another owner (a newer epoch).
    Lost,
}

/// An operator's request stored for a conversation's owner by whichever
/// instance received it (a manual transfer), answered under the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id, in the order requests were stored.
    pub id: i64,
    /// What is asked, as the application encoded it.
    pub body: String,
}

/// The owner's answer to a [`Request`], as the application encoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The request answered.
    pub request_id: i64,
    /// The outcome.
    pub body: String,
}

/// Conversation ownership and wake-ups across instances.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Takes `conversation_id` for `owner` for `term` when its lease is
    /// free, expired or already `owner`'s; the epoch is raised either way.
    async fn acquire(&self, conversation_id: &str, owner: &str, term: Duration) -> Result<Acquired, StoreError>;

    /// Extends a lease by `term`; false when it is no longer current.
    async fn renew(&self, lease: &Lease, term: Duration) -> Result<bool, StoreError>;

    /// Gives a lease up (it expires now), so any instance may take the
    /// conversation at once.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Gives up every lease `owner` holds (an instance stopping).
    async fn release_all(&self, owner: &str) -> Result<u64, StoreError>;

    /// Commits a transition and answers to requests in one transaction,
    /// only if `lease` is still current (its row locked), extending it by `term`.
    async fn checkpoint(
        &self,
        lease: &Lease,
        transition: Option<Transition>,
        answers: &[Answer],
        term: Duration,
    ) -> Result<Fence, StoreError>;

    /// Stores a request for `conversation_id`'s owner and wakes every instance.
    async fn request(&self, conversation_id: &str, body: &str) -> Result<i64, StoreError>;

    /// `conversation_id`'s requests not answered yet, in the order they were stored.
    async fn requests(&self, conversation_id: &str) -> Result<Vec<Request>, StoreError>;

    /// A request's answer, once its owner committed one; the answered
    /// request is forgotten as it is taken (its asker reads it once).
    async fn take_answer(&self, request_id: i64) -> Result<Option<String>, StoreError>;

    /// Forgets the requests stored more than `age` ago, answered or not:
    /// their asker gave up waiting, or its instance stopped, and a request
    /// of a conversation that ended is never answered.
    async fn forget_requests(&self, age: Duration) -> Result<u64, StoreError>;

    /// Tells every instance that `conversation_id` has work waiting (storing
    /// an accepted webhook for a conversation does so by itself).
    async fn wake(&self, conversation_id: &str) -> Result<(), StoreError>;

    /// The conversations other instances woke, as they are woken. The
    /// stream reconnects by itself; it yields `None` after a reconnection
    /// (wake-ups may have been missed while it was down).
    fn wake_ups(&self) -> BoxStream<'static, Option<String>>;

    /// The conversations whose checkpoints other instances (or this one)
    /// committed events or answers in, with the last event's number (0 when
    /// only answers were committed), as they commit; `None` after a
    /// reconnection (some may have been missed).
    fn committed(&self) -> BoxStream<'static, Option<(String, u64)>>;

    /// Conversations with work (a session not ended, an accepted webhook
    /// not processed or a request not answered) whose lease is missing or has expired.
    async fn orphans(&self) -> Result<Vec<String>, StoreError>;
}
