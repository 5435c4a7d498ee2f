//! Property tests: client_state and the webhook envelope survive a round trip
//! through their wire form for any content.

use ivrx::session::{LegTag, Role};
use ivrx::telnyx::client_state::{self, ClientState, MAX_ENCODED_LEN};
use ivrx::telnyx::events::{Envelope, Event};
use proptest::prelude::*;
use serde_json::{json, Value};

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Caller), Just(Role::Agent)]
}

fn leg_tag() -> impl Strategy<Value = LegTag> {
    ("\\PC{0,300}", role(), proptest::option::of(any::<u32>())).prop_map(|(conv, role, attempt)| LegTag {
        ivrx: 1,
        conv,
        role,
        attempt,
    })
}

proptest! {
    #[test]
    fn a_leg_tag_round_trips_through_client_state(tag in leg_tag()) {
        match client_state::encode(&tag) {
            Ok(s) => {
                prop_assert!(s.len() <= MAX_ENCODED_LEN);
                prop_assert_eq!(LegTag::decode(Some(&s)), Some(tag.clone()));
                // Surrounding whitespace, as some proxies add, changes nothing.
                prop_assert_eq!(LegTag::decode(Some(&format!(" {s}\n"))), Some(tag));
            }
            Err(e) => prop_assert!(matches!(e, client_state::ClientStateError::TooLong(_))),
        }
    }

    #[test]
    fn any_json_value_round_trips_through_client_state(v in json_value()) {
        if let Ok(s) = client_state::encode(&v) {
            prop_assert_eq!(client_state::decode::<Value>(Some(&s)), ClientState::Ours(v));
        }
    }

    #[test]
    fn any_string_decodes_without_panicking(raw in "\\PC{0,200}") {
        match client_state::decode::<LegTag>(Some(&raw)) {
            ClientState::Absent => prop_assert!(raw.trim().is_empty()),
            ClientState::Foreign(kept) => prop_assert_eq!(kept, raw.trim()),
            ClientState::Ours(tag) => prop_assert_eq!(Some(tag), LegTag::decode(Some(&raw))),
        }
    }

    #[test]
    fn a_webhook_envelope_round_trips(
        id in "[a-zA-Z0-9-]{1,64}",
        kind in prop_oneof![
            Just("call.initiated"), Just("call.answered"), Just("call.hangup"),
            Just("call.transcription"), Just("call.dtmf.received"), Just("call.gather.ended"),
            Just("call.speak.ended"), Just("call.bridged"), Just("call.vendor.something"),
        ],
        ccid in "v3:[A-Za-z0-9_-]{1,60}",
        tag in proptest::option::of(leg_tag()),
        text in "\\PC{0,200}",
        digit in "[0-9*#A-D]",
        attempt in 1u32..1000,
        seconds in 0i64..4_000_000_000,
        extra in json_value(),
    ) {
        let client_state = tag.as_ref().and_then(|t| client_state::encode(t).ok());
        let occurred_at = chrono::DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339());
        let mut payload = json!({
            "call_control_id": ccid, "call_leg_id": "leg", "call_session_id": "session",
            "client_state": client_state, "digit": digit, "digits": digit, "status": "completed",
            "hangup_cause": "normal_clearing", "hangup_source": "caller",
            "transcription_data": {"transcript": text, "confidence": 0.5, "is_final": true},
        });
        payload["vendor_extra"] = extra.clone();
        let body = json!({
            "data": {"record_type": "event", "event_type": kind, "id": id, "occurred_at": occurred_at, "payload": payload},
            "meta": {"attempt": attempt, "delivered_to": "https://example.com/webhooks/telnyx"},
            "extra_top_level": extra,
        });
        let bytes = serde_json::to_vec(&body).unwrap();
        let env = Envelope::parse(&bytes).unwrap();
        prop_assert_eq!(&env.data.id, &id);
        prop_assert_eq!(env.data.event_type.as_str(), kind);
        prop_assert_eq!(env.meta.as_ref().map(|m| m.attempt), Some(attempt));
        // What the server stores and replays parses to the same envelope.
        let again = Envelope::parse(&serde_json::to_vec(&env).unwrap()).unwrap();
        prop_assert_eq!(&again, &env);
        prop_assert_eq!(serde_json::to_value(&env).unwrap(), body);
        let event = env.event().unwrap();
        prop_assert_eq!(event.event_type(), kind);
        if !matches!(event, Event::Unknown { .. }) {
            prop_assert_eq!(event.call_control_id(), Some(ccid.as_str()));
            prop_assert_eq!(LegTag::decode(event.client_state()), tag.filter(|_| client_state.is_some()));
        }
        if let Event::Transcription(t) = &event {
            prop_assert_eq!(&t.transcription_data.transcript, &text);
        }
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
