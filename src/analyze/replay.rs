//! `--replay-policy`: re-runs the escalation policy over the stored caller
//! utterances (their stored scores and trackers, in the caller's order) with
//! other thresholds, and compares with what was decided.
//!
//! Rules, so the comparison stays honest:
//! - Decisions the caller or a supervisor made (source `menu` or `manual`)
//!   are kept as they were: the policy cannot change them.
//! - For a call the policy escalated, the replay only sees what the caller
//!   said up to the stored trigger (or decision time): after it the caller
//!   was on hold or with an agent, and would have said other things to the
//!   IVR. If the new policy has not decided by then, the decision is lost.
//! - A decision is the policy's verdict; whether an agent would have answered
//!   is not replayed. Times are from the call start to the utterance that
//!   triggers the decision (the stored decision time when it is the same one).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::stats::Distribution;
use crate::intel::{Label, Score};
use crate::policy::{self, Observation, PolicyConfig, PolicyState};
use crate::session::DecisionSource;
use crate::store::Conversation;

/// Most calls listed per change kind (the counts are always complete).
pub const LIST_LIMIT: usize = 1000;

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable policy.
    #[error("policy file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Reads a policy file: either an ivrx.toml-style file with a `[policy]`
/// table (other tables are ignored) or a bare policy table. Keys it does not
/// set keep their values from `base` (the configured policy).
pub fn load_policy(path: &Path, base: &PolicyConfig) -> Result<PolicyConfig, ReplayError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ReplayError::Io { path: path.display().to_string(), source })?;
    policy_from_toml(&text, base).map_err(|message| ReplayError::Invalid { path: path.display().to_string(), message })
}

/// Parses policy TOML text over `base` (see [`load_policy`]).
pub fn policy_from_toml(text: &str, base: &PolicyConfig) -> Result<PolicyConfig, String> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    let overrides = match table.remove("policy") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("`policy` must be a table ([policy])".into()),
        None => table,
    };
    let mut merged = match toml::Value::try_from(base) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    };
    merge(&mut merged, overrides);
    let config: PolicyConfig =
        toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// What the replay says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A menu or manual decision, kept as it was.
    Kept,
    /// The same decision (reason, queue and trigger).
    Same,
    /// Both decide, differently (reason, queue or trigger).
    Changed,
    /// The new policy decides where none was decided.
    Gained,
    /// The new policy does not decide where the stored one did.
    Lost,
    /// No decision either way.
    Neither,
}

impl Verdict {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Kept => "kept",
            Verdict::Same => "same",
            Verdict::Changed => "changed",
            Verdict::Gained => "gained",
            Verdict::Lost => "lost",
            Verdict::Neither => "neither",
        }
    }
}

/// The replay's verdict on one call, and its decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallReplay {
    /// How it compares with the stored decision.
    pub verdict: Verdict,
    /// The replayed (or kept) decision's reason.
    pub reason: Option<String>,
    /// Its queue.
    pub queue: Option<String>,
    /// Its trigger utterance (caller index).
    pub trigger_index: Option<u32>,
    /// Call start to the decision.
    pub decision_ms: Option<i64>,
    /// The trigger utterance's text (not stored per call in the output).
    #[serde(skip)]
    pub trigger_text: Option<String>,
}

fn stored_label(label: Option<Label>, score: f64) -> Label {
    label.unwrap_or_else(|| Label::from_score(score))
}

/// Replays one call with `policy`.
pub fn replay_call(call: &Conversation, policy: &PolicyConfig) -> CallReplay {
    replay_with(call, |state, u| policy::observe(policy, state, u))
}

