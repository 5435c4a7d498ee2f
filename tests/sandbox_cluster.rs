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

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivrx::sandbox::{ControlClient, DeliveryRecord, PlaceRequest};
use serde_json::Value;
use serve_support::{ivrx, output_within, TIME_SCALE};

/// How long a start-up line may take.
const START: Duration = Duration::from_secs(60);

/// Kills the child on drop.
struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Collects the lines of `stream`, handing the first one `pick` accepts to the caller.
fn watch_lines(
    stream: impl std::io::Read + Send + 'static,
    pick: impl Fn(&Value) -> Option<Value> + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, std::sync::mpsc::Receiver<Value>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Some(v) = serde_json::from_str::<Value>(&line).ok().and_then(|v| pick(&v)) {
                let _ = tx.send(v);
            }
            lines.lock().unwrap().push(line);
        }
    });
    (log, rx)
}

/// `GET url` with a bearer token: the status and the JSON body (null when there is none).
async fn get_with_status(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url` with a bearer token, answered 200: its JSON body.
async fn get(url: &str, token: &str) -> Value {
    let (status, v) = get_with_status(url, token).await;
    assert_eq!(status, 200, "GET {url}: {v}");
    v
}

/// A standalone `ivrx sandbox`.
struct Carrier {
    /// Kept for its drop.
    _process: Process,
    base: String,
    connection_id: String,
    control: ControlClient,
}

impl Carrier {
    fn start(home: &Path, webhook_urls: &[String]) -> Carrier {
        let mut cmd = ivrx(home);
        cmd.args(["sandbox", "--json", "--listen", "127.0.0.1:0", "--time-scale", TIME_SCALE]);
        for url in webhook_urls {
            cmd.args(["--webhook-url", url]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start ivrx sandbox");
        let (log, rx) = watch_lines(child.stdout.take().unwrap(), |v| (v["event"] == "listening").then(|| v.clone()));
        let process = Process { child, log };
        let listening =
            rx.recv_timeout(START).unwrap_or_else(|_| panic!("ivrx sandbox did not start: {}", process.log()));
        assert_eq!(listening["webhook_urls"], serde_json::json!(webhook_urls));
        let base = listening["base_url"].as_str().unwrap().to_string();
        let control = ControlClient::new(&base, "sandbox").unwrap();
        let connection_id = listening["connection_id"].as_str().unwrap().to_string();
        Carrier { _process: process, base, connection_id, control }
    }

    /// `GET /sandbox/v1/public-key`, as an operator fetches it for `TELNYX_PUBLIC_KEY` (no key needed).
    async fn public_key(&self) -> String {
        let v = get(&format!("{}/sandbox/v1/public-key", self.base), "").await;
        v["public_key"].as_str().expect("public_key").to_string()
    }

    /// Plays a caller to the end; returns its call_control_id.
    async fn call(&self, script: &str) -> String {
        let ccid =
            self.control.place(&PlaceRequest { script: script.into(), ..PlaceRequest::default() }).await.unwrap();
        assert!(self.control.wait(&ccid, 600.0).await.unwrap(), "the call ended");
        ccid
    }

    /// Waits until nothing is left to deliver.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.control.deliveries().await.unwrap().queued > 0 {
            assert!(tokio::time::Instant::now() < deadline, "webhooks still queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The webhook log.
    async fn webhooks(&self) -> Vec<DeliveryRecord> {
        let v = get(&format!("{}/sandbox/v1/webhooks", self.base), "sandbox").await;
        serde_json::from_value(v["data"].clone()).unwrap()
    }
}

/// A live-mode `ivrx serve` pointed at the carrier, with its own database.
struct Instance {
    process: Process,
    url: String,
    webhook_url: String,
    token: String,
    home: tempfile::TempDir,
}

/// A loopback port free right now (for an instance whose URL the carrier must know first).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Instance {
    fn start(carrier: &Carrier, public_key: &str, port: u16) -> Instance {
        let home = tempfile::tempdir().unwrap();
        let token = format!("cluster-token-{port}");
        let mut cmd = ivrx(home.path());
        cmd.args(["serve", "--json", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.arg("--db").arg(home.path().join("ivrx.db"));
        cmd.env("TELNYX_API_BASE", format!("{}/v2", carrier.base))
            .env("TELNYX_API_KEY", "sandbox")
            .env("TELNYX_PUBLIC_KEY", public_key)
            .env("TELNYX_CONNECTION_ID", &carrier.connection_id)
            .env("IVRX_NUMBER", IVR_NUMBER)
            .env("IVRX_ADMIN_TOKEN", &token);
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start ivrx serve");
        let (log, rx) = watch_lines(child.stderr.take().unwrap(), |v| {
            v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("LIVE MODE")).then(|| v["fields"].clone())
        });
        let process = Process { child, log };
        let fields = rx.recv_timeout(START).unwrap_or_else(|_| panic!("ivrx serve did not start: {}", process.log()));
        let url = fields["server"].as_str().unwrap().to_string();
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        Instance { process, webhook_url: format!("{url}/webhooks/telnyx"), url, token, home }
    }

    /// Webhooks this instance counted, from its `/metrics` (`ivrx_webhooks_total`).
    async fn webhooks_counted(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url)).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("ivrx_webhooks_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

const CALLER: &str = "say my internet has been down since yesterday\nsay this is ridiculous\nhangup\n";

/// A caller who asks for a person: the instance transfers, with `IVRX_NUMBER` as caller id.
const ASKS_FOR_HUMAN: &str =
    "say my internet has been down since yesterday\nsay i want to talk to a real person\npause 20\nhangup\n";

/// The instances' `IVRX_NUMBER` (not the number simulated callers dial, so its use is seen).
const IVR_NUMBER: &str = "+15555550142";

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
