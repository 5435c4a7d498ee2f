//! Ed25519 webhook signatures: Telnyx signs the bytes `"{timestamp}|{raw body}"`
//! and sends the base64 signature and the timestamp in two headers.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Why a webhook signature was refused. Each case is distinct so that logs and
/// metrics tell a misconfigured key from a forgery from a clock problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The `telnyx-signature-ed25519` header is absent.
    #[error("missing telnyx-signature-ed25519 header")]
    MissingSignature,
    /// The `telnyx-timestamp` header is absent.
    #[error("missing telnyx-timestamp header")]
    MissingTimestamp,
    /// The timestamp is not a whole number of seconds.
    #[error("telnyx-timestamp is not a Unix time in seconds: {0:?}")]
    BadTimestamp(String),
    /// The signature header is not valid base64.
    #[error("signature is not valid base64")]
    BadBase64,
    /// The decoded signature is not 64 bytes.
    #[error("signature is {0} bytes, expected 64")]
    WrongLength(usize),
    /// The timestamp is further from now than the tolerance allows.
    #[error("timestamp is {skew_secs} s away from now (tolerance {tolerance_secs} s)")]
    Stale {
        /// How far the timestamp is from now, in seconds.
        skew_secs: i64,
        /// The configured tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The signature does not match the body and timestamp under the key.
    #[error("signature does not match")]
    BadSignature,
    /// The configured public key is not a base64 32-byte Ed25519 key.
    #[error("public key is not a base64 32-byte Ed25519 key: {0}")]
    BadPublicKey(String),
}

/// The default tolerance between the signed timestamp and now.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Checks webhook signatures against the application's public key.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    key: VerifyingKey,
    tolerance: Duration,
}

impl WebhookVerifier {
    /// A verifier for the base64 public key shown in the Telnyx portal.
    pub fn from_base64(public_key: &str) -> Result<Self, SignatureError> {
        let bytes = B64.decode(public_key.trim()).map_err(|e| SignatureError::BadPublicKey(e.to_string()))?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SignatureError::BadPublicKey(format!("{} bytes, expected 32", bytes.len())))?;
        let key = VerifyingKey::from_bytes(&arr).map_err(|e| SignatureError::BadPublicKey(e.to_string()))?;
        Ok(Self::new(key))
    }

    /// A verifier for a key already decoded.
    pub fn new(key: VerifyingKey) -> Self {
        Self { key, tolerance: DEFAULT_TOLERANCE }
    }

    /// Sets how far the signed timestamp may be from now.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// The public key, base64.
    pub fn public_key_base64(&self) -> String {
        B64.encode(self.key.as_bytes())
    }

    /// Verifies one webhook. `now` is the current Unix time in seconds.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::MissingSignature)?;
        let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?.trim();
        let ts: i64 =
            timestamp.parse().map_err(|_| SignatureError::BadTimestamp(timestamp.chars().take(32).collect()))?;
        let sig_bytes = B64.decode(signature.trim()).map_err(|_| SignatureError::BadBase64)?;
        let sig_arr: [u8; 64] =
            sig_bytes.as_slice().try_into().map_err(|_| SignatureError::WrongLength(sig_bytes.len()))?;
        let skew = now.saturating_sub(ts);
        if skew.unsigned_abs() > self.tolerance.as_secs() {
            return Err(SignatureError::Stale { skew_secs: skew, tolerance_secs: self.tolerance.as_secs() });
        }
        let message = signed_message(timestamp, body);
        self.key.verify(&message, &Signature::from_bytes(&sig_arr)).map_err(|_| SignatureError::BadSignature)
    }
}

fn signed_message(timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + 1 + body.len());
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'|');
    m.extend_from_slice(body);
    m
}

/// Signs webhooks the way Telnyx does; used by the sandbox carrier.
#[derive(Clone)]
pub struct WebhookSigner {
    key: SigningKey,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSigner").field("public_key", &self.public_key_base64()).finish_non_exhaustive()
    }
}

/// Why a signing key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The file could not be read or written.
    #[error("signing key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a base64 32-byte Ed25519 secret key.
    #[error("signing key file {path} must hold the base64 of a 32-byte Ed25519 secret key")]
    Format {
        /// The file.
        path: String,
    },
}

