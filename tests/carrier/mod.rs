//! A carrier that outlives the server: the sandbox runs inside the test, on
//! its own runtime, and the real `ivrx serve` binary runs in live mode against
//! it (`TELNYX_API_KEY`, `TELNYX_PUBLIC_KEY`, `TELNYX_API_BASE` pointing at the
//! sandbox). The server can be killed with SIGKILL and started again on the
//! same port and database while calls go on; the sandbox's logs tell what the
//! server sent and what the carrier ran.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ivrx::sandbox::{CommandRecord, LegState, LegStatus, PlaceCall, Sandbox, SandboxConfig, SandboxHandle, Script};
use serde_json::Value;

use super::serve_support::{ivrx, kill9};

/// The runtime every carrier and HTTP request of a test binary runs on.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Polls `f` until it returns `Some`, failing after `limit` with `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A TCP relay in front of the sandbox's API that can hold every request
/// (accepting connections but forwarding nothing; they are closed unanswered
/// once released) and let new requests through again.
pub struct Relay {
    pub port: u16,
    held: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    fn start(target: std::net::SocketAddr) -> Relay {
        let held = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(tokio::sync::Notify::new());
        let listener = rt().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let (h, c) = (held.clone(), cut.clone());
        rt().spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (h, c) = (h.clone(), c.clone());
                tokio::spawn(async move {
                    // Held: keep the connection open, forward nothing, and
                    // close it once released (what it carried is lost).
                    if h.load(Ordering::SeqCst) {
                        while h.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        return;
                    }
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = c.notified() => {}
                    }
                });
            }
        });
        Relay { port, held, cut }
    }

    /// Holds every request from now on (open connections are cut).
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Lets requests through again.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }
}

/// The sandbox carrier, running in the test process.
pub struct Carrier {
    pub sandbox: SandboxHandle,
    /// The port `ivrx serve` must listen on: webhooks go there.
    pub server_port: u16,
    /// The relay the server's commands go through.
    pub relay: Relay,
}

impl Carrier {
    /// A carrier at ×`time_scale` with its command log on, adjusted by `configure`.
    pub fn start(time_scale: f64, configure: impl FnOnce(&mut SandboxConfig)) -> Carrier {
        ivrx::http::tls::install_crypto_provider();
        let server_port = free_port();
        let mut config = SandboxConfig::new(format!("http://127.0.0.1:{server_port}/webhooks/telnyx"));
        config.time_scale = time_scale;
        config.record_log = true;
        // Enough retries to cover a server restart.
        config.delivery.attempts = 12;
        config.delivery.backoff = Duration::from_millis(100);
        config.delivery.max_backoff = Duration::from_millis(500);
        configure(&mut config);
        let sandbox = rt()
            .block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                Sandbox::start(config, listener).await
            })
            .expect("start the sandbox");
        let relay = Relay::start(sandbox.local_addr());
        Carrier { sandbox, server_port, relay }
    }

    /// The API base the server is given (through the relay).
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.relay.port)
    }

    /// Places a simulated inbound call; returns the caller's call_control_id.
    pub fn call(&self, script: &str) -> String {
        let script = Script::parse(script).expect("valid script");
        self.sandbox.place_call(PlaceCall::new(script)).expect("place call").call_control_id
    }

    /// Waits until the leg hangs up (at most `virtual_secs` of sandbox time).
    pub fn wait_hangup(&self, ccid: &str, virtual_secs: u64) -> LegStatus {
        let status =
            rt().block_on(self.sandbox.wait_for_hangup(ccid, Duration::from_secs(virtual_secs))).expect("known call");
        assert_eq!(status.state, LegState::HungUp, "call {ccid} still up after {virtual_secs} s: {status:?}");
        status
    }

    /// Every REST request the sandbox received.
    pub fn commands(&self) -> Vec<CommandRecord> {
        self.sandbox.command_log()
    }
}

impl Drop for Carrier {
    fn drop(&mut self) {
        self.sandbox.shutdown();
    }
}

/// `ivrx serve` in live mode against a [`Carrier`].
pub struct LiveServe {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub log: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    port: u16,
}

