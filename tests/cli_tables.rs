//! Tables for people, as the binary prints them with NO_COLOR at 80 and 120
//! columns (`COLUMNS`), at their natural width when the width is unknown or 0,
//! and with `--wide`: snapshots under `tests/snapshots/` (review changes with
//! `cargo insta review`, or accept them with `INSTA_UPDATE=always`).

mod serve_support;

use std::path::Path;

use assert_cmd::Command;

fn ivrx(dir: &Path) -> Command {
    let mut c = Command::from_std(serve_support::ivrx(dir));
    c.current_dir(dir).env_remove("COLUMNS");
    c
}

/// A database of 40 synthetic calls (always the same ones).
fn synthetic() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ivrx(dir.path()).args(["analyze", "--db", "s.db", "--synthetic", "40", "--json"]).assert().success();
    dir
}

fn analyze(dir: &Path, columns: Option<&str>, extra: &[&str]) -> String {
    let mut c = ivrx(dir);
    c.args(["analyze", "--db", "s.db", "--top", "6"]).args(extra);
    if let Some(n) = columns {
        c.env("COLUMNS", n);
    }
    let out = c.assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains('\u{1b}'), "no colour with NO_COLOR and no terminal");
    text
}

/// The lines of the "Most recent calls" table.
fn recent(text: &str) -> Vec<&str> {
    let from = text.find("Most recent calls").expect("the recent calls table");
    text[from..].lines().skip(1).take_while(|l| l.starts_with(['+', '|'])).collect()
}

/// The cells of a table row.
fn cells(row: &str) -> Vec<&str> {
    row.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn tables_fit_80_and_120_columns_and_never_break_a_number() {
    let dir = synthetic();
    for (columns, name) in [("80", "analyze_80"), ("120", "analyze_120")] {
        let text = analyze(dir.path(), Some(columns), &[]);
        let width: usize = columns.parse().unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= width, "wider than {width}: {line}");
        }
        let rows = recent(&text);
        let header = cells(rows[1]);
        assert_eq!(header[0], "conversation", "one header line: {}", rows[1]);
        assert_eq!(rows.len(), 6 + 4, "one line per call: {rows:#?}");
        for row in &rows[3..rows.len() - 1] {
            let c = cells(row);
            for (i, h) in header.iter().enumerate() {
                if ["min", "final"].contains(h) {
                    assert!(c[i].len() == 5 && c[i].parse::<f64>().is_ok(), "a whole score: {row}");
                }
            }
        }
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn the_most_recent_calls_are_newest_first_and_cut_text_with_an_ellipsis() {
    let dir = synthetic();
    let text = analyze(dir.path(), Some("80"), &[]);
    let rows = recent(&text);
    let started: Vec<&str> = rows[3..rows.len() - 1].iter().map(|r| cells(r)[1]).collect();
    let mut sorted = started.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(started, sorted, "newest first");
    assert!(rows.iter().any(|r| r.contains('…')), "long text is cut with an ellipsis: {rows:#?}");
}

#[test]
fn wide_shows_every_column_and_an_unknown_or_zero_width_lays_tables_out_whole() {
    let dir = synthetic();
    let wide = analyze(dir.path(), Some("120"), &["--wide"]);
    let rows = recent(&wide);
    let header = cells(rows[1]);
    let every = [
        "conversation",
        "started (UTC)",
        "duration",
        "utts",
        "min",
        "mean",
        "final",
        "slope/min",
        "reason",
        "queue",
        "agent",
        "decision",
        "connected",
        "trigger",
    ];
    assert_eq!(header, every, "every column, named in full");
    assert!(rows.iter().all(|r| !r.contains('…')), "nothing is cut: {rows:#?}");
    for line in wide.lines().filter(|l| !rows.contains(l)) {
        assert!(line.chars().count() <= 120, "the other tables still fit: {line}");
    }
    insta::assert_snapshot!("analyze_wide", wide);
    let natural = analyze(dir.path(), None, &[]);
    assert_eq!(analyze(dir.path(), Some("0"), &[]), natural, "a width of 0 is no width");
    let rows = recent(&natural);
    let reason = cells(rows[1]).iter().position(|h| *h == "reason").unwrap();
    assert!(rows[3..rows.len() - 1].iter().all(|r| !cells(r)[reason].contains('…')), "{rows:#?}");
    insta::assert_snapshot!("analyze_natural", natural);
}

#[test]
fn the_score_table_fits_80_and_120_columns() {
    let dir = tempfile::tempdir().unwrap();
    for (columns, name) in [("80", "score_80"), ("120", "score_120")] {
        let out = ivrx(dir.path())
            .env("COLUMNS", columns)
            .args([
                "score",
                "my internet has been dropping every few minutes since yesterday and nobody at your company seems to care",
                "this is ridiculous i want to talk to a real person",
                "thank you that fixed it",
            ])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        let width: usize = columns.parse().unwrap();
        assert!(text.lines().all(|l| l.chars().count() <= width), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour with NO_COLOR and no terminal");
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn on_a_terminal_no_color_keeps_the_box_drawing_and_drops_the_colour() {
    let dir = synthetic();
    // stderr (the progress bar, which moves the cursor) is left out.
    let run = |no_color: Option<&str>| {
        let envs = [("COLUMNS", Some("80")), ("NO_COLOR", no_color)];
        serve_support::on_a_terminal(dir.path(), dir.path(), "analyze --db s.db --top 3 2>/dev/null", &envs)
    };
    let plain = run(Some("1"));
    assert!(!plain.contains('\u{1b}'), "no escape sequence with NO_COLOR: {plain:?}");
    assert!(plain.contains("Most recent calls") && plain.contains('│') && plain.contains('═'), "{plain}");
    assert!(plain.lines().all(|l| l.chars().count() <= 80), "{plain}");
    let coloured = run(None);
    assert!(coloured.contains("\u{1b}["), "colour on a terminal without NO_COLOR: {coloured}");
}
