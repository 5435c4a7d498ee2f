//! A small client for the running server's admin API, used by `watch`,
//! `transfer` and `dial` (live).

use std::time::Duration;

use serde_json::Value;

use anyhow::Context as _;

use super::{exit, ServerArgs};

/// What went wrong talking to the server; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No answer.
    #[error("cannot reach ivrx serve at {url}: {message} (is it running? see --server)")]
    Unreachable { url: String, message: String },
    /// The token was refused.
    #[error(
        "the server refused the admin token: pass --token or --token-file (the server prints where its token file is)"
    )]
    Unauthorized,
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{message}")]
    Refused { code: String, message: String },
    /// Anything else.
    #[error("server answered {status}: {message}")]
    Other { status: u16, message: String },
}

impl AdminError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AdminError::Unreachable { .. } => exit::UNREACHABLE,
            AdminError::NotFound(_) => exit::NOT_FOUND,
            AdminError::Refused { .. } => exit::REFUSED,
            AdminError::Unauthorized | AdminError::Other { .. } => exit::ERROR,
        }
    }
}

/// Finds the admin token: `--token` (or IVRX_ADMIN_TOKEN), else the file named
/// by `--token-file` (which must then be readable), else the token file beside
/// the default database, else none.
pub fn resolve_token(target: &ServerArgs) -> anyhow::Result<Option<String>> {
    if let Some(t) = target.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_string()));
    }
    match &target.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the admin token file {} (see --token-file)", path.display()))?;
            let token = text.trim();
            anyhow::ensure!(!token.is_empty(), "the admin token file {} is empty", path.display());
            Ok(Some(token.to_string()))
        }
        None => Ok(crate::server::token::read(&crate::config::default_token_file())),
    }
}

/// The client.
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client for the server that `target` names, with its admin token.
    pub fn new(target: &ServerArgs) -> anyhow::Result<Self> {
        crate::http::tls::install_crypto_provider();
        let token = resolve_token(target)?;
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
        Ok(Self { http, base: target.server.trim_end_matches('/').to_string(), token })
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request and returns the JSON answer, mapping errors.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, AdminError> {
        let resp = self.auth(req).send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("").to_string();
        match status {
            200..=299 => Ok(body),
            401 => Err(AdminError::Unauthorized),
            404 => Err(AdminError::NotFound(if message.is_empty() { "not found".into() } else { message })),
            409 => Err(AdminError::Refused { code: body["code"].as_str().unwrap_or("").into(), message }),
            _ => Err(AdminError::Other { status, message }),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Value, AdminError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, AdminError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    /// Opens a streaming `GET` (for SSE).
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response, AdminError> {
        let resp = self.auth(self.http.get(self.url(path))).send().await.map_err(|e| self.unreachable(&e))?;
        match resp.status().as_u16() {
            200..=299 => Ok(resp),
            401 => Err(AdminError::Unauthorized),
            404 => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                Err(AdminError::NotFound(body["error"].as_str().unwrap_or("not found").to_string()))
            }
            status => Err(AdminError::Other { status, message: String::new() }),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> AdminError {
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message = format!("{message}: {s}");
            src = s.source();
        }
        AdminError::Unreachable { url: self.base.clone(), message }
    }
}
