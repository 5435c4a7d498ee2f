//! Every bundled example caller, played through the real `ivrx serve` and the
//! sandbox carrier, ends the way its `# expect:` line says: transferred once, to
//! the right queue, at the right utterance — or not at all.

mod serve_support;

use std::path::Path;

use ivrx::eval::{Expectation, Trigger};
use ivrx::sandbox::Script;
use serde_json::Value;
use serve_support::Serve;

fn examples() -> Vec<(String, String, Expectation)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("ivrx") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let script = Script::parse(&text).unwrap();
        let expect =
            Expectation::parse(script.directive("expect").expect("every example says what to expect")).unwrap();
        out.push((path.file_stem().unwrap().to_string_lossy().into_owned(), text, expect));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn decisions(s: &Serve, conv: &str) -> usize {
    ivrx::store::sqlite::Reader::new(s.db())
        .events(conv, 0)
        .unwrap()
        .iter()
        .filter(|e| e.event.kind() == "decision")
        .count()
}

fn check(name: &str, r: &Value, expect: &Expectation, s: &Serve) {
    let conv = r["conversation_id"].as_str().unwrap();
    match expect {
        Expectation::NoTransfer => {
            assert_eq!(r["queue"], Value::Null, "{name}: no transfer expected: {r}");
            assert_eq!(decisions(s, conv), 0, "{name}");
        }
        Expectation::Transfer { queue, at } => {
            assert_eq!(r["queue"].as_str(), Some(queue.as_str()), "{name}: {r}");
            assert_eq!(decisions(s, conv), 1, "{name}: exactly one decision");
            match at {
                Trigger::Utterance { index } => {
                    assert_eq!(r["trigger_index"].as_u64(), Some(u64::from(*index)), "{name}: trigger: {r}")
                }
                Trigger::Dtmf => {
                    assert_eq!(r["trigger_index"], Value::Null, "{name}");
                    assert_eq!(r["reason"], "operator", "{name}");
                }
            }
            let connected = r["transfers"].as_array().unwrap().iter().filter(|t| t["status"] == "connected").count();
            assert!(connected <= 1, "{name}: at most one agent connected");
        }
    }
}

#[test]
fn every_bundled_caller_ends_as_its_script_expects() {
    let s = Serve::start("", &[]);
    let examples = examples();
    assert!(examples.len() >= 6, "{} examples", examples.len());
    // Place them all at once: calls run in parallel on one server.
    let handles: Vec<_> = examples
        .iter()
        .map(|(name, text, _)| {
            let (name, text) = (name.clone(), text.clone());
            let path = s.script(&name, &text);
            let mut dial = s.command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()]);
            std::thread::spawn(move || {
                let out = dial.output().unwrap();
                assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                serde_json::from_str::<Value>(stdout.lines().last().unwrap()).unwrap()
            })
        })
        .collect();
    for ((name, _, expect), h) in examples.iter().zip(handles) {
        let report = h.join().unwrap();
        check(name, &report, expect, &s);
    }
}

#[test]
fn the_frustrated_caller_is_transferred_with_the_reason_and_the_numbers() {
    let s = Serve::start("", &[]);
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/frustrated.ivrx")).unwrap();
    let r = s.dial(&text);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(r["queue"], "support");
    // The caller's sentiment before the transfer was falling.
    let scores: Vec<f64> = r["utterances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["speaker"] == "caller")
        .take(3)
        .map(|u| u["score"].as_f64().unwrap())
        .collect();
    assert!(scores[2] < scores[0], "{scores:?}");
    let conv = r["conversation_id"].as_str().unwrap();
    let ev = ivrx::store::sqlite::Reader::new(s.db()).events(conv, 0).unwrap();
    let decision = ev.iter().find(|e| e.event.kind() == "decision").unwrap();
    let v = serde_json::to_value(decision).unwrap();
    assert!(v["decision"]["numbers"]["level"].as_f64().unwrap() < -0.3, "{v}");
    assert!(!v["decision"]["trigger_text"].as_str().unwrap().is_empty());
}
