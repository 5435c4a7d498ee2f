//! The README's "Try it" commands and its analytics example, and the ones
//! `ivrx serve` suggests at start, run verbatim from a directory outside the
//! source tree (only the binary's path is replaced, and loopback ports are
//! picked free through the environment instead of 8080 and 8090).

mod serve_support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `ivrx` commands of the README's "Try it" block, without their comments.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme.split("\n## Try it").nth(1).expect("a Try it section");
    let block = block.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .filter_map(|l| l.strip_prefix("./target/release/ivrx "))
        .map(|l| l.split("  #").next().unwrap().split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `ivrx ARGS` in `cwd`, with home, config and data directories under `home`.
fn ivrx(home: &Path, cwd: &Path, args: &[String]) -> Command {
    let mut c = serve_support::ivrx(home);
    c.current_dir(cwd).args(args);
    c
}

fn finish(child: Child, what: &str) -> Output {
    serve_support::output_within(child, Duration::from_secs(180), what)
}

fn check(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{what}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Follows a call with `watch` while `dial` plays it; both must succeed and
/// the watcher must see the transfer.
fn watch_and_dial(watch: &mut Command, dial: &mut Command) {
    let watcher = watch.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let dialled = finish(dial.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(), "dial");
    let report = check(&dialled, "dial");
    assert!(report.contains(">>> transfer to support"), "{report}");
    let watched = check(&finish(watcher, "watch"), "watch");
    assert!(watched.contains(">>> TRANSFER to support") && watched.contains("--- call ended"), "{watched}");
}

#[test]
fn the_readme_and_the_start_up_banner_work_from_any_directory() {
    let commands = readme_commands();
    let find = |first: &str, has: &str| {
        commands
            .iter()
            .find(|c| c[0] == first && c.iter().any(|a| a == has))
            .unwrap_or_else(|| panic!("no `ivrx {first} … {has}` in the README: {commands:?}"))
            .clone()
    };
    let (serve, watch, dial, interactive) =
        (find("serve", "serve"), find("watch", "--latest"), find("dial", "--script"), find("dial", "--interactive"));
    assert!(!dial.iter().any(|a| a.contains('/')), "the README dials a bundled caller by name: {dial:?}");

    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let (home, cwd) = (home.path(), cwd.path());
    let mut server = ivrx(home, cwd, &serve)
        .env("IVRX_LISTEN", "127.0.0.1:0")
        .env("IVRX_SANDBOX_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The banner: where it serves, and the commands to try.
    let (tx, rx) = mpsc::channel();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
        let mut banner = Vec::new();
        for line in lines.by_ref() {
            let done = line.contains("ivrx dial --sandbox");
            banner.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(banner);
        lines.for_each(drop);
    });
    let banner = rx.recv_timeout(Duration::from_secs(60)).expect("the start-up banner");
    let field = |name: &str| {
        banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {name} in {banner:#?}"))
    };
    let (server_url, sandbox_url) = (field("webhook server"), field("sandbox carrier"));
    let suggested: Vec<Vec<String>> = banner
        .iter()
        .skip_while(|l| !l.starts_with("Try"))
        .filter_map(|l| l.trim().strip_prefix("ivrx "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(suggested.len(), 2, "{banner:#?}");

    // The banner's commands as printed: they carry the flags these ports need.
    watch_and_dial(&mut ivrx(home, cwd, &suggested[0]), &mut ivrx(home, cwd, &suggested[1]));

    // The README's, which assume the default ports: the environment points them here.
    let here = |c: &[String]| {
        let mut c = ivrx(home, cwd, c);
        c.env("IVRX_SERVER", &server_url).env("IVRX_SANDBOX_URL", &sandbox_url);
        c
    };
    watch_and_dial(&mut here(&watch), &mut here(&dial));
    let mut typed =
        here(&interactive).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = typed.stdin.take().unwrap();
    stdin.write_all(b"this is ridiculous i want to talk to a real person\n").unwrap();
    drop(stdin);
    let report = check(&finish(typed, "dial --interactive"), "dial --interactive");
    assert!(report.contains("this is ridiculous i want to talk to a real person"), "{report}");

    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn the_readme_analytics_example_runs_from_any_directory() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let example = readme
        .split('`')
        .find(|s| s.starts_with("ivrx analyze --synthetic"))
        .expect("the README's `ivrx analyze --synthetic …` example");
    let args: Vec<String> = example.split_whitespace().skip(1).map(str::to_string).collect();
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = ivrx(home.path(), cwd.path(), &args).output().unwrap();
    let tables = check(&out, example);
    assert!(tables.contains("Most recent calls"), "{tables}");
    for file in ["demo.db", "chart.svg"] {
        assert!(cwd.path().join(file).is_file(), "{example} writes {file} where it runs");
    }
}
