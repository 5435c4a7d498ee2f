//! Agent legs: the current attempt's leg, and every other one ivrx dialled.
//!
//! Only the current attempt's leg (`Session::agent`) may be bridged to the
//! caller. Every other agent leg — of an attempt given up, one that shows up
//! late for an attempt no longer wanted, any leg once the caller is gone or
//! the transfer has failed — is *released*: hung up with one `command_id`
//! ([`Effect::Release`]), sent again after each failure, until Telnyx confirms
//! it or answers that the leg is gone. Its life (joined, answered, ended) is
//! recorded like any leg's, so the record shows how every agent leg ended, and
//! the end of the conversation is recorded only once none is left up and no
//! agent dial is unanswered.

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, Plain};
use ivrx_telnyx::events::{CallHangup, CallInitiated, Event};
use serde::{Deserialize, Serialize};

use super::{Command, DomainEvent, Effect, Leg, LegTag, Phase, Request, Role, Session};
use crate::settings::TransferMode;

/// The hangup cause recorded for a leg that Telnyx, asked, says is gone: it
/// ended while ivrx was not listening (down, or its webhook never came).
pub const ENDED_UNOBSERVED: &str = "ended_while_not_listening";

/// The hangup source recorded with [`ENDED_UNOBSERVED`].
const RECONCILIATION: &str = "reconciliation";

/// What Telnyx says of a leg whose end the record does not show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegCheck {
    /// The leg.
    pub call_control_id: String,
    /// Its part in the conversation, as recorded.
    pub role: Role,
    /// `is_alive` (false too when Telnyx no longer knows the call).
    pub alive: bool,
    /// When Telnyx answered.
    pub at: DateTime<Utc>,
}

/// Checks one agent per decision over a session's effects, in order: a
/// bridge goes out only once every agent bridged before it has been
/// released. The error names the agent bridged while another still held the
/// caller. (For tests and replays: the session keeps it by construction.)
pub fn check_one_agent_at_a_time(effects: &[Effect]) -> Result<(), String> {
    let (mut bridged, mut released) = (Vec::<&str>::new(), Vec::<&str>::new());
    for e in effects {
        match e {
            Effect::Release { command, .. } => released.extend(command.call_control_id.as_deref()),
            Effect::Send(Command { request: Request::Action(Action::Bridge(b)), .. }) => {
                let to = b.call_control_id.as_deref().unwrap_or_default();
                if let Some(held) = bridged.iter().find(|a| **a != to && !released.contains(a)) {
                    return Err(format!("{to} bridged while {held} still held the caller"));
                }
                bridged.push(to);
            }
            _ => {}
        }
    }
    Ok(())
}

/// An agent leg other than the current attempt's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Released {
    pub leg: Leg,
    /// The hangup's command id, the same for every send (`None`: the leg
    /// was gone when ivrx first heard of it).
    pub command_id: Option<String>,
    /// Times the hangup was sent.
    pub sends: u32,
}

/// Which agent leg an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The current attempt's.
    Current,
    /// `Session::released[i]`.
    Released(usize),
}

/// The ids and numbers a leg joins with (`call.initiated`, or a dial's answer).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Joined {
    pub call_leg_id: Option<String>,
    pub call_session_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl Joined {
    pub(super) fn of(e: &CallInitiated) -> Self {
        Self {
            call_leg_id: e.ids.call_leg_id.clone(),
            call_session_id: e.ids.call_session_id.clone(),
            from: e.from.clone(),
            to: e.to.clone(),
        }
    }
}

impl Session {
    /// Handles an event of an agent leg; false when the event is for the
    /// common handling (the current attempt's speech, speaks, bridges, and
    /// anything that is not about one call).
    pub(super) fn on_agent_event(
        &mut self,
        event: &Event,
        tag: Option<&LegTag>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let lifecycle = matches!(event, Event::CallInitiated(_) | Event::CallAnswered(_) | Event::CallHangup(_));
        let of_one_leg = matches!(event, Event::SpeakEnded(_) | Event::Transcription(_) | Event::CallBridged(_));
        if !lifecycle && !of_one_leg {
            return false;
        }
        let Some(ccid) = event.call_control_id() else { return true };
        if let Some(attempt) = tag.and_then(|t| t.attempt) {
            // The leg is there: its dial has evidently been placed.
            self.dialling.retain(|(_, a)| *a != attempt);
        }
        let gone = matches!(event, Event::CallHangup(_));
        let Some(which) = self.agent_leg(ccid, tag, gone, out) else { return true };
        match event {
            Event::CallInitiated(e) => self.agent_joined(which, Some(Joined::of(e)), at, out),
            Event::CallAnswered(_) => self.agent_answered(which, at, out),
            Event::CallHangup(e) => self.agent_hung_up(which, e, at, out),
            // Speech, speaks and bridges count on the current attempt's leg only.
            _ => return which != Which::Current,
        }
        true
    }

