//! Alerts when a call turns: an SMS to each supervisor who follows the
//! queue and reason (`[notify]`) when a transfer is decided or fails, and a
//! signed event to a CRM ([`crm`], `[notify.crm]`) when it is decided and
//! when it ends.
//!
//! A conversation's session tells when a transfer is decided or ends
//! ([`Notice`]); its worker hands the notice to [`Alerts`] without waiting:
//! a bounded queue in front of one task that sends them (Telnyx Messaging)
//! and reads their delivery webhooks. When the queue is full the alert is
//! dropped and counted; the call never waits for an alert and an alert never
//! fails a call. Each alert has a key derived from what it is about (the
//! conversation and the decision or outcome), so the same decision seen
//! twice — a duplicated webhook, a replay — texts a supervisor once. What
//! happens to every SMS (sent, delivered, failed, rate limited, dropped) and
//! CRM event (sent, failed, dropped) is recorded as a `notification` event of
//! the conversation and counted in `ivrx_notifications_total`.

pub mod crm;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::calls::{Calls, WorkerMsg};
use super::metrics::Metrics;
use crate::config::NotifyConfig;
use crate::session::{CallerText, DomainEvent, Notice, NoticeKind};
use crate::telnyx::messaging::{MessageCreate, MessageEvent, MessageEventType};
use crate::telnyx::TelnyxClient;

/// Where SMS come from and how they are sent.
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// `[notify]`.
    pub config: NotifyConfig,
    /// The sending number (the IVR's).
    pub from: String,
    /// `[telnyx] messaging_profile_id`.
    pub messaging_profile_id: Option<String>,
    /// Where delivery webhooks go (`None`: the messaging profile's URL).
    pub webhook_url: Option<String>,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// A transfer was decided.
    Decided,
    /// No agent could be reached.
    TransferFailed,
}

/// A decision or a transfer outcome, as alerts tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// The conversation.
    pub conversation_id: String,
    /// Names the decision or outcome: the same for every sighting of it.
    pub key: String,
    /// Decided or failed.
    pub kind: IncidentKind,
    /// The decision's reason (`asked_for_human`, …).
    pub reason: String,
    /// Said for people.
    pub reason_text: String,
    /// The queue transferred to.
    pub queue: String,
    /// The phrase that triggered it, or the start of the utterance.
    pub trigger: Option<String>,
    /// The triggering utterance's score.
    pub score: Option<f64>,
    /// The caller's number.
    pub caller: Option<String>,
    /// Why the transfer failed.
    pub detail: Option<String>,
}

/// Longest trigger quoted in an alert.
const TRIGGER_CHARS: usize = 80;

impl Incident {
    /// The alert a notice calls for: a decision, or a transfer that failed.
    pub fn from_notice(conversation_id: &str, notice: &Notice) -> Option<Incident> {
        let kind = match notice.kind {
            NoticeKind::Decided => IncidentKind::Decided,
            NoticeKind::Failed => IncidentKind::TransferFailed,
            NoticeKind::Connected | NoticeKind::Abandoned => return None,
        };
        let key = notice.key(conversation_id);
        let d = &notice.decision;
        let trigger = d.trigger_phrase.clone().unwrap_or_else(|| d.trigger_text.clone());
        Some(Incident {
            conversation_id: conversation_id.to_string(),
            key,
            kind,
            reason: d.reason.as_str().to_string(),
            reason_text: d.reason.describe().to_string(),
            queue: d.queue.clone(),
            trigger: Some(trigger).filter(|t| !t.trim().is_empty()).map(|t| t.chars().take(TRIGGER_CHARS).collect()),
            score: Some(d.numbers.score),
            caller: notice.caller.clone(),
            detail: notice.detail.clone(),
        })
    }

    /// The SMS text: what happened, why, who called, and how to follow it.
    pub fn sms_text(&self, redact: bool) -> String {
        let what = match self.kind {
            IncidentKind::Decided => format!("transfer to {} decided", self.queue),
            IncidentKind::TransferFailed => format!("transfer to {} FAILED", self.queue),
        };
        let mut text = format!("ivrx: {what} ({}: {})", self.reason, self.reason_text);
        if let Some(d) = self.detail.as_deref().filter(|_| self.kind == IncidentKind::TransferFailed) {
            text.push_str(&format!(", {d}"));
        }
        text.push('.');
        if let Some(t) = &self.trigger {
            let t = if redact { crate::store::redact::redact(t).into_owned() } else { t.clone() };
            text.push_str(&format!(" Trigger: \"{t}\"."));
        }
        if let Some(c) = &self.caller {
            text.push_str(&format!(" Caller {c}."));
        }
        text.push_str(&format!(" Conversation {id}. Follow: ivrx watch {id}", id = self.conversation_id));
        text
    }
}

