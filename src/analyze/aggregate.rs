//! Across calls: counts, transfer rate, reasons, time to transfer, calls by
//! hour, trackers, sentiment, topics near the decline, and bounded samples
//! for the charts. Everything here is a fixed-size accumulator, except the
//! decision and connection times that exact percentiles need (8 bytes per
//! connected call, 16 per decided call: overall and per reason).

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::per_call::{caller_points, CallMetrics};
use super::rng::Rng;
use super::stats::{histogram_seconds, Bin, Distribution};
use super::topics::{Decline, TopicCounter, Topics};
use crate::store::Conversation;

/// Most distinct tracker names counted.
const MAX_TRACKERS: usize = 256;
/// Most points kept per sampled timeline.
const MAX_SAMPLE_POINTS: usize = 240;
/// Bars the time-to-transfer histogram aims for.
const HISTOGRAM_BINS: usize = 12;

/// The headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Calls analysed.
    pub calls: u64,
    /// … of which have ended.
    pub ended: u64,
    /// … with a transfer decision.
    pub decided: u64,
    /// … connected to an agent.
    pub transferred: u64,
    /// `transferred / calls`.
    pub transfer_rate: Option<f64>,
    /// `decided / calls`.
    pub decision_rate: Option<f64>,
    /// Mean call length.
    pub mean_duration_ms: Option<f64>,
    /// Scored caller utterances.
    pub caller_utterances: u64,
    /// Mean score over every scored caller utterance.
    pub mean_sentiment: Option<f64>,
    /// Mean of the per-call mean scores.
    pub mean_call_sentiment: Option<f64>,
}

/// Decisions and connections for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonRow {
    /// `asked_for_human`, `rapid_decline`, …
    pub reason: String,
    /// Calls with this decision.
    pub decided: u64,
    /// … connected to an agent.
    pub transferred: u64,
    /// `decided / all decisions`.
    pub share: f64,
    /// Median time to the decision.
    pub median_decision_ms: Option<f64>,
}

/// How long callers waited.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeToTransfer {
    /// Call start to the transfer decision.
    pub decision: Distribution,
    /// Call start to the agent connected.
    pub connected: Distribution,
    /// Histogram of the decision times (seconds).
    pub decision_histogram: Vec<Bin>,
    /// Histogram of the connection times, same bins.
    pub connected_histogram: Vec<Bin>,
}

/// Callbacks callers accepted after the longest wait in the queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Callbacks {
    /// Callers who accepted one.
    pub requested: u64,
    /// … called back (an agent on the line, the caller dialled).
    pub placed: u64,
    /// … who answered.
    pub answered: u64,
    /// From the request to the caller answering.
    pub wait: Distribution,
}

impl Callbacks {
    /// No call had a callback.
    pub fn is_empty(&self) -> bool {
        self.requested == 0 && self.placed == 0 && self.answered == 0
    }
}

/// Calls that started in one hour of the day (UTC).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    /// 0-23.
    pub hour: u8,
    /// Calls.
    pub calls: u64,
    /// … connected to an agent.
    pub transferred: u64,
}

/// How often a tracker was heard from callers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackerRow {
    /// Tracker name.
    pub tracker: String,
    /// Caller utterances with a hit.
    pub utterances: u64,
    /// Calls with a hit.
    pub calls: u64,
    /// `calls / all calls`.
    pub call_share: f64,
}

/// One call's sentiment timeline for the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSample {
    /// Conversation id.
    pub conversation_id: String,
    /// The decision's reason, if any.
    pub reason: Option<String>,
    /// Connected to an agent.
    pub transferred: bool,
    /// (minutes since start, score) of the caller's scored utterances.
    pub points: Vec<(f64, f64)>,
    /// Minutes to the decision.
    pub decision_min: Option<f64>,
}

