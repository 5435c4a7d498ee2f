//! The call flow's configuration, as plain data: the IVR (`[ivr]`), the agent
//! queues (`[queues]`) and how transfers are made (`[transfer]`). These are
//! sections of `ivrx.toml`; the `ivrx` package reads the file, and each section
//! checks itself (`validate`).

use std::collections::BTreeMap;

use ivrx_telnyx::commands::SipHeader;
use ivrx_telnyx::spec::{suggest, tables::SPEAK_LANGUAGES};
use serde::{Deserialize, Serialize};

use crate::policy::Decision;

/// `[ivr]`: what the caller hears and can press.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IvrConfig {
    /// The IVR's phone number (`IVRX_NUMBER`), used as caller id for agent calls.
    pub number: String,
    /// Text-to-speech voice (`female`, `male`, or e.g. `AWS.Polly.Joanna-Neural`).
    pub voice: String,
    /// Language Telnyx speaks in (`en-US`, `fr-FR`, …; Telnyx's closed list), also
    /// the transcription language unless the engine's section sets one.
    pub language: String,
    /// Said first.
    pub greeting: String,
    /// The menu, said after the greeting and when re-prompting.
    pub menu_prompt: String,
    /// The menu entries (0 is always the operator).
    pub menu: Vec<MenuItem>,
    /// Said after a caller utterance that needs no other answer (neutral or positive).
    pub acknowledgement: String,
    /// Said after a negative utterance that did not trigger a transfer.
    pub empathy: String,
    /// Said after a positive utterance.
    pub positive_reply: String,
    /// Said when the caller has been silent for `idle_timeout_secs`.
    pub reprompt: String,
    /// Said before hanging up.
    pub goodbye: String,
    /// Seconds of silence before a re-prompt.
    pub idle_timeout_secs: u64,
    /// Re-prompts before the call is ended politely.
    pub max_reprompts: u32,
    /// Phrases after which the IVR says goodbye and hangs up.
    pub closing_phrases: Vec<String>,
    /// Speech recognition engine: `Google` (default), `Telnyx`, `Deepgram` or
    /// `Azure`; its settings are under `[transcription.<engine>]`.
    pub transcription_engine: String,
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    /// The key to press.
    pub digit: String,
    /// A short name ("billing").
    pub label: String,
    /// Spoken words that choose this entry.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// A self-service answer to say.
    #[serde(default)]
    pub say: Option<String>,
    /// A queue to transfer to.
    #[serde(default)]
    pub queue: Option<String>,
}

impl Default for IvrConfig {
    fn default() -> Self {
        Self {
            number: "+18005550100".into(),
            voice: "female".into(),
            language: "en-US".into(),
            greeting: "Thank you for calling Acme Communications.".into(),
            menu_prompt: "For billing, press 1. For technical support, press 2. For sales, press 3. \
                          For an operator, press 0. Or just tell me how I can help."
                .into(),
            menu: vec![
                MenuItem {
                    digit: "1".into(),
                    label: "billing".into(),
                    keywords: vec![
                        "bill".into(),
                        "billing".into(),
                        "invoice".into(),
                        "payment".into(),
                        "charge".into(),
                    ],
                    say: Some(
                        "Your latest bill is in the Acme app under Account, Billing. Payments made today \
                         show within one business day. Is there anything else I can help with?"
                            .into(),
                    ),
                    queue: None,
                },
                MenuItem {
                    digit: "2".into(),
                    label: "technical support".into(),
                    keywords: vec![
                        "internet".into(),
                        "router".into(),
                        "outage".into(),
                        "wifi".into(),
                        "connection".into(),
                    ],
                    say: Some(
                        "Please restart your router by unplugging it for thirty seconds. If the light stays \
                         red, there may be an outage in your area. Is there anything else I can help with?"
                            .into(),
                    ),
                    queue: None,
                },
                MenuItem {
                    digit: "3".into(),
                    label: "sales".into(),
                    keywords: vec![],
                    say: None,
                    queue: Some("sales".into()),
                },
            ],
            acknowledgement: "Thanks. Could you tell me a little more?".into(),
            empathy: "I'm sorry about that. Let me see what I can do. Could you tell me a little more?".into(),
            positive_reply: "Great. Is there anything else I can help you with?".into(),
            reprompt: "Are you still there?".into(),
            goodbye: "Thank you for calling Acme. Goodbye.".into(),
            idle_timeout_secs: 20,
            max_reprompts: 2,
            closing_phrases: [
                "goodbye",
                "bye",
                "thats all",
                "that is all",
                "thats everything",
                "that is everything",
                "nothing else",
                "no thats it",
                "im all set",
                "have a nice day",
                "have a good day",
            ]
            .map(String::from)
            .to_vec(),
            transcription_engine: "Google".into(),
        }
    }
}

