//! Reading stored conversations: the per-call report, transcripts and the event
//! log (for `watch` replays). Each call opens its own connection, so readers
//! never wait on the writer (WAL).

use std::path::PathBuf;

use ivrx_core::session::{DomainEvent, Recorded, Role};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Read access to a database file.
#[derive(Debug, Clone)]
pub struct Reader {
    path: PathBuf,
}

/// One conversation's summary row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRow {
    pub id: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub caller_call_control_id: Option<String>,
    pub status: String,
    pub end_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub decision_reason: Option<String>,
    pub decision_source: Option<String>,
    pub queue: Option<String>,
    pub trigger_index: Option<u32>,
    pub trigger_text: Option<String>,
    pub trigger_phrase: Option<String>,
    pub decision_ms: Option<i64>,
    pub transfer_status: Option<String>,
    pub transferred: bool,
    pub connected_ms: Option<i64>,
}

/// One stored utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UtteranceRow {
    pub seq: u32,
    pub speaker: String,
    pub caller_index: Option<u32>,
    pub offset_ms: i64,
    pub text: String,
    pub confidence: Option<f64>,
    pub score: Option<f64>,
    pub label: Option<String>,
    pub trackers: Vec<String>,
    pub engine: Option<String>,
}

/// One transfer attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRow {
    pub attempt: u32,
    pub queue: String,
    pub target: String,
    pub mode: String,
    pub status: String,
    pub detail: Option<String>,
    pub requested_ms: Option<i64>,
    pub answered_ms: Option<i64>,
    pub connected_ms: Option<i64>,
    pub ended_ms: Option<i64>,
}

/// An utterance in a [`CallReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportUtterance {
    /// 1-based among this speaker's utterances (for the caller, the index
    /// `trigger_index` refers to).
    pub index: u32,
    pub speaker: String,
    pub text: String,
    pub score: Option<f64>,
    pub offset_ms: i64,
    pub trackers: Vec<String>,
    /// Which engine scored it (`local`, `symbl`).
    pub engine: Option<String>,
}

/// What happened in one call: the object `ivrx dial --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub conversation_id: String,
    /// True when the caller was connected to an agent.
    pub transferred: bool,
    /// The queue a transfer was decided for, if any.
    pub queue: Option<String>,
    /// Why (`asked_for_human`, `rapid_decline`, …), if a transfer was decided.
    pub reason: Option<String>,
    /// 1-based index of the caller utterance that triggered the transfer (null for keypad and manual).
    pub trigger_index: Option<u32>,
    /// The phrase that mattered, when a tracker fired.
    pub trigger_phrase: Option<String>,
    /// Last transfer state (`connected`, `failed`, `abandoned`, …).
    pub transfer_status: Option<String>,
    /// Milliseconds from the start of the call to the decision.
    pub decision_ms: Option<i64>,
    /// Milliseconds from the start of the call to the agent joining.
    pub connected_ms: Option<i64>,
    /// Why the call ended.
    pub end_reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub utterances: Vec<ReportUtterance>,
    pub transfers: Vec<TransferRow>,
    /// What external engines made of the call (e.g. Symbl topics and trackers), by engine.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub insights: serde_json::Map<String, serde_json::Value>,
}

fn sql(path: &std::path::Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.display().to_string(), source }
}

