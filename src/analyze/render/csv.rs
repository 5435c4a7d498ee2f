//! `--format csv`: one row per call, streamed, RFC 4180 quoting, for
//! spreadsheets and pandas (`pd.read_csv(path)`).
//!
//! Columns, in this order (stable; new columns are only ever appended):
//!
//! | column | meaning |
//! |---|---|
//! | `conversation_id` | the conversation |
//! | `started_at` | RFC 3339 start (UTC) |
//! | `hour` | hour of day it started (UTC, 0-23) |
//! | `direction` | `incoming`, `outgoing`, `import`, `synthetic` |
//! | `status` | `active` or `ended` |
//! | `end_reason` | why the call ended |
//! | `duration_ms` | call length |
//! | `utterances` | utterances of every speaker |
//! | `caller_utterances` | the caller's utterances |
//! | `sentiment_min`, `sentiment_mean`, `sentiment_final` | caller scores (-1..1) |
//! | `sentiment_slope_per_min` | least-squares slope of caller scores against time, per minute |
//! | `decided` | `true` when a transfer was decided |
//! | `decision_source` | `policy`, `menu` or `manual` |
//! | `reason` | why (`asked_for_human`, `rapid_decline`, …) |
//! | `queue` | the queue decided |
//! | `transferred` | `true` when an agent was connected |
//! | `transfer_status` | last transfer state |
//! | `decision_ms` | call start to the decision |
//! | `connected_ms` | call start to the agent connected |
//! | `trigger_index` | caller utterance (1-based) that triggered the decision |
//! | `trigger_phrase` | the tracker phrase that mattered |
//! | `trigger_text` | what the caller said there |
//! | `trackers` | trackers heard from the caller, `;`-separated |
//! | `decline_index` | caller utterance of the decline (see the topics documentation) |
//! | `decline_kind` | `trigger` or `steepest_drop` |
//!
//! With `--replay-policy`, five more: `replay_verdict` (`kept`, `same`,
//! `changed`, `gained`, `lost`, `neither`), `replay_reason`, `replay_queue`,
//! `replay_trigger_index`, `replay_decision_ms`.
//!
//! Empty fields are missing values; booleans are `true`/`false`.

use std::borrow::Cow;
use std::io::{self, Write};

use crate::analyze::CallMetrics;

/// The column names, without the replay columns.
pub const COLUMNS: &[&str] = &[
    "conversation_id",
    "started_at",
    "hour",
    "direction",
    "status",
    "end_reason",
    "duration_ms",
    "utterances",
    "caller_utterances",
    "sentiment_min",
    "sentiment_mean",
    "sentiment_final",
    "sentiment_slope_per_min",
    "decided",
    "decision_source",
    "reason",
    "queue",
    "transferred",
    "transfer_status",
    "decision_ms",
    "connected_ms",
    "trigger_index",
    "trigger_phrase",
    "trigger_text",
    "trackers",
    "decline_index",
    "decline_kind",
];

/// The columns added by `--replay-policy`.
pub const REPLAY_COLUMNS: &[&str] =
    &["replay_verdict", "replay_reason", "replay_queue", "replay_trigger_index", "replay_decision_ms"];

/// Quotes a field when it holds a comma, a quote, a line break, or leading
/// or trailing spaces; quotes inside are doubled.
pub fn escape(field: &str) -> Cow<'_, str> {
    let needs = field.contains([',', '"', '\n', '\r'])
        || field.starts_with(char::is_whitespace)
        || field.ends_with(char::is_whitespace);
    if needs {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Streams rows to a writer.
pub struct CsvWriter<W: Write> {
    out: W,
    replay: bool,
    line: String,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header (with the replay columns when `replay`).
    pub fn new(mut out: W, replay: bool) -> io::Result<Self> {
        let mut header = COLUMNS.join(",");
        if replay {
            header.push(',');
            header.push_str(&REPLAY_COLUMNS.join(","));
        }
        writeln!(out, "{header}")?;
        Ok(Self { out, replay, line: String::new() })
    }

    /// Writes one call.
    pub fn row(&mut self, m: &CallMetrics) -> io::Result<()> {
        let mut fields: Vec<String> = vec![
            m.conversation_id.clone(),
            m.started_at.clone(),
            opt(&m.hour),
            opt(&m.direction),
            m.status.clone(),
            opt(&m.end_reason),
            opt(&m.duration_ms),
            m.utterances.to_string(),
            m.caller_utterances.to_string(),
            opt(&m.sentiment_min),
            opt(&m.sentiment_mean),
            opt(&m.sentiment_final),
            opt(&m.sentiment_slope_per_min),
            m.decided.to_string(),
            opt(&m.decision_source),
            opt(&m.reason),
            opt(&m.queue),
            m.transferred.to_string(),
            opt(&m.transfer_status),
            opt(&m.decision_ms),
            opt(&m.connected_ms),
            opt(&m.trigger_index),
            opt(&m.trigger_phrase),
            opt(&m.trigger_text),
            m.trackers.join(";"),
            opt(&m.decline_index),
            opt(&m.decline_kind),
        ];
        if self.replay {
            let r = m.replay.as_ref();
            fields.extend([
                r.map(|r| r.verdict.as_str().to_string()).unwrap_or_default(),
                r.and_then(|r| r.reason.clone()).unwrap_or_default(),
                r.and_then(|r| r.queue.clone()).unwrap_or_default(),
                opt(&r.and_then(|r| r.trigger_index)),
                opt(&r.and_then(|r| r.decision_ms)),
            ]);
        }
        self.line.clear();
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            self.line.push_str(&escape(f));
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::per_call::metrics_of;
    use crate::store::{Conversation, ConversationStatus, StoredDecision};
    use chrono::TimeZone;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(escape("plain text"), "plain text");
        assert_eq!(escape("a,b"), "\"a,b\"");
        assert_eq!(escape("say \"agent\""), "\"say \"\"agent\"\"\"");
        assert_eq!(escape("two\nlines"), "\"two\nlines\"");
        assert_eq!(escape("cr\r"), "\"cr\r\"");
        assert_eq!(escape(" padded"), "\" padded\"");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn one_row_per_call_with_a_stable_header() {
        let call = Conversation {
            id: "c,1".into(),
            started_at: Some(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()),
            status: ConversationStatus::Ended,
            decision: Some(StoredDecision {
                reason: crate::policy::Reason::AskedForHuman,
                source: None,
                queue: None,
                trigger_index: None,
                trigger_text: Some("i said \"agent\"".into()),
                trigger_phrase: None,
                decision_ms: None,
            }),
            ..Conversation::default()
        };
        let mut w = CsvWriter::new(Vec::new(), false).unwrap();
        w.row(&metrics_of(&call)).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("conversation_id,started_at,hour,"));
        assert_eq!(lines[0].split(',').count(), COLUMNS.len());
        assert!(lines[1].starts_with("\"c,1\",2026-03-01T09:00:00+00:00,9,,ended,"), "{}", lines[1]);
        assert!(lines[1].contains(",true,,asked_for_human,,false,"), "{}", lines[1]);
        assert!(lines[1].contains("\"i said \"\"agent\"\"\""));
        let mut w = CsvWriter::new(Vec::new(), true).unwrap();
        w.row(&metrics_of(&call)).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert!(text.lines().next().unwrap().ends_with(",replay_decision_ms"));
        assert!(text.lines().nth(1).unwrap().ends_with(",,,,,"));
    }
}
