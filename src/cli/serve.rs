//! `ivrx serve`: the webhook server, in live mode (Telnyx) or sandbox mode (the
//! embedded sandbox carrier, the default when no Telnyx API key is configured).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{exit, ServeArgs};
use crate::config::{Config, Mode};
use crate::sandbox::{CallReporter, Sandbox, SandboxConfig, SandboxHandle};
use crate::server::{self, App, ServerHandle, ServerOptions, ServerParts};
use crate::store::{Location, SharedStore, StoreOptions};
use crate::symbl::SymblConfig;
use crate::telnyx::{ClientConfig, RetryPolicy, TelnyxClient, WebhookSigner, WebhookVerifier};

/// The API key of the embedded sandbox (loopback only), so `ivrx dial --sandbox` works without flags.
pub const EMBEDDED_SANDBOX_KEY: &str = "sandbox";

/// A running `serve`: the server and, in sandbox mode, the carrier.
pub struct Running {
    /// The webhook server.
    pub server: ServerHandle,
    /// The embedded sandbox, in sandbox mode.
    pub sandbox: Option<SandboxHandle>,
    /// The store.
    pub store: SharedStore,
    /// The database.
    pub db: Location,
    /// The file a generated admin token is kept in.
    pub token_file: PathBuf,
    /// Live or sandbox.
    pub mode: Mode,
}

fn init_tracing(json: bool, filter: &str) {
    let filter = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| filter.to_string());
    let env =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(env).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.with_ansi(super::Output::stderr_color()).try_init() };
}

