//! Domain events of a call that asks for a person and is transferred to
//! `support`, for tests that build conversations by hand.

use ivrx_core::policy::{Decision, PolicySnapshot, Reason};
use ivrx_core::session::{DomainEvent, Speaker};
use ivrx_intel::{Label, TrackerHit};

/// `call_started` of an incoming call on leg `v3:a`, from +1555 to +1800.
pub fn call_started() -> DomainEvent {
    DomainEvent::CallStarted {
        call_control_id: "v3:a".into(),
        direction: "incoming".into(),
        from: Some("+1555".into()),
        to: Some("+1800".into()),
    }
}

/// The local engine's score of caller utterance `seq`.
pub fn caller_scored(
    seq: u32,
    score: f64,
    label: Label,
    trackers: Vec<TrackerHit>,
    policy: Option<PolicySnapshot>,
) -> DomainEvent {
    DomainEvent::Scored { seq, speaker: Speaker::Caller, score, label, trackers, engine: "local".into(), policy }
}

/// The policy's decision to transfer to `support`: caller utterance 2,
/// `trigger_text`, asked for a "real person".
pub fn asked_for_human(trigger_text: &str) -> Decision {
    Decision {
        reason: Reason::AskedForHuman,
        queue: "support".into(),
        trigger_index: 2,
        trigger_text: trigger_text.into(),
        trigger_phrase: Some("real person".into()),
        tracker: Some("asks_for_human".into()),
        numbers: PolicySnapshot::default(),
    }
}
