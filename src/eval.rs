//! Offline evaluation of an engine and a policy against labelled caller
//! scripts (`eval/corpus/*.ivrx`).
//!
//! Each script says what should happen in a directive:
//!
//! ```text
//! # expect: no-transfer
//! # expect: transfer support at 3      (3 = 1-based index among `say` lines)
//! # expect: transfer sales by dtmf
//! # difficulty: hard                   (optional: reported separately)
//! # category: decline                  (optional: reported per category)
//! ```
//!
//! The harness plays the script as the server would: every `say` line is
//! scored and fed to [`observe`]; a `press` is fed to [`observe_dtmf`] (the
//! operator key transfers to support, the sales key to sales); the first
//! decision ends the call.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::intel::Scorer;
use crate::policy::{observe, observe_dtmf, PolicyConfig, PolicyState, Reason, Utterance};
use crate::sandbox::script::{LoadError, Script, Step};

/// What a script expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expectation {
    /// The call stays with the IVR.
    NoTransfer,
    /// A transfer to `queue`, triggered by `at`.
    Transfer {
        /// The queue.
        queue: String,
        /// The trigger.
        at: Trigger,
    },
}

/// What triggers a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Trigger {
    /// The caller's n-th utterance (1-based).
    Utterance {
        /// The index.
        index: u32,
    },
    /// A key press.
    Dtmf,
}

impl Expectation {
    /// Parses `no-transfer`, `transfer <queue> at <n>` or `transfer <queue> by dtmf`.
    pub fn parse(text: &str) -> Option<Self> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["no-transfer"] => Some(Expectation::NoTransfer),
            ["transfer", queue, "at", n] => {
                let index: u32 = n.parse().ok().filter(|&n| n > 0)?;
                Some(Expectation::Transfer { queue: (*queue).to_string(), at: Trigger::Utterance { index } })
            }
            ["transfer", queue, "by", "dtmf"] => {
                Some(Expectation::Transfer { queue: (*queue).to_string(), at: Trigger::Dtmf })
            }
            _ => None,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::NoTransfer => write!(f, "no transfer"),
            Expectation::Transfer { queue, at } => write!(f, "{queue} {at}"),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Utterance { index } => write!(f, "at {index}"),
            Trigger::Dtmf => write!(f, "by dtmf"),
        }
    }
}

/// The transfer a script actually produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// The queue.
    pub queue: String,
    /// The trigger.
    pub at: Trigger,
    /// Why.
    pub reason: Reason,
    /// The tracker phrase, when a tracker decided.
    pub phrase: Option<String>,
    /// The smoothed level at the decision.
    pub level: f64,
}

/// One utterance as the harness saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// 1-based index among the caller's utterances.
    pub index: u32,
    /// The text.
    pub text: String,
    /// The engine's score.
    pub score: f64,
    /// The smoothed level after it.
    pub level: f64,
    /// Tracker names that hit.
    pub trackers: Vec<String>,
}

/// How a script's outcome compares with its expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// As expected, to the utterance.
    Correct,
    /// Right queue, later than expected.
    Late,
    /// Right queue, earlier than expected.
    Early,
    /// Right queue, but by speech when a key press was expected or vice versa.
    OtherTrigger,
    /// A transfer, to the wrong queue.
    WrongQueue,
    /// No transfer where one was expected.
    Missed,
    /// A transfer where none was expected.
    FalseTransfer,
}

impl Verdict {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::Late => "late",
            Verdict::Early => "early",
            Verdict::OtherTrigger => "other_trigger",
            Verdict::WrongQueue => "wrong_queue",
            Verdict::Missed => "missed",
            Verdict::FalseTransfer => "false_transfer",
        }
    }
}

/// The result for one script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The script's name (file stem).
    pub name: String,
    /// `# category:`, when given.
    pub category: Option<String>,
    /// `# difficulty: hard`.
    pub hard: bool,
    /// What should happen.
    pub expected: Expectation,
    /// What happened.
    pub actual: Option<Transfer>,
    /// How they compare.
    pub verdict: Verdict,
    /// Actual minus expected utterance index, when both are utterances.
    pub lateness: Option<i64>,
    /// The utterances scored, up to the transfer.
    pub trace: Vec<TraceStep>,
}

