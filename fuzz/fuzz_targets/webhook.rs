//! The webhook path a request from the network takes before it reaches a
//! conversation: signature verification over the raw bytes, envelope and
//! event parsing, routing by client_state, and transcript redaction.
//!
//! Input: `timestamp \n signature \n body`. The headers are checked as sent
//! (almost always refused), and the body is also signed with a known key so
//! the parser behind the verifier is reached with every body.

#![no_main]

use std::sync::OnceLock;

use ivrx_core::session::LegTag;
use ivrx_telnyx::events::{Envelope, Event};
use ivrx_telnyx::WebhookSigner;
use libfuzzer_sys::fuzz_target;

fn signer() -> &'static WebhookSigner {
    static S: OnceLock<WebhookSigner> = OnceLock::new();
    S.get_or_init(|| WebhookSigner::from_bytes(&[42; 32]))
}

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let timestamp = parts.next().map(String::from_utf8_lossy);
    let signature = parts.next().map(String::from_utf8_lossy);
    let body = parts.next().unwrap_or_default();
    let verifier = signer().verifier();
    let sent = verifier.verify(signature.as_deref(), timestamp.as_deref(), body, NOW);
    // A signature the fuzzer made up never verifies (unless it is the real one).
    if sent.is_ok() {
        assert_eq!(signature.as_deref().map(str::trim), Some(signer().sign(NOW, body).as_str()));
    }
    // Signed properly, any body verifies; one byte more, and it does not.
    let good = signer().sign(NOW, body);
    let ts = NOW.to_string();
    assert!(verifier.verify(Some(&good), Some(&ts), body, NOW).is_ok());
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    assert!(verifier.verify(Some(&good), Some(&ts), &tampered, NOW).is_err());

    let Ok(envelope) = Envelope::parse(body) else { return };
    let Ok(event) = envelope.event() else { return };
    let _ = (event.event_type(), event.call_control_id(), event.ids(), event.payload_json());
    if let Some(tag) = LegTag::decode(event.client_state()) {
        assert_eq!(tag.ivrx, 1);
    }
    if let Event::Transcription(t) = &event {
        let _ = ivrx_store::redact::redact(&t.transcription_data.transcript);
    }
});
