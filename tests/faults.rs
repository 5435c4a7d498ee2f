//! Faults survived: the real `ivrx serve` (live mode) against a sandbox carrier
//! that injects API faults, drops connections, duplicates and reorders
//! webhooks, and outlives the server when it is killed with SIGKILL.

mod carrier;
mod serve_support;

use std::collections::BTreeMap;
use std::time::Duration;

use carrier::{by_command_id, count, executed, wait_for, Carrier, LiveServe};
use ivrx::sandbox::{PlaceCall, Script, Step};
use serde_json::Value;
use serve_support::{attempts, caller_lines, OPERATOR};

const FRUSTRATED: &str = include_str!("../examples/frustrated.ivrx");
const CALM: &str = include_str!("../examples/calm.ivrx");
const BUYER: &str = include_str!("../examples/interested_buyer.ivrx");

/// The bundled callers and the operator caller, each staying on the line a
/// minute after their last step. Retries wait in real time (a 429's
/// Retry-After, a restart) while the sandbox clock runs ten times faster: a
/// caller who hangs up right after their last line could otherwise be gone
/// before a delayed transfer completes, and runs would differ by timing.
fn patient_callers() -> [String; 4] {
    [OPERATOR, FRUSTRATED, BUYER, CALM].map(|s| s.replace("\nhangup", "\npause 60\nhangup"))
}

/// Commands are retried fast, and a late answer is given up on quickly.
const FAST_RETRIES: &str = "[telnyx]\nmax_attempts = 10\nattempt_timeout_ms = 400\n";

/// What must not differ between two runs of the same caller.
fn outcome(r: &Value) -> Value {
    serde_json::json!({
        "transferred": r["transferred"], "queue": r["queue"], "reason": r["reason"],
        "trigger_index": r["trigger_index"], "transfer_status": r["transfer_status"],
        "end_reason": r["end_reason"], "callers": caller_lines(r), "attempts": attempts(r),
    })
}

/// Runs the callers at once and returns their call_control_ids in order.
fn place_all(c: &Carrier, scripts: &[String]) -> Vec<String> {
    scripts.iter().map(|s| c.call(s)).collect()
}

/// Every conversation ended once, with at most one decision and one connected transfer.
fn assert_consistent_store(db: &std::path::Path, calls: usize) {
    assert_eq!(count(db, "SELECT count(*) FROM conversations"), calls as i64);
    assert_eq!(count(db, "SELECT count(*) FROM conversations WHERE status != 'ended'"), 0, "a call never ended");
    // A session closes once its last commands (releasing legs) are answered.
    wait_for("every session to close", Duration::from_secs(30), || {
        (count(db, "SELECT count(*) FROM sessions WHERE ended = 0") == 0).then_some(())
    });
    let twice =
        "SELECT count(*) FROM (SELECT conversation_id FROM decisions GROUP BY conversation_id HAVING count(*) > 1)";
    assert_eq!(count(db, twice), 0, "a conversation decided twice");
    let connected = "SELECT count(*) FROM (SELECT conversation_id FROM transfers WHERE status = 'connected'
                     GROUP BY conversation_id HAVING count(*) > 1)";
    assert_eq!(count(db, connected), 0, "a caller was connected to two agents");
    let ended_twice = "SELECT count(*) FROM (SELECT conversation_id FROM events WHERE kind = 'call_ended'
                       GROUP BY conversation_id HAVING count(*) > 1)";
    assert_eq!(count(db, ended_twice), 0);
    let repeats = "SELECT count(*) FROM (SELECT event_id FROM webhooks GROUP BY event_id HAVING count(*) > 1)";
    assert_eq!(count(db, repeats), 0, "a webhook stored twice");
    assert_eq!(
        count(db, "SELECT count(*) FROM webhooks WHERE outcome = 'accepted' AND processed = 0"),
        0,
        "an accepted webhook was never processed"
    );
}

