//! `ivrx eval DIR`: plays a directory of labelled caller scripts through the
//! production session, engine and policy, in process, and reports how the
//! escalation decisions compare with the labels; `--compare` puts a second
//! configuration beside the first.
//!
//! Output: tables and the list of misses for people; with `--json` one JSON
//! document, `{"dir", "runs": [{"config", "report"}]}` (one run, or two with
//! `--compare`), where `report` is an [`EvalReport`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};
use serde::Serialize;

use super::{exit, ColorChoice, EvalArgs, Output};
use crate::config::{Config, EngineKind, Mode};
use crate::eval::{self, CaseResult, EvalReport, Metrics, Verdict};

/// One configuration's run.
#[derive(Serialize)]
struct Run {
    /// The configuration file, or `None` for the defaults.
    config: Option<String>,
    report: EvalReport,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    dir: String,
    runs: &'a [Run],
}

/// Runs `ivrx eval`.
pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let scripts = eval::load_corpus(&args.dir)?;
    let mut runs = vec![evaluate(&scripts, args.config.as_deref())?];
    if let Some(other) = &args.compare {
        runs.push(evaluate(&scripts, Some(other))?);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = JsonOut { dir: args.dir.display().to_string(), runs: &runs };
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(exit::code(exit::OK));
    }
    let output = Output::detect(ColorChoice::Auto);
    let what = format!("{} scripts in {}", scripts.len(), args.dir.display());
    match runs.as_slice() {
        [one] => {
            writeln!(out, "{what}, configuration {}, engine {}\n", label(&one.config), one.report.engine)?;
            writeln!(out, "{}", figures(&one.report))?;
            let misses: Vec<&CaseResult> = one.report.cases.iter().filter(|c| c.verdict != Verdict::Correct).collect();
            if misses.is_empty() {
                writeln!(out, "\nno misses")?;
            } else {
                writeln!(out, "\nmisses ({}):\n{}", misses.len(), misses_table(&misses, output))?;
            }
        }
        [a, b] => {
            writeln!(out, "{what}: {} (A) beside {} (B)\n", label(&a.config), label(&b.config))?;
            writeln!(out, "{}", side_by_side(&a.report, &b.report))?;
            writeln!(out, "\n{}", differences(&a.report, &b.report, output))?;
        }
        _ => {}
    }
    Ok(exit::code(exit::OK))
}

fn label(config: &Option<String>) -> String {
    config.clone().unwrap_or_else(|| "the defaults".into())
}