/// Replays one call with any observer (the policy, or a stand-in in tests).
pub fn replay_with(
    call: &Conversation,
    mut observe: impl FnMut(&mut PolicyState, &policy::Utterance<'_>) -> Observation,
) -> CallReplay {
    let decision = call.decision.as_ref();
    if let Some(d) = decision.filter(|d| matches!(d.source, Some(DecisionSource::Menu | DecisionSource::Manual))) {
        return CallReplay {
            verdict: Verdict::Kept,
            reason: Some(d.reason.as_str().to_string()),
            queue: d.queue.clone(),
            trigger_index: d.trigger_index,
            decision_ms: d.decision_ms,
            trigger_text: d.trigger_text.clone(),
        };
    }
    let stored = decision.is_some();
    let stored_trigger = decision.and_then(|d| d.trigger_index);
    let stored_ms = decision.and_then(|d| d.decision_ms);
    let mut state = PolicyState::default();
    let mut found = None;
    for (pos, u) in call.caller_utterances().enumerate() {
        let index = u.caller_index.unwrap_or(pos as u32 + 1);
        let seen_by_ivr = match (stored, stored_trigger, stored_ms) {
            (false, _, _) => true,
            (true, Some(t), _) => index <= t,
            (true, None, Some(ms)) => u.offset_ms <= ms,
            (true, None, None) => true,
        };
        if !seen_by_ivr {
            break;
        }
        let Some(value) = u.score else { continue };
        let score = Score {
            score: value,
            label: stored_label(u.label, value),
            trackers: u.trackers.clone(),
            engine: "stored".into(),
        };
        let utterance = policy::Utterance { index, text: &u.text, score: &score, offset_ms: u.offset_ms.max(0) as u64 };
        if let Some(d) = observe(&mut state, &utterance).decision {
            found = Some((d, index, u.offset_ms, u.text.clone()));
            break;
        }
    }
    let Some((d, index, offset_ms, text)) = found else {
        let verdict = if stored { Verdict::Lost } else { Verdict::Neither };
        return CallReplay {
            verdict,
            reason: None,
            queue: None,
            trigger_index: None,
            decision_ms: None,
            trigger_text: None,
        };
    };
    let same_trigger = stored && stored_trigger == Some(index);
    let verdict = match decision {
        None => Verdict::Gained,
        Some(s) if same_trigger && s.reason == d.reason && s.queue.as_deref() == Some(d.queue.as_str()) => {
            Verdict::Same
        }
        Some(_) => Verdict::Changed,
    };
    CallReplay {
        verdict,
        reason: Some(d.reason.as_str().to_string()),
        queue: Some(d.queue),
        trigger_index: Some(index),
        decision_ms: Some(if same_trigger { stored_ms.unwrap_or(offset_ms) } else { offset_ms }),
        trigger_text: Some(text),
    }
}

/// One call whose decision the replay changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayChange {
    /// Conversation id.
    pub conversation_id: String,
    /// Stored reason.
    pub before_reason: Option<String>,
    /// Stored decision time.
    pub before_ms: Option<i64>,
    /// Replayed reason.
    pub after_reason: Option<String>,
    /// Replayed decision time.
    pub after_ms: Option<i64>,
    /// Replayed trigger (caller index).
    pub after_trigger_index: Option<u32>,
    /// What the caller said there.
    pub after_trigger_text: Option<String>,
}

/// Decisions per reason, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonShift {
    /// The reason.
    pub reason: String,
    /// Stored decisions.
    pub before: u64,
    /// Replayed decisions.
    pub after: u64,
}

/// What changed under the replayed policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The policy replayed.
    pub policy: PolicyConfig,
    /// Calls replayed.
    pub calls: u64,
    /// Calls per verdict (`kept`, `same`, `changed`, `gained`, `lost`, `neither`).
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Calls with a decision before.
    pub decided_before: u64,
    /// … and after.
    pub decided_after: u64,
    /// Time to decision before (stored).
    pub time_to_decision_before: Distribution,
    /// Time to decision after (replayed; kept decisions unchanged).
    pub time_to_decision_after: Distribution,
    /// Median after minus median before.
    pub median_shift_ms: Option<f64>,
    /// p90 after minus p90 before.
    pub p90_shift_ms: Option<f64>,
    /// Per-reason counts.
    pub reasons: Vec<ReasonShift>,
    /// Calls gained (at most [`LIST_LIMIT`]).
    pub gained: Vec<ReplayChange>,
    /// Calls lost.
    pub lost: Vec<ReplayChange>,
    /// Calls whose decision changed.
    pub changed: Vec<ReplayChange>,
    /// How the replay treats what it cannot change.
    pub notes: Vec<&'static str>,
}

/// Accumulates per-call replays into a [`ReplayReport`].
#[derive(Debug, Clone)]
pub struct ReplayAccumulator {
    policy: PolicyConfig,
    calls: u64,
    verdicts: BTreeMap<&'static str, u64>,
    before_ms: Vec<f64>,
    after_ms: Vec<f64>,
    reasons: BTreeMap<String, [u64; 2]>,
    lists: [Vec<ReplayChange>; 3],
}

