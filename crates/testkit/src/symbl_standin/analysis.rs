//! The stand-in's "intelligence": deterministic and deliberately tiny.
//!
//! - Sentiment: a keyword table (below), a negator within the two preceding
//!   words flips a keyword's sign, the sum is clamped to -1..1 and rounded to
//!   three decimals. It does not use the local engine, so stand-in results do
//!   not move when the local scorer changes.
//! - Sentences: split after `.`, `?` or `!` followed by a space or the end, as
//!   Symbl splits text into messages.
//! - Topics: the most frequent words of four letters or more that are neither
//!   stop words nor sentiment keywords.
//! - Trackers: a vocabulary phrase matches a message containing it as whole words
//!   (case-insensitive).

use std::collections::HashMap;

/// Sentiment keywords and their polarity.
pub const SENTIMENT_WORDS: &[(&str, f64)] = &[
    ("love", 0.7),
    ("great", 0.6),
    ("excellent", 0.8),
    ("awesome", 0.7),
    ("wonderful", 0.7),
    ("perfect", 0.6),
    ("happy", 0.5),
    ("helpful", 0.5),
    ("appreciate", 0.5),
    ("good", 0.4),
    ("nice", 0.4),
    ("glad", 0.4),
    ("thanks", 0.3),
    ("thank", 0.3),
    ("worst", -0.9),
    ("terrible", -0.8),
    ("awful", -0.8),
    ("horrible", -0.8),
    ("hate", -0.8),
    ("useless", -0.7),
    ("angry", -0.6),
    ("frustrated", -0.6),
    ("frustrating", -0.6),
    ("ridiculous", -0.6),
    ("disappointed", -0.6),
    ("bad", -0.5),
    ("annoyed", -0.5),
    ("upset", -0.5),
    ("wrong", -0.4),
    ("broken", -0.4),
    ("problem", -0.3),
    ("cancel", -0.3),
];

const NEGATORS: &[&str] =
    &["not", "never", "no", "dont", "don't", "isnt", "isn't", "cant", "can't", "wont", "won't", "didnt", "didn't"];

const STOP_WORDS: &[&str] = &[
    "about", "after", "again", "also", "been", "before", "being", "could", "does", "doing", "done", "from", "have",
    "here", "into", "just", "know", "like", "make", "more", "much", "need", "only", "over", "please", "really",
    "should", "some", "still", "than", "that", "their", "them", "then", "there", "these", "they", "thing", "this",
    "those", "very", "want", "were", "what", "when", "where", "which", "while", "will", "with", "would", "your",
    "yours", "okay", "yeah", "because", "going", "right", "today",
];

/// Lower-case words (letters, digits, apostrophes).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Polarity of a text, -1..1, from the keyword table.
pub fn polarity(text: &str) -> f64 {
    let words = words(text);
    let mut total = 0.0;
    for (i, w) in words.iter().enumerate() {
        let Some(&(_, value)) = SENTIMENT_WORDS.iter().find(|(k, _)| k == w) else { continue };
        let negated = words[i.saturating_sub(2)..i].iter().any(|p| NEGATORS.contains(&p.as_str()));
        total += if negated { -value } else { value };
    }
    (total.clamp(-1.0, 1.0) * 1000.0).round() / 1000.0
}

/// Symbl's suggested label for a polarity.
pub fn suggested(polarity: f64) -> &'static str {
    if polarity < -0.3 {
        "negative"
    } else if polarity > 0.3 {
        "positive"
    } else {
        "neutral"
    }
}

/// Splits text into sentences.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '?' | '!') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            push_sentence(&mut out, &current);
            current.clear();
        }
    }
    push_sentence(&mut out, &current);
    out
}

fn push_sentence(out: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s.to_string());
    }
}

/// A topic found in messages.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundTopic {
    /// The keyword.
    pub text: String,
    /// Frequency relative to the most frequent topic, 0..1.
    pub score: f64,
    /// Messages (by index) that contain it.
    pub messages: Vec<usize>,
}

/// How often a keyword occurs, when it was first seen, and in which messages.
struct Tally {
    count: usize,
    first_seen: usize,
    messages: Vec<usize>,
}

/// Up to five topics of these texts, most frequent first.
pub fn topics(texts: &[&str]) -> Vec<FoundTopic> {
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for (i, text) in texts.iter().enumerate() {
        for w in words(text) {
            if w.chars().count() < 4
                || w.contains('\'')
                || STOP_WORDS.contains(&w.as_str())
                || SENTIMENT_WORDS.iter().any(|(k, _)| *k == w)
            {
                continue;
            }
            let next = tallies.len();
            let tally = tallies.entry(w).or_insert_with(|| Tally { count: 0, first_seen: next, messages: Vec::new() });
            tally.count += 1;
            if tally.messages.last() != Some(&i) {
                tally.messages.push(i);
            }
        }
    }
    let mut ranked: Vec<(String, Tally)> = tallies.into_iter().collect();
    ranked.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.1.first_seen.cmp(&b.1.first_seen)));
    let top = ranked.first().map(|r| r.1.count).unwrap_or(1) as f64;
    ranked
        .into_iter()
        .take(5)
        .map(|(text, t)| FoundTopic {
            text,
            score: ((t.count as f64 / top) * 1000.0).round() / 1000.0,
            messages: t.messages,
        })
        .collect()
}

/// Where `phrase` occurs in `text` as whole words (case-insensitive): the
/// character offset of the match.
pub fn find_phrase(text: &str, phrase: &str) -> Option<usize> {
    let phrase_words = words(phrase);
    if phrase_words.is_empty() {
        return None;
    }
    let lower = text.to_lowercase();
    let needle = phrase_words.join(" ");
    let haystack_words = words(text);
    let found = haystack_words.windows(phrase_words.len()).any(|w| w == phrase_words.as_slice());
    if !found {
        return None;
    }
    Some(lower.find(&needle).map(|b| lower[..b].chars().count()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polarity_uses_the_table_with_negation() {
        assert_eq!(polarity("I love this"), 0.7);
        assert_eq!(polarity("this is terrible"), -0.8);
        assert_eq!(polarity("this is not good"), -0.4);
        assert_eq!(polarity("terrible awful horrible"), -1.0);
        assert_eq!(polarity("I would like to check my balance"), 0.0);
        assert_eq!(suggested(-0.31), "negative");
        assert_eq!(suggested(0.3), "neutral");
    }

    #[test]
    fn sentences_split_like_symbl() {
        assert_eq!(sentences("I hate this. Get me an agent! Now?"), vec!["I hate this.", "Get me an agent!", "Now?"]);
        assert_eq!(sentences("It costs $3.50 today"), vec!["It costs $3.50 today"]);
        assert!(sentences("  ... ").is_empty());
    }

    #[test]
    fn topics_are_frequent_keywords() {
        let t = topics(&["My billing statement is wrong.", "The billing department hung up.", "Fix my statement"]);
        assert_eq!(t[0].text, "billing");
        assert_eq!(t[0].score, 1.0);
        assert_eq!(t[0].messages, vec![0, 1]);
        assert_eq!(t[1].text, "statement");
        assert!(t.iter().all(|t| t.text != "wrong"));
    }

    #[test]
    fn phrases_match_whole_words() {
        assert_eq!(find_phrase("Let me talk to an Agent please", "agent"), Some(18));
        assert_eq!(find_phrase("real person now", "real person"), Some(0));
        assert_eq!(find_phrase("management", "agent"), None);
    }
}
