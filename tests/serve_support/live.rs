//! Live-mode `ivrx serve` instances behind a standalone `ivrx sandbox`
//! playing the load balancer, as an operator runs them: each instance gets
//! the environment a Telnyx deployment uses (`TELNYX_API_BASE`,
//! `TELNYX_API_KEY`, `TELNYX_PUBLIC_KEY` from `GET /sandbox/v1/public-key`,
//! `TELNYX_CONNECTION_ID`, `IVRX_NUMBER`, `IVRX_ADMIN_TOKEN`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivrx::sandbox::{ControlClient, DeliveryRecord, PlaceRequest};
use serde_json::Value;

use super::{ivrx, TIME_SCALE};

/// The instances' `IVRX_NUMBER` (not the number simulated callers dial, so its use is seen).
pub const IVR_NUMBER: &str = "+15555550142";

/// How long a start-up line may take.
pub const START: Duration = Duration::from_secs(60);

/// Kills the child on drop.
pub struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Kills it (SIGKILL).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks it to stop (SIGINT, as Ctrl-C does) and waits until it has.
    pub fn interrupt(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.child.wait();
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Collects the lines of `stream`, handing the first one `pick` accepts to the caller.
pub fn watch_lines(
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
pub async fn get_with_status(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url` with a bearer token, answered 200: its JSON body.
pub async fn get(url: &str, token: &str) -> Value {
    let (status, v) = get_with_status(url, token).await;
    assert_eq!(status, 200, "GET {url}: {v}");
    v
}

/// A standalone `ivrx sandbox`.
pub struct Carrier {
    /// Kept for its drop.
    _process: Process,
    pub base: String,
    pub connection_id: String,
    pub control: ControlClient,
}

impl Carrier {
    pub fn start(home: &Path, webhook_urls: &[String]) -> Carrier {
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
    pub async fn public_key(&self) -> String {
        let v = get(&format!("{}/sandbox/v1/public-key", self.base), "").await;
        v["public_key"].as_str().expect("public_key").to_string()
    }

    /// Plays a caller to the end; returns its call_control_id.
    pub async fn call(&self, script: &str) -> String {
        let ccid =
            self.control.place(&PlaceRequest { script: script.into(), ..PlaceRequest::default() }).await.unwrap();
        assert!(self.control.wait(&ccid, 600.0).await.unwrap(), "the call ended");
        ccid
    }

    /// Waits until nothing is left to deliver.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.control.deliveries().await.unwrap().queued > 0 {
            assert!(tokio::time::Instant::now() < deadline, "webhooks still queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The webhook log.
    pub async fn webhooks(&self) -> Vec<DeliveryRecord> {
        let v = get(&format!("{}/sandbox/v1/webhooks", self.base), "sandbox").await;
        serde_json::from_value(v["data"].clone()).unwrap()
    }
}

/// A live-mode `ivrx serve` pointed at the carrier.
pub struct Instance {
    pub process: Process,
    pub url: String,
    pub webhook_url: String,
    pub token: String,
    pub home: tempfile::TempDir,
    /// How it was started, to start it again.
    command: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Instance {
    /// An instance with its own SQLite file.
    pub fn start(carrier: &Carrier, public_key: &str, port: u16) -> Instance {
        Instance::start_on(carrier, public_key, port, None, &[])
    }

    /// An instance on database `db` (its own SQLite file when `None`), with
    /// the admin token `IVRX_ADMIN_TOKEN` from `envs` when given there.
    pub fn start_on(
        carrier: &Carrier,
        public_key: &str,
        port: u16,
        db: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Instance {
        let home = tempfile::tempdir().unwrap();
        let db = db.map_or_else(|| home.path().join("ivrx.db").to_string_lossy().into_owned(), str::to_string);
        let command = ["serve", "--json", "--listen", &format!("127.0.0.1:{port}"), "--db", &db].map(String::from);
        let mut all = vec![
            ("TELNYX_API_BASE".to_string(), format!("{}/v2", carrier.base)),
            ("TELNYX_API_KEY".into(), "sandbox".into()),
            ("TELNYX_PUBLIC_KEY".into(), public_key.into()),
            ("TELNYX_CONNECTION_ID".into(), carrier.connection_id.clone()),
            ("IVRX_NUMBER".into(), IVR_NUMBER.into()),
            ("IVRX_ADMIN_TOKEN".into(), format!("cluster-token-{port}")),
        ];
        for (k, v) in envs {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let token = all.iter().find(|(k, _)| k == "IVRX_ADMIN_TOKEN").map(|(_, v)| v.clone()).unwrap_or_default();
        let (process, url) = Instance::spawn(home.path(), &command, &all);
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
        Instance {
            process,
            webhook_url: format!("{url}/webhooks/telnyx"),
            url,
            token,
            home,
            command: command.into(),
            envs: all,
        }
    }

    fn spawn(home: &Path, command: &[String], envs: &[(String, String)]) -> (Process, String) {
        let mut cmd = ivrx(home);
        cmd.args(command).envs(envs.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start ivrx serve");
        let (log, rx) = watch_lines(child.stderr.take().unwrap(), |v| {
            v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("LIVE MODE")).then(|| v["fields"].clone())
        });
        let process = Process { child, log };
        let fields = rx.recv_timeout(START).unwrap_or_else(|_| panic!("ivrx serve did not start: {}", process.log()));
        (process, fields["server"].as_str().unwrap().to_string())
    }

    /// Starts it again as it was started (same port, database and token).
    pub fn restart(&mut self) {
        let (process, url) = Instance::spawn(self.home.path(), &self.command, &self.envs);
        assert_eq!(url, self.url);
        self.process = process;
    }

    /// Webhooks this instance counted, from its `/metrics` (`ivrx_webhooks_total`).
    pub async fn webhooks_counted(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url)).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("ivrx_webhooks_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// A loopback port free right now (for an instance whose URL the carrier must know first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
