//! `ivrx eval`: plays labelled caller scripts through the production path and
//! measures the escalation decisions against their labels.
//!
//! Each script (`*.ivrx`, the sandbox script format) says what should happen
//! in a directive:
//!
//! ```text
//! # expect: no-transfer
//! # expect: transfer support at 3      (3 = 1-based index among `say` lines)
//! # expect: transfer sales by dtmf
//! # difficulty: hard                   (optional: reported separately)
//! # category: decline                  (optional: reported per category)
//! ```
//!
//! Every script is played in process ([`play`]): the sandbox carrier plays
//! the caller and any agent, and the call session that `serve` runs answers
//! with the configured menu, engine and policy, the keypad routed by the menu.
//! The first decision the session records is the outcome. No sockets, no
//! real clock: the carrier's virtual clock is the only one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::intel::Scorer;
use crate::policy::Reason;
use crate::sandbox::script::{Directive, LoadError, Script, Step};
use crate::session::{DecisionSource, SessionSettings};

mod play;

pub use play::{play, PlayError, Played};

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
    /// The script's file.
    pub path: String,
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
    /// How the call ended when nothing was decided (`caller_done`,
    /// `no_input`, `caller_hangup`, …).
    pub ended: Option<String>,
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
    #[error("script {path}: no `# expect:` line; add `# expect: no-transfer`, `# expect: transfer support at 2` or `# expect: transfer sales by dtmf`")]
    MissingExpectation {
        /// The script's file.
        path: String,
    },
    /// A label (`# expect:`, `# difficulty:`) that cannot be used.
    #[error("script {path}, line {line}: {message}")]
    BadLabel {
        /// The script's file.
        path: String,
        /// The directive's line.
        line: usize,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// The directory holds no scripts.
    #[error("no .ivrx scripts in {0}")]
    Empty(String),
    /// A script could not be played to its end.
    #[error("script {path}: {source}")]
    Play {
        /// The script's file.
        path: String,
        /// Why.
        #[source]
        source: PlayError,
    },
}

/// A caller script and its label.
#[derive(Debug, Clone)]
pub struct NamedScript {
    /// The name (file stem).
    pub name: String,
    /// The file (or the name given to [`NamedScript::parse`]).
    pub path: String,
    /// The script.
    pub script: Script,
    /// What should happen (`# expect:`).
    pub expected: Expectation,
    /// The line of `# expect:`.
    pub expect_line: usize,
    /// `# category:`, when given.
    pub category: Option<String>,
    /// `# difficulty: hard`.
    pub hard: bool,
}

impl NamedScript {
    /// Parses a script and its label; errors name `path` and the line.
    pub fn parse(name: &str, path: &str, text: &str) -> Result<Self, EvalError> {
        let script = Script::parse(text)
            .map_err(|source| EvalError::Load(LoadError::Parse { path: path.to_string(), source }))?;
        let bad = |line: usize, message: String| EvalError::BadLabel { path: path.to_string(), line, message };
        let expects: Vec<&Directive> = script.directives_named("expect").collect();
        let first = expects.first().copied().ok_or_else(|| EvalError::MissingExpectation { path: path.to_string() })?;
        if let Some(second) = expects.get(1) {
            return Err(bad(
                second.line,
                format!("a second `# expect:` line (the first is line {}); keep one", first.line),
            ));
        }
        let expected = Expectation::parse(&first.value).ok_or_else(|| {
            bad(
                first.line,
                format!(
                    "cannot read `# expect: {}`; write `no-transfer`, `transfer <queue> at <n>` (n: the caller's n-th \
                     `say` line, from 1) or `transfer <queue> by dtmf`",
                    first.value
                ),
            )
        })?;
        let says = script.utterances().count();
        match &expected {
            Expectation::Transfer { at: Trigger::Utterance { index }, .. } if *index as usize > says => {
                return Err(bad(
                    first.line,
                    format!("expects a transfer at the caller's line {index}, but the script says {says} line(s)"),
                ))
            }
            Expectation::Transfer { at: Trigger::Dtmf, .. }
                if !script.steps.iter().any(|s| matches!(s, Step::Press(_))) =>
            {
                return Err(bad(first.line, "expects a transfer by key press, but the script presses no key".into()))
            }
            _ => {}
        }
        let mut hard = false;
        for d in script.directives_named("difficulty") {
            match d.value.to_ascii_lowercase().as_str() {
                "hard" => hard = true,
                other => {
                    return Err(bad(
                        d.line,
                        format!("`# difficulty: {other}`: the only difficulty is `hard`; or leave the line out"),
                    ))
                }
            }
        }
        let category = script.directive("category").map(str::to_string);
        let expect_line = first.line;
        Ok(Self { name: name.to_string(), path: path.to_string(), script, expected, expect_line, category, hard })
    }

