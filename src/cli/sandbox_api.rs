//! Client of the sandbox carrier's control API (`/sandbox/v1`), for
//! `ivrx dial --sandbox` and its load mode.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{exit, DialArgs};
use crate::error_chain::error_chain;

/// Longest wait for one `/wait` answer (the wait itself is in sandbox time).
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// The sandbox carrier's control API.
#[derive(Clone)]
pub struct SandboxApi {
    /// The HTTP client (connections are pooled and kept).
    pub http: reqwest::Client,
    /// Base URL, without a trailing slash.
    pub base: String,
    /// Bearer key.
    pub key: String,
}

/// Why a request to the sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxApiError {
    /// No answer.
    #[error("cannot reach the sandbox carrier at {0}: {1} (is `ivrx serve --sandbox` running? see --sandbox-url)")]
    Unreachable(String, String),
    /// 401.
    #[error("the sandbox refused the API key (see --sandbox-api-key)")]
    Unauthorized,
    /// 404, with the sandbox's detail.
    #[error("{0}")]
    NotFound(String),
    /// Any other answer, or a body that does not read.
    #[error("the sandbox answered {0}: {1}")]
    Status(u16, String),
}

impl SandboxApiError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            SandboxApiError::Unreachable(..) => exit::UNREACHABLE,
            SandboxApiError::NotFound(_) => exit::NOT_FOUND,
            SandboxApiError::Unauthorized | SandboxApiError::Status(..) => exit::ERROR,
        }
    }
}

impl SandboxApi {
    /// The client for `--sandbox-url` and `--sandbox-api-key`.
    pub fn new(args: &DialArgs) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        Ok(SandboxApi {
            http: reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).pool_idle_timeout(None).build()?,
            base: args.sandbox_url.trim_end_matches('/').to_string(),
            key: args.sandbox_api_key.clone(),
        })
    }

    /// The full URL of a path under the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the key and reads the JSON answer.
    pub async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, SandboxApiError> {
        let unreachable = |e: reqwest::Error| SandboxApiError::Unreachable(self.base.clone(), error_chain(&e));
        let resp = req.bearer_auth(&self.key).send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(unreachable)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|e| SandboxApiError::Status(status, e.to_string()));
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let detail = v["errors"][0]["detail"].as_str().or(v["errors"][0]["title"].as_str()).unwrap_or("").to_string();
        Err(match status {
            401 => SandboxApiError::Unauthorized,
            404 => SandboxApiError::NotFound(detail),
            _ => SandboxApiError::Status(status, detail),
        })
    }

    /// Places a simulated inbound call (`POST /sandbox/v1/calls`); its call_control_id.
    pub async fn place(&self, body: &Value) -> Result<String, SandboxApiError> {
        let v: Value = self.send(self.http.post(self.url("/sandbox/v1/calls")).json(body)).await?;
        v["data"]["call_control_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SandboxApiError::Status(200, format!("no call_control_id in the answer: {v}")))
    }

    /// Waits for a call to hang up: true when it did, false when the wait
    /// (`timeout_secs` of sandbox time) ran out.
    pub async fn wait(&self, ccid: &str, timeout_secs: f64) -> Result<bool, SandboxApiError> {
        let url = self.url(&format!("/sandbox/v1/calls/{ccid}/wait?timeout_secs={timeout_secs}"));
        let v: Value = self.send(self.http.get(url).timeout(WAIT_LIMIT)).await?;
        Ok(v["timed_out"].as_bool() == Some(false))
    }
}
