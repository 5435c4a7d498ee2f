//! Sentiment for contact-centre speech: VADER for general English, plus the
//! domain lexicon on top.
//!
//! 1. The utterance is normalised ([`Normalized`]).
//! 2. Domain phrases are matched, longest first. Each carries a valence that
//!    a preceding negator turns (× [`NEGATION_SCALAR`]), boosters and
//!    dampeners scale, and a contrastive "but" weighs (× 0.5 before, × 1.5
//!    after), as VADER does for its own words. Praise next to a complaint is
//!    read as sarcasm.
//! 3. VADER ([`vader_parity`]) scores the original text minus the words the
//!    domain phrases took over, so no word counts twice and VADER keeps what
//!    it does well (punctuation and capitals emphasis, its idioms, negation of
//!    its own words). Speech-recognition forms it would misread are fixed
//!    first ("ill call back" is not illness). A subject negator ("nobody",
//!    "no one") negates the positive words of its clause, however far they
//!    stand, where VADER's negation reaches only three words.
//! 4. Both sums are added on VADER's valence scale and normalised like
//!    VADER's compound: `x / sqrt(x² + 15)`, in -1..1.
//!
//! Text without domain phrases scores exactly VADER's compound.

use vader_parity::SentimentIntensityAnalyzer;

use super::lexicon::{DomainEntry, DomainKind, BOOSTERS, DAMPENERS, DOMAIN_LEXICON};
use super::normalize::{is_negator, negated_before, Normalized, CLAUSE_BREAKS, MAX_INPUT_BYTES};
use super::phrases::PhraseMatcher;

/// VADER's negation factor.
pub const NEGATION_SCALAR: f64 = -0.74;
/// VADER's booster increment.
pub const BOOSTER_INCREMENT: f64 = 0.293;
/// VADER's normalisation constant.
const ALPHA: f64 = 15.0;
/// A domain phrase at or below this valence (after negation) marks the
/// utterance as a complaint, which turns nearby praise sarcastic.
pub const COMPLAINT_VALENCE: f64 = -0.5;
/// A general-language score at or below this also marks a complaint.
pub const COMPLAINT_COMPOUND: f64 = -0.25;

/// Most domain phrases counted in one utterance; the rest are ignored.
const MAX_FOUND: usize = 32;
/// Original words beyond this many are never rewritten for VADER.
const MAX_TRACKED_RAW: usize = 128;

/// The sentiment scorer: VADER plus the contact-centre lexicon.
pub struct SentimentScorer {
    vader: SentimentIntensityAnalyzer,
    domain: PhraseMatcher,
    entries: Vec<DomainEntry>,
}

impl std::fmt::Debug for SentimentScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentimentScorer").field("domain_entries", &self.entries.len()).finish_non_exhaustive()
    }
}

impl Default for SentimentScorer {
    fn default() -> Self {
        Self::new()
    }
}

/// How one utterance was scored.
#[derive(Debug, Clone, PartialEq)]
pub struct SentimentDetail {
    /// The final score, -1..1.
    pub score: f64,
    /// VADER's compound over the words the domain lexicon left to it.
    pub general: f64,
    /// Sum of the domain phrases' valences.
    pub domain: f64,
    /// True when praise was read as sarcasm.
    pub sarcasm: bool,
    /// The domain phrases that counted (pattern, valence as counted).
    pub phrases: Vec<(&'static str, f64)>,
}

#[derive(Clone, Copy, Default)]
struct Found {
    start: u32,
    end: u32,
    entry: u32,
}

impl SentimentScorer {
    /// A scorer with the built-in lexicon. Loads VADER's tables (about a
    /// millisecond): build one and share it.
    pub fn new() -> Self {
        let mut domain = PhraseMatcher::new();
        for (i, e) in DOMAIN_LEXICON.iter().enumerate() {
            // The built-in lexicon compiles (tested); skip rather than panic.
            let _ = domain.add(e.pattern, i as u32);
        }
        SentimentScorer { vader: SentimentIntensityAnalyzer::new(), domain, entries: DOMAIN_LEXICON.to_vec() }
    }

    /// VADER alone on `text`, for comparison.
    pub fn general(&self, text: &str) -> f64 {
        self.vader.polarity_scores(text).compound
    }

