//! Topics near the decline: which words and two-word phrases callers used
//! just before things went wrong, compared with what the same callers said
//! the rest of the call.
//!
//! **The decline of a call** is one caller utterance:
//! - the trigger utterance of the transfer decision, when the escalation
//!   policy decided (source `policy`) for any reason but a buying signal;
//! - otherwise (no decision, a keypad/menu or manual transfer, or a buying
//!   signal), the end of the steepest drop: the scored caller utterance whose
//!   score fell most from the caller's previous scored utterance, if it fell
//!   by at least [`MIN_DROP`]. A call with no such drop has no decline and is
//!   left out of the comparison.
//!
//! **The decline window** is the decline utterance and the `window - 1`
//! caller utterances before it. Every other caller utterance of the same
//! calls is the background.
//!
//! **Terms** are unigrams and bigrams of the normalised speech-recognition
//! text (lower case, no punctuation). Stopwords, speech fillers ("um",
//! "yeah"), numbers and one-letter tokens are not unigrams; a bigram is two
//! adjacent tokens whose second is a content word and whose first is a
//! content word or a negation ("not working", "no internet"). A term counts
//! once per utterance, so counts read "in N utterances".
//!
//! **The statistic** is the log-odds ratio with an informative Dirichlet
//! prior (Monroe, Colaresi & Quinn, 2008, "Fightin' Words"), with the pooled
//! counts of both groups as the prior: for a term with `a` hits in the
//! window (of `n1` term hits there) and `b` in the background (of `n2`),
//! `α = a + b`, `α0 = n1 + n2`,
//! `δ = ln((a+α)/(n1+α0−a−α)) − ln((b+α)/(n2+α0−b−α))`,
//! `z = δ / sqrt(1/(a+α) + 1/(b+α))`. Terms are ranked by `z`; only terms
//! seen in at least `min_count` window utterances and with `z > 0` are
//! listed, and `|z| ≥ 1.96` is flagged as significant. The counts are shown
//! beside every number.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::policy::Reason;
use crate::session::text::normalize;
use crate::session::DecisionSource;
use crate::store::{Conversation, Utterance};

/// Smallest fall between two consecutive caller scores that counts as a
/// decline in a call the policy did not escalate.
pub const MIN_DROP: f64 = 0.3;

/// Most distinct terms kept; beyond it the rarest are dropped (and the
/// result says so).
pub const MAX_TERMS: usize = 200_000;

/// How a call's decline was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineKind {
    /// The policy's trigger utterance.
    Trigger,
    /// The end of the steepest drop between consecutive caller scores.
    SteepestDrop,
}

impl DeclineKind {
    /// `trigger` or `steepest_drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineKind::Trigger => "trigger",
            DeclineKind::SteepestDrop => "steepest_drop",
        }
    }
}

/// Where a call's decline is.
#[derive(Debug, Clone, PartialEq)]
pub struct Decline {
    /// Position among the call's caller utterances (0-based).
    pub position: usize,
    /// The utterance's caller index (1-based).
    pub caller_index: u32,
    /// How it was found.
    pub kind: DeclineKind,
}

/// Finds the decline of a call (see the module documentation).
pub fn find_decline(call: &Conversation) -> Option<Decline> {
    let caller: Vec<&Utterance> = call.caller_utterances().collect();
    let index_of = |pos: usize, u: &Utterance| u.caller_index.unwrap_or(pos as u32 + 1);
    let escalation =
        call.decision.as_ref().filter(|d| d.source == Some(DecisionSource::Policy) && d.reason != Reason::BuyingSignal);
    if let Some(t) = escalation.and_then(|d| d.trigger_index) {
        if let Some(pos) = caller.iter().enumerate().position(|(i, u)| index_of(i, u) == t) {
            return Some(Decline { position: pos, caller_index: t, kind: DeclineKind::Trigger });
        }
    }
    let scored: Vec<(usize, f64)> = caller.iter().enumerate().filter_map(|(i, u)| u.score.map(|s| (i, s))).collect();
    let mut best: Option<(usize, f64)> = None;
    for pair in scored.windows(2) {
        let drop = pair[0].1 - pair[1].1;
        if drop >= MIN_DROP - 1e-12 && best.is_none_or(|(_, d)| drop > d) {
            best = Some((pair[1].0, drop));
        }
    }
    best.map(|(pos, _)| Decline {
        position: pos,
        caller_index: index_of(pos, caller[pos]),
        kind: DeclineKind::SteepestDrop,
    })
}