#[test]
fn api_faults_on_every_command_are_retried_with_the_same_command_id_and_run_once() {
    let c = Carrier::start(10.0, |s| {
        s.chaos.api_error_rate = 0.06;
        s.chaos.api_rate_limit_rate = 0.04;
        s.chaos.api_timeout_rate = 0.06;
        s.chaos.api_late_ms = 600;
        s.chaos.api_drop_rate = 0.06;
        s.chaos.api_drop_after_rate = 0.06;
        s.chaos.seed = Some(11);
    });
    let s = LiveServe::start(&c, FAST_RETRIES);
    let scripts = patient_callers();
    let calls = place_all(&c, &scripts);
    for ccid in &calls {
        c.wait_hangup(ccid, 600);
    }
    let reports: Vec<Value> = calls.iter().map(|ccid| s.report(ccid)).collect();
    let expected = [("support", true), ("support", true), ("sales", true)];
    for (r, (queue, transferred)) in reports.iter().zip(expected) {
        assert_eq!((r["queue"].as_str(), r["transferred"].as_bool()), (Some(queue), Some(transferred)), "{r}");
        assert_eq!(attempts(r).len(), 1, "one agent, reached once: {r}");
    }
    assert_eq!(reports[3]["transferred"], false);
    for (r, script) in reports.iter().zip(&scripts) {
        let said: Vec<String> = script.lines().filter_map(|l| l.strip_prefix("say ")).map(str::to_string).collect();
        assert_eq!(caller_lines(r), said, "every caller line was heard: {r}");
    }

    let log = c.commands();
    let groups = by_command_id(&log);
    let mut kinds = BTreeMap::<&str, usize>::new();
    for (id, reqs) in &groups {
        let first = &reqs[0];
        for r in reqs {
            // (A dial's log names the leg it created, so only bodies are compared.)
            assert_eq!((&r.action, &r.body), (&first.action, &first.body), "retries of {id} are identical");
        }
        let runs = reqs.iter().filter(|r| executed(r)).count();
        assert!(runs <= 1, "{id} ran {runs} times: {reqs:#?}");
        if reqs.len() > 1 {
            for r in &reqs[..reqs.len() - 1] {
                let kind = match (r.status, r.dropped, r.duplicate) {
                    (500, ..) => "server_error",
                    (429, ..) => "rate_limited",
                    (0, true, _) => "dropped_before_running",
                    (200, true, _) => "dropped_after_running",
                    (200, false, false) => "answered_late",
                    _ => "other",
                };
                *kinds.entry(kind).or_default() += 1;
            }
        }
    }
    // One agent dialled per transfer, each once.
    let dials: Vec<_> = log.iter().filter(|r| r.action.as_deref() == Some("dial") && executed(r)).collect();
    assert_eq!(dials.len(), 3, "{dials:#?}");
    for d in dials {
        let leg = d.call_control_id.as_deref().expect("dialled leg");
        c.wait_hangup(leg, 120);
    }
    for kind in ["server_error", "rate_limited", "dropped_before_running", "dropped_after_running", "answered_late"] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no command was retried after {kind}: {kinds:?}");
    }
    assert_consistent_store(&s.db(), scripts.len());
}

