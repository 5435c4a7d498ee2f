//! A conversation's worker when several instances share one database: it
//! runs only while its instance holds the conversation's lease (see
//! [`crate::store::cluster`]).
//!
//! Any instance stores a webhook it receives (the event id is unique in the
//! database) and acknowledges it once committed; the owner takes the
//! conversation's stored webhooks in the order they were stored, whichever
//! instance stored them (the one it received itself in its original form,
//! the others from the store). Every checkpoint commits only under the
//! lease's current epoch, and the commands it decided go out only once it
//! has: a worker that lost its lease stops without having sent anything the
//! database does not hold, and the next owner resumes from the last
//! checkpoint, replays the webhooks not yet consumed and sends again the
//! unanswered commands with their command_ids.
//!
//! An operator's manual transfer received by any instance is stored as a
//! request for the conversation; the owner takes it with the webhooks and
//! commits its answer in the same checkpoint as the decision it made.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Webhook, Worker, WorkerMsg, BATCH};
use crate::session::{Input, ManualTransfer, TransferRefused};
use crate::store::cluster::{Acquired, Answer, Fence, Lease};
use crate::store::StoreError;
use crate::telnyx::events::Envelope;

/// The longest wait between two attempts of a checkpoint the database refused.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The conversation's lease and what the worker took from the store under it.
pub(in crate::server::calls) struct Owned {
    lease: Lease,
    /// Webhooks taken since the last checkpoint (consumed when it commits).
    taken: HashSet<String>,
    /// Webhooks this instance received itself, as received, until taken.
    received: HashMap<String, Webhook>,
    /// Requests taken since the last checkpoint.
    asked: HashSet<i64>,
    /// Their answers, committed with the next checkpoint.
    answers: Vec<Answer>,
    /// The lease was lost: the worker stops.
    lost: bool,
    /// When the last committed checkpoint was sent: it ran the lease on for
    /// a term from then.
    extended: Instant,
}

/// Runs the worker while this instance owns the conversation; steps aside at
/// once when another live instance does.
pub(in crate::server::calls) async fn run(mut w: Worker, conv: String, mut rx: mpsc::Receiver<WorkerMsg>) {
    let calls = w.calls.clone();
    let shared = calls.shared().clone();
    let (Some(ownership), Some(cluster)) = (shared.ownership.clone(), shared.store.cluster()) else { return };
    let lease = match cluster.acquire(&conv, &ownership.instance, ownership.term).await {
        Ok(Acquired::Owned(lease)) => lease,
        Ok(Acquired::Held { owner }) => {
            tracing::debug!(conversation = %conv, %owner, "another instance owns this conversation");
            ownership.owned_elsewhere(&conv);
            calls.leave(&conv);
            return;
        }
        Err(e) => {
            tracing::warn!(conversation = %conv, error = %e, "cannot take this conversation's lease; another instance will");
            calls.leave(&conv);
            return;
        }
    };
    tracing::debug!(conversation = %conv, epoch = lease.epoch, "owns this conversation");
    ownership.set_held(&conv, true);
    w.commands.hold();
    w.owned = Some(Owned {
        lease,
        taken: HashSet::new(),
        received: HashMap::new(),
        asked: HashSet::new(),
        answers: Vec::new(),
        lost: false,
        extended: Instant::now(),
    });
    w.restore().await;
    take_requests(&mut w).await;
    let mut renew = tokio::time::interval(ownership.term / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    renew.reset();
    let mut idle_since = Instant::now();
    let mut lost = lost_lease(&w);
    while !lost {
        let mut pull = Pull::default();
        let callback = w.session.callback_retry();
        tokio::select! {
            m = rx.recv() => match m {
                Some(m) => {
                    idle_since = Instant::now();
                    take(&mut w, m, &mut pull);
                }
                None => break,
            },
            // Once the call is over and no agent leg is left, late webhooks get a grace period.
            _ = tokio::time::sleep_until((idle_since + shared.grace).into()), if w.session.is_settled() => break,
            // A pending callback: its next round of agents when nothing else comes first.
            _ = tokio::time::sleep_until((idle_since + callback.unwrap_or_default()).into()), if callback.is_some() => {
                idle_since = Instant::now();
                let due = WorkerMsg::Input(Input::CallbackDue { at: w.last_at });
                take(&mut w, due, &mut pull);
            }
            _ = renew.tick() => {
                let o = w.owned.as_ref().expect("owned");
                // A checkpoint committed within the last third of a term ran
                // the lease on already: it has two thirds of a term left.
                if o.extended.elapsed() >= ownership.term / 3 {
                    match cluster.renew(&o.lease, ownership.term).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost = true;
                            break;
                        }
                        Err(e) => tracing::debug!(conversation = %conv, error = %e, "cannot renew the lease"),
                    }
                }
                // A wake-up may have been missed: look anyway.
                pull = Pull::ALL;
            }
        }
        for _ in 0..BATCH {
            match rx.try_recv() {
                Ok(m) => take(&mut w, m, &mut pull),
                Err(_) => break,
            }
        }
        let woke = Instant::now();
        take_stored(&mut w, pull).await;
        let read = woke.elapsed();
        let started = w.commands.held_started();
        lost = !w.checkpoint().await;
        if let Some(t) = started {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            tracing::debug!(target: "ivrx::latency", stage = "decision", waited_ms = ms(woke.saturating_duration_since(t)), read_ms = ms(read), checkpoint_ms = ms(woke.elapsed() - read), total_ms = ms(t.elapsed()));
        }
    }
    // Webhooks stored from now on wake whichever instance owns the conversation next.
    ownership.set_held(&conv, false);
    calls.leave(&conv);
    if lost {
        tracing::warn!(conversation = %conv, "another instance took this conversation over; its worker here stops");
    } else {
        // Finish whatever was sent, or is sent with a slot held, before we
        // left; then give the conversation up.
        let mut pull = Pull::ALL;
        rx.close();
        while let Some(m) = rx.recv().await {
            take(&mut w, m, &mut pull);
        }
        take_stored(&mut w, pull).await;
        let fx = w.scoring.score_waiting_locally(&mut w.session, w.last_at);
        w.run(fx, None);
        let committed = w.checkpoint().await;
        w.commands.finish().await;
        if committed {
            if let Some(o) = &w.owned {
                if let Err(e) = cluster.release(&o.lease).await {
                    tracing::debug!(conversation = %conv, error = %e, "cannot give the lease up; it expires");
                }
            }
        }
    }
    shared.live.remove(&conv);
    calls.forget(&conv, &w.legs);
}

