//! Speed of the decision path: a signed final-transcript webhook in, the
//! transfer command out. Per iteration: verify the Ed25519 signature, parse the
//! envelope, hand the event to the call session, score the utterance with the
//! local engine, hand the score back, and take the transfer command the policy
//! decided on. That is all the CPU work between the webhook's arrival and the
//! transfer command leaving (storage and the network are not on it).
//!
//! `cargo bench --bench decision` prints criterion's figures and, at the end,
//! ratios against two baselines measured in the same run: the signature check
//! alone, and raw VADER on the same utterance; and the same path with the
//! policy's escalation signals off (the policy before them).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::Criterion;
use ivrx::intel::{LocalEngine, Scorer};
use ivrx::policy::PolicyConfig;
use ivrx::session::{Command, Effect, Input, Request, Session, SessionSettings};
use ivrx::telnyx::{Envelope, WebhookSigner, WebhookVerifier};
use serde_json::{json, Value};
use vader_parity::SentimentIntensityAnalyzer;

const CALLER: &str = "v3:bench-caller";
const SCRIPT: &str = include_str!("../examples/frustrated.ivrx");

/// A signed webhook as the server receives it.
struct Signed {
    body: Vec<u8>,
    signature: String,
    timestamp: String,
}

struct Fixture {
    signer: WebhookSigner,
    verifier: WebhookVerifier,
    engine: LocalEngine,
    vader: SentimentIntensityAnalyzer,
    now: i64,
    n: u64,
}

impl Fixture {
    fn new() -> Self {
        let signer = WebhookSigner::generate();
        let verifier = signer.verifier();
        let now = Utc::now().timestamp();
        Fixture {
            signer,
            verifier,
            engine: LocalEngine::default(),
            vader: SentimentIntensityAnalyzer::new(),
            now,
            n: 0,
        }
    }

    fn webhook(&mut self, event_type: &str, mut payload: Value, client_state: &str) -> Signed {
        self.n += 1;
        payload["call_control_id"] = json!(CALLER);
        payload["client_state"] = json!(client_state);
        let body = json!({"data": {"record_type": "event", "event_type": event_type,
            "id": format!("0ccc7b54-4df3-4bca-a65a-{:012}", self.n),
            "occurred_at": "2026-01-01T12:00:00.000000Z", "payload": payload},
            "meta": {"attempt": 1, "delivered_to": "http://127.0.0.1/webhooks/telnyx"}});
        let body = serde_json::to_vec(&body).unwrap();
        let signature = self.signer.sign(self.now, &body);
        Signed { body, signature, timestamp: self.now.to_string() }
    }

    fn transcript(&mut self, text: &str, client_state: &str) -> Signed {
        let data = json!({"transcript": text, "confidence": 0.93, "is_final": true, "transcription_track": "inbound"});
        self.webhook("call.transcription", json!({"transcription_data": data}), client_state)
    }

    /// The whole path for one webhook; returns the commands it produced.
    fn decide(&self, session: &mut Session, w: &Signed) -> Vec<Command> {
        self.verifier.verify(Some(&w.signature), Some(&w.timestamp), &w.body, self.now).expect("signature");
        let event = Envelope::parse(&w.body).and_then(|e| e.event()).expect("event");
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 30).unwrap();
        let mut fx = session.handle(Input::Webhook { event: Box::new(event), occurred_at: Some(at), received_at: at });
        let mut sent = Vec::new();
        while let Some(e) = fx.pop() {
            match e {
                Effect::Score(req) => {
                    let score = self.engine.score(&req.text);
                    fx.extend(session.handle(Input::Scored { seq: req.seq, score, at }));
                }
                Effect::Send(c) => sent.push(c),
                _ => {}
            }
        }
        sent
    }
}

fn is_transfer(c: &Command) -> bool {
    c.is_transfer_start()
}

