//! `ivrx score`: scores utterances given as arguments, or one per line of
//! stdin, with the local engine or Symbl.
//!
//! Output: a table for people, or with `--json` one JSON object per utterance
//! (NDJSON): `{"text", "score", "label", "trackers"}` where `trackers` is a list
//! of hit objects `{"tracker", "phrase"}`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use comfy_table::{Cell, Color, Table};

use super::output::keep_whole;
use super::{exit, ColorChoice, EngineChoice, Output, ScoreArgs};
use crate::config::{Config, EngineKind, Mode};
use crate::intel::{Label, Score, TrackerHit};
use crate::server::calls::Engine;

/// Runs `ivrx score`.
pub async fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let from_args = !args.text.is_empty();
    let texts = if from_args { args.text.clone() } else { read_stdin()? };
    let texts: Vec<String> = texts.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        let message = "nothing to score: give utterances as arguments or one per line on stdin";
        return Err(if from_args { exit::usage("score", message) } else { anyhow::anyhow!(message) });
    }
    let config = engine_config(&args)?;
    let built = super::engine::build_engine(&config)?;
    for warning in &built.warnings {
        eprintln!("warning: {warning}");
    }
    if !args.json {
        eprintln!("{}", describe(Config::file_for(args.config.as_deref()).as_deref(), &config));
    }
    let scores = match built.engine {
        Engine::Local(local) => texts.iter().map(|t| local.score(t)).collect(),
        Engine::Symbl { symbl, .. } | Engine::SymblPstn { symbl, .. } => symbl
            .with_job_deadline(Duration::from_secs(60))
            .score_texts(&texts)
            .await
            .context("scoring with Symbl failed")?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        for (text, score) in texts.iter().zip(&scores) {
            writeln!(out, "{}", json_line(text, score))?;
        }
    } else {
        writeln!(out, "{}", table(&texts, &scores, Output::detect(ColorChoice::Auto)))?;
    }
    Ok(exit::code(exit::OK))
}

/// The configuration `serve` would run with (`--config`, `IVRX_CONFIG` or the
/// default file), with `--engine` and `--symbl-conf` applied on top.
fn engine_config(args: &ScoreArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(engine) = args.engine {
        config.engine.kind = match engine {
            EngineChoice::Local => EngineKind::Local,
            EngineChoice::Symbl => EngineKind::Symbl,
        };
    }
    if let Some(conf) = &args.symbl_conf {
        config.engine.symbl_conf = Some(conf.clone());
    }
    config.validate(Mode::Sandbox)?;
    Ok(config)
}

/// Which engine scores, and from which configuration.
fn describe(file: Option<&Path>, config: &Config) -> String {
    let engine = match config.engine.kind {
        EngineKind::Local => "the local engine",
        EngineKind::Symbl => "Symbl",
    };
    let trackers = match config.trackers.len() {
        0 => String::new(),
        n => format!(" and {n} configured tracker{}", if n == 1 { "" } else { "s" }),
    };
    match file {
        Some(path) => format!("scoring with {engine}{trackers}, configuration {}", path.display()),
        None => {
            let default = Config::default_path().map(|p| format!(": no {}", p.display())).unwrap_or_default();
            format!("scoring with {engine}{trackers}, built-in defaults{default}")
        }
    }
}

fn read_stdin() -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading utterances from stdin, one per line (end with Ctrl-D)");
    }
    stdin.lock().lines().collect::<Result<_, _>>().context("cannot read stdin")
}

/// One NDJSON line, fields in this order.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    text: &'a str,
    score: f64,
    label: Label,
    trackers: &'a [TrackerHit],
}

fn json_line(text: &str, score: &Score) -> String {
    let line = JsonLine { text, score: score.score, label: score.label, trackers: &score.trackers };
    serde_json::to_string(&line).unwrap_or_default()
}

fn table(texts: &[String], scores: &[Score], output: Output) -> Table {
    let mut table = super::output::table(output, &["text", "score", "label", "trackers (what was said)"]);
    for (text, score) in texts.iter().zip(scores) {
        let mut label = Cell::new(score.label.as_str());
        if output.color {
            label = label.fg(match score.label {
                Label::Negative => Color::Red,
                Label::Neutral => Color::Grey,
                Label::Positive => Color::Green,
            });
        }
        let trackers: Vec<String> = score.trackers.iter().map(|h| format!("{} ({})", h.tracker, h.said())).collect();
        table.add_row(vec![
            Cell::new(text),
            Cell::new(format!("{:+.3}", score.score)),
            label,
            Cell::new(trackers.join(", ")),
        ]);
    }
    keep_whole(&mut table, [1, 2]);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(value: f64, trackers: Vec<TrackerHit>) -> Score {
        Score { score: value, label: Label::from_score(value), trackers, engine: "local".into() }
    }

    #[test]
    fn json_lines_have_the_documented_shape() {
        let hit = TrackerHit::new("asks_for_human", "agent");
        let line = json_line("get me an agent", &score(-0.5, vec![hit]));
        assert_eq!(
            line,
            r#"{"text":"get me an agent","score":-0.5,"label":"negative","trackers":[{"tracker":"asks_for_human","phrase":"agent"}]}"#
        );
    }

    #[test]
    fn the_table_has_no_colour_when_colour_is_off() {
        let hit = TrackerHit { matched: "cancel my account".into(), ..TrackerHit::new("churn_risk", "cancel *") };
        let t = table(&["I will cancel my account".into()], &[score(-0.4, vec![hit])], Output::PLAIN).to_string();
        assert!(t.contains("-0.400") && t.contains("churn_risk (cancel my account)"), "the words said: {t}");
        assert!(!t.contains('\u{1b}'), "{t:?}");
    }
}
