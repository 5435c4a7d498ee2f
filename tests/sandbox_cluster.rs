//! `ivrx sandbox` as the load balancer in front of several `ivrx serve`
//! instances in live mode: each instance is pointed at the standalone carrier
//! with the same environment a Telnyx deployment uses (`TELNYX_API_BASE`,
//! `TELNYX_API_KEY`, `TELNYX_PUBLIC_KEY` from `GET /sandbox/v1/public-key`,
//! `TELNYX_CONNECTION_ID`, `IVRX_NUMBER`, `IVRX_ADMIN_TOKEN`) and keeps its
//! own SQLite file.
//!
//! What is checked is what the delivery layer guarantees, not that a call
//! succeeds across instances with separate stores: consecutive webhooks of a
//! call reach different instances, in the call's order, each acknowledged
//! once; with one instance stopped every webhook reaches the other. And
//! `ivrx dial --sandbox` reports, and `ivrx dial --sandbox --load` audits,
//! through a live-mode instance.

mod serve_support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use serve_support::live::{free_port, get, get_with_status, Carrier, Instance, IVR_NUMBER};
use serve_support::{ivrx, output_within};

const CALLER: &str = "say my internet has been down since yesterday\nsay this is ridiculous\nhangup\n";

/// A caller who asks for a person: the instance transfers, with `IVRX_NUMBER` as caller id.
const ASKS_FOR_HUMAN: &str =
    "say my internet has been down since yesterday\nsay i want to talk to a real person\npause 20\nhangup\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_spread_over_two_live_instances_and_one_stopped_leaves_every_webhook_to_the_other() {
    ivrx::http::tls::install_crypto_provider();
    let home = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port()];
    let urls: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}/webhooks/telnyx")).collect();
    let carrier = Carrier::start(home.path(), &urls);
    let key = carrier.public_key().await;
    let a = Instance::start(&carrier, &key, ports[0]);
    let mut b = Instance::start(&carrier, &key, ports[1]);
    assert_eq!([&a.webhook_url, &b.webhook_url], [&urls[0], &urls[1]]);

    // Both up: the webhooks of each call take turns.
    let calls = [carrier.call(CALLER).await, carrier.call(CALLER).await];
    carrier.settle().await;
    let log = carrier.webhooks().await;
    for ccid in &calls {
        let delivered: Vec<_> = log.iter().filter(|d| &d.call_control_id == ccid && d.ok()).collect();
        assert!(delivered.len() >= 3, "{delivered:#?}");
        assert_eq!(delivered[0].event_type, "call.initiated");
        for pair in delivered.windows(2) {
            assert_ne!(pair[0].url, pair[1].url, "consecutive webhooks of {ccid} reach different instances");
        }
        let mut ids: Vec<_> = delivered.iter().map(|d| &d.event_id).collect();
        ids.dedup();
        assert_eq!(ids.len(), delivered.len(), "each webhook acknowledged once");
    }
    let stats = carrier.control.deliveries().await.unwrap();
    eprintln!("deliveries per URL: {:#?}", stats.by_url);
    assert_eq!(stats.gave_up, 0);
    for (instance, url) in [(&a, &urls[0]), (&b, &urls[1])] {
        let at = stats.by_url.iter().find(|u| &u.url == url).unwrap_or_else(|| panic!("no deliveries to {url}"));
        assert!(at.acknowledged > 0, "{at:?}");
        // The instance's own count agrees with the carrier's.
        assert_eq!(instance.webhooks_counted().await, at.attempts, "{url}: {at:?}\n{}", instance.process.log());
    }

    // One instance stopped: every webhook of the next call reaches the other,
    // at the first attempt, and the call runs there from start to end.
    b.process.stop();
    let before = carrier.control.deliveries().await.unwrap();
    let ccid = carrier.call(ASKS_FOR_HUMAN).await;
    carrier.settle().await;
    let log = carrier.webhooks().await;
    let tried: Vec<_> = log.iter().filter(|d| d.call_control_id == ccid).collect();
    let delivered: Vec<_> = tried.iter().filter(|d| d.ok()).collect();
    assert!(delivered.len() >= 3);
    assert!(delivered.iter().all(|d| d.url == a.webhook_url && d.attempt == 1), "{delivered:#?}");
    assert!(tried.iter().filter(|d| d.url == b.webhook_url).all(|d| d.status.is_none()), "{tried:#?}");
    assert!(tried.iter().any(|d| d.url == b.webhook_url), "the stopped instance's turn came and was passed over");
    let after = carrier.control.deliveries().await.unwrap();
    assert_eq!(after.gave_up, before.gave_up);
    let report_url = format!("{}/api/v1/calls/{ccid}/report", a.url);
    let report = get(&report_url, &a.token).await;
    assert!(report["end_reason"].is_string(), "{report}\n{}", a.process.log());
    let lines: Vec<_> = report["utterances"].as_array().unwrap().iter().filter(|u| u["speaker"] == "caller").collect();
    assert_eq!(lines.len(), 2, "{report}");
    assert_eq!(report["reason"], "asked_for_human", "{report}");
    // IVRX_NUMBER is the caller id of the agent's call; IVRX_ADMIN_TOKEN guards the admin API.
    let commands = get(&format!("{}/sandbox/v1/commands", carrier.base), "sandbox").await;
    let agent_calls: Vec<_> = commands["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "dial" && c["body"]["link_to"] == ccid.as_str())
        .collect();
    assert!(!agent_calls.is_empty(), "{commands:#}");
    assert!(agent_calls.iter().all(|c| c["body"]["from"] == IVR_NUMBER), "{agent_calls:#?}");
    assert_eq!(get_with_status(&report_url, "not-the-token").await.0, 401);
    drop(b.home);
}

