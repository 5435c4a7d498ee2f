//! The live event hub: every domain event of an active conversation is kept
//! (for replay) and broadcast (for followers), so `ivrx watch` first sees the
//! conversation so far and then follows it without a gap. The board stream
//! carries one row per conversation in memory (its snapshot, then each row
//! as it changes) for the supervisors' boards.
//!
//! The calls' path only updates a row's raw fields and, while a board is
//! attached, marks the row changed. The board feed, a task of its own,
//! redacts and serialises each changed row once for every board, however
//! many times it changed since its last batch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch, Notify};

use crate::session::{DomainEvent, Recorded, Role, Speaker, TransferStatus};

/// Caller scores kept per conversation, for the board's sparkline.
pub const RECENT_SCORES: usize = 24;

/// Where a call is, as the boards show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Ringing,
    /// Answered, in the IVR.
    Ivr,
    /// A transfer decided or under way.
    Transferring,
    /// Waiting in a call queue for a free agent.
    Queued,
    WithAgent,
    Ended,
}

impl Phase {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ringing => "ringing",
            Phase::Ivr => "ivr",
            Phase::Transferring => "transferring",
            Phase::Queued => "queued",
            Phase::WithAgent => "with_agent",
            Phase::Ended => "ended",
        }
    }
}

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
    pub phase: Phase,
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
    /// When the server took in the event behind this row's last change, on
    /// its wall clock (RFC 3339, milliseconds): how late a board is.
    pub changed_at: Option<String>,
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
        if self.phase == Phase::WithAgent {
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

impl BoardChange {
    /// Its event name on the board stream.
    pub fn kind(&self) -> &'static str {
        match self {
            BoardChange::Call { .. } => "call",
            BoardChange::Removed { .. } => "removed",
        }
    }
}

/// A batch of board changes as sent to every board: each changed row
/// serialised once, the whole batch written out once as Server-Sent Events
/// (`event: call` or `removed`, one `data:` line each), and shared by every
/// board's connection.
pub type BoardBatch = axum::body::Bytes;

