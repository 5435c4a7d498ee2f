//! A database written by an earlier ivrx (`tests/stored/ivrx.db`, see its
//! README) opens, analyses and replays as it did: today's ivrx prints what that
//! ivrx printed, byte for byte, and reading leaves the file as it was.

use std::path::Path;
use std::process::Command;

const STORED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stored");

/// Runs `ivrx ARGS` beside a fresh copy of the stored database named `db`,
/// with no configuration or colour, and returns its output and the directory.
fn run_beside_copy(db: &str, args: &[&str]) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(STORED).join("ivrx.db"), dir.path().join(db)).unwrap();
    for input in ["replay.toml", "more.jsonl"] {
        std::fs::copy(Path::new(STORED).join(input), dir.path().join(input)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ivrx"))
        .args(args)
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("NO_COLOR", "1")
        .env_remove("IVRX_CONFIG")
        .env_remove("IVRX_DB")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "ivrx {args:?} failed:\n{stderr}");
    (stdout, stderr, dir)
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(Path::new(STORED).join(format!("{name}.out"))).unwrap()
}

/// Fails with the first line that differs (the outputs are long).
fn assert_same(name: &str, got: &str) {
    let want = expected(name);
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name}: output differs from the earlier ivrx's at line {}:\n  now:    {:?}\n  before: {:?}",
            line + 1,
            got.lines().nth(line),
            want.lines().nth(line)
        );
    }
}

#[test]
fn an_earlier_database_analyses_as_before() {
    let cases: [(&str, &[&str]); 5] = [
        ("analyze_json", &["--format", "json"]),
        ("analyze_csv", &["--format", "csv"]),
        ("analyze_table", &[]),
        ("analyze_replay", &["--format", "json", "--replay-policy", "replay.toml"]),
        (
            "analyze_filtered",
            &["--format", "csv", "--queue", "support", "--since", "2026-01-05", "--transferred", "true"],
        ),
    ];
    for (name, extra) in cases {
        let mut args = vec!["analyze", "--db", "ivrx.db"];
        args.extend_from_slice(extra);
        let (stdout, stderr, dir) = run_beside_copy("ivrx.db", &args);
        assert_same(name, &stdout);
        assert_eq!(stderr, "", "{name}");
        let now = std::fs::read(dir.path().join("ivrx.db")).unwrap();
        assert!(now == std::fs::read(Path::new(STORED).join("ivrx.db")).unwrap(), "{name}: reading changed the file");
    }
}

#[test]
fn an_earlier_database_replays_in_watch_as_before() {
    let call = ["watch", "--db", "ivrx.db", "--json", "811cb243-2bda-4fcc-84ab-3f5375c7175f"];
    assert_same("watch_call", &run_beside_copy("ivrx.db", &call).0);
    assert_same("watch_latest", &run_beside_copy("ivrx.db", &["watch", "--db", "ivrx.db", "--latest", "--json"]).0);
}

#[test]
fn an_earlier_database_takes_new_calls_as_before() {
    let args = ["analyze", "--db", "imported.db", "--import", "more.jsonl", "--format", "json"];
    let (stdout, stderr, _dir) = run_beside_copy("imported.db", &args);
    assert_same("import_json", &stdout);
    assert!(stderr.contains("imported 1 conversations (2 utterances; the policy decided to transfer 1)"), "{stderr}");
}
