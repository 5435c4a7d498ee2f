//! Conversations in progress: routing webhooks to them, one worker task per
//! conversation (so events of one call are handled in order while different
//! calls run in parallel), and one ordered command sender per conversation.
//!
//! After each batch of inputs a worker checkpoints atomically: the domain
//! events, the session's new state and the ids of the webhooks it processed.
//! A worker started for a conversation that already has stored state (after a
//! restart) restores the snapshot, sends again the commands it had decided on
//! that Telnyx had not answered (see [`outbox`](super::outbox)), and replays
//! the webhooks that were acknowledged but not yet processed; command ids are
//! deterministic, so a command that had already gone out is ignored by Telnyx
//! as a repeat.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use super::live::LiveHub;
use super::metrics::Metrics;
use super::outbox::{self, Outbox};
use super::symbl_link::{DialIns, LinkContext, PstnLink, SymblEvent};
use crate::intel::{Score, Scorer};
use crate::session::{
    Command, DomainEvent, Effect, Input, LegTag, ManualTransfer, Recorded, Request, Session, SessionSettings,
    SymblInput, TransferRefused,
};
use crate::store::{Snapshot, Store, WriteOp};
use crate::symbl::{SymblCall, SymblEngine};
use crate::telnyx::events::{Direction, Envelope, Event};
use crate::telnyx::TelnyxClient;

/// A message for a conversation's worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// A verified, de-duplicated webhook.
    Webhook {
        /// The event.
        event: Box<Event>,
        /// `data.id`.
        event_id: String,
        /// `data.occurred_at`, parsed.
        occurred_at: Option<DateTime<Utc>>,
        /// When the server received it.
        received_at: DateTime<Utc>,
        /// When the server received it (monotonic, for latency).
        received: Instant,
    },
    /// Another input (a failed command).
    Input(Input),
    /// A manual transfer request.
    Manual { req: ManualTransfer, reply: oneshot::Sender<Result<(), TransferRefused>> },
    /// Place an outbound call into the IVR.
    DialOut { to: String, from: String },
    /// An external engine scored an utterance.
    Scored { seq: u32, score: Score },
    /// An external engine could not score an utterance; the call falls back.
    ScoreFailed { seq: u32, text: String, error: String },
    /// Symbl in PSTN mode: its side of the call.
    Symbl(SymblEvent),
    /// Telnyx answered a command (or it failed for good): it leaves the outbox.
    Answered { command_id: String },
}

/// How utterances are scored.
#[derive(Clone)]
pub enum Engine {
    /// A synchronous engine with no I/O (the local engine): scored inline.
    Local(Arc<dyn Scorer>),
    /// Symbl (text mode): one conversation per call, scored in order with a
    /// deadline; on any failure the call falls back to `local` for good.
    Symbl {
        /// The Symbl engine.
        symbl: SymblEngine,
        /// The fallback.
        local: Arc<dyn Scorer>,
        /// Longest wait for one score.
        deadline: Duration,
    },
    /// Symbl (PSTN mode): Symbl dials into a conference with the caller and
    /// its transcripts are the caller's utterances (see [`super::symbl_link`]); on
    /// failure the call falls back to Telnyx transcription and `local`.
    SymblPstn {
        /// The Symbl engine.
        symbl: SymblEngine,
        /// The fallback, and the trackers run on Symbl's transcripts.
        local: Arc<dyn Scorer>,
        /// Longest wait for one score.
        deadline: Duration,
        /// The number Symbl dials (reserved for it).
        dial_in: String,
        /// How long Symbl has to call in and press its code once asked.
        join_timeout: Duration,
        /// How long Symbl's answered leg has to press its code.
        code_timeout: Duration,
    },
}

impl Engine {
    fn local(&self) -> &Arc<dyn Scorer> {
        match self {
            Engine::Local(l) => l,
            Engine::Symbl { local, .. } | Engine::SymblPstn { local, .. } => local,
        }
    }

