//! Symbl in PSTN mode, the original Telnyx + Symbl demo's design: the caller
//! is put in a Telnyx conference that Symbl dials into, and Symbl's real-time
//! transcripts are the caller's utterances.
//!
//! 1. An inbound caller is not answered at once: the session asks for Symbl
//!    ([`Effect::StartSymbl`]); the caller hears ringing.
//! 2. Symbl's phone leg calls in and identifies itself
//!    ([`SymblInput::LegArrived`], see [`super::symbl_leg`]); now the caller is
//!    answered, a conference is created with the caller (named after the
//!    conversation, tagged with the caller's state), the greeting plays, and
//!    Symbl's leg joins once the conference id is known.
//! 3. Symbl's settled messages ([`SymblInput::Heard`]) become caller
//!    utterances, scored by Symbl (their message ids go with the score
//!    request) and fed to the same policy.
//! 4. A transfer dials the agent as usual and, once briefed, the agent joins
//!    the same conference (`end_conference_on_exit`, so the call ends when the
//!    agent hangs up): one conversation id throughout. From then on Telnyx
//!    transcribes each leg's own voice; Symbl keeps listening for the summary.
//! 5. When the caller hangs up Symbl is asked to leave ([`Effect::StopSymbl`])
//!    and its topics and trackers are stored.
//!
//! The IVR speaks on the caller's leg only. Should the carrier also mix that
//! speech into the conference, Symbl would transcribe the IVR: a settled
//! message of four words or more that is part of one of the IVR's last
//! prompts is taken for such an echo and dropped.
//!
//! If Symbl cannot dial in, its connection dies, its leg hangs up or a
//! conference command fails, the session falls back for the rest of the call
//! ([`SymblInput::Failed`]): one `engine_fallback` record, Telnyx transcription
//! on the caller's leg, the local engine, and the caller answered if they were
//! still waiting.

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, Plain};
use ivrx_telnyx::conferences::{ConferenceCommand, ConferenceCreate, ConferenceJoin};
use ivrx_telnyx::events::{CallHangup, ConferenceNotice};
use serde::{Deserialize, Serialize};

use super::agent_legs::Joined;
use super::text::normalize;
use super::{Command, DomainEvent, Effect, Leg, Phase, Request, Role, Session, Speaker, TransferStatus};

/// What happened on Symbl's side of a PSTN-mode call.
#[derive(Debug, Clone, PartialEq)]
pub enum SymblInput {
    /// Symbl's phone leg called in and pressed this conversation's code.
    LegArrived {
        /// The leg.
        call_control_id: String,
        /// Its `call_leg_id`.
        call_leg_id: Option<String>,
        /// Its `call_session_id`.
        call_session_id: Option<String>,
        /// The number Symbl called from.
        from: Option<String>,
        /// The number it called.
        to: Option<String>,
        /// When it was identified.
        at: DateTime<Utc>,
    },
    /// Symbl's real-time results: interim text, or settled messages (final).
    Heard {
        /// The text.
        text: String,
        /// False for interim text that may still change.
        is_final: bool,
        /// The ids of the settled messages (final only), for their sentiment.
        message_ids: Vec<String>,
        /// When it arrived.
        at: DateTime<Utc>,
    },
    /// Symbl failed for this call (could not dial in, its connection died,
    /// it answered too slowly).
    Failed {
        /// What went wrong.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Where the PSTN-mode plumbing of one call is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PstnState {
    /// Symbl was asked to dial in.
    pub requested: bool,
    /// Symbl failed: Telnyx transcription and the local engine from now on.
    pub failed: bool,
    /// Symbl was asked to leave.
    pub stopped: bool,
    /// Why Symbl failed, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The create command went out.
    pub creating: bool,
    /// The caller's conference.
    pub conference: Option<String>,
    /// Symbl's phone leg.
    pub symbl: Option<Leg>,
    /// Symbl's leg was asked to join / is in the conference.
    pub symbl_joining: bool,
    pub symbl_in: bool,
    /// The agent was asked to join.
    pub agent_joining: bool,
    /// The IVR's last few prompts, normalised (to recognise an echo).
    #[serde(default)]
    pub ivr_said: std::collections::VecDeque<String>,
}

/// Prompts remembered for echo detection.
const ECHO_PROMPTS: usize = 3;
/// Shorter messages are never taken for an echo.
const ECHO_MIN_WORDS: usize = 4;

impl Session {
    /// True while Symbl is (meant to be) the caller's ears.
    pub(super) fn symbl_listens(&self) -> bool {
        self.settings.symbl_pstn && !self.pstn.failed
    }

    /// True when the caller is (being put) in a conference.
    pub(super) fn in_conference(&self) -> bool {
        self.pstn.conference.is_some() || self.pstn.creating
    }

    /// True while the driver should have a live link to Symbl for this call
    /// (a worker resuming a stored call has none: it reports Symbl as failed).
    pub fn awaits_symbl(&self) -> bool {
        self.settings.symbl_pstn && self.pstn.requested && !self.pstn.stopped && !self.is_ended()
    }

