//! How the world runs conferences ([`Conferences`]) and listening
//! ([`Listeners`]) over its legs: the checks that need the legs, the webhooks,
//! and what the parties hear.

use std::sync::Arc;

use ivrx_telnyx::commands::ActionKind;
use ivrx_telnyx::conferences::{Conference, ConferenceCreate};
use ivrx_telnyx::events::EventType;
use serde_json::{json, Value};

use super::{CommandError, Executed, Now, Source, Tick, VTime, World};
use crate::conference::{ConfAction, ConfError, Heard, Left};
use crate::legs;

impl World {
    /// The conference record the API answers with.
    pub fn conference_info(&self, id: &str) -> Option<Conference> {
        self.confs.info(id, &self.cfg.connection_id, |began, t| self.wall(began, t))
    }

    /// Checks that a leg can enter a conference: alive, answered, not bridged
    /// and not in another conference.
    fn check_can_join(&self, ccid: &str) -> Result<u64, CommandError> {
        let id = self.leg_id(ccid).ok_or_else(|| CommandError::Invalid {
            pointer: "/call_control_id".into(),
            detail: "no call with this call_control_id".into(),
        })?;
        let leg = self.legs.get(&id).ok_or(CommandError::NotFound)?;
        legs::check_command(leg.state(), ActionKind::Bridge)?;
        if self.confs.conference_of(id).is_some() {
            return Err(CommandError::Unprocessable("the call is already in a conference".into()));
        }
        if leg.bridge.is_some() {
            return Err(CommandError::Unprocessable("the call is bridged to another call".into()));
        }
        Ok(id)
    }

    /// `POST /v2/conferences`: a conference from an answered call, which joins it.
    pub fn create_conference(&mut self, now: Now, b: ConferenceCreate) -> Result<Conference, ConfError> {
        if let Some(info) =
            self.confs.created_by(b.command_id.as_deref(), now.real).and_then(|id| self.conference_info(&id))
        {
            return Ok(info);
        }
        let at = now.v;
        let creator = self.check_can_join(&b.call_control_id)?;
        let (url, session) = {
            let leg = self.legs.get_mut(&creator).ok_or(ConfError::Call(CommandError::NotFound))?;
            if let Some(cs) = &b.client_state {
                leg.client_state = Some(cs.as_str().into());
            }
            (leg.url.clone(), (leg.session, leg.began))
        };
        let id = self.confs.create(&b, creator, url, session, at, now.real);
        let occurred_at = self.wall(session.1, at);
        self.emit_conf(&id, creator, at, EventType::ConferenceCreated, json!({ "occurred_at": occurred_at }));
        self.emit_conf(&id, creator, at, EventType::ConferenceParticipantJoined, json!({}));
        self.party_poll(creator, at);
        self.conference_info(&id).ok_or(ConfError::NoConference)
    }

    /// `POST /v2/conferences/{id}/actions/{join|leave}`.
    pub fn conference_action(&mut self, now: Now, conf: &str, action: ConfAction) -> Result<Executed, ConfError> {
        let at = now.v;
        let command_id = match &action {
            ConfAction::Join(b) => b.command_id.clone(),
            ConfAction::Leave(b) => b.command_id.clone(),
        };
        if self.confs.check_action(conf, command_id.as_deref(), now.real)? == Executed::Duplicate {
            return Ok(Executed::Duplicate);
        }
        let conf_id: Arc<str> = Arc::from(conf);
        match action {
            ConfAction::Join(b) => {
                let id = self.check_can_join(&b.call_control_id)?;
                if self.confs.is_full(conf) {
                    return Err(ConfError::Call(CommandError::Unprocessable(
                        "the conference has reached max_participants".into(),
                    )));
                }
                let Some(leg) = self.legs.get_mut(&id) else { return Err(ConfError::Call(CommandError::NotFound)) };
                if let Some(cs) = &b.client_state {
                    leg.client_state = Some(cs.as_str().into());
                }
                let dialled = !leg.incoming;
                let others = self.confs.join(&conf_id, id, b.end_conference_on_exit.unwrap_or(false));
                self.stop_playback(id, at, "cancelled");
                self.emit_conf(&conf_id, id, at, EventType::ConferenceParticipantJoined, json!({}));
                // As with a bridge: a dialled party (an agent) speaks first and the
                // others listen to it; someone calling in joins silently.
                if dialled {
                    self.party_bridged(id, at, true);
                    for p in others {
                        self.party_bridged(p, at, false);
                    }
                } else {
                    self.party_poll(id, at);
                    for p in others {
                        self.party_poll(p, at);
                    }
                }
            }
            ConfAction::Leave(b) => {
                let id = self.leg_id(&b.call_control_id).ok_or_else(|| CommandError::Invalid {
                    pointer: "/call_control_id".into(),
                    detail: "no call with this call_control_id".into(),
                })?;
                if self.confs.conference_of(id).map(|c| &**c) != Some(conf) {
                    return Err(ConfError::Call(CommandError::Unprocessable(
                        "the call is not in this conference".into(),
                    )));
                }
                self.leave_conference(id, at);
            }
        }
        if let Some(cid) = command_id {
            self.confs.record_command(conf, &cid, now.real);
        }
        Ok(Executed::Done)
    }

