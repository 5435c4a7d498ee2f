//! The queue part of the transfer: when no agent of a round can take the call
//! and `[queue]` is configured, the caller waits in a Telnyx call queue
//! instead of going back to the IVR.
//!
//! The caller's leg is put in the queue (`enqueue`, with the longest wait as
//! `max_wait_time_secs`); `call.enqueued` gives their place in line, which is
//! said to them, and hold audio follows. Telnyx bridges an agent with the
//! head of the queue only (`bridge` with `queue` on the agent's leg), so only
//! the caller at the head tries the agents: first in line at `call.enqueued`,
//! or told so ([`Input::QueueHead`](super::Input::QueueHead)) once the calls
//! ahead have left. Each time the head's hold audio has played
//! `announce_every_plays` times the agents are tried again (a new round, with
//! attempts numbered on from the last) and the caller hears that they keep
//! their place. The agent who answers is briefed, then bridged with the head
//! of the queue — this caller — which takes them out of it (`call.dequeued`,
//! reason `bridged`). When Telnyx takes the
//! caller out after the longest wait (`timeout`) the transfer has failed and
//! the caller is back with the IVR.
//!
//! The queue's own record is transfer attempt 0 of the decision: `queued`
//! with the place in line, then `dequeued` with why and after how long.

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, Bridge, Enqueue, Plain, PlaybackStart};
use ivrx_telnyx::events::{CallDequeued, CallEnqueued, DequeueReason};
use serde::{Deserialize, Serialize};

use super::{DomainEvent, Effect, Phase, Role, Session, SpeakPurpose, TransferStatus};
use crate::settings::{TransferMode, WaitQueueConfig};

/// A caller sent to the queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Queued {
    /// Telnyx confirmed it (`call.enqueued`), and has not taken the caller out yet.
    pub in_queue: bool,
    /// The place in line `call.enqueued` gave.
    pub position: Option<u32>,
    /// Hold audio plays since the last announcement.
    pub plays: u32,
    /// First in line: the agent Telnyx bridges with the queue gets this
    /// caller, so this caller's session may dial agents.
    #[serde(default)]
    pub at_head: bool,
    /// When Telnyx put the caller in line (`call.enqueued`): their place
    /// among the others waiting.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
}

impl Session {
    fn wait_queue(&self) -> Option<&WaitQueueConfig> {
        self.settings.wait_queue.as_ref()
    }

    /// The caller is waiting in the queue (sent there, not taken out yet).
    pub(super) fn queued(&self) -> Option<&Queued> {
        self.transfer.as_ref().and_then(|t| t.queued.as_ref())
    }

    /// The queue this caller waits in, when they joined it, and whether they
    /// are first in line; `None` unless Telnyx has them in the queue.
    pub fn waiting_in_queue(&self) -> Option<(String, DateTime<Utc>, bool)> {
        let q = self.queued().filter(|q| q.in_queue && self.phase == Phase::Transferring)?;
        Some((self.wait_queue()?.name.clone(), q.since?, q.at_head))
    }

    /// No agent of the round could take the call. With a queue configured the
    /// caller waits in it (sent there after the first round; after a later
    /// one, the next round comes with the hold audio); true when so.
    pub(super) fn wait_instead_of_failing(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        let Some(q) = self.wait_queue().cloned() else { return false };
        let caller_up = self.caller.as_ref().is_some_and(|l| !l.ended);
        if !caller_up || self.in_conference() || self.phase != Phase::Transferring {
            return false;
        }
        self.release_current(out);
        if self.queued().is_some() {
            return true;
        }
        let Some(t) = self.transfer.as_mut() else { return false };
        t.queued = Some(Queued::default());
        // Agents of later rounds are dialled and bridged with the queue's head, whatever the mode.
        t.mode = TransferMode::Warm;
        if self.hold_music {
            self.send(Role::Caller, Action::PlaybackStop(Plain::default()), out);
            self.hold_music = false;
        }
        let body = Enqueue {
            queue_name: Some(q.name.clone()),
            max_wait_time_secs: Some(q.max_wait_secs),
            max_size: Some(q.max_size),
            ..Default::default()
        };
        self.send(Role::Caller, Action::Enqueue(body), out);
        self.record_queue(TransferStatus::Queued, Some("every agent is busy".into()), at, out);
        true
    }

    /// `call.enqueued`: the caller hears their place in line, then hold audio.
    pub(super) fn on_enqueued(&mut self, e: &CallEnqueued, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(q) = self.wait_queue().cloned() else { return };
        let Some(queued) = self.transfer.as_mut().and_then(|t| t.queued.as_mut()).filter(|q| !q.in_queue) else {
            return;
        };
        queued.in_queue = true;
        queued.position = e.current_position;
        queued.at_head = queued.at_head || e.current_position.is_none_or(|p| p <= 1);
        queued.since = Some(at);
        let detail = match e.current_position {
            Some(p) => format!("number {p} in line in {}", q.name),
            None => format!("in line in {}", q.name),
        };
        self.record_queue(TransferStatus::Queued, Some(detail), at, out);
        self.say(Role::Caller, q.position_line_for(e.current_position), SpeakPurpose::Queue, at, out);
    }

