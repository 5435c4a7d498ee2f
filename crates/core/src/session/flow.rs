//! The IVR part of the session: answering, the menu, listening, replying,
//! scoring and ending politely.

use chrono::{DateTime, Utc};
use ivrx_intel::{Label, Score};
use ivrx_telnyx::commands::{Action, Gather, GatherUsingSpeak, Plain, Speak};
use ivrx_telnyx::events::{
    CallAnswered, CallHangup, CallInitiated, Direction, Event, GatherEnded, GatherStatus, Transcription,
    TranscriptionTrack,
};

use super::agent_legs::Joined;
use super::text::{contains_phrase, normalize};
use super::{
    DecisionSource, DomainEvent, Effect, Leg, LegTag, PendingUtterance, Phase, Role, ScoreRequest, Session,
    SpeakPurpose, Speaker,
};
use crate::keypad::{KeyRoute, Keypad};
use crate::policy::{self, Decision, PolicySnapshot, Reason};

impl Session {
    pub(super) fn on_event(&mut self, event: Event, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let tag = LegTag::decode(event.client_state()).filter(|t| t.conv == self.id);
        let role = self.role_of(event.call_control_id(), tag.as_ref());
        if role == Some(Role::Agent) && self.on_agent_event(&event, tag.as_ref(), at, out) {
            return;
        }
        if let (Event::CallInitiated(e), Some(Role::Caller)) = (&event, role) {
            if self.callback_leg_joined(e, at, out) {
                return;
            }
        }
        match event {
            Event::CallInitiated(e) => match tag.as_ref().map(|t| t.role) {
                Some(Role::Agent | Role::Symbl) => {} // Symbl's leg arrives identified (SymblInput::LegArrived)
                _ => self.on_caller_initiated(&e, tag.is_some(), at, out),
            },
            Event::CallAnswered(e) if role == Some(Role::Caller) => self.on_caller_answered(&e, at, out),
            Event::CallHangup(e) => match role {
                Some(Role::Caller) => self.on_caller_hangup(&e, at, out),
                Some(Role::Symbl) => self.on_symbl_hangup(&e, at, out),
                Some(Role::Agent) | None => {}
            },
            Event::ConferenceCreated(e) => self.on_conference_created(&e, at, out),
            Event::ConferenceParticipantJoined(e) => self.on_participant_joined(&e, at, out),
            Event::SpeakEnded(_) => {
                if let Some(role) = role {
                    self.on_speak_ended(role, at, out);
                }
            }
            Event::GatherEnded(e) if role == Some(Role::Caller) => self.on_gather_ended(&e, at, out),
            Event::DtmfReceived(e) if role == Some(Role::Caller) && !self.gather_active => {
                self.record(at, DomainEvent::Dtmf { digits: e.digit.clone(), choice: None }, out);
            }
            Event::Transcription(t) => {
                if let Some(role) = role {
                    self.on_transcription(role, &t, at, out);
                }
            }
            Event::CallBridged(_) => {
                if let Some(role) = role {
                    self.on_bridged(role, at, out);
                }
            }
            Event::PlaybackEnded(e) if role == Some(Role::Caller) => {
                self.hold_music = false;
                if e.status.as_deref() == Some("completed") {
                    self.on_hold_played(at, out);
                }
            }
            Event::CallEnqueued(e) if role == Some(Role::Caller) => self.on_enqueued(&e, at, out),
            Event::CallDequeued(e) if role == Some(Role::Caller) => self.on_dequeued(&e, at, out),
            _ => {}
        }
    }

    /// Which leg an event is about: by call_control_id, else by its tag.
    fn role_of(&self, ccid: Option<&str>, tag: Option<&LegTag>) -> Option<Role> {
        if let Some(ccid) = ccid {
            if self.caller.as_ref().is_some_and(|l| l.call_control_id == ccid) {
                return Some(Role::Caller);
            }
            let agent = |l: &Leg| l.call_control_id == ccid;
            if self.agent.as_ref().is_some_and(agent) || self.released.iter().any(|r| agent(&r.leg)) {
                return Some(Role::Agent);
            }
            if self.pstn.symbl.as_ref().is_some_and(|l| l.call_control_id == ccid) {
                return Some(Role::Symbl);
            }
        }
        tag.map(|t| t.role)
    }