    /// A leg leaves its conference (it asked to, or hung up). The last one out
    /// ends it; one with `end_conference_on_exit` ends it for everyone.
    pub(crate) fn leave_conference(&mut self, id: u64, at: VTime) {
        let Some(Left { conf, ends_all, rest, ending }) = self.confs.leave(id) else { return };
        self.emit_conf(&conf, id, at, EventType::ConferenceParticipantLeft, json!({}));
        if ending {
            return;
        }
        if ends_all {
            self.confs.set_ending(&conf);
            for p in rest {
                let side = self.legs.get(&p).map_or("unknown", |l| l.app_side());
                self.hangup_leg(p, at, "normal_clearing", side);
            }
            self.end_conference(&conf, at, "host_left");
        } else if rest.is_empty() {
            self.end_conference(&conf, at, "all_left");
        } else {
            for p in rest {
                self.party_poll(p, at);
            }
        }
    }

    fn end_conference(&mut self, conf_id: &Arc<str>, at: VTime, reason: &'static str) {
        let Some(creator) = self.confs.end(conf_id, at, reason) else { return };
        let Some(began) = self.confs.addressee(conf_id).map(|a| a.session.1) else { return };
        let fields = json!({ "occurred_at": self.wall(began, at), "reason": reason });
        self.emit_conf(conf_id, creator, at, EventType::ConferenceEnded, fields);
    }

    /// Queues a conference webhook about participant `leg`: its call ids, the
    /// conference's client_state and id, and `fields`.
    fn emit_conf(&mut self, conf_id: &str, leg: u64, at: VTime, event_type: EventType, fields: Value) {
        let Some(c) = self.confs.addressee(conf_id) else { return };
        let Some(l) = self.legs.get(&leg) else { return };
        let mut p = self.call_fields(l, c.client_state);
        p.insert("conference_id".into(), Value::from(conf_id));
        if let Value::Object(m) = fields {
            p.extend(m);
        }
        let (session, url, ccid) = (c.session, c.url, l.ccid.clone());
        self.push_emitted(session, ccid, url, event_type, at, Value::Object(p));
    }

    /// Everyone who hears the party on `id` speak: a bridged peer and conference peers.
    pub(crate) fn hearers_of(&self, id: u64) -> Vec<u64> {
        let mut out = self.confs.peers(id);
        if let Some(peer) = self.legs.get(&id).and_then(|l| l.bridge).map(|b| b.peer) {
            if !out.contains(&peer) {
                out.push(peer);
            }
        }
        out
    }

    /// Starts recording what the party on a leg hears.
    pub fn listen(&mut self, ccid: &str) -> Option<u64> {
        let id = self.leg_id(ccid)?;
        self.legs.get(&id).filter(|l| l.alive())?;
        self.listeners.listen(id);
        Some(id)
    }

    /// A line has been said to its end: the listened-to legs that heard it get it.
    pub(crate) fn note_heard(&mut self, speaker: u64, at: VTime, tick: &Tick) {
        if self.listeners.is_empty() {
            return;
        }
        let hearers = match tick.source {
            Source::Ivr => vec![speaker],
            Source::Party => self.hearers_of(speaker),
        };
        let Some(s) = self.legs.get(&speaker) else { return };
        let speaker_number = match (tick.source, s.incoming) {
            (Source::Party, true) | (Source::Ivr, false) => s.from.to_string(),
            (Source::Party, false) | (Source::Ivr, true) => s.to.to_string(),
        };
        let source = match tick.source {
            Source::Party => "party",
            Source::Ivr => "ivr",
        };
        for h in hearers {
            if !self.listeners.listens_to(h) {
                continue;
            }
            let Some(l) = self.legs.get(&h).filter(|l| l.alive()) else { continue };
            self.listeners.push(Heard {
                call_control_id: l.ccid.to_string(),
                speaker_call_control_id: s.ccid.to_string(),
                source: source.into(),
                speaker_number: speaker_number.clone(),
                text: tick.text.to_string(),
                started_at: self.wall(s.began, tick.start),
                ended_at: self.wall(s.began, at),
            });
        }
    }

    /// The lines heard since the last call.
    pub fn take_heard(&mut self) -> Vec<Heard> {
        self.listeners.take()
    }
}
