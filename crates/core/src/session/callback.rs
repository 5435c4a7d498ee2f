//! Callbacks (`[queue.callback]`): when the longest wait in the queue has
//! passed, the caller hears `offer_line` after `queue.timeout_line`, with the
//! IVR menu. A key of `accept_keys`, or one of `accept_phrases` said while the
//! offer stands, accepts it: the callback is recorded (`requested`, with the
//! number to call and how it was accepted), the caller is texted
//! `sms_text` ([`Effect::TextCaller`]) and hears `accepted_line`, then the
//! call ends. Any other menu key, or a new transfer, withdraws the offer.
//!
//! The conversation is not over while its callback is pending: every
//! `retry_secs` ([`Session::callback_retry`], the driver's timer, which
//! answers with [`Input::CallbackDue`](super::Input::CallbackDue)) the
//! queue's agents are dialled again, one after the other, like a transfer's
//! attempts. The agent who answers is briefed, then the caller is dialled
//! (`placed`), and once they answer (`answered`) bridged with the agent: the
//! same conversation, its callback events naming the original call's leg.
//! A caller who does not answer ends it (`unanswered`). The pending callback
//! is part of the stored session, so it survives a restart.

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Bridge, Dial};
use ivrx_telnyx::events::CallInitiated;
use serde::{Deserialize, Serialize};

use super::agent_legs::Joined;
use super::{
    CallerText, Command, DomainEvent, Effect, Leg, Phase, Request, Role, Session, SpeakPurpose, TransferStatus,
};
use crate::settings::{CallbackConfig, TransferMode};

/// A callback offered to the caller, or accepted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Callback {
    /// The offer stands: the menu takes the accept keys, and the accept phrases are listened for.
    pub offered: bool,
    /// When the caller accepted.
    pub requested_at: Option<DateTime<Utc>>,
    /// The number to call back.
    pub number: Option<String>,
    /// The original call's leg (the caller's, when they accepted).
    #[serde(default)]
    pub original: Option<String>,
    /// Rounds of agents tried for it.
    #[serde(default)]
    pub tries: u32,
    /// A round of agents is under way.
    #[serde(default)]
    pub placing: bool,
    /// An agent answered and the caller is being called.
    #[serde(default)]
    pub calling_caller: bool,
    /// The caller answered the callback.
    #[serde(default)]
    pub answered: bool,
    /// Over: the caller answered and the call went on, or did not answer.
    #[serde(default)]
    pub done: bool,
}

impl Session {
    fn callback_config(&self) -> Option<&CallbackConfig> {
        self.settings.wait_queue.as_ref().and_then(|q| q.callback.as_ref())
    }

    /// The keys that accept a callback while it is offered ("" otherwise).
    pub(super) fn callback_keys(&self) -> String {
        match (self.callback.as_ref().filter(|c| c.offered), self.callback_config()) {
            (Some(_), Some(cfg)) => cfg.accept_keys.clone(),
            _ => String::new(),
        }
    }

    /// The longest wait has passed: with `[queue.callback]`, and a caller
    /// whose number is known, the transfer fails with `line` and the offer
    /// after it. False when no callback can be offered.
    pub(super) fn offer_callback(
        &mut self,
        line: &str,
        detail: &str,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(cfg) = self.callback_config().cloned() else { return false };
        let number = self.caller_number.clone().filter(|n| !n.trim().is_empty());
        if number.is_none() || self.callback.as_ref().is_some_and(|c| c.requested_at.is_some()) {
            return false;
        }
        let original = self.caller.as_ref().map(|l| l.call_control_id.clone());
        self.callback = Some(Callback { offered: true, number, original, ..Default::default() });
        self.record_callback("offered", None, at, out);
        self.fail_transfer_with(&format!("{line} {}", cfg.offer_line), detail, at, out);
        true
    }

