//! The Call Control REST client.
//!
//! Every command carries a `command_id` (one is generated when the caller set
//! none). Server errors (5xx), timeouts and connection failures are retried
//! with exponential backoff, **reusing the same `command_id`**, so Telnyx (or the
//! sandbox) ignores a command that did arrive the first time. A 429 waits for
//! `Retry-After` before trying again. Error bodies become [`TelnyxError`]s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ivrx_http::error_chain::error_chain;
use ivrx_http::url_path;
use percent_encoding::AsciiSet;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::commands::{
    Action, ActionResponse, ActionResult, Answer, Bridge, CallInfo, CallResponse, ClientStateUpdate, Dial, Gather,
    GatherUsingSpeak, Plain, PlaybackStart, RecordStart, Speak, StreamingStart, TranscriptionStart, Transfer,
};
use super::conferences::{
    Conference, ConferenceCommand, ConferenceCreate, ConferenceJoin, ConferenceLeave, ConferenceResponse,
};
use super::errors::TelnyxError;
use super::messaging::{MessageCreate, MessageResponse, OutboundMessage};

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time after.
    pub base_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// How long one attempt may take before it is abandoned and resent.
    pub attempt_timeout: Duration,
    /// Longest `Retry-After` honoured on a 429.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
        let capped = exp.min(self.max_backoff);
        // Up to 20 % jitter so that many calls retrying together spread out.
        let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.0..0.2);
        capped.mul_f64(1.0 + jitter)
    }
}

