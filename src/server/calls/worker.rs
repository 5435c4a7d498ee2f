//! One conversation's worker: a task that runs the sans-I/O [`Session`] and
//! carries out the effects it returns, one by one — records go to the store
//! (at the checkpoint) and then to live followers, commands to the
//! conversation's [`Commands`], utterances to its [`Scoring`] backend.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

mod owner;

use super::registry::Calls;
use super::scoring::Scoring;
use super::sender::Commands;
use super::Shared;
use crate::intel::Score;
use crate::server::outbox;
use crate::server::symbl_link::SymblEvent;
use crate::session::{
    DomainEvent, Effect, Input, LegCheck, ManualTransfer, Recorded, Session, SymblInput, TransferRefused,
};
use crate::store::{SessionState, StoreError, Transition};
use crate::telnyx::events::{Envelope, Event};

/// A verified, de-duplicated webhook, for its conversation.
#[derive(Debug)]
pub struct Webhook {
    /// The event.
    pub event: Box<Event>,
    /// `data.id`.
    pub event_id: String,
    /// `data.occurred_at`, parsed.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
    /// When the server received it (monotonic, for latency).
    pub received: Instant,
}

impl Webhook {
    /// The webhook `env` carries, whose `event` is already read, received at
    /// `received_at` (`received`: the same moment on the monotonic clock).
    pub fn new(event: Event, env: &Envelope, received_at: DateTime<Utc>, received: Instant) -> Self {
        Self {
            event: Box::new(event),
            event_id: env.data.id.clone(),
            occurred_at: parse_time(env.data.occurred_at.as_deref()),
            received_at,
            received,
        }
    }

    /// A webhook read back from the store, or `None` for an event this
    /// version cannot read.
    fn stored(env: &Envelope, received_at: DateTime<Utc>) -> Option<Self> {
        Some(Self::new(env.event().ok()?, env, received_at, Instant::now()))
    }
}

/// A message for a conversation's worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// A verified, de-duplicated webhook.
    Webhook(Webhook),
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
    /// Under several instances: webhooks for this conversation wait in the store.
    Pending,
    /// Something that happened to the call outside it (an alert sent or failed): recorded.
    Note(DomainEvent),
}

/// A conversation worker's inbox, as the registry and the worker's helpers
/// (command sender, scorer, Symbl link) hold it. Bounded: see
/// [`INBOX`](super::registry::INBOX) for what happens when it is full.
pub type WorkerInbox = mpsc::Sender<WorkerMsg>;

/// Hands the worker a report without waiting: at once when there is room,
/// otherwise from a task that waits for room. For a helper that cannot wait
/// (the worker itself, or code it calls); the report is never dropped.
pub(crate) fn report_soon(worker: &WorkerInbox, msg: WorkerMsg) {
    if let Err(TrySendError::Full(msg)) = worker.try_send(msg) {
        let worker = worker.clone();
        tokio::spawn(async move {
            let _ = worker.send(msg).await;
        });
    }
}

/// Messages handled at most before a checkpoint.
const BATCH: usize = 64;

/// One conversation's worker.
struct Worker {
    calls: Calls,
    session: Session,
    /// The conversation's commands and their outbox.
    commands: Commands,
    /// How its utterances are scored.
    scoring: Scoring,
    /// Events for the store's next checkpoint.
    pending: Vec<Recorded>,
    /// Events for live followers, published once they are on their way to
    /// the store: whoever sees a call end can then read the end from it.
    unpublished: Vec<Recorded>,
    /// Webhooks handled since the last checkpoint.
    processed: Vec<String>,
    /// Webhooks replayed from the store at start (their live delivery is skipped).
    replayed: HashSet<String>,
    /// The legs registered for this conversation.
    legs: Vec<String>,
    /// The conversation's clock: when the last thing it knows of happened.
    last_at: DateTime<Utc>,
    /// Under several instances: the conversation's lease.
    owned: Option<owner::Owned>,
}