    /// The number Symbl dials, in PSTN mode.
    pub fn dial_in(&self) -> Option<&str> {
        match self {
            Engine::SymblPstn { dial_in, .. } => Some(dial_in),
            _ => None,
        }
    }

    /// The calls to the dial-in number this engine waits for (none unless PSTN mode).
    fn dial_ins(&self) -> DialIns {
        match self {
            Engine::SymblPstn { dial_in, code_timeout, .. } => {
                DialIns::new(Some(dial_in.clone()), u64::try_from(code_timeout.as_millis()).unwrap_or(u64::MAX))
            }
            _ => DialIns::default(),
        }
    }
}

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

/// What the workers share.
pub struct Shared {
    /// Session settings.
    pub settings: Arc<SessionSettings>,
    /// The Telnyx (or sandbox) API client.
    pub client: TelnyxClient,
    /// The engine.
    pub engine: Engine,
    /// The store.
    pub store: Store,
    /// The live event hub.
    pub live: Arc<LiveHub>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long an ended conversation's worker waits for late webhooks.
    pub grace: Duration,
}

/// The registry of conversations in progress. Cheap to clone.
#[derive(Clone)]
pub struct Calls {
    shared: Arc<Shared>,
    workers: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<WorkerMsg>>>>,
    legs: Arc<Mutex<HashMap<String, String>>>,
    dial_ins: Arc<DialIns>,
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
}

impl Calls {
    /// An empty registry.
    pub fn new(shared: Shared) -> Self {
        let dial_ins = Arc::new(shared.engine.dial_ins());
        Self { shared: Arc::new(shared), workers: Arc::default(), legs: Arc::default(), dial_ins }
    }

    /// What the workers share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
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

    /// Sends a message to a conversation's worker, starting one if needed. A
    /// worker for a conversation that may have stored state (after a restart)
    /// restores it; `fresh` says the conversation has just begun.
    pub fn dispatch(&self, conv: &str, msg: WorkerMsg) {
        self.dispatch_to(conv, msg, false)
    }

    /// Like [`Calls::dispatch`], for a conversation that starts with `msg`.
    pub fn dispatch_new(&self, conv: &str, msg: WorkerMsg) {
        self.dispatch_to(conv, msg, true)
    }

    fn dispatch_to(&self, conv: &str, msg: WorkerMsg, fresh: bool) {
        let Ok(mut workers) = self.workers.lock() else { return };
        let tx = match workers.get(conv) {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                workers.insert(conv.to_string(), tx.clone());
                self.shared.metrics.set_active_calls(workers.len());
                tokio::spawn(run_worker(self.clone(), conv.to_string(), tx.clone(), rx, fresh));
                tx
            }
        };
        // Sent under the lock: a worker removes itself under the same lock and
        // then drains its queue, so nothing sent here is lost.
        let _ = tx.send(msg);
    }

    /// Handles an event of a call to the Symbl dial-in number: answers it,
    /// reads its code, and hands it to its conversation (or hangs it up).
    pub fn dial_in(&self, event: &Event) {
        let step = self.dial_ins.handle(event);
        if !step.commands.is_empty() {
            let client = self.shared.client.clone();
            tokio::spawn(async move {
                for cmd in step.commands {
                    let (Request::Action(action), Some(ccid)) = (&cmd.request, &cmd.call_control_id) else { continue };
                    if let Err(e) = client.action(ccid, action).await {
                        if !e.is_call_gone() {
                            tracing::warn!(action = action.name(), error = %e, "command to Symbl's dial-in leg failed");
                        }
                    }
                }
            });
        }
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
            self.dispatch(&conv, WorkerMsg::Input(Input::Symbl(arrived)));
        }
    }

    /// Finds the conversation for an id or a call_control_id.
    pub fn resolve(&self, id: &str) -> Option<String> {
        if self.workers.lock().ok()?.contains_key(id) {
            return Some(id.to_string());
        }
        self.legs.lock().ok()?.get(id).cloned()
    }

    /// Asks a conversation for a manual transfer.
    pub async fn manual_transfer(&self, id: &str, req: ManualTransfer) -> Result<String, ManualError> {
        let conv = self.resolve(id).ok_or_else(|| ManualError::NotFound(id.to_string()))?;
        let (reply, rx) = oneshot::channel();
        self.dispatch(&conv, WorkerMsg::Manual { req, reply });
        rx.await.map_err(|_| ManualError::Gone)??;
        Ok(conv)
    }

    /// Places an outbound call that goes through the IVR; returns the conversation id.
    pub fn dial_out(&self, to: String, from: String) -> String {
        let conv = uuid::Uuid::new_v4().to_string();
        self.dispatch_new(&conv, WorkerMsg::DialOut { to, from });
        conv
    }

    /// Starts workers for every stored conversation that had not ended (after a
    /// restart). Returns how many.
    pub async fn restore(&self) -> usize {
        let reader = self.shared.store.reader();
        let active = tokio::task::spawn_blocking(move || reader.active_snapshots()).await;
        let active = match active {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read stored sessions; calls in progress are not resumed");
                return 0;
            }
            Err(_) => return 0,
        };
        let n = active.len();
        for (conv, _) in active {
            let Ok(mut workers) = self.workers.lock() else { break };
            if workers.contains_key(&conv) {
                continue;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            workers.insert(conv.clone(), tx.clone());
            tokio::spawn(run_worker(self.clone(), conv, tx, rx, false));
        }
        if n > 0 {
            tracing::info!(conversations = n, "resumed calls in progress from the store");
        }
        n
    }

    fn register_leg(&self, ccid: &str, conv: &str) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.insert(ccid.to_string(), conv.to_string());
        }
    }

    fn forget(&self, conv: &str, legs: &[String]) {
        if let Ok(mut g) = self.legs.lock() {
            for l in legs {
                if g.get(l).map(String::as_str) == Some(conv) {
                    g.remove(l);
                }
            }
        }
    }
}