/// Where the client sends commands and how.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// For example `https://api.telnyx.com/v2` or `http://127.0.0.1:8090/v2`.
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer …`.
    pub api_key: String,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A config for a base URL and key with default retries.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self { base_url: base_url.into(), api_key: api_key.into(), retry: RetryPolicy::default() }
    }
}

/// One finished command, reported to an observer (metrics, logs).
#[derive(Debug, Clone)]
pub struct CommandReport<'a> {
    /// Action name (`dial`, `speak`, …).
    pub action: &'a str,
    /// The command id sent with every attempt.
    pub command_id: &'a str,
    /// Attempts made.
    pub attempts: u32,
    /// Time from the first attempt to the outcome.
    pub elapsed: Duration,
    /// The outcome.
    pub error: Option<&'a TelnyxError>,
}

/// Called once per finished command.
pub type CommandObserver = Arc<dyn Fn(&CommandReport<'_>) + Send + Sync>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The API key holds characters not allowed in a header.
    #[error("the Telnyx API key contains characters that cannot be sent in a header")]
    BadApiKey,
    /// The HTTP stack could not be initialised.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// The Call Control REST client. Cheap to clone.
#[derive(Clone)]
pub struct TelnyxClient {
    http: reqwest::Client,
    base_url: Arc<str>,
    retry: RetryPolicy,
    observer: Option<CommandObserver>,
}

impl std::fmt::Debug for TelnyxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxClient")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl TelnyxClient {
    /// Builds a client.
    pub fn new(config: ClientConfig) -> Result<Self, ClientBuildError> {
        ivrx_http::tls::install_crypto_provider();
        let mut headers = HeaderMap::new();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.api_key)).map_err(|_| ClientBuildError::BadApiKey)?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("ivrx/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ClientBuildError::Http(e.to_string()))?;
        Ok(Self { http, base_url: config.base_url.trim_end_matches('/').into(), retry: config.retry, observer: None })
    }

    /// Reports every finished command to `observer`.
    pub fn with_observer(mut self, observer: CommandObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The same client with another retry behaviour.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How failed requests are retried.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The base URL commands go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /calls`: places an outbound call. Dialling is asynchronous: the
    /// answer has the ids, and webhooks tell what happens next.
    pub async fn dial(&self, dial: &Dial) -> Result<CallInfo, TelnyxError> {
        let mut dial = dial.clone();
        let command_id = dial.command_id.get_or_insert_with(new_command_id).clone();
        let body = serde_json::to_value(&dial).map_err(|e| TelnyxError::Decode { message: e.to_string() })?;
        let url = format!("{}/calls", self.base_url);
        let r: CallResponse = self.send("dial", &command_id, reqwest::Method::POST, &url, Some(&body)).await?;
        Ok(r.data)
    }

    /// `GET /calls/{call_control_id}`: the call's status (`is_alive`).
    pub async fn retrieve(&self, call_control_id: &str) -> Result<CallInfo, TelnyxError> {
        let url = format!("{}/calls/{}", self.base_url, encode_path(call_control_id));
        let r: CallResponse = self.send("retrieve", "", reqwest::Method::GET, &url, None).await?;
        Ok(r.data)
    }

    /// Sends one action to a call. A `command_id` is generated when the action
    /// has none; every retry reuses it.
    pub async fn action(&self, call_control_id: &str, action: &Action) -> Result<ActionResult, TelnyxError> {
        let mut action = action.clone();
        let command_id = match action.command_id() {
            Some(id) => id.to_string(),
            None => {
                let id = new_command_id();
                action.set_command_id(id.clone());
                id
            }
        };
        let url = format!("{}/calls/{}/actions/{}", self.base_url, encode_path(call_control_id), action.name());
        let method = if action.is_put() { reqwest::Method::PUT } else { reqwest::Method::POST };
        let body = action.body();
        let r: ActionResponse = self.send(action.name(), &command_id, method, &url, Some(&body)).await?;
        Ok(r.data)
    }

    /// `answer`
    pub async fn answer(&self, ccid: &str, body: Answer) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Answer(body)).await
    }
    /// `speak`
    pub async fn speak(&self, ccid: &str, body: Speak) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Speak(body)).await
    }
    /// `gather_using_speak`
    pub async fn gather_using_speak(&self, ccid: &str, body: GatherUsingSpeak) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::GatherUsingSpeak(body)).await
    }
    /// `gather`
    pub async fn gather(&self, ccid: &str, body: Gather) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Gather(body)).await
    }
    /// `transcription_start`
    pub async fn transcription_start(&self, ccid: &str, body: TranscriptionStart) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::TranscriptionStart(body)).await
    }
    /// `transcription_stop`
    pub async fn transcription_stop(&self, ccid: &str, body: Plain) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::TranscriptionStop(body)).await
    }
    /// `transfer`
    pub async fn transfer(&self, ccid: &str, body: Transfer) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Transfer(body)).await
    }
    /// `bridge`
    pub async fn bridge(&self, ccid: &str, body: Bridge) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Bridge(body)).await
    }
    /// `hangup`
    pub async fn hangup(&self, ccid: &str, body: Plain) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::Hangup(body)).await
    }
    /// `playback_start`
    pub async fn playback_start(&self, ccid: &str, body: PlaybackStart) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::PlaybackStart(body)).await
    }
    /// `streaming_start`
    pub async fn streaming_start(&self, ccid: &str, body: StreamingStart) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::StreamingStart(body)).await
    }
    /// `streaming_stop`
    pub async fn streaming_stop(&self, ccid: &str, body: Plain) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::StreamingStop(body)).await
    }
    /// `record_start`
    pub async fn record_start(&self, ccid: &str, body: RecordStart) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::RecordStart(body)).await
    }
    /// `client_state_update` (a `PUT`).
    pub async fn client_state_update(&self, ccid: &str, client_state: String) -> Result<ActionResult, TelnyxError> {
        self.action(ccid, &Action::ClientStateUpdate(ClientStateUpdate { client_state })).await
    }

    /// `POST /conferences`: creates a conference from an answered call, which
    /// joins it. The answer has the conference `id` that joins need.
    pub async fn create_conference(&self, body: &ConferenceCreate) -> Result<Conference, TelnyxError> {
        let mut body = body.clone();
        let command_id = body.command_id.get_or_insert_with(new_command_id).clone();
        let json = serde_json::to_value(&body).map_err(|e| TelnyxError::Decode { message: e.to_string() })?;
        let url = format!("{}/conferences", self.base_url);
        let r: ConferenceResponse =
            self.send("conference_create", &command_id, reqwest::Method::POST, &url, Some(&json)).await?;
        Ok(r.data)
    }

    /// `POST /conferences/{id}/actions/join`: adds a call to a conference.
    pub async fn join_conference(
        &self,
        conference_id: &str,
        body: &ConferenceJoin,
    ) -> Result<ActionResult, TelnyxError> {
        let mut body = body.clone();
        let command_id = body.command_id.get_or_insert_with(new_command_id).clone();
        let json = serde_json::to_value(&body).map_err(|e| TelnyxError::Decode { message: e.to_string() })?;
        let url = format!("{}/conferences/{}/actions/join", self.base_url, encode_path(conference_id));
        let r: ActionResponse =
            self.send("conference_join", &command_id, reqwest::Method::POST, &url, Some(&json)).await?;
        Ok(r.data)
    }

    /// `POST /conferences/{id}/actions/leave`: takes a call out of a conference.
    pub async fn leave_conference(
        &self,
        conference_id: &str,
        body: &ConferenceLeave,
    ) -> Result<ActionResult, TelnyxError> {
        let mut body = body.clone();
        let command_id = body.command_id.get_or_insert_with(new_command_id).clone();
        let json = serde_json::to_value(&body).map_err(|e| TelnyxError::Decode { message: e.to_string() })?;
        let url = format!("{}/conferences/{}/actions/leave", self.base_url, encode_path(conference_id));
        let r: ActionResponse =
            self.send("conference_leave", &command_id, reqwest::Method::POST, &url, Some(&json)).await?;
        Ok(r.data)
    }

    /// `GET /conferences/{id}`.
    pub async fn retrieve_conference(&self, conference_id: &str) -> Result<Conference, TelnyxError> {
        let url = format!("{}/conferences/{}", self.base_url, encode_path(conference_id));
        let r: ConferenceResponse = self.send("conference_retrieve", "", reqwest::Method::GET, &url, None).await?;
        Ok(r.data)
    }

    /// Sends a conference command; a create answers with the conference.
    pub async fn conference(&self, command: &ConferenceCommand) -> Result<Option<Conference>, TelnyxError> {
        match command {
            ConferenceCommand::Create(b) => self.create_conference(b).await.map(Some),
            ConferenceCommand::Join { conference_id, body } => {
                self.join_conference(conference_id, body).await.map(|_| None)
            }
            ConferenceCommand::Leave { conference_id, body } => {
                self.leave_conference(conference_id, body).await.map(|_| None)
            }
        }
    }

    /// `POST /messages`: sends one SMS. Unlike call commands a message has no
    /// idempotency key, so a request that got no answer in time is **not**
    /// sent again (Telnyx may have queued it: a second would text twice); a
    /// refused connection, a 5xx or a 429 (nothing queued) is.
    pub async fn send_message(&self, body: &MessageCreate) -> Result<OutboundMessage, TelnyxError> {
        let json = serde_json::to_value(body).map_err(|e| TelnyxError::Decode { message: e.to_string() })?;
        let url = format!("{}/messages", self.base_url);
        let r: MessageResponse = self.request("message", "", reqwest::Method::POST, &url, Some(&json), false).await?;
        Ok(r.data)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        action: &str,
        command_id: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, TelnyxError> {
        self.request(action, command_id, method, url, body, true).await
    }

    /// One request with retries; `resend_unanswered`: a request that got no
    /// answer in time is sent again (safe only when it is idempotent).
    async fn request<T: DeserializeOwned>(
        &self,
        action: &str,
        command_id: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        resend_unanswered: bool,
    ) -> Result<T, TelnyxError> {
        let started = Instant::now();
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let mut req = self.http.request(method.clone(), url).timeout(self.retry.attempt_timeout);
            if let Some(b) = body {
                req = req.json(b);
            }
            let last = attempts >= self.retry.max_attempts;
            // The answer's head and body: either may fail or time out, and both are retried alike.
            let fetched = async {
                let resp = req.send().await?;
                let status = resp.status();
                let retry_after = parse_retry_after(resp.headers().get(RETRY_AFTER));
                Ok::<_, reqwest::Error>((status, retry_after, resp.bytes().await?))
            };
            let (status, retry_after, bytes) = match fetched.await {
                Ok(x) => x,
                Err(e) => {
                    let err = if e.is_timeout() {
                        TelnyxError::Timeout { attempts }
                    } else {
                        TelnyxError::Connection { attempts, message: error_chain(&e) }
                    };
                    if last || (e.is_timeout() && !resend_unanswered) {
                        break Err(err);
                    }
                    tracing::debug!(action, command_id, attempts, error = %err, "retrying Telnyx command");
                    tokio::time::sleep(self.retry.backoff(attempts)).await;
                    continue;
                }
            };
            if status.is_success() {
                break serde_json::from_slice::<T>(&bytes).map_err(|e| TelnyxError::Decode {
                    message: format!("{e} in {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])),
                });
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                if last {
                    break Err(TelnyxError::RateLimited { attempts, retry_after });
                }
                let wait = retry_after.unwrap_or_else(|| self.retry.backoff(attempts)).min(self.retry.max_retry_after);
                tracing::debug!(action, command_id, attempts, ?wait, "rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && !last {
                tracing::debug!(action, command_id, attempts, %status, "server error; retrying");
                tokio::time::sleep(self.retry.backoff(attempts)).await;
                continue;
            }
            break Err(TelnyxError::from_response(status.as_u16(), &bytes, attempts));
        };
        if let Some(obs) = &self.observer {
            obs(&CommandReport {
                action,
                command_id,
                attempts,
                elapsed: started.elapsed(),
                error: result.as_ref().err(),
            });
        }
        result
    }
}

/// A fresh command id.
pub fn new_command_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn parse_retry_after(v: Option<&HeaderValue>) -> Option<Duration> {
    let s = v?.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(3600.0)));
        }
    }
    let when = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    let delta = when.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Call control ids are `v3:` plus URL-safe base64: `:` and `=` are legal in a
/// path segment and kept; anything else unusual is percent-encoded.
const CALL_ID: &AsciiSet = &url_path::SEGMENT.remove(b':').remove(b'=');

fn encode_path(segment: &str) -> String {
    url_path::encode(segment, CALL_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let b1 = p.backoff(1);
        let b3 = p.backoff(3);
        let b9 = p.backoff(9);
        assert!(b1 >= Duration::from_millis(100) && b1 < Duration::from_millis(121));
        assert!(b3 >= Duration::from_millis(400) && b3 < Duration::from_millis(481));
        assert!(b9 >= Duration::from_millis(500) && b9 < Duration::from_millis(601));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("2"))), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("0.5"))), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("soon"))), None);
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode_path("v3:abc-_DEF="), "v3:abc-_DEF=");
        assert_eq!(encode_path("a/b c"), "a%2Fb%20c");
    }
}
