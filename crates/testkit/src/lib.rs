//! Test fixtures for ivrx, never part of the product: only dev-dependencies
//! may depend on this crate (`tests/layers.rs` in the `ivrx` package checks).
//!
//! - [`symbl_standin`]: a local stand-in for the Symbl.ai API, written from
//!   its documentation, so the real Symbl client runs against it.

pub mod symbl_standin;
