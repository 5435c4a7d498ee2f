//! `--html FILE`: one self-contained HTML file (inline CSS and SVG, no
//! scripts, no external assets) with the chart and the tables.

use std::fmt::Write as _;

use super::{clip, pct, score, secs};
use crate::analyze::replay::ReplayChange;
use crate::analyze::Report;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str =
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;\
color:#222;padding:0 1rem}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}th,td{padding:.25rem .6rem;border-bottom:1px solid #eee;\
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f5f5}\
.note{color:#555;font-size:.9rem}figure{margin:0}svg{max-width:100%;height:auto}";

struct Html(String);

impl Html {
    fn h2(&mut self, title: &str) {
        let _ = write!(self.0, "<h2>{}</h2>", escape(title));
    }

    fn note(&mut self, text: &str) {
        let _ = write!(self.0, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table; cells starting with a digit, sign or `-` are right-aligned.
    fn table(&mut self, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
        self.0.push_str("<table><thead><tr>");
        for h in header {
            let _ = write!(self.0, "<th>{}</th>", escape(h));
        }
        self.0.push_str("</tr></thead><tbody>");
        for row in rows {
            self.0.push_str("<tr>");
            for cell in row {
                let numeric = cell.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
                let class = if numeric { " class=\"n\"" } else { "" };
                let _ = write!(self.0, "<td{class}>{}</td>", escape(&cell));
            }
            self.0.push_str("</tr>");
        }
        self.0.push_str("</tbody></table>");
    }
}

/// Renders the report; `chart_svg` is embedded as is (an `<svg>` element).
pub fn render(report: &Report, chart_svg: &str, top: usize) -> String {
    let a = &report.aggregates;
    let s = &a.summary;
    let ttt = &a.time_to_transfer;
    let mut h = Html(String::with_capacity(64 * 1024));
    let _ = write!(
        h.0,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>ivrx analyze</title><style>{STYLE}</style></head><body><h1>ivrx analyze: {} calls</h1>",
        s.calls
    );
    h.h2("Summary");
    h.table(
        &["", "value"],
        [
            ("calls", s.calls.to_string()),
            ("transfer decided", format!("{} ({})", s.decided, pct(s.decision_rate))),
            ("transferred (agent connected)", format!("{} ({})", s.transferred, pct(s.transfer_rate))),
            ("mean duration", secs(s.mean_duration_ms)),
            ("mean caller sentiment", score(s.mean_sentiment)),
            (
                "time to decision: median / p90",
                format!("{} / {}", secs(ttt.decision.median_ms), secs(ttt.decision.p90_ms)),
            ),
            (
                "time to agent: median / p90",
                format!("{} / {}", secs(ttt.connected.median_ms), secs(ttt.connected.p90_ms)),
            ),
        ]
        .into_iter()
        .map(|(k, v)| vec![k.to_string(), v]),
    );
    h.h2("Charts");
    let svg = chart_svg.trim_start();
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| rest.split_once("?>").map_or(rest, |(_, after)| after));
    let _ = write!(h.0, "<figure>{svg}</figure>");
    if !a.reasons.is_empty() {
        h.h2("Transfer decisions by reason");
        h.table(
            &["reason", "decided", "share", "connected", "median time to decision"],
            a.reasons.iter().map(|r| {
                vec![
                    r.reason.clone(),
                    r.decided.to_string(),
                    pct(Some(r.share)),
                    r.transferred.to_string(),
                    secs(r.median_decision_ms),
                ]
            }),
        );
    }
    if !ttt.decision_histogram.is_empty() {
        h.h2("Time to transfer");
        h.table(
            &["seconds", "decisions", "agent connected"],
            ttt.decision_histogram
                .iter()
                .zip(&ttt.connected_histogram)
                .map(|(d, c)| vec![format!("{}-{}", d.from_s, d.to_s), d.count.to_string(), c.count.to_string()]),
        );
    }
    h.h2("Calls by hour of day (UTC)");
    h.table(
        &["hour", "calls", "transferred"],
        a.hours
            .iter()
            .filter(|x| x.calls > 0)
            .map(|x| vec![format!("{:02}", x.hour), x.calls.to_string(), x.transferred.to_string()]),
    );
    if !a.trackers.is_empty() {
        h.h2("Trackers heard from callers");
        h.table(
            &["tracker", "calls", "share of calls", "utterances"],
            a.trackers.iter().take(top).map(|t| {
                vec![t.tracker.clone(), t.calls.to_string(), pct(Some(t.call_share)), t.utterances.to_string()]
            }),
        );
    }
    let t = &a.topics;
    h.h2("Topics near the decline");
    h.note(&format!(
        "{} calls had a decline ({} at the policy's trigger, {} at the steepest drop of at least {}). Window: the decline \
         and the {} caller utterance(s) before it ({} utterances), compared with the other caller utterances of those calls \
         ({}). Statistic: {}. Terms seen in fewer than {} window utterances are not listed; * marks z ≥ 1.96.",
        t.calls_with_decline,
        t.declines_at_trigger,
        t.declines_at_steepest_drop,
        t.min_drop,
        t.window.saturating_sub(1),
        t.decline_utterances,
        t.other_utterances,
        t.method,
        t.min_count
    ));
    h.table(
        &["term", "in decline", "elsewhere", "decline %", "elsewhere %", "log-odds", "z"],
        t.terms.iter().take(top).map(|x| {
            vec![
                x.term.clone(),
                x.in_decline.to_string(),
                x.elsewhere.to_string(),
                pct(Some(x.decline_share)),
                pct(Some(x.elsewhere_share)),
                format!("{:.2}", x.log_odds),
                format!("{:.2}{}", x.z, if x.significant { " *" } else { "" }),
            ]
        }),
    );
    if !a.recent_calls.is_empty() {
        h.h2(&format!("Most recent calls ({} of {})", a.recent_calls.len(), s.calls));
        h.table(
            &[
                "conversation",
                "started (UTC)",
                "duration",
                "min",
                "mean",
                "final",
                "reason",
                "queue",
                "agent",
                "decision",
                "trigger",
            ],
            a.recent_calls.iter().map(|m| {
                vec![
                    m.conversation_id.clone(),
                    m.started_at.clone(),
                    secs(m.duration_ms.map(|v| v as f64)),
                    score(m.sentiment_min),
                    score(m.sentiment_mean),
                    score(m.sentiment_final),
                    m.reason.clone().unwrap_or_default(),
                    m.queue.clone().unwrap_or_default(),
                    if m.transferred { "yes".into() } else { m.transfer_status.clone().unwrap_or_default() },
                    secs(m.decision_ms.map(|v| v as f64)),
                    m.trigger_phrase
                        .clone()
                        .or_else(|| m.trigger_text.as_deref().map(|t| clip(t, 60)))
                        .unwrap_or_default(),
                ]
            }),
        );
    }
    if let Some(r) = &report.replay {
        h.h2("Policy replay");
        for n in &r.notes {
            h.note(n);
        }
        let count = |k: &str| r.verdicts.get(k).copied().unwrap_or(0).to_string();
        h.table(
            &["", "value"],
            [
                ("decisions before / after", format!("{} / {}", r.decided_before, r.decided_after)),
                ("gained", count("gained")),
                ("lost", count("lost")),
                ("changed", count("changed")),
                ("kept (keypad, menu or manual)", count("kept")),
                (
                    "median before / after",
                    format!(
                        "{} / {}",
                        secs(r.time_to_decision_before.median_ms),
                        secs(r.time_to_decision_after.median_ms)
                    ),
                ),
                (
                    "p90 before / after",
                    format!("{} / {}", secs(r.time_to_decision_before.p90_ms), secs(r.time_to_decision_after.p90_ms)),
                ),
            ]
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), v]),
        );
        h.table(
            &["reason", "before", "after"],
            r.reasons.iter().map(|x| vec![x.reason.clone(), x.before.to_string(), x.after.to_string()]),
        );
        for (title, list) in [("Gained", &r.gained), ("Lost", &r.lost), ("Changed", &r.changed)] {
            if !list.is_empty() {
                h.h2(&format!("Replay: {title}"));
                h.table(
                    &["conversation", "before", "after", "after at", "trigger"],
                    list.iter().take(top).map(change_row),
                );
            }
        }
    }
    h.0.push_str("</body></html>\n");
    h.0
}

fn change_row(c: &ReplayChange) -> Vec<String> {
    vec![
        c.conversation_id.clone(),
        c.before_reason.clone().unwrap_or_default(),
        c.after_reason.clone().unwrap_or_default(),
        secs(c.after_ms.map(|v| v as f64)),
        c.after_trigger_text.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<b> & \"x\" 'y'"), "&lt;b&gt; &amp; &quot;x&quot; &#39;y&#39;");
    }
}
