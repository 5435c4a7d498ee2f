//! The Telnyx Call Control v2 protocol: webhook events, signatures, client state,
//! command bodies, what the API definition accepts ([`spec`]), transcription
//! requests per engine, API errors, DTMF keys, Messaging (SMS and its delivery
//! webhooks) and (feature `client`) the REST client.
//!
//! Everything here is written against the public protocol so that the same code
//! talks to Telnyx in production and to the sandbox carrier in tests and demos.
//! Without the `client` feature the crate does no I/O.

#[cfg(feature = "client")]
pub mod client;
pub mod client_state;
pub mod commands;
pub mod conferences;
pub mod dtmf;
pub mod errors;
pub mod events;
pub mod messaging;
pub mod signature;
pub mod spec;
mod string_enum;
pub mod transcription;

#[cfg(feature = "client")]
pub use client::{ClientConfig, RetryPolicy, TelnyxClient};
pub use commands::Action;
pub use errors::{ApiErrorBody, ApiErrorItem, TelnyxError};
pub use events::{Envelope, Event, EventError};
pub use signature::{SignatureError, WebhookSigner, WebhookVerifier};

/// Header carrying the base64 Ed25519 signature of a webhook.
pub const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// Header carrying the Unix timestamp (seconds) that was signed with the body.
pub const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// The public Telnyx API base URL.
pub const DEFAULT_API_BASE: &str = "https://api.telnyx.com/v2";
