//! The engine the configuration asks for, built in one place for `serve`,
//! `score` (which must show what `serve` would think) and `analyze --import`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, EngineKind, SymblMode};
use crate::intel::{LocalEngine, Scorer, TrackerSet};
use crate::server::calls::Engine;
use crate::symbl::{CredentialSearch, SymblClient, SymblConfig, SymblEngine, SymblEngineOptions};

/// The local engine with the configured trackers.
pub fn local_engine(config: &Config) -> LocalEngine {
    LocalEngine::new(trackers_from(config))
}

/// The default trackers, with configured ones replacing same-named defaults and adding new ones.
pub fn trackers_from(config: &Config) -> TrackerSet {
    // `Config::validate` has already compiled these, so this cannot fail here.
    TrackerSet::with_overrides(config.trackers.clone()).unwrap_or_default()
}

/// An engine built from the configuration, and what to tell its user.
pub struct BuiltEngine {
    /// The engine.
    pub engine: Engine,
    /// Warnings about its setup (e.g. a credentials file others can read).
    pub warnings: Vec<String>,
}

/// The engine the configuration asks for. For Symbl, the credentials must be
/// found (else this fails, naming every place searched); whether Symbl accepts
/// them is [`check_symbl`]'s to say.
pub fn build_engine(config: &Config) -> anyhow::Result<BuiltEngine> {
    let local: Arc<dyn Scorer> = Arc::new(local_engine(config));
    if config.engine.kind == EngineKind::Local {
        return Ok(BuiltEngine { engine: Engine::Local(local), warnings: Vec::new() });
    }
    let loaded = CredentialSearch::from_system(config.engine.symbl_conf.clone()).load()?;
    let client = SymblClient::new(loaded.credentials, SymblConfig::from_env())?;
    let options = SymblEngineOptions { trackers: trackers_from(config).configs().to_vec(), ..Default::default() };
    let symbl = SymblEngine::new(client, options);
    let deadline = Duration::from_millis(config.engine.symbl_timeout_ms);
    let engine = if config.engine.symbl_mode == SymblMode::Pstn {
        let dial_in = config.engine.dial_in_number();
        let join_timeout = Duration::from_millis(config.engine.symbl_join_timeout_ms);
        let code_timeout = Duration::from_millis(config.engine.symbl_code_timeout_ms);
        Engine::SymblPstn { symbl, local, deadline, dial_in, join_timeout, code_timeout }
    } else {
        Engine::Symbl { symbl, local, deadline }
    };
    Ok(BuiltEngine { engine, warnings: loaded.warnings.iter().map(ToString::to_string).collect() })
}

/// Logs whether Symbl accepts the credentials (5 s at most): calls fall back
/// to the local engine while it does not, so the server starts either way.
pub async fn check_symbl(engine: &Engine) {
    let symbl = match engine {
        Engine::Local(_) => return,
        Engine::Symbl { symbl, .. } => symbl,
        Engine::SymblPstn { symbl, dial_in, .. } => {
            tracing::info!(dial_in = %dial_in, "Symbl PSTN mode: Symbl dials into each call's conference on this number");
            symbl
        }
    };
    let base = symbl.client().base_url().to_string();
    match tokio::time::timeout(Duration::from_secs(5), symbl.client().access_token()).await {
        Ok(Ok(_)) => tracing::info!(api = %base, "Symbl is usable: the credentials were accepted"),
        Ok(Err(e)) => tracing::error!(
            api = %base, error = %e,
            "Symbl is NOT usable; every call falls back to the local engine until it is"
        ),
        Err(_) => tracing::error!(
            api = %base,
            "Symbl is NOT usable: no answer within 5 s; every call falls back to the local engine until it is"
        ),
    }
}