enum Job {
    Incident(Incident),
    Delivery(MessageEvent),
}

/// The handle workers and the webhook endpoint hold: hands alerts and
/// delivery webhooks to the sending task without waiting. Cheap to clone.
#[derive(Clone, Default)]
pub struct Alerts {
    sms: Option<mpsc::Sender<Job>>,
    /// Texts to callers (a callback's confirmation): the client and where they come from.
    callers: Option<Arc<(TelnyxClient, NotifySettings)>>,
    crm: Option<mpsc::Sender<crm::CrmEvent>>,
    redact: bool,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts").field("sms", &self.sms.is_some()).field("crm", &self.crm.is_some()).finish()
    }
}

/// The sending tasks, until they are started with the conversations they record to.
pub struct Senders {
    sms: Option<AlertSender>,
    crm: Option<crm::CrmSender>,
}

impl Senders {
    /// Starts each configured sender.
    pub fn start(self, calls: Calls) -> Vec<tokio::task::JoinHandle<()>> {
        let sms = self.sms.map(|s| tokio::spawn(s.run(calls.clone())));
        let crm = self.crm.map(|c| tokio::spawn(c.run(calls)));
        sms.into_iter().chain(crm).collect()
    }
}

/// The sending side, until it is started with the conversations it records to.
pub struct AlertSender {
    rx: mpsc::Receiver<Job>,
    client: TelnyxClient,
    settings: NotifySettings,
    redact: bool,
    metrics: Arc<Metrics>,
}

impl Alerts {
    /// Alerts per `settings`: SMS when supervisors are configured, CRM
    /// events when a CRM URL is; SMS go through `client`. The senders run
    /// once [`Senders::start`]ed. With `redact` (`[storage] redact_pii`),
    /// what is texted or posted is redacted as the store keeps it.
    pub fn new(settings: NotifySettings, redact: bool, client: TelnyxClient, metrics: Arc<Metrics>) -> (Self, Senders) {
        let capacity = settings.config.queue_capacity;
        let callers = Some(Arc::new((client.clone(), settings.clone())));
        let mut alerts = Self { redact, metrics: Some(metrics.clone()), callers, ..Self::default() };
        let crm = crm::CrmSender::new(&settings.config.crm, capacity, metrics.clone()).map(|(sender, rx)| {
            alerts.crm = Some(sender);
            rx
        });
        let sms = (!settings.config.supervisors.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(capacity);
            alerts.sms = Some(tx);
            AlertSender { rx, client, settings, redact, metrics }
        });
        (alerts, Senders { sms, crm })
    }

    fn offer(&self, job: Job) {
        let Some(tx) = &self.sms else { return };
        if let Err(e) = tx.try_send(job) {
            let what = match e.into_inner() {
                Job::Incident(i) => i.key,
                Job::Delivery(d) => d.message.id,
            };
            self.dropped("sms", &what);
        }
    }

    fn dropped(&self, channel: &str, what: &str) {
        tracing::warn!(channel, alert = %what, "alert queue full: alert dropped");
        if let Some(m) = &self.metrics {
            m.notification(channel, "dropped");
        }
    }

    /// Queues the alerts and CRM event a conversation's notice calls for.
    pub fn notice(&self, conversation_id: &str, notice: &Notice) {
        if self.sms.is_some() {
            if let Some(incident) = Incident::from_notice(conversation_id, notice) {
                self.offer(Job::Incident(incident));
            }
        }
        if let Some(tx) = &self.crm {
            let event = crm::CrmEvent::from_notice(conversation_id, notice, self.redact);
            if let Err(e) = tx.try_send(event) {
                self.dropped("crm", &e.into_inner().id);
            }
        }
    }

    /// Texts a caller (a callback's confirmation) in the background; what
    /// happens to the SMS is recorded in their conversation as a
    /// `notification`, and the call never waits for it.
    pub fn text_caller(&self, calls: &Calls, text: &CallerText) {
        let (Some(callers), Some(metrics)) = (self.callers.clone(), self.metrics.clone()) else { return };
        let (calls, text) = (calls.clone(), text.clone());
        tokio::spawn(async move {
            let (client, settings) = &*callers;
            let body = MessageCreate {
                from: settings.from.clone(),
                to: text.to.clone(),
                text: text.text.clone(),
                messaging_profile_id: settings.messaging_profile_id.clone(),
                webhook_url: settings.webhook_url.clone(),
                kind: Some("SMS".into()),
                ..Default::default()
            };
            let (status, attempts, detail) = match client.send_message(&body).await {
                Ok(m) => ("sent", 1, Some(format!("message {}", m.id))),
                Err(e) => {
                    tracing::warn!(conversation = %text.conversation_id, error = %e, "SMS to the caller not sent");
                    ("failed", attempts_of(&e), Some(e.to_string()))
                }
            };
            let outcome = Outcome { channel: "sms", key: &text.key, to: &text.to, status, attempts, detail };
            record(&calls, &metrics, &text.conversation_id, outcome);
        });
    }

    /// Queues a delivery webhook of an SMS.
    pub fn delivery(&self, event: MessageEvent) {
        self.offer(Job::Delivery(event));
    }
}

