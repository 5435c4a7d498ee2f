//! Conferences, the way Telnyx runs them: `POST /v2/conferences` creates one
//! from an answered call (which joins it), `…/actions/join` adds a call,
//! `…/actions/leave` takes one out, and a participant that hangs up leaves.
//! The conference ends when its last participant leaves (`all_left`) or when a
//! participant that joined with `end_conference_on_exit` leaves (`host_left`;
//! everyone else is hung up).
//!
//! Webhooks (to the creator's webhook URL, with the conference's
//! `client_state`, the state given at creation): `conference.created`, then
//! `conference.participant.joined` / `conference.participant.left` with the
//! participant's call ids, and `conference.ended` with its `reason`.
//!
//! Audio: every participant hears every other participant's party speak (and
//! the turn-taking rules count it as audible), their speech is transcribed as
//! `outbound` on the other participants' legs that transcribe that track, and
//! `speak`/prompts on a participant's own leg are heard by that leg only.
//!
//! Listening ([`super::SandboxHandle::listen`]): what the party on a leg hears,
//! line by line, once each line has been said: the IVR speaking on its leg, a
//! bridged peer, conference peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ivrx_telnyx::conferences::{Conference, ConferenceCreate, ConferenceJoin, ConferenceLeave};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::ids;
use super::legs::{self, CommandIds, DEDUPE_WINDOW};
use super::world::{CommandError, Executed, Now, Source, Tick, VTime, World};

/// How long an ended conference is remembered (retrieve, late joins answer "ended").
const ENDED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// A conference expires this long after creation, as on Telnyx.
const LIFETIME: Duration = Duration::from_secs(4 * 3600);
/// Participants allowed when the create says nothing (Telnyx's default).
const DEFAULT_MAX_PARTICIPANTS: u32 = 250;

/// One conference.
#[derive(Debug)]
pub(crate) struct Conf {
    pub id: Arc<str>,
    pub name: String,
    pub created: VTime,
    pub client_state: Option<Box<str>>,
    /// The leg that created it (its ids head `conference.created` and `.ended`).
    pub creator: u64,
    /// Where its webhooks go.
    pub url: Arc<str>,
    /// Delivery order is kept with the creator's call session.
    pub session: u64,
    /// When the creator's call session began (its times are that session's).
    pub began: VTime,
    pub participants: Vec<u64>,
    pub max_participants: u32,
    /// Set while it is being ended, so hanging up the rest does not end it twice.
    pub ending: bool,
    pub ended: Option<(VTime, &'static str)>,
    pub commands: CommandIds,
}

/// A line a listened-to leg heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heard {
    /// The leg that heard it.
    pub call_control_id: String,
    /// The leg it was said on.
    pub speaker_call_control_id: String,
    /// `party` (the person on the speaker's leg) or `ivr` (text to speech on the listening leg).
    pub source: String,
    /// The speaker's number: the person's own number, or the application's for the IVR.
    pub speaker_number: String,
    /// What was said.
    pub text: String,
    /// When the line started (virtual time).
    pub started_at: String,
    /// When the line ended (virtual time).
    pub ended_at: String,
}

/// Why a conference command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfError {
    /// No conference has that id.
    NoConference,
    /// The conference has ended.
    Ended,
    /// The call part of the command was refused.
    Call(CommandError),
}

impl From<CommandError> for ConfError {
    fn from(e: CommandError) -> Self {
        ConfError::Call(e)
    }
}

/// A conference action other than create.
#[derive(Debug, Clone)]
pub(crate) enum ConfAction {
    Join(ConferenceJoin),
    Leave(ConferenceLeave),
}

impl World {
    /// The conference record the API answers with.
    pub fn conference_info(&self, id: &str) -> Option<Conference> {
        let c = self.confs.get(id)?;
        let status = if c.ended.is_some() { "completed" } else { "in_progress" };
        Some(Conference {
            id: c.id.to_string(),
            name: c.name.clone(),
            record_type: "conference".into(),
            created_at: Some(self.wall(c.began, c.created)),
            expires_at: Some(self.wall(c.began, c.created.saturating_add(LIFETIME))),
            updated_at: None,
            connection_id: Some(self.cfg.connection_id.clone()),
            status: Some(status.into()),
            end_reason: c.ended.map(|(_, r)| r.to_string()),
            region: Some("US".into()),
            extra: Map::new(),
        })
    }

