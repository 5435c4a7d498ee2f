//! PII redaction applied before text is stored (on by default,
//! `[storage] redact_pii`). The rule set:
//!
//! | what | rule | replaced by |
//! |---|---|---|
//! | card number | 13–19 digits (spaces or dashes between groups allowed) passing the Luhn check | `[card]` |
//! | US social security number | `ddd-dd-dddd`, `ddd dd dddd`, or exactly 9 digits | `[ssn]` |
//! | phone number | 10–15 digits, optional `+`, spaces, dashes, dots or parentheses between groups | `[phone]` |
//! | e-mail address | a word with `@` and a dot after it, or the spoken form `name at domain dot com` | `[email]` |
//!
//! Digit runs shorter than 9 (amounts, account suffixes, times) are kept.

use std::borrow::Cow;

const SPOKEN_TLDS: &[&str] = &["com", "net", "org", "edu", "gov", "io", "co", "uk", "us", "info", "biz"];

/// Redacts PII in `text`; borrows when there is nothing to redact.
pub fn redact(text: &str) -> Cow<'_, str> {
    let digits_done = redact_digit_runs(text);
    let emails_done = match redact_emails(&digits_done) {
        Cow::Borrowed(_) => None,
        Cow::Owned(s) => Some(s),
    };
    match (digits_done, emails_done) {
        (_, Some(e)) => Cow::Owned(e),
        (d, None) => d,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

fn classify(digits: &[u8], groups: &[usize]) -> Option<&'static str> {
    let n = digits.len();
    if (13..=19).contains(&n) && luhn(digits) {
        return Some("[card]");
    }
    if n == 9 && (groups == [3, 2, 4] || groups == [9]) {
        return Some("[ssn]");
    }
    if (10..=15).contains(&n) {
        return Some("[phone]");
    }
    None
}

/// Finds runs of digit groups joined by single separators and replaces the
/// ones that look like cards, SSNs or phone numbers.
fn redact_digit_runs(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let starts_run = bytes[i].is_ascii_digit()
            || (matches!(bytes[i], b'+' | b'(') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if !(starts_run && at_word_start) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = Vec::new();
        let mut groups = Vec::new();
        let mut group = 0;
        let mut end = i;
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                group += 1;
                j += 1;
                end = j;
            } else if matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+')
                && bytes.get(j + 1).is_some_and(|n| n.is_ascii_digit() || *n == b'(')
            {
                if group > 0 {
                    groups.push(group);
                    group = 0;
                }
                j += 1;
            } else if b == b')' && group > 0 {
                j += 1;
            } else {
                break;
            }
        }
        if group > 0 {
            groups.push(group);
        }
        let followed_by_word = bytes.get(end).is_some_and(|b| b.is_ascii_alphabetic());
        match classify(&digits, &groups).filter(|_| !followed_by_word) {
            Some(label) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push_str(label);
                copied = end;
                i = end;
            }
            None => i = end.max(i + 1),
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(text),
    }
}

fn is_written_email(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    match w.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }
        None => false,
    }
}

fn redact_emails(text: &str) -> Cow<'_, str> {
    let words: Vec<&str> = text.split(' ').collect();
    let lower: Vec<String> =
        words.iter().map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase()).collect();
    let mut changed = false;
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if is_written_email(words[i]) {
            out.push("[email]".into());
            changed = true;
            i += 1;
            continue;
        }
        // Spoken: <name> at <domain> dot <tld> (the tld may be followed by more "dot x").
        if i + 4 < words.len() + 1
            && lower.get(i + 1).is_some_and(|w| w == "at")
            && lower.get(i + 3).is_some_and(|w| w == "dot")
            && lower.get(i + 4).is_some_and(|w| SPOKEN_TLDS.contains(&w.as_str()))
            && !lower[i].is_empty()
            && !lower[i + 2].is_empty()
        {
            let mut j = i + 5;
            while lower.get(j).is_some_and(|w| w == "dot")
                && lower.get(j + 1).is_some_and(|w| SPOKEN_TLDS.contains(&w.as_str()))
            {
                j += 2;
            }
            out.push("[email]".into());
            changed = true;
            i = j;
            continue;
        }
        out.push(words[i].to_string());
        i += 1;
    }
    if changed {
        Cow::Owned(out.join(" "))
    } else {
        Cow::Borrowed(text)
    }
}

/// A write as it is stored: the caller's words redacted wherever they appear.
pub(crate) fn write_op(op: crate::journal::WriteOp) -> crate::journal::WriteOp {
    use crate::journal::WriteOp;
    match op {
        WriteOp::Transition(mut t) => {
            for r in &mut t.events {
                event(&mut r.event);
            }
            if let Some(s) = &mut t.session {
                s.state = session_state(&s.state);
            }
            WriteOp::Transition(t)
        }
        WriteOp::Webhook(mut w) => {
            w.body = webhook_body(&w.body);
            WriteOp::Webhook(w)
        }
        WriteOp::Insights { conversation_id, source, insights } => {
            WriteOp::Insights { conversation_id, source, insights: json_strings(insights) }
        }
    }
}