    /// Scores `raw`, whose normalised form is `norm`.
    pub fn score(&self, raw: &str, norm: &Normalized) -> f64 {
        self.run(raw, norm, None, None)
    }

    /// Scores `raw` like [`score`](Self::score) and reports the token range
    /// (start, end) of every domain phrase found, at most 32.
    pub fn score_with_phrases(&self, raw: &str, norm: &Normalized, on_phrase: &mut dyn FnMut(usize, usize)) -> f64 {
        self.run(raw, norm, None, Some(on_phrase))
    }

    /// Scores `raw` and says how.
    pub fn explain(&self, raw: &str, norm: &Normalized) -> SentimentDetail {
        let mut detail = SentimentDetail { score: 0.0, general: 0.0, domain: 0.0, sarcasm: false, phrases: Vec::new() };
        detail.score = self.run(raw, norm, Some(&mut detail), None);
        detail
    }

    fn run(
        &self,
        raw: &str,
        norm: &Normalized,
        mut detail: Option<&mut SentimentDetail>,
        on_phrase: Option<&mut dyn FnMut(usize, usize)>,
    ) -> f64 {
        let mut found = [Found::default(); MAX_FOUND];
        let mut n = 0;
        self.domain.for_each_longest(norm, |m| {
            if n < MAX_FOUND {
                found[n] = Found { start: m.start as u32, end: m.end() as u32, entry: m.payload };
                n += 1;
            }
        });
        let found = &found[..n];
        if let Some(f) = on_phrase {
            found.iter().for_each(|x| f(x.start as usize, x.end as usize));
        }

        let general = self.general_score(raw, norm, found);
        let but_at = (0..norm.len()).find(|&i| norm.word(i) == "but");

        // First the plain phrases, which also tell whether this is a complaint.
        let mut domain = 0.0;
        let mut complaint = general <= COMPLAINT_COMPOUND;
        for f in found {
            let entry = &self.entries[f.entry as usize];
            let v = match entry.kind {
                DomainKind::Plain => self.in_context(entry.valence, norm, f.start as usize),
                DomainKind::Fixed => entry.valence,
                DomainKind::Sarcasm { .. } => continue,
            };
            complaint |= v <= COMPLAINT_VALENCE;
            let v = but_weight(v, f.start as usize, but_at);
            domain += v;
            if let Some(d) = detail.as_deref_mut() {
                d.phrases.push((entry.pattern, v));
            }
        }
        let mut sarcasm = false;
        for f in found {
            let entry = &self.entries[f.entry as usize];
            if let DomainKind::Sarcasm { genuine } = entry.kind {
                sarcasm |= complaint;
                let v = but_weight(if complaint { entry.valence } else { genuine }, f.start as usize, but_at);
                domain += v;
                if let Some(d) = detail.as_deref_mut() {
                    d.phrases.push((entry.pattern, v));
                }
            }
        }

        let score = if n == 0 { general } else { normalize(expand(general) + domain) };
        if let Some(d) = detail {
            d.general = general;
            d.domain = domain;
            d.sarcasm = sarcasm;
        }
        score
    }

    /// A plain phrase's valence after negation and boosters.
    fn in_context(&self, valence: f64, norm: &Normalized, start: usize) -> f64 {
        let mut v = valence;
        if v != 0.0 {
            for (distance, j) in (start.saturating_sub(3)..start).rev().enumerate() {
                let w = norm.word(j);
                let step = BOOSTER_INCREMENT * [1.0, 0.95, 0.9][distance.min(2)];
                if BOOSTERS.contains(&w) {
                    v += step * v.signum();
                } else if DAMPENERS.contains(&w) {
                    v -= step * v.signum();
                }
            }
        }
        if negated_before(norm, start) || (v > 0.0 && subject_negated(norm, start)) {
            v *= NEGATION_SCALAR;
        }
        v
    }