    /// A line to the waiting caller was said: the hold audio (again).
    pub(super) fn on_queue_line_done(&mut self, out: &mut Vec<Effect>) {
        let Some(q) = self.wait_queue().cloned() else { return };
        let waiting = self.phase == Phase::Transferring && self.queued().is_some_and(|q| q.in_queue);
        if !waiting || self.hold_music {
            return;
        }
        let url = q.hold_audio_url.unwrap_or_else(|| self.settings.transfer.hold_music_url.clone());
        let body = PlaybackStart {
            audio_url: Some(url),
            loop_: Some(serde_json::Value::from(q.announce_every_plays)),
            ..Default::default()
        };
        self.send(Role::Caller, Action::PlaybackStart(body), out);
        self.hold_music = true;
    }

    /// The hold audio played to its end: the caller hears they keep their
    /// place, and the agents are tried again (unless a round is under way).
    pub(super) fn on_hold_played(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(q) = self.wait_queue().cloned() else { return };
        let waiting = self.phase == Phase::Transferring && self.queued().is_some_and(|q| q.in_queue);
        if !waiting {
            return;
        }
        self.try_agents_at_head(at, out);
        self.say(Role::Caller, q.waiting_line.clone(), SpeakPurpose::Queue, at, out);
    }

    /// The calls ahead left the queue: this caller is at its head, and tries
    /// the agents at once.
    pub(super) fn on_queue_head(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let waiting = self.phase == Phase::Transferring && self.queued().is_some_and(|q| q.in_queue);
        let Some(queued) = self.transfer.as_mut().and_then(|t| t.queued.as_mut()) else { return };
        if !waiting || queued.at_head {
            return;
        }
        queued.at_head = true;
        self.try_agents_at_head(at, out);
    }

    /// A new round of agents, when this caller is at the queue's head and no
    /// round is under way: an agent bridged with the queue gets the head.
    fn try_agents_at_head(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let at_head = self.queued().is_some_and(|q| q.at_head);
        let round_over = self.agent.is_none() && self.dialling.is_empty();
        if at_head && round_over {
            self.next_round(at, out);
        }
    }

    /// Tries the decision's queue's agents again, numbering on.
    fn next_round(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(t) = self.transfer.as_mut() else { return };
        let agents = self.settings.queues.get(&t.queue).map(|q| q.agents.clone()).unwrap_or_default();
        if agents.is_empty() {
            return;
        }
        t.targets.extend(agents);
        self.next_attempt(at, out);
    }

    /// The agent has been briefed while the caller waits in the queue: the
    /// agent's leg is bridged with the queue's head. False when the caller
    /// is not in the queue (the ordinary bridge applies).
    pub(super) fn bridge_from_queue(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        let Some(name) = self.wait_queue().map(|q| q.name.clone()) else { return false };
        if !self.queued().is_some_and(|q| q.in_queue) {
            return false;
        }
        self.bridge(Role::Agent, Bridge { queue: Some(name), ..Default::default() }, at, out);
        true
    }

    /// `call.dequeued`: bridged (the agent's `call.bridged` connects them),
    /// or out after the longest wait (the transfer failed).
    pub(super) fn on_dequeued(&mut self, e: &CallDequeued, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(queued) = self.transfer.as_mut().and_then(|t| t.queued.as_mut()).filter(|q| q.in_queue) else {
            return;
        };
        queued.in_queue = false;
        let reason = e.reason.as_ref().map_or("unknown", |r| r.as_str()).to_string();
        let waited = e.wait_time_secs.map_or(String::new(), |s| format!(" after {s} s"));
        self.record_queue(TransferStatus::Dequeued, Some(format!("{reason}{waited}")), at, out);
        match e.reason {
            Some(DequeueReason::Timeout) | Some(DequeueReason::Leave) if self.phase == Phase::Transferring => {
                let line = self.wait_queue().map(|q| q.timeout_line.clone()).unwrap_or_default();
                let detail = "nobody took the call within the longest wait";
                if !self.offer_callback(&line, detail, at, out) {
                    self.fail_transfer_with(&line, detail, at, out);
                }
            }
            _ => {}
        }
    }

    /// Records the queue's part of the transfer (attempt 0).
    fn record_queue(
        &mut self,
        status: TransferStatus,
        detail: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let Some(t) = self.transfer.as_ref() else { return };
        let target = self.wait_queue().map(|q| q.name.clone()).unwrap_or_default();
        let event = DomainEvent::Transfer {
            attempt: 0,
            queue: t.queue.clone(),
            target,
            mode: t.mode,
            status,
            detail,
            agent_call_control_id: None,
        };
        self.record(at, event, out);
    }
}
