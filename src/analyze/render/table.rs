//! Tables for people (the default output): summary, reasons, time to
//! transfer, calls by hour, trackers, topics near the decline, the most
//! recent calls, and the policy replay.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Color, Table};

use super::{clip, pct, score, secs};
use crate::analyze::replay::{ReplayChange, ReplayReport};
use crate::analyze::stats::Bin;
use crate::analyze::{CallMetrics, Report};
use crate::cli::output::{self, keep_whole, one_line, Output};

/// How tables look.
#[derive(Clone, Copy)]
pub struct TableStyle<'a> {
    /// Colour, box drawing and the width to fit.
    pub output: Output,
    /// Rows shown in lists (calls, topics, trackers, replay changes).
    pub top: usize,
    /// Every column of the call lists, however wide.
    pub wide: bool,
    /// How a conversation id is shown: a prefix that `ivrx watch` and
    /// `ivrx transfer` accept.
    pub short_id: &'a dyn Fn(&str) -> String,
}

impl std::fmt::Debug for TableStyle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStyle")
            .field("output", &self.output)
            .field("top", &self.top)
            .field("wide", &self.wide)
            .finish()
    }
}

impl TableStyle<'_> {
    fn color(&self) -> bool {
        self.output.color
    }
}

fn table(style: TableStyle, header: &[&str]) -> Table {
    output::table(style.output, header)
}

/// A list of calls: fitted to the width like every table, or with `--wide`
/// laid out whole, however wide, so no column is cut.
fn call_list(style: TableStyle, header: &[&str]) -> Table {
    let output = if style.wide { Output { width: None, ..style.output } } else { style.output };
    output::table(output, header)
}

/// What a caller said, clipped to `max` characters unless `--wide`.
fn said(style: TableStyle, text: &str, max: usize) -> String {
    if style.wide {
        text.to_string()
    } else {
        clip(text, max)
    }
}

fn num(v: impl ToString) -> Cell {
    Cell::new(v.to_string()).set_alignment(CellAlignment::Right)
}

fn sentiment(style: TableStyle, v: Option<f64>) -> Cell {
    let c = num(score(v));
    match v {
        Some(x) if style.color() && x <= -0.3 => c.fg(Color::Red),
        Some(x) if style.color() && x >= 0.3 => c.fg(Color::Green),
        _ => c,
    }
}

fn heading(out: &mut String, style: TableStyle, title: &str) {
    if style.color() {
        let _ = writeln!(out, "\n\x1b[1m{title}\x1b[0m");
    } else {
        let _ = writeln!(out, "\n{title}");
    }
}

fn bar(count: u64, max: u64, width: usize) -> String {
    if max == 0 || count == 0 {
        return String::new();
    }
    let n = ((count as f64 / max as f64) * width as f64).round().max(1.0) as usize;
    "#".repeat(n)
}

/// Renders the whole report.
/// The conversation ids the tables list (so their short forms can be looked up first).
pub fn listed_ids(report: &Report, top: usize) -> Vec<String> {
    let recent = report.aggregates.recent_calls.iter().map(|m| &m.conversation_id);
    let replayed = report.replay.iter().flat_map(|r| [&r.gained, &r.lost, &r.changed]);
    let changed = replayed.flat_map(|list| list.iter().take(top).map(|c| &c.conversation_id));
    recent.chain(changed).cloned().collect()
}

