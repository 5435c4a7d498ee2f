//! The call flow's configuration, as plain data: the IVR (`[ivr]`), the agent
//! queues (`[queues]`) and how transfers are made (`[transfer]`). These are
//! sections of `ivrx.toml`; the `ivrx` package reads and validates the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            mode: TransferMode::Warm,
            ring_timeout_secs: 20,
            bridging_line: "I'm connecting you with a member of our team now. Please hold.".into(),
            hold_music_url: "https://assets.ivrx.dev/hold-music.mp3".into(),
            failure_line: "I'm sorry, nobody is available right now. I'm still here to help.".into(),
        }
    }
}
