//! The transfer part of the session: reaching an agent (warm or cold), trying
//! the next agent when one does not answer, falling back to the IVR when none
//! does, and keeping a consistent record when the caller hangs up mid-way.
//!
//! Exactly once: every decision (the policy's, the caller's keypad or spoken
//! menu choice, a supervisor's) goes through [`claim`](crate::policy::claim),
//! and only a claimed decision starts a transfer; one starts only when none is
//! in progress and no agent is connected. After a failed transfer (no agent
//! reachable) the caller is back with the IVR and the decision is
//! [reopened](crate::policy::reopen): only the caller (keypad or menu) or a
//! supervisor can ask again. One agent per decision: moving on from an
//! attempt releases its leg (see [`agent_legs`](super::agent_legs)), so only
//! the current attempt's agent is ever bridged.

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, Bridge, Dial, Plain, PlaybackStart, Transfer};
use serde::{Deserialize, Serialize};

use super::text::briefing;
use super::{
    Command, DecisionSource, DomainEvent, Effect, LegTag, Notice, NoticeKind, Phase, Request, Role, Session,
    SpeakPurpose, TransferStatus,
};
use crate::policy::{Decision, Reason};
use crate::settings::TransferMode;

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct TransferProgress {
    pub queue: String,
    pub mode: TransferMode,
    pub targets: Vec<String>,
    /// 1-based index into `targets`.
    pub attempt: u32,
    pub status: TransferStatus,
    /// The attempt's number in the conversation (across decisions), which
    /// its agent leg's tag carries; 0 in sessions saved before it existed.
    #[serde(default)]
    pub leg_tag: u32,
    /// The caller was sent to the call queue (`[queue]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<super::waiting::Queued>,
}

/// A supervisor's request (`ivrx transfer`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManualTransfer {
    /// Transfer to this queue's agents.
    pub queue: Option<String>,
    /// Transfer to this number.
    pub to: Option<String>,
}

/// Why a manual transfer was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TransferRefused {
    /// The call is over.
    #[error("the call has already ended")]
    Ended,
    /// The caller has not been answered yet.
    #[error("the call has not been answered yet")]
    NotAnswered,
    /// A transfer is under way.
    #[error("a transfer is already in progress")]
    InProgress,
    /// An agent is already on the call.
    #[error("the caller is already connected to an agent")]
    AlreadyConnected,
    /// The call's transfer was already decided.
    #[error("the call's transfer has already been decided")]
    Decided,
    /// No such queue.
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
}

impl TransferRefused {
    /// A stable snake_case code for APIs and exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            TransferRefused::Ended => "ended",
            TransferRefused::NotAnswered => "not_answered",
            TransferRefused::InProgress => "in_progress",
            TransferRefused::AlreadyConnected => "already_connected",
            TransferRefused::Decided => "decided",
            TransferRefused::UnknownQueue(_) => "unknown_queue",
        }
    }
}

fn hangup_detail(cause: Option<&str>) -> String {
    match cause {
        Some("timeout") | Some("no_answer") => "no answer".into(),
        Some("call_rejected") => "refused".into(),
        Some("user_busy") => "busy".into(),
        Some(other) => other.replace('_', " "),
        None => "hung up".into(),
    }
}

impl Session {
    /// Starts a transfer a supervisor asked for, through the same exactly-once
    /// guard as the automatic one.
    pub fn request_transfer(&mut self, req: ManualTransfer, at: DateTime<Utc>) -> Result<Vec<Effect>, TransferRefused> {
        match self.phase {
            Phase::Ended => return Err(TransferRefused::Ended),
            Phase::Ringing => return Err(TransferRefused::NotAnswered),
            Phase::Transferring => return Err(TransferRefused::InProgress),
            Phase::WithAgent => return Err(TransferRefused::AlreadyConnected),
            Phase::Ivr | Phase::Closing => {}
        }
        let (queue, targets) = match (req.to, req.queue) {
            (Some(to), _) => ("direct".to_string(), vec![to]),
            (None, queue) => {
                let name = queue.unwrap_or_else(|| self.settings.policy.support_queue.clone());
                let q = self.settings.queues.get(&name).ok_or_else(|| TransferRefused::UnknownQueue(name.clone()))?;
                (name, q.agents.clone())
            }
        };
        let decision = Decision {
            reason: Reason::Manual,
            queue,
            trigger_index: 0,
            trigger_text: String::new(),
            trigger_phrase: None,
            tracker: None,
            numbers: self.last_snapshot.clone().unwrap_or_default(),
        };
        let decision = crate::policy::claim(&mut self.policy, decision).ok_or(TransferRefused::Decided)?;
        let mut out = Vec::new();
        self.start_transfer(decision, DecisionSource::Manual, Some(targets), at, &mut out);
        Ok(out)
    }

