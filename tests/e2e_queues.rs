//! End to end: every agent busy. With `[queue]` the caller waits in a Telnyx
//! call queue (`enqueue`, `call.enqueued`), hears their place in line and
//! hold audio while the agents are tried again, and is bridged with the
//! first agent who frees up (`bridge` with `queue`, `call.dequeued` reason
//! `bridged`): exactly one agent, even when every webhook comes twice. After
//! the longest wait Telnyx takes the caller out and the IVR has them again.

mod serve_support;

use serde_json::Value;
use serve_support::{attempts, conv, events, refused_at_start, Serve};

/// The bundled caller who asks for a person and waits on the line.
const WAITS: &str = include_str!("../examples/waits_in_line.ivrx");

/// Both support agents on other calls for the first 40 s after they are first called.
const AGENTS_BUSY: &str = "[sandbox.agents]\n\"+18005550201\" = \"busy:40\"\n\"+18005550202\" = \"busy:40\"\n";

/// What the carrier says of the legs placed for calls (`GET /sandbox/v1/legs/audit`).
fn leg_audit(s: &Serve) -> Value {
    ivrx::http::tls::install_crypto_provider();
    let url = format!("{}/sandbox/v1/legs/audit", s.sandbox);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new().get(url).bearer_auth("sandbox").send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<Value>().await.unwrap()["data"].clone()
    })
}

/// The event types of the webhooks the server took for a leg, in order.
fn webhook_types(s: &Serve, ccid: &str) -> Vec<(String, Value)> {
    let db = rusqlite::Connection::open(s.db()).unwrap();
    let mut q = db.prepare("SELECT event_type, body FROM webhooks ORDER BY rowid").unwrap();
    let rows: Vec<(String, String)> =
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    rows.into_iter()
        .map(|(t, b)| (t, serde_json::from_str::<Value>(&b).unwrap()["data"]["payload"].clone()))
        .filter(|(_, p)| p["call_control_id"] == ccid)
        .collect()
}

/// The queue's own record (attempt 0): `(status, detail)`.
fn queue_record(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "transfer" && e["attempt"] == 0)
        .map(|e| (e["status"].as_str().unwrap().to_string(), e["detail"].as_str().unwrap_or_default().to_string()))
        .collect()
}

fn caller_ccid(events: &[Value]) -> String {
    let joined = events.iter().find(|e| e["type"] == "leg_joined" && e["role"] == "caller").unwrap();
    joined["call_control_id"].as_str().unwrap().to_string()
}

#[test]
fn with_every_agent_busy_the_caller_waits_in_the_queue_and_gets_the_first_agent_free_once() {
    let config =
        format!("[queue]\nname = \"support-wait\"\n{AGENTS_BUSY}[sandbox.chaos]\nduplicate_rate = 1.0\nseed = 11\n");
    let s = Serve::start(&config, &[]);
    let r = s.dial(WAITS);
    assert_eq!((r["transferred"].as_bool(), r["transfer_status"].as_str()), (Some(true), Some("connected")), "{r}");
    let id = conv(&r);
    let ev = events(&s.db(), &id);

    let queue = queue_record(&ev);
    let statuses: Vec<&str> = queue.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["queued", "queued", "dequeued"], "{queue:#?}");
    assert_eq!(queue[1].1, "number 1 in line in support-wait");
    assert!(queue[2].1.starts_with("bridged after "), "{queue:?}");

    // The first round found both agents busy, later rounds too, until one freed up.
    let tries = attempts(&r);
    let connected: Vec<_> = tries.iter().filter(|(_, s)| s == "connected").collect();
    assert_eq!(connected.len(), 1, "exactly one agent: {tries:?}");
    let busy = tries.iter().filter(|(_, s)| s == "attempt_failed").count();
    assert!(busy >= 2, "{tries:?}");
    let said: Vec<&str> = ev.iter().filter(|e| e["type"] == "ivr_said").filter_map(|e| e["text"].as_str()).collect();
    assert!(said.iter().any(|t| t.contains("You are number 1 in line")), "{said:#?}");
    assert!(said.iter().any(|t| t.starts_with("Thank you for waiting")), "{said:#?}");

    // Telnyx's side: enqueued, then dequeued because bridged (each delivered twice, handled once).
    let caller = caller_ccid(&ev);
    let hooks = webhook_types(&s, &caller);
    let enqueued: Vec<&Value> = hooks.iter().filter(|(t, _)| t == "call.enqueued").map(|(_, p)| p).collect();
    let dequeued: Vec<&Value> = hooks.iter().filter(|(t, _)| t == "call.dequeued").map(|(_, p)| p).collect();
    assert_eq!(enqueued.len(), 1, "stored once: {hooks:#?}");
    assert_eq!(
        (enqueued[0]["queue"].as_str(), enqueued[0]["current_position"].as_u64()),
        (Some("support-wait"), Some(1))
    );
    assert_eq!(dequeued.len(), 1, "{hooks:#?}");
    assert_eq!(dequeued[0]["reason"], "bridged");

    // The carrier saw one agent bridged with the caller, and no leg left up.
    let audit = leg_audit(&s);
    assert!(audit["bridged_to_several"].as_array().unwrap().is_empty(), "{audit:#}");
    assert!(audit["left_up"].as_array().unwrap().is_empty(), "{audit:#}");
}