/// One conversation's worker.
struct Worker {
    calls: Calls,
    session: Session,
    sender: mpsc::UnboundedSender<(Command, Option<Instant>)>,
    pending: Vec<Recorded>,
    /// Events for live followers, published once they are on their way to
    /// the store: whoever sees a call end can then read the end from it.
    unpublished: Vec<Recorded>,
    processed: Vec<String>,
    /// Commands sent but not answered yet (saved with each checkpoint).
    outbox: Outbox,
    replayed: HashSet<String>,
    legs: Vec<String>,
    last_at: DateTime<Utc>,
    self_tx: mpsc::UnboundedSender<WorkerMsg>,
    /// The external engine's queue for this call, once started.
    external: Option<mpsc::UnboundedSender<(u32, String)>>,
    symbl_call: Option<SymblCall>,
    /// True once the external engine failed for this call (or while replaying).
    local_only: bool,
    /// PSTN mode: the call's link to Symbl.
    pstn: Option<PstnLink>,
}

async fn run_worker(
    calls: Calls,
    conv: String,
    self_tx: mpsc::UnboundedSender<WorkerMsg>,
    mut rx: mpsc::UnboundedReceiver<WorkerMsg>,
    fresh: bool,
) {
    let shared = calls.shared.clone();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    tokio::spawn(run_sender(shared.clone(), cmd_rx, self_tx.clone()));
    let mut w = Worker {
        calls: calls.clone(),
        session: Session::new(conv.clone(), shared.settings.clone()),
        sender: cmd_tx,
        pending: Vec::new(),
        unpublished: Vec::new(),
        processed: Vec::new(),
        outbox: Outbox::default(),
        replayed: HashSet::new(),
        legs: Vec::new(),
        last_at: Utc::now(),
        self_tx,
        external: None,
        symbl_call: None,
        local_only: false,
        pstn: None,
    };
    if !fresh {
        w.restore().await;
    }
    loop {
        let next = if w.session.is_ended() {
            tokio::time::timeout(shared.grace, rx.recv()).await.unwrap_or_default()
        } else {
            rx.recv().await
        };
        let Some(msg) = next else { break };
        w.handle(msg);
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(m) => w.handle(m),
                Err(_) => break,
            }
        }
        w.checkpoint();
    }
    // Leave the registry, then finish whatever was sent before we left.
    if let Ok(mut workers) = calls.workers.lock() {
        workers.remove(&conv);
        shared.metrics.set_active_calls(workers.len());
    }
    while let Ok(m) = rx.try_recv() {
        w.handle(m);
    }
    w.score_leftovers();
    w.checkpoint();
    shared.live.remove(&conv);
    calls.forget(&conv, &w.legs);
}