    /// Checks that a leg can enter a conference: alive, answered, not bridged
    /// and not in another conference.
    fn check_can_join(&self, ccid: &str) -> Result<u64, CommandError> {
        let id = self.leg_id(ccid).ok_or_else(|| CommandError::Invalid {
            pointer: "/call_control_id".into(),
            detail: "no call with this call_control_id".into(),
        })?;
        let leg = self.legs.get(&id).ok_or(CommandError::NotFound)?;
        legs::check_command(leg.state(), "bridge")?;
        if leg.conference.is_some() {
            return Err(CommandError::Unprocessable("the call is already in a conference".into()));
        }
        if leg.bridge.is_some() {
            return Err(CommandError::Unprocessable("the call is bridged to another call".into()));
        }
        Ok(id)
    }

    /// `POST /v2/conferences`: a conference from an answered call, which joins it.
    pub fn create_conference(&mut self, now: Now, b: ConferenceCreate) -> Result<Conference, ConfError> {
        self.conf_create_ids.retain(|_, (t, _)| now.real.saturating_duration_since(*t) < DEDUPE_WINDOW);
        if let Some(cid) = &b.command_id {
            if let Some(info) = self.conf_create_ids.get(cid).and_then(|(_, id)| self.conference_info(id)) {
                return Ok(info);
            }
        }
        let at = now.v;
        let creator = self.check_can_join(&b.call_control_id)?;
        let id: Arc<str> = Arc::from(ids::uuid());
        let (url, session) = {
            let leg = self.legs.get_mut(&creator).ok_or(ConfError::Call(CommandError::NotFound))?;
            if let Some(cs) = &b.client_state {
                leg.client_state = Some(cs.as_str().into());
            }
            leg.conference = Some(id.clone());
            (leg.url.clone(), (leg.session, leg.began))
        };
        self.confs.insert(
            id.clone(),
            Conf {
                id: id.clone(),
                name: b.name.clone(),
                created: at,
                client_state: b.client_state.as_deref().map(Into::into),
                creator,
                url,
                session: session.0,
                began: session.1,
                participants: vec![creator],
                max_participants: b.max_participants.unwrap_or(DEFAULT_MAX_PARTICIPANTS),
                ending: false,
                ended: None,
                commands: CommandIds::default(),
            },
        );
        if let Some(cid) = b.command_id {
            self.conf_create_ids.insert(cid, (now.real, id.clone()));
        }
        let occurred_at = self.wall(session.1, at);
        self.emit_conf(&id, creator, at, "conference.created", json!({ "occurred_at": occurred_at }));
        self.emit_conf(&id, creator, at, "conference.participant.joined", json!({}));
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
        {
            let c = self.confs.get_mut(conf).ok_or(ConfError::NoConference)?;
            if let Some(cid) = &command_id {
                if c.commands.is_duplicate(cid, now.real) {
                    return Ok(Executed::Duplicate);
                }
            }
            if c.ended.is_some() {
                return Err(ConfError::Ended);
            }
        }
        let conf_id: Arc<str> = Arc::from(conf);
        match action {
            ConfAction::Join(b) => {
                let id = self.check_can_join(&b.call_control_id)?;
                let full = self.confs.get(conf).is_some_and(|c| c.participants.len() >= c.max_participants as usize);
                if full {
                    return Err(ConfError::Call(CommandError::Unprocessable(
                        "the conference has reached max_participants".into(),
                    )));
                }
                let Some(leg) = self.legs.get_mut(&id) else { return Err(ConfError::Call(CommandError::NotFound)) };
                if let Some(cs) = &b.client_state {
                    leg.client_state = Some(cs.as_str().into());
                }
                leg.conference = Some(conf_id.clone());
                leg.end_conference_on_exit = b.end_conference_on_exit.unwrap_or(false);
                let dialled = !leg.incoming;
                let others: Vec<u64> = self.confs.get(conf).map(|c| c.participants.clone()).unwrap_or_default();
                if let Some(c) = self.confs.get_mut(conf) {
                    c.participants.push(id);
                }
                self.stop_playback(id, at, "cancelled");
                self.emit_conf(&conf_id, id, at, "conference.participant.joined", json!({}));
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
                let inside = self.legs.get(&id).and_then(|l| l.conference.as_deref()) == Some(conf);
                if !inside {
                    return Err(ConfError::Call(CommandError::Unprocessable(
                        "the call is not in this conference".into(),
                    )));
                }
                self.leave_conference(id, at);
            }
        }
        if let (Some(cid), Some(c)) = (command_id, self.confs.get_mut(conf)) {
            c.commands.record(&cid, now.real);
        }
        Ok(Executed::Done)
    }