    /// Records the decision ([claimed](crate::policy::claim): the call's) and
    /// starts reaching the first agent.
    pub(super) fn start_transfer(
        &mut self,
        decision: Decision,
        source: DecisionSource,
        targets: Option<Vec<String>>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let targets =
            targets.or_else(|| self.settings.queues.get(&decision.queue).map(|q| q.agents.clone())).unwrap_or_default();
        let (queue, reason) = (decision.queue.clone(), decision.reason);
        self.withdraw_callback();
        self.record(at, DomainEvent::Decision { source, decision: decision.clone() }, out);
        out.push(Effect::Decided(reason));
        self.notify(NoticeKind::Decided, decision, None, at, out);
        if targets.is_empty() {
            // Configuration is validated, so this is a queue removed at run time.
            self.transfer = Some(TransferProgress {
                queue,
                mode: self.settings.transfer.mode,
                targets,
                attempt: 0,
                status: TransferStatus::Failed,
                leg_tag: 0,
                queued: None,
            });
            self.fail_transfer("the queue has no agents", at, out);
            return;
        }
        self.phase = Phase::Transferring;
        self.transfer = Some(TransferProgress {
            queue: queue.clone(),
            mode: self.settings.transfer.mode,
            targets,
            attempt: 1,
            status: TransferStatus::Dialing,
            leg_tag: 0,
            queued: None,
        });
        // Reach the agent first: it is the slow part, and the latency that matters.
        self.dial_attempt(at, out);
        self.stop_gather(out);
        let line = self
            .settings
            .queues
            .get(&queue)
            .and_then(|q| q.bridging_line.clone())
            .unwrap_or_else(|| self.settings.transfer.bridging_line.clone());
        self.say(Role::Caller, line, SpeakPurpose::Bridging, at, out);
    }

    pub(super) fn record_transfer(
        &mut self,
        status: TransferStatus,
        detail: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let Some(t) = self.transfer.as_mut() else { return };
        t.status = status;
        let event = DomainEvent::Transfer {
            attempt: t.attempt,
            queue: t.queue.clone(),
            target: t.targets.get(t.attempt.saturating_sub(1) as usize).cloned().unwrap_or_default(),
            mode: t.mode,
            status,
            detail,
            agent_call_control_id: self.agent.as_ref().map(|l| l.call_control_id.clone()),
        };
        let kind = match status {
            TransferStatus::Connected => Some(NoticeKind::Connected),
            TransferStatus::Failed => Some(NoticeKind::Failed),
            TransferStatus::Abandoned => Some(NoticeKind::Abandoned),
            _ => None,
        };
        let told = match (&event, kind, self.policy.decision.clone()) {
            (DomainEvent::Transfer { detail, .. }, Some(kind), Some(decision)) => {
                Some((kind, decision, detail.clone()))
            }
            _ => None,
        };
        self.record(at, event, out);
        if let Some((kind, decision, detail)) = told {
            self.notify(kind, decision, detail, at, out);
        }
    }

    /// Tells people outside the call that the transfer was decided or ended.
    fn notify(
        &self,
        kind: NoticeKind,
        decision: Decision,
        detail: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        // A decision starts a transfer: the one before it (if any) is not its.
        let t = self.transfer.as_ref().filter(|_| kind != NoticeKind::Decided);
        out.push(Effect::Notify(Box::new(Notice {
            kind,
            decision,
            caller: self.caller_number.clone(),
            attempt: t.map_or(0, |t| t.attempt),
            target: t.and_then(|t| t.targets.get(t.attempt.saturating_sub(1) as usize).cloned()),
            detail,
            at,
        })));
    }

