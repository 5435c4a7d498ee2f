//! The local engine: an offline lexicon and rule sentiment scorer made robust to
//! speech-recognition text, a learned model stacked on it, plus trackers.

use super::learned::{Learned, LearnedScorer, Phrases};
use super::normalize::Normalized;
use super::sentiment::{SentimentDetail, SentimentScorer};
use super::{Label, Score, Scorer, TrackerSet};

/// The default, offline engine.
#[derive(Debug)]
pub struct LocalEngine {
    trackers: TrackerSet,
    sentiment: SentimentScorer,
    /// `None`: the lexicon score alone (the engine before the learned model).
    learned: Option<LearnedScorer>,
}

/// How the local engine scored one utterance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The engine's score, -1..1: the learned valence, or the lexicon score
    /// when the engine runs without the learned model.
    pub score: f64,
    /// The lexicon scorer's compound (VADER plus the contact-centre lexicon).
    pub lexicon: f64,
    /// The learned model's valence and the probability that the caller is
    /// dissatisfied, when it runs (the frustration signal beside the score).
    pub learned: Option<Learned>,
}

impl LocalEngine {
    /// An engine with these trackers: the lexicon scorer and the learned
    /// model stacked on it.
    pub fn new(trackers: TrackerSet) -> Self {
        Self { trackers, sentiment: SentimentScorer::new(), learned: Some(LearnedScorer::new()) }
    }

    /// An engine with these trackers and other learned weights (the first
    /// learned model's, say, for comparison).
    pub fn with_learned(trackers: TrackerSet, learned: LearnedScorer) -> Self {
        Self { trackers, sentiment: SentimentScorer::new(), learned: Some(learned) }
    }

    /// An engine that scores with the lexicon scorer alone, as before the
    /// learned model (for comparison).
    pub fn lexicon_only(trackers: TrackerSet) -> Self {
        Self { trackers, sentiment: SentimentScorer::new(), learned: None }
    }

    /// The learned model, unless the engine runs on the lexicon alone.
    pub fn learned(&self) -> Option<&LearnedScorer> {
        self.learned.as_ref()
    }

    /// Scores `text` and keeps the parts.
    pub fn assess(&self, text: &str) -> Assessment {
        self.assess_normalized(text, &Normalized::new(text))
    }

    fn assess_normalized(&self, text: &str, norm: &Normalized) -> Assessment {
        let Some(model) = &self.learned else {
            let lexicon = self.sentiment.score(text, norm);
            return Assessment { score: lexicon, lexicon, learned: None };
        };
        let mut phrases = Phrases::default();
        let lexicon = self.sentiment.score_with_phrases(text, norm, &mut |start, end| phrases.push(start, end));
        let learned = Some(model.score(norm, lexicon, &phrases));
        Assessment { score: learned.map_or(lexicon, |l| l.valence), lexicon, learned }
    }

    /// The trackers this engine detects.
    pub fn trackers(&self) -> &TrackerSet {
        &self.trackers
    }

    /// The sentiment scorer.
    pub fn sentiment(&self) -> &SentimentScorer {
        &self.sentiment
    }

    /// How the lexicon scorer scored `text`: the general-language and domain
    /// parts, sarcasm, and the domain phrases that counted.
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
        let score = self.assess_normalized(text, &norm).score;
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
