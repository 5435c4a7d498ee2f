//! One conversation's commands to Telnyx. [`Commands`] owns the outbox (the
//! commands not answered yet, saved with each checkpoint) and hands each
//! command to a task that sends them in order; an agent leg's release goes
//! apart from the order, after its backoff. A command failing for a passing
//! reason is sent again, same `command_id`, while the retry window lasts; how
//! each command went is reported to the worker ([`WorkerMsg`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::mpsc;

use super::worker::{WorkerInbox, WorkerMsg};
use super::Shared;
use crate::server::outbox::Outbox;
use crate::session::{Command, Input, Request, Role};
use crate::telnyx::{TelnyxClient, TelnyxError};

/// A command for the ordered sender, with when its webhook arrived (a transfer's start, for latency).
type Queued = (Command, Option<Instant>);

/// Commands the ordered sender's queue holds: room for what several inputs
/// lead to (one input leads to a handful of commands at most). Beyond it a
/// command waits in the worker, in order, until the sender has finished one
/// (its answer frees the room): the worker never waits for its sender, which
/// waits for room in the worker's inbox to report.
pub const ORDERED: usize = 32;

/// One conversation's commands: the outbox, the ordered sender and the releases.
pub(super) struct Commands {
    shared: Arc<Shared>,
    /// The ordered sender's queue ([`ORDERED`] commands).
    ordered: mpsc::Sender<Queued>,
    /// Commands for the ordered sender while its queue is full, in order
    /// (each is also in the outbox).
    waiting: VecDeque<Queued>,
    /// The worker, told how each command went.
    worker: WorkerInbox,
    /// Commands sent but not answered yet.
    outbox: Outbox,
    /// Under several instances: commands decided but held until the
    /// checkpoint that holds them in the outbox commits (`None`: sent at once).
    held: Option<Vec<Held>>,
}

/// A command held until its checkpoint commits.
enum Held {
    Ordered(Queued),
    Release(Command, u32),
}

impl Commands {
    /// Starts the conversation's ordered sender.
    pub(super) fn start(shared: Arc<Shared>, worker: WorkerInbox) -> Self {
        let (ordered, rx) = mpsc::channel(ORDERED);
        tokio::spawn(run_ordered(shared.clone(), rx, worker.clone()));
        Self { shared, ordered, waiting: VecDeque::new(), worker, outbox: Outbox::default(), held: None }
    }

    /// Sends a command after the conversation's earlier ones, keeping it in
    /// the outbox until answered. `started`: when the webhook that led to it
    /// arrived (a transfer's start, for the decision latency).
    pub(super) fn send(&mut self, cmd: Command, started: Option<Instant>) {
        self.outbox.push(&cmd);
        match &mut self.held {
            Some(held) => held.push(Held::Ordered((cmd, started))),
            None => {
                self.waiting.push_back((cmd, started));
                self.hand_over();
            }
        }
    }