/// Aggregate figures over a set of scripts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Scripts evaluated.
    pub scripts: usize,
    /// Scripts expecting a transfer.
    pub expected_transfers: usize,
    /// Expected and made (any queue, any moment).
    pub true_positives: usize,
    /// Made but not expected.
    pub false_positives: usize,
    /// Expected but not made.
    pub false_negatives: usize,
    /// Neither expected nor made.
    pub true_negatives: usize,
    /// Of the transfers made, the share that were expected.
    pub precision: Option<f64>,
    /// Of the transfers expected, the share that were made.
    pub recall: Option<f64>,
    /// Of the transfers made and expected, the share to the right queue.
    pub queue_accuracy: Option<f64>,
    /// Of the calls that should stay, the share transferred anyway.
    pub false_transfer_rate: Option<f64>,
    /// Of the transfers made and expected, the share at exactly the expected
    /// utterance (or by key press when one was expected).
    pub exact_trigger_rate: Option<f64>,
    /// Mean index of the triggering utterance, over speech-triggered transfers
    /// that were expected.
    pub mean_utterances_to_transfer: Option<f64>,
    /// Mean (actual − expected) utterance index, over the same transfers;
    /// negative means early.
    pub mean_lateness: Option<f64>,
    /// Transfers that came earlier than expected.
    pub early: usize,
    /// Transfers that came later than expected.
    pub late: usize,
    /// Scripts whose verdict is [`Verdict::Correct`].
    pub correct: usize,
}

/// The evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The engine's name.
    pub engine: String,
    /// Figures over all scripts.
    pub overall: Metrics,
    /// Figures over the scripts marked hard.
    pub hard: Metrics,
    /// Figures over the rest.
    pub regular: Metrics,
    /// Figures per category.
    pub by_category: BTreeMap<String, Metrics>,
    /// Every script.
    pub cases: Vec<CaseResult>,
}

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The corpus directory could not be read.
    #[error("cannot read the corpus directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A script could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A script has no `# expect:` directive.
    #[error("script {0}: no `# expect:` line; add `# expect: no-transfer`, `# expect: transfer support at 2` or `# expect: transfer sales by dtmf`")]
    MissingExpectation(String),
    /// A script's `# expect:` cannot be read.
    #[error("script {name}: cannot read `# expect: {value}`; write `no-transfer`, `transfer <queue> at <n>` or `transfer <queue> by dtmf`")]
    BadExpectation {
        /// The script.
        name: String,
        /// The directive's value.
        value: String,
    },
    /// The corpus is empty.
    #[error("no .ivrx scripts in {0}")]
    Empty(String),
}

/// A named, parsed script.
#[derive(Debug, Clone)]
pub struct NamedScript {
    /// The name (file stem).
    pub name: String,
    /// The script.
    pub script: Script,
}

/// Loads every `*.ivrx` file of a directory, sorted by name.
pub fn load_corpus(dir: &Path) -> Result<Vec<NamedScript>, EvalError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| EvalError::Dir { path: dir.display().to_string(), source })?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| EvalError::Dir { path: dir.display().to_string(), source })?.path();
        if path.extension().is_some_and(|e| e == "ivrx") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(EvalError::Empty(dir.display().to_string()));
    }
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(NamedScript { name, script: Script::load(p)? })
        })
        .collect()
}

/// Evaluates the scripts of a directory.
pub fn evaluate_dir(dir: &Path, engine: &dyn Scorer, config: &PolicyConfig) -> Result<EvalReport, EvalError> {
    evaluate(&load_corpus(dir)?, engine, config)
}

/// Evaluates scripts.
pub fn evaluate(scripts: &[NamedScript], engine: &dyn Scorer, config: &PolicyConfig) -> Result<EvalReport, EvalError> {
    let mut cases = Vec::with_capacity(scripts.len());
    for s in scripts {
        let value = s.script.directive("expect").ok_or_else(|| EvalError::MissingExpectation(s.name.clone()))?;
        let expected = Expectation::parse(value)
            .ok_or_else(|| EvalError::BadExpectation { name: s.name.clone(), value: value.to_string() })?;
        let (actual, trace) = play(&s.script, engine, config);
        let (verdict, lateness) = judge(&expected, actual.as_ref());
        cases.push(CaseResult {
            name: s.name.clone(),
            category: s.script.directive("category").map(str::to_string),
            hard: s.script.directive("difficulty").is_some_and(|d| d.eq_ignore_ascii_case("hard")),
            expected,
            actual,
            verdict,
            lateness,
            trace,
        });
    }
    let all: Vec<&CaseResult> = cases.iter().collect();
    let overall = metrics(&all);
    let hard = metrics(&cases.iter().filter(|c| c.hard).collect::<Vec<_>>());
    let regular = metrics(&cases.iter().filter(|c| !c.hard).collect::<Vec<_>>());
    let mut groups: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
    for c in &cases {
        groups.entry(c.category.clone().unwrap_or_else(|| "-".into())).or_default().push(c);
    }
    let by_category = groups.into_iter().map(|(k, v)| (k, metrics(&v))).collect();
    Ok(EvalReport { engine: engine.name().to_string(), overall, hard, regular, by_category, cases })
}