impl WebhookSigner {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self { key: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(secret) }
    }

    /// Loads a key file holding the base64 of the 32 secret bytes.
    pub fn load(path: &Path) -> Result<Self, SigningKeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SigningKeyError::Io { path: path.display().to_string(), source })?;
        let bytes =
            B64.decode(text.trim()).map_err(|_| SigningKeyError::Format { path: path.display().to_string() })?;
        let arr: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| SigningKeyError::Format { path: path.display().to_string() })?;
        Ok(Self::from_bytes(&arr))
    }

    /// The secret key, base64, as [`WebhookSigner::load`] reads it.
    pub fn secret_base64(&self) -> String {
        B64.encode(self.key.to_bytes())
    }

    /// The public key, base64, as the Telnyx portal shows it.
    pub fn public_key_base64(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }

    /// A verifier for this key.
    pub fn verifier(&self) -> WebhookVerifier {
        WebhookVerifier::new(self.key.verifying_key())
    }

    /// The base64 signature of `"{timestamp}|{body}"`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let sig = self.key.sign(&signed_message(&timestamp.to_string(), body));
        B64.encode(sig.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"data":{"event_type":"call.answered","id":"x","payload":{}}}"#;

    fn fixed() -> (WebhookSigner, WebhookVerifier) {
        let s = WebhookSigner::from_bytes(&[7u8; 32]);
        let v = WebhookVerifier::from_base64(&s.public_key_base64()).unwrap();
        (s, v)
    }

    #[test]
    fn good_signature_verifies() {
        let (s, v) = fixed();
        let sig = s.sign(NOW, BODY);
        assert_eq!(v.verify(Some(&sig), Some(&NOW.to_string()), BODY, NOW + 10), Ok(()));
    }

    #[test]
    fn forged_body_or_other_key_is_refused() {
        let (s, v) = fixed();
        let sig = s.sign(NOW, BODY);
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(v.verify(Some(&sig), Some(&NOW.to_string()), &tampered, NOW), Err(SignatureError::BadSignature));
        let other = WebhookSigner::from_bytes(&[8u8; 32]).sign(NOW, BODY);
        assert_eq!(v.verify(Some(&other), Some(&NOW.to_string()), BODY, NOW), Err(SignatureError::BadSignature));
        // Signed with one timestamp, presented with another.
        assert_eq!(v.verify(Some(&sig), Some(&(NOW + 1).to_string()), BODY, NOW), Err(SignatureError::BadSignature));
    }

    #[test]
    fn stale_timestamps_are_refused_both_ways() {
        let (s, v) = fixed();
        let old = NOW - 301;
        let sig = s.sign(old, BODY);
        assert!(matches!(
            v.verify(Some(&sig), Some(&old.to_string()), BODY, NOW),
            Err(SignatureError::Stale { skew_secs: 301, .. })
        ));
        let future = NOW + 301;
        let sig = s.sign(future, BODY);
        assert!(matches!(
            v.verify(Some(&sig), Some(&future.to_string()), BODY, NOW),
            Err(SignatureError::Stale { skew_secs: -301, .. })
        ));
        let edge = NOW - 300;
        let sig = s.sign(edge, BODY);
        assert_eq!(v.verify(Some(&sig), Some(&edge.to_string()), BODY, NOW), Ok(()));
    }

    #[test]
    fn tolerance_is_configurable() {
        let (s, v) = fixed();
        let v = v.with_tolerance(Duration::from_secs(5));
        let sig = s.sign(NOW - 6, BODY);
        assert!(matches!(
            v.verify(Some(&sig), Some(&(NOW - 6).to_string()), BODY, NOW),
            Err(SignatureError::Stale { tolerance_secs: 5, .. })
        ));
    }

    #[test]
    fn missing_and_malformed_headers_have_distinct_errors() {
        let (s, v) = fixed();
        let sig = s.sign(NOW, BODY);
        let ts = NOW.to_string();
        assert_eq!(v.verify(None, Some(&ts), BODY, NOW), Err(SignatureError::MissingSignature));
        assert_eq!(v.verify(Some(&sig), None, BODY, NOW), Err(SignatureError::MissingTimestamp));
        assert!(matches!(v.verify(Some(&sig), Some("yesterday"), BODY, NOW), Err(SignatureError::BadTimestamp(_))));
        assert_eq!(v.verify(Some("%%%not base64"), Some(&ts), BODY, NOW), Err(SignatureError::BadBase64));
        assert_eq!(v.verify(Some(&B64.encode([1u8; 63])), Some(&ts), BODY, NOW), Err(SignatureError::WrongLength(63)));
    }

    #[test]
    fn bad_public_keys_are_refused() {
        assert!(matches!(WebhookVerifier::from_base64("***"), Err(SignatureError::BadPublicKey(_))));
        assert!(matches!(WebhookVerifier::from_base64(&B64.encode([1u8; 31])), Err(SignatureError::BadPublicKey(_))));
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let s = WebhookSigner::generate();
        std::fs::write(&path, s.secret_base64()).unwrap();
        let loaded = WebhookSigner::load(&path).unwrap();
        assert_eq!(loaded.public_key_base64(), s.public_key_base64());
        std::fs::write(&path, "nope").unwrap();
        assert!(matches!(WebhookSigner::load(&path), Err(SigningKeyError::Format { .. })));
    }
}
