//! Speech-recognition text normalisation, shared by the sentiment scorer and
//! the trackers.
//!
//! Transcripts arrive lower case, without punctuation and without apostrophes
//! ("im not happy its still not working dont"), while typed or punctuated text
//! ("I'm NOT happy!") must land on the same words. [`Normalized`] turns both
//! into one canonical token stream:
//!
//! - lower case; apostrophes removed; every other non-alphanumeric character
//!   separates words ("sign-up" → "sign up");
//! - contractions expanded, with or without their apostrophe: "dont" and
//!   "don't" → "do not", "cant" → "can not", "im" → "i am", "its" → "it is";
//!   "ill" → "i will" and "id" → "i would" only where the context says so
//!   ("ill call back" but "i feel ill"; "id like" but "my agent id");
//! - an apostrophe split off by recognition ("don t") is joined back;
//! - ordinals written as digits become words ("3rd" → "third").
//!
//! Every token remembers which whitespace-separated word of the original text
//! it came from, so callers can map matches back to the raw text.

/// Words that negate what follows (after contraction expansion).
pub const NEGATORS: &[&str] =
    &["not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without", "nowhere"];

/// True when `word` (a normalised token) negates what follows.
pub fn is_negator(word: &str) -> bool {
    NEGATORS.contains(&word)
}

/// How many words before a phrase a negator still negates it (as in VADER).
pub const NEGATION_WINDOW: usize = 3;

/// Words that end the reach of a negator ("i dont care just get me an agent").
pub const CLAUSE_BREAKS: &[&str] = &["but", "just", "and", "so", "because", "then", "please", "instead", "only"];

/// Words that, right after a negator, make it a question or an answer rather
/// than a negation ("cant i talk to someone", "no i want an agent").
const QUESTION_SUBJECTS: &[&str] = &["i", "you", "we", "they", "he", "she", "someone", "somebody", "anyone", "anybody"];

/// True when the phrase starting at token `start` is negated: a negator
/// within [`NEGATION_WINDOW`] words before it, not cut off by a clause break,
/// and not a question ("why can not i …") or a bare answer ("no i …").
pub fn negated_before(text: &Normalized, start: usize) -> bool {
    let lo = start.saturating_sub(NEGATION_WINDOW);
    for j in (lo..start).rev() {
        let w = text.word(j);
        if CLAUSE_BREAKS.contains(&w) {
            return false;
        }
        // "no" negates only the word right after it ("no help"); further
        // away it is an answer ("no its still not working").
        if w == "no" && j + 1 != start {
            continue;
        }
        if is_negator(w) {
            return !QUESTION_SUBJECTS.contains(&text.word(j + 1));
        }
    }
    false
}

/// True when "no need" ends within [`NEGATION_WINDOW`] words before
/// `start`: "no need to put me through", "no need for an agent" decline what
/// follows. Apart from [`negated_before`], which the scorers share, so
/// scores do not move.
pub fn declined_before(text: &Normalized, start: usize) -> bool {
    (start.saturating_sub(NEGATION_WINDOW)..start).any(|j| j > 0 && text.word(j - 1) == "no" && text.word(j) == "need")
}

/// A normalised utterance: canonical lower-case tokens.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    buf: String,
    tokens: Vec<Tok>,
    raw_words: u32,
    fixes: Vec<RawFix>,
}

/// A rewrite of one whitespace-separated word of the original text that keeps
/// a general-language scorer from misreading speech-recognition forms
/// ("ill" meaning "I'll", "don t" meaning "don't").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFix {
    /// Index of the word in the original text (split on whitespace).
    pub raw: u32,
    /// Its replacement; `None` drops the word.
    pub replacement: Option<&'static str>,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    text: TokText,
    raw: u32,
}

