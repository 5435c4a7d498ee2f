//! The Symbl client and engine against the local Symbl stand-in (loopback only).

use std::time::{Duration, Instant};

use ivrx::intel::{Label, TrackerConfig, TrackerHit};
use ivrx::symbl::{
    ConnectRequest, CredentialSearch, Credentials, JobStatus, RealtimeEvent, SymblCall, SymblClient, SymblConfig,
    SymblEngine, SymblEngineOptions, SymblError, TextMessage, TextRequest, TrackerSpec,
};
use ivrx_testkit::symbl_standin::{StandinConfig, SymblStandin};

async fn standin() -> SymblStandin {
    standin_with(StandinConfig::default()).await
}

async fn standin_with(config: StandinConfig) -> SymblStandin {
    SymblStandin::start(config).await.expect("start the Symbl stand-in")
}

/// Short timeouts and backoffs so failure tests stay fast.
fn fast_config(base_url: &str) -> SymblConfig {
    SymblConfig {
        base_url: base_url.to_string(),
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    }
}

fn credentials(s: &SymblStandin) -> Credentials {
    Credentials::new(s.config().app_id.clone(), s.config().app_secret.clone())
}

fn client(s: &SymblStandin) -> SymblClient {
    SymblClient::new(credentials(s), fast_config(&s.base_url())).unwrap()
}

fn engine(s: &SymblStandin, trackers: Vec<TrackerConfig>) -> SymblEngine {
    let options = SymblEngineOptions {
        poll_interval: Duration::from_millis(10),
        job_deadline: Duration::from_secs(2),
        trackers,
        ..SymblEngineOptions::default()
    };
    SymblEngine::new(client(s), options)
}

fn human_tracker() -> TrackerConfig {
    TrackerConfig { name: "asks_for_human".into(), phrases: vec!["agent".into(), "real person".into()] }
}

fn churn_tracker() -> TrackerConfig {
    TrackerConfig { name: "churn_risk".into(), phrases: vec!["cancel my account".into()] }
}

fn text(speaker: &str, content: &str) -> TextRequest {
    TextRequest::new(vec![TextMessage::new(speaker, content)])
}

#[tokio::test]
async fn the_token_is_cached_and_concurrent_callers_share_one_exchange() {
    let s = standin().await;
    let c = client(&s);
    let tokens = futures_util::future::join_all((0..8).map(|_| c.access_token())).await;
    let first = tokens[0].as_ref().unwrap().clone();
    assert!(tokens.iter().all(|t| t.as_ref().unwrap() == &first));
    assert_eq!(s.tokens_issued(), 1);
    c.process_text(&text("Caller", "hello")).await.unwrap();
    assert_eq!(s.tokens_issued(), 1);
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires() {
    let s = standin_with(StandinConfig { token_lifetime_secs: 1, ..StandinConfig::default() }).await;
    let c = client(&s);
    let job = c.process_text(&text("Caller", "hello")).await.unwrap();
    let first = c.access_token().await.unwrap();
    assert_eq!(c.access_token().await.unwrap(), first, "fresh token reused");
    // 1 s lifetime: refreshed 100 ms before expiry, while the old one still works.
    tokio::time::sleep(Duration::from_millis(950)).await;
    c.job(&job.job_id).await.unwrap();
    assert_ne!(c.access_token().await.unwrap(), first);
    assert_eq!(s.tokens_issued(), 2);
    assert!(s.requests().iter().all(|r| r.status != 401), "{:?}", s.requests());
}

#[tokio::test]
async fn a_revoked_token_is_replaced_once_transparently() {
    let s = standin().await;
    let c = client(&s);
    let job = c.process_text(&text("Caller", "hello")).await.unwrap();
    s.revoke_tokens();
    c.job(&job.job_id).await.unwrap();
    assert_eq!(s.tokens_issued(), 2);
    assert_eq!(s.requests().iter().filter(|r| r.status == 401).count(), 1);
}

#[tokio::test]
async fn text_jobs_create_append_poll_and_read_messages_with_sentiment() {
    let s = standin_with(StandinConfig { job_polls_in_progress: 2, ..StandinConfig::default() }).await;
    let c = client(&s);
    let job = c.process_text(&text("Caller", "I love this product.")).await.unwrap();
    assert_eq!(c.job(&job.job_id).await.unwrap().status, JobStatus::InProgress);
    assert!(c.messages(&job.conversation_id).await.unwrap().is_empty(), "no messages before the job completes");
    c.wait_for_job(&job.job_id, Duration::from_millis(10), Duration::from_secs(2)).await.unwrap();
    assert_eq!(c.job(&job.job_id).await.unwrap().status, JobStatus::Completed);

    let messages = c.messages(&job.conversation_id).await.unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.text, "I love this product.");
    assert_eq!(m.from.as_ref().unwrap().name.as_deref(), Some("Caller"));
    let sentiment = m.sentiment.as_ref().unwrap();
    assert_eq!(sentiment.polarity.score, 0.7);
    assert_eq!(sentiment.suggested.as_deref(), Some("positive"));

    let appended = c.append_text(&job.conversation_id, &text("Caller", "This is terrible. Why?")).await.unwrap();
    assert_eq!(appended.conversation_id, job.conversation_id);
    assert_ne!(appended.job_id, job.job_id);
    c.wait_for_job(&appended.job_id, Duration::from_millis(10), Duration::from_secs(2)).await.unwrap();
    let messages = c.messages(&job.conversation_id).await.unwrap();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["I love this product.", "This is terrible.", "Why?"]);
    assert_eq!(messages[1].sentiment.as_ref().unwrap().polarity.score, -0.8);
}

