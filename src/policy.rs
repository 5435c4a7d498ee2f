//! The escalation policy: looks at the stream of scored caller utterances, not
//! at one message, and decides (once per call) whether and where to transfer.
//!
//! A plain function of its inputs: [`observe`] takes the configuration, the
//! running state and the next utterance, and returns the updated numbers and,
//! at most once per call, a [`Decision`] with its reason and the numbers behind it.

use serde::{Deserialize, Serialize};

use crate::intel::Score;

/// Thresholds and rules, from the `[policy]` table of ivrx.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Queue for escalations (frustration, requests for a human).
    pub support_queue: String,
    /// Queue for buying signals.
    pub sales_queue: String,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { support_queue: "support".into(), sales_queue: "sales".into() }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{key}: {message}")]
pub struct PolicyConfigError {
    /// The offending key under `[policy]`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl PolicyConfig {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        Ok(())
    }
}

/// The running state of the policy for one call. Serialisable, so a call can
/// be resumed after a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Caller utterances observed.
    pub utterances: u32,
    /// True once a decision was made: the policy decides once per call.
    pub decided: bool,
}

/// One scored caller utterance, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Utterance<'a> {
    /// 1-based index among the caller's utterances in this call.
    pub index: u32,
    /// The text.
    pub text: &'a str,
    /// The engine's score.
    pub score: &'a Score,
    /// Milliseconds since the call started.
    pub offset_ms: u64,
}

/// The numbers the policy tracks, after an utterance. Shown live by `watch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// The utterance's own score.
    pub score: f64,
    /// Smoothed sentiment level.
    pub level: f64,
    /// Drop of the level over the recent window (positive = worse).
    pub drop: f64,
    /// Consecutive negative utterances, this one included.
    pub consecutive_negatives: u32,
    /// How far each threshold is (positive = not reached yet).
    pub distance_to_floor: f64,
    /// How far the rapid-decline threshold is.
    pub distance_to_drop: f64,
}

/// Why a call is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The caller asked for a person (operator, agent, representative, …).
    AskedForHuman,
    /// Profanity or insults.
    Abuse,
    /// The caller is fed up with the bot.
    BotFrustration,
    /// The caller threatens to leave (cancel, lawyer).
    ChurnRisk,
    /// A positive buying signal: route to sales.
    BuyingSignal,
    /// The smoothed level fell fast over the recent window.
    RapidDecline,
    /// The smoothed level crossed the absolute floor.
    SentimentFloor,
    /// Too many negative utterances in a row.
    ConsecutiveNegatives,
    /// The caller pressed 0.
    Operator,
    /// The caller chose a queue from the IVR menu.
    MenuChoice,
    /// A supervisor used `ivrx transfer`.
    Manual,
}

impl Reason {
    /// The snake_case name used in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AskedForHuman => "asked_for_human",
            Reason::Abuse => "abuse",
            Reason::BotFrustration => "bot_frustration",
            Reason::ChurnRisk => "churn_risk",
            Reason::BuyingSignal => "buying_signal",
            Reason::RapidDecline => "rapid_decline",
            Reason::SentimentFloor => "sentiment_floor",
            Reason::ConsecutiveNegatives => "consecutive_negatives",
            Reason::Operator => "operator",
            Reason::MenuChoice => "menu_choice",
            Reason::Manual => "manual",
        }
    }

    /// A short sentence for people ("the caller asked for a person").
    pub fn describe(self) -> &'static str {
        match self {
            Reason::AskedForHuman => "the caller asked for a person",
            Reason::Abuse => "the caller used abusive language",
            Reason::BotFrustration => "the caller is frustrated with the automated system",
            Reason::ChurnRisk => "the caller may leave (cancellation or legal threat)",
            Reason::BuyingSignal => "the caller is interested in buying",
            Reason::RapidDecline => "sentiment fell quickly",
            Reason::SentimentFloor => "sentiment fell below the floor",
            Reason::ConsecutiveNegatives => "several negative statements in a row",
            Reason::Operator => "the caller pressed 0 for an operator",
            Reason::MenuChoice => "the caller chose this queue from the menu",
            Reason::Manual => "a supervisor transferred the call",
        }
    }
}

/// A decision to transfer, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Why.
    pub reason: Reason,
    /// Which queue.
    pub queue: String,
    /// 1-based index of the caller utterance that triggered it.
    pub trigger_index: u32,
    /// The utterance's text.
    pub trigger_text: String,
    /// The phrase that mattered (a tracker phrase), when there is one.
    pub trigger_phrase: Option<String>,
    /// The tracker that fired, when there is one.
    pub tracker: Option<String>,
    /// The numbers at the moment of the decision.
    pub numbers: PolicySnapshot,
}

/// The policy's view after one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The updated numbers.
    pub snapshot: PolicySnapshot,
    /// A decision, at most once per call.
    pub decision: Option<Decision>,
}

/// Feeds one caller utterance to the policy.
pub fn observe(config: &PolicyConfig, state: &mut PolicyState, utterance: &Utterance<'_>) -> Observation {
    // PLACEHOLDER until the policy lands: never decides.
    let _ = config;
    state.utterances += 1;
    Observation {
        snapshot: PolicySnapshot { score: utterance.score.score, ..PolicySnapshot::default() },
        decision: None,
    }
}
