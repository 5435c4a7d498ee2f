//! ivrx: conversation-intelligent call transfers on Telnyx Call Control.
//!
//! The library holds everything; the `ivrx` binary is a thin clap front end.
//!
//! - [`telnyx`]: the Call Control protocol (events, signatures, commands, REST client)
//! - [`sandbox`]: a built-in stand-in for Telnyx with scripted callers and agents
//! - [`intel`]: engines that score utterances, and trackers
//! - [`policy`]: the escalation policy that decides when and where to transfer
//! - [`eval`]: offline evaluation of engine and policy against labelled caller scripts
//! - [`analyze`]: post-call analytics and reports
//! - [`http`]: serving with request deadlines and droppable connections
//! - [`load`]: load runs against a running server (mix of caller scripts, the report)
//! - [`cli`]: the command-line front end

pub mod analyze;
pub mod cli;
pub mod config;
pub mod error_chain;
pub mod eval;
pub mod http;
pub mod intel;
pub mod latency;
pub mod load;
pub mod policy;
pub mod redact;
pub mod sandbox;
pub mod server;
pub mod session;
pub mod store;
pub mod sysinfo;
pub mod telnyx;
pub mod tls;
pub mod url_path;
