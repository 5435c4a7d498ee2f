//! Why a Symbl call failed. Every failure is typed so that the server can log
//! the cause and fall back to the local engine.

use std::time::Duration;

/// A failed Symbl operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SymblError {
    /// Symbl answered 401 to the token exchange, or to a fresh token.
    #[error("Symbl refused the credentials: check app_id/app_secret in {origin}")]
    Unauthorized {
        /// Where the credentials came from.
        origin: String,
    },
    /// Symbl answered 404.
    #[error("Symbl has no {what}")]
    NotFound {
        /// What was asked for (`conversation 123`, `job …`).
        what: String,
    },
    /// Symbl kept answering 429.
    #[error("Symbl is rate limiting {what} (429) after {attempts} attempt(s)")]
    RateLimited {
        /// The operation.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// Symbl kept answering 5xx.
    #[error("Symbl server error {status} on {what} after {attempts} attempt(s): {message}")]
    Server {
        /// The operation.
        what: String,
        /// HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The body, shortened.
        message: String,
    },
    /// Symbl rejected the request (other 4xx).
    #[error("Symbl rejected {what} ({status}): {message}")]
    Rejected {
        /// The operation.
        what: String,
        /// HTTP status.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// No answer in time.
    #[error("Symbl did not answer {what} within {}", fmt_duration(*.after))]
    Timeout {
        /// The operation.
        what: String,
        /// The time allowed.
        after: Duration,
    },
    /// No connection could be made.
    #[error("cannot reach Symbl at {base}: {message}")]
    Unreachable {
        /// The base URL.
        base: String,
        /// The connection error.
        message: String,
    },
    /// The answer was not what Symbl documents.
    #[error("unexpected answer from Symbl to {what}: {message}")]
    Decode {
        /// The operation.
        what: String,
        /// What was wrong.
        message: String,
    },
    /// An async job ended in `failed`.
    #[error("Symbl job {job_id} failed")]
    JobFailed {
        /// The job.
        job_id: String,
    },
    /// The job completed but Symbl returned no result for the text.
    #[error("Symbl returned no {what}")]
    MissingResult {
        /// What is missing.
        what: String,
    },
    /// The real-time WebSocket failed.
    #[error("Symbl real-time connection: {message}")]
    WebSocket {
        /// What happened.
        message: String,
    },
    /// The client could not be configured.
    #[error("Symbl client set-up: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
}

impl SymblError {
    /// A short stable name for logs and metrics (`unauthorized`, `timeout`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SymblError::Unauthorized { .. } => "unauthorized",
            SymblError::NotFound { .. } => "not_found",
            SymblError::RateLimited { .. } => "rate_limited",
            SymblError::Server { .. } => "server",
            SymblError::Rejected { .. } => "rejected",
            SymblError::Timeout { .. } => "timeout",
            SymblError::Unreachable { .. } => "unreachable",
            SymblError::Decode { .. } => "decode",
            SymblError::JobFailed { .. } => "job_failed",
            SymblError::MissingResult { .. } => "missing_result",
            SymblError::WebSocket { .. } => "websocket",
            SymblError::Config { .. } => "config",
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// The first bytes of a body, as text, for error messages.
pub(crate) fn body_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let e = SymblError::Unauthorized { origin: "/etc/symbl.conf".into() };
        assert_eq!(e.to_string(), "Symbl refused the credentials: check app_id/app_secret in /etc/symbl.conf");
        let e = SymblError::Unreachable { base: "https://api.symbl.ai".into(), message: "connection refused".into() };
        assert_eq!(e.to_string(), "cannot reach Symbl at https://api.symbl.ai: connection refused");
        let e = SymblError::Timeout { what: "GET /v1/job/1".into(), after: Duration::from_millis(250) };
        assert_eq!(e.to_string(), "Symbl did not answer GET /v1/job/1 within 250 ms");
        assert_eq!(e.kind(), "timeout");
    }

    #[test]
    fn body_excerpts_are_short() {
        assert_eq!(body_excerpt(b""), "(empty body)");
        assert_eq!(body_excerpt(&[b'x'; 1000]).len(), 300);
    }
}