/// One queue of agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Agent numbers (or SIP URIs), tried in order.
    pub agents: Vec<String>,
    /// Said to the caller while connecting (overrides `transfer.bridging_line`).
    #[serde(default)]
    pub bridging_line: Option<String>,
}

/// The queues of the default configuration: `support` (two agents) and `sales`.
pub fn default_queues() -> BTreeMap<String, QueueConfig> {
    let mut q = BTreeMap::new();
    q.insert(
        "support".into(),
        QueueConfig { agents: vec!["+18005550201".into(), "+18005550202".into()], bridging_line: None },
    );
    q.insert("sales".into(), QueueConfig { agents: vec!["+18005550301".into()], bridging_line: None });
    q
}

/// How a transfer is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMode {
    /// Dial the agent, brief them, then bridge the caller.
    Warm,
    /// Telnyx `transfer` command: the agent's phone rings with the caller attached.
    Cold,
}

/// `[transfer]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferConfig {
    /// `warm` (default) or `cold`.
    pub mode: TransferMode,
    /// Seconds an agent's phone rings before the next agent is tried (5–600).
    pub ring_timeout_secs: u32,
    /// Said to the caller when the transfer starts.
    pub bridging_line: String,
    /// Hold music played to the caller while an agent is reached (warm mode).
    pub hold_music_url: String,
    /// Said to the caller when no agent could be reached.
    pub failure_line: String,
    /// The caller's context sent to the agent's phone as SIP headers.
    pub headers: ContextHeaders,
}

/// `[transfer.headers]`: the context the agent's leg is dialled with, as
/// Telnyx `custom_headers` (a softphone or CRM shows them when it rings).
/// A header whose name is empty is not sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextHeaders {
    /// Send them at all.
    pub enabled: bool,
    /// The conversation id.
    pub conversation_id: String,
    /// The decision's reason (`asked_for_human`, …).
    pub reason: String,
    /// What triggered it: a tracker phrase; with PII redaction off, the
    /// caller's words when no phrase matched.
    pub trigger: String,
    /// The triggering utterance's score, two decimals.
    pub score: String,
    /// The queue.
    pub queue: String,
    /// Longest value sent, in characters (longer ones are cut).
    pub max_value_chars: usize,
}

impl Default for ContextHeaders {
    fn default() -> Self {
        Self {
            enabled: true,
            conversation_id: "X-Ivrx-Conversation-Id".into(),
            reason: "X-Ivrx-Reason".into(),
            trigger: "X-Ivrx-Trigger".into(),
            score: "X-Ivrx-Score".into(),
            queue: "X-Ivrx-Queue".into(),
            max_value_chars: 128,
        }
    }
}

