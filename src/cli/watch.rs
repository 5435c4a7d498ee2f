//! `ivrx watch`: follow a conversation live (from the server's event stream) or
//! replay an ended one (from the server, or from `--db` without a server);
//! without an id, the board of every call in progress ([`super::board`]).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::admin::{AdminClient, AdminError};
use super::output::Output;
use super::view::ConversationView;
use super::{exit, ColorChoice, WatchArgs};
use crate::http::url_path;
use crate::session::{DomainEvent, Recorded};
use crate::store::{IdMatch, Location, StoreError};

/// Splits a Server-Sent Events byte stream into `(event, data)` pairs.
#[derive(Default)]
pub struct SseParser {
    buf: String,
}

impl SseParser {
    /// Feeds bytes; returns the complete events they finish.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        loop {
            let normalized = self.buf.replace("\r\n", "\n");
            let Some(end) = normalized.find("\n\n") else {
                self.buf = normalized;
                break;
            };
            let block = normalized[..end].to_string();
            self.buf = normalized[end + 2..].to_string();
            let mut event = String::from("message");
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                }
            }
            if !data.is_empty() {
                out.push((event, data.join("\n")));
            }
        }
        out
    }
}

struct Printer {
    view: ConversationView,
    json: bool,
    last_n: u64,
}

impl Printer {
    fn show(&mut self, r: &Recorded) {
        if r.n <= self.last_n && !matches!(r.event, DomainEvent::Interim { .. }) {
            return;
        }
        self.last_n = self.last_n.max(r.n);
        let mut out = std::io::stdout().lock();
        if self.json {
            if let Ok(s) = serde_json::to_string(r) {
                let _ = writeln!(out, "{s}");
            }
        } else {
            for line in self.view.push(r) {
                let _ = writeln!(out, "{line}");
            }
        }
        let _ = out.flush();
    }
}

/// Runs `ivrx watch`.
pub async fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let output = Output::detect(ColorChoice::Auto);
    let mut printer = Printer { view: ConversationView::new(output.color), json: args.json, last_n: 0 };
    if let Some(db) = &args.db {
        let db = Location::parse(db).map_err(|e| exit::usage("watch", format!("--db: {e}")))?;
        return replay_from_db(&args, &db, &mut printer).await;
    }
    let client = AdminClient::new(&args.target)?;
    let id = match (&args.conversation_id, args.latest) {
        (Some(id), _) => id.clone(),
        (None, true) => wait_for_latest(&client, args.json).await?,
        (None, false) => return super::board::run(client, args.json, output.color).await,
    };
    follow(&client, &id, &mut printer).await
}

async fn wait_for_latest(client: &AdminClient, quiet: bool) -> Result<String, AdminError> {
    let mut announced = false;
    loop {
        let v = client.get("/api/v1/conversations").await?;
        let newest = v["conversations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !c["ended"].as_bool().unwrap_or(false))
            .filter_map(|c| Some((c["started_at"].as_str()?.to_string(), c["conversation_id"].as_str()?.to_string())))
            .max();
        if let Some((_, id)) = newest {
            return Ok(id);
        }
        if !announced && !quiet {
            eprintln!("waiting for a call…");
            announced = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn follow(client: &AdminClient, id: &str, printer: &mut Printer) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/conversations/{}/events", url_path::encode(id, url_path::SEGMENT));
    for _attempt in 0..3 {
        let mut resp = client.stream(&path).await?;
        let mut parser = SseParser::default();
        let mut lagged = false;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(_) => break,
            };
            for (event, data) in parser.feed(&chunk) {
                if event == "error" {
                    lagged = true;
                    continue;
                }
                let Ok(r) = serde_json::from_str::<Recorded>(&data) else { continue };
                printer.show(&r);
                if matches!(r.event, DomainEvent::CallEnded { .. }) {
                    return Ok(exit::code(exit::OK));
                }
            }
        }
        if !lagged {
            break;
        }
        // The stream fell behind: reconnect; the replay skips what was shown.
    }
    eprintln!("error: the server went away before conversation {id} ended");
    Ok(exit::code(exit::UNREACHABLE))
}

async fn replay_from_db(args: &WatchArgs, db: &Location, printer: &mut Printer) -> anyhow::Result<ExitCode> {
    let store = match crate::store::open_read_only(db).await {
        Err(StoreError::Missing { .. }) => {
            eprintln!("error: no database at {db}");
            return Ok(exit::code(exit::NOT_FOUND));
        }
        other => other?,
    };
    let id = match &args.conversation_id {
        Some(given) => match store.find_conversation(given).await? {
            IdMatch::One(id) => id,
            IdMatch::None => {
                eprintln!("error: no conversation {given:?} in {db}");
                return Ok(exit::code(exit::NOT_FOUND));
            }
            IdMatch::Many(candidates) => {
                return Err(exit::usage("watch", IdMatch::ambiguous_message(given, &candidates)))
            }
        },
        None => match store.latest_conversation(false).await? {
            Some(id) => id,
            None => {
                eprintln!("error: the database holds no conversations");
                return Ok(exit::code(exit::NOT_FOUND));
            }
        },
    };
    let events = store.events(&id, 0).await?;
    if events.is_empty() {
        eprintln!("error: no conversation {id:?} in {db}");
        return Ok(exit::code(exit::NOT_FOUND));
    }
    for r in &events {
        printer.show(r);
    }
    if !printer.json && !printer.view.is_ended() {
        println!("--- (conversation still in progress when stored)");
        for l in printer.view.summary() {
            println!("{l}");
        }
    }
    Ok(exit::code(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: utterance\nid: 3\ndata: {\"a\":").is_empty());
        let got = p.feed(b"1}\n\n: keep-alive\n\nevent: x\r\ndata: 2\r\n\r\n");
        assert_eq!(got, vec![("utterance".into(), "{\"a\":1}".into()), ("x".into(), "2".into())]);
    }
}
