//! End to end: `ivrx serve` with the embedded sandbox carrier on loopback,
//! whole calls placed with `ivrx dial --sandbox`: transfers, fallbacks, hang-ups,
//! cold mode, manual override, webhook chaos.

mod serve_support;

use serde_json::Value;
use serve_support::{attempts, caller_lines, conv, events, Serve, OPERATOR};

use ivrx::store::sqlite::Reader;

#[test]
fn pressing_zero_reaches_an_agent_once_and_the_agent_is_transcribed() {
    let s = Serve::start("", &[]);
    let r = s.dial(OPERATOR);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(r["queue"], "support");
    assert_eq!(r["reason"], "operator");
    assert_eq!(r["trigger_index"], Value::Null);
    assert_eq!(attempts(&r), vec![("+18005550201".to_string(), "connected".to_string())]);
    assert_eq!(r["end_reason"], "completed_with_agent");
    let speakers: Vec<&str> =
        r["utterances"].as_array().unwrap().iter().map(|u| u["speaker"].as_str().unwrap()).collect();
    assert!(speakers.contains(&"agent"), "the agent's side is stored under the same conversation: {speakers:?}");
    assert_eq!(caller_lines(&r).last().unwrap(), "thanks for picking up");
    let decisions = events(&s.db(), &conv(&r)).iter().filter(|e| e["type"] == "decision").count();
    assert_eq!(decisions, 1);
}

#[test]
fn a_caller_who_hangs_up_mid_transfer_leaves_a_consistent_record() {
    let s = Serve::start("", &[]);
    let r = s.dial("say hello\npress 0\npause 1\nhangup\n");
    assert_eq!(r["queue"], "support");
    assert_eq!(r["transferred"], false);
    assert_eq!(r["transfer_status"], "abandoned", "{r}");
    assert_eq!(r["end_reason"], "caller_hangup_during_transfer");
    // The agent's leg was released and recorded as ended.
    let ev = events(&s.db(), &conv(&r));
    assert!(ev.iter().any(|e| e["type"] == "leg_joined" && e["role"] == "agent"), "the agent was being dialled");
    assert!(ev.iter().any(|e| e["type"] == "leg_ended" && e["role"] == "agent"), "{ev:#?}");
    let ended = ev.iter().filter(|e| e["type"] == "call_ended").count();
    assert_eq!(ended, 1);
}

#[test]
fn an_agent_who_does_not_answer_is_followed_by_the_next() {
    let config = r#"
[transfer]
ring_timeout_secs = 6
[sandbox.agents]
"+18005550201" = "no-answer"
"#;
    let s = Serve::start(config, &[]);
    let r = s.dial(OPERATOR);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(
        attempts(&r),
        vec![
            ("+18005550201".to_string(), "attempt_failed".to_string()),
            ("+18005550202".to_string(), "connected".to_string())
        ]
    );
    assert_eq!(r["transfers"][0]["detail"], "no answer");
}

#[test]
fn when_no_agent_answers_the_caller_stays_with_the_ivr() {
    let config = r#"
[sandbox.agents]
"+18005550201" = "refuse"
"+18005550202" = "busy"
"#;
    let s = Serve::start(config, &[]);
    let r = s.dial("say hello there\npress 0\npause 12\nsay ok i will try later then\nhangup\n");
    assert_eq!(r["transferred"], false, "{r}");
    assert_eq!(r["transfer_status"], "failed");
    let details: Vec<&str> = r["transfers"].as_array().unwrap().iter().filter_map(|t| t["detail"].as_str()).collect();
    assert!(details.contains(&"refused"), "{details:?}");
    assert_eq!(caller_lines(&r).last().unwrap(), "ok i will try later then", "the call kept flowing");
    let ev = events(&s.db(), &conv(&r));
    let told =
        ev.iter().any(|e| e["type"] == "ivr_said" && e["text"].as_str().unwrap_or("").contains("nobody is available"));
    assert!(told, "the caller is told, never left in silence");
    assert_eq!(r["end_reason"], "caller_hangup");
}

#[test]
fn cold_transfers_use_the_transfer_command() {
    let s = Serve::start("[transfer]\nmode = \"cold\"\n", &[]);
    let r = s.dial(OPERATOR);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(r["transfers"][0]["mode"], "cold");
    assert!(r["utterances"].as_array().unwrap().iter().any(|u| u["speaker"] == "agent"));
}

#[test]
fn duplicate_reordered_and_delayed_webhooks_change_nothing() {
    let calm = Serve::start("", &[]);
    let chaos =
        Serve::start("[sandbox.chaos]\nduplicate_rate = 0.3\nreorder_rate = 0.2\nmax_delay_ms = 15\nseed = 7\n", &[]);
    let a = calm.dial(OPERATOR);
    let b = chaos.dial(OPERATOR);
    for key in ["transferred", "queue", "reason", "trigger_index", "transfer_status", "end_reason"] {
        assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
    }
    assert_eq!(caller_lines(&a), caller_lines(&b));
    assert_eq!(attempts(&a), attempts(&b));
    // Each webhook was handled once: the stored events have no repeats.
    let ev = events(&chaos.db(), &conv(&b));
    assert_eq!(ev.iter().filter(|e| e["type"] == "call_started").count(), 1);
    assert_eq!(ev.iter().filter(|e| e["type"] == "decision").count(), 1);
    let dup = rusqlite::Connection::open_with_flags(chaos.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let repeats: i64 = dup
        .query_row(
            "SELECT count(*) FROM (SELECT event_id FROM webhooks GROUP BY event_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(repeats, 0);
}

#[test]
fn ivrx_transfer_is_the_manual_override_through_the_same_guard() {
    let s = Serve::start("", &[]);
    let script = s.script("long", "say hi i have a question\npause 60\nsay still here\nhangup\n");
    let dial = serve_support::ivrx(s.dir.path())
        .args(["dial", "--sandbox", "--json", "--sandbox-url", &s.sandbox, "--script", script.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the caller has spoken, then transfer by conversation id.
    let db = s.db();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let conv = loop {
        if let Ok(Some(c)) = Reader::new(db.clone()).latest_conversation(true) {
            if Reader::new(db.clone()).utterances(&c).map(|u| !u.is_empty()).unwrap_or(false) {
                break c;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the call never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = s.run(&["transfer", &conv, "--queue", "sales", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = s.run(&["transfer", &conv, "--queue", "sales"]);
    assert_eq!(
        again.status.code(),
        Some(4),
        "a second transfer is refused: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let missing = s.run(&["transfer", "no-such-call"]);
    assert_eq!(missing.status.code(), Some(3));
    let out = dial.wait_with_output().unwrap();
    let r: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(r["queue"], "sales");
    assert_eq!(r["reason"], "manual");
    assert_eq!(r["transferred"], true);
    assert_eq!(r["transfers"].as_array().unwrap().len(), 1);
}

#[test]
fn a_silent_caller_is_reprompted_then_the_call_ends_politely() {
    let s = Serve::start("[ivr]\nidle_timeout_secs = 5\n", &[]);
    let r = s.dial("pause 600\n");
    assert_eq!(r["end_reason"], "no_input", "{r}");
    assert_eq!(r["transferred"], false);
    let ev = events(&s.db(), &conv(&r));
    let prompts = ev
        .iter()
        .filter(|e| e["type"] == "ivr_said" && e["text"].as_str().unwrap_or("").starts_with("Are you still there"))
        .count();
    assert_eq!(prompts, 2);
}
