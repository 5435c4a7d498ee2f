//! `ivrx serve --sandbox --db postgres://…` on a real PostgreSQL (the test
//! process's throw-away cluster, see `ivrx_testkit::postgres`): whole calls
//! end up in PostgreSQL and `ivrx analyze --db postgres://…` reads them;
//! `/readyz` answers 503 while the database is down and nothing acknowledged
//! is lost; a SQLite store is copied into PostgreSQL with `analyze --import`.

mod serve_support;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_support::{caller_lines, ivrx, Serve};

/// The tests share the cluster, and one of them stops it.
static CLUSTER: Mutex<()> = Mutex::new(());

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.ivrx")))
        .unwrap()
}

/// `GET path` on `addr` (HOST:PORT): the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let addr = addr.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return (0, String::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn analyze_json(home: &Path, db: &str, extra: &[&str]) -> Value {
    let out = ivrx(home).args(["analyze", "--json", "--db", db]).args(extra).output().unwrap();
    assert!(out.status.success(), "analyze --db {db}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn calls_are_stored_in_postgres_and_survive_a_database_restart() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = ivrx_testkit::postgres::cluster() else { return };
    let url = pg.fresh_database();
    let _running = Running(pg);
    let s = Serve::start("", &["--db", &url]);
    assert!(!s.db().exists(), "no SQLite file was made");

    // A few whole calls.
    let handles: Vec<_> = ["calm", "asks_for_human", "frustrated"]
        .into_iter()
        .map(|name| {
            let path = s.script(name, &example(name));
            let cmd = s.command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()]);
            std::thread::spawn(move || dial(cmd))
        })
        .collect();
    let reports: Vec<Value> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(get(&s.server, "/readyz"), (200, "ready\n".to_string()));

    // The database goes away: /readyz says so, calls go on.
    pg.stop();
    wait_for("/readyz to answer 503", || {
        let (status, body) = get(&s.server, "/readyz");
        status == 503 && body.contains("cannot reach the database")
    });
    let path = s.script("during", &example("asks_for_human"));
    let mut during = s.command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()]);
    // (Its report may be asked for while the database is still down: only the call matters here.)
    let during = std::thread::spawn(move || during.output().unwrap());
    // The call's writes wait in memory.
    wait_for("writes to wait for the database", || pending(&s.server) > 0);
    pg.restart();
    wait_for("/readyz to recover", || get(&s.server, "/readyz").0 == 200);
    during.join().unwrap();
    wait_for("every write to be committed", || pending(&s.server) == 0);

    // analyze reads them from PostgreSQL, the call during the outage whole.
    let json = analyze_json(s.dir.path(), &url, &[]);
    let calls = json["calls"].as_array().unwrap();
    assert_eq!(calls.len(), reports.len() + 1, "{json}");
    let known: Vec<&Value> = reports.iter().map(|r| &r["conversation_id"]).collect();
    let during = calls.iter().find(|c| !known.contains(&&c["conversation_id"])).unwrap();
    let like = calls.iter().find(|c| c["conversation_id"] == reports[1]["conversation_id"]).unwrap();
    assert_eq!(during["transferred"], true, "{during}");
    for key in ["caller_utterances", "utterances", "reason", "trigger_index", "end_reason"] {
        assert_eq!(during[key], like[key], "{key}: the call during the outage is whole: {during}");
    }
    assert_eq!(caller_lines(&reports[1]).len() as u64, like["caller_utterances"].as_u64().unwrap());
    let connected = reports.iter().filter(|r| r["transferred"] == true).count() + 1;
    assert_eq!(calls.iter().filter(|c| c["transferred"] == true).count(), connected, "{json}");
    assert!(!json.to_string().contains("ivrx-test"), "the database's password is never printed");

    // watch replays a stored call from PostgreSQL, found by a prefix of its id.
    let id = during["conversation_id"].as_str().unwrap();
    let out = ivrx(s.dir.path()).args(["watch", "--json", "--db", &url, &id[..8]]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e.to_string().contains("\"decision\"")), "{events:?}");
    assert!(events.iter().any(|e| e.to_string().contains("call_ended")), "{events:?}");
}

