//! Tables for people (the default output): summary, reasons, time to
//! transfer, calls by hour, trackers, topics near the decline, the most
//! recent calls, and the policy replay.

use std::fmt::Write as _;

use comfy_table::presets::{ASCII_FULL_CONDENSED, UTF8_FULL_CONDENSED};
use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use super::{clip, pct, score, secs};
use crate::analyze::replay::{ReplayChange, ReplayReport};
use crate::analyze::stats::Bin;
use crate::analyze::{CallMetrics, Report};

/// How tables look.
#[derive(Debug, Clone, Copy)]
pub struct TableStyle {
    /// ANSI colour.
    pub color: bool,
    /// Box-drawing characters and terminal-width layout (on a terminal).
    pub tty: bool,
    /// Rows shown in lists (calls, topics, trackers, replay changes).
    pub top: usize,
}

fn table(style: TableStyle, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(if style.tty { UTF8_FULL_CONDENSED } else { ASCII_FULL_CONDENSED });
    if style.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_content_arrangement(if style.tty { ContentArrangement::Dynamic } else { ContentArrangement::Disabled });
    t.set_header(header.iter().map(|h| {
        let c = Cell::new(h);
        if style.color {
            c.add_attribute(Attribute::Bold).fg(Color::Cyan)
        } else {
            c
        }
    }));
    t
}

fn num(v: impl ToString) -> Cell {
    Cell::new(v.to_string()).set_alignment(CellAlignment::Right)
}

fn sentiment(style: TableStyle, v: Option<f64>) -> Cell {
    let c = num(score(v));
    match v {
        Some(x) if style.color && x <= -0.3 => c.fg(Color::Red),
        Some(x) if style.color && x >= 0.3 => c.fg(Color::Green),
        _ => c,
    }
}

fn heading(out: &mut String, style: TableStyle, title: &str) {
    if style.color {
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
        t.add_row(vec![Cell::new(k), num(v)]);
    }
    let _ = writeln!(out, "{t}");

    if !a.reasons.is_empty() {
        heading(&mut out, style, "Transfer decisions by reason");
        let mut t = table(style, &["reason", "decided", "share", "connected", "median time to decision"]);
        for r in &a.reasons {
            t.add_row(vec![
                Cell::new(&r.reason),
                num(r.decided),
                num(pct(Some(r.share))),
                num(r.transferred),
                num(secs(r.median_decision_ms)),
            ]);
        }
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
            t.add_row(vec![
                num(format!("{:02}", h.hour)),
                num(h.calls),
                num(h.transferred),
                Cell::new(bar(h.calls, max, 30)),
            ]);
        }
        let _ = writeln!(out, "{t}");
    }

    if !a.trackers.is_empty() {
        heading(&mut out, style, "Trackers heard from callers");
        let mut t = table(style, &["tracker", "calls", "share of calls", "utterances"]);
        for r in a.trackers.iter().take(style.top) {
            t.add_row(vec![Cell::new(&r.tracker), num(r.calls), num(pct(Some(r.call_share))), num(r.utterances)]);
        }
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
    let max = decision.iter().chain(connected).map(|b| b.count).max().unwrap_or(0);
    let mut t = table(style, &["seconds", "decisions", "", "agent connected", ""]);
    for (d, c) in decision.iter().zip(connected) {
        t.add_row(vec![
            num(format!("{:>5}-{:<5}", d.from_s, d.to_s)),
            num(d.count),
            Cell::new(bar(d.count, max, 24)),
            num(c.count),
            Cell::new(bar(c.count, max, 24)),
        ]);
    }
    let _ = writeln!(out, "{t}");
}

fn topics(out: &mut String, style: TableStyle, report: &Report) {
    let t = &report.aggregates.topics;
    heading(out, style, "Topics near the decline");
    let _ = writeln!(
        out,
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
        tab.add_row(vec![
            Cell::new(&x.term),
            num(x.in_decline),
            num(x.elsewhere),
            num(pct(Some(x.decline_share))),
            num(pct(Some(x.elsewhere_share))),
            num(format!("{:.2}", x.log_odds)),
            num(z),
        ]);
    }
    let _ = writeln!(out, "{tab}");
}

fn recent(out: &mut String, style: TableStyle, calls: &[CallMetrics], total: u64) {
    if calls.is_empty() {
        return;
    }
    heading(out, style, &format!("Most recent calls ({} of {total})", calls.len()));
    let mut t = table(
        style,
        &[
            "conversation",
            "started (UTC)",
            "duration",
            "utts",
            "min",
            "mean",
            "final",
            "slope/min",
            "reason",
            "queue",
            "agent",
            "decision",
            "connected",
            "trigger",
        ],
    );
    for m in calls {
        let agent = match (m.transferred, m.transfer_status.as_deref()) {
            (true, _) if style.color => Cell::new("yes").fg(Color::Green),
            (true, _) => Cell::new("yes"),
            (false, Some(s)) => Cell::new(s),
            (false, None) => Cell::new("-"),
        };
        let trigger =
            m.trigger_phrase.clone().or_else(|| m.trigger_text.clone().map(|t| clip(&t, 40))).unwrap_or_default();
        t.add_row(vec![
            Cell::new(clip(&m.conversation_id, 24)),
            Cell::new(m.started_at.get(..19).unwrap_or(&m.started_at).replace('T', " ")),
            num(secs(m.duration_ms.map(|v| v as f64))),
            num(m.utterances),
            sentiment(style, m.sentiment_min),
            sentiment(style, m.sentiment_mean),
            sentiment(style, m.sentiment_final),
            num(m.sentiment_slope_per_min.map_or_else(|| "-".into(), |v| format!("{v:+.2}"))),
            Cell::new(m.reason.as_deref().unwrap_or("-")),
            Cell::new(m.queue.as_deref().unwrap_or("-")),
            agent,
            num(secs(m.decision_ms.map(|v| v as f64))),
            num(secs(m.connected_ms.map(|v| v as f64))),
            Cell::new(trigger),
        ]);
    }
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
        t.add_row(vec![Cell::new(k), num(v)]);
    }
    let _ = writeln!(out, "{t}");
    if !r.reasons.is_empty() {
        let mut t = table(style, &["reason", "before", "after", "change"]);
        for x in &r.reasons {
            t.add_row(vec![
                Cell::new(&x.reason),
                num(x.before),
                num(x.after),
                num(format!("{:+}", x.after as i64 - x.before as i64)),
            ]);
        }
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
    let mut t = table(style, &["conversation", "before", "at", "after", "at", "trigger"]);
    for c in list.iter().take(style.top) {
        t.add_row(vec![
            Cell::new(clip(&c.conversation_id, 24)),
            Cell::new(c.before_reason.as_deref().unwrap_or("-")),
            num(secs(c.before_ms.map(|v| v as f64))),
            Cell::new(c.after_reason.as_deref().unwrap_or("-")),
            num(secs(c.after_ms.map(|v| v as f64))),
            Cell::new(c.after_trigger_text.as_deref().map(|t| clip(t, 48)).unwrap_or_default()),
        ]);
    }
    let _ = writeln!(out, "{t}");
}
