//! Output conventions shared by the subcommands: colour only on a terminal and
//! when NO_COLOR is unset.

use std::io::IsTerminal;

use super::ColorChoice;

/// How a command should print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Use ANSI colour.
    pub color: bool,
    /// stdout is a terminal.
    pub tty: bool,
}

impl Output {
    /// Decides from the choice, the terminal and `NO_COLOR`.
    pub fn detect(choice: ColorChoice) -> Self {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Self { color, tty }
    }
}

impl Output {
    /// Whether logs on stderr may use colour.
    pub fn stderr_color() -> bool {
        std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }
}

/// A progress bar on stderr with this template (indicatif's), or a hidden one.
pub fn progress_bar(visible: bool, total: u64, template: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