#[derive(Debug, Clone, Copy)]
enum TokText {
    /// A range of the normalised buffer.
    Buf(u32, u32),
    /// A fixed word from an expansion.
    Word(&'static str),
}

/// Longest input considered, in bytes; the rest is ignored (utterances are
/// sentences, not documents).
pub const MAX_INPUT_BYTES: usize = 8 * 1024;

impl Normalized {
    /// Normalises `text`.
    pub fn new(text: &str) -> Self {
        let text = truncate_at_char_boundary(text, MAX_INPUT_BYTES);
        let mut basic = Basic::with_capacity(text.len());
        let mut raw_words = 0u32;
        for (raw, word) in text.split_whitespace().enumerate() {
            basic.push_raw_word(word, raw as u32);
            raw_words = raw as u32 + 1;
        }
        let mut out = Normalized {
            buf: basic.buf,
            tokens: Vec::with_capacity(basic.spans.len() + 4),
            raw_words,
            fixes: Vec::new(),
        };
        out.expand(&basic.spans);
        out
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The `i`-th token ("" past the end).
    pub fn word(&self, i: usize) -> &str {
        match self.tokens.get(i) {
            Some(t) => self.text_of(t.text),
            None => "",
        }
    }

    /// Index of the original whitespace-separated word token `i` came from.
    pub fn raw_index(&self, i: usize) -> Option<u32> {
        self.tokens.get(i).map(|t| t.raw)
    }

    /// Number of whitespace-separated words in the original text.
    pub fn raw_word_count(&self) -> u32 {
        self.raw_words
    }

    /// The tokens, in order.
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        self.tokens.iter().map(|t| self.text_of(t.text))
    }

    /// Rewrites of original words that a general-language scorer needs.
    pub fn raw_fixes(&self) -> &[RawFix] {
        &self.fixes
    }

    /// The tokens joined by single spaces.
    pub fn joined(&self) -> String {
        let mut s = String::with_capacity(self.buf.len() + 8);
        for (i, w) in self.words().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(w);
        }
        s
    }

    fn text_of(&self, t: TokText) -> &str {
        match t {
            TokText::Buf(a, b) => self.buf.get(a as usize..b as usize).unwrap_or(""),
            TokText::Word(w) => w,
        }
    }

    /// Second stage: expands contractions and joins split apostrophes.
    fn expand(&mut self, spans: &[(u32, u32, u32)]) {
        let word = |i: usize| -> &str {
            spans.get(i).and_then(|&(a, b, _)| self.buf.get(a as usize..b as usize)).unwrap_or("")
        };
        let mut tokens = Vec::with_capacity(spans.len() + 4);
        let mut fixes = Vec::new();
        let mut i = 0;
        while i < spans.len() {
            let (a, b, raw) = spans[i];
            let w = word(i);
            let prev = if i > 0 { word(i - 1) } else { "" };
            let next = word(i + 1);
            let push_words = |tokens: &mut Vec<Tok>, ws: &[&'static str]| {
                for w in ws {
                    tokens.push(Tok { text: TokText::Word(w), raw });
                }
            };
            // "don t" → "do not": an apostrophe recognition split off.
            if next == "t" {
                if let Some(exp) = split_negative(w) {
                    push_words(&mut tokens, exp.words);
                    let next_raw = spans[i + 1].2;
                    fixes.push(RawFix { raw, replacement: Some(exp.joined) });
                    if next_raw != raw {
                        fixes.push(RawFix { raw: next_raw, replacement: None });
                    }
                    i += 2;
                    continue;
                }
            }
            if let Some(exp) = expansion(w) {
                push_words(&mut tokens, exp);
            } else if w == "ill" && ill_means_i_will(prev, next, i == 0) {
                push_words(&mut tokens, &["i", "will"]);
                fixes.push(RawFix { raw, replacement: Some("I'll") });
            } else if w == "id" && ID_WOULD_NEXT.contains(&next) {
                push_words(&mut tokens, &["i", "would"]);
            } else if let Some(o) = ordinal(w) {
                push_words(&mut tokens, &[o]);
            } else {
                tokens.push(Tok { text: TokText::Buf(a, b), raw });
            }
            i += 1;
        }
        self.tokens = tokens;
        self.fixes = fixes;
    }
}

