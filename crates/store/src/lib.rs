//! Storage for ivrx: conversations, legs, utterances with scores, decisions,
//! transfers, the domain event log, session snapshots and the raw webhook log.
//!
//! The crate is a port ([`port`]: what the server writes and what the server,
//! `watch`, the admin API and `analyze` read, in the domain's types of
//! [`model`]) and its backends: [`sqlite`], the embedded default, and
//! [`postgres`], for several instances on one database server. Nothing
//! outside this crate sees SQL. Writes are queued and committed in batches by
//! one writer per store ([`journal`]); when a write fails (disk full,
//! database locked) it is kept and retried, and [`StoreHealth`] says so.
//! Caller text is stored [`redact`]ed unless redaction is turned off.

pub mod cluster;
pub mod copy;
mod error;
pub mod ids;
pub mod journal;
mod location;
pub mod model;
pub mod port;
pub mod postgres;
mod projection;
pub mod redact;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

pub use error::{DriverError, StoreError};
pub use ids::IdMatch;
pub use journal::StoreHealth;
pub use location::{is_postgres_url, Location, PostgresUrl};
pub use model::{
    CallAudit, CallReport, CallbackTimes, Conversation, ConversationStatus, Filters, OpenLeg, PendingWebhook, Receipt,
    ReportUtterance, SessionState, StoredDecision, TransferAttempt, Transition, Utterance, WebhookOutcome,
    WebhookRecord,
};
pub use port::{Analytics, Audit, Conversations, Durable, Journal, Recovery, SharedStore, Store};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Options for a store that writes.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Redact PII from text before it is written.
    pub redact_pii: bool,
    /// Most writes committed in one transaction.
    pub batch: usize,
    /// How long a write waits for a lock another process holds before it
    /// fails (and is retried): SQLite's busy timeout, PostgreSQL's
    /// `lock_timeout`.
    pub lock_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { redact_pii: true, batch: 512, lock_timeout: Duration::from_secs(5) }
    }
}

/// Opens the store at `location` for reading and writing, creating and
/// migrating it as needed.
pub async fn open(location: &Location, options: StoreOptions) -> Result<SharedStore, StoreError> {
    match location {
        Location::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path, options)?)),
        Location::Postgres(url) => Ok(Arc::new(PostgresStore::open(url, options).await?)),
    }
}

/// Opens an existing store for reading only; a SQLite file that does not
/// exist, or a PostgreSQL database without ivrx's tables, is
/// [`StoreError::Missing`].
pub async fn open_read_only(location: &Location) -> Result<SharedStore, StoreError> {
    match location {
        Location::Sqlite(path) => Ok(Arc::new(SqliteStore::open_read_only(path)?)),
        Location::Postgres(url) => Ok(Arc::new(PostgresStore::open_read_only(url).await?)),
    }
}