/// Appends `change` to `out` as one Server-Sent Event.
fn push_event(out: &mut Vec<u8>, change: &BoardChange) {
    let start = out.len();
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(change.kind().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Compact JSON has no line break (those in strings are escaped): one data line.
    if serde_json::to_writer(&mut *out, change).is_ok() {
        out.extend_from_slice(b"\n\n");
    } else {
        out.truncate(start);
    }
}

/// Batches a lagging board may fall behind by (it then starts again from a
/// snapshot): at least 6 s of changes, batches being at least
/// [`BOARD_BATCH`] apart.
const BOARD_BUFFER: usize = 256;

/// The board feed sends its changes in batches at most this often: a row
/// that changes several times meanwhile is sent once.
const BOARD_BATCH: Duration = Duration::from_millis(25);

/// How often the board feed looks whether any board is left, with no change.
const BOARD_IDLE: Duration = Duration::from_secs(60);

/// A board: every conversation in memory, then the changes.
pub struct BoardSubscription {
    /// The rows now, riskiest first.
    pub snapshot: Vec<ActiveConversation>,
    /// The changes after the snapshot.
    pub rx: broadcast::Receiver<BoardBatch>,
}

/// Events a lagging follower may fall behind by.
const FOLLOW_BUFFER: usize = 1024;

struct Entry {
    /// Created by the first follower: most conversations are never followed,
    /// and the channel's buffer is allocated in full up front.
    tx: Option<broadcast::Sender<Arc<Recorded>>>,
    history: Vec<Arc<Recorded>>,
    /// The row, its caller's words not yet redacted and its times not yet
    /// written out (see [`Rows::render`]).
    summary: ActiveConversation,
    /// When the last event behind the row happened.
    updated: Option<DateTime<Utc>>,
    /// When the server took that event in.
    changed: Option<DateTime<Utc>>,
}

/// The conversations in memory, shared with the board feed.
struct Rows {
    convs: Mutex<HashMap<String, Entry>>,
    /// Redact the caller's words on the board as the store does.
    redact_pii: bool,
}

impl Rows {
    /// Rows of `ids` (all with `None`) as shown: the caller's words redacted,
    /// times written out. Done off the calls' path, outside the lock.
    fn rendered(&self, ids: Option<&HashSet<String>>) -> Vec<ActiveConversation> {
        let raw: Vec<_> = {
            let Ok(g) = self.convs.lock() else { return Vec::new() };
            let row = |e: &Entry| (e.summary.clone(), e.updated, e.changed);
            match ids {
                None => g.values().map(row).collect(),
                Some(ids) => ids.iter().filter_map(|id| g.get(id)).map(row).collect(),
            }
        };
        raw.into_iter().map(|(row, updated, changed)| self.render(row, updated, changed)).collect()
    }

    fn render(
        &self,
        mut row: ActiveConversation,
        updated: Option<DateTime<Utc>>,
        changed: Option<DateTime<Utc>>,
    ) -> ActiveConversation {
        if self.redact_pii {
            if let Some(said) = &mut row.last_utterance {
                if let std::borrow::Cow::Owned(redacted) = crate::store::redact::redact(said) {
                    *said = redacted;
                }
            }
        }
        row.updated_at = updated.map(|t| t.to_rfc3339());
        row.changed_at = changed.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        row
    }
}

/// What the calls' path hands the board feed.
#[derive(Default)]
struct FeedState {
    /// The feed's task is running.
    running: bool,
    /// Conversations changed (or removed) since the last batch.
    changed: HashSet<String>,
}

/// The board feed: rows changed while a board is attached, redacted and
/// serialised once by the feed's own task and broadcast to every board.
struct BoardFeed {
    state: Mutex<FeedState>,
    wake: Notify,
    tx: broadcast::Sender<BoardBatch>,
}

impl BoardFeed {
    /// Marks a row changed, if a board is attached (the calls' path).
    fn changed(&self, id: &str) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        if let Ok(mut s) = self.state.lock() {
            if !s.changed.contains(id) {
                s.changed.insert(id.to_string());
            }
        }
        self.wake.notify_one();
    }

    /// Starts the feed's task unless it is running (a board has just subscribed).
    fn start(self: &Arc<Self>, rows: &Arc<Rows>) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.running {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        s.running = true;
        runtime.spawn(Arc::clone(self).run(Arc::clone(rows)));
    }

    /// Sends the changed rows in batches until no board is left.
    async fn run(self: Arc<Self>, rows: Arc<Rows>) {
        loop {
            let _ = tokio::time::timeout(BOARD_IDLE, self.wake.notified()).await;
            let changed = {
                let Ok(mut s) = self.state.lock() else { return };
                if self.tx.receiver_count() == 0 {
                    s.running = false;
                    s.changed.clear();
                    return;
                }
                std::mem::take(&mut s.changed)
            };
            if changed.is_empty() {
                continue;
            }
            let mut gone = changed.clone();
            let mut batch = Vec::with_capacity(changed.len() * 768);
            for row in rows.rendered(Some(&changed)) {
                gone.remove(&row.conversation_id);
                push_event(&mut batch, &BoardChange::Call { call: Box::new(row) });
            }
            for conversation_id in gone {
                push_event(&mut batch, &BoardChange::Removed { conversation_id });
            }
            let _ = self.tx.send(BoardBatch::from(batch));
            tokio::time::sleep(BOARD_BATCH).await;
        }
    }
}

