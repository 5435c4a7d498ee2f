//! A small client for the running server's admin API, used by `watch`,
//! `transfer` and `dial` (live).

use std::time::Duration;

use serde_json::Value;

use anyhow::Context as _;

use super::ServerArgs;

/// What went wrong talking to the server; each has its exit code
/// ([`super::exit::of_admin`]).
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
    /// No token was found to send, and the server asked for one.
    #[error(
        "no admin token to send: there is no token file at {0} (the default); point at the server's token file \
         with --token-file FILE (`ivrx serve` prints its path at start), or pass --token"
    )]
    NoToken(String),
    /// An id prefix names several conversations.
    #[error("{0}")]
    Ambiguous(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{message}")]
    Refused { code: String, message: String },
    /// 504 from a cluster: the request is stored, but the call's owning
    /// instance did not answer in time.
    #[error(
        "{0}; the request stays stored for a minute: watch the call (`ivrx watch`) to see it decided, and do not \
         send it again (a second one is refused once the first is decided)"
    )]
    Unanswered(String),
    /// Anything else.
    #[error("server answered {status}: {message}")]
    Other { status: u16, message: String },
}

impl AdminError {
    /// The error's code for `--json` output: the server's refusal code, or
    /// what kind of failure it was.
    pub fn code(&self) -> &str {
        match self {
            AdminError::Refused { code, .. } => code,
            AdminError::NotFound(_) => "not_found",
            AdminError::Ambiguous(_) => "ambiguous_id",
            AdminError::Unreachable { .. } => "unreachable",
            AdminError::Unanswered(_) => "unanswered",
            AdminError::Unauthorized | AdminError::NoToken(_) | AdminError::Other { .. } => "error",
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
#[derive(Clone)]
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
        let resp = self.answer(req).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// Sends a request: a success as it came, anything else as an error.
    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, AdminError> {
        let resp = self.auth(req).send().await.map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        if status == 401 {
            return Err(self.unauthorized());
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("").to_string();
        Err(match status {
            400 if body["code"] == "ambiguous_id" => AdminError::Ambiguous(message),
            404 => AdminError::NotFound(if message.is_empty() { "not found".into() } else { message }),
            409 => AdminError::Refused { code: body["code"].as_str().unwrap_or("").into(), message },
            504 if body["code"] == "unanswered" => AdminError::Unanswered(message),
            _ => AdminError::Other { status, message },
        })
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
        self.answer(self.http.get(self.url(path))).await
    }

    fn unreachable(&self, e: &reqwest::Error) -> AdminError {
        AdminError::Unreachable { url: self.base.clone(), message: ivrx_http::error_chain::error_chain(e) }
    }

    /// A 401: the token was refused, or there was none to send.
    fn unauthorized(&self) -> AdminError {
        match &self.token {
            Some(_) => AdminError::Unauthorized,
            None => AdminError::NoToken(crate::config::default_token_file().display().to_string()),
        }
    }
}
