//! `ivrx analyze` end to end: stores are built by feeding domain events
//! through the real `Store` (so every table is projected as in production),
//! then the real binary runs over them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use ivrx::config::TransferMode;
use ivrx::intel::{Label, TrackerHit};
use ivrx::policy::{Decision, PolicySnapshot, Reason};
use ivrx::session::{DecisionSource, DomainEvent, Recorded, Role, Speaker, TransferStatus};
use ivrx::store::{Location, StoreOptions, Transition};
use serde_json::Value;

/// Builds one conversation's events by hand (scores and decisions are given,
/// so the tests do not depend on the engine or policy in this build).
struct Call {
    id: String,
    t0: DateTime<Utc>,
    events: Vec<Recorded>,
    seq: u32,
    caller: u32,
}

impl Call {
    fn new(id: &str, t0: &str) -> Self {
        let t0 = DateTime::parse_from_rfc3339(t0).unwrap().with_timezone(&Utc);
        let mut c = Self { id: id.into(), t0, events: Vec::new(), seq: 0, caller: 0 };
        let leg = format!("v3:{id}");
        c.push(
            0,
            DomainEvent::CallStarted {
                call_control_id: leg.clone(),
                direction: "incoming".into(),
                from: Some("+15550001".into()),
                to: Some("+18005550100".into()),
            },
        );
        c.push(
            0,
            DomainEvent::LegJoined {
                role: Role::Caller,
                call_control_id: leg,
                call_leg_id: None,
                call_session_id: None,
                from: None,
                to: None,
            },
        );
        c
    }

    fn push(&mut self, offset_ms: u64, event: DomainEvent) {
        let n = self.events.len() as u64 + 1;
        self.events.push(Recorded::at_offset(&self.id, n, self.t0, offset_ms, event));
    }

    fn say(mut self, offset_s: u64, speaker: Speaker, text: &str, score: f64, trackers: &[(&str, &str)]) -> Self {
        self.seq += 1;
        let caller_index = (speaker == Speaker::Caller).then(|| {
            self.caller += 1;
            self.caller
        });
        let seq = self.seq;
        self.push(
            offset_s * 1000,
            DomainEvent::Utterance { seq, speaker, text: text.into(), confidence: None, caller_index },
        );
        let trackers = trackers.iter().map(|(t, p)| TrackerHit::new(t.to_string(), p.to_string())).collect();
        self.push(
            offset_s * 1000 + 5,
            DomainEvent::Scored {
                seq,
                speaker,
                score,
                label: Label::from_score(score),
                trackers,
                engine: "local".into(),
                policy: None,
            },
        );
        self
    }

    fn caller(self, offset_s: u64, text: &str, score: f64) -> Self {
        self.say(offset_s, Speaker::Caller, text, score, &[])
    }

    fn decide(
        mut self,
        offset_ms: u64,
        source: DecisionSource,
        reason: Reason,
        queue: &str,
        trigger: u32,
        phrase: Option<&str>,
    ) -> Self {
        let trigger_text = self
            .events
            .iter()
            .find_map(|e| match &e.event {
                DomainEvent::Utterance { text, caller_index: Some(i), .. } if *i == trigger => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let decision = Decision {
            reason,
            queue: queue.into(),
            trigger_index: trigger,
            trigger_text,
            trigger_phrase: phrase.map(str::to_string),
            tracker: None,
            numbers: PolicySnapshot::default(),
        };
        self.push(offset_ms, DomainEvent::Decision { source, decision });
        self
    }

    fn transfer(mut self, offset_ms: u64, queue: &str, status: TransferStatus) -> Self {
        self.push(
            offset_ms,
            DomainEvent::Transfer {
                attempt: 1,
                queue: queue.into(),
                target: "+18005550201".into(),
                mode: TransferMode::Warm,
                status,
                detail: None,
                agent_call_control_id: None,
            },
        );
        self
    }

    fn end(mut self, offset_s: u64, reason: &str) -> Vec<Recorded> {
        self.push(offset_s * 1000, DomainEvent::CallEnded { reason: reason.into() });
        self.events
    }
}

fn write_store(path: &Path, calls: Vec<Vec<Recorded>>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let options = StoreOptions { redact_pii: false, ..StoreOptions::default() };
        let store = ivrx::store::open(&Location::sqlite(path), options).await.unwrap();
        for events in calls {
            for e in events {
                drop(store.commit(Transition::events(e.conversation_id.clone(), vec![e])));
            }
        }
        store.flush().await.unwrap();
    });
}