    fn on_caller_initiated(&mut self, e: &CallInitiated, tagged: bool, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(ccid) = e.ids.call_control_id.clone() else { return };
        if self.caller.is_some() {
            return; // a repeat of the same call
        }
        // A leg ivrx dialled (`dial_out`) was dialled with transcription.
        let transcribing = tagged && !self.symbl_listens();
        self.caller = Some(Leg { call_control_id: ccid.clone(), transcribing, ..Leg::default() });
        self.started_at.get_or_insert(at);
        // A call ivrx placed (`dial_out`) has the caller at its far end.
        let inbound = e.direction.as_ref().is_none_or(|d| d.as_str() == "incoming");
        self.caller_number = if inbound { e.from.clone() } else { e.to.clone() };
        self.record(
            at,
            DomainEvent::CallStarted {
                call_control_id: ccid.clone(),
                direction: e.direction.as_ref().map(|d| d.as_str().to_string()).unwrap_or_default(),
                from: e.from.clone(),
                to: e.to.clone(),
            },
            out,
        );
        self.leg_joined(Role::Caller, ccid, Joined::of(e), at, out);
        let incoming = e.direction.as_ref().is_none_or(|d| *d == Direction::Incoming);
        if incoming && !tagged {
            if self.settings.symbl_pstn {
                // The caller hears ringing until Symbl is on the line (or failed).
                self.request_symbl(out);
            } else {
                self.answer_caller(out);
            }
        }
    }

    /// Answers the caller's (inbound) leg, tagging it with the conversation.
    /// Unless Symbl is the caller's ears, transcription starts with the
    /// answer, so the caller's first words are heard however late the
    /// `call.answered` webhook comes back.
    pub(super) fn answer_caller(&mut self, out: &mut Vec<Effect>) {
        let transcribe = !self.symbl_listens();
        let mut answer = ivrx_telnyx::commands::Answer {
            common: ivrx_telnyx::commands::Common {
                client_state: Some(self.tag(Role::Caller, None)),
                command_id: None,
            },
            ..Default::default()
        };
        if transcribe {
            answer.transcription = Some(true);
            answer.transcription_config = Some(self.settings.transcription.config_for_answer(TRACKS));
        }
        let before = out.len();
        self.send(Role::Caller, Action::Answer(answer), out);
        if transcribe && out.len() > before {
            if let Some(leg) = self.caller.as_mut() {
                leg.transcribing = true;
            }
        }
    }

    fn on_caller_answered(&mut self, _e: &CallAnswered, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(leg) = self.caller.as_mut() else { return };
        if leg.answered || leg.ended {
            return;
        }
        leg.answered = true;
        let ccid = leg.call_control_id.clone();
        self.record(at, DomainEvent::LegAnswered { role: Role::Caller, call_control_id: ccid }, out);
        if self.callback_answered(at, out) {
            return;
        }
        if self.phase != Phase::Ringing {
            return;
        }
        self.phase = Phase::Ivr;
        if self.symbl_listens() {
            // Symbl is the caller's ears: into the conference it dials into.
            self.request_symbl(out);
            self.create_conference(out);
        } else {
            self.start_transcription(Role::Caller, out);
        }
        let prompt = format!("{} {}", self.settings.ivr.greeting, self.settings.ivr.menu_prompt);
        self.gather_with_prompt(prompt, at, out);
    }

    /// Starts transcription on a leg that was not answered with it (an agent
    /// reached by a transfer, the caller once Symbl stops listening).
    pub(super) fn start_transcription(&mut self, role: Role, out: &mut Vec<Effect>) {
        let Some(leg) = self.leg_mut(role).filter(|l| !l.transcribing) else { return };
        leg.transcribing = true;
        let body = self.settings.transcription.start(TRACKS);
        self.send(role, Action::TranscriptionStart(body), out);
    }

    fn on_caller_hangup(&mut self, e: &CallHangup, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let cause = e.hangup_cause.as_ref().map(|c| c.as_str().to_string());
        let source = e.hangup_source.as_ref().map(|s| s.as_str().to_string());
        self.caller_ended(cause, source, at, out);
    }

    /// The caller's leg is gone (its `call.hangup`, or a hangup answered with
    /// 90018): record it once and end the conversation.
    pub(super) fn caller_ended(
        &mut self,
        cause: Option<String>,
        source: Option<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let Some(leg) = self.caller.as_mut() else { return };
        if leg.ended {
            return;
        }
        leg.ended = true;
        let ccid = leg.call_control_id.clone();
        let ringing_cause = cause.clone();
        self.record(at, DomainEvent::LegEnded { role: Role::Caller, call_control_id: ccid, cause, source }, out);
        let reason = match (&self.end_reason, self.phase) {
            (Some(r), _) => r.clone(),
            (None, Phase::WithAgent) => "completed_with_agent".into(),
            (None, Phase::Ringing) => match ringing_cause.as_deref() {
                Some("timeout" | "no_answer") => "not_answered".into(),
                _ => "caller_hangup_before_answer".into(),
            },
            (None, Phase::Transferring) => "caller_hangup_during_transfer".into(),
            (None, _) => "caller_hangup".into(),
        };
        self.end_reason = Some(reason);
        self.on_caller_gone(at, out);
        self.callback_caller_gone(None, at, out);
        self.symbl_done(out);
        self.phase = Phase::Ended;
        self.maybe_end(at, out);
    }