const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "even",
    "ever",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "let",
    "lets",
    "me",
    "more",
    "most",
    "much",
    "my",
    "myself",
    "of",
    "off",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "still",
    "such",
    "than",
    "that",
    "thats",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "theres",
    "these",
    "they",
    "theyre",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "we",
    "were",
    "weve",
    "what",
    "whats",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "youre",
    "yours",
    "yourself",
    "yourselves",
    "im",
    "ive",
    "id",
    "ill",
    "youve",
    "youll",
    "hes",
    "shes",
    "well",
    "yes",
    "yeah",
    "yep",
    "okay",
    "ok",
    "oh",
    "um",
    "uh",
    "uhm",
    "umm",
    "hmm",
    "mm",
    "er",
    "ah",
    "like",
    "really",
    "actually",
    "basically",
    "gonna",
    "wanna",
    "gotta",
    "kind",
    "sort",
    "hi",
    "hello",
    "hey",
    "please",
    "thanks",
    "thank",
    "now",
    "right",
    "know",
    "mean",
    "say",
    "said",
    "go",
    "going",
    "been",
    "way",
    "thing",
    "things",
    "something",
    "anything",
    "make",
    "see",
    "want",
    "need",
    "there",
    "tell",
    "told",
    "call",
    "calling",
    "called",
    "today",
    "time",
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "nothing", "nobody", "none", "nowhere", "cant", "cannot", "dont", "doesnt", "didnt", "isnt",
    "wasnt", "arent", "werent", "wont", "wouldnt", "couldnt", "shouldnt", "havent", "hasnt", "hadnt",
];

fn word_set(
    words: &'static [&'static str],
    cell: &'static OnceLock<HashSet<&'static str>>,
) -> &'static HashSet<&'static str> {
    cell.get_or_init(|| words.iter().copied().collect())
}

fn is_negation(t: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    word_set(NEGATIONS, &SET).contains(t)
}

/// More than one character, not a number, not a stopword or negation.
fn is_content(t: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    t.chars().nth(1).is_some()
        && !t.bytes().all(|b| b.is_ascii_digit())
        && !word_set(STOPWORDS, &SET).contains(t)
        && !is_negation(t)
}

/// Reusable buffers for [`for_each_term`].
#[derive(Debug, Clone, Default)]
struct Scratch {
    terms: String,
    spans: Vec<(usize, usize)>,
}

/// Calls `f` with each distinct term of one utterance, in order of first
/// appearance, without allocating per term.
fn for_each_term(text: &str, scratch: &mut Scratch, mut f: impl FnMut(&str)) {
    let norm = normalize(text);
    let tokens: Vec<&str> = norm.split(' ').filter(|t| !t.is_empty()).collect();
    let Scratch { terms, spans } = scratch;
    terms.clear();
    spans.clear();
    let mut add = |parts: &[&str]| {
        let start = terms.len();
        for (k, p) in parts.iter().enumerate() {
            if k > 0 {
                terms.push(' ');
            }
            terms.push_str(p);
        }
        let len = terms.len() - start;
        if spans.iter().any(|&(a, b)| b - a == len && terms[a..b] == terms[start..]) {
            terms.truncate(start);
        } else {
            spans.push((start, terms.len()));
        }
    };
    for (i, t) in tokens.iter().enumerate() {
        let content = is_content(t);
        if content {
            add(&[t]);
        }
        if let Some(next) = tokens.get(i + 1) {
            if is_content(next) && (content || is_negation(t)) {
                add(&[t, next]);
            }
        }
    }
    for &(a, b) in spans.iter() {
        f(&terms[a..b]);
    }
}