/// Store writes waiting, from `/metrics`.
fn pending(server: &str) -> u64 {
    let (_, metrics) = get(server, "/metrics");
    metrics.lines().find_map(|l| l.strip_prefix("ivrx_store_pending ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// Starts the cluster again if a failed test left it stopped.
struct Running(&'static ivrx_testkit::postgres::Cluster);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.restart();
    }
}

fn dial(mut cmd: std::process::Command) -> Value {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ivrx dial: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn a_sqlite_store_is_copied_into_postgres_once() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = ivrx_testkit::postgres::cluster() else { return };
    let url = pg.fresh_database();
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("ivrx.db");
    let file_arg = file.to_str().unwrap();
    let made = ivrx(home.path()).args(["analyze", "--synthetic", "40", "--json", "--db", file_arg]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let from_sqlite = analyze_json(home.path(), file_arg, &[]);

    let copy = ivrx(home.path()).args(["analyze", "--import", file_arg, "--db", &url, "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&copy.stderr);
    assert!(copy.status.success(), "{stderr}");
    assert!(stderr.contains("copied 40 conversations"), "{stderr}");
    assert!(!stderr.contains("ivrx-test"), "the password is masked: {stderr}");
    let mut from_pg: Value = serde_json::from_slice(&copy.stdout).unwrap();
    assert!(from_pg["database"].as_str().unwrap().starts_with("postgres://postgres:***@"), "{}", from_pg["database"]);

    // Copying again adds nothing.
    let again = ivrx(home.path()).args(["analyze", "--import", file_arg, "--db", &url, "--json"]).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["calls"], from_pg["calls"]);

    // The same analysis from either database. (Scores travel through the
    // JSON event log, whose default float parsing may round the last bit.)
    let (pg_calls, sqlite_calls) = (from_pg["calls"].as_array().unwrap(), from_sqlite["calls"].as_array().unwrap());
    assert_eq!(pg_calls.len(), sqlite_calls.len());
    for (p, s) in pg_calls.iter().zip(sqlite_calls) {
        for (key, want) in s.as_object().unwrap() {
            let got = &p[key];
            match (got.as_f64(), want.as_f64()) {
                (Some(g), Some(w)) if want.is_f64() => assert!((g - w).abs() < 1e-12, "{key}: {got} vs {want}"),
                _ => assert_eq!(got, want, "{key} of {}", s["conversation_id"]),
            }
        }
    }
    assert_eq!(from_pg["summary"], from_sqlite["summary"]);
    from_pg["database"] = from_sqlite["database"].clone();

    // A path is still SQLite, and copying a file into itself is refused.
    let itself = ivrx(home.path()).args(["analyze", "--import", file_arg, "--db", file_arg]).output().unwrap();
    assert_eq!(itself.status.code(), Some(2), "{}", String::from_utf8_lossy(&itself.stderr));
}

#[test]
fn configuration_mistakes_get_one_clear_error() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = ivrx_testkit::postgres::cluster() else { return };
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cases = [
        (pg.url_with_password("Wr0ngPw"), "fix the user and password in the URL", 1),
        (format!("postgres://postgres:pw@127.0.0.1:{port}/ivrx"), "check that PostgreSQL is running", 5),
        ("postgres://postgres:pw@127.0.0.1:notaport/ivrx".to_string(), "storage.db", 1),
    ];
    for (url, fix, code) in cases {
        let out = ivrx(home.path())
            .args(["serve", "--sandbox", "--listen", "127.0.0.1:0", "--sandbox-listen", "127.0.0.1:0", "--db", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{url}: {stderr}");
        assert!(stderr.contains(fix), "{url}: {stderr}");
        assert_eq!(stderr.lines().filter(|l| l.starts_with("error")).count(), 1, "one error: {stderr}");
        assert!(!stderr.contains("Wr0ngPw") && !stderr.contains(":pw@"), "the password is masked: {stderr}");
    }
}
