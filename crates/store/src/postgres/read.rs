//! Reading a PostgreSQL store: the same questions as SQLite's reader, each
//! on a connection from the pool. Rows are decoded leniently, as SQLite's
//! are: a name this build does not know reads as absent.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use ivrx_core::session::{DomainEvent, Recorded};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::connect::Db;
use crate::ids::{as_given, is_prefix_candidate, IdMatch, MAX_CANDIDATES, SHORT_ID};
use crate::model::{
    parse_enum, CallAudit, CallbackTimes, Conversation, ConversationStatus, Filters, OpenLeg, PendingWebhook,
    StoredDecision, TransferAttempt, Utterance,
};
use crate::StoreError;

/// The columns of a conversation row, in [`conversation_from_row`]'s order.
const CONVERSATION_COLUMNS: &str = "id, started_at, ended_at, direction, caller, callee, caller_call_control_id, \
     status, end_reason, duration_ms, decision_reason, decision_source, queue, trigger_index, trigger_text, \
     trigger_phrase, decision_ms, transfer_status, transferred, connected_ms";

/// The `callback` events of several conversations: conversation, when, the event.
const CALLBACKS: &str =
    "SELECT conversation_id, at, body FROM events WHERE conversation_id = ANY($1) AND kind = 'callback' \
     ORDER BY conversation_id, n";

/// Utterances of several conversations, in [`utterance_from_row`]'s columns after the conversation id.
const UTTERANCES: &str = "SELECT conversation_id, seq, speaker, caller_index, offset_ms, text, confidence, score, \
     label, trackers, engine FROM utterances WHERE conversation_id = ANY($1) ORDER BY conversation_id, seq";

