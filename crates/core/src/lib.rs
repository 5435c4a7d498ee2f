//! The core of ivrx: the call session (a sans-I/O state machine, one per
//! conversation), the escalation policy that decides when and where to
//! transfer, and the configuration they read, as plain data.
//!
//! - [`session`]: webhook events, scores and manual requests in; commands and
//!   domain events out. No I/O and no clock: times come with the inputs.
//! - [`policy`]: the stream of scores in, at most one transfer decision out.
//! - [`settings`]: the IVR flow, agent queues and transfer behaviour.
//! - [`keypad`]: what a key pressed at the menu does (one rule for every path).
//!
//! This crate depends on no I/O crate (no tokio, reqwest, SQLite, axum, hyper),
//! so it can be tested, benchmarked and replayed offline; `tests/layers.rs` in
//! the `ivrx` package keeps it so.

pub mod keypad;
pub mod policy;
pub mod session;
pub mod settings;
