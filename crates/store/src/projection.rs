//! What the domain event log means for the tables that make conversations
//! easy to query, in the terms every backend shares. A backend stores each
//! event once (keyed by conversation and `n`) and, when it is new, applies
//! what this module says; a replayed event changes nothing. SQLite runs
//! [`steps`] one by one; PostgreSQL runs them inside its checkpoint
//! function, which is built from the same [`statement`]s.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use ivrx_core::policy::Decision;
use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};

use crate::model::enum_name;

/// Whether an event is stored at all: interim transcripts are streamed, not kept.
pub(crate) fn is_stored(r: &Recorded) -> bool {
    !matches!(r.event, DomainEvent::Interim { .. })
}

/// The event's body as stored (its JSON without `n`, `at` and `offset_ms`, which have columns).
pub(crate) fn body(r: &Recorded) -> String {
    serde_json::to_string(&r.event).unwrap_or_else(|_| "{}".into())
}

/// What a new event means for the query tables: the statements of
/// [`statement`] to run, in order, each with its parameters.
pub(crate) fn steps(r: &Recorded) -> Vec<Step<'_>> {
    use statement as s;
    let conv = || Arg::text(&r.conversation_id);
    let off = Arg::Int(r.offset_ms as i64);
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => vec![Step::new(
            &s::CALL_STARTED,
            vec![
                conv(),
                Arg::Time(r.at),
                Arg::text(direction),
                Arg::opt(from),
                Arg::opt(to),
                Arg::text(call_control_id),
            ],
        )],
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => vec![Step::new(
            &s::LEG_JOINED,
            vec![
                Arg::text(call_control_id),
                conv(),
                Arg::text(role.as_str()),
                Arg::opt(call_leg_id),
                Arg::opt(call_session_id),
                Arg::opt(from),
                Arg::opt(to),
                off,
            ],
        )],
        DomainEvent::LegAnswered { call_control_id, .. } => {
            vec![Step::new(&s::LEG_ANSWERED, vec![Arg::text(call_control_id), off])]
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            vec![Step::new(&s::LEG_ENDED, vec![Arg::text(call_control_id), off, Arg::opt(cause), Arg::opt(source)])]
        }
        DomainEvent::Utterance { seq, speaker, text, confidence, caller_index } => vec![Step::new(
            &s::UTTERANCE,
            vec![
                conv(),
                Arg::Int((*seq).into()),
                Arg::text(speaker.as_str()),
                Arg::opt_int(*caller_index),
                off,
                Arg::text(text),
                confidence.map_or(Arg::Null, Arg::Float),
            ],
        )],
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => vec![Step::new(
            &s::SCORED,
            vec![
                conv(),
                Arg::Int((*seq).into()),
                Arg::Float(*score),
                Arg::text(label.as_str()),
                Arg::owned(Some(json(trackers).unwrap_or_else(|| "[]".into()))),
                Arg::text(engine),
                Arg::owned(policy.as_ref().and_then(json)),
            ],
        )],
        DomainEvent::Decision { source, decision } => {
            let source = || Arg::owned(enum_name(source));
            let trigger_index = || Arg::opt_int(trigger_index(decision));
            vec![
                Step::new(
                    &s::DECISION,
                    vec![
                        conv(),
                        Arg::Int(r.n as i64),
                        off.clone(),
                        source(),
                        Arg::text(decision.reason.as_str()),
                        Arg::text(&decision.queue),
                        trigger_index(),
                        Arg::text(&decision.trigger_text),
                        Arg::opt(&decision.trigger_phrase),
                        Arg::opt(&decision.tracker),
                        Arg::owned(json(&decision.numbers)),
                    ],
                ),
                Step::new(
                    &s::CONVERSATION_DECISION,
                    vec![
                        conv(),
                        Arg::text(decision.reason.as_str()),
                        source(),
                        Arg::text(&decision.queue),
                        trigger_index(),
                        Arg::text(&decision.trigger_text),
                        Arg::opt(&decision.trigger_phrase),
                        off,
                    ],
                ),
            ]
        }
        DomainEvent::Transfer { attempt, queue, target, mode, status, detail, agent_call_control_id } => {
            let (answered, connected, ended) = transfer_times(*status, r.offset_ms as i64);
            let mut steps = vec![Step::new(
                &s::TRANSFER,
                vec![
                    conv(),
                    Arg::Int((*attempt).into()),
                    Arg::text(queue),
                    Arg::text(target),
                    Arg::owned(enum_name(mode)),
                    Arg::text(status.as_str()),
                    Arg::opt(detail),
                    Arg::opt(agent_call_control_id),
                    off,
                    Arg::opt_int(answered),
                    Arg::opt_int(connected),
                    Arg::opt_int(ended),
                ],
            )];
            if status.is_conversation_status() {
                let transferred = *status == TransferStatus::Connected;
                steps.push(Step::new(
                    &s::CONVERSATION_TRANSFER,
                    vec![conv(), Arg::text(status.as_str()), Arg::Bool(transferred), Arg::opt_int(connected)],
                ));
            }
            steps
        }
        DomainEvent::CallEnded { reason } => {
            vec![Step::new(&s::CALL_ENDED, vec![conv(), Arg::Time(r.at), Arg::text(reason), off])]
        }
        DomainEvent::IvrSaid { .. }
        | DomainEvent::Dtmf { .. }
        | DomainEvent::Interim { .. }
        | DomainEvent::CommandFailed { .. }
        | DomainEvent::EngineFallback { .. }
        | DomainEvent::Notification { .. }
        | DomainEvent::Callback { .. } => Vec::new(),
    }
}

