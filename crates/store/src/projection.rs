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
        TransferStatus::Dialing
        | TransferStatus::Ringing
        | TransferStatus::Bridging
        | TransferStatus::Queued
        | TransferStatus::Dequeued => (None, None, None),
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

/// The statements that store events, webhooks and snapshots, written once in
/// PostgreSQL's numbered placeholders (`$1`); SQLite runs them with its own
/// (`?1`, see [`sqlite_placeholders`]). Each is idempotent: an insert of a row
/// already stored does nothing, an update fills only what is still empty.
pub(crate) mod sql {
    pub(crate) const SESSION: &str =
        "INSERT INTO sessions (conversation_id, state, ended, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (conversation_id) DO UPDATE SET state = excluded.state, ended = excluded.ended,
         updated_at = excluded.updated_at";

    pub(crate) const WEBHOOK_PROCESSED: &str = "UPDATE webhooks SET processed = true WHERE event_id = $1";

    pub(crate) const INSIGHTS: &str =
        "INSERT INTO insights (conversation_id, source, body, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (conversation_id, source) DO UPDATE SET body = excluded.body,
         created_at = excluded.created_at";

    pub(crate) const WEBHOOK: &str = "INSERT INTO webhooks
         (event_id, received_at, event_type, call_control_id, conversation_id, attempt, outcome, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING";

    pub(crate) const EVENT: &str = "INSERT INTO events (conversation_id, n, kind, at, offset_ms, body)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (conversation_id, n) DO NOTHING";

    pub(crate) const CALL_STARTED: &str =
        "INSERT INTO conversations (id, started_at, direction, caller, callee, caller_call_control_id)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING";

    pub(crate) const LEG_JOINED: &str =
        "INSERT INTO legs (call_control_id, conversation_id, role, call_leg_id, call_session_id,
         from_number, to_number, joined_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (call_control_id) DO NOTHING";

    pub(crate) const LEG_ANSWERED: &str =
        "UPDATE legs SET answered_ms = $2 WHERE call_control_id = $1 AND answered_ms IS NULL";

    pub(crate) const LEG_ENDED: &str = "UPDATE legs SET ended_ms = $2, hangup_cause = $3, hangup_source = $4
         WHERE call_control_id = $1 AND ended_ms IS NULL";

    pub(crate) const UTTERANCE: &str =
        "INSERT INTO utterances (conversation_id, seq, speaker, caller_index, offset_ms, text, confidence)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (conversation_id, seq) DO NOTHING";

    pub(crate) const SCORED: &str =
        "UPDATE utterances SET score = $3, label = $4, trackers = $5, engine = $6, policy = $7
         WHERE conversation_id = $1 AND seq = $2";

    pub(crate) const DECISION: &str =
        "INSERT INTO decisions (conversation_id, n, offset_ms, source, reason, queue, trigger_index,
         trigger_text, trigger_phrase, tracker, numbers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (conversation_id, n) DO NOTHING";

    pub(crate) const CONVERSATION_DECISION: &str =
        "UPDATE conversations SET decision_reason = $2, decision_source = $3, queue = $4, trigger_index = $5,
         trigger_text = $6, trigger_phrase = $7, decision_ms = $8
         WHERE id = $1";

    /// A transfer attempt's row, under the decision it belongs to: the
    /// conversation's latest (0 before any). A later status replaces an
    /// earlier one (except that a failed transfer stays failed), times are
    /// filled once.
    pub(crate) const TRANSFER: &str =
        "INSERT INTO transfers (conversation_id, decision_n, attempt, queue, target, mode, status, detail,
         agent_call_control_id, requested_ms, answered_ms, connected_ms, ended_ms)
         VALUES ($1, (SELECT CAST(COALESCE(max(n), 0) AS BIGINT) FROM decisions WHERE conversation_id = $1),
           $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (conversation_id, decision_n, attempt) DO UPDATE SET
           status = CASE WHEN transfers.status = 'failed' AND excluded.status = 'attempt_failed'
                         THEN transfers.status ELSE excluded.status END,
           detail = COALESCE(excluded.detail, transfers.detail),
           agent_call_control_id = COALESCE(excluded.agent_call_control_id, transfers.agent_call_control_id),
           answered_ms = COALESCE(transfers.answered_ms, excluded.answered_ms),
           connected_ms = COALESCE(transfers.connected_ms, excluded.connected_ms),
           ended_ms = COALESCE(transfers.ended_ms, excluded.ended_ms)";

    pub(crate) const CONVERSATION_TRANSFER: &str = "UPDATE conversations SET transfer_status = $2,
           transferred = transferred OR $3,
           connected_ms = COALESCE(connected_ms, $4)
         WHERE id = $1";

    pub(crate) const CALL_ENDED: &str =
        "UPDATE conversations SET status = 'ended', ended_at = $2, end_reason = $3, duration_ms = $4
         WHERE id = $1 AND status != 'ended'";
}

/// A statement of [`sql`] in SQLite's placeholders: `$n` becomes `?n`, which
/// binds the n-th parameter as PostgreSQL's does (SQLite would take `$n` as a
/// name, numbered in order of appearance).
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}
