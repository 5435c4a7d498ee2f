//! Simulated people: how a dialled number behaves ([`PartyBehavior`]) and the
//! state machine that plays a party's script on its leg under the turn-taking
//! rules of [`timing`](super::timing). The world (`world/party.rs`) tells a
//! party what happened and does what it asks ([`Act`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::script::{Script, Step};
use super::timing::{secs, TimingModel};
use super::world::Speech;

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
    /// Busy to every call in the `secs` (virtual) after the first call to
    /// the number, then the standard agent: an agent on another call for a while.
    BusyFor {
        /// How long the agent stays busy.
        secs: f64,
    },
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

/// The one grammar of a number's behaviour, wherever it is given (`ivrx
/// sandbox --agent`, `[sandbox.agents]` in `ivrx.toml`, `POST
/// /sandbox/v1/parties`). Case and surrounding spaces do not matter:
///
/// | behaviour | also written | what the number does |
/// |---|---|---|
/// | `answer` | | answers after 2 s |
/// | `answer:SECONDS` | `answer:2.5s` | answers after SECONDS, 0 to 600 |
/// | `refuse` | `reject` | rings, then rejects the call |
/// | `busy` | | is busy at once |
/// | `busy:SECONDS` | `busy:40s` | is busy for SECONDS (0 to 86400) from the first call to it, then answers as the standard agent |
/// | `no-answer` | `no_answer`, `noanswer` | rings until the ring timeout |
///
/// [`Display`](fmt::Display) writes the first column.
impl FromStr for PartyBehavior {
    type Err = BehaviorError;

