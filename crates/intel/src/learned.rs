//! The learned part of the local engine: a word and word-pair table plus a
//! small non-linear head over static word embeddings, trained on
//! human-labelled text and stacked on the lexicon score.
//!
//! For an utterance of `n` normalised tokens, on VADER's valence scale:
//!
//! ```text
//! pooled± = Σ E[token] over plain (+) or negated (−) free tokens / n
//! h = relu(A · [pooled+, pooled−, expand(lexicon) / 4, lexicon] + c)
//! s = expand(lexicon) + dead((Σ w[token, negated] + Σ w[bigram]) / √n + g · v · h + o, d)
//! valence = s / √(s² + 15)
//! dissatisfied = logistic(a · expand(lexicon) + b + (Σ w'[token, negated] + Σ w'[bigram]) / √n + v' · h)
//! ```
//!
//! where `dead(x, d)` moves `x` toward 0 by `d` (and stops at 0): the learned
//! part speaks only when its evidence is clear, so plain requests keep the
//! lexicon's neutral score. `o` puts the median neutral training utterance
//! at 0, and an utterance with no free word in the table gets no learned
//! valence at all.
//!
//! `lexicon` is the lexicon scorer's compound ([`super::SentimentScorer`]),
//! `expand` undoes VADER's squash, and a token is negated when
//! [`negated_before`] says so. Tokens inside a contact-centre phrase the
//! lexicon matched ([`Phrases`]) are left to the lexicon (only the other,
//! free tokens are summed and pooled): it has judged them in context ("oh
//! great another hour on hold" is not praise). The head reads the lexicon
//! score too, so it can temper it, except where a phrase matched: there `g`
//! is 0 and the lexicon's judgement stands.
//!
//! `E` is a static embedding table (all-MiniLM-L6-v2's embedding of each word
//! alone, reduced by PCA and quantised to 8 bits), and the word weights come
//! from the same embeddings folded into one number per word (see `train/` in
//! the repository). `dissatisfied` is the probability that the caller is
//! dissatisfied (anger, annoyance, disappointment, disapproval, disgust).
//!
//! Weights in the first format (`IVRXLRN1`: the table alone, the first
//! learned model) are read too, for comparison.
//!
//! The weights are compiled in (`learned/weights.bin`, with its provenance
//! and licence in `learned/README.md`): no I/O, no allocation per utterance.

use super::normalize::{negated_before, Normalized};
use super::sentiment::{expand, normalize as squash};

/// The trained weights.
static WEIGHTS: &[u8] = include_bytes!("learned/weights.bin");

/// Largest embedding width and hidden layer a weights file may have.
const MAX_DIMS: usize = 128;

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

    /// True when no phrase matched.
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
    /// The file does not start with a known magic.
    #[error("not a learned-scorer weights file")]
    Magic,
    /// The file's length is not what its header says.
    #[error("weights file truncated: {0} bytes, header says {1}")]
    Truncated(usize, usize),
    /// The slot count is not a power of two above the entry count, or a
    /// slot names no entry.
    #[error("weights table has {0} slots for {1} entries, or a slot out of range")]
    Slots(u32, u32),
    /// The head's sizes are out of range, or an entry names an embedding
    /// row past the table.
    #[error("weights head has embedding width {0} and {1} hidden units, or a row out of range")]
    Head(usize, usize),
}

/// The two layouts of a weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    header: usize,
    entry: usize,
    /// Offset of the four weights within an entry.
    weights_at: usize,
}

const V1: Layout = Layout { header: 8 + 3 * 4 + 7 * 4, entry: 4 + 2 + 4 * 2, weights_at: 6 };
const V2: Layout = Layout { header: 8 + 4 * 4 + 2 * 2 + 4 + 7 * 4, entry: 4 + 2 + 2 + 4 * 2, weights_at: 8 };
/// An entry's embedding row when the word has none.
const NO_ROW: u16 = u16::MAX;

/// The learned scorer over the compiled-in weights (or other weights).
#[derive(Clone)]
pub struct LearnedScorer {
    params: Params,
    layout: Layout,
    entries: &'static [u8],
    slots: &'static [u8],
    text: &'static [u8],
    mask: u64,
    head: Option<Head>,
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

/// The non-linear head: embedding table and one hidden layer.
#[derive(Clone)]
struct Head {
    dims: usize,
    hidden: usize,
    /// Pool the words inside lexicon phrases too.
    pool_covered: bool,
    /// The head's valence is silent when a lexicon phrase matched.
    defer_to_phrases: bool,
    /// `rows × dims` signed bytes.
    embeddings: &'static [u8],
    /// `(2 dims + 2) × hidden`, input-major.
    first: Box<[f32]>,
    bias: Box<[f32]>,
    /// `hidden × 2`: valence, dissatisfaction.
    out: Box<[f32]>,
}

impl std::fmt::Debug for LearnedScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnedScorer")
            .field("entries", &self.len())
            .field("params", &self.params)
            .field("head", &self.head.as_ref().map(|h| (h.dims, h.hidden)))
            .finish()
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

