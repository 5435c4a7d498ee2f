//! Per-call metrics: sentiment (min, mean, final, slope), the transfer and
//! its timing, and where the call's decline was.

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;

use super::replay::CallReplay;
use super::stats::slope;
use super::topics::{find_decline, Decline};
use crate::store::model::enum_name;
use crate::store::Conversation;

/// What one call looked like. Also the row of `--format csv` and an element
/// of `calls` in `--format json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallMetrics {
    /// Conversation id.
    pub conversation_id: String,
    /// RFC 3339 start time as stored (UTC).
    pub started_at: String,
    /// Hour of day the call started (UTC, 0-23).
    pub hour: Option<u8>,
    /// `incoming`, `outgoing`, `import`, `synthetic`, …
    pub direction: Option<String>,
    /// `active` or `ended`.
    pub status: String,
    /// Why the call ended.
    pub end_reason: Option<String>,
    /// Length of the call.
    pub duration_ms: Option<i64>,
    /// Utterances of every speaker.
    pub utterances: u32,
    /// The caller's utterances.
    pub caller_utterances: u32,
    /// Lowest caller score.
    pub sentiment_min: Option<f64>,
    /// Mean caller score.
    pub sentiment_mean: Option<f64>,
    /// The caller's last score.
    pub sentiment_final: Option<f64>,
    /// Least-squares slope of the caller's scores against time, per minute.
    pub sentiment_slope_per_min: Option<f64>,
    /// A transfer was decided.
    pub decided: bool,
    /// `policy`, `menu` or `manual`.
    pub decision_source: Option<String>,
    /// Why (`asked_for_human`, `rapid_decline`, …).
    pub reason: Option<String>,
    /// The queue of the decision.
    pub queue: Option<String>,
    /// The caller was connected to an agent.
    pub transferred: bool,
    /// Last transfer state (`connected`, `failed`, `abandoned`, …).
    pub transfer_status: Option<String>,
    /// Call start to the transfer decision.
    pub decision_ms: Option<i64>,
    /// Call start to the agent connected.
    pub connected_ms: Option<i64>,
    /// 1-based caller index of the utterance that triggered the decision.
    pub trigger_index: Option<u32>,
    /// The tracker phrase that mattered.
    pub trigger_phrase: Option<String>,
    /// The trigger utterance's text.
    pub trigger_text: Option<String>,
    /// Trackers heard from the caller (distinct names, first-heard order).
    pub trackers: Vec<String>,
    /// Caller index of the decline (see [`super::topics`]), if the call had one.
    pub decline_index: Option<u32>,
    /// `trigger` or `steepest_drop`.
    pub decline_kind: Option<&'static str>,
    /// The policy replay's verdict, with `--replay-policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<CallReplay>,
}

/// One scored caller utterance on a timeline: (minutes since start, score).
pub fn caller_points(call: &Conversation) -> Vec<(f64, f64)> {
    call.caller_utterances().filter_map(|u| u.score.map(|s| (u.offset_ms as f64 / 60_000.0, s))).collect()
}

/// Hour of day (UTC) of a call's start.
pub fn hour_of(started_at: Option<DateTime<Utc>>) -> Option<u8> {
    started_at.map(|t| t.hour() as u8)
}

/// Computes a call's metrics; `decline` is where its decline is (see [`find_decline`]).
pub fn metrics(call: &Conversation, decline: Option<&Decline>) -> CallMetrics {
    let points = caller_points(call);
    let scores: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut trackers: Vec<String> = Vec::new();
    for hit in call.caller_utterances().flat_map(|u| &u.trackers) {
        if !trackers.contains(&hit.tracker) {
            trackers.push(hit.tracker.clone());
        }
    }
    let decision = call.decision.as_ref();
    CallMetrics {
        conversation_id: call.id.clone(),
        started_at: call.started_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        hour: hour_of(call.started_at),
        direction: call.direction.clone(),
        status: call.status.as_str().to_string(),
        end_reason: call.end_reason.clone(),
        duration_ms: call.duration_ms,
        utterances: call.utterances.len() as u32,
        caller_utterances: call.caller_utterances().count() as u32,
        sentiment_min: scores.iter().copied().reduce(f64::min),
        sentiment_mean: (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64),
        sentiment_final: scores.last().copied(),
        sentiment_slope_per_min: slope(&points),
        decided: decision.is_some(),
        decision_source: decision.and_then(|d| d.source.as_ref().and_then(enum_name)),
        reason: decision.map(|d| d.reason.as_str().to_string()),
        queue: decision.and_then(|d| d.queue.clone()),
        transferred: call.transferred,
        transfer_status: call.transfer_status.map(|s| s.as_str().to_string()),
        decision_ms: decision.and_then(|d| d.decision_ms),
        connected_ms: call.connected_ms,
        trigger_index: decision.and_then(|d| d.trigger_index),
        trigger_phrase: decision.and_then(|d| d.trigger_phrase.clone()),
        trigger_text: decision.and_then(|d| d.trigger_text.clone()),
        trackers,
        decline_index: decline.map(|d| d.caller_index),
        decline_kind: decline.map(|d| d.kind.as_str()),
        replay: None,
    }
}

/// Metrics with the decline found by the default rule.
pub fn metrics_of(call: &Conversation) -> CallMetrics {
    metrics(call, find_decline(call).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Speaker;
    use crate::store::Utterance;
    use chrono::TimeZone;

    fn utt(seq: u32, speaker: Speaker, offset_ms: i64, score: Option<f64>) -> Utterance {
        let caller = speaker == Speaker::Caller;
        Utterance {
            seq,
            speaker,
            caller_index: caller.then_some(seq),
            offset_ms,
            text: format!("line {seq}"),
            confidence: None,
            score,
            label: None,
            trackers: vec![],
            engine: None,
        }
    }

    #[test]
    fn sentiment_numbers_come_from_the_caller_only() {
        let call = Conversation {
            id: "c".into(),
            started_at: Some(Utc.with_ymd_and_hms(2026, 3, 1, 14, 5, 0).unwrap()),
            utterances: vec![
                utt(1, Speaker::Caller, 0, Some(0.5)),
                utt(2, Speaker::Caller, 60_000, Some(0.0)),
                utt(3, Speaker::Agent, 90_000, Some(-0.9)),
                utt(4, Speaker::Caller, 120_000, Some(-0.5)),
                utt(5, Speaker::Caller, 130_000, None),
            ],
            ..Conversation::default()
        };
        let m = metrics_of(&call);
        assert_eq!(m.hour, Some(14));
        assert_eq!((m.utterances, m.caller_utterances), (5, 4));
        assert_eq!(m.sentiment_min, Some(-0.5));
        assert_eq!(m.sentiment_mean, Some(0.0));
        assert_eq!(m.sentiment_final, Some(-0.5));
        assert!((m.sentiment_slope_per_min.unwrap() - (-0.5)).abs() < 1e-12);
        assert!(!m.decided && !m.transferred);
    }

    #[test]
    fn a_call_without_scores_has_no_sentiment() {
        // A start time the store could not read.
        let call = Conversation { id: "c".into(), started_at: None, ..Conversation::default() };
        let m = metrics_of(&call);
        assert_eq!((m.hour, m.sentiment_min, m.sentiment_mean, m.sentiment_slope_per_min), (None, None, None, None));
    }
}
