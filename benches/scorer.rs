//! Speed of the local engine against raw VADER, over the evaluation corpus.
//!
//! `cargo bench --bench scorer` prints criterion's figures per group and, at
//! the end, the overhead ratios of the engine's parts against `vader_parity`
//! alone, measured in the same run: the engine as it ships (lexicon and
//! learned model), the lexicon engine alone (the engine before any learned
//! model), the engine with the first, linear learned model
//! (`benches/learned-v1.bin`), and each learned model's own share; and the
//! policy with and without its escalation signals (cues, repeats, incline).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ivrx::eval::load_corpus;
use ivrx::intel::{LearnedScorer, LocalEngine, Normalized, Phrases, Score, Scorer, SentimentScorer, TrackerSet};
use ivrx::policy::{observe, PolicyConfig, PolicyState, Utterance};
use vader_parity::SentimentIntensityAnalyzer;

fn corpus_lines() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/corpus");
    let scripts = load_corpus(&dir).expect("the corpus loads");
    scripts.iter().flat_map(|s| s.script.utterances().map(str::to_string).collect::<Vec<_>>()).collect()
}

/// The first learned model: the word and bigram table alone.
fn linear() -> LearnedScorer {
    static V1: &[u8] = include_bytes!("learned-v1.bin");
    LearnedScorer::from_bytes(V1).expect("the first model's weights load")
}

struct Subjects {
    lines: Vec<String>,
    vader: SentimentIntensityAnalyzer,
    sentiment: SentimentScorer,
    trackers: TrackerSet,
    engine: LocalEngine,
    lexicon_engine: LocalEngine,
    linear_engine: LocalEngine,
    learned: LearnedScorer,
    linear: LearnedScorer,
    /// Each line normalised, with its lexicon score and domain phrases: the
    /// learned model's input.
    prepared: Vec<(Normalized, f64, Phrases)>,
    scores: Vec<Score>,
    config: PolicyConfig,
    /// The policy with its escalation signals off: as it was before them.
    without_signals: PolicyConfig,
}

impl Subjects {
    fn new() -> Self {
        let lines = corpus_lines();
        let engine = LocalEngine::default();
        let scores = lines.iter().map(|l| engine.score(l)).collect();
        let sentiment = SentimentScorer::new();
        let prepared = lines
            .iter()
            .map(|l| {
                let norm = Normalized::new(l);
                let mut phrases = Phrases::default();
                let lexicon = sentiment.score_with_phrases(l, &norm, &mut |start, end| phrases.push(start, end));
                (norm, lexicon, phrases)
            })
            .collect();
        Subjects {
            lines,
            vader: SentimentIntensityAnalyzer::new(),
            sentiment,
            trackers: TrackerSet::default(),
            engine,
            lexicon_engine: LocalEngine::lexicon_only(TrackerSet::default()),
            linear_engine: LocalEngine::with_learned(TrackerSet::default(), linear()),
            learned: LearnedScorer::new(),
            linear: linear(),
            prepared,
            scores,
            config: PolicyConfig::default(),
            without_signals: PolicyConfig::default().without_signals(),
        }
    }

    fn vader(&self) {
        for l in &self.lines {
            black_box(self.vader.polarity_scores(black_box(l)));
        }
    }

    fn normalize(&self) {
        for l in &self.lines {
            black_box(Normalized::new(black_box(l)));
        }
    }

    fn sentiment(&self) {
        for l in &self.lines {
            black_box(self.sentiment.score(l, &Normalized::new(black_box(l))));
        }
    }

    fn trackers(&self) {
        for l in &self.lines {
            black_box(self.trackers.detect(black_box(l)));
        }
    }

    fn engine(&self) {
        for l in &self.lines {
            black_box(self.engine.score(black_box(l)));
        }
    }

    fn lexicon_engine(&self) {
        for l in &self.lines {
            black_box(self.lexicon_engine.score(black_box(l)));
        }
    }

