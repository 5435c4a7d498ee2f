//! How the world runs the simulated people ([`Party`]) on its legs: what they
//! can hear, their timers, their lines and keys, and their hanging up.

use std::sync::Arc;

use ivrx_telnyx::events::EventType;
use serde_json::json;

use super::{Slot, Source, VTime, World};
use crate::party::{Act, Party};
use crate::timing::TimingModel;

impl World {
    /// The party on a leg, with the timing it follows.
    fn party(&mut self, id: u64) -> Option<(&mut Party, &TimingModel)> {
        let p = self.legs.get_mut(&id)?.party.as_deref_mut()?;
        Some((p, &self.cfg.timing))
    }

    /// Sets the party's timer `wait` from `at`.
    fn party_wait(&mut self, id: u64, at: VTime, wait: std::time::Duration) {
        self.set_timer(id, Slot::Party, at.saturating_add(wait));
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

    fn gathering(&self, id: u64) -> bool {
        self.legs.get(&id).is_some_and(|l| l.media.gathering())
    }

    /// The leg was answered: the party listens for the first prompt.
    pub(crate) fn party_answered(&mut self, id: u64, at: VTime) {
        let Some(wait) = self.party(id).and_then(|(p, t)| p.answered(t)) else { return };
        self.party_wait(id, at, wait);
        self.party_poll(id, at);
    }

    /// The leg was bridged. An agent that has not spoken yet speaks first;
    /// anyone else waiting to talk listens to the new party first.
    pub(crate) fn party_bridged(&mut self, id: u64, at: VTime, agent: bool) {
        let Some(act) = self.party(id).map(|(p, t)| p.bridged(agent, t)) else { return };
        match act {
            Act::Next => return self.party_next(id, at),
            Act::Wait(wait) => self.party_wait(id, at, wait),
            _ => {}
        }
        self.party_poll(id, at);
    }

    /// A transfer started on the party's leg: the party hears ringback, which
    /// ends a wait for a reply.
    pub(crate) fn party_hears_ringback(&mut self, id: u64, at: VTime) {
        if let Some(wait) = self.party(id).and_then(|(p, t)| p.hears_ringback(t)) {
            self.party_wait(id, at, wait);
        }
    }

    /// Re-checks a party's waiting condition after something changed.
    pub(crate) fn party_poll(&mut self, id: u64, at: VTime) {
        let (audible, gathering) = (self.audible(id), self.gathering(id));
        if let Some(wait) = self.party(id).and_then(|(p, t)| p.poll(audible, gathering, t)) {
            self.party_wait(id, at, wait);
        }
    }

    /// Runs the party's next step.
    pub(crate) fn party_next(&mut self, id: u64, at: VTime) {
        let (audible, gathering) = (self.audible(id), self.gathering(id));
        let side = self.legs.get(&id).map_or("caller", |l| l.party_side());
        let Some(act) = self.party(id).map(|(p, t)| p.next_step(audible, gathering, t)) else { return };
        match act {
            Act::Wait(wait) => self.party_wait(id, at, wait),
            Act::StopTimer => self.cancel_timer(id, Slot::Party),
            Act::Say(text) => self.party_speak(id, at, text),
            Act::HangUp => self.hangup_leg(id, at, "normal_clearing", side),
            _ => {}
        }
    }

    fn party_speak(&mut self, id: u64, at: VTime, text: Arc<str>) {
        let Some(speech) = self.next_speech(id, text, at) else { return };
        let duration = self.cfg.timing.speech_duration(speech.words);
        self.schedule_interims(id, Source::Party, &speech);
        let Some((p, _)) = self.party(id) else { return };
        p.speak(speech);
        self.party_wait(id, at, duration);
        for peer in self.hearers_of(id) {
            self.party_poll(peer, at);
        }
    }

    /// The party's timer ran out.
    pub(crate) fn party_due(&mut self, id: u64, at: VTime) {
        let side = self.legs.get(&id).map_or("caller", |l| l.party_side());
        let Some(act) = self.party(id).map(|(p, t)| p.timer_due(t)) else { return };
        match act {
            Act::Next => self.party_next(id, at),
            Act::Spoke { line, wait } => {
                self.party_wait(id, at, wait);
                if let Some(s) = line {
                    self.schedule_final(id, Source::Party, &s, at);
                }
                for peer in self.hearers_of(id) {
                    self.party_poll(peer, at);
                }
                self.party_poll(id, at);
            }
            Act::Press => self.party_press(id, at),
            Act::HangUp => self.hangup_leg(id, at, "normal_clearing", side),
            _ => {}
        }
    }

    /// Presses the next key of a `press` step.
    fn party_press(&mut self, id: u64, at: VTime) {
        let Some((key, done)) = self.party(id).and_then(|(p, _)| p.press()) else { return };
        self.emit(id, at, EventType::DtmfReceived, true, json!({ "digit": key.to_string() }));
        // The key may stop a prompt; only speech after it counts as the reply.
        self.gather_key(id, at, key);
        if done {
            if let Some((p, _)) = self.party(id) {
                p.listen();
            }
            self.party_wait(id, at, self.cfg.timing.reply_timeout);
            self.party_poll(id, at);
        } else {
            self.party_wait(id, at, self.cfg.timing.dtmf_interval);
        }
    }
}