impl ContextHeaders {
    /// The headers for a transfer of `conversation_id` decided by `decision`.
    /// With `redact_pii` no word of the caller's is sent: the trigger is a
    /// tracker's phrase (from the configuration) or left out.
    pub fn for_decision(&self, conversation_id: &str, decision: &Decision, redact_pii: bool) -> Vec<SipHeader> {
        if !self.enabled {
            return Vec::new();
        }
        let trigger = match (&decision.trigger_phrase, redact_pii) {
            (Some(phrase), _) => Some(phrase.clone()),
            (None, false) => Some(decision.trigger_text.clone()),
            (None, true) => None,
        };
        let values = [
            (&self.conversation_id, Some(conversation_id.to_string())),
            (&self.reason, Some(decision.reason.as_str().to_string())),
            (&self.trigger, trigger),
            (&self.score, Some(format!("{:.2}", decision.numbers.score))),
            (&self.queue, Some(decision.queue.clone())),
        ];
        let fit = |v: &str| -> String {
            v.chars().filter(|c| !c.is_control()).take(self.max_value_chars).collect::<String>().trim().to_string()
        };
        values
            .into_iter()
            .filter(|(name, _)| !name.is_empty())
            .filter_map(|(name, value)| Some(SipHeader { name: name.clone(), value: fit(&value?) }))
            .filter(|h| !h.value.is_empty())
            .collect()
    }

    /// Checks the names (Telnyx takes custom headers named `X-…`) and the length.
    pub fn validate(&self) -> Result<(), SettingError> {
        let names = [
            ("conversation_id", &self.conversation_id),
            ("reason", &self.reason),
            ("trigger", &self.trigger),
            ("score", &self.score),
            ("queue", &self.queue),
        ];
        for (i, (field, name)) in names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let key = format!("transfer.headers.{field}");
            let token = name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let x = name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-"));
            if !(x && name.len() > 2 && token) {
                return Err(invalid(
                    key,
                    format!(
                        "{name:?} cannot be a custom SIP header: use X- and letters, digits or dashes \
                         (at most 64), e.g. \"X-Ivrx-Reason\", or \"\" to leave it out"
                    ),
                ));
            }
            if names[..i].iter().any(|(_, other)| other.eq_ignore_ascii_case(name)) {
                return Err(invalid(key, format!("{name:?} is used twice: give each header its own name")));
            }
        }
        if !(8..=512).contains(&self.max_value_chars) {
            return Err(invalid("transfer.headers.max_value_chars", "must be between 8 and 512"));
        }
        Ok(())
    }
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            mode: TransferMode::Warm,
            ring_timeout_secs: 20,
            bridging_line: "I'm connecting you with a member of our team now. Please hold.".into(),
            hold_music_url: "https://assets.ivrx.dev/hold-music.mp3".into(),
            failure_line: "I'm sorry, nobody is available right now. I'm still here to help.".into(),
            headers: ContextHeaders::default(),
        }
    }
}

/// `[queue]`: when no agent of a transfer can take the call, the caller
/// waits in a Telnyx call queue (`enqueue`) instead of going back to the IVR:
/// told their place in line, with hold audio, while the agents are tried
/// again after every `announce_every_plays` plays of it; the first agent who
/// answers is bridged with the head of the queue (`bridge` with `queue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaitQueueConfig {
    /// The Telnyx queue's name (`queue_name`), created on first use.
    pub name: String,
    /// Longest wait in the queue, seconds (`max_wait_time_secs`): Telnyx then
    /// takes the call out (`call.dequeued`, reason `timeout`).
    pub max_wait_secs: u32,
    /// Most callers waiting at once (`max_size`, fixed when Telnyx creates the queue).
    pub max_size: u32,
    /// Hold audio (default: `transfer.hold_music_url`).
    pub hold_audio_url: Option<String>,
    /// Plays of the hold audio between two announcements (and agent rounds):
    /// the announcement interval is this many times the audio's length.
    pub announce_every_plays: u32,
    /// Said when the caller joins the queue; `{position}` is their place in line.
    pub position_line: String,
    /// Said after every `announce_every_plays` plays while the caller waits.
    pub waiting_line: String,
    /// Said when the longest wait has passed and the caller is back with the IVR.
    pub timeout_line: String,
    /// `[queue.callback]`: after the longest wait the caller is offered a
    /// callback (absent: they are back with the IVR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackConfig>,
}

