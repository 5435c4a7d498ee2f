//! The typed client of the sandbox carrier's control API (`/sandbox/v1`):
//! place simulated calls, feed live callers their steps, listen to what a leg
//! hears, wait for calls to end, and read the delivery statistics of a load
//! run. `ivrx dial --sandbox` (and its load mode) and the Symbl stand-in's
//! telephony use it.

use std::time::Duration;

use ivrx_http::error_chain::error_chain;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::conference::Heard;
use crate::stats::DeliverySummary;
use crate::world::LegAudit;

/// Longest wait for one `/wait` answer (the wait itself is in sandbox time).
const WAIT_LIMIT: Duration = Duration::from_secs(3600);
/// Longest wait for a call's report (the server may still be storing the call).
const REPORT_LIMIT: Duration = Duration::from_secs(120);

/// The sandbox carrier's control API.
#[derive(Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient").field("base", &self.base).finish_non_exhaustive()
    }
}

/// Why a request to the sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
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

/// `POST /sandbox/v1/calls`: a simulated inbound call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaceRequest {
    /// The caller's number (default: the sandbox's default caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The number called (default: the sandbox's IVR number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The caller's script.
    #[serde(default)]
    pub script: String,
    /// A live call takes more steps later (`POST …/steps`).
    #[serde(default)]
    pub live: bool,
    /// The caller's name, as caller id shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id_name: Option<String>,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

#[derive(Deserialize)]
struct IdsPage {
    data: Vec<String>,
    next_offset: Option<usize>,
}

impl ControlClient {
    /// A client of the sandbox at `base_url` (`http://127.0.0.1:PORT`) with its API key.
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, ControlError> {
        ivrx_http::tls::install_crypto_provider();
        let base = base_url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(None)
            .build()
            .map_err(|e| ControlError::Unreachable(base.clone(), error_chain(&e)))?;
        Ok(ControlClient { http, base, key: api_key.to_string() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the key; the answer once it is a success.
    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ControlError> {
        let unreachable = |e: reqwest::Error| ControlError::Unreachable(self.base.clone(), error_chain(&e));
        let resp = req.bearer_auth(&self.key).send().await.map_err(unreachable)?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let detail = v["errors"][0]["detail"].as_str().or(v["errors"][0]["title"].as_str()).unwrap_or("").to_string();
        Err(match status {
            401 => ControlError::Unauthorized,
            404 => ControlError::NotFound(detail),
            _ => ControlError::Status(status, detail),
        })
    }

    /// Sends a request with the key and reads the JSON answer.
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ControlError> {
        let resp = self.answer(req).await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| ControlError::Unreachable(self.base.clone(), error_chain(&e)))?;
        serde_json::from_slice(&body).map_err(|e| ControlError::Status(status, e.to_string()))
    }

    /// Places a simulated inbound call (`POST /sandbox/v1/calls`); its call_control_id.
    pub async fn place(&self, call: &PlaceRequest) -> Result<String, ControlError> {
        let v: Value = self.send(self.http.post(self.url("/sandbox/v1/calls")).json(call)).await?;
        v["data"]["call_control_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ControlError::Status(200, format!("no call_control_id in the answer: {v}")))
    }

    /// Adds a step (`say …`, `press …`, `pause …`, `hangup`) to a live call.
    pub async fn step(&self, ccid: &str, step: &str) -> Result<(), ControlError> {
        let url = self.url(&format!("/sandbox/v1/calls/{ccid}/steps"));
        self.send::<Value>(self.http.post(url).json(&json!({ "step": step }))).await.map(drop)
    }

    /// Waits for a call to hang up: true when it did, false when the wait
    /// (`timeout_secs` of sandbox time) ran out.
    pub async fn wait(&self, ccid: &str, timeout_secs: f64) -> Result<bool, ControlError> {
        let url = self.url(&format!("/sandbox/v1/calls/{ccid}/wait?timeout_secs={timeout_secs}"));
        let v: Value = self.send(self.http.get(url).timeout(WAIT_LIMIT)).await?;
        Ok(v["timed_out"].as_bool() == Some(false))
    }

    /// The report the server behind the sandbox gives about an ended call
    /// (`GET /sandbox/v1/calls/{id}/report`).
    pub async fn report(&self, ccid: &str) -> Result<Value, ControlError> {
        let url = self.url(&format!("/sandbox/v1/calls/{ccid}/report"));
        self.send(self.http.get(url).timeout(REPORT_LIMIT)).await
    }

    /// What the party on a leg hears, line by line, until the leg hangs up
    /// (`GET /sandbox/v1/calls/{id}/heard`).
    pub async fn heard(&self, ccid: &str) -> Result<HeardLines, ControlError> {
        let resp = self.answer(self.http.get(self.url(&format!("/sandbox/v1/calls/{ccid}/heard")))).await?;
        Ok(HeardLines { resp, buffer: Vec::new(), base: self.base.clone() })
    }

    /// Every SMS the sandbox took, oldest first (`GET /sandbox/v1/messages`).
    pub async fn messages(&self) -> Result<Vec<crate::SandboxMessage>, ControlError> {
        let v: Data<Vec<crate::SandboxMessage>> = self.send(self.http.get(self.url("/sandbox/v1/messages"))).await?;
        Ok(v.data)
    }

    /// The delivery statistics of the current window (`GET /sandbox/v1/deliveries`).
    pub async fn deliveries(&self) -> Result<DeliverySummary, ControlError> {
        let v: Data<DeliverySummary> = self.send(self.http.get(self.url("/sandbox/v1/deliveries"))).await?;
        Ok(v.data)
    }

    /// Starts a measurement window: acknowledged ids and latencies are kept,
    /// the webhook and command logs are not (`POST /sandbox/v1/deliveries/reset`).
    pub async fn track_deliveries(&self) -> Result<DeliverySummary, ControlError> {
        let body = json!({"track": true, "record_log": false});
        let v: Data<DeliverySummary> =
            self.send(self.http.post(self.url("/sandbox/v1/deliveries/reset")).json(&body)).await?;
        Ok(v.data)
    }

    /// Legs left up after the call they were placed for hung up, and calls
    /// bridged with more than one of them (`GET /sandbox/v1/legs/audit`).
    pub async fn leg_audit(&self) -> Result<LegAudit, ControlError> {
        let v: Data<LegAudit> = self.send(self.http.get(self.url("/sandbox/v1/legs/audit"))).await?;
        Ok(v.data)
    }

    /// Up to `limit` acknowledged event ids from `offset`, and where the next
    /// page starts (`GET /sandbox/v1/deliveries/ids`).
    pub async fn delivered_ids(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, Option<usize>), ControlError> {
        let url = self.url(&format!("/sandbox/v1/deliveries/ids?offset={offset}&limit={limit}"));
        let v: IdsPage = self.send(self.http.get(url)).await?;
        Ok((v.data, v.next_offset))
    }
}

/// The lines a leg hears, as the sandbox streams them (newline-delimited JSON).
pub struct HeardLines {
    resp: reqwest::Response,
    buffer: Vec<u8>,
    base: String,
}

impl HeardLines {
    /// The next line heard; `None` once the leg has hung up.
    pub async fn next(&mut self) -> Result<Option<Heard>, ControlError> {
        loop {
            while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if let Ok(heard) = serde_json::from_slice::<Heard>(&line) {
                    return Ok(Some(heard));
                }
            }
            let chunk =
                self.resp.chunk().await.map_err(|e| ControlError::Unreachable(self.base.clone(), error_chain(&e)))?;
            let Some(chunk) = chunk else { return Ok(None) };
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