/// Six calls over three days, one of each kind.
fn six_calls() -> Vec<Vec<Recorded>> {
    use DecisionSource::*;
    vec![
        Call::new("c1-frustrated", "2026-03-01T09:15:00Z")
            .caller(5, "my internet has been down since monday", -0.2)
            .caller(15, "i restarted the router twice", -0.1)
            .caller(25, "this is ridiculous i want a refund", -0.8)
            .decide(25_010, Policy, Reason::RapidDecline, "support", 3, None)
            .transfer(25_010, "support", TransferStatus::Dialing)
            .transfer(40_000, "support", TransferStatus::Connected)
            .say(45, Speaker::Agent, "hi this is sam", 0.2, &[])
            .end(200, "completed_with_agent"),
        Call::new("c2-human", "2026-03-01T14:00:00Z")
            .caller(6, "i have a question about my bill", 0.0)
            .say(
                12,
                Speaker::Caller,
                "can i speak to a real person, \"please\"",
                -0.1,
                &[("asks_for_human", "real person")],
            )
            .decide(12_008, Policy, Reason::AskedForHuman, "support", 2, Some("real person"))
            .transfer(12_008, "support", TransferStatus::Dialing)
            .transfer(30_000, "support", TransferStatus::Connected)
            .end(120, "completed_with_agent"),
        Call::new("c3-buyer", "2026-03-02T10:30:00Z")
            .caller(5, "i am thinking about upgrading my plan", 0.3)
            .say(14, Speaker::Caller, "how much is the premium plan", 0.6, &[("buying_signal", "premium")])
            .decide(14_010, Policy, Reason::BuyingSignal, "sales", 2, Some("premium"))
            .transfer(14_010, "sales", TransferStatus::Dialing)
            .transfer(26_000, "sales", TransferStatus::Connected)
            .end(300, "completed_with_agent"),
        Call::new("c4-keypad", "2026-03-02T16:45:00Z")
            .caller(5, "i have no internet again", -0.4)
            .decide(9_000, Menu, Reason::Operator, "support", 0, None)
            .transfer(9_000, "support", TransferStatus::Dialing)
            .transfer(49_000, "support", TransferStatus::Failed)
            .end(70, "caller_hangup"),
        Call::new("c5-calm", "2026-03-03T11:00:00Z")
            .caller(5, "hi i wanted to check a charge on my bill", 0.1)
            .caller(15, "okay that makes sense", 0.4)
            .caller(22, "thanks thats all", 0.5)
            .end(30, "caller_done"),
        Call::new("c6-drop", "2026-03-03T23:30:00Z")
            .caller(5, "my router lights are green", 0.2)
            .caller(14, "but it is still broken and i want a refund", -0.6)
            .caller(20, "fine bye", -0.5)
            .end(25, "caller_hangup"),
    ]
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn with_calls(calls: Vec<Vec<Recorded>>) -> Self {
        let env = Self::new();
        write_store(&env.path("ivrx.db"), calls);
        env
    }

    /// Runs the binary with stdout and stderr piped (never a terminal).
    fn run(&self, args: &[&str]) -> Output {
        let db = self.path("ivrx.db");
        Command::new(env!("CARGO_BIN_EXE_ivrx"))
            .arg("analyze")
            .arg("--db")
            .arg(&db)
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path())
            .env_remove("IVRX_CONFIG")
            .env_remove("IVRX_DB")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "ivrx analyze {args:?} failed:\n{stderr}\n{stdout}");
        (stdout, stderr)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (stdout, _) = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "ivrx analyze {args:?} should fail");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stderr).unwrap()
    }
}

fn ids(doc: &Value) -> Vec<String> {
    doc["calls"].as_array().unwrap().iter().map(|c| c["conversation_id"].as_str().unwrap().to_string()).collect()
}

fn call<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["calls"].as_array().unwrap().iter().find(|c| c["conversation_id"] == id).unwrap()
}