/// The session just before the utterance that turns the call, that
/// utterance's webhook, and a webhook for an utterance that decides nothing.
fn scenario(f: &mut Fixture, settings: SessionSettings) -> (Session, Signed, Signed) {
    let mut s = Session::new("bench", Arc::new(settings));
    let initiated = f.webhook(
        "call.initiated",
        json!({"call_leg_id": "leg-a", "call_session_id": "sess-a", "direction": "incoming",
               "from": "+15551230000", "to": "+18005550100", "state": "parked"}),
        "",
    );
    let answer = f.decide(&mut s, &initiated);
    let state = answer
        .iter()
        .find_map(|c| match &c.request {
            Request::Action(a) if a.name() == "answer" => a.client_state().map(str::to_string),
            _ => None,
        })
        .expect("the session answers the call");
    let answered = f.webhook("call.answered", json!({}), &state);
    f.decide(&mut s, &answered);
    let lines: Vec<&str> = SCRIPT.lines().filter_map(|l| l.strip_prefix("say ")).collect();
    let calm = f.transcript(lines[0], &state);
    for line in &lines {
        let w = f.transcript(line, &state);
        let before = s.clone();
        if f.decide(&mut s, &w).iter().any(is_transfer) {
            return (before, w, calm);
        }
    }
    panic!("the frustrated caller was never transferred");
}

fn per_iter(mut f: impl FnMut(), n: u32) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn main() {
    let mut f = Fixture::new();
    let (before, trigger, calm) = scenario(&mut f, SessionSettings::default());
    let off = SessionSettings { policy: PolicyConfig::default().without_signals(), ..SessionSettings::default() };
    let (before_off, trigger_off, _) = scenario(&mut f, off);
    let text = SCRIPT.lines().filter_map(|l| l.strip_prefix("say ")).nth(2).unwrap().to_string();
    let f = f;

    let mut c = Criterion::default().configure_from_args().warm_up_time(Duration::from_millis(500));
    {
        let mut g = c.benchmark_group("decision");
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("signature check alone", |b| {
            b.iter(|| f.verifier.verify(Some(&trigger.signature), Some(&trigger.timestamp), &trigger.body, f.now))
        });
        g.bench_function("vader alone", |b| b.iter(|| f.vader.polarity_scores(black_box(&text))));
        g.bench_function("webhook to transfer command", |b| {
            b.iter_batched(
                || before.clone(),
                |mut s| assert!(f.decide(&mut s, &trigger).iter().any(is_transfer)),
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_function("webhook that decides nothing", |b| {
            b.iter_batched(|| before.clone(), |mut s| f.decide(&mut s, &calm), criterion::BatchSize::SmallInput)
        });
        g.finish();
    }
    c.final_summary();

    // Side-by-side ratios, interleaved rounds so machine noise hits all alike.
    let n = 2_000;
    let (mut sig, mut vader, mut path, mut clone) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut path_off = Duration::ZERO;
    for _ in 0..5 {
        sig += per_iter(
            || {
                drop(black_box(f.verifier.verify(
                    Some(&trigger.signature),
                    Some(&trigger.timestamp),
                    &trigger.body,
                    f.now,
                )))
            },
            n,
        );
        vader += per_iter(
            || {
                black_box(f.vader.polarity_scores(black_box(&text)));
            },
            n,
        );
        clone += per_iter(|| drop(black_box(before.clone())), n);
        path += per_iter(
            || {
                let mut s = before.clone();
                black_box(f.decide(&mut s, &trigger));
            },
            n,
        );
        path_off += per_iter(
            || {
                let mut s = before_off.clone();
                black_box(f.decide(&mut s, &trigger_off));
            },
            n,
        );
    }
    let path = path.saturating_sub(clone);
    let path_off = path_off.saturating_sub(clone);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("\nwebhook → transfer command, against baselines in the same run:");
    println!("  decision path / signature check alone: {:.2}×", ratio(path, sig));
    println!("  decision path / raw VADER on the utterance: {:.2}×", ratio(path, vader));
    println!("  decision path / the same with the escalation signals off: {:.2}×", ratio(path, path_off));
    println!("  decision path, signals off / signature check alone: {:.2}×", ratio(path_off, sig));
    println!("  decision path: {:.1} µs per webhook (this run)", path.as_secs_f64() / 5.0 * 1e6);
}
