//! `ivrx dial --sandbox --load`: keeps many simulated calls in flight against a
//! running `ivrx serve --sandbox`, then checks the server's store and prints
//! one report.
//!
//! 1. Opens a measurement window: the server forgets its latency samples
//!    (`POST /api/v1/stats/reset`); the sandbox switches its logs off and keeps
//!    only acknowledged event ids (16 bytes each) and acknowledgement latencies
//!    (`POST /sandbox/v1/deliveries/reset`).
//! 2. Plays the calls: at most `--concurrency` in flight, the first ones
//!    spread over `--ramp` seconds, each replaced as soon as it hangs up.
//!    Server memory is sampled every half second meanwhile.
//! 3. Waits for the last webhooks, then audits: the acknowledged ids are paged
//!    from the sandbox to the server, which answers those it does not hold
//!    (lost events); each call's decisions, connected agents and agent legs
//!    are read from the store (double transfers, agent legs answered and
//!    never ended, transfers issued against expected); the sandbox says which
//!    agent legs it still has up after their caller hung up, which callers it
//!    bridged with more than one agent, and how many repeated deliveries the
//!    server refused.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Cell, CellAlignment};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};

use super::admin::{AdminClient, AdminError};
use super::{exit, DialArgs};
use crate::http::latency::LatencySummary;
use crate::loadtest::mix::{self, CallerScript, Mix};
use crate::loadtest::report::{CallOutcome, LoadReport, MemoryReport, MixLine};
use crate::sandbox::{ControlClient, LegAudit, PlaceRequest};
use crate::store::CallAudit;
use crate::sysinfo::Memory;

/// Ids per audit request (the server takes at most 10 000).
const AUDIT_BATCH: usize = 5_000;
/// How often server memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Longest wait for the last webhooks to be delivered, and for stored calls to end.
const SETTLE: Duration = Duration::from_secs(60);

#[derive(serde::Deserialize)]
struct Stats {
    active_conversations: usize,
    #[serde(default)]
    decision_latency: Option<LatencySummary>,
    #[serde(default)]
    ack_latency: Option<LatencySummary>,
    memory: Memory,
}

async fn stats(server: &AdminClient, latency: bool) -> Result<Stats, AdminError> {
    let v = server.get(if latency { "/api/v1/stats" } else { "/api/v1/stats?latency=false" }).await?;
    serde_json::from_value(v).map_err(|e| AdminError::Other { status: 200, message: e.to_string() })
}

/// How one call went.
enum Ended {
    HungUp,
    TimedOut,
    NotPlaced(String),
    Lost(String),
}

fn scripts(args: &DialArgs) -> anyhow::Result<Mix> {
    let (scripts, default_mix): (Vec<CallerScript>, Option<&str>) = match &args.script_dir {
        Some(dir) => (mix::from_dir(dir)?, None),
        None => (mix::bundled()?, Some(mix::DEFAULT_MIX)),
    };
    Ok(match (args.mix.as_deref(), default_mix) {
        (Some(spec), _) | (None, Some(spec)) => Mix::parse(spec, &scripts)?,
        (None, None) => Mix::equal(scripts)?,
    })
}