/// What a stored interim transcript says instead of its text.
const INTERIM: &str = "[interim]";

/// Fields of a saved session that quote what someone said: the caller's
/// utterances, the decision's trigger, tracker matches, and speak payloads of
/// unanswered commands (the agent's briefing repeats the trigger).
const SPEECH_FIELDS: &[&str] = &["text", "trigger_text", "trigger_phrase", "matched", "payload"];

fn redact_in_place(s: &mut String) {
    if let Cow::Owned(clean) = redact(s) {
        *s = clean;
    }
}

/// Redacts what a domain event quotes: utterances, what the IVR said back,
/// the decision's trigger and tracker matches.
fn event(event: &mut ivrx_core::session::DomainEvent) {
    use ivrx_core::session::DomainEvent;
    match event {
        DomainEvent::Utterance { text, .. } | DomainEvent::IvrSaid { text } => redact_in_place(text),
        DomainEvent::Decision { decision, .. } => {
            redact_in_place(&mut decision.trigger_text);
            if let Some(p) = &mut decision.trigger_phrase {
                redact_in_place(p);
            }
        }
        DomainEvent::Scored { trackers, .. } => {
            for hit in trackers {
                redact_in_place(&mut hit.matched);
            }
        }
        _ => {}
    }
}

/// Redacts the speech in a saved session (ids and numbers elsewhere are kept).
fn session_state(state: &str) -> String {
    use serde_json::Value;
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    match v {
                        Value::String(s) if SPEECH_FIELDS.contains(&k.as_str()) => redact_in_place(s),
                        _ => walk(v),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(state) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => state.to_string(),
    }
}

/// Redacts every string in a JSON value (an engine's topics and trackers quote the caller).
fn json_strings(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(redact(&s).into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(json_strings).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, json_strings(v))).collect()),
        other => other,
    }
}

/// Redacts the transcript inside a raw webhook body (the only free text a
/// webhook carries); other fields, such as phone numbers, are call metadata.
///
/// An interim transcript (`is_final: false`) is a partial copy of the final
/// one, and a number cut in the middle escapes the rules ("my card 4111"): its
/// text is not kept at all.
fn webhook_body(body: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) else { return redact(body).into_owned() };
    let interim = v.pointer("/data/payload/transcription_data/is_final") == Some(&serde_json::Value::Bool(false));
    let Some(t) = v.pointer_mut("/data/payload/transcription_data/transcript") else { return body.to_string() };
    let Some(text) = t.as_str() else { return body.to_string() };
    if interim {
        *t = serde_json::Value::String(INTERIM.into());
        return v.to_string();
    }
    match redact(text) {
        Cow::Borrowed(_) => body.to_string(),
        Cow::Owned(clean) => {
            *t = serde_json::Value::String(clean);
            v.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_ssns_phones_and_emails_are_redacted() {
        assert_eq!(redact("my card is 4111 1111 1111 1111 ok"), "my card is [card] ok");
        assert_eq!(redact("card 4111-1111-1111-1111"), "card [card]");
        assert_eq!(redact("ssn 123-45-6789 thanks"), "ssn [ssn] thanks");
        assert_eq!(redact("its 123 45 6789"), "its [ssn]");
        assert_eq!(redact("call me at +1 (555) 123-4567 please"), "call me at [phone] please");
        assert_eq!(redact("5551234567"), "[phone]");
        assert_eq!(redact("email jane.doe@example.com now"), "email [email] now");
        assert_eq!(redact("its jane at gmail dot com thanks"), "its [email] thanks");
        assert_eq!(redact("john at example dot co dot uk"), "[email]");
    }

    #[test]
    fn ordinary_numbers_and_words_are_kept() {
        for s in [
            "i paid 45 dollars on the 3rd",
            "account ending 1234",
            "at 10 30 am",
            "i was on hold for 45 minutes at home",
            "meet me at the office",
            "4111 1111 1111 1112 is not a valid card",
            "version 2.0.1",
        ] {
            assert!(matches!(redact(s), Cow::Borrowed(_)), "{s} became {}", redact(s));
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "+",
            "(",
            "1-",
            "-1",
            "@",
            "a@",
            "@b.c",
            "at dot com",
            "x at y dot",
            "١٢٣٤٥٦٧٨٩٠",
            "9".repeat(10_000).as_str(),
        ] {
            let _ = redact(s);
        }
    }
}