    /// Reads and parses a script file.
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| EvalError::Load(LoadError::Io { path: shown.clone(), source }))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::parse(&name, &shown, &text)
    }
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
    paths.iter().map(|p| NamedScript::load(p)).collect()
}

/// Evaluates the scripts of a directory.
pub fn evaluate_dir(dir: &Path, engine: &dyn Scorer, settings: &Arc<SessionSettings>) -> Result<EvalReport, EvalError> {
    evaluate(&load_corpus(dir)?, engine, settings)
}

/// Plays every script through the session with `settings`, scored by
/// `engine`, and compares each outcome with its label.
pub fn evaluate(
    scripts: &[NamedScript],
    engine: &dyn Scorer,
    settings: &Arc<SessionSettings>,
) -> Result<EvalReport, EvalError> {
    for s in scripts {
        if let Expectation::Transfer { queue, .. } = &s.expected {
            if !settings.queues.contains_key(queue) {
                let known: Vec<&str> = settings.queues.keys().map(String::as_str).collect();
                return Err(EvalError::BadLabel {
                    path: s.path.clone(),
                    line: s.expect_line,
                    message: format!(
                        "no queue named {queue:?} in the configuration (its queues: {})",
                        known.join(", ")
                    ),
                });
            }
        }
    }
    let mut cases = Vec::with_capacity(scripts.len());
    for s in scripts {
        let played =
            play(&s.script, engine, settings).map_err(|source| EvalError::Play { path: s.path.clone(), source })?;
        let actual = played.decision.map(|(source, d)| Transfer {
            at: match (source, d.trigger_index) {
                // The keypad: a menu decision without a triggering utterance.
                (DecisionSource::Menu, 0) => Trigger::Dtmf,
                (_, index) => Trigger::Utterance { index },
            },
            level: d.numbers.level,
            queue: d.queue,
            reason: d.reason,
            phrase: d.trigger_phrase,
        });
        let (verdict, lateness) = judge(&s.expected, actual.as_ref());
        cases.push(CaseResult {
            name: s.name.clone(),
            path: s.path.clone(),
            category: s.category.clone(),
            hard: s.hard,
            expected: s.expected.clone(),
            ended: if actual.is_none() { played.ended } else { None },
            actual,
            verdict,
            lateness,
            trace: played.trace,
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

impl CaseResult {
    /// What happened, in a few words: the transfer and its reason, or how the
    /// call ended without one.
    pub fn outcome(&self) -> String {
        match (&self.actual, &self.ended) {
            (Some(t), _) => format!(
                "{} {} ({}{})",
                t.queue,
                t.at,
                t.reason.as_str(),
                t.phrase.as_ref().map(|p| format!(": {p}")).unwrap_or_default()
            ),
            (None, Some(ended)) => format!("no transfer ({ended})"),
            (None, None) => "no transfer".into(),
        }
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
            let mark = if c.verdict == Verdict::Correct { "  " } else { "✗ " };
            writeln!(
                f,
                "{mark}{:<32} {:<5} expected {:<22} got {:<50} {}",
                c.name,
                if c.hard { "hard" } else { "" },
                c.expected.to_string(),
                c.outcome(),
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
        NamedScript::parse(name, &format!("{name}.ivrx"), text).unwrap()
    }

    fn settings() -> Arc<SessionSettings> {
        Arc::new(SessionSettings::default())
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
        let scripts = [
            named("a", "# expect: transfer support at 1\nsay agent\n"),
            named("b", "# expect: transfer support at 2\nsay agent\nsay hello\n"),
            named("c", "# expect: transfer sales at 1\nsay agent\n"),
            named("d", "# expect: no-transfer\nsay agent\n"),
            named("e", "# expect: transfer support at 1\nsay hello\n"),
            named("f", "# expect: transfer support by dtmf\nsay hello\npress 0\n"),
            named("g", "# expect: transfer sales by dtmf\n# difficulty: hard\npress 1\npress 3\nsay agent\n"),
            named("h", "# expect: no-transfer\npress 7\nsay thanks\n"),
        ];
        let r = evaluate(&scripts, &engine, &settings()).unwrap();
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
        assert_eq!(r.cases[0].actual.as_ref().map(|t| t.reason), Some(Reason::AskedForHuman));
        assert_eq!(r.cases[5].actual.as_ref().map(|t| t.reason), Some(Reason::Operator));
        assert_eq!(r.cases[6].actual.as_ref().map(|t| t.reason), Some(Reason::MenuChoice));
        assert_eq!(r.cases[4].ended.as_deref(), Some("no_input"), "the IVR gave up on the silent caller");
        assert_eq!(r.cases[4].trace.len(), 1);
        assert!(r.to_string().contains("overall:"));
        assert!(serde_json::to_string(&r).is_ok());
    }

    #[test]
    fn the_session_decides_not_a_model_of_it() {
        let engine = LocalEngine::default();
        // The IVR says goodbye to a caller who is done: what comes after is never heard.
        let done = named("done", "# expect: no-transfer\nsay thats all thank you bye\nsay agent\n");
        // The menu takes one key: the first of several counts.
        let keys = named("keys", "# expect: transfer sales by dtmf\npress 30012#\n");
        let r = evaluate(&[done, keys], &engine, &settings()).unwrap();
        assert_eq!(r.cases[0].verdict, Verdict::Correct, "{:?}", r.cases[0]);
        assert_eq!(r.cases[0].ended.as_deref(), Some("caller_done"));
        assert_eq!(r.cases[1].verdict, Verdict::Correct, "{:?}", r.cases[1]);
    }

    #[test]
    fn labels_that_cannot_be_used_name_the_file_and_line() {
        let err = |text: &str| NamedScript::parse("x", "dir/x.ivrx", text).unwrap_err().to_string();
        assert!(err("say hi\n").starts_with("script dir/x.ivrx: no `# expect:` line"), "{}", err("say hi\n"));
        let cases = [
            ("# expect: soon\nsay hi\n", "line 1: cannot read `# expect: soon`"),
            (
                "say hi\n\n# expect: transfer support at 2\n",
                "line 3: expects a transfer at the caller's line 2, but the script says 1",
            ),
            ("# expect: transfer support by dtmf\nsay hi\n", "line 1: expects a transfer by key press"),
            (
                "# expect: no-transfer\n# expect: no-transfer\nsay hi\n",
                "line 2: a second `# expect:` line (the first is line 1)",
            ),
            ("# expect: no-transfer\n# difficulty: hrad\nsay hi\n", "line 2: `# difficulty: hrad`"),
            ("# expect: no-transfer\nsay hi\nshout hi\n", "line 3: unknown step"),
        ];
        for (text, needle) in cases {
            let e = err(text);
            assert!(e.starts_with("script dir/x.ivrx, ") && e.contains(needle), "{text:?}: {e}");
        }
        let unknown = named("q", "# category: buy\n# expect: transfer deals at 1\nsay i want to upgrade\n");
        let e = evaluate(&[unknown], &LocalEngine::default(), &settings()).unwrap_err().to_string();
        assert!(e.starts_with("script q.ivrx, line 2: no queue named \"deals\""), "{e}");
        assert!(e.contains("sales, support"), "{e}");
    }
}
