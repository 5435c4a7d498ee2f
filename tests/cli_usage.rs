//! The command line without a server: exit codes for usage mistakes, hints
//! that name the fix, error chains said once, `ivrx score` with the
//! configured engine, bundled callers by name, and `--help`'s exit codes.
//! Every command runs the real binary with a clean environment and NO_COLOR.

mod serve_support;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

/// `ivrx` in `dir`, with home, config and data directories inside it.
fn ivrx(dir: &Path) -> Command {
    let mut c = Command::from_std(serve_support::ivrx(dir));
    c.current_dir(dir).env_remove("COLUMNS");
    c
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_mistakes_exit_2_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    ivrx(dir.path())
        .args(["dial", "--sandbox"])
        .assert()
        .code(2)
        .stderr(contains("give the caller: --script FILE or a bundled caller's name (asks_for_human, calm"))
        .stderr(contains("Usage: ivrx dial"));
    ivrx(dir.path())
        .args(["dial", "--interactive"])
        .assert()
        .code(2)
        .stderr(contains("a simulated caller plays against the sandbox: add --sandbox"));
    ivrx(dir.path()).args(["dial"]).assert().code(2).stderr(contains("give the number to call"));
    ivrx(dir.path()).args(["score", ""]).assert().code(2).stderr(contains("nothing to score"));
    ivrx(dir.path()).args(["score", "  ", ""]).assert().code(2);
    // Empty input on stdin is bad input, not a bad command line.
    ivrx(dir.path()).arg("score").write_stdin("\n").assert().code(1).stderr(contains("nothing to score"));
}

#[test]
fn watch_without_an_id_opens_the_board_which_needs_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    ivrx(dir.path())
        .arg("watch")
        .assert()
        .code(2)
        .stderr(contains("the board needs a terminal; use --json for scripts"));
    ivrx(dir.path())
        .args(["watch", "--help"])
        .assert()
        .success()
        .stdout(contains("--all"))
        .stdout(contains("--latest"));
    ivrx(dir.path()).args(["watch", "--all", "--latest"]).assert().code(2).stderr(contains("cannot be used with"));
}

#[test]
fn a_bare_port_for_listen_suggests_an_address() {
    let dir = tempfile::tempdir().unwrap();
    ivrx(dir.path())
        .args(["serve", "--listen", "18080"])
        .assert()
        .code(2)
        .stderr(contains("18080 is a port, not an address: did you mean 127.0.0.1:18080"));
    ivrx(dir.path())
        .args(["serve", "--sandbox-listen", ":18090"])
        .assert()
        .code(2)
        .stderr(contains("did you mean 127.0.0.1:18090"));
    ivrx(dir.path()).args(["serve", "--listen", "localhost:18080", "--print-config"]).assert().success();
}

#[test]
fn dial_takes_the_number_as_an_argument() {
    let dir = tempfile::tempdir().unwrap();
    // A free port: nothing listens, so the live dial gets as far as the server.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    ivrx(dir.path())
        .args(["dial", "+15551234567", "--server", &format!("http://127.0.0.1:{port}")])
        .assert()
        .code(5)
        .stderr(contains("cannot reach ivrx serve"));
    ivrx(dir.path()).args(["dial", "+15551234567", "--to", "+15550000000"]).assert().code(2);
}