/// Everything computed across calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregates {
    /// Headline numbers.
    pub summary: Summary,
    /// Decisions by reason, most frequent first.
    pub reasons: Vec<ReasonRow>,
    /// Decisions by source (`policy`, `menu`, `manual`).
    pub sources: BTreeMap<String, u64>,
    /// Waiting times.
    pub time_to_transfer: TimeToTransfer,
    /// Callbacks requested, placed and answered, and their wait (left out
    /// when no call had one, so stores without callbacks read as before).
    #[serde(skip_serializing_if = "Callbacks::is_empty")]
    pub callbacks: Callbacks,
    /// 24 rows, hour 0 to 23 (UTC).
    pub hours: Vec<HourRow>,
    /// Trackers, most calls first.
    pub trackers: Vec<TrackerRow>,
    /// Topics near the decline.
    pub topics: Topics,
    /// Sampled timelines (half escalated calls, half others, when there are enough of each).
    pub samples: Vec<CallSample>,
    /// The most recent calls (the last ones streamed), newest first.
    pub recent_calls: Vec<CallMetrics>,
}

/// Options of the accumulator.
#[derive(Debug, Clone, Copy)]
pub struct AggregateOptions {
    /// Caller utterances in a decline window.
    pub window: usize,
    /// Least decline-window utterances a topic must appear in.
    pub min_count: u32,
    /// Topics and recent calls kept.
    pub top: usize,
    /// Timelines sampled for the chart.
    pub samples: usize,
}

#[derive(Debug, Clone, Default)]
struct ReasonAcc {
    decided: u64,
    transferred: u64,
    decision_ms: Vec<f64>,
}

/// Reservoir sampling (Algorithm R) with a fixed seed.
#[derive(Debug, Clone)]
struct Reservoir {
    cap: usize,
    seen: u64,
    items: Vec<CallSample>,
}

impl Reservoir {
    fn offer(&mut self, rng: &mut Rng, make: impl FnOnce() -> CallSample) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(make());
        } else if self.cap > 0 {
            let j = rng.range(0, self.seen) as usize;
            if j < self.cap {
                self.items[j] = make();
            }
        }
    }
}

/// Streams calls in, keeps only what the aggregates need.
#[derive(Debug, Clone)]
pub struct Aggregator {
    options: AggregateOptions,
    calls: u64,
    ended: u64,
    decided: u64,
    transferred: u64,
    duration: (f64, u64),
    sentiment: (f64, u64),
    call_sentiment: (f64, u64),
    reasons: BTreeMap<String, ReasonAcc>,
    sources: BTreeMap<String, u64>,
    decision_ms: Vec<f64>,
    connected_ms: Vec<f64>,
    callbacks: [u64; 3],
    callback_wait_ms: Vec<f64>,
    hours: [(u64, u64); 24],
    trackers: BTreeMap<String, (u64, u64)>,
    topics: TopicCounter,
    rng: Rng,
    escalated: Reservoir,
    others: Reservoir,
    recent: VecDeque<CallMetrics>,
}

impl Aggregator {
    /// An empty accumulator.
    pub fn new(options: AggregateOptions) -> Self {
        Self {
            options,
            calls: 0,
            ended: 0,
            decided: 0,
            transferred: 0,
            duration: (0.0, 0),
            sentiment: (0.0, 0),
            call_sentiment: (0.0, 0),
            reasons: BTreeMap::new(),
            sources: BTreeMap::new(),
            decision_ms: Vec::new(),
            connected_ms: Vec::new(),
            callbacks: [0; 3],
            callback_wait_ms: Vec::new(),
            hours: [(0, 0); 24],
            trackers: BTreeMap::new(),
            topics: TopicCounter::new(options.window),
            rng: Rng::new(0x1b7a_5eed),
            escalated: Reservoir { cap: options.samples, seen: 0, items: Vec::new() },
            others: Reservoir { cap: options.samples, seen: 0, items: Vec::new() },
            recent: VecDeque::new(),
        }
    }