/// An SMS on its way: whom it is about.
struct Sent {
    conversation_id: String,
    key: String,
    to: String,
}

/// Alert keys remembered at most (the oldest are forgotten first).
const KEYS_KEPT: usize = 100_000;

impl AlertSender {
    /// Sends SMS and reads their delivery, recording what happens to each in its conversation.
    async fn run(mut self, calls: Calls) {
        let mut keys: (HashSet<String>, VecDeque<String>) = Default::default();
        let mut recent: HashMap<String, VecDeque<Instant>> = HashMap::new();
        let mut in_flight: HashMap<String, Sent> = HashMap::new();
        let window = Duration::from_secs(self.settings.config.rate_window_secs);
        while let Some(job) = self.rx.recv().await {
            let incident = match job {
                Job::Incident(i) => i,
                Job::Delivery(d) => {
                    self.delivered(&calls, &mut in_flight, d);
                    continue;
                }
            };
            let supervisors: Vec<String> = (self.settings.config.supervisors.iter())
                .filter(|s| s.follows(&incident.queue, &incident.reason))
                .map(|s| s.number.clone())
                .collect();
            for to in supervisors {
                let key = format!("{}:{to}", incident.key);
                if !remember(&mut keys, &key) {
                    self.metrics.notification("sms", "duplicate");
                    continue;
                }
                let now = Instant::now();
                let times = recent.entry(to.clone()).or_default();
                while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
                    times.pop_front();
                }
                let sent = Sent { conversation_id: incident.conversation_id.clone(), key: incident.key.clone(), to };
                if times.len() >= self.settings.config.max_per_supervisor as usize {
                    self.record(&calls, &sent, "rate_limited", 0, Some("rate limit per supervisor reached".into()));
                    continue;
                }
                times.push_back(now);
                let body = MessageCreate {
                    from: self.settings.from.clone(),
                    to: sent.to.clone(),
                    text: incident.sms_text(self.redact),
                    messaging_profile_id: self.settings.messaging_profile_id.clone(),
                    webhook_url: self.settings.webhook_url.clone(),
                    kind: Some("SMS".into()),
                    ..Default::default()
                };
                match self.client.send_message(&body).await {
                    Ok(m) => {
                        self.record(&calls, &sent, "sent", 1, Some(format!("message {}", m.id)));
                        in_flight.insert(m.id, sent);
                    }
                    Err(e) => {
                        let attempts = attempts_of(&e);
                        tracing::warn!(conversation = %sent.conversation_id, to = %sent.to, error = %e, "alert SMS not sent");
                        self.record(&calls, &sent, "failed", attempts, Some(e.to_string()));
                    }
                }
            }
        }
    }

    /// A delivery webhook: a finalized message is delivered or failed for good.
    fn delivered(&self, calls: &Calls, in_flight: &mut HashMap<String, Sent>, d: MessageEvent) {
        if d.kind != MessageEventType::Finalized {
            return;
        }
        let Some(sent) = in_flight.remove(&d.message.id) else { return };
        let status = d.message.status().map(|s| s.as_str().to_string()).unwrap_or_else(|| "unknown".into());
        let failed = d.message.status().is_some_and(|s| s.is_failure());
        let detail = d.message.errors.first().map(|e| format!("{} {}", e.code, e.title)).or(Some(status.clone()));
        if failed {
            tracing::warn!(conversation = %sent.conversation_id, to = %sent.to, status = %status, "alert SMS not delivered");
        }
        self.record(calls, &sent, if failed { "failed" } else { "delivered" }, 1, detail);
    }

    fn record(&self, calls: &Calls, sent: &Sent, status: &str, attempts: u32, detail: Option<String>) {
        let outcome = Outcome { channel: "sms", key: &sent.key, to: &sent.to, status, attempts, detail };
        record(calls, &self.metrics, &sent.conversation_id, outcome);
    }
}

