//! The per-leg state machine, as plain functions: which state a leg is in,
//! which commands it accepts there, and `command_id` de-duplication.
//!
//! ```text
//! inbound:   parked ──answer──► answered ──bridge/transfer──► bridged
//! outbound:  ringing ──(far end answers)──► answered ──bridge──► bridged
//! any state ──hangup (either side), ring timeout, refusal──► hangup
//! ```
//!
//! Telnyx answers `90018` (call has already ended) to any command on a leg
//! that hung up, and `90034` (not answered yet) to media and bridging commands
//! on a leg that has not been answered.

use std::time::{Duration, Instant};

use ivrx_telnyx::commands::ActionKind;
use serde::{Deserialize, Serialize};

/// Where a leg is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LegState {
    /// An inbound call waiting for the application's `answer`.
    Parked,
    /// An outbound call (dial or transfer) ringing at the far end.
    Ringing,
    /// Answered and not bridged.
    Answered,
    /// Answered and connected to another leg.
    Bridged,
    /// Ended.
    #[serde(rename = "hangup")]
    HungUp,
}

impl LegState {
    /// The state's name, as the control API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            LegState::Parked => "parked",
            LegState::Ringing => "ringing",
            LegState::Answered => "answered",
            LegState::Bridged => "bridged",
            LegState::HungUp => "hangup",
        }
    }

    /// True until the leg hangs up.
    pub fn is_alive(self) -> bool {
        self != LegState::HungUp
    }

    /// True once answered and until hung up.
    pub fn is_answered(self) -> bool {
        matches!(self, LegState::Answered | LegState::Bridged)
    }
}

/// Why the carrier refuses a command in the leg's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `90018`: the call has already ended.
    CallEnded,
    /// `90034`: the call has not been answered yet.
    NotAnswered,
}

/// Checks a command against the leg's state: every command on an ended leg is
/// refused with `90018`; media and bridging commands
/// ([`ActionKind::needs_answer`]) before answer with `90034`. Everything else
/// (answer, hangup, the stop commands, client_state_update, streaming) is
/// accepted in any live state.
pub fn check_command(state: LegState, action: ActionKind) -> Result<(), Refusal> {
    if state == LegState::HungUp {
        return Err(Refusal::CallEnded);
    }
    if !state.is_answered() && action.needs_answer() {
        return Err(Refusal::NotAnswered);
    }
    Ok(())
}

/// What `answer` does in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Parked → answered: send `call.answered`.
    Answer,
    /// Already answered: nothing happens.
    AlreadyAnswered,
    /// An outbound leg is answered by the far end, not by the application.
    NotInbound,
}

/// What `answer` does to a leg in `state` (after [`check_command`]).
pub fn answer(state: LegState) -> AnswerOutcome {
    match state {
        LegState::Parked => AnswerOutcome::Answer,
        LegState::Answered | LegState::Bridged => AnswerOutcome::AlreadyAnswered,
        LegState::Ringing | LegState::HungUp => AnswerOutcome::NotInbound,
    }
}

/// How long a `command_id` is remembered per call (real time).
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(60);

/// The `command_id`s a leg executed in the last [`DEDUPE_WINDOW`].
#[derive(Debug, Default, Clone)]
pub struct CommandIds {
    seen: Vec<(Box<str>, Instant)>,
}

impl CommandIds {
    /// True when `id` was executed on this leg within the window.
    pub fn is_duplicate(&mut self, id: &str, now: Instant) -> bool {
        self.seen.retain(|(_, at)| now.saturating_duration_since(*at) < DEDUPE_WINDOW);
        self.seen.iter().any(|(seen, _)| &**seen == id)
    }

    /// Remembers an executed `command_id`.
    pub fn record(&mut self, id: &str, now: Instant) {
        self.seen.push((id.into(), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> ActionKind {
        ActionKind::from_name(name).unwrap()
    }

    #[test]
    fn ended_legs_refuse_everything_with_90018() {
        for a in ActionKind::ALL {
            assert_eq!(check_command(LegState::HungUp, a), Err(Refusal::CallEnded), "{a:?}");
        }
    }

    #[test]
    fn media_and_bridging_need_an_answer() {
        let needs_answer = [
            "speak",
            "gather",
            "gather_using_speak",
            "transcription_start",
            "playback_start",
            "record_start",
            "bridge",
            "transfer",
        ];
        for state in [LegState::Parked, LegState::Ringing] {
            for a in needs_answer {
                assert_eq!(check_command(state, kind(a)), Err(Refusal::NotAnswered), "{a} in {state:?}");
            }
            for a in ["answer", "hangup", "client_state_update", "gather_stop", "transcription_stop", "playback_stop"] {
                assert_eq!(check_command(state, kind(a)), Ok(()), "{a} in {state:?}");
            }
        }
        for state in [LegState::Answered, LegState::Bridged] {
            for a in ActionKind::ALL {
                assert_eq!(check_command(state, a), Ok(()), "{a:?} in {state:?}");
            }
        }
    }

    #[test]
    fn answer_transitions() {
        assert_eq!(answer(LegState::Parked), AnswerOutcome::Answer);
        assert_eq!(answer(LegState::Answered), AnswerOutcome::AlreadyAnswered);
        assert_eq!(answer(LegState::Bridged), AnswerOutcome::AlreadyAnswered);
        assert_eq!(answer(LegState::Ringing), AnswerOutcome::NotInbound);
        assert!(LegState::Bridged.is_answered() && !LegState::Parked.is_answered());
        assert!(!LegState::HungUp.is_alive());
        assert_eq!(serde_json::to_value(LegState::HungUp).unwrap(), "hangup");
    }

    #[test]
    fn command_ids_are_remembered_for_sixty_seconds() {
        let t0 = Instant::now();
        let mut ids = CommandIds::default();
        assert!(!ids.is_duplicate("a", t0));
        ids.record("a", t0);
        assert!(ids.is_duplicate("a", t0 + Duration::from_secs(59)));
        assert!(!ids.is_duplicate("b", t0));
        assert!(!ids.is_duplicate("a", t0 + Duration::from_secs(61)));
    }
}
