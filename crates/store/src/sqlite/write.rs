//! Commits a batch of writes to SQLite in one transaction: the domain event
//! log plus the tables that make conversations easy to query, with the
//! statements PostgreSQL runs too (see [`crate::projection::sql`]). Every
//! statement is idempotent, so a replayed event changes nothing.

use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use rusqlite::{params, CachedStatement, Connection, Transaction};

use crate::journal::WriteOp;
use crate::model::enum_name;
use crate::projection::{self, sql};

/// Commits a batch in one transaction. For each write: whether it was new
/// (only a webhook can be a repeat).
pub(super) fn commit(conn: &mut Connection, batch: &[WriteOp]) -> rusqlite::Result<Vec<bool>> {
    let tx = conn.transaction()?;
    let mut new = Vec::with_capacity(batch.len());
    for op in batch {
        new.push(match op {
            WriteOp::Transition(t) => {
                for r in &t.events {
                    apply_event(&tx, r)?;
                }
                if let Some(s) = &t.session {
                    statement(&tx, sql::SESSION)?.execute(params![
                        t.conversation_id,
                        s.state,
                        s.ended as i64,
                        chrono::Utc::now().to_rfc3339()
                    ])?;
                }
                for id in &t.processed {
                    statement(&tx, sql::WEBHOOK_PROCESSED)?.execute([id])?;
                }
                true
            }
            WriteOp::Webhook(w) => {
                let inserted = statement(&tx, sql::WEBHOOK)?.execute(params![
                    w.event_id,
                    w.received_at.to_rfc3339(),
                    w.event_type,
                    w.call_control_id,
                    w.conversation_id,
                    w.attempt,
                    w.outcome.as_str(),
                    w.body
                ])?;
                inserted > 0
            }
            WriteOp::Insights { conversation_id, source, insights } => {
                statement(&tx, sql::INSIGHTS)?.execute(params![
                    conversation_id,
                    source,
                    insights.to_string(),
                    chrono::Utc::now().to_rfc3339()
                ])?;
                true
            }
        });
    }
    tx.commit()?;
    Ok(new)
}

/// A cached statement of [`sql`], in SQLite's placeholders.
fn statement<'t>(tx: &'t Transaction<'_>, sql: &str) -> rusqlite::Result<CachedStatement<'t>> {
    tx.prepare_cached(&projection::sqlite_placeholders(sql))
}

fn apply_event(tx: &Transaction<'_>, r: &Recorded) -> rusqlite::Result<()> {
    if !projection::is_stored(r) {
        return Ok(());
    }
    let conv = &r.conversation_id;
    let off = r.offset_ms as i64;
    let inserted = statement(tx, sql::EVENT)?.execute(params![
        conv,
        r.n as i64,
        r.event.kind(),
        r.at.to_rfc3339(),
        off,
        projection::body(r)
    ])?;
    if inserted == 0 {
        return Ok(()); // already applied
    }
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => {
            statement(tx, sql::CALL_STARTED)?.execute(params![
                conv,
                r.at.to_rfc3339(),
                direction,
                from,
                to,
                call_control_id
            ])?;
        }
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => {
            statement(tx, sql::LEG_JOINED)?.execute(params![
                call_control_id,
                conv,
                role.as_str(),
                call_leg_id,
                call_session_id,
                from,
                to,
                off
            ])?;
        }
        DomainEvent::LegAnswered { call_control_id, .. } => {
            statement(tx, sql::LEG_ANSWERED)?.execute(params![call_control_id, off])?;
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            statement(tx, sql::LEG_ENDED)?.execute(params![call_control_id, off, cause, source])?;
        }
        DomainEvent::Utterance { seq, speaker, text, confidence, caller_index } => {
            statement(tx, sql::UTTERANCE)?.execute(params![
                conv,
                seq,
                speaker.as_str(),
                caller_index,
                off,
                text,
                confidence
            ])?;
        }
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => {
            let trackers = projection::json(trackers).unwrap_or_else(|| "[]".into());
            let policy = policy.as_ref().and_then(projection::json);
            statement(tx, sql::SCORED)?.execute(params![conv, seq, score, label.as_str(), trackers, engine, policy])?;
        }
        DomainEvent::Decision { source, decision } => {
            let source = enum_name(source);
            let numbers = projection::json(&decision.numbers);
            let trigger_index = projection::trigger_index(decision);
            statement(tx, sql::DECISION)?.execute(params![
                conv,
                r.n as i64,
                off,
                source,
                decision.reason.as_str(),
                decision.queue,
                trigger_index,
                decision.trigger_text,
                decision.trigger_phrase,
                decision.tracker,
                numbers
            ])?;
            statement(tx, sql::CONVERSATION_DECISION)?.execute(params![
                conv,
                decision.reason.as_str(),
                source,
                decision.queue,
                trigger_index,
                decision.trigger_text,
                decision.trigger_phrase,
                off
            ])?;
        }
        DomainEvent::Transfer { attempt, queue, target, mode, status, detail, agent_call_control_id } => {
            let (answered, connected, ended) = projection::transfer_times(*status, off);
            statement(tx, sql::TRANSFER)?.execute(params![
                conv,
                attempt,
                queue,
                target,
                enum_name(mode),
                status.as_str(),
                detail,
                agent_call_control_id,
                off,
                answered,
                connected,
                ended
            ])?;
            if status.is_conversation_status() {
                let transferred = *status == TransferStatus::Connected;
                statement(tx, sql::CONVERSATION_TRANSFER)?.execute(params![
                    conv,
                    status.as_str(),
                    transferred as i64,
                    connected
                ])?;
            }
        }
        DomainEvent::CallEnded { reason } => {
            statement(tx, sql::CALL_ENDED)?.execute(params![conv, r.at.to_rfc3339(), reason, off])?;
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