    /// Dials (warm) or transfers to (cold) the current attempt's agent, after
    /// releasing the leg of the attempt before (if it is still up).
    fn dial_attempt(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(target) = self.current_target() else { return };
        self.release_current(out);
        self.attempts_made += 1;
        let leg_tag = self.attempts_made;
        let Some(t) = self.transfer.as_mut() else { return };
        t.leg_tag = leg_tag;
        let mode = t.mode;
        self.record_transfer(TransferStatus::Dialing, None, at, out);
        let tag = self.tag(Role::Agent, Some(leg_tag));
        let ring = self.settings.transfer.ring_timeout_secs;
        // A caller in a conference is never transferred away: the agent is
        // dialled and joins the conference, whatever the mode.
        let mode = if self.in_conference() { TransferMode::Warm } else { mode };
        let headers = self
            .policy
            .decision
            .as_ref()
            .map(|d| self.settings.transfer.headers.for_decision(&self.id, d, self.settings.redact_pii));
        let headers = headers.filter(|h| !h.is_empty());
        match mode {
            TransferMode::Warm => {
                let command_id = self.next_command_id();
                self.dialling.push((command_id.clone(), leg_tag));
                // The agent's words are transcribed from the moment they answer.
                let dial = Dial {
                    connection_id: self.settings.connection_id.clone(),
                    from: self.settings.ivr.number.clone(),
                    to: target,
                    client_state: Some(tag),
                    command_id: Some(command_id),
                    // The agent's leg joins the caller's call session.
                    link_to: self.leg(Role::Caller).filter(|l| !l.ended).map(|l| l.call_control_id.clone()),
                    webhook_url: self.settings.webhook_url.clone(),
                    timeout_secs: Some(ring),
                    transcription: Some(true),
                    transcription_config: Some(self.settings.transcription.config_for_answer(super::flow::TRACKS)),
                    custom_headers: headers,
                    ..Default::default()
                };
                out.push(Effect::Send(Command {
                    call_control_id: None,
                    role: Role::Agent,
                    request: Request::Dial(dial),
                }));
            }
            TransferMode::Cold => {
                let body = Transfer {
                    to: Some(target),
                    from: Some(self.settings.ivr.number.clone()),
                    timeout_secs: Some(ring),
                    target_leg_client_state: Some(tag),
                    webhook_url: self.settings.webhook_url.clone(),
                    custom_headers: headers,
                    ..Default::default()
                };
                self.send(Role::Caller, Action::Transfer(body), out);
            }
        }
    }

    /// How the transfer under way reaches its agents (the configured mode,
    /// but always warm once the caller waits in the queue).
    fn transfer_mode(&self) -> TransferMode {
        self.transfer.as_ref().map_or(self.settings.transfer.mode, |t| t.mode)
    }

    /// The current attempt's agent number.
    pub(super) fn current_target(&self) -> Option<String> {
        let t = self.transfer.as_ref()?;
        t.targets.get(t.attempt.checked_sub(1)? as usize).cloned()
    }

    /// The tag number of the current attempt's agent leg.
    pub(super) fn current_leg_tag(&self) -> Option<u32> {
        // Sessions saved before attempts were numbered across decisions tagged the index.
        self.transfer.as_ref().map(|t| if t.leg_tag == 0 { t.attempt } else { t.leg_tag })
    }

    /// True when an agent-leg event belongs to the attempt under way.
    pub(super) fn is_current_attempt(&self, tag: Option<&LegTag>) -> bool {
        matches!((tag.and_then(|t| t.attempt), self.current_leg_tag()), (Some(a), Some(c)) if a == c)
    }

    /// The current attempt's agent joined: their phone rings.
    pub(super) fn agent_ringing(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase == Phase::Transferring
            && self.transfer.as_ref().is_some_and(|t| t.status == TransferStatus::Dialing)
        {
            self.record_transfer(TransferStatus::Ringing, None, at, out);
        }
    }

    /// The current attempt's agent answered (recorded): brief them (warm) or
    /// the transfer is done (cold).
    pub(super) fn on_agent_answered(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Transferring {
            return;
        }
        if self.in_conference() && self.transfer_mode() == TransferMode::Cold {
            // Cold in a conference: no briefing, straight in.
            self.record_transfer(TransferStatus::Answered, None, at, out);
            self.start_transcription(Role::Agent, out);
            self.join_agent(at, out);
            return;
        }
        match self.transfer_mode() {
            TransferMode::Warm => {
                self.record_transfer(TransferStatus::Answered, None, at, out);
                // Listen from the start: the agent may speak as soon as the caller is bridged in.
                self.start_transcription(Role::Agent, out);
                let text = match &self.policy.decision {
                    Some(d) => briefing(d, self.topic.as_deref()),
                    None => "Incoming call. Connecting you now.".into(),
                };
                self.say(Role::Agent, text, SpeakPurpose::Briefing, at, out);
            }
            TransferMode::Cold => self.connected(at, out),
        }
    }

