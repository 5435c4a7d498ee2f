//! Commands a conversation has decided on that Telnyx has not answered yet.
//!
//! They are saved with the session in every checkpoint. A command decided
//! before a crash but not sent (or not answered) is therefore sent again when
//! the call is resumed, with the same `command_id`, so Telnyx runs it once
//! whether or not the first attempt had reached it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::session::{Command, Request, Role, Session};
use crate::telnyx::commands::{Action, Dial};
use crate::telnyx::conferences::ConferenceCommand;

/// A command as saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCommand {
    /// The leg (none for a dial).
    pub call_control_id: Option<String>,
    /// The leg's role.
    pub role: Role,
    /// `dial` or the action name.
    pub action: String,
    /// The request body, as sent.
    pub body: Value,
}

impl SavedCommand {
    /// Saves a command.
    pub fn new(c: &Command) -> Self {
        let body = match &c.request {
            Request::Action(a) => a.body(),
            Request::Dial(d) => serde_json::to_value(d).unwrap_or(Value::Null),
            Request::Conference(cc) => serde_json::to_value(cc).unwrap_or(Value::Null),
        };
        Self { call_control_id: c.call_control_id.clone(), role: c.role, action: c.action_name().into(), body }
    }

    /// The command again, or `None` when the saved body no longer makes one.
    pub fn command(&self) -> Option<Command> {
        let request = if self.action == "dial" {
            Request::Dial(serde_json::from_value::<Dial>(self.body.clone()).ok()?)
        } else if self.action.starts_with("conference_") {
            Request::Conference(serde_json::from_value::<ConferenceCommand>(self.body.clone()).ok()?)
        } else {
            Request::Action(Action::parse(&self.action, self.body.clone()).ok()?)
        };
        Some(Command { call_control_id: self.call_control_id.clone(), role: self.role, request })
    }
}

/// The commands of one conversation that are not answered yet, in the order
/// they were decided.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: Vec<Command>,
    changed: bool,
}

impl Outbox {
    /// A command is about to be sent.
    pub fn push(&mut self, c: &Command) {
        self.pending.push(c.clone());
        self.changed = true;
    }

    /// Telnyx answered the command (success or final failure).
    pub fn done(&mut self, command_id: &str) {
        let before = self.pending.len();
        self.pending.retain(|c| c.command_id() != command_id);
        self.changed |= self.pending.len() != before;
    }

    /// True (once) when the outbox changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The commands not answered yet.
    pub fn pending(&self) -> &[Command] {
        &self.pending
    }
}

/// A checkpoint's state with unanswered commands. A checkpoint without any is
/// the bare session, as before.
#[derive(Serialize)]
struct WithOutbox<'a> {
    ivrx_checkpoint: u8,
    session: &'a Session,
    unanswered: Vec<SavedCommand>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithOutboxOwned {
    #[allow(dead_code)]
    ivrx_checkpoint: u8,
    session: Session,
    unanswered: Vec<SavedCommand>,
}

/// The state to save for a session and its outbox.
pub fn encode(session: &Session, outbox: &Outbox) -> serde_json::Result<String> {
    if outbox.pending.is_empty() {
        return serde_json::to_string(session);
    }
    let unanswered = outbox.pending.iter().map(SavedCommand::new).collect();
    serde_json::to_string(&WithOutbox { ivrx_checkpoint: 1, session, unanswered })
}

/// A saved state: the session and the commands to send again.
pub fn decode(state: &str) -> serde_json::Result<(Session, Vec<Command>)> {
    if let Ok(w) = serde_json::from_str::<WithOutboxOwned>(state) {
        let commands = w.unanswered.iter().filter_map(SavedCommand::command).collect();
        return Ok((w.session, commands));
    }
    Ok((serde_json::from_str::<Session>(state)?, Vec::new()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::session::SessionSettings;
    use crate::telnyx::commands::{Plain, Speak};

    fn speak(id: &str) -> Command {
        let mut a =
            Action::Speak(Speak { payload: Some("hello".into()), voice: Some("female".into()), ..Default::default() });
        a.set_command_id(id);
        Command { call_control_id: Some("v3:a".into()), role: Role::Caller, request: Request::Action(a) }
    }

    #[test]
    fn unanswered_commands_survive_a_checkpoint() {
        let session = Session::new("c1", Arc::new(SessionSettings::default()));
        let mut outbox = Outbox::default();
        let bare = encode(&session, &outbox).unwrap();
        assert_eq!(bare, serde_json::to_string(&session).unwrap(), "no commands: the bare session");
        assert!(decode(&bare).unwrap().1.is_empty());

        let dial = Command {
            call_control_id: None,
            role: Role::Agent,
            request: Request::Dial(Dial {
                connection_id: "1".into(),
                from: "+1".into(),
                to: "+2".into(),
                command_id: Some("c1-2".into()),
                ..Default::default()
            }),
        };
        let mut hangup = Action::Hangup(Plain::default());
        hangup.set_command_id("c1-3");
        let hangup =
            Command { call_control_id: Some("v3:b".into()), role: Role::Agent, request: Request::Action(hangup) };
        for c in [speak("c1-1"), dial.clone(), hangup.clone()] {
            outbox.push(&c);
        }
        assert!(outbox.take_changed());
        outbox.done("c1-1");
        outbox.done("nothing");
        assert!(outbox.take_changed());
        assert!(!outbox.take_changed());
        let (restored, commands) = decode(&encode(&session, &outbox).unwrap()).unwrap();
        assert_eq!(restored.id(), "c1");
        assert_eq!(commands, vec![dial, hangup]);
    }
}
