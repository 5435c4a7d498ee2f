//! `ivrx score`: output shape with the local engine, and `--engine symbl`
//! against the local Symbl stand-in (loopback only).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use ivrx_testkit::symbl_standin::{StandinConfig, SymblStandin};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Runs the binary in `dir` with a clean environment: no Symbl variables, and
/// home and config directories inside `dir`.
async fn ivrx(dir: &Path, args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivrx"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("SYMBL_APP_ID")
        .env_remove("SYMBL_APP_SECRET")
        .env_remove("SYMBL_API_BASE")
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("run ivrx");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("ivrx finished in time")
        .expect("ivrx output")
}

fn ndjson(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_conf(path: &Path, app_id: &str, app_secret: &str, mode: u32) -> PathBuf {
    std::fs::write(path, format!("# Symbl\n[credentials]\napp_id = {app_id}\napp_secret = {app_secret}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path.to_path_buf()
}

fn assert_shape(line: &Value, text: &str) {
    let obj = line.as_object().expect("an object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec!["label", "score", "text", "trackers"], "{line}");
    assert_eq!(line["text"], text);
    assert!(line["score"].as_f64().is_some_and(|s| (-1.0..=1.0).contains(&s)), "{line}");
    assert!(["negative", "neutral", "positive"].contains(&line["label"].as_str().unwrap()), "{line}");
    for hit in line["trackers"].as_array().expect("trackers is a list") {
        assert!(hit["tracker"].is_string() && hit["phrase"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn local_json_has_one_object_per_argument() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path(), &["score", "--json", "I love this", "get me an agent"], &[], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = ndjson(&out);
    assert_eq!(lines.len(), 2);
    assert_shape(&lines[0], "I love this");
    assert_shape(&lines[1], "get me an agent");
}

#[tokio::test]
async fn local_reads_one_utterance_per_stdin_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path(), &["score", "--json"], &[], Some("first line\n\n  second line  \n")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = ndjson(&out);
    assert_eq!(lines.len(), 2);
    assert_shape(&lines[1], "second line");

    let table = ivrx(dir.path(), &["score"], &[], Some("hello there\n")).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("hello there") && text.contains("label") && !text.contains('\u{1b}'), "{text}");

    let empty = ivrx(dir.path(), &["score"], &[], Some("\n")).await;
    assert_eq!(empty.status.code(), Some(1));
    assert!(stderr(&empty).contains("nothing to score"), "{}", stderr(&empty));
}

#[tokio::test]
async fn symbl_engine_scores_through_the_stand_in() {
    let s = SymblStandin::start(StandinConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(&dir.path().join("creds.conf"), &s.config().app_id, &s.config().app_secret, 0o600);
    let base = s.base_url();
    let args = [
        "score",
        "--engine",
        "symbl",
        "--symbl-conf",
        conf.to_str().unwrap(),
        "--json",
        "I love this",
        "this is terrible",
    ];
    let out = ivrx(dir.path(), &args, &[("SYMBL_API_BASE", &base)], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no warnings for a private file");
    let lines = ndjson(&out);
    assert_eq!(lines.len(), 2);
    assert_shape(&lines[0], "I love this");
    assert_eq!((lines[0]["score"].as_f64(), lines[0]["label"].as_str()), (Some(0.7), Some("positive")));
    assert_eq!((lines[1]["score"].as_f64(), lines[1]["label"].as_str()), (Some(-0.8), Some("negative")));
    assert_eq!(s.count_requests("/v1/process/text"), 1);
}

#[tokio::test]
async fn symbl_credentials_are_found_in_the_working_directory_and_loose_files_warned_about() {
    let s = SymblStandin::start(StandinConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_conf(&dir.path().join("symbl.conf"), &s.config().app_id, &s.config().app_secret, 0o644);
    let base = s.base_url();
    let out =
        ivrx(dir.path(), &["score", "--engine", "symbl", "--json", "good"], &[("SYMBL_API_BASE", &base)], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ndjson(&out)[0]["score"].as_f64(), Some(0.4));
    #[cfg(unix)]
    assert!(stderr(&out).contains("warning: ") && stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

#[tokio::test]
async fn bad_symbl_credentials_exit_non_zero_with_a_clear_message() {
    let s = SymblStandin::start(StandinConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(&dir.path().join("symbl.conf"), "wrong-id", "wrong-secret", 0o600);
    let base = s.base_url();
    let args = ["score", "--engine", "symbl", "--symbl-conf", conf.to_str().unwrap(), "--json", "hello"];
    let out = ivrx(dir.path(), &args, &[("SYMBL_API_BASE", &base)], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    let expected = format!("Symbl refused the credentials: check app_id/app_secret in {}", conf.display());
    assert!(err.contains(&expected), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear error: {err}");
}

#[tokio::test]
async fn missing_symbl_credentials_list_every_place_searched() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path(), &["score", "--engine", "symbl", "hello"], &[], None).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for place in [
        "SYMBL_APP_ID".to_string(),
        dir.path().join("symbl.conf").display().to_string(),
        dir.path().join("config/ivrx/symbl.conf").display().to_string(),
        dir.path().join("home/symbl.conf").display().to_string(),
        "[credentials]".to_string(),
    ] {
        assert!(err.contains(&place), "{place} not in:\n{err}");
    }
}

#[tokio::test]
async fn an_unreachable_symbl_is_named() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(
        dir.path(),
        &["score", "--engine", "symbl", "hello"],
        &[("SYMBL_API_BASE", &base), ("SYMBL_APP_ID", "a"), ("SYMBL_APP_SECRET", "b")],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("cannot reach Symbl at {base}")), "{}", stderr(&out));
}