    /// Keys the caller pressed at the menu: true when they accepted the
    /// callback. Any other key withdraws the offer.
    pub(super) fn callback_key(&mut self, digits: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        if !self.callback.as_ref().is_some_and(|c| c.offered) {
            return false;
        }
        let accepted = self.callback_config().and_then(|cfg| cfg.accepts(Some(digits), None));
        match accepted {
            Some(how) => {
                self.record(at, DomainEvent::Dtmf { digits: digits.to_string(), choice: Some("callback".into()) }, out);
                self.accept_callback(how, at, out);
                true
            }
            None => {
                self.withdraw_callback();
                false
            }
        }
    }

    /// The caller said something while the IVR has them: an accept phrase
    /// accepts an offered callback.
    pub(super) fn callback_said(&mut self, text: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let offered = self.callback.as_ref().is_some_and(|c| c.offered) && self.phase == Phase::Ivr;
        if !offered {
            return;
        }
        if let Some(how) = self.callback_config().and_then(|cfg| cfg.accepts(None, Some(text))) {
            self.accept_callback(how, at, out);
        }
    }

    /// The offer no longer stands (the caller chose something else).
    pub(super) fn withdraw_callback(&mut self) {
        if let Some(c) = self.callback.as_mut() {
            c.offered = false;
        }
    }

    /// Records the callback, texts its confirmation, and ends the call with `accepted_line`.
    fn accept_callback(&mut self, how: String, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(cfg) = self.callback_config().cloned() else { return };
        let Some(cb) = self.callback.as_mut() else { return };
        cb.offered = false;
        cb.requested_at = Some(at);
        let number = cb.number.clone();
        self.record_callback("requested", Some(how), at, out);
        if let Some(to) = number {
            out.push(Effect::TextCaller(CallerText {
                conversation_id: self.id.clone(),
                key: format!("{}:callback", self.id),
                text: cfg.sms_text.replace("{number}", &to),
                to,
            }));
        }
        self.phase = Phase::Closing;
        self.end_reason = Some("callback_requested".into());
        self.stop_gather(out);
        self.say(Role::Caller, cfg.accepted_line, SpeakPurpose::Goodbye, at, out);
    }
}

impl Session {
    /// Records where the callback is.
    fn record_callback(&mut self, status: &str, detail: Option<String>, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(cb) = self.callback.as_ref() else { return };
        let event = DomainEvent::Callback {
            status: status.into(),
            number: cb.number.clone(),
            detail,
            original_call_control_id: cb.original.clone(),
        };
        self.record(at, event, out);
    }

    /// A callback accepted and not over yet: the conversation goes on.
    pub(super) fn callback_pending(&self) -> bool {
        self.callback.as_ref().is_some_and(|c| c.requested_at.is_some() && !c.done)
    }

    /// How long to wait before the next round of agents for a pending
    /// callback (none under way, the original call over); `None` otherwise.
    /// The driver then hands the session [`Input::CallbackDue`](super::Input::CallbackDue).
    pub fn callback_retry(&self) -> Option<std::time::Duration> {
        let waiting = self.callback.as_ref().is_some_and(|c| c.requested_at.is_some() && !c.done && !c.placing);
        if !waiting || self.phase != Phase::Ended || self.agent.is_some() || !self.dialling.is_empty() {
            return None;
        }
        Some(std::time::Duration::from_secs(u64::from(self.callback_config()?.retry_secs)))
    }

    /// Time for a pending callback's next round: its queue's agents are dialled.
    pub(super) fn on_callback_due(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.callback_retry().is_none() {
            return;
        }
        let Some(t) = self.transfer.as_mut() else { return };
        let agents = self.settings.queues.get(&t.queue).map(|q| q.agents.clone()).unwrap_or_default();
        if agents.is_empty() {
            return;
        }
        t.targets = agents;
        t.attempt = 0;
        t.mode = TransferMode::Warm;
        t.queued = None;
        t.status = TransferStatus::Dialing;
        if let Some(cb) = self.callback.as_mut() {
            cb.placing = true;
            cb.tries += 1;
        }
        self.phase = Phase::Transferring;
        self.next_attempt(at, out);
    }

