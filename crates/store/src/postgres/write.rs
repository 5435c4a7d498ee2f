//! Commits a batch of writes to PostgreSQL in one transaction, with the
//! statements SQLite runs too (see [`crate::projection::sql`]): every
//! statement is idempotent, so a replayed event changes nothing, and an
//! event id is stored once (its primary key) whichever instance receives it.
//! A transition is one statement, [`CHECKPOINT`]: a function of the schema
//! runs those statements in the database, applying what the new events
//! mean for the other tables without a round trip in between.
//!
//! The statements are pipelined (see [`super::pipeline`]): a batch commits
//! in one round trip.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{SecondsFormat, Utc};
use deadpool_postgres::{Object, Transaction};
use ivrx_core::session::Recorded;
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::pipeline::{params, Error, Param, Reply, Step, Tx};
use crate::cluster::{Answer, Lease};
use crate::journal::WriteOp;
use crate::model::{Transition, WebhookOutcome, WebhookRecord};
use crate::projection::{self, sql, Arg};

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
/// committed (as [`super::cluster::notify`] does). Its rows say whether the
/// webhook is new: `true` when stored now; and, when it was stored before,
/// whether that was this write's own, received at `$2`.
static WEBHOOK_WAKING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH stored AS ({} RETURNING conversation_id)
         SELECT true, CASE WHEN $9 THEN pg_notify($10, conversation_id)::text END FROM stored
         UNION ALL
         SELECT received_at = $2, NULL FROM webhooks WHERE event_id = $1",
        sql::WEBHOOK
    )
});

/// Commits a batch in one transaction, in one round trip. For each write:
/// whether it was new (only a webhook can be a repeat).
pub(super) async fn commit(conn: Object, begin: &str, batch: &[WriteOp]) -> Result<Vec<bool>> {
    let mut steps = Vec::new();
    let webhooks: Vec<Option<usize>> = batch
        .iter()
        .map(|op| match op {
            WriteOp::Transition(t) => {
                steps.push(Step::Execute(CHECKPOINT, checkpoint(None, Some(t), &[], None)));
                None
            }
            WriteOp::Webhook(w) => Some(record_webhook(&mut steps, w)),
            WriteOp::Insights { conversation_id, source, insights } => {
                steps.push(Step::Execute(
                    sql::INSIGHTS,
                    params![text(conversation_id), text(source), owned_text(insights.to_string()), Utc::now()],
                ));
                None
            }
        })
        .collect();
    let replies = Tx::new(conn).once(begin, steps).await?;
    Ok(webhooks.iter().map(|at| at.is_none_or(|at| webhook_was_new(&replies, at))).collect())
}

/// The step that stores a webhook once; its reply, at the index returned,
/// says whether it was new (see [`webhook_was_new`]).
fn record_webhook<'a>(steps: &mut Vec<Step<'a>>, w: &'a WebhookRecord) -> usize {
    let wake = matches!((&w.conversation_id, w.outcome, w.wake_others), (Some(_), WebhookOutcome::Accepted, true));
    steps.push(Step::Query(
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
    steps.len() - 1
}

/// Whether the webhook whose step's reply is at `at` was new. A webhook
/// found already stored with this very receipt time is this write's own,
/// committed by an attempt whose answer was lost (the connection dropped
/// during COMMIT): it is still new to the caller.
fn webhook_was_new(replies: &[Reply], at: usize) -> bool {
    replies.get(at).is_some_and(|reply| {
        reply.rows().iter().any(|row| row.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true))
    })
}

/// Commits a transition in one statement: `ivrx_checkpoint` (see
/// [`super::checkpoint`]) stores its events once and applies what the new ones mean
/// for the other tables, its session's state and consumed webhooks, and,
/// when fenced, first checks and then extends the lease.
pub(super) const CHECKPOINT: &str = "SELECT ivrx_checkpoint($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
     $13, $14, $15, $16, $17, $18, $19, $20, $21)";

/// The SQLSTATE `ivrx_checkpoint` raises when the lease is not the fence's any more.
pub(super) const FENCE_LOST: &str = "IX001";

/// The lease a checkpoint commits under.
pub(super) struct Fence<'a> {
    pub(super) lease: &'a Lease,
    /// How long the lease runs on once committed, in seconds.
    pub(super) term: f64,
    /// How long to wait for the lease's row lock, in milliseconds.
    pub(super) lock_timeout: &'a str,
}

/// The parameters of [`CHECKPOINT`]: `transition` (interim transcripts
/// left out), the `answers` to requests, and a notification (channel,
/// payload) sent once committed; fenced by `fence` if any.
pub(super) fn checkpoint<'a>(
    fence: Option<Fence<'a>>,
    transition: Option<&'a Transition>,
    answers: &'a [Answer],
    notify: Option<(&'static str, String)>,
) -> Vec<Param<'a>> {
    let stored: Vec<&Recorded> =
        transition.map(|t| t.events.iter().filter(|r| projection::is_stored(r)).collect()).unwrap_or_default();
    let steps: Vec<Vec<Value>> = stored.iter().map(|r| project(r)).collect();
    let session = transition.and_then(|t| t.session.as_ref().map(|s| (t, s)));
    let (notify_channel, payload) = notify.unzip();
    params![
        fence.as_ref().map(|f| f.lease.conversation_id.as_str()),
        fence.as_ref().map(|f| f.lease.owner.as_str()),
        fence.as_ref().map(|f| f.lease.epoch),
        fence.as_ref().map(|f| f.term),
        fence.as_ref().map(|f| f.lock_timeout),
        stored.iter().map(|r| text(&r.conversation_id)).collect::<Vec<_>>(),
        stored.iter().map(|r| r.n as i64).collect::<Vec<_>>(),
        stored.iter().map(|r| r.event.kind()).collect::<Vec<_>>(),
        stored.iter().map(|r| r.at).collect::<Vec<_>>(),
        stored.iter().map(|r| r.offset_ms as i64).collect::<Vec<_>>(),
        stored.iter().map(|r| owned_text(projection::body(r))).collect::<Vec<_>>(),
        Value::from(steps).to_string(),
        session.map(|(t, _)| text(&t.conversation_id)),
        session.map(|(_, s)| text(&s.state)),
        session.map(|(_, s)| s.ended),
        session.map(|_| Utc::now()),
        transition.map(|t| t.processed.iter().map(|id| text(id)).collect::<Vec<_>>()).unwrap_or_default(),
        answers.iter().map(|a| a.request_id).collect::<Vec<_>>(),
        answers.iter().map(|a| a.body.as_str()).collect::<Vec<_>>(),
        notify_channel,
        payload,
    ]
}

/// A new event's projection steps as `ivrx_checkpoint` reads them: each
/// the statement's name, then its parameters as JSON (a float as its text,
/// which PostgreSQL reads back exactly, NaN and infinities included; a time
/// to the microsecond, as PostgreSQL keeps it).
fn project(r: &Recorded) -> Vec<Value> {
    projection::steps(r)
        .iter()
        .map(|step| {
            let args = step.args.iter().map(|a| match a {
                Arg::Null => Value::Null,
                Arg::Text(s) => Value::from(text(s).into_owned()),
                Arg::Int(v) => Value::from(*v),
                Arg::Float(v) => Value::from(v.to_string()),
                Arg::Bool(v) => Value::from(*v),
                Arg::Time(t) => Value::from(t.to_rfc3339_opts(SecondsFormat::Micros, true)),
            });
            std::iter::once(Value::from(step.statement.name)).chain(args).collect()
        })
        .collect()
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
