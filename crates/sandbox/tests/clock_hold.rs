//! The sandbox clock waits for an application slow to answer webhooks, unless
//! that is turned off (`DeliveryConfig::hold_after = None`, which
//! `ivrx serve --no-clock-hold` and `ivrx sandbox --no-clock-hold` set): then
//! the calls run on as on a real carrier.

use std::time::Duration;

use axum::Router;
use ivrx_sandbox::{LegState, PlaceCall, Sandbox, SandboxConfig, Script};

/// How long the application takes to answer each webhook (real time).
const SLOW: Duration = Duration::from_millis(300);

/// Real seconds the clock stood still during one unanswered inbound call
/// (call.initiated, then call.hangup when the sandbox gives up at 30 s) whose
/// webhooks are each answered after [`SLOW`].
async fn held_during_one_call(hold_after: Option<Duration>) -> f64 {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = SandboxConfig::new(format!("http://{}/hook", receiver.local_addr().unwrap()));
    let app = Router::new().fallback(|| async {
        tokio::time::sleep(SLOW).await;
        "ok"
    });
    tokio::spawn(async move { axum::serve(receiver, app).await });
    config.time_scale = 50.0;
    config.delivery.hold_after = hold_after;
    let sandbox = Sandbox::start(config, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    let ccid = sandbox.place_call(PlaceCall::new(Script::default())).unwrap().call_control_id;
    let status = sandbox.wait_for_hangup(&ccid, Duration::from_secs(120)).await.unwrap();
    assert_eq!(status.state, LegState::HungUp);
    // Both webhooks answered: the hold ends with the last one.
    let both = async {
        while sandbox.delivery_stats().delivered < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), both).await.expect("both webhooks are answered");
    let held = sandbox.delivery_stats().clock_held_secs;
    sandbox.shutdown();
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clock_waits_for_a_slow_application_unless_told_not_to() {
    let held = held_during_one_call(Some(Duration::from_millis(100))).await;
    assert!(held >= 0.1, "a webhook waited {SLOW:?} for its answer: the clock stood still ({held} s)");
    let held = held_during_one_call(None).await;
    assert_eq!(held, 0.0, "with the hold off the clock runs on");
}
