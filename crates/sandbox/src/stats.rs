//! Delivery statistics for load runs, measured where Telnyx would measure
//! them: at the sender.
//!
//! Counters are always kept. While a *tracking window* is open (opened by
//! [`DeliveryStats::reset`], e.g. from `POST /sandbox/v1/deliveries/reset`),
//! the sandbox also keeps the acknowledgement latency of every 2xx answer
//! (4 bytes each) and the id of every event acknowledged (16 bytes each, the
//! UUID as a number), both capped at [`DeliveryStats::cap`] entries, so a load
//! run can compare what was acknowledged with what the application stored.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{parse_json, ApiError};
use super::Shared;

use ivrx_http::latency::{micros, summarize, LatencySummary};

/// Most latencies and ids one tracking window keeps (64 MiB of ids at most).
pub const DEFAULT_TRACKING_CAP: usize = 4_000_000;

/// What the sender saw, since the last reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliverySummary {
    /// Seconds since the window opened.
    pub window_secs: f64,
    /// True while ids and latencies are kept.
    pub tracking: bool,
    /// Webhooks queued or being delivered right now.
    pub queued: u64,
    /// Delivery attempts.
    pub attempts: u64,
    /// Events acknowledged with 2xx (each event once, however many attempts it took).
    pub delivered: u64,
    /// Attempts answered with a non-2xx status or not answered at all.
    pub failed_attempts: u64,
    /// Events given up on after the last attempt.
    pub gave_up: u64,
    /// Repeated deliveries of an event already acknowledged (chaos
    /// duplicates) that the application refused with a non-2xx status.
    #[serde(default)]
    pub refused_duplicates: u64,
    /// Commands received again with a `command_id` already executed
    /// (answered ok, not executed again): what an application sent twice.
    #[serde(default)]
    pub repeated_commands: u64,
    /// Time from sending a webhook to reading its 2xx answer.
    pub ack_latency: LatencySummary,
    /// Acknowledged event ids kept for [`DeliveryStats::ids`].
    pub ids_tracked: u64,
    /// True when the window hit its cap and stopped keeping ids and latencies.
    pub truncated: bool,
    /// True while the webhook and command logs are being kept.
    pub logging: bool,
    /// Real seconds the clock has stood still since the sandbox started,
    /// waiting for a slow application (see `DeliveryConfig::hold_after`).
    #[serde(default)]
    pub clock_held_secs: f64,
    /// Attempts per webhook URL, in URL order (the first [`MAX_URLS`]
    /// URLs seen in the window): how the deliveries spread over the
    /// application's instances.
    #[serde(default)]
    pub by_url: Vec<UrlDeliveries>,
}

/// Most distinct URLs a window breaks its counts down by.
pub const MAX_URLS: usize = 64;

/// The deliveries to one webhook URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlDeliveries {
    /// The URL.
    pub url: String,
    /// Requests sent to it.
    pub attempts: u64,
    /// Requests it answered 2xx (chaos duplicates included).
    pub acknowledged: u64,
    /// Requests it answered otherwise or not at all.
    pub failed: u64,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    tracking: bool,
    attempts: u64,
    delivered: u64,
    failed_attempts: u64,
    gave_up: u64,
    refused_duplicates: u64,
    repeated_commands: u64,
    latencies: Vec<u32>,
    ids: Vec<u128>,
    truncated: bool,
    by_url: BTreeMap<Arc<str>, UrlDeliveries>,
}

impl Window {
    fn new(tracking: bool) -> Self {
        Self {
            started: Instant::now(),
            tracking,
            attempts: 0,
            delivered: 0,
            failed_attempts: 0,
            gave_up: 0,
            refused_duplicates: 0,
            repeated_commands: 0,
            latencies: Vec::new(),
            ids: Vec::new(),
            truncated: false,
            by_url: BTreeMap::new(),
        }
    }
}

/// Delivery statistics, shared by every delivery task.
#[derive(Debug)]
pub struct DeliveryStats {
    window: Mutex<Window>,
    queued: AtomicU64,
    cap: usize,
}

impl Default for DeliveryStats {
    fn default() -> Self {
        Self::new(DEFAULT_TRACKING_CAP)
    }
}

impl DeliveryStats {
    /// Statistics whose tracking windows keep at most `cap` ids and latencies.
    pub fn new(cap: usize) -> Self {
        Self { window: Mutex::new(Window::new(false)), queued: AtomicU64::new(0), cap }
    }