#[test]
fn duplicated_reordered_and_delayed_webhooks_across_concurrent_calls_change_nothing() {
    let scripts = patient_callers();
    let calm = Carrier::start(10.0, |_| {});
    let chaotic = Carrier::start(10.0, |s| {
        s.chaos.duplicate_rate = 0.2;
        s.chaos.reorder_rate = 0.2;
        s.chaos.max_delay_ms = 40;
        s.chaos.seed = Some(5);
    });
    let a = LiveServe::start(&calm, "");
    let b = LiveServe::start(&chaotic, "");
    let calm_calls = place_all(&calm, &scripts);
    let chaotic_calls = place_all(&chaotic, &scripts);
    for (c, calls) in [(&calm, &calm_calls), (&chaotic, &chaotic_calls)] {
        for ccid in calls {
            c.wait_hangup(ccid, 600);
        }
    }
    for (x, y) in calm_calls.iter().zip(&chaotic_calls) {
        let (rx, ry) = (a.report(x), b.report(y));
        assert_eq!(outcome(&rx), outcome(&ry), "calm vs chaos:\n{rx}\n{ry}");
    }
    assert_consistent_store(&b.db(), scripts.len());
    // Chaos did happen, and the server saw it.
    let log = chaotic.sandbox.webhook_log();
    let mut ids = std::collections::HashMap::<&str, usize>::new();
    for d in &log {
        *ids.entry(d.event_id.as_str()).or_default() += 1;
    }
    assert!(ids.values().any(|n| *n > 1), "no webhook was delivered twice");
    let (_, metrics) = b.get("/metrics");
    let duplicates: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ivrx_webhooks_total{") && l.contains("outcome=\"duplicate\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(duplicates > 0.0, "{metrics}");
}

#[test]
fn a_command_decided_before_a_crash_but_never_sent_is_sent_after_the_restart() {
    // The carrier's API is unreachable (requests hang) when the call comes in:
    // the server decides to answer, checkpoints, and is killed while the
    // answer is still being retried. After the restart the answer must go out.
    let c = Carrier::start(5.0, |_| {});
    let mut s = LiveServe::start(&c, "[telnyx]\nattempt_timeout_ms = 1000\nmax_attempts = 20\n");
    c.relay.hold();
    let call = c.call("say hi i need some help with my account\npress 0\npause 8\nsay thanks for picking up\nhangup\n");
    let db = s.db();
    wait_for("the first webhook to be processed", Duration::from_secs(20), || {
        (count(&db, "SELECT count(*) FROM webhooks WHERE processed = 1") > 0
            && count(&db, "SELECT count(*) FROM sessions") > 0)
            .then_some(())
    });
    assert_eq!(c.commands().len(), 0, "nothing reached the carrier yet");
    s.kill9();
    c.relay.release();
    s.restart();
    c.wait_hangup(&call, 600);
    let r = s.report(&call);
    assert_eq!(r["transferred"], true, "{r}\n{}", s.log_text());
    assert_eq!(caller_lines(&r), ["hi i need some help with my account", "thanks for picking up"]);
    let answers = c.commands().into_iter().filter(|r| r.action.as_deref() == Some("answer") && executed(r)).count();
    assert_eq!(answers, 1);
    assert_consistent_store(&s.db(), 1);
}

#[test]
fn kill_9_mid_calls_then_restart_every_call_completes_once() {
    let c = Carrier::start(10.0, |_| {});
    let mut s = LiveServe::start(&c, "");
    let scripts = patient_callers();
    let calls = place_all(&c, &scripts);
    let db = s.db();
    // Kill while a transfer is under way (an agent being dialled, ringing or briefed).
    wait_for("a call mid-transfer", Duration::from_secs(60), || {
        let mid = "SELECT count(*) FROM conversations WHERE transfer_status IN ('dialing', 'ringing', 'answered')";
        (count(&db, mid) > 0).then_some(())
    });
    let active = count(&db, "SELECT count(*) FROM conversations WHERE status = 'active'");
    assert!(active >= 3, "several calls in flight: {active}");
    s.kill9();
    s.restart();
    for ccid in &calls {
        c.wait_hangup(ccid, 600);
    }
    let reports: Vec<Value> = calls.iter().map(|ccid| s.report(ccid)).collect();
    for (r, (queue, transferred)) in reports.iter().zip([("support", true), ("support", true), ("sales", true)]) {
        assert_eq!((r["queue"].as_str(), r["transferred"].as_bool()), (Some(queue), Some(transferred)), "{r}");
        assert_eq!(attempts(r).len(), 1, "{r}");
    }
    assert_eq!(reports[3]["transferred"], false);
    for (r, script) in reports.iter().zip(&scripts) {
        let said: Vec<String> = script.lines().filter_map(|l| l.strip_prefix("say ")).map(str::to_string).collect();
        assert_eq!(caller_lines(r), said, "{r}");
    }
    let log = c.commands();
    let dials = log.iter().filter(|r| r.action.as_deref() == Some("dial") && executed(r)).count();
    let dial_log: Vec<_> = log.iter().filter(|r| r.action.as_deref() == Some("dial")).collect();
    assert_eq!(dials, 3, "nobody was transferred twice: {dial_log:#?}\n{}", s.log_text());
    for (id, reqs) in by_command_id(&log) {
        assert!(reqs.iter().filter(|r| executed(r)).count() <= 1, "{id} ran twice: {reqs:#?}");
    }
    assert!(s.log_text().contains("resumed calls in progress from the store"), "{}", s.log_text());
    assert_consistent_store(&db, scripts.len());
}

/// Calls whose end came while ivrx was down (killed with SIGKILL, the carrier
/// giving up on those webhooks) end in the record as soon as it is back: at
/// start it asks Telnyx about every leg the record shows as not ended, records
/// the ones gone as ended while it was not listening, and hangs up the agents
/// left ringing or briefed for callers who are gone. The next periodic check is
/// an hour away: the check at start does it.
#[test]
fn calls_that_end_while_ivrx_is_down_end_in_the_record_when_it_is_back() {
    let c = Carrier::start(10.0, |s| {
        // The carrier gives up on a webhook after 0.1 s: whatever happens while ivrx is down is never delivered.
        s.delivery.attempts = 2;
        s.delivery.backoff = Duration::from_millis(100);
    });
    // Callers who go quiet are not re-prompted before the end of the test.
    let mut s = LiveServe::start(&c, "[server]\nreconcile_secs = 3600\n[ivr]\nidle_timeout_secs = 300\n");
    let live = |script: &str| {
        let mut call = PlaceCall::new(Script::parse(script).expect("script"));
        call.live = true;
        c.sandbox.place_call(call).expect("place").call_control_id
    };
    let talkers: Vec<String> = (0..4).map(|_| live("say hi i have a question about my bill\n")).collect();
    let operators: Vec<String> = (0..4).map(|_| live("say hi i need help with my account\npress 0\n")).collect();
    let db = s.db();
    wait_for("every call in the IVR and every operator caller's agent dialled", Duration::from_secs(60), || {
        let active = count(&db, "SELECT count(*) FROM conversations WHERE status = 'active'");
        let transferring = count(&db, "SELECT count(*) FROM conversations WHERE transfer_status IS NOT NULL");
        (active == 8 && transferring == 4).then_some(())
    });
    s.kill9();
    // Every caller hangs up while ivrx is down; their agents, unless bridged, stay on the line.
    for ccid in talkers.iter().chain(&operators) {
        c.sandbox.append_steps(ccid, vec![Step::Hangup]).expect("append");
        c.wait_hangup(ccid, 60);
    }
    wait_for("the carrier to give up on those webhooks", Duration::from_secs(30), || {
        (c.sandbox.delivery_stats().queued == 0).then_some(())
    });
    s.restart();
    wait_for("every call to end in the record", Duration::from_secs(60), || {
        (count(&db, "SELECT count(*) FROM conversations WHERE status != 'ended'") == 0).then_some(())
    });
    wait_for("every leg's end in the record", Duration::from_secs(60), || {
        (count(&db, "SELECT count(*) FROM legs WHERE ended_ms IS NULL") == 0).then_some(())
    });
    let unheard =
        count(&db, "SELECT count(*) FROM legs WHERE role = 'caller' AND hangup_cause = 'ended_while_not_listening'");
    assert_eq!(unheard, 8, "every caller's hangup went unheard and was found\n{}", s.log_text());
    let audit = ivrx::sandbox::LegAudit::default();
    assert_eq!(c.sandbox.leg_audit(), audit, "no agent left on the line at the carrier");
    assert!(s.log_text().contains("legs that ended while ivrx was not listening"), "{}", s.log_text());
    assert_consistent_store(&db, 8);
}

// ----- hang-ups: every stage ends in a consistent record, and 90018 is no error

/// The transfer statuses a conversation went through, in order.
fn transfer_history(db: &std::path::Path, conv: &str) -> Vec<String> {
    ivrx::store::sqlite::Reader::new(db.to_path_buf())
        .events(conv, 0)
        .expect("events")
        .into_iter()
        .filter_map(|r| match r.event {
            ivrx::session::DomainEvent::Transfer { status, .. } => Some(status.as_str().to_string()),
            _ => None,
        })
        .collect()
}

/// The call ended once, every leg's end is recorded, every failed command
/// failed because the call was gone, and the server logged no warning or error.
fn assert_clean_end(s: &LiveServe, r: &Value, end_reason: &str) -> String {
    let db = s.db();
    let conv = r["conversation_id"].as_str().expect("conversation id").to_string();
    assert_eq!(r["end_reason"], end_reason, "{r}");
    let q = |sql: &str| count(&db, &sql.replace("CONV", &conv));
    assert_eq!(q("SELECT count(*) FROM events WHERE conversation_id = 'CONV' AND kind = 'call_ended'"), 1);
    assert_eq!(
        q("SELECT count(*) FROM legs WHERE conversation_id = 'CONV' AND ended_ms IS NULL"),
        0,
        "a leg never ended"
    );
    let failed = ivrx::store::sqlite::Reader::new(db.clone()).events(&conv, 0).expect("events");
    for e in &failed {
        if let ivrx::session::DomainEvent::CommandFailed { call_gone, error, .. } = &e.event {
            assert!(call_gone, "a command failed for another reason than the call being gone: {error}");
        }
    }
    wait_for("the session to close", Duration::from_secs(20), || {
        (q("SELECT count(*) FROM sessions WHERE conversation_id = 'CONV' AND ended = 1") == 1).then_some(())
    });
    let noisy: Vec<String> = s
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .cloned()
        .collect();
    assert!(noisy.is_empty(), "warnings or errors logged:\n{}", noisy.join("\n"));
    conv
}

/// The commands that Telnyx (the sandbox) answered 90018 for this call.
fn call_gone_answers(c: &Carrier) -> Vec<String> {
    c.commands().into_iter().filter(|r| r.error_code.as_deref() == Some("90018")).filter_map(|r| r.action).collect()
}

#[test]
fn the_caller_hangs_up_during_the_greeting() {
    // The caller does not wait for the greeting to end.
    let c = Carrier::start(10.0, |s| s.timing.first_prompt_wait = Duration::ZERO);
    let s = LiveServe::start(&c, "");
    let call = c.call("pause 2\nhangup\n");
    c.wait_hangup(&call, 120);
    let r = s.report(&call);
    assert_clean_end(&s, &r, "caller_hangup");
    assert!(caller_lines(&r).is_empty());
    let ev: Vec<String> = c.sandbox.webhook_log().into_iter().map(|d| d.event_type).collect();
    assert!(ev.contains(&"call.gather.ended".to_string()), "the greeting was cut short: {ev:?}");
    let prompts = c.commands().iter().filter(|r| r.action.as_deref() == Some("gather_using_speak")).count();
    assert_eq!(prompts, 1, "a caller who hung up is not prompted again");
}

#[test]
fn the_caller_hangs_up_while_the_reply_is_being_decided() {
    // The reply cannot reach the carrier until the caller has gone: it is
    // answered 90018, a final state.
    let c = Carrier::start(10.0, |_| {});
    let s = LiveServe::start(&c, "[telnyx]\nattempt_timeout_ms = 300\nmax_attempts = 20\n");
    let call = c.call("say i have a question about the charge on my bill\nhangup\n");
    wait_for("the greeting to be sent", Duration::from_secs(20), || {
        c.commands().iter().any(|r| r.action.as_deref() == Some("gather_using_speak")).then_some(())
    });
    c.relay.hold();
    c.wait_hangup(&call, 120);
    c.relay.release();
    let r = s.report(&call);
    let conv = assert_clean_end(&s, &r, "caller_hangup");
    assert_eq!(caller_lines(&r), ["i have a question about the charge on my bill"], "scored before the hangup");
    assert!(r["utterances"][0]["score"].is_number(), "{r}");
    assert!(!call_gone_answers(&c).is_empty(), "the reply was answered 90018");
    assert!(transfer_history(&s.db(), &conv).is_empty());
}

/// A warm transfer to an agent who answers after `ring` seconds; the caller
/// hangs up `pause` seconds after hearing the bridging line. (At ×5 the
/// stages are a few hundred milliseconds of real time apart.)
fn hang_up_mid_transfer(ring: f64, pause: &str, stage: &str) {
    let c = Carrier::start(5.0, |s| {
        s.agents.push(("+18005550201".into(), ivrx::sandbox::PartyBehavior::Answer { after_secs: ring, script: None }));
    });
    let s = LiveServe::start(&c, "");
    let call = c.call(&format!("say hello i need help\npress 0\npause {pause}\nhangup\n"));
    c.wait_hangup(&call, 120);
    assert_abandoned_while(&c, &s, &call, stage);
}

fn assert_abandoned_while(c: &Carrier, s: &LiveServe, call: &str, stage: &str) {
    let r = s.report(call);
    let conv = assert_clean_end(s, &r, "caller_hangup_during_transfer");
    assert_eq!(r["transferred"], false);
    let history = transfer_history(&s.db(), &conv);
    assert_eq!(history.last().map(String::as_str), Some("abandoned"), "{history:?}");
    assert_eq!(history.iter().rev().nth(1).map(String::as_str), Some(stage), "hung up while {stage}: {history:?}");
    // The agent's leg was released, and nobody was dialled twice.
    let dials: Vec<_> =
        c.commands().into_iter().filter(|r| r.action.as_deref() == Some("dial") && executed(r)).collect();
    assert_eq!(dials.len(), 1);
    c.wait_hangup(dials[0].call_control_id.as_deref().expect("leg"), 60);
}

#[test]
fn the_caller_hangs_up_while_the_agent_rings() {
    hang_up_mid_transfer(20.0, "1", "ringing");
}

#[test]
fn the_caller_hangs_up_while_the_agent_is_briefed() {
    hang_up_mid_transfer(3.0, "1", "answered");
}

#[test]
fn the_caller_hangs_up_while_being_bridged() {
    // The bridge is decided once the agent has been briefed; the carrier's API
    // is held from the briefing on, so the bridge is still in flight when the
    // caller hangs up, and is answered 90018 once it gets through.
    let c = Carrier::start(3.0, |_| {});
    let s = LiveServe::start(&c, "[telnyx]\nattempt_timeout_ms = 300\nmax_attempts = 20\n");
    let call = c.call("say hello i need help\npress 0\npause 15\nhangup\n");
    let briefing_sent = || {
        c.commands()
            .iter()
            .any(|r| r.action.as_deref() == Some("speak") && r.call_control_id.as_deref() != Some(&call) && executed(r))
            .then_some(())
    };
    let db = s.db();
    let status = |want: &'static str| {
        let db = db.clone();
        move || {
            (count(&db, &format!("SELECT count(*) FROM conversations WHERE transfer_status = '{want}'")) == 1)
                .then_some(())
        }
    };
    wait_for("the agent's briefing to reach the carrier", Duration::from_secs(60), briefing_sent);
    c.relay.hold();
    wait_for("the bridge to be decided", Duration::from_secs(60), status("bridging"));
    c.wait_hangup(&call, 120);
    c.relay.release();
    assert_abandoned_while(&c, &s, &call, "bridging");
    assert!(call_gone_answers(&c).contains(&"bridge".to_string()), "{:?}", call_gone_answers(&c));
}

