//! Hostile input, security, privacy and observability, against the real
//! `ivrx serve` binary: live mode (a Telnyx API key configured, the carrier a
//! loopback stand-in) for signatures and secrets, sandbox mode for throwing
//! junk at every endpoint of the server and the embedded sandbox.

mod carrier;
mod serve_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use carrier::{count, rt, wait_for, Carrier, LiveServe};
use ivrx::telnyx::WebhookSigner;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// A live server whose carrier signs with a key the test also holds.
fn live(config: &str) -> (Carrier, LiveServe, WebhookSigner) {
    let signer = WebhookSigner::from_bytes(&[7; 32]);
    let s2 = signer.clone();
    let c = Carrier::start(10.0, move |s| s.signer = s2);
    let s = LiveServe::start(&c, config);
    (c, s, signer)
}

/// POSTs `body` with these headers; (status, JSON body or Null).
fn post(url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    rt().block_on(async move {
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

fn envelope(id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "data": {"record_type": "event", "event_type": "call.hangup", "id": id,
                 "occurred_at": chrono::Utc::now().to_rfc3339(),
                 "payload": {"call_control_id": "v3:nobody", "hangup_cause": "normal_clearing"}},
        "meta": {"attempt": 1, "delivered_to": "http://x/webhooks/telnyx"}
    }))
    .unwrap()
}

type Headers = Vec<(&'static str, String)>;

fn signed(signer: &WebhookSigner, ts: i64, body: &[u8]) -> Headers {
    vec![
        ("content-type", "application/json".into()),
        ("telnyx-signature-ed25519", signer.sign(ts, body)),
        ("telnyx-timestamp", ts.to_string()),
    ]
}

#[test]
fn live_mode_refuses_bad_signatures_and_bad_bodies_with_clean_4xx() {
    let (_c, s, signer) = live("[server]\nmax_body_bytes = 4096\n");
    let hook = format!("{}/webhooks/telnyx", s.url);
    let now = chrono::Utc::now().timestamp();
    let body = envelope("e-1");
    let other = WebhookSigner::generate();
    let good = |ts: i64| signed(&signer, ts, &body);
    let without = |name: &str| good(now).into_iter().filter(|(k, _)| *k != name).collect::<Vec<_>>();
    let with_sig = |sig: &str| {
        let mut h = without("telnyx-signature-ed25519");
        h.push(("telnyx-signature-ed25519", sig.to_string()));
        h
    };
    let cases: Vec<(&str, Headers, Vec<u8>)> = vec![
        ("forged", signed(&other, now, &body), body.clone()),
        ("stale", good(now - 600), body.clone()),
        ("from the future", good(now + 600), body.clone()),
        ("missing signature", without("telnyx-signature-ed25519"), body.clone()),
        ("missing timestamp", without("telnyx-timestamp"), body.clone()),
        ("not base64", with_sig("%%%not-base64%%%"), body.clone()),
        ("wrong length", with_sig("AAAA"), body.clone()),
        ("tampered body", good(now), envelope("e-2")),
    ];
    for (what, headers, b) in cases {
        let (status, err) = post(&hook, b, &headers);
        assert_eq!(status, 401, "{what}: {err}");
        assert!(err["error"].as_str().unwrap_or_default().starts_with("signature refused"), "{what}: {err}");
    }
    // A good one is accepted once; the same bytes and signature again are a
    // duplicate delivery (acknowledged, nothing done); that signature over
    // other bytes is a replay.
    let (status, ok) = post(&hook, body.clone(), &good(now));
    assert_eq!((status, ok["status"].as_str()), (200, Some("unrouted")), "{ok}");
    let (status, ok) = post(&hook, body.clone(), &good(now));
    assert_eq!((status, ok["status"].as_str()), (200, Some("duplicate")), "{ok}");
    let (status, err) = post(&hook, envelope("e-2"), &good(now));
    assert_eq!(status, 401);
    assert!(err["error"].as_str().unwrap_or_default().contains("replayed"), "{err}");
    // Bodies: too large (the configured limit), not JSON, not an envelope, empty, wrong type.
    let big = serde_json::to_vec(
        &json!({"data": {"id": "e-3", "event_type": "call.hangup", "payload": {"x": "y".repeat(5000)}}}),
    )
    .unwrap();
    let (status, err) = post(&hook, big.clone(), &signed(&signer, now, &big));
    assert_eq!(status, 413, "{err}");
    assert!(err["error"].is_string());
    for (what, b) in [
        ("not JSON", b"{not json".to_vec()),
        ("not an envelope", br#"[1, 2, 3]"#.to_vec()),
        ("empty", Vec::new()),
        (
            "a field of the wrong type",
            br#"{"data": {"event_type": "call.dtmf.received", "id": "e-4", "payload": {"digit": 7}}}"#.to_vec(),
        ),
    ] {
        let (status, err) = post(&hook, b.clone(), &signed(&signer, now, &b));
        assert_eq!(status, 400, "{what}: {err}");
        assert!(err["error"].is_string(), "{what}: {err}");
    }
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]
    {
        let b = envelope("e-5");
        let mut h = signed(&signer, now, &b);
        h[0].1 = ct.to_string();
        let (status, err) = post(&hook, b, &h);
        assert_eq!(status, 415, "{ct}: {err}");
    }
    let (_, metrics) = s.get("/metrics");
    for outcome in ["bad_signature", "replayed", "malformed", "bad_content_type"] {
        assert!(metrics.contains(&format!("outcome=\"{outcome}\"")), "{outcome} not counted:\n{metrics}");
    }
}

/// Waits until the server closes `stream` (EOF or reset), at most `limit`;
/// returns what it answered before closing.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(String::from_utf8_lossy(&got).into_owned()),
        }
    }
    None
}