pub fn render(report: &Report, style: TableStyle) -> String {
    let a = &report.aggregates;
    let s = &a.summary;
    let mut out = String::new();
    heading(&mut out, style, "Summary");
    let mut t = table(style, &["", "value"]);
    let ttt = &a.time_to_transfer;
    let count_pct = |n: u64, r: Option<f64>| format!("{n} ({})", pct(r));
    for (k, v) in [
        ("calls", s.calls.to_string()),
        ("ended", s.ended.to_string()),
        ("transfer decided", count_pct(s.decided, s.decision_rate)),
        ("transferred (agent connected)", count_pct(s.transferred, s.transfer_rate)),
        ("mean duration", secs(s.mean_duration_ms)),
        ("scored caller utterances", s.caller_utterances.to_string()),
        ("mean caller sentiment (utterances)", score(s.mean_sentiment)),
        ("mean caller sentiment (per-call means)", score(s.mean_call_sentiment)),
        ("time to decision: median / p90", format!("{} / {}", secs(ttt.decision.median_ms), secs(ttt.decision.p90_ms))),
        ("time to agent: median / p90", format!("{} / {}", secs(ttt.connected.median_ms), secs(ttt.connected.p90_ms))),
    ] {
        t.add_row(one_line(vec![Cell::new(k), num(v)]));
    }
    keep_whole(&mut t, [1]);
    let _ = writeln!(out, "{t}");

    let cb = &a.callbacks;
    if cb.requested > 0 {
        heading(&mut out, style, "Callbacks");
        let mut t = table(style, &["requested", "placed", "answered", "wait to answer: median / p90"]);
        let wait = format!("{} / {}", secs(cb.wait.median_ms), secs(cb.wait.p90_ms));
        t.add_row(one_line(vec![num(cb.requested), num(cb.placed), num(cb.answered), num(wait)]));
        keep_whole(&mut t, [0, 1, 2, 3]);
        let _ = writeln!(out, "{t}");
    }

    if !a.reasons.is_empty() {
        heading(&mut out, style, "Transfer decisions by reason");
        let mut t = table(style, &["reason", "decided", "share", "connected", "median time to decision"]);
        for r in &a.reasons {
            t.add_row(one_line(vec![
                Cell::new(&r.reason),
                num(r.decided),
                num(pct(Some(r.share))),
                num(r.transferred),
                num(secs(r.median_decision_ms)),
            ]));
        }
        keep_whole(&mut t, [1, 2, 3, 4]);
        let _ = writeln!(out, "{t}");
        let sources: Vec<String> = a.sources.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "by source: {}", sources.join(", "));
    }

    if !ttt.decision_histogram.is_empty() {
        heading(&mut out, style, "Time to transfer (seconds from call start)");
        histogram(&mut out, style, &ttt.decision_histogram, &ttt.connected_histogram);
    }

    if a.hours.iter().any(|h| h.calls > 0) {
        heading(&mut out, style, "Calls by hour of day (UTC)");
        let max = a.hours.iter().map(|h| h.calls).max().unwrap_or(0);
        let mut t = table(style, &["hour", "calls", "transferred", ""]);
        for h in a.hours.iter().filter(|h| h.calls > 0) {
            t.add_row(one_line(vec![
                num(format!("{:02}", h.hour)),
                num(h.calls),
                num(h.transferred),
                Cell::new(bar(h.calls, max, 30)),
            ]));
        }
        keep_whole(&mut t, [0, 1, 2]);
        let _ = writeln!(out, "{t}");
    }

    if !a.trackers.is_empty() {
        heading(&mut out, style, "Trackers heard from callers");
        let mut t = table(style, &["tracker", "calls", "share of calls", "utterances"]);
        for r in a.trackers.iter().take(style.top) {
            t.add_row(one_line(vec![
                Cell::new(&r.tracker),
                num(r.calls),
                num(pct(Some(r.call_share))),
                num(r.utterances),
            ]));
        }
        keep_whole(&mut t, [1, 2, 3]);
        let _ = writeln!(out, "{t}");
    }

    topics(&mut out, style, report);
    recent(&mut out, style, &a.recent_calls, s.calls);
    if let Some(r) = &report.replay {
        replay(&mut out, style, r);
    }
    out
}

fn histogram(out: &mut String, style: TableStyle, decision: &[Bin], connected: &[Bin]) {
    // Two bars side by side: narrower below 100 columns, so the table fits 80.
    let width = if style.output.width.is_some_and(|w| w < 100) { 12 } else { 24 };
    let max = decision.iter().chain(connected).map(|b| b.count).max().unwrap_or(0);
    let mut t = table(style, &["seconds", "decisions", "", "agent connected", ""]);
    for (d, c) in decision.iter().zip(connected) {
        t.add_row(one_line(vec![
            num(format!("{:>5}-{:<5}", d.from_s, d.to_s)),
            num(d.count),
            Cell::new(bar(d.count, max, width)),
            num(c.count),
            Cell::new(bar(c.count, max, width)),
        ]));
    }
    keep_whole(&mut t, [0, 1, 3]);
    let _ = writeln!(out, "{t}");
}

