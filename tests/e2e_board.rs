//! The browser board and the analytics report in a real browser: headless
//! Chromium, driven over the DevTools protocol, against `ivrx serve --sandbox`
//! with simulated calls in progress. Screenshots are kept under
//! `target/board-artefacts/`. Without Chromium the test skips, except under
//! CI, where it fails.

mod serve_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ivrx_testkit::chromium::{Chromium, Page};
use serde_json::Value;
use serve_support::{ivrx, Serve};

/// Longest wait for something the board should show (a busy machine).
const SHOWN: Duration = Duration::from_secs(60);

fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("board-artefacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A simulated call placed in the background (`ivrx dial --sandbox`).
struct Call(Option<Child>);

impl Call {
    fn place(s: &Serve, name: &str, script: &str) -> Call {
        let path = s.script(name, script);
        let child = s
            .command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Call(Some(child))
    }

    /// Its report, once it has ended.
    fn report(mut self) -> Value {
        let out = serve_support::output_within(self.0.take().unwrap(), SHOWN, "ivrx dial");
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        serve_support::kill9(&mut self.0);
    }
}

/// A caller who gets angrier line by line, with pauses, so the board sees
/// each line arrive, then the automatic transfer.
const ANGRY: &str = "say my internet has been dropping every few minutes since yesterday\npause 20\n\
say i already restarted the router twice and it still keeps disconnecting\npause 20\n\
say this is ridiculous i am so sick of this terrible service it never works\npause 20\n\
say i just need someone to actually fix it today\npause 20\nhangup\n";

/// A calm caller who stays on the line (for the manual transfer).
const PATIENT: &str = "say hi there i have a quick question about my last bill\npause 20\n\
say there is a charge from the fourteenth and i just want to know what it is for\npause 1200\nhangup\n";

async fn js(page: &mut Page, expression: &str) -> Value {
    page.eval(expression).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn until(page: &mut Page, expression: &str) -> Value {
    page.wait_for(expression, SHOWN).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn sign_in(page: &mut Page, token: &str) {
    let token = serde_json::to_string(token).unwrap();
    js(
        page,
        &format!("document.getElementById('token').value = {token}; document.querySelector('#login button').click()"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_follows_live_calls_and_transfers_once() {
    let Some(chromium) = Chromium::start_or_skip() else { return };
    let s = Serve::start("", &[]);
    let out = artefacts();
    let mut page = chromium.page().await.unwrap();
    page.viewport(1280, 860, false).await.unwrap();
    let board = format!("{}/board", s.server);

    // A wrong token is refused, and the page asks again.
    page.goto(&board).await.unwrap();
    until(&mut page, "!document.getElementById('login').hidden").await;
    sign_in(&mut page, "not-the-token").await;
    let said = until(&mut page, "document.getElementById('login-error').textContent").await;
    assert_eq!(said, "The admin token is wrong.");
    assert_eq!(js(&mut page, "sessionStorage.getItem('ivrx-admin-token')").await, Value::Null);
    assert_eq!(js(&mut page, "document.getElementById('board').hidden").await, true);
    let status = "fetch('/api/v1/board/events', {headers: {Authorization: 'Bearer wrong'}}).then(r => r.status)";
    assert_eq!(js(&mut page, status).await, 401);

    // The right one opens the board; nothing is in progress yet.
    sign_in(&mut page, &s.token()).await;
    until(&mut page, "document.getElementById('status').textContent.startsWith('Live')").await;
    assert_eq!(js(&mut page, "document.getElementById('no-calls').hidden").await, false);
    assert_eq!(js(&mut page, "sessionStorage.getItem('ivrx-admin-token') !== null").await, true);

    // Live calls appear, one row each.
    let patient = Call::place(&s, "patient", PATIENT);
    let angry = Call::place(&s, "angry", ANGRY);
    let human = Call::place(
        &s,
        "human",
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/asks_for_human.ivrx")).unwrap(),
    );
    until(&mut page, "document.querySelectorAll('#calls tbody tr').length >= 3").await;

    // Rows change as the callers speak: the angry caller's words arrive line by line.
    let words = "[...window.ivrxBoard.rows.values()].map(r => r.last_utterance || '').join('|')";
    until(&mut page, &format!("{words}.includes('restarted the router')")).await;
    let cell = "[...document.querySelectorAll('#calls td.words')].map(td => td.textContent).join('|')";
    until(&mut page, &format!("{cell}.includes('restarted the router')")).await;
    until(&mut page, &format!("{cell}.includes('this is ridiculous')")).await;
    let scores = "Math.max(...[...window.ivrxBoard.rows.values()].map(r => r.scores.length))";
    assert!(js(&mut page, scores).await.as_u64().unwrap() >= 3);

    // The transfer moment: the row is marked, the decision shown and announced.
    until(&mut page, "document.querySelector('#calls tr.transfer td.bad')").await;
    until(&mut page, "document.getElementById('status').textContent.startsWith('Transfer:')").await;
    page.viewport(1200, 420, false).await.unwrap();
    page.screenshot(&out.join("board.png"), false).await.unwrap();
    page.viewport(390, 844, true).await.unwrap();
    page.screenshot(&out.join("board-phone.png"), true).await.unwrap();
    let overflow = "document.documentElement.scrollWidth <= window.innerWidth";
    assert_eq!(js(&mut page, overflow).await, true, "the page fits a phone (its table scrolls)");
    page.viewport(1280, 860, false).await.unwrap();

    // Keyboard: the patient caller's row is a link; Enter opens the call.
    let find = "[...window.ivrxBoard.rows.values()].find(r => (r.last_utterance || '').includes('charge from the fourteenth'))";
    let id = until(&mut page, &format!("({find} || {{}}).conversation_id")).await;
    let id = id.as_str().unwrap().to_string();
    js(&mut page, &format!("document.querySelector('#calls a[data-id=\"{id}\"]').focus()")).await;
    for kind in ["keyDown", "keyUp"] {
        let key = serde_json::json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13});
        page.call("Input.dispatchKeyEvent", key).await.unwrap();
    }
    until(&mut page, "!document.getElementById('call').hidden").await;
    until(&mut page, "document.querySelectorAll('#transcript li').length >= 2").await;
    until(&mut page, "document.querySelector('#chart svg polyline')").await;

    // The transfer button asks first, then transfers once.
    js(&mut page, "document.getElementById('transfer').click()").await;
    assert_eq!(js(&mut page, "document.getElementById('confirm').hidden").await, false);
    js(&mut page, "document.getElementById('confirm-yes').click()").await;
    let result = until(&mut page, "document.getElementById('transfer-result').className && document.getElementById('transfer-result').textContent").await;
    assert!(result.as_str().unwrap().starts_with("Transfer requested"), "{result}");
    until(&mut page, "document.getElementById('transfer').disabled").await;
    until(&mut page, "document.querySelector('#transcript li.decision')").await;
    page.screenshot(&out.join("call.png"), true).await.unwrap();
    // A second request (another supervisor, a double click) is refused.
    let again = format!(
        "fetch('/api/v1/conversations/{id}/transfer', {{method: 'POST', headers: {{Authorization: 'Bearer ' + \
         sessionStorage.getItem('ivrx-admin-token'), 'Content-Type': 'application/json'}}, body: '{{}}'}}).then(r => r.status)"
    );
    let refused = again.replace("r.status", "r.status + ' ' + r.headers.get('content-type')");
    let refused = js(&mut page, &refused).await;
    assert!(refused.as_str().unwrap().starts_with("409 application/json"), "{refused}");
    // The record: one decision (the manual one), one transfer, its agent connected.
    let report = format!(
        "fetch('/api/v1/conversations/{id}', {{headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('ivrx-admin-token')}}}})\
         .then(r => r.json()).then(r => r.transfer_status === 'connected' && JSON.stringify(r))"
    );
    let report: Value = serde_json::from_str(until(&mut page, &report).await.as_str().unwrap()).unwrap();
    assert_eq!(report["reason"], "manual", "{report}");
    let first_attempts = report["transfers"].as_array().unwrap().iter().filter(|t| t["attempt"] == 1).count();
    assert_eq!(first_attempts, 1, "{report}");

    // Escape returns to the board.
    for kind in ["keyDown", "keyUp"] {
        let key = serde_json::json!({"type": kind, "key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27});
        page.call("Input.dispatchKeyEvent", key).await.unwrap();
    }
    until(&mut page, "!document.getElementById('board').hidden").await;

    let angry = angry.report();
    assert!(angry["reason"].is_string() && angry["decision_ms"].is_number(), "{angry}");
    assert_eq!(human.report()["reason"], "asked_for_human");
    drop(patient);
    let latency = js(&mut page, "JSON.stringify(window.ivrxBoard.latency)").await;
    let mut ms: Vec<f64> = serde_json::from_str(latency.as_str().unwrap()).unwrap();
    ms.sort_by(f64::total_cmp);
    assert!(!ms.is_empty());
    eprintln!(
        "board latency (server sent → row shown), {} rows: median {:.0} ms, max {:.0} ms",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
    assert!(page.errors().is_empty(), "page errors: {:?}", page.errors());
}

/// `[(y, text)]` of the `<text>` elements right-aligned at the left edge of
/// the SVG in the page, below `from_y`.
async fn y_ticks(page: &mut Page, from_y: f64) -> Vec<String> {
    let q = format!(
        "JSON.stringify([...document.querySelectorAll('figure svg text')].filter(t => t.getAttribute('text-anchor') === 'end' \
         && +t.getAttribute('x') < 80 && +t.getAttribute('y') >= {from_y}).sort((a, b) => a.getAttribute('y') - b.getAttribute('y'))\
         .map(t => t.textContent.trim()))"
    );
    serde_json::from_str(js(page, &q).await.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_well_in_a_browser() {
    let Some(chromium) = Chromium::start_or_skip() else { return };
    let home = tempfile::tempdir().unwrap();
    let report = home.path().join("report.html");
    let started = Instant::now();
    let run = ivrx(home.path())
        .current_dir(home.path())
        .args(["analyze", "--synthetic", "40", "--seed", "7", "--html"])
        .arg(&report)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    eprintln!("report made in {:?}", started.elapsed());
    let mut page = chromium.page().await.unwrap();
    page.viewport(1280, 900, false).await.unwrap();
    page.goto(&format!("file://{}", report.display())).await.unwrap();
    page.screenshot(&artefacts().join("report.png"), true).await.unwrap();
    page.screenshot(&artefacts().join("report-top.png"), false).await.unwrap();

    // The histogram (the lower part) counts calls: whole, distinct ticks down to 0.
    let ticks = y_ticks(&mut page, 470.0).await;
    let counts: Vec<u64> = ticks.iter().map(|t| t.parse().unwrap_or_else(|_| panic!("{t:?} in {ticks:?}"))).collect();
    assert!(counts.len() >= 2 && counts.windows(2).all(|w| w[0] > w[1]) && counts.last() == Some(&0), "{ticks:?}");
    // The sentiment axis: no "-0".
    let all = y_ticks(&mut page, 0.0).await;
    assert!(all.iter().all(|t| t != "-0" && t != "-0.0"), "{all:?}");
    // The page fits; wide tables scroll inside it, ids and times on one line.
    assert_eq!(js(&mut page, "document.documentElement.scrollWidth <= window.innerWidth").await, true);
    let one_line = "[...document.querySelectorAll('td.id, td.t')].every(td => { const r = document.createRange(); \
                    r.selectNodeContents(td); return r.getClientRects().length === 1 })";
    assert_eq!(js(&mut page, one_line).await, true);
    // The legend is right of the data.
    let legend =
        "[...document.querySelectorAll('figure svg text')].filter(t => t.textContent.trim() === 'transfer decided')\
                  .every(t => +t.getAttribute('x') >= 750)";
    assert_eq!(js(&mut page, legend).await, true);

    page.viewport(390, 844, true).await.unwrap();
    page.screenshot(&artefacts().join("report-phone.png"), true).await.unwrap();
    assert_eq!(js(&mut page, "document.documentElement.scrollWidth <= window.innerWidth").await, true);
}

/// The page's JS heap in use after a forced collection, MiB.
async fn heap(page: &mut Page) -> f64 {
    page.call("HeapProfiler.collectGarbage", serde_json::json!({})).await.unwrap();
    let usage = page.call("Runtime.getHeapUsage", serde_json::json!({})).await.unwrap();
    usage["usedSize"].as_f64().unwrap() / 1048576.0
}

/// `(median, p99, max)` of `ms`, sorted here.
fn spread(ms: &mut [f64]) -> (f64, f64, f64) {
    if ms.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}

/// Milliseconds from the server taking in a row's change (its `changed_at`)
/// to now.
fn since_changed(row: &Value) -> Option<f64> {
    let at = chrono::DateTime::parse_from_rfc3339(row.get("changed_at")?.as_str()?).ok()?;
    Some((chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_microseconds()? as f64 / 1e3)
}

/// A board reading the stream; it records, for each row, the time from the
/// server taking in its change to its arrival here, or, as `terminal`, to
/// the terminal board's screen drawn with it. The terminal board is run as
/// `ivrx watch` runs it: the stream read into a queue, and before each frame
/// every change waiting in it (at most 1024) applied to the board, which then
/// draws, into ratatui's test backend at 120×40 instead of a terminal.
fn stream_board(
    server: &str,
    token: &str,
    terminal: bool,
    latency: std::sync::Arc<std::sync::Mutex<Vec<f64>>>,
) -> tokio::task::JoinHandle<()> {
    use ivrx::cli::board::Board;
    use ivrx::server::live::{ActiveConversation, BoardChange};
    enum Msg {
        Snapshot(Vec<ActiveConversation>),
        Change(BoardChange),
    }
    let (url, token) = (format!("{server}/api/v1/board/events"), token.to_string());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(1024);
    let received = std::sync::Arc::clone(&latency);
    let reader = async move {
        let mut r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
        let mut pending = String::new();
        while let Ok(Some(chunk)) = r.chunk().await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            let mut rows = Vec::new();
            let mut start = 0;
            while let Some(end) = pending[start..].find('\n') {
                let line = &pending[start..start + end];
                start += end + 1;
                let Some(data) = line.strip_prefix("data:") else { continue };
                if terminal {
                    let msg = match serde_json::from_str::<BoardChange>(data.trim()) {
                        Ok(change) => Msg::Change(change),
                        Err(_) => {
                            let v: Value = serde_json::from_str(data.trim()).unwrap_or_default();
                            Msg::Snapshot(serde_json::from_value(v["calls"].clone()).unwrap_or_default())
                        }
                    };
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                } else if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                    rows.extend(v.get("call").cloned());
                }
            }
            pending.drain(..start);
            received.lock().unwrap().extend(rows.iter().filter_map(since_changed));
        }
    };
    if !terminal {
        return tokio::spawn(reader);
    }
    tokio::spawn(async move {
        let reading = tokio::spawn(reader);
        let mut screen = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        let mut board = Board::new(true);
        let mut shown = Vec::new();
        let apply = |board: &mut Board, shown: &mut Vec<Value>, msg: Msg| match msg {
            Msg::Snapshot(calls) => board.snapshot(calls),
            Msg::Change(change) => {
                if let BoardChange::Call { call } = &change {
                    shown.push(serde_json::json!({"changed_at": call.changed_at}));
                }
                board.apply(change);
            }
        };
        while let Some(msg) = rx.recv().await {
            apply(&mut board, &mut shown, msg);
            for _ in 0..1024 {
                let Ok(msg) = rx.try_recv() else { break };
                apply(&mut board, &mut shown, msg);
            }
            screen.draw(|f| board.draw(f, chrono::Utc::now())).unwrap();
            latency.lock().unwrap().extend(shown.drain(..).filter_map(|r| since_changed(&r)));
        }
        reading.abort();
    })
}

/// Load runs of the measurement below, in turn with no board, with five
/// (the browser among them) and with five stream readers only
/// (`IVRX_BOARD_ROUNDS`, rounded up to a multiple of 3).
const ROUNDS: usize = 9;

/// The machine's load average over the last minute.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The page's main-thread times (Chromium's `Performance.getMetrics`), s.
const PAGE_TIME: [&str; 4] = ["TaskDuration", "ScriptDuration", "RecalcStyleDuration", "LayoutDuration"];

async fn page_time(page: &mut Page) -> Vec<f64> {
    let m = page.call("Performance.getMetrics", serde_json::json!({})).await.unwrap();
    let metrics = m["metrics"].as_array().cloned().unwrap_or_default();
    let of = |name: &str| metrics.iter().find(|x| x["name"] == name).and_then(|x| x["value"].as_f64()).unwrap_or(0.0);
    PAGE_TIME.iter().map(|n| of(n)).collect()
}

/// Side by side in one run (`cargo test --release --test e2e_board --
/// --ignored --nocapture`): 50 simulated calls at once, load runs in turn
/// with no board attached, with five (the browser page, a terminal board
/// and three stream readers) and with five stream readers only (the server's
/// side of five boards, their clients costing the machine little); the delay from the server taking in a row's
/// change to the browser showing it, to the terminal board's screen drawn
/// with it and to a stream reader receiving it, the server's decision p99 of
/// each run, and the page's JS heap (after a forced collection) sampled over
/// `IVRX_BOARD_MINUTES` (default 10) of calls with the page open. The calls
/// speak at the pace of real callers (`IVRX_BOARD_TIME_SCALE`, default 1: the
/// sandbox clock's speed; at 20, fifty calls bring the events of a thousand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run on demand"]
async fn side_by_side_boards_under_fifty_calls() {
    let Some(chromium) = Chromium::start_or_skip() else { return };
    ivrx::http::tls::install_crypto_provider();
    let minutes: f64 = std::env::var("IVRX_BOARD_MINUTES").ok().and_then(|m| m.parse().ok()).unwrap_or(10.0);
    let rounds: usize = std::env::var("IVRX_BOARD_ROUNDS").ok().and_then(|m| m.parse().ok()).unwrap_or(ROUNDS);
    let rounds = rounds.div_ceil(3).max(1) * 3;
    let mut loads = Vec::new();
    let (calls, concurrency) = ("100", "50");
    let scale = std::env::var("IVRX_BOARD_TIME_SCALE").unwrap_or_else(|_| "1".into());
    let s = Serve::start("", &["--time-scale", &scale]);
    let token = s.token();
    let mut page = chromium.page().await.unwrap();
    let board = format!("{}/board", s.server);
    let load = || {
        s.command(&[
            "dial",
            "--sandbox",
            "--load",
            "--json",
            "--ramp",
            "1",
            "--calls",
            calls,
            "--concurrency",
            concurrency,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    };
    let decision_p99 = |child| {
        let out = serve_support::output_within(child, Duration::from_secs(900), "ivrx dial --sandbox --load");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: Value =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        report.pointer("/decision_latency/p99_ms").and_then(Value::as_f64).unwrap_or(f64::NAN)
    };

    // Decision p99 with 0 boards, 5 and 5 stream readers, in turn; the delays
    // on the 5-board runs, and where the page's main thread spent its time then.
    let (mut p99, mut browser) = ([Vec::new(), Vec::new(), Vec::new()], Vec::new());
    let (streamed, terminal) = (std::sync::Arc::default(), std::sync::Arc::default());
    page.call("Performance.enable", serde_json::json!({})).await.unwrap();
    let (mut busy, mut watched) = (Vec::new(), Duration::ZERO);
    for round in 0..rounds {
        let arm = round % 3;
        let boards = arm == 1;
        let readers: Vec<_> = if arm == 2 {
            // Five boards whose clients cost the machine little: what the server's side costs.
            let quiet = std::sync::Arc::default();
            (0..5).map(|_| stream_board(&s.server, &token, false, std::sync::Arc::clone(&quiet))).collect()
        } else if boards {
            page.goto(&board).await.unwrap();
            let live = "document.getElementById('status').textContent.startsWith('Live')";
            if until(&mut page, &format!("{live} ? 'live' : !document.getElementById('login').hidden && 'login'")).await
                == "login"
            {
                sign_in(&mut page, &token).await;
            }
            until(&mut page, live).await;
            let mut r = vec![stream_board(&s.server, &token, true, std::sync::Arc::clone(&terminal))];
            r.extend((0..3).map(|_| stream_board(&s.server, &token, false, std::sync::Arc::clone(&streamed))));
            r
        } else {
            page.goto("about:blank").await.unwrap();
            Vec::new()
        };
        let (mut run, before, began) = (load(), page_time(&mut page).await, Instant::now());
        // The page keeps its last 1000 delays: taken every second.
        while boards && run.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let ms = js(&mut page, "JSON.stringify(window.ivrxBoard.latency.splice(0))").await;
            browser.extend(serde_json::from_str::<Vec<f64>>(ms.as_str().unwrap()).unwrap());
        }
        if boards {
            let after = page_time(&mut page).await;
            busy.push(after.iter().zip(&before).map(|(a, b)| a - b).collect::<Vec<_>>());
            watched += began.elapsed();
        }
        p99[arm].push(decision_p99(run));
        loads.push(load_average());
        readers.iter().for_each(|r| r.abort());
    }

    // The page's heap over a run of calls.
    page.goto(&board).await.unwrap();
    until(&mut page, "document.getElementById('status').textContent.startsWith('Live')").await;
    let (start, began) = (heap(&mut page).await, Instant::now());
    let (mut peak, mut shown) = (start, 0);
    while began.elapsed().as_secs_f64() < minutes * 60.0 {
        let mut run = load();
        while run.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_secs(10)).await;
            peak = peak.max(heap(&mut page).await);
        }
        let ms = js(&mut page, "window.ivrxBoard.latency.splice(0).length").await;
        shown += ms.as_u64().unwrap_or(0);
    }
    let end = heap(&mut page).await;

    let mut streamed = std::mem::take(&mut *streamed.lock().unwrap());
    let mut terminal = std::mem::take(&mut *terminal.lock().unwrap());
    eprintln!(
        "{calls} calls per run, {concurrency} at once, sandbox clock x{scale}; {rounds} runs in turn: 0 boards, 5 boards, \
         5 stream readers; load average (1 min) at the runs' ends: {:.1} to {:.1}",
        loads.iter().copied().fold(f64::INFINITY, f64::min),
        loads.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    );
    eprintln!("delay server took in → shown   rows | median ms | p99 ms | max ms");
    for (name, ms) in
        [("browser board", &mut browser), ("terminal board", &mut terminal), ("stream reader", &mut streamed)]
    {
        let (median, p99, max) = spread(ms);
        eprintln!("{name:<28} {:>7} | {median:>9.1} | {p99:>6.1} | {max:>6.1}", ms.len());
    }
    let busy: Vec<f64> = (0..PAGE_TIME.len()).map(|i| busy.iter().map(|b| b[i]).sum()).collect();
    let share = |s: f64| 100.0 * s / watched.as_secs_f64();
    eprintln!(
        "the page's main thread over the 5-board runs ({:.0} s): busy {:.0}% (script {:.0}%, style {:.0}%, layout {:.0}%)",
        watched.as_secs_f64(),
        share(busy[0]),
        share(busy[1]),
        share(busy[2]),
        share(busy[3])
    );
    let medians: Vec<f64> = p99.iter().map(|v| spread(&mut v.clone()).0).collect();
    let mut none = p99[0].clone();
    spread(&mut none);
    let half = none.len() / 2;
    eprintln!(
        "decision p99 ms, {} runs each: 0 boards {:?}; 5 boards (browser, terminal, 3 readers) {:?}; 5 stream readers {:?}",
        rounds / 3,
        p99[0],
        p99[1],
        p99[2]
    );
    eprintln!(
        "medians {:.1}, {:.1} and {:.1} ms: ratios to 0 boards: 5 boards {:.2}, 5 stream readers {:.2}; noise band, \
         0-board runs against each other: lowest / highest = {:.2}, median of the second half / median of the first = {:.2}",
        medians[0],
        medians[1],
        medians[2],
        medians[1] / medians[0],
        medians[2] / medians[0],
        none[0] / none[none.len() - 1],
        spread(&mut p99[0][half..].to_vec()).0 / spread(&mut p99[0][..half].to_vec()).0,
    );
    eprintln!(
        "page JS heap after GC over {:.1} min ({shown} rows shown): start {start:.2} MiB, peak {peak:.2} MiB, end {end:.2} MiB",
        began.elapsed().as_secs_f64() / 60.0
    );
    assert!(page.errors().is_empty(), "page errors: {:?}", page.errors());
}