/// The hub. Cheap to share.
pub struct LiveHub {
    rows: Arc<Rows>,
    /// Several instances: followers here of conversations another instance
    /// handles, told the last event number each checkpoint there committed.
    elsewhere: Mutex<HashMap<String, watch::Sender<u64>>>,
    board: Arc<BoardFeed>,
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

/// Updates a conversation's row with an event (the caller's words kept as
/// said: they are redacted when rendered); false when the row is unchanged.
fn update(s: &mut ActiveConversation, r: &Recorded) -> bool {
    match &r.event {
        DomainEvent::CallStarted { from, call_control_id, .. } => {
            s.started_at = Some(r.at.to_rfc3339());
            s.caller = from.clone();
            s.caller_call_control_id = Some(call_control_id.clone());
            s.phase = Phase::Ringing;
        }
        DomainEvent::LegAnswered { role: Role::Caller, .. } if s.phase == Phase::Ringing => s.phase = Phase::Ivr,
        DomainEvent::Utterance { speaker: Speaker::Caller, text, .. } => {
            s.utterances += 1;
            let said = s.last_utterance.get_or_insert_with(String::new);
            said.clear();
            said.push_str(text);
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
            s.phase = Phase::Transferring;
        }
        DomainEvent::Transfer { status, .. } if !status.is_conversation_status() => return false,
        DomainEvent::Transfer { status, .. } => {
            s.transfer_status = Some(status.as_str().to_string());
            s.phase = match status {
                TransferStatus::Connected => Phase::WithAgent,
                TransferStatus::Failed => Phase::Ivr,
                TransferStatus::Queued => Phase::Queued,
                _ => Phase::Transferring,
            };
        }
        DomainEvent::CallEnded { .. } => {
            s.ended = true;
            s.phase = Phase::Ended;
        }
        _ => return false,
    }
    s.risk = s.risk_of();
    true
}

impl LiveHub {
    /// A hub; with `redact_pii`, the board shows the caller's words redacted.
    pub fn new(redact_pii: bool) -> Self {
        Self {
            rows: Arc::new(Rows { convs: Mutex::default(), redact_pii }),
            elsewhere: Mutex::default(),
            board: Arc::new(BoardFeed {
                state: Mutex::default(),
                wake: Notify::new(),
                tx: broadcast::channel(BOARD_BUFFER).0,
            }),
        }
    }

