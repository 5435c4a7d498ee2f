//! Symbl's phone leg, from the moment it calls in until it says which
//! conversation it belongs to (PSTN mode).
//!
//! How the leg is recognised: Symbl is asked to dial a number reserved for it
//! (`engine.symbl_dial_in`, never the IVR's number), so every call *to* that
//! number is taken for a Symbl leg and never greeted. Each conversation gives
//! Symbl its own random DTMF code; Symbl presses it, then `#`, after the call
//! is answered. The code says which conversation the leg joins; a leg that
//! presses no known code within the gather timeout is hung up. Digits are read
//! from `call.dtmf.received` (so keys pressed before the gather starts count)
//! and from `call.gather.ended`, whichever completes the code first.
//!
//! Like the call session, this is a plain state machine: events in, commands
//! and an outcome out.

use ivrx_telnyx::commands::{Action, Answer, Gather, Plain};
use ivrx_telnyx::events::{Event, GatherStatus};

use super::{Command, Request, Role};

/// Longest code accepted (digits before `#`).
pub const MAX_CODE_LEN: u32 = 32;

/// What a dial-in leg turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialInOutcome {
    /// It pressed this code (without the `#`).
    Code(String),
    /// It pressed nothing usable in time; it is being hung up.
    Refused,
    /// It hung up.
    Gone,
}

/// What the leg told about itself in `call.initiated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialInLeg {
    /// The leg.
    pub call_control_id: String,
    /// Its `call_leg_id`.
    pub call_leg_id: Option<String>,
    /// Its `call_session_id`.
    pub call_session_id: Option<String>,
    /// Calling number.
    pub from: Option<String>,
    /// Called number (the dial-in number).
    pub to: Option<String>,
}

/// One dial-in leg being identified.
#[derive(Debug, Clone)]
pub struct DialIn {
    leg: DialInLeg,
    code_timeout_ms: u64,
    digits: String,
    answered: bool,
    done: bool,
    commands: u32,
}

impl DialIn {
    /// A leg that just called the dial-in number, with `code_timeout_ms` to
    /// press its code once answered.
    pub fn new(leg: DialInLeg, code_timeout_ms: u64) -> Self {
        Self { leg, code_timeout_ms, digits: String::new(), answered: false, done: false, commands: 0 }
    }

    /// The leg.
    pub fn leg(&self) -> &DialInLeg {
        &self.leg
    }

    fn command(&mut self, mut action: Action) -> Command {
        self.commands += 1;
        action.set_command_id(format!("dial-in-{}-{}", self.leg.call_control_id, self.commands));
        Command {
            call_control_id: Some(self.leg.call_control_id.clone()),
            role: Role::Symbl,
            request: Request::Action(action),
        }
    }

    /// Answers the leg (call it once, for `call.initiated`).
    pub fn start(&mut self) -> Vec<Command> {
        vec![self.command(Action::Answer(Answer::default()))]
    }

    /// Handles one event of the leg: commands to send, and the outcome once known.
    pub fn handle(&mut self, event: &Event) -> (Vec<Command>, Option<DialInOutcome>) {
        if self.done {
            return (Vec::new(), None);
        }
        match event {
            Event::CallAnswered(_) if !self.answered => {
                self.answered = true;
                // The gather is the timer: it ends `timeout` if no code comes.
                let gather = Gather {
                    minimum_digits: Some(1),
                    maximum_digits: Some(MAX_CODE_LEN + 1),
                    valid_digits: Some("0123456789#".into()),
                    terminating_digit: Some("#".into()),
                    initial_timeout_millis: Some(self.code_timeout_ms),
                    timeout_millis: Some(self.code_timeout_ms * 2),
                    inter_digit_timeout_millis: Some(5_000),
                    ..Default::default()
                };
                (vec![self.command(Action::Gather(gather))], None)
            }
            Event::DtmfReceived(d) => {
                for c in d.digit.chars() {
                    if c == '#' {
                        if !self.digits.is_empty() {
                            let code = std::mem::take(&mut self.digits);
                            return self.finish(DialInOutcome::Code(code));
                        }
                    } else if c.is_ascii_digit() && self.digits.len() < MAX_CODE_LEN as usize {
                        self.digits.push(c);
                    }
                }
                (Vec::new(), None)
            }
            Event::GatherEnded(g) => {
                let digits: String =
                    g.digits.as_deref().unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
                match g.status {
                    Some(GatherStatus::Valid) if !digits.is_empty() => self.finish(DialInOutcome::Code(digits)),
                    Some(GatherStatus::CallHangup) => self.finish(DialInOutcome::Gone),
                    _ => self.refuse(),
                }
            }
            Event::CallHangup(_) => self.finish(DialInOutcome::Gone),
            _ => (Vec::new(), None),
        }
    }

