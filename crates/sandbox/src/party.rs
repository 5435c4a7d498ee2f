//! Simulated people: how a dialled number behaves ([`PartyBehavior`]) and the
//! runner that plays a party's script on its leg under the turn-taking rules of
//! [`timing`](super::timing).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::json;

use super::script::{Script, Step};
use super::timers::Slot;
use super::timing::secs;
use super::world::{Source, Speech, VTime, World};

/// What a number does when it is dialled or transferred to.
#[derive(Debug, Clone, PartialEq)]
pub enum PartyBehavior {
    /// Picks up after `after_secs` (virtual) and then follows `script`; `None`
    /// is the standard agent ([`default_agent_script`]); an empty script stays
    /// silent.
    Answer {
        /// Ring time before answering.
        after_secs: f64,
        /// What the party says once connected.
        script: Option<Script>,
    },
    /// Rings, then rejects the call (`call_rejected`).
    Refuse,
    /// Answers busy at once (`user_busy`).
    Busy,
    /// Rings until the command's `timeout_secs`, then `timeout`.
    NoAnswer,
}

/// Ring time of `answer` without a delay (matches [`TimingModel::dial_answer`](super::TimingModel)).
pub const DEFAULT_ANSWER_SECS: f64 = 2.0;
/// Ring time of agents nobody configured (matches [`TimingModel::agent_ring`](super::TimingModel)).
pub const DEFAULT_AGENT_RING_SECS: f64 = 3.0;

/// What the standard agent says once bridged to a caller.
pub const DEFAULT_AGENT_SCRIPT: &str = "\
# the standard sandbox agent
say hi this is alex how can i help you today
say i am sorry to hear that let me pull up your account
say okay i have sorted that out for you is there anything else i can help with
";

/// The standard agent's script.
pub fn default_agent_script() -> Script {
    Script::parse(DEFAULT_AGENT_SCRIPT).unwrap_or_default()
}

impl PartyBehavior {
    /// The standard agent: answers after 3 s and says [`DEFAULT_AGENT_SCRIPT`].
    pub fn default_agent() -> Self {
        PartyBehavior::Answer { after_secs: DEFAULT_AGENT_RING_SECS, script: None }
    }

    /// The person on the leg once it answers, if it ever does.
    pub(crate) fn party(&self) -> Option<Box<Party>> {
        match self {
            PartyBehavior::Answer { script, .. } => {
                let steps = match script {
                    Some(s) => s.steps.clone(),
                    None => default_agent_script().steps,
                };
                Some(Box::new(Party::new(steps)))
            }
            _ => None,
        }
    }
}

/// A behaviour that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BehaviorError(pub String);

impl FromStr for PartyBehavior {
    type Err = BehaviorError;

    /// `answer`, `answer:SECONDS`, `refuse`, `busy` or `no-answer`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("answer") {
            let after_secs = match rest.strip_prefix(':') {
                None if rest.is_empty() => DEFAULT_ANSWER_SECS,
                Some(n) => match n.trim().trim_end_matches('s').parse::<f64>() {
                    Ok(v) if v.is_finite() && (0.0..=600.0).contains(&v) => v,
                    _ => {
                        return Err(BehaviorError(format!(
                            "{s:?}: the ring time after `answer:` must be seconds between 0 and 600, e.g. answer:4"
                        )))
                    }
                },
                None => return Err(unknown(s)),
            };
            return Ok(PartyBehavior::Answer { after_secs, script: None });
        }
        match lower.as_str() {
            "refuse" | "reject" => Ok(PartyBehavior::Refuse),
            "busy" => Ok(PartyBehavior::Busy),
            "no-answer" | "no_answer" | "noanswer" => Ok(PartyBehavior::NoAnswer),
            _ => Err(unknown(s)),
        }
    }
}

fn unknown(s: &str) -> BehaviorError {
    BehaviorError(format!(
        "unknown behaviour {:?}: use answer, answer:SECONDS, refuse, busy or no-answer",
        s.chars().take(40).collect::<String>()
    ))
}

impl fmt::Display for PartyBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartyBehavior::Answer { after_secs, script } => {
                write!(f, "answer:{after_secs}")?;
                if script.is_some() {
                    f.write_str(" (scripted)")?;
                }
                Ok(())
            }
            PartyBehavior::Refuse => f.write_str("refuse"),
            PartyBehavior::Busy => f.write_str("busy"),
            PartyBehavior::NoAnswer => f.write_str("no-answer"),
        }
    }
}

