//! Conversation intelligence: engines that score utterances, and trackers that
//! spot named phrase sets. Plain library code with no I/O (the Symbl engine,
//! a network client, is the `ivrx-symbl` crate).

pub mod cues;
pub mod learned;
pub mod lexicon;
pub mod local;
pub mod normalize;
pub mod phrases;
pub mod sentiment;
pub mod trackers;

use serde::{Deserialize, Serialize};

pub use learned::{Learned, LearnedScorer, Phrases};
pub use local::{Assessment, LocalEngine};
pub use normalize::Normalized;
pub use sentiment::{SentimentDetail, SentimentScorer};
pub use trackers::{TrackerConfig, TrackerError, TrackerHit, TrackerSet};

/// Scores at or below this are labelled negative (Symbl's boundary).
pub const NEGATIVE_BELOW: f64 = -0.3;
/// Scores at or above this are labelled positive (Symbl's boundary).
pub const POSITIVE_ABOVE: f64 = 0.3;

/// A sentiment label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// Below [`NEGATIVE_BELOW`].
    Negative,
    /// Between the two boundaries.
    Neutral,
    /// Above [`POSITIVE_ABOVE`].
    Positive,
}

impl Label {
    /// The label for a score in -1..1.
    pub fn from_score(score: f64) -> Self {
        if score < NEGATIVE_BELOW {
            Label::Negative
        } else if score > POSITIVE_ABOVE {
            Label::Positive
        } else {
            Label::Neutral
        }
    }

    /// `negative`, `neutral` or `positive`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Neutral => "neutral",
            Label::Positive => "positive",
        }
    }
}

/// What an engine thinks of one utterance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Sentiment polarity, -1.0 (very negative) to 1.0 (very positive).
    pub score: f64,
    /// The label for `score`.
    pub label: Label,
    /// Tracker phrases found in the utterance.
    pub trackers: Vec<TrackerHit>,
    /// Which engine produced the score (`local`, `symbl`).
    pub engine: String,
}

impl Score {
    /// True when a tracker of this name matched.
    pub fn has_tracker(&self, name: &str) -> bool {
        self.trackers.iter().any(|t| t.tracker == name)
    }
}

/// A synchronous scorer (the local engine; anything with no I/O).
pub trait Scorer: Send + Sync {
    /// The engine's name, stored with every score.
    fn name(&self) -> &str;
    /// Scores one utterance.
    fn score(&self, text: &str) -> Score;
}