    /// Hands the ordered sender what waits for it, as far as its queue has room.
    fn hand_over(&mut self) {
        while let Some(next) = self.waiting.pop_front() {
            match self.ordered.try_send(next) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(next)) => {
                    self.waiting.push_front(next);
                    return;
                }
                // The sender is gone (the runtime is shutting down): nothing goes out.
                Err(mpsc::error::TrySendError::Closed(_)) => self.waiting.clear(),
            }
        }
    }

    /// The worker is leaving: what still waits goes to the ordered sender,
    /// which finishes alone. It never waits for the worker now (the worker's
    /// inbox is closed: its reports fail at once), so waiting for room here is safe.
    pub(super) async fn finish(&mut self) {
        for next in self.waiting.drain(..) {
            if self.ordered.send(next).await.is_err() {
                break;
            }
        }
    }

    /// Releases an agent leg: its hangup, apart from the ordered commands,
    /// after a backoff that grows with `round` (kept in the outbox until answered).
    pub(super) fn release(&mut self, cmd: Command, round: u32) {
        self.outbox.push(&cmd);
        match &mut self.held {
            Some(held) => held.push(Held::Release(cmd, round)),
            None => drop(tokio::spawn(run_release(self.shared.clone(), cmd, round, self.worker.clone()))),
        }
    }

    /// From now on, commands wait for [`Commands::send_held`] (the
    /// checkpoint that records them) before they go out.
    pub(super) fn hold(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }

    /// When the webhook behind the earliest held transfer start arrived.
    pub(super) fn held_started(&self) -> Option<Instant> {
        self.held
            .iter()
            .flatten()
            .filter_map(|h| match h {
                Held::Ordered((_, started)) => *started,
                Held::Release(..) => None,
            })
            .min()
    }

    /// Sends the commands held since the last checkpoint, in order.
    pub(super) fn send_held(&mut self) {
        let Some(held) = &mut self.held else { return };
        for h in std::mem::take(held) {
            match h {
                Held::Ordered(q) => self.waiting.push_back(q),
                Held::Release(cmd, round) => {
                    drop(tokio::spawn(run_release(self.shared.clone(), cmd, round, self.worker.clone())))
                }
            }
        }
        self.hand_over();
    }

    /// Sends again the commands a stored conversation had not seen answered.
    pub(super) fn resend(&mut self, unanswered: Vec<Command>) {
        for cmd in unanswered {
            if cmd.is_agent_hangup() {
                self.release(cmd, 0);
            } else {
                self.send(cmd, None);
            }
        }
    }

    /// Telnyx answered a command (or it failed for good).
    pub(super) fn answered(&mut self, command_id: &str) {
        self.outbox.done(command_id);
        self.hand_over();
    }

    /// The commands not answered yet.
    pub(super) fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// True (once) when the outbox changed since the last call.
    pub(super) fn take_changed(&mut self) -> bool {
        self.outbox.take_changed()
    }
}

/// Sends commands to a leg that belongs to no conversation yet (a call to the
/// Symbl dial-in number), in order, in the background; failures are logged.
pub(super) fn send_detached(client: &TelnyxClient, commands: Vec<Command>) {
    if commands.is_empty() {
        return;
    }
    let client = client.clone();
    tokio::spawn(async move {
        for cmd in commands {
            let (Request::Action(action), Some(ccid)) = (&cmd.request, &cmd.call_control_id) else { continue };
            if let Err(e) = client.action(ccid, action).await {
                if !e.is_call_gone() {
                    tracing::warn!(action = action.name(), error = %e, "command to Symbl's dial-in leg failed");
                }
            }
        }
    });
}

/// Sends one conversation's commands in order, reporting how each went.
async fn run_ordered(shared: Arc<Shared>, mut rx: mpsc::Receiver<Queued>, worker: WorkerInbox) {
    while let Some((cmd, started)) = rx.recv().await {
        if let Some(t) = started {
            shared.metrics.decision_latency(t.elapsed());
        }
        execute(&shared, &cmd, &worker).await;
    }
}

/// Sends an agent leg's hangup after the backoff of its round.
async fn run_release(shared: Arc<Shared>, cmd: Command, round: u32, worker: WorkerInbox) {
    tokio::time::sleep(backoff(round)).await;
    execute(&shared, &cmd, &worker).await;
}

/// The wait before round `round` of a command: none the first time, then
/// doubling from a second up to half a minute (each round retries on its own).
fn backoff(round: u32) -> Duration {
    match round {
        0 => Duration::ZERO,
        r => Duration::from_secs(1u64 << (r - 1).min(5)).min(Duration::from_secs(30)),
    }
}

