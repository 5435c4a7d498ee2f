//! End to end with the Symbl engine: the Symbl stand-in runs in the test, the
//! real `ivrx serve --sandbox` binary runs on loopback pointed at it
//! (`SYMBL_API_BASE`, `[engine] symbl_conf`), and whole calls go through.
//!
//! Text mode: Telnyx (the sandbox) transcribes, Symbl scores each utterance.
//! PSTN mode: the stand-in's dialer places Symbl's call into the server's
//! embedded sandbox (through its control API) and relays what that call hears
//! in the conference to the stand-in's real-time socket.
//! Every failure case shows the call flowing on the local engine, with the
//! fallback in the record.

mod serve_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivrx::store::sqlite::Reader;
use ivrx_testkit::symbl_standin::{StandinConfig, SymblStandin};
use serde_json::{json, Value};
use serve_support::{attempts, conv, events, Serve};

/// The embedded sandbox's API key (`ivrx serve --sandbox`).
const SANDBOX_KEY: &str = "sandbox";

const FRUSTRATED: &str = "\
say my internet has been down since yesterday
say this is ridiculous i want to talk to a real person
pause 20
say thanks for picking up
hangup
";

/// Runs blocking harness code (process start, `ivrx dial`) from an async test.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn write_conf(dir: &Path, app_id: &str, app_secret: &str) -> PathBuf {
    let path = dir.join("symbl.conf");
    std::fs::write(&path, format!("[credentials]\napp_id = {app_id}\napp_secret = {app_secret}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn symbl_config(conf: &Path, timeout_ms: u64, extra: &str) -> String {
    format!(
        "[engine]\nkind = \"symbl\"\nsymbl_conf = {:?}\nsymbl_timeout_ms = {timeout_ms}\n{extra}",
        conf.display().to_string()
    )
}

/// A stand-in and a server using it.
struct Rig {
    standin: SymblStandin,
    serve: Serve,
    _dir: tempfile::TempDir,
}

async fn rig(timeout_ms: u64, extra_config: &str) -> Rig {
    let standin = SymblStandin::start(StandinConfig::default()).await.expect("start the Symbl stand-in");
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), &standin.config().app_id, &standin.config().app_secret);
    let config = symbl_config(&conf, timeout_ms, extra_config);
    let base = standin.base_url();
    let serve = blocking(|| Serve::start_with_env(&config, &[], &[("SYMBL_API_BASE", &base)]));
    Rig { standin, serve, _dir: dir }
}