/// Parses `NUMBER=BEHAVIOUR` (the `--agent` flag).
pub fn parse_agent_spec(spec: &str) -> Result<(String, PartyBehavior), BehaviorError> {
    let Some((number, behavior)) = spec.split_once('=') else {
        return Err(BehaviorError(format!(
            "{spec:?} is not NUMBER=BEHAVIOUR, e.g. +15550001111=answer:4 or +15550002222=no-answer"
        )));
    };
    let number = number.trim();
    if number.is_empty() {
        return Err(BehaviorError(format!("{spec:?} has no number before `=`")));
    }
    Ok((number.to_string(), behavior.parse()?))
}

/// Where a party is in its script.
#[derive(Debug, Clone)]
enum PartyState {
    /// Not yet connected (before answer, or before the bridge for agents).
    NotStarted,
    /// Waiting for the other side to speak and finish (timer: give up).
    Listening { heard: bool },
    /// Its next line (the step before `next`) waits for silence.
    WantsToSpeak,
    /// Saying a line (timer: its end).
    Speaking,
    /// Has keys to press and waits for a gather (timer: press anyway).
    AwaitingGather(Arc<str>),
    /// About to press keys (timer: reaction time).
    PressDelay(Arc<str>),
    /// Pressing keys one by one (timer: next key).
    Pressing { keys: Arc<str>, next: usize },
    /// In a `pause` (timer: its end).
    Pausing,
    /// Script done; silent on the line (timer: the hold cap).
    Holding,
    /// Hung up or hung up on.
    Gone,
}

/// A simulated person on a leg.
#[derive(Debug)]
pub(crate) struct Party {
    steps: Vec<Step>,
    next: usize,
    state: PartyState,
    speech: Option<Speech>,
}

impl Party {
    pub fn new(steps: Vec<Step>) -> Self {
        Self { steps, next: 0, state: PartyState::NotStarted, speech: None }
    }

    /// Every step has run.
    pub fn finished(&self) -> bool {
        self.next >= self.steps.len() && matches!(self.state, PartyState::Holding | PartyState::Gone)
    }

    /// The line being spoken now.
    pub fn speech_seq(&self) -> Option<u32> {
        self.speech.as_ref().map(|s| s.seq)
    }

    pub fn speaking(&self) -> bool {
        self.speech.is_some()
    }

    /// The leg hung up.
    pub fn gone(&mut self) {
        self.state = PartyState::Gone;
        self.speech = None;
    }

    /// Adds steps; true when the party was idle and should resume now.
    pub fn append(&mut self, steps: Vec<Step>) -> bool {
        self.steps.extend(steps);
        matches!(self.state, PartyState::Holding)
    }
}

enum Then {
    Nothing,
    Next,
    Press(Arc<str>),
}

impl World {
    fn party_mut(&mut self, id: u64) -> Option<&mut Party> {
        self.legs.get_mut(&id)?.party.as_deref_mut()
    }

    /// Something is audible to the party on `id`: IVR speech on its leg, or
    /// the bridged party speaking.
    pub(crate) fn audible(&self, id: u64) -> bool {
        let Some(leg) = self.legs.get(&id) else { return false };
        let speaking = |peer: u64| self.legs.get(&peer).and_then(|p| p.party.as_ref()).is_some_and(|p| p.speaking());
        leg.media.speaking()
            || leg.bridge.is_some_and(|b| speaking(b.peer))
            || self.confs.peers(id).into_iter().any(speaking)
    }

    /// The leg was answered: the party listens for the first prompt.
    pub(crate) fn party_answered(&mut self, id: u64, at: VTime) {
        let wait = self.cfg.timing.first_prompt_wait;
        let Some(p) = self.party_mut(id) else { return };
        if !matches!(p.state, PartyState::NotStarted) {
            return;
        }
        p.state = PartyState::Listening { heard: false };
        self.set_timer(id, Slot::Party, at.saturating_add(wait));
        self.party_poll(id, at);
    }

    /// The leg was bridged. An agent that has not spoken yet speaks first;
    /// anyone else waiting to talk listens to the new party first.
    pub(crate) fn party_bridged(&mut self, id: u64, at: VTime, agent: bool) {
        let wait = self.cfg.timing.first_prompt_wait;
        let Some(p) = self.party_mut(id) else { return };
        let fresh = matches!(p.state, PartyState::NotStarted)
            || (matches!(p.state, PartyState::Listening { .. }) && p.next == 0);
        if agent && fresh {
            p.state = PartyState::Pausing;
            self.party_next(id, at);
            return;
        }
        if matches!(p.state, PartyState::NotStarted | PartyState::Listening { .. }) {
            p.state = PartyState::Listening { heard: false };
            self.set_timer(id, Slot::Party, at.saturating_add(wait));
        }
        self.party_poll(id, at);
    }

