//! Commits a batch of writes to PostgreSQL in one transaction, with the
//! same statements' meaning as SQLite's (see [`crate::projection`]): every
//! statement is idempotent, so a replayed event changes nothing, and an
//! event id is stored once (its primary key) whichever instance receives it.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use tokio_postgres::types::ToSql;

use crate::journal::WriteOp;
use crate::model::{enum_name, Transition, WebhookOutcome, WebhookRecord};
use crate::projection;

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

/// Runs one cached statement.
async fn run(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
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
                    "INSERT INTO insights (conversation_id, source, body, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (conversation_id, source) DO UPDATE SET body = excluded.body,
                     created_at = excluded.created_at",
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
        run(
            tx,
            "INSERT INTO sessions (conversation_id, state, ended, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (conversation_id) DO UPDATE SET state = excluded.state, ended = excluded.ended,
             updated_at = excluded.updated_at",
            &[&text(&t.conversation_id), &text(&s.state), &s.ended, &Utc::now()],
        )
        .await?;
    }
    for id in &t.processed {
        run(tx, "UPDATE webhooks SET processed = true WHERE event_id = $1", &[&text(id)]).await?;
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
        "INSERT INTO webhooks
         (event_id, received_at, event_type, call_control_id, conversation_id, attempt, outcome, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
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
        if let (Some(conv), WebhookOutcome::Accepted) = (&w.conversation_id, w.outcome) {
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
    let inserted = run(
        tx,
        "INSERT INTO events (conversation_id, n, kind, at, offset_ms, body) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (conversation_id, n) DO NOTHING",
        &[&conv, &n, &r.event.kind(), &r.at, &off, &text(&projection::body(r))],
    )
    .await?;
    if inserted == 0 {
        return Ok(()); // already applied
    }
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => {
            run(
                tx,
                "INSERT INTO conversations (id, started_at, direction, caller, callee, caller_call_control_id)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                &[&conv, &r.at, &text(direction), &opt_text(from), &opt_text(to), &text(call_control_id)],
            )
            .await?;
        }
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => {
            run(
                tx,
                "INSERT INTO legs (call_control_id, conversation_id, role, call_leg_id, call_session_id,
                 from_number, to_number, joined_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (call_control_id) DO NOTHING",
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
            run(
                tx,
                "UPDATE legs SET answered_ms = $2 WHERE call_control_id = $1 AND answered_ms IS NULL",
                &[&text(call_control_id), &off],
            )
            .await?;
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            run(
                tx,
                "UPDATE legs SET ended_ms = $2, hangup_cause = $3, hangup_source = $4
                 WHERE call_control_id = $1 AND ended_ms IS NULL",
                &[&text(call_control_id), &off, &opt_text(cause), &opt_text(source)],
            )
            .await?;
        }
        DomainEvent::Utterance { seq, speaker, text: said, confidence, caller_index } => {
            run(
                tx,
                "INSERT INTO utterances (conversation_id, seq, speaker, caller_index, offset_ms, text, confidence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (conversation_id, seq) DO NOTHING",
                &[&conv, &int(*seq), &speaker.as_str(), &caller_index.map(int), &off, &text(said), confidence],
            )
            .await?;
        }
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => {
            let trackers = projection::json(trackers).unwrap_or_else(|| "[]".into());
            let policy = policy.as_ref().and_then(projection::json);
            run(
                tx,
                "UPDATE utterances SET score = $3, label = $4, trackers = $5, engine = $6, policy = $7
                 WHERE conversation_id = $1 AND seq = $2",
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
                "INSERT INTO decisions (conversation_id, n, offset_ms, source, reason, queue, trigger_index,
                 trigger_text, trigger_phrase, tracker, numbers) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (conversation_id, n) DO NOTHING",
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
                "UPDATE conversations SET decision_reason = $2, decision_source = $3, queue = $4, trigger_index = $5,
                 trigger_text = $6, trigger_phrase = $7, decision_ms = $8
                 WHERE id = $1",
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
            let stmt = tx
                .prepare_cached("SELECT COALESCE(max(n), 0)::bigint FROM decisions WHERE conversation_id = $1")
                .await?;
            let decision_n: i64 = tx.query_one(&stmt, &[&conv]).await?.get(0);
            let (answered, connected, ended) = projection::transfer_times(*status, off);
            run(
                tx,
                "INSERT INTO transfers (conversation_id, decision_n, attempt, queue, target, mode, status, detail,
                 agent_call_control_id, requested_ms, answered_ms, connected_ms, ended_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (conversation_id, decision_n, attempt) DO UPDATE SET
                   status = CASE WHEN transfers.status = 'failed' AND excluded.status = 'attempt_failed'
                                 THEN transfers.status ELSE excluded.status END,
                   detail = COALESCE(excluded.detail, transfers.detail),
                   agent_call_control_id = COALESCE(excluded.agent_call_control_id, transfers.agent_call_control_id),
                   answered_ms = COALESCE(transfers.answered_ms, excluded.answered_ms),
                   connected_ms = COALESCE(transfers.connected_ms, excluded.connected_ms),
                   ended_ms = COALESCE(transfers.ended_ms, excluded.ended_ms)",
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
            let transferred = *status == TransferStatus::Connected;
            run(
                tx,
                "UPDATE conversations SET transfer_status = $2,
                   transferred = transferred OR $3,
                   connected_ms = COALESCE(connected_ms, $4)
                 WHERE id = $1",
                &[&conv, &status.as_str(), &transferred, &connected],
            )
            .await?;
        }
        DomainEvent::CallEnded { reason } => {
            run(
                tx,
                "UPDATE conversations SET status = 'ended', ended_at = $2, end_reason = $3, duration_ms = $4
                 WHERE id = $1 AND status != 'ended'",
                &[&conv, &r.at, &text(reason), &off],
            )
            .await?;
        }
        DomainEvent::IvrSaid { .. }
        | DomainEvent::Dtmf { .. }
        | DomainEvent::Interim { .. }
        | DomainEvent::CommandFailed { .. }
        | DomainEvent::EngineFallback { .. } => {}
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