    /// VADER over the original words the domain phrases did not take.
    fn general_score(&self, raw: &str, norm: &Normalized, found: &[Found]) -> f64 {
        let raw = truncate(raw);
        // Per original word: tokens it produced, and how many a phrase took.
        let words = (norm.raw_word_count() as usize).min(MAX_TRACKED_RAW);
        let mut produced = [0u8; MAX_TRACKED_RAW];
        let mut taken = [0u8; MAX_TRACKED_RAW];
        for i in 0..norm.len() {
            if let Some(r) = norm.raw_index(i).map(|r| r as usize).filter(|&r| r < words) {
                produced[r] = produced[r].saturating_add(1);
            }
        }
        for f in found {
            for i in f.start..f.end {
                if let Some(r) = norm.raw_index(i as usize).map(|r| r as usize).filter(|&r| r < words) {
                    taken[r] = taken[r].saturating_add(1);
                }
            }
        }
        let dropped = |r: usize| r < words && produced[r] > 0 && taken[r] >= produced[r];
        let fixes = norm.raw_fixes();
        let subject_negated = (0..norm.len()).any(|i| {
            let w = norm.word(i);
            is_subject_negator(w) || (w == "no" && i + 1 < norm.len() && matches!(norm.word(i + 1), "one" | "body"))
        });
        if fixes.is_empty() && !subject_negated && !(0..words).any(dropped) {
            return self.vader.polarity_scores(raw).compound;
        }
        // Each original word, and whether VADER sees it.
        let mut view: Vec<(&str, bool)> = Vec::with_capacity(words + 4);
        for (r, word) in raw.split_whitespace().enumerate() {
            let replacement = fixes.iter().find(|f| f.raw as usize == r).map(|f| f.replacement);
            view.push(match replacement {
                Some(None) => (word, false),
                Some(Some(w)) => (w, true),
                None => (word, !dropped(r)),
            });
        }
        if subject_negated {
            view = negate_after_subjects(&view, |w| self.vader.polarity_scores(w).compound > 0.0);
        }
        let view = view.iter().filter(|(_, kept)| *kept).map(|(w, _)| *w).collect::<Vec<_>>().join(" ");
        self.vader.polarity_scores(&view).compound
    }
}

/// Subject negators: "nobody at your company seems to care" denies the
/// caring, however far the verb is.
const SUBJECT_NEGATORS: &[&str] = &["nobody", "noone", "no-one", "nobodys"];
/// Negations VADER counts, as speech recognition writes them.
const CONTRACTED_NEGATIONS: &[&str] = &[
    "dont", "cant", "wont", "didnt", "isnt", "doesnt", "wasnt", "arent", "havent", "hasnt", "hadnt", "couldnt",
    "wouldnt", "shouldnt", "werent", "aint", "cannot", "neednt", "mustnt",
];
/// How many words after a subject negator its negation still reaches.
const SUBJECT_REACH: usize = 8;
/// VADER's negation reach: a negator counts for the three words after it.
const VADER_REACH: usize = 3;

fn is_subject_negator(word: &str) -> bool {
    SUBJECT_NEGATORS.contains(&word)
}

/// True when a subject negator ("nobody", "no one") opens the clause of the
/// phrase at token `start`, within [`SUBJECT_REACH`] words.
fn subject_negated(norm: &Normalized, start: usize) -> bool {
    for j in (start.saturating_sub(SUBJECT_REACH)..start).rev() {
        let w = norm.word(j);
        if CLAUSE_BREAKS.contains(&w) {
            return false;
        }
        if is_subject_negator(w) || (matches!(w, "one" | "body") && j > 0 && norm.word(j - 1) == "no") {
            return true;
        }
    }
    false
}

/// A word with its punctuation and case stripped, for comparisons.
fn bare(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase().replace(['\'', '\u{2019}'], "")
}

/// VADER only negates the three words after a negator and does not count
/// "nobody" or "no one" as one. Rewrites the view (each word, and whether
/// VADER sees it) so that in the clause after such a subject, up to
/// [`SUBJECT_REACH`] words, every positive word (`positive`) has exactly one
/// negator within its reach: a "not" before it, unless an earlier one still
/// reaches it. Negative words are left alone ("no one bothered to call" is not
/// praise). A clause with another negator is left alone (no double
/// negation); a clause break or a punctuation mark ends it.
fn negate_after_subjects<'a>(words: &[(&'a str, bool)], positive: impl Fn(&str) -> bool) -> Vec<(&'a str, bool)> {
    let mut out = Vec::with_capacity(words.len() + 4);
    let mut i = 0;
    while i < words.len() {
        let w = bare(words[i].0);
        let two_words = w == "no" && words.get(i + 1).is_some_and(|(n, _)| matches!(bare(n).as_str(), "one" | "body"));
        if !(is_subject_negator(&w) || two_words) {
            out.push(words[i]);
            i += 1;
            continue;
        }
        // "no" would negate on its own in VADER: the subject stays, minus it.
        let start = if two_words { i + 1 } else { i };
        let mut end = start + 1;
        while end < words.len() && end - start <= SUBJECT_REACH {
            if CLAUSE_BREAKS.contains(&bare(words[end].0).as_str()) {
                break;
            }
            end += 1;
            if words[end - 1].0.ends_with(['.', ',', ';', '!', '?']) {
                break;
            }
        }
        let negated_already = words[start + 1..end].iter().any(|(w, _)| {
            let b = bare(w);
            is_negator(&b) || CONTRACTED_NEGATIONS.contains(&b.as_str())
        });
        if negated_already {
            out.extend_from_slice(&words[i..end]);
            i = end;
            continue;
        }
        out.push(words[start]);
        // Words VADER sees since the last "not" put in.
        let mut since: Option<usize> = None;
        for &word in &words[start + 1..end] {
            if word.1 {
                if since.is_none_or(|n| n >= VADER_REACH) && positive(&bare(word.0)) {
                    out.push(("not", true));
                    since = Some(0);
                }
                out.push(word);
                since = since.map(|n| n + 1);
            } else {
                out.push(word);
            }
        }
        i = end;
    }
    out
}