/// Runs the load test.
pub async fn run(args: DialArgs) -> anyhow::Result<ExitCode> {
    if !(args.ramp.is_finite() && args.ramp >= 0.0) {
        anyhow::bail!("--ramp must be a number of seconds, 0 or more");
    }
    let mix = scripts(&args)?;
    let calls = usize::try_from(args.calls).context("--calls is too large")?;
    let concurrency = usize::try_from(args.concurrency).context("--concurrency is too large")?.min(calls);
    let carrier = ControlClient::new(&args.sandbox_url, &args.sandbox_api_key)?;
    let server = AdminClient::new(&args.target)?;

    // The measurement window.
    let before = stats(&server, false).await?;
    server.post("/api/v1/stats/reset", &json!({})).await?;
    // A failure here reaches `exit::report`, which gives the sandbox's codes.
    let held_before = carrier.track_deliveries().await?.clock_held_secs;
    let mut memory = MemoryReport { baseline_rss_kib: before.memory.rss_kib, ..MemoryReport::default() };

    let plan = mix.assign(calls);
    let texts: Arc<Vec<String>> = Arc::new(mix.entries.iter().map(|(s, _)| s.text.clone()).collect());
    let visible = !args.json && std::io::stderr().is_terminal();
    let bar =
        super::output::progress_bar(visible, calls as u64, "[{bar:32}] {pos}/{len} calls, {msg} ({rate}, {eta} left)");

    // Memory sampler.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let server = AdminClient::new(&args.target)?;
        let mut memory = memory.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => break,
                }
                if let Ok(s) = stats(&server, false).await {
                    let n = in_flight.load(Ordering::Relaxed);
                    memory.sample(n, s.active_conversations, s.memory.rss_kib, s.memory.peak_rss_kib);
                }
            }
            memory
        })
    };

    // The calls.
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(concurrency));
    let peak = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Option<String>, Ended)>();
    let placer = {
        let (carrier, texts, plan, slots) = (carrier.clone(), texts.clone(), plan.clone(), slots.clone());
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        let (ramp, timeout) = (Duration::from_secs_f64(args.ramp), args.timeout);
        tokio::spawn(async move {
            for (i, &script) in plan.iter().enumerate() {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                if i < concurrency && !ramp.is_zero() {
                    tokio::time::sleep_until((started + ramp.mul_f64(i as f64 / concurrency as f64)).into()).await;
                }
                let (carrier, texts, done, in_flight, peak) =
                    (carrier.clone(), texts.clone(), done_tx.clone(), in_flight.clone(), peak.clone());
                tokio::spawn(async move {
                    let call = PlaceRequest { script: texts[usize::from(script)].clone(), ..PlaceRequest::default() };
                    let ccid = match carrier.place(&call).await {
                        Ok(c) => c,
                        Err(e) => {
                            drop(permit);
                            let _ = done.send((i, None, Ended::NotPlaced(e.to_string())));
                            return;
                        }
                    };
                    let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                    peak.fetch_max(now, Ordering::Relaxed);
                    let ended = match carrier.wait(&ccid, timeout).await {
                        Ok(true) => Ended::HungUp,
                        Ok(false) => Ended::TimedOut,
                        Err(e) => Ended::Lost(e.to_string()),
                    };
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                    let _ = done.send((i, Some(ccid), ended));
                });
            }
        })
    };

    let mut ccids: Vec<Option<String>> = vec![None; calls];
    let mut report = LoadReport { concurrency, ..LoadReport::default() };
    report.calls.planned = calls;
    let mut first_error: Option<String> = None;
    let mut hung_up = vec![false; calls];
    for _ in 0..calls {
        let Some((i, ccid, ended)) = done_rx.recv().await else { break };
        match ended {
            Ended::HungUp => hung_up[i] = true,
            Ended::TimedOut => report.calls.timed_out += 1,
            Ended::NotPlaced(e) => {
                report.calls.failed_to_place += 1;
                first_error.get_or_insert(e);
            }
            Ended::Lost(e) => {
                first_error.get_or_insert(e);
            }
        }
        if ccid.is_some() {
            report.calls.placed += 1;
        }
        ccids[i] = ccid;
        bar.inc(1);
        bar.set_message(format!("{} in flight", in_flight.load(Ordering::Relaxed)));
        // Nothing placed at all: the sandbox is not there; stop early.
        if report.calls.placed == 0 && report.calls.failed_to_place >= concurrency.min(20) {
            placer.abort();
            break;
        }
    }
    let _ = placer.await;
    bar.finish_and_clear();
    if report.calls.placed == 0 {
        eprintln!("error: no call could be placed: {}", first_error.unwrap_or_default());
        return Ok(exit::code(exit::UNREACHABLE));
    }
    if let Some(e) = &first_error {
        eprintln!("warning: some calls failed: {e}");
    }

    // The last webhooks.
    let settle = Instant::now() + SETTLE;
    let mut delivered = carrier.deliveries().await.context("reading the sandbox's delivery statistics")?;
    while delivered.queued > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
        delivered = carrier.deliveries().await.context("reading the sandbox's delivery statistics")?;
    }
    report.wall_secs = started.elapsed().as_secs_f64();
    report.clock_held_secs = (delivered.clock_held_secs - held_before).max(0.0);
    let _ = stop_tx.send(true);
    memory = sampler.await.unwrap_or(memory);
    let after = stats(&server, true).await.context("reading the server's statistics")?;
    memory.sample(0, after.active_conversations, after.memory.rss_kib, after.memory.peak_rss_kib);
    report.memory = memory;
    report.peak_in_flight = peak.load(Ordering::Relaxed);
    report.decision_latency = after.decision_latency;
    report.server_ack_latency = after.ack_latency;
    report.ack_latency = delivered.ack_latency.clone();
    report.webhooks.delivered = delivered.delivered;
    report.webhooks.attempts = delivered.attempts;
    report.webhooks.failed_attempts = delivered.failed_attempts;
    report.webhooks.gave_up = delivered.gave_up;
    report.webhooks.by_url = std::mem::take(&mut delivered.by_url);
    report.refused_duplicates = delivered.refused_duplicates;
    report.repeated_commands = delivered.repeated_commands;
    report.webhooks.per_sec = delivered.delivered as f64 / report.wall_secs.max(1e-9);
    if delivered.truncated {
        eprintln!(
            "warning: the sandbox stopped keeping ids at its cap; lost events were checked for the first ones only"
        );
    }

    // Audits.
    if visible {
        eprintln!("checking the store…");
    }
    report.lost_events = lost_events(&carrier, &server).await?;
    let audits = audit_calls(&server, &ccids, &hung_up).await?;
    let carrier_view = settled_leg_audit(&carrier).await?;
    report.agent_legs_left_up = carrier_view.left_up.len() as u64;
    for leg in carrier_view.left_up.iter().take(5) {
        eprintln!("left up: agent leg {} of call {} (answered: {})", leg.call_control_id, leg.linked_to, leg.answered);
    }
    for (i, audit) in audits.iter().enumerate() {
        let Some(audit) = audit else { continue };
        let (script, _) = &mix.entries[usize::from(plan[i])];
        if hung_up[i] {
            if audit.ended {
                report.calls.completed += 1;
            } else {
                report.calls.not_ended_in_store += 1;
            }
        }
        let bridged_twice = ccids[i].as_ref().is_some_and(|c| carrier_view.bridged_to_several.contains(c));
        report.double_transfers += u64::from(audit.double_transfer() || bridged_twice);
        report.orphaned_agent_legs += u64::from(audit.agent_legs_not_ended);
        report.transfers.add(CallOutcome { script: &script.name, expect: script.expect.as_ref(), audit });
    }
    report.mix = mix
        .entries
        .iter()
        .enumerate()
        .map(|(k, (s, w))| MixLine {
            script: s.name.clone(),
            weight: *w,
            calls: plan.iter().filter(|&&p| usize::from(p) == k).count(),
            expect: s.expect.as_ref().map(|e| e.to_string()),
        })
        .collect();
    report.judge();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(exit::code(if report.ok { exit::OK } else { exit::ERROR }))
}