    /// Adds one call, its metrics and its decline.
    pub fn add(&mut self, call: &Conversation, m: &CallMetrics, decline: Option<&Decline>) {
        self.calls += 1;
        self.ended += u64::from(m.status == "ended");
        self.transferred += u64::from(m.transferred);
        if let Some(d) = m.duration_ms {
            self.duration.0 += d as f64;
            self.duration.1 += 1;
        }
        for s in call.caller_utterances().filter_map(|u| u.score) {
            self.sentiment.0 += s;
            self.sentiment.1 += 1;
        }
        if let Some(s) = m.sentiment_mean {
            self.call_sentiment.0 += s;
            self.call_sentiment.1 += 1;
        }
        if let Some(reason) = &m.reason {
            self.decided += 1;
            let r = self.reasons.entry(reason.clone()).or_default();
            r.decided += 1;
            r.transferred += u64::from(m.transferred);
            if let Some(ms) = m.decision_ms {
                r.decision_ms.push(ms as f64);
                self.decision_ms.push(ms as f64);
            }
            *self.sources.entry(m.decision_source.clone().unwrap_or_else(|| "unknown".into())).or_default() += 1;
        }
        if let (true, Some(ms)) = (m.transferred, m.connected_ms) {
            self.connected_ms.push(ms as f64);
        }
        if let Some(h) = m.hour.filter(|h| *h < 24) {
            self.hours[h as usize].0 += 1;
            self.hours[h as usize].1 += u64::from(m.transferred);
        }
        if let Some(cb) = &call.callback {
            let marks = [cb.requested_at.is_some(), cb.placed_at.is_some(), cb.answered_at.is_some()];
            for (n, hit) in self.callbacks.iter_mut().zip(marks) {
                *n += u64::from(hit);
            }
            self.callback_wait_ms.extend(cb.wait_ms().map(|ms| ms.max(0) as f64));
        }
        self.count_trackers(call);
        self.topics.add_call(call, decline);
        let reservoir = if m.decided { &mut self.escalated } else { &mut self.others };
        reservoir.offer(&mut self.rng, || sample_of(call, m));
        if self.options.top > 0 {
            if self.recent.len() == self.options.top {
                self.recent.pop_front();
            }
            self.recent.push_back(m.clone());
        }
    }

    fn count_trackers(&mut self, call: &Conversation) {
        let mut in_call: Vec<&str> = Vec::new();
        for hit in call.caller_utterances().flat_map(|u| {
            let mut names: Vec<&str> = u.trackers.iter().map(|h| h.tracker.as_str()).collect();
            names.dedup();
            names
        }) {
            let known = self.trackers.contains_key(hit);
            if !known && self.trackers.len() >= MAX_TRACKERS {
                continue;
            }
            let entry = self.trackers.entry(hit.to_string()).or_default();
            entry.0 += 1;
            if !in_call.contains(&hit) {
                entry.1 += 1;
                in_call.push(hit);
            }
        }
    }

