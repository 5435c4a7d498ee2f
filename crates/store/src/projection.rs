//! What the domain event log means for the tables that make conversations
//! easy to query, in the terms every backend shares. A backend stores each
//! event once (keyed by conversation and `n`) and, when it is new, applies
//! what this module says; a replayed event changes nothing.

use ivrx_core::policy::Decision;
use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};

/// Whether an event is stored at all: interim transcripts are streamed, not kept.
pub(crate) fn is_stored(r: &Recorded) -> bool {
    !matches!(r.event, DomainEvent::Interim { .. })
}

/// The event's body as stored (its JSON without `n`, `at` and `offset_ms`, which have columns).
pub(crate) fn body(r: &Recorded) -> String {
    serde_json::to_string(&r.event).unwrap_or_else(|_| "{}".into())
}

/// The times a transfer status fills in: `(answered_ms, connected_ms, ended_ms)`.
pub(crate) fn transfer_times(status: TransferStatus, offset_ms: i64) -> (Option<i64>, Option<i64>, Option<i64>) {
    match status {
        TransferStatus::Answered => (Some(offset_ms), None, None),
        TransferStatus::Connected => (None, Some(offset_ms), None),
        TransferStatus::AttemptFailed | TransferStatus::Failed | TransferStatus::Abandoned => {
            (None, None, Some(offset_ms))
        }
        TransferStatus::Dialing | TransferStatus::Ringing | TransferStatus::Bridging => (None, None, None),
    }
}

/// The caller index a decision names (none for keypad and manual decisions, which carry 0).
pub(crate) fn trigger_index(d: &Decision) -> Option<u32> {
    (d.trigger_index > 0).then_some(d.trigger_index)
}

/// A value as the JSON text stored in a column.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}