/// Listens on `addr`; when it is taken and `any_port` is set (the demo), on a
/// free port of the same host instead.
async fn bind(addr: &str, what: &str, flag: &str, any_port: bool) -> anyhow::Result<TcpListener> {
    let err = match TcpListener::bind(addr).await {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    if any_port && err.kind() == std::io::ErrorKind::AddrInUse {
        if let Some((host, _)) = addr.rsplit_once(':') {
            if let Ok(l) = TcpListener::bind(format!("{host}:0")).await {
                return Ok(l);
            }
        }
    }
    Err(anyhow::Error::new(err))
        .with_context(|| format!("cannot listen on {addr} for the {what}: pick another address with {flag}"))
}

/// Starts everything `serve` runs (without waiting), so the demo and tests can drive it.
pub async fn start(args: &ServeArgs, config: Config, mode: Mode) -> anyhow::Result<Running> {
    let db = config.database()?;
    let store_options = StoreOptions {
        redact_pii: config.storage.redact_pii,
        lock_timeout: Duration::from_millis(config.storage.busy_timeout_ms),
        ..StoreOptions::default()
    };
    let store = crate::store::open(&db, store_options).await?;
    let token_file = config.token_file();
    let admin_token = match &config.server.admin_token {
        Some(t) => t.clone(),
        None => crate::server::token::load_or_create(&token_file)
            .with_context(|| format!("cannot create the admin token file {}", token_file.display()))?,
    };
    let listener = bind(&args.listen, "webhook server", "--listen", args.demo).await?;
    let addr = listener.local_addr()?;
    let built = super::engine::build_engine(&config)?;
    for w in &built.warnings {
        tracing::warn!("{w}");
    }
    super::engine::check_symbl(&built.engine).await;
    let engine = built.engine;
    let retry = RetryPolicy {
        max_attempts: config.telnyx.max_attempts,
        attempt_timeout: Duration::from_millis(config.telnyx.attempt_timeout_ms),
        ..RetryPolicy::default()
    };
    let limits = server::Limits {
        header_timeout: Duration::from_millis(config.server.header_timeout_ms),
        body_timeout: Duration::from_millis(config.server.body_timeout_ms),
    };
    let public_webhook_url =
        config.server.public_url.as_ref().map(|u| format!("{}{}", u.trim_end_matches('/'), config.server.webhook_path));
    let notify = server::notify::NotifySettings {
        config: config.notify.clone(),
        from: config.ivr.number.clone(),
        messaging_profile_id: config.telnyx.messaging_profile_id.clone(),
        // Delivery webhooks come to the voice webhook URL (else the messaging profile's).
        webhook_url: public_webhook_url.clone(),
    };
    let options = |client, verifier, settings, load_audit| ServerOptions {
        load_audit,
        notify,
        ..ServerOptions::new(
            ServerParts { listener, verifier, client, engine, store: store.clone(), settings, admin_token },
            &config,
        )
    };
    match mode {
        Mode::Live => {
            let key = config.telnyx.api_key.clone().unwrap_or_default();
            let verifier = WebhookVerifier::from_base64(config.telnyx.public_key.as_deref().unwrap_or(""))?;
            let client =
                TelnyxClient::new(ClientConfig { base_url: config.telnyx.api_base.clone(), api_key: key, retry })?;
            let webhook_url = public_webhook_url;
            let connection_id = config.telnyx.connection_id.clone().unwrap_or_default();
            let settings = Arc::new(config.session_settings(connection_id, webhook_url));
            // Against a standalone sandbox carrier, load runs audit the store through this server.
            let load_audit = !is_telnyx(&config.telnyx.api_base);
            let server = server::start_with(options(client, verifier, settings, load_audit), limits).await?;
            Ok(Running { server, sandbox: None, store, db, token_file, mode })
        }
        Mode::Sandbox => {
            if config.engine.is_symbl_pstn() && SymblConfig::from_env().base_url == crate::symbl::DEFAULT_API_BASE {
                tracing::warn!(
                    "Symbl PSTN mode with the sandbox carrier: Symbl's service cannot call the sandbox's numbers, \
                     so calls fall back to the local engine once Symbl has not called in"
                );
            }
            let time_scale = args.time_scale.unwrap_or(if args.demo { 5.0 } else { 1.0 });
            let sandbox_listener = bind(&args.sandbox_listen, "sandbox carrier", "--sandbox-listen", args.demo).await?;
            let sandbox_addr = sandbox_listener.local_addr()?;
            let webhook_url = format!("http://{addr}{}", config.server.webhook_path);
            let signer = WebhookSigner::generate();
            let client = TelnyxClient::new(ClientConfig {
                base_url: format!("http://{sandbox_addr}/v2"),
                api_key: EMBEDDED_SANDBOX_KEY.into(),
                retry,
            })?;
            let settings = Arc::new(config.session_settings(config.sandbox.connection_id.clone(), None));
            // Load runs (`ivrx dial --sandbox --load`) audit the store through this server.
            let server = server::start_with(options(client, signer.verifier(), settings, true), limits).await?;
            let mut sc = SandboxConfig::new(webhook_url);
            sc.api_key = EMBEDDED_SANDBOX_KEY.into();
            sc.signer = signer;
            sc.time_scale = time_scale;
            sc.connection_id = config.sandbox.connection_id.clone();
            sc.record_log = false;
            sc.chaos = config.sandbox.chaos.clone();
            if !config.sandbox.clock_hold {
                sc.delivery.hold_after = None;
                tracing::info!(
                    "sandbox clock hold off: calls run on when the server falls behind, as on a real carrier"
                );
            }
            sc.agents.extend(config.sandbox.agent_behaviours()?);
            sc.reporter = Some(reporter(server.app.clone()));
            sc.validate().map_err(|e| anyhow::anyhow!("sandbox: {e}"))?;
            let sandbox = Sandbox::start(sc, sandbox_listener).await?;
            Ok(Running { server, sandbox: Some(sandbox), store, db, token_file, mode })
        }
    }
}

/// True when `api_base` is Telnyx's own API (any `telnyx.com` host), not a
/// stand-in such as `ivrx sandbox`.
fn is_telnyx(api_base: &str) -> bool {
    match reqwest::Url::parse(api_base).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)) {
        Some(host) => host == "telnyx.com" || host.ends_with(".telnyx.com"),
        None => true,
    }
}

/// Answers the sandbox's `/report` from the server's store.
fn reporter(app: Arc<App>) -> CallReporter {
    Arc::new(move |ccid: String| {
        let app = app.clone();
        Box::pin(async move {
            let r = server::api::report_for_call(&app, &ccid, Duration::from_secs(60)).await?;
            serde_json::to_value(r).ok()
        })
    })
}