    /// Records the end of the conversation once no leg is left (no agent leg
    /// up or being released, no agent dial unanswered) and every utterance has its score (an external engine answers, or fails, within
    /// its deadline), so the record is complete when it says the call ended.
    pub(super) fn maybe_end(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.phase != Phase::Ended
            || !self.agent_legs_settled()
            || self.end_recorded
            || !self.pending.is_empty()
            || self.callback_pending()
        {
            return;
        }
        self.end_recorded = true;
        let reason = self.end_reason.clone().unwrap_or_else(|| "caller_hangup".into());
        self.record(at, DomainEvent::CallEnded { reason }, out);
        out.push(Effect::FinishScoring);
    }

    fn on_speak_ended(&mut self, role: Role, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(pos) = self.speaks.iter().position(|(r, _)| *r == role) else { return };
        let Some((_, purpose)) = self.speaks.remove(pos) else { return };
        self.after_speak(purpose, at, out);
    }

    /// What to do once a speak has finished (or failed).
    pub(super) fn after_speak(&mut self, purpose: SpeakPurpose, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        match purpose {
            SpeakPurpose::Goodbye => {
                if self.phase == Phase::Closing {
                    self.send(Role::Caller, Action::Hangup(Plain::default()), out);
                }
            }
            SpeakPurpose::Bridging => self.on_bridging_line_done(out),
            SpeakPurpose::Briefing => self.on_briefing_done(at, out),
            SpeakPurpose::Queue => self.on_queue_line_done(out),
        }
    }

    fn on_gather_ended(&mut self, e: &GatherEnded, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.gather_active = false;
        if self.phase != Phase::Ivr {
            return;
        }
        let digits = e.digits.clone().unwrap_or_default();
        match e.status {
            Some(GatherStatus::Valid) | Some(GatherStatus::Invalid) if !digits.is_empty() => {
                self.on_digits(&digits, at, out)
            }
            Some(GatherStatus::Timeout) | Some(GatherStatus::Invalid) => self.on_idle(at, out),
            _ => {}
        }
    }

    fn on_digits(&mut self, digits: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.callback_key(digits, at, out) {
            return;
        }
        let settings = self.settings.clone();
        let route = Keypad::new(&settings.ivr, &settings.policy).route(digits);
        let choice = route.choice().map(str::to_string);
        self.record(at, DomainEvent::Dtmf { digits: digits.to_string(), choice }, out);
        self.reprompts = 0;
        match route {
            KeyRoute::Transfer { reason, queue, .. } => self.decide_by_menu(reason, queue.to_string(), None, at, out),
            KeyRoute::Answer { choice, say } => {
                self.topic = Some(choice.to_string());
                self.gather_with_prompt(say.to_string(), at, out);
            }
            KeyRoute::NotAnOption => {
                let prompt = format!("Sorry, that is not an option. {}", self.settings.ivr.menu_prompt);
                self.gather_with_prompt(prompt, at, out);
            }
        }
    }

    fn on_idle(&mut self, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if self.spoke_since_gather {
            self.rearm_gather(out);
            return;
        }
        self.reprompts += 1;
        if self.reprompts > self.settings.ivr.max_reprompts {
            self.close("no_input", at, out);
        } else {
            let prompt = format!("{} {}", self.settings.ivr.reprompt, self.settings.ivr.menu_prompt);
            self.gather_with_prompt(prompt, at, out);
        }
    }

    /// Says goodbye and hangs up once it has been said.
    pub(super) fn close(&mut self, reason: &str, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.phase = Phase::Closing;
        self.end_reason = Some(reason.to_string());
        self.stop_gather(out);
        let goodbye = self.settings.ivr.goodbye.clone();
        self.say(Role::Caller, goodbye, SpeakPurpose::Goodbye, at, out);
    }

    fn menu_digits(&self) -> String {
        let menu = Keypad::new(&self.settings.ivr, &self.settings.policy).valid_digits();
        menu + &self.callback_keys()
    }

