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