    /// Finds the agent leg `ccid`. An unknown leg of this conversation
    /// becomes the current attempt's when that attempt waits for its leg;
    /// otherwise it is not wanted, and is released at once (unless `gone`).
    fn agent_leg(&mut self, ccid: &str, tag: Option<&LegTag>, gone: bool, out: &mut Vec<Effect>) -> Option<Which> {
        if let Some(which) = self.which_agent_leg(ccid) {
            return Some(which);
        }
        tag?;
        if self.awaits_agent_leg(tag) {
            // A dialled agent (warm, or into the conference) was dialled with transcription.
            let dialled = self.in_conference() || self.transfer.as_ref().is_some_and(|t| t.mode == TransferMode::Warm);
            self.agent = Some(Leg { call_control_id: ccid.to_string(), transcribing: dialled, ..Leg::default() });
            return Some(Which::Current);
        }
        let leg = Leg { call_control_id: ccid.to_string(), ended: gone, ..Leg::default() };
        self.released.push(Released { leg, command_id: None, sends: 0 });
        let i = self.released.len() - 1;
        self.send_release(i, out);
        Some(Which::Released(i))
    }

    /// True when the transfer waits for the leg of the attempt `tag` names.
    fn awaits_agent_leg(&self, tag: Option<&LegTag>) -> bool {
        self.phase == Phase::Transferring && self.agent.is_none() && self.is_current_attempt(tag)
    }

    fn agent_leg_mut(&mut self, which: Which) -> Option<&mut Leg> {
        match which {
            Which::Current => self.agent.as_mut(),
            Which::Released(i) => self.released.get_mut(i).map(|r| &mut r.leg),
        }
    }

    /// Records that the leg joined, once (with what is known of it).
    fn agent_joined(&mut self, which: Which, joined: Option<Joined>, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(leg) = self.agent_leg_mut(which).filter(|l| !l.joined) else { return };
        leg.joined = true;
        let call_control_id = leg.call_control_id.clone();
        self.leg_joined(Role::Agent, call_control_id, joined.unwrap_or_default(), at, out);
        if which == Which::Current {
            self.agent_ringing(at, out);
        }
    }

    fn agent_answered(&mut self, which: Which, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.agent_joined(which, None, at, out);
        let Some(leg) = self.agent_leg_mut(which).filter(|l| !l.answered && !l.ended) else { return };
        leg.answered = true;
        let call_control_id = leg.call_control_id.clone();
        self.record(at, DomainEvent::LegAnswered { role: Role::Agent, call_control_id }, out);
        if which == Which::Current {
            self.on_agent_answered(at, out);
        }
    }

    fn agent_hung_up(&mut self, which: Which, e: &CallHangup, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let cause = e.hangup_cause.as_ref().map(|c| c.as_str().to_string());
        let source = e.hangup_source.as_ref().map(|s| s.as_str().to_string());
        if self.agent_ended(which, cause.clone(), source, at, out) && which == Which::Current {
            self.on_agent_hangup(cause.as_deref(), at, out);
        }
        self.maybe_end(at, out);
    }