#[tokio::test]
async fn topics_and_trackers_point_at_their_messages() {
    let s = standin().await;
    let c = client(&s);
    let mut request = TextRequest::new(vec![
        TextMessage::new("Caller", "My billing statement is wrong."),
        TextMessage::new("Caller", "The billing department was great."),
        TextMessage::new("Caller", "I want to cancel my account."),
    ]);
    request.trackers = vec![TrackerSpec::from(&churn_tracker()), TrackerSpec::from(&human_tracker())];
    let job = c.process_text(&request).await.unwrap();
    c.wait_for_job(&job.job_id, Duration::from_millis(10), Duration::from_secs(2)).await.unwrap();
    let messages = c.messages(&job.conversation_id).await.unwrap();

    let topics = c.topics(&job.conversation_id).await.unwrap();
    let billing = topics.iter().find(|t| t.text == "billing").expect("billing topic");
    assert_eq!(billing.message_ids, vec![messages[0].id.clone(), messages[1].id.clone()]);
    assert_eq!(billing.score, Some(1.0));
    assert_eq!(billing.sentiment.as_ref().unwrap().polarity.score, 0.1); // mean of -0.4 and 0.6

    let trackers = c.trackers_detected(&job.conversation_id).await.unwrap();
    assert_eq!(trackers.len(), 1, "only matching trackers are reported: {trackers:?}");
    assert_eq!(trackers[0].name, "churn_risk");
    assert_eq!(trackers[0].matches[0].value, "cancel my account");
    assert_eq!(trackers[0].matches[0].message_refs[0].id, messages[2].id);
}

#[tokio::test]
async fn unknown_conversations_and_jobs_are_not_found() {
    let s = standin().await;
    let c = client(&s);
    assert_eq!(c.messages("404404").await.unwrap_err(), SymblError::NotFound { what: "conversation 404404".into() });
    assert!(matches!(c.job("nope").await, Err(SymblError::NotFound { .. })));
    assert!(matches!(c.append_text("404404", &text("Caller", "hi")).await, Err(SymblError::NotFound { .. })));
}

