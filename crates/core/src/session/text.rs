//! Small text helpers for the IVR: phrase matching on speech-recognition text
//! and the sentences the IVR says.

use crate::policy::Decision;

/// Lower-cases and keeps letters, digits and single spaces; apostrophes vanish
/// ("That's all!" → "thats all"), other punctuation becomes a space.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars() {
        if c == '\'' || c == '’' {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// True when `phrase` occurs in the normalised `text` on word boundaries.
pub fn contains_phrase(normalized_text: &str, phrase: &str) -> bool {
    let phrase = normalize(phrase);
    if phrase.is_empty() {
        return false;
    }
    let t = format!(" {normalized_text} ");
    t.contains(&format!(" {phrase} "))
}

/// What the agent hears before the caller is bridged in (warm transfer).
pub fn briefing(decision: &Decision, topic: Option<&str>) -> String {
    let mut s = format!("Incoming {} call. {}.", decision.queue, capitalise(decision.reason.describe()));
    if let Some(topic) = topic {
        s.push_str(&format!(" Topic: {topic}."));
    }
    if !decision.trigger_text.is_empty() {
        let said: String = decision.trigger_text.chars().take(200).collect();
        s.push_str(&format!(" They said: {said}."));
    }
    s.push_str(" Connecting you now.");
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_asr_and_typed_text_alike() {
        assert_eq!(normalize("That's ALL, thanks!"), "thats all thanks");
        assert_eq!(normalize("  my   bill?? "), "my bill");
        assert_eq!(normalize("café—ok"), "café ok");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn phrases_match_on_word_boundaries() {
        let t = normalize("i have a question about my billing statement");
        assert!(contains_phrase(&t, "billing"));
        assert!(!contains_phrase(&t, "bill"));
        assert!(contains_phrase(&t, "My Billing"));
        assert!(!contains_phrase(&t, ""));
    }
}
