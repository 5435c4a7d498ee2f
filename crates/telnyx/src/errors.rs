//! Telnyx API errors: the `{"errors": [...]}` body and the typed error the
//! client reports.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `{"errors": [...]}` body of a failed API call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// One or more errors; the first decides the typed error.
    #[serde(default)]
    pub errors: Vec<ApiErrorItem>,
}

/// One entry of `errors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorItem {
    /// Telnyx error code, e.g. `"90018"` (some APIs send a number).
    #[serde(default, deserialize_with = "code_as_string")]
    pub code: String,
    /// Short title.
    #[serde(default)]
    pub title: String,
    /// Longer explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Which part of the request was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

/// The `source` of an API error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorSource {
    /// JSON pointer into the request body, e.g. `/to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Query or path parameter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

fn code_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl ApiErrorItem {
    /// An error item with code, title and detail.
    pub fn new(code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self { code: code.into(), title: title.into(), detail: Some(detail.into()), source: None }
    }

    /// Adds a `source.pointer`.
    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Self {
        self.source = Some(ErrorSource { pointer: Some(pointer.into()), parameter: None });
        self
    }
}

/// Well-known Telnyx error codes.
pub mod codes {
    /// Call has already ended.
    pub const CALL_ENDED: &str = "90018";
    /// Call has not been answered yet.
    pub const NOT_ANSWERED: &str = "90034";
    /// Invalid value for a field.
    pub const INVALID_VALUE: &str = "90012";
    /// Missing required parameter.
    pub const MISSING_PARAMETER: &str = "10004";
    /// Authentication failed.
    pub const AUTH_FAILED: &str = "10009";
    /// Too many requests.
    pub const RATE_LIMITED: &str = "10011";
    /// Resource not found.
    pub const NOT_FOUND: &str = "10005";
    /// Bad request (malformed body).
    pub const BAD_REQUEST: &str = "10015";
}

/// What went wrong talking to the Telnyx API.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TelnyxError {
    /// 90018: the call has already ended. A final state, not a failure.
    #[error("call has already ended (90018): {detail}")]
    CallEnded { detail: String },
    /// 90034: the command needs an answered call.
    #[error("call not answered yet (90034): {detail}")]
    NotAnswered { detail: String },
    /// 90012: a field has a value Telnyx does not accept.
    #[error("invalid value for {} (90012): {detail}", pointer.as_deref().unwrap_or("a field"))]
    InvalidValue { pointer: Option<String>, detail: String },
    /// 10004: a required parameter is missing.
    #[error("missing required parameter {} (10004)", pointer.as_deref().unwrap_or("?"))]
    MissingParameter { pointer: Option<String>, detail: String },
    /// 401 / 10009: the API key was refused.
    #[error("authentication failed (10009): check TELNYX_API_KEY")]
    Unauthorized { detail: String },
    /// 429 / 10011: still rate limited after the retries allowed.
    #[error("rate limited (10011) after {attempts} attempts")]
    RateLimited { attempts: u32, retry_after: Option<Duration> },
    /// 404 / 10005: no such call or resource.
    #[error("not found (10005): {detail}")]
    NotFound { detail: String },
    /// Any other error answer.
    #[error("Telnyx API error {status} {code}: {title}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Api { status: u16, code: String, title: String, detail: Option<String> },
    /// 5xx after every retry.
    #[error("Telnyx API server error {status} after {attempts} attempts")]
    Server { status: u16, attempts: u32 },
    /// No answer in time, after every retry.
    #[error("Telnyx API did not answer in time after {attempts} attempts")]
    Timeout { attempts: u32 },
    /// The connection failed, after every retry.
    #[error("could not reach the Telnyx API after {attempts} attempts: {message}")]
    Connection { attempts: u32, message: String },
    /// A 2xx answer whose body is not what the API documents.
    #[error("unexpected answer from the Telnyx API: {message}")]
    Decode { message: String },
}