impl Worker {
    fn shared(&self) -> &Shared {
        &self.calls.shared
    }

    /// Loads the stored state and replays webhooks not processed yet.
    async fn restore(&mut self) {
        let conv = self.session.id().to_string();
        let reader = self.shared().store.reader();
        let loaded = tokio::task::spawn_blocking(move || {
            let snapshot = reader.snapshot(&conv)?;
            let unprocessed = reader.unprocessed_webhooks(&conv)?;
            Ok::<_, crate::store::StoreError>((snapshot, unprocessed))
        })
        .await;
        let (snapshot, unprocessed) = match loaded {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::warn!(conversation = self.session.id(), error = %e, "cannot read stored state; starting fresh");
                return;
            }
            Err(_) => return,
        };
        let resumed = snapshot.is_some();
        if let Some(state) = snapshot {
            match outbox::decode(&state) {
                Ok((s, unanswered)) => {
                    self.session = s.with_settings(self.shared().settings.clone());
                    for ccid in self.session.leg_ids() {
                        self.calls.register_leg(&ccid, self.session.id());
                        self.legs.push(ccid);
                    }
                    if !unanswered.is_empty() {
                        tracing::info!(
                            conversation = self.session.id(),
                            commands = unanswered.len(),
                            "sending again the commands Telnyx had not answered"
                        );
                    }
                    for cmd in unanswered {
                        self.send(cmd, None);
                    }
                }
                Err(e) => tracing::error!(conversation = self.session.id(), error = %e, "stored session unreadable"),
            }
        }
        // Replayed utterances are scored locally: the call must not wait on the network.
        let was_local = std::mem::replace(&mut self.local_only, true);
        for (received_at, body) in unprocessed {
            let Ok(env) = Envelope::parse(body.as_bytes()) else { continue };
            let Ok(event) = env.event() else { continue };
            let received_at = DateTime::parse_from_rfc3339(&received_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            let occurred_at = parse_time(env.data.occurred_at.as_deref());
            let id = env.data.id.clone();
            self.webhook(Box::new(event), id.clone(), occurred_at, received_at, Instant::now());
            self.replayed.insert(id);
        }
        self.local_only = was_local;
        if self.session.awaits_symbl() {
            // The link to Symbl did not survive the restart.
            let failed =
                SymblInput::Failed { reason: "ivrx restarted; Symbl's connection was lost".into(), at: self.last_at };
            let fx = self.session.handle(Input::Symbl(failed));
            self.run(fx, None);
        }
        if resumed {
            tracing::info!(conversation = self.session.id(), replayed = self.processed.len(), "resumed a stored call");
        }
        self.checkpoint();
    }

    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Webhook { event, event_id, occurred_at, received_at, received } => {
                if self.replayed.remove(&event_id) {
                    return; // already replayed from the store when the worker started
                }
                self.webhook(event, event_id, occurred_at, received_at, received);
            }
            WorkerMsg::Input(mut input) => {
                match &mut input {
                    // Keep the conversation's own clock.
                    Input::CommandFailed { at, .. }
                    | Input::ConferenceReady { at, .. }
                    | Input::Symbl(SymblInput::LegArrived { at, .. }) => *at = self.last_at,
                    _ => {}
                }
                let fx = self.session.handle(input);
                self.run(fx, None);
            }
            WorkerMsg::Manual { req, reply } => match self.session.request_transfer(req, self.last_at) {
                Ok(fx) => {
                    self.run(fx, None);
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            WorkerMsg::DialOut { to, from } => {
                self.last_at = Utc::now();
                let fx = self.session.dial_out(to, from, self.last_at);
                self.run(fx, None);
            }
            WorkerMsg::Scored { seq, score } => {
                let fx = self.session.handle(Input::Scored { seq, score, at: self.last_at });
                self.run(fx, None);
            }
            WorkerMsg::Symbl(event) => {
                let input = match event {
                    SymblEvent::Heard { text, is_final, message_ids, at } => {
                        // Symbl's clock says when it was said; never before what came earlier.
                        let at = at.map_or(self.last_at, |t| t.max(self.last_at));
                        self.last_at = at;
                        SymblInput::Heard { text, is_final, message_ids, at }
                    }
                    SymblEvent::Failed { reason } => SymblInput::Failed { reason, at: self.last_at },
                };
                let failed = matches!(input, SymblInput::Failed { .. });
                let fx = self.session.handle(Input::Symbl(input));
                self.run(fx, None);
                if failed {
                    // No score comes from Symbl after a failure, even after the call ended.
                    self.local_only = true;
                    self.score_leftovers();
                }
            }
            WorkerMsg::ScoreFailed { seq, text, error } => {
                if !self.local_only {
                    self.local_only = true;
                    tracing::error!(
                        conversation = self.session.id(),
                        error = %error,
                        "Symbl could not score this call; it continues on the local engine"
                    );
                    let fx = self.session.note(
                        self.last_at,
                        DomainEvent::EngineFallback { from: "symbl".into(), to: "local".into(), reason: error },
                    );
                    self.run(fx, None);
                }
                let score = self.shared().engine.local().score(&text);
                let fx = self.session.handle(Input::Scored { seq, score, at: self.last_at });
                self.run(fx, None);
            }
            WorkerMsg::Answered { command_id } => self.outbox.done(&command_id),
        }
    }