/// Runs conversation `conv`'s worker until its call is over and the grace
/// period for late webhooks has passed. `fresh`: it has just begun (no state
/// to restore).
pub(super) async fn run(
    calls: Calls,
    conv: String,
    self_tx: WorkerInbox,
    mut rx: mpsc::Receiver<WorkerMsg>,
    fresh: bool,
) {
    let shared = calls.shared().clone();
    let mut w = Worker {
        session: Session::new(conv.clone(), shared.settings.clone()),
        commands: Commands::start(shared.clone(), self_tx.clone()),
        scoring: Scoring::new(shared.clone(), calls.dial_ins().clone(), conv.clone(), self_tx),
        calls: calls.clone(),
        pending: Vec::new(),
        unpublished: Vec::new(),
        processed: Vec::new(),
        replayed: HashSet::new(),
        legs: Vec::new(),
        last_at: Utc::now(),
        owned: None,
    };
    if shared.ownership.is_some() {
        return owner::run(w, conv, rx).await;
    }
    if !fresh {
        w.restore().await;
    }
    loop {
        // Once the call is over and no agent leg is left, late webhooks get a grace period.
        let next = if w.session.is_settled() {
            tokio::time::timeout(shared.grace, rx.recv()).await.unwrap_or_default()
        } else if let Some(every) = w.session.callback_retry() {
            // A pending callback: its next round of agents when nothing else comes first.
            let due = WorkerMsg::Input(Input::CallbackDue { at: w.last_at });
            tokio::time::timeout(every, rx.recv()).await.unwrap_or(Some(due))
        } else {
            rx.recv().await
        };
        let Some(msg) = next else { break };
        w.handle(msg);
        for _ in 0..BATCH {
            match rx.try_recv() {
                Ok(m) => w.handle(m),
                Err(_) => break,
            }
        }
        w.checkpoint().await;
    }
    // Leave the registry, then finish whatever was sent, or is sent with a
    // slot held, before we left (helpers' reports from now on are moot).
    calls.leave(&conv);
    rx.close();
    while let Some(m) = rx.recv().await {
        w.handle(m);
    }
    // Whatever an external engine never answered for is scored here, so the
    // conversation's record can end.
    let fx = w.scoring.score_waiting_locally(&mut w.session, w.last_at);
    w.run(fx, None);
    w.checkpoint().await;
    w.commands.finish().await;
    shared.live.remove(&conv);
    calls.forget(&conv, &w.legs);
}

impl Worker {
    fn shared(&self) -> &Shared {
        self.calls.shared()
    }