#[test]
fn after_the_longest_wait_the_caller_is_back_with_the_ivr() {
    let config =
        "[queue]\nmax_wait_secs = 20\n[sandbox.agents]\n\"+18005550201\" = \"busy\"\n\"+18005550202\" = \"busy\"\n";
    let s = Serve::start(config, &[]);
    let r = s.dial(WAITS);
    assert_eq!((r["transferred"].as_bool(), r["transfer_status"].as_str()), (Some(false), Some("failed")), "{r}");
    let ev = events(&s.db(), &conv(&r));
    let queue = queue_record(&ev);
    assert_eq!(queue.last().map(|(s, _)| s.as_str()), Some("dequeued"), "{queue:?}");
    assert!(queue.last().unwrap().1.starts_with("timeout after 20 s"), "{queue:?}");
    let said: Vec<&str> = ev.iter().filter(|e| e["type"] == "ivr_said").filter_map(|e| e["text"].as_str()).collect();
    assert!(said.iter().any(|t| t.starts_with("I'm sorry, nobody could take your call in time.")), "{said:#?}");
    let failed = ev.iter().filter(|e| e["type"] == "transfer" && e["status"] == "failed").count();
    assert_eq!(failed, 1, "one failure, after the wait");
}

#[test]
fn a_bad_queue_value_is_refused_at_start_with_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    for (config, key, fix) in [
        ("[queue]\nmax_wait_secs = 1\n", "queue.max_wait_secs", "between 10 and 3600"),
        ("[queue]\nname = \"\"\n", "queue.name", "1 to 64 characters"),
        ("[queue]\nhold_audio_url = \"hold.mp3\"\n", "queue.hold_audio_url", "http"),
    ] {
        refused_at_start(dir.path(), config, key, fix);
    }
}

/// How many `call.enqueued` webhooks the server has stored.
fn enqueued_count(s: &Serve) -> usize {
    let Ok(db) = rusqlite::Connection::open(s.db()) else { return 0 };
    db.query_row("SELECT count(*) FROM webhooks WHERE event_type = 'call.enqueued'", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| n as usize)
}

/// Waits (on the server's record, not a guess of time) until `n` callers are in line.
fn until_in_line(s: &Serve, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while enqueued_count(s) < n {
        assert!(std::time::Instant::now() < deadline, "{n} callers never got in line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Where the `call.dequeued` of a caller's leg came among the webhooks the
/// server took (each simulated call keeps its own clock, so their times are
/// not compared).
fn dequeued_rank(s: &Serve, ccid: &str) -> i64 {
    let db = rusqlite::Connection::open(s.db()).unwrap();
    let mut q =
        db.prepare("SELECT rowid, body FROM webhooks WHERE event_type = 'call.dequeued' ORDER BY rowid").unwrap();
    let rows: Vec<(i64, String)> =
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    rows.into_iter()
        .find(|(_, b)| serde_json::from_str::<Value>(b).unwrap()["data"]["payload"]["call_control_id"] == ccid)
        .map(|(rowid, _)| rowid)
        .unwrap_or_else(|| panic!("{ccid} never left the line"))
}

#[test]
fn several_callers_waiting_at_once_are_each_bridged_once_with_their_own_agent_first_in_first_out() {
    // One agent, busy for 90 s; three callers get in line one after the other.
    let config = "[queues.support]\nagents = [\"+18005550201\"]\n[queues.sales]\nagents = [\"+18005550301\"]\n[queue]\nname = \"support-wait\"\n\
[sandbox.agents]\n\"+18005550201\" = \"busy:90\"\n";
    let s = Serve::start(config, &[]);
    let caller = "say i need to talk to a real person right now\npause 300\nsay thanks for picking up my internet keeps dropping\nhangup\n";
    let reports: Vec<Value> = std::thread::scope(|scope| {
        let mut calls = Vec::new();
        for n in 1..=3 {
            let s = &s;
            calls.push(scope.spawn(move || s.dial(caller)));
            until_in_line(s, n);
        }
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });

    let mut out_of_line = Vec::new();
    for (n, r) in reports.iter().enumerate() {
        let place = n + 1;
        assert_eq!(
            (r["transferred"].as_bool(), r["transfer_status"].as_str()),
            (Some(true), Some("connected")),
            "caller {place}: {r}"
        );
        let ev = events(&s.db(), &conv(r));
        let queue = queue_record(&ev);
        assert_eq!(queue[1].1, format!("number {place} in line in support-wait"), "caller {place}: {queue:?}");
        let connected = attempts(r).into_iter().filter(|(_, st)| st == "connected").count();
        assert_eq!(connected, 1, "caller {place} bridged once: {:?}", attempts(r));
        // Telnyx took this caller out of the line once, bridged.
        let ccid = caller_ccid(&ev);
        let hooks = webhook_types(&s, &ccid);
        let dequeued: Vec<&Value> = hooks.iter().filter(|(t, _)| t == "call.dequeued").map(|(_, p)| p).collect();
        assert_eq!(dequeued.len(), 1, "caller {place}: {hooks:#?}");
        assert_eq!(dequeued[0]["reason"], "bridged", "caller {place}");
        assert!(queue.last().unwrap().1.starts_with("bridged after "), "caller {place}: {queue:?}");
        out_of_line.push(dequeued_rank(&s, &ccid));
    }
    // First in, first out.
    let mut sorted = out_of_line.clone();
    sorted.sort();
    assert_eq!(out_of_line, sorted, "bridged in the order they got in line");

    // The carrier's side: every agent leg bridged with the caller it was
    // dialled for, nobody bridged with two, no leg left up.
    let audit = leg_audit(&s);
    assert!(audit["bridged_elsewhere"].as_array().unwrap().is_empty(), "{audit:#}");
    assert!(audit["bridged_to_several"].as_array().unwrap().is_empty(), "{audit:#}");
    assert!(audit["left_up"].as_array().unwrap().is_empty(), "{audit:#}");
}