    /// A leg leaves its conference (it asked to, or hung up). The last one out
    /// ends it; one with `end_conference_on_exit` ends it for everyone.
    pub(crate) fn leave_conference(&mut self, id: u64, at: VTime) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let Some(conf_id) = leg.conference.take() else { return };
        let ends_all = std::mem::take(&mut leg.end_conference_on_exit);
        let Some(c) = self.confs.get_mut(&conf_id) else { return };
        c.participants.retain(|&p| p != id);
        let rest = c.participants.clone();
        let ending = c.ending;
        self.emit_conf(&conf_id, id, at, "conference.participant.left", json!({}));
        if ending {
            return;
        }
        if ends_all {
            if let Some(c) = self.confs.get_mut(&conf_id) {
                c.ending = true;
            }
            for p in rest {
                let side = self.legs.get(&p).map_or("unknown", |l| l.app_side());
                self.hangup_leg(p, at, "normal_clearing", side);
            }
            self.end_conference(&conf_id, at, "host_left");
        } else if rest.is_empty() {
            self.end_conference(&conf_id, at, "all_left");
        } else {
            for p in rest {
                self.party_poll(p, at);
            }
        }
    }

    fn end_conference(&mut self, conf_id: &Arc<str>, at: VTime, reason: &'static str) {
        let Some(c) = self.confs.get_mut(conf_id) else { return };
        if c.ended.is_some() {
            return;
        }
        c.ending = true;
        c.ended = Some((at, reason));
        let (creator, began) = (c.creator, c.began);
        self.confs_ended.push_back((Instant::now(), conf_id.clone()));
        let fields = json!({ "occurred_at": self.wall(began, at), "reason": reason });
        self.emit_conf(conf_id, creator, at, "conference.ended", fields);
    }

    pub(crate) fn prune_conferences(&mut self, real: Instant) {
        while let Some((t, _)) = self.confs_ended.front() {
            if real.saturating_duration_since(*t) < ENDED_RETENTION {
                break;
            }
            if let Some((_, id)) = self.confs_ended.pop_front() {
                self.confs.remove(&id);
            }
        }
    }

    /// Queues a conference webhook about participant `leg`: its call ids, the
    /// conference's client_state and id, and `fields`.
    fn emit_conf(&mut self, conf_id: &str, leg: u64, at: VTime, event_type: &'static str, fields: Value) {
        let Some(c) = self.confs.get(conf_id) else { return };
        let Some(l) = self.legs.get(&leg) else { return };
        let mut p = Map::new();
        p.insert("call_control_id".into(), Value::from(&*l.ccid));
        p.insert("call_leg_id".into(), Value::from(&*l.leg_uuid));
        p.insert("call_session_id".into(), Value::from(&*l.session_uuid));
        p.insert("connection_id".into(), Value::from(self.cfg.connection_id.as_str()));
        p.insert("client_state".into(), c.client_state.as_deref().map_or(Value::Null, Value::from));
        p.insert("conference_id".into(), Value::from(conf_id));
        if let Value::Object(m) = fields {
            p.extend(m);
        }
        let (session, url, ccid) = ((c.session, c.began), c.url.clone(), l.ccid.clone());
        self.push_emitted(session, ccid, url, event_type, at, Value::Object(p));
    }

    /// The other participants of the leg's conference.
    pub(crate) fn conference_peers(&self, id: u64) -> Vec<u64> {
        let Some(conf) = self.legs.get(&id).and_then(|l| l.conference.as_deref()) else { return Vec::new() };
        self.confs.get(conf).map(|c| c.participants.iter().copied().filter(|&p| p != id).collect()).unwrap_or_default()
    }

    /// Everyone who hears the party on `id` speak: a bridged peer and conference peers.
    pub(crate) fn hearers_of(&self, id: u64) -> Vec<u64> {
        let mut out = self.conference_peers(id);
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
        self.listened.insert(id);
        Some(id)
    }

    /// A line has been said to its end: the listened-to legs that heard it get it.
    pub(crate) fn note_heard(&mut self, speaker: u64, at: VTime, tick: &Tick) {
        if self.listened.is_empty() {
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
            if !self.listened.contains(&h) {
                continue;
            }
            let Some(l) = self.legs.get(&h).filter(|l| l.alive()) else { continue };
            self.heard.push(Heard {
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
        std::mem::take(&mut self.heard)
    }
}
