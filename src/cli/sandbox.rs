//! `ivrx sandbox`: runs the sandbox carrier alone.

use std::process::ExitCode;

use anyhow::Context as _;

use super::{exit, SandboxArgs};
use crate::sandbox::{parse_agent_spec, Chaos, Sandbox, SandboxConfig};
use crate::telnyx::WebhookSigner;

/// Runs the sandbox carrier until interrupted.
pub async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.json);
    let config = config_from_args(&args)?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| {
        format!("cannot listen on {} (--listen); pick a free address such as 127.0.0.1:0", args.listen)
    })?;
    let agents: Vec<String> = config.agents.iter().map(|(n, b)| format!("{n}={b}")).collect();
    let webhook_urls = config.webhook_urls.clone();
    let failover_url = config.failover_url.clone();
    let time_scale = config.time_scale;
    let clock_hold = config.delivery.hold_after.is_some();
    let default_key = config.api_key == "sandbox";
    let sandbox = Sandbox::start(config, listener).await.context("cannot start the sandbox carrier")?;

    if args.json {
        let line = serde_json::json!({
            "event": "listening",
            "base_url": sandbox.base_url(),
            "api_base": sandbox.api_base(),
            "public_key": sandbox.public_key_base64(),
            "connection_id": sandbox.connection_id(),
            "webhook_url": webhook_urls.first(),
            "webhook_urls": webhook_urls,
            "failover_url": failover_url,
            "time_scale": time_scale,
            "clock_hold": clock_hold,
            "agents": agents,
        });
        println!("{line}");
    } else {
        let key =
            if default_key { "Authorization: Bearer sandbox".to_string() } else { "the key from --api-key".into() };
        println!("ivrx sandbox carrier listening on {}", sandbox.base_url());
        println!("  REST API base   {}   ({key})", sandbox.api_base());
        match webhook_urls.as_slice() {
            [one] => println!("  webhooks to     {one}"),
            many => {
                println!("  webhooks to     {}  (round-robin, passing over a URL that fails)", many[0]);
                for url in &many[1..] {
                    println!("                  {url}");
                }
            }
        }
        if let Some(f) = &failover_url {
            println!("  failover        {f}");
        }
        println!("  public key      {}", sandbox.public_key_base64());
        println!("                  (verify webhooks with TELNYX_PUBLIC_KEY set to this key)");
        println!("  connection id   {}", sandbox.connection_id());
        if clock_hold {
            println!("  time scale      x{time_scale} (at most: the clock waits for an application slow to answer)");
        } else {
            println!("  time scale      x{time_scale} (the clock runs on even when the application falls behind)");
        }
        if agents.is_empty() {
            println!("  agents          every number answers after 3 s with the standard agent script");
        } else {
            println!("  agents          {}  (other numbers: the standard agent)", agents.join(", "));
        }
        println!("Press Ctrl-C to stop.");
    }

    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    sandbox.shutdown();
    if !args.json {
        println!("sandbox carrier stopped");
    }
    Ok(exit::code(exit::OK))
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A subscriber may already be installed (tests); keep it then.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

fn rate(flag: &str, v: f64) -> anyhow::Result<f64> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        anyhow::bail!("{flag} must be a fraction between 0 and 1 (e.g. 0.1 for 10 %), got {v}")
    }
}

