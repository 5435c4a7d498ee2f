//! `ivrx dial`: place a real outbound call through the running server, or a
//! simulated inbound caller into the sandbox and report what happened.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use serde_json::{json, Value};

use super::admin::AdminClient;
use super::output::Output;
use super::view::{bar, clock};
use super::{exit, ColorChoice, DialArgs};
use crate::loadtest::mix;
use crate::sandbox::{ControlClient, ControlError, PlaceRequest};
use crate::store::CallReport;

/// Runs `ivrx dial`.
pub async fn run(mut args: DialArgs) -> anyhow::Result<ExitCode> {
    if let Some(number) = args.number.take() {
        args.to = Some(number);
    }
    if args.load {
        super::load::run(args).await
    } else if args.sandbox {
        sandbox_call(args).await
    } else {
        live_call(args).await
    }
}

async fn live_call(args: DialArgs) -> anyhow::Result<ExitCode> {
    let Some(to) = args.to.clone() else {
        let message = if args.interactive || args.script.is_some() {
            "a simulated caller plays against the sandbox: add --sandbox (or give the number to call, \
             e.g. `ivrx dial +15551234567`, for a live call)"
        } else {
            "give the number to call, e.g. `ivrx dial +15551234567` (or, for a simulated caller, \
             --sandbox with --script NAME or --interactive)"
        };
        return Err(exit::usage("dial", message));
    };
    let client = AdminClient::new(&args.target)?;
    let v = client.post("/api/v1/calls", &json!({"to": to, "from": args.from})).await?;
    if args.json {
        println!("{v}");
    } else {
        println!("dialling {to}: conversation {}", v["conversation_id"].as_str().unwrap_or("?"));
        println!("follow it with: ivrx watch {}", v["conversation_id"].as_str().unwrap_or("?"));
    }
    Ok(exit::code(exit::OK))
}

async fn sandbox_call(args: DialArgs) -> anyhow::Result<ExitCode> {
    let script_text = match (&args.script, args.interactive) {
        (Some(path), _) => mix::script_named(path)?.text,
        (None, true) => String::new(),
        (None, false) => {
            let names: Vec<&str> = mix::BUNDLED.iter().map(|(n, _)| *n).collect();
            return Err(exit::usage(
                "dial",
                format!(
                    "give the caller: --script FILE or a bundled caller's name ({}), or --interactive to type its lines",
                    names.join(", ")
                ),
            ));
        }
    };
    let api = ControlClient::new(&args.sandbox_url, &args.sandbox_api_key)?;
    let call = PlaceRequest {
        from: args.from.clone(),
        to: args.to.clone(),
        script: script_text,
        live: args.interactive,
        caller_id_name: None,
    };
    let ccid = api.place(&call).await?;
    if !args.json {
        eprintln!("placed simulated call {ccid}");
    }
    if args.interactive {
        tokio::spawn(print_heard(api.clone(), ccid.clone()));
        feed_stdin(&api, &ccid).await;
    }
    if !api.wait(&ccid, args.timeout).await? {
        eprintln!("error: the call did not end within {} s (sandbox time)", args.timeout);
        return Ok(exit::code(exit::TIMEOUT));
    }
    let report: Value = match api.report(&ccid).await {
        Ok(v) => v,
        // A standalone carrier knows nothing of the server: ask the server.
        Err(ControlError::NotFound(m)) => match server_report(&args, &ccid).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "the call ended; no report is available: the sandbox has none ({m}), nor has the server at {} \
                     ({e}); is --server the `ivrx serve` this sandbox delivers to?",
                    args.target.server
                );
                return Ok(exit::code(exit::NOT_FOUND));
            }
        },
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(exit::code(exit::OK));
    }
    let report: CallReport = serde_json::from_value(report)?;
    print_report(&report, Output::detect(ColorChoice::Auto).color);
    Ok(exit::code(exit::OK))
}

/// The call's report from the server `--server` names (a live-mode
/// instance behind a standalone `ivrx sandbox`), waiting up to a minute for
/// its conversation to end in the store.
async fn server_report(args: &DialArgs, ccid: &str) -> anyhow::Result<Value> {
    let server = AdminClient::new(&args.target)?;
    Ok(server.get(&format!("/api/v1/calls/{ccid}/report?wait_secs=60")).await?)
}

/// Prints what the simulated caller hears (the IVR's prompts, the agent) while
/// a person types the caller's lines.
async fn print_heard(api: ControlClient, ccid: String) {
    let Ok(mut lines) = api.heard(&ccid).await else { return };
    while let Ok(Some(h)) = lines.next().await {
        let who = if h.source == "ivr" { "ivr" } else { "other party" };
        eprintln!("  {who}: {}", h.text);
    }
}

/// Sends each line typed on stdin as a caller step; end of input hangs up.
async fn feed_stdin(api: &ControlClient, ccid: &str) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        eprintln!("type what the caller says (or `press 1`, `pause 2`, `hangup`); end with Ctrl-D");
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                return;
            }
        }
        let _ = tx.send("hangup".into());
    });
    while let Some(line) = rx.recv().await {
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        let step = if matches!(verb.as_str(), "say" | "press" | "pause" | "hangup") {
            line.clone()
        } else {
            format!("say {line}")
        };
        match api.step(ccid, &step).await {
            Ok(_) if verb == "hangup" => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("(not sent: {e})");
                break;
            }
        }
        let _ = std::io::stderr().flush();
    }
}

fn print_report(r: &CallReport, color: bool) {
    let view_style = |s: console::Style| s.force_styling(color);
    println!("conversation {}", r.conversation_id);
    for u in &r.utterances {
        let score = u.score.map(|s| format!("{s:+.2} {}", bar(s))).unwrap_or_else(|| "      unscored".into());
        let tags = if u.trackers.is_empty() { String::new() } else { format!("  #{}", u.trackers.join(" #")) };
        println!("{} {:<6}  {score}  {}{tags}", clock(u.offset_ms.max(0) as u64), u.speaker.as_str(), u.text);
    }
    match (&r.queue, &r.reason) {
        (Some(q), Some(reason)) => {
            let at = match r.trigger_index {
                Some(i) => format!(" at caller utterance {i}"),
                None => String::new(),
            };
            let status = r.transfer_status.map_or("?", |s| s.as_str());
            let line = format!(">>> transfer to {q} ({}){at}: {status}", reason.as_str());
            println!("{}", view_style(console::Style::new().bold()).apply_to(line));
            if let (Some(d), Some(c)) = (r.decision_ms, r.connected_ms) {
                println!("    decided at {:.1} s, agent connected at {:.1} s", d as f64 / 1000.0, c as f64 / 1000.0);
            }
        }
        _ => println!("not transferred"),
    }
    if let Some(reason) = &r.end_reason {
        println!("call ended: {reason}");
    }
}