impl Reader {
    /// A reader for the database at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Opens the database read-only; a missing file is an error.
    pub fn connection(&self) -> Result<Connection, StoreError> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql(&self.path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql(&self.path))?;
        Ok(conn)
    }

    /// One conversation.
    pub fn conversation(&self, id: &str) -> Result<Option<ConversationRow>, StoreError> {
        let conn = self.connection()?;
        conn.query_row(
            "SELECT id, started_at, ended_at, caller, callee, caller_call_control_id, status, end_reason, duration_ms,
                    decision_reason, decision_source, queue, trigger_index, trigger_text, trigger_phrase, decision_ms,
                    transfer_status, transferred, connected_ms
             FROM conversations WHERE id = ?1",
            [id],
            |r| {
                Ok(ConversationRow {
                    id: r.get(0)?,
                    started_at: r.get(1)?,
                    ended_at: r.get(2)?,
                    caller: r.get(3)?,
                    callee: r.get(4)?,
                    caller_call_control_id: r.get(5)?,
                    status: r.get(6)?,
                    end_reason: r.get(7)?,
                    duration_ms: r.get(8)?,
                    decision_reason: r.get(9)?,
                    decision_source: r.get(10)?,
                    queue: r.get(11)?,
                    trigger_index: r.get(12)?,
                    trigger_text: r.get(13)?,
                    trigger_phrase: r.get(14)?,
                    decision_ms: r.get(15)?,
                    transfer_status: r.get(16)?,
                    transferred: r.get::<_, i64>(17)? != 0,
                    connected_ms: r.get(18)?,
                })
            },
        )
        .optional()
        .map_err(sql(&self.path))
    }

    /// The conversation a leg belongs to.
    pub fn conversation_for_call(&self, call_control_id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        conn.query_row("SELECT conversation_id FROM legs WHERE call_control_id = ?1", [call_control_id], |r| r.get(0))
            .optional()
            .map_err(sql(&self.path))
    }

    /// The newest conversation (`active_only`: only calls still going).
    pub fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        let q = if active_only {
            "SELECT id FROM conversations WHERE status = 'active' ORDER BY started_at DESC, rowid DESC LIMIT 1"
        } else {
            "SELECT id FROM conversations ORDER BY started_at DESC, rowid DESC LIMIT 1"
        };
        conn.query_row(q, [], |r| r.get(0)).optional().map_err(sql(&self.path))
    }

    /// A conversation's utterances in order.
    pub fn utterances(&self, id: &str) -> Result<Vec<UtteranceRow>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare(
                "SELECT seq, speaker, caller_index, offset_ms, text, confidence, score, label, trackers, engine
                 FROM utterances WHERE conversation_id = ?1 ORDER BY seq",
            )
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([id], |r| {
                let trackers: Option<String> = r.get(8)?;
                Ok(UtteranceRow {
                    seq: r.get(0)?,
                    speaker: r.get(1)?,
                    caller_index: r.get(2)?,
                    offset_ms: r.get(3)?,
                    text: r.get(4)?,
                    confidence: r.get(5)?,
                    score: r.get(6)?,
                    label: r.get(7)?,
                    trackers: tracker_names(trackers.as_deref()),
                    engine: r.get(9)?,
                })
            })
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// A conversation's transfer attempts, in order.
    pub fn transfers(&self, id: &str) -> Result<Vec<TransferRow>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare(
                "SELECT attempt, queue, target, mode, status, detail, requested_ms, answered_ms, connected_ms, ended_ms
                 FROM transfers WHERE conversation_id = ?1 ORDER BY decision_n, attempt",
            )
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(TransferRow {
                    attempt: r.get(0)?,
                    queue: r.get(1)?,
                    target: r.get(2)?,
                    mode: r.get(3)?,
                    status: r.get(4)?,
                    detail: r.get(5)?,
                    requested_ms: r.get(6)?,
                    answered_ms: r.get(7)?,
                    connected_ms: r.get(8)?,
                    ended_ms: r.get(9)?,
                })
            })
            .map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The stored domain events after `after_n`, in order.
    pub fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT n, at, offset_ms, body FROM events WHERE conversation_id = ?1 AND n > ?2 ORDER BY n")
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map(params![id, after_n as i64], |r| {
                let n: i64 = r.get(0)?;
                let at: String = r.get(1)?;
                let offset_ms: i64 = r.get(2)?;
                let body: String = r.get(3)?;
                Ok((n, at, offset_ms, body))
            })
            .map_err(sql(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (n, at, offset_ms, body) = row.map_err(sql(&self.path))?;
            let Ok(event) = serde_json::from_str::<DomainEvent>(&body) else { continue };
            let Ok(at) = chrono::DateTime::parse_from_rfc3339(&at) else { continue };
            out.push(Recorded {
                conversation_id: id.to_string(),
                n: n as u64,
                at: at.with_timezone(&chrono::Utc),
                offset_ms: offset_ms.max(0) as u64,
                event,
            });
        }
        Ok(out)
    }

    /// Insights stored for a conversation, by source (e.g. `symbl`).
    pub fn insights(&self, id: &str) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT source, body FROM insights WHERE conversation_id = ?1 ORDER BY source")
            .map_err(sql(&self.path))?;
        let rows =
            stmt.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (source, body) = row.map_err(sql(&self.path))?;
            out.push((source, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)));
        }
        Ok(out)
    }

    /// The saved state of one session.
    pub fn snapshot(&self, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.connection()?;
        conn.query_row("SELECT state FROM sessions WHERE conversation_id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql(&self.path))
    }

    /// Conversations whose session has not ended, with their saved state.
    pub fn active_snapshots(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.connection()?;
        let mut stmt =
            conn.prepare("SELECT conversation_id, state FROM sessions WHERE ended = 0").map_err(sql(&self.path))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// The legs whose end the record does not show: `(call_control_id,
    /// conversation_id, role)`.
    pub fn open_legs(&self) -> Result<Vec<(String, String, Role)>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare("SELECT call_control_id, conversation_id, role FROM legs WHERE ended_ms IS NULL")
            .map_err(sql(&self.path))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(sql(&self.path))?;
        let mut legs = Vec::new();
        for row in rows {
            let (ccid, conv, role) = row.map_err(sql(&self.path))?;
            let role = match role.as_str() {
                "caller" => Role::Caller,
                "agent" => Role::Agent,
                "symbl" => Role::Symbl,
                _ => continue,
            };
            legs.push((ccid, conv, role));
        }
        Ok(legs)
    }

    /// Webhooks routed to a conversation but not yet processed by it, oldest first:
    /// `(received_at, raw body)`.
    pub fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn
            .prepare(
                "SELECT received_at, body FROM webhooks WHERE conversation_id = ?1 AND processed = 0
                 AND outcome = 'accepted' ORDER BY rowid",
            )
            .map_err(sql(&self.path))?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// Ids of webhooks received since `since` (RFC 3339), to refuse repeats after a restart.
    pub fn recent_event_ids(&self, since: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt =
            conn.prepare("SELECT event_id FROM webhooks WHERE received_at >= ?1").map_err(sql(&self.path))?;
        let rows = stmt.query_map([since], |r| r.get(0)).map_err(sql(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path))
    }

    /// What happened in one call.
    pub fn report(&self, id: &str) -> Result<Option<CallReport>, StoreError> {
        let Some(c) = self.conversation(id)? else { return Ok(None) };
        let mut counts = std::collections::HashMap::<String, u32>::new();
        let utterances = self
            .utterances(id)?
            .into_iter()
            .map(|u| {
                let n = counts.entry(u.speaker.clone()).or_default();
                *n += 1;
                ReportUtterance {
                    index: u.caller_index.unwrap_or(*n),
                    speaker: u.speaker,
                    text: u.text,
                    score: u.score,
                    offset_ms: u.offset_ms,
                    trackers: u.trackers,
                    engine: u.engine,
                }
            })
            .collect();
        Ok(Some(CallReport {
            conversation_id: c.id,
            transferred: c.transferred,
            queue: c.queue,
            reason: c.decision_reason,
            trigger_index: c.trigger_index,
            trigger_phrase: c.trigger_phrase,
            transfer_status: c.transfer_status,
            decision_ms: c.decision_ms,
            connected_ms: c.connected_ms,
            end_reason: c.end_reason,
            duration_ms: c.duration_ms,
            utterances,
            transfers: self.transfers(id)?,
            insights: self.insights(id)?.into_iter().collect(),
        }))
    }
}

/// Tracker names from the stored JSON list of hits.
fn tracker_names(json: Option<&str>) -> Vec<String> {
    let Some(json) = json else { return Vec::new() };
    let hits: Vec<ivrx_intel::TrackerHit> = serde_json::from_str(json).unwrap_or_default();
    let mut names: Vec<String> = hits.into_iter().map(|h| h.tracker).collect();
    names.dedup();
    names
}
