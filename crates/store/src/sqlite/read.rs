//! Reading a SQLite store. Each call opens its own read-only connection, so
//! readers never wait on the writer (WAL).
//!
//! Rows are decoded leniently, in one place ([`Col`]): SQLite keeps whatever
//! type a value was written with, and stores written or edited by other tools
//! may hold numbers as text, text as numbers or names this build does not
//! know. Such a value reads as absent instead of failing the whole read.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use ivrx_core::session::{DomainEvent, Recorded};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Statement};

use crate::model::{
    parse_enum, CallAudit, CallReport, CallbackTimes, Conversation, ConversationStatus, Filters, OpenLeg,
    PendingWebhook, StoredDecision, TransferAttempt, Utterance,
};
use crate::StoreError;

/// Synchronous read access to a SQLite store file: what the
/// [`SqliteStore`](super::SqliteStore) answers the port with, and what tools
/// and tests that inspect a file use directly.
#[derive(Debug, Clone)]
pub struct Reader {
    path: PathBuf,
}

/// The columns of a conversation row, in [`conversation_from_row`]'s order.
const CONVERSATION_COLUMNS: &str = "id, started_at, ended_at, direction, caller, callee, caller_call_control_id, \
     status, end_reason, duration_ms, decision_reason, decision_source, queue, trigger_index, trigger_text, \
     trigger_phrase, decision_ms, transfer_status, transferred, connected_ms";

/// A conversation's `callback` events in order: when, and the event.
const CALLBACKS: &str = "SELECT at, body FROM events WHERE conversation_id = ?1 AND kind = 'callback' ORDER BY n";

/// A conversation's utterances in order, in [`utterance_from_row`]'s columns.
const UTTERANCES: &str = "SELECT seq, speaker, caller_index, offset_ms, text, confidence, score, label, trackers, \
     engine FROM utterances WHERE conversation_id = ?1 ORDER BY seq";