/// Pages the acknowledged ids from the sandbox to the server; returns how many it does not hold.
async fn lost_events(carrier: &ControlClient, server: &AdminClient) -> anyhow::Result<u64> {
    let mut offset = Some(0);
    let mut lost = 0u64;
    while let Some(o) = offset {
        let (ids, next) =
            carrier.delivered_ids(o, AUDIT_BATCH).await.context("reading acknowledged ids from the sandbox")?;
        if ids.is_empty() {
            break;
        }
        let v = server
            .post("/api/v1/audit/webhooks", &json!({"event_ids": ids}))
            .await
            .context("checking acknowledged webhooks against the server's store")?;
        let missing = v["missing"].as_array().map(Vec::len).unwrap_or(0);
        for id in v["missing"].as_array().into_iter().flatten().take(5) {
            eprintln!("lost: webhook {id} was acknowledged but is not in the store");
        }
        lost += missing as u64;
        offset = next;
    }
    Ok(lost)
}

/// The carrier's view of agent legs once it has settled: agents still up
/// after their caller hung up are re-read (briefly), as their release may
/// still be under way.
async fn settled_leg_audit(carrier: &ControlClient) -> anyhow::Result<LegAudit> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let audit = carrier.leg_audit().await.context("reading the sandbox's agent legs")?;
        if audit.left_up.is_empty() || Instant::now() >= deadline {
            return Ok(audit);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store's view of every placed call; calls that hung up are re-read
/// (briefly) until their conversation has ended and no agent leg that
/// answered is without an end, as webhooks may still be in the server's hands.
async fn audit_calls(
    server: &AdminClient,
    ccids: &[Option<String>],
    hung_up: &[bool],
) -> anyhow::Result<Vec<Option<CallAudit>>> {
    let mut out: Vec<Option<CallAudit>> = vec![None; ccids.len()];
    let mut todo: Vec<usize> = (0..ccids.len()).filter(|&i| ccids[i].is_some()).collect();
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut again = Vec::new();
        for chunk in todo.chunks(AUDIT_BATCH) {
            let ids: Vec<&str> = chunk.iter().filter_map(|&i| ccids[i].as_deref()).collect();
            let v = server
                .post("/api/v1/audit/calls", &json!({"call_control_ids": ids}))
                .await
                .context("reading the calls from the server's store")?;
            let audits: Vec<CallAudit> =
                serde_json::from_value(v["calls"].clone()).context("the server's audit answer")?;
            for (&i, a) in chunk.iter().zip(audits) {
                if hung_up[i] && (!a.ended || a.agent_legs_not_ended > 0) {
                    again.push(i);
                }
                out[i] = Some(a);
            }
        }
        if again.is_empty() || Instant::now() >= deadline {
            return Ok(out);
        }
        todo = again;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ms(l: &LatencySummary) -> String {
    format!("{:.2} / {:.2} / {:.2} ms", l.p50_ms, l.p99_ms, l.max_ms)
}

fn print_report(r: &LoadReport) {
    let mut t = super::output::table(super::Output::detect(super::ColorChoice::Auto), &["", "load run"]);
    let mut row = |k: &str, v: String| {
        t.add_row([Cell::new(k), Cell::new(v).set_alignment(CellAlignment::Right)]);
    };
    let c = &r.calls;
    row("calls completed / planned", format!("{} / {}", c.completed, c.planned));
    if c.timed_out + c.failed_to_place + c.not_ended_in_store > 0 {
        row(
            "timed out / not placed / not ended in store",
            format!("{} / {} / {}", c.timed_out, c.failed_to_place, c.not_ended_in_store),
        );
    }
    row("in flight (target / peak)", format!("{} / {}", r.concurrency, r.peak_in_flight));
    row("wall time", format!("{:.1} s", r.wall_secs));
    if r.clock_held_secs > 0.0 {
        row("sandbox clock held for a slow server", format!("{:.1} s", r.clock_held_secs));
    }
    row("webhooks delivered", format!("{} ({:.0}/s)", r.webhooks.delivered, r.webhooks.per_sec));
    if r.webhooks.failed_attempts + r.webhooks.gave_up > 0 {
        row("failed attempts / given up", format!("{} / {}", r.webhooks.failed_attempts, r.webhooks.gave_up));
    }
    if r.webhooks.by_url.len() > 1 {
        for u in &r.webhooks.by_url {
            row(&format!("  to {}", u.url), format!("{} acknowledged, {} failed", u.acknowledged, u.failed));
        }
    }
    row("ack latency at the sender p50 / p99 / max", ms(&r.ack_latency));
    if let Some(s) = &r.server_ack_latency {
        row("ack latency in the server p50 / p99 / max", ms(s));
    }
    if let Some(d) = &r.decision_latency {
        row("decision latency p50 / p99 / max", ms(d));
    }
    let tr = &r.transfers;
    row("transfers expected / issued", format!("{} / {}", tr.expected, tr.issued));
    if tr.mismatched > 0 {
        row("calls not as their script expects", tr.mismatched.to_string());
    }
    row("lost events", r.lost_events.to_string());
    row("double transfers", r.double_transfers.to_string());
    row(
        "agent legs answered, never ended / left up at the carrier",
        format!("{} / {}", r.orphaned_agent_legs, r.agent_legs_left_up),
    );
    row("duplicate deliveries refused", r.refused_duplicates.to_string());
    row("commands repeated (same command_id)", r.repeated_commands.to_string());
    let m = &r.memory;
    row("server peak RSS", format!("{:.1} MiB", m.peak_rss_kib as f64 / 1024.0));
    row(
        "memory per active call",
        format!("{:.1} KiB ({} calls in flight at most)", m.per_active_call_kib, m.peak_active_calls),
    );
    row("result", if r.ok { "ok".into() } else { "FAILED".into() });
    super::output::keep_whole(&mut t, [1]);
    println!("{t}");
    let mix: Vec<String> =
        r.mix.iter().map(|l| format!("{} {} ({})", l.calls, l.script, l.expect.as_deref().unwrap_or("?"))).collect();
    println!("mix: {}", mix.join(", "));
    for m in &tr.mismatch_examples {
        println!("  {} ({}): expected {}, got {}", m.call_control_id, m.script, m.expected, m.actual);
    }
}