/// First stage: lower-cased alphanumeric runs, apostrophes removed.
struct Basic {
    buf: String,
    /// (start, end, raw word index)
    spans: Vec<(u32, u32, u32)>,
}

impl Basic {
    fn with_capacity(n: usize) -> Self {
        Basic { buf: String::with_capacity(n + 8), spans: Vec::with_capacity(n / 4 + 2) }
    }

    fn push_raw_word(&mut self, word: &str, raw: u32) {
        let mut start = self.buf.len();
        for c in word.chars() {
            if is_apostrophe(c) {
                continue;
            }
            if c.is_alphanumeric() {
                if c.is_ascii() {
                    self.buf.push(c.to_ascii_lowercase());
                } else {
                    self.buf.extend(c.to_lowercase());
                }
            } else {
                self.close(start, raw);
                start = self.buf.len();
            }
        }
        self.close(start, raw);
    }

    fn close(&mut self, start: usize, raw: u32) {
        if self.buf.len() > start {
            self.spans.push((start as u32, self.buf.len() as u32, raw));
        }
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{b4}' | '\u{2bc}')
}

fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Contractions, written without their apostrophe, and what they stand for.
/// "its" is read as "it is": harmless for the possessive, right for
/// "its not working".
fn expansion(w: &str) -> Option<&'static [&'static str]> {
    Some(match w {
        "dont" => &["do", "not"],
        "doesnt" => &["does", "not"],
        "didnt" => &["did", "not"],
        "isnt" => &["is", "not"],
        "arent" => &["are", "not"],
        "wasnt" => &["was", "not"],
        "werent" => &["were", "not"],
        "cant" | "cannot" => &["can", "not"],
        "wont" => &["will", "not"],
        "wouldnt" => &["would", "not"],
        "couldnt" => &["could", "not"],
        "shouldnt" => &["should", "not"],
        "havent" => &["have", "not"],
        "hasnt" => &["has", "not"],
        "hadnt" => &["had", "not"],
        "aint" => &["is", "not"],
        "mustnt" => &["must", "not"],
        "neednt" => &["need", "not"],
        "mightnt" => &["might", "not"],
        "shant" => &["shall", "not"],
        "im" => &["i", "am"],
        "ive" => &["i", "have"],
        "youre" => &["you", "are"],
        "youve" => &["you", "have"],
        "youll" => &["you", "will"],
        "youd" => &["you", "would"],
        "theyre" => &["they", "are"],
        "theyve" => &["they", "have"],
        "theyll" => &["they", "will"],
        "weve" => &["we", "have"],
        "thats" => &["that", "is"],
        "whats" => &["what", "is"],
        "wheres" => &["where", "is"],
        "whos" => &["who", "is"],
        "theres" => &["there", "is"],
        "heres" => &["here", "is"],
        "its" => &["it", "is"],
        "hes" => &["he", "is"],
        "shes" => &["she", "is"],
        "couldve" => &["could", "have"],
        "wouldve" => &["would", "have"],
        "shouldve" => &["should", "have"],
        "gonna" => &["going", "to"],
        "wanna" => &["want", "to"],
        "gotta" => &["got", "to"],
        "dunno" => &["do", "not", "know"],
        _ => return None,
    })
}

struct SplitNegative {
    words: &'static [&'static str],
    joined: &'static str,
}

/// "don" of "don t", and so on.
fn split_negative(w: &str) -> Option<SplitNegative> {
    let (words, joined): (&'static [&'static str], &'static str) = match w {
        "don" => (&["do", "not"], "don't"),
        "doesn" => (&["does", "not"], "doesn't"),
        "didn" => (&["did", "not"], "didn't"),
        "isn" => (&["is", "not"], "isn't"),
        "aren" => (&["are", "not"], "aren't"),
        "wasn" => (&["was", "not"], "wasn't"),
        "weren" => (&["were", "not"], "weren't"),
        "can" => (&["can", "not"], "can't"),
        "won" => (&["will", "not"], "won't"),
        "wouldn" => (&["would", "not"], "wouldn't"),
        "couldn" => (&["could", "not"], "couldn't"),
        "shouldn" => (&["should", "not"], "shouldn't"),
        "haven" => (&["have", "not"], "haven't"),
        "hasn" => (&["has", "not"], "hasn't"),
        "hadn" => (&["had", "not"], "hadn't"),
        _ => return None,
    };
    Some(SplitNegative { words, joined })
}