/// Builds the sandbox configuration from the flags, naming the flag and the
/// fix when one is wrong.
pub fn config_from_args(args: &SandboxArgs) -> anyhow::Result<SandboxConfig> {
    let mut config = SandboxConfig::new("");
    config.webhook_urls = args.webhook_urls.clone();
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        anyhow::bail!(
            "--time-scale must be a positive number (1 = real time, 20 = twenty times faster), got {}",
            args.time_scale
        );
    }
    config.time_scale = args.time_scale;
    if args.no_clock_hold {
        config.delivery.hold_after = None;
    }
    config.api_key = args.api_key.trim().to_string();
    if config.api_key.is_empty() || config.api_key.chars().any(char::is_whitespace) {
        anyhow::bail!("--api-key must be a non-empty token without spaces");
    }
    config.failover_url = args.failover_url.clone();
    if let Some(path) = &args.signing_key {
        config.signer = WebhookSigner::load(path).context("--signing-key")?;
    }
    for spec in &args.agents {
        let agent = parse_agent_spec(spec).map_err(|e| anyhow::anyhow!("--agent {spec}: {e}"))?;
        config.agents.push(agent);
    }
    config.chaos = Chaos {
        duplicate_rate: rate("--duplicate-rate", args.duplicate_rate)?,
        reorder_rate: rate("--reorder-rate", args.reorder_rate)?,
        max_delay_ms: args.max_delay_ms,
        seed: args.seed,
        api_error_rate: rate("--api-error-rate", args.api_error_rate)?,
        api_rate_limit_rate: rate("--api-rate-limit-rate", args.api_rate_limit_rate)?,
        api_timeout_rate: rate("--api-timeout-rate", args.api_timeout_rate)?,
        api_drop_rate: rate("--api-drop-rate", args.api_drop_rate)?,
        api_drop_after_rate: rate("--api-drop-after-rate", args.api_drop_after_rate)?,
        ..Chaos::default()
    };
    config.validate().map_err(|e| {
        let msg = e.to_string().replace("webhook_url", "--webhook-url").replace("failover_url", "--failover-url");
        anyhow::anyhow!(msg)
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> SandboxArgs {
        let mut argv = vec!["ivrx", "sandbox", "--webhook-url", "http://127.0.0.1:8080/webhooks"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Sandbox(a) => a,
            _ => unreachable!(),
        }
    }

    fn err(extra: &[&str]) -> String {
        config_from_args(&args(extra)).unwrap_err().to_string()
    }

    #[test]
    fn flags_become_the_config() {
        let c = config_from_args(&args(&[
            "--time-scale",
            "20",
            "--agent",
            "+15550001=answer:4",
            "--agent",
            "+15550002=no-answer",
            "--duplicate-rate",
            "0.5",
            "--api-rate-limit-rate",
            "0.25",
            "--seed",
            "9",
        ]))
        .unwrap();
        assert_eq!(c.time_scale, 20.0);
        assert_eq!(c.api_key, "sandbox");
        assert_eq!(c.agents.len(), 2);
        assert_eq!(c.agents[1].1, crate::sandbox::PartyBehavior::NoAnswer);
        assert_eq!(c.chaos.duplicate_rate, 0.5);
        assert_eq!(c.chaos.api_rate_limit_rate, 0.25);
        assert_eq!(c.chaos.seed, Some(9));
        assert!(c.delivery.hold_after.is_some(), "the clock waits for a slow application unless told not to");
        let c = config_from_args(&args(&["--no-clock-hold"])).unwrap();
        assert_eq!(c.delivery.hold_after, None);
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_fix() {
        assert!(err(&["--time-scale", "0"]).contains("--time-scale must be a positive number"));
        assert!(err(&["--time-scale=-3"]).contains("--time-scale"));
        assert!(err(&["--duplicate-rate", "1.5"]).contains("--duplicate-rate must be a fraction between 0 and 1"));
        assert!(err(&["--api-timeout-rate=-0.1"]).contains("--api-timeout-rate"));
        let e = err(&["--agent", "+1555=sometimes"]);
        assert!(e.contains("--agent +1555=sometimes") && e.contains("answer:SECONDS"), "{e}");
        assert!(err(&["--agent", "+1555"]).contains("NUMBER=BEHAVIOUR"));
        assert!(err(&["--failover-url", "nope"]).contains("--failover-url must be an absolute"));
        let e = err(&["--signing-key", "/nonexistent/key"]);
        assert!(e.contains("--signing-key"), "{e}");
    }

    #[test]
    fn webhook_url_repeats_for_several_instances() {
        let c = config_from_args(&args(&["--webhook-url", "http://127.0.0.1:8081/webhooks"])).unwrap();
        assert_eq!(c.webhook_urls, ["http://127.0.0.1:8080/webhooks", "http://127.0.0.1:8081/webhooks"]);
        let e = err(&["--webhook-url", "http://127.0.0.1:8080/webhooks"]);
        assert!(e.contains("--webhook-url \"http://127.0.0.1:8080/webhooks\" is given twice"), "{e}");
        let e = err(&["--webhook-url", "nope"]);
        assert!(e.contains("--webhook-url must be an absolute http"), "{e}");
        let none = crate::cli::Cli::try_parse_from(["ivrx", "sandbox"]).unwrap_err().to_string();
        assert!(none.contains("--webhook-url <URL>"), "{none}");
    }

    #[test]
    fn bad_webhook_url_is_refused() {
        let mut a = args(&[]);
        a.webhook_urls = vec!["localhost:8080".into()];
        let e = config_from_args(&a).unwrap_err().to_string();
        assert!(e.contains("--webhook-url must be an absolute http"), "{e}");
    }
}