#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path()).args(["serve", "--config", "missing.toml", "--print-config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("cannot read config missing.toml"), "{err}");
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    std::fs::write(dir.path().join("typo.ivrx"), "say hello\nsya goodbye\n").unwrap();
    let out = ivrx(dir.path()).args(["dial", "--sandbox", "--script", "typo.ivrx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.matches("line 2").count(), 1, "{err}");
    assert!(err.contains(r#"unknown step "sya" (did you mean `say`?)"#), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bundled_callers_by_name_and_a_missing_script_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path()).args(["dial", "--sandbox", "--script", "examples/frustrated.ivrx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("no caller script at examples/frustrated.ivrx: give a script file, or a bundled caller by name (asks_for_human, calm, dtmf, frustrated, hangs_up_during_transfer, interested_buyer, waits_in_line); did you mean the bundled caller: --script frustrated?"),
        "{err}"
    );
    ivrx(dir.path())
        .args(["dial", "--sandbox", "--script", "frustated"])
        .assert()
        .code(1)
        .stderr(contains("did you mean --script frustrated?"));
    // A bundled name gets as far as the sandbox (none runs here).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    ivrx(dir.path())
        .args(["dial", "--sandbox", "--script", "frustrated", "--sandbox-url", &format!("http://127.0.0.1:{port}")])
        .assert()
        .code(5)
        .stderr(contains("cannot reach the sandbox carrier"));
}

#[test]
fn help_and_man_pages_list_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--help"], vec!["dial", "--help"], vec!["transfer", "--help"]] {
        ivrx(dir.path())
            .args(&args)
            .assert()
            .success()
            .stdout(contains("Exit status:\n  0  success\n  1  error"))
            .stdout(contains("  2  bad command line"))
            .stdout(contains("  6  gave up waiting"));
    }
    ivrx(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("ivrx dial --sandbox --script frustrated"))
        .stdout(contains("COLUMNS sets the width"));
}

#[test]
fn score_uses_the_configured_engine_and_says_which_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = "[[trackers]]\nname = \"fruit\"\nphrases = [\"blue banana\"]\n";
    std::fs::write(dir.path().join("t.toml"), tracker).unwrap();
    let fruit = r#""trackers":[{"tracker":"fruit","phrase":"blue banana","matched":"blue banana"}]"#;
    // --config
    ivrx(dir.path())
        .args(["score", "--config", "t.toml", "--json", "i like the blue banana"])
        .assert()
        .success()
        .stdout(contains(fruit))
        .stderr("");
    // IVRX_CONFIG
    ivrx(dir.path())
        .args(["score", "--json", "i like the blue banana"])
        .env("IVRX_CONFIG", "t.toml")
        .assert()
        .success()
        .stdout(contains(fruit));
    // The default file, and the table says which one it used.
    let default = dir.path().join("config/ivrx/ivrx.toml");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::write(&default, tracker).unwrap();
    ivrx(dir.path())
        .args(["score", "i like the blue banana"])
        .assert()
        .success()
        .stdout(contains("fruit (blue banana)"))
        .stderr(format!(
            "scoring with the local engine and 1 configured tracker, configuration {}\n",
            default.display()
        ));
    // [engine] too: Symbl, whose credentials are then searched for.
    std::fs::write(dir.path().join("symbl.toml"), "[engine]\nkind = \"symbl\"\n").unwrap();
    ivrx(dir.path())
        .args(["score", "--config", "symbl.toml", "hello"])
        .assert()
        .code(1)
        .stderr(contains("SYMBL_APP_ID"));
    std::fs::remove_file(&default).unwrap();
    ivrx(dir.path())
        .args(["score", "hello"])
        .assert()
        .success()
        .stderr(contains("scoring with the local engine, built-in defaults: no ").and(contains("ivrx.toml")));
}

#[test]
fn the_score_table_shows_what_was_said_not_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    let out = ivrx(dir.path()).args(["score", "this is ridiculous get me an actual person"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("asks_for_human (actual person)"), "{table}");
    assert!(!table.contains("real|actual"), "the pattern is not shown: {table}");
}

#[test]
fn a_malformed_import_names_the_format_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"conversation_id": "a", "utterances": [{"offset": 1, "speaker": "caller", "text": "hi"}]}"#;
    let bad = r#"{"conversation_id": "b", "utterances": [{"offset": "soon", "speaker": "caller", "text": "hi"}]}"#;
    std::fs::write(dir.path().join("calls.jsonl"), format!("{good}\n{bad}\nhello\n")).unwrap();
    let out = ivrx(dir.path()).args(["analyze", "--db", "x.db", "--import", "calls.jsonl"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("line 2: utterances[0].offset: invalid type: string \"soon\", expected f64"), "{err}");
    assert!(err.contains("line 3: not a JSON line: expected value (column 1)"), "{err}");
    assert!(err.contains("expected JSON lines, one conversation per line:"), "{err}");
    assert!(err.contains("or a Symbl messages export:"), "{err}");
    assert!(!dir.path().join("x.db").exists(), "nothing was written");
}