    /// The agent has heard the briefing: bridge the caller in.
    pub(super) fn on_briefing_done(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Transferring {
            return;
        }
        if self.callback_call_caller(at, out) {
            return;
        }
        let caller_up = self.caller.as_ref().is_some_and(|l| !l.ended);
        let Some(agent) = self.agent.as_ref().filter(|l| !l.ended && caller_up) else { return };
        let agent_ccid = agent.call_control_id.clone();
        if self.in_conference() {
            self.join_agent(at, out);
            return;
        }
        if !self.bridge_from_queue(at, out) {
            let body = Bridge { call_control_id: Some(agent_ccid), ..Default::default() };
            self.bridge(Role::Caller, body, at, out);
        }
    }

    /// Ends the hold music and sends the bridge of caller and agent from `from`'s leg.
    pub(super) fn bridge(&mut self, from: Role, body: Bridge, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.hold_music {
            self.send(Role::Caller, Action::PlaybackStop(Plain::default()), out);
            self.hold_music = false;
        }
        self.send(from, Action::Bridge(body), out);
        self.record_transfer(TransferStatus::Bridging, None, at, out);
    }

    /// The bridging line has been said: play hold music until an agent is bridged in.
    pub(super) fn on_bridging_line_done(&mut self, out: &mut Vec<Effect>) {
        let waiting = self.phase == Phase::Transferring
            && (self.transfer_mode() == TransferMode::Warm || self.in_conference())
            && self.transfer.as_ref().is_some_and(|t| {
                matches!(t.status, TransferStatus::Dialing | TransferStatus::Ringing | TransferStatus::Answered)
            });
        if waiting && !self.hold_music {
            let body = PlaybackStart {
                audio_url: Some(self.settings.transfer.hold_music_url.clone()),
                loop_: Some(serde_json::Value::String("infinity".into())),
                ..Default::default()
            };
            self.send(Role::Caller, Action::PlaybackStart(body), out);
            self.hold_music = true;
        }
    }

    pub(super) fn on_bridged(&mut self, role: Role, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Transferring {
            return;
        }
        match self.transfer_mode() {
            TransferMode::Warm => self.connected(at, out),
            TransferMode::Cold => {
                // Telnyx bridges the B leg while it still rings; connected on answer.
                let _ = role;
                if self.transfer.as_ref().is_some_and(|t| t.status != TransferStatus::Bridging) {
                    self.record_transfer(TransferStatus::Bridging, None, at, out);
                }
            }
        }
    }

    pub(super) fn connected(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Transferring {
            return;
        }
        self.phase = Phase::WithAgent;
        self.hold_music = false;
        self.record_transfer(TransferStatus::Connected, None, at, out);
        self.start_transcription(Role::Agent, out);
    }

    /// The current attempt's agent hung up (recorded): during the transfer,
    /// the attempt failed and the next agent is tried.
    pub(super) fn on_agent_hangup(&mut self, cause: Option<&str>, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase == Phase::Transferring {
            self.give_up_attempt(hangup_detail(cause), at, out);
        }
    }

    /// The current attempt failed: its agent is released and the next one tried.
    pub(super) fn give_up_attempt(&mut self, detail: String, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.record_transfer(TransferStatus::AttemptFailed, Some(detail), at, out);
        self.next_attempt(at, out);
    }

    pub(super) fn next_attempt(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(t) = self.transfer.as_mut() else { return };
        if (t.attempt as usize) < t.targets.len() {
            t.attempt += 1;
            self.dial_attempt(at, out);
        } else if self.callback_round_failed(out) {
            // The callback waits for its next round.
        } else if !self.wait_instead_of_failing(at, out) {
            self.fail_transfer("no agent answered", at, out);
        }
    }

    /// No agent could be reached: tell the caller and keep them with the IVR.
    fn fail_transfer(&mut self, detail: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let line = self.settings.transfer.failure_line.clone();
        self.fail_transfer_with(&line, detail, at, out);
    }