    /// Every agent of the callback's round was tried and none answered: the
    /// callback waits for the next round. False when no callback round is under way.
    pub(super) fn callback_round_failed(&mut self, out: &mut Vec<Effect>) -> bool {
        let Some(cb) = self.callback.as_mut().filter(|c| c.placing && !c.calling_caller) else { return false };
        cb.placing = false;
        self.release_current(out);
        self.phase = Phase::Ended;
        true
    }

    /// The agent of a callback's round has been briefed: the caller is
    /// called. False when this is no callback's agent.
    pub(super) fn callback_call_caller(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        let Some(cb) = self.callback.as_ref().filter(|c| c.placing && !c.done) else { return false };
        if cb.calling_caller {
            return true;
        }
        let Some(agent) = self.agent.as_ref().filter(|l| !l.ended).map(|l| l.call_control_id.clone()) else {
            return true;
        };
        let Some(number) = cb.number.clone() else { return true };
        let tries = cb.tries;
        if let Some(cb) = self.callback.as_mut() {
            cb.calling_caller = true;
        }
        let target = self.current_target().unwrap_or_default();
        self.record_callback("placed", Some(format!("round {tries}: agent {target} on the line")), at, out);
        let dial = Dial {
            connection_id: self.settings.connection_id.clone(),
            from: self.settings.ivr.number.clone(),
            to: number,
            client_state: Some(self.tag(Role::Caller, None)),
            command_id: Some(self.next_command_id()),
            // The caller's leg joins the agent's call session.
            link_to: Some(agent),
            webhook_url: self.settings.webhook_url.clone(),
            timeout_secs: Some(self.settings.transfer.ring_timeout_secs),
            transcription: Some(true),
            transcription_config: Some(self.settings.transcription.config_for_answer(super::flow::TRACKS)),
            ..Default::default()
        };
        out.push(Effect::Send(Command { call_control_id: None, role: Role::Caller, request: Request::Dial(dial) }));
        true
    }

    /// The leg of the callback's call to the caller joined: it is the
    /// caller's leg from now on. False when it is no such leg.
    pub(super) fn callback_leg_joined(&mut self, e: &CallInitiated, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        let calling = self.callback.as_ref().is_some_and(|c| c.calling_caller && !c.done);
        let Some(ccid) = e.ids.call_control_id.clone() else { return false };
        if !calling || self.caller.as_ref().is_some_and(|l| l.call_control_id == ccid || !l.ended) {
            return calling;
        }
        self.caller = Some(Leg { call_control_id: ccid.clone(), transcribing: true, ..Leg::default() });
        self.leg_joined(Role::Caller, ccid, Joined::of(e), at, out);
        true
    }

    /// The caller answered the callback: bridged with the agent. False when
    /// this is not a callback's caller.
    pub(super) fn callback_answered(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) -> bool {
        let Some(cb) = self.callback.as_mut().filter(|c| c.calling_caller && !c.answered && !c.done) else {
            return false;
        };
        cb.answered = true;
        self.record_callback("answered", None, at, out);
        // From now on the call ends as any call with an agent.
        self.end_reason = None;
        if let Some(agent) = self.agent.as_ref().filter(|l| !l.ended).map(|l| l.call_control_id.clone()) {
            self.bridge(Role::Caller, Bridge { call_control_id: Some(agent), ..Default::default() }, at, out);
        }
        true
    }

    /// The callback's caller leg ended (or could not be placed): the
    /// callback is over, `unanswered` unless they answered.
    pub(super) fn callback_caller_gone(&mut self, detail: Option<String>, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(cb) = self.callback.as_mut().filter(|c| c.calling_caller && !c.done) else { return };
        cb.done = true;
        cb.placing = false;
        if !cb.answered {
            self.record_callback("unanswered", detail, at, out);
            self.end_reason = Some("callback_unanswered".into());
            self.release_current(out);
        }
    }
}
