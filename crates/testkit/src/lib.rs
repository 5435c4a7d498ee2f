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
