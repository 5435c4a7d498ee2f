//! A precompiled phrase matcher over [`Normalized`] tokens: whole words only,
//! multi-word phrases, looked up by their first word.
//!
//! Pattern syntax (used by tracker phrases and the domain lexicon):
//!
//! - words are normalised like utterances ("Don't" = "do not");
//! - `a|b` inside a word slot gives alternatives (`speak|talk to someone`);
//!   an alternative may itself be several words after normalisation;
//! - `,` separates whole alternative phrases (`fed up, sick of`): it binds
//!   loosest, so `a|b c, d` is "a c", "b c" or "d";
//! - `*` stands for exactly one arbitrary word (not as the first word);
//! - a leading `^` anchors the phrase at the start of the utterance and a
//!   trailing `$` at its end.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::normalize::Normalized;

/// Most variants one pattern may expand to through its alternatives.
pub const MAX_VARIANTS: usize = 512;
/// Most words in one phrase.
pub const MAX_PHRASE_WORDS: usize = 16;

/// A pattern that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Nothing left after normalisation.
    #[error("phrase {0:?} has no words (letters or digits) in it")]
    Empty(String),
    /// An alternative between `|` has no words.
    #[error("phrase {0:?} has an empty alternative: write words on both sides of every `|`")]
    EmptyAlternative(String),
    /// The first word is `*`.
    #[error("phrase {0:?} starts with `*`: the first word must be a real word")]
    LeadingWildcard(String),
    /// Too many combinations of alternatives.
    #[error("phrase {0:?} expands to more than {MAX_VARIANTS} variants: split it into several phrases")]
    TooManyVariants(String),
    /// Too many words.
    #[error("phrase {0:?} is longer than {MAX_PHRASE_WORDS} words")]
    TooLong(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Word(Box<str>),
    Any,
}

#[derive(Debug, Clone)]
struct Entry {
    rest: Box<[Slot]>,
    at_start: bool,
    at_end: bool,
    payload: u32,
}

impl Entry {
    fn len(&self) -> usize {
        self.rest.len() + 1
    }
}

/// FNV-1a: short keys, no DoS exposure (the keys are configuration).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Compiled phrases, each carrying a caller-defined payload.
#[derive(Debug, Clone, Default)]
pub struct PhraseMatcher {
    by_first: FnvMap<Box<str>, Vec<Entry>>,
}

/// One match: where, how long, and the payload of its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhraseMatch {
    /// First token.
    pub start: usize,
    /// Number of tokens.
    pub len: usize,
    /// The payload given to [`PhraseMatcher::add`].
    pub payload: u32,
}

impl PhraseMatch {
    /// One past the last token.
    pub fn end(&self) -> usize {
        self.start + self.len
    }
}

impl PhraseMatcher {
    /// An empty matcher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles `pattern` and files its variants under `payload`. Returns the
    /// number of variants.
    pub fn add(&mut self, pattern: &str, payload: u32) -> Result<usize, PatternError> {
        let variants = compile(pattern)?;
        let n = variants.len();
        for Variant { words, at_start, at_end } in variants {
            let mut it = words.into_iter();
            let Some(Slot::Word(first)) = it.next() else {
                return Err(PatternError::LeadingWildcard(pattern.to_string()));
            };
            let entry = Entry { rest: it.collect::<Vec<_>>().into_boxed_slice(), at_start, at_end, payload };
            let bucket = self.by_first.entry(first).or_default();
            bucket.push(entry);
            // Longest first, so the first hit at a position is the longest.
            bucket.sort_by_key(|e| std::cmp::Reverse(e.len()));
        }
        Ok(n)
    }

    /// True when no phrase was added.
    pub fn is_empty(&self) -> bool {
        self.by_first.is_empty()
    }

    /// Every match starting at token `i`, longest first.
    pub fn matches_at<'a>(&'a self, text: &'a Normalized, i: usize) -> impl Iterator<Item = PhraseMatch> + 'a {
        let bucket = self.by_first.get(text.word(i)).map(Vec::as_slice).unwrap_or(&[]);
        bucket.iter().filter(move |e| entry_matches(e, text, i)).map(move |e| PhraseMatch {
            start: i,
            len: e.len(),
            payload: e.payload,
        })
    }