    /// Plays a prompt and listens for one key.
    pub(super) fn gather_with_prompt(&mut self, prompt: String, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        self.stop_gather(out);
        let body = GatherUsingSpeak {
            payload: Some(prompt.clone()),
            voice: Some(self.settings.ivr.voice.clone()),
            language: Some(self.settings.ivr.language.clone()),
            valid_digits: Some(self.menu_digits()),
            minimum_digits: Some(1),
            maximum_digits: Some(1),
            maximum_tries: Some(1),
            timeout_millis: Some(self.settings.ivr.idle_timeout_secs * 1000),
            ..Default::default()
        };
        self.send(Role::Caller, Action::GatherUsingSpeak(body), out);
        self.gather_active = true;
        self.spoke_since_gather = false;
        self.note_ivr_speech(&prompt);
        self.record(at, DomainEvent::IvrSaid { text: prompt }, out);
    }

    /// Listens for a key again, without a prompt.
    fn rearm_gather(&mut self, out: &mut Vec<Effect>) {
        self.stop_gather(out);
        let body = Gather {
            valid_digits: Some(self.menu_digits()),
            minimum_digits: Some(1),
            maximum_digits: Some(1),
            timeout_millis: Some(self.settings.ivr.idle_timeout_secs * 1000),
            ..Default::default()
        };
        self.send(Role::Caller, Action::Gather(body), out);
        self.gather_active = true;
        self.spoke_since_gather = false;
    }

    pub(super) fn stop_gather(&mut self, out: &mut Vec<Effect>) {
        if self.gather_active {
            self.send(Role::Caller, Action::GatherStop(Plain::default()), out);
            self.gather_active = false;
        }
    }

    /// Speaks on a leg and remembers why.
    pub(super) fn say(
        &mut self,
        role: Role,
        text: String,
        purpose: SpeakPurpose,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let body = Speak {
            payload: Some(text.clone()),
            voice: Some(self.settings.ivr.voice.clone()),
            language: Some(self.settings.ivr.language.clone()),
            ..Default::default()
        };
        let before = out.len();
        self.send(role, Action::Speak(body), out);
        if out.len() > before {
            self.speaks.push_back((role, purpose));
            if role == Role::Caller {
                self.note_ivr_speech(&text);
                self.record(at, DomainEvent::IvrSaid { text }, out);
            }
        }
    }

    fn on_transcription(&mut self, role: Role, t: &Transcription, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let data = &t.transcription_data;
        let inbound = data.transcription_track.as_ref().is_none_or(|tr| *tr == TranscriptionTrack::Inbound);
        let speaker = match (role, inbound) {
            // In a conference the outbound track mixes everyone: each leg's own
            // inbound track is what counts.
            (Role::Caller, false) if self.pstn.conference.is_some() => return,
            (Role::Caller, true) => Speaker::Caller,
            (Role::Caller, false) if self.phase == Phase::WithAgent => Speaker::Agent,
            (Role::Caller, false) => Speaker::Ivr,
            (Role::Agent, true) => Speaker::Agent,
            (Role::Agent, false) => return, // the caller, already transcribed on their own leg
            (Role::Symbl, _) => return,
        };
        self.heard(speaker, &data.transcript, data.is_final, data.confidence, Vec::new(), at, out);
    }

