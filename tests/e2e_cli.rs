//! The command line against a real `ivrx serve` (sandbox on loopback ports),
//! run from a directory outside the source tree: a faster sandbox clock keeps
//! real start times, ids are taken by unique prefix, a missing token file is
//! named, and `serve --demo` finds free ports.

mod serve_support;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;
use serve_support::{ivrx, Serve};

/// `ivrx ARGS` against `s`, from a fresh directory outside the source tree.
fn run(s: &Serve, args: &[&str]) -> Output {
    let cwd = tempfile::tempdir().unwrap();
    s.command(args).current_dir(cwd.path()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn analyze(s: &Serve, args: &[&str]) -> Value {
    let db = s.db();
    let mut all = vec!["analyze", "--json", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(s, &all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

#[test]
fn a_ten_times_faster_clock_stores_calls_at_their_real_time_with_realistic_offsets() {
    let s = Serve::start("", &["--time-scale", "10"]);
    // A first call lets the sandbox clock run ahead of the wall clock.
    let first = run(&s, &["dial", "--sandbox", "--json", "--script", "calm"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = Utc::now();
    let out = run(&s, &["dial", "--sandbox", "--json", "--script", "frustrated"]);
    let after = Utc::now();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["transferred"], true, "{report}");

    let doc = analyze(&s, &[]);
    let call = &doc["calls"][1];
    assert_eq!(call["conversation_id"], report["conversation_id"]);
    let started = time(&call["started_at"]);
    assert!(
        started >= before - chrono::Duration::seconds(2) && started <= after,
        "stored as starting {started}, placed between {before} and {after}"
    );
    // Offsets are sandbox time: the call lasted ten times longer than it took.
    let real_ms = (after - before).num_milliseconds();
    let duration_ms = call["duration_ms"].as_i64().unwrap();
    assert!(duration_ms > 5 * real_ms, "duration {duration_ms} ms, played in {real_ms} ms");
    assert!(call["decision_ms"].as_i64().unwrap() > 20_000, "{call}");
    // The filters and calls by hour see it now, not in the future.
    let minute = chrono::Duration::minutes(1);
    let since = (before - minute).to_rfc3339();
    let until = (before - minute).to_rfc3339();
    let since = analyze(&s, &["--since", &since, "--until", &(after + minute).to_rfc3339()]);
    assert_eq!(since["calls"].as_array().unwrap().len(), 2);
    assert_eq!(analyze(&s, &["--until", &until])["calls"].as_array().unwrap().len(), 0);
    let hours: Vec<usize> =
        doc["calls"].as_array().unwrap().iter().map(|c| time(&c["started_at"]).hour() as usize).collect();
    for h in &hours {
        let expected = hours.iter().filter(|x| *x == h).count();
        assert_eq!(doc["hours"][*h]["calls"], expected, "{}", doc["hours"]);
    }
    assert!(hours.contains(&(started.hour() as usize)));
    // The agent's leg shares the caller's clock: it connected after the decision.
    assert!(report["connected_ms"].as_i64() > report["decision_ms"].as_i64(), "{report}");
}

/// `GET path` on the admin API, with the token: the status and the JSON body.
fn get(s: &Serve, path: &str) -> (u16, Value) {
    ivrx::http::tls::install_crypto_provider();
    let req = reqwest::Client::new().get(format!("{}{path}", s.server)).bearer_auth(s.token());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// Places a call that stays up for a while, and returns its conversation id
/// once the server has it (as `ivrx watch --latest --json` sees it first).
fn long_call(s: &Serve) -> (String, std::thread::JoinHandle<Output>) {
    let cwd = tempfile::tempdir().unwrap();
    let mut watch = s.command(&["watch", "--latest", "--json"]);
    watch.current_dir(cwd.path());
    let mut watcher = watch.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let script = s.script("long", "say hello i have a question\npause 60\nsay are you still there\nhangup\n");
    let mut dial = s.command(&["dial", "--sandbox", "--json", "--script", script.to_str().unwrap()]);
    let dial = std::thread::spawn(move || dial.output().unwrap());
    let mut first = String::new();
    BufReader::new(watcher.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let _ = watcher.kill();
    let _ = watcher.wait();
    let event: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    (event["conversation_id"].as_str().unwrap().to_string(), dial)
}

#[test]
fn watch_and_transfer_take_a_unique_id_prefix_and_list_the_candidates_of_an_ambiguous_one() {
    let s = Serve::start("", &[]);
    let (id, dial) = long_call(&s);
    let prefix = &id[..8];
    let out = run(&s, &["transfer", prefix, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["conversation_id"], id.as_str());
    assert!(dial.join().unwrap().status.success());
    let out = run(&s, &["watch", prefix, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"decision".to_string()) && kinds.last().map(String::as_str) == Some("call_ended"));

    // Two stored conversations that share a prefix, next to the live ones.
    let call = |id: &str| {
        format!(
            r#"{{"conversation_id": "{id}", "utterances": [{{"offset": 1, "speaker": "caller", "text": "hello"}}]}}"#
        )
    };
    let file = s.dir.path().join("shared.jsonl");
    std::fs::write(&file, format!("{}\n{}\n", call("shared-prefix-one"), call("shared-prefix-two"))).unwrap();
    let db = s.db();
    let out = run(&s, &["analyze", "--db", db.to_str().unwrap(), "--import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&s, &["watch", "shared-pre", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "\"shared-pre\" is ambiguous: 2 conversations start with it: shared-prefix-one, shared-prefix-two"
        ),
        "{}",
        stderr(&out)
    );
    let out = run(&s, &["transfer", "shared-pre"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&s, &["watch", "shared-prefix-t", "--json"]);
    assert_eq!(out.status.code(), Some(0), "a unique prefix of a stored call replays it: {}", stderr(&out));
    // The admin API takes them too.
    let (status, body) = get(&s, &format!("/api/v1/conversations/{prefix}"));
    assert_eq!((status, body["conversation_id"].as_str()), (200, Some(id.as_str())), "{body}");
    let (status, body) = get(&s, "/api/v1/conversations/shared-pre");
    assert_eq!((status, &body["code"]), (400, &Value::from("ambiguous_id")), "{body}");
    assert_eq!(body["candidates"], serde_json::json!(["shared-prefix-one", "shared-prefix-two"]));
    // What analyze prints is what watch takes.
    let table = run(&s, &["analyze", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&format!("| {prefix} ")), "the short id is printed whole:\n{text}");
}

#[test]
fn watch_latest_without_a_token_file_names_the_file_and_the_fix() {
    let s = Serve::start("", &[]);
    let home = tempfile::tempdir().unwrap();
    let out = ivrx(home.path()).args(["watch", "--latest", "--server", &s.server]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let expected = home.path().join("data/ivrx/admin-token");
    assert!(
        err.contains(&format!("no admin token to send: there is no token file at {}", expected.display())),
        "{err}"
    );
    assert!(err.contains("--token-file FILE") && !err.contains("refused"), "{err}");
}

#[test]
fn the_demo_picks_free_ports_when_its_own_are_taken_and_runs_from_anywhere() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_sandbox = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (taken.local_addr().unwrap(), taken_sandbox.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut c = ivrx(dir.path());
    c.current_dir(dir.path()).args(["serve", "--demo", "--time-scale", "50"]);
    c.args(["--listen", &a.to_string(), "--sandbox-listen", &b.to_string()]);
    let child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = serve_support::output_within(child, Duration::from_secs(300), "serve --demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", stderr(&out));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("webhook server http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(!line.contains(&a.to_string()) && !line.contains(&b.to_string()), "{line}");
    for caller in ["calm", "frustrated", "asks_for_human", "interested_buyer"] {
        assert!(stdout.contains(&format!("| {caller} ")), "{caller} in the summary:\n{stdout}");
    }
    drop((taken, taken_sandbox));
}
