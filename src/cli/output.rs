//! Output conventions shared by the subcommands: colour only on a terminal and
//! when NO_COLOR is unset; tables laid out for the terminal's width (or
//! `COLUMNS`), with box drawing on a terminal and plain ASCII elsewhere.

use std::io::IsTerminal;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{
    Attribute, Cell, Color, ColumnConstraint, ContentArrangement, ContentLineStyle, LineStyle, Row, Table, TableStyle,
};

use super::ColorChoice;

/// How a command should print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Use ANSI colour.
    pub color: bool,
    /// stdout is a terminal.
    pub tty: bool,
    /// Columns tables must fit in; `None` lays tables out at their natural width.
    pub width: Option<u16>,
}

impl Output {
    /// Decides from the choice, the terminal, `NO_COLOR` and `COLUMNS`.
    pub fn detect(choice: ColorChoice) -> Self {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        let terminal = || console::Term::stdout().size_checked().map(|(_rows, cols)| cols);
        let width = width_from(std::env::var("COLUMNS").ok().as_deref(), tty.then(terminal).flatten());
        Self { color, tty, width }
    }

    /// Plain output: no colour, no terminal, natural width.
    pub const PLAIN: Output = Output { color: false, tty: false, width: None };

    /// Whether logs on stderr may use colour.
    pub fn stderr_color() -> bool {
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// The width to lay tables out for: a positive `COLUMNS` wins, then a terminal
/// that reports a positive width; a width of 0 (some terminals and pipes say
/// so) counts as unknown.
fn width_from(columns: Option<&str>, terminal: Option<u16>) -> Option<u16> {
    columns.and_then(|c| c.trim().parse::<u16>().ok()).or(terminal).filter(|w| *w > 0)
}

/// Plain ASCII borders, with `+` where the header rule crosses a column line.
const ASCII: TableStyle = TableStyle::new()
    .top_border(LineStyle::new('+', '-', '+', '+'))
    .header_lines(ContentLineStyle::new('|', '|', '|'))
    .header_separator(LineStyle::new('+', '=', '+', '+'))
    .content_lines(ContentLineStyle::new('|', '|', '|'))
    .bottom_border(LineStyle::new('+', '-', '+', '+'));

/// A table with this header, laid out for `out`: box drawing on a terminal,
/// ASCII elsewhere; fitted to `out.width` when known (text columns wrap or are
/// cut with `…`, see [`one_line`] and [`keep_whole`]).
pub fn table(out: Output, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(if out.tty { UTF8_FULL_CONDENSED } else { ASCII });
    if out.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    match out.width {
        Some(w) => {
            t.set_width(w);
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t.set_header(one_line(
        header
            .iter()
            .map(|h| {
                let c = Cell::new(h);
                if out.color {
                    c.add_attribute(Attribute::Bold).fg(Color::Cyan)
                } else {
                    c
                }
            })
            .collect(),
    ));
    t
}

/// A row that takes one line: text too long for its column is cut with `…`.
pub fn one_line(cells: Vec<Cell>) -> Row {
    let mut row = Row::from(cells);
    row.max_height(1);
    row
}

/// Columns (by index) that are never wrapped nor cut: numbers, ids, times.
pub fn keep_whole(t: &mut Table, columns: impl IntoIterator<Item = usize>) {
    for i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
}

/// Prose wrapped at word boundaries to `width` columns (lines as they are when
/// the width is unknown).
pub fn wrap(text: &str, width: Option<u16>) -> String {
    let Some(width) = width.map(usize::from) else { return text.to_string() };
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut len = 0;
        for word in line.split(' ') {
            let w = word.chars().count();
            if len > 0 && len + 1 + w > width {
                out.push('\n');
                len = 0;
            } else if len > 0 {
                out.push(' ');
                len += 1;
            }
            out.push_str(word);
            len += w;
        }
    }
    out
}

/// A progress bar on stderr with this template (indicatif's), or a hidden one.
/// `{rate}` in the template shows the items per second as a whole number.
pub fn progress_bar(visible: bool, total: u64, template: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template)
        .map(|s| {
            s.progress_chars("=> ").with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", rate(state.per_sec()));
            })
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Items per second, whole (`1570/s`), or with one decimal below 10.
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "-/s".into()
    } else if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{per_sec:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_wins_and_zero_means_unknown() {
        assert_eq!(width_from(Some("120"), Some(80)), Some(120));
        assert_eq!(width_from(None, Some(80)), Some(80));
        assert_eq!(width_from(Some("0"), None), None);
        assert_eq!(width_from(None, Some(0)), None);
        assert_eq!(width_from(Some("wide"), None), None);
    }

    #[test]
    fn prose_wraps_at_words() {
        assert_eq!(wrap("one two three four\nfive", Some(9)), "one two\nthree\nfour\nfive");
        assert_eq!(wrap("one two three", None), "one two three");
        assert_eq!(wrap("averyveryverylongword x", Some(5)), "averyveryverylongword\nx");
    }

    #[test]
    fn rates_read_as_whole_numbers() {
        assert_eq!(rate(1569.7572), "1570/s");
        assert_eq!(rate(2.345), "2.3/s");
        assert_eq!(rate(f64::NAN), "-/s");
    }

    #[test]
    fn ascii_header_rules_have_junctions() {
        let mut t = table(Output::PLAIN, &["a", "b"]);
        t.add_row(vec!["1", "2"]);
        assert_eq!(t.to_string().lines().nth(2), Some("+===+===+"), "{t}");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_and_numbers_stay_whole() {
        let mut t = table(Output { width: Some(30), ..Output::PLAIN }, &["n", "text"]);
        t.add_row(one_line(vec![Cell::new("12345.6"), Cell::new("a long line of words that cannot fit")]));
        keep_whole(&mut t, [0]);
        let s = t.to_string();
        assert!(s.contains("12345.6") && s.contains('…'), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 30), "{s}");
        assert_eq!(s.lines().count(), 5, "one line per row: {s}");
    }
}