impl ReplayAccumulator {
    /// An empty accumulator for `policy`.
    pub fn new(policy: PolicyConfig) -> Self {
        Self {
            policy,
            calls: 0,
            verdicts: BTreeMap::new(),
            before_ms: Vec::new(),
            after_ms: Vec::new(),
            reasons: BTreeMap::new(),
            lists: Default::default(),
        }
    }

    /// The policy being replayed.
    pub fn policy(&self) -> &PolicyConfig {
        &self.policy
    }

    /// Adds one call and its replay.
    pub fn add(&mut self, call: &Conversation, r: &CallReplay) {
        self.calls += 1;
        *self.verdicts.entry(r.verdict.as_str()).or_default() += 1;
        let before = call.decision.as_ref();
        if let Some(d) = before {
            self.reasons.entry(d.reason.as_str().to_string()).or_default()[0] += 1;
            if let Some(ms) = d.decision_ms {
                self.before_ms.push(ms as f64);
            }
        }
        if let Some(reason) = &r.reason {
            self.reasons.entry(reason.clone()).or_default()[1] += 1;
            if let Some(ms) = r.decision_ms {
                self.after_ms.push(ms as f64);
            }
        }
        let list = match r.verdict {
            Verdict::Gained => 0,
            Verdict::Lost => 1,
            Verdict::Changed => 2,
            _ => return,
        };
        if self.lists[list].len() < LIST_LIMIT {
            self.lists[list].push(ReplayChange {
                conversation_id: call.id.clone(),
                before_reason: before.map(|d| d.reason.as_str().to_string()),
                before_ms: before.and_then(|d| d.decision_ms),
                after_reason: r.reason.clone(),
                after_ms: r.decision_ms,
                after_trigger_index: r.trigger_index,
                after_trigger_text: r.trigger_text.clone(),
            });
        }
    }

