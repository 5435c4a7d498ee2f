//! The live event hub: every domain event of an active conversation is kept
//! (for replay) and broadcast (for followers), so `ivrx watch` first sees the
//! conversation so far and then follows it without a gap. The board stream
//! carries one row per conversation in memory (its snapshot, then each row
//! as it changes) for the supervisors' boards.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::session::{DomainEvent, Recorded, Role, Speaker, TransferStatus};

/// Caller scores kept per conversation, for the board's sparkline.
pub const RECENT_SCORES: usize = 24;

/// One active conversation, as listed by the admin API and shown on the
/// boards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActiveConversation {
    pub conversation_id: String,
    pub started_at: Option<String>,
    pub caller: Option<String>,
    pub caller_call_control_id: Option<String>,
    pub utterances: u32,
    pub last_score: Option<f64>,
    /// The policy's smoothed level.
    pub level: Option<f64>,
    /// The decision's reason, once made.
    pub decision: Option<String>,
    pub transfer_status: Option<String>,
    pub ended: bool,
    /// `ringing`, `ivr`, `transferring`, `with_agent` or `ended`.
    pub phase: String,
    /// The caller's last scores, oldest first (at most [`RECENT_SCORES`]).
    pub scores: VecDeque<f64>,
    /// The caller's last utterance, redacted as the store keeps it.
    pub last_utterance: Option<String>,
    /// Trackers heard from the caller, in the order first heard.
    pub trackers: Vec<String>,
    /// How much the call needs a supervisor's eye, 0 to 1: see [`ActiveConversation::risk_of`].
    pub risk: f64,
    /// When the event behind this row's last change happened, on the
    /// conversation's clock (RFC 3339).
    pub updated_at: Option<String>,
    /// When the server sent this row to the boards, on its wall clock (RFC 3339,
    /// milliseconds): how late a board is.
    pub sent_at: Option<String>,
}

impl ActiveConversation {
    /// The board's order: half of how far the smoothed level is below +1,
    /// plus a quarter for a tracker other than a buying signal heard, at
    /// most 1; a call with an agent counts half, an ended one nothing.
    pub fn risk_of(&self) -> f64 {
        if self.ended {
            return 0.0;
        }
        let level = (1.0 - self.level.unwrap_or(0.0)) / 2.0;
        let tracker = if self.trackers.iter().any(|t| t != "buying_signal") { 0.25 } else { 0.0 };
        let risk = (level + tracker).clamp(0.0, 1.0);
        if self.phase == "with_agent" {
            risk / 2.0
        } else {
            risk
        }
    }
}

/// One change of the board stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BoardChange {
    /// A conversation's row, new or changed.
    Call { call: Box<ActiveConversation> },
    /// A conversation left memory.
    Removed { conversation_id: String },
}

/// Board changes a lagging board may fall behind by (it then starts again
/// from a snapshot).
const BOARD_BUFFER: usize = 4096;

/// A board: every conversation in memory, then the changes.
pub struct BoardSubscription {
    /// The rows now, riskiest first.
    pub snapshot: Vec<ActiveConversation>,
    /// The changes after the snapshot.
    pub rx: broadcast::Receiver<Arc<BoardChange>>,
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
pub struct LiveHub {
    convs: Mutex<HashMap<String, Entry>>,
    /// Several instances: followers here of conversations another instance
    /// handles, told the last event number each checkpoint there committed.
    elsewhere: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Row changes, sent only while a board is attached.
    board: broadcast::Sender<Arc<BoardChange>>,
    /// Redact the caller's words on the board as the store does.
    redact_pii: bool,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(true)
    }
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
    /// A hub; with `redact_pii`, the board shows the caller's words redacted.
    pub fn new(redact_pii: bool) -> Self {
        Self {
            convs: Mutex::default(),
            elsewhere: Mutex::default(),
            board: broadcast::channel(BOARD_BUFFER).0,
            redact_pii,
        }
    }

