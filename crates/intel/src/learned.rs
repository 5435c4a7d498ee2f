//! The learned part of the local engine: a linear model over words and word
//! pairs, trained on human-labelled text and stacked on the lexicon score.
//!
//! For an utterance of `n` normalised tokens, on VADER's valence scale:
//!
//! ```text
//! s = a · expand(lexicon) + b + dead((Σ w[token, negated] + Σ w[bigram]) / √n, d)
//! valence = s / √(s² + 15)
//! ```
//!
//! where `dead(x, d)` moves `x` toward 0 by `d` (and stops at 0): the learned
//! part speaks only when its evidence is clear, so plain requests keep the
//! lexicon's neutral score.
//!
//! `lexicon` is the lexicon scorer's compound ([`super::SentimentScorer`]),
//! `expand` undoes VADER's squash, and a token is negated when
//! [`negated_before`] says so. Tokens inside a contact-centre phrase the
//! lexicon matched ([`Phrases`]) are left to the lexicon: it has judged them
//! in context ("oh great another hour on hold" is not praise).
//!
//! The word weights come from all-MiniLM-L6-v2 embeddings of each word and a
//! head trained on the labelled data, folded into one number per word (see
//! `train/` in the repository); a second head
//! of the same form, through a logistic, gives the probability that the
//! caller is dissatisfied (anger, annoyance, disappointment, disapproval,
//! disgust).
//!
//! The weights are compiled in (`learned/weights.bin`, with its provenance
//! and licence in `learned/README.md`): no I/O, no allocation per utterance.

use super::normalize::{negated_before, Normalized};
use super::sentiment::{expand, normalize as squash};

/// The trained weights.
static WEIGHTS: &[u8] = include_bytes!("learned/weights.bin");

const MAGIC: &[u8; 8] = b"IVRXLRN1";
const HEADER: usize = 8 + 3 * 4 + 7 * 4;
const ENTRY: usize = 4 + 2 + 4 * 2;

/// What the learned model makes of one utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    /// Valence, -1..1, on the same scale as the lexicon score.
    pub valence: f64,
    /// Probability, 0..1, that the utterance is dissatisfied.
    pub dissatisfied: f64,
}

/// The token ranges of the domain phrases the lexicon scorer matched in one
/// utterance (at most 32, as the lexicon counts).
#[derive(Debug, Clone, Copy, Default)]
pub struct Phrases {
    spans: [(u32, u32); 32],
    len: usize,
}

impl Phrases {
    /// Adds the phrase over tokens `start..end`; beyond 32 phrases, ignored.
    pub fn push(&mut self, start: usize, end: usize) {
        if let Some(slot) = self.spans.get_mut(self.len) {
            *slot = (start as u32, end as u32);
            self.len += 1;
        }
    }

    /// True when token `i` lies inside a phrase.
    pub fn covers(&self, i: usize) -> bool {
        let i = i as u32;
        self.spans[..self.len].iter().any(|&(a, b)| a <= i && i < b)
    }
}

/// Why weights cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsError {
    /// The file does not start with the expected magic.
    #[error("not a learned-scorer weights file")]
    Magic,
    /// The file is shorter than its header says.
    #[error("weights file truncated: {0} bytes, header says {1}")]
    Truncated(usize, usize),
    /// The slot count is not a power of two above the entry count, or a
    /// slot names no entry.
    #[error("weights table has {0} slots for {1} entries, or a slot out of range")]
    Slots(u32, u32),
}

/// The learned scorer over the compiled-in weights.
#[derive(Clone, Copy)]
pub struct LearnedScorer {
    params: Params,
    entries: &'static [u8],
    slots: &'static [u8],
    text: &'static [u8],
    mask: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Params {
    valence_lexicon: f64,
    valence_bias: f64,
    dissatisfied_lexicon: f64,
    dissatisfied_bias: f64,
    valence_scale: f64,
    dissatisfied_scale: f64,
    valence_dead_zone: f64,
}

impl std::fmt::Debug for LearnedScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnedScorer").field("entries", &self.len()).field("params", &self.params).finish()
    }
}

impl Default for LearnedScorer {
    fn default() -> Self {
        Self::new()
    }
}

