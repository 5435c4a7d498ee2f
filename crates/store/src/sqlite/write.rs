//! Commits a batch of writes to SQLite in one transaction: the domain event
//! log plus the tables that make conversations easy to query (see
//! [`crate::projection`]). Every statement is idempotent, so a replayed event
//! changes nothing.

use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use rusqlite::{params, Connection, Transaction};

use crate::journal::WriteOp;
use crate::model::enum_name;
use crate::projection;

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
                    tx.prepare_cached(
                        "INSERT INTO sessions (conversation_id, state, ended, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(conversation_id) DO UPDATE SET state = excluded.state, ended = excluded.ended,
                         updated_at = excluded.updated_at",
                    )?
                    .execute(params![t.conversation_id, s.state, s.ended as i64, chrono::Utc::now().to_rfc3339()])?;
                }
                for id in &t.processed {
                    tx.prepare_cached("UPDATE webhooks SET processed = 1 WHERE event_id = ?1")?.execute([id])?;
                }
                true
            }
            WriteOp::Webhook(w) => {
                let inserted = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO webhooks
                         (event_id, received_at, event_type, call_control_id, conversation_id, attempt, outcome, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
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
                tx.prepare_cached(
                    "INSERT INTO insights (conversation_id, source, body, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(conversation_id, source) DO UPDATE SET body = excluded.body, created_at = excluded.created_at",
                )?
                .execute(params![conversation_id, source, insights.to_string(), chrono::Utc::now().to_rfc3339()])?;
                true
            }
        });
    }
    tx.commit()?;
    Ok(new)
}

fn apply_event(tx: &Transaction<'_>, r: &Recorded) -> rusqlite::Result<()> {
    if !projection::is_stored(r) {
        return Ok(());
    }
    let conv = &r.conversation_id;
    let off = r.offset_ms as i64;
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (conversation_id, n, kind, at, offset_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![conv, r.n as i64, r.event.kind(), r.at.to_rfc3339(), off, projection::body(r)])?;
    if inserted == 0 {
        return Ok(()); // already applied
    }
    match &r.event {
        DomainEvent::CallStarted { call_control_id, direction, from, to } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO conversations (id, started_at, direction, caller, callee, caller_call_control_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![conv, r.at.to_rfc3339(), direction, from, to, call_control_id])?;
        }
        DomainEvent::LegJoined { role, call_control_id, call_leg_id, call_session_id, from, to } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO legs (call_control_id, conversation_id, role, call_leg_id, call_session_id,
                 from_number, to_number, joined_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
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
            tx.prepare_cached("UPDATE legs SET answered_ms = ?2 WHERE call_control_id = ?1 AND answered_ms IS NULL")?
                .execute(params![call_control_id, off])?;
        }
        DomainEvent::LegEnded { call_control_id, cause, source, .. } => {
            tx.prepare_cached(
                "UPDATE legs SET ended_ms = ?2, hangup_cause = ?3, hangup_source = ?4
                 WHERE call_control_id = ?1 AND ended_ms IS NULL",
            )?
            .execute(params![call_control_id, off, cause, source])?;
        }
        DomainEvent::Utterance { seq, speaker, text, confidence, caller_index } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO utterances (conversation_id, seq, speaker, caller_index, offset_ms, text, confidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![conv, seq, speaker.as_str(), caller_index, off, text, confidence])?;
        }
        DomainEvent::Scored { seq, score, label, trackers, engine, policy, .. } => {
            let trackers = projection::json(trackers).unwrap_or_else(|| "[]".into());
            let policy = policy.as_ref().and_then(projection::json);
            tx.prepare_cached(
                "UPDATE utterances SET score = ?3, label = ?4, trackers = ?5, engine = ?6, policy = ?7
                 WHERE conversation_id = ?1 AND seq = ?2",
            )?
            .execute(params![conv, seq, score, label.as_str(), trackers, engine, policy])?;
        }
        DomainEvent::Decision { source, decision } => {
            let source = enum_name(source);
            let numbers = projection::json(&decision.numbers);
            let trigger_index = projection::trigger_index(decision);
            tx.prepare_cached(
                "INSERT OR IGNORE INTO decisions (conversation_id, n, offset_ms, source, reason, queue, trigger_index,
                 trigger_text, trigger_phrase, tracker, numbers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
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
            tx.prepare_cached(
                "UPDATE conversations SET decision_reason = ?2, decision_source = ?3, queue = ?4, trigger_index = ?5,
                 trigger_text = ?6, trigger_phrase = ?7, decision_ms = ?8
                 WHERE id = ?1",
            )?
            .execute(params![
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
            let decision_n: i64 = tx
                .prepare_cached("SELECT COALESCE(max(n), 0) FROM decisions WHERE conversation_id = ?1")?
                .query_row([conv], |row| row.get(0))?;
            let (answered, connected, ended) = projection::transfer_times(*status, off);
            tx.prepare_cached(
                "INSERT INTO transfers (conversation_id, decision_n, attempt, queue, target, mode, status, detail,
                 agent_call_control_id, requested_ms, answered_ms, connected_ms, ended_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT(conversation_id, decision_n, attempt) DO UPDATE SET
                   status = CASE WHEN transfers.status = 'failed' AND excluded.status = 'attempt_failed'
                                 THEN transfers.status ELSE excluded.status END,
                   detail = COALESCE(excluded.detail, transfers.detail),
                   agent_call_control_id = COALESCE(excluded.agent_call_control_id, transfers.agent_call_control_id),
                   answered_ms = COALESCE(transfers.answered_ms, excluded.answered_ms),
                   connected_ms = COALESCE(transfers.connected_ms, excluded.connected_ms),
                   ended_ms = COALESCE(transfers.ended_ms, excluded.ended_ms)",
            )?
            .execute(params![
                conv,
                decision_n,
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
            let transferred = *status == TransferStatus::Connected;
            tx.prepare_cached(
                "UPDATE conversations SET transfer_status = ?2,
                   transferred = MAX(transferred, ?3),
                   connected_ms = COALESCE(connected_ms, ?4)
                 WHERE id = ?1",
            )?
            .execute(params![conv, status.as_str(), transferred as i64, connected])?;
        }
        DomainEvent::CallEnded { reason } => {
            tx.prepare_cached(
                "UPDATE conversations SET status = 'ended', ended_at = ?2, end_reason = ?3, duration_ms = ?4
                 WHERE id = ?1 AND status != 'ended'",
            )?
            .execute(params![conv, r.at.to_rfc3339(), reason, off])?;
        }
        DomainEvent::IvrSaid { .. }
        | DomainEvent::Dtmf { .. }
        | DomainEvent::Interim { .. }
        | DomainEvent::CommandFailed { .. }
        | DomainEvent::EngineFallback { .. } => {}
    }
    Ok(())
}