/// Words after which "ill" is the adjective ("i feel ill", "very ill").
const ILL_ADJECTIVE_PREV: &[&str] = &[
    "feel",
    "feeling",
    "felt",
    "feels",
    "am",
    "was",
    "been",
    "be",
    "is",
    "are",
    "were",
    "so",
    "very",
    "really",
    "quite",
    "too",
    "seriously",
    "critically",
    "terminally",
    "mentally",
    "fell",
    "fallen",
    "look",
    "looks",
    "looked",
    "get",
    "got",
    "getting",
    "gets",
    "an",
    "the",
    "of",
    "bit",
    "little",
];

/// Words after which "ill" starts a clause ("ok ill call back").
const CLAUSE_START_PREV: &[&str] = &[
    "then",
    "so",
    "and",
    "ok",
    "okay",
    "fine",
    "right",
    "yes",
    "yeah",
    "no",
    "but",
    "or",
    "well",
    "maybe",
    "guess",
    "think",
    "because",
    "if",
    "when",
    "oh",
    "sure",
    "um",
    "uh",
    "alright",
    "thanks",
    "now",
    "otherwise",
    "probably",
];

/// Verbs and adverbs that follow "ill" when it means "I'll".
const ILL_VERB_NEXT: &[&str] = &[
    "be",
    "call",
    "try",
    "wait",
    "do",
    "have",
    "just",
    "need",
    "take",
    "check",
    "go",
    "get",
    "give",
    "pay",
    "see",
    "hold",
    "come",
    "look",
    "ring",
    "phone",
    "leave",
    "switch",
    "cancel",
    "bring",
    "send",
    "let",
    "probably",
    "never",
    "definitely",
    "make",
    "put",
    "speak",
    "talk",
    "keep",
    "write",
    "email",
    "contact",
    "reset",
    "reinstall",
    "sort",
    "tell",
    "pop",
    "head",
    "drop",
    "find",
    "start",
    "stay",
    "think",
    "use",
    "report",
    "complain",
    "hang",
    "text",
    "sue",
    "move",
    "stop",
    "buy",
    "order",
    "pick",
    "read",
    "restart",
    "turn",
    "wait",
    "also",
    "still",
    "ask",
];

fn ill_means_i_will(prev: &str, next: &str, first: bool) -> bool {
    if ILL_ADJECTIVE_PREV.contains(&prev) {
        return false;
    }
    first || CLAUSE_START_PREV.contains(&prev) || ILL_VERB_NEXT.contains(&next)
}

/// What "id" is followed by when it means "I'd".
const ID_WOULD_NEXT: &[&str] = &[
    "like",
    "love",
    "prefer",
    "rather",
    "appreciate",
    "be",
    "have",
    "want",
    "hate",
    "say",
    "think",
    "really",
    "just",
    "rather",
    "also",
    "still",
    "never",
    "definitely",
];

