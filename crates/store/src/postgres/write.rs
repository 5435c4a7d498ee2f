//! Commits a batch of writes to PostgreSQL in one transaction, with the
//! statements SQLite runs too (see [`crate::projection::sql`]): every
//! statement is idempotent, so a replayed event changes nothing, and an
//! event id is stored once (its primary key) whichever instance receives it.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use tokio_postgres::types::ToSql;

use crate::journal::WriteOp;
use crate::model::{enum_name, Transition, WebhookOutcome, WebhookRecord};
use crate::projection::{self, sql};

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

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

fn int(v: impl Into<i64>) -> i64 {
    v.into()
}

/// Runs one cached statement (prepared once per connection, then one round trip).
pub(super) async fn run(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// Commits a batch in one transaction. For each write: whether it was new
/// (only a webhook can be a repeat).
pub(super) async fn commit(
    client: &mut deadpool_postgres::Object,
    set_lock_timeout: &str,
    batch: &[WriteOp],
) -> Result<Vec<bool>> {
    let tx = client.transaction().await?;
    tx.batch_execute(set_lock_timeout).await?;
    let mut new = Vec::with_capacity(batch.len());
    for op in batch {
        new.push(match op {
            WriteOp::Transition(t) => {
                apply_transition(&tx, t).await?;
                true
            }
            WriteOp::Webhook(w) => record_webhook(&tx, w).await?,
            WriteOp::Insights { conversation_id, source, insights } => {
                run(
                    &tx,
                    sql::INSIGHTS,
                    &[&text(conversation_id), &text(source), &text(&insights.to_string()), &Utc::now()],
                )
                .await?;
                true
            }
        });
    }
    tx.commit().await?;
    Ok(new)
}

/// Applies one conversation's transition: its events, its session's state
/// and the webhooks it consumed.
pub(super) async fn apply_transition(tx: &Transaction<'_>, t: &Transition) -> Result<()> {
    for r in &t.events {
        apply_event(tx, r).await?;
    }
    if let Some(s) = &t.session {
        run(tx, sql::SESSION, &[&text(&t.conversation_id), &text(&s.state), &s.ended, &Utc::now()]).await?;
    }
    for id in &t.processed {
        run(tx, sql::WEBHOOK_PROCESSED, &[&text(id)]).await?;
    }
    Ok(())
}

/// Stores a webhook once; true when it is new. A webhook found already
/// stored with this very receipt time is this write's own, committed by an
/// attempt whose answer was lost (the connection dropped during COMMIT): it
/// is still new to the caller.
async fn record_webhook(tx: &Transaction<'_>, w: &WebhookRecord) -> Result<bool> {
    let received_at: DateTime<Utc> = w.received_at;
    let inserted = run(
        tx,
        sql::WEBHOOK,
        &[
            &text(&w.event_id),
            &received_at,
            &text(&w.event_type),
            &opt_text(&w.call_control_id),
            &opt_text(&w.conversation_id),
            &w.attempt.map(int),
            &w.outcome.as_str(),
            &text(&w.body),
        ],
    )
    .await?;
    if inserted > 0 {
        if let (Some(conv), WebhookOutcome::Accepted, true) = (&w.conversation_id, w.outcome, w.wake_others) {
            super::cluster::notify(tx, conv).await?;
        }
        return Ok(true);
    }
    let stmt = tx.prepare_cached("SELECT received_at = $2 FROM webhooks WHERE event_id = $1").await?;
    let own = tx.query_opt(&stmt, &[&text(&w.event_id), &received_at]).await?;
    Ok(own.is_some_and(|r| r.get::<_, bool>(0)))
}

async fn apply_event(tx: &Transaction<'_>, r: &Recorded) -> Result<()> {
    if !projection::is_stored(r) {
        return Ok(());
    }
    let conv = text(&r.conversation_id);
    let off = r.offset_ms as i64;
    let n = r.n as i64;
    let inserted = run(tx, sql::EVENT, &[&conv, &n, &r.event.kind(), &r.at, &off, &text(&projection::body(r))]).await?;
    if inserted == 0 {
        return Ok(()); // already applied
    }
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => {
            run(
                tx,
                sql::CALL_STARTED,
                &[&conv, &r.at, &text(direction), &opt_text(from), &opt_text(to), &text(call_control_id)],
            )
            .await?;
        }
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => {
            run(
                tx,
                sql::LEG_JOINED,
                &[
                    &text(call_control_id),
                    &conv,
                    &role.as_str(),
                    &opt_text(call_leg_id),
                    &opt_text(call_session_id),
                    &opt_text(from),
                    &opt_text(to),
                    &off,
                ],
            )
            .await?;
        }
        DomainEvent::LegAnswered { call_control_id, .. } => {
            run(tx, sql::LEG_ANSWERED, &[&text(call_control_id), &off]).await?;
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            run(tx, sql::LEG_ENDED, &[&text(call_control_id), &off, &opt_text(cause), &opt_text(source)]).await?;
        }
        DomainEvent::Utterance { seq, speaker, text: said, confidence, caller_index } => {
            run(
                tx,
                sql::UTTERANCE,
                &[&conv, &int(*seq), &speaker.as_str(), &caller_index.map(int), &off, &text(said), confidence],
            )
            .await?;
        }
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => {
            let trackers = projection::json(trackers).unwrap_or_else(|| "[]".into());
            let policy = policy.as_ref().and_then(projection::json);
            run(
                tx,
                sql::SCORED,
                &[&conv, &int(*seq), score, &label.as_str(), &text(&trackers), &text(engine), &opt_text(&policy)],
            )
            .await?;
        }
        DomainEvent::Decision { source, decision } => {
            let source = enum_name(source);
            let numbers = projection::json(&decision.numbers);
            let trigger_index = projection::trigger_index(decision).map(int);
            run(
                tx,
                sql::DECISION,
                &[
                    &conv,
                    &n,
                    &off,
                    &opt_text(&source),
                    &decision.reason.as_str(),
                    &text(&decision.queue),
                    &trigger_index,
                    &text(&decision.trigger_text),
                    &opt_text(&decision.trigger_phrase),
                    &opt_text(&decision.tracker),
                    &opt_text(&numbers),
                ],
            )
            .await?;
            run(
                tx,
                sql::CONVERSATION_DECISION,
                &[
                    &conv,
                    &decision.reason.as_str(),
                    &opt_text(&source),
                    &text(&decision.queue),
                    &trigger_index,
                    &text(&decision.trigger_text),
                    &opt_text(&decision.trigger_phrase),
                    &off,
                ],
            )
            .await?;
        }
        DomainEvent::Transfer { attempt, queue, target, mode, status, detail, agent_call_control_id } => {
            let stmt = tx.prepare_cached(sql::LATEST_DECISION).await?;
            let decision_n: i64 = tx.query_one(&stmt, &[&conv]).await?.get(0);
            let (answered, connected, ended) = projection::transfer_times(*status, off);
            run(
                tx,
                sql::TRANSFER,
                &[
                    &conv,
                    &decision_n,
                    &int(*attempt),
                    &text(queue),
                    &text(target),
                    &enum_name(mode),
                    &status.as_str(),
                    &opt_text(detail),
                    &opt_text(agent_call_control_id),
                    &off,
                    &answered,
                    &connected,
                    &ended,
                ],
            )
            .await?;
            if status.is_conversation_status() {
                let transferred = *status == TransferStatus::Connected;
                run(tx, sql::CONVERSATION_TRANSFER, &[&conv, &status.as_str(), &transferred, &connected]).await?;
            }
        }
        DomainEvent::CallEnded { reason } => {
            run(tx, sql::CALL_ENDED, &[&conv, &r.at, &text(reason), &off]).await?;
        }
        DomainEvent::IvrSaid { .. }
        | DomainEvent::Dtmf { .. }
        | DomainEvent::Interim { .. }
        | DomainEvent::CommandFailed { .. }
        | DomainEvent::EngineFallback { .. }
        | DomainEvent::Notification { .. }
        | DomainEvent::Callback { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_do_not_reach_the_database() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("plain"), Cow::Borrowed("plain")));
    }
}
