//! `ivrx analyze` over a store produced by real sandbox calls through `ivrx serve`.

mod serve_support;

use std::path::Path;

use serde_json::Value;
use serve_support::{ivrx, Serve};

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.ivrx")))
        .unwrap()
}

/// A store with the bundled callers (each twice) and their reports.
fn store() -> (Serve, Vec<Value>) {
    let s = Serve::start("", &[]);
    let mut reports = Vec::new();
    for round in 0..2 {
        let names = ["calm", "frustrated", "asks_for_human", "interested_buyer", "dtmf", "hangs_up_during_transfer"];
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let path = s.script(&format!("{n}-{round}"), &example(n));
                let (dir, sandbox) = (s.dir.path().to_path_buf(), s.sandbox.clone());
                std::thread::spawn(move || {
                    let out = ivrx(&dir)
                        .args([
                            "dial",
                            "--sandbox",
                            "--json",
                            "--sandbox-url",
                            &sandbox,
                            "--script",
                            path.to_str().unwrap(),
                        ])
                        .output()
                        .unwrap();
                    serde_json::from_str::<Value>(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
                })
            })
            .collect();
        reports.extend(handles.into_iter().map(|h| h.join().unwrap()));
        assert!(reports.iter().all(|r| r["end_reason"].is_string()), "every call ended: {reports:?}");
    }
    (s, reports)
}

fn analyze(s: &Serve, args: &[&str]) -> std::process::Output {
    let db = s.db();
    let out = ivrx(s.dir.path()).arg("analyze").arg("--db").arg(&db).args(args).output().unwrap();
    assert!(out.status.success(), "analyze {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn analyze_agrees_with_the_calls_that_happened() {
    let (s, reports) = store();
    let decided = reports.iter().filter(|r| r["queue"].is_string()).count();
    let connected = reports.iter().filter(|r| r["transferred"] == true).count();

    let json: Value = serde_json::from_slice(&analyze(&s, &["--json"]).stdout).unwrap();
    let calls = json["calls"].as_array().unwrap();
    assert_eq!(calls.len(), reports.len());
    assert_eq!(calls.iter().filter(|c| c["decided"] == true).count(), decided, "{}", json["summary"]);
    assert_eq!(calls.iter().filter(|c| c["transferred"] == true).count(), connected);
    for r in &reports {
        let id = r["conversation_id"].as_str().unwrap();
        let c = calls.iter().find(|c| c["conversation_id"] == id).expect("every call is analyzed");
        assert_eq!(c["queue"], r["queue"], "{id}");
        assert_eq!(c["reason"], r["reason"], "{id}");
        assert_eq!(c["decision_ms"], r["decision_ms"], "{id}");
    }
    let reasons = serde_json::to_string(&json["reasons"]).unwrap();
    for reason in ["asked_for_human", "buying_signal", "operator"] {
        assert!(reasons.contains(reason), "{reason} in {reasons}");
    }
    // The frustrated caller's decline is near words about the broken service.
    let terms = serde_json::to_string(&json["topics"]["terms"]).unwrap();
    assert!(!json["topics"]["terms"].as_array().unwrap().is_empty(), "topics near the decline: {terms}");

    // Filters.
    let support: Value = serde_json::from_slice(&analyze(&s, &["--json", "--queue", "support"]).stdout).unwrap();
    let n_support = reports.iter().filter(|r| r["queue"] == "support").count();
    assert_eq!(support["calls"].as_array().unwrap().len(), n_support);
    let not_transferred: Value =
        serde_json::from_slice(&analyze(&s, &["--json", "--transferred=false"]).stdout).unwrap();
    assert_eq!(not_transferred["calls"].as_array().unwrap().len(), reports.len() - connected);

    // CSV: one row per call, for pandas.
    let csv = String::from_utf8(analyze(&s, &["--format", "csv"]).stdout).unwrap();
    assert_eq!(csv.lines().count(), reports.len() + 1);
    assert!(csv.lines().next().unwrap().starts_with("conversation_id,"));

    // Tables for people.
    let table = String::from_utf8(analyze(&s, &[]).stdout).unwrap();
    assert!(table.contains("asked_for_human"), "{table}");

    // Charts and the HTML report.
    let chart = s.dir.path().join("chart.svg");
    let html = s.dir.path().join("report.html");
    analyze(&s, &["--chart", chart.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "an SVG file");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("</html>"));
    assert!(!page.contains("<script src") && !page.contains("<link "), "self-contained");
}

#[test]
fn replaying_the_policy_with_other_thresholds_reports_the_difference() {
    let (s, _reports) = store();
    let strict = s.dir.path().join("strict.toml");
    // Ignore buying signals and requests for a person: those transfers are lost.
    std::fs::write(
        &strict,
        "[policy.trackers.buying_signal]\naction = \"ignore\"\n[policy.trackers.asks_for_human]\naction = \"ignore\"\n",
    )
    .unwrap();
    let json: Value =
        serde_json::from_slice(&analyze(&s, &["--json", "--replay-policy", strict.to_str().unwrap()]).stdout).unwrap();
    let replay = &json["replay"];
    assert!(replay.is_object(), "{json}");
    let text = serde_json::to_string(replay).unwrap();
    assert!(text.contains("lost"), "{text}");
    let lost = replay["lost"].as_array().map(|a| a.len()).unwrap_or(0)
        + replay["counts"]["lost"].as_u64().unwrap_or(0) as usize;
    assert!(lost > 0, "ignoring buying signals loses the buyers' transfers: {text}");
}
