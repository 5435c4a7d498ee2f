//! End to end: supervisor alerts. `ivrx serve` with the embedded sandbox
//! carrier texts the supervisors who follow a transfer's queue and reason
//! (Telnyx Messaging, seen at the sandbox's `GET /sandbox/v1/messages`),
//! once per decision even when every webhook is delivered twice; a message
//! refused, unanswered or undelivered is recorded and the call goes on.

mod serve_support;

use std::time::{Duration, Instant};

use serde_json::Value;
use serve_support::{block_on, conv, events, ivrx, refused_at_start, Serve};

const FRUSTRATED: &str = include_str!("../examples/frustrated.ivrx");

/// The supervisor of support (texted), and one of sales (not, for a support transfer).
const SUPERVISORS: &str = r#"
[[notify.supervisors]]
number = "+15555550177"
queues = ["support"]

[[notify.supervisors]]
number = "+15555550178"
queues = ["sales"]
"#;

/// The conversation's `notification` events, once `done` holds for them.
fn notifications(s: &Serve, conv: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: Vec<Value> = events(&s.db(), conv).into_iter().filter(|e| e["type"] == "notification").collect();
        if done(&n) {
            return n;
        }
        assert!(Instant::now() < deadline, "notifications never settled: {n:#?}\n{}", s.log.lock().unwrap().join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn statuses(n: &[Value]) -> Vec<&str> {
    n.iter().map(|e| e["status"].as_str().unwrap_or_default()).collect()
}

#[test]
fn a_transfer_texts_its_supervisor_exactly_once_even_with_every_webhook_duplicated() {
    let config = format!("{SUPERVISORS}\n[sandbox.chaos]\nduplicate_rate = 1.0\nseed = 7\n");
    let s = Serve::start(&config, &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!((r["transferred"].as_bool(), r["queue"].as_str()), (Some(true), Some("support")), "{r}");
    let id = conv(&r);
    let n = notifications(&s, &id, |n| statuses(n).contains(&"delivered"));
    assert_eq!(statuses(&n), ["sent", "delivered"], "{n:#?}");
    let key = n[0]["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("{id}:decided:")), "keyed by the decision: {key}");
    assert!(n.iter().all(|e| e["to"] == "+15555550177" && e["key"] == key), "{n:#?}");

    let texts = s.messages();
    assert_eq!(texts.len(), 1, "one SMS for one decision: {texts:#?}");
    let sms = &texts[0];
    assert_eq!((sms["to"].as_str(), sms["from"].as_str()), (Some("+15555550177"), Some("+18005550100")));
    assert_eq!(sms["status"], "delivered");
    let text = sms["text"].as_str().unwrap();
    assert!(text.starts_with("ivrx: transfer to support decided ("), "{text}");
    assert!(text.contains(r["reason"].as_str().unwrap()), "the reason: {text}");
    assert!(text.contains("Trigger: \"") && text.contains("Caller +15555550100."), "{text}");
    assert!(text.ends_with(&format!("Follow: ivrx watch {id}")), "{text}");

    let metrics =
        block_on(async { reqwest::get(format!("{}/metrics", s.server)).await.unwrap().text().await.unwrap() });
    for line in [r#"ivrx_notifications_total{channel="sms",outcome="sent"} 1"#, r#"outcome="delivered"} 1"#] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"ivrx_webhooks_total{event_type="message.finalized",outcome="duplicate"}"#),
        "{metrics}"
    );
}

/// A frustrated caller with SMS failing as `chaos` says: the failure is
/// recorded with `detail`, and the call goes exactly as without alerts.
fn failing_sms(chaos: &str, detail: &str, taken: usize) {
    let config =
        format!("{SUPERVISORS}\n[telnyx]\nattempt_timeout_ms = 500\n[sandbox.chaos]\napi_late_ms = 1500\n{chaos}\n");
    let s = Serve::start(&config, &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!(r["transferred"], true, "{r}");
    assert_eq!(r["transfer_status"], "connected");
    assert_eq!(r["end_reason"], "completed_with_agent", "the call is unaffected: {r}");
    let id = conv(&r);
    let n = notifications(&s, &id, |n| statuses(n).contains(&"failed"));
    let failed = n.iter().find(|e| e["status"] == "failed").unwrap();
    assert!(failed["detail"].as_str().unwrap_or_default().contains(detail), "{detail} in {failed:#}");
    assert_eq!(failed["to"], "+15555550177");
    assert_eq!(s.messages().len(), taken, "SMS the carrier took");
    let metrics =
        block_on(async { reqwest::get(format!("{}/metrics", s.server)).await.unwrap().text().await.unwrap() });
    assert!(metrics.contains(r#"ivrx_notifications_total{channel="sms",outcome="failed"} 1"#), "{metrics}");
}

#[test]
fn a_refused_sms_is_recorded_and_the_call_goes_on() {
    failing_sms("message_refuse_rate = 1.0", "40001", 0);
}

#[test]
fn an_unanswered_sms_is_recorded_not_sent_twice_and_the_call_goes_on() {
    failing_sms("message_timeout_rate = 1.0", "did not answer in time", 1);
}

#[test]
fn an_undelivered_sms_is_recorded_from_its_finalized_webhook() {
    failing_sms("message_fail_rate = 1.0", "40008", 1);
}

#[test]
fn a_bad_notify_value_is_refused_at_start_with_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (config, key, fix) in [
        ("[[notify.supervisors]]\nnumber = \"555-0177\"\n", "notify.supervisors[0].number", "E.164"),
        (
            "[[notify.supervisors]]\nnumber = \"+15555550177\"\nqueues = [\"billing\"]\n",
            "notify.supervisors[0].queues",
            "support",
        ),
        (
            "[[notify.supervisors]]\nnumber = \"+15555550177\"\nreasons = [\"angry\"]\n",
            "notify.supervisors[0].reasons",
            "rapid_decline",
        ),
        ("[notify]\nmax_per_supervisor = 0\n", "notify.max_per_supervisor", "at least 1"),
        ("[notify.crm]\nurl = \"https://crm.example/hooks\"\n", "notify.crm.secret", "IVRX_CRM_SECRET"),
        ("[transfer.headers]\nreason = \"Reason\"\n", "transfer.headers.reason", "X-"),
        ("[telnyx]\nmessaging_profile_id = \"profile-1\"\n", "telnyx.messaging_profile_id", "UUID"),
    ] {
        refused_at_start(dir.path(), config, key, fix);
    }
    // Live mode needs the messaging profile to text supervisors.
    let path = dir.path().join("ivrx.toml");
    std::fs::write(&path, "[[notify.supervisors]]\nnumber = \"+15555550177\"\n").unwrap();
    let out = ivrx(dir.path())
        .args(["serve", "--print-config", "--config"])
        .arg(&path)
        .env("TELNYX_API_KEY", "KEY")
        .env("TELNYX_PUBLIC_KEY", ivrx::telnyx::WebhookSigner::generate().public_key_base64())
        .env("TELNYX_CONNECTION_ID", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config key `telnyx.messaging_profile_id`") && err.contains("TELNYX_MESSAGING_PROFILE_ID"),
        "{err}"
    );
}

#[test]
fn a_failed_transfer_texts_again_and_the_rate_limit_holds_per_supervisor() {
    let config = format!(
        "{SUPERVISORS}\n[notify]\nmax_per_supervisor = 2\n[sandbox.agents]\n\"+18005550201\" = \"refuse\"\n\"+18005550202\" = \"busy\"\n"
    );
    let s = Serve::start(&config, &[]);
    let r = s.dial(FRUSTRATED);
    assert_eq!(r["transfer_status"], "failed", "{r}");
    let id = conv(&r);
    let n = notifications(&s, &id, |n| statuses(n).iter().filter(|s| **s == "delivered").count() == 2);
    let keys: Vec<&str> = n.iter().filter(|e| e["status"] == "sent").map(|e| e["key"].as_str().unwrap()).collect();
    assert!(keys.len() == 2 && keys[0].starts_with(&format!("{id}:decided:")), "{n:#?}");
    assert!(keys[1].starts_with(&format!("{id}:failed:")), "{n:#?}");
    let texts = s.messages();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    let failed = texts[1]["text"].as_str().unwrap();
    assert!(
        failed.starts_with("ivrx: transfer to support FAILED (") && failed.contains("no agent answered"),
        "{failed}"
    );

    // Two SMS in the window already: the next call's alert is recorded, not sent.
    let r = s.dial(FRUSTRATED);
    let next = conv(&r);
    let n = notifications(&s, &next, |n| !n.is_empty());
    assert_eq!(statuses(&n)[0], "rate_limited", "{n:#?}");
    assert_eq!(s.messages().len(), 2);
}
