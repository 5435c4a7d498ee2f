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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivrx_telnyx::conferences::{Conference, ConferenceCreate, ConferenceJoin, ConferenceLeave};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::ids;
use super::legs::{CommandIds, DEDUPE_WINDOW};
use super::world::{CommandError, Executed, VTime};

/// How long an ended conference is remembered (retrieve, late joins answer "ended").
const ENDED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// A conference expires this long after creation, as on Telnyx.
const LIFETIME: Duration = Duration::from_secs(4 * 3600);
/// Participants allowed when the create says nothing (Telnyx's default).
const DEFAULT_MAX_PARTICIPANTS: u32 = 250;

/// One conference.
#[derive(Debug)]
struct Conf {
    id: Arc<str>,
    name: String,
    created: VTime,
    client_state: Option<Box<str>>,
    /// The leg that created it (its ids head `conference.created` and `.ended`).
    creator: u64,
    /// Where its webhooks go.
    url: Arc<str>,
    /// The creator's call session (delivery queue, when it began): delivery
    /// order is kept with it and its times are that session's.
    session: (u64, VTime),
    participants: Vec<u64>,
    max_participants: u32,
    /// Set while it is being ended, so hanging up the rest does not end it twice.
    ending: bool,
    ended: Option<(VTime, &'static str)>,
    commands: CommandIds,
}

/// A leg's place in a conference.
#[derive(Debug)]
struct Member {
    conf: Arc<str>,
    /// Leaving ends the conference and hangs up everyone else (`end_conference_on_exit`).
    ends_all: bool,
}

/// Where a conference's webhooks go, and the `client_state` they carry.
pub(crate) struct Addressee<'a> {
    /// The call session (delivery queue, when it began).
    pub session: (u64, VTime),
    pub url: Arc<str>,
    pub client_state: Option<&'a str>,
}

/// A leg that left its conference.
#[derive(Debug)]
pub(crate) struct Left {
    pub conf: Arc<str>,
    /// It joined with `end_conference_on_exit`.
    pub ends_all: bool,
    /// The participants still in.
    pub rest: Vec<u64>,
    /// The conference is already being ended.
    pub ending: bool,
}

/// Every conference, which legs are in one, and the `command_id`s of creations.
#[derive(Debug, Default)]
pub(crate) struct Conferences {
    by_id: HashMap<Arc<str>, Conf>,
    members: HashMap<u64, Member>,
    /// Ended conferences in the order they ended (for retention).
    ended: VecDeque<(Instant, Arc<str>)>,
    /// `command_id`s of conference creations, with the conference they made.
    create_ids: HashMap<String, (Instant, Arc<str>)>,
}

impl Conferences {
    /// The conference record the API answers with; `time` formats virtual
    /// time in a call session that began at the first argument.
    pub fn info(&self, id: &str, connection_id: &str, time: impl Fn(VTime, VTime) -> String) -> Option<Conference> {
        let c = self.by_id.get(id)?;
        let status = if c.ended.is_some() { "completed" } else { "in_progress" };
        Some(Conference {
            id: c.id.to_string(),
            name: c.name.clone(),
            record_type: "conference".into(),
            created_at: Some(time(c.session.1, c.created)),
            expires_at: Some(time(c.session.1, c.created.saturating_add(LIFETIME))),
            updated_at: None,
            connection_id: Some(connection_id.to_string()),
            status: Some(status.into()),
            end_reason: c.ended.map(|(_, r)| r.to_string()),
            region: Some("US".into()),
            extra: Map::new(),
        })
    }

    /// The conference an earlier create with this `command_id` made (within the repeat window).
    pub fn created_by(&mut self, command_id: Option<&str>, real: Instant) -> Option<Arc<str>> {
        self.create_ids.retain(|_, (t, _)| real.saturating_duration_since(*t) < DEDUPE_WINDOW);
        command_id.and_then(|cid| self.create_ids.get(cid)).map(|(_, id)| id.clone())
    }