fn topics(out: &mut String, style: TableStyle, report: &Report) {
    let t = &report.aggregates.topics;
    heading(out, style, "Topics near the decline");
    let about = format!(
        "{} calls had a decline ({} at the policy's trigger, {} at the steepest drop of at least {}); \
         window: the decline and the {} caller utterance(s) before it ({} utterances) vs the rest of those calls ({}).\n\
         Statistic: {}; listed when seen in at least {} window utterances; * = significant (z >= 1.96).",
        t.calls_with_decline,
        t.declines_at_trigger,
        t.declines_at_steepest_drop,
        t.min_drop,
        t.window.saturating_sub(1),
        t.decline_utterances,
        t.other_utterances,
        t.method,
        t.min_count,
    );
    let _ = writeln!(out, "{}", output::wrap(&about, style.output.width));
    if let Some(p) = t.pruned_below {
        let _ = writeln!(out, "(the vocabulary was large: terms seen fewer than {p} times may be missing)");
    }
    if t.terms.is_empty() {
        let _ = writeln!(out, "no term is over-represented near the decline");
        return;
    }
    let mut tab = table(style, &["term", "in decline", "elsewhere", "decline %", "elsewhere %", "log-odds", "z"]);
    for x in t.terms.iter().take(style.top) {
        let z = format!("{:.2}{}", x.z, if x.significant { " *" } else { "" });
        tab.add_row(one_line(vec![
            Cell::new(&x.term),
            num(x.in_decline),
            num(x.elsewhere),
            num(pct(Some(x.decline_share))),
            num(pct(Some(x.elsewhere_share))),
            num(format!("{:.2}", x.log_odds)),
            num(z),
        ]));
    }
    keep_whole(&mut tab, 1..7);
    let _ = writeln!(out, "{tab}");
}

/// The columns of the most recent calls: the default set fits 100 columns
/// (below that the duration is left out and text is cut with `…`); `--wide`
/// shows every one.
const RECENT_COLUMNS: [(&str, bool); 14] = [
    ("conversation", true),
    ("started (UTC)", true),
    ("duration", true),
    ("utts", false),
    ("min", true),
    ("mean", false),
    ("final", true),
    ("slope/min", false),
    ("reason", true),
    ("queue", false),
    ("agent", true),
    ("decision", false),
    ("connected", false),
    ("trigger", true),
];

/// Columns that hold text (cut with `…` when the table must shrink); the
/// others hold ids, times and numbers and are never cut.
const RECENT_TEXT: [&str; 4] = ["reason", "queue", "agent", "trigger"];

fn recent(out: &mut String, style: TableStyle, calls: &[CallMetrics], total: u64) {
    if calls.is_empty() {
        return;
    }
    heading(out, style, &format!("Most recent calls ({} of {total}, newest first)", calls.len()));
    // Below 100 columns the duration gives its place to the text columns.
    let narrow = style.output.width.is_some_and(|w| w < 100);
    let shown: Vec<usize> = (0..RECENT_COLUMNS.len())
        .filter(|&i| style.wide || (RECENT_COLUMNS[i].1 && !(narrow && RECENT_COLUMNS[i].0 == "duration")))
        .collect();
    let header: Vec<&str> = shown.iter().map(|&i| RECENT_COLUMNS[i].0).collect();
    let mut t = call_list(style, &header);
    for m in calls {
        let agent = match (m.transferred, m.transfer_status.as_deref()) {
            (true, _) if style.color() => Cell::new("yes").fg(Color::Green),
            (true, _) => Cell::new("yes"),
            (false, Some(s)) => Cell::new(s),
            (false, None) => Cell::new("-"),
        };
        let trigger = m
            .trigger_phrase
            .clone()
            .or_else(|| m.trigger_text.as_deref().map(|t| said(style, t, 40)))
            .unwrap_or_else(|| "-".into());
        let started = m.started_at.get(..if style.wide { 19 } else { 16 }).unwrap_or(&m.started_at).replace('T', " ");
        let mut cells: Vec<Option<Cell>> = vec![
            Some(Cell::new((style.short_id)(&m.conversation_id))),
            Some(Cell::new(started)),
            Some(num(secs(m.duration_ms.map(|v| v as f64)))),
            Some(num(m.utterances)),
            Some(sentiment(style, m.sentiment_min)),
            Some(sentiment(style, m.sentiment_mean)),
            Some(sentiment(style, m.sentiment_final)),
            Some(num(m.sentiment_slope_per_min.map_or_else(|| "-".into(), |v| format!("{v:+.2}")))),
            Some(Cell::new(m.reason.as_deref().unwrap_or("-"))),
            Some(Cell::new(m.queue.as_deref().unwrap_or("-"))),
            Some(agent),
            Some(num(secs(m.decision_ms.map(|v| v as f64)))),
            Some(num(secs(m.connected_ms.map(|v| v as f64)))),
            Some(Cell::new(trigger)),
        ];
        t.add_row(one_line(shown.iter().filter_map(|&i| cells[i].take()).collect()));
    }
    keep_whole(&mut t, header.iter().enumerate().filter(|(_, h)| !RECENT_TEXT.contains(h)).map(|(i, _)| i));
    let _ = writeln!(out, "{t}");
}

