//! Shell completions and man pages, generated from the clap definitions.
//!
//! The committed copies in `completions/` and `man/` are checked by the
//! `cli_docs` test; `IVRX_BLESS=1 cargo test --test cli_docs` regenerates them.

use std::io::Write;
use std::path::Path;

use clap_complete::Shell;
use roff::{bold, roman, Roff};

use super::exit;

/// The shells completions are generated for.
pub const SHELLS: [Shell; 5] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish];

/// Writes the completion script for one shell.
pub fn write_completion(shell: Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = super::command();
    clap_complete::generate(shell, &mut cmd, "ivrx", out);
    Ok(())
}

/// The file name a shell's completion script is stored under.
pub fn completion_file_name(shell: Shell) -> String {
    match shell {
        Shell::Bash => "ivrx.bash".into(),
        Shell::Zsh => "_ivrx".into(),
        Shell::Fish => "ivrx.fish".into(),
        Shell::PowerShell => "_ivrx.ps1".into(),
        Shell::Elvish => "ivrx.elv".into(),
        other => format!("ivrx.{other}"),
    }
}

/// Every generated file: (relative path, contents).
pub fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let mut buf = Vec::new();
        write_completion(shell, &mut buf)?;
        files.push((format!("completions/{}", completion_file_name(shell)), buf));
    }
    let cmd = super::command().disable_help_subcommand(true);
    files.push(("man/ivrx.1".to_string(), man_page(cmd.clone(), true)?));
    for sub in cmd.get_subcommands() {
        let name = format!("ivrx-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).version(cmd.get_version().unwrap_or_default().to_string());
        files.push((format!("man/{name}.1"), man_page(sub, false)?));
    }
    Ok(files)
}

/// One man page: clap_mangen's sections, then (for `ivrx` itself) EXAMPLES and
/// ENVIRONMENT, and EXIT STATUS, before VERSION. The `--help` text that holds
/// these is left out, so nothing is said twice.
fn man_page(cmd: clap::Command, top: bool) -> std::io::Result<Vec<u8>> {
    let cmd = cmd.after_help(None::<&str>).after_long_help(None::<&str>);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    let mut extra = Roff::new();
    if top {
        extra.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in super::QUICK_START.lines() {
            extra.text([roman(line)]);
        }
        extra.control("fi", []).control("SH", ["ENVIRONMENT"]).text([roman(super::ENVIRONMENT.replace('\n', " "))]);
    }
    extra.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in exit::CODES {
        extra.control("TP", []).text([bold(code.to_string())]).text([roman(meaning)]);
    }
    let extra = extra.to_roff();
    let page = String::from_utf8_lossy(&page).into_owned();
    let at = page.find("\n.SH VERSION").map_or(page.len(), |i| i + 1);
    Ok(format!("{}{extra}{}", &page[..at], &page[at..]).into_bytes())
}

/// Writes every generated file under `root`.
pub fn write_all(root: &Path) -> std::io::Result<()> {
    for (rel, contents) in render_all()? {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, contents)?;
    }
    Ok(())
}