    /// The report.
    pub fn finish(mut self) -> ReplayReport {
        let before = Distribution::of(&mut self.before_ms);
        let after = Distribution::of(&mut self.after_ms);
        let shift = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        let [gained, lost, changed] = self.lists;
        let decided_before = self.reasons.values().map(|c| c[0]).sum();
        let decided_after = self.reasons.values().map(|c| c[1]).sum();
        ReplayReport {
            policy: self.policy,
            calls: self.calls,
            verdicts: self.verdicts,
            decided_before,
            decided_after,
            median_shift_ms: shift(after.median_ms, before.median_ms),
            p90_shift_ms: shift(after.p90_ms, before.p90_ms),
            time_to_decision_before: before,
            time_to_decision_after: after,
            reasons: self
                .reasons
                .into_iter()
                .map(|(reason, c)| ReasonShift { reason, before: c[0], after: c[1] })
                .collect(),
            gained,
            lost,
            changed,
            notes: vec![
                "keypad, menu and manual decisions (source menu/manual) are kept as they were: the policy cannot change them",
                "for calls the policy escalated, only what the caller said up to the stored trigger is replayed",
                "a decision is the policy's verdict; whether an agent would have answered is not replayed",
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, PolicySnapshot, Reason};
    use crate::session::Speaker;
    use crate::store::model::parse_enum;
    use crate::store::{StoredDecision, Utterance};

    fn call(scores: &[f64], stored: Option<(&str, &str, u32, i64)>) -> Conversation {
        Conversation {
            id: "c".into(),
            decision: stored.map(|s| StoredDecision {
                source: parse_enum(s.0),
                reason: parse_enum(s.1).unwrap(),
                queue: Some("support".into()),
                trigger_index: Some(s.2),
                trigger_text: None,
                trigger_phrase: None,
                decision_ms: Some(s.3),
            }),
            utterances: scores
                .iter()
                .enumerate()
                .map(|(i, s)| Utterance {
                    seq: i as u32 + 1,
                    speaker: Speaker::Caller,
                    caller_index: Some(i as u32 + 1),
                    offset_ms: (i as i64 + 1) * 10_000,
                    text: format!("utterance {}", i + 1),
                    confidence: None,
                    score: Some(*s),
                    label: None,
                    trackers: vec![],
                    engine: None,
                })
                .collect(),
            ..Conversation::default()
        }
    }

    /// A stand-in policy: decides `sentiment_floor` at the first score at or below `floor`.
    fn floor(floor: f64) -> impl FnMut(&mut PolicyState, &policy::Utterance<'_>) -> Observation {
        move |state, u| {
            state.utterances += 1;
            let decide = !state.decided && u.score.score <= floor;
            state.decided |= decide;
            Observation {
                snapshot: PolicySnapshot::default(),
                decision: decide.then(|| Decision {
                    reason: Reason::SentimentFloor,
                    queue: "support".into(),
                    trigger_index: u.index,
                    trigger_text: u.text.into(),
                    trigger_phrase: None,
                    tracker: None,
                    numbers: PolicySnapshot::default(),
                }),
            }
        }
    }

    #[test]
    fn a_looser_floor_gains_and_a_stricter_one_loses() {
        let quiet = call(&[0.1, -0.5, -0.6], None);
        let r = replay_with(&quiet, floor(-0.4));
        assert_eq!((r.verdict, r.trigger_index, r.decision_ms), (Verdict::Gained, Some(2), Some(20_000)));
        assert_eq!(r.reason.as_deref(), Some("sentiment_floor"));
        assert_eq!(replay_with(&quiet, floor(-0.9)).verdict, Verdict::Neither);

        let escalated = call(&[0.1, -0.5, -0.8, -0.95], Some(("policy", "sentiment_floor", 3, 30_012)));
        // Same trigger: same decision, with the stored decision time.
        let r = replay_with(&escalated, floor(-0.7));
        assert_eq!((r.verdict, r.decision_ms), (Verdict::Same, Some(30_012)));
        // Earlier trigger: changed, earlier.
        let r = replay_with(&escalated, floor(-0.4));
        assert_eq!((r.verdict, r.trigger_index, r.decision_ms), (Verdict::Changed, Some(2), Some(20_000)));
        // Stricter: the fourth utterance was said after the transfer began, so it is not replayed.
        assert_eq!(replay_with(&escalated, floor(-0.9)).verdict, Verdict::Lost);
    }

    #[test]
    fn menu_and_manual_decisions_are_kept() {
        for source in ["menu", "manual"] {
            let c = call(&[-0.9, -0.9], Some((source, "operator", 0, 5000)));
            let r = replay_with(&c, floor(-0.1));
            assert_eq!((r.verdict, r.reason.as_deref(), r.decision_ms), (Verdict::Kept, Some("operator"), Some(5000)));
        }
    }

    #[test]
    fn the_report_counts_gains_losses_and_time_shift() {
        let mut acc = ReplayAccumulator::new(PolicyConfig::default());
        let calls = [
            call(&[0.1, -0.5], None),                                         // gained at 20 s
            call(&[0.1, -0.2], Some(("policy", "rapid_decline", 2, 20_000))), // lost
            call(&[-0.9], Some(("menu", "operator", 0, 8000))),               // kept
        ];
        for c in &calls {
            let r = replay_with(c, floor(-0.4));
            acc.add(c, &r);
        }
        let rep = acc.finish();
        assert_eq!((rep.calls, rep.decided_before, rep.decided_after), (3, 2, 2));
        assert_eq!(rep.verdicts.get("gained"), Some(&1));
        assert_eq!(rep.verdicts.get("lost"), Some(&1));
        assert_eq!(rep.verdicts.get("kept"), Some(&1));
        assert_eq!(rep.gained.len(), 1);
        assert_eq!(rep.lost[0].before_reason.as_deref(), Some("rapid_decline"));
        assert_eq!(rep.time_to_decision_before.median_ms, Some(14_000.0));
        assert_eq!(rep.time_to_decision_after.median_ms, Some(14_000.0));
        assert_eq!(rep.median_shift_ms, Some(0.0));
        let floor_row = rep.reasons.iter().find(|r| r.reason == "sentiment_floor").unwrap();
        assert_eq!((floor_row.before, floor_row.after), (0, 1));
        assert!(rep.notes[0].contains("kept as they were"));
    }

    #[test]
    fn policy_files_accept_a_policy_table_or_a_bare_one() {
        let base = PolicyConfig { support_queue: "care".into(), ..PolicyConfig::default() };
        let bare = policy_from_toml("sales_queue = \"deals\"\n", &base).unwrap();
        assert_eq!((bare.support_queue.as_str(), bare.sales_queue.as_str()), ("care", "deals"));
        let full = "[ivr]\ngreeting = \"hi\"\n[policy]\nsupport_queue = \"help\"\n";
        assert_eq!(policy_from_toml(full, &base).unwrap().support_queue, "help");
        assert!(policy_from_toml("no_such_threshold = 1\n", &base).unwrap_err().contains("no_such_threshold"));
        assert!(policy_from_toml("policy = 3\n", &base).unwrap_err().contains("table"));
        assert!(policy_from_toml("[policy\n", &base).is_err());
    }
}