    /// A transfer started on the party's leg: the party hears ringback, which
    /// ends a wait for a reply.
    pub(crate) fn party_hears_ringback(&mut self, id: u64, at: VTime) {
        let turn_gap = self.cfg.timing.turn_gap;
        let Some(p) = self.party_mut(id) else { return };
        if matches!(p.state, PartyState::Listening { .. }) {
            p.state = PartyState::Pausing;
            self.set_timer(id, Slot::Party, at.saturating_add(turn_gap));
        }
    }

    /// Re-checks a party's waiting condition after something changed.
    pub(crate) fn party_poll(&mut self, id: u64, at: VTime) {
        let audible = self.audible(id);
        let gathering = self.legs.get(&id).is_some_and(|l| l.media.gathering());
        let (press_delay, turn_gap) = (self.cfg.timing.press_delay, self.cfg.timing.turn_gap);
        let Some(p) = self.party_mut(id) else { return };
        let then = match &mut p.state {
            PartyState::Listening { heard } => {
                if audible {
                    *heard = true;
                    Then::Nothing
                } else if *heard {
                    Then::Next
                } else {
                    Then::Nothing
                }
            }
            // Silence at last: after the turn gap, the `say` step runs again.
            PartyState::WantsToSpeak if !audible => Then::Next,
            PartyState::AwaitingGather(keys) if gathering => Then::Press(keys.clone()),
            _ => Then::Nothing,
        };
        match then {
            Then::Nothing => {}
            Then::Next => {
                // The other side is done: a short pause, then the next step
                // (a `say` that was waiting for silence is retried).
                if let Some(p) = self.party_mut(id) {
                    if matches!(p.state, PartyState::WantsToSpeak) {
                        p.next = p.next.saturating_sub(1);
                    }
                    p.state = PartyState::Pausing;
                }
                self.set_timer(id, Slot::Party, at.saturating_add(turn_gap));
            }
            Then::Press(keys) => {
                if let Some(p) = self.party_mut(id) {
                    p.state = PartyState::PressDelay(keys);
                }
                self.set_timer(id, Slot::Party, at.saturating_add(press_delay));
            }
        }
    }

    /// Runs the party's next step.
    pub(crate) fn party_next(&mut self, id: u64, at: VTime) {
        let audible = self.audible(id);
        let gathering = self.legs.get(&id).is_some_and(|l| l.media.gathering());
        let t = &self.cfg.timing;
        let (press_delay, reply_timeout, hold_cap) = (t.press_delay, t.reply_timeout, t.hold_cap);
        let side = self.legs.get(&id).map_or("caller", |l| l.party_side());
        let Some(p) = self.party_mut(id) else { return };
        if matches!(p.state, PartyState::Gone) {
            return;
        }
        let step = p.steps.get(p.next).cloned();
        if step.is_some() {
            p.next += 1;
        }
        match step {
            None => {
                p.state = PartyState::Holding;
                self.set_timer(id, Slot::Party, at.saturating_add(hold_cap));
            }
            Some(Step::Say(text)) => {
                let text: Arc<str> = Arc::from(text);
                if audible {
                    p.state = PartyState::WantsToSpeak;
                    self.cancel_timer(id, Slot::Party);
                } else {
                    self.party_speak(id, at, text);
                }
            }
            Some(Step::Press(keys)) => {
                let keys: Arc<str> = Arc::from(keys);
                if gathering {
                    p.state = PartyState::PressDelay(keys);
                    self.set_timer(id, Slot::Party, at.saturating_add(press_delay));
                } else {
                    p.state = PartyState::AwaitingGather(keys);
                    self.set_timer(id, Slot::Party, at.saturating_add(reply_timeout));
                }
            }
            Some(Step::Pause(s)) => {
                p.state = PartyState::Pausing;
                self.set_timer(id, Slot::Party, at.saturating_add(secs(s)));
            }
            Some(Step::Hangup) => {
                p.state = PartyState::Gone;
                self.hangup_leg(id, at, "normal_clearing", side);
            }
        }
    }

    fn party_speak(&mut self, id: u64, at: VTime, text: Arc<str>) {
        let Some(speech) = self.next_speech(id, text, at) else { return };
        let duration = self.cfg.timing.speech_duration(speech.words);
        self.schedule_interims(id, Source::Party, &speech);
        let Some(p) = self.party_mut(id) else { return };
        p.speech = Some(speech);
        p.state = PartyState::Speaking;
        self.set_timer(id, Slot::Party, at.saturating_add(duration));
        for peer in self.hearers_of(id) {
            self.party_poll(peer, at);
        }
    }

