//! Turns write operations into rows: the domain event log plus the tables
//! that make conversations easy to query. Every statement is idempotent, so a
//! replayed event changes nothing.

use ivrx_core::session::{DomainEvent, Recorded, TransferStatus};
use rusqlite::{params, Connection, Transaction};

use super::WriteOp;
use crate::redact::redact;

/// Commits a batch in one transaction.
pub(super) fn commit(conn: &mut Connection, batch: &[WriteOp], redact_pii: bool) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for op in batch {
        match op {
            WriteOp::Event(r) => apply_event(&tx, r, redact_pii)?,
            WriteOp::Webhook(w, _) => {
                let body = if redact_pii { redact_transcript(&w.body) } else { w.body.clone() };
                tx.prepare_cached(
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
                    w.outcome,
                    body
                ])?;
            }
            WriteOp::Checkpoint { events, snapshot, processed } => {
                for r in events {
                    apply_event(&tx, r, redact_pii)?;
                }
                if let Some(s) = snapshot {
                    let state = if redact_pii { redact_speech(&s.state) } else { s.state.clone() };
                    tx.prepare_cached(
                        "INSERT INTO sessions (conversation_id, state, ended, updated_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(conversation_id) DO UPDATE SET state = excluded.state, ended = excluded.ended,
                         updated_at = excluded.updated_at",
                    )?
                    .execute(params![
                        s.conversation_id,
                        state,
                        s.ended as i64,
                        chrono::Utc::now().to_rfc3339()
                    ])?;
                }
                for id in processed {
                    tx.prepare_cached("UPDATE webhooks SET processed = 1 WHERE event_id = ?1")?.execute([id])?;
                }
            }
            WriteOp::Insights { conversation_id, source, insights } => {
                let insights = if redact_pii { redact_strings(insights.clone()) } else { insights.clone() };
                tx.prepare_cached(
                    "INSERT INTO insights (conversation_id, source, body, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(conversation_id, source) DO UPDATE SET body = excluded.body, created_at = excluded.created_at",
                )?
                .execute(params![conversation_id, source, insights.to_string(), chrono::Utc::now().to_rfc3339()])?;
            }
            WriteOp::Flush(_) => {}
        }
    }
    tx.commit()
}

/// What a stored interim transcript says instead of its text.
const INTERIM: &str = "[interim]";

/// Fields of a saved session that quote what someone said: the caller's
/// utterances, the decision's trigger, tracker matches, and speak payloads of
/// unanswered commands (the agent's briefing repeats the trigger).
const SPEECH_FIELDS: &[&str] = &["text", "trigger_text", "trigger_phrase", "matched", "payload"];

/// Redacts the speech in a saved session (ids and numbers elsewhere are kept).
fn redact_speech(state: &str) -> String {
    use serde_json::Value;
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    match v {
                        Value::String(s) if SPEECH_FIELDS.contains(&k.as_str()) => {
                            if let std::borrow::Cow::Owned(clean) = redact(s) {
                                *s = clean;
                            }
                        }
                        _ => walk(v),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(state) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// Redacts every string in a JSON value (an engine's topics and trackers quote the caller).
fn redact_strings(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(redact(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(redact_strings).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, redact_strings(v))).collect()),
        other => other,
    }
}

/// Redacts the transcript inside a raw webhook body (the only free text a
/// webhook carries); other fields, such as phone numbers, are call metadata.
///
/// An interim transcript (`is_final: false`) is a partial copy of the final
/// one, and a number cut in the middle escapes the rules ("my card 4111"): its
/// text is not kept at all.
fn redact_transcript(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) else { return redact(body).into_owned() };
    let interim = v.pointer("/data/payload/transcription_data/is_final") == Some(&serde_json::Value::Bool(false));
    let Some(t) = v.pointer_mut("/data/payload/transcription_data/transcript") else { return body.to_string() };
    let Some(text) = t.as_str() else { return body.to_string() };
    if interim {
        *t = serde_json::Value::String(INTERIM.into());
        return v.to_string();
    }
    match redact(text) {
        std::borrow::Cow::Borrowed(_) => body.to_string(),
        std::borrow::Cow::Owned(clean) => {
            *t = serde_json::Value::String(clean);
            v.to_string()
        }
    }
}

fn apply_event(tx: &Transaction<'_>, r: &Recorded, redact_pii: bool) -> rusqlite::Result<()> {
    if matches!(r.event, DomainEvent::Interim { .. }) {
        return Ok(());
    }
    let clean = |s: &str| -> String {
        if redact_pii {
            redact(s).into_owned()
        } else {
            s.to_string()
        }
    };
    let conv = &r.conversation_id;
    let off = r.offset_ms as i64;
    let mut stored = r.clone();
    match &mut stored.event {
        DomainEvent::Utterance { text, .. } | DomainEvent::IvrSaid { text } => *text = clean(text),
        DomainEvent::Decision { decision, .. } => {
            decision.trigger_text = clean(&decision.trigger_text);
            decision.trigger_phrase = decision.trigger_phrase.as_deref().map(clean);
        }
        DomainEvent::Scored { trackers, .. } => {
            for hit in trackers {
                hit.matched = clean(&hit.matched);
            }
        }
        _ => {}
    }
    let body = serde_json::to_string(&stored.event).unwrap_or_else(|_| "{}".into());
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (conversation_id, n, kind, at, offset_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![conv, r.n as i64, r.event.kind(), r.at.to_rfc3339(), off, body])?;
    if inserted == 0 {
        return Ok(()); // already applied
    }
    match &stored.event {
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
            let trackers = serde_json::to_string(trackers).unwrap_or_else(|_| "[]".into());
            let policy = policy.as_ref().and_then(|p| serde_json::to_string(p).ok());
            tx.prepare_cached(
                "UPDATE utterances SET score = ?3, label = ?4, trackers = ?5, engine = ?6, policy = ?7
                 WHERE conversation_id = ?1 AND seq = ?2",
            )?
            .execute(params![conv, seq, score, label.as_str(), trackers, engine, policy])?;
        }
        DomainEvent::Decision { source, decision } => {
            let source = serde_json::to_value(source).ok().and_then(|v| v.as_str().map(str::to_string));
            let numbers = serde_json::to_string(&decision.numbers).ok();
            let trigger_index = (decision.trigger_index > 0).then_some(decision.trigger_index);
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
            let mode = serde_json::to_value(mode).ok().and_then(|v| v.as_str().map(str::to_string));
            let (answered, connected, ended) = match status {
                TransferStatus::Answered => (Some(off), None, None),
                TransferStatus::Connected => (None, Some(off), None),
                TransferStatus::AttemptFailed | TransferStatus::Failed | TransferStatus::Abandoned => {
                    (None, None, Some(off))
                }
                _ => (None, None, None),
            };
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
                mode,
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