/// `[queue.callback]`: after the longest wait in the queue the caller is
/// offered a callback. They accept with a key (`accept_keys`) or by saying
/// one of `accept_phrases`; ivrx records it, texts them `sms_text` and says
/// `accepted_line` before hanging up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackConfig {
    /// Keys that accept the callback (any one of them), e.g. `"9"`; not a key of the IVR menu.
    pub accept_keys: String,
    /// Words that accept it when the caller says them (lower case).
    pub accept_phrases: Vec<String>,
    /// Said after `queue.timeout_line`, before the menu.
    pub offer_line: String,
    /// Said once the callback is accepted; then the call ends.
    pub accepted_line: String,
    /// The confirmation SMS; `{number}` is the number called back.
    pub sms_text: String,
    /// Seconds between two rounds of agents for a pending callback.
    pub retry_secs: u32,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            accept_keys: "9".into(),
            accept_phrases: vec!["call me back".into(), "callback".into()],
            offer_line: "Press 9 or say call me back, and we will call you back as soon as an agent is free.".into(),
            accepted_line: "Thank you. We will call you back as soon as an agent is free. Goodbye.".into(),
            sms_text: "We will call you back at {number} as soon as an agent is free.".into(),
            retry_secs: 30,
        }
    }
}

impl CallbackConfig {
    /// Checks the section; `menu_keys` are the IVR menu's keys, which a
    /// callback key must not take.
    pub fn validate(&self, menu_keys: &str) -> Result<(), SettingError> {
        let keys = self.accept_keys.as_str();
        let keypad = |c: char| c.is_ascii_digit() || c == '*' || c == '#';
        if keys.is_empty() || keys.len() > 4 || !keys.chars().all(keypad) {
            return Err(invalid(
                "queue.callback.accept_keys",
                "must be 1 to 4 keypad keys (0-9, * or #) the menu does not use, e.g. \"9\"",
            ));
        }
        if let Some(k) = keys.chars().find(|k| menu_keys.contains(*k)) {
            return Err(invalid(
                "queue.callback.accept_keys",
                format!("{k:?} is a key of the IVR menu (ivr.menu): choose a key the menu does not use, e.g. \"9\""),
            ));
        }
        if self.accept_phrases.is_empty() || self.accept_phrases.iter().any(|p| p.trim().is_empty()) {
            return Err(invalid(
                "queue.callback.accept_phrases",
                "list at least one phrase, none empty, e.g. [\"call me back\"]",
            ));
        }
        check_spoken("queue.callback.offer_line", &self.offer_line)?;
        check_spoken("queue.callback.accepted_line", &self.accepted_line)?;
        if !(1..=3600).contains(&self.retry_secs) {
            return Err(invalid("queue.callback.retry_secs", "must be between 1 and 3600 seconds, e.g. 30"));
        }
        if self.sms_text.trim().is_empty() || self.sms_text.chars().count() > 1600 {
            return Err(invalid("queue.callback.sms_text", "must be 1 to 1600 characters: the SMS the caller gets"));
        }
        Ok(())
    }

    /// The key or phrase in `heard` (keys pressed, or words said) that
    /// accepts the callback.
    pub fn accepts(&self, pressed: Option<&str>, said: Option<&str>) -> Option<String> {
        if let Some(d) = pressed.filter(|d| !d.is_empty() && d.chars().all(|c| self.accept_keys.contains(c))) {
            return Some(format!("pressed {d}"));
        }
        let said = said?.to_lowercase();
        let words: String = said.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
        let words = format!(" {} ", words.split_whitespace().collect::<Vec<_>>().join(" "));
        self.accept_phrases
            .iter()
            .find(|p| words.contains(&format!(" {} ", p.trim().to_lowercase())))
            .map(|p| format!("said {:?}", p.trim()))
    }
}

impl Default for WaitQueueConfig {
    fn default() -> Self {
        Self {
            name: "ivrx-waiting".into(),
            max_wait_secs: 300,
            max_size: 100,
            hold_audio_url: None,
            announce_every_plays: 2,
            position_line: "All our agents are busy. You are number {position} in line. Please stay on the line."
                .into(),
            waiting_line: "Thank you for waiting. All our agents are still busy; you keep your place in line.".into(),
            timeout_line: "I'm sorry, nobody could take your call in time.".into(),
            callback: None,
        }
    }
}