    /// A scorer over weights in either format `train/` writes.
    pub fn from_bytes(bytes: &'static [u8]) -> Result<Self, WeightsError> {
        let layout = match bytes.get(..8) {
            Some(b"IVRXLRN1") => V1,
            Some(b"IVRXLRN2") => V2,
            _ => return Err(WeightsError::Magic),
        };
        if bytes.len() < layout.header {
            return Err(WeightsError::Truncated(bytes.len(), layout.header));
        }
        let entries = u32_at(bytes, 8) as usize;
        let slots = u32_at(bytes, 12);
        let text = u32_at(bytes, 16) as usize;
        if !slots.is_power_of_two() || entries >= slots as usize {
            return Err(WeightsError::Slots(slots, entries as u32));
        }
        let (rows, dims, hidden, flags) = if layout == V2 {
            (u32_at(bytes, 20) as usize, u16_at(bytes, 24) as usize, u16_at(bytes, 26) as usize, u32_at(bytes, 28))
        } else {
            (0, 0, 0, 0)
        };
        let f = |i: usize| f64::from(f32_at(bytes, i));
        let p = layout.header - 7 * 4;
        let params = Params {
            valence_lexicon: f(p),
            valence_bias: f(p + 4),
            dissatisfied_lexicon: f(p + 8),
            dissatisfied_bias: f(p + 12),
            valence_scale: f(p + 16),
            dissatisfied_scale: f(p + 20),
            valence_dead_zone: f(p + 24),
        };
        if layout == V2 && (dims == 0 || dims > MAX_DIMS || hidden == 0 || hidden > MAX_DIMS) {
            return Err(WeightsError::Head(dims, hidden));
        }
        let entries_end = layout.header + entries * layout.entry;
        let slots_end = entries_end + slots as usize * 4;
        let text_end = slots_end + text;
        let inputs = 2 * dims + 2;
        let head_len = if layout == V2 { rows * dims + 4 * (inputs * hidden + hidden + 2 * hidden) } else { 0 };
        let total = text_end + head_len;
        if bytes.len() != total {
            return Err(WeightsError::Truncated(bytes.len(), total));
        }
        let head = (layout == V2).then(|| {
            let floats = |from: usize, n: usize| (0..n).map(|i| f32_at(bytes, from + 4 * i)).collect::<Box<[f32]>>();
            let first_at = text_end + rows * dims;
            let bias_at = first_at + 4 * inputs * hidden;
            Head {
                dims,
                hidden,
                pool_covered: flags & 1 == 1,
                defer_to_phrases: flags & 2 == 2,
                embeddings: &bytes[text_end..first_at],
                first: floats(first_at, inputs * hidden),
                bias: floats(bias_at, hidden),
                out: floats(bias_at + 4 * hidden, 2 * hidden),
            }
        });
        let scorer = LearnedScorer {
            params,
            layout,
            entries: &bytes[layout.header..entries_end],
            slots: &bytes[entries_end..slots_end],
            text: &bytes[slots_end..text_end],
            mask: u64::from(slots) - 1,
            head,
        };
        // Every slot names an entry or none, and no more slots are used than
        // there are entries (fewer than slots), so every lookup meets an
        // empty slot and ends; every entry's text lies in the text block and
        // its embedding row in the table.
        let slot = |i: usize| u32_at(scorer.slots, i * 4) as usize;
        let used = (0..slots as usize).filter(|&i| slot(i) != 0).count();
        if used > entries || (0..slots as usize).any(|i| slot(i) > entries) {
            return Err(WeightsError::Slots(slots, entries as u32));
        }
        for i in 0..entries {
            let at = i * layout.entry;
            let start = u32_at(scorer.entries, at) as usize;
            let len = u16_at(scorer.entries, at + 4) as usize;
            if start + len > text {
                return Err(WeightsError::Truncated(text, start + len));
            }
            if let Some(row) = scorer.row(at) {
                if row >= rows {
                    return Err(WeightsError::Head(dims, hidden));
                }
            }
        }
        Ok(scorer)
    }

    /// Words and word pairs with weights.
    pub fn len(&self) -> usize {
        self.entries.len() / self.layout.entry
    }

