//! Completions and man pages are generated from the clap definitions; this test
//! fails when the committed copies are stale.
//!
//! Regenerate with `IVRX_BLESS=1 cargo test --test cli_docs`.

use std::path::Path;

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("IVRX_BLESS").is_some() {
        ivrx::cli::docs::write_all(root).expect("write generated docs");
        return;
    }
    let mut stale = Vec::new();
    for (rel, expected) in ivrx::cli::docs::render_all().expect("render docs") {
        match std::fs::read(root.join(&rel)) {
            Ok(actual) if actual == expected => {}
            Ok(_) => stale.push(format!("{rel} (differs)")),
            Err(_) => stale.push(format!("{rel} (missing)")),
        }
    }
    assert!(
        stale.is_empty(),
        "generated CLI docs are stale: {stale:?}\nregenerate with: IVRX_BLESS=1 cargo test --test cli_docs"
    );
}

#[test]
fn every_subcommand_has_a_man_page_and_every_shell_a_completion() {
    let files: Vec<String> = ivrx::cli::docs::render_all().unwrap().into_iter().map(|(p, _)| p).collect();
    for sub in ["serve", "dial", "watch", "transfer", "analyze", "score", "eval", "sandbox"] {
        assert!(files.contains(&format!("man/ivrx-{sub}.1")), "no man page for {sub}");
    }
    assert!(files.contains(&"man/ivrx.1".to_string()));
    for f in [
        "completions/ivrx.bash",
        "completions/_ivrx",
        "completions/ivrx.fish",
        "completions/_ivrx.ps1",
        "completions/ivrx.elv",
    ] {
        assert!(files.contains(&f.to_string()), "no {f}");
    }
}

#[test]
fn man_pages_have_the_exit_status_and_a_quick_start_that_keeps_its_lines() {
    let files = ivrx::cli::docs::render_all().unwrap();
    let page = |name: &str| {
        let (_, bytes) = files.iter().find(|(p, _)| p == name).unwrap_or_else(|| panic!("no {name}"));
        String::from_utf8(bytes.clone()).unwrap()
    };
    for (name, text) in &files {
        if name.starts_with("man/") {
            let text = String::from_utf8_lossy(text);
            assert!(text.contains(".SH \"EXIT STATUS\"\n.TP\n\\fB0\\fR\nsuccess\n"), "{name}");
            assert!(text.contains("\\fB2\\fR\nbad command line"), "{name}");
            assert!(!text.contains(".SH EXTRA"), "{name}: the --help text is not repeated");
        }
    }
    let top = page("man/ivrx.1");
    assert!(!top.contains("ivrx\\-help(1)"), "no page is named that does not exist");
    let examples = &top[top.find(".SH EXAMPLES\n.nf\n").expect("a no-fill EXAMPLES section")..];
    assert!(examples.contains("\n  ivrx dial \\-\\-sandbox \\-\\-script frustrated"), "{examples}");
    assert!(examples.contains("\n.fi\n.SH ENVIRONMENT\n"), "{examples}");
}

#[test]
fn the_readme_lists_the_exit_codes_the_binary_uses() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## Exit codes\n").nth(1).expect("an Exit codes section");
    let rows: Vec<(u8, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].to_string())
        })
        .collect();
    let codes: Vec<(u8, String)> = ivrx::cli::exit::CODES.iter().map(|(c, m)| (*c, m.to_string())).collect();
    assert_eq!(rows, codes);
}
