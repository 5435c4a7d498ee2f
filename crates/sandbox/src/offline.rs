//! The sandbox carrier in process: the same simulated world (legs, scripted
//! callers, agents, timers, the turn-taking of [`timing`](super::timing)) with
//! no HTTP, no signatures and no real-time clock. The driver hands commands
//! over as values, takes the webhooks back as the `data` records delivery
//! would post, and moves virtual time on itself, so a whole call plays in
//! microseconds and the same way every time. `ivrx eval` plays labelled
//! caller scripts through it and the real call session.
//!
//! Commands are checked as the REST API checks their bodies (with the same
//! parsers) and refused with the same Telnyx error codes. Conferences are not
//! offered here: they serve Symbl's phone leg, which is never offline.
//!
//! ```
//! use ivrx_sandbox::offline::OfflineCarrier;
//! use ivrx_sandbox::{PlaceCall, Script};
//!
//! let mut carrier = OfflineCarrier::new(Default::default());
//! let call = carrier.place_call(PlaceCall::new(Script::parse("say hello\nhangup").unwrap()));
//! let first = carrier.take_webhooks();
//! assert_eq!(first[0].event_type, "call.initiated");
//! assert_eq!(first[0].payload["call_control_id"], call.call_control_id.as_str());
//! // Nobody answers: after 30 virtual seconds the caller gives up.
//! while carrier.advance() {}
//! let last = carrier.take_webhooks();
//! assert_eq!(last.last().map(|w| w.event_type.as_str()), Some("call.hangup"));
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ivrx_telnyx::commands::{Action, CallInfo, Dial};
use ivrx_telnyx::events::EventData;

use super::api::{command_error, validation_error, ApiError};
use super::world::{Now, VTime, World, WorldConfig};
use super::{PartyBehavior, PlaceCall, TimingModel};

/// What the offline carrier simulates.
#[derive(Debug, Clone)]
pub struct OfflineConfig {
    /// The simulation's durations.
    pub timing: TimingModel,
    /// How configured numbers behave when dialled or transferred to.
    pub agents: Vec<(String, PartyBehavior)>,
    /// How every other number behaves (an agent answering after 3 s).
    pub default_agent: PartyBehavior,
    /// The Call Control application id reported in webhooks.
    pub connection_id: String,
    /// The virtual wall-clock time the simulation starts at.
    pub epoch: DateTime<Utc>,
}

impl Default for OfflineConfig {
    /// The documented timing, standard agents, and a fixed start (2026-01-01 UTC), so runs repeat.
    fn default() -> Self {
        Self {
            timing: TimingModel::default(),
            agents: Vec::new(),
            default_agent: PartyBehavior::default_agent(),
            connection_id: "1684641123236054244".into(),
            epoch: DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        }
    }
}

/// A command the carrier refused, as the REST API would answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {detail}")]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The Telnyx error code (`90018`: the call has already ended).
    pub code: String,
    /// Why.
    pub detail: String,
}

impl Refused {
    /// True for `90018`: the call had already ended (a final state, not a fault).
    pub fn is_call_gone(&self) -> bool {
        self.code == ivrx_telnyx::errors::codes::CALL_ENDED
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        let detail = e.item.detail.clone().unwrap_or_else(|| e.item.title.clone());
        Self { status: e.status.as_u16(), code: e.item.code.clone(), detail }
    }
}

/// The sandbox carrier, in process, on a virtual clock the driver moves.
pub struct OfflineCarrier {
    world: World,
    /// Real time of virtual zero: the world keeps `command_id` windows and
    /// retention in real time, which here follows the virtual clock.
    origin: Instant,
    now: VTime,
}

impl std::fmt::Debug for OfflineCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineCarrier").field("now", &self.now).finish_non_exhaustive()
    }
}

