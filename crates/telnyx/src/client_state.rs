//! `client_state`: base64 text that Telnyx echoes on every later webhook of a
//! leg. ivrx stores a small typed JSON value there; a state set by someone else
//! (or not JSON at all) decodes to [`ClientState::Foreign`] instead of failing.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Telnyx refuses longer `client_state` values.
pub const MAX_ENCODED_LEN: usize = 4096;

/// A decoded `client_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState<T> {
    /// The webhook carried no state (null or absent).
    Absent,
    /// A state ivrx wrote.
    Ours(T),
    /// Some other state, kept verbatim (still base64) for the record.
    Foreign(String),
}

impl<T> ClientState<T> {
    /// The typed state, if it is ours.
    pub fn ours(self) -> Option<T> {
        match self {
            ClientState::Ours(t) => Some(t),
            _ => None,
        }
    }
}

/// Why a state could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum ClientStateError {
    /// Serialising the value failed.
    #[error("client_state could not be serialised: {0}")]
    Serialise(#[from] serde_json::Error),
    /// The encoded state is over Telnyx's limit.
    #[error("client_state is {0} bytes encoded, over the {MAX_ENCODED_LEN}-byte limit")]
    TooLong(usize),
}

/// Encodes a value as base64 of its compact JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<String, ClientStateError> {
    let json = serde_json::to_vec(value)?;
    let s = STANDARD.encode(json);
    if s.len() > MAX_ENCODED_LEN {
        return Err(ClientStateError::TooLong(s.len()));
    }
    Ok(s)
}

/// Decodes a raw `client_state`. Never fails: anything that is not base64 JSON
/// of `T` is [`ClientState::Foreign`].
pub fn decode<T: DeserializeOwned>(raw: Option<&str>) -> ClientState<T> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return ClientState::Absent;
    };
    let bytes = STANDARD.decode(raw).or_else(|_| URL_SAFE.decode(raw));
    match bytes.ok().and_then(|b| serde_json::from_slice::<T>(&b).ok()) {
        Some(t) => ClientState::Ours(t),
        None => ClientState::Foreign(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Tag {
        ivrx: u8,
        conv: String,
    }

    #[test]
    fn round_trip() {
        let t = Tag { ivrx: 1, conv: "c-1".into() };
        let s = encode(&t).unwrap();
        assert_eq!(decode::<Tag>(Some(&s)), ClientState::Ours(t));
    }

    #[test]
    fn absent_and_foreign() {
        assert_eq!(decode::<Tag>(None), ClientState::Absent);
        assert_eq!(decode::<Tag>(Some("")), ClientState::Absent);
        // Base64 of plain text, as in Telnyx's own examples.
        assert_eq!(
            decode::<Tag>(Some("aGF2ZSBhIG5pY2UgZGF5ID1d")),
            ClientState::Foreign("aGF2ZSBhIG5pY2UgZGF5ID1d".into())
        );
        // Not base64 at all.
        assert!(matches!(decode::<Tag>(Some("%%%")), ClientState::Foreign(_)));
        // JSON, but not ours.
        let other = STANDARD.encode(br#"{"foo": 1}"#);
        assert!(matches!(decode::<Tag>(Some(&other)), ClientState::Foreign(_)));
    }

    #[test]
    fn oversize_state_is_refused() {
        let t = Tag { ivrx: 1, conv: "x".repeat(4000) };
        assert!(matches!(encode(&t), Err(ClientStateError::TooLong(_))));
    }
}