    /// The party's timer ran out.
    pub(crate) fn party_due(&mut self, id: u64, at: VTime) {
        let reply_timeout = self.cfg.timing.reply_timeout;
        let side = self.legs.get(&id).map_or("caller", |l| l.party_side());
        let Some(p) = self.party_mut(id) else { return };
        match p.state.clone() {
            PartyState::Listening { heard: false } | PartyState::Pausing => self.party_next(id, at),
            PartyState::Speaking => {
                let speech = p.speech.take();
                p.state = PartyState::Listening { heard: false };
                self.set_timer(id, Slot::Party, at.saturating_add(reply_timeout));
                if let Some(s) = speech {
                    self.schedule_final(id, Source::Party, &s, at);
                }
                for peer in self.hearers_of(id) {
                    self.party_poll(peer, at);
                }
                self.party_poll(id, at);
            }
            PartyState::PressDelay(keys) | PartyState::AwaitingGather(keys) => {
                p.state = PartyState::Pressing { keys, next: 0 };
                self.party_press(id, at);
            }
            PartyState::Pressing { .. } => self.party_press(id, at),
            PartyState::Holding => {
                p.state = PartyState::Gone;
                self.hangup_leg(id, at, "normal_clearing", side);
            }
            PartyState::Listening { heard: true }
            | PartyState::NotStarted
            | PartyState::WantsToSpeak
            | PartyState::Gone => {}
        }
    }

    /// Presses the next key of a `press` step.
    fn party_press(&mut self, id: u64, at: VTime) {
        let t = &self.cfg.timing;
        let (interval, reply_timeout) = (t.dtmf_interval, t.reply_timeout);
        let Some(p) = self.party_mut(id) else { return };
        let PartyState::Pressing { keys, next } = &mut p.state else { return };
        let Some(&key) = keys.as_bytes().get(*next) else { return };
        *next += 1;
        let done = *next >= keys.len();
        let key = char::from(key);
        self.emit(id, at, "call.dtmf.received", true, json!({ "digit": key.to_string() }));
        // The key may stop a prompt; only speech after it counts as the reply.
        self.gather_key(id, at, key);
        if done {
            if let Some(p) = self.party_mut(id) {
                p.state = PartyState::Listening { heard: false };
            }
            self.set_timer(id, Slot::Party, at.saturating_add(reply_timeout));
            self.party_poll(id, at);
        } else {
            self.set_timer(id, Slot::Party, at.saturating_add(interval));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_parse() {
        assert_eq!("answer".parse(), Ok(PartyBehavior::Answer { after_secs: 2.0, script: None }));
        assert_eq!("answer:4".parse(), Ok(PartyBehavior::Answer { after_secs: 4.0, script: None }));
        assert_eq!(" Answer:0.5s ".parse(), Ok(PartyBehavior::Answer { after_secs: 0.5, script: None }));
        assert_eq!("refuse".parse(), Ok(PartyBehavior::Refuse));
        assert_eq!("reject".parse(), Ok(PartyBehavior::Refuse));
        assert_eq!("busy".parse(), Ok(PartyBehavior::Busy));
        assert_eq!("no-answer".parse(), Ok(PartyBehavior::NoAnswer));
        assert_eq!("no_answer".parse(), Ok(PartyBehavior::NoAnswer));
    }

    #[test]
    fn bad_behaviours_say_what_is_allowed() {
        for bad in ["answer:", "answer:-1", "answer:soon", "answer:1e9", "answered", "hangup", ""] {
            let e = bad.parse::<PartyBehavior>().unwrap_err();
            assert!(e.0.contains("answer"), "{bad}: {e}");
        }
    }

    #[test]
    fn agent_specs_parse() {
        assert_eq!(parse_agent_spec("+15550001=busy"), Ok(("+15550001".into(), PartyBehavior::Busy)));
        assert!(parse_agent_spec("+15550001").unwrap_err().0.contains("NUMBER=BEHAVIOUR"));
        assert!(parse_agent_spec("=busy").is_err());
        assert!(parse_agent_spec("+1=later").unwrap_err().0.contains("unknown behaviour"));
    }

    #[test]
    fn default_agent_has_a_script_and_silent_agents_have_none() {
        assert!(default_agent_script().utterances().count() >= 2);
        let p = PartyBehavior::default_agent().party().unwrap();
        assert!(!p.steps.is_empty());
        let silent = PartyBehavior::Answer { after_secs: 1.0, script: Some(Script::default()) }.party().unwrap();
        assert!(silent.steps.is_empty());
        assert!(PartyBehavior::Busy.party().is_none());
        assert_eq!(PartyBehavior::NoAnswer.to_string(), "no-answer");
    }
}