impl LiveServe {
    /// Starts `ivrx serve` with this configuration (TOML) against `carrier`.
    pub fn start(carrier: &Carrier, config: &str) -> LiveServe {
        Self::start_with(carrier, config, &[], &[])
    }

    /// Like [`start`](Self::start), with more environment variables and flags.
    pub fn start_with(carrier: &Carrier, config: &str, env: &[(&str, &str)], args: &[&str]) -> LiveServe {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ivrx.toml"), config).expect("write config");
        let mut all_env = vec![
            ("TELNYX_API_KEY".to_string(), carrier.sandbox.api_key()),
            ("TELNYX_PUBLIC_KEY".to_string(), carrier.sandbox.public_key_base64()),
            ("TELNYX_API_BASE".to_string(), carrier.api_base()),
            ("TELNYX_CONNECTION_ID".to_string(), carrier.sandbox.connection_id()),
        ];
        all_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut s = LiveServe {
            child: None,
            url: String::new(),
            dir,
            log: Arc::default(),
            env: all_env,
            args: args.iter().map(|a| a.to_string()).collect(),
            port: carrier.server_port,
        };
        s.spawn();
        s
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ivrx.db")
    }

    /// The admin token (configured, or generated beside the database).
    pub fn token(&self) -> String {
        if let Some((_, t)) = self.env.iter().find(|(k, _)| k == "IVRX_ADMIN_TOKEN") {
            return t.clone();
        }
        std::fs::read_to_string(self.dir.path().join("admin-token")).expect("admin token file").trim().to_string()
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn spawn(&mut self) {
        let mut cmd = ivrx(self.dir.path());
        cmd.args(["serve", "--json", "--listen", &format!("127.0.0.1:{}", self.port)]);
        cmd.arg("--db").arg(self.db()).arg("--config").arg(self.dir.path().join("ivrx.toml"));
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        // A file size limit (the tests' full disk) then fails writes instead of killing the process.
        // SAFETY: only an async-signal-safe call between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut child = loop {
            let mut child = cmd.spawn().expect("start ivrx serve");
            let stderr = child.stderr.take().expect("stderr");
            let (tx, rx) = std::sync::mpsc::channel();
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if let Some(server) = v["fields"]["server"].as_str() {
                            let _ = tx.send(server.to_string());
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(url) => {
                    self.url = url;
                    break child;
                }
                // The port may still be held by the killed process for a moment.
                Err(_) if Instant::now() < deadline && child.try_wait().ok().flatten().is_some() => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("ivrx serve did not start:\n{}", self.log_text());
                }
            }
        };
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ivrx serve exited at once ({status}):\n{}", self.log_text());
        }
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL (no clean shutdown).
    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// Starts it again on the same port, database and configuration.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `GET path` with the admin token: (status, body as JSON or text).
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{}", self.url, path);
        let token = self.token();
        rt().block_on(async move {
            let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
    }

    /// The report of the call `ccid` once it has ended.
    pub fn report(&self, ccid: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/calls/{ccid}/report?wait_secs=60"));
        assert_eq!(status, 200, "report of {ccid}: {body}\nserver log:\n{}", self.log_text());
        serde_json::from_str(&body).expect("report JSON")
    }
}

impl Drop for LiveServe {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Commands the sandbox ran, by command_id: every request carrying the id,
/// and whether (and how many times) it ran.
pub fn by_command_id(log: &[CommandRecord]) -> std::collections::BTreeMap<String, Vec<CommandRecord>> {
    let mut m = std::collections::BTreeMap::<String, Vec<CommandRecord>>::new();
    for r in log {
        if let Some(id) = &r.command_id {
            m.entry(id.clone()).or_default().push(r.clone());
        }
    }
    m
}

/// True when the sandbox ran this request (not a repeat, not refused, not dropped before running).
pub fn executed(r: &CommandRecord) -> bool {
    r.status == 200 && !r.duplicate
}

/// Runs a SQL query on the server's database returning one integer.
pub fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db");
    conn.query_row(sql, [], |r| r.get(0)).expect("query")
}
