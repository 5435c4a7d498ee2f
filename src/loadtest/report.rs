//! The report of a load run (`ivrx dial --sandbox --load --json` prints it).

use serde::{Deserialize, Serialize};

use crate::eval::{Expectation, Trigger};
use crate::http::latency::LatencySummary;
use crate::sandbox::UrlDeliveries;
use crate::store::CallAudit;

/// Everything a load run measured and checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// True when every call completed, nothing was lost, nothing was
    /// transferred twice, no agent was left on the line, no duplicate
    /// delivery was refused and every call was transferred as its script expects.
    pub ok: bool,
    /// Calls.
    pub calls: CallCounts,
    /// Calls kept in flight at once (the target).
    pub concurrency: usize,
    /// Most calls in flight at once (placed, not yet hung up).
    pub peak_in_flight: usize,
    /// Seconds from the first call placed to the last webhook delivered.
    pub wall_secs: f64,
    /// Real seconds the sandbox clock stood still because webhooks waited
    /// too long for the server's answer (0 on a server that keeps up).
    #[serde(default)]
    pub clock_held_secs: f64,
    /// Webhook deliveries, as the sandbox (the sender) saw them.
    pub webhooks: WebhookCounts,
    /// Webhook acknowledgement latency at the sender: request sent → 2xx answer read.
    pub ack_latency: LatencySummary,
    /// The server's own view: request received → acknowledgement written.
    pub server_ack_latency: Option<LatencySummary>,
    /// Final transcript (or key press) webhook received → transfer command sent, from the server.
    pub decision_latency: Option<LatencySummary>,
    /// Transfers expected by the scripts and issued by the server.
    pub transfers: TransferTally,
    /// Webhooks acknowledged 2xx that the store does not hold.
    pub lost_events: u64,
    /// Calls with more than one transfer decision or connected transfer in
    /// the store, or bridged with more than one agent leg at the carrier.
    pub double_transfers: u64,
    /// Agent legs that answered and never ended in the store.
    #[serde(default)]
    pub orphaned_agent_legs: u64,
    /// Agent legs the carrier still had up after their caller's leg ended
    /// (answered or ringing), once the run settled.
    #[serde(default)]
    pub agent_legs_left_up: u64,
    /// Repeated deliveries of an acknowledged webhook that the server
    /// refused (non-2xx), as the carrier saw them.
    #[serde(default)]
    pub refused_duplicates: u64,
    /// Commands the carrier received again with a `command_id` it had
    /// executed (not executed twice): what the server sent more than once,
    /// e.g. an instance taking over a call resending the unanswered commands.
    #[serde(default)]
    pub repeated_commands: u64,
    /// Server memory, sampled during the run.
    pub memory: MemoryReport,
    /// The scripts played.
    pub mix: Vec<MixLine>,
}

impl LoadReport {
    /// Sets [`ok`](Self::ok) from the counts.
    pub fn judge(&mut self) {
        let c = &self.calls;
        let t = &self.transfers;
        self.ok = c.planned > 0
            && c.completed == c.planned
            && self.lost_events == 0
            && self.double_transfers == 0
            && self.orphaned_agent_legs == 0
            && self.agent_legs_left_up == 0
            && self.refused_duplicates == 0
            && t.mismatched == 0
            && t.issued_where_expected == t.expected;
    }
}

/// What happened to the calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCounts {
    /// Calls the run was asked for.
    pub planned: usize,
    /// Calls the sandbox accepted.
    pub placed: usize,
    /// Calls that hung up in the sandbox and ended in the server's store.
    pub completed: usize,
    /// Calls still up when the wait gave up.
    pub timed_out: usize,
    /// Calls the sandbox did not accept.
    pub failed_to_place: usize,
    /// Calls that hung up but whose conversation the store does not show as ended.
    pub not_ended_in_store: usize,
}

/// Webhook delivery counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookCounts {
    /// Events acknowledged 2xx.
    pub delivered: u64,
    /// `delivered` per second of wall time.
    pub per_sec: f64,
    /// Delivery attempts.
    pub attempts: u64,
    /// Attempts not acknowledged (non-2xx or no answer; retried).
    pub failed_attempts: u64,
    /// Events given up on after every attempt.
    pub gave_up: u64,
    /// Attempts per webhook URL (several when the sandbox delivers to
    /// several instances).
    #[serde(default)]
    pub by_url: Vec<UrlDeliveries>,
}