    /// Hands a command to the ordered sender, keeping it in the outbox until answered.
    fn send(&mut self, cmd: Command, started: Option<Instant>) {
        self.outbox.push(&cmd);
        let _ = self.sender.send((cmd, started));
    }

    /// Scores an utterance: inline with the local engine, or queued for the
    /// external engine (answered later with `Scored` / `ScoreFailed`).
    fn score(&mut self, seq: u32, text: String, refs: Vec<String>) -> Option<Score> {
        if let (Some(link), false, false) = (&self.pstn, refs.is_empty(), self.local_only) {
            link.score(seq, text, refs);
            return None;
        }
        let Engine::Symbl { symbl, deadline, .. } = &self.calls.shared.engine else {
            return Some(self.shared().engine.local().score(&text));
        };
        if self.local_only {
            return Some(self.shared().engine.local().score(&text));
        }
        if self.external.is_none() {
            let call = SymblCall::new();
            self.symbl_call = Some(call.clone());
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_symbl_scorer(symbl.clone(), call, *deadline, rx, self.self_tx.clone()));
            self.external = Some(tx);
        }
        if let Some(q) = &self.external {
            let _ = q.send((seq, text));
        }
        None
    }

    /// Scores locally what an external engine never answered for (the worker
    /// is leaving), so the conversation's record can end.
    fn score_leftovers(&mut self) {
        for req in self.session.unscored() {
            let score = self.shared().engine.local().score(&req.text);
            let fx = self.session.handle(Input::Scored { seq: req.seq, score, at: self.last_at });
            self.run(fx, None);
        }
    }

    /// Stores what the external engine made of the whole call, in the background.
    fn finish_external(&mut self) {
        let Engine::Symbl { symbl, deadline, .. } = &self.calls.shared.engine else { return };
        let Some(call) = self.symbl_call.take() else { return };
        if self.local_only || call.conversation_id().is_none() {
            return;
        }
        let (symbl, store, conv, deadline) =
            (symbl.clone(), self.shared().store.clone(), self.session.id().to_string(), *deadline * 4);
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, symbl.finish(&call)).await {
                Ok(Ok(summary)) => store.write(WriteOp::Insights {
                    conversation_id: conv,
                    source: "symbl".into(),
                    insights: serde_json::to_value(summary).unwrap_or_default(),
                }),
                Ok(Err(e)) => tracing::warn!(conversation = %conv, error = %e, "Symbl topics and trackers unavailable"),
                Err(_) => tracing::warn!(conversation = %conv, "Symbl topics and trackers: no answer in time"),
            }
        });
    }

    fn webhook(
        &mut self,
        event: Box<Event>,
        event_id: String,
        occurred_at: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
        received: Instant,
    ) {
        self.last_at = occurred_at.unwrap_or(received_at);
        let fx = self.session.handle(Input::Webhook { event, occurred_at, received_at });
        self.processed.push(event_id);
        self.run(fx, Some(received));
    }

    /// Carries out effects: records are stored and streamed, utterances are
    /// scored at once, commands go to the ordered sender.
    fn run(&mut self, effects: Vec<Effect>, received: Option<Instant>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Record(r) => {
                    match &r.event {
                        DomainEvent::LegJoined { call_control_id, call_leg_id, .. } => {
                            for id in std::iter::once(call_control_id).chain(call_leg_id) {
                                self.calls.register_leg(id, &r.conversation_id);
                                self.legs.push(id.clone());
                            }
                        }
                        DomainEvent::Decision { decision, .. } => {
                            self.shared().metrics.decision(decision.reason.as_str())
                        }
                        DomainEvent::CallEnded { .. } => self.finish_external(),
                        DomainEvent::EngineFallback { reason, .. } if self.shared().engine.dial_in().is_some() => {
                            tracing::error!(
                                conversation = %r.conversation_id, %reason,
                                "Symbl failed for this call; it continues on Telnyx transcription and the local engine"
                            );
                        }
                        _ => {}
                    }
                    if let DomainEvent::LegJoined { role: crate::session::Role::Symbl, .. } = &r.event {
                        if let Some(link) = &self.pstn {
                            link.arrived();
                        }
                    }
                    if !matches!(r.event, DomainEvent::Interim { .. }) {
                        self.pending.push(r.clone());
                    }
                    self.unpublished.push(r);
                }
                Effect::Score(req) => {
                    if let Some(score) = self.score(req.seq, req.text, req.refs) {
                        queue.extend(self.session.handle(Input::Scored { seq: req.seq, score, at: self.last_at }));
                    }
                }
                Effect::Send(cmd) => {
                    let started = if cmd.is_transfer_start() { received } else { None };
                    self.send(cmd, started);
                }
                Effect::StartSymbl => self.start_symbl(&mut queue),
                Effect::StopSymbl { fallback } => {
                    if let Some(link) = self.pstn.take() {
                        link.stop(!fallback);
                    }
                    if fallback {
                        self.local_only = true;
                        // Whatever still waits for Symbl is scored here and now.
                        for req in self.session.unscored() {
                            let score = self.shared().engine.local().score(&req.text);
                            queue.extend(self.session.handle(Input::Scored { seq: req.seq, score, at: self.last_at }));
                        }
                    }
                }
            }
        }
    }

    /// Asks Symbl to dial into this call (PSTN mode).
    fn start_symbl(&mut self, queue: &mut VecDeque<Effect>) {
        if self.pstn.is_some() {
            return;
        }
        let Engine::SymblPstn { symbl, local, deadline, dial_in, join_timeout, .. } = &self.calls.shared.engine else {
            let failed = SymblInput::Failed { reason: "Symbl is not configured".into(), at: self.last_at };
            queue.extend(self.session.handle(Input::Symbl(failed)));
            return;
        };
        let ctx = LinkContext {
            symbl: symbl.clone(),
            local: local.clone(),
            deadline: *deadline,
            dial_in: dial_in.clone(),
            join_timeout: *join_timeout,
            dial_ins: self.calls.dial_ins.clone(),
            store: self.shared().store.clone(),
        };
        self.pstn = Some(PstnLink::start(ctx, self.session.id().to_string(), self.self_tx.clone()));
    }

    /// Hands what happened to the store, then to live followers.
    fn checkpoint(&mut self) {
        self.write_checkpoint();
        let live = &self.calls.shared.live;
        for r in self.unpublished.drain(..) {
            live.publish(&r);
        }
    }

    fn write_checkpoint(&mut self) {
        let outbox_changed = self.outbox.take_changed();
        if self.pending.is_empty() && self.processed.is_empty() && !outbox_changed {
            return;
        }
        let snapshot = outbox::encode(&self.session, &self.outbox).ok().map(|state| Snapshot {
            conversation_id: self.session.id().to_string(),
            state,
            // Not over while a command (such as releasing the agent) is unanswered.
            ended: self.session.is_ended() && self.outbox.pending().is_empty(),
        });
        let op = WriteOp::Checkpoint {
            events: std::mem::take(&mut self.pending),
            snapshot,
            processed: std::mem::take(&mut self.processed),
        };
        self.shared().store.write(op);
    }
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?).ok().map(|t| t.with_timezone(&Utc))
}