/// Plays one script through the engine and policy, as the server would.
pub fn play(script: &Script, engine: &dyn Scorer, config: &PolicyConfig) -> (Option<Transfer>, Vec<TraceStep>) {
    let mut state = PolicyState::default();
    let mut trace = Vec::new();
    let mut index = 0u32;
    let mut elapsed_ms = 0u64;
    for step in &script.steps {
        match step {
            Step::Say(text) => {
                index += 1;
                let score = engine.score(text);
                let u = Utterance { index, text, score: &score, offset_ms: elapsed_ms };
                let o = observe(config, &mut state, &u);
                trace.push(TraceStep {
                    index,
                    text: text.clone(),
                    score: score.score,
                    level: o.snapshot.level,
                    trackers: score.trackers.iter().map(|h| h.tracker.clone()).collect(),
                });
                if let Some(d) = o.decision {
                    let at = Trigger::Utterance { index };
                    let t = Transfer {
                        queue: d.queue,
                        at,
                        reason: d.reason,
                        phrase: d.trigger_phrase,
                        level: o.snapshot.level,
                    };
                    return (Some(t), trace);
                }
                elapsed_ms += 2_000;
            }
            Step::Press(digits) => {
                if let Some(d) = observe_dtmf(config, &mut state, digits) {
                    let t = Transfer {
                        queue: d.queue,
                        at: Trigger::Dtmf,
                        reason: d.reason,
                        phrase: d.trigger_phrase,
                        level: state.level,
                    };
                    return (Some(t), trace);
                }
            }
            Step::Pause(secs) => elapsed_ms += (secs * 1000.0) as u64,
            Step::Hangup => break,
        }
    }
    (None, trace)
}

fn judge(expected: &Expectation, actual: Option<&Transfer>) -> (Verdict, Option<i64>) {
    match (expected, actual) {
        (Expectation::NoTransfer, None) => (Verdict::Correct, None),
        (Expectation::NoTransfer, Some(_)) => (Verdict::FalseTransfer, None),
        (Expectation::Transfer { .. }, None) => (Verdict::Missed, None),
        (Expectation::Transfer { queue, at }, Some(t)) => {
            let lateness = match (at, t.at) {
                (Trigger::Utterance { index: e }, Trigger::Utterance { index: a }) => {
                    Some(i64::from(a) - i64::from(*e))
                }
                _ => None,
            };
            let verdict = if &t.queue != queue {
                Verdict::WrongQueue
            } else {
                match (at, lateness) {
                    (Trigger::Dtmf, _) if t.at == Trigger::Dtmf => Verdict::Correct,
                    (_, Some(0)) => Verdict::Correct,
                    (_, Some(l)) if l > 0 => Verdict::Late,
                    (_, Some(_)) => Verdict::Early,
                    _ => Verdict::OtherTrigger,
                }
            };
            (verdict, lateness)
        }
    }
}

