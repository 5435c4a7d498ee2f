//! Per-call metrics: sentiment (min, mean, final, slope), the transfer and
//! its timing, and where the call's decline was.

use chrono::{DateTime, Timelike};
use serde::Serialize;

use super::query::StoredCall;
use super::replay::CallReplay;
use super::stats::slope;
use super::topics::{find_decline, Decline};

/// What one call looked like. Also the row of `--format csv` and an element
/// of `calls` in `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
pub fn caller_points(call: &StoredCall) -> Vec<(f64, f64)> {
    call.caller_utterances().filter_map(|u| u.score.map(|s| (u.offset_ms as f64 / 60_000.0, s))).collect()
}

/// Hour of day (UTC) of an RFC 3339 time.
pub fn hour_of(started_at: &str) -> Option<u8> {
    DateTime::parse_from_rfc3339(started_at).ok().map(|t| t.with_timezone(&chrono::Utc).hour() as u8)
}

/// Computes a call's metrics; `decline` is where its decline is (see [`find_decline`]).
pub fn metrics(call: &StoredCall, decline: Option<&Decline>) -> CallMetrics {
    let points = caller_points(call);
    let scores: Vec<f64> = points.iter().map(|p| p.1).collect();
    let mut trackers: Vec<String> = Vec::new();
    for hit in call.caller_utterances().flat_map(|u| &u.trackers) {
        if !trackers.contains(&hit.tracker) {
            trackers.push(hit.tracker.clone());
        }
    }
    CallMetrics {
        conversation_id: call.id.clone(),
        started_at: call.started_at.clone(),
        hour: hour_of(&call.started_at),
        direction: call.direction.clone(),
        status: call.status.clone(),
        end_reason: call.end_reason.clone(),
        duration_ms: call.duration_ms,
        utterances: call.utterances.len() as u32,
        caller_utterances: call.caller_utterances().count() as u32,
        sentiment_min: scores.iter().copied().reduce(f64::min),
        sentiment_mean: (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64),
        sentiment_final: scores.last().copied(),
        sentiment_slope_per_min: slope(&points),
        decided: call.decision_reason.is_some(),
        decision_source: call.decision_source.clone(),
        reason: call.decision_reason.clone(),
        queue: call.queue.clone(),
        transferred: call.transferred,
        transfer_status: call.transfer_status.clone(),
        decision_ms: call.decision_ms,
        connected_ms: call.connected_ms,
        trigger_index: call.trigger_index,
        trigger_phrase: call.trigger_phrase.clone(),
        trigger_text: call.trigger_text.clone(),
        trackers,
        decline_index: decline.map(|d| d.caller_index),
        decline_kind: decline.map(|d| d.kind.as_str()),
        replay: None,
    }
}

/// Metrics with the decline found by the default rule.
pub fn metrics_of(call: &StoredCall) -> CallMetrics {
    metrics(call, find_decline(call).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::query::StoredUtterance;

    fn utt(seq: u32, speaker: &str, offset_ms: i64, score: Option<f64>) -> StoredUtterance {
        let caller = speaker == "caller";
        StoredUtterance {
            seq,
            speaker: speaker.into(),
            caller_index: caller.then_some(seq),
            offset_ms,
            text: format!("line {seq}"),
            score,
            label: None,
            trackers: vec![],
        }
    }

    #[test]
    fn sentiment_numbers_come_from_the_caller_only() {
        let call = StoredCall {
            id: "c".into(),
            started_at: "2026-03-01T14:05:00+00:00".into(),
            utterances: vec![
                utt(1, "caller", 0, Some(0.5)),
                utt(2, "caller", 60_000, Some(0.0)),
                utt(3, "agent", 90_000, Some(-0.9)),
                utt(4, "caller", 120_000, Some(-0.5)),
                utt(5, "caller", 130_000, None),
            ],
            ..StoredCall::default()
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
        let call = StoredCall { id: "c".into(), started_at: "garbage".into(), ..StoredCall::default() };
        let m = metrics_of(&call);
        assert_eq!((m.hour, m.sentiment_min, m.sentiment_mean, m.sentiment_slope_per_min), (None, None, None, None));
    }
}