fn lost_lease(w: &Worker) -> bool {
    w.owned.as_ref().is_none_or(|o| o.lost)
}

/// What the owner reads from the store before its next checkpoint.
#[derive(Debug, Default, Clone, Copy)]
struct Pull {
    /// The webhooks not consumed yet.
    webhooks: bool,
    /// The requests not answered yet.
    requests: bool,
}

impl Pull {
    const ALL: Pull = Pull { webhooks: true, requests: true };
}

/// Handles a message. A webhook this instance received means: take the
/// stored ones. A wake-up (another instance stored webhooks or a request)
/// means: take both.
fn take(w: &mut Worker, msg: WorkerMsg, pull: &mut Pull) {
    match msg {
        WorkerMsg::Webhook(webhook) => {
            if let Some(o) = &mut w.owned {
                o.received.insert(webhook.event_id.clone(), webhook);
            }
            pull.webhooks = true;
        }
        WorkerMsg::Pending => *pull = Pull::ALL,
        other => w.handle(other),
    }
}

/// Takes what `pull` names: the conversation's stored webhooks not consumed
/// yet, in the order they were stored, then its requests.
async fn take_stored(w: &mut Worker, pull: Pull) {
    if pull.webhooks {
        take_webhooks(w).await;
    }
    if pull.requests {
        take_requests(w).await;
    }
}

async fn take_webhooks(w: &mut Worker) {
    let store = w.shared().store.clone();
    let Some(stored) = or_later(w, "webhooks", store.unprocessed_webhooks(w.session.id()).await) else { return };
    for stored in stored {
        let Ok(env) = Envelope::parse(stored.body.as_bytes()) else { continue };
        let id = env.data.id.clone();
        let Some(o) = &mut w.owned else { return };
        if w.replayed.contains(&id) || !o.taken.insert(id.clone()) {
            continue;
        }
        let received = o.received.remove(&id);
        let Some(webhook) = received.or_else(|| Webhook::stored(&env, stored.received_at)) else { continue };
        w.webhook(webhook);
    }
    if let Some(o) = &mut w.owned {
        let taken = &o.taken;
        o.received.retain(|id, _| !taken.contains(id));
    }
}

/// What was read from the store, or `None` (it is read again at the next wake-up or renewal).
fn or_later<T>(w: &Worker, what: &str, read: Result<Vec<T>, StoreError>) -> Option<Vec<T>> {
    read.map_err(|e| tracing::debug!(conversation = w.session.id(), error = %e, "cannot read the stored {what} yet"))
        .ok()
}

/// Takes the conversation's stored requests not answered yet, in order;
/// the session decides each one as if it had been asked here.
async fn take_requests(w: &mut Worker) {
    let Some(cluster) = w.shared().store.cluster() else { return };
    let Some(requests) = or_later(w, "requests", cluster.requests(w.session.id()).await) else { return };
    for request in requests {
        let Some(o) = &mut w.owned else { return };
        if !o.asked.insert(request.id) {
            continue;
        }
        // The answer is the session's outcome; one it cannot read is answered
        // with something no outcome reads as either.
        let body = match serde_json::from_str::<ManualTransfer>(&request.body) {
            Ok(req) => {
                let outcome: Result<(), TransferRefused> =
                    w.session.request_transfer(req, w.last_at).map(|fx| w.run(fx, None));
                serde_json::to_string(&outcome).unwrap_or_default()
            }
            Err(e) => {
                tracing::warn!(conversation = w.session.id(), error = %e, "a stored request cannot be read");
                String::new()
            }
        };
        if let Some(o) = &mut w.owned {
            o.answers.push(Answer { request_id: request.id, body });
        }
    }
}

/// Commits what happened under the lease, retrying while the database
/// fails; then sends the commands it decided. False once the lease is lost.
pub(in crate::server::calls) async fn checkpoint(w: &mut Worker) -> bool {
    let store = w.shared().store.clone();
    let Some(cluster) = store.cluster() else { return false };
    let term = w.shared().ownership.as_ref().map_or(Duration::from_secs(5), |o| o.term);
    let transition = w.transition();
    let Some(o) = &w.owned else { return false };
    if transition.is_some() || !o.answers.is_empty() {
        let mut backoff = Duration::from_millis(50);
        let sent = loop {
            let sent = Instant::now();
            match cluster.checkpoint(&o.lease, transition.clone(), &o.answers, term).await {
                Ok(Fence::Committed) => break sent,
                Ok(Fence::Lost) => {
                    if let Some(o) = &mut w.owned {
                        o.lost = true;
                    }
                    return false;
                }
                Err(e) => {
                    tracing::warn!(conversation = w.session.id(), error = %e, "checkpoint failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if let Some(o) = &mut w.owned {
            o.taken.clear();
            o.asked.clear();
            o.answers.clear();
            o.extended = sent;
        }
        w.replayed.clear();
    }
    w.commands.send_held();
    true
}
