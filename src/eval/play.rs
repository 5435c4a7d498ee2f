//! One caller script, played through the production path in process.
//!
//! The sandbox carrier ([`OfflineCarrier`]) plays the caller and any agent;
//! the call session that `serve` runs answers every webhook; utterances are
//! scored at once by the engine, as `serve`'s worker scores with the local
//! engine; commands go to the carrier, checked as its REST API checks them,
//! and a refused one comes back to the session as `serve`'s sender reports
//! it. Only the transport is missing: no sockets, no signatures, no store,
//! and the carrier's virtual clock is the only clock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::TraceStep;
use crate::intel::Scorer;
use crate::policy::Decision;
use crate::sandbox::offline::{OfflineCarrier, OfflineConfig};
use crate::sandbox::{PlaceCall, Script};
use crate::session::{
    Command, DecisionSource, DomainEvent, Effect, Input, Request, Session, SessionSettings, Speaker, SymblInput,
};
use crate::telnyx::events::{Event, EventData};

/// How much simulated time a call may take before it is called stuck: far
/// more than any script with its pauses (at most an hour each) needs.
const MAX_CALL: Duration = Duration::from_secs(6 * 3600);

/// What a played call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Played {
    /// The first decision the session recorded, and where it came from. The
    /// call is played no further.
    pub decision: Option<(DecisionSource, Decision)>,
    /// The caller's utterances as the session scored them, up to the decision.
    pub trace: Vec<TraceStep>,
    /// How the call ended, when it ended before any decision.
    pub ended: Option<String>,
}

/// Why a script could not be played.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlayError {
    /// The carrier sent something the session cannot read.
    #[error("the carrier sent a webhook the session cannot read: {0}")]
    Webhook(String),
    /// The call went on past [`MAX_CALL`].
    #[error("the call was still going after {} hours of simulated time", MAX_CALL.as_secs() / 3600)]
    Endless,
}

/// Plays `script` as an inbound call to the IVR of `settings`, scoring with `engine`.
pub fn play(script: &Script, engine: &dyn Scorer, settings: &Arc<SessionSettings>) -> Result<Played, PlayError> {
    let mut carrier = OfflineCarrier::new(OfflineConfig {
        connection_id: settings.connection_id.clone(),
        ..OfflineConfig::default()
    });
    carrier.place_call(PlaceCall { to: settings.ivr.number.clone(), ..PlaceCall::new(script.clone()) });
    let mut call = Call {
        session: Session::new("eval", settings.clone()),
        carrier,
        engine,
        last_at: DateTime::<Utc>::UNIX_EPOCH,
        said: BTreeMap::new(),
        played: Played::default(),
    };
    loop {
        for data in call.carrier.take_webhooks() {
            call.webhook(&data)?;
            if call.played.decision.is_some() {
                return Ok(call.played);
            }
        }
        if call.session.is_ended() || !call.carrier.advance() {
            return Ok(call.played);
        }
        if call.carrier.elapsed() > MAX_CALL {
            return Err(PlayError::Endless);
        }
    }
}

/// The call being played: the session, the carrier, and what was seen.
struct Call<'a> {
    session: Session,
    carrier: OfflineCarrier,
    engine: &'a dyn Scorer,
    /// The conversation's clock: the time of the latest webhook.
    last_at: DateTime<Utc>,
    /// Caller utterances waiting for their score: seq → (caller index, text).
    said: BTreeMap<u32, (u32, String)>,
    played: Played,
}

impl Call<'_> {
    fn webhook(&mut self, data: &EventData) -> Result<(), PlayError> {
        let event = Event::from_data(data).map_err(|e| PlayError::Webhook(e.to_string()))?;
        let occurred_at = data
            .occurred_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        self.last_at = occurred_at.unwrap_or(self.last_at);
        let input = Input::Webhook { event: Box::new(event), occurred_at, received_at: self.last_at };
        let effects = self.session.handle(input);
        self.run(effects);
        Ok(())
    }

    /// Carries out effects as `serve`'s worker does: records are kept,
    /// utterances scored at once, commands sent; a refused command is
    /// reported back once the effects in hand are done.
    fn run(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        let mut failed = VecDeque::new();
        loop {
            while let Some(effect) = queue.pop_front() {
                match effect {
                    Effect::Record(r) => self.record(r.event),
                    Effect::Score(req) => {
                        let score = self.engine.score(&req.text);
                        queue.extend(self.session.handle(Input::Scored { seq: req.seq, score, at: self.last_at }));
                    }
                    // A release is sent apart from the ordered commands, at
                    // once here: the offline clock waits for no backoff.
                    Effect::Send(cmd) | Effect::Release { command: cmd, .. } => failed.extend(self.send(&cmd)),
                    // Symbl is never reachable offline.
                    Effect::StartSymbl => {
                        let reason = "Symbl is not used offline".to_string();
                        let input = Input::Symbl(SymblInput::Failed { reason, at: self.last_at });
                        queue.extend(self.session.handle(input));
                    }
                    // No registry, metrics, Symbl or summary offline.
                    Effect::StopSymbl { .. }
                    | Effect::SymblJoined
                    | Effect::RouteLeg { .. }
                    | Effect::Decided(_)
                    | Effect::Notify(_)
                    | Effect::TextCaller(_)
                    | Effect::FinishScoring => {}
                }
            }
            let Some(input) = failed.pop_front() else { return };
            queue.extend(self.session.handle(input));
        }
    }

    /// Sends a command to the carrier; the failure to report, if any.
    fn send(&mut self, cmd: &Command) -> Option<Input> {
        let result = match (&cmd.request, &cmd.call_control_id) {
            (Request::Action(a), Some(ccid)) => {
                self.carrier.command(ccid, a).map_err(|e| (e.is_call_gone(), e.to_string()))
            }
            (Request::Action(_), None) => Ok(()),
            (Request::Dial(d), _) => self.carrier.dial(d).map(drop).map_err(|e| (e.is_call_gone(), e.to_string())),
            (Request::Conference(_), _) => Err((false, "conferences are not simulated offline".to_string())),
        };
        let (call_gone, error) = result.err()?;
        if cmd.failure_is_moot(call_gone) {
            return None;
        }
        Some(Input::CommandFailed {
            command_id: cmd.command_id().to_string(),
            action: cmd.action_name().to_string(),
            role: cmd.role,
            call_gone,
            error,
            at: self.last_at,
        })
    }

    fn record(&mut self, event: DomainEvent) {
        if self.played.decision.is_some() {
            return;
        }
        match event {
            DomainEvent::Utterance { seq, speaker: Speaker::Caller, text, caller_index: Some(index), .. } => {
                self.said.insert(seq, (index, text));
            }
            DomainEvent::Scored { seq, speaker: Speaker::Caller, score, trackers, policy, .. } => {
                if let Some((index, text)) = self.said.remove(&seq) {
                    let level = policy.map_or(0.0, |p| p.level);
                    let trackers = trackers.into_iter().map(|h| h.tracker).collect();
                    self.played.trace.push(TraceStep { index, text, score, level, trackers });
                }
            }
            DomainEvent::Decision { source, decision } => self.played.decision = Some((source, decision)),
            DomainEvent::CallEnded { reason } => self.played.ended = Some(reason),
            _ => {}
        }
    }
}
