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