    /// Calls `f` for every match anywhere (overlapping matches included).
    pub fn for_each_match(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch)) {
        if self.by_first.is_empty() {
            return;
        }
        for i in 0..text.len() {
            for m in self.matches_at(text, i) {
                f(m);
            }
        }
    }

    /// Calls `f` for the longest match at each position, left to right,
    /// skipping tokens already covered (no overlaps).
    pub fn for_each_longest(&self, text: &Normalized, mut f: impl FnMut(PhraseMatch)) {
        if self.by_first.is_empty() {
            return;
        }
        let mut i = 0;
        while i < text.len() {
            if let Some(m) = self.matches_at(text, i).next() {
                f(m);
                i = m.end();
            } else {
                i += 1;
            }
        }
    }
}

fn entry_matches(e: &Entry, text: &Normalized, i: usize) -> bool {
    let end = i + e.len();
    if end > text.len() || (e.at_start && i != 0) || (e.at_end && end != text.len()) {
        return false;
    }
    e.rest.iter().enumerate().all(|(k, slot)| match slot {
        Slot::Any => true,
        Slot::Word(w) => text.word(i + 1 + k) == &**w,
    })
}

/// The plain phrases a pattern stands for, for services that take literal
/// vocabulary (Symbl trackers): alternatives expanded, anchors dropped, words
/// normalised. Exclusions (`-…`), patterns with `*` and patterns that do not
/// compile give none.
pub fn literal_phrases(pattern: &str) -> Vec<String> {
    if pattern.trim_start().starts_with('-') {
        return Vec::new();
    }
    let Ok(variants) = compile(pattern) else { return Vec::new() };
    variants
        .into_iter()
        .filter_map(|v| {
            let words: Option<Vec<&str>> = v
                .words
                .iter()
                .map(|s| match s {
                    Slot::Word(w) => Some(&**w),
                    Slot::Any => None,
                })
                .collect();
            words.map(|w| w.join(" "))
        })
        .collect()
}

struct Variant {
    words: Vec<Slot>,
    at_start: bool,
    at_end: bool,
}

fn compile(pattern: &str) -> Result<Vec<Variant>, PatternError> {
    let mut out = Vec::new();
    for part in pattern.split(',') {
        if out.len() > MAX_VARIANTS {
            break;
        }
        compile_part(pattern, part, &mut out)?;
    }
    if out.len() > MAX_VARIANTS {
        return Err(PatternError::TooManyVariants(pattern.to_string()));
    }
    Ok(out)
}