impl TelnyxError {
    /// Maps an error answer (status and body) to a typed error.
    pub fn from_response(status: u16, body: &[u8], attempts: u32) -> Self {
        let parsed: ApiErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let first = parsed.errors.into_iter().next().unwrap_or_default();
        let detail = first.detail.clone().unwrap_or_else(|| first.title.clone());
        let pointer = first.source.as_ref().and_then(|s| s.pointer.clone());
        match (status, first.code.as_str()) {
            (_, codes::CALL_ENDED) => TelnyxError::CallEnded { detail },
            (_, codes::NOT_ANSWERED) => TelnyxError::NotAnswered { detail },
            (_, codes::INVALID_VALUE) => TelnyxError::InvalidValue { pointer, detail },
            (_, codes::MISSING_PARAMETER) => TelnyxError::MissingParameter { pointer, detail },
            (401, _) | (_, codes::AUTH_FAILED) => TelnyxError::Unauthorized { detail },
            (429, _) | (_, codes::RATE_LIMITED) => TelnyxError::RateLimited { attempts, retry_after: None },
            (404, _) | (_, codes::NOT_FOUND) => TelnyxError::NotFound { detail },
            (s, _) if s >= 500 => TelnyxError::Server { status: s, attempts },
            (s, code) => {
                TelnyxError::Api { status: s, code: code.to_string(), title: first.title, detail: first.detail }
            }
        }
    }

    /// True for a passing fault worth sending the command again for (a
    /// server error, a rate limit, no answer or no connection), as opposed
    /// to an answer about the command itself.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TelnyxError::Server { .. }
                | TelnyxError::RateLimited { .. }
                | TelnyxError::Timeout { .. }
                | TelnyxError::Connection { .. }
        )
    }

    /// True when the error means the leg is gone: treat as a final state.
    pub fn is_call_gone(&self) -> bool {
        matches!(self, TelnyxError::CallEnded { .. })
    }

    /// A short stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TelnyxError::CallEnded { .. } => "call_ended",
            TelnyxError::NotAnswered { .. } => "not_answered",
            TelnyxError::InvalidValue { .. } => "invalid_value",
            TelnyxError::MissingParameter { .. } => "missing_parameter",
            TelnyxError::Unauthorized { .. } => "unauthorized",
            TelnyxError::RateLimited { .. } => "rate_limited",
            TelnyxError::NotFound { .. } => "not_found",
            TelnyxError::Api { .. } => "api",
            TelnyxError::Server { .. } => "server",
            TelnyxError::Timeout { .. } => "timeout",
            TelnyxError::Connection { .. } => "connection",
            TelnyxError::Decode { .. } => "decode",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, pointer: Option<&str>) -> Vec<u8> {
        let mut item = ApiErrorItem::new(code, "Title", "Detail");
        if let Some(p) = pointer {
            item = item.with_pointer(p);
        }
        serde_json::to_vec(&ApiErrorBody { errors: vec![item] }).unwrap()
    }

    #[test]
    fn documented_codes_map_to_typed_errors() {
        assert!(TelnyxError::from_response(422, &body("90018", None), 1).is_call_gone());
        assert!(matches!(TelnyxError::from_response(422, &body("90034", None), 1), TelnyxError::NotAnswered { .. }));
        assert_eq!(
            TelnyxError::from_response(422, &body("90012", Some("/voice")), 1),
            TelnyxError::InvalidValue { pointer: Some("/voice".into()), detail: "Detail".into() }
        );
        assert_eq!(
            TelnyxError::from_response(422, &body("10004", Some("/to")), 1),
            TelnyxError::MissingParameter { pointer: Some("/to".into()), detail: "Detail".into() }
        );
        assert!(matches!(TelnyxError::from_response(401, &body("10009", None), 1), TelnyxError::Unauthorized { .. }));
        assert!(matches!(
            TelnyxError::from_response(429, &body("10011", None), 3),
            TelnyxError::RateLimited { attempts: 3, .. }
        ));
        assert!(matches!(TelnyxError::from_response(404, &body("10005", None), 1), TelnyxError::NotFound { .. }));
        assert!(matches!(
            TelnyxError::from_response(503, b"<html>", 4),
            TelnyxError::Server { status: 503, attempts: 4 }
        ));
        assert!(matches!(
            TelnyxError::from_response(400, &body("99999", None), 1),
            TelnyxError::Api { status: 400, .. }
        ));
    }

    #[test]
    fn numeric_codes_and_garbage_bodies_are_tolerated() {
        let b = br#"{"errors": [{"code": 90018, "title": "Call has already ended"}]}"#;
        assert!(TelnyxError::from_response(422, b, 1).is_call_gone());
        assert!(matches!(TelnyxError::from_response(418, b"teapot", 1), TelnyxError::Api { status: 418, .. }));
        assert!(matches!(TelnyxError::from_response(401, b"", 1), TelnyxError::Unauthorized { .. }));
    }
}
