//! The outgoing CRM webhook: one signed JSON event per transfer decision and
//! per transfer outcome, `POST`ed to `[notify.crm] url`.
//!
//! Each request carries `ivrx-timestamp` (Unix seconds) and
//! `ivrx-signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}" with the
//! shared secret>`, and `ivrx-event-id` (also the body's `id`): a receiver
//! recomputes the HMAC over the raw body, refuses a stale timestamp, and
//! ignores an `id` it has seen (a retry after an answer that was lost).
//! Anything but a `2xx` is retried with exponential backoff, signed afresh.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::mpsc;

use super::{record, Outcome};
use crate::config::CrmConfig;
use crate::server::calls::Calls;
use crate::server::metrics::Metrics;
use crate::session::{Notice, NoticeKind};

/// Header with the signed Unix timestamp.
pub const TIMESTAMP_HEADER: &str = "ivrx-timestamp";
/// Header with `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
pub const SIGNATURE_HEADER: &str = "ivrx-signature";
/// Header with the event's id.
pub const EVENT_ID_HEADER: &str = "ivrx-event-id";

/// One CRM event (the documented schema: README, "The CRM webhook").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmEvent {
    /// Stable across retries and repeats: `{conversation}:{kind}:{ms}`.
    pub id: String,
    /// `transfer.decided`, `transfer.connected`, `transfer.failed`, `transfer.abandoned`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (RFC 3339).
    pub occurred_at: String,
    /// The conversation (the same id for the IVR part and the agent's).
    pub conversation_id: String,
    /// The queue transferred to.
    pub queue: String,
    /// The decision's reason (`asked_for_human`, …).
    pub reason: String,
    /// The reason, for people.
    pub reason_text: String,
    /// What triggered it: a tracker phrase, or the caller's words (redacted
    /// when `[storage] redact_pii` is on); `null` when nothing did.
    pub trigger: Option<String>,
    /// The triggering utterance's sentiment score (-1 to 1).
    pub score: f64,
    /// The caller's number.
    pub caller: Option<String>,
    /// For an outcome: the attempt it ended at (1 = first agent); 0 for a decision.
    pub attempt: u32,
    /// For an outcome: the agent dialled last.
    pub agent: Option<String>,
    /// Why a transfer failed.
    pub detail: Option<String>,
    /// The command that follows the conversation live.
    pub watch: String,
}

impl CrmEvent {
    /// The event a conversation's notice is (`redact`: the trigger's PII redacted).
    pub fn from_notice(conversation_id: &str, notice: &Notice, redact: bool) -> Self {
        let d = &notice.decision;
        let trigger = d.trigger_phrase.clone().unwrap_or_else(|| d.trigger_text.clone());
        let trigger = if redact { crate::store::redact::redact(&trigger).into_owned() } else { trigger };
        CrmEvent {
            id: notice.key(conversation_id),
            kind: format!("transfer.{}", notice.kind.as_str()),
            occurred_at: notice.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            conversation_id: conversation_id.to_string(),
            queue: d.queue.clone(),
            reason: d.reason.as_str().to_string(),
            reason_text: d.reason.describe().to_string(),
            trigger: Some(trigger).filter(|t| !t.trim().is_empty()),
            score: d.numbers.score,
            caller: notice.caller.clone(),
            attempt: if notice.kind == NoticeKind::Decided { 0 } else { notice.attempt },
            agent: notice.target.clone(),
            detail: notice.detail.clone(),
            watch: format!("ivrx watch {conversation_id}"),
        }
    }
}

/// Posts CRM events one after another, each retried with backoff until a
/// `2xx` or `max_attempts`.
pub struct CrmSender {
    rx: mpsc::Receiver<CrmEvent>,
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    config: CrmConfig,
    metrics: Arc<Metrics>,
}