    /// The most ids and latencies a window keeps.
    pub fn cap(&self) -> usize {
        self.cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A webhook was queued.
    pub(crate) fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued webhook is done with (delivered, given up, or dropped).
    pub(crate) fn done(&self) {
        let _ = self.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| Some(q.saturating_sub(1)));
    }

    /// Webhooks dropped unsent (the sandbox stopped).
    pub(crate) fn dropped(&self, n: u64) {
        let _ = self.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| Some(q.saturating_sub(n)));
    }

    /// One attempt, sent to `url`: `acked` is the latency of a 2xx answer,
    /// `None` for a failure; `event_id` is the event's `data.id`. A chaos
    /// `duplicate` copy counts as an attempt with its latency, not as another event.
    pub(crate) fn attempt(&self, event_id: &str, url: &str, acked: Option<Duration>, duplicate: bool) {
        let mut w = self.lock();
        w.attempts += 1;
        if !w.by_url.contains_key(url) && w.by_url.len() < MAX_URLS {
            w.by_url.insert(Arc::from(url), UrlDeliveries { url: url.into(), ..UrlDeliveries::default() });
        }
        if let Some(u) = w.by_url.get_mut(url) {
            u.attempts += 1;
            if acked.is_some() {
                u.acknowledged += 1;
            } else {
                u.failed += 1;
            }
        }
        let Some(latency) = acked else {
            w.failed_attempts += 1;
            return;
        };
        if !duplicate {
            w.delivered += 1;
        }
        if !w.tracking {
            return;
        }
        if w.latencies.len() >= self.cap || w.ids.len() >= self.cap {
            w.truncated = true;
            return;
        }
        w.latencies.push(micros(latency));
        if duplicate {
            return;
        }
        match uuid::Uuid::parse_str(event_id) {
            Ok(u) => w.ids.push(u.as_u128()),
            Err(_) => w.truncated = true,
        }
    }

    /// An event was given up on.
    pub(crate) fn gave_up(&self) {
        self.lock().gave_up += 1;
    }

    /// A repeated delivery of an acknowledged event was refused (non-2xx).
    pub(crate) fn refused_duplicate(&self) {
        self.lock().refused_duplicates += 1;
    }

    /// A command came again with a `command_id` already executed.
    pub(crate) fn repeated_command(&self) {
        self.lock().repeated_commands += 1;
    }

    /// Starts a new window, keeping ids and latencies when `track` is set.
    pub fn reset(&self, track: bool) {
        *self.lock() = Window::new(track);
    }

    /// The window so far (`logging` and `clock_held_secs` are filled in by the caller).
    pub fn summary(&self) -> DeliverySummary {
        let w = self.lock();
        let mut latencies = w.latencies.clone();
        let s = DeliverySummary {
            window_secs: w.started.elapsed().as_secs_f64(),
            tracking: w.tracking,
            queued: self.queued.load(Ordering::Relaxed),
            attempts: w.attempts,
            delivered: w.delivered,
            failed_attempts: w.failed_attempts,
            gave_up: w.gave_up,
            refused_duplicates: w.refused_duplicates,
            repeated_commands: w.repeated_commands,
            ack_latency: LatencySummary::default(),
            ids_tracked: w.ids.len() as u64,
            truncated: w.truncated,
            logging: false,
            clock_held_secs: 0.0,
            by_url: w.by_url.values().cloned().collect(),
        };
        drop(w);
        DeliverySummary { ack_latency: summarize(&mut latencies), ..s }
    }

    /// Up to `limit` acknowledged event ids from position `offset`, in the
    /// order they were acknowledged, and the total kept.
    pub fn ids(&self, offset: usize, limit: usize) -> (Vec<String>, usize) {
        let w = self.lock();
        let total = w.ids.len();
        let ids = w.ids.iter().skip(offset).take(limit).map(|&u| uuid::Uuid::from_u128(u).to_string()).collect();
        (ids, total)
    }
}

/// `POST /sandbox/v1/deliveries/reset` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    /// Keep acknowledged ids and latencies in the new window.
    #[serde(default)]
    track: bool,
    /// Keep the webhook and command logs (when the sandbox has them).
    record_log: Option<bool>,
}

/// `?offset=&limit=`
#[derive(Debug, Deserialize)]
struct IdsQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// Largest page of ids.
const MAX_IDS_PAGE: usize = 10_000;

