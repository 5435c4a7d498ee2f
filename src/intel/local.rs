//! The local engine: an offline lexicon and rule sentiment scorer made robust to
//! speech-recognition text, plus trackers.

use super::{Label, Score, Scorer, TrackerSet};

/// The default, offline engine.
pub struct LocalEngine {
    trackers: TrackerSet,
}

impl LocalEngine {
    /// An engine with these trackers.
    pub fn new(trackers: TrackerSet) -> Self {
        Self { trackers }
    }

    /// The trackers this engine detects.
    pub fn trackers(&self) -> &TrackerSet {
        &self.trackers
    }
}

impl Default for LocalEngine {
    fn default() -> Self {
        Self::new(TrackerSet::default())
    }
}

impl Scorer for LocalEngine {
    fn name(&self) -> &str {
        "local"
    }

    fn score(&self, text: &str) -> Score {
        // PLACEHOLDER until the scorer lands: neutral with tracker hits.
        let score = 0.0;
        Score { score, label: Label::from_score(score), trackers: self.trackers.detect(text), engine: "local".into() }
    }
}