impl WaitQueueConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), SettingError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 64 || name != self.name {
            return Err(invalid(
                "queue.name",
                "give the Telnyx queue a name of 1 to 64 characters, e.g. \"ivrx-waiting\"",
            ));
        }
        if !(10..=3600).contains(&self.max_wait_secs) {
            return Err(invalid("queue.max_wait_secs", "must be between 10 and 3600 seconds, e.g. 300"));
        }
        if !(1..=1000).contains(&self.max_size) {
            return Err(invalid("queue.max_size", "must be between 1 and 1000 callers (Telnyx's default is 100)"));
        }
        if !(1..=100).contains(&self.announce_every_plays) {
            return Err(invalid("queue.announce_every_plays", "must be between 1 and 100 plays of the hold audio"));
        }
        if let Some(url) = &self.hold_audio_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("queue.hold_audio_url", "must be an http:// or https:// URL Telnyx can fetch"));
            }
        }
        check_spoken("queue.position_line", &self.position_line)?;
        check_spoken("queue.waiting_line", &self.waiting_line)?;
        check_spoken("queue.timeout_line", &self.timeout_line)
    }

    /// The line said on joining the queue at `position`.
    pub fn position_line_for(&self, position: Option<u32>) -> String {
        match position {
            Some(p) => self.position_line.replace("{position}", &p.to_string()),
            None => self.position_line.replace(" You are number {position} in line.", "").replace("{position}", "a"),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    /// Dotted key, e.g. `ivr.menu[2].queue`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> SettingError {
    SettingError { key: key.into(), message: message.into() }
}

/// Checks a line the caller hears.
fn check_spoken(key: &str, text: &str) -> Result<(), SettingError> {
    if text.trim().is_empty() {
        return Err(invalid(key, "must not be empty: it is what the caller hears"));
    }
    if text.chars().count() > 3000 {
        return Err(invalid(key, "Telnyx speaks at most 3000 characters"));
    }
    Ok(())
}

impl IvrConfig {
    /// Checks the section, and its menu against the `queues` it transfers to
    /// and the policy's `operator_digit`, which no entry may take.
    pub fn validate(&self, queues: &BTreeMap<String, QueueConfig>, operator_digit: &str) -> Result<(), SettingError> {
        if self.number.trim().is_empty() {
            return Err(invalid("ivr.number", "set the IVR's phone number in E.164 form, e.g. \"+18005550100\""));
        }
        if !SPEAK_LANGUAGES.contains(&self.language.as_str()) {
            return Err(invalid(
                "ivr.language",
                format!(
                    "{:?} is not a language Telnyx speaks: use one of {} ({} in all, e.g. \"en-US\", \"es-MX\", \"fr-FR\")",
                    self.language,
                    suggest(&self.language, SPEAK_LANGUAGES),
                    SPEAK_LANGUAGES.len()
                ),
            ));
        }
        if !ivrx_telnyx::commands::is_valid_voice(&self.voice) {
            return Err(invalid(
                "ivr.voice",
                format!(
                    "{:?} is not a Telnyx voice: use \"female\", \"male\" or e.g. \"AWS.Polly.Joanna-Neural\"",
                    self.voice
                ),
            ));
        }
        for (key, text) in
            [("ivr.greeting", &self.greeting), ("ivr.menu_prompt", &self.menu_prompt), ("ivr.goodbye", &self.goodbye)]
        {
            check_spoken(key, text)?;
        }
        if self.idle_timeout_secs == 0 || self.idle_timeout_secs > 600 {
            return Err(invalid("ivr.idle_timeout_secs", "must be between 1 and 600"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, item) in self.menu.iter().enumerate() {
            let key = format!("ivr.menu[{i}]");
            let valid_digit =
                item.digit.len() == 1 && item.digit.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#');
            if !valid_digit {
                return Err(invalid(format!("{key}.digit"), "must be one key: 1-9, * or #"));
            }
            if item.digit == operator_digit {
                return Err(invalid(
                    format!("{key}.digit"),
                    format!(
                        "{} is the operator digit (policy.operator_digit), reserved for the support queue",
                        item.digit
                    ),
                ));
            }
            if !seen.insert(item.digit.clone()) {
                return Err(invalid(format!("{key}.digit"), format!("digit {} is used twice", item.digit)));
            }
            match (&item.say, &item.queue) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        key,
                        "give either `say` (a self-service answer) or `queue` (a transfer), not both",
                    ))
                }
                (None, Some(q)) if !queues.contains_key(q) => {
                    return Err(invalid(format!("{key}.queue"), format!("no queue named {q:?} under [queues]")))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl QueueConfig {
    /// Checks the queue called `name`.
    pub fn validate(&self, name: &str) -> Result<(), SettingError> {
        if self.agents.is_empty() {
            return Err(invalid(format!("queues.{name}.agents"), "list at least one agent number"));
        }
        Ok(())
    }
}

impl TransferConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), SettingError> {
        check_spoken("transfer.bridging_line", &self.bridging_line)?;
        check_spoken("transfer.failure_line", &self.failure_line)?;
        if !(5..=600).contains(&self.ring_timeout_secs) {
            return Err(invalid("transfer.ring_timeout_secs", "must be between 5 and 600 (Telnyx's range)"));
        }
        self.headers.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicySnapshot, Reason};

    fn decision(phrase: Option<&str>) -> Decision {
        Decision {
            reason: Reason::Abuse,
            queue: "support".into(),
            trigger_index: 3,
            trigger_text: "my number is 555 123 4567 and this is crap\r\n".into(),
            trigger_phrase: phrase.map(str::to_string),
            tracker: None,
            numbers: PolicySnapshot { score: -0.734, ..PolicySnapshot::default() },
        }
    }

    #[test]
    fn context_headers_are_limited_and_carry_no_caller_words_when_redacting() {
        let h = ContextHeaders::default();
        let pairs = |v: Vec<SipHeader>| v.into_iter().map(|h| (h.name, h.value)).collect::<Vec<_>>();
        let p = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            pairs(h.for_decision("conv-1", &decision(Some("crap")), true)),
            [
                p("X-Ivrx-Conversation-Id", "conv-1"),
                p("X-Ivrx-Reason", "abuse"),
                p("X-Ivrx-Trigger", "crap"),
                p("X-Ivrx-Score", "-0.73"),
                p("X-Ivrx-Queue", "support")
            ]
        );
        let redacted = pairs(h.for_decision("conv-1", &decision(None), true));
        assert!(!redacted.iter().any(|(n, _)| n == "X-Ivrx-Trigger"), "no phrase, no caller words: {redacted:?}");
        let short = ContextHeaders { max_value_chars: 10, score: String::new(), ..h.clone() };
        let open = pairs(short.for_decision("conv-1", &decision(None), false));
        assert!(open.contains(&p("X-Ivrx-Trigger", "my number")), "cut, trimmed: {open:?}");
        assert!(!open.iter().any(|(n, _)| n == "X-Ivrx-Score"), "an empty name is left out");
        let off = ContextHeaders { enabled: false, ..h };
        assert!(off.for_decision("conv-1", &decision(None), false).is_empty());
    }

    #[test]
    fn a_bad_queue_value_is_refused_with_its_key() {
        WaitQueueConfig::default().validate().unwrap();
        for (c, key) in [
            (WaitQueueConfig { name: " ".into(), ..Default::default() }, "queue.name"),
            (WaitQueueConfig { max_wait_secs: 5, ..Default::default() }, "queue.max_wait_secs"),
            (WaitQueueConfig { max_size: 0, ..Default::default() }, "queue.max_size"),
            (WaitQueueConfig { announce_every_plays: 0, ..Default::default() }, "queue.announce_every_plays"),
            (WaitQueueConfig { hold_audio_url: Some("hold.mp3".into()), ..Default::default() }, "queue.hold_audio_url"),
            (WaitQueueConfig { waiting_line: String::new(), ..Default::default() }, "queue.waiting_line"),
        ] {
            assert_eq!(c.validate().unwrap_err().key, key);
        }
        let q = WaitQueueConfig::default();
        assert!(q.position_line_for(Some(3)).contains("You are number 3 in line."));
        assert!(!q.position_line_for(None).contains('{'));
    }

    #[test]
    fn each_section_checks_itself_and_names_the_key() {
        let queues = default_queues();
        IvrConfig::default().validate(&queues, "0").unwrap();
        TransferConfig::default().validate().unwrap();
        let mut ivr = IvrConfig::default();
        ivr.menu[0].digit = "9".into();
        assert_eq!(ivr.validate(&queues, "9").unwrap_err().key, "ivr.menu[0].digit", "the operator digit is taken");
        ivr.menu[0].digit = "5".into();
        ivr.menu[0].queue = Some("nowhere".into());
        ivr.menu[0].say = None;
        assert_eq!(ivr.validate(&queues, "0").unwrap_err().key, "ivr.menu[0].queue");
        let bad_header = ContextHeaders { reason: "Reason".into(), ..ContextHeaders::default() };
        let transfer = TransferConfig { headers: bad_header, ..TransferConfig::default() };
        assert_eq!(transfer.validate().unwrap_err().key, "transfer.headers.reason");
        let twice = ContextHeaders { queue: "x-ivrx-reason".into(), ..ContextHeaders::default() };
        assert!(twice.validate().unwrap_err().message.contains("twice"));
        let none = ContextHeaders { trigger: String::new(), max_value_chars: 8, ..ContextHeaders::default() };
        none.validate().unwrap();
        let transfer = TransferConfig { failure_line: " ".into(), ..TransferConfig::default() };
        assert_eq!(transfer.validate().unwrap_err().key, "transfer.failure_line");
        let queue = QueueConfig { agents: vec![], bridging_line: None };
        assert_eq!(
            queue.validate("sales").unwrap_err().to_string(),
            "queues.sales.agents: list at least one agent number"
        );
    }

    #[test]
    fn a_callback_key_must_be_a_keypad_key_the_menu_does_not_use() {
        let ok = CallbackConfig::default();
        assert_eq!(ok.validate("1230"), Ok(()));
        for (cb, key, fix) in [
            (
                CallbackConfig { accept_keys: "1".into(), ..ok.clone() },
                "queue.callback.accept_keys",
                "key of the IVR menu",
            ),
            (CallbackConfig { accept_keys: "a".into(), ..ok.clone() }, "queue.callback.accept_keys", "keypad keys"),
            (CallbackConfig { accept_keys: String::new(), ..ok.clone() }, "queue.callback.accept_keys", "keypad keys"),
            (
                CallbackConfig { accept_phrases: vec![" ".into()], ..ok.clone() },
                "queue.callback.accept_phrases",
                "phrase",
            ),
            (CallbackConfig { sms_text: String::new(), ..ok.clone() }, "queue.callback.sms_text", "1600"),
            (CallbackConfig { offer_line: String::new(), ..ok.clone() }, "queue.callback.offer_line", "hears"),
        ] {
            let e = cb.validate("1230").unwrap_err();
            assert_eq!(e.key, key);
            assert!(e.message.contains(fix), "{fix} in {}", e.message);
        }
    }

    #[test]
    fn a_callback_is_accepted_by_its_keys_or_its_phrases_said_as_whole_words() {
        let cb = CallbackConfig::default();
        assert_eq!(cb.accepts(Some("9"), None).as_deref(), Some("pressed 9"));
        assert_eq!(cb.accepts(Some("1"), None), None);
        assert_eq!(cb.accepts(None, Some("Yes, CALL me back please.")).as_deref(), Some("said \"call me back\""));
        assert_eq!(cb.accepts(None, Some("i want a callback")).as_deref(), Some("said \"callback\""));
        assert_eq!(cb.accepts(None, Some("i will call back later myself")), None, "the caller calls, not ivrx");
        assert_eq!(cb.accepts(None, Some("my callbacks never work")), None, "whole words only");
        assert_eq!(cb.accepts(None, Some("no thanks")), None);
    }
}