/// The delivery statistics routes (behind the API key).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sandbox/v1/deliveries", get(summary))
        .route("/sandbox/v1/deliveries/reset", post(reset))
        .route("/sandbox/v1/deliveries/ids", get(ids))
}

fn summary_of(s: &Shared) -> DeliverySummary {
    DeliverySummary {
        logging: s.delivery.logging(),
        clock_held_secs: s.clock.held().as_secs_f64(),
        ..s.delivery.stats.summary()
    }
}

async fn summary(State(s): State<Arc<Shared>>) -> Response {
    Json(json!({ "data": summary_of(&s) })).into_response()
}

async fn reset(State(s): State<Arc<Shared>>, raw: Bytes) -> Response {
    let b: ResetBody = match parse_json(&raw) {
        Ok(Value::Null) => ResetBody::default(),
        Ok(v) => match serde_json::from_value(v) {
            Ok(b) => b,
            Err(e) => return ApiError::invalid("/", e.to_string()).into_response(),
        },
        Err(e) => return e.into_response(),
    };
    if let Some(on) = b.record_log {
        s.delivery.set_logging(on);
    }
    s.delivery.stats.reset(b.track);
    Json(json!({ "data": summary_of(&s) })).into_response()
}

async fn ids(State(s): State<Arc<Shared>>, Query(q): Query<IdsQuery>) -> Response {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(MAX_IDS_PAGE).clamp(1, MAX_IDS_PAGE);
    let (ids, total) = s.delivery.stats.ids(offset, limit);
    let end = offset.saturating_add(ids.len());
    let next = (end < total).then_some(end);
    Json(json!({ "data": ids, "total": total, "next_offset": next })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0";
    const B: &str = "1ccc7b54-4df3-4bca-a65a-3da1ecc777f1";
    const U: &str = "http://127.0.0.1:8081/webhooks/telnyx";
    const V: &str = "http://127.0.0.1:8082/webhooks/telnyx";

    #[test]
    fn counts_always_and_tracks_only_in_a_window() {
        let s = DeliveryStats::new(10);
        s.attempt(A, U, Some(Duration::from_millis(2)), false);
        s.attempt(A, V, None, false);
        let sum = s.summary();
        assert_eq!((sum.attempts, sum.delivered, sum.failed_attempts, sum.ids_tracked), (2, 1, 1, 0));
        assert_eq!(sum.ack_latency.count, 0);
        let per_url: Vec<_> =
            sum.by_url.iter().map(|u| (u.url.as_str(), u.attempts, u.acknowledged, u.failed)).collect();
        assert_eq!(per_url, [(U, 1, 1, 0), (V, 1, 0, 1)]);

        s.refused_duplicate();
        assert_eq!(s.summary().refused_duplicates, 1);
        s.reset(true);
        assert_eq!(s.summary().refused_duplicates, 0, "a new window");
        s.attempt(A, U, Some(Duration::from_millis(1)), false);
        s.attempt(B, U, Some(Duration::from_millis(3)), false);
        s.attempt(B, U, Some(Duration::from_millis(2)), true);
        s.gave_up();
        let sum = s.summary();
        assert_eq!((sum.attempts, sum.delivered, sum.gave_up, sum.ids_tracked), (3, 2, 1, 2));
        assert_eq!((sum.ack_latency.p50_ms, sum.ack_latency.max_ms, sum.ack_latency.count), (2.0, 3.0, 3));
        assert_eq!(s.ids(0, 10), (vec![A.to_string(), B.to_string()], 2));
        assert_eq!(s.ids(1, 10).0, vec![B.to_string()]);
        assert!(s.ids(5, 10).0.is_empty());
    }

    #[test]
    fn windows_are_capped_and_queue_counts_saturate() {
        let s = DeliveryStats::new(1);
        s.reset(true);
        s.attempt(A, U, Some(Duration::ZERO), false);
        s.attempt(B, U, Some(Duration::ZERO), false);
        s.attempt("not-a-uuid", U, Some(Duration::ZERO), false);
        let sum = s.summary();
        assert_eq!((sum.delivered, sum.ids_tracked, sum.truncated), (3, 1, true));
        s.queued();
        s.done();
        s.done();
        s.dropped(5);
        assert_eq!(s.summary().queued, 0);
    }
}
