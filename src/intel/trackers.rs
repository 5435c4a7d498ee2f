//! Trackers: named phrase sets ("asks for a human", "abuse", …) matched in
//! speech-recognition text.

use serde::{Deserialize, Serialize};

/// One tracker as configured (`[[trackers]]` in ivrx.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerConfig {
    /// Stable name, e.g. `asks_for_human`.
    pub name: String,
    /// Phrases that count as a hit.
    pub phrases: Vec<String>,
}

/// A tracker match in one utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerHit {
    /// The tracker's name.
    pub tracker: String,
    /// The phrase that matched, as configured.
    pub phrase: String,
}

/// A compiled set of trackers.
#[derive(Debug, Clone, Default)]
pub struct TrackerSet {
    trackers: Vec<TrackerConfig>,
}

impl TrackerSet {
    /// Compiles trackers from configuration.
    pub fn new(trackers: Vec<TrackerConfig>) -> Self {
        Self { trackers }
    }

    /// The configured trackers.
    pub fn configs(&self) -> &[TrackerConfig] {
        &self.trackers
    }

    /// Every tracker hit in `text`.
    pub fn detect(&self, _text: &str) -> Vec<TrackerHit> {
        // PLACEHOLDER until the matcher lands.
        Vec::new()
    }
}