fn replay(out: &mut String, style: TableStyle, r: &ReplayReport) {
    heading(out, style, "Policy replay");
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let count = |k: &str| r.verdicts.get(k).copied().unwrap_or(0);
    let mut t = table(style, &["", "value"]);
    for (k, v) in [
        ("calls replayed", r.calls.to_string()),
        ("decisions before / after", format!("{} / {}", r.decided_before, r.decided_after)),
        ("gained (new decisions)", count("gained").to_string()),
        ("lost (no longer decided)", count("lost").to_string()),
        ("changed (other reason, queue or moment)", count("changed").to_string()),
        ("same", count("same").to_string()),
        ("kept (keypad, menu or manual)", count("kept").to_string()),
        ("no decision either way", count("neither").to_string()),
        (
            "time to decision median: before / after",
            format!("{} / {}", secs(r.time_to_decision_before.median_ms), secs(r.time_to_decision_after.median_ms)),
        ),
        (
            "time to decision p90: before / after",
            format!("{} / {}", secs(r.time_to_decision_before.p90_ms), secs(r.time_to_decision_after.p90_ms)),
        ),
    ] {
        t.add_row(one_line(vec![Cell::new(k), num(v)]));
    }
    keep_whole(&mut t, [1]);
    let _ = writeln!(out, "{t}");
    if !r.reasons.is_empty() {
        let mut t = table(style, &["reason", "before", "after", "change"]);
        for x in &r.reasons {
            t.add_row(one_line(vec![
                Cell::new(&x.reason),
                num(x.before),
                num(x.after),
                num(format!("{:+}", x.after as i64 - x.before as i64)),
            ]));
        }
        keep_whole(&mut t, [1, 2, 3]);
        let _ = writeln!(out, "{t}");
    }
    for (title, list) in [("Gained", &r.gained), ("Lost", &r.lost), ("Changed", &r.changed)] {
        changes(out, style, title, list);
    }
}

fn changes(out: &mut String, style: TableStyle, title: &str, list: &[ReplayChange]) {
    if list.is_empty() {
        return;
    }
    heading(out, style, &format!("{title} ({} listed, up to {})", list.len().min(style.top), style.top));
    let mut t = call_list(style, &["conversation", "before", "at", "after", "at", "trigger"]);
    for c in list.iter().take(style.top) {
        t.add_row(one_line(vec![
            Cell::new((style.short_id)(&c.conversation_id)),
            Cell::new(c.before_reason.as_deref().unwrap_or("-")),
            num(secs(c.before_ms.map(|v| v as f64))),
            Cell::new(c.after_reason.as_deref().unwrap_or("-")),
            num(secs(c.after_ms.map(|v| v as f64))),
            Cell::new(c.after_trigger_text.as_deref().map(|t| said(style, t, 48)).unwrap_or_default()),
        ]));
    }
    keep_whole(&mut t, [0, 2, 4]);
    let _ = writeln!(out, "{t}");
}