impl Reader {
    /// A reader for the database at `path` (nothing is opened yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::database(self.path.display().to_string(), source)
    }

    /// Opens the database read-only; a missing file is an error.
    pub(super) fn connection(&self) -> Result<Connection, StoreError> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(self.err())?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(self.err())?;
        Ok(conn)
    }

    /// One conversation with its utterances.
    pub fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let conn = self.connection()?;
        let found = conn
            .query_row(&format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1"), [id], |r| {
                Ok(conversation_from_row(r))
            })
            .optional()
            .map_err(self.err())?;
        let Some(mut c) = found else { return Ok(None) };
        let mut stmt = conn.prepare(UTTERANCES).map_err(self.err())?;
        c.utterances = self.utterances_with(&mut stmt, id)?;
        let mut stmt = conn.prepare(CALLBACKS).map_err(self.err())?;
        c.callback = self.callback_with(&mut stmt, id)?;
        Ok(Some(c))
    }

    /// A conversation's utterances in order.
    pub fn utterances(&self, id: &str) -> Result<Vec<Utterance>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare(UTTERANCES).map_err(self.err())?;
        self.utterances_with(&mut stmt, id)
    }

    /// Runs the prepared [`CALLBACKS`] query for one conversation.
    fn callback_with(&self, stmt: &mut Statement<'_>, id: &str) -> Result<Option<CallbackTimes>, StoreError> {
        let mut rows = stmt.query([id]).map_err(self.err())?;
        let mut times = CallbackTimes::default();
        let mut any = false;
        while let Some(row) = rows.next().map_err(self.err())? {
            let (Ok(at), Ok(body)) = (row.get::<_, String>(0), row.get::<_, String>(1)) else { continue };
            let Ok(at) = DateTime::parse_from_rfc3339(&at) else { continue };
            any |= times.mark(&body, at.with_timezone(&Utc));
        }
        Ok(any.then_some(times))
    }

    /// Runs the prepared [`UTTERANCES`] query for one conversation. (Prepared
    /// once per read and run again for each call: a statement taken from
    /// rusqlite's cache has its bindings cleared, which makes SQLite prepare
    /// it again.)
    fn utterances_with(&self, stmt: &mut Statement<'_>, id: &str) -> Result<Vec<Utterance>, StoreError> {
        let mut rows = stmt.query([id]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(self.err())? {
            out.extend(utterance_from_row(row));
        }
        Ok(out)
    }

    /// What happened in one call.
    pub fn report(&self, id: &str) -> Result<Option<CallReport>, StoreError> {
        let Some(c) = self.conversation(id)? else { return Ok(None) };
        Ok(Some(CallReport::new(c, self.transfers(id)?, self.insights(id)?)))
    }

    /// The conversation a leg belongs to.
    pub fn conversation_for_call(&self, call_control_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        conn.query_row("SELECT conversation_id FROM legs WHERE call_control_id = ?1", [call_control_id], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// The newest conversation (`active_only`: only calls still going).
    pub fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        let q = if active_only {
            "SELECT id FROM conversations WHERE status = 'active' ORDER BY started_at DESC, rowid DESC LIMIT 1"
        } else {
            "SELECT id FROM conversations ORDER BY started_at DESC, rowid DESC LIMIT 1"
        };
        conn.query_row(q, [], |r| r.get(0)).optional().map_err(self.err())
    }

    /// A conversation's transfer attempts, in order.
    pub fn transfers(&self, id: &str) -> Result<Vec<TransferAttempt>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare(
                "SELECT attempt, queue, target, mode, status, detail, requested_ms, answered_ms, connected_ms, ended_ms
                 FROM transfers WHERE conversation_id = ?1 ORDER BY decision_n, attempt",
            )
            .map_err(self.err())?;
        let mut rows = stmt.query([id]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let c = Col(r);
            let (Some(mode), Some(status)) = (c.parsed(3), c.parsed(4)) else { continue };
            out.push(TransferAttempt {
                attempt: c.uint(0).unwrap_or(0),
                queue: c.text(1).unwrap_or_default(),
                target: c.text(2).unwrap_or_default(),
                mode,
                status,
                detail: c.text(5),
                requested_ms: c.int(6),
                answered_ms: c.int(7),
                connected_ms: c.int(8),
                ended_ms: c.int(9),
            });
        }
        Ok(out)
    }

    /// The stored domain events after `after_n`, in order.
    pub fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT n, at, offset_ms, body FROM events WHERE conversation_id = ?1 AND n > ?2 ORDER BY n")
            .map_err(self.err())?;
        let mut rows = stmt.query(params![id, after_n as i64]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let c = Col(r);
            let (Some(n), Some(at), Some(body)) = (c.int(0), c.time(1), c.text(3)) else { continue };
            let Ok(event) = serde_json::from_str::<DomainEvent>(&body) else { continue };
            out.push(Recorded {
                conversation_id: id.to_string(),
                n: n.max(0) as u64,
                at,
                offset_ms: c.int(2).unwrap_or(0).max(0) as u64,
                event,
            });
        }
        Ok(out)
    }

    /// Insights stored for a conversation, by source (e.g. `symbl`).
    pub fn insights(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT source, body FROM insights WHERE conversation_id = ?1 ORDER BY source")
            .map_err(self.err())?;
        let rows =
            stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(self.err())?;
        let mut out = serde_json::Map::new();
        for row in rows {
            let (source, body) = row.map_err(self.err())?;
            out.insert(source, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null));
        }
        Ok(out)
    }

    /// The saved state of one session.
    pub fn session(&self, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        conn.query_row("SELECT state FROM sessions WHERE conversation_id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Conversations whose session has not ended.
    pub fn active_sessions(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare("SELECT conversation_id FROM sessions WHERE ended = 0").map_err(self.err())?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Webhooks routed to a conversation but not yet processed by it, oldest first.
    pub fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<PendingWebhook>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare(
                "SELECT received_at, body FROM webhooks WHERE conversation_id = ?1 AND processed = 0
                 AND outcome = 'accepted' ORDER BY rowid",
            )
            .map_err(self.err())?;
        let mut rows = stmt.query([id]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let c = Col(r);
            out.push(PendingWebhook {
                received_at: c.time(0).unwrap_or_else(Utc::now),
                body: c.text(1).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Ids of webhooks received since `since`, to refuse repeats after a restart.
    pub fn recent_event_ids(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare("SELECT event_id FROM webhooks WHERE received_at >= ?1").map_err(self.err())?;
        let rows = stmt.query_map([since.to_rfc3339()], |r| r.get(0)).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The legs whose end the record does not show.
    pub fn open_legs(&self) -> Result<Vec<OpenLeg>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT call_control_id, conversation_id, role FROM legs WHERE ended_ms IS NULL")
            .map_err(self.err())?;
        let mut rows = stmt.query([]).map_err(self.err())?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(self.err())? {
            let c = Col(r);
            let (Some(call_control_id), Some(conversation_id), Some(role)) = (c.text(0), c.text(1), c.parsed(2)) else {
                continue;
            };
            out.push(OpenLeg { call_control_id, conversation_id, role });
        }
        Ok(out)
    }

    /// How many conversations match.
    pub fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        let conn = self.connection()?;
        let (clause, params) = clause(filters);
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM conversations {clause}"),
                rusqlite::params_from_iter(params),
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(n.max(0) as u64)
    }

    /// Calls `f` with every matching conversation and its utterances, oldest
    /// first; only one is in memory at a time. `f` returning false stops.
    pub fn for_each_conversation(
        &self,
        filters: &Filters,
        mut f: impl FnMut(Conversation) -> bool,
    ) -> Result<(), StoreError> {
        let conn = self.connection()?;
        let (clause, params) = clause(filters);
        let mut calls = conn
            .prepare(&format!("SELECT {CONVERSATION_COLUMNS} FROM conversations {clause} ORDER BY started_at, id"))
            .map_err(self.err())?;
        let mut utterances = conn.prepare(UTTERANCES).map_err(self.err())?;
        let mut callbacks = conn.prepare(CALLBACKS).map_err(self.err())?;
        let mut rows = calls.query(rusqlite::params_from_iter(params)).map_err(self.err())?;
        while let Some(row) = rows.next().map_err(self.err())? {
            let mut call = conversation_from_row(row);
            call.utterances = self.utterances_with(&mut utterances, &call.id)?;
            call.callback = self.callback_with(&mut callbacks, &call.id)?;
            if !f(call) {
                break;
            }
        }
        Ok(())
    }

    /// Conversation ids among `ids` that the database holds.
    pub fn existing(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare("SELECT 1 FROM conversations WHERE id = ?1").map_err(self.err())?;
        let mut found = Vec::new();
        for id in ids {
            if stmt.exists([id]).map_err(self.err())? {
                found.push(id.clone());
            }
        }
        Ok(found)
    }

    /// The ids among `event_ids` that the webhook log does not hold.
    pub fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare_cached("SELECT 1 FROM webhooks WHERE event_id = ?1").map_err(self.err())?;
        let mut missing = Vec::new();
        for id in event_ids {
            if !stmt.exists([id]).map_err(self.err())? {
                missing.push(id.clone());
            }
        }
        Ok(missing)
    }

    /// What the store holds about each call, in the order given.
    pub fn audit_calls(&self, call_control_ids: &[String]) -> Result<Vec<CallAudit>, StoreError> {
        let conn = self.connection()?;
        call_control_ids.iter().map(|ccid| audit_call(&conn, ccid).map_err(self.err())).collect()
    }
    /// Every text value of every table, one per line: what a privacy audit
    /// reads to check that nothing it should not hold was stored.
    pub fn every_text(&self) -> Result<String, StoreError> {
        let conn = self.connection()?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(self.err())?;
        let mut out = String::new();
        for table in tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).map_err(self.err())?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).map_err(self.err())?;
            while let Some(row) = rows.next().map_err(self.err())? {
                for i in 0..columns {
                    if let ValueRef::Text(t) = row.get_ref(i).map_err(self.err())? {
                        out.push_str(&String::from_utf8_lossy(t));
                        out.push('\n');
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Reads one row's columns leniently: a value of an unexpected type, or a
/// name this build does not know, is `None`.
struct Col<'a, 'r>(&'a Row<'r>);

impl Col<'_, '_> {
    fn int(&self, idx: usize) -> Option<i64> {
        match self.0.get_ref(idx).ok()? {
            ValueRef::Integer(i) => Some(i),
            ValueRef::Real(f) if f.is_finite() => Some(f as i64),
            ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
            _ => None,
        }
    }

    fn uint(&self, idx: usize) -> Option<u32> {
        self.int(idx).and_then(|v| u32::try_from(v).ok())
    }

    fn real(&self, idx: usize) -> Option<f64> {
        let v = match self.0.get_ref(idx).ok()? {
            ValueRef::Integer(i) => i as f64,
            ValueRef::Real(f) => f,
            ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok()?,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// Text; numbers become text, NULL and blobs are `None`.
    fn text(&self, idx: usize) -> Option<String> {
        match self.0.get_ref(idx).ok()? {
            ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// An RFC 3339 time.
    fn time(&self, idx: usize) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(self.text(idx)?.trim()).ok().map(|t| t.with_timezone(&Utc))
    }

    /// A stored enum name.
    fn parsed<T: serde::de::DeserializeOwned>(&self, idx: usize) -> Option<T> {
        parse_enum(self.text(idx)?.trim())
    }
}

fn conversation_from_row(r: &Row<'_>) -> Conversation {
    let c = Col(r);
    let decision = c.parsed(10).map(|reason| StoredDecision {
        reason,
        source: c.parsed(11),
        queue: c.text(12),
        trigger_index: c.uint(13).filter(|i| *i > 0),
        trigger_text: c.text(14),
        trigger_phrase: c.text(15),
        decision_ms: c.int(16),
    });
    Conversation {
        id: c.text(0).unwrap_or_default(),
        started_at: c.time(1),
        ended_at: c.time(2),
        direction: c.text(3),
        caller: c.text(4),
        callee: c.text(5),
        caller_call_control_id: c.text(6),
        status: c.parsed(7).unwrap_or(ConversationStatus::Active),
        end_reason: c.text(8),
        duration_ms: c.int(9),
        decision,
        transfer_status: c.parsed(17),
        transferred: c.int(18).unwrap_or(0) != 0,
        connected_ms: c.int(19),
        utterances: Vec::new(),
        callback: None,
    }
}

/// An utterance row; `None` when its speaker is not one this build knows.
fn utterance_from_row(r: &Row<'_>) -> Option<Utterance> {
    let c = Col(r);
    Some(Utterance {
        seq: c.uint(0).unwrap_or(0),
        speaker: c.parsed(1)?,
        caller_index: c.uint(2),
        offset_ms: c.int(3).unwrap_or(0).max(0),
        text: c.text(4).unwrap_or_default(),
        confidence: c.real(5),
        score: c.real(6),
        label: c.parsed(7),
        trackers: c.text(8).and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default(),
        engine: c.text(9),
    })
}

/// The store's own timestamp format (UTC, `+00:00`), so that bounds compare
/// correctly with the stored `started_at` strings.
fn store_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The WHERE clause of a filter and its parameters.
fn clause(filters: &Filters) -> (String, Vec<String>) {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    if let Some(t) = &filters.since {
        params.push(store_time(t));
        conds.push(format!("started_at >= ?{}", params.len()));
    }
    if let Some(t) = &filters.until {
        params.push(store_time(t));
        conds.push(format!("started_at < ?{}", params.len()));
    }
    if let Some(q) = &filters.queue {
        params.push(q.clone());
        conds.push(format!("queue = ?{}", params.len()));
    }
    if let Some(t) = filters.transferred {
        conds.push(format!("transferred = {}", i64::from(t)));
    }
    let clause = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    (clause, params)
}

fn audit_call(conn: &Connection, ccid: &str) -> rusqlite::Result<CallAudit> {
    let mut a = CallAudit { call_control_id: ccid.to_string(), ..CallAudit::default() };
    let conv: Option<String> = conn
        .prepare_cached("SELECT conversation_id FROM legs WHERE call_control_id = ?1")?
        .query_row([ccid], |r| r.get(0))
        .optional()?;
    let Some(conv) = conv else { return Ok(a) };
    a.ended = conn
        .prepare_cached("SELECT status = 'ended' FROM conversations WHERE id = ?1")?
        .query_row([&conv], |r| r.get(0))
        .optional()?
        .unwrap_or(false);
    let (decisions, queue, trigger): (u32, Option<String>, Option<u32>) = conn
        .prepare_cached(
            "SELECT count(*), (SELECT queue FROM decisions WHERE conversation_id = ?1 ORDER BY n LIMIT 1),
                    (SELECT trigger_index FROM decisions WHERE conversation_id = ?1 ORDER BY n LIMIT 1)
             FROM decisions WHERE conversation_id = ?1",
        )?
        .query_row([&conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    a.decisions = decisions;
    a.queue = queue;
    a.trigger_index = trigger;
    a.connected_transfers = conn
        .prepare_cached("SELECT count(*) FROM transfers WHERE conversation_id = ?1 AND connected_ms IS NOT NULL")?
        .query_row([&conv], |r| r.get(0))?;
    (a.agent_legs_answered, a.agent_legs_not_ended) = conn
        .prepare_cached(
            "SELECT count(*), count(*) FILTER (WHERE ended_ms IS NULL) FROM legs
             WHERE conversation_id = ?1 AND role = 'agent' AND answered_ms IS NOT NULL",
        )?
        .query_row([&conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
    a.conversation_id = Some(conv);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn filters_compare_in_the_store_format() {
        let f = Filters {
            since: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
            until: None,
            queue: Some("sales".into()),
            transferred: Some(false),
        };
        let (clause, params) = clause(&f);
        assert_eq!(clause, "WHERE started_at >= ?1 AND queue = ?2 AND transferred = 0");
        assert_eq!(params, vec!["2026-03-01T00:00:00+00:00".to_string(), "sales".to_string()]);
        // The store writes `DateTime<Utc>::to_rfc3339()`, which must sort the same way.
        let stored = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().to_rfc3339();
        assert_eq!(stored, params[0]);
        assert_eq!(super::clause(&Filters::default()).0, "");
    }
}