#[test]
fn slow_clients_are_cut_off_and_do_not_tie_up_the_server() {
    let (_c, s, _) = live("[server]\nheader_timeout_ms = 500\nbody_timeout_ms = 500\n");
    let addr = s.url.trim_start_matches("http://").to_string();
    let connect = || TcpStream::connect(&addr).expect("connect");
    // Many connections that send nothing, trickle their headers, or trickle their body.
    let idle: Vec<TcpStream> = (0..30).map(|_| connect()).collect();
    let trickle = |head: &'static [u8], bytes: &'static [u8]| {
        let mut stream = connect();
        std::thread::spawn(move || {
            let _ = stream.write_all(head);
            for b in bytes.iter().cycle().take(400) {
                if stream.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let head_tricklers: Vec<_> =
        (0..10).map(|_| trickle(b"POST /webhooks/telnyx HTTP/1.1\r\n", b"X-Slow: aaaa\r\n")).collect();
    let body_tricklers: Vec<_> = (0..10)
        .map(|_| trickle(b"POST /webhooks/telnyx HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n", b"{"))
        .collect();
    // Meanwhile the server answers everyone else at once.
    for _ in 0..10 {
        let t = Instant::now();
        let (status, _) = s.get("/healthz");
        assert_eq!(status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "healthz took {:?}", t.elapsed());
    }
    // Idle connections are closed after the header deadline.
    for mut c in idle {
        assert!(closed_within(&mut c, Duration::from_secs(5)).is_some(), "an idle connection was kept open");
    }
    // A body that does not arrive in time gets 408 and the connection is closed.
    let mut slow_body = connect();
    slow_body
        .write_all(b"POST /webhooks/telnyx HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .unwrap();
    let answer = closed_within(&mut slow_body, Duration::from_secs(5)).expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Every trickler was cut off long before it finished (400 bytes × 20 ms = 8 s).
    let t = Instant::now();
    for h in head_tricklers.into_iter().chain(body_tricklers) {
        h.join().unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(6), "tricklers were served for {:?}", t.elapsed());
    let (status, _) = s.get("/healthz");
    assert_eq!(status, 200);
}

/// A random request body: bytes, or JSON of a random shape.
fn junk(rng: &mut StdRng) -> Vec<u8> {
    fn value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.gen_range(0..if depth > 3 { 5 } else { 8 }) {
            0 => Value::Null,
            1 => json!(rng.gen::<bool>()),
            2 => json!(rng.gen::<i64>()),
            3 => json!(rng.gen::<f64>() * 1e6),
            4 => {
                let n = rng.gen_range(0..40);
                Value::String((0..n).map(|_| char::from_u32(rng.gen_range(0..0x3000)).unwrap_or('?')).collect())
            }
            5 => Value::Array((0..rng.gen_range(0..5)).map(|_| value(rng, depth + 1)).collect()),
            _ => {
                const KEYS: &[&str] = &[
                    "data",
                    "id",
                    "event_type",
                    "payload",
                    "call_control_id",
                    "client_state",
                    "command_id",
                    "to",
                    "from",
                    "queue",
                    "script",
                    "step",
                    "number",
                    "behavior",
                    "payload_type",
                    "voice",
                    "meta",
                    "attempt",
                    "transcription_data",
                    "digit",
                    "timeout_secs",
                ];
                let mut m = serde_json::Map::new();
                for _ in 0..rng.gen_range(0..6) {
                    m.insert(KEYS[rng.gen_range(0..KEYS.len())].into(), value(rng, depth + 1));
                }
                Value::Object(m)
            }
        }
    }
    match rng.gen_range(0..4) {
        0 => (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect(),
        1 => format!("{}{}", "[".repeat(rng.gen_range(1..3000)), "]".repeat(rng.gen_range(0..3000))).into_bytes(),
        _ => serde_json::to_vec(&value(rng, 0)).unwrap(),
    }
}

#[test]
fn random_bytes_and_json_at_every_endpoint_never_take_the_server_or_the_sandbox_down() {
    ivrx::http::tls::install_crypto_provider();
    let s = serve_support::Serve::start("", &[]);
    let token = s.token();
    let (server, sandbox) = (s.server.clone(), s.sandbox.clone());
    let mut rng = StdRng::seed_from_u64(42);
    let ids = ["v3:nobody", "%00", "..%2F..", "x", "v3:%ff%fe", "\u{202e}", "9999999999999999999999"];
    let actions = ivrx::telnyx::commands::ACTION_NAMES;
    let mut requests = Vec::new();
    for i in 0..1200 {
        let id = if rng.gen_bool(0.5) {
            ids[rng.gen_range(0..ids.len())].to_string()
        } else {
            format!("{}", rng.gen::<u64>())
        };
        let id = id.replace('/', "%2F").replace(' ', "%20");
        let (base, path, auth) = match i % 14 {
            0 => (&server, "/webhooks/telnyx".to_string(), None),
            1 => (&server, format!("/api/v1/conversations/{id}/transfer"), Some(token.clone())),
            2 => (&server, "/api/v1/calls".into(), Some(token.clone())),
            3 => (&server, format!("/api/v1/conversations/{id}"), Some(token.clone())),
            // A report of an unknown call takes a moment (it may be starting): a few suffice.
            4 if i < 140 => (
                &server,
                format!("/api/v1/calls/{id}/report?wait_secs={}", ["NaN", "inf", "-1", "1e308", "x"][i % 5]),
                Some(token.clone()),
            ),
            4 => (&server, format!("/api/v1/conversations/{id}/events"), Some(token.clone())),
            5 => (&server, "/api/v1/conversations".into(), if rng.gen() { Some("wrong".into()) } else { None }),
            6 => (&server, format!("/{}", ["healthz", "readyz", "metrics", "nope", "api/v1/stats"][i % 5]), None),
            7 => (&sandbox, "/v2/calls".into(), Some("sandbox".into())),
            8 | 9 => (
                &sandbox,
                format!("/v2/calls/{id}/actions/{}", actions[rng.gen_range(0..actions.len())]),
                Some("sandbox".into()),
            ),
            10 => (&sandbox, format!("/v2/calls/{id}"), Some("sandbox".into())),
            11 => (&sandbox, "/sandbox/v1/calls".into(), Some("sandbox".into())),
            12 => (&sandbox, format!("/sandbox/v1/calls/{id}/steps"), Some("sandbox".into())),
            _ => (&sandbox, "/sandbox/v1/parties".into(), if rng.gen() { Some("sandbox".into()) } else { None }),
        };
        let method = match rng.gen_range(0..6) {
            0 => "GET",
            1 => "PUT",
            2 => "DELETE",
            _ => "POST",
        };
        let ct = ["application/json", "text/plain", "application/octet-stream", "application/json; charset=utf-16"]
            [rng.gen_range(0..4)];
        // Unsigned webhooks and requests without the right key never get through.
        let must_refuse = path.starts_with("/webhooks/")
            || (base == &server && path.starts_with("/api/") && auth.as_deref() != Some(token.as_str()))
            || (base == &sandbox && auth.is_none());
        requests.push((method, format!("{base}{path}"), auth, ct, junk(&mut rng), must_refuse));
    }
    let statuses: Vec<(String, String, u16, bool)> = rt().block_on(async {
        let http = reqwest::Client::new();
        let mut out = Vec::new();
        for chunk in requests.chunks(16) {
            let futs = chunk.iter().map(|(method, url, auth, ct, body, must_refuse)| {
                let mut req = http
                    .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
                    .header("content-type", *ct)
                    .body(body.clone())
                    .timeout(Duration::from_secs(10));
                if let Some(a) = auth {
                    req = req.bearer_auth(a);
                }
                async move {
                    let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                    (method.to_string(), url.clone(), status, *must_refuse)
                }
            });
            out.extend(futures_util::future::join_all(futs).await);
        }
        out
    });
    let mut refused = 0;
    for (method, url, status, must_refuse) in &statuses {
        assert!(*status != 0 && *status < 500, "{method} {url} answered {status}");
        if *must_refuse {
            assert!((400..500).contains(status), "{method} {url} answered {status} to junk");
        }
        refused += usize::from((400..500).contains(status));
    }
    assert!(refused * 10 > statuses.len() * 8, "junk was mostly refused: {refused} of {}", statuses.len());
    // Both are still up and serving.
    let (status, _) = s_get(&server, "/healthz");
    assert_eq!(status, 200);
    let (status, _) = s_get(&sandbox, "/sandbox/v1/public-key");
    assert_eq!(status, 200);
    let log = s.log.lock().unwrap().join("\n");
    assert!(!log.contains("panicked"), "{log}");
    let r = s.dial("say hello\nhangup\n");
    assert_eq!(r["end_reason"], "caller_hangup", "a call still goes through: {r}");
}

fn s_get(base: &str, path: &str) -> (u16, String) {
    let url = format!("{base}{path}");
    rt().block_on(async move {
        let r = reqwest::get(url).await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    })
}

// ----- security and privacy

const API_KEY: &str = "KEYsecret-telnyx-api-key-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-secret-token-fedcba9876543210";
const SYMBL_SECRET: &str = "symbl-app-secret-abcdefghij0123456789";

/// Every text stored in the database, as one string.
fn everything_stored(db: &std::path::Path) -> String {
    ivrx::store::sqlite::Reader::new(db.to_path_buf()).every_text().expect("read the store")
}

#[test]
fn secrets_never_appear_in_debug_logs_the_printed_config_or_the_store() {
    ivrx::http::tls::install_crypto_provider();
    let standin = rt()
        .block_on(ivrx_testkit::symbl_standin::SymblStandin::start(ivrx_testkit::symbl_standin::StandinConfig {
            app_id: "symbl-app-id".into(),
            app_secret: SYMBL_SECRET.into(),
            ..Default::default()
        }))
        .expect("symbl stand-in");
    let c = Carrier::start(10.0, |s| s.api_key = API_KEY.into());
    let config = "[engine]\nkind = \"symbl\"\n";
    let symbl_base = standin.base_url();
    let env = [
        ("IVRX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("SYMBL_APP_ID", "symbl-app-id"),
        ("SYMBL_APP_SECRET", SYMBL_SECRET),
        ("SYMBL_API_BASE", symbl_base.as_str()),
    ];
    let s = LiveServe::start_with(&c, config, &env, &["--log", "debug"]);
    assert!(s.log_text().contains("Symbl is usable"), "the engine really logged in:\n{}", s.log_text());
    let call =
        c.call("say my card is 4111 1111 1111 1111 and it was charged twice\npress 0\npause 30\nsay thanks\nhangup\n");
    c.wait_hangup(&call, 600);
    let r = s.report(&call);
    assert_eq!(r["transferred"], true, "{r}");
    assert!(r["utterances"].as_array().unwrap().iter().any(|u| u["engine"] == "symbl"), "scored by Symbl: {r}");
    let secrets = [API_KEY, ADMIN_TOKEN, SYMBL_SECRET];
    let log = s.log_text();
    assert!(log.lines().count() > 50, "debug logging was on");
    let stored = everything_stored(&s.db());
    for secret in secrets {
        assert!(!log.contains(secret), "a secret is in the log");
        assert!(!stored.contains(secret), "a secret is in the database");
    }
    // --print-config with the same environment masks them too.
    let mut cmd = serve_support::ivrx(s.dir.path());
    cmd.args(["serve", "--print-config", "--config"]).arg(s.dir.path().join("ivrx.toml"));
    cmd.env("TELNYX_API_KEY", API_KEY).env("TELNYX_PUBLIC_KEY", c.sandbox.public_key_base64());
    cmd.env("TELNYX_CONNECTION_ID", "1").envs(env);
    let out = cmd.output().expect("print-config");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && printed.contains("[telnyx]"), "{printed}");
    for secret in secrets {
        assert!(!printed.contains(secret), "a secret is in --print-config:\n{printed}");
    }
    assert!(printed.contains("********"), "secrets are shown masked:\n{printed}");
}

#[test]
fn the_admin_and_live_stream_apis_need_the_generated_token() {
    ivrx::http::tls::install_crypto_provider();
    let s = serve_support::Serve::start("", &[]);
    let file = s.dir.path().join("admin-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("token file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated token is readable by its owner only");
    let token = s.token();
    assert!(token.len() >= 40);
    let r = s.dial("say hello i need help\nhangup\n");
    let conv = r["conversation_id"].as_str().unwrap().to_string();
    let get = |path: &str, auth: Option<&str>| {
        let mut req = reqwest::Client::new().get(format!("{}{path}", s.server));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        rt().block_on(async move {
            let r = req.send().await.expect("request");
            let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            (r.status().as_u16(), ct, r.text().await.unwrap_or_default())
        })
    };
    for path in [
        "/api/v1/conversations".to_string(),
        format!("/api/v1/conversations/{conv}"),
        format!("/api/v1/conversations/{conv}/events"),
        "/api/v1/stats".into(),
    ] {
        assert_eq!(get(&path, None).0, 401, "{path} without a token");
        assert_eq!(get(&path, Some("not-the-token")).0, 401, "{path} with a wrong token");
        assert_eq!(get(&path, Some(&token)).0, 200, "{path} with the token");
    }
    let (_, ct, body) = get(&format!("/api/v1/conversations/{conv}/events"), Some(&token));
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert!(body.contains("event: call_ended"), "{body}");
}

#[test]
fn pii_is_redacted_before_storage_unless_turned_off() {
    ivrx::http::tls::install_crypto_provider();
    let script =
        "say this is ridiculous my card 4111 1111 1111 1111 was charged twice get me a real person\npause 40\nhangup\n";
    let on = serve_support::Serve::start("", &[]);
    let off = serve_support::Serve::start("[storage]\nredact_pii = false\n", &[]);
    let r = on.dial(script);
    let r_off = off.dial(script);
    assert_eq!(r["transferred"], true, "{r}");
    let stored = everything_stored(&on.db());
    // (Ids may contain "4111"; the card's groups together may not.)
    let leaks: Vec<&str> = stored.lines().filter(|l| l.contains("4111 1111") || l.contains("card 4111")).collect();
    assert!(leaks.is_empty(), "a card number was stored: {leaks:?}");
    for (table, sql) in [
        ("utterances", "SELECT count(*) FROM utterances WHERE text LIKE '%[card]%'"),
        ("decisions", "SELECT count(*) FROM decisions WHERE trigger_text LIKE '%[card]%'"),
        ("webhooks", "SELECT count(*) FROM webhooks WHERE body LIKE '%[card]%'"),
        ("events", "SELECT count(*) FROM events WHERE body LIKE '%[card]%'"),
    ] {
        assert!(count(&on.db(), sql) > 0, "{table} keeps the redacted text");
    }
    assert_eq!(r_off["transferred"], true);
    let stored = everything_stored(&off.db());
    assert!(stored.contains("4111 1111 1111 1111"), "with redact_pii = false the words are kept");
    assert!(!stored.contains("[card]"));
}

// ----- observability

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn health_readiness_and_metrics_after_real_calls() {
    // One API request in ten fails, and commands are not retried, so some fail for good.
    let c = Carrier::start(10.0, |s| {
        s.chaos.api_error_rate = 0.1;
        s.chaos.seed = Some(3);
    });
    let config = "[telnyx]\nmax_attempts = 1\nretry_window_ms = 0\n[server]\nended_call_grace_secs = 1\n";
    let s = LiveServe::start(&c, config);
    assert_eq!(s.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(s.get("/readyz"), (200, "ready\n".into()));
    let calls = [
        c.call("say hi i need help\npress 0\npause 20\nhangup\n"),
        c.call(include_str!("../examples/frustrated.ivrx")),
    ];
    let db = s.db();
    wait_for("two calls in progress", Duration::from_secs(30), || {
        (count(&db, "SELECT count(*) FROM conversations WHERE status = 'active'") == 2).then_some(())
    });
    let (_, m) = s.get("/metrics");
    assert_eq!(metric(&m, "ivrx_active_calls", &[]), 2.0, "{m}");
    for call in &calls {
        c.wait_hangup(call, 600);
        s.report(call);
    }
    let m = wait_for("the calls to leave memory", Duration::from_secs(20), || {
        let (_, m) = s.get("/metrics");
        (metric(&m, "ivrx_active_calls", &[]) == 0.0).then_some(m)
    });
    // Two callers, and the agent legs dialled for them.
    let initiated = metric(&m, "ivrx_webhooks_total", &[("event_type", "call.initiated"), ("outcome", "accepted")]);
    assert!(initiated >= 3.0, "{m}");
    assert!(metric(&m, "ivrx_webhooks_total", &[("event_type", "call.transcription"), ("outcome", "accepted")]) > 4.0);
    assert!(metric(&m, "ivrx_command_seconds_count", &[("action", "answer")]) >= 2.0, "{m}");
    assert!(metric(&m, "ivrx_command_seconds_count", &[("action", "dial")]) >= 1.0, "{m}");
    let errors = metric(&m, "ivrx_command_errors_total", &[("kind", "server")]);
    let failed = count(&db, "SELECT count(*) FROM events WHERE kind = 'command_failed'");
    assert!(errors >= 1.0, "commands that failed for good are counted by action and kind:\n{m}");
    assert_eq!(errors as i64, failed, "one error per failed command");
    // Decisions by reason, as stored.
    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT reason, count(*) FROM decisions GROUP BY reason").unwrap();
    let by_reason: Vec<(String, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert!(!by_reason.is_empty(), "a call was transferred");
    for (reason, n) in &by_reason {
        assert_eq!(metric(&m, "ivrx_decisions_total", &[("reason", reason)]), *n as f64, "{reason}:\n{m}");
    }
    assert_eq!(metric(&m, "ivrx_decisions_total", &[]) as i64, by_reason.iter().map(|(_, n)| n).sum::<i64>());
    assert!(metric(&m, "ivrx_webhook_ack_seconds_count", &[]) > 10.0);
    assert_eq!(metric(&m, "ivrx_store_failing", &[]), 0.0);
    assert_eq!(s.get("/readyz").0, 200);
}
