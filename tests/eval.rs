//! Runs the labelled corpus through the production path (the call session
//! with the default configuration, the local engine, the sandbox carrier in
//! process), prints the report and holds the figures to their floors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivrx::eval::{evaluate, evaluate_dir, load_corpus, EvalReport, Expectation};
use ivrx::intel::LocalEngine;
use ivrx::session::SessionSettings;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("eval").join(name)
}

fn report() -> EvalReport {
    evaluate_dir(&corpus("corpus"), &LocalEngine::default(), &Arc::new(SessionSettings::default()))
        .expect("the corpus loads")
}

/// The third round of development scripts (`gen-*`), written for the failure
/// kinds in other wordings after the first 137, or those 137 (`third` false).
fn part(third: bool) -> EvalReport {
    let scripts = load_corpus(&corpus("corpus")).expect("the corpus loads");
    let part: Vec<_> = scripts.into_iter().filter(|s| s.name.starts_with("gen-") == third).collect();
    evaluate(&part, &LocalEngine::default(), &Arc::new(SessionSettings::default())).expect("the scripts play")
}

/// The floors sit a little under what the engine achieves, so a regression
/// fails the build. The first 137 scripts keep about a fifth of hard cases,
/// several of which are still missed (see the report).
#[test]
fn corpus_meets_the_floors() {
    let r = part(false);
    println!("{r}");
    let m = &r.overall;
    assert!(r.cases.len() >= 60, "{} scripts", r.cases.len());
    assert!(m.precision.unwrap() >= 0.95, "precision {:?}", m.precision);
    assert!(m.recall.unwrap() >= 0.85, "recall {:?}", m.recall);
    assert!(m.false_transfer_rate.unwrap() <= 0.05, "false-transfer rate {:?}", m.false_transfer_rate);
    assert!(m.queue_accuracy.unwrap() >= 0.95, "queue accuracy {:?}", m.queue_accuracy);
    assert!(m.exact_trigger_rate.unwrap() >= 0.8, "exact trigger {:?}", m.exact_trigger_rate);
    assert!(m.mean_lateness.unwrap().abs() <= 0.5, "mean lateness {:?}", m.mean_lateness);
    assert!(r.regular.recall.unwrap() >= 0.95, "regular recall {:?}", r.regular.recall);
    let hard = r.cases.iter().filter(|c| c.hard).count() as f64 / r.cases.len() as f64;
    assert!(hard >= 0.15, "hard share {hard}");
}

/// The third round, held to floors of its own: no calm caller transferred,
/// none sent to the wrong queue, and most of the transfers found.
#[test]
fn third_round_meets_its_floors() {
    let r = part(true);
    println!("{r}");
    let m = &r.overall;
    assert!(r.cases.len() >= 30, "{} scripts", r.cases.len());
    assert!(m.precision.unwrap() >= 0.95, "precision {:?}", m.precision);
    assert!(m.recall.unwrap() >= 0.65, "recall {:?}", m.recall);
    assert_eq!(m.false_transfer_rate, Some(0.0), "false-transfer rate");
    assert!(m.exact_trigger_rate.unwrap() >= 0.9, "exact trigger {:?}", m.exact_trigger_rate);
}

/// `IVRX_EVAL_TRACE=1 cargo test --test eval -- --nocapture` prints the
/// utterance-by-utterance numbers of every script the engine gets wrong.
#[test]
fn trace_failures_on_request() {
    if std::env::var_os("IVRX_EVAL_TRACE").is_none() {
        return;
    }
    for c in report().cases.iter().filter(|c| c.verdict != ivrx::eval::Verdict::Correct) {
        println!("{} ({:?})", c.name, c.verdict);
        for s in &c.trace {
            println!("  {:>2} {:+.3} level {:+.3} {:?} {}", s.index, s.score, s.level, s.trackers, s.text);
        }
    }
}

/// The frozen test split parses and keeps the size and labels its README
/// documents. Only that: nothing is tuned on it, so no figure is held here.
#[test]
fn the_holdout_corpus_parses() {
    let scripts = load_corpus(&corpus("holdout")).expect("every holdout script and label parses");
    assert_eq!(scripts.len(), 141);
    let transfers = scripts.iter().filter(|s| matches!(s.expected, Expectation::Transfer { .. })).count();
    assert_eq!((transfers, scripts.iter().filter(|s| s.hard).count()), (75, 26));
    assert!(scripts.iter().all(|s| s.category.is_some()), "every script has a category");
}