/// Runs `ivrx serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = super::load_config(args.config.as_deref())?;
    if let Some(db) = &args.db {
        config.storage.db = Some(db.clone());
    }
    if args.no_clock_hold {
        config.sandbox.clock_hold = false;
    }
    let mode = config.mode(args.sandbox || args.demo);
    config.validate(mode)?;
    if args.print_config {
        print!("{}", config.to_masked_toml());
        return Ok(exit::code(exit::OK));
    }
    if !args.demo {
        init_tracing(args.json, &args.log);
    }
    let running = start(&args, config, mode).await?;
    if args.demo {
        let code =
            super::demo::run(running.sandbox.clone(), &running.server.app, running.server.addr, &running.db).await?;
        shutdown(running).await;
        return Ok(code);
    }
    announce(&running, args.json);
    tokio::signal::ctrl_c().await.ok();
    eprintln!("shutting down…");
    shutdown(running).await;
    Ok(exit::code(exit::OK))
}

async fn shutdown(running: Running) {
    if let Some(s) = &running.sandbox {
        s.shutdown();
    }
    running.server.shutdown().await;
    let _ = running.store.flush().await;
}

/// Where `ivrx dial --sandbox` looks for the sandbox carrier unless told otherwise.
pub const DEFAULT_SANDBOX_URL: &str = "http://127.0.0.1:8090";

/// The flags `ivrx watch` needs to find this server when it is not at the defaults.
fn watch_flags(addr: std::net::SocketAddr, token_file: &Path) -> String {
    let mut flags = String::new();
    let server = format!("http://{addr}");
    if server != super::DEFAULT_SERVER {
        flags.push_str(&format!(" --server {server}"));
    }
    if token_file != crate::config::default_token_file() {
        flags.push_str(&format!(" --token-file {}", token_file.display()));
    }
    flags
}

fn announce(r: &Running, json_logs: bool) {
    let addr = r.server.addr;
    let token_file = &r.token_file;
    match (&r.sandbox, r.mode) {
        (Some(s), _) => {
            tracing::info!(
                server = %format!("http://{addr}"),
                sandbox = %s.base_url(),
                public_key = %s.public_key_base64(),
                db = %r.db,
                admin_token_file = %token_file.display(),
                "SANDBOX MODE: no TELNYX_API_KEY configured (or --sandbox); calls come from the embedded sandbox carrier"
            );
            if json_logs {
                return;
            }
            let sandbox_url = s.base_url();
            let dial_flags = if sandbox_url == DEFAULT_SANDBOX_URL {
                String::new()
            } else {
                format!(" --sandbox-url {sandbox_url}")
            };
            eprintln!(
                "\nivrx is serving in SANDBOX mode.\n  webhook server  http://{addr}\n  sandbox carrier {sandbox_url}\n  database        {}\n  admin token     {}\n\nTry, in other terminals:\n  ivrx watch --latest{}\n  ivrx dial --sandbox{dial_flags} --script frustrated\n",
                r.db,
                token_file.display(),
                watch_flags(addr, token_file),
            );
        }
        (None, _) => {
            tracing::info!(
                server = %format!("http://{addr}"),
                db = %r.db,
                admin_token_file = %token_file.display(),
                "LIVE MODE: webhooks from Telnyx, commands to the Telnyx API"
            );
            if json_logs {
                return;
            }
            eprintln!(
                "\nivrx is serving in LIVE mode on http://{addr} (expose it, e.g. `ngrok http {}`,\nand set the Call Control application's webhook URL to https://<public host>/webhooks/telnyx).\n  database     {}\n  admin token  {}\n",
                addr.port(),
                r.db,
                token_file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_telnyx;

    #[test]
    fn only_telnyx_hosts_are_telnyx() {
        assert!(is_telnyx(crate::telnyx::DEFAULT_API_BASE));
        assert!(is_telnyx("https://API.Telnyx.com/v2"));
        assert!(is_telnyx("not a url"), "unparseable: treated as the real API (no audit endpoints)");
        assert!(!is_telnyx("http://127.0.0.1:8090/v2"));
        assert!(!is_telnyx("https://telnyx.com.example.org/v2"));
    }
}
