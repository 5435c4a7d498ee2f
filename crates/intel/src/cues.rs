//! Escalation cues: what callers say when they are about to give up on the
//! bot, found by the shape of the sentence rather than by fixed phrases.
//!
//! Trackers list phrases ("speak to a real person"); cues combine word
//! classes into frames, so other phrasings count too:
//!
//! - [`Cue::AsksForPerson`]: a request frame ("can i get", "let me speak
//!   with", "i would like", "is there") followed within a few words by
//!   someone who is a person or a team ("whoever runs billing", "a member
//!   of your team", "customer service"), or a person followed by a call
//!   back ("could someone from your team give me a call"). Not "talk to
//!   you", not "is anyone there" (a line check), not "someone to come out"
//!   (a visit);
//! - [`Cue::Leaving`]: a verb of leaving ("close", "get out of", "done with",
//!   "stop") with the relationship as its object ("everything", "my
//!   contract", "you people"), or a bare "how do i leave|quit|cancel"; or a
//!   verb of moving with somewhere else as its destination ("moving my
//!   service to another provider", "take my custom elsewhere");
//! - [`Cue::Correction`]: the caller says the system got it wrong ("that is
//!   not what i meant", "no i said", "wrong one");
//! - [`Cue::Interest`]: wanting to acquire something ("tell me more", "how
//!   do i get", "get him one", "i will take it");
//! - [`Cue::Complaint`]: a problem is named ("the bill is wrong", "went up
//!   again", "disappeared").
//!
//! Negation-aware like trackers: "i do not want to leave" is not leaving.
//! A plain function of the text, shared by every call ([`detect`]).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::normalize::{declined_before, negated_before, Normalized};
use super::phrases::PhraseMatcher;

/// What kind of escalation cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cue {
    /// A request for a person or a team, in any phrasing.
    AsksForPerson,
    /// The caller wants to end the relationship, in any phrasing.
    Leaving,
    /// The caller says the system misunderstood.
    Correction,
    /// The caller wants to acquire something.
    Interest,
    /// The caller names a problem.
    Complaint,
}

impl Cue {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Cue::AsksForPerson => "asks_for_person",
            Cue::Leaving => "leaving",
            Cue::Correction => "correction",
            Cue::Interest => "interest",
            Cue::Complaint => "complaint",
        }
    }
}

/// One cue found in an utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CueHit {
    /// Which cue.
    pub cue: Cue,
    /// The words that made it (normalised).
    pub matched: String,
}

/// The cues of one utterance, in order of appearance, each kind once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cues {
    hits: Vec<CueHit>,
}

impl Cues {
    /// The hit of this kind, if any.
    pub fn get(&self, cue: Cue) -> Option<&CueHit> {
        self.hits.iter().find(|h| h.cue == cue)
    }

    /// True when a cue of this kind was found.
    pub fn has(&self, cue: Cue) -> bool {
        self.get(cue).is_some()
    }

    /// Every hit.
    pub fn hits(&self) -> &[CueHit] {
        &self.hits
    }

    fn push(&mut self, cue: Cue, text: &Normalized, start: usize, end: usize) {
        if !self.has(cue) {
            let matched = (start..end).map(|i| text.word(i)).collect::<Vec<_>>().join(" ");
            self.hits.push(CueHit { cue, matched });
        }
    }
}

/// Word classes the frames are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Asking for something or to be put through.
    Request,
    /// A person or a team.
    Person,
    /// Ringing the caller back: what a person is asked to do.
    CallBack,
    /// A verb of leaving that needs its object.
    Leave,
    /// A verb of leaving that may stand alone at the end ("how do i quit").
    LeaveAlone,
    /// Leaving said in full, wherever it stands ("give my notice").
    LeaveComplete,
    /// What one leaves: the account, the contract, the company.
    Relationship,
    /// A verb of moving something, which needs a destination.
    Move,
    /// Somewhere other than this company: where a leaver moves to.
    Elsewhere,
    Correction,
    Interest,
    Complaint,
}