/// The distinct terms (unigrams and bigrams) of one utterance, in order of
/// first appearance.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, &mut Scratch::default(), |t| out.push(t.to_string()));
    out
}

/// Counts terms inside and outside the decline windows, call by call.
#[derive(Debug, Clone)]
pub struct TopicCounter {
    window: usize,
    counts: HashMap<Box<str>, [u32; 2]>,
    totals: [u64; 2],
    utterances: [u64; 2],
    calls: u64,
    by_trigger: u64,
    by_drop: u64,
    prune_floor: u32,
    scratch: Scratch,
}

impl TopicCounter {
    /// A counter with this decline window (at least 1 utterance).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            counts: HashMap::new(),
            totals: [0; 2],
            utterances: [0; 2],
            calls: 0,
            by_trigger: 0,
            by_drop: 0,
            prune_floor: 0,
            scratch: Scratch::default(),
        }
    }

    /// Adds one call whose decline is `decline` (calls without one are skipped).
    pub fn add_call(&mut self, call: &Conversation, decline: Option<&Decline>) {
        let Some(d) = decline else { return };
        self.calls += 1;
        match d.kind {
            DeclineKind::Trigger => self.by_trigger += 1,
            DeclineKind::SteepestDrop => self.by_drop += 1,
        }
        let first = (d.position + 1).saturating_sub(self.window);
        for (pos, u) in call.caller_utterances().enumerate() {
            let group = usize::from(!(first..=d.position).contains(&pos));
            self.utterances[group] += 1;
            let (counts, totals) = (&mut self.counts, &mut self.totals);
            for_each_term(&u.text, &mut self.scratch, |term| {
                totals[group] += 1;
                match counts.get_mut(term) {
                    Some(c) => c[group] += 1,
                    None => {
                        let mut c = [0; 2];
                        c[group] = 1;
                        counts.insert(term.into(), c);
                    }
                }
            });
        }
        if self.counts.len() > MAX_TERMS {
            self.prune();
        }
    }

    /// Drops the rarest terms until the table is back under three quarters of
    /// [`MAX_TERMS`]. Totals keep counting them, so rates stay honest.
    fn prune(&mut self) {
        while self.counts.len() > MAX_TERMS * 3 / 4 {
            self.prune_floor += 1;
            let floor = self.prune_floor;
            self.counts.retain(|_, c| c[0] + c[1] > floor);
        }
    }

    /// Ranks the terms; at most `top`, each seen in at least `min_count`
    /// decline-window utterances.
    pub fn finish(&self, top: usize, min_count: u32) -> Topics {
        let (n1, n2) = (self.totals[0] as f64, self.totals[1] as f64);
        let alpha0 = n1 + n2;
        let mut rows: Vec<Topic> = self
            .counts
            .iter()
            .filter(|(_, c)| c[0] >= min_count.max(1))
            .filter_map(|(term, c)| {
                let (a, b) = (f64::from(c[0]), f64::from(c[1]));
                let alpha = a + b;
                let (d1, d2) = (n1 + alpha0 - a - alpha, n2 + alpha0 - b - alpha);
                if d1 <= 0.0 || d2 <= 0.0 {
                    return None;
                }
                let delta = ((a + alpha) / d1).ln() - ((b + alpha) / d2).ln();
                let z = delta / (1.0 / (a + alpha) + 1.0 / (b + alpha)).sqrt();
                (z.is_finite() && z > 0.0).then(|| Topic {
                    term: term.to_string(),
                    ngram: term.split(' ').count() as u8,
                    in_decline: c[0],
                    elsewhere: c[1],
                    decline_share: share(c[0], self.utterances[0]),
                    elsewhere_share: share(c[1], self.utterances[1]),
                    log_odds: delta,
                    z,
                    significant: z >= 1.96,
                })
            })
            .collect();
        rows.sort_by(|x, y| y.z.total_cmp(&x.z).then_with(|| x.term.cmp(&y.term)));
        rows.truncate(top);
        Topics {
            method: "log-odds ratio with an informative Dirichlet prior (pooled counts), ranked by z",
            window: self.window,
            min_count,
            min_drop: MIN_DROP,
            calls_with_decline: self.calls,
            declines_at_trigger: self.by_trigger,
            declines_at_steepest_drop: self.by_drop,
            decline_utterances: self.utterances[0],
            other_utterances: self.utterances[1],
            decline_term_hits: self.totals[0],
            other_term_hits: self.totals[1],
            pruned_below: (self.prune_floor > 0).then_some(self.prune_floor + 1),
            terms: rows,
        }
    }
}