/// What happened to one alert.
struct Outcome<'a> {
    channel: &'static str,
    key: &'a str,
    to: &'a str,
    status: &'a str,
    attempts: u32,
    detail: Option<String>,
}

/// Counts an alert's outcome and records it in its conversation.
fn record(calls: &Calls, metrics: &Metrics, conversation_id: &str, o: Outcome<'_>) {
    metrics.notification(o.channel, o.status);
    let event = DomainEvent::Notification {
        channel: o.channel.into(),
        key: o.key.into(),
        to: o.to.into(),
        status: o.status.into(),
        attempts: o.attempts,
        detail: o.detail,
    };
    calls.deliver(conversation_id, WorkerMsg::Note(event));
}

/// Remembers `key`; false when it was already there.
fn remember((set, order): &mut (HashSet<String>, VecDeque<String>), key: &str) -> bool {
    if !set.insert(key.to_string()) {
        return false;
    }
    order.push_back(key.to_string());
    if order.len() > KEYS_KEPT {
        if let Some(old) = order.pop_front() {
            set.remove(&old);
        }
    }
    true
}

fn attempts_of(e: &crate::telnyx::TelnyxError) -> u32 {
    use crate::telnyx::TelnyxError as E;
    match e {
        E::RateLimited { attempts, .. } | E::Server { attempts, .. } => *attempts,
        E::Timeout { attempts } | E::Connection { attempts, .. } => *attempts,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, PolicySnapshot, Reason};

    fn notice(kind: NoticeKind) -> Notice {
        Notice {
            kind,
            decision: Decision {
                reason: Reason::AskedForHuman,
                queue: "support".into(),
                trigger_index: 2,
                trigger_text: "get me a human my card is 4111 1111 1111 1111".into(),
                trigger_phrase: None,
                tracker: None,
                numbers: PolicySnapshot { score: -0.6, ..Default::default() },
            },
            caller: Some("+15555550100".into()),
            attempt: 2,
            target: Some("+18005550202".into()),
            detail: (kind == NoticeKind::Failed).then(|| "no agent answered".into()),
            at: chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
        }
    }

    #[test]
    fn a_decision_and_a_failed_transfer_are_incidents_with_stable_keys() {
        let i = Incident::from_notice("c1", &notice(NoticeKind::Decided)).unwrap();
        assert_eq!(
            (i.key.as_str(), i.kind, i.reason.as_str()),
            ("c1:decided:1700000000123", IncidentKind::Decided, "asked_for_human")
        );
        assert_eq!(Incident::from_notice("c1", &notice(NoticeKind::Decided)).unwrap(), i, "same decision, same key");
        let f = Incident::from_notice("c1", &notice(NoticeKind::Failed)).unwrap();
        assert_eq!((f.key.as_str(), f.kind), ("c1:failed:1700000000123", IncidentKind::TransferFailed));
        assert!(Incident::from_notice("c1", &notice(NoticeKind::Connected)).is_none());
        assert!(Incident::from_notice("c1", &notice(NoticeKind::Abandoned)).is_none());
        let text = f.sms_text(true);
        assert!(text.starts_with("ivrx: transfer to support FAILED (asked_for_human"), "{text}");
        assert!(text.contains("no agent answered") && text.ends_with("Follow: ivrx watch c1"), "{text}");
    }

    #[test]
    fn the_sms_names_reason_trigger_caller_and_the_watch_command() {
        let i = Incident::from_notice("conv-9", &notice(NoticeKind::Decided)).unwrap();
        let text = i.sms_text(true);
        assert!(
            text.contains("transfer to support decided (asked_for_human: the caller asked for a person)"),
            "{text}"
        );
        assert!(text.contains("Trigger: \"get me a human my card is [card]\""), "redacted: {text}");
        assert!(text.contains("Caller +15555550100.") && text.contains("Conversation conv-9."), "{text}");
        assert!(text.ends_with("Follow: ivrx watch conv-9"), "{text}");
        assert!(i.sms_text(false).contains("4111 1111 1111 1111"));
        assert!(text.is_ascii(), "GSM-friendly: {text}");
    }

    #[test]
    fn keys_are_remembered_once() {
        let mut keys = Default::default();
        assert!(remember(&mut keys, "a"));
        assert!(!remember(&mut keys, "a"));
        assert!(remember(&mut keys, "b"));
    }
}