    /// The aggregates.
    pub fn finish(mut self) -> Aggregates {
        let all = self.decided.max(1) as f64;
        let mut reasons: Vec<ReasonRow> = std::mem::take(&mut self.reasons)
            .into_iter()
            .map(|(reason, mut r)| ReasonRow {
                reason,
                decided: r.decided,
                transferred: r.transferred,
                share: r.decided as f64 / all,
                median_decision_ms: Distribution::of(&mut r.decision_ms).median_ms,
            })
            .collect();
        reasons.sort_by(|a, b| b.decided.cmp(&a.decided).then_with(|| a.reason.cmp(&b.reason)));
        let mut trackers: Vec<TrackerRow> = std::mem::take(&mut self.trackers)
            .into_iter()
            .map(|(tracker, (utterances, calls))| TrackerRow {
                tracker,
                utterances,
                calls,
                call_share: calls as f64 / self.calls.max(1) as f64,
            })
            .collect();
        trackers.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.tracker.cmp(&b.tracker)));
        let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
        let rate = |x: u64| (self.calls > 0).then(|| x as f64 / self.calls as f64);
        let both: Vec<f64> = self.decision_ms.iter().chain(&self.connected_ms).copied().collect();
        let bins = histogram_seconds(&both, HISTOGRAM_BINS);
        let fill = |values: &[f64]| -> Vec<Bin> {
            let mut out = bins.clone();
            for b in &mut out {
                b.count = 0;
            }
            if let Some(width) = out.first().map(|b| b.to_s - b.from_s).filter(|w| *w > 0.0) {
                let n = out.len();
                for v in values {
                    let i = ((v / 1000.0).max(0.0) / width).floor() as usize;
                    out[i.min(n - 1)].count += 1;
                }
            }
            out
        };
        let time_to_transfer = TimeToTransfer {
            decision_histogram: fill(&self.decision_ms),
            connected_histogram: fill(&self.connected_ms),
            decision: Distribution::of(&mut self.decision_ms),
            connected: Distribution::of(&mut self.connected_ms),
        };
        let callbacks = Callbacks {
            requested: self.callbacks[0],
            placed: self.callbacks[1],
            answered: self.callbacks[2],
            wait: Distribution::of(&mut self.callback_wait_ms),
        };
        // Half escalated calls and half others, the rest from the other group
        // when one is short. A prefix of a reservoir is a uniform sample too.
        let n = self.options.samples;
        let (esc, oth) = (self.escalated.items.len(), self.others.items.len());
        let take_escalated = esc.min((n / 2).max(n.saturating_sub(oth)));
        let take_others = oth.min(n - take_escalated);
        let mut samples = std::mem::take(&mut self.escalated.items);
        samples.truncate(take_escalated);
        samples.extend(std::mem::take(&mut self.others.items).into_iter().take(take_others));
        Aggregates {
            summary: Summary {
                calls: self.calls,
                ended: self.ended,
                decided: self.decided,
                transferred: self.transferred,
                transfer_rate: rate(self.transferred),
                decision_rate: rate(self.decided),
                mean_duration_ms: mean(self.duration),
                caller_utterances: self.sentiment.1,
                mean_sentiment: mean(self.sentiment),
                mean_call_sentiment: mean(self.call_sentiment),
            },
            reasons,
            sources: std::mem::take(&mut self.sources),
            time_to_transfer,
            callbacks,
            hours: self
                .hours
                .iter()
                .enumerate()
                .map(|(h, (calls, transferred))| HourRow { hour: h as u8, calls: *calls, transferred: *transferred })
                .collect(),
            trackers,
            topics: self.topics.finish(self.options.top, self.options.min_count),
            samples,
            recent_calls: self.recent.into_iter().rev().collect(),
        }
    }
}