fn truncate(text: &str) -> &str {
    if text.len() <= MAX_INPUT_BYTES {
        return text;
    }
    let mut end = MAX_INPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// VADER weighs what comes after "but" more than what comes before.
fn but_weight(v: f64, start: usize, but_at: Option<usize>) -> f64 {
    match but_at {
        Some(b) if start < b => v * 0.5,
        Some(b) if start > b => v * 1.5,
        _ => v,
    }
}

/// VADER's compound normalisation, on the valence sum.
pub(super) fn normalize(sum: f64) -> f64 {
    if !sum.is_finite() {
        return 0.0;
    }
    (sum / (sum * sum + ALPHA).sqrt()).clamp(-1.0, 1.0)
}

/// The valence sum behind a compound (the inverse of [`normalize`]).
pub(super) fn expand(compound: f64) -> f64 {
    let c = compound.clamp(-0.9999, 0.9999);
    c * (ALPHA / (1.0 - c * c)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn scorer() -> &'static SentimentScorer {
        static S: OnceLock<SentimentScorer> = OnceLock::new();
        S.get_or_init(SentimentScorer::new)
    }

    fn score(text: &str) -> f64 {
        scorer().score(text, &Normalized::new(text))
    }

    #[test]
    fn compound_round_trips() {
        for c in [-0.95, -0.5, 0.0, 0.3, 0.8316] {
            assert!((normalize(expand(c)) - c).abs() < 1e-9);
        }
    }

    #[test]
    fn plain_vader_is_untouched() {
        for t in ["VADER is smart, handsome, and funny.", "The food was terrible!!", "meh"] {
            assert_eq!(score(t), scorer().general(t), "{t}");
        }
    }

    #[test]
    fn negation_in_speech_recognition_forms() {
        assert!(score("i dont like this") < -0.2);
        assert!(score("i do not like this") < -0.2);
        assert!(score("its not working") < -0.3);
        assert!(score("it isnt working") < -0.3);
        assert!(score("thats not fixed") < -0.2);
        assert!(score("thats fixed") > 0.3);
        assert!(score("this is not useless") > 0.0);
        assert!(score("im not happy") < -0.3);
    }

    #[test]
    fn boosters_strengthen_and_dampeners_soften() {
        assert!(score("this is really ridiculous") < score("this is ridiculous"));
        assert!(score("this is a bit ridiculous") > score("this is ridiculous"));
        assert!(score("its absolutely useless") < score("its useless"));
    }

    #[test]
    fn but_weighs_the_second_clause() {
        assert!(score("the engineer was nice but its still not working") < -0.2);
        assert!(score("it was a nightmare but its sorted now") > 0.2);
    }

    #[test]
    fn plain_problems_are_not_anger() {
        for t in ["my internet is slow", "i lost my card", "i have a problem with my bill", "my phone is broken"] {
            let s = score(t);
            assert!(s > -0.45 && s < 0.1, "{t}: {s}");
        }
        assert!(score("i lost my card") > scorer().general("i lost my card"));
    }

    #[test]
    fn frustration_phrases_score_negative() {
        for t in [
            "ive been on hold for an hour",
            "this is the third time im calling",
            "still waiting for the engineer",
            "this is a joke",
            "you are not listening",
            "i already told you that",
            "are you kidding me",
            "ive never been treated like this",
        ] {
            let s = score(t);
            assert!(s < -0.3, "{t}: {s}");
        }
    }

    #[test]
    fn requests_are_not_praise() {
        assert!(score("can you help me please") < 0.3);
        assert!(score("id like to speak to a real person") < 0.3);
        assert!(score("perfect thanks") > 0.5);
        assert!(score("thats sorted thank you") > 0.5);
    }

    #[test]
    fn sarcasm_next_to_a_complaint() {
        let d = scorer().explain(
            "oh great another hour on hold just perfect",
            &Normalized::new("oh great another hour on hold just perfect"),
        );
        assert!(d.sarcasm && d.score < -0.5, "{d:?}");
        assert!(score("oh great thanks that works") > 0.5);
        assert!(score("well thanks for nothing then") < -0.4);
        assert!(score("i just love waiting on hold") < -0.3);
    }

    #[test]
    fn answers_and_durations_are_not_negated() {
        assert!(score("no its still not working") < -0.4);
        assert!(score("ive been without internet for three days now") < -0.2);
        assert!(score("still nothing") < -0.3);
    }

    #[test]
    fn idioms_kept_from_vader_and_added() {
        assert!(score("yeah right it still isnt working") < -0.5);
        assert!(score("fine whatever i give up") < -0.5);
        assert!(score("you dont understand what im saying") < -0.3);
        assert!(score("yes") > 0.0 && score("yes") < 0.3, "an answer is not praise");
    }

    #[test]
    fn praise_opening_a_complaint_is_sarcasm() {
        assert!(score("wonderful so youre telling me to wait another week") < -0.5);
        assert!(score("great thanks bye") > 0.5);
    }

    #[test]
    fn subject_negators_reach_the_verb() {
        assert!(score("nobody at your company seems to care") < -0.2);
        assert!(score("no one at that shop could help me") < -0.2);
        assert!(score("nobody cares") < 0.0);
        assert!(score("somebody at your company seems to care") > 0.2);
        // Not twice: a verb already negated is left as VADER reads it.
        assert!(score("nobody here can not help") < -0.2);
        assert!(score("nobody was home but the engineer was great") > 0.3);
        let view: Vec<_> = ["nobody", "at", "your", "company", "seems", "to", "care"].map(|w| (w, true)).to_vec();
        let negated: Vec<_> = negate_after_subjects(&view, |w| w == "care").into_iter().map(|(w, _)| w).collect();
        assert_eq!(negated.join(" "), "nobody at your company seems to not care");
        // A negative verb stays negative.
        assert!(score("no one has bothered to call me back") < 0.0);
    }

    #[test]
    fn negated_upset_is_calm() {
        let s = score("im not angry just confused");
        assert!(s > -0.4 && s < 0.2, "{s}");
    }

    #[test]
    fn speech_forms_vader_would_misread() {
        assert!(score("ok ill call back later") >= 0.0);
        assert!(score("i feel ill") < 0.0);
        assert!(score("i don t like it") < -0.2);
    }

    #[test]
    fn odd_input_never_panics_and_stays_in_range() {
        let long = "not ".repeat(5000);
        for t in ["", " ", "\u{0}", "🙂", "!!!", "but but but", "no", "ˆ", &long, "ill ill ill t t t don t"] {
            let s = score(t);
            assert!((-1.0..=1.0).contains(&s), "{t:?}: {s}");
        }
    }
}
