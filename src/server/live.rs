//! The live event hub: every domain event of an active conversation is kept
//! (for replay) and broadcast (for followers), so `ivrx watch` first sees the
//! conversation so far and then follows it without a gap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::session::{DomainEvent, Recorded, Speaker};

/// One active conversation, as listed by the admin API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveConversation {
    pub conversation_id: String,
    pub started_at: Option<String>,
    pub caller: Option<String>,
    pub caller_call_control_id: Option<String>,
    pub utterances: u32,
    pub last_score: Option<f64>,
    pub level: Option<f64>,
    pub decision: Option<String>,
    pub transfer_status: Option<String>,
    pub ended: bool,
}

/// Events a lagging follower may fall behind by.
const FOLLOW_BUFFER: usize = 1024;

struct Entry {
    /// Created by the first follower: most conversations are never followed,
    /// and the channel's buffer is allocated in full up front.
    tx: Option<broadcast::Sender<Arc<Recorded>>>,
    history: Vec<Arc<Recorded>>,
    summary: ActiveConversation,
}

/// The hub. Cheap to share.
#[derive(Default)]
pub struct LiveHub {
    convs: Mutex<HashMap<String, Entry>>,
    /// Several instances: followers here of conversations another instance
    /// handles, told the last event number each checkpoint there committed.
    elsewhere: Mutex<HashMap<String, watch::Sender<u64>>>,
}

/// A follower: the conversation so far, then the stream.
pub struct Subscription {
    /// Everything up to now.
    pub history: Vec<Arc<Recorded>>,
    /// What comes next (events with `n` above the history's last).
    pub rx: broadcast::Receiver<Arc<Recorded>>,
    /// True when the conversation has already ended.
    pub ended: bool,
}

impl LiveHub {
    /// Publishes an event (and creates the conversation's entry on first use).
    pub fn publish(&self, r: &Recorded) {
        let Ok(mut g) = self.convs.lock() else { return };
        let e = g.entry(r.conversation_id.clone()).or_insert_with(|| Entry {
            tx: None,
            history: Vec::new(),
            summary: ActiveConversation { conversation_id: r.conversation_id.clone(), ..Default::default() },
        });
        let s = &mut e.summary;
        match &r.event {
            DomainEvent::CallStarted { from, call_control_id, .. } => {
                s.started_at = Some(r.at.to_rfc3339());
                s.caller = from.clone();
                s.caller_call_control_id = Some(call_control_id.clone());
            }
            DomainEvent::Utterance { speaker: Speaker::Caller, .. } => s.utterances += 1,
            DomainEvent::Scored { speaker: Speaker::Caller, score, policy, .. } => {
                s.last_score = Some(*score);
                s.level = policy.as_ref().map(|p| p.level);
            }
            DomainEvent::Decision { decision, .. } => s.decision = Some(decision.reason.as_str().to_string()),
            DomainEvent::Transfer { status, .. } => s.transfer_status = Some(status.as_str().to_string()),
            DomainEvent::CallEnded { .. } => s.ended = true,
            _ => {}
        }
        let interim = matches!(r.event, DomainEvent::Interim { .. });
        if interim && e.tx.is_none() {
            return;
        }
        let r = Arc::new(r.clone());
        if !interim {
            e.history.push(r.clone());
        }
        if let Some(tx) = &e.tx {
            let _ = tx.send(r);
        }
    }

    /// Follows a conversation, if it is in memory.
    pub fn subscribe(&self, id: &str) -> Option<Subscription> {
        let mut g = self.convs.lock().ok()?;
        let e = g.get_mut(id)?;
        let rx = e.tx.get_or_insert_with(|| broadcast::channel(FOLLOW_BUFFER).0).subscribe();
        Some(Subscription { history: e.history.clone(), rx, ended: e.summary.ended })
    }

    /// Several instances: what tells a follower here that events of `id`
    /// were committed (by whichever instance handles it).
    pub fn follow_stored(&self, id: &str) -> Option<watch::Receiver<u64>> {
        let mut g = self.elsewhere.lock().ok()?;
        Some(g.entry(id.to_string()).or_insert_with(|| watch::channel(0).0).subscribe())
    }

    /// Several instances: events of `id` up to `n` are committed; `None`
    /// for every conversation (notifications may have been missed).
    pub fn committed(&self, id: Option<&str>, n: u64) {
        let Ok(mut g) = self.elsewhere.lock() else { return };
        g.retain(|_, tx| tx.receiver_count() > 0);
        for (conv, tx) in g.iter() {
            if id.is_none_or(|id| id == conv) {
                tx.send_replace(n);
            }
        }
    }

    /// Forgets a conversation (its worker has finished).
    pub fn remove(&self, id: &str) {
        if let Ok(mut g) = self.convs.lock() {
            g.remove(id);
        }
    }

    /// Conversations in memory, newest first.
    pub fn list(&self) -> Vec<ActiveConversation> {
        let Ok(g) = self.convs.lock() else { return Vec::new() };
        let mut v: Vec<_> = g.values().map(|e| e.summary.clone()).collect();
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        v
    }

    /// The summary of one conversation in memory.
    pub fn summary(&self, id: &str) -> Option<ActiveConversation> {
        self.convs.lock().ok()?.get(id).map(|e| e.summary.clone())
    }
}
