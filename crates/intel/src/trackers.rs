//! Trackers: named phrase sets ("asks for a human", "abuse", …) matched in
//! speech-recognition text.
//!
//! Phrases match whole normalised words ("I'd like to speak to a REAL
//! person!" and "id like to speak to a real person" are the same words) and
//! use the [`phrases`](super::phrases) syntax: `a|b` alternatives, `*` for any
//! one word, `^`/`$` anchors. A phrase starting with `-` is an exclusion: a
//! hit that lies inside an exclusion of the same tracker does not count
//! ("agent" hits, "-agent id" keeps "my agent id is 4 7" from hitting).
//!
//! Hits are negation-aware: "i dont need an agent" does not ask for a human.
//! The trackers in [`NEGATION_EXEMPT`] ignore negation (profanity is
//! profanity; "you dont understand" carries its own).
//!
//! In ivrx.toml:
//!
//! ```toml
//! [[trackers]]
//! name = "asks_for_human"      # a default name replaces that default
//! phrases = ["operator", "speak|talk to someone", "-agent id"]
//!
//! [[trackers]]
//! name = "legal_threat"        # a new name adds a tracker
//! phrases = ["lawyer", "solicitor", "small claims"]
//! ```

use serde::{Deserialize, Serialize};

use super::normalize::{declined_before, negated_before, Normalized};
use super::phrases::{PatternError, PhraseMatcher};

/// One tracker as configured (`[[trackers]]` in ivrx.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerConfig {
    /// Stable name, e.g. `asks_for_human`.
    pub name: String,
    /// Phrases that count as a hit.
    pub phrases: Vec<String>,
}

/// A tracker match in one utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerHit {
    /// The tracker's name.
    pub tracker: String,
    /// The phrase that matched, as configured.
    pub phrase: String,
    /// The words of the utterance that matched it (empty when not known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub matched: String,
}

impl TrackerHit {
    /// A hit of `phrase` for `tracker` (the matched words unknown).
    pub fn new(tracker: impl Into<String>, phrase: impl Into<String>) -> Self {
        Self { tracker: tracker.into(), phrase: phrase.into(), matched: String::new() }
    }

    /// What the caller said that matched: the matched words, else the phrase.
    pub fn said(&self) -> &str {
        if self.matched.is_empty() {
            &self.phrase
        } else {
            &self.matched
        }
    }
}

/// The default tracker that spots requests for a person.
pub const ASKS_FOR_HUMAN: &str = "asks_for_human";
/// The default tracker that spots profanity and insults.
pub const ABUSE: &str = "abuse";
/// The default tracker that spots frustration with the automated system.
pub const BOT_FRUSTRATION: &str = "bot_frustration";
/// The default tracker that spots cancellation, switching and legal threats.
pub const CHURN_RISK: &str = "churn_risk";
/// The default tracker that spots interest in buying.
pub const BUYING_SIGNAL: &str = "buying_signal";

/// Trackers whose hits count even after a negator.
pub const NEGATION_EXEMPT: &[&str] = &[ABUSE, BOT_FRUSTRATION];

/// A tracker configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackerError {
    /// A tracker without a name.
    #[error("trackers: every [[trackers]] entry needs a name")]
    EmptyName,
    /// Two trackers with one name.
    #[error("trackers.{0}: the name is used twice; merge the phrases into one [[trackers]] entry")]
    DuplicateName(String),
    /// A tracker without phrases.
    #[error("trackers.{0}: needs at least one phrase")]
    NoPhrases(String),
    /// A phrase that does not compile.
    #[error("trackers.{tracker}: {source}")]
    BadPhrase {
        /// The tracker.
        tracker: String,
        /// What is wrong with the phrase.
        #[source]
        source: PatternError,
    },
}

#[derive(Debug, Clone, Copy)]
struct PhraseRef {
    tracker: u32,
    phrase: u32,
    exclude: bool,
}

