//! Copying one store into another through the port, whatever their
//! backends: each conversation's domain event log (from which the target
//! rebuilds its conversations, legs, utterances, decisions and transfers, as
//! it does for live calls), its session snapshot and its insights. Replayed
//! events change nothing, so copying again, or after an interruption, adds
//! only what is missing. The raw webhook log stays in the source.

use std::path::Path;

use futures_util::StreamExt;

use crate::model::{Filters, SessionState, Transition};
use crate::{Store, StoreError};

/// Conversations queued before the copy waits for the target to commit them.
const CALLS_IN_FLIGHT: u64 = 256;

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Conversations.
    pub conversations: u64,
    /// Domain events.
    pub events: u64,
}

/// True when `path` is a SQLite database file (by its header).
pub fn is_sqlite_file(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)).is_ok() && &header == b"SQLite format 3\0"
}

/// Copies every conversation of `from` into `to`, calling `on_call` after
/// each; returns once the copy is committed.
pub async fn copy(from: &dyn Store, to: &dyn Store, mut on_call: impl FnMut()) -> Result<Copied, StoreError> {
    let active = from.active_sessions().await?;
    let mut calls = from.calls(Filters::default());
    let mut copied = Copied::default();
    while let Some(call) = calls.next().await {
        let id = call?.id;
        let events = from.events(&id, 0).await?;
        let session = from.session(&id).await?.map(|state| SessionState { state, ended: !active.contains(&id) });
        copied.events += events.len() as u64;
        drop(to.commit(Transition { conversation_id: id.clone(), events, session, processed: Vec::new() }));
        for (source, insights) in from.insights(&id).await? {
            drop(to.record_insights(&id, &source, insights));
        }
        copied.conversations += 1;
        if copied.conversations % CALLS_IN_FLIGHT == 0 {
            to.flush().await?; // keeps the queue bounded when the source reads faster than the target writes
        }
        on_call();
    }
    to.flush().await?;
    Ok(copied)
}
