//! Load smoke test of the sandbox carrier alone: many simulated calls in
//! flight at once against a minimal application (answer, speak, hang up) that
//! verifies every signature. Ignored by default; run with
//! `cargo test --release --test sandbox_load -- --ignored --nocapture`
//! (`IVRX_LOAD_CALLS` sets the number of calls, all placed at once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use ivrx::sandbox::{LegState, PlaceCall, Sandbox, SandboxConfig, Script};
use ivrx::telnyx::commands::{Answer, Plain, Speak};
use ivrx::telnyx::events::Envelope;
use ivrx::telnyx::{ClientConfig, TelnyxClient, WebhookVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};

struct App {
    client: std::sync::OnceLock<TelnyxClient>,
    verifier: WebhookVerifier,
    webhooks: AtomicUsize,
    bad: AtomicUsize,
}

async fn hook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if app.verifier.verify(h(SIGNATURE_HEADER), h(TIMESTAMP_HEADER), &body, chrono::Utc::now().timestamp()).is_err() {
        app.bad.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    app.webhooks.fetch_add(1, Ordering::Relaxed);
    let Ok(env) = Envelope::parse(&body) else { return StatusCode::BAD_REQUEST };
    let Some(ccid) = env.data.payload["call_control_id"].as_str().map(str::to_string) else { return StatusCode::OK };
    let Some(client) = app.client.get().cloned() else { return StatusCode::OK };
    let event = env.data.event_type;
    // Acknowledge at once; act afterwards, as a real application would.
    tokio::spawn(async move {
        let r = match event.as_str() {
            "call.initiated" => client.answer(&ccid, Answer::default()).await,
            "call.answered" => {
                let s = Speak { payload: Some("hello".into()), voice: Some("female".into()), ..Speak::default() };
                client.speak(&ccid, s).await
            }
            "call.speak.ended" => client.hangup(&ccid, Plain::default()).await,
            _ => return,
        };
        if let Err(e) = r {
            eprintln!("{event} command failed: {e}");
        }
    });
    StatusCode::OK
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load smoke test; run explicitly"]
async fn thousands_of_calls_in_flight() {
    let calls: usize = std::env::var("IVRX_LOAD_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let mut config = SandboxConfig::new("http://127.0.0.1:9/unset");
    config.time_scale = 10.0;
    config.record_log = false;
    let app = Arc::new(App {
        client: std::sync::OnceLock::new(),
        verifier: WebhookVerifier::from_base64(&config.signer.public_key_base64()).unwrap(),
        webhooks: AtomicUsize::new(0),
        bad: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.webhook_urls = vec![format!("http://{}/hook", listener.local_addr().unwrap())];
    let router = Router::new().fallback(hook).with_state(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let sandbox = Sandbox::start(config, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await.unwrap();
    let client = TelnyxClient::new(ClientConfig::new(sandbox.api_base(), sandbox.api_key())).unwrap();
    let _ = app.client.set(client);

    let started = Instant::now();
    let ids: Vec<String> =
        (0..calls).map(|_| sandbox.place_call(PlaceCall::new(Script::default())).unwrap().call_control_id).collect();
    let mut waits = Vec::with_capacity(calls);
    for id in &ids {
        let s = sandbox.clone();
        let id = id.clone();
        waits.push(tokio::spawn(async move { s.wait_for_hangup(&id, Duration::from_secs(3600)).await }));
    }
    let mut ended = 0;
    for w in waits {
        let st = tokio::time::timeout(Duration::from_secs(300), w).await.expect("calls end in time").unwrap().unwrap();
        assert_eq!(st.state, LegState::HungUp);
        assert_eq!(st.hangup_source.as_deref(), Some("callee"), "the app hung up, not the 30 s answer deadline");
        ended += 1;
    }
    // The last hangup webhooks may still be on their way.
    let settle = Instant::now() + Duration::from_secs(10);
    while app.webhooks.load(Ordering::Relaxed) < calls * 5 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let webhooks = app.webhooks.load(Ordering::Relaxed);
    println!(
        "{ended} calls ({} webhooks verified, {} refused) in {:.2} s real: {:.0} webhooks/s; peak RSS {} MiB",
        webhooks,
        app.bad.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        webhooks as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() / 1024
    );
    assert_eq!(app.bad.load(Ordering::Relaxed), 0);
    assert!(webhooks >= calls * 5, "{webhooks}");
    sandbox.shutdown();
}