fn compile_part(pattern: &str, part: &str, out: &mut Vec<Variant>) -> Result<(), PatternError> {
    let mut body = part.trim();
    let at_start = body.starts_with('^');
    if at_start {
        body = &body[1..];
    }
    let at_end = body.ends_with('$');
    if at_end {
        body = &body[..body.len() - 1];
    }
    let mut variants: Vec<Vec<Slot>> = vec![Vec::new()];
    for slot in body.split_whitespace() {
        let mut alternatives: Vec<Vec<Slot>> = Vec::new();
        for alt in slot.split('|') {
            if alt == "*" {
                alternatives.push(vec![Slot::Any]);
                continue;
            }
            let words: Vec<Slot> = Normalized::new(alt).words().map(|w| Slot::Word(w.into())).collect();
            if words.is_empty() {
                return Err(if slot.contains('|') {
                    PatternError::EmptyAlternative(pattern.to_string())
                } else {
                    PatternError::Empty(pattern.to_string())
                });
            }
            alternatives.push(words);
        }
        if variants.len().saturating_mul(alternatives.len()) > MAX_VARIANTS {
            return Err(PatternError::TooManyVariants(pattern.to_string()));
        }
        let mut next = Vec::with_capacity(variants.len() * alternatives.len());
        for v in &variants {
            for alt in &alternatives {
                let mut w = v.clone();
                w.extend(alt.iter().cloned());
                if w.len() > MAX_PHRASE_WORDS {
                    return Err(PatternError::TooLong(pattern.to_string()));
                }
                next.push(w);
            }
        }
        variants = next;
    }
    if variants.iter().all(Vec::is_empty) {
        return Err(PatternError::Empty(pattern.to_string()));
    }
    if variants.iter().any(|v| v.first() == Some(&Slot::Any)) {
        return Err(PatternError::LeadingWildcard(pattern.to_string()));
    }
    out.extend(variants.into_iter().map(|words| Variant { words, at_start, at_end }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_phrases_expand_alternatives_and_skip_what_has_no_literal_form() {
        assert_eq!(
            literal_phrases("real|actual person|human"),
            ["real person", "real human", "actual person", "actual human"]
        );
        assert_eq!(literal_phrases("fed up, ^sick of$"), ["fed up", "sick of"]);
        assert_eq!(literal_phrases("Don't"), ["do not"]);
        assert!(literal_phrases("-agent id").is_empty());
        assert!(literal_phrases("talk to * now").is_empty());
        assert!(literal_phrases("| |").is_empty());
    }

    fn all(m: &PhraseMatcher, text: &str) -> Vec<(usize, usize, u32)> {
        let n = Normalized::new(text);
        let mut out = Vec::new();
        m.for_each_match(&n, |h| out.push((h.start, h.len, h.payload)));
        out
    }

    #[test]
    fn whole_words_and_multi_word_phrases() {
        let mut m = PhraseMatcher::new();
        m.add("agent", 1).unwrap();
        m.add("real person", 2).unwrap();
        assert_eq!(all(&m, "agents are here"), vec![]);
        assert_eq!(all(&m, "an agent please"), vec![(1, 1, 1)]);
        assert_eq!(all(&m, "a REAL person!"), vec![(1, 2, 2)]);
        assert_eq!(all(&m, "a real"), vec![]);
    }

    #[test]
    fn alternatives_wildcards_and_anchors() {
        let mut m = PhraseMatcher::new();
        assert_eq!(m.add("speak|talk to a|an person|human", 1).unwrap(), 8);
        m.add("how much does * cost", 2).unwrap();
        m.add("^no$", 3).unwrap();
        m.add("you don't understand", 4).unwrap();
        assert_eq!(m.add("fed up, sick|tired of, ^enough$", 5).unwrap(), 4);
        assert_eq!(all(&m, "can i talk to an human"), vec![(2, 4, 1)]);
        assert_eq!(all(&m, "how much does broadband cost"), vec![(0, 5, 2)]);
        assert_eq!(all(&m, "No."), vec![(0, 1, 3)]);
        assert_eq!(all(&m, "no thanks"), vec![]);
        assert_eq!(all(&m, "you dont understand"), vec![(0, 4, 4)]);
        assert_eq!(all(&m, "you do not understand"), vec![(0, 4, 4)]);
        assert_eq!(all(&m, "so fed up and tired of it"), vec![(1, 2, 5), (4, 2, 5)]);
        assert_eq!(all(&m, "enough"), vec![(0, 1, 5)]);
        assert_eq!(all(&m, "had enough"), vec![]);
    }

    #[test]
    fn longest_match_wins_without_overlap() {
        let mut m = PhraseMatcher::new();
        m.add("not working", 1).unwrap();
        m.add("still not working", 2).unwrap();
        m.add("working", 3).unwrap();
        let n = Normalized::new("its still not working working");
        let mut out = Vec::new();
        m.for_each_longest(&n, |h| out.push(h.payload));
        assert_eq!(out, vec![2, 3]);
    }

    #[test]
    fn bad_patterns_are_typed_errors() {
        let mut m = PhraseMatcher::new();
        assert!(matches!(m.add("  !! ", 0), Err(PatternError::Empty(_))));
        assert!(matches!(m.add("a|| b", 0), Err(PatternError::EmptyAlternative(_))));
        assert!(matches!(m.add("* cost", 0), Err(PatternError::LeadingWildcard(_))));
        assert!(matches!(m.add("ok, ,", 0), Err(PatternError::Empty(_))));
        let big = "a|b|c|d|e ".repeat(5);
        assert!(matches!(m.add(&big, 0), Err(PatternError::TooManyVariants(_))));
        let long = "word ".repeat(MAX_PHRASE_WORDS + 1);
        assert!(matches!(m.add(&long, 0), Err(PatternError::TooLong(_))));
        assert!(m.is_empty());
    }
}