/// Rows whose column starts with $1, answered from the column's index (ids sort byte-wise).
fn prefix_clause(column: &str) -> String {
    format!("{column} >= $1 AND {column} < $1 || chr(1114111)")
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// The WHERE conditions of a filter and their parameters (numbered from 1).
fn conditions(filters: &Filters) -> (Vec<String>, Params) {
    let mut conds = Vec::new();
    let mut params: Params = Vec::new();
    if let Some(t) = filters.since {
        params.push(Box::new(t));
        conds.push(format!("started_at >= ${}", params.len()));
    }
    if let Some(t) = filters.until {
        params.push(Box::new(t));
        conds.push(format!("started_at < ${}", params.len()));
    }
    if let Some(q) = &filters.queue {
        params.push(Box::new(q.clone()));
        conds.push(format!("queue = ${}", params.len()));
    }
    if let Some(t) = filters.transferred {
        params.push(Box::new(t));
        conds.push(format!("transferred = ${}", params.len()));
    }
    (conds, params)
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

/// A column's value, or `None` when it is NULL or of another type.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, idx: usize) -> Option<T> {
    r.try_get::<_, Option<T>>(idx).ok().flatten()
}

fn uint(r: &Row, idx: usize) -> Option<u32> {
    get::<i64>(r, idx).and_then(|v| u32::try_from(v).ok())
}

fn real(r: &Row, idx: usize) -> Option<f64> {
    get::<f64>(r, idx).filter(|v| v.is_finite())
}

fn parsed<T: serde::de::DeserializeOwned>(r: &Row, idx: usize) -> Option<T> {
    parse_enum(get::<&str>(r, idx)?.trim())
}

fn conversation_from_row(r: &Row) -> Conversation {
    let decision = parsed(r, 10).map(|reason| StoredDecision {
        reason,
        source: parsed(r, 11),
        queue: get(r, 12),
        trigger_index: uint(r, 13).filter(|i| *i > 0),
        trigger_text: get(r, 14),
        trigger_phrase: get(r, 15),
        decision_ms: get(r, 16),
    });
    Conversation {
        id: get(r, 0).unwrap_or_default(),
        started_at: get(r, 1),
        ended_at: get(r, 2),
        direction: get(r, 3),
        caller: get(r, 4),
        callee: get(r, 5),
        caller_call_control_id: get(r, 6),
        status: parsed(r, 7).unwrap_or(ConversationStatus::Active),
        end_reason: get(r, 8),
        duration_ms: get(r, 9),
        decision,
        transfer_status: parsed(r, 17),
        transferred: get(r, 18).unwrap_or(false),
        connected_ms: get(r, 19),
        utterances: Vec::new(),
        callback: None,
    }
}

/// An utterance row (columns from 1); `None` when its speaker is not one this build knows.
fn utterance_from_row(r: &Row) -> Option<Utterance> {
    Some(Utterance {
        seq: uint(r, 1).unwrap_or(0),
        speaker: parsed(r, 2)?,
        caller_index: uint(r, 3),
        offset_ms: get::<i64>(r, 4).unwrap_or(0).max(0),
        text: get(r, 5).unwrap_or_default(),
        confidence: real(r, 6),
        score: real(r, 7),
        label: parsed(r, 8),
        trackers: get::<&str>(r, 9).and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default(),
        engine: get(r, 10),
    })
}

impl Db {
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        let client = self.get().await?;
        let stmt = client.prepare_cached(sql).await.map_err(self.err())?;
        client.query(&stmt, params).await.map_err(self.err())
    }

    async fn strings(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>, StoreError> {
        Ok(self.rows(sql, params).await?.iter().filter_map(|r| get(r, 0)).collect())
    }

    async fn first_string(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<String>, StoreError> {
        Ok(self.strings(sql, params).await?.into_iter().next())
    }

    /// Conversations with their utterances and callbacks, in the order of `rows`.
    async fn with_utterances(&self, rows: Vec<Row>) -> Result<Vec<Conversation>, StoreError> {
        let mut calls: Vec<Conversation> = rows.iter().map(conversation_from_row).collect();
        if calls.is_empty() {
            return Ok(calls);
        }
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        let mut by_id: HashMap<String, Vec<Utterance>> = HashMap::new();
        for r in self.rows(UTTERANCES, &[&ids]).await? {
            let Some(conv) = get::<String>(&r, 0) else { continue };
            by_id.entry(conv).or_default().extend(utterance_from_row(&r));
        }
        let mut callbacks: HashMap<String, CallbackTimes> = HashMap::new();
        for r in self.rows(CALLBACKS, &[&ids]).await? {
            let (Some(conv), Some(at), Some(body)) =
                (get::<String>(&r, 0), get::<DateTime<Utc>>(&r, 1), get::<String>(&r, 2))
            else {
                continue;
            };
            let mut times = callbacks.remove(&conv).unwrap_or_default();
            if times.mark(&body, at) || times != CallbackTimes::default() {
                callbacks.insert(conv, times);
            }
        }
        for c in &mut calls {
            c.utterances = by_id.remove(&c.id).unwrap_or_default();
            c.callback = callbacks.remove(&c.id);
        }
        Ok(calls)
    }

    pub(super) async fn conversation(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        let rows =
            self.rows(&format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"), &[&id]).await?;
        Ok(self.with_utterances(rows).await?.pop())
    }

    pub(super) async fn transfers(&self, id: &str) -> Result<Vec<TransferAttempt>, StoreError> {
        let rows = self
            .rows(
                "SELECT attempt, queue, target, mode, status, detail, requested_ms, answered_ms, connected_ms, ended_ms
                 FROM transfers WHERE conversation_id = $1 ORDER BY decision_n, attempt",
                &[&id],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(TransferAttempt {
                    attempt: uint(r, 0).unwrap_or(0),
                    queue: get(r, 1).unwrap_or_default(),
                    target: get(r, 2).unwrap_or_default(),
                    mode: parsed(r, 3)?,
                    status: parsed(r, 4)?,
                    detail: get(r, 5),
                    requested_ms: get(r, 6),
                    answered_ms: get(r, 7),
                    connected_ms: get(r, 8),
                    ended_ms: get(r, 9),
                })
            })
            .collect())
    }

    pub(super) async fn insights(&self, id: &str) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let rows =
            self.rows("SELECT source, body FROM insights WHERE conversation_id = $1 ORDER BY source", &[&id]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let body = serde_json::from_str(get::<&str>(r, 1)?).unwrap_or(serde_json::Value::Null);
                Some((get::<String>(r, 0)?, body))
            })
            .collect())
    }

    pub(super) async fn events(&self, id: &str, after_n: u64) -> Result<Vec<Recorded>, StoreError> {
        let after = i64::try_from(after_n).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "SELECT n, at, offset_ms, body FROM events WHERE conversation_id = $1 AND n > $2 ORDER BY n",
                &[&id, &after],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let event = serde_json::from_str::<DomainEvent>(get::<&str>(r, 3)?).ok()?;
                Some(Recorded {
                    conversation_id: id.to_string(),
                    n: get::<i64>(r, 0)?.max(0) as u64,
                    at: get(r, 1)?,
                    offset_ms: get::<i64>(r, 2).unwrap_or(0).max(0) as u64,
                    event,
                })
            })
            .collect())
    }

    pub(super) async fn conversation_for_call(&self, ccid: &str) -> Result<Option<String>, StoreError> {
        self.first_string("SELECT conversation_id FROM legs WHERE call_control_id = $1", &[&ccid]).await
    }

    pub(super) async fn latest_conversation(&self, active_only: bool) -> Result<Option<String>, StoreError> {
        let q = if active_only {
            "SELECT id FROM conversations WHERE status = 'active' ORDER BY started_at DESC, id DESC LIMIT 1"
        } else {
            "SELECT id FROM conversations ORDER BY started_at DESC, id DESC LIMIT 1"
        };
        self.first_string(q, &[]).await
    }

    pub(super) async fn find_conversation(&self, given: &str) -> Result<IdMatch, StoreError> {
        let given = as_given(given);
        let exact = self
            .first_string(
                "SELECT id FROM conversations WHERE id = $1
                 UNION ALL SELECT conversation_id FROM legs WHERE call_control_id = $1 LIMIT 1",
                &[&given],
            )
            .await?;
        if exact.is_some() || !is_prefix_candidate(given) {
            return Ok(IdMatch::from_found(exact, []));
        }
        let limit = (MAX_CANDIDATES + 1) as i64;
        let q = format!(
            "SELECT id FROM (SELECT id FROM conversations WHERE {} LIMIT $2) c
             UNION SELECT conversation_id FROM (SELECT conversation_id FROM legs WHERE {} LIMIT $2) l",
            prefix_clause("id"),
            prefix_clause("call_control_id")
        );
        let found = self.strings(&q, &[&given, &limit]).await?;
        Ok(IdMatch::from_found(None, found))
    }

    pub(super) async fn short_ids(&self, ids: &[String]) -> Result<HashMap<String, String>, StoreError> {
        let client = self.get().await?;
        let q = format!("SELECT count(*) FROM (SELECT 1 FROM conversations WHERE {} LIMIT 2) m", prefix_clause("id"));
        let stmt = client.prepare_cached(&q).await.map_err(self.err())?;
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            let chars: Vec<(usize, char)> = id.char_indices().collect();
            let mut short = id.clone();
            for n in SHORT_ID..chars.len() {
                let prefix = &id[..chars[n].0];
                let count: i64 = client.query_one(&stmt, &[&prefix]).await.map_err(self.err())?.get(0);
                if count <= 1 {
                    short = prefix.to_string();
                    break;
                }
            }
            out.insert(id.clone(), short);
        }
        Ok(out)
    }

    pub(super) async fn active_sessions(&self) -> Result<Vec<String>, StoreError> {
        self.strings("SELECT conversation_id FROM sessions WHERE NOT ended", &[]).await
    }

    pub(super) async fn session(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.first_string("SELECT state FROM sessions WHERE conversation_id = $1", &[&id]).await
    }

    pub(super) async fn unprocessed_webhooks(&self, id: &str) -> Result<Vec<PendingWebhook>, StoreError> {
        let rows = self
            .rows(
                "SELECT received_at, body FROM webhooks WHERE conversation_id = $1 AND NOT processed
                 AND outcome = 'accepted' ORDER BY seq",
                &[&id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PendingWebhook {
                received_at: get(r, 0).unwrap_or_else(Utc::now),
                body: get(r, 1).unwrap_or_default(),
            })
            .collect())
    }

    pub(super) async fn recent_event_ids(&self, since: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.strings("SELECT event_id FROM webhooks WHERE received_at >= $1", &[&since]).await
    }

    pub(super) async fn open_legs(&self) -> Result<Vec<OpenLeg>, StoreError> {
        let rows =
            self.rows("SELECT call_control_id, conversation_id, role FROM legs WHERE ended_ms IS NULL", &[]).await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(OpenLeg { call_control_id: get(r, 0)?, conversation_id: get(r, 1)?, role: parsed(r, 2)? })
            })
            .collect())
    }

    pub(super) async fn count(&self, filters: &Filters) -> Result<u64, StoreError> {
        let (conds, params) = conditions(filters);
        let q = format!("SELECT count(*) FROM conversations {}", where_clause(&conds));
        let rows = self.rows(&q, &refs(&params)).await?;
        Ok(rows.first().and_then(|r| get::<i64>(r, 0)).unwrap_or(0).max(0) as u64)
    }

    /// One page of matching conversations after `after` (`started_at`, `id`), oldest first.
    pub(super) async fn calls_page(
        &self,
        filters: &Filters,
        after: Option<&(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<Conversation>, StoreError> {
        let (mut conds, mut params) = conditions(filters);
        if let Some((at, id)) = after {
            params.push(Box::new(*at));
            params.push(Box::new(id.clone()));
            conds.push(format!("(started_at, id) > (${}, ${})", params.len() - 1, params.len()));
        }
        params.push(Box::new(limit as i64));
        let q = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations {} ORDER BY started_at, id LIMIT ${}",
            where_clause(&conds),
            params.len()
        );
        let rows = self.rows(&q, &refs(&params)).await?;
        self.with_utterances(rows).await
    }

    pub(super) async fn existing(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let found = self.strings("SELECT id FROM conversations WHERE id = ANY($1)", &[&ids]).await?;
        Ok(ids.iter().filter(|id| found.contains(id)).cloned().collect())
    }

    pub(super) async fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let found = self.strings("SELECT event_id FROM webhooks WHERE event_id = ANY($1)", &[&event_ids]).await?;
        let found: std::collections::HashSet<&String> = found.iter().collect();
        Ok(event_ids.iter().filter(|id| !found.contains(id)).cloned().collect())
    }

    pub(super) async fn audit_calls(&self, ccids: &[String]) -> Result<Vec<CallAudit>, StoreError> {
        let client = self.get().await?;
        let err = self.err();
        let q = "SELECT l.conversation_id,
                   COALESCE((SELECT status = 'ended' FROM conversations WHERE id = l.conversation_id), false),
                   (SELECT count(*) FROM decisions WHERE conversation_id = l.conversation_id),
                   (SELECT queue FROM decisions WHERE conversation_id = l.conversation_id ORDER BY n LIMIT 1),
                   (SELECT trigger_index FROM decisions WHERE conversation_id = l.conversation_id ORDER BY n LIMIT 1),
                   (SELECT count(*) FROM transfers WHERE conversation_id = l.conversation_id
                      AND connected_ms IS NOT NULL),
                   (SELECT count(*) FROM legs a WHERE a.conversation_id = l.conversation_id AND a.role = 'agent'
                      AND a.answered_ms IS NOT NULL),
                   (SELECT count(*) FROM legs a WHERE a.conversation_id = l.conversation_id AND a.role = 'agent'
                      AND a.answered_ms IS NOT NULL AND a.ended_ms IS NULL)
                 FROM legs l WHERE l.call_control_id = $1";
        let stmt = client.prepare_cached(q).await.map_err(&err)?;
        let count = |r: &Row, i| get::<i64>(r, i).and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        let mut out = Vec::with_capacity(ccids.len());
        for ccid in ccids {
            let mut a = CallAudit { call_control_id: ccid.clone(), ..CallAudit::default() };
            if let Some(r) = client.query_opt(&stmt, &[ccid]).await.map_err(&err)? {
                a.conversation_id = get(&r, 0);
                a.ended = get(&r, 1).unwrap_or(false);
                a.decisions = count(&r, 2);
                a.queue = get(&r, 3);
                a.trigger_index = uint(&r, 4);
                a.connected_transfers = count(&r, 5);
                a.agent_legs_answered = count(&r, 6);
                a.agent_legs_not_ended = count(&r, 7);
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Every text value of every table, one per line: what a privacy audit
    /// reads to check that nothing it should not hold was stored.
    pub(super) async fn every_text(&self) -> Result<String, StoreError> {
        let columns = self
            .rows(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND data_type = 'text' ORDER BY table_name, ordinal_position",
                &[],
            )
            .await?;
        let mut out = String::new();
        for c in &columns {
            let (table, column): (String, String) = (c.get(0), c.get(1));
            let q = format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL");
            for v in self.strings(&q, &[]).await? {
                out.push_str(&v);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// Pages of calls read ahead of a consumer: what [`Analytics::calls`](crate::Analytics::calls) streams.
pub(super) struct Pages {
    pub(super) db: Db,
    pub(super) filters: Filters,
    pub(super) after: Option<(DateTime<Utc>, String)>,
    pub(super) buffered: VecDeque<Conversation>,
    pub(super) done: bool,
}

impl Pages {
    /// The next call, reading the next page when the buffer is empty.
    pub(super) async fn next(&mut self, page: usize) -> Option<Result<Conversation, StoreError>> {
        if self.buffered.is_empty() && !self.done {
            match self.db.calls_page(&self.filters, self.after.as_ref(), page).await {
                Ok(calls) => {
                    self.done = calls.len() < page;
                    if let Some(last) = calls.last() {
                        self.after = Some((last.started_at.unwrap_or_default(), last.id.clone()));
                    }
                    self.buffered.extend(calls);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.buffered.pop_front().map(Ok)
    }
}
