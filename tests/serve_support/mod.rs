//! Starts the real `ivrx serve` binary with the embedded sandbox carrier on
//! loopback ports, in a private directory, and drives it with the real `ivrx`
//! commands.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod live;

/// Runs `f` to its end on a runtime of its own (for the tests' HTTP reads).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    ivrx::http::tls::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// The time scale e2e tests run the sandbox clock at.
pub const TIME_SCALE: &str = "20";

pub struct Serve {
    child: Option<Child>,
    pub server: String,
    pub sandbox: String,
    pub dir: tempfile::TempDir,
    pub log: Arc<Mutex<Vec<String>>>,
    config: String,
    extra: Vec<String>,
    envs: Vec<(String, String)>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ivrx")
}

/// A command for the binary with a clean environment rooted in `home`.
pub fn ivrx(home: &Path) -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("TELNYX_") || k.starts_with("IVRX_") || k.starts_with("SYMBL_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home).env("XDG_CONFIG_HOME", home.join("config")).env("XDG_DATA_HOME", home.join("data"));
    c.env("NO_COLOR", "1");
    c
}

impl Serve {
    /// Starts `ivrx serve --sandbox` with this configuration (TOML) and extra flags.
    pub fn start(config: &str, extra: &[&str]) -> Serve {
        Serve::start_with_env(config, extra, &[])
    }