    /// Parses one behaviour (see the table above).
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
        if let Some(n) = lower.strip_prefix("busy:") {
            return match n.trim().trim_end_matches('s').parse::<f64>() {
                Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(PartyBehavior::BusyFor { secs: v }),
                _ => Err(BehaviorError(format!(
                    "{s:?}: the busy time after `busy:` must be seconds between 0 and 86400, e.g. busy:40"
                ))),
            };
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
        "unknown behaviour {:?}: use answer, answer:SECONDS, refuse, busy, busy:SECONDS or no-answer",
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
            PartyBehavior::BusyFor { secs } => write!(f, "busy:{secs}"),
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

/// What the party asks of the world after a change.
#[derive(Debug)]
pub(crate) enum Act {
    /// Nothing now.
    Nothing,
    /// Its timer: due this long from now.
    Wait(Duration),
    /// Its timer stops: it waits for silence to speak.
    StopTimer,
    /// Its next step runs now.
    Next,
    /// It starts saying this line.
    Say(Arc<str>),
    /// It presses the next key of its `press` step.
    Press,
    /// It hangs up.
    HangUp,
    /// It finished saying `line` and waits `wait` for a reply.
    Spoke { line: Option<Speech>, wait: Duration },
}

impl Party {
    /// The leg was answered: it listens for the first prompt, for this long.
    pub fn answered(&mut self, t: &TimingModel) -> Option<Duration> {
        if !matches!(self.state, PartyState::NotStarted) {
            return None;
        }
        self.state = PartyState::Listening { heard: false };
        Some(t.first_prompt_wait)
    }

    /// The leg was bridged. An agent that has not spoken yet speaks first
    /// ([`Act::Next`]); anyone else waiting to talk listens to the new party
    /// first ([`Act::Wait`]); otherwise nothing changes.
    pub fn bridged(&mut self, agent: bool, t: &TimingModel) -> Act {
        let fresh = matches!(self.state, PartyState::NotStarted)
            || (matches!(self.state, PartyState::Listening { .. }) && self.next == 0);
        if agent && fresh {
            self.state = PartyState::Pausing;
            return Act::Next;
        }
        if matches!(self.state, PartyState::NotStarted | PartyState::Listening { .. }) {
            self.state = PartyState::Listening { heard: false };
            return Act::Wait(t.first_prompt_wait);
        }
        Act::Nothing
    }

    /// A transfer started on the leg: ringback ends a wait for a reply, after a turn gap.
    pub fn hears_ringback(&mut self, t: &TimingModel) -> Option<Duration> {
        if !matches!(self.state, PartyState::Listening { .. }) {
            return None;
        }
        self.state = PartyState::Pausing;
        Some(t.turn_gap)
    }

    /// Re-checks what the party waits for, given whether something is
    /// `audible` and a gather runs on its leg; its new timer, if it set one.
    pub fn poll(&mut self, audible: bool, gathering: bool, t: &TimingModel) -> Option<Duration> {
        let then = match &mut self.state {
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
            Then::Nothing => None,
            Then::Next => {
                // The other side is done: a short pause, then the next step
                // (a `say` that was waiting for silence is retried).
                if matches!(self.state, PartyState::WantsToSpeak) {
                    self.next = self.next.saturating_sub(1);
                }
                self.state = PartyState::Pausing;
                Some(t.turn_gap)
            }
            Then::Press(keys) => {
                self.state = PartyState::PressDelay(keys);
                Some(t.press_delay)
            }
        }
    }

    /// Takes the next step: waits ([`Act::Wait`], [`Act::StopTimer`]),
    /// speaks ([`Act::Say`]) or hangs up ([`Act::HangUp`]).
    pub fn next_step(&mut self, audible: bool, gathering: bool, t: &TimingModel) -> Act {
        if matches!(self.state, PartyState::Gone) {
            return Act::Nothing;
        }
        let step = self.steps.get(self.next).cloned();
        if step.is_some() {
            self.next += 1;
        }
        match step {
            None => {
                self.state = PartyState::Holding;
                Act::Wait(t.hold_cap)
            }
            Some(Step::Say(text)) => {
                let text: Arc<str> = Arc::from(text);
                if audible {
                    self.state = PartyState::WantsToSpeak;
                    Act::StopTimer
                } else {
                    Act::Say(text)
                }
            }
            Some(Step::Press(keys)) => {
                let keys: Arc<str> = Arc::from(keys);
                if gathering {
                    self.state = PartyState::PressDelay(keys);
                    Act::Wait(t.press_delay)
                } else {
                    self.state = PartyState::AwaitingGather(keys);
                    Act::Wait(t.reply_timeout)
                }
            }
            Some(Step::Pause(s)) => {
                self.state = PartyState::Pausing;
                Act::Wait(secs(s))
            }
            Some(Step::Hangup) => {
                self.state = PartyState::Gone;
                Act::HangUp
            }
        }
    }

    /// It starts saying `speech`.
    pub fn speak(&mut self, speech: Speech) {
        self.speech = Some(speech);
        self.state = PartyState::Speaking;
    }

    /// Its timer ran out: the next step ([`Act::Next`]), the end of its line
    /// ([`Act::Spoke`]), a key ([`Act::Press`]) or, holding, it hangs up.
    pub fn timer_due(&mut self, t: &TimingModel) -> Act {
        match self.state.clone() {
            PartyState::Listening { heard: false } | PartyState::Pausing => Act::Next,
            PartyState::Speaking => {
                let line = self.speech.take();
                self.state = PartyState::Listening { heard: false };
                Act::Spoke { line, wait: t.reply_timeout }
            }
            PartyState::PressDelay(keys) | PartyState::AwaitingGather(keys) => {
                self.state = PartyState::Pressing { keys, next: 0 };
                Act::Press
            }
            PartyState::Pressing { .. } => Act::Press,
            PartyState::Holding => {
                self.state = PartyState::Gone;
                Act::HangUp
            }
            PartyState::Listening { heard: true }
            | PartyState::NotStarted
            | PartyState::WantsToSpeak
            | PartyState::Gone => Act::Nothing,
        }
    }

    /// The next key of its `press` step, and whether it is the last.
    pub fn press(&mut self) -> Option<(char, bool)> {
        let PartyState::Pressing { keys, next } = &mut self.state else { return None };
        let &key = keys.as_bytes().get(*next)?;
        *next += 1;
        Some((char::from(key), *next >= keys.len()))
    }

    /// It pressed its keys and listens for the reply.
    pub fn listen(&mut self) {
        self.state = PartyState::Listening { heard: false };
    }
}

enum Then {
    Nothing,
    Next,
    Press(Arc<str>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::VTime;

    #[test]
    fn behaviours_parse() {
        assert_eq!("answer".parse(), Ok(PartyBehavior::Answer { after_secs: 2.0, script: None }));
        assert_eq!("answer:4".parse(), Ok(PartyBehavior::Answer { after_secs: 4.0, script: None }));
        assert_eq!(" Answer:0.5s ".parse(), Ok(PartyBehavior::Answer { after_secs: 0.5, script: None }));
        assert_eq!("refuse".parse(), Ok(PartyBehavior::Refuse));
        assert_eq!("reject".parse(), Ok(PartyBehavior::Refuse));
        assert_eq!("busy".parse(), Ok(PartyBehavior::Busy));
        assert_eq!("busy:40".parse(), Ok(PartyBehavior::BusyFor { secs: 40.0 }));
        assert_eq!(" Busy:2.5s".parse(), Ok(PartyBehavior::BusyFor { secs: 2.5 }));
        assert!("busy:-1".parse::<PartyBehavior>().unwrap_err().0.contains("busy:40"));
        assert_eq!(PartyBehavior::BusyFor { secs: 40.0 }.to_string(), "busy:40");
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

    fn party(script: &str) -> Party {
        Party::new(Script::parse(script).unwrap().steps)
    }

    #[test]
    fn a_party_waits_for_the_other_side_to_finish_before_it_speaks() {
        let t = TimingModel::default();
        let mut p = party("say hello there\nhangup");
        assert_eq!(p.answered(&t), Some(t.first_prompt_wait));
        assert_eq!(p.answered(&t), None, "once");
        assert_eq!(p.poll(true, false, &t), None, "the prompt plays");
        assert_eq!(p.poll(false, false, &t), Some(t.turn_gap), "it ended: a turn gap, then the reply");
        assert!(matches!(p.timer_due(&t), Act::Next));
        // The IVR speaks again before the party does: it waits for silence.
        assert!(matches!(p.next_step(true, false, &t), Act::StopTimer));
        assert_eq!(p.poll(false, false, &t), Some(t.turn_gap));
        assert!(matches!(p.timer_due(&t), Act::Next));
        let Act::Say(text) = p.next_step(false, false, &t) else { panic!("the say step runs again") };
        assert_eq!(&*text, "hello there");
        p.speak(Speech { seq: 1, text, words: 2, start: VTime::ZERO });
        assert!(p.speaking() && p.speech_seq() == Some(1));
        let Act::Spoke { line: Some(line), wait } = p.timer_due(&t) else { panic!("the line ends") };
        assert_eq!((line.seq, wait), (1, t.reply_timeout));
        assert_eq!(p.poll(true, false, &t), None);
        assert_eq!(p.poll(false, false, &t), Some(t.turn_gap));
        assert!(matches!(p.timer_due(&t), Act::Next));
        assert!(matches!(p.next_step(false, false, &t), Act::HangUp));
        assert!(matches!(p.next_step(false, false, &t), Act::Nothing), "gone");
    }

    #[test]
    fn a_party_presses_its_keys_once_a_gather_runs() {
        let t = TimingModel::default();
        let mut p = party("press 12");
        assert!(matches!(p.bridged(true, &t), Act::Next), "an agent that has not spoken speaks first");
        assert!(matches!(p.next_step(false, false, &t), Act::Wait(w) if w == t.reply_timeout), "no gather yet");
        assert_eq!(p.poll(false, true, &t), Some(t.press_delay), "a gather started");
        assert!(matches!(p.timer_due(&t), Act::Press));
        assert_eq!(p.press(), Some(('1', false)));
        assert!(matches!(p.timer_due(&t), Act::Press));
        assert_eq!(p.press(), Some(('2', true)));
        assert_eq!(p.press(), None);
        p.listen();
        assert_eq!(p.hears_ringback(&t), Some(t.turn_gap), "ringback ends the wait for a reply");
        assert!(matches!(p.timer_due(&t), Act::Next));
        assert!(matches!(p.next_step(false, false, &t), Act::Wait(w) if w == t.hold_cap));
        assert!(p.finished());
        assert!(p.append(vec![Step::Hangup]), "holding: it resumes");
        assert!(matches!(p.timer_due(&t), Act::HangUp), "or the hold cap ends the call");
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
