//! HTTP plumbing shared by ivrx's clients (Telnyx, Symbl, the sandbox's
//! control client) and servers (the webhook server, the sandbox carrier).
//!
//! - [`tls`]: rustls with the ring provider, installed once per process
//! - [`url_path`]: ids percent-encoded for one segment of a request path
//! - [`error_chain`]: an error and its causes on one line
//! - [`latency`]: exact percentiles of acknowledgement latencies
//! - [`serve`] (feature `serve`): serving an axum router with request deadlines
//!   and droppable connections

pub mod error_chain;
pub mod latency;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tls;
pub mod url_path;