fn share(count: u32, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        f64::from(count) / of as f64
    }
}

/// One term near the decline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topic {
    /// The word or two-word phrase.
    pub term: String,
    /// 1 or 2.
    pub ngram: u8,
    /// Decline-window utterances containing it.
    pub in_decline: u32,
    /// Other caller utterances (same calls) containing it.
    pub elsewhere: u32,
    /// `in_decline` / decline-window utterances.
    pub decline_share: f64,
    /// `elsewhere` / other utterances.
    pub elsewhere_share: f64,
    /// δ, the prior-smoothed log-odds ratio.
    pub log_odds: f64,
    /// δ divided by its standard deviation.
    pub z: f64,
    /// `z ≥ 1.96`.
    pub significant: bool,
}

/// The topics near the decline, with the counts behind them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topics {
    /// The statistic.
    pub method: &'static str,
    /// Caller utterances in a decline window.
    pub window: usize,
    /// Least decline-window utterances a listed term must appear in.
    pub min_count: u32,
    /// Smallest score fall that counts as a drop.
    pub min_drop: f64,
    /// Calls that had a decline (the others are not compared).
    pub calls_with_decline: u64,
    /// … found at the policy's trigger.
    pub declines_at_trigger: u64,
    /// … found at the steepest drop.
    pub declines_at_steepest_drop: u64,
    /// Caller utterances inside decline windows.
    pub decline_utterances: u64,
    /// Caller utterances of the same calls outside them.
    pub other_utterances: u64,
    /// Term hits inside (n1).
    pub decline_term_hits: u64,
    /// Term hits outside (n2).
    pub other_term_hits: u64,
    /// Set when the vocabulary outgrew [`MAX_TERMS`]: terms seen fewer times
    /// than this may be missing.
    pub pruned_below: Option<u32>,
    /// The terms, best first.
    pub terms: Vec<Topic>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Speaker;
    use crate::store::model::parse_enum;
    use crate::store::StoredDecision;

    fn call(lines: &[(&str, f64)], decision: Option<(&str, &str, u32)>) -> Conversation {
        Conversation {
            id: "c".into(),
            decision: decision.map(|d| StoredDecision {
                source: parse_enum(d.0),
                reason: parse_enum(d.1).unwrap(),
                queue: None,
                trigger_index: Some(d.2),
                trigger_text: None,
                trigger_phrase: None,
                decision_ms: None,
            }),
            utterances: lines
                .iter()
                .enumerate()
                .map(|(i, (text, score))| Utterance {
                    seq: i as u32 + 1,
                    speaker: Speaker::Caller,
                    caller_index: Some(i as u32 + 1),
                    offset_ms: i as i64 * 5000,
                    text: text.to_string(),
                    confidence: None,
                    score: Some(*score),
                    label: None,
                    trackers: vec![],
                    engine: None,
                })
                .collect(),
            ..Conversation::default()
        }
    }

    #[test]
    fn terms_drop_stopwords_and_keep_negated_bigrams() {
        assert_eq!(terms("Um, my internet is NOT working... not working!"), vec!["internet", "not working", "working"]);
        assert_eq!(terms("I want a refund refund"), vec!["refund", "refund refund"]);
        assert_eq!(terms("the 3 of us"), Vec::<String>::new());
        assert_eq!(terms("cancel my account"), vec!["cancel", "account"]);
        assert_eq!(terms("cancel account"), vec!["cancel", "cancel account", "account"]);
    }

    #[test]
    fn the_decline_is_the_trigger_for_policy_escalations() {
        let c = call(&[("a", 0.5), ("b", -0.9), ("c", -0.2)], Some(("policy", "asked_for_human", 3)));
        let d = find_decline(&c).unwrap();
        assert_eq!((d.position, d.caller_index, d.kind), (2, 3, DeclineKind::Trigger));
    }

    #[test]
    fn otherwise_the_decline_is_the_steepest_drop() {
        // 0.5 → 0.4 (−0.1), 0.4 → −0.5 (−0.9), −0.5 → −0.6 (−0.1)
        let lines = [("a", 0.5), ("b", 0.4), ("c", -0.5), ("d", -0.6)];
        for decision in [None, Some(("menu", "operator", 1)), Some(("policy", "buying_signal", 1))] {
            let d = find_decline(&call(&lines, decision)).unwrap();
            assert_eq!((d.position, d.kind), (2, DeclineKind::SteepestDrop));
        }
        // A steady call has no decline.
        assert_eq!(find_decline(&call(&[("a", 0.2), ("b", 0.0), ("c", 0.1)], None)), None);
        // A trigger that does not exist falls back to the drop rule.
        let d = find_decline(&call(&lines, Some(("policy", "rapid_decline", 9)))).unwrap();
        assert_eq!(d.kind, DeclineKind::SteepestDrop);
    }

    #[test]
    fn the_statistic_finds_the_planted_topic_with_its_counts() {
        // Ten calls: pleasant chatter, then the decline says "refund" and "still broken".
        let mut counter = TopicCounter::new(2);
        for i in 0..10 {
            let c = call(
                &[
                    ("hello i have a question about my router", 0.3),
                    ("the router lights are green", 0.2),
                    (if i % 2 == 0 { "it is still broken" } else { "nothing works i want a refund" }, -0.4),
                    ("i want a refund the router is still broken", -0.8),
                ],
                Some(("policy", "rapid_decline", 4)),
            );
            let d = find_decline(&c);
            counter.add_call(&c, d.as_ref());
        }
        let t = counter.finish(5, 3);
        assert_eq!((t.calls_with_decline, t.decline_utterances, t.other_utterances), (10, 20, 20));
        let top: Vec<&str> = t.terms.iter().map(|x| x.term.as_str()).collect();
        assert!(top[..3].contains(&"refund") && top[..3].contains(&"broken"), "{top:?}");
        let refund = t.terms.iter().find(|x| x.term == "refund").unwrap();
        assert_eq!((refund.in_decline, refund.elsewhere), (15, 0));
        assert!(refund.significant && refund.log_odds > 0.0);
        assert_eq!(refund.decline_share, 0.75);
        // "router" is everywhere: it is not over-represented in the decline.
        assert!(!top.contains(&"router"), "{top:?}");
        // Hand-computed: a = 15, b = 0, n1 = decline hits, n2 = other hits.
        let (a, b, n1, n2) = (15.0, 0.0, t.decline_term_hits as f64, t.other_term_hits as f64);
        let alpha = a + b;
        let delta = ((a + alpha) / (2.0 * n1 + n2 - a - alpha)).ln() - ((b + alpha) / (n1 + 2.0 * n2 - b - alpha)).ln();
        assert!((refund.log_odds - delta).abs() < 1e-12);
        assert!((refund.z - delta / (1.0 / 30.0 + 1.0 / 15.0f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn rare_terms_are_held_back_by_the_minimum_count() {
        let mut counter = TopicCounter::new(1);
        let c = call(&[("fine thanks", 0.5), ("terrible outage", -0.5)], None);
        counter.add_call(&c, find_decline(&c).as_ref());
        assert!(counter.finish(10, 2).terms.is_empty());
        assert_eq!(counter.finish(10, 1).terms.len(), 3);
        // Calls without a decline add nothing.
        let flat = call(&[("terrible outage", 0.0)], None);
        counter.add_call(&flat, find_decline(&flat).as_ref());
        assert_eq!(counter.finish(10, 1).calls_with_decline, 1);
    }
}