/// The parameters of [`sql::EVENT`] for an event.
pub(crate) fn event(r: &Recorded) -> Vec<Arg<'_>> {
    vec![
        Arg::text(&r.conversation_id),
        Arg::Int(r.n as i64),
        Arg::text(r.event.kind()),
        Arg::Time(r.at),
        Arg::Int(r.offset_ms as i64),
        Arg::owned(Some(body(r))),
    ]
}

/// The times a transfer status fills in: `(answered_ms, connected_ms, ended_ms)`.
fn transfer_times(status: TransferStatus, offset_ms: i64) -> (Option<i64>, Option<i64>, Option<i64>) {
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
fn trigger_index(d: &Decision) -> Option<u32> {
    (d.trigger_index > 0).then_some(d.trigger_index)
}

/// A value as the JSON text stored in a column.
fn json<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// A statement's parameter, as each backend binds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl<'a> Arg<'a> {
    fn text(s: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(s))
    }

    fn opt(s: &'a Option<String>) -> Self {
        s.as_deref().map_or(Arg::Null, Arg::text)
    }

    fn owned(s: Option<String>) -> Self {
        s.map_or(Arg::Null, |s| Arg::Text(Cow::Owned(s)))
    }

    fn opt_int(v: Option<impl Into<i64>>) -> Self {
        v.map_or(Arg::Null, |v| Arg::Int(v.into()))
    }

    /// The type of a value (none for `Null`, which any parameter takes).
    pub(crate) fn ty(&self) -> Option<Ty> {
        match self {
            Arg::Null => None,
            Arg::Text(_) => Some(Ty::Text),
            Arg::Int(_) => Some(Ty::Int),
            Arg::Float(_) => Some(Ty::Float),
            Arg::Bool(_) => Some(Ty::Bool),
            Arg::Time(_) => Some(Ty::Time),
        }
    }
}

/// A parameter's type: PostgreSQL's checkpoint function reads the values
/// from JSON text and casts them to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Text,
    Int,
    Float,
    Bool,
    Time,
}

/// A statement that applies a new event to the query tables.
#[derive(Debug)]
pub(crate) struct Statement {
    /// How PostgreSQL's checkpoint function names it.
    pub(crate) name: &'static str,
    /// One of [`sql`].
    pub(crate) sql: &'static str,
    /// The type of each placeholder, `$1` first.
    pub(crate) params: &'static [Ty],
}

/// A statement to run and its parameters.
#[derive(Debug)]
pub(crate) struct Step<'a> {
    pub(crate) statement: &'static Statement,
    pub(crate) args: Vec<Arg<'a>>,
}

impl<'a> Step<'a> {
    fn new(statement: &'static Statement, args: Vec<Arg<'a>>) -> Self {
        debug_assert_eq!(statement.params.len(), args.len(), "{}", statement.name);
        debug_assert!(
            args.iter().zip(statement.params).all(|(a, t)| a.ty().is_none_or(|ty| ty == *t)),
            "{}: {args:?} for {:?}",
            statement.name,
            statement.params
        );
        Step { statement, args }
    }
}

/// The statements [`steps`] runs, each with its parameters' types.
pub(crate) mod statement {
    use super::Ty::{Bool, Float, Int, Text, Time};
    use super::{sql, Statement};

    pub(crate) const CALL_STARTED: Statement =
        Statement { name: "call_started", sql: sql::CALL_STARTED, params: &[Text, Time, Text, Text, Text, Text] };
    pub(crate) const LEG_JOINED: Statement = Statement {
        name: "leg_joined",
        sql: sql::LEG_JOINED,
        params: &[Text, Text, Text, Text, Text, Text, Text, Int],
    };
    pub(crate) const LEG_ANSWERED: Statement =
        Statement { name: "leg_answered", sql: sql::LEG_ANSWERED, params: &[Text, Int] };
    pub(crate) const LEG_ENDED: Statement =
        Statement { name: "leg_ended", sql: sql::LEG_ENDED, params: &[Text, Int, Text, Text] };
    pub(crate) const UTTERANCE: Statement =
        Statement { name: "utterance", sql: sql::UTTERANCE, params: &[Text, Int, Text, Int, Int, Text, Float] };
    pub(crate) const SCORED: Statement =
        Statement { name: "scored", sql: sql::SCORED, params: &[Text, Int, Float, Text, Text, Text, Text] };
    pub(crate) const DECISION: Statement = Statement {
        name: "decision",
        sql: sql::DECISION,
        params: &[Text, Int, Int, Text, Text, Text, Int, Text, Text, Text, Text],
    };
    pub(crate) const CONVERSATION_DECISION: Statement = Statement {
        name: "conversation_decision",
        sql: sql::CONVERSATION_DECISION,
        params: &[Text, Text, Text, Text, Int, Text, Text, Int],
    };
    pub(crate) const TRANSFER: Statement = Statement {
        name: "transfer",
        sql: sql::TRANSFER,
        params: &[Text, Int, Text, Text, Text, Text, Text, Text, Int, Int, Int, Int],
    };
    pub(crate) const CONVERSATION_TRANSFER: Statement =
        Statement { name: "conversation_transfer", sql: sql::CONVERSATION_TRANSFER, params: &[Text, Text, Bool, Int] };
    pub(crate) const CALL_ENDED: Statement =
        Statement { name: "call_ended", sql: sql::CALL_ENDED, params: &[Text, Time, Text, Int] };

    /// Every one of them.
    pub(crate) const ALL: [&Statement; 11] = [
        &CALL_STARTED,
        &LEG_JOINED,
        &LEG_ANSWERED,
        &LEG_ENDED,
        &UTTERANCE,
        &SCORED,
        &DECISION,
        &CONVERSATION_DECISION,
        &TRANSFER,
        &CONVERSATION_TRANSFER,
        &CALL_ENDED,
    ];
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
