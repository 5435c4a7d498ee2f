//! Which conversations to analyse, and streaming them out of the store one
//! call at a time (the call's row and its utterances), so memory does not grow
//! with the size of the database.

use std::path::Path;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use serde::Serialize;

use super::AnalyzeError;
use crate::intel::TrackerHit;

/// Conversation filters (`--since`, `--until`, `--queue`, `--transferred`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Filters {
    /// Only calls that started at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only calls that started before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only calls whose transfer decision named this queue.
    pub queue: Option<String>,
    /// Only calls connected to an agent (`true`) or not (`false`).
    pub transferred: Option<bool>,
}

/// Which end of a time range a value bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `--since`: a date means that day's first instant (UTC).
    Since,
    /// `--until`: a date means the end of that day (UTC), so the day is included.
    Until,
}

/// Parses `--since` / `--until`: RFC 3339 (`2026-03-01T09:00:00Z`,
/// `2026-03-01T10:00:00+01:00`) or a date `YYYY-MM-DD` (UTC).
pub fn parse_time(value: &str, bound: Bound) -> Result<DateTime<Utc>, AnalyzeError> {
    let flag = match bound {
        Bound::Since => "since",
        Bound::Until => "until",
    };
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = match bound {
            Bound::Since => Some(d),
            Bound::Until => d.succ_opt(),
        };
        if let Some(t) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(t.and_utc());
        }
    }
    Err(AnalyzeError::Time {
        flag,
        value: value.to_string(),
        message: "expected RFC 3339 (2026-03-01T09:00:00Z) or a date YYYY-MM-DD (2026-03-01)".into(),
    })
}

/// The store's own timestamp format (UTC, `+00:00`), so that bounds compare
/// correctly with the stored `started_at` strings.
fn store_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

impl Filters {
    /// The WHERE clause and its parameters.
    fn clause(&self) -> (String, Vec<String>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        if let Some(t) = &self.since {
            params.push(store_time(t));
            conds.push(format!("started_at >= ?{}", params.len()));
        }
        if let Some(t) = &self.until {
            params.push(store_time(t));
            conds.push(format!("started_at < ?{}", params.len()));
        }
        if let Some(q) = &self.queue {
            params.push(q.clone());
            conds.push(format!("queue = ?{}", params.len()));
        }
        if let Some(t) = self.transferred {
            conds.push(format!("transferred = {}", i64::from(t)));
        }
        let clause = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        (clause, params)
    }
}

/// One stored utterance, as the analysis needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUtterance {
    /// Sequence number within the conversation.
    pub seq: u32,
    /// `caller`, `agent` or `ivr`.
    pub speaker: String,
    /// 1-based index among the caller's utterances.
    pub caller_index: Option<u32>,
    /// Milliseconds since the call started.
    pub offset_ms: i64,
    /// The (possibly redacted) text.
    pub text: String,
    /// The engine's score, when scored (finite values only).
    pub score: Option<f64>,
    /// The stored label.
    pub label: Option<String>,
    /// Tracker hits.
    pub trackers: Vec<TrackerHit>,
}

impl StoredUtterance {
    /// True for the caller's speech.
    pub fn is_caller(&self) -> bool {
        self.speaker == "caller"
    }
}

/// One stored conversation with its utterances in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredCall {
    /// Conversation id.
    pub id: String,
    /// RFC 3339 start time as stored.
    pub started_at: String,
    /// `incoming`, `outgoing`, `import`, `synthetic`, …
    pub direction: Option<String>,
    /// `active` or `ended`.
    pub status: String,
    /// Why the call ended.
    pub end_reason: Option<String>,
    /// Length of the call.
    pub duration_ms: Option<i64>,
    /// Why a transfer was decided, if one was.
    pub decision_reason: Option<String>,
    /// `policy`, `menu` or `manual`.
    pub decision_source: Option<String>,
    /// The queue of the decision.
    pub queue: Option<String>,
    /// 1-based caller index of the trigger utterance.
    pub trigger_index: Option<u32>,
    /// The trigger utterance's text.
    pub trigger_text: Option<String>,
    /// The tracker phrase that mattered.
    pub trigger_phrase: Option<String>,
    /// Call start to decision.
    pub decision_ms: Option<i64>,
    /// Last transfer state.
    pub transfer_status: Option<String>,
    /// Connected to an agent.
    pub transferred: bool,
    /// Call start to agent connected.
    pub connected_ms: Option<i64>,
    /// Every utterance, in `seq` order.
    pub utterances: Vec<StoredUtterance>,
}

impl StoredCall {
    /// The caller's utterances, in the order they were said.
    pub fn caller_utterances(&self) -> impl Iterator<Item = &StoredUtterance> {
        self.utterances.iter().filter(|u| u.is_caller())
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> AnalyzeError + '_ {
    move |source| AnalyzeError::Sqlite { path: path.display().to_string(), source }
}

/// Reads an integer column leniently: NULL, text or out-of-range values are `None`.
fn int(row: &Row<'_>, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) if f.is_finite() => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn uint(row: &Row<'_>, idx: usize) -> Option<u32> {
    int(row, idx).and_then(|v| u32::try_from(v).ok())
}

fn real(row: &Row<'_>, idx: usize) -> Option<f64> {
    let v = match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => i as f64,
        ValueRef::Real(f) => f,
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok()?,
        _ => return None,
    };
    v.is_finite().then_some(v)
}

