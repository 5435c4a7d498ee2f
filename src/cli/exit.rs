//! Stable exit codes for scripts.

use std::process::ExitCode;

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

/// An exit code.
pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

/// The exit code for a failed request to the sandbox carrier.
pub fn of_sandbox(e: &ControlError) -> u8 {
    match e {
        ControlError::Unreachable(..) => UNREACHABLE,
        ControlError::NotFound(_) => NOT_FOUND,
        ControlError::Unauthorized | ControlError::Status(..) => ERROR,
    }
}