const CLASSES: &[(Class, &[&str])] = &[
    (
        Class::Request,
        &[
            "speak|talk|chat to|with",
            "put me through, put me on to|with",
            "transfer|connect|pass me",
            "get|give|find me",
            "get hold of",
            "can|could|may i get|have|speak|talk",
            "i want|need, i would like|love",
            "let me",
            "is|are there",
        ],
    ),
    (
        Class::Person,
        &[
            "person|human|humans|people|someone|somebody|anyone|anybody|whoever|staff|employee|colleague|individual",
            "specialist|expert|boss|advisor|adviser|manager|supervisor|operator|representative|agent",
            "member of staff",
            "customer service|services|care|support|relations",
            "department|team|desk",
            "who is in charge, someone|somebody in charge",
        ],
    ),
    (Class::CallBack, &["call|ring|phone me", "give me a call|ring|bell", "get back to me"]),
    (
        Class::Leave,
        &[
            "close|closing|cancel|cancelling|canceling|terminate|terminating",
            "stop|stopping",
            "stop|stopping using|paying",
            "get out of, get me out of, get rid of",
            "done|finished|through with",
            "walk|walking|move|moving|switch|switching away from",
            "quit|quitting",
            "disconnect|unsubscribe",
            "shut|shutting|close|closing down",
            "end|ending",
            "no longer need|require|want|use",
        ],
    ),
    (Class::LeaveAlone, &["leave|quit|cancel|unsubscribe|leaving|quitting"]),
    (
        Class::LeaveComplete,
        &["give|giving my|our|in notice", "give|giving in my|our notice", "hand|handing in my|our notice"],
    ),
    (
        Class::Relationship,
        &[
            "account|accounts|everything|contract|contracts|subscription|subscriptions|membership|service|services",
            "you",
            "your|this|the company|network|business",
            "my|the|this|all|our plan|plans|package|broadband|line|lines|landline|internet|tv|mobile|phone",
            "it all, all of it, with you",
        ],
    ),
    (Class::Move, &["move|moving|take|taking|switch|switching|transfer|transferring|go|going|bring|bringing"]),
    (
        Class::Elsewhere,
        &[
            "another|other provider|providers|network|networks|supplier|company|firm|operator|bank|insurer",
            "a different|new|cheaper provider|network|supplier|company|firm|operator|bank|insurer",
            "somewhere|someone else",
            "elsewhere",
            "the competition",
        ],
    ),
    (
        Class::Correction,
        &[
            "not what i said|asked|meant|mean|wanted|want|need|needed",
            "that is|was not right|correct|it|true",
            "that is|was not what i",
            "that is|was wrong",
            "that is|was still not",
            "still not right|correct|it",
            "wrong one|option|thing|department|menu|answer",
            "you got|have it|that wrong, you have got it|that wrong",
            "you misheard|misunderstood",
            "^no i said|meant|mean|asked",
            "^i said",
            "^no no",
            "^no not",
            "^no a|an|my",
            "i did not say|mean",
            "i never said",
            "^not that",
        ],
    ),
    (
        Class::Interest,
        &[
            "tell me more",
            "how do|can i get|order|apply|join",
            "i would love|like to get|have|try|order|join",
            "want|need|like something|anything|a|an faster|bigger|larger|better",
            "want|need|like faster|bigger|larger|better",
            "i would love|like one",
            "would love|like one",
            "i will take it|that|one",
            "get him|her|them|me|us one",
            "can i get|have one",
            "i want one",
            "where do i sign",
            "count me in",
            "that is what i need|want",
            "sign me up",
        ],
    ),
    (
        Class::Complaint,
        &[
            "wrong|problem|problems|issue|issues|broken|fault|faulty|mistake|error|overcharged|complaint|refund",
            "charged twice, double charged",
            "not|never working|arrived|received|fixed|sorted|resolved",
            "does|did|is not work|working",
            "stopped working",
            "went|gone|go up",
            "disappeared|missing|vanished",
            "higher|more than it should|usual|normal|expected",
        ],
    ),
];

/// How far a request may stand before its person ("let me speak with your
/// billing department": 3 words between).
const REQUEST_REACH: usize = 4;
/// True when the object ending at token `end` belongs to someone else: "my
/// account at the bank", "my account with my bank" (but "with you").
fn elsewhere(text: &Normalized, end: usize) -> bool {
    let word = |i: usize| if i < text.len() { text.word(i) } else { "" };
    match word(end) {
        "at" => true,
        "with" | "from" => !matches!(word(end + 1), "you" | "your" | "yours" | "this" | "all" | "everything" | ""),
        _ => false,
    }
}