fn ordinal(w: &str) -> Option<&'static str> {
    Some(match w {
        "1st" => "first",
        "2nd" => "second",
        "3rd" => "third",
        "4th" => "fourth",
        "5th" => "fifth",
        "6th" => "sixth",
        "7th" => "seventh",
        "8th" => "eighth",
        "9th" => "ninth",
        "10th" => "tenth",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Normalized::new(s).joined()
    }

    #[test]
    fn lower_cases_and_strips_punctuation_and_apostrophes() {
        assert_eq!(norm("I'd like to speak to a REAL person!"), "i would like to speak to a real person");
        assert_eq!(norm("id like to speak to a real person"), "i would like to speak to a real person");
        assert_eq!(norm("sign-up, please..."), "sign up please");
        assert_eq!(norm("It’s NOT working"), "it is not working");
    }

    #[test]
    fn expands_contractions_with_or_without_apostrophes() {
        for (a, b) in [
            ("dont", "do not"),
            ("don't", "do not"),
            ("didnt", "did not"),
            ("isnt", "is not"),
            ("wont", "will not"),
            ("can't", "can not"),
            ("cannot", "can not"),
            ("aint", "is not"),
            ("im", "i am"),
            ("its", "it is"),
            ("thats", "that is"),
        ] {
            assert_eq!(norm(a), b, "{a}");
        }
    }

    #[test]
    fn joins_apostrophes_split_off_by_recognition() {
        let n = Normalized::new("i don t want this");
        assert_eq!(n.joined(), "i do not want this");
        assert_eq!(
            n.raw_fixes(),
            &[RawFix { raw: 1, replacement: Some("don't") }, RawFix { raw: 2, replacement: None }]
        );
        assert_eq!(norm("I can t"), "i can not");
        assert_eq!(norm("a t shirt"), "a t shirt");
    }

    #[test]
    fn ill_and_id_follow_context() {
        assert_eq!(norm("ill call you back"), "i will call you back");
        assert_eq!(norm("ok ill wait then"), "ok i will wait then");
        assert_eq!(norm("i feel ill"), "i feel ill");
        assert_eq!(norm("she is very ill"), "she is very ill");
        assert_eq!(Normalized::new("ok ill wait").raw_fixes(), &[RawFix { raw: 1, replacement: Some("I'll") }]);
        assert_eq!(norm("my agent id is 4 7"), "my agent id is 4 7");
        assert_eq!(norm("id rather not"), "i would rather not");
    }

    #[test]
    fn ordinals_become_words() {
        assert_eq!(norm("the 3rd time"), "the third time");
    }

    #[test]
    fn tokens_map_back_to_raw_words() {
        let n = Normalized::new("ok,thanks  dont go");
        let raws: Vec<_> = (0..n.len()).map(|i| n.raw_index(i).unwrap()).collect();
        assert_eq!(n.joined(), "ok thanks do not go");
        assert_eq!(raws, vec![0, 0, 1, 1, 2]);
        assert_eq!(n.raw_word_count(), 3);
        assert_eq!(n.word(99), "");
    }

    #[test]
    fn negators() {
        assert!(is_negator("not") && is_negator("never") && !is_negator("now"));
    }

    #[test]
    fn negation_reach() {
        let at = |text: &str, word: &str| {
            let n = Normalized::new(text);
            let i = n.words().position(|w| w == word).unwrap();
            negated_before(&n, i)
        };
        assert!(at("i dont need an agent", "agent"));
        assert!(at("im not cancelling", "cancelling"));
        assert!(!at("i dont care just get an agent", "agent"));
        assert!(!at("why cant i talk to a person", "talk"));
        assert!(!at("no i want an agent", "want"));
        assert!(!at("not that i need one but an agent", "agent"));
        assert!(!at("never mind the bill and the long story agent", "agent"));
        assert!(!at("agent", "agent"));
        assert!(at("no agent", "agent"));
        assert!(!at("no its still not working", "still"));
    }

    #[test]
    fn odd_unicode_never_panics() {
        for s in [
            "",
            "   ",
            "\u{0}",
            "\u{202e}abc",
            "İSTANBUL ǅ ß ﬁ",
            "🙂🙂 don’t 😡",
            "'''",
            "t",
            "don",
            "can t t t",
            "a\u{301}\u{301}\u{301}",
            "ill",
            "ｆｕｌｌｗｉｄｔｈ",
        ] {
            let n = Normalized::new(s);
            let _ = n.joined();
        }
        let long = "é".repeat(MAX_INPUT_BYTES);
        assert!(Normalized::new(&long).joined().len() <= MAX_INPUT_BYTES * 2);
    }
}