/// Reads a text column leniently: NULL and blobs are `None`, numbers become text.
fn text(row: &Row<'_>, idx: usize) -> Option<String> {
    match row.get_ref(idx).ok()? {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Tracker hits from the stored JSON list; anything unreadable counts as none.
fn trackers(json: Option<String>) -> Vec<TrackerHit> {
    json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default()
}

const CALL_COLUMNS: &str = "id, started_at, direction, status, end_reason, duration_ms, decision_reason, \
     decision_source, queue, trigger_index, trigger_text, trigger_phrase, decision_ms, transfer_status, \
     transferred, connected_ms";

fn call_from_row(r: &Row<'_>) -> StoredCall {
    StoredCall {
        id: text(r, 0).unwrap_or_default(),
        started_at: text(r, 1).unwrap_or_default(),
        direction: text(r, 2),
        status: text(r, 3).unwrap_or_default(),
        end_reason: text(r, 4),
        duration_ms: int(r, 5),
        decision_reason: text(r, 6),
        decision_source: text(r, 7),
        queue: text(r, 8),
        trigger_index: uint(r, 9).filter(|i| *i > 0),
        trigger_text: text(r, 10),
        trigger_phrase: text(r, 11),
        decision_ms: int(r, 12),
        transfer_status: text(r, 13),
        transferred: int(r, 14).unwrap_or(0) != 0,
        connected_ms: int(r, 15),
        utterances: Vec::new(),
    }
}

fn utterance_from_row(r: &Row<'_>) -> StoredUtterance {
    StoredUtterance {
        seq: uint(r, 0).unwrap_or(0),
        speaker: text(r, 1).unwrap_or_default(),
        caller_index: uint(r, 2),
        offset_ms: int(r, 3).unwrap_or(0).max(0),
        text: text(r, 4).unwrap_or_default(),
        score: real(r, 5),
        label: text(r, 6),
        trackers: trackers(text(r, 7)),
    }
}

/// How many conversations match (for the progress bar).
pub fn count_calls(conn: &Connection, path: &Path, filters: &Filters) -> Result<u64, AnalyzeError> {
    let (clause, params) = filters.clause();
    let n: i64 = conn
        .query_row(&format!("SELECT count(*) FROM conversations {clause}"), rusqlite::params_from_iter(params), |r| {
            r.get(0)
        })
        .map_err(sql_err(path))?;
    Ok(n.max(0) as u64)
}

/// Calls `f` with every matching conversation, oldest first, each with its
/// utterances. Only one call is in memory at a time.
pub fn for_each_call(
    conn: &Connection,
    path: &Path,
    filters: &Filters,
    mut f: impl FnMut(StoredCall) -> Result<(), AnalyzeError>,
) -> Result<(), AnalyzeError> {
    let (clause, params) = filters.clause();
    let mut calls = conn
        .prepare(&format!("SELECT {CALL_COLUMNS} FROM conversations {clause} ORDER BY started_at, id"))
        .map_err(sql_err(path))?;
    let mut utterances = conn
        .prepare(
            "SELECT seq, speaker, caller_index, offset_ms, text, score, label, trackers
             FROM utterances WHERE conversation_id = ?1 ORDER BY seq",
        )
        .map_err(sql_err(path))?;
    let mut rows = calls.query(rusqlite::params_from_iter(params)).map_err(sql_err(path))?;
    while let Some(row) = rows.next().map_err(sql_err(path))? {
        let mut call = call_from_row(row);
        let mut urows = utterances.query([&call.id]).map_err(sql_err(path))?;
        while let Some(u) = urows.next().map_err(sql_err(path))? {
            call.utterances.push(utterance_from_row(u));
        }
        f(call)?;
    }
    Ok(())
}

/// Conversation ids among `ids` that already exist in the database.
pub fn existing_ids(conn: &Connection, path: &Path, ids: &[&str]) -> Result<Vec<String>, AnalyzeError> {
    let mut stmt = conn.prepare("SELECT 1 FROM conversations WHERE id = ?1").map_err(sql_err(path))?;
    let mut found = Vec::new();
    for id in ids {
        if stmt.exists([id]).map_err(sql_err(path))? {
            found.push((*id).to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn since_and_until_accept_rfc3339_and_dates() {
        let t = parse_time("2026-03-01T10:30:00+01:00", Bound::Since).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap());
        let t = parse_time("2026-03-01T09:30:00.250Z", Bound::Until).unwrap();
        assert_eq!(t.timestamp_millis() % 1000, 250);
        assert_eq!(parse_time("2026-03-01", Bound::Since).unwrap(), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        // A date as the upper bound includes that whole day.
        assert_eq!(
            parse_time(" 2026-03-01 ", Bound::Until).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
        );
        assert_eq!(parse_time("2026-12-31", Bound::Until).unwrap(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_times_name_the_flag_and_the_formats() {
        for bad in ["yesterday", "2026-02-30", "2026-3-1x", "", "2026-03-01 09:00"] {
            let e = parse_time(bad, Bound::Until).unwrap_err().to_string();
            assert!(e.contains("--until") && e.contains("RFC 3339") && e.contains("YYYY-MM-DD"), "{e}");
        }
    }

    #[test]
    fn filters_compare_in_the_store_format() {
        let f = Filters {
            since: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
            until: None,
            queue: Some("sales".into()),
            transferred: Some(false),
        };
        let (clause, params) = f.clause();
        assert_eq!(clause, "WHERE started_at >= ?1 AND queue = ?2 AND transferred = 0");
        assert_eq!(params, vec!["2026-03-01T00:00:00+00:00".to_string(), "sales".to_string()]);
        // The store writes `DateTime<Utc>::to_rfc3339()`, which must sort the same way.
        let stored = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap().to_rfc3339();
        assert_eq!(stored, params[0]);
        assert_eq!(Filters::default().clause().0, "");
    }
}
