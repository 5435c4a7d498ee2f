//! The Symbl REST client: token exchange and caching, retries, typed errors,
//! and the endpoints ivrx uses (Async Text API, Job API, Conversation API,
//! Telephony API).
//!
//! Every request has its own timeout ([`SymblConfig::request_timeout`]) and a
//! timed-out request is *not* retried: the caller (a live call) must never wait
//! long on Symbl. 429 answers are retried after `Retry-After` (capped), 5xx
//! answers and connection failures with exponential backoff, all bounded by
//! [`SymblConfig::max_attempts`]. A 401 to an API call drops the cached token
//! and tries once more with a new one.

use ivrx_http::error_chain::error_chain;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::api::{
    ConnectRequest, Connection, ConversationMessage, DetectedTracker, JobInfo, JobRef, JobStatus, MessagesResponse,
    TextRequest, TokenResponse, Topic, TopicsResponse,
};
use super::credentials::Credentials;
use super::error::{body_excerpt, SymblError};
use super::token::{lifetime_from_expires_in, AccessToken, CachedToken};

/// Symbl's public API.
pub const DEFAULT_API_BASE: &str = "https://api.symbl.ai";
/// Environment variable that overrides the API base URL.
pub const ENV_API_BASE: &str = "SYMBL_API_BASE";

/// Where the client sends requests, and how patiently.
#[derive(Debug, Clone, PartialEq)]
pub struct SymblConfig {
    /// For example `https://api.symbl.ai` or `http://127.0.0.1:9400`.
    pub base_url: String,
    /// How long one request may take (connect, send, answer) before it fails
    /// with [`SymblError::Timeout`]; never retried.
    pub request_timeout: Duration,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// Attempts in all, including the first, for 429, 5xx and connection failures.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time after.
    pub base_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured on a 429.
    pub max_retry_after: Duration,
}

impl SymblConfig {
    /// Defaults for a base URL: 5 s per request, 3 attempts.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        }
    }

    /// Defaults, with the base URL from `SYMBL_API_BASE` when set.
    pub fn from_env() -> Self {
        let base = std::env::var(ENV_API_BASE).ok().filter(|v| !v.trim().is_empty());
        Self::new(base.unwrap_or_else(|| DEFAULT_API_BASE.to_string()))
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        exp.min(self.max_backoff)
    }
}

impl Default for SymblConfig {
    fn default() -> Self {
        Self::new(DEFAULT_API_BASE)
    }
}