#[test]
fn the_agent_hangs_up_first() {
    let c = Carrier::start(10.0, |s| {
        let script = ivrx::sandbox::Script::parse("say hi this is alex i have to go sorry\nhangup").expect("script");
        s.agents.push((
            "+18005550201".into(),
            ivrx::sandbox::PartyBehavior::Answer { after_secs: 2.0, script: Some(script) },
        ));
    });
    let s = LiveServe::start(&c, "");
    let call = c.call("say hello i need help\npress 0\npause 60\nsay are you still there\nhangup\n");
    c.wait_hangup(&call, 300);
    let r = s.report(&call);
    let conv = assert_clean_end(&s, &r, "completed_with_agent");
    assert_eq!(r["transferred"], true);
    assert_eq!(transfer_history(&s.db(), &conv).last().map(String::as_str), Some("connected"));
    // The agent's hangup took the caller down too: the caller never got to their next line.
    assert_eq!(caller_lines(&r), ["hello i need help"], "{r}");
    let agent_legs =
        count(&s.db(), &format!("SELECT count(*) FROM legs WHERE conversation_id = '{conv}' AND role = 'agent'"));
    assert_eq!(agent_legs, 1);
}

// ----- the store fails: the calls go on, the failure is loud, nothing accepted is lost

/// Runs a call while `break_store` makes every write fail, checks that the
/// server keeps acknowledging and says so loudly, then `repair`s the store and
/// checks that every acknowledged webhook and the whole conversation were kept.
fn calls_survive_a_failing_store(config: &str, break_store: impl FnOnce(&LiveServe), repair: impl FnOnce(&LiveServe)) {
    let c = Carrier::start(10.0, |_| {});
    let s = LiveServe::start(&c, config);
    let before = c.call(CALM);
    c.wait_hangup(&before, 600);
    s.report(&before);
    break_store(&s);
    let during = c.call(OPERATOR);
    wait_for("/readyz to report the failing store", Duration::from_secs(30), || {
        let (status, body) = s.get("/readyz");
        (status == 503 && body.contains("store_failing")).then_some(())
    });
    let (_, metrics) = s.get("/metrics");
    assert!(metrics.contains("ivrx_store_failing 1"), "{metrics}");
    assert!(s.log_text().contains("STORE WRITE FAILED"), "{}", s.log_text());
    // The call goes on: the carrier got its answers, the agent was reached.
    c.wait_hangup(&during, 600);
    let dials = c.commands().iter().filter(|r| r.action.as_deref() == Some("dial") && executed(r)).count();
    assert_eq!(dials, 1, "the transfer went ahead while the store was failing");
    let refused: Vec<_> = c.sandbox.webhook_log().into_iter().filter(|d| !d.ok()).collect();
    assert!(refused.is_empty(), "every webhook was acknowledged: {refused:#?}");
    repair(&s);
    wait_for("/readyz to recover", Duration::from_secs(30), || (s.get("/readyz").0 == 200).then_some(()));
    assert!(s.log_text().contains("store writes recovered"));
    let r = s.report(&during);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(caller_lines(&r), ["hi i need some help with my account", "thanks for picking up"]);
    // Every webhook the server acknowledged is in the store.
    let db = s.db();
    for d in c.sandbox.webhook_log().iter().filter(|d| d.ok()) {
        let n = count(&db, &format!("SELECT count(*) FROM webhooks WHERE event_id = '{}'", d.event_id));
        assert_eq!(n, 1, "acknowledged webhook {} ({}) was lost", d.event_id, d.event_type);
    }
    assert_consistent_store(&db, 2);
}