    /// Why Symbl failed for this call (PSTN mode), once it did.
    pub fn symbl_failure(&self) -> Option<&str> {
        self.pstn.failure.as_deref()
    }

    /// Remembers what the IVR said (PSTN mode), to recognise it if Symbl hears it.
    pub(super) fn note_ivr_speech(&mut self, text: &str) {
        if !self.settings.symbl_pstn {
            return;
        }
        if self.pstn.ivr_said.len() == ECHO_PROMPTS {
            self.pstn.ivr_said.pop_front();
        }
        self.pstn.ivr_said.push_back(normalize(text));
    }

    /// True when Symbl's text is the IVR's own speech coming back.
    fn is_echo(&self, text: &str) -> bool {
        let heard = normalize(text);
        heard.split(' ').count() >= ECHO_MIN_WORDS
            && self.pstn.ivr_said.iter().any(|said| format!(" {said} ").contains(&format!(" {heard} ")))
    }

    /// Asks Symbl to dial in, once.
    pub(super) fn request_symbl(&mut self, out: &mut Vec<Effect>) {
        if self.pstn.requested || !self.symbl_listens() {
            return;
        }
        self.pstn.requested = true;
        out.push(Effect::StartSymbl);
    }

    pub(super) fn on_symbl(&mut self, input: SymblInput, out: &mut Vec<Effect>) {
        match input {
            SymblInput::LegArrived { call_control_id, call_leg_id, call_session_id, from, to, at } => {
                self.on_symbl_arrived(call_control_id, call_leg_id, call_session_id, from, to, at, out)
            }
            SymblInput::Heard { text, is_final, message_ids, at } => {
                // Once an agent is on the line Symbl hears both voices; each
                // leg's own transcription takes over (Symbl stays for the summary).
                let listening = matches!(self.phase, Phase::Ivr | Phase::Transferring | Phase::Closing);
                if self.symbl_listens() && !self.pstn.stopped && listening && !self.is_echo(&text) {
                    self.heard(Speaker::Caller, &text, is_final, None, message_ids, at, out);
                }
            }
            SymblInput::Failed { reason, at } => self.fall_back(reason, at, out),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_symbl_arrived(
        &mut self,
        ccid: String,
        call_leg_id: Option<String>,
        call_session_id: Option<String>,
        from: Option<String>,
        to: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let wanted = self.symbl_listens() && !self.pstn.stopped && self.phase != Phase::Ended;
        if !wanted || self.pstn.symbl.is_some() {
            // Late, or a second leg for the same code: it has no place here.
            if self.pstn.symbl.as_ref().is_none_or(|l| l.call_control_id != ccid) {
                let mut hangup = Action::Hangup(Plain::default());
                hangup.set_command_id(self.next_command_id());
                out.push(Effect::Send(Command {
                    call_control_id: Some(ccid),
                    role: Role::Symbl,
                    request: Request::Action(hangup),
                }));
            }
            return;
        }
        self.pstn.symbl = Some(Leg { call_control_id: ccid.clone(), answered: true, ..Leg::default() });
        self.leg_joined(Role::Symbl, ccid, Joined { call_leg_id, call_session_id, from, to }, at, out);
        out.push(Effect::SymblJoined);
        if self.phase == Phase::Ringing && self.caller.as_ref().is_some_and(|l| !l.answered && !l.ended) {
            self.answer_caller(out);
        }
        self.join_symbl(out);
    }

    /// Creates the caller's conference (named after the conversation; its
    /// webhooks carry the caller's state, so they come back here).
    pub(super) fn create_conference(&mut self, out: &mut Vec<Effect>) {
        if self.in_conference() {
            return;
        }
        let Some(caller) = self.caller.as_ref().filter(|l| !l.ended) else { return };
        let body = ConferenceCreate {
            call_control_id: caller.call_control_id.clone(),
            name: self.id.clone(),
            client_state: Some(self.tag(Role::Caller, None)),
            command_id: Some(self.next_command_id()),
            beep_enabled: Some("never".into()),
            ..Default::default()
        };
        self.pstn.creating = true;
        out.push(Effect::Send(Command {
            call_control_id: Some(body.call_control_id.clone()),
            role: Role::Caller,
            request: Request::Conference(ConferenceCommand::Create(body)),
        }));
    }

    pub(super) fn on_conference_created(&mut self, e: &ConferenceNotice, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let ours = self.caller.as_ref().is_some_and(|l| e.ids.call_control_id.as_deref() == Some(&l.call_control_id));
        if let (true, Some(id)) = (ours, e.conference_id.clone()) {
            self.on_conference_ready(id, at, out);
        }
    }

    pub(super) fn on_conference_ready(&mut self, conference_id: String, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.pstn.conference.is_some() || !self.pstn.creating {
            return;
        }
        self.pstn.conference = Some(conference_id);
        self.join_symbl(out);
        // An agent briefed while the conference was still being made.
        if self.transfer.as_ref().is_some_and(|t| t.status == TransferStatus::Bridging) && !self.pstn.agent_joining {
            self.join_agent(at, out);
        }
    }

    fn join(&mut self, role: Role, end_on_exit: bool, out: &mut Vec<Effect>) {
        let Some(conference_id) = self.pstn.conference.clone() else { return };
        let Some(leg) = self.leg(role).filter(|l| !l.ended) else { return };
        let body = ConferenceJoin {
            call_control_id: leg.call_control_id.clone(),
            client_state: Some(
                self.tag(role, self.transfer.as_ref().map(|t| t.attempt).filter(|_| role == Role::Agent)),
            ),
            command_id: Some(self.next_command_id()),
            end_conference_on_exit: end_on_exit.then_some(true),
            beep_enabled: Some("never".into()),
            ..Default::default()
        };
        out.push(Effect::Send(Command {
            call_control_id: Some(body.call_control_id.clone()),
            role,
            request: Request::Conference(ConferenceCommand::Join { conference_id, body }),
        }));
    }

    /// Symbl's leg joins once both it and the conference are there.
    fn join_symbl(&mut self, out: &mut Vec<Effect>) {
        if self.pstn.symbl_joining || self.pstn.conference.is_none() || self.pstn.symbl.is_none() {
            return;
        }
        self.pstn.symbl_joining = true;
        self.join(Role::Symbl, false, out);
    }

    /// The briefed agent joins the caller's conference; their leaving ends it.
    pub(super) fn join_agent(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Transferring || self.pstn.agent_joining {
            return;
        }
        let caller_up = self.caller.as_ref().is_some_and(|l| !l.ended);
        if !caller_up || self.agent.as_ref().is_none_or(|l| l.ended) {
            return;
        }
        if self.transfer.as_ref().is_some_and(|t| t.status != TransferStatus::Bridging) {
            self.record_transfer(TransferStatus::Bridging, None, at, out);
        }
        if self.pstn.conference.is_none() {
            return; // joins when the conference is ready
        }
        if self.hold_music {
            self.send(Role::Caller, Action::PlaybackStop(Plain::default()), out);
            self.hold_music = false;
        }
        self.pstn.agent_joining = true;
        self.join(Role::Agent, true, out);
    }

    pub(super) fn on_participant_joined(&mut self, e: &ConferenceNotice, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(ccid) = e.ids.call_control_id.as_deref() else { return };
        if self.pstn.symbl.as_ref().is_some_and(|l| l.call_control_id == ccid) {
            self.pstn.symbl_in = true;
            return;
        }
        let agent = self.agent.as_ref().is_some_and(|l| l.call_control_id == ccid && !l.ended);
        if agent && self.phase == Phase::Transferring {
            self.pstn.agent_joining = false;
            self.connected(at, out);
            // Symbl now hears both voices: each leg's own transcript takes over.
            self.start_transcription(Role::Caller, out);
        }
    }

    /// Symbl failed for this call: one record, and the call goes on with
    /// Telnyx transcription and the local engine.
    pub(super) fn fall_back(&mut self, reason: String, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if !self.settings.symbl_pstn || self.pstn.failed || self.pstn.stopped {
            return;
        }
        self.pstn.failed = true;
        self.pstn.stopped = true;
        self.pstn.failure = Some(reason.clone());
        self.record(at, DomainEvent::EngineFallback { from: "symbl".into(), to: "local".into(), reason }, out);
        out.push(Effect::StopSymbl { fallback: true });
        if self.pstn.symbl.as_ref().is_some_and(|l| !l.ended) {
            self.send(Role::Symbl, Action::Hangup(Plain::default()), out);
        }
        match self.phase {
            Phase::Ringing => {
                if self.caller.as_ref().is_some_and(|l| !l.answered && !l.ended) {
                    self.answer_caller(out);
                }
            }
            Phase::Ended => {}
            _ => self.start_transcription(Role::Caller, out),
        }
    }

    pub(super) fn on_symbl_hangup(&mut self, e: &CallHangup, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if !self.end_leg(Role::Symbl, e, at, out) {
            return;
        }
        if self.phase != Phase::Ended {
            self.fall_back("Symbl's phone leg hung up".into(), at, out);
        }
    }

    /// The caller is gone: Symbl leaves, and its summary is stored.
    pub(super) fn symbl_done(&mut self, out: &mut Vec<Effect>) {
        if self.pstn.symbl.as_ref().is_some_and(|l| !l.ended) {
            self.send(Role::Symbl, Action::Hangup(Plain::default()), out);
        }
        if self.pstn.requested && !self.pstn.stopped {
            self.pstn.stopped = true;
            out.push(Effect::StopSymbl { fallback: false });
        }
    }

    /// A conference command failed for good.
    pub(super) fn on_conference_failed(
        &mut self,
        action: &str,
        role: Role,
        call_gone: bool,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        match (action, role) {
            ("conference_create", _) => {
                self.pstn.creating = false;
                if !call_gone {
                    self.fall_back("the conference for Symbl could not be created".into(), at, out);
                }
            }
            ("conference_join", Role::Symbl) => {
                self.fall_back("Symbl's phone leg could not join the conference".into(), at, out)
            }
            ("conference_join", Role::Agent) if self.phase == Phase::Transferring => {
                self.pstn.agent_joining = false;
                self.give_up_attempt("could not join the conference".into(), at, out);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "symbl_link_tests.rs"]
mod tests;
