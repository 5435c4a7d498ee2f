//! A transferred call's domain events, as the server records them, and ways
//! to write them through the port.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use ivrx_core::session::{DecisionSource, DomainEvent, Recorded, Role, Speaker, TransferStatus};
use ivrx_core::settings::TransferMode;
use ivrx_intel::{Label, TrackerHit};
use ivrx_store::{Journal, Transition, WebhookOutcome, WebhookRecord};
use ivrx_testkit::conversation::{asked_for_human, call_started, caller_scored};

pub fn rec(n: u64, offset_ms: u64, event: DomainEvent) -> Recorded {
    rec_in("c1", n, offset_ms, event)
}

pub fn rec_in(conv: &str, n: u64, offset_ms: u64, event: DomainEvent) -> Recorded {
    Recorded::at_offset(conv, n, Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(), offset_ms, event)
}

/// A call that asks for a person (with a card number in the trigger) and is
/// connected to an agent.
pub fn call() -> Vec<Recorded> {
    let decision = asked_for_human("get me a real person my card is 4111 1111 1111 1111");
    let transfer = |n, off, status| {
        rec(
            n,
            off,
            DomainEvent::Transfer {
                attempt: 1,
                queue: "support".into(),
                target: "+1201".into(),
                mode: TransferMode::Warm,
                status,
                detail: None,
                agent_call_control_id: Some("v3:agent".into()),
            },
        )
    };
    vec![
        rec(1, 0, call_started()),
        rec(
            2,
            0,
            DomainEvent::LegJoined {
                role: Role::Caller,
                call_control_id: "v3:a".into(),
                call_leg_id: None,
                call_session_id: None,
                from: None,
                to: None,
            },
        ),
        rec(
            3,
            4000,
            DomainEvent::Utterance {
                seq: 1,
                speaker: Speaker::Caller,
                text: "my bill is wrong".into(),
                confidence: Some(0.9),
                caller_index: Some(1),
            },
        ),
        rec(4, 4001, caller_scored(1, -0.4, Label::Negative, vec![], None)),
        rec(
            5,
            9000,
            DomainEvent::Utterance {
                seq: 2,
                speaker: Speaker::Caller,
                text: "get me a real person my card is 4111 1111 1111 1111".into(),
                confidence: Some(0.9),
                caller_index: Some(2),
            },
        ),
        rec(
            6,
            9001,
            caller_scored(2, -0.2, Label::Neutral, vec![TrackerHit::new("asks_for_human", "real person")], None),
        ),
        rec(7, 9001, DomainEvent::Decision { source: DecisionSource::Policy, decision }),
        transfer(8, 9001, TransferStatus::Dialing),
        transfer(9, 12000, TransferStatus::Answered),
        transfer(10, 15000, TransferStatus::Connected),
        rec(
            11,
            16000,
            DomainEvent::Utterance {
                seq: 3,
                speaker: Speaker::Agent,
                text: "hi this is alex".into(),
                confidence: None,
                caller_index: None,
            },
        ),
        rec(12, 60000, DomainEvent::CallEnded { reason: "completed_with_agent".into() }),
    ]
}

/// Queues every event as a transition of its own (the order the server may
/// commit them in, one worker batch at a time).
pub fn write_events(store: &(impl Journal + ?Sized), events: &[Recorded]) {
    for e in events {
        drop(store.commit(Transition::events(e.conversation_id.clone(), vec![e.clone()])));
    }
}

/// A raw transcription webhook routed to conversation `c1`.
pub fn transcription(id: &str, text: &str) -> WebhookRecord {
    let body = serde_json::json!({"data": {"event_type": "call.transcription", "id": id, "payload": {
        "call_control_id": "v3:a", "from": "+15551234567",
        "transcription_data": {"transcript": text, "is_final": true}}}});
    WebhookRecord {
        event_id: id.into(),
        received_at: Utc::now(),
        event_type: "call.transcription".into(),
        call_control_id: Some("v3:a".into()),
        conversation_id: Some("c1".into()),
        attempt: Some(1),
        outcome: WebhookOutcome::Accepted,
        body: body.to_string(),
        wake_others: true,
    }
}