/// Sends one command and tells the worker how it went: answered (it leaves
/// the outbox), an agent dial's new leg, a conference's id, or a failure for
/// good. A failure for a passing reason is sent again, same `command_id`,
/// while the retry window lasts.
async fn execute(shared: &Shared, cmd: &Command, worker: &WorkerInbox) {
    let began = Instant::now();
    let mut round = 0;
    let result = loop {
        let result = send_once(shared, cmd, worker).await;
        match &result {
            Err(e) if e.is_transient() && began.elapsed() + backoff(round + 1) < shared.retry_window => {
                round += 1;
                tracing::debug!(action = cmd.action_name(), command_id = cmd.command_id(), round, error = %e, "sending again");
                tokio::time::sleep(backoff(round)).await;
            }
            _ => break result,
        }
    };
    let _ = worker.send(WorkerMsg::Answered { command_id: cmd.command_id().to_string() }).await;
    let action = cmd.action_name();
    shared.metrics.command(action, began.elapsed(), result.as_ref().err().map(|e| e.kind()));
    let Err(e) = result else { return };
    // A leg Telnyx does not know is as gone as one it says has ended.
    let call_gone = e.is_call_gone() || (cmd.is_agent_hangup() && matches!(e, TelnyxError::NotFound { .. }));
    if cmd.failure_is_moot(call_gone) {
        return;
    }
    if call_gone {
        tracing::debug!(action, command_id = cmd.command_id(), "call already ended");
    } else {
        tracing::warn!(action, command_id = cmd.command_id(), error = %e, "Telnyx command failed");
    }
    let failed = Input::CommandFailed {
        command_id: cmd.command_id().to_string(),
        action: action.to_string(),
        role: cmd.role,
        call_gone,
        error: e.to_string(),
        at: Utc::now(),
    };
    let _ = worker.send(WorkerMsg::Input(failed)).await;
}

/// One round of a command (the client's attempts), with what its answer tells the worker.
async fn send_once(shared: &Shared, cmd: &Command, worker: &WorkerInbox) -> Result<(), TelnyxError> {
    match &cmd.request {
        Request::Action(a) => match &cmd.call_control_id {
            Some(ccid) => shared.client.action(ccid, a).await.map(|_| ()),
            None => Ok(()),
        },
        Request::Dial(d) => {
            let info = shared.client.dial(d).await?;
            if cmd.role == Role::Agent {
                let dialled = Input::Dialled {
                    command_id: cmd.command_id().to_string(),
                    call_control_id: info.call_control_id,
                    call_leg_id: Some(info.call_leg_id),
                    call_session_id: Some(info.call_session_id),
                    at: Utc::now(),
                };
                let _ = worker.send(WorkerMsg::Input(dialled)).await;
            }
            Ok(())
        }
        Request::Conference(c) => {
            if let Some(conference) = shared.client.conference(c).await? {
                let ready = Input::ConferenceReady { conference_id: conference.id, at: Utc::now() };
                let _ = worker.send(WorkerMsg::Input(ready)).await;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::LocalEngine;
    use crate::server::calls::Engine;
    use crate::telnyx::commands::{Action, Plain};

    fn hangup(n: usize) -> Command {
        let mut action = Action::Hangup(Plain::default());
        action.set_command_id(format!("c1-{n}"));
        Command { call_control_id: Some("leg".into()), role: Role::Caller, request: Request::Action(action) }
    }

    /// On this single-threaded runtime the ordered sender runs only when the test yields.
    #[tokio::test]
    async fn commands_past_the_ordered_queue_wait_in_order_and_go_as_the_sender_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let shared = super::super::tests::shared(Engine::Local(Arc::new(LocalEngine::default())), dir.path());
        let (worker, _inbox) = mpsc::channel(super::super::INBOX);
        let mut commands = Commands::start(Arc::new(shared), worker);
        for n in 0..ORDERED + 3 {
            commands.send(hangup(n), None);
        }
        let waiting = |c: &Commands| c.waiting.iter().map(|(c, _)| c.command_id().to_string()).collect::<Vec<_>>();
        assert_eq!(waiting(&commands), ["c1-32", "c1-33", "c1-34"], "the queue is full; the rest wait in order");
        assert_eq!(commands.outbox().pending().len(), ORDERED + 3, "all of them in the outbox");
        commands.answered("c1-0");
        assert_eq!(waiting(&commands).len(), 3, "no room yet");
        // The sender takes the first command; its answer hands over the next.
        tokio::task::yield_now().await;
        commands.answered("c1-0");
        let left = waiting(&commands);
        assert!(left.len() < 3, "{left:?}");
        assert_eq!(left, ["c1-32", "c1-33", "c1-34"][3 - left.len()..], "the first waiting went first");
    }

    #[test]
    fn backoff_doubles_from_a_second_up_to_half_a_minute() {
        let secs: Vec<u64> = (0..8).map(|r| backoff(r).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 16, 30, 30]);
    }
}