/// How far a verb of leaving may stand before its object.
const LEAVE_REACH: usize = 3;
/// How far a verb of moving may stand before where it goes ("moving my
/// whole service over to another provider": 4 words between).
const MOVE_REACH: usize = 5;

/// What follows "someone" when the caller wants a visit, not a call.
const VISIT_VERBS: &[&str] = &["come", "fix", "visit", "repair", "install", "look", "check", "send", "deliver", "call"];

struct Compiled {
    matcher: PhraseMatcher,
    classes: Vec<Class>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let mut matcher = PhraseMatcher::new();
        let mut classes = Vec::new();
        for (class, patterns) in CLASSES {
            for p in *patterns {
                // The built-in patterns compile (tested); skip rather than panic.
                if matcher.add(p, classes.len() as u32).is_ok() {
                    classes.push(*class);
                }
            }
        }
        Compiled { matcher, classes }
    })
}

/// The cues in `text`.
pub fn detect(text: &str) -> Cues {
    detect_normalized(&Normalized::new(text))
}

/// The cues in an already normalised utterance.
pub fn detect_normalized(text: &Normalized) -> Cues {
    let c = compiled();
    let mut found: Vec<(usize, usize, Class)> = Vec::new();
    c.matcher.for_each_match(text, |m| found.push((m.start, m.end(), c.classes[m.payload as usize])));
    let mut cues = Cues::default();
    if found.is_empty() {
        return cues;
    }
    let of = |class: Class| found.iter().filter(move |f| f.2 == class).map(|&(s, e, _)| (s, e));
    let last = text.len();

    // A request, then within reach a person who is asked for.
    'person: for (rs, re) in of(Class::Request) {
        if negated_before(text, rs) || declined_before(text, rs) {
            continue;
        }
        for (ps, pe) in of(Class::Person) {
            if ps < re || ps > re + REQUEST_REACH || !asks_for(text, pe, last) {
                continue;
            }
            cues.push(Cue::AsksForPerson, text, rs, pe);
            break 'person;
        }
    }
    // A person, then within reach a call back to the caller.
    'ring: for (ps, pe) in of(Class::Person).filter(|_| !cues.has(Cue::AsksForPerson)) {
        if negated_before(text, ps) || declined_before(text, ps) {
            continue;
        }
        for (cs, ce) in of(Class::CallBack) {
            if cs >= pe && cs <= pe + REQUEST_REACH && !negated_before(text, cs) {
                cues.push(Cue::AsksForPerson, text, ps, ce);
                break 'ring;
            }
        }
    }

    // A verb of leaving with the relationship as its object, or alone at the end.
    'leave: for (class, (ls, le)) in of(Class::Leave)
        .map(|x| (Class::Leave, x))
        .chain(of(Class::LeaveAlone).map(|x| (Class::LeaveAlone, x)))
        .chain(of(Class::LeaveComplete).map(|x| (Class::LeaveComplete, x)))
    {
        if negated_before(text, ls) || declined_before(text, ls) {
            continue;
        }
        if (class == Class::LeaveAlone && le == last) || class == Class::LeaveComplete {
            cues.push(Cue::Leaving, text, ls, le);
            break;
        }
        for (os, oe) in of(Class::Relationship) {
            if os >= le && os <= le + LEAVE_REACH && !elsewhere(text, oe) {
                cues.push(Cue::Leaving, text, ls, oe);
                break 'leave;
            }
        }
    }

    // A verb of moving with somewhere else as its destination.
    if !cues.has(Cue::Leaving) {
        'moving: for (ms, me) in of(Class::Move) {
            if negated_before(text, ms) || declined_before(text, ms) {
                continue;
            }
            for (es, ee) in of(Class::Elsewhere) {
                if es >= me && es <= me + MOVE_REACH {
                    cues.push(Cue::Leaving, text, ms, ee);
                    break 'moving;
                }
            }
        }
    }

    for (class, cue, negatable) in [
        (Class::Correction, Cue::Correction, false),
        (Class::Interest, Cue::Interest, true),
        (Class::Complaint, Cue::Complaint, true),
    ] {
        if let Some((s, e)) = of(class).find(|&(s, _)| !negatable || !negated_before(text, s)) {
            cues.push(cue, text, s, e);
        }
    }
    cues
}