#[test]
fn filters_that_match_nothing_say_so_and_succeed() {
    let dir = tempfile::tempdir().unwrap();
    ivrx(dir.path()).args(["analyze", "--db", "s.db", "--synthetic", "20", "--json"]).assert().success();
    ivrx(dir.path())
        .args(["analyze", "--db", "s.db", "--since", "2099-01-01", "--queue", "sales"])
        .assert()
        .success()
        .stdout("No call in s.db matches --since 2099-01-01 --queue sales.\n");
}

#[test]
fn watch_from_the_database_takes_id_prefixes_and_shows_signed_bars() {
    let dir = tempfile::tempdir().unwrap();
    let call = |id: &str, text: &str| {
        format!(
            r#"{{"conversation_id": "{id}", "utterances": [{{"offset": 1, "speaker": "caller", "text": "{text}"}}]}}"#
        )
    };
    let lines = [
        call("ed6159f1-01f8-47da-85c9-aaaaaaaaaaaa", "this is terrible i hate this awful service"),
        call("ed6159f2-01f8-47da-85c9-bbbbbbbbbbbb", "thank you so much this is great"),
    ];
    std::fs::write(dir.path().join("calls.jsonl"), lines.join("\n")).unwrap();
    ivrx(dir.path()).args(["analyze", "--db", "x.db", "--import", "calls.jsonl"]).assert().success();
    let watch = |id: &str| ivrx(dir.path()).args(["watch", id, "--db", "x.db"]).output().unwrap();
    let neg = watch("ed6159f1");
    assert_eq!(neg.status.code(), Some(0), "{}", stderr_of(&neg));
    let pos = watch("ed6159f2-01f8");
    assert_eq!(pos.status.code(), Some(0), "{}", stderr_of(&pos));
    let bar = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| l.contains(" caller ")).unwrap_or_else(|| panic!("{text}")).to_string();
        line.split_whitespace().nth(3).unwrap().to_string()
    };
    let halves = |bar: String| {
        let (left, right) = bar.split_once('│').unwrap_or_else(|| panic!("a centre line in {bar}"));
        (left.contains('█'), right.contains('█'))
    };
    assert_eq!(halves(bar(&neg)), (true, false), "negative grows left: {}", bar(&neg));
    assert_eq!(halves(bar(&pos)), (false, true), "positive grows right: {}", bar(&pos));
    let clipped = watch("ed6159f2-01f8-47da-85c9…");
    assert_eq!(clipped.status.code(), Some(0), "an id clipped by a table still works: {}", stderr_of(&clipped));
    let ambiguous = watch("ed6159");
    assert_eq!(ambiguous.status.code(), Some(2));
    let err = stderr_of(&ambiguous);
    assert!(
        err.contains("\"ed6159\" is ambiguous: 2 conversations start with it: ed6159f1-01f8-47da-85c9-aaaaaaaaaaaa, ed6159f2-01f8-47da-85c9-bbbbbbbbbbbb; give more characters"),
        "{err}"
    );
    assert_eq!(watch("ffff0000").status.code(), Some(3));
}

#[test]
fn the_progress_bar_shows_the_rate_as_a_plain_number() {
    let dir = tempfile::tempdir().unwrap();
    // On a terminal, where the progress bar shows.
    let text = serve_support::on_a_terminal(dir.path(), dir.path(), "analyze --db x.db --synthetic 100 --top 1", &[]);
    let rates: Vec<&str> =
        text.split("calls (").skip(1).filter_map(|s| s.split_once("/s").map(|(rate, _)| rate)).collect();
    assert!(!rates.is_empty(), "the bar was drawn: {text:?}");
    for rate in rates {
        let plain = rate == "-"
            || rate.chars().all(|c| c.is_ascii_digit())
            || rate.split_once('.').is_some_and(|(a, b)| a.len() == 1 && b.len() == 1);
        assert!(plain, "a plain rate, not {rate:?}");
    }
}