#[test]
fn a_load_run_audits_through_a_live_instance_against_a_standalone_sandbox() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhooks/telnyx");
    let carrier = runtime.block_on(async {
        ivrx::http::tls::install_crypto_provider();
        Carrier::start(home.path(), std::slice::from_ref(&url))
    });
    let key = runtime.block_on(carrier.public_key());
    let instance = Instance::start(&carrier, &key, port);

    // One call: the carrier has no report of its own, the instance has.
    let out = ivrx(home.path())
        .args(["dial", "--sandbox", "--script", "asks_for_human", "--json"])
        .args(["--sandbox-url", &carrier.base, "--server", &instance.url, "--token", &instance.token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(report["reason"], "asked_for_human", "{report}");
    assert!(report["end_reason"].is_string(), "{report}");

    let child = ivrx(home.path())
        .args(["dial", "--sandbox", "--load", "--calls", "24", "--concurrency", "6", "--ramp", "1", "--json"])
        .args(["--sandbox-url", &carrier.base, "--server", &instance.url, "--token", &instance.token])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(300), "ivrx dial --sandbox --load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!("the load report is not JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    let n = |p: &str| report.pointer(p).and_then(Value::as_u64).unwrap_or_else(|| panic!("{p} in {report}"));
    assert_eq!(n("/calls/completed"), 24, "{report:#}\n{}", instance.process.log());
    assert_eq!(n("/lost_events"), 0);
    assert_eq!(n("/double_transfers"), 0);
    assert!(n("/transfers/expected") > 0);
    assert_eq!(n("/transfers/issued_where_expected"), n("/transfers/expected"));
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(out.status.success());
    let by_url = report["webhooks"]["by_url"].as_array().unwrap();
    assert_eq!(by_url.len(), 1, "{by_url:?}");
    assert_eq!((&by_url[0]["url"], &by_url[0]["failed"]), (&Value::from(url), &Value::from(0)));
    assert_eq!(by_url[0]["acknowledged"], report["webhooks"]["attempts"]);
}