    /// True when there are no weights (never for the compiled-in ones).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the weights have the non-linear head (the second model and later).
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// Scores a normalised utterance whose lexicon score is `lexicon` and
    /// whose domain phrases are `phrases`.
    pub fn score(&self, norm: &Normalized, lexicon: f64, phrases: &Phrases) -> Learned {
        let mut valence = 0i64;
        let mut dissatisfied = 0i64;
        let w = self.layout.weights_at;
        let mut add = |e: Option<usize>, negated: bool| {
            if let Some(at) = e {
                let k = if negated { 2 } else { 0 };
                valence += i64::from(i16_at(self.entries, at + w + k));
                dissatisfied += i64::from(i16_at(self.entries, at + w + 4 + k));
            }
        };
        // Embedding sums of the plain, then the negated words.
        let mut pooled = [0i32; 2 * MAX_DIMS];
        let n = norm.len();
        let mut previous_free = false;
        // Whether any word outside the lexicon's phrases is in the table.
        let mut known = false;
        for i in 0..n {
            let free = !phrases.covers(i);
            let pool = self.head.as_ref().filter(|h| free || h.pool_covered);
            if !free && pool.is_none() {
                previous_free = false;
                continue;
            }
            let negated = negated_before(norm, i);
            let entry = self.find(&[norm.word(i).as_bytes()]);
            if let (Some(head), Some(row)) = (pool, entry.and_then(|at| self.row(at))) {
                let d = head.dims;
                let from = row * d;
                let sums = &mut pooled[usize::from(negated) * d..][..d];
                for (s, &b) in sums.iter_mut().zip(&head.embeddings[from..from + d]) {
                    *s += i32::from(b as i8);
                }
            }
            if free {
                known |= entry.is_some();
                add(entry, negated);
                if previous_free {
                    add(self.find(&[norm.word(i - 1).as_bytes(), b" ", norm.word(i).as_bytes()]), false);
                }
            }
            previous_free = free;
        }
        let p = &self.params;
        let per_token = if n == 0 { 0.0 } else { 1.0 / (n as f64).sqrt() };
        let lexicon = if lexicon.is_nan() { 0.0 } else { lexicon };
        let lex = expand(lexicon);
        let (head_valence, head_dissatisfied) = match &self.head {
            Some(head) => head.eval(&pooled, n, lex, lexicon),
            None => (0.0, 0.0),
        };
        let head_valence = match &self.head {
            Some(head) if head.defer_to_phrases && !phrases.is_empty() => 0.0,
            _ => head_valence,
        };
        // With no word to go on, the learned part says nothing (the first
        // model's bias is 0, so this changes nothing there).
        let learned = if known || self.head.is_none() {
            valence as f64 / p.valence_scale * per_token + head_valence + p.valence_bias
        } else {
            0.0
        };
        let learned = learned.signum() * (learned.abs() - p.valence_dead_zone).max(0.0);
        let v = p.valence_lexicon * lex + learned;
        let d = p.dissatisfied_lexicon * lex
            + p.dissatisfied_bias
            + dissatisfied as f64 / p.dissatisfied_scale * per_token
            + head_dissatisfied;
        Learned { valence: squash(v), dissatisfied: 1.0 / (1.0 + (-d).exp()) }
    }