    /// Like [`Serve::start`], with extra environment variables (e.g. `SYMBL_API_BASE`).
    pub fn start_with_env(config: &str, extra: &[&str], envs: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Serve {
            child: None,
            server: String::new(),
            sandbox: String::new(),
            dir,
            log: Arc::default(),
            config: config.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        s.spawn("127.0.0.1:0");
        s
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ivrx.db")
    }

    /// The admin token the server generated: beside its SQLite file, or in
    /// the data directory when its database is PostgreSQL (`--db postgres://…`).
    pub fn token(&self) -> String {
        let beside = self.dir.path().join("admin-token");
        let file = if beside.exists() { beside } else { self.dir.path().join("data/ivrx/admin-token") };
        std::fs::read_to_string(file).expect("admin token file").trim().to_string()
    }

    fn spawn(&mut self, sandbox_listen: &str) {
        let cfg = self.dir.path().join("ivrx.toml");
        std::fs::write(&cfg, &self.config).unwrap();
        let mut cmd = ivrx(self.dir.path());
        cmd.args(["serve", "--sandbox", "--json", "--listen", "127.0.0.1:0", "--sandbox-listen", sandbox_listen]);
        if !self.extra.iter().any(|a| a == "--db") {
            cmd.arg("--db").arg(self.db());
        }
        cmd.arg("--config").arg(&cfg);
        if !self.extra.iter().any(|a| a == "--time-scale") {
            cmd.args(["--time-scale", TIME_SCALE]);
        }
        cmd.args(&self.extra);
        cmd.envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start ivrx serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if let (Some(server), Some(sandbox)) =
                        (v["fields"]["server"].as_str(), v["fields"]["sandbox"].as_str())
                    {
                        let _ = tx.send((server.to_string(), sandbox.to_string()));
                    }
                }
                log.lock().unwrap().push(line);
            }
        });
        let (server, sandbox) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(x) => x,
            Err(_) => {
                let _ = child.kill();
                panic!("ivrx serve did not start:\n{}", self.log.lock().unwrap().join("\n"));
            }
        };
        self.server = server;
        self.sandbox = sandbox;
        self.child = Some(child);
    }

    /// Kills the server with SIGKILL (no clean shutdown).
    pub fn kill9(&mut self) {
        kill9(&mut self.child);
    }

    /// Starts it again on the same database, sandbox on the same port.
    pub fn restart(&mut self) {
        self.kill9();
        let port = self.sandbox.rsplit(':').next().unwrap().to_string();
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpListener::bind(&addr).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&addr);
    }

    /// `ivrx ARGS` against this server and its sandbox carrier, with its token.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = ivrx(self.dir.path());
        c.args(args).env("IVRX_SERVER", &self.server).env("IVRX_SANDBOX_URL", &self.sandbox);
        c.env("IVRX_ADMIN_TOKEN", self.token());
        c
    }

    /// Runs `ivrx ARGS` against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ivrx")
    }

    /// Writes a caller script and returns its path.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(format!("{name}.ivrx"));
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Every SMS the sandbox carrier took (`GET /sandbox/v1/messages`).
    pub fn messages(&self) -> Vec<Value> {
        let url = format!("{}/sandbox/v1/messages", self.sandbox);
        block_on(async {
            let r = reqwest::Client::new().get(url).bearer_auth("sandbox").send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()["data"].as_array().cloned().unwrap()
        })
    }

    /// Places a simulated call with `ivrx dial --sandbox --json` and returns its report.
    pub fn dial(&self, script_text: &str) -> Value {
        let name = format!("call-{}", rand_suffix());
        let path = self.script(&name, script_text);
        let out = self.run(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ivrx dial failed ({}): {}\n{}\nserver log:\n{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr),
            self.log.lock().unwrap().join("\n")
        );
        let last = stdout.lines().last().unwrap_or_default();
        let report: Value =
            serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {stdout}"));
        assert!(report["end_reason"].is_string(), "the server recorded the end of the call: {report}");
        report
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the shell command line `ivrx ARGS` (the binary's path put in front)
/// in `cwd` on a terminal, which script(1) from util-linux gives it, with the
/// environment of [`ivrx`] rooted in `home` and these changes (`None` removes a
/// variable). Returns what the terminal showed.
pub fn on_a_terminal(home: &Path, cwd: &Path, args: &str, envs: &[(&str, Option<&str>)]) -> String {
    let template = ivrx(home);
    let mut c = Command::new("script");
    c.args(["-qefc", &format!("{} {args}", bin()), "/dev/null"]).current_dir(cwd);
    let changes = template.get_envs().map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)));
    let ours = envs.iter().map(|(k, v)| (k.into(), v.map(Into::into)));
    for (k, v) in changes.chain(ours) {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.stdin(Stdio::null()).output().expect("script(1) from util-linux");
    assert!(out.status.success(), "ivrx {args}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a child's output, killing it (and failing) after `limit`.
pub fn output_within(child: std::process::Child, limit: Duration, what: &str) -> Output {
    let (tx, rx) = std::sync::mpsc::channel();
    let id = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            // SAFETY: kill(2) on a child the test started, by its id.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A caller who presses 0 for an operator, then thanks the agent.
pub const OPERATOR: &str = "\
say hi i need some help with my account
press 0
pause 20
say thanks for picking up
hangup
";

/// `ivrx serve --sandbox` with the configuration `config` (TOML, written in
/// `home`) refuses to start, naming the config key `key` and saying `fix`.
pub fn refused_at_start(home: &Path, config: &str, key: &str, fix: &str) {
    let path = home.join("ivrx.toml");
    std::fs::write(&path, config).unwrap();
    let out = ivrx(home)
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{config} was accepted");
    assert!(err.contains(&format!("config key `{key}`")) && err.contains(fix), "{key}, {fix} in: {err}");
}

/// The conversation id of a report.
pub fn conv(report: &Value) -> String {
    report["conversation_id"].as_str().expect("conversation_id").to_string()
}

/// A conversation's domain events as stored in the database at `db`, as JSON.
pub fn events(db: &Path, conv: &str) -> Vec<Value> {
    ivrx::store::sqlite::Reader::new(db.to_path_buf())
        .events(conv, 0)
        .unwrap()
        .into_iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}

/// Kills a child process with SIGKILL (no clean shutdown) and reaps it.
pub fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The caller utterances of a report, in order.
pub fn caller_lines(report: &Value) -> Vec<String> {
    report["utterances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["speaker"] == "caller")
        .map(|u| u["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The transfer attempts of a report as (target, status).
pub fn attempts(report: &Value) -> Vec<(String, String)> {
    report["transfers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (t["target"].as_str().unwrap_or_default().to_string(), t["status"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}