fn ratio(n: usize, d: usize) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn metrics(cases: &[&CaseResult]) -> Metrics {
    let mut m = Metrics { scripts: cases.len(), ..Metrics::default() };
    let mut right_queue = 0;
    let mut exact = 0;
    let mut indexes = Vec::new();
    let mut lateness = Vec::new();
    for c in cases {
        let expects = matches!(c.expected, Expectation::Transfer { .. });
        m.expected_transfers += usize::from(expects);
        m.correct += usize::from(c.verdict == Verdict::Correct);
        match (&c.expected, &c.actual) {
            (Expectation::NoTransfer, None) => m.true_negatives += 1,
            (Expectation::NoTransfer, Some(_)) => m.false_positives += 1,
            (Expectation::Transfer { .. }, None) => m.false_negatives += 1,
            (Expectation::Transfer { queue, at }, Some(t)) => {
                m.true_positives += 1;
                right_queue += usize::from(&t.queue == queue);
                exact += usize::from(*at == t.at);
                if let Trigger::Utterance { index } = t.at {
                    indexes.push(f64::from(index));
                }
                if let Some(l) = c.lateness {
                    lateness.push(l as f64);
                    m.early += usize::from(l < 0);
                    m.late += usize::from(l > 0);
                }
            }
        }
    }
    m.precision = ratio(m.true_positives, m.true_positives + m.false_positives);
    m.recall = ratio(m.true_positives, m.true_positives + m.false_negatives);
    m.queue_accuracy = ratio(right_queue, m.true_positives);
    m.false_transfer_rate = ratio(m.false_positives, m.false_positives + m.true_negatives);
    m.exact_trigger_rate = ratio(exact, m.true_positives);
    m.mean_utterances_to_transfer = mean(&indexes);
    m.mean_lateness = mean(&lateness);
    m
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} scripts, {} correct | precision {} recall {} queue accuracy {} false-transfer rate {} | \
             exact trigger {} | utterances to transfer {} | lateness {} ({} early, {} late)",
            self.scripts,
            self.correct,
            opt(self.precision, 3),
            opt(self.recall, 3),
            opt(self.queue_accuracy, 3),
            opt(self.false_transfer_rate, 3),
            opt(self.exact_trigger_rate, 3),
            opt(self.mean_utterances_to_transfer, 2),
            opt(self.mean_lateness, 2),
            self.early,
            self.late,
        )
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "engine: {}", self.engine)?;
        writeln!(f, "overall: {}", self.overall)?;
        writeln!(f, "regular: {}", self.regular)?;
        writeln!(f, "hard:    {}", self.hard)?;
        for (cat, m) in &self.by_category {
            writeln!(f, "  {cat:<10} {m}")?;
        }
        writeln!(f)?;
        for c in &self.cases {
            let actual = match &c.actual {
                None => "no transfer".to_string(),
                Some(t) => format!(
                    "{} {} ({}{})",
                    t.queue,
                    t.at,
                    t.reason.as_str(),
                    t.phrase.as_ref().map(|p| format!(": {p}")).unwrap_or_default()
                ),
            };
            let mark = if c.verdict == Verdict::Correct { "  " } else { "✗ " };
            writeln!(
                f,
                "{mark}{:<32} {:<5} expected {:<22} got {:<50} {}",
                c.name,
                if c.hard { "hard" } else { "" },
                c.expected.to_string(),
                actual,
                c.verdict.as_str()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intel::LocalEngine;

    fn named(name: &str, text: &str) -> NamedScript {
        NamedScript { name: name.into(), script: Script::parse(text).unwrap() }
    }

    #[test]
    fn parses_expectations() {
        assert_eq!(Expectation::parse("no-transfer"), Some(Expectation::NoTransfer));
        assert_eq!(
            Expectation::parse("transfer support at 3"),
            Some(Expectation::Transfer { queue: "support".into(), at: Trigger::Utterance { index: 3 } })
        );
        assert_eq!(
            Expectation::parse("transfer sales by dtmf"),
            Some(Expectation::Transfer { queue: "sales".into(), at: Trigger::Dtmf })
        );
        for bad in ["", "transfer", "transfer support at 0", "transfer support at x", "maybe"] {
            assert_eq!(Expectation::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn judges_every_outcome() {
        let engine = LocalEngine::default();
        let c = PolicyConfig::default();
        let scripts = [
            named("a", "# expect: transfer support at 1\nsay agent\n"),
            named("b", "# expect: transfer support at 2\nsay agent\n"),
            named("c", "# expect: transfer sales at 1\nsay agent\n"),
            named("d", "# expect: no-transfer\nsay agent\n"),
            named("e", "# expect: transfer support at 1\nsay hello\n"),
            named("f", "# expect: transfer support by dtmf\nsay hello\npress 0\n"),
            named("g", "# expect: transfer sales by dtmf\n# difficulty: hard\npress 1\npress 3\nsay agent\n"),
            named("h", "# expect: no-transfer\npress 30012#\nsay thanks\n"),
        ];
        let r = evaluate(&scripts, &engine, &c).unwrap();
        let verdicts: Vec<_> = r.cases.iter().map(|c| c.verdict).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Correct, Early, WrongQueue, FalseTransfer, Missed, Correct, Correct, Correct]);
        assert_eq!(r.overall.true_positives, 5);
        assert_eq!(r.overall.false_positives, 1);
        assert_eq!(r.overall.false_negatives, 1);
        assert_eq!(r.overall.precision, Some(5.0 / 6.0));
        assert_eq!(r.overall.recall, Some(5.0 / 6.0));
        assert_eq!(r.overall.false_transfer_rate, Some(0.5));
        assert_eq!(r.overall.mean_lateness, Some(-1.0 / 3.0));
        assert_eq!(r.hard.scripts, 1);
        assert!(r.to_string().contains("overall:"));
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn a_script_without_expectation_is_an_error() {
        let e = evaluate(&[named("x", "say hi\n")], &LocalEngine::default(), &PolicyConfig::default()).unwrap_err();
        assert!(matches!(e, EvalError::MissingExpectation(_)));
        let e = evaluate(&[named("x", "# expect: soon\nsay hi\n")], &LocalEngine::default(), &PolicyConfig::default())
            .unwrap_err();
        assert!(e.to_string().contains("cannot read `# expect: soon`"));
    }
}
