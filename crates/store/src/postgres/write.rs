//! Commits a batch of writes to PostgreSQL in one transaction, with the
//! statements SQLite runs too (see [`crate::projection::sql`]): every
//! statement is idempotent, so a replayed event changes nothing, and an
//! event id is stored once (its primary key) whichever instance receives it.
//!
//! The statements are pipelined (see [`super::pipeline`]): a batch of
//! webhooks commits in one round trip; a transition's events, session state
//! and consumed webhooks go in the first, and what the events found new
//! mean for the other tables, with the `COMMIT`, in the second.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::Utc;
use deadpool_postgres::{Object, Transaction};
use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use tokio_postgres::types::ToSql;

use super::pipeline::{params, Error, Reply, Step, Tx};
use crate::journal::WriteOp;
use crate::model::{enum_name, Transition, WebhookOutcome, WebhookRecord};
use crate::projection::{self, sql};

type Result<T> = std::result::Result<T, Error>;

/// Text as PostgreSQL stores it: it refuses NUL characters, which network
/// input may carry, so they become U+FFFD.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

fn owned_text(s: String) -> String {
    match text(&s) {
        Cow::Owned(clean) => clean,
        Cow::Borrowed(_) => s,
    }
}

fn int(v: impl Into<i64>) -> i64 {
    v.into()
}

/// Runs one cached statement (prepared once per connection, then one round trip).
pub(super) async fn run(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// Stores a webhook once ([`sql::WEBHOOK`]) and, when it is new and `$9`,
/// wakes every instance for its conversation on channel `$10` once
/// committed (as [`super::cluster::notify`] does): one row when it is new.
static WEBHOOK_WAKING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH stored AS ({} RETURNING conversation_id)
         SELECT CASE WHEN $9 THEN pg_notify($10, conversation_id) END FROM stored",
        sql::WEBHOOK
    )
});

/// Whether the webhook stored under `$1` is this write's own: received at `$2`.
const OWN_WEBHOOK: &str = "SELECT received_at = $2 FROM webhooks WHERE event_id = $1";

/// Commits a batch in one transaction. For each write: whether it was new
/// (only a webhook can be a repeat).
pub(super) async fn commit(conn: Object, set_lock_timeout: &str, batch: &[WriteOp]) -> Result<Vec<bool>> {
    enum Kind<'a> {
        Webhook(usize),
        Transition(Vec<(usize, &'a Recorded)>),
        Insights,
    }
    let mut first = Vec::new();
    let kinds: Vec<Kind> = batch
        .iter()
        .map(|op| match op {
            WriteOp::Transition(t) => Kind::Transition(store_transition(&mut first, t)),
            WriteOp::Webhook(w) => Kind::Webhook(record_webhook(&mut first, w)),
            WriteOp::Insights { conversation_id, source, insights } => {
                first.push(Step::Execute(
                    sql::INSIGHTS,
                    params![text(conversation_id), text(source), owned_text(insights.to_string()), Utc::now()],
                ));
                Kind::Insights
            }
        })
        .collect();
    let events: Vec<(usize, &Recorded)> = kinds
        .iter()
        .flat_map(|k| match k {
            Kind::Transition(events) => events.as_slice(),
            Kind::Webhook(_) | Kind::Insights => &[],
        })
        .copied()
        .collect();
    let tx = Tx::new(conn);
    let replies = if events.is_empty() {
        tx.once(set_lock_timeout, first).await?
    } else {
        let mut tx = tx;
        let replies = tx.begin(set_lock_timeout, first).await?;
        let replies = match replies.into_iter().collect::<Result<Vec<_>>>() {
            Ok(replies) => replies,
            Err(e) => {
                tx.rollback().await;
                return Err(e);
            }
        };
        tx.commit(project_new(&replies, &events)).await?;
        replies
    };
    Ok(kinds
        .iter()
        .map(|k| match k {
            Kind::Webhook(i) => webhook_was_new(&replies, *i),
            Kind::Transition(_) | Kind::Insights => true,
        })
        .collect())
}

/// The steps that store a webhook once; see [`webhook_was_new`] for what
/// their replies, from index `at`, mean.
fn record_webhook<'a>(steps: &mut Vec<Step<'a>>, w: &'a WebhookRecord) -> usize {
    let wake = matches!((&w.conversation_id, w.outcome, w.wake_others), (Some(_), WebhookOutcome::Accepted, true));
    let at = steps.len();
    steps.push(Step::Execute(
        WEBHOOK_WAKING.as_str(),
        params![
            text(&w.event_id),
            w.received_at,
            text(&w.event_type),
            opt_text(&w.call_control_id),
            opt_text(&w.conversation_id),
            w.attempt.map(int),
            w.outcome.as_str(),
            text(&w.body),
            wake,
            super::cluster::CHANNEL,
        ],
    ));
    steps.push(Step::Query(OWN_WEBHOOK, params![text(&w.event_id), w.received_at]));
    at
}

/// Whether the webhook whose steps' replies start at `at` was new. A
/// webhook found already stored with this very receipt time is this
/// write's own, committed by an attempt whose answer was lost (the
/// connection dropped during COMMIT): it is still new to the caller.
fn webhook_was_new(replies: &[Reply], at: usize) -> bool {
    let inserted = replies.get(at).is_some_and(|r| r.changed() > 0);
    let own = replies
        .get(at + 1)
        .and_then(Reply::first_row)
        .is_some_and(|row| row.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true));
    inserted || own
}