/// Plays every script with one configuration (the default file when `path` is `None`).
fn evaluate(scripts: &[eval::NamedScript], path: Option<&Path>) -> anyhow::Result<Run> {
    let config = super::load_config(path)?;
    config.validate(Mode::Sandbox)?;
    if config.engine.kind != EngineKind::Local {
        eprintln!("note: the evaluation scores with the local engine (Symbl is not reached offline)");
    }
    let engine = super::engine::local_engine(&config);
    let mut settings = config.session_settings(config.sandbox.connection_id.clone(), None);
    settings.symbl_pstn = false;
    let report = eval::evaluate(scripts, &engine, &Arc::new(settings))?;
    let config = path.map(PathBuf::from).or_else(|| Config::default_path().filter(|p| p.exists()));
    Ok(Run { config: config.map(|p| p.display().to_string()), report })
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

fn mean(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// The figures, in the order they are shown: (name, value).
fn metric_rows(m: &Metrics) -> [(&'static str, String); 8] {
    [
        ("scripts", m.scripts.to_string()),
        ("correct", m.correct.to_string()),
        ("precision", ratio(m.precision)),
        ("recall", ratio(m.recall)),
        ("false-transfer rate", ratio(m.false_transfer_rate)),
        ("queue accuracy", ratio(m.queue_accuracy)),
        ("exact trigger", ratio(m.exact_trigger_rate)),
        ("utterances to transfer", mean(m.mean_utterances_to_transfer)),
    ]
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn right(text: impl Into<String>) -> Cell {
    Cell::new(text.into()).set_alignment(CellAlignment::Right)
}

/// Overall, regular, hard and per-category figures.
fn figures(r: &EvalReport) -> Table {
    let mut t = table();
    let mut header = vec![Cell::new("")];
    header.extend(metric_rows(&r.overall).map(|(name, _)| right(name)));
    t.set_header(header);
    let groups = [("all", &r.overall), ("regular", &r.regular), ("hard", &r.hard)];
    let categories = r.by_category.iter().map(|(c, m)| (c.as_str(), m));
    for (name, m) in groups.into_iter().chain(categories) {
        let mut row = vec![Cell::new(name)];
        row.extend(metric_rows(m).map(|(_, v)| right(v)));
        t.add_row(row);
    }
    t
}

fn verdict_cell(v: Verdict, output: Output) -> Cell {
    let cell = Cell::new(v.as_str());
    match (output.color, v) {
        (false, _) => cell,
        (true, Verdict::Correct) => cell.fg(Color::Green),
        (true, Verdict::Late | Verdict::Early | Verdict::OtherTrigger) => cell.fg(Color::Yellow),
        (true, _) => cell.fg(Color::Red),
    }
}

fn misses_table(misses: &[&CaseResult], output: Output) -> Table {
    let mut t = table();
    t.set_header(vec!["script", "", "expected", "got", "verdict"]);
    for c in misses {
        t.add_row(vec![
            Cell::new(&c.name),
            Cell::new(if c.hard { "hard" } else { "" }),
            Cell::new(c.expected.to_string()),
            Cell::new(c.outcome()),
            verdict_cell(c.verdict, output),
        ]);
    }
    t
}

/// The overall figures of two runs, with the change from A to B.
fn side_by_side(a: &EvalReport, b: &EvalReport) -> Table {
    let mut t = table();
    t.set_header(vec![Cell::new(""), right("A"), right("B"), right("B − A")]);
    let groups = [("", &a.overall, &b.overall), ("regular ", &a.regular, &b.regular), ("hard ", &a.hard, &b.hard)];
    for (prefix, ma, mb) in groups {
        for ((name, va), (_, vb)) in metric_rows(ma).into_iter().zip(metric_rows(mb)) {
            let delta = match (va.parse::<f64>(), vb.parse::<f64>()) {
                (Ok(x), Ok(y)) if (y - x).abs() > 1e-12 => format!("{:+.3}", y - x),
                (Ok(_), Ok(_)) => "=".into(),
                _ => String::new(),
            };
            t.add_row(vec![Cell::new(format!("{prefix}{name}")), right(va), right(vb), right(delta)]);
        }
    }
    t
}

/// The scripts whose outcome differs between the two runs.
fn differences(a: &EvalReport, b: &EvalReport, output: Output) -> String {
    let changed: Vec<(&CaseResult, &CaseResult)> =
        a.cases.iter().zip(&b.cases).filter(|(x, y)| x.actual != y.actual || x.verdict != y.verdict).collect();
    if changed.is_empty() {
        return "no script's outcome differs".into();
    }
    let mut t = table();
    t.set_header(vec!["script", "expected", "A got", "A", "B got", "B"]);
    for (x, y) in &changed {
        t.add_row(vec![
            Cell::new(&x.name),
            Cell::new(x.expected.to_string()),
            Cell::new(x.outcome()),
            verdict_cell(x.verdict, output),
            Cell::new(y.outcome()),
            verdict_cell(y.verdict, output),
        ]);
    }
    format!("scripts whose outcome differs ({}):\n{t}", changed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_has_a_row() {
        let m = Metrics { scripts: 3, correct: 2, precision: Some(0.5), ..Metrics::default() };
        let rows = metric_rows(&m);
        assert_eq!(rows[0], ("scripts", "3".to_string()));
        assert_eq!(rows[2], ("precision", "0.500".to_string()));
        assert_eq!(rows[3], ("recall", "-".to_string()));
        let r = EvalReport {
            engine: "local".into(),
            overall: m.clone(),
            hard: Metrics::default(),
            regular: m,
            by_category: Default::default(),
            cases: Vec::new(),
        };
        let shown = side_by_side(&r, &r).to_string();
        assert!(shown.contains("hard precision") && shown.contains('='), "{shown}");
    }
}