/// A compiled set of trackers.
#[derive(Debug, Clone)]
pub struct TrackerSet {
    trackers: Vec<TrackerConfig>,
    matcher: PhraseMatcher,
    refs: Vec<PhraseRef>,
    negatable: Vec<bool>,
}

impl Default for TrackerSet {
    /// The built-in trackers ([`TrackerSet::default_configs`]).
    fn default() -> Self {
        Self::new(Self::default_configs())
    }
}

impl TrackerSet {
    /// Compiles trackers from configuration, skipping phrases that do not
    /// compile (use [`TrackerSet::try_new`] to be told about them).
    pub fn new(trackers: Vec<TrackerConfig>) -> Self {
        Self::build(trackers, false).unwrap_or_else(|_| Self::empty())
    }

    /// Compiles trackers from configuration, refusing empty names, duplicate
    /// names, trackers without phrases and phrases that do not compile.
    pub fn try_new(trackers: Vec<TrackerConfig>) -> Result<Self, TrackerError> {
        Self::build(trackers, true)
    }

    /// The built-in trackers, with `configured` merged in: a configured
    /// tracker with a built-in name replaces it, a new name adds one.
    pub fn with_overrides(configured: Vec<TrackerConfig>) -> Result<Self, TrackerError> {
        Self::try_new(merge_configs(Self::default_configs(), configured))
    }

    /// The built-in trackers' configuration.
    pub fn default_configs() -> Vec<TrackerConfig> {
        DEFAULT_TRACKERS
            .iter()
            .map(|(name, phrases)| TrackerConfig {
                name: (*name).to_string(),
                phrases: phrases.iter().map(|p| (*p).to_string()).collect(),
            })
            .collect()
    }

    /// The configured trackers.
    pub fn configs(&self) -> &[TrackerConfig] {
        &self.trackers
    }

    /// Turns negation handling on or off for one tracker (on by default,
    /// except for [`NEGATION_EXEMPT`]). Unknown names are ignored.
    pub fn set_negation(&mut self, tracker: &str, on: bool) {
        if let Some(i) = self.trackers.iter().position(|t| t.name == tracker) {
            self.negatable[i] = on;
        }
    }

    /// Every tracker hit in `text`.
    pub fn detect(&self, text: &str) -> Vec<TrackerHit> {
        self.detect_normalized(&Normalized::new(text))
    }

    /// Every tracker hit in an already normalised utterance, in order of
    /// appearance, each (tracker, phrase) once.
    pub fn detect_normalized(&self, text: &Normalized) -> Vec<TrackerHit> {
        let mut hits: Vec<TrackerHit> = Vec::new();
        if self.matcher.is_empty() {
            return hits;
        }
        let mut positives: Vec<(usize, usize, PhraseRef)> = Vec::new();
        let mut exclusions: Vec<(usize, usize, u32)> = Vec::new();
        self.matcher.for_each_match(text, |m| {
            let r = self.refs[m.payload as usize];
            if r.exclude {
                exclusions.push((m.start, m.end(), r.tracker));
            } else {
                positives.push((m.start, m.end(), r));
            }
        });
        for (start, end, r) in positives {
            let excluded = exclusions.iter().any(|&(s, e, t)| t == r.tracker && s <= start && end <= e);
            if excluded
                || (self.negatable[r.tracker as usize] && (negated_before(text, start) || declined_before(text, start)))
            {
                continue;
            }
            let config = &self.trackers[r.tracker as usize];
            let phrase = &config.phrases[r.phrase as usize];
            if !hits.iter().any(|h| h.tracker == config.name && &h.phrase == phrase) {
                let matched = (start..end).map(|i| text.word(i)).collect::<Vec<_>>().join(" ");
                hits.push(TrackerHit { tracker: config.name.clone(), phrase: phrase.clone(), matched });
            }
        }
        hits
    }

    fn empty() -> Self {
        TrackerSet { trackers: Vec::new(), matcher: PhraseMatcher::new(), refs: Vec::new(), negatable: Vec::new() }
    }