#[tokio::test]
async fn a_failed_job_is_a_typed_error() {
    let s = standin().await;
    s.fail_jobs(true);
    let e = engine(&s, Vec::new());
    let err = e.score_utterance(&SymblCall::new(), "hello").await.unwrap_err();
    assert!(matches!(err, SymblError::JobFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn the_engine_keeps_one_conversation_per_call_and_scores_each_utterance() {
    let s = standin().await;
    let e = engine(&s, vec![human_tracker(), churn_tracker()]);
    let call = SymblCall::new();

    let first = e.score_utterance(&call, "Hi, I have a question about my bill").await.unwrap();
    assert_eq!((first.score, first.label, first.engine.as_str()), (0.0, Label::Neutral, "symbl"));
    assert!(first.trackers.is_empty());
    let conversation = call.conversation_id().expect("conversation created");

    let second = e.score_utterance(&call, "This is terrible. Get me an agent!").await.unwrap();
    assert_eq!(second.score, -0.4, "mean of the two sentences (-0.8 and 0.0)");
    assert_eq!(second.label, Label::Negative);
    assert_eq!(second.trackers, vec![TrackerHit::new("asks_for_human", "agent")]);
    assert_eq!(call.conversation_id(), Some(conversation.clone()));

    let third = e.score_utterance_within(&call, "thanks, that was great", Duration::from_secs(2)).await.unwrap();
    assert_eq!((third.score, third.label), (0.9, Label::Positive));
    assert!(third.trackers.is_empty(), "earlier messages' trackers are not repeated");

    assert_eq!(s.count_requests("/v1/process/text"), 3, "one POST then two PUTs");
    assert_eq!(s.conversation_trackers(&conversation).unwrap(), vec!["asks_for_human", "churn_risk"]);

    let summary = e.finish(&call).await.unwrap();
    assert_eq!(summary.conversation_id.as_deref(), Some(conversation.as_str()));
    assert_eq!(summary.trackers.len(), 1);
    assert_eq!((summary.trackers[0].name.as_str(), summary.trackers[0].matches), ("asks_for_human", 1));
    assert!(summary.topics.iter().any(|t| t.text == "question"), "{:?}", summary.topics);
    assert!(summary.topics.iter().all(|t| t.sentiment.is_some() && t.label.is_some()));

    assert_eq!(e.finish(&SymblCall::new()).await.unwrap(), Default::default());
}

#[tokio::test]
async fn score_texts_returns_one_score_per_line_in_order() {
    let s = standin().await;
    let e = engine(&s, vec![human_tracker()]);
    let lines: Vec<String> =
        ["I love this", "this is terrible", "Not good. I want a real person now!", "check my balance"]
            .iter()
            .map(|l| l.to_string())
            .collect();
    let scores = e.score_texts(&lines).await.unwrap();
    let got: Vec<(f64, Label)> = scores.iter().map(|s| (s.score, s.label)).collect();
    assert_eq!(
        got,
        vec![(0.7, Label::Positive), (-0.8, Label::Negative), (-0.2, Label::Neutral), (0.0, Label::Neutral)]
    );
    assert_eq!(scores[2].trackers, vec![TrackerHit::new("asks_for_human", "real person")]);
    assert!(scores.iter().all(|s| s.engine == "symbl"));
    assert_eq!(s.count_requests("/v1/process/text"), 1, "all lines go in one conversation");
    assert!(e.score_texts(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn pstn_connect_realtime_messages_sentiment_and_stop() {
    let s = standin().await;
    let e = engine(&s, Vec::new());
    let session = e.start_pstn("+15550100", Some("1234#")).await.unwrap();
    let connection_id = session.connection.connection_id.clone();
    assert!(session.connection.result_web_socket_url.as_deref().unwrap().starts_with("ws://127.0.0.1:"));
    assert!(session.connection.event_url.as_deref().unwrap().starts_with("http://127.0.0.1:"));
    assert_eq!(session.call.conversation_id(), session.connection.conversation_id);

    let mut sub = e.subscribe(&session).await.unwrap();
    assert_eq!(sub.connection_id(), connection_id);
    let ids = s.push_speech(&connection_id, "Caller", "I hate waiting. Can I talk to an agent?").unwrap();
    assert_eq!(ids.len(), 2);

    let mut events = Vec::new();
    while events.len() < 5 {
        let next = tokio::time::timeout(Duration::from_secs(2), sub.next_event()).await.expect("event in time");
        events.push(next.expect("socket open").expect("valid event"));
    }
    assert!(matches!(&events[0], RealtimeEvent::Transcript(t) if !t.is_final && t.text() == "I hate waiting. Can I"));
    assert!(
        matches!(&events[1], RealtimeEvent::Transcript(t) if t.is_final && t.text() == "I hate waiting. Can I talk to an agent?")
    );
    let RealtimeEvent::Messages(m) = &events[2] else { panic!("{:?}", events[2]) };
    let texts: Vec<&str> = m.messages.iter().map(|m| m.text()).collect();
    assert_eq!(texts, vec!["I hate waiting.", "Can I talk to an agent?"]);
    assert_eq!(m.messages[0].from.name.as_deref(), Some("Caller"));
    assert!(m.messages[0].from.user_id.is_some());
    assert_eq!(m.messages[0].id.as_deref(), Some(ids[0].as_str()));
    assert!(matches!(&events[3], RealtimeEvent::Insights(i) if i.insights[0].kind.as_deref() == Some("question")));
    assert!(matches!(&events[4], RealtimeEvent::Topics(t) if !t.topics.is_empty()));

    // Sentiment is not pushed: it is read from the messages endpoint.
    let scored = e.score_new_messages(&session.call).await.unwrap();
    let scores: Vec<f64> = scored.iter().map(|m| m.score.score).collect();
    assert_eq!(scores, vec![-0.8, 0.0]);
    assert!(e.score_new_messages(&session.call).await.unwrap().is_empty(), "each message is scored once");

    e.stop_pstn(&session).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(2), sub.next_event()).await.expect("closed in time");
    assert!(end.is_none(), "{end:?}");
    assert!(s.push_speech(&connection_id, "Caller", "hello?").is_none());
    assert!(matches!(e.stop_pstn(&session).await, Err(SymblError::NotFound { .. })));
    assert!(matches!(e.client().subscribe(&connection_id).await, Err(SymblError::NotFound { .. })));
}

#[tokio::test]
async fn connect_request_is_validated() {
    let s = standin().await;
    let c = client(&s);
    let err = c.connect_pstn(&ConnectRequest::pstn("", None)).await.unwrap_err();
    assert!(matches!(err, SymblError::Rejected { status: 400, .. }), "{err:?}");
}

#[tokio::test]
async fn bad_credentials_are_refused_with_a_clear_message() {
    let s = standin().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("symbl.conf");
    std::fs::write(&path, "[credentials]\napp_id = wrong\napp_secret = also-wrong\n").unwrap();
    let creds = CredentialSearch { explicit: Some(path.clone()), ..Default::default() }.load().unwrap().credentials;
    let c = SymblClient::new(creds, fast_config(&s.base_url())).unwrap();
    let err = c.process_text(&text("Caller", "hello")).await.unwrap_err();
    assert_eq!(err, SymblError::Unauthorized { origin: path.display().to_string() });
    assert_eq!(
        err.to_string(),
        format!("Symbl refused the credentials: check app_id/app_secret in {}", path.display())
    );

    s.refuse_tokens(true);
    assert!(matches!(client(&s).access_token().await, Err(SymblError::Unauthorized { .. })));
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after() {
    let s = standin().await;
    let c = client(&s);
    c.access_token().await.unwrap();
    s.fail_next(1, 429, Some("1"));
    let started = Instant::now();
    c.process_text(&text("Caller", "hello")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(s.count_requests("/v1/process/text"), 2);

    s.fail_next(10, 429, Some("0"));
    let err = c.process_text(&text("Caller", "hello")).await.unwrap_err();
    assert!(matches!(err, SymblError::RateLimited { attempts: 3, .. }), "{err:?}");
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let s = standin().await;
    let c = client(&s);
    c.access_token().await.unwrap();
    s.fail_next(2, 500, None);
    c.process_text(&text("Caller", "hello")).await.unwrap();
    assert_eq!(s.count_requests("/v1/process/text"), 3);

    s.fail_next(3, 503, None);
    let err = c.process_text(&text("Caller", "hello")).await.unwrap_err();
    assert!(matches!(err, SymblError::Server { status: 503, attempts: 3, .. }), "{err:?}");
    assert_eq!(err.kind(), "server");
}

#[tokio::test]
async fn a_slow_answer_hits_the_deadline_in_bounded_time() {
    let s = standin().await;
    let config = SymblConfig { request_timeout: Duration::from_millis(300), ..fast_config(&s.base_url()) };
    let c = SymblClient::new(credentials(&s), config).unwrap();
    c.access_token().await.unwrap();
    s.set_delay(Duration::from_secs(5));

    let started = Instant::now();
    let err = c.job("any").await.unwrap_err();
    assert!(matches!(err, SymblError::Timeout { after, .. } if after == Duration::from_millis(300)), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());

    let e = SymblEngine::new(c, SymblEngineOptions::default());
    let started = Instant::now();
    let err = e.score_utterance_within(&SymblCall::new(), "hello", Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, SymblError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(1000), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_job_that_never_finishes_times_out() {
    let s = standin_with(StandinConfig { job_polls_in_progress: u32::MAX, ..StandinConfig::default() }).await;
    let c = client(&s);
    let job = c.process_text(&text("Caller", "hello")).await.unwrap();
    let started = Instant::now();
    let err = c.wait_for_job(&job.job_id, Duration::from_millis(20), Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, SymblError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(800), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_stand_in_going_down_is_unreachable() {
    let s = standin().await;
    let e = engine(&s, Vec::new());
    let session = e.start_pstn("+15550100", None).await.unwrap();
    let mut sub = e.subscribe(&session).await.unwrap();

    s.go_down().await;
    let started = Instant::now();
    let err = e.client().messages("1").await.unwrap_err();
    let SymblError::Unreachable { base, .. } = &err else { panic!("{err:?}") };
    assert_eq!(base, &s.base_url());
    assert!(err.to_string().starts_with(&format!("cannot reach Symbl at {}: ", s.base_url())), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    let end = tokio::time::timeout(Duration::from_secs(2), sub.next_event()).await.expect("noticed in time");
    assert!(matches!(end, None | Some(Err(SymblError::WebSocket { .. }))), "{end:?}");
    assert!(matches!(e.client().subscribe("x").await, Err(SymblError::Unreachable { .. })));
}
