//! The local engine: an offline lexicon and rule sentiment scorer made robust to
//! speech-recognition text, plus trackers.

use super::normalize::Normalized;
use super::sentiment::{SentimentDetail, SentimentScorer};
use super::{Label, Score, Scorer, TrackerSet};

/// The default, offline engine.
#[derive(Debug)]
pub struct LocalEngine {
    trackers: TrackerSet,
    sentiment: SentimentScorer,
}

impl LocalEngine {
    /// An engine with these trackers.
    pub fn new(trackers: TrackerSet) -> Self {
        Self { trackers, sentiment: SentimentScorer::new() }
    }

    /// The trackers this engine detects.
    pub fn trackers(&self) -> &TrackerSet {
        &self.trackers
    }

    /// The sentiment scorer.
    pub fn sentiment(&self) -> &SentimentScorer {
        &self.sentiment
    }

    /// How `text` was scored: the general-language and domain parts, sarcasm,
    /// and the domain phrases that counted.
    pub fn explain(&self, text: &str) -> SentimentDetail {
        self.sentiment.explain(text, &Normalized::new(text))
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
        let norm = Normalized::new(text);
        let score = self.sentiment.score(text, &norm);
        Score {
            score,
            label: Label::from_score(score),
            trackers: self.trackers.detect_normalized(&norm),
            engine: "local".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_tracks_in_one_pass() {
        let e = LocalEngine::default();
        let s = e.score("this is fucking useless");
        assert_eq!(s.engine, "local");
        assert_eq!(s.label, Label::Negative);
        assert!(s.has_tracker("abuse") && s.has_tracker("bot_frustration"));
        let s = e.score("I want to speak to a real person");
        assert!(s.has_tracker("asks_for_human"));
        assert!(e.score("perfect thanks thats sorted").label == Label::Positive);
        assert_eq!(e.score("").label, Label::Neutral);
    }

    #[test]
    fn explain_shows_the_parts() {
        let d = LocalEngine::default().explain("its not working");
        assert_eq!(d.general, 0.0);
        assert!(d.domain < 0.0 && d.score < -0.3);
        assert_eq!(d.phrases.len(), 1);
    }
}