fn sample_of(call: &Conversation, m: &CallMetrics) -> CallSample {
    let mut points = caller_points(call);
    if points.len() > MAX_SAMPLE_POINTS {
        let step = points.len() as f64 / MAX_SAMPLE_POINTS as f64;
        points = (0..MAX_SAMPLE_POINTS).map(|i| points[(i as f64 * step) as usize]).collect();
    }
    CallSample {
        conversation_id: call.id.clone(),
        reason: m.reason.clone(),
        transferred: m.transferred,
        points,
        decision_min: m.decision_ms.map(|ms| ms as f64 / 60_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::per_call::metrics_of;
    use crate::intel::TrackerHit;
    use crate::session::{DecisionSource, Speaker};
    use crate::store::model::parse_enum;
    use crate::store::{CallbackTimes, ConversationStatus, StoredDecision, Utterance};
    use chrono::TimeZone;

    fn call(i: u32, reason: Option<&str>, transferred: bool, hour: u32) -> Conversation {
        Conversation {
            id: format!("c{i}"),
            started_at: Some(chrono::Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()),
            status: ConversationStatus::Ended,
            duration_ms: Some(60_000),
            decision: reason.map(|r| StoredDecision {
                reason: parse_enum(r).unwrap(),
                source: Some(DecisionSource::Policy),
                queue: Some("support".into()),
                trigger_index: None,
                trigger_text: None,
                trigger_phrase: None,
                decision_ms: Some(i64::from(i) * 1000),
            }),
            transferred,
            connected_ms: transferred.then(|| i64::from(i) * 1000 + 5000),
            utterances: vec![Utterance {
                seq: 1,
                speaker: Speaker::Caller,
                caller_index: Some(1),
                offset_ms: 1000,
                text: "i want a real person".into(),
                confidence: None,
                score: Some(-0.5),
                label: None,
                trackers: vec![
                    TrackerHit::new("asks_for_human", "real person"),
                    TrackerHit::new("asks_for_human", "person"),
                ],
                engine: None,
            }],
            ..Conversation::default()
        }
    }

    #[test]
    fn callbacks_are_counted_requested_placed_answered_with_their_wait() {
        let options = AggregateOptions { window: 2, min_count: 1, top: 0, samples: 0 };
        let mut agg = Aggregator::new(options);
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let at = |s: i64| Some(t0 + chrono::Duration::seconds(s));
        let times = [
            Some(CallbackTimes { requested_at: at(0), placed_at: at(50), answered_at: at(60) }),
            Some(CallbackTimes { requested_at: at(0), placed_at: at(100), answered_at: at(120) }),
            Some(CallbackTimes { requested_at: at(0), placed_at: None, answered_at: None }),
            None,
        ];
        for (i, cb) in times.into_iter().enumerate() {
            let c = Conversation { callback: cb, ..call(i as u32, None, false, 9) };
            agg.add(&c, &metrics_of(&c), None);
        }
        let cb = agg.finish().callbacks;
        assert_eq!((cb.requested, cb.placed, cb.answered), (3, 2, 2));
        assert_eq!(cb.wait.count, 2);
        assert_eq!(cb.wait.median_ms, Some(90_000.0));
    }

    #[test]
    fn counts_rates_reasons_hours_and_trackers() {
        let options = AggregateOptions { window: 2, min_count: 1, top: 2, samples: 4 };
        let mut agg = Aggregator::new(options);
        let calls = [
            call(10, Some("asked_for_human"), true, 9),
            call(20, Some("asked_for_human"), false, 9),
            call(30, Some("rapid_decline"), true, 14),
            call(40, None, false, 23),
        ];
        for c in &calls {
            let m = metrics_of(c);
            agg.add(c, &m, None);
        }
        let a = agg.finish();
        assert_eq!((a.summary.calls, a.summary.decided, a.summary.transferred), (4, 3, 2));
        assert_eq!(a.summary.transfer_rate, Some(0.5));
        assert_eq!(a.summary.mean_sentiment, Some(-0.5));
        assert_eq!(a.reasons[0].reason, "asked_for_human");
        assert_eq!((a.reasons[0].decided, a.reasons[0].transferred), (2, 1));
        assert_eq!(a.reasons[0].median_decision_ms, Some(15_000.0));
        assert_eq!(a.time_to_transfer.decision.median_ms, Some(20_000.0));
        assert_eq!(a.time_to_transfer.connected.count, 2);
        let hist_total: u64 = a.time_to_transfer.decision_histogram.iter().map(|b| b.count).sum();
        assert_eq!(hist_total, 3);
        assert_eq!(a.time_to_transfer.decision_histogram.len(), a.time_to_transfer.connected_histogram.len());
        assert_eq!((a.hours[9].calls, a.hours[9].transferred, a.hours[23].calls), (2, 1, 1));
        assert_eq!(a.hours.len(), 24);
        assert_eq!(a.trackers.len(), 1);
        assert_eq!((a.trackers[0].utterances, a.trackers[0].calls), (4, 4));
        assert_eq!(a.recent_calls.iter().map(|m| m.conversation_id.as_str()).collect::<Vec<_>>(), ["c40", "c30"]);
        assert_eq!(a.samples.len(), 4, "three escalated calls fill the place the one other call leaves");
        assert_eq!(a.sources.get("policy"), Some(&3));
    }

    #[test]
    fn nothing_in_nothing_out() {
        let a = Aggregator::new(AggregateOptions { window: 2, min_count: 3, top: 5, samples: 0 }).finish();
        assert_eq!(a.summary.calls, 0);
        assert_eq!(a.summary.transfer_rate, None);
        assert!(a.reasons.is_empty() && a.time_to_transfer.decision_histogram.is_empty() && a.samples.is_empty());
    }
}
