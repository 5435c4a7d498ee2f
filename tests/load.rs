//! The load test at CI size: `ivrx dial --sandbox --load` keeps 200 simulated
//! calls in flight until 1,000 have been played against the real `ivrx serve
//! --sandbox`, and the report must show every call completed and stored, no
//! lost event, no double transfer, and every expected transfer issued at the
//! expected utterance. The full-size run (10,000 calls, 2,000 in flight) is the
//! same command with bigger numbers; see the README's "Load-testing" section.
//!
//! `IVRX_LOAD_CALLS` and `IVRX_LOAD_CONCURRENCY` change the size.

mod serve_support;

use serde_json::Value;
use serve_support::Serve;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_thousand_calls_two_hundred_at_once_lose_nothing_and_transfer_exactly_once() {
    let calls = env_or("IVRX_LOAD_CALLS", 1_000);
    let concurrency = env_or("IVRX_LOAD_CONCURRENCY", 200);
    // A slower clock than the other end-to-end tests: 200 calls in flight on a
    // debug build must not turn into a test of how fast two cores can go.
    let s = Serve::start("", &["--time-scale", "8"]);
    let out = s.run(&[
        "dial",
        "--sandbox",
        "--load",
        "--calls",
        &calls.to_string(),
        "--concurrency",
        &concurrency.to_string(),
        "--ramp",
        "5",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| {
        panic!("the load report is not JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    eprintln!("{report:#}");
    let n = |p: &str| report.pointer(p).and_then(Value::as_u64).unwrap_or_else(|| panic!("{p} in {report}"));

    assert_eq!(n("/calls/planned"), calls);
    assert_eq!(n("/calls/completed"), calls, "every call hung up and ended in the store");
    assert_eq!(n("/calls/not_ended_in_store"), 0);
    assert_eq!(n("/lost_events"), 0, "every acknowledged webhook is in the store");
    assert_eq!(n("/double_transfers"), 0);
    assert!(n("/transfers/expected") > 0, "the mix has callers who must be transferred");
    assert_eq!(n("/transfers/issued_where_expected"), n("/transfers/expected"));
    assert_eq!(n("/transfers/mismatched"), 0, "each transfer at the expected utterance, none unexpected");
    assert_eq!(n("/webhooks/gave_up"), 0, "the server acknowledged every webhook in time");
    assert!(n("/webhooks/delivered") > calls * 10, "the sandbox really delivered the calls' webhooks");
    assert!(n("/ack_latency/count") > 0 && n("/decision_latency/count") > 0, "latencies were measured");
    assert_eq!(report["ok"], true);
    assert!(out.status.success(), "exit status {} with an ok report", out.status);
}

#[test]
fn the_sandbox_clock_hold_can_be_turned_off_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let print = |extra: &[&str]| {
        let out = serve_support::ivrx(dir.path())
            .args(["serve", "--print-config"])
            .args(extra)
            .output()
            .expect("run ivrx serve --print-config");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(print(&[]).contains("clock_hold = true"), "the clock waits for a slow server by default");
    assert!(print(&["--no-clock-hold"]).contains("clock_hold = false"));
}