    fn build(trackers: Vec<TrackerConfig>, strict: bool) -> Result<Self, TrackerError> {
        let mut set = Self::empty();
        for (ti, config) in trackers.iter().enumerate() {
            if strict {
                if config.name.trim().is_empty() {
                    return Err(TrackerError::EmptyName);
                }
                if trackers[..ti].iter().any(|t| t.name == config.name) {
                    return Err(TrackerError::DuplicateName(config.name.clone()));
                }
                if config.phrases.iter().all(|p| p.trim().is_empty()) {
                    return Err(TrackerError::NoPhrases(config.name.clone()));
                }
            }
            for (pi, phrase) in config.phrases.iter().enumerate() {
                let (pattern, exclude) = match phrase.trim().strip_prefix('-') {
                    Some(rest) => (rest, true),
                    None => (phrase.as_str(), false),
                };
                let payload = set.refs.len() as u32;
                match set.matcher.add(pattern, payload) {
                    Ok(_) => set.refs.push(PhraseRef { tracker: ti as u32, phrase: pi as u32, exclude }),
                    Err(source) if strict => {
                        return Err(TrackerError::BadPhrase { tracker: config.name.clone(), source })
                    }
                    Err(_) => {}
                }
            }
            set.negatable.push(!NEGATION_EXEMPT.contains(&config.name.as_str()));
        }
        set.trackers = trackers;
        Ok(set)
    }
}

/// `base` with `configured` merged in by name (replace or add).
pub fn merge_configs(mut base: Vec<TrackerConfig>, configured: Vec<TrackerConfig>) -> Vec<TrackerConfig> {
    for c in configured {
        match base.iter_mut().find(|b| b.name == c.name) {
            Some(b) => *b = c,
            None => base.push(c),
        }
    }
    base
}