fn log_has(serve: &Serve, needle: &str) -> bool {
    serve.log.lock().unwrap().iter().any(|l| l.contains(needle))
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The engine of each caller utterance, in order.
fn caller_engines(report: &Value) -> Vec<String> {
    report["utterances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["speaker"] == "caller")
        .map(|u| u["engine"].as_str().unwrap_or("unscored").to_string())
        .collect()
}

/// Waits (up to 30 s) for `check` to return something.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The insights an engine stored for a conversation, once they are there.
async fn insights(db: &Path, conv: &str, source: &str) -> Value {
    let reader = Reader::new(db.to_path_buf());
    eventually(&format!("{source} insights of {conv}"), || {
        reader.insights(conv).ok()?.into_iter().find(|(s, _)| s == source).map(|(_, v)| v)
    })
    .await
}

fn assert_fell_back(events: &[Value], reason_part: &str) {
    let fallbacks = of_type(events, "engine_fallback");
    assert_eq!(fallbacks.len(), 1, "one fallback per call: {fallbacks:#?}");
    assert_eq!(fallbacks[0]["from"], "symbl");
    assert_eq!(fallbacks[0]["to"], "local");
    let reason = fallbacks[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(reason_part), "fallback reason {reason:?} should mention {reason_part:?}");
}

/// Transferred once, to support, and the agent connected.
fn assert_transferred_once(report: &Value, events: &[Value]) {
    assert_eq!(report["transferred"], true, "{report:#}");
    assert_eq!(report["queue"], "support");
    assert_eq!(of_type(events, "decision").len(), 1);
    assert_eq!(attempts(report), vec![("+18005550201".to_string(), "connected".to_string())]);
}

// ------------------------------------------------------------------ text mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_scores_with_symbl_transfers_once_and_stores_topics_and_trackers() {
    let r = rig(5000, "").await;
    assert!(log_has(&r.serve, "Symbl is usable"), "the start-up check says Symbl is usable");
    let report = blocking(|| r.serve.dial(FRUSTRATED));
    let conv = conv(&report);
    let ev = events(&r.serve.db(), &conv);
    assert_transferred_once(&report, &ev);
    assert_eq!(report["reason"], "asked_for_human");
    assert_eq!(report["trigger_index"], 2);
    let engines = caller_engines(&report);
    assert!(!engines.is_empty() && engines.iter().all(|e| e == "symbl"), "scored by Symbl: {engines:?}");
    assert!(of_type(&ev, "engine_fallback").is_empty(), "no fallback: {ev:#?}");
    // The trigger's tracker hit came from Symbl's trackers-detected.
    let trigger = &report["utterances"].as_array().unwrap().iter().filter(|u| u["speaker"] == "caller").nth(1);
    assert!(trigger.unwrap()["trackers"].as_array().unwrap().iter().any(|t| t == "asks_for_human"), "{report:#}");

    let stored = insights(&r.serve.db(), &conv, "symbl").await;
    assert!(stored["conversation_id"].is_string(), "{stored:#}");
    assert!(!stored["topics"].as_array().unwrap().is_empty(), "topics stored: {stored:#}");
    let trackers: Vec<&str> =
        stored["trackers"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(trackers.contains(&"asks_for_human"), "trackers stored: {stored:#}");
    let report = Reader::new(r.serve.db()).report(&conv).unwrap().unwrap();
    assert!(report.insights.contains_key("symbl"), "the report includes the insights");
    assert!(r.standin.count_requests("/v1/conversations/") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_bad_credentials_are_announced_and_calls_fall_back() {
    let standin = SymblStandin::start(StandinConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), &standin.config().app_id, "not-the-secret");
    let config = symbl_config(&conf, 2000, "");
    let base = standin.base_url();
    let serve = blocking(|| Serve::start_with_env(&config, &[], &[("SYMBL_API_BASE", &base)]));
    assert!(log_has(&serve, "Symbl is NOT usable"), "{}", serve.log.lock().unwrap().join("\n"));
    let report = blocking(|| serve.dial(FRUSTRATED));
    let ev = events(&serve.db(), &conv(&report));
    assert_fell_back(&ev, "refused the credentials");
    assert_transferred_once(&report, &ev);
    let engines = caller_engines(&report);
    assert!(engines.iter().all(|e| e == "local"), "{engines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_symbl_down_at_start_is_announced_and_calls_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), "some-id", "some-secret");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let config = symbl_config(&conf, 2000, "");
    let serve = blocking(|| Serve::start_with_env(&config, &[], &[("SYMBL_API_BASE", &base)]));
    assert!(log_has(&serve, "Symbl is NOT usable"), "{}", serve.log.lock().unwrap().join("\n"));
    let report = blocking(|| serve.dial(FRUSTRATED));
    let ev = events(&serve.db(), &conv(&report));
    assert_fell_back(&ev, "cannot reach Symbl");
    assert_transferred_once(&report, &ev);
    assert!(caller_engines(&report).iter().all(|e| e == "local"));
}

/// The sandbox's control API, for calls the test steers step by step.
struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    fn new(serve: &Serve) -> Self {
        ivrx::http::tls::install_crypto_provider();
        Self { http: reqwest::Client::new(), base: serve.sandbox.trim_end_matches('/').to_string() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Value {
        let resp = req.bearer_auth(SANDBOX_KEY).send().await.expect("sandbox reachable");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "sandbox answered {status}: {body}");
        body
    }

    async fn place_live(&self, first_steps: &str) -> String {
        let body = json!({"script": first_steps, "live": true});
        let v = self.send(self.http.post(format!("{}/sandbox/v1/calls", self.base)).json(&body)).await;
        v["data"]["call_control_id"].as_str().expect("call_control_id").to_string()
    }

    async fn step(&self, ccid: &str, step: &str) {
        let url = format!("{}/sandbox/v1/calls/{ccid}/steps", self.base);
        self.send(self.http.post(url).json(&json!({"step": step}))).await;
    }

    async fn report(&self, ccid: &str) -> Value {
        let wait = format!("{}/sandbox/v1/calls/{ccid}/wait?timeout_secs=600", self.base);
        let waited = self.send(self.http.get(wait)).await;
        assert_eq!(waited["timed_out"], false, "{waited}");
        self.send(self.http.get(format!("{}/sandbox/v1/calls/{ccid}/report", self.base))).await
    }
}

/// A call the test steers step by step, with its stored conversation.
struct LiveCall {
    control: Control,
    ccid: String,
    reader: Reader,
    conv: String,
}

impl LiveCall {
    /// Places a live call that plays `first_steps`, once its conversation is stored.
    async fn place(serve: &Serve, first_steps: &str) -> Self {
        let control = Control::new(serve);
        let ccid = control.place_live(first_steps).await;
        let reader = Reader::new(serve.db());
        let conv = eventually("the conversation", || reader.conversation_for_call(&ccid).ok().flatten()).await;
        Self { control, ccid, reader, conv }
    }

    /// Waits until Symbl has scored one of the caller's utterances.
    async fn scored_by_symbl(&self) {
        eventually("a caller utterance scored by Symbl", || {
            let u = self.reader.utterances(&self.conv).ok()?;
            u.iter()
                .any(|u| u.speaker == ivrx::session::Speaker::Caller && u.engine.as_deref() == Some("symbl"))
                .then_some(())
        })
        .await;
    }

    /// Waits until the conversation's record holds its engine fallback.
    async fn fallback_recorded(&self) {
        eventually("the fallback", || {
            let ev = self.reader.events(&self.conv, 0).ok()?;
            ev.iter().any(|e| e.event.kind() == "engine_fallback").then_some(())
        })
        .await;
    }

    /// The caller asks for a person, thanks the agent once connected and
    /// hangs up; the call's report. (The caller waits for the connection
    /// however long the fallback takes on a busy machine.)
    async fn escalate_and_hang_up(&self) -> Value {
        self.control.step(&self.ccid, "say this is ridiculous i want to talk to a real person").await;
        eventually("the agent connected", || {
            let ev = self.reader.events(&self.conv, 0).ok()?;
            ev.iter()
                .any(|e| {
                    matches!(
                        e.event,
                        ivrx::session::DomainEvent::Transfer { status: ivrx::session::TransferStatus::Connected, .. }
                    )
                })
                .then_some(())
        })
        .await;
        for step in ["pause 2", "say thanks for picking up", "hangup"] {
            self.control.step(&self.ccid, step).await;
        }
        self.control.report(&self.ccid).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_symbl_dying_mid_call_falls_back_for_the_rest_of_the_call() {
    let r = rig(2000, "").await;
    let call = LiveCall::place(&r.serve, "say my internet has been down since yesterday").await;
    call.scored_by_symbl().await;
    r.standin.go_down().await;
    let report = call.escalate_and_hang_up().await;
    let ev = events(&r.serve.db(), &call.conv);
    assert_fell_back(&ev, "Symbl");
    assert_transferred_once(&report, &ev);
    let engines = caller_engines(&report);
    assert_eq!(engines[0], "symbl", "{engines:?}");
    assert!(engines[1..].iter().all(|e| e == "local"), "{engines:?}");
}

/// `received_at` of the first stored webhook matching `pred`.
fn received_at(db: &Path, conv: &str, pred: impl Fn(&str, &Value) -> bool) -> chrono::DateTime<chrono::Utc> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT received_at, event_type, body FROM webhooks WHERE conversation_id = ?1 ORDER BY received_at")
        .unwrap();
    let rows: Vec<(String, String, String)> =
        stmt.query_map([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let (at, _, _) = rows
        .iter()
        .find(|(_, kind, body)| {
            let v: Value = serde_json::from_str(body).unwrap_or_default();
            pred(kind, &v["data"]["payload"])
        })
        .unwrap_or_else(|| panic!("no matching webhook among {rows:#?}"));
    chrono::DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_mode_slow_symbl_answers_fall_back_after_the_deadline() {
    let deadline_ms = 400;
    let r = rig(deadline_ms, "").await;
    r.standin.set_delay(Duration::from_secs(3));
    let report = blocking(|| {
        r.serve.dial("say this is ridiculous i want to talk to a real person\npause 20\nsay thanks\nhangup\n")
    });
    let conv = conv(&report);
    let ev = events(&r.serve.db(), &conv);
    assert_fell_back(&ev, &format!("within {deadline_ms} ms"));
    assert_transferred_once(&report, &ev);
    assert_eq!(report["trigger_index"], 1);
    assert!(caller_engines(&report).iter().all(|e| e == "local"));
    // Held up by the deadline, and not much longer: from the words being
    // heard (the final transcript) to the agent being dialled.
    let heard = received_at(&r.serve.db(), &conv, |kind, p| {
        kind == "call.transcription" && p["transcription_data"]["is_final"] == true
    });
    let dialled = received_at(&r.serve.db(), &conv, |kind, p| kind == "call.initiated" && p["direction"] == "outgoing");
    let held = (dialled - heard).num_milliseconds();
    assert!(held >= deadline_ms as i64 - 50, "waited for Symbl first: {held} ms");
    assert!(held < deadline_ms as i64 + 1500, "not held up much longer than the deadline: {held} ms");
}

// ------------------------------------------------------------------ PSTN mode

/// A stand-in whose phone calls go into the server's embedded sandbox, and a
/// server in PSTN mode using it.
async fn pstn_rig() -> Rig {
    let r = rig(5000, "symbl_mode = \"pstn\"\n").await;
    let dialer = ivrx_testkit::symbl_standin::telephony::SandboxDialer::new(r.serve.sandbox.clone(), SANDBOX_KEY);
    r.standin.set_dialer(std::sync::Arc::new(dialer));
    r
}

const FRUSTRATED_PSTN: &str = "\
say my internet has been down since yesterday
say this is ridiculous and terrible i want to talk to a real person
pause 20
say thanks for picking up
hangup
";

fn roles_joined(events: &[Value]) -> Vec<String> {
    of_type(events, "leg_joined").iter().map(|e| e["role"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pstn_mode_symbl_listens_in_a_conference_and_the_agent_joins_the_same_call() {
    let r = pstn_rig().await;
    assert!(log_has(&r.serve, "Symbl is usable"));
    let report = blocking(|| r.serve.dial(FRUSTRATED_PSTN));
    let conv = conv(&report);
    let ev = events(&r.serve.db(), &conv);
    assert_transferred_once(&report, &ev);
    assert!(of_type(&ev, "engine_fallback").is_empty(), "no fallback: {ev:#?}");
    // One conversation: the caller, Symbl's leg and the agent's all in it.
    assert_eq!(roles_joined(&ev), ["caller", "symbl", "agent"], "{ev:#?}");
    // Symbl dialled the dial-in number (digits only) with the call's code.
    let connections = r.standin.connections();
    assert_eq!(connections.len(), 1, "{connections:?}");
    let (_, number, dtmf) = &connections[0];
    assert_eq!(number, "15555550198");
    let dtmf = dtmf.as_deref().unwrap_or_default();
    assert!(dtmf.ends_with('#') && dtmf.len() == 11 && dtmf[..10].chars().all(|c| c.is_ascii_digit()), "{dtmf}");
    // What the caller said before the agent joined came from Symbl and was scored by it.
    let caller: Vec<&Value> =
        report["utterances"].as_array().unwrap().iter().filter(|u| u["speaker"] == "caller").collect();
    assert_eq!(caller[0]["text"], "my internet has been down since yesterday", "{report:#}");
    assert!(caller[..2].iter().all(|u| u["engine"] == "symbl"), "{report:#}");
    assert_eq!(report["trigger_index"], 2);
    assert!(caller[1]["trackers"].as_array().unwrap().iter().any(|t| t == "asks_for_human"), "{report:#}");
    assert!(caller[1]["score"].as_f64().unwrap() < -0.5, "Symbl's sentiment: {report:#}");
    // The agent's speech is stored in the same conversation.
    assert!(report["utterances"].as_array().unwrap().iter().any(|u| u["speaker"] == "agent"), "{report:#}");
    assert_eq!(report["end_reason"], "completed_with_agent");
    // Symbl left at the end; its topics are stored.
    let stored = insights(&r.serve.db(), &conv, "symbl").await;
    assert!(!stored["topics"].as_array().unwrap().is_empty(), "{stored:#}");
    assert!(stored["trackers"].is_array(), "{stored:#}");
    assert!(r.standin.count_requests("/v1/endpoint:connect") >= 2, "started and stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pstn_mode_symbl_refusing_to_connect_falls_back_to_telnyx_transcription() {
    let r = pstn_rig().await;
    r.standin.refuse_connections(Some(400));
    let report = blocking(|| r.serve.dial(FRUSTRATED_PSTN));
    let ev = events(&r.serve.db(), &conv(&report));
    assert_fell_back(&ev, "Symbl could not dial in");
    assert_transferred_once(&report, &ev);
    assert_eq!(roles_joined(&ev), ["caller", "agent"], "no Symbl leg: {ev:#?}");
    let engines = caller_engines(&report);
    assert!(!engines.is_empty() && engines.iter().all(|e| e == "local"), "{engines:?}");
    assert!(r.serve.log.lock().unwrap().iter().any(|l| l.contains("Symbl failed for this call")), "one clear error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pstn_mode_symbl_dying_mid_call_falls_back_and_the_call_goes_on() {
    let r = pstn_rig().await;
    let call = LiveCall::place(&r.serve, "say my internet has been down since yesterday").await;
    call.scored_by_symbl().await;
    r.standin.go_down().await;
    call.fallback_recorded().await;
    let report = call.escalate_and_hang_up().await;
    let ev = events(&r.serve.db(), &call.conv);
    assert_fell_back(&ev, "Symbl");
    assert_transferred_once(&report, &ev);
    assert_eq!(roles_joined(&ev), ["caller", "symbl", "agent"], "the agent still joins the caller's conference");
    let engines = caller_engines(&report);
    assert_eq!(engines[0], "symbl", "{engines:?}");
    assert!(engines[1..].iter().all(|e| e == "local"), "Telnyx transcription and the local engine: {engines:?}");
    assert_eq!(caller_lines_after_fallback(&report), 2, "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pstn_mode_symbl_never_calling_in_falls_back_after_the_join_timeout() {
    // Symbl accepts the request to dial in but its call never comes (no dialer).
    let r = rig(5000, "symbl_mode = \"pstn\"\nsymbl_join_timeout_ms = 1000\nsymbl_code_timeout_ms = 1000\n").await;
    let call = LiveCall::place(&r.serve, "pause 1").await;
    call.fallback_recorded().await;
    assert_eq!(r.standin.connections().len(), 1, "Symbl was asked to dial in");
    let report = call.escalate_and_hang_up().await;
    let ev = events(&r.serve.db(), &call.conv);
    assert_fell_back(&ev, "Symbl did not call in within 1000 ms");
    assert_transferred_once(&report, &ev);
    assert_eq!(roles_joined(&ev), ["caller", "agent"], "no Symbl leg: {ev:#?}");
    let engines = caller_engines(&report);
    assert!(!engines.is_empty() && engines.iter().all(|e| e == "local"), "{engines:?}");
}

/// Caller utterances after the first (the ones Telnyx transcribed after the fallback).
fn caller_lines_after_fallback(report: &Value) -> usize {
    serve_support::caller_lines(report).len().saturating_sub(1)
}