    /// Marks an agent leg ended and records how; false when it already was.
    pub(super) fn agent_ended(
        &mut self,
        which: Which,
        cause: Option<String>,
        source: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> bool {
        self.agent_joined(which, None, at, out);
        let Some(leg) = self.agent_leg_mut(which).filter(|l| !l.ended) else { return false };
        leg.ended = true;
        let call_control_id = leg.call_control_id.clone();
        self.record(at, DomainEvent::LegEnded { role: Role::Agent, call_control_id, cause, source }, out);
        true
    }

    /// Lets go of the current attempt's leg: released until gone (an ended
    /// one is kept too, so its late webhooks are known for what they are).
    pub(super) fn release_current(&mut self, out: &mut Vec<Effect>) {
        let Some(leg) = self.agent.take() else { return };
        self.released.push(Released { leg, command_id: None, sends: 0 });
        self.send_release(self.released.len() - 1, out);
    }

    /// Sends (again) the hangup of a released leg.
    fn send_release(&mut self, i: usize, out: &mut Vec<Effect>) {
        if self.released.get(i).is_none_or(|r| r.leg.ended) {
            return;
        }
        let fresh = self.released[i].command_id.is_none().then(|| self.next_command_id());
        let r = &mut self.released[i];
        let command_id = r.command_id.get_or_insert_with(|| fresh.unwrap_or_default()).clone();
        let round = r.sends;
        r.sends += 1;
        let mut hangup = Action::Hangup(Plain::default());
        hangup.set_command_id(command_id);
        let command = Command {
            call_control_id: Some(r.leg.call_control_id.clone()),
            role: Role::Agent,
            request: Request::Action(hangup),
        };
        out.push(Effect::Release { command, round });
    }

    /// A release failed for good: the leg is gone (90018, or Telnyx does not
    /// know it), or it is sent again. False when `command_id` is no release.
    pub(super) fn on_release_failed(
        &mut self,
        command_id: &str,
        call_gone: bool,
        error: &str,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(i) = self.released.iter().position(|r| r.command_id.as_deref() == Some(command_id)) else {
            return false;
        };
        if call_gone {
            self.agent_ended(Which::Released(i), None, None, at, out);
            self.maybe_end(at, out);
        } else if !self.released[i].leg.ended {
            if self.released[i].sends == 1 {
                let failed = DomainEvent::CommandFailed {
                    action: "hangup".into(),
                    role: Role::Agent,
                    call_gone,
                    error: format!("{error} (sent again until the leg is gone)"),
                };
                self.record(at, failed, out);
            }
            self.send_release(i, out);
        }
        true
    }

    /// Telnyx answered an agent dial: the leg is known before its webhooks.
    pub(super) fn on_dialled(
        &mut self,
        command_id: &str,
        ccid: String,
        call_leg_id: Option<String>,
        call_session_id: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let Some(pos) = self.dialling.iter().position(|(id, _)| id == command_id) else { return };
        let (_, attempt) = self.dialling.remove(pos);
        let tag = LegTag { ivrx: 1, conv: self.id.clone(), role: Role::Agent, attempt: Some(attempt) };
        if let Some(which) = self.agent_leg(&ccid, Some(&tag), false, out) {
            let to = match which {
                Which::Current => self.current_target(),
                Which::Released(_) => None,
            };
            let from = Some(self.settings.ivr.number.clone());
            self.agent_joined(which, Some(Joined { call_leg_id, call_session_id, from, to }), at, out);
        }
        self.maybe_end(at, out);
    }

    /// A dial failed for good: no longer waited for. True when it was the
    /// current attempt's dial (an older one, or one sent again after a
    /// restart, decides nothing).
    pub(super) fn dial_failed(&mut self, command_id: &str) -> bool {
        match self.dialling.iter().position(|(id, _)| id == command_id) {
            Some(pos) => {
                let (_, attempt) = self.dialling.remove(pos);
                self.current_leg_tag() == Some(attempt)
            }
            None => self.dialling.is_empty(),
        }
    }

    /// Telnyx says a leg is gone, or up: a gone leg ends in the record (as
    /// ended while ivrx was not listening, with what follows from it); an
    /// agent leg up that no caller needs any more is released.
    pub(super) fn on_leg_checked(&mut self, check: LegCheck, out: &mut Vec<Effect>) {
        let LegCheck { call_control_id: ccid, role, alive, at } = check;
        let (cause, source) = (Some(ENDED_UNOBSERVED.to_string()), Some(RECONCILIATION.to_string()));
        if self.caller.as_ref().is_some_and(|l| l.call_control_id == ccid) {
            if !alive {
                self.caller_ended(cause, source, at, out);
            }
            return;
        }
        if self.pstn.symbl.as_ref().is_some_and(|l| l.call_control_id == ccid) {
            if !alive {
                self.leg_gone(Role::Symbl, cause, source, at, out);
            }
            return;
        }
        let which = match self.which_agent_leg(&ccid) {
            Some(w) => w,
            // An agent leg this conversation has lost track of (a record
            // from an older version): released like any other.
            None if role == Role::Agent => {
                self.released.push(Released { leg: Leg::default(), command_id: None, sends: 0 });
                let i = self.released.len() - 1;
                self.released[i].leg.call_control_id = ccid;
                Which::Released(i)
            }
            None => return,
        };
        match (which, alive) {
            (_, false) => {
                if self.agent_ended(which, cause.clone(), source, at, out) && which == Which::Current {
                    self.on_agent_hangup(cause.as_deref(), at, out);
                }
            }
            (Which::Current, true) if self.phase == Phase::Ended => self.release_current(out),
            (Which::Current, true) => {}
            (Which::Released(i), true) => self.send_release(i, out),
        }
        self.maybe_end(at, out);
    }

    /// The known agent leg `ccid`, if any.
    fn which_agent_leg(&self, ccid: &str) -> Option<Which> {
        if self.agent.as_ref().is_some_and(|l| l.call_control_id == ccid) {
            return Some(Which::Current);
        }
        self.released.iter().position(|r| r.leg.call_control_id == ccid).map(Which::Released)
    }

    /// True when no agent leg is up or being released and no agent dial is unanswered.
    pub(super) fn agent_legs_settled(&self) -> bool {
        self.agent.as_ref().is_none_or(|l| l.ended)
            && self.released.iter().all(|r| r.leg.ended)
            && self.dialling.is_empty()
    }
}
