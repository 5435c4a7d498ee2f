//! Telnyx Messaging over HTTP: the real client sends SMS to the sandbox
//! carrier, whose signed `message.sent` / `message.finalized` webhooks verify
//! with its public key; chaos refuses, delays and fails messages as Telnyx can.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use ivrx::sandbox::{message_codes, Chaos, ControlClient, Sandbox, SandboxConfig, SandboxHandle};
use ivrx::telnyx::messaging::{DeliveryStatus, MessageCreate, MessageEvent, MessageEventType};
use ivrx::telnyx::{ClientConfig, Envelope, RetryPolicy, TelnyxClient, TelnyxError, WebhookVerifier};
use ivrx::telnyx::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook receiver on loopback that keeps what it gets.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn start(chaos: Chaos) -> (SandboxHandle, TelnyxClient, Received) {
    let (url, got) = receiver().await;
    let mut config = SandboxConfig::new(url);
    config.chaos = chaos;
    config.chaos.api_late_ms = 600;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = Sandbox::start(config, listener).await.unwrap();
    let mut cc = ClientConfig::new(sandbox.api_base(), sandbox.api_key());
    cc.retry = RetryPolicy { attempt_timeout: Duration::from_millis(300), ..RetryPolicy::default() };
    (sandbox.clone(), TelnyxClient::new(cc).unwrap(), got)
}

fn sms(to: &str) -> MessageCreate {
    MessageCreate {
        from: "+15555550199".into(),
        to: to.into(),
        text: "Transfer decided".into(),
        messaging_profile_id: Some("40017f4c-0000-4000-8000-000000000001".into()),
        kind: Some("SMS".into()),
        ..Default::default()
    }
}

/// The delivery webhooks received so far, verified and read.
fn events(sandbox: &SandboxHandle, got: &Received) -> Vec<MessageEvent> {
    let verifier = WebhookVerifier::from_base64(&sandbox.public_key_base64()).unwrap();
    let now = chrono::Utc::now().timestamp();
    got.lock()
        .unwrap()
        .iter()
        .map(|(h, body)| {
            let header = |n| h.get(n).and_then(|v| v.to_str().ok());
            verifier.verify(header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER), body, now).expect("signed");
            let env = Envelope::parse(body).unwrap();
            MessageEvent::from_parts(&env.data.event_type, &env.data.payload).unwrap().unwrap()
        })
        .collect()
}

async fn wait_for_events(sandbox: &SandboxHandle, got: &Received, n: usize) -> Vec<MessageEvent> {
    for _ in 0..400 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    events(sandbox, got)
}

#[tokio::test]
async fn an_sms_is_queued_listed_and_reported_sent_then_delivered() {
    let (sandbox, client, got) = start(Chaos::default()).await;
    let m = client.send_message(&sms("+15555550123")).await.unwrap();
    assert_eq!(m.status(), Some(&DeliveryStatus::Queued));
    assert_eq!((m.record_type.as_deref(), m.direction.as_deref()), (Some("message"), Some("outbound")));
    let events = wait_for_events(&sandbox, &got, 2).await;
    let seen: Vec<_> = events.iter().map(|e| (e.kind, e.message.status().cloned(), e.message.id.clone())).collect();
    assert_eq!(
        seen,
        [
            (MessageEventType::Sent, Some(DeliveryStatus::Sent), m.id.clone()),
            (MessageEventType::Finalized, Some(DeliveryStatus::Delivered), m.id.clone())
        ]
    );
    let control = ControlClient::new(&sandbox.base_url(), &sandbox.api_key()).unwrap();
    let listed = control.messages().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].to.as_str(), listed[0].status.as_str()),
        (m.id.as_str(), "+15555550123", "delivered")
    );
    assert_eq!(listed[0].text, "Transfer decided");

    let e = client.send_message(&sms("555-0123")).await.unwrap_err();
    assert!(matches!(&e, TelnyxError::Api { status: 422, code, .. } if code == message_codes::INVALID_TO), "{e}");
    sandbox.shutdown();
}

#[tokio::test]
async fn chaos_refuses_delays_and_fails_messages() {
    let (sandbox, client, _) = start(Chaos { message_refuse_rate: 1.0, ..Chaos::default() }).await;
    let e = client.send_message(&sms("+15555550123")).await.unwrap_err();
    assert!(matches!(&e, TelnyxError::Api { status: 422, code, .. } if code == message_codes::NOT_ROUTABLE), "{e}");
    sandbox.shutdown();

    // No answer in time: not sent again (Telnyx queued it; a retry would text twice).
    let (sandbox, client, _) = start(Chaos { message_timeout_rate: 1.0, ..Chaos::default() }).await;
    let e = client.send_message(&sms("+15555550123")).await.unwrap_err();
    assert_eq!(e, TelnyxError::Timeout { attempts: 1 });
    let control = ControlClient::new(&sandbox.base_url(), &sandbox.api_key()).unwrap();
    assert_eq!(control.messages().await.unwrap().len(), 1, "queued once");
    sandbox.shutdown();

    let (sandbox, client, got) = start(Chaos { message_fail_rate: 1.0, ..Chaos::default() }).await;
    let m = client.send_message(&sms("+15555550123")).await.unwrap();
    let events = wait_for_events(&sandbox, &got, 2).await;
    let last = events.last().unwrap();
    assert_eq!((last.kind, last.message.id.as_str()), (MessageEventType::Finalized, m.id.as_str()));
    assert_eq!(last.message.status(), Some(&DeliveryStatus::DeliveryFailed));
    assert_eq!(last.message.errors[0].code, message_codes::UNDELIVERABLE);
    sandbox.shutdown();
}