    /// Publishes an event (and creates the conversation's entry on first use).
    pub fn publish(&self, r: &Recorded) {
        let Ok(mut g) = self.rows.convs.lock() else { return };
        let e = g.entry(r.conversation_id.clone()).or_insert_with(|| Entry {
            tx: None,
            history: Vec::new(),
            summary: ActiveConversation { conversation_id: r.conversation_id.clone(), ..Default::default() },
            updated: None,
            changed: None,
        });
        if update(&mut e.summary, r) {
            e.updated = Some(r.at);
            e.changed = Some(Utc::now());
            self.board.changed(&r.conversation_id);
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
        let mut g = self.rows.convs.lock().ok()?;
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
        if let Ok(mut g) = self.rows.convs.lock() {
            if g.remove(id).is_some() {
                self.board.changed(id);
            }
        }
    }

    /// Attaches a board: the rows now (riskiest first), then their changes,
    /// with nothing missed in between (a row may come again unchanged).
    /// Needs a Tokio runtime: the feed is a task of its own.
    pub fn board(&self) -> BoardSubscription {
        // Subscribed before the snapshot is read: a change after is sent too.
        let rx = self.board.tx.subscribe();
        self.board.start(&self.rows);
        let mut snapshot = self.rows.rendered(None);
        snapshot.sort_by(|a, b| b.risk.total_cmp(&a.risk).then_with(|| a.started_at.cmp(&b.started_at)));
        BoardSubscription { snapshot, rx }
    }

    /// Conversations in memory, newest first.
    pub fn list(&self) -> Vec<ActiveConversation> {
        let mut v = self.rows.rendered(None);
        v.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        v
    }

    /// The summary of one conversation in memory.
    pub fn summary(&self, id: &str) -> Option<ActiveConversation> {
        self.rows.rendered(Some(&HashSet::from([id.to_string()]))).pop()
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

    /// The changes of the next batch, read back from its Server-Sent Events.
    async fn next(rx: &mut broadcast::Receiver<BoardBatch>) -> Vec<BoardChange> {
        let batch = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a batch").unwrap();
        let text = std::str::from_utf8(&batch).unwrap();
        assert!(text.ends_with("\n\n"), "{text}");
        text.trim_end()
            .split("\n\n")
            .map(|event| {
                let (kind, data) = event.split_once('\n').unwrap();
                assert!(!data.contains('\n'), "one data line: {event}");
                let change: BoardChange = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(kind, format!("event: {}", change.kind()));
                change
            })
            .collect()
    }

    #[tokio::test]
    async fn a_board_gets_a_snapshot_riskiest_first_then_each_change_once() {
        let hub = LiveHub::new(true);
        for (conv, score) in [("calm", 0.6), ("upset", -0.7)] {
            hub.publish(&started(conv));
            hub.publish(&scored(conv, 2, score, None));
        }
        let mut board = hub.board();
        let order: Vec<_> = board.snapshot.iter().map(|c| c.conversation_id.as_str()).collect();
        assert_eq!(order, ["upset", "calm"]);
        assert!(board.snapshot[0].risk > board.snapshot[1].risk);

        // Two changes before the feed's next batch: the row is sent once, with both.
        hub.publish(&said("calm", 3, "my card is 4111 1111 1111 1111"));
        hub.publish(&scored("calm", 5, -0.9, Some("churn_risk")));
        let mut batch = next(&mut board.rx).await;
        assert_eq!(batch.len(), 1, "{batch:?}");
        let Some(BoardChange::Call { call }) = batch.pop() else { panic!("a row") };
        assert_eq!(call.last_utterance.as_deref(), Some("my card is [card]"), "redacted as stored");
        assert_eq!(call.scores, [0.6, -0.9]);
        assert_eq!(call.trackers, ["churn_risk"]);
        assert_eq!(call.risk, 1.0);
        assert!(call.changed_at.is_some() && call.updated_at.is_some());

        // An interim transcript changes no row: the next change is the removal.
        hub.publish(&at("calm", 6, DomainEvent::Interim { speaker: Speaker::Caller, text: "my".into() }));
        hub.remove("upset");
        assert_eq!(next(&mut board.rx).await, [BoardChange::Removed { conversation_id: "upset".into() }]);
        assert_eq!(hub.list()[0].last_utterance.as_deref(), Some("my card is [card]"));
    }

    #[tokio::test]
    async fn a_batch_carries_every_changed_row_once_in_one_piece() {
        let hub = LiveHub::new(false);
        let mut board = hub.board();
        // Three rows changed, one of them twice, before the feed's next batch.
        for conv in ["a", "b", "c"] {
            hub.publish(&started(conv));
        }
        hub.publish(&said("b", 2, "line one\nline two"));
        let mut ids: Vec<String> = Vec::new();
        while ids.len() < 3 {
            for change in next(&mut board.rx).await {
                let BoardChange::Call { call } = change else { panic!("a row") };
                assert!(!ids.contains(&call.conversation_id), "{} sent twice", call.conversation_id);
                if call.conversation_id == "b" {
                    assert_eq!(call.last_utterance.as_deref(), Some("line one\nline two"));
                }
                ids.push(call.conversation_id);
            }
        }
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn rows_follow_the_phase_and_keep_the_last_scores() {
        let hub = LiveHub::new(false);
        hub.publish(&started("c"));
        assert_eq!(hub.summary("c").unwrap().phase, Phase::Ringing);
        hub.publish(&at("c", 2, DomainEvent::LegAnswered { role: Role::Caller, call_control_id: "v3:c".into() }));
        assert_eq!(hub.summary("c").unwrap().phase, Phase::Ivr);
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
        assert_eq!(hub.summary("c").unwrap().phase, Phase::WithAgent);
        hub.publish(&at("c", 51, DomainEvent::CallEnded { reason: "hangup".into() }));
        let row = hub.summary("c").unwrap();
        assert_eq!((row.phase, row.risk), (Phase::Ended, 0.0));
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["phase"], "ended", "serialised as before");
        for p in [Phase::Ringing, Phase::Ivr, Phase::Transferring, Phase::Queued, Phase::WithAgent, Phase::Ended] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
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