/// True when the person ending at `end` is asked for, not checked for ("is
/// anyone there") or sent for a visit ("someone to come out").
fn asks_for(text: &Normalized, end: usize, last: usize) -> bool {
    if end + 1 == last && text.word(end) == "there" {
        return false;
    }
    !(end + 1 < last && text.word(end) == "to" && VISIT_VERBS.contains(&text.word(end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(cue: Cue, text: &str) -> bool {
        detect(text).has(cue)
    }

    #[test]
    fn the_patterns_compile() {
        let mut m = PhraseMatcher::new();
        for (_, patterns) in CLASSES {
            for p in *patterns {
                m.add(p, 0).unwrap_or_else(|e| panic!("{p}: {e}"));
            }
        }
    }

    #[test]
    fn requests_for_a_person_in_other_words() {
        for text in [
            "could i have a word with someone in your accounts team",
            "find me somebody who handles refunds",
            "i would like the person who deals with complaints",
            "is there anyone i can actually explain this to",
            "please get hold of your complaints department",
            "can i talk with billing staff",
            "could someone from your team give me a call about this",
            "can somebody ring me back this afternoon",
        ] {
            assert!(has(Cue::AsksForPerson, text), "{text}");
        }
        for text in [
            "i need to talk to you about my direct debit",
            "is anyone there",
            "hello is there anybody there",
            "i need someone to come out and fix the socket",
            "i do not want to speak to anyone",
            "a technician came round yesterday",
            "i spoke to your staff yesterday",
            "no need to put me through to anyone",
            "nobody ever rang me back",
            "someone rang me yesterday about the fault",
        ] {
            assert!(!has(Cue::AsksForPerson, text), "{text}");
        }
        let c = detect("right can you put me on with a manager");
        assert_eq!(c.get(Cue::AsksForPerson).unwrap().matched, "put me on with a manager");
    }

    #[test]
    fn leaving_in_other_words() {
        for text in [
            "i am shutting down all of it with you",
            "i am finished with your company",
            "how do i quit",
            "i want to stop paying for this service",
            "i am moving away from you",
            "get me out of this contract",
            "thats it im closing everything with you",
            "i will be moving my service to another provider at the end of the month",
            "i am afraid i will be taking my business elsewhere",
            "i no longer require the landline",
            "i would like to give my notice",
        ] {
            assert!(has(Cue::Leaving, text), "{text}");
        }
        for text in [
            "i do not want to leave",
            "i need to cancel my engineer visit",
            "can i leave a message",
            "the line keeps dropping",
            "i am not cancelling anything",
            "when does my contract end",
            "i am closing my business account at the bank",
            "i cancelled my contract with my old provider",
            "can you transfer me to another department",
            "i am moving to a new flat next week",
            "i am not going to another provider",
            "the parcel went to my neighbour",
            "i no longer need the engineer visit",
        ] {
            assert!(!has(Cue::Leaving, text), "{text}");
        }
    }

    #[test]
    fn corrections() {
        for text in ["no thats not right", "thats not what i asked for", "you got that wrong", "no i said broadband"] {
            assert!(has(Cue::Correction, text), "{text}");
        }
        for text in ["no thanks", "thats right", "is that correct", "no thanks thats all"] {
            assert!(!has(Cue::Correction, text), "{text}");
        }
    }

    #[test]
    fn interest_and_complaints() {
        assert!(has(Cue::Interest, "how do i get one of those"));
        assert!(has(Cue::Interest, "sounds lovely sign me up"));
        assert!(has(Cue::Interest, "we work from home now so we want something faster"));
        assert!(has(Cue::Interest, "i would like a bigger allowance"));
        assert!(!has(Cue::Interest, "i do not want anything faster"));
        assert!(!has(Cue::Interest, "thanks that fixed it"));
        assert!(has(Cue::Complaint, "i like the phone but the bill is wrong"));
        assert!(has(Cue::Complaint, "my discount disappeared"));
        assert!(has(Cue::Complaint, "my bill is higher than it should be"));
        assert!(!has(Cue::Complaint, "no problem at all"));
    }
}