    /// Updates a conversation's row with an event; false when the row is
    /// unchanged.
    fn update(&self, s: &mut ActiveConversation, r: &Recorded) -> bool {
        match &r.event {
            DomainEvent::CallStarted { from, call_control_id, .. } => {
                s.started_at = Some(r.at.to_rfc3339());
                s.caller = from.clone();
                s.caller_call_control_id = Some(call_control_id.clone());
                s.phase = "ringing".into();
            }
            DomainEvent::LegAnswered { role: Role::Caller, .. } if s.phase == "ringing" => s.phase = "ivr".into(),
            DomainEvent::Utterance { speaker: Speaker::Caller, text, .. } => {
                s.utterances += 1;
                let text = if self.redact_pii { crate::store::redact::redact(text) } else { text.into() };
                s.last_utterance = Some(text.into_owned());
            }
            DomainEvent::Scored { speaker: Speaker::Caller, score, policy, trackers, .. } => {
                s.last_score = Some(*score);
                s.level = policy.as_ref().map(|p| p.level);
                if s.scores.len() == RECENT_SCORES {
                    s.scores.pop_front();
                }
                s.scores.push_back(*score);
                for t in trackers {
                    if !s.trackers.contains(&t.tracker) {
                        s.trackers.push(t.tracker.clone());
                    }
                }
            }
            DomainEvent::Decision { decision, .. } => {
                s.decision = Some(decision.reason.as_str().to_string());
                s.phase = "transferring".into();
            }
            DomainEvent::Transfer { status, .. } if !status.is_conversation_status() => return false,
            DomainEvent::Transfer { status, .. } => {
                s.transfer_status = Some(status.as_str().to_string());
                s.phase = match status {
                    TransferStatus::Connected => "with_agent",
                    TransferStatus::Failed => "ivr",
                    _ => "transferring",
                }
                .into();
            }
            DomainEvent::CallEnded { .. } => {
                s.ended = true;
                s.phase = "ended".into();
            }
            _ => return false,
        }
        s.risk = s.risk_of();
        s.updated_at = Some(r.at.to_rfc3339());
        true
    }

    /// Publishes an event (and creates the conversation's entry on first use).
    pub fn publish(&self, r: &Recorded) {
        let Ok(mut g) = self.convs.lock() else { return };
        let e = g.entry(r.conversation_id.clone()).or_insert_with(|| Entry {
            tx: None,
            history: Vec::new(),
            summary: ActiveConversation { conversation_id: r.conversation_id.clone(), ..Default::default() },
        });
        if self.update(&mut e.summary, r) && self.board.receiver_count() > 0 {
            e.summary.sent_at = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let _ = self.board.send(Arc::new(BoardChange::Call { call: Box::new(e.summary.clone()) }));
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
            if g.remove(id).is_some() && self.board.receiver_count() > 0 {
                let _ = self.board.send(Arc::new(BoardChange::Removed { conversation_id: id.to_string() }));
            }
        }
    }