/// Server memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Resident memory before the run, KiB.
    pub baseline_rss_kib: u64,
    /// The process's peak resident memory at the end of the run, KiB.
    pub peak_rss_kib: u64,
    /// Most calls in flight (placed, not hung up) in any sample.
    pub peak_active_calls: usize,
    /// Resident memory in that sample, KiB.
    pub rss_at_peak_active_kib: u64,
    /// (RSS at the peak of calls in flight − baseline) / calls in flight, KiB:
    /// what holding one more concurrent call costs, including the ended
    /// conversations the server keeps for late webhooks.
    pub per_active_call_kib: f64,
    /// Most conversations the server held in memory in any sample (in
    /// progress, or ended and waiting for late webhooks).
    pub peak_server_conversations: usize,
    /// Samples taken.
    pub samples: usize,
}

impl MemoryReport {
    /// Takes one sample: calls in flight, the server's conversations in
    /// memory, its RSS and peak RSS.
    pub fn sample(&mut self, in_flight: usize, conversations: usize, rss_kib: u64, peak_rss_kib: u64) {
        self.samples += 1;
        self.peak_rss_kib = self.peak_rss_kib.max(peak_rss_kib);
        self.peak_server_conversations = self.peak_server_conversations.max(conversations);
        if in_flight > self.peak_active_calls
            || (in_flight == self.peak_active_calls && rss_kib > self.rss_at_peak_active_kib)
        {
            self.peak_active_calls = in_flight;
            self.rss_at_peak_active_kib = rss_kib;
        }
        if self.peak_active_calls > 0 {
            let grown = self.rss_at_peak_active_kib.saturating_sub(self.baseline_rss_kib);
            self.per_active_call_kib = grown as f64 / self.peak_active_calls as f64;
        }
    }
}

/// One script of the mix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MixLine {
    /// Its name.
    pub script: String,
    /// Its weight.
    pub weight: u32,
    /// Calls that played it.
    pub calls: usize,
    /// What its `# expect:` says (`no transfer`, `support at 2`, …), if anything.
    pub expect: Option<String>,
}

/// Transfers expected and issued.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferTally {
    /// Calls whose script expects a transfer.
    pub expected: usize,
    /// Calls with a transfer decision (and its command) in the store.
    pub issued: usize,
    /// Of the calls expected to transfer, those that did.
    pub issued_where_expected: usize,
    /// Calls whose script says nothing about transfers.
    pub unknown_expectation: usize,
    /// Calls that did not go as their script expects (queue, trigger, or transfer at all).
    pub mismatched: usize,
    /// A few of those, to look into.
    pub mismatch_examples: Vec<Mismatch>,
}

/// A call that did not go as expected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The call.
    pub call_control_id: String,
    /// Its conversation.
    pub conversation_id: Option<String>,
    /// The script.
    pub script: String,
    /// What it expects.
    pub expected: String,
    /// What happened.
    pub actual: String,
}

/// Most mismatches listed in the report.
const MAX_EXAMPLES: usize = 5;

/// One finished call, as the load driver saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome<'a> {
    /// The script it played.
    pub script: &'a str,
    /// What the script expects.
    pub expect: Option<&'a Expectation>,
    /// What the store holds.
    pub audit: &'a CallAudit,
}

fn describe(a: &CallAudit) -> String {
    match (&a.queue, a.decisions) {
        (_, 0) | (None, _) => "no transfer".into(),
        (Some(q), n) => {
            let at = a.trigger_index.map(|i| format!("at {i}")).unwrap_or_else(|| "by dtmf".into());
            if n > 1 {
                format!("{q} {at} ({n} decisions)")
            } else {
                format!("{q} {at}")
            }
        }
    }
}

/// True when the stored outcome is what the script expects.
pub fn as_expected(expect: &Expectation, a: &CallAudit) -> bool {
    match expect {
        Expectation::NoTransfer => a.decisions == 0,
        Expectation::Transfer { queue, at } => {
            let trigger_ok = match at {
                Trigger::Utterance { index } => a.trigger_index == Some(*index),
                Trigger::Dtmf => a.trigger_index.is_none(),
            };
            a.decisions == 1 && a.queue.as_deref() == Some(queue.as_str()) && trigger_ok
        }
    }
}