    /// Hangs the leg up (no code, or a code nobody is waiting for).
    pub fn refuse(&mut self) -> (Vec<Command>, Option<DialInOutcome>) {
        self.done = true;
        (vec![self.command(Action::Hangup(Plain::default()))], Some(DialInOutcome::Refused))
    }

    fn finish(&mut self, outcome: DialInOutcome) -> (Vec<Command>, Option<DialInOutcome>) {
        self.done = true;
        (Vec::new(), Some(outcome))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, payload: serde_json::Value) -> Event {
        Event::from_parts(kind, &payload).unwrap()
    }

    fn leg() -> DialIn {
        DialIn::new(DialInLeg { call_control_id: "v3:symbl".into(), ..Default::default() }, 7_000)
    }

    fn names(cmds: &[Command]) -> Vec<&'static str> {
        cmds.iter().map(Command::action_name).collect()
    }

    #[test]
    fn the_code_pressed_after_answering_identifies_the_leg() {
        let mut d = leg();
        assert_eq!(names(&d.start()), ["answer"]);
        let (cmds, out) = d.handle(&event("call.answered", json!({"call_control_id": "v3:symbl"})));
        assert_eq!((names(&cmds), out), (vec!["gather"], None));
        let Request::Action(Action::Gather(g)) = &cmds[0].request else { panic!("{cmds:?}") };
        assert_eq!((g.initial_timeout_millis, g.timeout_millis), (Some(7_000), Some(14_000)), "the configured time");
        for k in ["4", "8", "2", "1"] {
            assert_eq!(d.handle(&event("call.dtmf.received", json!({"digit": k}))), (vec![], None));
        }
        let (_, out) = d.handle(&event("call.dtmf.received", json!({"digit": "#"})));
        assert_eq!(out, Some(DialInOutcome::Code("4821".into())));
        // The gather's own end afterwards changes nothing.
        let late = d.handle(&event("call.gather.ended", json!({"digits": "4821", "status": "valid"})));
        assert_eq!(late, (vec![], None));
    }

    #[test]
    fn a_gather_that_completes_first_also_identifies_it() {
        let mut d = leg();
        d.start();
        let (_, out) = d.handle(&event("call.gather.ended", json!({"digits": "77", "status": "valid"})));
        assert_eq!(out, Some(DialInOutcome::Code("77".into())));
    }

    #[test]
    fn no_code_in_time_hangs_up_and_a_hangup_is_gone() {
        let mut d = leg();
        d.start();
        let (cmds, out) = d.handle(&event("call.gather.ended", json!({"digits": "", "status": "timeout"})));
        assert_eq!((names(&cmds), out), (vec!["hangup"], Some(DialInOutcome::Refused)));
        let mut d = leg();
        let (_, out) = d.handle(&event("call.hangup", json!({"hangup_cause": "normal_clearing"})));
        assert_eq!(out, Some(DialInOutcome::Gone));
    }

    #[test]
    fn command_ids_are_per_leg_and_distinct() {
        let mut d = leg();
        let a = d.start();
        let (g, _) = d.handle(&event("call.answered", json!({})));
        assert_ne!(a[0].command_id(), g[0].command_id());
        assert!(a[0].command_id().starts_with("dial-in-v3:symbl-"));
    }
}