/// The first part of a transition's steps: its events (each stored once,
/// keyed by conversation and `n`), its session's state and the webhooks it
/// consumed. Returns the index of each stored event's step, whose reply
/// says whether the event is new (see [`project_new`]).
pub(super) fn store_transition<'a>(steps: &mut Vec<Step<'a>>, t: &'a Transition) -> Vec<(usize, &'a Recorded)> {
    let mut events = Vec::with_capacity(t.events.len());
    for r in t.events.iter().filter(|r| projection::is_stored(r)) {
        events.push((steps.len(), r));
        steps.push(Step::Execute(
            sql::EVENT,
            params![
                text(&r.conversation_id),
                r.n as i64,
                r.event.kind(),
                r.at,
                r.offset_ms as i64,
                owned_text(projection::body(r))
            ],
        ));
    }
    if let Some(s) = &t.session {
        steps.push(Step::Execute(sql::SESSION, params![text(&t.conversation_id), text(&s.state), s.ended, Utc::now()]));
    }
    for id in &t.processed {
        steps.push(Step::Execute(sql::WEBHOOK_PROCESSED, params![text(id)]));
    }
    events
}

/// The second part of the transitions' steps: for each event its first
/// part stored as new (its reply at its index says so), what it means for
/// the other tables; a replayed event changes nothing.
pub(super) fn project_new<'a>(replies: &[Reply], events: &[(usize, &'a Recorded)]) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for (at, r) in events {
        if replies.get(*at).is_some_and(|reply| reply.changed() > 0) {
            project(&mut steps, r);
        }
    }
    steps
}

/// What a new event means for the tables other than the event log.
fn project<'a>(steps: &mut Vec<Step<'a>>, r: &'a Recorded) {
    let conv = || text(&r.conversation_id);
    let off = r.offset_ms as i64;
    let n = r.n as i64;
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => {
            steps.push(Step::Execute(
                sql::CALL_STARTED,
                params![conv(), r.at, text(direction), opt_text(from), opt_text(to), text(call_control_id)],
            ));
        }
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => {
            steps.push(Step::Execute(
                sql::LEG_JOINED,
                params![
                    text(call_control_id),
                    conv(),
                    role.as_str(),
                    opt_text(call_leg_id),
                    opt_text(call_session_id),
                    opt_text(from),
                    opt_text(to),
                    off,
                ],
            ));
        }
        DomainEvent::LegAnswered { call_control_id, .. } => {
            steps.push(Step::Execute(sql::LEG_ANSWERED, params![text(call_control_id), off]));
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            steps.push(Step::Execute(
                sql::LEG_ENDED,
                params![text(call_control_id), off, opt_text(cause), opt_text(source)],
            ));
        }
        DomainEvent::Utterance { seq, speaker, text: said, confidence, caller_index } => {
            steps.push(Step::Execute(
                sql::UTTERANCE,
                params![conv(), int(*seq), speaker.as_str(), caller_index.map(int), off, text(said), *confidence],
            ));
        }
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => {
            let trackers = projection::json(trackers).unwrap_or_else(|| "[]".into());
            let policy = policy.as_ref().and_then(projection::json);
            steps.push(Step::Execute(
                sql::SCORED,
                params![
                    conv(),
                    int(*seq),
                    *score,
                    label.as_str(),
                    owned_text(trackers),
                    text(engine),
                    policy.map(owned_text)
                ],
            ));
        }
        DomainEvent::Decision { source, decision } => {
            let source = enum_name(source);
            let numbers = projection::json(&decision.numbers);
            let trigger_index = projection::trigger_index(decision).map(int);
            steps.push(Step::Execute(
                sql::DECISION,
                params![
                    conv(),
                    n,
                    off,
                    source.clone().map(owned_text),
                    decision.reason.as_str(),
                    text(&decision.queue),
                    trigger_index,
                    text(&decision.trigger_text),
                    opt_text(&decision.trigger_phrase),
                    opt_text(&decision.tracker),
                    numbers.map(owned_text),
                ],
            ));
            steps.push(Step::Execute(
                sql::CONVERSATION_DECISION,
                params![
                    conv(),
                    decision.reason.as_str(),
                    source.map(owned_text),
                    text(&decision.queue),
                    trigger_index,
                    text(&decision.trigger_text),
                    opt_text(&decision.trigger_phrase),
                    off,
                ],
            ));
        }
        DomainEvent::Transfer { attempt, queue, target, mode, status, detail, agent_call_control_id } => {
            let (answered, connected, ended) = projection::transfer_times(*status, off);
            steps.push(Step::Execute(
                sql::TRANSFER,
                params![
                    conv(),
                    int(*attempt),
                    text(queue),
                    text(target),
                    enum_name(mode).map(owned_text),
                    status.as_str(),
                    opt_text(detail),
                    opt_text(agent_call_control_id),
                    off,
                    answered,
                    connected,
                    ended,
                ],
            ));
            if status.is_conversation_status() {
                let transferred = *status == TransferStatus::Connected;
                steps.push(Step::Execute(
                    sql::CONVERSATION_TRANSFER,
                    params![conv(), status.as_str(), transferred, connected],
                ));
            }
        }
        DomainEvent::CallEnded { reason } => {
            steps.push(Step::Execute(sql::CALL_ENDED, params![conv(), r.at, text(reason), off]));
        }
        DomainEvent::IvrSaid { .. }
        | DomainEvent::Dtmf { .. }
        | DomainEvent::Interim { .. }
        | DomainEvent::CommandFailed { .. }
        | DomainEvent::EngineFallback { .. }
        | DomainEvent::Notification { .. }
        | DomainEvent::Callback { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_do_not_reach_the_database() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
        assert_eq!(owned_text("a\0b".to_string()), "a\u{FFFD}b");
    }
}