    /// Something was said (transcribed by Telnyx, or by Symbl in PSTN mode):
    /// interim text is streamed; a final utterance is recorded and scored.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn heard(
        &mut self,
        speaker: Speaker,
        transcript: &str,
        is_final: bool,
        confidence: Option<f64>,
        refs: Vec<String>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let text = transcript.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return;
        }
        if !is_final {
            self.record(at, DomainEvent::Interim { speaker, text }, out);
            return;
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let caller_index = if speaker == Speaker::Caller {
            self.caller_utterances += 1;
            self.spoke_since_gather = true;
            self.reprompts = 0;
            Some(self.caller_utterances)
        } else {
            None
        };
        let offset_ms = self.offset(at);
        self.record(at, DomainEvent::Utterance { seq, speaker, text: text.clone(), confidence, caller_index }, out);
        self.pending.insert(seq, PendingUtterance { speaker, text: text.clone(), caller_index, offset_ms });
        out.push(Effect::Score(ScoreRequest { seq, speaker, text: text.clone(), refs }));
        if speaker == Speaker::Caller {
            self.callback_said(&text, at, out);
        }
    }

    pub(super) fn on_scored(&mut self, seq: u32, score: Score, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        if seq <= self.scored_up_to || !self.pending.contains_key(&seq) {
            return; // already applied, or never asked for
        }
        self.early_scores.insert(seq, score);
        // Apply scores in utterance order, whatever order they arrive in.
        while let Some(next) = self.pending.keys().next().copied() {
            let Some(score) = self.early_scores.remove(&next) else { break };
            let Some(utterance) = self.pending.remove(&next) else { break };
            self.scored_up_to = next;
            self.apply_score(next, utterance, score, at, out);
        }
        self.maybe_end(at, out);
    }

    fn apply_score(&mut self, seq: u32, u: PendingUtterance, score: Score, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let Some(caller_index) = u.caller_index else {
            self.record_scored(seq, u.speaker, &score, None, at, out);
            return;
        };
        let utterance = policy::Utterance { index: caller_index, text: &u.text, score: &score, offset_ms: u.offset_ms };
        // The policy decides while the IVR has the caller; otherwise its numbers still move.
        let (snapshot, decision) = if self.phase == Phase::Ivr {
            let o = policy::observe(&self.settings.policy, &mut self.policy, &utterance);
            (o.snapshot, o.decision)
        } else {
            (policy::track(&self.settings.policy, &mut self.policy, &utterance), None)
        };
        self.last_snapshot = Some(snapshot.clone());
        self.record_scored(seq, u.speaker, &score, Some(snapshot), at, out);
        if self.phase != Phase::Ivr {
            return;
        }
        match decision {
            // Claimed by the policy: the call's decision.
            Some(decision) => self.start_transfer(decision, DecisionSource::Policy, None, at, out),
            None => self.reply(&u.text, &score, caller_index, at, out),
        }
    }

    fn record_scored(
        &mut self,
        seq: u32,
        speaker: Speaker,
        score: &Score,
        policy: Option<PolicySnapshot>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        self.record(at, DomainEvent::scored(seq, speaker, score, &score.engine, policy), out);
    }

    /// The IVR's answer to a caller utterance that did not trigger a transfer.
    /// Replies are prompts of a new gather, so the caller can still press a key
    /// and the silence timeout only starts once the IVR has finished speaking.
    fn reply(&mut self, text: &str, score: &Score, caller_index: u32, at: DateTime<Utc>, out: &mut Vec<Effect>) {
        let norm = normalize(text);
        let closing = self.settings.ivr.closing_phrases.iter().any(|p| contains_phrase(&norm, p));
        if closing && score.label != Label::Negative {
            self.close("caller_done", at, out);
            return;
        }
        let menu = self.settings.ivr.menu.clone();
        let chosen = menu.iter().find(|m| m.keywords.iter().any(|k| contains_phrase(&norm, k)));
        if let Some(item) = chosen {
            if let Some(q) = &item.queue {
                let trigger = Some((caller_index, text.to_string()));
                self.decide_by_menu(Reason::MenuChoice, q.clone(), trigger, at, out);
                return;
            }
            let repeated = self.topic.as_deref() == Some(item.label.as_str());
            self.topic = Some(item.label.clone());
            if let (Some(answer), false) = (&item.say, repeated) {
                self.gather_with_prompt(answer.clone(), at, out);
                return;
            }
        }
        let line = match score.label {
            Label::Negative => self.settings.ivr.empathy.clone(),
            Label::Positive => self.settings.ivr.positive_reply.clone(),
            Label::Neutral => self.settings.ivr.acknowledgement.clone(),
        };
        self.gather_with_prompt(line, at, out);
    }

    /// A transfer the caller chose (keypad 0, a menu queue, or a spoken menu choice).
    fn decide_by_menu(
        &mut self,
        reason: Reason,
        queue: String,
        trigger: Option<(u32, String)>,
        at: DateTime<Utc>,
        out: &mut Vec<Effect>,
    ) {
        let (trigger_index, trigger_text) = trigger.unwrap_or((0, String::new()));
        let decision = Decision {
            reason,
            queue,
            trigger_index,
            trigger_text,
            trigger_phrase: None,
            tracker: None,
            numbers: self.last_snapshot.clone().unwrap_or_default(),
        };
        match policy::claim(&mut self.policy, decision) {
            Some(decision) => self.start_transfer(decision, DecisionSource::Menu, None, at, out),
            // Already decided: nothing new to do but listen.
            None => self.rearm_gather(out),
        }
    }
}

/// Each leg transcribes its own party: the inbound track.
pub(super) const TRACKS: &str = "inbound";