    /// [`fail_transfer`](Self::fail_transfer), saying `line` before the menu.
    pub(super) fn fail_transfer_with(&mut self, line: &str, detail: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.record_transfer(TransferStatus::Failed, Some(detail.to_string()), at, out);
        self.release_current(out);
        crate::policy::reopen(&mut self.policy);
        if self.caller.as_ref().is_none_or(|l| l.ended) {
            return;
        }
        self.phase = Phase::Ivr;
        if self.hold_music {
            self.send(Role::Caller, Action::PlaybackStop(Plain::default()), out);
            self.hold_music = false;
        }
        self.reprompts = 0;
        let prompt = format!("{line} {}", self.settings.ivr.menu_prompt);
        self.gather_with_prompt(prompt, at, out);
    }

    /// The caller hung up: abandon any transfer and release the agent leg
    /// (an agent dial still unanswered is released when its leg shows up).
    pub(super) fn on_caller_gone(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase == Phase::Transferring {
            self.record_transfer(TransferStatus::Abandoned, Some("caller hung up".into()), at, out);
        }
        self.release_current(out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_command_failed(
        &mut self,
        command_id: &str,
        action: &str,
        role: Role,
        call_gone: bool,
        error: String,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        if self.on_release_failed(command_id, call_gone, &error, at, out) {
            return;
        }
        if call_gone && action == "hangup" {
            // The leg had already gone: exactly what the hangup wanted. Its
            // `call.hangup` may come later (then it is ignored) or never.
            match role {
                Role::Caller => self.caller_ended(None, None, at, out),
                Role::Agent => {
                    self.agent_ended(super::agent_legs::Which::Current, None, None, at, out);
                    self.maybe_end(at, out);
                }
                Role::Symbl => self.leg_gone(role, None, None, at, out),
            }
            return;
        }
        // A dial that failed for good may still have placed the call: its leg
        // is released if it shows up. Once the leg is known, its own events decide.
        let current_dial = action == "dial" && self.dial_failed(command_id) && self.agent.is_none();
        self.record(
            at,
            DomainEvent::CommandFailed { action: action.to_string(), role, call_gone, error: error.clone() },
            out,
        );
        if action == "dial" && role == Role::Caller {
            // The callback's call to the caller could not be placed.
            self.callback_caller_gone(Some(error.clone()), at, out);
            if self.phase == Phase::Transferring && self.callback.as_ref().is_some_and(|c| c.done) {
                self.phase = Phase::Ended;
            }
            self.maybe_end(at, out);
            return;
        }
        match action {
            "dial" if current_dial && self.phase == Phase::Transferring => self.give_up_attempt(error, at, out),
            "dial" => self.maybe_end(at, out),
            "transfer" if self.phase == Phase::Transferring && self.agent.is_none() => {
                self.give_up_attempt(error, at, out)
            }
            "bridge" if self.phase == Phase::Transferring && !call_gone => self.give_up_attempt(error, at, out),
            "enqueue" if self.phase == Phase::Transferring => {
                if let Some(t) = self.transfer.as_mut() {
                    t.queued = None;
                }
                self.fail_transfer(&format!("the caller could not wait in the queue: {error}"), at, out);
            }
            "speak" => {
                if let Some(pos) = self.speaks.iter().position(|(r, _)| *r == role) {
                    if let Some((_, purpose)) = self.speaks.remove(pos) {
                        self.after_speak(purpose, at, out);
                    }
                }
            }
            "gather_using_speak" | "gather" => self.gather_active = false,
            "conference_create" | "conference_join" => self.on_conference_failed(action, role, call_gone, at, out),
            "playback_start" => self.hold_music = false,
            _ => {}
        }
    }

    /// Places an outbound call (`ivrx dial` in live mode): the called party
    /// goes through the IVR like a caller.
    pub fn dial_out(&mut self, to: String, from: String, at: DateTime<Utc>) -> Vec<Effect> {
        let mut out = Vec::new();
        self.started_at.get_or_insert(at);
        let mut dial = Dial {
            connection_id: self.settings.connection_id.clone(),
            from,
            to,
            client_state: Some(self.tag(Role::Caller, None)),
            command_id: Some(self.next_command_id()),
            webhook_url: self.settings.webhook_url.clone(),
            ..Default::default()
        };
        // Transcribed from the moment they answer (see `on_caller_initiated`).
        if !self.symbl_listens() {
            dial.transcription = Some(true);
            dial.transcription_config = Some(self.settings.transcription.config_for_answer(super::flow::TRACKS));
        }
        out.push(Effect::Send(Command { call_control_id: None, role: Role::Caller, request: Request::Dial(dial) }));
        out
    }
}
