//! Prometheus metrics (`/metrics`) and exact latency percentiles for the admin
//! stats endpoint and load reports.

use std::sync::Mutex;
use std::time::Duration;

pub use crate::http::latency::{summarize, LatencySummary};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    event_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    action: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    channel: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// Latency samples kept for exact percentiles (bounded).
#[derive(Debug, Default)]
pub struct LatencySamples {
    micros: Mutex<Vec<u32>>,
}

const MAX_SAMPLES: usize = 2_000_000;

impl LatencySamples {
    /// Adds a sample.
    pub fn record(&self, d: Duration) {
        if let Ok(mut g) = self.micros.lock() {
            if g.len() < MAX_SAMPLES {
                g.push(d.as_micros().min(u32::MAX as u128) as u32);
            }
        }
    }

    /// Percentiles of everything recorded.
    pub fn summary(&self) -> LatencySummary {
        let Ok(g) = self.micros.lock() else { return LatencySummary::default() };
        let mut v = g.clone();
        drop(g);
        summarize(&mut v)
    }

    /// Forgets every sample.
    pub fn reset(&self) {
        if let Ok(mut g) = self.micros.lock() {
            g.clear();
        }
    }
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    webhooks: Family<WebhookLabels, Counter>,
    commands: Family<ActionLabels, Histogram>,
    command_errors: Family<ErrorLabels, Counter>,
    decisions: Family<ReasonLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    active_calls: Gauge,
    ack_latency: Histogram,
    decision_latency: Histogram,
    /// Exact decision latencies (final transcript received → transfer command sent).
    pub decision_samples: LatencySamples,
    /// Exact webhook handling latencies (request in → acknowledgement out).
    pub ack_samples: LatencySamples,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ivrx");
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhooks received, by event type and outcome (busy: refused unacknowledged, the call's inbox full)",
            webhooks.clone(),
        );
        let commands = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register("command_seconds", "Telnyx command latency (all attempts), by action", commands.clone());
        let command_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "command_errors",
            "Telnyx commands that failed for good, by action and kind",
            command_errors.clone(),
        );
        let decisions = Family::<ReasonLabels, Counter>::default();
        registry.register("decisions", "Transfer decisions, by reason", decisions.clone());
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Alerts (sms, crm) by outcome: sent, delivered, failed, rate_limited, dropped, duplicate",
            notifications.clone(),
        );
        let active_calls = Gauge::default();
        registry.register("active_calls", "Conversations in progress", active_calls.clone());
        let ack_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register("webhook_ack_seconds", "Time from webhook request to acknowledgement", ack_latency.clone());
        let decision_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "decision_seconds",
            "Time from the final transcript webhook to the transfer command being sent",
            decision_latency.clone(),
        );
        Self {
            registry,
            webhooks,
            commands,
            command_errors,
            decisions,
            notifications,
            active_calls,
            ack_latency,
            decision_latency,
            decision_samples: LatencySamples::default(),
            ack_samples: LatencySamples::default(),
        }
    }

    /// Counts a webhook.
    pub fn webhook(&self, event_type: &str, outcome: &str) {
        self.webhooks.get_or_create(&WebhookLabels { event_type: event_type.into(), outcome: outcome.into() }).inc();
    }

    /// Records a command's latency, and its error kind if it failed.
    pub fn command(&self, action: &str, elapsed: Duration, error_kind: Option<&str>) {
        self.commands.get_or_create(&ActionLabels { action: action.into() }).observe(elapsed.as_secs_f64());
        if let Some(kind) = error_kind {
            self.command_errors.get_or_create(&ErrorLabels { action: action.into(), kind: kind.into() }).inc();
        }
    }

    /// Counts a decision.
    pub fn decision(&self, reason: &str) {
        self.decisions.get_or_create(&ReasonLabels { reason: reason.into() }).inc();
    }

    /// Counts an alert's outcome.
    pub fn notification(&self, channel: &str, outcome: &str) {
        self.notifications
            .get_or_create(&NotificationLabels { channel: channel.into(), outcome: outcome.into() })
            .inc();
    }

    /// Sets the number of active conversations.
    pub fn set_active_calls(&self, n: usize) {
        self.active_calls.set(n as i64);
    }

    /// Records an acknowledgement latency.
    pub fn ack(&self, d: Duration) {
        self.ack_latency.observe(d.as_secs_f64());
        self.ack_samples.record(d);
    }

    /// Records a decision latency.
    pub fn decision_latency(&self, d: Duration) {
        self.decision_latency.observe(d.as_secs_f64());
        self.decision_samples.record(d);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.webhook("call.answered", "accepted");
        m.command("speak", Duration::from_millis(2), None);
        m.command("dial", Duration::from_millis(2), Some("server"));
        m.decision("asked_for_human");
        m.set_active_calls(3);
        let text = m.render();
        for needle in [
            "ivrx_webhooks_total{event_type=\"call.answered\",outcome=\"accepted\"} 1",
            "ivrx_command_errors_total{action=\"dial\",kind=\"server\"} 1",
            "ivrx_decisions_total{reason=\"asked_for_human\"} 1",
            "ivrx_active_calls 3",
            "ivrx_command_seconds_bucket",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
