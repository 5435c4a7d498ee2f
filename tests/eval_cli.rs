//! `ivrx eval`: the binary on the bundled corpus (figures identical to the
//! library's run through the session), `--compare`, and the errors a team
//! meets writing its own scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use ivrx::eval::evaluate_dir;
use ivrx::intel::LocalEngine;
use ivrx::session::SessionSettings;
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary from the repository root, with home and config
/// directories inside `home` so no user configuration is read.
fn ivrx(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ivrx"))
        .args(args)
        .current_dir(root())
        .env_remove("IVRX_CONFIG")
        .env("HOME", home.join("home"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run ivrx")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The scripts of the development split.
fn corpus_size() -> usize {
    std::fs::read_dir(root().join("eval/corpus"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "ivrx"))
        .count()
}

#[test]
fn the_bundled_corpus_gives_the_library_figures() {
    let home = tempfile::tempdir().unwrap();
    let doc = json(&ivrx(home.path(), &["eval", "eval/corpus", "--json"]));
    assert_eq!(doc["dir"], "eval/corpus");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["config"], Value::Null, "the defaults");
    let report = &runs[0]["report"];
    assert_eq!(report["overall"]["scripts"], corpus_size());
    let library =
        evaluate_dir(&root().join("eval/corpus"), &LocalEngine::default(), &Arc::new(SessionSettings::default()))
            .unwrap();
    let expected = serde_json::to_value(&library.overall).unwrap();
    for (key, value) in expected.as_object().unwrap() {
        let got = &report["overall"][key];
        match (value.as_f64(), got.as_f64()) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{key}: {a} vs {b}"),
            _ => assert_eq!(got, value, "{key}"),
        }
    }
    assert_eq!(report["cases"].as_array().unwrap().len(), corpus_size());
    for key in ["precision", "recall", "false_transfer_rate", "queue_accuracy", "exact_trigger_rate"] {
        assert!(report["overall"][key].is_f64(), "{key}");
    }
    assert!(report["overall"]["mean_utterances_to_transfer"].is_f64());
}

#[test]
fn people_get_the_figures_and_every_miss() {
    let home = tempfile::tempdir().unwrap();
    let out = ivrx(home.path(), &["eval", "eval/corpus"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let head = format!("{} scripts in eval/corpus, configuration the defaults, engine local", corpus_size());
    assert!(text.starts_with(&head), "{text}");
    for heading in
        ["precision", "recall", "false-transfer rate", "queue accuracy", "exact trigger", "utterances to transfer"]
    {
        assert!(text.contains(heading), "{heading}: {text}");
    }
    let doc = json(&ivrx(home.path(), &["eval", "eval/corpus", "--json"]));
    let misses: Vec<&str> = doc["runs"][0]["report"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "correct")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(text.contains(&format!("misses ({}):", misses.len())), "{text}");
    for name in misses {
        assert!(text.contains(name), "miss {name} not listed");
    }
}

#[test]
fn compare_shows_two_configurations_side_by_side() {
    let home = tempfile::tempdir().unwrap();
    let other = write(home.path(), "no-sales.toml", "[policy.trackers.buying_signal]\naction = \"ignore\"\n");
    let other = other.to_str().unwrap();
    let doc = json(&ivrx(home.path(), &["eval", "eval/corpus", "--compare", other, "--json"]));
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["config"], other);
    let outcome = |run: &Value, name: &str| {
        let cases = run["report"]["cases"].as_array().unwrap();
        cases.iter().find(|c| c["name"] == name).unwrap()["actual"].clone()
    };
    assert_eq!(outcome(&runs[0], "buy-upgrade-phone")["queue"], "sales");
    assert_eq!(outcome(&runs[1], "buy-upgrade-phone"), Value::Null, "buying signals ignored");

    let out = ivrx(home.path(), &["eval", "eval/corpus", "--compare", other]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("the defaults (A) beside {other} (B)")), "{text}");
    assert!(text.contains("B − A") && text.contains("hard recall"), "{text}");
    assert!(text.contains("scripts whose outcome differs") && text.contains("buy-upgrade-phone"), "{text}");
}

#[test]
fn a_malformed_script_or_label_names_the_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("calls");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "a-good.ivrx", "# expect: no-transfer\nsay hello\n");
    let bad = write(&dir, "b-bad.ivrx", "# category: human\n# expect: transfer support at two\nsay agent\n");
    let run = |home: &Path| ivrx(home, &["eval", dir.to_str().unwrap()]);
    let out = run(home.path());
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("script {}, line 2: cannot read `# expect: transfer support at two`", bad.display())),
        "{e}"
    );

    write(&dir, "b-bad.ivrx", "# expect: transfer support at 1\nsay agent\nyell hello\n");
    let e = stderr(&run(home.path()));
    assert!(e.contains(&format!("script {}, line 3: unknown step", bad.display())), "{e}");

    write(&dir, "b-bad.ivrx", "# expect: transfer helpdesk at 1\nsay agent\n");
    let e = stderr(&run(home.path()));
    assert!(e.contains(&format!("script {}, line 1: no queue named \"helpdesk\"", bad.display())), "{e}");

    std::fs::remove_file(&bad).unwrap();
    write(&dir, "c-unlabelled.ivrx", "say hello\n");
    let e = stderr(&run(home.path()));
    assert!(e.contains("c-unlabelled.ivrx: no `# expect:` line"), "{e}");

    let empty = home.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = ivrx(home.path(), &["eval", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no .ivrx scripts in"), "{}", stderr(&out));
}

#[test]
fn a_retired_policy_key_still_loads_with_a_warning() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("calls");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "sales.ivrx", "# expect: transfer sales by dtmf\npress 3\n");
    let config = write(home.path(), "old.toml", "[policy]\nsales_digit = \"5\"\n");
    let out = ivrx(home.path(), &["eval", dir.to_str().unwrap(), "--config", config.to_str().unwrap(), "--json"]);
    let doc = json(&out);
    assert!(
        stderr(&out).contains("warning: policy.sales_digit is no longer read: keys are routed by the menu"),
        "{}",
        stderr(&out)
    );
    assert_eq!(doc["runs"][0]["report"]["cases"][0]["verdict"], "correct", "the menu's key 3 still sells");
}

#[test]
fn help_documents_the_labels() {
    let home = tempfile::tempdir().unwrap();
    let text = stdout(&ivrx(home.path(), &["eval", "--help"]));
    for needle in ["# expect: transfer support at 3", "--compare", "--config", "--json", "false-transfer rate"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