const DEFAULT_TRACKERS: &[(&str, &[&str])] = &[
    (
        ASKS_FOR_HUMAN,
        &[
            "operator",
            "representative",
            "agent",
            "advisor|adviser",
            "supervisor",
            "manager",
            "real|actual|live|proper person|human|people|agent",
            "human being|beings",
            "a human",
            "^human|humans|person|people$",
            "speak|talk|chat to|with someone|somebody|anyone|anybody|staff",
            "speak|talk|chat to|with a person|human, speak|talk|chat to|with a member of staff",
            "speak|talk|chat to|with customer service|services",
            "put me through",
            "transfer me",
            "connect me to|with",
            "get|give me someone|somebody, get|give me a person|human",
            "someone|somebody who knows|understands, someone|somebody who actually knows|understands",
            "someone|somebody who can help",
            // Narrative mentions, identifiers and products, not requests.
            "-agent|representative|operator|advisor|adviser|manager|supervisor i spoke|talked|dealt|had",
            "-agent|representative|operator|advisor|adviser|manager|supervisor told|said|promised|gave|was|were|did|had|has|never|already|asked|wants|sent",
            "-my manager|supervisor",
            "-agent|representative|operator|advisor|adviser|manager|supervisor who|that told|said|promised|was|dealt|spoke",
            "-agent id|number|code|portal|login|app|account|reference|name|details|number",
            "-estate|travel|letting|insurance|secret|double|free agent",
            "-manager app|application|portal|software|tool|login|mode",
            "-task|file|password|download|device|connection|package|window manager",
            "-network|mobile|tour|machine operator",
            "-operator network|services",
            "-human error|nature|resources|rights",
        ],
    ),
    (
        ABUSE,
        &[
            "fuck|fucking|fucked|fuckin|fucker|fuckers|fucks|motherfucker|motherfucking",
            "shit|shite|shitty|bullshit|horseshit",
            "piss|pissed off, pissing me off",
            "bastard|bastards|bitch|asshole|assholes|arsehole|arseholes|dickhead|dickheads|prick|pricks",
            "wanker|wankers|twat|twats|cunt|cunts|bollocks",
            "idiot|idiots|moron|morons|imbecile|imbeciles",
            "you stupid|useless",
            "stupid machine|bot|robot|system|computer|thing|company",
            "bunch|load of clowns|cowboys|idiots|morons",
            "you clowns",
            "screw|damn you, go to hell, shut up, get lost, sod|bugger off",
            "-i am an idiot|moron, i am such an idiot|moron",
            "-i feel like an idiot|moron",
            "-i was an idiot",
        ],
    ),
    (
        BOT_FRUSTRATION,
        &[
            "robot|robots|bot",
            "machine",
            "talking|speaking|talk|speak to a|the|this computer|machine|robot|bot",
            "automated system|service|voice|message|menu",
            "this automated",
            "not listening",
            "you do not understand, you do not get it",
            "you are not understanding",
            "it does not understand",
            "you never understand|listen",
            "not understanding me",
            "this is useless|pointless, this is * useless|pointless",
            "this system|thing|service|menu is useless|pointless|rubbish",
            "useless|pointless system|machine|robot|bot|menu",
            "already told you, told you already, i just told you, already said, just said that",
            "round in circles, going in circles, round and round",
            "what are you talking about",
            "not what i said",
            "i did not say that",
            "stop asking, keep asking me, asked me that already, same question",
            "none of these|those|them, none of the options",
            "voice|speech recognition",
            "-washing|answering|card|coffee|vending|cash|ticket|fax|slot|sewing machine",
            "-machine wash",
        ],
    ),
    (
        CHURN_RISK,
        &[
            "cancel|cancelling|canceling|close|closing|terminate|terminating|end|ending my|the|this account|contract|subscription|membership|service|broadband",
            "switch|switching|move|moving|go|going to another provider|company|network|supplier, switch|switching|move|moving|go|going to a different provider|company|network|supplier",
            "switch|switching|change|changing provider|providers|supplier|suppliers|network|networks|company",
            "leave|leaving you, leave|leaving your|this company|network",
            "or i am leaving, or i will leave, or i leave, or i will go elsewhere",
            "take my business|custom|money elsewhere",
            "go|going|went elsewhere",
            "lawyer|lawyers|solicitor|solicitors|ombudsman|ofcom|watchdog|regulator",
            "legal action, small claims, trading standards, citizens advice",
            "take you to court",
            "sue|suing you",
            "pac|porting|stac code",
            "port my number, port|porting out",
            "never use|using you again",
            "not renewing, not going to renew, will not renew, not be renewing",
            "competitor|competitors",
            "cheaper elsewhere, better deal elsewhere",
        ],
    ),
    (
        BUYING_SIGNAL,
        &[
            "upgrade|upgrading",
            "sign|signing up, sign me up",
            "new plan|deal|package|line|tariff|customer",
            "better|best deal",
            "any|what|your deals|offers",
            "deals|offers on|for",
            "special offer|offers",
            "promotion|promotions|promo|discount|discounts|voucher",
            "price|prices|pricing",
            "how much is|are|does|would|will|for|to",
            "buy|buying|purchase|purchasing",
            "add a|another line|phone|sim, add an extra line|phone|sim",
            "extra|second|another line",
            "interested in",
            "looking to get, looking for a new, looking at getting",
            "thinking of|about getting",
            "switch|move|moving to you, switch over to you",
            "become a customer",
            "cheapest",
            "cheaper plan|deal|tariff|package",
            "a quote, free trial",
            "bundle|bundles",
            // Wanting more than one has, without a buying word.
            "anything|something faster|quicker|cheaper|better|bigger than",
            "phone|line|sim|mobile|tablet of her|his|their|my|our own",
            "will|would|going to need a|another|more|extra|new phone|phones|line|lines|sim|sims|mobile|mobiles",
            // Billing talk that mentions money without wanting to buy.
            "-price|prices rise|rises|increase|increases|hike|hikes|change|changes",
            "-same|current|my|usual|normal|old|monthly price|prices, price i|we pay, price i am paying",
            "-how much is my, how much is the bill, how much is left, how much is it going to cost to fix",
            "-how much do i owe",
            "-how much have|did i, how much was it",
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(set: &TrackerSet, text: &str) -> Vec<String> {
        set.detect(text).into_iter().map(|h| h.tracker).collect()
    }

    fn tracker(name: &str, text: &str) -> bool {
        static SET: std::sync::OnceLock<TrackerSet> = std::sync::OnceLock::new();
        let set = SET.get_or_init(TrackerSet::default);
        hits(set, text).iter().any(|t| t == name)
    }

    #[test]
    fn defaults_compile_strictly() {
        let set = TrackerSet::try_new(TrackerSet::default_configs()).unwrap();
        let names: Vec<_> = set.configs().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [ASKS_FOR_HUMAN, ABUSE, BOT_FRUSTRATION, CHURN_RISK, BUYING_SIGNAL]);
    }

    #[test]
    fn normalised_word_boundaries() {
        assert!(tracker(ASKS_FOR_HUMAN, "I'd like to speak to a REAL person!"));
        assert!(tracker(ASKS_FOR_HUMAN, "id like to speak to a real person"));
        let set = TrackerSet::default();
        let h = set.detect("id like to speak to a real person");
        assert!(h.iter().any(|h| h.phrase == "real|actual|live|proper person|human|people|agent"));
        assert!(!tracker(ASKS_FOR_HUMAN, "the agents are here"));
        assert!(!tracker(ABUSE, "scunthorpe"));
    }

    #[test]
    fn asks_for_human() {
        for t in [
            "i want to speak to a real person",
            "agent",
            "can i talk to an agent please",
            "representative",
            "operator operator",
            "its complicated can i just speak to someone",
            "i want to speak to a supervisor",
            "get me your manager now",
            "just put me through to someone who can help",
            "transfer me",
            "id like to speak to a human being please",
            "why cant i just talk to a person",
            "is there an actual person i can talk to",
            "dont you have any real people",
            "no no i want an agent",
            "just give me a person",
            "i need to speak to my account manager",
        ] {
            assert!(tracker(ASKS_FOR_HUMAN, t), "{t}");
        }
    }

    #[test]
    fn asks_for_human_false_positives() {
        for t in [
            "my agent id is 4 7 7 2",
            "the manager app keeps logging me out",
            "the agent i spoke to yesterday said my refund was on its way",
            "it was human error on my part",
            "i dont need an agent",
            "please dont transfer me",
            "i do not want to speak to anyone",
            "my estate agent needs a letter",
            "is there anybody there",
            "the representative told me it was fixed",
            "my manager asked me to call",
        ] {
            assert!(!tracker(ASKS_FOR_HUMAN, t), "{t}");
        }
    }

    #[test]
    fn abuse() {
        for t in ["this is fucking useless", "you stupid machine", "your service is shit", "you idiot"] {
            assert!(tracker(ABUSE, t), "{t}");
        }
        for t in ["i feel like an idiot", "im such an idiot i forgot", "shipping", "the pitch was good"] {
            assert!(!tracker(ABUSE, t), "{t}");
        }
        // Negation does not excuse profanity.
        assert!(tracker(ABUSE, "this is not fucking working"));
    }

    #[test]
    fn bot_frustration() {
        for t in [
            "am i talking to a robot",
            "you are not listening to me",
            "you dont understand what im saying",
            "this system is useless",
            "i already told you that",
            "we are going round in circles",
            "none of these options",
        ] {
            assert!(tracker(BOT_FRUSTRATION, t), "{t}");
        }
        for t in ["my washing machine", "the answering machine picked up", "i understand"] {
            assert!(!tracker(BOT_FRUSTRATION, t), "{t}");
        }
    }

    #[test]
    fn churn_risk() {
        for t in [
            "i want to cancel my account",
            "im going to switch to another provider",
            "ill be speaking to my lawyer",
            "i will take my business elsewhere",
            "can i get my pac code please",
            "i will be reporting you to the ombudsman",
        ] {
            assert!(tracker(CHURN_RISK, t), "{t}");
        }
        for t in [
            "im not cancelling my account",
            "i dont want to cancel my account",
            "i need to cancel my order",
            "the network is down",
        ] {
            assert!(!tracker(CHURN_RISK, t), "{t}");
        }
    }

    #[test]
    fn buying_signal() {
        for t in [
            "im thinking about upgrading my phone",
            "how do i sign up",
            "what deals do you have",
            "how much is the fibre broadband",
            "how much would that cost",
            "id like to add another line for my daughter",
            "any discount for new customers",
            "whats the cheapest plan",
            "is there anything faster than what we have",
            "she will need a phone of her own",
            "we are going to need more lines",
        ] {
            assert!(tracker(BUYING_SIGNAL, t), "{t}");
        }
        for t in [
            "no i dont want to upgrade",
            "i upgraded last year",
            "it was the annual price rise",
            "how much is my bill",
            "how much do i owe",
            "how much data have i got left",
            "so it carries on at the same price",
            "my current price is fine",
            "im not interested in any offers",
            "my son has a phone on my account",
            "i will not need a new phone",
        ] {
            assert!(!tracker(BUYING_SIGNAL, t), "{t}");
        }
    }

    #[test]
    fn configuration_replaces_and_adds() {
        let set = TrackerSet::with_overrides(vec![
            TrackerConfig { name: ASKS_FOR_HUMAN.into(), phrases: vec!["a human please".into()] },
            TrackerConfig { name: "legal".into(), phrases: vec!["small claims".into()] },
        ])
        .unwrap();
        assert_eq!(set.configs().len(), 6);
        assert!(!tracker_in(&set, ASKS_FOR_HUMAN, "agent"));
        assert!(tracker_in(&set, ASKS_FOR_HUMAN, "a human please"));
        assert!(tracker_in(&set, "legal", "see you at the small claims court"));
    }

    fn tracker_in(set: &TrackerSet, name: &str, text: &str) -> bool {
        hits(set, text).iter().any(|t| t == name)
    }

    #[test]
    fn negation_can_be_switched() {
        let mut set = TrackerSet::new(vec![TrackerConfig { name: "x".into(), phrases: vec!["agent".into()] }]);
        assert!(!tracker_in(&set, "x", "not agent"));
        assert!(!tracker_in(&set, "x", "no need for an agent"), "declined");
        assert!(tracker_in(&set, "x", "no i need an agent"));
        set.set_negation("x", false);
        assert!(tracker_in(&set, "x", "not agent"));
    }

    #[test]
    fn each_hit_once_in_order() {
        let set = TrackerSet::default();
        let h = set.detect("operator operator this is fucking useless");
        let names: Vec<_> = h.iter().map(|h| h.tracker.as_str()).collect();
        assert_eq!(names, [ASKS_FOR_HUMAN, BOT_FRUSTRATION, ABUSE]);
    }

    #[test]
    fn bad_configuration_is_a_typed_error() {
        let cfg = |name: &str, phrases: &[&str]| TrackerConfig {
            name: name.into(),
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
        };
        assert_eq!(TrackerSet::try_new(vec![cfg(" ", &["a"])]).unwrap_err(), TrackerError::EmptyName);
        assert!(matches!(
            TrackerSet::try_new(vec![cfg("a", &["x"]), cfg("a", &["y"])]),
            Err(TrackerError::DuplicateName(_))
        ));
        assert!(matches!(TrackerSet::try_new(vec![cfg("a", &[])]), Err(TrackerError::NoPhrases(_))));
        let e = TrackerSet::try_new(vec![cfg("a", &["* x"])]).unwrap_err();
        assert!(e.to_string().starts_with("trackers.a: "), "{e}");
        // The lenient constructor skips the bad phrase and keeps the rest.
        let set = TrackerSet::new(vec![cfg("a", &["* x", "hello"])]);
        assert!(tracker_in(&set, "a", "hello there"));
    }

    #[test]
    fn odd_input_never_panics() {
        let set = TrackerSet::default();
        for t in ["", "\u{0}", "🙂 agent 🙂", &"operator ".repeat(3000), "-", "|", "*"] {
            let _ = set.detect(t);
        }
    }
}