impl OfflineCarrier {
    /// A carrier with no calls, at virtual time zero.
    pub fn new(config: OfflineConfig) -> Self {
        let world = World::new(WorldConfig {
            timing: config.timing,
            connection_id: config.connection_id,
            webhook_url: Arc::from("http://offline.invalid/webhooks"),
            parties: config.agents.into_iter().collect::<HashMap<_, _>>(),
            default_agent: config.default_agent,
            epoch: config.epoch,
            // Real time here follows the virtual clock.
            time_scale: 1.0,
            recording_base: "http://offline.invalid/sandbox/v1/recordings".into(),
        });
        Self { world, origin: Instant::now(), now: VTime::ZERO }
    }

    fn at(&self) -> Now {
        Now { v: self.now, real: self.origin + self.now }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now
    }

    /// Places a simulated inbound call: the application receives
    /// `call.initiated` and must answer.
    pub fn place_call(&mut self, call: PlaceCall) -> CallInfo {
        let now = self.at();
        self.world.place_inbound(now, call)
    }

    /// `POST /v2/calls`, checked as the REST API checks it.
    pub fn dial(&mut self, dial: &Dial) -> Result<CallInfo, Refused> {
        let body = serde_json::to_value(dial).map_err(|e| Refused::from(ApiError::bad_request(e.to_string())))?;
        let dial = Dial::parse(body).map_err(validation_error)?;
        let now = self.at();
        Ok(self.world.dial(now, dial).map_err(|e| command_error(e, ""))?)
    }

    /// `POST /v2/calls/{call_control_id}/actions/{name}`, checked as the REST API checks it.
    pub fn command(&mut self, call_control_id: &str, action: &Action) -> Result<(), Refused> {
        let action = Action::parse(action.name(), action.body()).map_err(validation_error)?;
        let now = self.at();
        self.world.command(now, call_control_id, action).map_err(|e| command_error(e, call_control_id))?;
        Ok(())
    }

    /// The webhooks produced since the last call, in delivery order.
    pub fn take_webhooks(&mut self) -> Vec<EventData> {
        self.world.take_outbox().into_iter().map(|e| e.event_data()).collect()
    }

    /// Moves the clock to the next moment something is due and runs it;
    /// false (and the clock stays) when nothing is scheduled.
    pub fn advance(&mut self) -> bool {
        let Some(next) = self.world.next_deadline() else { return false };
        self.now = self.now.max(next);
        let now = self.at();
        self.world.advance(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use ivrx_telnyx::commands::{Answer, Plain};
    use ivrx_telnyx::events::Event;

    use super::*;
    use crate::Script;

    fn events(carrier: &mut OfflineCarrier) -> Vec<Event> {
        carrier.take_webhooks().iter().map(|d| Event::from_data(d).unwrap()).collect()
    }

    #[test]
    fn a_scripted_call_plays_out_on_the_virtual_clock() {
        let mut c = OfflineCarrier::new(OfflineConfig::default());
        let script = Script::parse("say my internet is down\nhangup").unwrap();
        let ccid = c.place_call(PlaceCall::new(script)).call_control_id;
        assert_eq!(events(&mut c).iter().map(Event::event_type).collect::<Vec<_>>(), ["call.initiated"]);
        c.command(&ccid, &Action::Answer(Answer::default())).unwrap();
        let mut seen = events(&mut c);
        while c.advance() {
            seen.extend(events(&mut c));
        }
        let types: Vec<_> = seen.iter().map(Event::event_type).collect();
        assert_eq!(types, ["call.answered", "call.hangup"], "no transcription was started");
        assert!(c.elapsed() >= Duration::from_secs(5), "the caller waited for a prompt first");
        let err = c.command(&ccid, &Action::Hangup(Plain::default())).unwrap_err();
        assert!(err.is_call_gone(), "{err}");
    }

    #[test]
    fn bodies_are_checked_like_the_rest_api() {
        let mut c = OfflineCarrier::new(OfflineConfig::default());
        let err = c.dial(&Dial::default()).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (422, "10004"), "{err}");
        let err = c.command("v3:nobody", &Action::Hangup(Plain::default())).unwrap_err();
        assert_eq!(err.status, 404, "{err}");
        assert!(!err.is_call_gone());
    }
}