    /// A new conference from `b`, with `creator` (whose webhooks go to `url`,
    /// in call session `session`, which began when its second element says)
    /// its first participant.
    pub fn create(
        &mut self,
        b: &ConferenceCreate,
        creator: u64,
        url: Arc<str>,
        session: (u64, VTime),
        at: VTime,
        real: Instant,
    ) -> Arc<str> {
        let id: Arc<str> = Arc::from(ids::uuid());
        self.by_id.insert(
            id.clone(),
            Conf {
                id: id.clone(),
                name: b.name.clone(),
                created: at,
                client_state: b.client_state.as_deref().map(Into::into),
                creator,
                url,
                session,
                participants: vec![creator],
                max_participants: b.max_participants.unwrap_or(DEFAULT_MAX_PARTICIPANTS),
                ending: false,
                ended: None,
                commands: CommandIds::default(),
            },
        );
        self.members.insert(creator, Member { conf: id.clone(), ends_all: false });
        if let Some(cid) = &b.command_id {
            self.create_ids.insert(cid.clone(), (real, id.clone()));
        }
        id
    }

    /// Checks a join or leave: the conference exists and has not ended;
    /// `Duplicate` when its `command_id` already ran.
    pub fn check_action(&mut self, conf: &str, command_id: Option<&str>, real: Instant) -> Result<Executed, ConfError> {
        let c = self.by_id.get_mut(conf).ok_or(ConfError::NoConference)?;
        if let Some(cid) = command_id {
            if c.commands.is_duplicate(cid, real) {
                return Ok(Executed::Duplicate);
            }
        }
        if c.ended.is_some() {
            return Err(ConfError::Ended);
        }
        Ok(Executed::Done)
    }

    /// Remembers a join's or leave's `command_id`.
    pub fn record_command(&mut self, conf: &str, command_id: &str, real: Instant) {
        if let Some(c) = self.by_id.get_mut(conf) {
            c.commands.record(command_id, real);
        }
    }

    /// True when the conference has `max_participants` already.
    pub fn is_full(&self, conf: &str) -> bool {
        self.by_id.get(conf).is_some_and(|c| c.participants.len() >= c.max_participants as usize)
    }

    /// `leg` joins `conf`; the participants that were in before.
    pub fn join(&mut self, conf: &Arc<str>, leg: u64, ends_all: bool) -> Vec<u64> {
        self.members.insert(leg, Member { conf: conf.clone(), ends_all });
        let Some(c) = self.by_id.get_mut(conf) else { return Vec::new() };
        let others = c.participants.clone();
        c.participants.push(leg);
        others
    }

    /// The conference `leg` is in.
    pub fn conference_of(&self, leg: u64) -> Option<&Arc<str>> {
        self.members.get(&leg).map(|m| &m.conf)
    }

    /// `leg` leaves its conference, if it is in one that still exists.
    pub fn leave(&mut self, leg: u64) -> Option<Left> {
        let Member { conf, ends_all } = self.members.remove(&leg)?;
        let c = self.by_id.get_mut(&conf)?;
        c.participants.retain(|&p| p != leg);
        Some(Left { rest: c.participants.clone(), ending: c.ending, conf, ends_all })
    }

    /// Marks the conference as being ended (its participants are hung up).
    pub fn set_ending(&mut self, conf: &str) {
        if let Some(c) = self.by_id.get_mut(conf) {
            c.ending = true;
        }
    }

    /// Ends the conference for `reason`; its creator, unless it had ended already.
    pub fn end(&mut self, conf: &Arc<str>, at: VTime, reason: &'static str) -> Option<u64> {
        let c = self.by_id.get_mut(conf)?;
        if c.ended.is_some() {
            return None;
        }
        c.ending = true;
        c.ended = Some((at, reason));
        self.ended.push_back((Instant::now(), conf.clone()));
        Some(c.creator)
    }

    /// Forgets conferences that ended longer ago than the retention.
    pub fn prune(&mut self, real: Instant) {
        while let Some((t, _)) = self.ended.front() {
            if real.saturating_duration_since(*t) < ENDED_RETENTION {
                break;
            }
            if let Some((_, id)) = self.ended.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }

    /// Where the conference's webhooks go.
    pub fn addressee(&self, conf: &str) -> Option<Addressee<'_>> {
        let c = self.by_id.get(conf)?;
        Some(Addressee { session: c.session, url: c.url.clone(), client_state: c.client_state.as_deref() })
    }

