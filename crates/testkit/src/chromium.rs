//! Headless Chromium driven over the DevTools protocol, for the browser tests.
//!
//! Chromium comes from the distribution's packages: `scripts/chromium-for-tests`
//! finds it, or installs it when it runs as root with apt-get. When it cannot
//! be had, tests that need it skip with a message, except under CI (`CI`
//! set), where they fail. `IVRX_CHROMIUM` names another binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running headless Chromium, stopped when dropped.
pub struct Chromium {
    child: Child,
    /// `ws://127.0.0.1:PORT/devtools/browser/…`
    browser_ws: String,
    _profile: tempfile::TempDir,
}

/// The Chromium binary, installed first when missing and installable
/// (`scripts/chromium-for-tests`), or why there is none.
fn binary() -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chromium-for-tests");
    let out = Command::new("bash").arg(script).output().map_err(|e| format!("cannot run chromium-for-tests: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Chromium {
    /// Starts Chromium, or says why it could not.
    pub fn start() -> Result<Chromium, String> {
        let bin = binary()?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = Command::new(&bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(browser_ws) => Ok(Chromium { child, browser_ws, _profile: profile }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{bin} did not open its DevTools port within 60 s"))
            }
        }
    }

    /// Starts Chromium, or `None` after saying on stderr why the test skips.
    ///
    /// # Panics
    /// Under CI, when it could not be started.
    pub fn start_or_skip() -> Option<Chromium> {
        crate::or_skip(Chromium::start(), "Chromium", "Chromium")
    }

    /// A new tab.
    pub async fn page(&self) -> Result<Page, String> {
        let mut browser = Connection::open(&self.browser_ws).await?;
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"})).await?;
        let id = target["targetId"].as_str().ok_or("no targetId")?;
        let host = self.browser_ws.split("/devtools/").next().unwrap_or_default();
        let mut page = Page { conn: Connection::open(&format!("{host}/devtools/page/{id}")).await? };
        page.conn.call("Page.enable", json!({})).await?;
        page.conn.call("Runtime.enable", json!({})).await?;
        Ok(page)
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One DevTools connection: commands answered by id, events set aside.
struct Connection {
    ws: Socket,
    next: u64,
    /// Runtime exceptions and console errors seen so far.
    errors: Vec<String>,
}

impl Connection {
    async fn open(url: &str) -> Result<Connection, String> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| format!("DevTools {url}: {e}"))?;
        Ok(Connection { ws, next: 0, errors: Vec::new() })
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.map_err(|e| e.to_string())?;
        while let Some(m) = self.ws.next().await {
            let Message::Text(text) = m.map_err(|e| e.to_string())? else { continue };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            match v["method"].as_str() {
                Some("Runtime.exceptionThrown") => self.errors.push(v["params"]["exceptionDetails"].to_string()),
                Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                    self.errors.push(v["params"]["args"].to_string())
                }
                _ => {}
            }
        }
        Err(format!("{method}: the DevTools connection closed"))
    }
}

/// A tab.
pub struct Page {
    conn: Connection,
}

impl Page {
    /// Sends a DevTools command.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.conn.call(method, params).await
    }

    /// Opens `url` and waits until its document has loaded.
    pub async fn goto(&mut self, url: &str) -> Result<(), String> {
        self.call("Page.navigate", json!({"url": url})).await?;
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(30)).await.map(|_| ())
    }

    /// The value of a JavaScript expression (promises awaited).
    pub async fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true, "userGesture": true}),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expression` until it is truthy, then gives its value; an
    /// error after `limit`.
    pub async fn wait_for(&mut self, expression: &str, limit: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.eval(expression).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v.as_f64() != Some(0.0) && v.as_str() != Some("");
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("still false after {limit:?}: {expression}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's size (CSS pixels), as a phone (`mobile`) or a laptop.
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<(), String> {
        let scale = if mobile { 2 } else { 1 };
        let params = json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile});
        self.call("Emulation.setDeviceMetricsOverride", params).await.map(|_| ())
    }

    /// Saves a PNG of the whole page (`whole`) or of what the viewport shows.
    pub async fn screenshot(&mut self, path: &Path, whole: bool) -> Result<(), String> {
        use base64::Engine as _;
        let r = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": whole})).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().ok_or("no screenshot data")?)
            .map_err(|e| e.to_string())?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Exceptions thrown and errors logged by the page so far.
    pub fn errors(&self) -> &[String] {
        &self.conn.errors
    }
}