/// Splits one CSV record (RFC 4180; no line breaks inside fields here).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[test]
fn json_reports_per_call_metrics_and_aggregates() {
    let env = Env::with_calls(six_calls());
    let doc = env.json(&[]);
    assert_eq!(doc["ivrx_analyze"], 1);
    assert_eq!(ids(&doc), ["c1-frustrated", "c2-human", "c3-buyer", "c4-keypad", "c5-calm", "c6-drop"]);
    let s = &doc["summary"];
    assert_eq!((s["calls"].as_u64(), s["decided"].as_u64(), s["transferred"].as_u64()), (Some(6), Some(4), Some(3)));
    assert_eq!(s["transfer_rate"].as_f64(), Some(0.5));

    let c1 = call(&doc, "c1-frustrated");
    assert_eq!(c1["sentiment_min"].as_f64(), Some(-0.8));
    assert_eq!(c1["sentiment_final"].as_f64(), Some(-0.8));
    assert!((c1["sentiment_mean"].as_f64().unwrap() - (-1.1 / 3.0)).abs() < 1e-9);
    // (5 s, -0.2), (15 s, -0.1), (25 s, -0.8): slope -0.03/s = -1.8 per minute.
    assert!((c1["sentiment_slope_per_min"].as_f64().unwrap() - (-1.8)).abs() < 1e-9);
    assert_eq!((c1["decision_ms"].as_i64(), c1["connected_ms"].as_i64()), (Some(25_010), Some(40_000)));
    assert_eq!(c1["utterances"], 4);
    assert_eq!(c1["transferred"], true);
    assert_eq!((c1["decline_index"].as_u64(), c1["decline_kind"].as_str()), (Some(3), Some("trigger")));
    let c2 = call(&doc, "c2-human");
    assert_eq!(c2["trigger_phrase"], "real person");
    assert_eq!(c2["trackers"], serde_json::json!(["asks_for_human"]));
    assert_eq!(call(&doc, "c4-keypad")["transfer_status"], "failed");
    assert_eq!(call(&doc, "c6-drop")["decline_kind"], "steepest_drop");
    assert_eq!(call(&doc, "c5-calm")["decline_index"], Value::Null);

    let reasons: Vec<&str> = doc["reasons"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 4);
    assert_eq!(doc["sources"]["menu"], 1);
    let ttt = &doc["time_to_transfer"];
    // Decisions at 9.0, 12.008, 14.01, 25.01 s: median 13.009 s; p90 = 14.01 + 0.7 × 11 = 21.71 s.
    assert!((ttt["decision"]["median_ms"].as_f64().unwrap() - 13_009.0).abs() < 1e-6);
    assert!((ttt["decision"]["p90_ms"].as_f64().unwrap() - 21_710.0).abs() < 1e-6);
    assert_eq!(ttt["connected"]["count"], 3);
    let hist: u64 = ttt["decision_histogram"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(hist, 4);
    assert_eq!(doc["hours"].as_array().unwrap().len(), 24);
    assert_eq!(doc["hours"][23]["calls"], 1);
    assert_eq!(doc["trackers"][0]["calls"], 1);
    assert_eq!(doc["topics"]["calls_with_decline"], 3, "c1 and c2 (trigger), c6 (steepest drop)");
    assert_eq!(doc["topics"]["declines_at_trigger"], 2);
    assert!(doc.get("replay").is_none());
    assert!(doc.get("recent_calls").is_none(), "calls are not listed twice");
}

#[test]
fn csv_has_one_row_per_call_under_a_stable_header() {
    let env = Env::with_calls(six_calls());
    let (csv, _) = env.ok(&["--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7);
    let header = csv_fields(lines[0]);
    assert_eq!(header.iter().map(String::as_str).collect::<Vec<_>>(), ivrx::analyze::render::csv::COLUMNS);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| csv_fields(l)).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let c2 = rows.iter().find(|r| r[0] == "c2-human").unwrap();
    assert_eq!(c2[col("trigger_text")], "can i speak to a real person, \"please\"");
    assert_eq!(c2[col("reason")], "asked_for_human");
    assert_eq!(c2[col("transferred")], "true");
    assert_eq!(c2[col("decision_ms")], "12008");
    assert_eq!(c2[col("hour")], "14");
    let c5 = rows.iter().find(|r| r[0] == "c5-calm").unwrap();
    assert_eq!((c5[col("decided")].as_str(), c5[col("reason")].as_str()), ("false", ""));
}

#[test]
fn tables_are_plain_when_not_on_a_terminal_and_there_is_no_progress_bar() {
    let env = Env::with_calls(six_calls());
    let (out, err) = env.ok(&["--top", "3"]);
    for section in [
        "Summary",
        "Transfer decisions by reason",
        "Time to transfer",
        "Calls by hour of day (UTC)",
        "Topics near the decline",
        "Most recent calls (3 of 6, newest first)",
    ] {
        assert!(out.contains(section), "missing {section}:\n{out}");
    }
    assert!(!out.contains('\x1b'), "no colour when stdout is not a terminal");
    assert!(out.contains("c6-drop") && !out.contains("c1-frustrated"), "only the 3 most recent calls are listed");
    let recent = &out[out.find("Most recent calls").unwrap()..];
    assert!(recent.find("c6-drop") < recent.find("c5-calm"), "newest first:\n{recent}");
    assert!(err.is_empty(), "no progress bar or other noise on stderr: {err:?}");
    let (_, err) = env.ok(&["--format", "csv"]);
    assert!(err.is_empty(), "{err:?}");
}

#[test]
fn filters_select_by_time_queue_and_transfer() {
    let env = Env::with_calls(six_calls());
    let sel = |args: &[&str]| ids(&env.json(args));
    assert_eq!(sel(&["--since", "2026-03-02", "--until", "2026-03-02"]), ["c3-buyer", "c4-keypad"]);
    assert_eq!(sel(&["--since", "2026-03-01T14:00:00Z", "--until", "2026-03-02T16:45:00Z"]), ["c2-human", "c3-buyer"]);
    assert_eq!(sel(&["--since", "2026-03-03T11:30:00+01:00"]), ["c5-calm", "c6-drop"]);
    assert_eq!(sel(&["--queue", "sales"]), ["c3-buyer"]);
    assert_eq!(sel(&["--transferred"]), ["c1-frustrated", "c2-human", "c3-buyer"]);
    assert_eq!(sel(&["--transferred=false", "--queue", "support"]), ["c4-keypad"]);
    let doc = env.json(&["--since", "2027-01-01"]);
    assert_eq!(doc["summary"]["calls"], 0);
    assert_eq!(doc["filters"]["since"], "2027-01-01T00:00:00Z");
    let err = env.fails(&["--since", "last tuesday"]);
    assert!(err.contains("--since") && err.contains("YYYY-MM-DD"), "{err}");
}

/// Twelve calls whose declines (the fourth caller utterance: the policy's
/// trigger in four calls, the steepest drop in the others) talk about refunds
/// and cancelling, while the rest of each call is about routers and bills.
fn planted_calls() -> Vec<Vec<Recorded>> {
    (0..12)
        .map(|i| {
            let id = format!("p{i:02}");
            let t0 = format!("2026-04-01T{:02}:00:00Z", 8 + i);
            let c = Call::new(&id, &t0)
                .caller(5, "hello i have a question about my router bill", 0.3)
                .caller(15, "the router is on the kitchen table", 0.2)
                .caller(
                    25,
                    if i % 2 == 0 { "i want a refund now" } else { "cancel my contract or give me a refund" },
                    -0.1,
                )
                .caller(35, "this is the worst service i will cancel my contract", -0.9)
                .caller(60, "the router bill is fine", 0.1);
            if i % 3 == 0 {
                // Escalated by the policy at the fourth utterance (the decline is the trigger).
                c.decide(35_010, DecisionSource::Policy, Reason::RapidDecline, "support", 4, None)
                    .transfer(35_010, "support", TransferStatus::Dialing)
                    .transfer(50_000, "support", TransferStatus::Connected)
                    .end(90, "completed_with_agent")
            } else {
                c.end(70, "caller_hangup")
            }
        })
        .collect()
}

#[test]
fn topics_near_the_decline_are_the_planted_ones_with_their_counts() {
    let env = Env::with_calls(planted_calls());
    let doc = env.json(&[]);
    let t = &doc["topics"];
    assert_eq!(t["calls_with_decline"], 12);
    assert_eq!((t["declines_at_trigger"].as_u64(), t["declines_at_steepest_drop"].as_u64()), (Some(4), Some(8)));
    assert_eq!((t["decline_utterances"].as_u64(), t["other_utterances"].as_u64()), (Some(24), Some(36)));
    let terms: Vec<&str> = t["terms"].as_array().unwrap().iter().map(|x| x["term"].as_str().unwrap()).collect();
    assert!(terms[..4].contains(&"refund") && terms[..4].contains(&"cancel"), "{terms:?}");
    assert!(!terms.contains(&"router") && !terms.contains(&"bill"), "{terms:?}");
    let refund = t["terms"].as_array().unwrap().iter().find(|x| x["term"] == "refund").unwrap();
    assert_eq!((refund["in_decline"].as_u64(), refund["elsewhere"].as_u64()), (Some(12), Some(0)));
    assert_eq!(refund["significant"], true);
    let (table, _) = env.ok(&[]);
    assert!(table.contains("refund") && table.contains("12 calls had a decline"), "{table}");
}

#[test]
fn the_decline_window_widens_with_the_flag() {
    let env = Env::with_calls(planted_calls());
    let doc = env.json(&["--decline-window", "3", "--min-count", "1"]);
    assert_eq!(doc["topics"]["window"], 3);
    assert_eq!(doc["topics"]["decline_utterances"], 36);
    let usage = env.run(&["--decline-window", "0"]);
    assert_eq!(usage.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&usage.stderr).contains("decline-window"));
}

#[test]
fn replay_keeps_menu_decisions_and_agrees_with_the_library() {
    let env = Env::with_calls(six_calls());
    std::fs::write(env.path("bare.toml"), "support_queue = \"escalations\"\n").unwrap();
    std::fs::write(env.path("full.toml"), "[ivr]\ngreeting = \"hi\"\n\n[policy]\nsupport_queue = \"escalations\"\n")
        .unwrap();
    let doc = env.json(&["--replay-policy", "bare.toml"]);
    let full = env.json(&["--replay-policy", "full.toml"]);
    assert_eq!(doc["replay"], full["replay"], "a bare policy table and a [policy] table mean the same");
    let r = &doc["replay"];
    assert_eq!(r["policy"]["support_queue"], "escalations");
    assert_eq!(r["calls"], 6);
    assert_eq!(r["verdicts"]["kept"], 1);
    assert_eq!(call(&doc, "c4-keypad")["replay"]["verdict"], "kept");
    assert_eq!(call(&doc, "c4-keypad")["replay"]["reason"], "operator");
    assert!(r["notes"][0].as_str().unwrap().contains("kept as they were"));
    let total: u64 = r["verdicts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 6);
    // The binary's verdicts are the library's.
    let policy =
        ivrx::analyze::replay::policy_from_toml("support_queue = \"escalations\"\n", &Default::default()).unwrap();
    let options = ivrx::analyze::Options { replay: Some(policy), ..Default::default() };
    let mut verdicts = Vec::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let lib = rt
        .block_on(async {
            let store = ivrx::store::open_read_only(&Location::sqlite(env.path("ivrx.db"))).await.unwrap();
            let record = |m: &ivrx::analyze::CallMetrics| {
                verdicts.push(m.replay.as_ref().unwrap().verdict.as_str());
                Ok(())
            };
            ivrx::analyze::analyze(&*store, &options, record, &mut || {}).await
        })
        .unwrap();
    let bin: Vec<&str> =
        doc["calls"].as_array().unwrap().iter().map(|c| c["replay"]["verdict"].as_str().unwrap()).collect();
    assert_eq!(bin, verdicts);
    assert_eq!(serde_json::to_value(lib.replay.unwrap()).unwrap(), doc["replay"]);
    // Lost calls are listed with their stored reason.
    for lost in r["lost"].as_array().unwrap() {
        assert!(lost["before_reason"].is_string());
    }
    let (csv, _) = env.ok(&["--format", "csv", "--replay-policy", "bare.toml"]);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with("replay_verdict,replay_reason,replay_queue,replay_trigger_index,replay_decision_ms"));
    let (table, _) = env.ok(&["--replay-policy", "bare.toml"]);
    assert!(table.contains("Policy replay") && table.contains("kept (keypad, menu or manual)"), "{table}");
}

#[test]
fn a_bad_policy_file_is_refused_with_its_name() {
    let env = Env::with_calls(six_calls());
    std::fs::write(env.path("bad.toml"), "[policy]\nno_such_threshold = 1\n").unwrap();
    let err = env.fails(&["--replay-policy", "bad.toml"]);
    assert!(err.contains("bad.toml") && err.contains("no_such_threshold"), "{err}");
    assert!(env.fails(&["--replay-policy", "missing.toml"]).contains("missing.toml"));
}

#[test]
fn import_json_lines_scores_stores_and_analyses() {
    let env = Env::new();
    let lines = [
        r#"{"conversation_id": "imp-1", "started_at": "2026-05-01T10:00:00Z", "utterances": [{"offset": 0.5, "speaker": "ivr", "text": "how can i help"}, {"offset": 3.2, "speaker": "caller", "text": "my internet is down"}, {"offset": 9, "speaker": "caller", "text": "i want to talk to a real person"}]}"#,
        r#"{"conversation_id": "imp-2", "started_at": "2026-05-01T11:00:00Z", "utterances": [{"offset": 1, "speaker": "caller", "text": "what is the price of the premium plan"}, {"offset": 30, "speaker": "agent", "text": "let me check"}]}"#,
    ];
    std::fs::write(env.path("calls.jsonl"), lines.join("\n")).unwrap();
    let (_, err) = env.ok(&["--import", "calls.jsonl", "--format", "csv"]);
    assert!(err.contains("imported 2 conversations (5 utterances"), "{err}");
    let doc = env.json(&[]);
    assert_eq!(ids(&doc), ["imp-1", "imp-2"]);
    let c1 = call(&doc, "imp-1");
    assert_eq!(
        (c1["direction"].as_str(), c1["utterances"].as_u64(), c1["caller_utterances"].as_u64()),
        (Some("import"), Some(3), Some(2))
    );
    assert_eq!(c1["duration_ms"], 9000);
    assert_eq!(c1["end_reason"], "imported");
    assert!(c1["sentiment_final"].is_number(), "every caller utterance was scored");
    assert_eq!(c1["transferred"], false, "an import records the policy's decision but places no transfer");
    assert_eq!(c1["reason"], "asked_for_human", "{c1}");
    assert_eq!(c1["transfer_status"], Value::Null, "no transfer was placed, so none is dialing: {c1}");
    let (table, _) = env.ok(&["--wide"]);
    let row = table.lines().find(|l| l.starts_with("| imp-1")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!((cells[9], cells[10], cells[11]), ("asked_for_human", "support", "-"), "agent: {row}");
    // The same file again is refused and changes nothing.
    let err = env.fails(&["--import", "calls.jsonl"]);
    assert!(err.contains("already in the database") && err.contains("imp-1"), "{err}");
    assert_eq!(env.json(&[])["summary"]["calls"], 2);
}

#[test]
fn a_bad_import_names_the_lines_and_imports_nothing() {
    let env = Env::with_calls(six_calls());
    let text = [
        r#"{"conversation_id": "ok-1", "utterances": [{"offset": 1, "speaker": "caller", "text": "hello"}]}"#,
        r#"{"conversation_id": "bad-1", "utterances": [{"offset": 1, "speaker": "robot", "text": "hello"}]}"#,
        r#"{"conversation_id": "bad-2", "utterances": [{"offset": 1, "speaker": "caller"}]}"#,
    ];
    std::fs::write(env.path("bad.jsonl"), text.join("\n")).unwrap();
    let err = env.fails(&["--import", "bad.jsonl"]);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(err.contains("line 2: utterance 1: speaker \"robot\""), "{err}");
    assert!(err.contains("line 3:") && err.contains("text"), "{err}");
    assert_eq!(env.json(&[])["summary"]["calls"], 6, "not even the good line was imported");
    // A file for a database that does not exist yet creates nothing.
    let fresh = Env::new();
    std::fs::write(fresh.path("bad.jsonl"), text.join("\n")).unwrap();
    fresh.fails(&["--import", "bad.jsonl"]);
    assert!(!fresh.path("ivrx.db").exists());
}

#[test]
fn import_a_symbl_messages_export() {
    let env = Env::new();
    let export = r#"{
  "messages": [
    {"id": "1", "text": "Thank you for calling, this is Dana.", "from": {"name": "Dana (agent)"},
     "startTime": "2020-07-10T11:16:21.024Z", "endTime": "2020-07-10T11:16:24.024Z", "timeOffset": 5.9, "duration": 3,
     "conversationId": "5815170693595136", "sentiment": {"polarity": {"score": 0.6}, "suggested": "positive"}},
    {"id": "2", "text": "My internet has been down since Monday.", "from": {"name": "Roger"},
     "startTime": "2020-07-10T11:16:27.024Z", "timeOffset": 11.9, "duration": 2, "conversationId": "5815170693595136"},
    {"id": "3", "text": "This is ridiculous, I want to cancel.", "from": {"name": "Roger"},
     "startTime": "2020-07-10T11:16:35.024Z", "timeOffset": 19.9, "duration": 2, "conversationId": "5815170693595136"}
  ]
}"#;
    std::fs::write(env.path("symbl.json"), export).unwrap();
    env.ok(&["--import", "symbl.json"]);
    let doc = env.json(&[]);
    let c = call(&doc, "5815170693595136");
    assert_eq!((c["utterances"].as_u64(), c["caller_utterances"].as_u64()), (Some(3), Some(2)));
    assert_eq!(c["started_at"], "2020-07-10T11:16:15.124+00:00");
    assert_eq!(c["duration_ms"], 19_900);
    assert_eq!(c["hour"], 11);
}

/// Checks that every tag opened is closed, in order (enough for the SVG and
/// HTML written here: no comments, CDATA or raw `<` in text).
fn assert_well_formed(doc: &str, void: &[&str]) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else { panic!("unclosed tag at {}", &rest[start..]) };
        let tag = &rest[start + 1..start + end];
        rest = &rest[start + end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        let name: String =
            tag.trim_start_matches('/').chars().take_while(|c| c.is_alphanumeric() || *c == '-').collect();
        if let Some(closing) = tag.strip_prefix('/') {
            let _ = closing;
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "mismatched </{name}>");
        } else if !tag.ends_with('/') && !void.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn chart_and_html_are_well_formed_and_self_contained() {
    let env = Env::with_calls(planted_calls());
    let (_, err) = env.ok(&["--format", "csv", "--chart", "chart.svg", "--html", "report.html"]);
    assert!(err.contains("chart written to chart.svg") && err.contains("report written to report.html"), "{err}");
    let svg = std::fs::read_to_string(env.path("chart.svg")).unwrap();
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_well_formed(&svg, &[]);
    assert!(svg.contains("Caller sentiment over time (12 sampled calls)"));
    assert!(svg.contains("Time to transfer"));
    assert!(svg.contains("transfer decision") && svg.contains("agent connected"), "legend");
    // One line per sampled call, and the four escalated calls' decision markers.
    assert!(svg.matches("<polyline").count() >= 12, "{}", svg.matches("<polyline").count());
    assert!(svg.contains("p00 (rapid_decline)"));

    let html = std::fs::read_to_string(env.path("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_well_formed(&html, &["meta", "br", "hr", "img", "link", "input"]);
    for needle in ["<svg", "Topics near the decline", "refund", "Most recent calls", "Calls by hour of day"] {
        assert!(html.contains(needle), "missing {needle}");
    }
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(external), "external asset: {external}");
    }
    assert!(!html.replace("http://www.w3.org/2000/svg", "").contains("http"), "no remote references");
}

#[test]
fn synthetic_calls_are_deterministic_and_stream_as_csv() {
    let a = Env::new();
    let b = Env::new();
    let (csv_a, err) = a.ok(&["--synthetic", "40", "--seed", "3", "--format", "csv"]);
    assert!(err.starts_with("generated 40 synthetic conversations (seed 3;"), "{err}");
    assert!(!err.contains('\r'), "no progress bar when stderr is not a terminal");
    let (csv_b, _) = b.ok(&["--synthetic", "40", "--seed", "3", "--format", "csv"]);
    assert_eq!(csv_a, csv_b);
    assert_eq!(csv_a.lines().count(), 41);
    // Generating again with the same seed adds nothing; another seed adds new calls.
    a.ok(&["--synthetic", "40", "--seed", "3"]);
    assert_eq!(a.json(&[])["summary"]["calls"], 40);
    a.ok(&["--synthetic", "10", "--seed", "4"]);
    assert_eq!(a.json(&[])["summary"]["calls"], 50);
    let doc = a.json(&["--transferred"]);
    assert!(doc["calls"].as_array().unwrap().iter().all(|c| c["transferred"] == true));
}

#[test]
fn a_missing_database_is_a_clear_error() {
    let env = Env::new();
    let err = env.fails(&[]);
    assert!(err.contains("no database at") && err.contains("--synthetic"), "{err}");
}