    /// The other participants of the leg's conference.
    pub fn peers(&self, leg: u64) -> Vec<u64> {
        let Some(conf) = self.conference_of(leg) else { return Vec::new() };
        self.by_id.get(conf).map(|c| c.participants.iter().copied().filter(|&p| p != leg).collect()).unwrap_or_default()
    }
}

/// The legs someone listens to ([`super::SandboxHandle::listen`]), and what
/// they heard since the last call.
#[derive(Debug, Default)]
pub(crate) struct Listeners {
    legs: HashSet<u64>,
    heard: Vec<Heard>,
}

impl Listeners {
    /// Starts recording what the party on `leg` hears.
    pub fn listen(&mut self, leg: u64) {
        self.legs.insert(leg);
    }

    /// The leg hung up: nothing more is heard on it.
    pub fn forget(&mut self, leg: u64) {
        self.legs.remove(&leg);
    }

    /// Nobody listens to anything.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Someone listens to `leg`.
    pub fn listens_to(&self, leg: u64) -> bool {
        self.legs.contains(&leg)
    }

    /// Records a line a listened-to leg heard.
    pub fn push(&mut self, heard: Heard) {
        self.heard.push(heard);
    }

    /// The lines heard since the last call.
    pub fn take(&mut self) -> Vec<Heard> {
        std::mem::take(&mut self.heard)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, command_id: Option<&str>) -> ConferenceCreate {
        serde_json::from_value(serde_json::json!({
            "call_control_id": "v3:x", "name": name, "command_id": command_id, "max_participants": 3,
        }))
        .unwrap()
    }

    #[test]
    fn members_join_and_leave_and_the_conference_ends_once() {
        let (real, at) = (Instant::now(), VTime::ZERO);
        let mut confs = Conferences::default();
        let id = confs.create(&create("c", Some("k")), 1, Arc::from("http://x"), (7, VTime::ZERO), at, real);
        assert_eq!(confs.created_by(Some("k"), real), Some(id.clone()));
        assert_eq!(confs.created_by(Some("other"), real), None);
        assert_eq!(confs.join(&id, 2, false), [1]);
        assert_eq!(confs.join(&id, 3, true), [1, 2]);
        assert!(confs.is_full(&id));
        assert_eq!(confs.peers(2), [1, 3]);
        assert_eq!(confs.conference_of(3), Some(&id));
        let left = confs.leave(3).unwrap();
        assert!(left.ends_all && !left.ending && left.rest == [1, 2]);
        assert!(confs.leave(3).is_none(), "not in it any more");
        assert_eq!(confs.end(&id, at, "host_left"), Some(1));
        assert_eq!(confs.end(&id, at, "all_left"), None, "ends once");
        assert_eq!(confs.check_action(&id, None, real), Err(ConfError::Ended));
        let info = confs.info(&id, "conn", |_, t| format!("{t:?}")).unwrap();
        assert_eq!((info.status.as_deref(), info.end_reason.as_deref()), (Some("completed"), Some("host_left")));
        confs.prune(Instant::now() + ENDED_RETENTION);
        assert!(confs.info(&id, "conn", |_, t| format!("{t:?}")).is_none(), "forgotten after the retention");
    }

    #[test]
    fn a_join_or_leave_runs_once_per_command_id() {
        let real = Instant::now();
        let mut confs = Conferences::default();
        let id = confs.create(&create("c", None), 1, Arc::from("http://x"), (7, VTime::ZERO), VTime::ZERO, real);
        assert_eq!(confs.check_action("nope", Some("a"), real), Err(ConfError::NoConference));
        assert_eq!(confs.check_action(&id, Some("a"), real), Ok(Executed::Done));
        confs.record_command(&id, "a", real);
        assert_eq!(confs.check_action(&id, Some("a"), real), Ok(Executed::Duplicate));
    }
}
