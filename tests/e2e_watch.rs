//! `ivrx watch` against a real `ivrx serve`: live and replayed, for people and
//! for scripts, and its behaviour when the id does not exist or the server goes.

mod serve_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use serve_support::{ivrx, Serve};

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(format!("{name}.ivrx")))
        .unwrap()
}

fn watch_cmd(s: &Serve, args: &[&str]) -> Command {
    let mut c = ivrx(s.dir.path());
    c.arg("watch").args(args).env("IVRX_SERVER", &s.server).env("IVRX_ADMIN_TOKEN", s.token());
    c
}

#[test]
fn watch_latest_follows_a_live_call_as_ndjson_until_it_ends() {
    let s = Serve::start("", &[]);
    let watcher = watch_cmd(&s, &["--latest", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let report = s.dial(&example("frustrated"));
    let out = watcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect();
    assert!(events.iter().all(|e| e["conversation_id"] == report["conversation_id"]));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for k in ["call_started", "utterance", "scored", "decision", "transfer", "call_ended"] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    assert_eq!(kinds.last(), Some(&"call_ended"));
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos("call_started") < pos("decision") && pos("decision") < pos("call_ended"));
    // Sequence numbers only grow (no event shown twice, the replay joins the live stream without a gap).
    let ns: Vec<u64> = events.iter().filter(|e| e["type"] != "interim").map(|e| e["n"].as_u64().unwrap()).collect();
    assert!(ns.windows(2).all(|w| w[0] < w[1]), "{ns:?}");
    let scored = events.iter().find(|e| e["type"] == "scored" && e["speaker"] == "caller").unwrap();
    assert!(scored["policy"]["level"].is_number(), "the policy state rides along: {scored}");
}

#[test]
fn watch_shows_people_the_transcript_the_trend_and_the_transfer() {
    let s = Serve::start("", &[]);
    let watcher = watch_cmd(&s, &["--latest"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    s.dial(&example("asks_for_human"));
    let out = watcher.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(">>> TRANSFER to support"), "{text}");
    assert!(text.contains("the caller asked for a person"), "{text}");
    assert!(text.contains("trigger: caller utterance 2"), "{text}");
    assert!(text.contains("trend "), "{text}");
    assert!(text.contains("--- call ended"), "{text}");
    assert!(text.contains("transfer to support (asked_for_human) decided at"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour when not a terminal");
}

#[test]
fn ended_conversations_replay_from_the_server_and_from_the_database() {
    let s = Serve::start("", &[]);
    let r = s.dial(&example("calm"));
    let conv = r["conversation_id"].as_str().unwrap();
    let from_server = watch_cmd(&s, &[conv, "--json"]).output().unwrap();
    assert_eq!(from_server.status.code(), Some(0), "{}", String::from_utf8_lossy(&from_server.stderr));
    let n = String::from_utf8_lossy(&from_server.stdout).lines().count();
    assert!(n > 5, "{n} events");
    // Without a server, straight from the database file.
    let db = s.db();
    let from_db = ivrx(s.dir.path()).args(["watch", conv, "--db", db.to_str().unwrap()]).output().unwrap();
    assert_eq!(from_db.status.code(), Some(0));
    let text = String::from_utf8_lossy(&from_db.stdout);
    assert!(text.contains("not transferred"), "{text}");
    assert!(text.contains("--- call ended"), "{text}");
    let json = ivrx(s.dir.path()).args(["watch", conv, "--db", db.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&json.stdout).lines().count(), n, "the same events either way");
}

#[test]
fn the_token_is_found_beside_a_database_elsewhere_with_token_file() {
    let s = Serve::start("", &[]);
    let r = s.dial(&example("calm"));
    let conv = r["conversation_id"].as_str().unwrap();
    let token_file = s.dir.path().join("admin-token");
    let watch = |extra: &[&str]| {
        ivrx(s.dir.path()).args(["watch", conv, "--json", "--server", &s.server]).args(extra).output().unwrap()
    };
    // The server keeps its token beside its --db, not in the default data directory: without help, refused.
    let out = watch(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = watch(&["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("call_ended"));
    // A token file that cannot be read is named, not silently skipped.
    let missing = s.dir.path().join("no-such-token");
    let out = watch(&["--token-file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the admin token file") && err.contains("no-such-token"), "{err}");
    // --token wins over --token-file.
    let out = watch(&["--token", &s.token(), "--token-file", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_missing_conversation_is_a_clear_error() {
    let s = Serve::start("", &[]);
    let out = watch_cmd(&s, &["no-such-conversation"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no conversation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.dial("say hello\nhangup\n");
    let db = s.db();
    let out = ivrx(s.dir.path()).args(["watch", "nope", "--db", db.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = ivrx(s.dir.path()).args(["watch", "x", "--db", "/nonexistent/ivrx.db"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_unreachable_or_vanishing_server_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        ivrx(dir.path()).args(["watch", "abc", "--server", "http://127.0.0.1:9", "--token", "t"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach ivrx serve"));

    // The server dies while a call is being followed.
    let mut s = Serve::start("", &[]);
    let script = s.script("long", "say hello there\npause 600\nhangup\n");
    let mut dial = ivrx(s.dir.path())
        .args(["dial", "--sandbox", "--sandbox-url", &s.sandbox, "--script", script.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watcher =
        watch_cmd(&s, &["--latest", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until the watcher has shown the caller's first words, then pull the plug.
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("watch output").unwrap();
        if line.contains("\"type\":\"utterance\"") {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    s.kill9();
    let status = watcher.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watcher.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("went away"), "{err}");
    let _ = dial.kill();
    let _ = dial.wait();
}

/// Reads `child`'s stdout until `done` says so (or fails after a minute).
/// Reads the child's output until `done` holds of it; the receiver gives what follows.
fn read_until(
    child: &mut std::process::Child,
    mut done: impl FnMut(&str) -> bool,
) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(chunk);
            if done(&String::from_utf8_lossy(&seen)) {
                return (String::from_utf8_lossy(&seen).into_owned(), rx);
            }
        }
    }
    let _ = child.kill();
    panic!("not seen within a minute:\n{}", String::from_utf8_lossy(&seen));
}

const SLOW_ANGRY: &str = "say my internet has been dropping every few minutes since yesterday\npause 20\n\
say this is ridiculous i am so sick of this terrible service it never works\npause 20\n\
say i just need someone to actually fix it today\npause 20\nhangup\n";

#[test]
fn the_board_streams_rows_as_ndjson_for_scripts() {
    let s = Serve::start("", &[]);
    let mut board = watch_cmd(&s, &["--all", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let caller = {
        let path = s.script("angry", SLOW_ANGRY);
        s.command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (text, _) = read_until(&mut board, |t| {
        t.contains("\"decision\":\"sentiment_floor\"") || t.contains("\"phase\":\"transferring\"")
    });
    let _ = board.kill();
    let mut caller = Some(caller);
    serve_support::kill9(&mut caller);
    let lines: Vec<Value> =
        text.lines().filter(|l| l.ends_with('}')).map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    assert_eq!(lines[0]["type"], "snapshot", "{text}");
    let rows: Vec<&Value> = lines.iter().filter(|l| l["type"] == "call").map(|l| &l["call"]).collect();
    assert!(rows.iter().any(|r| r["last_utterance"].as_str().is_some_and(|u| u.contains("ridiculous"))), "{text}");
    assert!(rows.iter().any(|r| r["scores"].as_array().is_some_and(|s| s.len() >= 2)), "{text}");
}

#[test]
fn the_terminal_board_runs_in_a_pseudo_terminal_and_quits_on_q() {
    use std::io::Write as _;
    let s = Serve::start("", &[]);
    let path = s.script("angry", SLOW_ANGRY);
    let mut caller = Some(
        s.command(&["dial", "--sandbox", "--json", "--script", path.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The pseudo-terminal gets a size first (script(1) gives it none without a terminal).
    let cmd = format!("stty cols 80 rows 24; {} watch --all", serve_support::bin());
    let mut term = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .env("IVRX_SERVER", &s.server)
        .env("IVRX_ADMIN_TOKEN", s.token())
        .env("NO_COLOR", "1")
        .env("HOME", s.dir.path())
        .env("COLUMNS", "80")
        .env("LINES", "24")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    // The screen is redrawn by difference: the first frame is whole, then the call's row.
    let (shown, rest) = read_until(&mut term, |t| t.contains("ivrx board · ") && t.contains("▶ +1555"));
    assert!(shown.contains("ivrx board") && shown.contains("q quit"), "{shown}");
    term.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    let out = serve_support::output_within(term, Duration::from_secs(30), "ivrx watch --all");
    let after: Vec<u8> = rest.try_iter().flatten().collect();
    assert!(
        out.status.success(),
        "{}; the terminal after q:\n{}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&out.stderr)
    );
    serve_support::kill9(&mut caller);
}