impl LearnedScorer {
    /// The scorer with the compiled-in weights (checked by the tests).
    pub fn new() -> Self {
        Self::from_bytes(WEIGHTS).expect("the compiled-in weights are valid")
    }

    /// A scorer over weights in the format `train/model.py` writes.
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, WeightsError> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(WeightsError::Magic);
        }
        let entries = u32_at(bytes, 8) as usize;
        let slots = u32_at(bytes, 12);
        let text = u32_at(bytes, 16) as usize;
        if !slots.is_power_of_two() || entries >= slots as usize {
            return Err(WeightsError::Slots(slots, entries as u32));
        }
        let f = |i: usize| f64::from(f32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]));
        let params = Params {
            valence_lexicon: f(20),
            valence_bias: f(24),
            dissatisfied_lexicon: f(28),
            dissatisfied_bias: f(32),
            valence_scale: f(36),
            dissatisfied_scale: f(40),
            valence_dead_zone: f(44),
        };
        let entries_end = HEADER + entries * ENTRY;
        let slots_end = entries_end + slots as usize * 4;
        let total = slots_end + text;
        if bytes.len() != total {
            return Err(WeightsError::Truncated(bytes.len(), total));
        }
        let scorer = LearnedScorer {
            params,
            entries: &bytes[HEADER..entries_end],
            slots: &bytes[entries_end..slots_end],
            text: &bytes[slots_end..],
            mask: u64::from(slots) - 1,
        };
        // Every slot names an entry or none, and no more slots are used than
        // there are entries (fewer than slots), so every lookup meets an
        // empty slot and ends; every entry's text lies in the text block.
        let slot = |i: usize| u32_at(scorer.slots, i * 4) as usize;
        let used = (0..slots as usize).filter(|&i| slot(i) != 0).count();
        if used > entries || (0..slots as usize).any(|i| slot(i) > entries) {
            return Err(WeightsError::Slots(slots, entries as u32));
        }
        for i in 0..entries {
            let at = i * ENTRY;
            let start = u32_at(scorer.entries, at) as usize;
            let len = u16_at(scorer.entries, at + 4) as usize;
            if start + len > text {
                return Err(WeightsError::Truncated(text, start + len));
            }
        }
        Ok(scorer)
    }

    /// Words and word pairs with weights.
    pub fn len(&self) -> usize {
        self.entries.len() / ENTRY
    }

    /// True when there are no weights (never for the compiled-in ones).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Scores a normalised utterance whose lexicon score is `lexicon` and
    /// whose domain phrases are `phrases`.
    pub fn score(&self, norm: &Normalized, lexicon: f64, phrases: &Phrases) -> Learned {
        let mut valence = 0i64;
        let mut dissatisfied = 0i64;
        let mut add = |e: Option<usize>, negated: bool| {
            if let Some(at) = e {
                let k = if negated { 2 } else { 0 };
                valence += i64::from(i16_at(self.entries, at + 6 + k));
                dissatisfied += i64::from(i16_at(self.entries, at + 10 + k));
            }
        };
        let n = norm.len();
        let mut previous_free = false;
        for i in 0..n {
            let free = !phrases.covers(i);
            if free {
                add(self.find(&[norm.word(i).as_bytes()]), negated_before(norm, i));
                if previous_free {
                    add(self.find(&[norm.word(i - 1).as_bytes(), b" ", norm.word(i).as_bytes()]), false);
                }
            }
            previous_free = free;
        }
        let p = &self.params;
        let per_token = if n == 0 { 0.0 } else { 1.0 / (n as f64).sqrt() };
        let lex = if lexicon.is_nan() { 0.0 } else { expand(lexicon) };
        let learned = valence as f64 / p.valence_scale * per_token;
        let learned = learned.signum() * (learned.abs() - p.valence_dead_zone).max(0.0);
        let v = p.valence_lexicon * lex + p.valence_bias + learned;
        let d =
            p.dissatisfied_lexicon * lex + p.dissatisfied_bias + dissatisfied as f64 / p.dissatisfied_scale * per_token;
        Learned { valence: squash(v), dissatisfied: 1.0 / (1.0 + (-d).exp()) }
    }

    /// The entry (byte offset) whose text is the concatenation of `parts`.
    fn find(&self, parts: &[&[u8]]) -> Option<usize> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for &b in *part {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut slot = h & self.mask;
        loop {
            let index = u32_at(self.slots, slot as usize * 4) as usize;
            if index == 0 {
                return None;
            }
            let at = (index - 1) * ENTRY;
            let start = u32_at(self.entries, at) as usize;
            let len = u16_at(self.entries, at + 4) as usize;
            if equals(&self.text[start..start + len], parts) {
                return Some(at);
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

fn equals(mut text: &[u8], parts: &[&[u8]]) -> bool {
    for part in parts {
        match text.strip_prefix(*part) {
            Some(rest) => text = rest,
            None => return false,
        }
    }
    text.is_empty()
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn i16_at(b: &[u8], i: usize) -> i16 {
    i16::from_le_bytes([b[i], b[i + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(text: &str, lexicon: f64) -> Learned {
        LearnedScorer::new().score(&Normalized::new(text), lexicon, &Phrases::default())
    }

    #[test]
    fn compiled_in_weights_load() {
        let s = LearnedScorer::new();
        assert!(s.len() > 10_000, "{} entries", s.len());
        assert!(s.find(&[b"thanks"]).is_some());
        assert!(s.find(&[b"not", b" ", b"working"]).is_some() || s.find(&[b"not"]).is_some());
        assert!(s.find(&[b"zzzzqqq"]).is_none());
    }

    /// (text, valence, dissatisfied) as `train/model.py`'s `Exported` reads the
    /// committed weights; the engine must reproduce them.
    const PINNED: &[(&str, f64, f64)] = &[
        ("perfect thanks that is sorted", 0.936604, 0.006811),
        ("this is the third time i am calling and it is still not working", -0.700349, 0.289780),
        ("hi i am thinking about upgrading my phone", 0.000000, 0.046924),
        ("that's it i'm closing everything with you", 0.000000, 0.165467),
        ("I love the new phone but my bill is wrong again!", 0.180598, 0.062323),
        ("you are useless", -0.493915, 0.254521),
        ("i do not hate it", -0.222050, 0.456074),
        ("ok", 0.102733, 0.083153),
    ];

    #[test]
    fn reproduces_pinned_scores() {
        let engine = super::super::LocalEngine::default();
        for &(text, valence, dissatisfied) in PINNED {
            let l = engine.assess(text).learned.expect("the default engine runs the learned model");
            assert!((l.valence - valence).abs() < 1e-4, "{text}: valence {} not {valence}", l.valence);
            assert!((l.dissatisfied - dissatisfied).abs() < 1e-4, "{text}: {} not {dissatisfied}", l.dissatisfied);
        }
        assert!(PINNED.len() >= 6);
    }

    #[test]
    fn phrases_cover_their_tokens() {
        let mut p = Phrases::default();
        p.push(2, 4);
        assert!(!p.covers(1) && p.covers(2) && p.covers(3) && !p.covers(4));
        for i in 0..40 {
            p.push(i, i + 1);
        }
        assert!(p.covers(30) && !p.covers(31), "at most 32 phrases are kept");
    }

    #[test]
    fn rejects_bad_weights() {
        assert_eq!(LearnedScorer::from_bytes(b"nope").unwrap_err(), WeightsError::Magic);
        let short: &'static [u8] = &WEIGHTS[..WEIGHTS.len() - 1];
        assert!(matches!(LearnedScorer::from_bytes(short), Err(WeightsError::Truncated(..))));
    }

    #[test]
    fn odd_input_stays_in_range() {
        let long = "not ".repeat(5000);
        for t in ["", " ", "\u{0}", "🙂", "!!!", &long, "ill ill ill t t t don t"] {
            for lex in [-1.0, 0.0, 1.0, f64::NAN] {
                let l = learned(t, lex);
                assert!((-1.0..=1.0).contains(&l.valence), "{t:?}: {l:?}");
                assert!((0.0..=1.0).contains(&l.dissatisfied), "{t:?}: {l:?}");
            }
        }
    }
}