    /// The embedding row of the entry at byte offset `at`, if it has one.
    fn row(&self, at: usize) -> Option<usize> {
        if self.layout != V2 {
            return None;
        }
        let row = u16_at(self.entries, at + 6);
        (row != NO_ROW).then_some(usize::from(row))
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
            let at = (index - 1) * self.layout.entry;
            let start = u32_at(self.entries, at) as usize;
            let len = u16_at(self.entries, at + 4) as usize;
            if equals(&self.text[start..start + len], parts) {
                return Some(at);
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

impl Head {
    /// The head's (valence, dissatisfaction) contributions, from the pooled
    /// embedding sums of `n` tokens and the lexicon score.
    fn eval(&self, pooled: &[i32; 2 * MAX_DIMS], n: usize, lex: f64, lexicon: f64) -> (f64, f64) {
        let mut h = [0f32; MAX_DIMS];
        let h = &mut h[..self.hidden];
        h.copy_from_slice(&self.bias);
        let n = n.max(1) as f32;
        let inputs = pooled[..2 * self.dims].iter().map(|&s| s as f32 / n).chain([(lex / 4.0) as f32, lexicon as f32]);
        for (x, weights) in inputs.zip(self.first.chunks_exact(self.hidden)) {
            if x != 0.0 {
                for (a, &w) in h.iter_mut().zip(weights) {
                    *a += x * w;
                }
            }
        }
        let (mut v, mut d) = (0f32, 0f32);
        for (&a, o) in h.iter().zip(self.out.chunks_exact(2)) {
            let a = a.max(0.0);
            v += a * o[0];
            d += a * o[1];
        }
        (f64::from(v), f64::from(d))
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

fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
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

    /// The first learned model's weights (kept for the benchmark's comparison).
    static FIRST: &[u8] = include_bytes!("../../../benches/learned-v1.bin");

    fn learned(text: &str, lexicon: f64) -> Learned {
        LearnedScorer::new().score(&Normalized::new(text), lexicon, &Phrases::default())
    }

    #[test]
    fn compiled_in_weights_load() {
        let s = LearnedScorer::new();
        assert!(s.has_head(), "the compiled-in weights have the non-linear head");
        assert!(s.len() > 10_000, "{} entries", s.len());
        assert!(s.find(&[b"thanks"]).is_some());
        assert!(s.find(&[b"thanks"]).and_then(|at| s.row(at)).is_some(), "common words have an embedding");
        assert!(s.find(&[b"not", b" ", b"working"]).is_some() || s.find(&[b"not"]).is_some());
        assert!(s.find(&[b"zzzzqqq"]).is_none());
    }

    /// (text, valence, dissatisfied) as `train/net.py`'s `Exported` reads the
    /// committed weights (`train/train.py` prints them); the engine must
    /// reproduce them.
    const PINNED: &[(&str, f64, f64)] = &[
        ("perfect thanks that is sorted", 0.935172, 0.005374),
        ("this is the third time i am calling and it is still not working", -0.700349, 0.416285),
        ("hi i am thinking about upgrading my phone", 0.000000, 0.045582),
        ("that's it i'm closing everything with you", 0.000000, 0.157659),
        ("I love the new phone but my bill is wrong again!", 0.195235, 0.160594),
        ("you are useless", -0.493915, 0.420688),
        ("i do not hate it", -0.306061, 0.394624),
        ("ok", 0.102733, 0.066725),
        ("no that is not what i asked for", -0.341491, 0.472821),
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

    /// The first model's weights still read as they did (`train/model.py`'s
    /// `Exported` on the same text).
    #[test]
    fn reads_the_first_format() {
        let first = LearnedScorer::from_bytes(FIRST).expect("the first model's weights load");
        assert!(!first.has_head());
        let engine = super::super::LocalEngine::with_learned(super::super::TrackerSet::default(), first);
        for (text, valence, dissatisfied) in [
            ("perfect thanks that is sorted", 0.936604, 0.006811),
            ("this is the third time i am calling and it is still not working", -0.700349, 0.289780),
            ("hi i am thinking about upgrading my phone", 0.000000, 0.046924),
            ("I love the new phone but my bill is wrong again!", 0.180598, 0.062323),
            ("i do not hate it", -0.222050, 0.456074),
        ] {
            let l = engine.assess(text).learned.expect("runs the learned model");
            assert!((l.valence - valence).abs() < 1e-4, "{text}: valence {} not {valence}", l.valence);
            assert!((l.dissatisfied - dissatisfied).abs() < 1e-4, "{text}: {} not {dissatisfied}", l.dissatisfied);
        }
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
        assert!(matches!(LearnedScorer::from_bytes(b"IVRXLRN2"), Err(WeightsError::Truncated(..))));
        for weights in [WEIGHTS, FIRST] {
            let short: &'static [u8] = &weights[..weights.len() - 1];
            assert!(matches!(LearnedScorer::from_bytes(short), Err(WeightsError::Truncated(..))));
        }
        // A head wider than the engine allows.
        let mut wide = WEIGHTS.to_vec();
        wide[24..26].copy_from_slice(&(MAX_DIMS as u16 + 1).to_le_bytes());
        let wide: &'static [u8] = Box::leak(wide.into_boxed_slice());
        assert!(matches!(LearnedScorer::from_bytes(wide), Err(WeightsError::Head(..))));
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

    #[test]
    fn no_known_word_adds_nothing() {
        assert_eq!(learned("", 0.0).valence, 0.0);
        assert_eq!(learned("zzzzqqq xxyyzz", 0.0).valence, 0.0);
        assert_eq!(learned("zzzzqqq", -0.5).valence, -0.5, "the lexicon's score stands");
    }

    /// Where the lexicon matched a contact-centre phrase, the head does not
    /// temper its score: sarcasm the lexicon caught stays caught.
    #[test]
    fn phrases_keep_the_lexicon_judgement() {
        let engine = super::super::LocalEngine::default();
        for text in ["oh great another hour on hold just perfect", "yeah brilliant service as always"] {
            let a = engine.assess(text);
            let l = a.learned.expect("the default engine runs the learned model");
            assert!((l.valence - a.lexicon).abs() < 1e-9, "{text}: {} not {}", l.valence, a.lexicon);
        }
    }
}
