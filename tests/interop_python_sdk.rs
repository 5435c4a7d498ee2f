//! Proves the sandbox carrier against the official Telnyx Python SDK.
//!
//! The test builds (once, cached under `target/interop-venv`, see
//! [`interop::venv`]) a Python venv with the pinned SDK, starts the real `ivrx sandbox` binary on a loopback
//! port, and runs `tests/interop/telnyx_sdk_interop.py`, which dials, answers,
//! speaks, gathers, transcribes, transfers and hangs up with the SDK and
//! verifies every webhook with the SDK's own Ed25519 verifier.
//!
//! The first run needs the Python package registry; without it the test fails
//! and says so.

mod interop;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Kills a child process (by its own handle) when the test ends, pass or fail.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's output, read on a thread.
fn lines(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn drain(out: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(out).read_to_string(&mut s);
        s
    })
}

/// The next line starting with `prefix`, skipping others (kept in `seen`).
fn line_with(rx: &Receiver<String>, prefix: &str, timeout: Duration, seen: &mut Vec<String>) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Some(line),
            Ok(line) => seen.push(line),
            Err(_) => return None,
        }
    }
}

#[test]
fn the_official_python_sdk_drives_the_sandbox() {
    let python = interop::venv();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/telnyx_sdk_interop.py");

    let mut py = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the interop script");
    let py_out = lines(py.stdout.take().expect("stdout"));
    let py_err = drain(py.stderr.take().expect("stderr"));
    let mut py_stdin = py.stdin.take().expect("stdin");
    let mut py = Reaped(py);
    let mut seen = Vec::new();

    let receiver = line_with(&py_out, "RECEIVER ", Duration::from_secs(60), &mut seen)
        .unwrap_or_else(|| panic!("the interop script did not start its receiver: {seen:?}"));
    let webhook_url = receiver.trim_start_matches("RECEIVER ").trim().to_string();

    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_ivrx"))
        .args(["sandbox", "--json", "--listen", "127.0.0.1:0", "--webhook-url", &webhook_url])
        .args(["--time-scale", "10", "--api-key", "interop-key", "--agent", "+15550002000=answer:1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ivrx sandbox");
    let sb_out = lines(sandbox.stdout.take().expect("stdout"));
    let sb_err = drain(sandbox.stderr.take().expect("stderr"));
    let sandbox = Reaped(sandbox);
    let mut sb_seen = Vec::new();
    let listening = line_with(&sb_out, "{", Duration::from_secs(30), &mut sb_seen)
        .unwrap_or_else(|| panic!("ivrx sandbox printed no start line: {sb_seen:?}"));
    let info: serde_json::Value = serde_json::from_str(&listening).expect("start line is JSON");
    assert_eq!(info["event"], "listening");
    let config = serde_json::json!({
        "api_base": info["api_base"],
        "base_url": info["base_url"],
        "api_key": "interop-key",
        "public_key": info["public_key"],
        "connection_id": info["connection_id"],
    });
    writeln!(py_stdin, "{config}").expect("send the sandbox configuration");
    py_stdin.flush().expect("flush");

    let verdict = line_with(&py_out, "INTEROP ", Duration::from_secs(240), &mut seen);
    let status = py.0.wait().ok();
    drop(sandbox);
    let stderr = py_err.join().unwrap_or_default();
    let sandbox_log = sb_err.join().unwrap_or_default();
    let Some(verdict) = verdict else {
        panic!(
            "the interop script gave no verdict (exit {status:?}).\nstdout: {seen:#?}\nstderr:\n{stderr}\nsandbox log:\n{sandbox_log}"
        );
    };
    assert!(
        verdict.starts_with("INTEROP OK "),
        "{verdict}\nstdout: {seen:#?}\nstderr:\n{stderr}\nsandbox log:\n{sandbox_log}"
    );
    assert!(status.is_some_and(|s| s.success()), "script exit status {status:?}");

    let summary: serde_json::Value =
        serde_json::from_str(verdict.trim_start_matches("INTEROP OK ")).expect("summary is JSON");
    assert_eq!(summary["telnyx_version"], interop::TELNYX_VERSION);
    assert!(summary["webhooks_verified"].as_u64().unwrap_or(0) >= 20, "{summary}");
    let types: Vec<&str> =
        summary["event_types"].as_array().expect("event_types").iter().filter_map(|v| v.as_str()).collect();
    for t in [
        "call.initiated",
        "call.answered",
        "call.speak.started",
        "call.speak.ended",
        "call.dtmf.received",
        "call.gather.ended",
        "call.transcription",
        "call.bridged",
        "call.hangup",
    ] {
        assert!(types.contains(&t), "no {t} verified: {types:?}");
    }
    let used: Vec<&str> =
        summary["sdk_calls"].as_array().expect("sdk_calls").iter().filter_map(|v| v.as_str()).collect();
    for call in [
        "calls.dial",
        "actions.answer",
        "actions.speak",
        "actions.gather_using_speak",
        "actions.start_transcription",
        "actions.transfer",
        "actions.hangup",
    ] {
        assert!(used.contains(&call), "the script did not use {call}: {used:?}");
    }
    println!("{verdict}");
}