    /// Attaches a board: the rows now (riskiest first), then their changes,
    /// with nothing missed in between.
    pub fn board(&self) -> BoardSubscription {
        let g = self.convs.lock();
        let rx = self.board.subscribe();
        let mut snapshot: Vec<_> = g.map(|g| g.values().map(|e| e.summary.clone()).collect()).unwrap_or_default();
        snapshot.sort_by(|a, b| b.risk.total_cmp(&a.risk).then_with(|| a.started_at.cmp(&b.started_at)));
        BoardSubscription { snapshot, rx }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::{Label, TrackerHit};
    use crate::policy::PolicySnapshot;

    fn at(conv: &str, n: u64, event: DomainEvent) -> Recorded {
        Recorded { conversation_id: conv.into(), n, at: chrono::Utc::now(), offset_ms: n * 100, event }
    }

    fn started(conv: &str) -> Recorded {
        let event = DomainEvent::CallStarted {
            call_control_id: format!("v3:{conv}"),
            direction: "incoming".into(),
            from: Some("+15550100".into()),
            to: Some("+15550199".into()),
        };
        at(conv, 1, event)
    }

    fn said(conv: &str, n: u64, text: &str) -> Recorded {
        let event = DomainEvent::Utterance {
            seq: n as u32,
            speaker: Speaker::Caller,
            text: text.into(),
            confidence: None,
            caller_index: None,
        };
        at(conv, n, event)
    }

    fn scored(conv: &str, n: u64, score: f64, tracker: Option<&str>) -> Recorded {
        let trackers = tracker
            .map(|t| vec![TrackerHit { tracker: t.into(), phrase: "x".into(), matched: String::new() }])
            .unwrap_or_default();
        let policy = Some(PolicySnapshot { score, level: score, ..Default::default() });
        let event = DomainEvent::Scored {
            seq: n as u32,
            speaker: Speaker::Caller,
            score,
            label: Label::Neutral,
            trackers,
            engine: "local".into(),
            policy,
        };
        at(conv, n, event)
    }

    fn next(rx: &mut broadcast::Receiver<Arc<BoardChange>>) -> BoardChange {
        (*rx.try_recv().expect("a change")).clone()
    }

    #[test]
    fn a_board_gets_a_snapshot_riskiest_first_then_each_change() {
        let hub = LiveHub::new(true);
        for (conv, score) in [("calm", 0.6), ("upset", -0.7)] {
            hub.publish(&started(conv));
            hub.publish(&scored(conv, 2, score, None));
        }
        let mut board = hub.board();
        let order: Vec<_> = board.snapshot.iter().map(|c| c.conversation_id.as_str()).collect();
        assert_eq!(order, ["upset", "calm"]);
        assert!(board.snapshot[0].risk > board.snapshot[1].risk);

        hub.publish(&said("calm", 3, "my card is 4111 1111 1111 1111"));
        hub.publish(&at("calm", 4, DomainEvent::Interim { speaker: Speaker::Caller, text: "my".into() }));
        hub.publish(&scored("calm", 5, -0.9, Some("churn_risk")));
        let BoardChange::Call { call } = next(&mut board.rx) else { panic!("a row") };
        assert_eq!(call.last_utterance.as_deref(), Some("my card is [card]"), "redacted as stored");
        let BoardChange::Call { call } = next(&mut board.rx) else { panic!("a row") };
        assert_eq!(call.scores, [0.6, -0.9]);
        assert_eq!(call.trackers, ["churn_risk"]);
        assert_eq!(call.risk, 1.0);
        assert!(board.rx.try_recv().is_err(), "an interim transcript changes no row");

        hub.remove("upset");
        assert_eq!(next(&mut board.rx), BoardChange::Removed { conversation_id: "upset".into() });
    }

    #[test]
    fn rows_follow_the_phase_and_keep_the_last_scores() {
        let hub = LiveHub::new(false);
        hub.publish(&started("c"));
        assert_eq!(hub.summary("c").unwrap().phase, "ringing");
        hub.publish(&at("c", 2, DomainEvent::LegAnswered { role: Role::Caller, call_control_id: "v3:c".into() }));
        assert_eq!(hub.summary("c").unwrap().phase, "ivr");
        hub.publish(&said("c", 3, "call me on 555 010 0199"));
        assert_eq!(hub.summary("c").unwrap().last_utterance.as_deref(), Some("call me on 555 010 0199"));
        for n in 0..40 {
            hub.publish(&scored("c", 4 + n, n as f64 / 100.0, None));
        }
        let row = hub.summary("c").unwrap();
        assert_eq!(row.scores.len(), RECENT_SCORES);
        assert_eq!(row.scores.back(), Some(&0.39));
        let connected = DomainEvent::Transfer {
            attempt: 1,
            queue: "support".into(),
            target: "+15550111".into(),
            mode: crate::settings::TransferMode::Warm,
            status: TransferStatus::Connected,
            detail: None,
            agent_call_control_id: None,
        };
        hub.publish(&at("c", 50, connected));
        assert_eq!(hub.summary("c").unwrap().phase, "with_agent");
        hub.publish(&at("c", 51, DomainEvent::CallEnded { reason: "hangup".into() }));
        let row = hub.summary("c").unwrap();
        assert_eq!((row.phase.as_str(), row.risk), ("ended", 0.0));
    }

    #[test]
    fn without_a_board_nothing_is_sent() {
        let hub = LiveHub::default();
        hub.publish(&started("c"));
        let board = hub.board();
        drop(board);
        hub.publish(&scored("c", 2, -1.0, None));
        let mut late = hub.board();
        assert_eq!(late.snapshot[0].scores, [-1.0]);
        assert!(late.rx.try_recv().is_err());
    }
}
