//! `ivrx score`: scores utterances given as arguments, or one per line of
//! stdin, with the local engine or Symbl.
//!
//! Output: a table for people, or with `--json` one JSON object per utterance
//! (NDJSON): `{"text", "score", "label", "trackers"}` where `trackers` is a list
//! of hit objects `{"tracker", "phrase"}`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use super::{ColorChoice, EngineChoice, Output, ScoreArgs};
use crate::intel::{Label, LocalEngine, Score, Scorer, TrackerHit};
use crate::symbl::{CredentialSearch, SymblClient, SymblConfig, SymblEngine, SymblEngineOptions};

/// Runs `ivrx score`.
pub async fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let texts = if args.text.is_empty() { read_stdin()? } else { args.text.clone() };
    let texts: Vec<String> = texts.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if texts.is_empty() {
        anyhow::bail!("nothing to score: give utterances as arguments or one per line on stdin");
    }
    let local = LocalEngine::default();
    let scores = match args.engine.unwrap_or(EngineChoice::Local) {
        EngineChoice::Local => texts.iter().map(|t| local.score(t)).collect(),
        EngineChoice::Symbl => score_with_symbl(&args, &texts, &local).await?,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        for (text, score) in texts.iter().zip(&scores) {
            writeln!(out, "{}", json_line(text, score))?;
        }
    } else {
        writeln!(out, "{}", table(&texts, &scores, Output::detect(ColorChoice::Auto)))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading utterances from stdin, one per line (end with Ctrl-D)");
    }
    stdin.lock().lines().collect::<Result<_, _>>().context("cannot read stdin")
}

async fn score_with_symbl(args: &ScoreArgs, texts: &[String], local: &LocalEngine) -> anyhow::Result<Vec<Score>> {
    let loaded = CredentialSearch::from_system(args.symbl_conf.clone()).load()?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let client = SymblClient::new(loaded.credentials, SymblConfig::from_env())?;
    let options = SymblEngineOptions {
        trackers: local.trackers().configs().to_vec(),
        job_deadline: std::time::Duration::from_secs(60),
        ..SymblEngineOptions::default()
    };
    let engine = SymblEngine::new(client, options);
    engine.score_texts(texts).await.context("scoring with Symbl failed")
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
    let mut table = Table::new();
    table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(vec!["text", "score", "label", "trackers"]);
    for (text, score) in texts.iter().zip(scores) {
        let mut label = Cell::new(score.label.as_str());
        if output.color {
            label = label.fg(match score.label {
                Label::Negative => Color::Red,
                Label::Neutral => Color::Grey,
                Label::Positive => Color::Green,
            });
        }
        let trackers: Vec<String> = score.trackers.iter().map(|h| format!("{} ({})", h.tracker, h.phrase)).collect();
        table.add_row(vec![
            Cell::new(text),
            Cell::new(format!("{:+.3}", score.score)),
            label,
            Cell::new(trackers.join(", ")),
        ]);
    }
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
        let out = Output { color: false, tty: false };
        let hit = TrackerHit::new("churn_risk", "cancel");
        let t = table(&["I will cancel".into()], &[score(-0.4, vec![hit])], out).to_string();
        assert!(t.contains("I will cancel") && t.contains("-0.400") && t.contains("churn_risk (cancel)"), "{t}");
        assert!(!t.contains('\u{1b}'), "{t:?}");
    }
}