    /// Loads the stored state and replays webhooks not processed yet.
    async fn restore(&mut self) {
        let store = &self.shared().store;
        let conv = self.session.id();
        let loaded =
            async { Ok::<_, StoreError>((store.session(conv).await?, store.unprocessed_webhooks(conv).await?)) };
        let (snapshot, unprocessed) = match loaded.await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(conversation = self.session.id(), error = %e, "cannot read stored state; starting fresh");
                return;
            }
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
                    self.commands.resend(unanswered);
                }
                Err(e) => tracing::error!(conversation = self.session.id(), error = %e, "stored session unreadable"),
            }
        }
        // Replayed utterances are scored locally: the call must not wait on the network.
        let was_local_only = self.scoring.begin_replay();
        for webhook in unprocessed {
            let Ok(env) = Envelope::parse(webhook.body.as_bytes()) else { continue };
            let Some(webhook) = Webhook::stored(&env, webhook.received_at) else { continue };
            self.replayed.insert(webhook.event_id.clone());
            self.webhook(webhook);
        }
        self.scoring.end_replay(was_local_only);
        if let Some((queue, since, at_head)) = self.session.waiting_in_queue() {
            self.calls.rejoin_line(self.session.id(), &queue, since, at_head);
        }
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
        self.checkpoint().await;
    }

    fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Webhook(webhook) => {
                if self.replayed.remove(&webhook.event_id) {
                    return; // already replayed from the store when the worker started
                }
                self.webhook(webhook);
            }
            WorkerMsg::Input(mut input) => {
                match &mut input {
                    // Keep the conversation's own clock.
                    Input::CommandFailed { at, .. }
                    | Input::ConferenceReady { at, .. }
                    | Input::Dialled { at, .. }
                    | Input::LegChecked(LegCheck { at, .. })
                    | Input::QueueHead { at }
                    | Input::CallbackDue { at }
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
                    self.scoring.fall_back();
                    let fx = self.scoring.score_waiting_locally(&mut self.session, self.last_at);
                    self.run(fx, None);
                }
            }
            WorkerMsg::ScoreFailed { seq, text, error } => {
                let mut fx = Vec::new();
                if self.scoring.fall_back() {
                    tracing::error!(
                        conversation = self.session.id(),
                        error = %error,
                        "Symbl could not score this call; it continues on the local engine"
                    );
                    fx = self.session.note(
                        self.last_at,
                        DomainEvent::EngineFallback { from: "symbl".into(), to: "local".into(), reason: error },
                    );
                }
                let score = self.scoring.local(&text);
                fx.extend(self.session.handle(Input::Scored { seq, score, at: self.last_at }));
                self.run(fx, None);
            }
            WorkerMsg::Answered { command_id } => self.commands.answered(&command_id),
            WorkerMsg::Pending => {} // taken from the store by the owner's loop
            WorkerMsg::Note(event) => {
                let fx = self.session.note(self.last_at, event);
                self.run(fx, None);
            }
        }
    }

    fn webhook(&mut self, Webhook { event, event_id, occurred_at, received_at, received }: Webhook) {
        self.last_at = occurred_at.unwrap_or(received_at);
        self.calls.queue_moved(self.session.id(), &event, self.last_at);
        let fx = self.session.handle(Input::Webhook { event, occurred_at, received_at });
        self.processed.push(event_id);
        self.run(fx, Some(received));
    }

    /// Carries out effects, in order, with those they lead to: records are
    /// kept for the checkpoint and streamed after it, utterances are scored
    /// (at once, or answered later), commands go to the conversation's sender,
    /// legs to the registry, decisions to the metrics.
    fn run(&mut self, effects: Vec<Effect>, received: Option<Instant>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Record(r) => self.record(r),
                Effect::Score(req) => {
                    let seq = req.seq;
                    if let Some(score) = self.scoring.score(req) {
                        queue.extend(self.session.handle(Input::Scored { seq, score, at: self.last_at }));
                    }
                }
                Effect::Send(cmd) => {
                    let started = if cmd.is_transfer_start() { received } else { None };
                    self.commands.send(cmd, started);
                }
                Effect::Release { command, round } => self.commands.release(command, round),
                Effect::RouteLeg { call_control_id, call_leg_id } => {
                    for id in std::iter::once(call_control_id).chain(call_leg_id) {
                        self.calls.register_leg(&id, self.session.id());
                        self.legs.push(id);
                    }
                }
                Effect::Decided(reason) => self.shared().metrics.decision(reason.as_str()),
                Effect::Notify(notice) => self.shared().alerts.notice(self.session.id(), &notice),
                Effect::TextCaller(text) => self.shared().alerts.text_caller(&self.calls, &text),
                Effect::FinishScoring => self.scoring.finish(),
                Effect::SymblJoined => self.scoring.pstn_arrived(),
                Effect::StartSymbl => {
                    if !self.scoring.start_pstn() {
                        let failed = SymblInput::Failed { reason: "Symbl is not configured".into(), at: self.last_at };
                        queue.extend(self.session.handle(Input::Symbl(failed)));
                    }
                }
                Effect::StopSymbl { fallback } => {
                    self.scoring.stop_pstn(fallback);
                    if fallback {
                        tracing::error!(
                            conversation = self.session.id(),
                            reason = self.session.symbl_failure().unwrap_or_default(),
                            "Symbl failed for this call; it continues on Telnyx transcription and the local engine"
                        );
                        // Whatever still waits for Symbl is scored here and now.
                        self.scoring.fall_back();
                        queue.extend(self.scoring.score_waiting_locally(&mut self.session, self.last_at));
                    }
                }
            }
        }
    }

    /// Keeps a domain event for the checkpoint and live followers (interim
    /// transcripts are streamed only).
    fn record(&mut self, r: Recorded) {
        if !matches!(r.event, DomainEvent::Interim { .. }) {
            self.pending.push(r.clone());
        }
        self.unpublished.push(r);
    }

    /// Hands what happened to the store, then to live followers. False when
    /// the conversation has another owner now (several instances): nothing
    /// was stored, and the worker must stop.
    async fn checkpoint(&mut self) -> bool {
        if self.owned.is_some() {
            if !owner::checkpoint(self).await {
                return false;
            }
        } else if let Some(transition) = self.transition() {
            // Queued: the worker goes on while it commits.
            drop(self.shared().store.commit(transition));
        }
        let live = &self.calls.shared().live;
        for r in self.unpublished.drain(..) {
            live.publish(&r);
        }
        true
    }

    /// What happened since the last checkpoint, if anything.
    fn transition(&mut self) -> Option<Transition> {
        let outbox_changed = self.commands.take_changed();
        if self.pending.is_empty() && self.processed.is_empty() && !outbox_changed {
            return None;
        }
        let outbox = self.commands.outbox();
        let session = outbox::encode(&self.session, outbox).ok().map(|state| SessionState {
            state,
            // Not over while an agent leg is up or a command is unanswered.
            ended: self.session.is_settled() && outbox.pending().is_empty(),
        });
        Some(Transition {
            conversation_id: self.session.id().to_string(),
            events: std::mem::take(&mut self.pending),
            session,
            processed: std::mem::take(&mut self.processed),
        })
    }
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?).ok().map(|t| t.with_timezone(&Utc))
}
