//! `ivrx serve --demo`: bundled callers go through the IVR on the embedded
//! sandbox while the terminal shows each conversation live, then a summary.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use console::Style;

use super::exit;
use super::view::ConversationView;
use crate::loadtest::mix;
use crate::sandbox::{PlaceCall, SandboxHandle, Script};
use crate::server::App;
use crate::session::{DomainEvent, Speaker};
use crate::store::Location;

/// The callers of the demo (bundled in the binary, from `examples/`).
pub const DEMO_CALLERS: [&str; 4] = ["calm", "frustrated", "asks_for_human", "interested_buyer"];

/// Runs the demo against a started sandbox-mode server (`app`, listening on
/// `server`), its sandbox carrier and its database.
pub async fn run(
    sandbox: Option<SandboxHandle>,
    app: &Arc<App>,
    server: std::net::SocketAddr,
    db: &Location,
) -> anyhow::Result<ExitCode> {
    let Some(sandbox) = sandbox else {
        anyhow::bail!("--demo runs on the embedded sandbox; unset TELNYX_API_KEY or add --sandbox");
    };
    let output = super::Output::detect(super::ColorChoice::Auto);
    let color = output.color;
    println!(
        "ivrx demo: {} simulated callers ring the IVR on the embedded sandbox carrier (clock ×{}).\n\
         webhook server http://{}, sandbox carrier {}\n",
        DEMO_CALLERS.len(),
        sandbox.clock().time_scale(),
        server,
        sandbox.base_url(),
    );
    let styles = [Style::new().green(), Style::new().red(), Style::new().yellow(), Style::new().blue()];
    let mut tasks = Vec::new();
    for (i, name) in DEMO_CALLERS.iter().enumerate() {
        let script = Script::parse(&mix::script_named(Path::new(name))?.text)?;
        let mut call = PlaceCall::new(script);
        call.from = format!("+1555010{:04}", 1000 + i);
        let info = sandbox.place_call(call)?;
        let app = app.clone();
        let label = styles[i % styles.len()].clone().force_styling(color).apply_to(format!("[{name:<16}]")).to_string();
        tasks.push(tokio::spawn(async move {
            // Wait until the server has routed the call, then follow it.
            let conv = loop {
                if let Some(c) = app.calls.resolve(&info.call_control_id) {
                    if let Some(sub) = app.live.subscribe(&c) {
                        break (c, sub);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let (conv, mut sub) = conv;
            let mut view = ConversationView::new(color);
            let mut last = 0;
            let print = |r: &crate::session::Recorded, view: &mut ConversationView| {
                for line in view.push(r) {
                    println!("{label} {line}");
                }
            };
            for r in &sub.history {
                last = r.n;
                print(r, &mut view);
            }
            while !view.is_ended() {
                match sub.rx.recv().await {
                    Ok(r) if r.n > last && !matches!(r.event, DomainEvent::Interim { .. }) => {
                        last = r.n;
                        print(&r, &mut view);
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            conv
        }));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let mut convs = Vec::new();
    for t in tasks {
        if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(600), t).await {
            convs.push(c);
        }
    }
    app.store.flush().await?;
    let mut table =
        super::output::table(output, &["caller", "outcome", "reason", "trigger", "decided", "agent joined"]);
    for (name, conv) in DEMO_CALLERS.iter().zip(&convs) {
        let Some(r) = app.store.report(conv).await? else { continue };
        let secs = |ms: Option<i64>| ms.map(|m| format!("{:.1} s", m as f64 / 1000.0)).unwrap_or_else(|| "-".into());
        let trigger = match r.trigger_index {
            Some(i) => r
                .utterances
                .iter()
                .find(|u| u.speaker == Speaker::Caller && u.index == i)
                .map(|u| format!("#{i} \"{}\"", u.text))
                .unwrap_or_default(),
            None => "-".into(),
        };
        let outcome = match (&r.queue, r.transferred) {
            (Some(q), true) => format!("transferred to {q}"),
            (Some(q), false) => format!("{q}: {}", r.transfer_status.map_or("?", |s| s.as_str())),
            (None, _) => "stayed with the IVR".into(),
        };
        table.add_row(vec![
            name.to_string(),
            outcome,
            r.reason.map_or("-", |r| r.as_str()).to_string(),
            trigger,
            secs(r.decision_ms),
            secs(r.connected_ms),
        ]);
    }
    super::output::keep_whole(&mut table, [0, 4, 5]);
    println!("\n{table}");
    // A URL is shown with its password masked: name the database the way it was given.
    let again = match db {
        Location::Sqlite(_) => format!("--db {db}"),
        Location::Postgres(_) => "with the same --db or IVRX_DB".to_string(),
    };
    println!("\nEvery conversation is stored in {db}.\nNext: ivrx analyze {again}");
    Ok(exit::code(if convs.len() == DEMO_CALLERS.len() { exit::OK } else { exit::TIMEOUT }))
}
