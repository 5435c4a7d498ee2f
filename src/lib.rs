//! ivrx: conversation-intelligent call transfers on Telnyx Call Control.
//!
//! The `ivrx` binary is a thin clap front end over this library, which holds
//! the webhook server, the command line and the analytics, on top of the
//! library crates (re-exported here under the names the modules use, as
//! ripgrep's `grep` crate does):
//!
//! - [`telnyx`] (`ivrx-telnyx`): the Call Control protocol (events, signatures, commands, REST client)
//! - [`intel`] (`ivrx-intel`): the local engine that scores utterances, and trackers
//! - [`symbl`] (`ivrx-symbl`): the Symbl.ai engine
//! - [`session`], [`policy`], [`keypad`], [`settings`] (`ivrx-core`): the sans-I/O call session, the
//!   escalation policy that decides when and where to transfer, the keypad routing rule, and
//!   their configuration
//! - [`store`] (`ivrx-store`): the storage port and its SQLite backend
//! - [`sandbox`] (`ivrx-sandbox`): a built-in stand-in for Telnyx with scripted callers and agents
//! - [`http`] (`ivrx-http`): serving with request deadlines, TLS set-up, latency percentiles
//!
//! The modules of this package:
//!
//! - [`config`]: `ivrx.toml` and the environment
//! - [`server`]: the webhook server (axum)
//! - [`eval`]: offline evaluation of engine and policy against labelled caller scripts
//! - [`analyze`]: post-call analytics and reports
//! - [`loadtest`]: load runs against a running server (mix of caller scripts, audits, the report)
//! - [`cli`]: the command-line front end

pub mod analyze;
pub mod cli;
pub mod config;
pub mod eval;
pub mod loadtest;
pub mod server;
pub mod sysinfo;

pub use ivrx_core::{keypad, policy, session, settings};
pub use ivrx_http as http;
pub use ivrx_intel as intel;
pub use ivrx_sandbox as sandbox;
pub use ivrx_store as store;
pub use ivrx_symbl as symbl;
pub use ivrx_telnyx as telnyx;
