//! Test fixtures for ivrx, never part of the product: only dev-dependencies
//! may depend on this crate (`tests/layers.rs` in the `ivrx` package checks).
//!
//! - [`symbl_standin`]: a local stand-in for the Symbl.ai API, written from
//!   its documentation, so the real Symbl client runs against it.
//! - [`chromium`]: headless Chromium over the DevTools protocol, for the
//!   browser tests.
//! - [`postgres`]: a throw-away PostgreSQL cluster for the tests that need one.
//! - [`conversation`]: domain events of a call that asks for a person, for
//!   tests that build conversations by hand.

pub mod chromium;
pub mod conversation;
pub mod postgres;
pub mod symbl_standin;

/// True when tests run under CI, where a missing server (PostgreSQL,
/// Chromium) is a failure rather than a reason to skip.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A started server, or `None` after saying on stderr why tests skip;
/// `needed` and `what` name the server in the two messages.
///
/// # Panics
/// Under CI, when it could not be started.
pub(crate) fn or_skip<C>(started: Result<C, impl std::fmt::Display>, needed: &str, what: &str) -> Option<C> {
    match started {
        Ok(c) => Some(c),
        Err(e) if in_ci() => panic!("{needed} is needed by this test under CI and could not be started: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: {what} could not be started for this test ({e})");
            None
        }
    }
}