impl CrmSender {
    /// A sender for `config` (`None` when no CRM URL is configured) and the
    /// queue's sending end, `capacity` events long.
    pub fn new(config: &CrmConfig, capacity: usize, metrics: Arc<Metrics>) -> Option<(mpsc::Sender<CrmEvent>, Self)> {
        let url = config.url.clone().filter(|u| !u.is_empty())?;
        crate::http::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("ivrx/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .ok()?;
        let secret = config.secret.clone().unwrap_or_default().into_bytes();
        let (tx, rx) = mpsc::channel(capacity);
        Some((tx, Self { rx, http, url, secret, config: config.clone(), metrics }))
    }

    /// Posts each event, recording in its conversation whether it got there.
    pub(super) async fn run(mut self, calls: Calls) {
        let shown = shown_url(&self.url);
        while let Some(event) = self.rx.recv().await {
            let body = match serde_json::to_vec(&event) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "CRM event not serialisable");
                    continue;
                }
            };
            let (attempts, error) = self.post(&event.id, &body).await;
            let status = if error.is_none() { "sent" } else { "failed" };
            if let Some(e) = &error {
                tracing::warn!(conversation = %event.conversation_id, event = %event.id, error = %e, "CRM event not delivered");
            }
            let outcome = Outcome { channel: "crm", key: &event.id, to: &shown, status, attempts, detail: error };
            record(&calls, &self.metrics, &event.conversation_id, outcome);
        }
    }

    /// Posts one event until it is taken: the attempts made and, when it
    /// never was, the last error.
    async fn post(&self, id: &str, body: &[u8]) -> (u32, Option<String>) {
        let mut last = None;
        for attempt in 1..=self.config.max_attempts {
            if attempt > 1 {
                let backoff = self.config.backoff_ms.saturating_mul(1 << (attempt - 2).min(16)).min(60_000);
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
            let timestamp = chrono::Utc::now().timestamp();
            let answer = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, body))
                .header(EVENT_ID_HEADER, id)
                .body(body.to_vec())
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => return (attempt, None),
                Ok(r) => last = Some(format!("answered {}", r.status())),
                Err(e) => last = Some(crate::http::error_chain::error_chain(&e)),
            }
            tracing::debug!(event = id, attempt, error = ?last, "CRM event not taken; retrying");
        }
        (self.config.max_attempts, last)
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// Why a received CRM webhook is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrmSignatureError {
    /// A header is missing or unreadable.
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// The timestamp is too far from now.
    #[error("timestamp {0} is outside the tolerance")]
    Stale(i64),
    /// The HMAC does not match.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks a received CRM webhook, as a receiver does: the timestamp within
/// `tolerance` of `now`, and the HMAC over `"{timestamp}.{body}"` (compared in
/// constant time).
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), CrmSignatureError> {
    let ts: i64 = timestamp.and_then(|t| t.trim().parse().ok()).ok_or(CrmSignatureError::Header(TIMESTAMP_HEADER))?;
    if now.abs_diff(ts) > tolerance.as_secs() {
        return Err(CrmSignatureError::Stale(ts));
    }
    let hex =
        signature.and_then(|s| s.trim().strip_prefix("v1=")).ok_or(CrmSignatureError::Header(SIGNATURE_HEADER))?;
    let given: Option<Vec<u8>> = (hex.len() % 2 == 0)
        .then(|| (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect())
        .flatten();
    let given = given.ok_or(CrmSignatureError::Header(SIGNATURE_HEADER))?;
    mac(secret, ts, body).verify_slice(&given).map_err(|_| CrmSignatureError::Mismatch)
}

/// The HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`.
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Where the URL goes, without its query (which may hold a token), for records and logs.
pub fn shown_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let body = br#"{"id":"c1:decided:1"}"#;
        let sig = sign(b"s3cret-s3cret-s3cret", 1_700_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        let ok = |secret: &[u8], ts: &str, sig: &str, body: &[u8], now: i64| {
            verify(secret, Some(ts), Some(sig), body, now, Duration::from_secs(300))
        };
        assert_eq!(ok(b"s3cret-s3cret-s3cret", "1700000000", &sig, body, 1_700_000_100), Ok(()));
        assert_eq!(
            ok(b"other-secret-other", "1700000000", &sig, body, 1_700_000_000),
            Err(CrmSignatureError::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret-s3cret-s3cret", "1700000000", &sig, b"{}", 1_700_000_000),
            Err(CrmSignatureError::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret-s3cret-s3cret", "1700000001", &sig, body, 1_700_000_000),
            Err(CrmSignatureError::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret-s3cret-s3cret", "1700000000", &sig, body, 1_700_001_000),
            Err(CrmSignatureError::Stale(1_700_000_000))
        );
        assert!(matches!(ok(b"k", "x", &sig, body, 0), Err(CrmSignatureError::Header(TIMESTAMP_HEADER))));
        assert!(matches!(ok(b"k", "0", "v1=zz", body, 0), Err(CrmSignatureError::Header(SIGNATURE_HEADER))));
    }

    #[test]
    fn urls_are_shown_without_their_query() {
        assert_eq!(shown_url("https://crm.example/hooks/ivrx?token=abc"), "https://crm.example/hooks/ivrx");
    }
}
