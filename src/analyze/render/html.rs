//! `--html FILE`: one self-contained HTML file (inline CSS and SVG, no
//! scripts, no external assets) with the chart and the tables, in the
//! live board's style.

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

/// The look shared with the live board.
pub const STYLE: &str = include_str!("../../web/style.css");

/// How a column's cells are set.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Col {
    /// Words, wrapping as needed.
    Text,
    /// A number: right-aligned, one line.
    Num,
    /// An identifier: monospace, one line.
    Id,
    /// A date and time: one line.
    Time,
    /// Longer text, given room to wrap at words.
    Wide,
}

impl Col {
    fn class(self) -> &'static str {
        match self {
            Col::Text => "",
            Col::Num => " class=\"n\"",
            Col::Id => " class=\"id\"",
            Col::Time => " class=\"t\"",
            Col::Wide => " class=\"wide\"",
        }
    }
}

struct Html(String);

impl Html {
    fn h2(&mut self, title: &str) {
        let _ = write!(self.0, "<h2>{}</h2>", escape(title));
    }

    fn note(&mut self, text: &str) {
        let _ = write!(self.0, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table that scrolls sideways when wider than the page; with no rows,
    /// `empty` is said instead.
    fn table(&mut self, columns: &[(&str, Col)], rows: impl IntoIterator<Item = Vec<String>>, empty: &str) {
        let mut rows = rows.into_iter().peekable();
        if rows.peek().is_none() {
            let _ = write!(self.0, "<p class=\"empty\">{}</p>", escape(empty));
            return;
        }
        self.0.push_str("<div class=\"scroll\" tabindex=\"0\"><table><thead><tr>");
        for (h, _) in columns {
            let _ = write!(self.0, "<th scope=\"col\">{}</th>", escape(h));
        }
        self.0.push_str("</tr></thead><tbody>");
        for row in rows {
            self.0.push_str("<tr>");
            for (cell, (_, col)) in row.iter().zip(columns) {
                let _ = write!(self.0, "<td{}>{}</td>", col.class(), escape(cell));
            }
            self.0.push_str("</tr>");
        }
        self.0.push_str("</tbody></table></div>");
    }

    /// A two-column table of named values.
    fn pairs(&mut self, pairs: impl IntoIterator<Item = (&'static str, String)>) {
        let rows = pairs.into_iter().map(|(k, v)| vec![k.to_string(), v]);
        self.table(&[("", Col::Text), ("value", Col::Num)], rows, "nothing to show");
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in UTC (as given when it is not one).
pub fn utc_seconds(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| t.to_string())
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
    h.pairs([
        ("calls", s.calls.to_string()),
        ("transfer decided", format!("{} ({})", s.decided, pct(s.decision_rate))),
        ("transferred (agent connected)", format!("{} ({})", s.transferred, pct(s.transfer_rate))),
        ("mean duration", secs(s.mean_duration_ms)),
        ("mean caller sentiment", score(s.mean_sentiment)),
        ("time to decision: median / p90", format!("{} / {}", secs(ttt.decision.median_ms), secs(ttt.decision.p90_ms))),
        ("time to agent: median / p90", format!("{} / {}", secs(ttt.connected.median_ms), secs(ttt.connected.p90_ms))),
    ]);
    h.h2("Charts");
    let svg = chart_svg.trim_start();
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| rest.split_once("?>").map_or(rest, |(_, after)| after));
    let _ = write!(h.0, "<figure>{svg}</figure>");
    if !a.reasons.is_empty() {
        h.h2("Transfer decisions by reason");
        h.table(
            &[
                ("reason", Col::Text),
                ("decided", Col::Num),
                ("share", Col::Num),
                ("connected", Col::Num),
                ("median time to decision", Col::Num),
            ],
            a.reasons.iter().map(|r| {
                vec![
                    r.reason.clone(),
                    r.decided.to_string(),
                    pct(Some(r.share)),
                    r.transferred.to_string(),
                    secs(r.median_decision_ms),
                ]
            }),
            "no transfer was decided",
        );
    }
    if !ttt.decision_histogram.is_empty() {
        h.h2("Time to transfer");
        h.table(
            &[("seconds", Col::Num), ("decisions", Col::Num), ("agent connected", Col::Num)],
            ttt.decision_histogram
                .iter()
                .zip(&ttt.connected_histogram)
                .map(|(d, c)| vec![format!("{}-{}", d.from_s, d.to_s), d.count.to_string(), c.count.to_string()]),
            "no transfer was decided",
        );
    }
    h.h2("Calls by hour of day (UTC)");
    h.table(
        &[("hour", Col::Num), ("calls", Col::Num), ("transferred", Col::Num)],
        a.hours
            .iter()
            .filter(|x| x.calls > 0)
            .map(|x| vec![format!("{:02}", x.hour), x.calls.to_string(), x.transferred.to_string()]),
        "no calls",
    );
    if !a.trackers.is_empty() {
        h.h2("Trackers heard from callers");
        h.table(
            &[("tracker", Col::Text), ("calls", Col::Num), ("share of calls", Col::Num), ("utterances", Col::Num)],
            a.trackers.iter().take(top).map(|t| {
                vec![t.tracker.clone(), t.calls.to_string(), pct(Some(t.call_share)), t.utterances.to_string()]
            }),
            "no tracker was heard",
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
        &[
            ("term", Col::Text),
            ("in decline", Col::Num),
            ("elsewhere", Col::Num),
            ("decline %", Col::Num),
            ("elsewhere %", Col::Num),
            ("log-odds", Col::Num),
            ("z", Col::Num),
        ],
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
        "No term is over-represented near the decline.",
    );
    if !a.recent_calls.is_empty() {
        h.h2(&format!("Most recent calls ({} of {})", a.recent_calls.len(), s.calls));
        h.table(
            &[
                ("conversation", Col::Id),
                ("started (UTC)", Col::Time),
                ("duration", Col::Num),
                ("min", Col::Num),
                ("mean", Col::Num),
                ("final", Col::Num),
                ("reason", Col::Text),
                ("queue", Col::Text),
                ("agent", Col::Text),
                ("decision", Col::Num),
                ("trigger", Col::Wide),
            ],
            a.recent_calls.iter().map(|m| {
                vec![
                    m.conversation_id.clone(),
                    utc_seconds(&m.started_at),
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
            "no calls",
        );
    }
    if let Some(r) = &report.replay {
        h.h2("Policy replay");
        for n in &r.notes {
            h.note(n);
        }
        let count = |k: &str| r.verdicts.get(k).copied().unwrap_or(0).to_string();
        h.pairs([
            ("decisions before / after", format!("{} / {}", r.decided_before, r.decided_after)),
            ("gained", count("gained")),
            ("lost", count("lost")),
            ("changed", count("changed")),
            ("kept (keypad, menu or manual)", count("kept")),
            (
                "median before / after",
                format!("{} / {}", secs(r.time_to_decision_before.median_ms), secs(r.time_to_decision_after.median_ms)),
            ),
            (
                "p90 before / after",
                format!("{} / {}", secs(r.time_to_decision_before.p90_ms), secs(r.time_to_decision_after.p90_ms)),
            ),
        ]);
        h.table(
            &[("reason", Col::Text), ("before", Col::Num), ("after", Col::Num)],
            r.reasons.iter().map(|x| vec![x.reason.clone(), x.before.to_string(), x.after.to_string()]),
            "no decisions before or after",
        );
        for (title, list) in [("Gained", &r.gained), ("Lost", &r.lost), ("Changed", &r.changed)] {
            if !list.is_empty() {
                h.h2(&format!("Replay: {title}"));
                h.table(
                    &[
                        ("conversation", Col::Id),
                        ("before", Col::Text),
                        ("after", Col::Text),
                        ("after at", Col::Num),
                        ("trigger", Col::Wide),
                    ],
                    list.iter().take(top).map(change_row),
                    "none",
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

    use crate::analyze::per_call::CallMetrics;
    use crate::analyze::render::chart;

    fn page(report: &Report) -> String {
        render(report, &chart::render(report).unwrap(), 15)
    }

    #[test]
    fn empty_sections_say_so() {
        let html = page(&chart::tests::empty_report());
        let topics = html.split("<h2>Topics near the decline</h2>").nth(1).unwrap();
        let topics = topics.split("<h2>").next().unwrap();
        assert!(!topics.contains("<table"), "an empty table: {topics}");
        assert!(topics.contains("No term is over-represented near the decline."), "{topics}");
        assert!(html.contains("<p class=\"empty\">no calls</p>"), "{html}");
    }

    #[test]
    fn recent_calls_fit_or_scroll() {
        let mut r = chart::tests::empty_report();
        r.aggregates.recent_calls = vec![CallMetrics {
            conversation_id: "7e0d5c1a-52f8-4c1e-9d3b-0a2b4c6d8e10".into(),
            started_at: "2026-03-01T09:15:02.123456+00:00".into(),
            duration_ms: Some(64_000),
            reason: Some("rapid_decline".into()),
            trigger_text: Some("this is the third time I am calling about the same bill".into()),
            ..Default::default()
        }];
        let html = page(&r);
        let recent = html.split("<h2>Most recent calls").nth(1).unwrap();
        assert!(recent.contains("<div class=\"scroll\" tabindex=\"0\"><table>"), "{recent}");
        assert!(recent.contains("<td class=\"id\">7e0d5c1a-52f8-4c1e-9d3b-0a2b4c6d8e10</td>"), "{recent}");
        assert!(recent.contains("<td class=\"t\">2026-03-01 09:15:02</td>"), "{recent}");
        assert!(recent.contains("<td class=\"wide\">this is the third time"), "{recent}");
        for rule in ["td.id{", "td.t{white-space:nowrap", "td.wide{min-width", ".scroll{overflow-x:auto"] {
            assert!(STYLE.contains(rule), "{rule}");
        }
    }

    #[test]
    fn times_read_in_utc_to_the_second() {
        assert_eq!(utc_seconds("2026-03-01T10:15:02.999+01:00"), "2026-03-01 09:15:02");
        assert_eq!(utc_seconds("not a time"), "not a time");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<b> & \"x\" 'y'"), "&lt;b&gt; &amp; &quot;x&quot; &#39;y&#39;");
    }
}
