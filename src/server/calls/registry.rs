//! The registry of conversations in progress: their workers' inboxes, the
//! legs that belong to each, and the calls to the Symbl dial-in number still
//! being identified. It routes a webhook to its conversation and answers id
//! lookups; the workers do the rest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use super::wait_lines::WaitLines;
use super::worker::{self, WorkerInbox, WorkerMsg};
use super::{sender, Shared};
use crate::server::symbl_link::DialIns;
use crate::session::{Input, LegTag, ManualTransfer, SymblInput, TransferRefused};
use crate::store::{ids, IdMatch};
use crate::telnyx::events::{Direction, Event};

/// Where a webhook goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To this conversation.
    To(String),
    /// To a conversation this webhook starts (a new inbound call).
    New(String),
    /// To the Symbl dial-in handling: a call to the Symbl dial-in number that
    /// has not said which conversation it belongs to yet.
    DialIn,
    /// Nowhere: not a call ivrx knows.
    Unrouted,
}

/// Why a manual transfer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// No conversation in progress has that id or call_control_id.
    #[error("no conversation in progress with id or call_control_id {0:?}")]
    NotFound(String),
    /// The session refused it.
    #[error("{0}")]
    Refused(#[from] TransferRefused),
    /// The worker did not answer.
    #[error("the conversation's worker is gone")]
    Gone,
    /// The conversation's inbox is full.
    #[error("{0}")]
    Busy(#[from] Busy),
    /// Several instances: the request is stored, but the conversation's
    /// owner did not answer in time; it still decides it when it can.
    #[error("the request is stored, but the call's owning instance has not answered within {} s; it decides it as soon as it can", .0.as_secs())]
    Unanswered(Duration),
}

/// Several instances: the longest wait for the owner's answer to a manual transfer.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(10);
/// How often the answer is looked for meanwhile without being told it was
/// committed (a notification may be lost with its connection).
const ANSWER_RECHECK: Duration = Duration::from_millis(500);

/// A conversation's inbox has no room for one more message from outside
/// (see [`INBOX`]): the message was not taken, and may be offered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the conversation's inbox is full; try again shortly")]
pub struct Busy;

/// Messages a conversation's inbox holds. A call brings a few webhooks a
/// second at most and its worker handles one in microseconds, so an inbox
/// this full means the worker is held up (reading a stored call back, say):
/// a webhook is then refused unacknowledged, and Telnyx delivers it again,
/// rather than queueing without limit.
pub const INBOX: usize = 256;

/// Of [`INBOX`], the room kept for the worker's own helpers (its command
/// sender, scorer and Symbl link), which wait for room rather than lose a
/// report: what they report on is what the worker asked of them, a few
/// commands and at most [`SYMBL_BACKLOG`](super::scoring::SYMBL_BACKLOG)
/// utterances at a time, so they seldom wait; the worker never waits for them.
pub const RESERVED_FOR_REPORTS: usize = 96;

/// Room held in a conversation's inbox for one message (see [`Calls::reserve`]).
#[derive(Debug)]
pub struct Slot(mpsc::OwnedPermit<WorkerMsg>);

impl Slot {
    /// Puts the message in the room held for it.
    pub fn send(self, msg: WorkerMsg) {
        self.0.send(msg);
    }
}

/// The registry of conversations in progress. Cheap to clone.
#[derive(Clone)]
pub struct Calls {
    shared: Arc<Shared>,
    /// Each running worker's inbox, by conversation id.
    workers: Arc<Mutex<HashMap<String, WorkerInbox>>>,
    /// The conversation of each known leg, by call_control_id (and call_leg_id).
    legs: Arc<Mutex<HashMap<String, String>>>,
    dial_ins: Arc<DialIns>,
    /// Who waits in each call queue.
    lines: Arc<WaitLines>,
}

impl Calls {
    /// An empty registry.
    pub fn new(shared: Shared) -> Self {
        let dial_ins = Arc::new(shared.engine.dial_ins());
        Self {
            shared: Arc::new(shared),
            workers: Arc::default(),
            legs: Arc::default(),
            dial_ins,
            lines: Arc::default(),
        }
    }

    /// What the workers share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The calls to the Symbl dial-in number and the codes conversations wait for.
    pub(super) fn dial_ins(&self) -> &Arc<DialIns> {
        &self.dial_ins
    }

    /// Conversations with a running worker.
    pub fn active_count(&self) -> usize {
        self.workers.lock().map(|g| g.len()).unwrap_or(0)
    }

    /// Decides which conversation an event belongs to, registering a new
    /// conversation for a new inbound call.
    pub fn route(&self, event: &Event) -> Route {
        if let Some(tag) = LegTag::decode(event.client_state()) {
            return Route::To(tag.conv);
        }
        let ccid = event.call_control_id();
        let Ok(mut legs) = self.legs.lock() else { return Route::Unrouted };
        // A leg is known by its call_control_id, or by its call_leg_id for the
        // events that have none (`call.recording.saved`).
        let leg_id = event.ids().and_then(|i| i.call_leg_id.as_deref());
        if let Some(conv) = ccid.or(leg_id).and_then(|c| legs.get(c)) {
            return Route::To(conv.clone());
        }
        if self.dial_ins.claims(event) {
            return Route::DialIn;
        }
        if let Event::CallInitiated(e) = event {
            let incoming = e.direction.as_ref().is_none_or(|d| *d == Direction::Incoming);
            if let (true, Some(ccid)) = (incoming, ccid) {
                let conv = e.ids.call_session_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                legs.insert(ccid.to_string(), conv.clone());
                return Route::New(conv);
            }
        }
        Route::Unrouted
    }

    /// Holds room for one message from outside (a webhook, a request) in a
    /// conversation's inbox, starting its worker if needed; [`Busy`] when the
    /// inbox is full but for the room kept for reports. A worker started for a
    /// conversation that is not `fresh` restores its stored state (after a
    /// restart). A worker leaving takes every message sent with a slot it
    /// handed out, so a message given to a [`Slot`] is never lost.
    pub fn reserve(&self, conv: &str, fresh: bool) -> Result<Slot, Busy> {
        let inbox = self.inbox(conv, fresh).ok_or(Busy)?;
        if inbox.capacity() <= RESERVED_FOR_REPORTS {
            return Err(Busy);
        }
        inbox.try_reserve_owned().map(Slot).map_err(|_| Busy)
    }

    /// Sends a message from outside to a conversation's worker (see [`Calls::reserve`]).
    pub fn dispatch(&self, conv: &str, msg: WorkerMsg) -> Result<(), Busy> {
        self.reserve(conv, false)?.send(msg);
        Ok(())
    }

    /// Hands a conversation's worker a message it must not miss (what
    /// Telnyx says of one of its legs), waiting in the background for room
    /// if need be, like the worker's own helpers.
    pub fn deliver(&self, conv: &str, msg: WorkerMsg) {
        let (calls, conv) = (self.clone(), conv.to_string());
        tokio::spawn(async move {
            // A worker that leaves in between takes no more; the next one does.
            let mut msg = msg;
            while let Some(inbox) = calls.inbox(&conv, false) {
                match inbox.send(msg).await {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(m)) => msg = m,
                }
                tokio::task::yield_now().await;
            }
        });
    }

    /// The inbox of `conv`'s worker, started if needed.
    fn inbox(&self, conv: &str, fresh: bool) -> Option<WorkerInbox> {
        let mut workers = self.workers.lock().ok()?;
        Some(match workers.get(conv) {
            Some(tx) => tx.clone(),
            None => self.start_worker(&mut workers, conv, fresh),
        })
    }

    /// Starts a worker for `conv`, registered under the held lock.
    fn start_worker(&self, workers: &mut HashMap<String, WorkerInbox>, conv: &str, fresh: bool) -> WorkerInbox {
        let (tx, rx) = mpsc::channel(INBOX);
        workers.insert(conv.to_string(), tx.clone());
        self.shared.metrics.set_active_calls(workers.len());
        tokio::spawn(worker::run(self.clone(), conv.to_string(), tx.clone(), rx, fresh));
        tx
    }

    /// Handles an event of a call to the Symbl dial-in number: answers it,
    /// reads its code, and hands it to its conversation (or hangs it up).
    pub fn dial_in(&self, event: &Event) {
        let step = self.dial_ins.handle(event);
        sender::send_detached(&self.shared.client, step.commands);
        if let Some((leg, conv)) = step.identified {
            self.register_leg(&leg.call_control_id, &conv);
            let arrived = SymblInput::LegArrived {
                call_control_id: leg.call_control_id,
                call_leg_id: leg.call_leg_id,
                call_session_id: leg.call_session_id,
                from: leg.from,
                to: leg.to,
                at: Utc::now(),
            };
            self.deliver(&conv, WorkerMsg::Input(Input::Symbl(arrived)));
        }
    }

    /// Finds the conversation for an id or a call_control_id.
    pub fn resolve(&self, id: &str) -> Option<String> {
        if self.workers.lock().ok()?.contains_key(id) {
            return Some(id.to_string());
        }
        self.legs.lock().ok()?.get(id).cloned()
    }

    /// The conversations in progress whose id, or one of whose legs'
    /// call_control_id, starts with `given` (see [`crate::store::ids`]); an
    /// exact id is [`Calls::resolve`]'s.
    pub fn starting_with(&self, given: &str) -> IdMatch {
        let mut found = match self.workers.lock() {
            Ok(w) => ids::starting_with(w.keys().map(String::as_str), given),
            Err(_) => Vec::new(),
        };
        if let Ok(legs) = self.legs.lock() {
            let ccids = ids::starting_with(legs.keys().map(String::as_str), given);
            found.extend(ccids.iter().filter_map(|c| legs.get(c).cloned()));
        }
        IdMatch::from_found(None, found)
    }

    /// Asks a conversation for a manual transfer.
    pub async fn manual_transfer(&self, id: &str, req: ManualTransfer) -> Result<String, ManualError> {
        if self.shared.ownership.is_some() {
            return self.manual_transfer_stored(id, req).await;
        }
        let conv = self.resolve(id).ok_or_else(|| ManualError::NotFound(id.to_string()))?;
        let (reply, rx) = oneshot::channel();
        self.dispatch(&conv, WorkerMsg::Manual { req, reply })?;
        rx.await.map_err(|_| ManualError::Gone)??;
        Ok(conv)
    }

    /// Several instances: stores the request for the conversation's owner,
    /// whichever instance it is, and waits a bounded time for its answer,
    /// which the owner commits with the decision.
    async fn manual_transfer_stored(&self, id: &str, req: ManualTransfer) -> Result<String, ManualError> {
        let store = &self.shared.store;
        let cluster = store.cluster().ok_or(ManualError::Gone)?;
        let not_found = || ManualError::NotFound(id.to_string());
        let conv = match self.resolve(id) {
            Some(conv) => conv,
            None => store.conversation_for_call(id).await.ok().flatten().unwrap_or_else(|| id.to_string()),
        };
        if !matches!(store.session(&conv).await, Ok(Some(_))) {
            return Err(not_found());
        }
        let body = serde_json::to_string(&req).map_err(|_| ManualError::Gone)?;
        // Told of the owner's checkpoints from before the request is stored.
        let mut committed = self.shared.live.follow_stored(&conv);
        let request = cluster.request(&conv, &body).await.map_err(|e| {
            tracing::warn!(conversation = %conv, error = %e, "cannot store a manual transfer");
            ManualError::Gone
        })?;
        self.wake_owner(&conv, WorkerMsg::Pending);
        let deadline = Instant::now() + ANSWER_WAIT;
        loop {
            if let Ok(Some(answer)) = cluster.take_answer(request).await {
                let outcome: Result<(), TransferRefused> =
                    serde_json::from_str(&answer).map_err(|_| ManualError::Gone)?;
                return outcome.map(|()| conv).map_err(ManualError::from);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ManualError::Unanswered(ANSWER_WAIT));
            }
            let wait = ANSWER_RECHECK.min(deadline - now);
            match committed.as_mut() {
                Some(c) => drop(tokio::time::timeout(wait, c.changed()).await),
                None => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Several instances: once work for `conv` is stored (which woke every
    /// instance), hands `msg` to a worker here when this instance owns the
    /// call or may take it.
    pub fn wake_owner(&self, conv: &str, msg: WorkerMsg) {
        let here = self.resolve(conv).is_some_and(|c| c == conv);
        let elsewhere = self.shared.ownership.as_ref().is_some_and(|o| o.is_elsewhere(conv));
        if here || !elsewhere {
            // It is stored already: a full inbox only delays it.
            self.deliver(conv, msg);
        }
    }

    /// Places an outbound call that goes through the IVR; returns the conversation id.
    pub fn dial_out(&self, to: String, from: String) -> String {
        let conv = uuid::Uuid::new_v4().to_string();
        // A new worker's inbox is empty.
        if let Ok(slot) = self.reserve(&conv, true) {
            slot.send(WorkerMsg::DialOut { to, from });
        }
        conv
    }

    /// Starts workers for every stored conversation that had not ended (after a
    /// restart). Returns how many.
    pub async fn restore(&self) -> usize {
        let active = match self.shared.store.active_sessions().await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot read stored sessions; calls in progress are not resumed");
                return 0;
            }
        };
        let n = active.len();
        for conv in active {
            let Ok(mut workers) = self.workers.lock() else { break };
            if !workers.contains_key(&conv) {
                self.start_worker(&mut workers, &conv, false);
            }
        }
        if n > 0 {
            tracing::info!(conversations = n, "resumed calls in progress from the store");
        }
        n
    }

    /// Under several instances: tells this instance's worker for `conv`, if
    /// there is one, that webhooks wait in the store. False when there is none.
    /// A full inbox needs no wake-up: the worker looks in the store after
    /// what it holds, and at every lease renewal.
    pub fn poke(&self, conv: &str) -> bool {
        let Ok(workers) = self.workers.lock() else { return false };
        workers
            .get(conv)
            .is_some_and(|tx| !matches!(tx.try_send(WorkerMsg::Pending), Err(mpsc::error::TrySendError::Closed(_))))
    }

    /// Under several instances: [`Calls::poke`]s every worker of this instance.
    pub fn poke_all(&self) {
        if let Ok(workers) = self.workers.lock() {
            for tx in workers.values() {
                let _ = tx.try_send(WorkerMsg::Pending);
            }
        }
    }

    /// Routes a leg's webhooks to `conv` from now on.
    pub(crate) fn register_leg(&self, ccid: &str, conv: &str) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(ccid.to_string(), conv.to_string());
        }
    }

    /// A worker leaves: no slot in its inbox is handed out after this
    /// returns (it then takes what was sent, or is sent with a slot held, before).
    pub(super) fn leave(&self, conv: &str) {
        if let Ok(mut workers) = self.workers.lock() {
            workers.remove(conv);
            self.shared.metrics.set_active_calls(workers.len());
        }
    }

    /// What a caller's `call.enqueued` / `call.dequeued` says of the line in
    /// its queue; a caller who becomes first in line is told so.
    pub(super) fn queue_moved(&self, conv: &str, event: &Event, at: chrono::DateTime<Utc>) {
        match event {
            Event::CallEnqueued(e) => {
                // Telnyx may have counted callers who left before this webhook
                // was handled: first in the line here, the caller is told so.
                let ahead = e.current_position.is_some_and(|p| p > 1);
                if e.queue.as_deref().is_some_and(|q| self.lines.joined(q, conv, at)) && ahead {
                    self.tell_head(conv);
                }
            }
            Event::CallDequeued(e) => {
                if let Some(head) = e.queue.as_deref().and_then(|q| self.lines.left(q, conv)) {
                    self.tell_head(&head);
                }
            }
            _ => {}
        }
    }

    /// A restored caller who waits in `queue` since `since` takes their place
    /// in line again; told when they are first and did not know.
    pub(super) fn rejoin_line(&self, conv: &str, queue: &str, since: chrono::DateTime<Utc>, knew_head: bool) {
        if self.lines.joined(queue, conv, since) && !knew_head {
            self.tell_head(conv);
        }
    }

    /// Tells a conversation its caller is first in its queue's line. Under
    /// several instances only a conversation this instance runs is told.
    fn tell_head(&self, conv: &str) {
        let here = self.workers.lock().is_ok_and(|w| w.contains_key(conv));
        if here || self.shared.ownership.is_none() {
            self.deliver(conv, WorkerMsg::Input(Input::QueueHead { at: Utc::now() }));
        }
    }

    /// Forgets the legs of a conversation that has left, and its place in
    /// any queue's line.
    pub(super) fn forget(&self, conv: &str, legs: &[String]) {
        for head in self.lines.ended(conv) {
            self.tell_head(&head);
        }
        if let Ok(mut g) = self.legs.lock() {
            for l in legs {
                if g.get(l).map(String::as_str) == Some(conv) {
                    g.remove(l);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::LocalEngine;
    use crate::server::calls::Engine;

    fn answered() -> WorkerMsg {
        WorkerMsg::Answered { command_id: "c1-1".into() }
    }

    /// On this single-threaded runtime the worker runs only when the test
    /// yields: the inbox fills up exactly.
    #[tokio::test]
    async fn a_full_inbox_refuses_outside_messages_and_keeps_room_for_reports() {
        let dir = tempfile::tempdir().unwrap();
        let calls =
            Calls::new(super::super::tests::shared(Engine::Local(Arc::new(LocalEngine::default())), dir.path()));
        let mut held = Vec::new();
        while let Ok(slot) = calls.reserve("c1", true) {
            held.push(slot);
        }
        assert_eq!(held.len(), INBOX - RESERVED_FOR_REPORTS);
        assert_eq!(calls.dispatch("c1", answered()), Err(Busy));
        // The worker's helpers still get in, up to the room kept for them.
        let inbox = calls.inbox("c1", false).unwrap();
        for _ in 0..RESERVED_FOR_REPORTS {
            inbox.try_send(answered()).expect("room for reports");
        }
        assert!(inbox.try_send(answered()).is_err(), "bounded");
        // Messages sent with the slots held are all taken; once the worker has
        // run, there is room again.
        for slot in held {
            slot.send(answered());
        }
        assert_eq!(calls.dispatch("c1", answered()), Err(Busy));
        tokio::task::yield_now().await;
        assert_eq!(calls.dispatch("c1", answered()), Ok(()));
    }
}
