//! Builds the domain events of a conversation that did not go through the
//! live server (imports, synthetic calls), so they reach the store the same
//! way live calls do and every table stays consistent. Utterances are scored
//! by a [`Scorer`] and the caller's are run through the escalation policy.

use chrono::{DateTime, Utc};

use crate::config::TransferMode;
use crate::intel::Scorer;
use crate::policy::{self, Decision, PolicyConfig, PolicyState, Reason};
use crate::session::{DecisionSource, DomainEvent, Recorded, Role, Speaker, TransferStatus};

/// Records one conversation's events in order.
pub struct CallRecorder<'a> {
    id: String,
    started_at: DateTime<Utc>,
    scorer: &'a dyn Scorer,
    policy: &'a PolicyConfig,
    state: PolicyState,
    events: Vec<Recorded>,
    seq: u32,
    caller_utterances: u32,
    caller_leg: String,
    last_offset_ms: u64,
}

impl<'a> CallRecorder<'a> {
    /// Starts a conversation: `call_started`, the caller's leg joined and answered.
    pub fn start(
        id: &str,
        started_at: DateTime<Utc>,
        direction: &str,
        from: Option<String>,
        to: Option<String>,
        scorer: &'a dyn Scorer,
        policy: &'a PolicyConfig,
    ) -> Self {
        let caller_leg = format!("{direction}:{id}");
        let mut r = Self {
            id: id.to_string(),
            started_at,
            scorer,
            policy,
            state: PolicyState::default(),
            events: Vec::new(),
            seq: 0,
            caller_utterances: 0,
            caller_leg: caller_leg.clone(),
            last_offset_ms: 0,
        };
        r.push(
            0,
            DomainEvent::CallStarted {
                call_control_id: caller_leg.clone(),
                direction: direction.into(),
                from: from.clone(),
                to: to.clone(),
            },
        );
        r.push(
            0,
            DomainEvent::LegJoined {
                role: Role::Caller,
                call_control_id: caller_leg.clone(),
                call_leg_id: None,
                call_session_id: None,
                from,
                to,
            },
        );
        r.push(0, DomainEvent::LegAnswered { role: Role::Caller, call_control_id: caller_leg });
        r
    }

    /// Appends an event at `offset_ms` (never before the previous one).
    pub fn push(&mut self, offset_ms: u64, event: DomainEvent) {
        let offset_ms = offset_ms.max(self.last_offset_ms);
        self.last_offset_ms = offset_ms;
        let n = self.events.len() as u64 + 1;
        self.events.push(Recorded::at_offset(&self.id, n, self.started_at, offset_ms, event));
    }

    /// The decision made so far, if any.
    pub fn decision(&self) -> Option<&Decision> {
        self.state.decision.as_ref()
    }

    /// Records an utterance and its score; for the caller, runs the policy and
    /// records its decision (the policy claims the first only),
    /// `score_latency_ms` after the utterance. Returns the decision when this
    /// utterance made it.
    pub fn utterance(
        &mut self,
        offset_ms: u64,
        speaker: Speaker,
        text: &str,
        score_latency_ms: u64,
    ) -> Option<Decision> {
        self.seq += 1;
        let seq = self.seq;
        let caller_index = (speaker == Speaker::Caller).then(|| {
            self.caller_utterances += 1;
            self.caller_utterances
        });
        self.push(
            offset_ms,
            DomainEvent::Utterance { seq, speaker, text: text.to_string(), confidence: None, caller_index },
        );
        let score = self.scorer.score(text);
        let scored_at = offset_ms + score_latency_ms;
        let mut decided = None;
        let snapshot = caller_index.map(|index| {
            let obs = policy::observe(
                self.policy,
                &mut self.state,
                &policy::Utterance { index, text, score: &score, offset_ms },
            );
            decided = obs.decision;
            obs.snapshot
        });
        self.push(scored_at, DomainEvent::scored(seq, speaker, &score, self.scorer.name(), snapshot));
        if let Some(d) = decided.clone() {
            self.push(scored_at, DomainEvent::Decision { source: DecisionSource::Policy, decision: d });
        }
        decided
    }

    /// Records a decision the caller made on the keypad (the operator key or
    /// a menu queue), unless the call was already decided.
    pub fn menu_decision(&mut self, offset_ms: u64, reason: Reason, queue: &str) -> Option<Decision> {
        let d = Decision {
            reason,
            queue: queue.to_string(),
            trigger_index: 0,
            trigger_text: String::new(),
            trigger_phrase: None,
            tracker: None,
            numbers: Default::default(),
        };
        let decision = policy::claim(&mut self.state, d)?;
        self.push(offset_ms, DomainEvent::Decision { source: DecisionSource::Menu, decision: decision.clone() });
        Some(decision)
    }

    /// Records one transfer step.
    pub fn transfer(
        &mut self,
        offset_ms: u64,
        attempt: u32,
        target: &str,
        status: TransferStatus,
        detail: Option<&str>,
        agent_leg: Option<&str>,
    ) {
        let queue = self.decision().map(|d| d.queue.clone()).unwrap_or_default();
        self.push(
            offset_ms,
            DomainEvent::Transfer {
                attempt,
                queue,
                target: target.to_string(),
                mode: TransferMode::Warm,
                status,
                detail: detail.map(str::to_string),
                agent_call_control_id: agent_leg.map(str::to_string),
            },
        );
    }

    /// Ends the call: the caller's leg and the conversation.
    pub fn end(mut self, offset_ms: u64, reason: &str) -> Vec<Recorded> {
        let leg = self.caller_leg.clone();
        self.push(
            offset_ms,
            DomainEvent::LegEnded {
                role: Role::Caller,
                call_control_id: leg,
                cause: Some("normal_clearing".into()),
                source: Some("caller".into()),
            },
        );
        self.push(offset_ms, DomainEvent::CallEnded { reason: reason.to_string() });
        self.events
    }
}