/// Sends one conversation's commands in order, reporting failures back.
async fn run_sender(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<(Command, Option<Instant>)>,
    worker: mpsc::UnboundedSender<WorkerMsg>,
) {
    while let Some((cmd, started)) = rx.recv().await {
        if let Some(t) = started {
            shared.metrics.decision_latency(t.elapsed());
        }
        let began = Instant::now();
        let result = match &cmd.request {
            Request::Action(a) => match &cmd.call_control_id {
                Some(ccid) => shared.client.action(ccid, a).await.map(|_| ()),
                None => Ok(()),
            },
            Request::Dial(d) => shared.client.dial(d).await.map(|_| ()),
            Request::Conference(c) => match shared.client.conference(c).await {
                Ok(Some(conference)) => {
                    let ready = Input::ConferenceReady { conference_id: conference.id, at: Utc::now() };
                    let _ = worker.send(WorkerMsg::Input(ready));
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
        };
        let _ = worker.send(WorkerMsg::Answered { command_id: cmd.command_id().to_string() });
        let action = cmd.action_name();
        shared.metrics.command(action, began.elapsed(), result.as_ref().err().map(|e| e.kind()));
        let Err(e) = result else { continue };
        let expected = e.is_call_gone() && matches!(action, "gather_stop" | "playback_stop" | "transcription_stop");
        if expected {
            continue;
        }
        if e.is_call_gone() {
            tracing::debug!(action, command_id = cmd.command_id(), "call already ended");
        } else {
            tracing::warn!(action, command_id = cmd.command_id(), error = %e, "Telnyx command failed");
        }
        let _ = worker.send(WorkerMsg::Input(Input::CommandFailed {
            command_id: cmd.command_id().to_string(),
            action: action.to_string(),
            role: cmd.role,
            call_gone: e.is_call_gone(),
            error: e.to_string(),
            at: Utc::now(),
        }));
    }
}

/// Scores one call's utterances with Symbl, one at a time and in order. After
/// the first failure every remaining utterance is handed back at once, so the
/// call is never held up twice.
async fn run_symbl_scorer(
    symbl: SymblEngine,
    call: SymblCall,
    deadline: Duration,
    mut rx: mpsc::UnboundedReceiver<(u32, String)>,
    worker: mpsc::UnboundedSender<WorkerMsg>,
) {
    let mut failed: Option<String> = None;
    while let Some((seq, text)) = rx.recv().await {
        if let Some(error) = &failed {
            let _ = worker.send(WorkerMsg::ScoreFailed { seq, text, error: error.clone() });
            continue;
        }
        match symbl.score_utterance_within(&call, &text, deadline).await {
            Ok(score) => {
                let _ = worker.send(WorkerMsg::Scored { seq, score });
            }
            Err(e) => {
                let error = format!("{} ({})", e, e.kind());
                failed = Some(error.clone());
                let _ = worker.send(WorkerMsg::ScoreFailed { seq, text, error });
            }
        }
    }
}
