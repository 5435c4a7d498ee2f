//! Stable exit codes for scripts: what each means, which failure gives which,
//! and usage mistakes found after parsing.

use std::process::ExitCode;

use super::admin::AdminError;
use crate::sandbox::ControlError;

/// Success.
pub const OK: u8 = 0;
/// Something went wrong (message on stderr).
pub const ERROR: u8 = 1;
/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// The conversation or call does not exist.
pub const NOT_FOUND: u8 = 3;
/// The request was refused (e.g. a transfer is already under way).
pub const REFUSED: u8 = 4;
/// The server could not be reached, or went away.
pub const UNREACHABLE: u8 = 5;
/// Gave up waiting.
pub const TIMEOUT: u8 = 6;
/// The request was stored, but the call's owning instance did not answer in
/// time (several instances); it still decides it.
pub const UNANSWERED: u8 = 7;

/// Every exit code with its meaning, for `--help` and the man pages.
pub const CODES: [(u8, &str); 8] = [
    (OK, "success"),
    (ERROR, "error (the message says what and how to fix it)"),
    (USAGE, "bad command line (a missing or wrong argument, an ambiguous id prefix)"),
    (NOT_FOUND, "conversation or call not found"),
    (REFUSED, "refused (e.g. a transfer already under way)"),
    (UNREACHABLE, "server unreachable, or it went away"),
    (TIMEOUT, "gave up waiting"),
    (UNANSWERED, "stored but not answered in time (a cluster's owning instance decides it later)"),
];

/// The exit codes as a `--help` section.
pub fn help_section() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, meaning) in CODES {
        s.push_str(&format!("  {code}  {meaning}\n"));
    }
    s
}

/// An exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

/// A mistake on the command line of `ivrx SUBCOMMAND` that clap's definitions
/// cannot express: reported like clap's own errors (with the usage) and exits
/// with [`USAGE`] (see [`report`]).
pub fn usage(subcommand: &str, message: impl std::fmt::Display) -> anyhow::Error {
    let mut cli = super::command();
    cli.build();
    let cmd = cli.find_subcommand_mut(subcommand).unwrap_or_else(|| unreachable!("no subcommand {subcommand}"));
    anyhow::Error::new(cmd.error(clap::error::ErrorKind::MissingRequiredArgument, message))
}

/// Prints a failed command's error on stderr, its causes on the same line,
/// and gives its exit code (see [`of_error`]).
pub fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(usage) = e.downcast_ref::<clap::Error>() {
        let _ = usage.print();
    } else {
        eprintln!("error: {}", ivrx_http::error_chain::error_chain(&**e));
    }
    code(of_error(e))
}

/// The exit code for a failed command: clap's for a usage mistake, the one
/// for a failed request to the server or the sandbox carrier, [`UNREACHABLE`]
/// for a database server that cannot be reached, else [`ERROR`].
pub fn of_error(e: &anyhow::Error) -> u8 {
    if e.is::<clap::Error>() {
        USAGE
    } else if let Some(e) = e.downcast_ref::<AdminError>() {
        of_admin(e)
    } else if let Some(e) = e.downcast_ref::<ControlError>() {
        of_sandbox(e)
    } else if let Some(crate::store::StoreError::Unreachable { .. }) = e.downcast_ref() {
        UNREACHABLE
    } else {
        ERROR
    }
}

/// The exit code for a failed request to the running server's admin API.
pub fn of_admin(e: &AdminError) -> u8 {
    match e {
        AdminError::Unreachable { .. } => UNREACHABLE,
        AdminError::NotFound(_) => NOT_FOUND,
        AdminError::Refused { .. } => REFUSED,
        AdminError::Unanswered(_) => UNANSWERED,
        AdminError::Ambiguous(_) => USAGE,
        AdminError::Unauthorized | AdminError::NoToken(_) | AdminError::Other { .. } => ERROR,
    }
}

/// The exit code for a failed request to the sandbox carrier.
pub fn of_sandbox(e: &ControlError) -> u8 {
    match e {
        ControlError::Unreachable(..) => UNREACHABLE,
        ControlError::NotFound(_) => NOT_FOUND,
        ControlError::Unauthorized | ControlError::Status(..) => ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_give_their_documented_codes() {
        let unreachable = AdminError::Unreachable { url: "u".into(), message: "m".into() };
        assert_eq!(of_error(&unreachable.into()), UNREACHABLE);
        assert_eq!(of_error(&AdminError::Ambiguous("a".into()).into()), USAGE);
        assert_eq!(of_error(&AdminError::Unanswered("u".into()).into()), UNANSWERED);
        assert_eq!(of_error(&ControlError::NotFound("n".into()).into()), NOT_FOUND);
        assert_eq!(of_error(&usage("watch", "no id")), USAGE);
        assert_eq!(of_error(&anyhow::anyhow!("other")), ERROR);
        let documented: Vec<u8> = CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(documented, (OK..=UNANSWERED).collect::<Vec<u8>>(), "every code is documented, in order");
    }
}
