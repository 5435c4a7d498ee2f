//! Conferences over HTTP: the real Telnyx client against the sandbox carrier
//! (create, join, retrieve, leave, the errors Telnyx answers), and the listen
//! hook that lets a participant's hearing be followed.

use std::time::Duration;

use ivrx::sandbox::{PlaceCall, Sandbox, SandboxConfig, SandboxHandle, Script};
use ivrx::telnyx::commands::Answer;
use ivrx::telnyx::conferences::{ConferenceCreate, ConferenceJoin, ConferenceLeave};
use ivrx::telnyx::{ClientConfig, TelnyxClient, TelnyxError};

async fn sandbox() -> (SandboxHandle, TelnyxClient) {
    // Nobody receives the webhooks: delivery retries, the API works all the same.
    let mut config = SandboxConfig::new("http://127.0.0.1:9/webhooks");
    config.time_scale = 50.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = Sandbox::start(config, listener).await.unwrap();
    let client = TelnyxClient::new(ClientConfig::new(sandbox.api_base(), sandbox.api_key())).unwrap();
    (sandbox, client)
}

fn call(sandbox: &SandboxHandle, script: &str, from: &str) -> String {
    let mut c = PlaceCall::new(Script::parse(script).unwrap());
    c.from = from.into();
    sandbox.place_call(c).unwrap().call_control_id
}

#[tokio::test]
async fn conferences_through_the_client_and_what_participants_hear() {
    let (sandbox, client) = sandbox().await;
    let caller = call(&sandbox, "pause 2\nsay is anyone listening\npause 30", "+15550001111");
    let listener = call(&sandbox, "", "+15550002222");

    // Not answered yet: 90034, as Telnyx answers.
    let create = ConferenceCreate { call_control_id: caller.clone(), name: "conv-1".into(), ..Default::default() };
    let e = client.create_conference(&create).await.unwrap_err();
    assert!(matches!(e, TelnyxError::NotAnswered { .. }), "{e}");

    client.answer(&caller, Answer::default()).await.unwrap();
    client.answer(&listener, Answer::default()).await.unwrap();
    let conference = client.create_conference(&create).await.unwrap();
    assert_eq!((conference.name.as_str(), conference.status.as_deref()), ("conv-1", Some("in_progress")));
    let join = ConferenceJoin { call_control_id: listener.clone(), ..Default::default() };
    let mut heard = sandbox.listen(&listener).unwrap();
    client.join_conference(&conference.id, &join).await.unwrap();
    assert_eq!(sandbox.call_status(&listener).unwrap().conference_id.as_deref(), Some(conference.id.as_str()));

    let line = tokio::time::timeout(Duration::from_secs(10), heard.recv()).await.unwrap().unwrap();
    assert_eq!((line.text.as_str(), line.speaker_number.as_str()), ("is anyone listening", "+15550001111"));
    assert_eq!(line.speaker_call_control_id, caller);

    let e = client.join_conference("no-such-conference", &join).await.unwrap_err();
    assert!(matches!(e, TelnyxError::NotFound { .. }), "{e}");
    let leave = ConferenceLeave { call_control_id: listener.clone(), ..Default::default() };
    client.leave_conference(&conference.id, &leave).await.unwrap();
    assert_eq!(sandbox.call_status(&listener).unwrap().conference_id, None, "left, still on the line");
    let e = client.leave_conference(&conference.id, &leave).await.unwrap_err();
    assert!(matches!(e, TelnyxError::Api { status: 422, .. }), "not in it any more: {e}");
    let again = client.retrieve_conference(&conference.id).await.unwrap();
    assert_eq!(again.status.as_deref(), Some("in_progress"), "the caller is still in it");
    client.hangup(&caller, Default::default()).await.unwrap();
    let ended = client.retrieve_conference(&conference.id).await.unwrap();
    assert_eq!((ended.status.as_deref(), ended.end_reason.as_deref()), (Some("completed"), Some("all_left")));
    sandbox.shutdown();
}

#[tokio::test]
async fn the_heard_stream_over_http_ends_when_the_leg_hangs_up() {
    let (sandbox, client) = sandbox().await;
    let a = call(&sandbox, "pause 1\nsay hello over there\npause 30", "+15550001111");
    let b = call(&sandbox, "", "+15550002222");
    client.answer(&a, Answer::default()).await.unwrap();
    client.answer(&b, Answer::default()).await.unwrap();
    let conference = client
        .create_conference(&ConferenceCreate { call_control_id: a.clone(), name: "c".into(), ..Default::default() })
        .await
        .unwrap();
    client
        .join_conference(&conference.id, &ConferenceJoin { call_control_id: b.clone(), ..Default::default() })
        .await
        .unwrap();
    ivrx::http::tls::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut resp = http
        .get(format!("{}/sandbox/v1/calls/{b}/heard", sandbox.base_url()))
        .bearer_auth(sandbox.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.unwrap().unwrap().unwrap();
    let line: serde_json::Value = serde_json::from_slice(first.strip_suffix(b"\n").unwrap()).unwrap();
    assert_eq!(line["text"], "hello over there");
    client.hangup(&b, Default::default()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.unwrap().unwrap();
    assert!(end.is_none(), "the stream ends with the leg");
    let gone = http
        .get(format!("{}/sandbox/v1/calls/{b}/heard", sandbox.base_url()))
        .bearer_auth(sandbox.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 422);
    sandbox.shutdown();
}
