//! The Symbl.ai engine: credentials (`symbl.conf`), the REST client (token
//! exchange, Async Text API, Conversation API, Telephony API), the real-time
//! subscription, and [`SymblEngine`], which turns Symbl's results into
//! [`ivrx_intel::Score`]s.
//!
//! Symbl may be unreachable: every operation returns a typed [`SymblError`]
//! and every wait is bounded, so callers can fall back to the local engine.
//!
//! A local stand-in for the Symbl API to test against is in the `ivrx-testkit`
//! crate (a test fixture, never part of the product).

mod api;
mod client;
pub mod credentials;
mod engine;
mod error;
mod realtime;
mod token;

pub use api::{
    ConnectRequest, Connection, ConversationMessage, DetectedTracker, JobInfo, JobRef, JobStatus, MessageDuration,
    MessageRef, MessageSender, Payload, Polarity, PstnEndpoint, Sentiment, Speaker, TextMessage, TextRequest, Topic,
    TrackerMatch, TrackerSpec,
};
pub use client::{SymblClient, SymblConfig, DEFAULT_API_BASE, ENV_API_BASE};
pub use credentials::{
    CredentialSearch, CredentialSource, Credentials, CredentialsError, CredentialsWarning, LoadedCredentials,
};
pub use engine::{
    with_deadline, PstnSession, ScoredMessage, SymblCall, SymblEngine, SymblEngineOptions, SymblSummary, TopicSummary,
    TrackerSummary, ENGINE_NAME,
};
pub use error::SymblError;
pub use realtime::{
    Insight, InsightResponse, MessageResponse, RealtimeEvent, RealtimeMessage, RealtimeSubscription, RealtimeTopic,
    TopicMessageReference, TopicResponse, TranscriptResponse,
};
pub use token::{refresh_margin, AccessToken};