impl TransferTally {
    /// Counts one call.
    pub fn add(&mut self, call: CallOutcome<'_>) {
        let issued = call.audit.decisions > 0;
        self.issued += usize::from(issued);
        let Some(expect) = call.expect else {
            self.unknown_expectation += 1;
            return;
        };
        if matches!(expect, Expectation::Transfer { .. }) {
            self.expected += 1;
            self.issued_where_expected += usize::from(issued);
        }
        if !as_expected(expect, call.audit) {
            self.mismatched += 1;
            if self.mismatch_examples.len() < MAX_EXAMPLES {
                self.mismatch_examples.push(Mismatch {
                    call_control_id: call.audit.call_control_id.clone(),
                    conversation_id: call.audit.conversation_id.clone(),
                    script: call.script.to_string(),
                    expected: expect.to_string(),
                    actual: describe(call.audit),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(decisions: u32, queue: Option<&str>, trigger: Option<u32>) -> CallAudit {
        CallAudit {
            call_control_id: "v3:a".into(),
            conversation_id: Some("c".into()),
            ended: true,
            decisions,
            queue: queue.map(str::to_string),
            trigger_index: trigger,
            ..CallAudit::default()
        }
    }

    #[test]
    fn tally_compares_with_the_expectation() {
        let support_at_2 = Expectation::parse("transfer support at 2").unwrap();
        let dtmf = Expectation::parse("transfer support by dtmf").unwrap();
        let none = Expectation::NoTransfer;
        let mut t = TransferTally::default();
        let calls = [
            (Some(&support_at_2), audit(1, Some("support"), Some(2))),
            (Some(&support_at_2), audit(1, Some("support"), Some(3))),
            (Some(&dtmf), audit(1, Some("support"), None)),
            (Some(&none), audit(0, None, None)),
            (Some(&none), audit(2, Some("sales"), Some(1))),
            (None, audit(1, Some("sales"), Some(1))),
        ];
        for (expect, a) in &calls {
            t.add(CallOutcome { script: "s", expect: *expect, audit: a });
        }
        assert_eq!((t.expected, t.issued, t.issued_where_expected), (3, 5, 3));
        assert_eq!((t.unknown_expectation, t.mismatched), (1, 2));
        assert_eq!(t.mismatch_examples[0].actual, "support at 3");
        assert_eq!(t.mismatch_examples[1].actual, "sales at 1 (2 decisions)");
        assert_eq!(t.mismatch_examples[1].expected, "no transfer");
    }

    #[test]
    fn memory_per_call_uses_the_busiest_sample() {
        let mut m = MemoryReport { baseline_rss_kib: 10_000, ..MemoryReport::default() };
        m.sample(0, 0, 10_000, 10_000);
        m.sample(100, 150, 30_000, 30_000);
        m.sample(50, 300, 40_000, 40_000);
        assert_eq!((m.peak_active_calls, m.rss_at_peak_active_kib, m.peak_rss_kib), (100, 30_000, 40_000));
        assert_eq!(m.peak_server_conversations, 300);
        assert_eq!(m.per_active_call_kib, 200.0);
    }

    #[test]
    fn judged_ok_only_when_everything_holds() {
        let mut r = LoadReport::default();
        r.judge();
        assert!(!r.ok, "no calls is not a pass");
        r.calls = CallCounts { planned: 2, placed: 2, completed: 2, ..CallCounts::default() };
        r.transfers = TransferTally { expected: 1, issued: 1, issued_where_expected: 1, ..TransferTally::default() };
        r.judge();
        assert!(r.ok);
        for spoil in [
            |r: &mut LoadReport| r.lost_events = 1,
            |r: &mut LoadReport| r.double_transfers = 1,
            |r: &mut LoadReport| r.orphaned_agent_legs = 1,
            |r: &mut LoadReport| r.agent_legs_left_up = 1,
            |r: &mut LoadReport| r.refused_duplicates = 1,
        ] {
            let mut bad = r.clone();
            spoil(&mut bad);
            bad.judge();
            assert!(!bad.ok, "{bad:?}");
        }
    }
}