#[test]
fn a_locked_database_delays_writes_but_loses_nothing() {
    let locker = std::sync::Mutex::new(None::<rusqlite::Connection>);
    calls_survive_a_failing_store(
        "[storage]\nbusy_timeout_ms = 100\n",
        |s| {
            // Another process takes the write lock and keeps it.
            let conn = rusqlite::Connection::open(s.db()).expect("open");
            conn.execute_batch("BEGIN IMMEDIATE").expect("lock");
            *locker.lock().unwrap() = Some(conn);
        },
        |_| {
            let conn = locker.lock().unwrap().take().expect("locked");
            conn.execute_batch("ROLLBACK").expect("unlock");
        },
    );
}

/// Sets the server process's file size limit (RLIMIT_FSIZE): writes past it
/// fail as on a full disk.
fn limit_file_size(pid: u32, bytes: u64) {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: prlimit only reads `limit`; a null old-limit pointer is allowed.
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_full_disk_delays_writes_but_loses_nothing() {
    // A full disk, simulated deterministically: the server process may not
    // write past the first byte of any file (its SIGXFSZ is ignored, so the
    // writes fail with EFBIG as they would with ENOSPC), then the limit is lifted.
    calls_survive_a_failing_store(
        "",
        |s| limit_file_size(s.pid(), 1),
        |s| limit_file_size(s.pid(), libc::RLIM_INFINITY),
    );
}