struct Inner {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    config: SymblConfig,
    /// Held while a token is fetched, so that only one refresh runs at a time.
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

/// The Symbl REST client. Cheap to clone; clones share the token.
#[derive(Clone)]
pub struct SymblClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SymblClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymblClient")
            .field("base", &self.inner.base)
            .field("credentials", &self.inner.credentials)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What a request is, for error messages: the operation, and what a 404 means.
struct Op {
    what: String,
    subject: String,
}

impl SymblClient {
    /// Builds a client. Fails when the base URL is not `http(s)://…`.
    pub fn new(credentials: Credentials, config: SymblConfig) -> Result<Self, SymblError> {
        let base = config.base_url.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() <= "https://".len() {
            return Err(SymblError::Config {
                message: format!("the Symbl API base URL must start with http:// or https://, got {base:?}"),
            });
        }
        ivrx_http::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("ivrx/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| SymblError::Config { message: format!("HTTP client: {e}") })?;
        let inner = Inner { http, base, credentials, config, token: tokio::sync::Mutex::new(None) };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The base URL requests go to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The configuration.
    pub fn config(&self) -> &SymblConfig {
        &self.inner.config
    }

    /// The credentials (their `Debug` hides the secret).
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The current access token: the cached one while it is fresh, else a new
    /// one from `POST /oauth2/token:generate`. Concurrent callers share one refresh.
    pub async fn access_token(&self) -> Result<AccessToken, SymblError> {
        let mut cached = self.inner.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| t.is_fresh(Instant::now())) {
            return Ok(t.token.clone());
        }
        let fresh = self.generate_token().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets `failed` if it is still the cached token.
    pub(super) async fn forget_token(&self, failed: &AccessToken) {
        let mut cached = self.inner.token.lock().await;
        if cached.as_ref().is_some_and(|t| &t.token == failed) {
            *cached = None;
        }
    }

    async fn generate_token(&self) -> Result<CachedToken, SymblError> {
        let creds = &self.inner.credentials;
        let body = serde_json::json!({"type": "application", "appId": creds.app_id(), "appSecret": creds.app_secret()});
        let url = format!("{}/oauth2/token:generate", self.inner.base);
        let op = Op { what: "the token exchange".into(), subject: "token endpoint (/oauth2/token:generate)".into() };
        let obtained = Instant::now();
        let (status, bytes) = self.send(&op, Method::POST, &url, Some(&body), None).await?;
        if !status.is_success() {
            return Err(self.error_for_status(&op, status, &bytes));
        }
        let r: TokenResponse = decode(&op, &bytes)?;
        if r.access_token.trim().is_empty() {
            return Err(SymblError::Decode { what: op.what, message: "empty accessToken".into() });
        }
        Ok(CachedToken::new(AccessToken::new(r.access_token), obtained, lifetime_from_expires_in(r.expires_in)))
    }

    /// `POST /v1/process/text`: starts a conversation from text messages.
    pub async fn process_text(&self, request: &TextRequest) -> Result<JobRef, SymblError> {
        let op = Op { what: "POST /v1/process/text".into(), subject: "text processing endpoint".into() };
        self.call(&op, Method::POST, "/v1/process/text", Some(&to_json(request)?)).await
    }

    /// `PUT /v1/process/text/{conversationId}`: appends messages to a conversation.
    pub async fn append_text(&self, conversation_id: &str, request: &TextRequest) -> Result<JobRef, SymblError> {
        let op = Op {
            what: format!("PUT /v1/process/text/{conversation_id}"),
            subject: format!("conversation {conversation_id}"),
        };
        let path = format!("/v1/process/text/{}", encode_segment(conversation_id));
        self.call(&op, Method::PUT, &path, Some(&to_json(request)?)).await
    }

    /// `GET /v1/job/{jobId}`.
    pub async fn job(&self, job_id: &str) -> Result<JobInfo, SymblError> {
        let op = Op { what: format!("GET /v1/job/{job_id}"), subject: format!("job {job_id}") };
        self.call(&op, Method::GET, &format!("/v1/job/{}", encode_segment(job_id)), None).await
    }

    /// Polls a job every `poll_interval` until it completes. Fails with
    /// [`SymblError::JobFailed`] when it fails and [`SymblError::Timeout`] when it
    /// is still running after `deadline` (which also bounds the polls themselves).
    pub async fn wait_for_job(
        &self,
        job_id: &str,
        poll_interval: Duration,
        deadline: Duration,
    ) -> Result<(), SymblError> {
        let poll_interval = poll_interval.max(Duration::from_millis(10));
        let started = Instant::now();
        let timed_out = || SymblError::Timeout { what: format!("job {job_id} (still running)"), after: deadline };
        let poll = async {
            loop {
                match self.job(job_id).await?.status {
                    JobStatus::Completed => return Ok(()),
                    JobStatus::Failed => return Err(SymblError::JobFailed { job_id: job_id.to_string() }),
                    JobStatus::Scheduled | JobStatus::InProgress | JobStatus::Other(_) => {}
                }
                if started.elapsed() + poll_interval >= deadline {
                    return Err(timed_out());
                }
                tokio::time::sleep(poll_interval).await;
            }
        };
        tokio::time::timeout(deadline, poll).await.unwrap_or_else(|_| Err(timed_out()))
    }

    /// `GET /v1/conversations/{id}/messages?sentiment=true`.
    pub async fn messages(&self, conversation_id: &str) -> Result<Vec<ConversationMessage>, SymblError> {
        let op = Op {
            what: format!("GET /v1/conversations/{conversation_id}/messages"),
            subject: format!("conversation {conversation_id}"),
        };
        let path = format!("/v1/conversations/{}/messages?sentiment=true", encode_segment(conversation_id));
        let r: MessagesResponse = self.call(&op, Method::GET, &path, None).await?;
        Ok(r.messages)
    }

    /// `GET /v1/conversations/{id}/topics?sentiment=true`.
    pub async fn topics(&self, conversation_id: &str) -> Result<Vec<Topic>, SymblError> {
        let op = Op {
            what: format!("GET /v1/conversations/{conversation_id}/topics"),
            subject: format!("conversation {conversation_id}"),
        };
        let path = format!("/v1/conversations/{}/topics?sentiment=true", encode_segment(conversation_id));
        let r: TopicsResponse = self.call(&op, Method::GET, &path, None).await?;
        Ok(r.topics)
    }

    /// `GET /v1/conversations/{id}/trackers-detected`.
    pub async fn trackers_detected(&self, conversation_id: &str) -> Result<Vec<DetectedTracker>, SymblError> {
        let op = Op {
            what: format!("GET /v1/conversations/{conversation_id}/trackers-detected"),
            subject: format!("conversation {conversation_id}"),
        };
        let path = format!("/v1/conversations/{}/trackers-detected", encode_segment(conversation_id));
        self.call(&op, Method::GET, &path, None).await
    }

    /// `POST /v1/endpoint:connect` with `operation: start`: Symbl dials into a call.
    pub async fn connect_pstn(&self, request: &ConnectRequest) -> Result<Connection, SymblError> {
        let op = Op { what: "POST /v1/endpoint:connect (start)".into(), subject: "telephony endpoint".into() };
        self.call(&op, Method::POST, "/v1/endpoint:connect", Some(&to_json(request)?)).await
    }

    /// `POST /v1/endpoint:connect` with `operation: stop`: Symbl leaves the call.
    pub async fn stop_connection(&self, connection_id: &str) -> Result<Connection, SymblError> {
        let op = Op {
            what: format!("POST /v1/endpoint:connect (stop {connection_id})"),
            subject: format!("connection {connection_id}"),
        };
        let body = serde_json::json!({"operation": "stop", "connectionId": connection_id});
        self.call(&op, Method::POST, "/v1/endpoint:connect", Some(&body)).await
    }

    /// The real-time subscription URL of a connection: `ws(s)://…/session/subscribe/{id}`,
    /// `wss` when the API base is `https`.
    pub fn subscribe_url(&self, connection_id: &str) -> String {
        let base = &self.inner.base;
        let ws_base = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
        };
        format!("{ws_base}/session/subscribe/{}", encode_segment(connection_id))
    }

    /// An authenticated API call: fresh token, retries, one re-authentication on 401.
    async fn call<T: DeserializeOwned>(
        &self,
        op: &Op,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, SymblError> {
        let url = format!("{}{}", self.inner.base, path);
        let mut reauthenticated = false;
        loop {
            let token = self.access_token().await?;
            let (status, bytes) = self.send(op, method.clone(), &url, body, Some(&token)).await?;
            if status.is_success() {
                return decode(op, &bytes);
            }
            if status == StatusCode::UNAUTHORIZED && !reauthenticated {
                tracing::debug!(what = %op.what, "Symbl refused the token; getting a new one");
                self.forget_token(&token).await;
                reauthenticated = true;
                continue;
            }
            return Err(self.error_for_status(op, status, &bytes));
        }
    }

    /// Sends one request with retries for 429, 5xx and connection failures.
    /// Returns any other answer (success or not) to the caller.
    async fn send(
        &self,
        op: &Op,
        method: Method,
        url: &str,
        body: Option<&Value>,
        token: Option<&AccessToken>,
    ) -> Result<(StatusCode, Vec<u8>), SymblError> {
        let cfg = &self.inner.config;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = attempts >= cfg.max_attempts.max(1);
            let mut req = self.inner.http.request(method.clone(), url).timeout(cfg.request_timeout);
            if let Some(t) = token {
                req = req.bearer_auth(t.secret());
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let answer = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = parse_retry_after(resp.headers().get(RETRY_AFTER));
                    resp.bytes().await.map(|b| (status, retry_after, b.to_vec()))
                }
                Err(e) => Err(e),
            };
            let (status, retry_after, bytes) = match answer {
                Ok(a) => a,
                Err(e) if e.is_timeout() => {
                    return Err(SymblError::Timeout { what: op.what.clone(), after: cfg.request_timeout })
                }
                Err(e) => {
                    let err = SymblError::Unreachable { base: self.inner.base.clone(), message: error_chain(&e) };
                    if last {
                        return Err(err);
                    }
                    tracing::debug!(what = %op.what, attempts, error = %err, "retrying Symbl request");
                    tokio::time::sleep(cfg.backoff(attempts)).await;
                    continue;
                }
            };
            if status == StatusCode::TOO_MANY_REQUESTS {
                if last {
                    return Err(SymblError::RateLimited { what: op.what.clone(), attempts, retry_after });
                }
                let wait = retry_after.unwrap_or_else(|| cfg.backoff(attempts)).min(cfg.max_retry_after);
                tracing::debug!(what = %op.what, attempts, ?wait, "Symbl rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && !last {
                tracing::debug!(what = %op.what, attempts, %status, "Symbl server error; retrying");
                tokio::time::sleep(cfg.backoff(attempts)).await;
                continue;
            }
            if status.is_server_error() {
                return Err(SymblError::Server {
                    what: op.what.clone(),
                    status: status.as_u16(),
                    attempts,
                    message: body_excerpt(&bytes),
                });
            }
            return Ok((status, bytes));
        }
    }

    fn error_for_status(&self, op: &Op, status: StatusCode, body: &[u8]) -> SymblError {
        error_for_status(op, status, body, &self.inner.credentials.source().to_string())
    }
}

/// Maps a final non-success answer to an error.
fn error_for_status(op: &Op, status: StatusCode, body: &[u8], origin: &str) -> SymblError {
    match status.as_u16() {
        401 | 403 => SymblError::Unauthorized { origin: origin.to_string() },
        404 => SymblError::NotFound { what: op.subject.clone() },
        429 => SymblError::RateLimited { what: op.what.clone(), attempts: 1, retry_after: None },
        s if s >= 500 => {
            SymblError::Server { what: op.what.clone(), status: s, attempts: 1, message: body_excerpt(body) }
        }
        s => SymblError::Rejected { what: op.what.clone(), status: s, message: body_excerpt(body) },
    }
}

fn decode<T: DeserializeOwned>(op: &Op, bytes: &[u8]) -> Result<T, SymblError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SymblError::Decode { what: op.what.clone(), message: format!("{e} in {}", body_excerpt(bytes)) })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, SymblError> {
    serde_json::to_value(value).map_err(|e| SymblError::Config { message: format!("cannot encode the request: {e}") })
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: Option<&HeaderValue>) -> Option<Duration> {
    let s = v?.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    Some(when.signed_duration_since(chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// Percent-encodes an id for use as one path segment.
pub(crate) fn encode_segment(segment: &str) -> String {
    ivrx_http::url_path::encode(segment, ivrx_http::url_path::SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op() -> Op {
        Op { what: "GET /v1/x".into(), subject: "conversation 7".into() }
    }

    #[test]
    fn statuses_map_to_typed_errors() {
        let origin = "/home/u/symbl.conf";
        assert_eq!(
            error_for_status(&op(), StatusCode::UNAUTHORIZED, b"", origin),
            SymblError::Unauthorized { origin: origin.into() }
        );
        assert_eq!(
            error_for_status(&op(), StatusCode::NOT_FOUND, b"{}", origin),
            SymblError::NotFound { what: "conversation 7".into() }
        );
        assert!(matches!(
            error_for_status(&op(), StatusCode::BAD_GATEWAY, b"down", origin),
            SymblError::Server { status: 502, .. }
        ));
        assert!(matches!(
            error_for_status(&op(), StatusCode::BAD_REQUEST, b"bad", origin),
            SymblError::Rejected { status: 400, ref message, .. } if message == "bad"
        ));
        let e = error_for_status(&op(), StatusCode::UNAUTHORIZED, b"", origin);
        assert!(e.to_string().contains("check app_id/app_secret in /home/u/symbl.conf"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = SymblConfig::new("http://x");
        assert_eq!(c.backoff(1), Duration::from_millis(200));
        assert_eq!(c.backoff(2), Duration::from_millis(400));
        assert_eq!(c.backoff(10), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_parses() {
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("3"))), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("-3"))), None);
        assert_eq!(parse_retry_after(Some(&HeaderValue::from_static("never"))), None);
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn base_url_must_be_http_and_sets_the_websocket_scheme() {
        let creds = Credentials::new("a", "b");
        assert!(matches!(SymblClient::new(creds.clone(), SymblConfig::new("ftp://x")), Err(SymblError::Config { .. })));
        let c = SymblClient::new(creds.clone(), SymblConfig::new("https://api.symbl.ai/")).unwrap();
        assert_eq!(c.base_url(), "https://api.symbl.ai");
        assert_eq!(c.subscribe_url("a b"), "wss://api.symbl.ai/session/subscribe/a%20b");
        let c = SymblClient::new(creds, SymblConfig::new("http://127.0.0.1:9")).unwrap();
        assert_eq!(c.subscribe_url("id-1"), "ws://127.0.0.1:9/session/subscribe/id-1");
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = SymblClient::new(Credentials::new("app", "very-secret"), SymblConfig::default()).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("api.symbl.ai") && !dbg.contains("very-secret"), "{dbg}");
    }
}
