//! Integrity checks over the store, for load runs: which acknowledged
//! webhooks are missing, and what each call ended up with (decisions,
//! connected agents, agent legs answered and never ended), so lost events,
//! double transfers and agents left on the line can be counted.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::read::Reader;
use super::StoreError;

/// What the store holds about one call (by its first leg's `call_control_id`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallAudit {
    /// The call's first leg.
    pub call_control_id: String,
    /// Its conversation, when the store knows the leg.
    pub conversation_id: Option<String>,
    /// True once the conversation has ended.
    pub ended: bool,
    /// Transfer decisions stored (exactly-once means 0 or 1).
    pub decisions: u32,
    /// The queue of the first decision.
    pub queue: Option<String>,
    /// The caller utterance that triggered it (null for keypad and manual).
    pub trigger_index: Option<u32>,
    /// Transfer attempts that reached `connected`.
    pub connected_transfers: u32,
    /// Agent legs that answered.
    pub agent_legs_answered: u32,
    /// Agent legs that answered and whose end the record does not show.
    #[serde(default)]
    pub agent_legs_not_ended: u32,
}

impl CallAudit {
    /// More than one decision or connected transfer. (More than one agent
    /// may answer for one decision: every one but the connected one is
    /// released, and must end.)
    pub fn double_transfer(&self) -> bool {
        self.decisions > 1 || self.connected_transfers > 1
    }
}

fn sql(reader: &Reader) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: reader.path().display().to_string(), source }
}

impl Reader {
    /// The ids among `event_ids` that the webhook log does not hold.
    pub fn missing_webhooks(&self, event_ids: &[String]) -> Result<Vec<String>, StoreError> {
        let conn = self.connection()?;
        let mut stmt = conn.prepare_cached("SELECT 1 FROM webhooks WHERE event_id = ?1").map_err(sql(self))?;
        let mut missing = Vec::new();
        for id in event_ids {
            let found: Option<i64> = stmt.query_row([id], |r| r.get(0)).optional().map_err(sql(self))?;
            if found.is_none() {
                missing.push(id.clone());
            }
        }
        Ok(missing)
    }

    /// What the store holds about each call, in the order given.
    pub fn audit_calls(&self, call_control_ids: &[String]) -> Result<Vec<CallAudit>, StoreError> {
        let conn = self.connection()?;
        call_control_ids.iter().map(|ccid| audit_call(&conn, ccid).map_err(sql(self))).collect()
    }
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
