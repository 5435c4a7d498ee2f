//! Identifiers shaped like Telnyx's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng;

/// A `call_control_id`: `v3:` and URL-safe base64 (no padding) of random bytes.
pub fn call_control_id() -> String {
    let bytes: [u8; 30] = rand::thread_rng().gen();
    format!("v3:{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A `call_leg_id` or `call_session_id`: a random UUID.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A Call Control application id: a 19-digit numeric string.
pub fn connection_id() -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(19);
    s.push(char::from(b'1' + rng.gen_range(0..9u8)));
    for _ in 0..18 {
        s.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    s
}

/// A fresh API key for a sandbox nobody configured one for.
pub fn api_key() -> String {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("KEYsandbox_{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_telnyx_shapes() {
        let c = call_control_id();
        let rest = c.strip_prefix("v3:").unwrap();
        assert_eq!(rest.len(), 40);
        assert!(rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(c, call_control_id());
        assert!(uuid::Uuid::parse_str(&uuid()).is_ok());
        let conn = connection_id();
        assert_eq!(conn.len(), 19);
        assert!(conn.chars().all(|c| c.is_ascii_digit()) && !conn.starts_with('0'));
        assert!(api_key().starts_with("KEY"));
    }
}