    fn linear_engine(&self) {
        for l in &self.lines {
            black_box(self.linear_engine.score(black_box(l)));
        }
    }

    fn learned(&self) {
        for (norm, lexicon, phrases) in &self.prepared {
            black_box(self.learned.score(black_box(norm), *lexicon, phrases));
        }
    }

    fn linear(&self) {
        for (norm, lexicon, phrases) in &self.prepared {
            black_box(self.linear.score(black_box(norm), *lexicon, phrases));
        }
    }

    fn observe(&self) {
        self.observe_with(&self.config);
    }

    fn observe_with(&self, config: &PolicyConfig) {
        let mut state = PolicyState::default();
        for (i, (l, s)) in self.lines.iter().zip(&self.scores).enumerate() {
            // A fresh call every eight utterances, like short IVR calls.
            if i % 8 == 0 {
                state = PolicyState::default();
            }
            let u = Utterance { index: (i % 8) as u32 + 1, text: l, score: s, offset_ms: 0 };
            black_box(observe(config, &mut state, black_box(&u)));
        }
    }
}

fn benches(c: &mut Criterion, s: &Subjects) {
    let mut g = c.benchmark_group("per_utterance");
    g.throughput(Throughput::Elements(s.lines.len() as u64));
    g.bench_function("vader_parity", |b| b.iter(|| s.vader()));
    g.bench_function("normalize", |b| b.iter(|| s.normalize()));
    g.bench_function("local_sentiment", |b| b.iter(|| s.sentiment()));
    g.bench_function("trackers", |b| b.iter(|| s.trackers()));
    g.bench_function("learned_model", |b| b.iter(|| s.learned()));
    g.bench_function("linear_model", |b| b.iter(|| s.linear()));
    g.bench_function("lexicon_engine", |b| b.iter(|| s.lexicon_engine()));
    g.bench_function("linear_engine", |b| b.iter(|| s.linear_engine()));
    g.bench_function("local_engine", |b| b.iter(|| s.engine()));
    g.bench_function("observe", |b| b.iter(|| s.observe()));
    g.finish();
}

/// Mean time per corpus pass over `budget`, after a warm-up.
fn time(budget: Duration, f: impl Fn()) -> Duration {
    f();
    let start = Instant::now();
    let mut passes = 0u32;
    while start.elapsed() < budget {
        f();
        passes += 1;
    }
    start.elapsed() / passes.max(1)
}

fn ratios(s: &Subjects) {
    let budget = Duration::from_millis(1500);
    let n = s.lines.len() as f64;
    let vader = time(budget, || s.vader());
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n;
    let rows = [
        ("vader_parity alone", vader),
        ("normalize", time(budget, || s.normalize())),
        ("local sentiment (normalize + lexicon + VADER)", time(budget, || s.sentiment())),
        ("trackers (normalize + match)", time(budget, || s.trackers())),
        ("learned model alone (on prepared input)", time(budget, || s.learned())),
        ("first, linear model alone (on prepared input)", time(budget, || s.linear())),
        ("lexicon engine (no learned model)", time(budget, || s.lexicon_engine())),
        ("engine with the first, linear model", time(budget, || s.linear_engine())),
        ("local engine (lexicon + learned + trackers)", time(budget, || s.engine())),
        ("policy observe", time(budget, || s.observe())),
        ("policy observe, escalation signals off", time(budget, || s.observe_with(&s.without_signals))),
    ];
    println!("\n{} corpus utterances; per utterance, and relative to vader_parity alone:", s.lines.len());
    for (name, d) in rows {
        println!(
            "  {name:<50} {:>8.2} µs  {:>10.0} utterances/s  {:>6.2}× vader",
            per(d),
            1e6 / per(d),
            d.as_secs_f64() / vader.as_secs_f64()
        );
    }
}

fn main() {
    let subjects = Subjects::new();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &subjects);
    c.final_summary();
    // `cargo test --benches` runs each benchmark once; skip the timing table.
    if !std::env::args().any(|a| a == "--test") {
        ratios(&subjects);
    }
}
