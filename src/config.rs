//! `ivrx.toml`: the IVR flow, queues, engine, policy thresholds and transfer
//! behaviour, with environment overrides for credentials.
//!
//! Load order: built-in defaults, then the file (`--config`, else `ivrx.toml` in
//! the user's config directory if it exists), then the environment
//! (`TELNYX_API_KEY`, `TELNYX_PUBLIC_KEY`, `TELNYX_CONNECTION_ID`, `TELNYX_API_BASE`,
//! `TELNYX_MESSAGING_PROFILE_ID`, `IVRX_NUMBER`, `IVRX_PUBLIC_URL`, `IVRX_ADMIN_TOKEN`,
//! `IVRX_CRM_URL`, `IVRX_CRM_SECRET`). Bad values are refused
//! at start with a message naming the key and the fix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod notify;
pub mod transcription;

use crate::intel::TrackerConfig;
use crate::policy::PolicyConfig;
use crate::sandbox::{Chaos, PartyBehavior};
use crate::session::SessionSettings;
use crate::settings::{default_queues, SettingError};
pub use crate::settings::{IvrConfig, MenuItem, QueueConfig, TransferConfig, TransferMode, WaitQueueConfig};
use crate::store::Location;
use crate::telnyx::transcription::TranscriptionRequest;
pub use notify::{CrmConfig, NotifyConfig, SupervisorConfig};
pub use transcription::TranscriptionSettings;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Telnyx credentials and API settings.
    pub telnyx: TelnyxConfig,
    /// The webhook server.
    pub server: ServerConfig,
    /// The IVR flow.
    pub ivr: IvrConfig,
    /// Agent queues by name (`support`, `sales`, …).
    pub queues: BTreeMap<String, QueueConfig>,
    /// How transfers are made.
    pub transfer: TransferConfig,
    /// Which intelligence engine scores utterances.
    pub engine: EngineConfig,
    /// Escalation thresholds.
    pub policy: PolicyConfig,
    /// Extra or replacement trackers (defaults are built in).
    pub trackers: Vec<TrackerConfig>,
    /// Storage.
    pub storage: StorageConfig,
    /// The embedded sandbox carrier.
    pub sandbox: EmbeddedSandboxConfig,
    /// Each transcription engine's settings (`[transcription.google]`, …);
    /// the section of `ivr.transcription_engine` is used.
    pub transcription: TranscriptionSettings,
    /// Alerts when a call turns (SMS to supervisors).
    pub notify: NotifyConfig,
    /// `[queue]`: callers wait in a Telnyx call queue when no agent can take
    /// their call (absent: they go back to the IVR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<WaitQueueConfig>,
}

/// `[telnyx]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelnyxConfig {
    /// API key (`TELNYX_API_KEY`). Its presence selects live mode.
    pub api_key: Option<String>,
    /// Base64 Ed25519 public key for webhook signatures (`TELNYX_PUBLIC_KEY`).
    pub public_key: Option<String>,
    /// Call Control application id (`TELNYX_CONNECTION_ID`).
    pub connection_id: Option<String>,
    /// Messaging profile of the IVR's number, for SMS alerts
    /// (`TELNYX_MESSAGING_PROFILE_ID`).
    pub messaging_profile_id: Option<String>,
    /// API base URL (`TELNYX_API_BASE`).
    pub api_base: String,
    /// Largest accepted difference between a webhook's signed timestamp and now.
    pub signature_tolerance_secs: u64,
    /// Attempts per command (first try included).
    pub max_attempts: u32,
    /// Per-attempt timeout, milliseconds.
    pub attempt_timeout_ms: u64,
    /// How long a command that keeps failing for a passing reason (5xx,
    /// 429, no answer) is sent again, milliseconds from its first attempt: in
    /// rounds of `max_attempts`, with the same `command_id` (Telnyx runs a
    /// repeated one once for 60 s). 0: one round.
    pub retry_window_ms: u64,
}

impl std::fmt::Debug for TelnyxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxConfig")
            .field("api_key", &self.api_key.as_deref().map(mask))
            .field("public_key", &self.public_key)
            .field("connection_id", &self.connection_id)
            .field("messaging_profile_id", &self.messaging_profile_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl TelnyxConfig {
    /// Checks the section (live mode needs the public key and the connection id).
    pub fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        if mode == Mode::Live {
            let public_key = self.public_key.as_deref().unwrap_or("");
            if public_key.is_empty() {
                return Err(invalid(
                    "telnyx.public_key",
                    "required in live mode to verify webhook signatures: copy the public key from the Telnyx \
                     portal (Keys & Credentials → Public Key) into [telnyx] public_key or TELNYX_PUBLIC_KEY",
                ));
            }
            crate::telnyx::WebhookVerifier::from_base64(public_key).map_err(|e| {
                invalid("telnyx.public_key", format!("{e}; paste the key exactly as the portal shows it"))
            })?;
            if self.connection_id.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(
                    "telnyx.connection_id",
                    "required in live mode to dial agents: use the id of your Call Control application \
                     ([telnyx] connection_id or TELNYX_CONNECTION_ID)",
                ));
            }
        }
        if let Some(id) = &self.messaging_profile_id {
            if uuid::Uuid::try_parse(id.trim()).is_err() {
                return Err(invalid(
                    "telnyx.messaging_profile_id",
                    format!(
                        "{id:?} is not a messaging profile id: copy the id (a UUID such as \
                         \"40017f4c-1f4e-4d8b-9e2c-0b5d6a7f8e90\") from Messaging → Profiles in the Telnyx portal"
                    ),
                ));
            }
        }
        if !(self.api_base.starts_with("http://") || self.api_base.starts_with("https://")) {
            return Err(invalid("telnyx.api_base", "must be an http:// or https:// URL"));
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            return Err(invalid("telnyx.max_attempts", "must be between 1 and 20"));
        }
        if !(50..=60_000).contains(&self.attempt_timeout_ms) {
            return Err(invalid("telnyx.attempt_timeout_ms", "must be between 50 and 60000"));
        }
        if self.retry_window_ms > 50_000 {
            return Err(invalid(
                "telnyx.retry_window_ms",
                "must be at most 50000: Telnyx runs a repeated command_id once only within 60 s",
            ));
        }
        Ok(())
    }
}

impl Default for TelnyxConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            public_key: None,
            connection_id: None,
            messaging_profile_id: None,
            api_base: crate::telnyx::DEFAULT_API_BASE.into(),
            signature_tolerance_secs: 300,
            max_attempts: 5,
            attempt_timeout_ms: 3000,
            retry_window_ms: 30_000,
        }
    }
}

/// `[server]`
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Public base URL Telnyx reaches the server at (e.g. an ngrok URL), `IVRX_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// Path webhooks are posted to.
    pub webhook_path: String,
    /// Token for the admin and live-stream APIs (`IVRX_ADMIN_TOKEN`); generated if unset.
    pub admin_token: Option<String>,
    /// Largest webhook body accepted, bytes.
    pub max_body_bytes: usize,
    /// How long an ended call is kept in memory for late webhooks, seconds.
    pub ended_call_grace_secs: u64,
    /// How often the legs whose end the record does not show are checked
    /// with Telnyx, seconds (they always are at start; 0: only then).
    pub reconcile_secs: u64,
    /// Longest wait for a request's headers, milliseconds; an idle connection is closed after it too.
    pub header_timeout_ms: u64,
    /// Longest wait for a request's whole body, milliseconds.
    pub body_timeout_ms: u64,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("public_url", &self.public_url)
            .field("webhook_path", &self.webhook_path)
            .field("admin_token", &self.admin_token.as_deref().map(mask))
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.reconcile_secs > 86_400 {
            return Err(invalid("server.reconcile_secs", "must be at most 86400 (a day); 0 checks only at start"));
        }
        if !self.webhook_path.starts_with('/') {
            return Err(invalid("server.webhook_path", "must start with '/', e.g. \"/webhooks/telnyx\""));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "server.public_url",
                    "must be an http:// or https:// URL, e.g. https://abc.ngrok.io",
                ));
            }
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        for (key, ms) in
            [("server.header_timeout_ms", self.header_timeout_ms), ("server.body_timeout_ms", self.body_timeout_ms)]
        {
            if !(100..=600_000).contains(&ms) {
                return Err(invalid(key, "must be between 100 and 600000 milliseconds"));
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            webhook_path: "/webhooks/telnyx".into(),
            admin_token: None,
            max_body_bytes: 256 * 1024,
            ended_call_grace_secs: 120,
            reconcile_secs: 60,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
        }
    }
}

/// Which engine scores utterances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The offline lexicon and rule engine.
    Local,
    /// Symbl.ai.
    Symbl,
}

/// How the Symbl engine listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SymblMode {
    /// Telnyx transcribes; each final utterance is sent to Symbl's text API.
    Text,
    /// Symbl dials into a conference with the caller (the original demo).
    Pstn,
}

/// `[engine]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// `local` (default) or `symbl`.
    pub kind: EngineKind,
    /// For `symbl`: `text` (default) or `pstn`.
    pub symbl_mode: SymblMode,
    /// For `symbl`: credentials file (default: search for symbl.conf).
    pub symbl_conf: Option<PathBuf>,
    /// For `symbl`: longest wait for one score before falling back to the local engine, ms.
    pub symbl_timeout_ms: u64,
    /// For `symbl` in `pstn` mode: the number Symbl dials into calls, reserved
    /// for it (a second number on the Call Control application). Required in
    /// live mode; the sandbox uses [`SANDBOX_SYMBL_DIAL_IN`].
    pub symbl_dial_in: Option<String>,
    /// For `symbl` in `pstn` mode: how long Symbl has, once asked, to call in
    /// and press its code before the call falls back to the local engine, ms.
    pub symbl_join_timeout_ms: u64,
    /// For `symbl` in `pstn` mode: how long Symbl's answered leg has to press
    /// its code before it is hung up, ms.
    pub symbl_code_timeout_ms: u64,
}

/// The Symbl dial-in number in sandbox mode when none is configured.
pub const SANDBOX_SYMBL_DIAL_IN: &str = "+15555550198";

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            kind: EngineKind::Local,
            symbl_mode: SymblMode::Text,
            symbl_conf: None,
            symbl_timeout_ms: 2500,
            symbl_dial_in: None,
            symbl_join_timeout_ms: 20_000,
            symbl_code_timeout_ms: 15_000,
        }
    }
}

impl EngineConfig {
    /// True for Symbl in PSTN mode.
    pub fn is_symbl_pstn(&self) -> bool {
        self.kind == EngineKind::Symbl && self.symbl_mode == SymblMode::Pstn
    }

    /// The number Symbl dials in PSTN mode (the sandbox's when none is set).
    pub fn dial_in_number(&self) -> String {
        self.symbl_dial_in.clone().unwrap_or_else(|| SANDBOX_SYMBL_DIAL_IN.to_string())
    }
}

impl EngineConfig {
    /// Checks the section; Symbl's dial-in number must differ from the IVR's `ivr_number`.
    pub fn validate(&self, mode: Mode, ivr_number: &str) -> Result<(), ConfigError> {
        if !(100..=60_000).contains(&self.symbl_timeout_ms) {
            return Err(invalid("engine.symbl_timeout_ms", "must be between 100 and 60000"));
        }
        if !(1_000..=600_000).contains(&self.symbl_join_timeout_ms) {
            return Err(invalid("engine.symbl_join_timeout_ms", "must be between 1000 and 600000"));
        }
        if !(1_000..=120_000).contains(&self.symbl_code_timeout_ms) {
            return Err(invalid("engine.symbl_code_timeout_ms", "must be between 1000 and 120000"));
        }
        if self.symbl_code_timeout_ms > self.symbl_join_timeout_ms {
            return Err(invalid(
                "engine.symbl_code_timeout_ms",
                "must not exceed engine.symbl_join_timeout_ms (the call gives up on Symbl before its code could come)",
            ));
        }
        if self.is_symbl_pstn() {
            self.validate_dial_in(mode, ivr_number)?;
        }
        Ok(())
    }

    fn validate_dial_in(&self, mode: Mode, ivr_number: &str) -> Result<(), ConfigError> {
        let key = "engine.symbl_dial_in";
        let Some(number) = &self.symbl_dial_in else {
            if mode == Mode::Live {
                return Err(invalid(
                    key,
                    "required with symbl_mode = \"pstn\": a second number on your Call Control application, \
                     reserved for Symbl to dial into calls (ivrx tells Symbl's call from callers by the number it dials)",
                ));
            }
            return Ok(());
        };
        if !is_e164(number) {
            return Err(invalid(key, format!("{number:?} is not a number in E.164 form, e.g. \"+18005550123\"")));
        }
        if number == ivr_number {
            return Err(invalid(
                key,
                "must differ from ivr.number: every call to the dial-in number is taken for Symbl's, never greeted",
            ));
        }
        Ok(())
    }
}

/// ivrx's data directory: `ivrx` in the user's data directory
/// (`$XDG_DATA_HOME/ivrx`, `~/.local/share/ivrx` on Linux).
pub fn data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("ivrx")
}

/// The database file when none is configured: `ivrx.db` in [`data_dir`].
pub fn default_database() -> PathBuf {
    data_dir().join("ivrx.db")
}

/// Where a server keeps the admin token it generates: `admin-token` beside
/// its database file.
pub fn token_file_beside(db: &Path) -> PathBuf {
    db.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("admin-token")
}

/// The token file of a server on the default database, where `ivrx watch`,
/// `transfer` and `dial` look unless told otherwise.
pub fn default_token_file() -> PathBuf {
    token_file_beside(&default_database())
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite file (default: `ivrx.db` in the user's data directory), or a
    /// PostgreSQL database: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
    pub db: Option<PathBuf>,
    /// Redact card numbers, SSNs, e-mail addresses and phone numbers before storing text.
    pub redact_pii: bool,
    /// How long a write waits for a lock held by another process before it fails (and is retried), milliseconds.
    pub busy_timeout_ms: u64,
    /// With PostgreSQL, several instances: how long a call stays with an
    /// instance that stops renewing its hold on it (how soon another takes
    /// over the calls of one that died), milliseconds.
    pub lease_ms: u64,
}

impl StorageConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(10..=600_000).contains(&self.busy_timeout_ms) {
            return Err(invalid("storage.busy_timeout_ms", "must be between 10 and 600000 milliseconds"));
        }
        if !(300..=600_000).contains(&self.lease_ms) {
            return Err(invalid("storage.lease_ms", "must be between 300 and 600000 milliseconds"));
        }
        self.location()?;
        Ok(())
    }

    /// The database `db` names ([`default_database`] when unset): a
    /// `postgres://` or `postgresql://` URL is PostgreSQL, anything else a
    /// SQLite file.
    pub fn location(&self) -> Result<Location, ConfigError> {
        match &self.db {
            Some(db) => Location::parse(db).map_err(|e| {
                invalid("storage.db", format!("{e} (also set by --db and IVRX_DB; a path means a SQLite file)"))
            }),
            None => Ok(Location::Sqlite(default_database())),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { db: None, redact_pii: true, busy_timeout_ms: 5000, lease_ms: 5000 }
    }
}

/// `[sandbox]`: the embedded carrier used when no Telnyx key is configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedSandboxConfig {
    /// How numbers behave when called: `answer`, `answer:SECONDS` (0 to 600),
    /// `refuse` (or `reject`), `busy`, `no-answer` (or `no_answer`), in the
    /// sandbox's one grammar ([`PartyBehavior`]).
    pub agents: BTreeMap<String, String>,
    /// Connection id the sandbox reports.
    pub connection_id: String,
    /// `[sandbox.chaos]`: fault injection, for testing how ivrx copes.
    pub chaos: Chaos,
    /// The clock stands still while a webhook has waited over 100 ms for the
    /// server's answer (default), so a slow server slows the calls down;
    /// `false` lets the calls run on, as on a real carrier (`--no-clock-hold`).
    pub clock_hold: bool,
}

impl EmbeddedSandboxConfig {
    /// Checks the section: fault rates are probabilities, agents behave in the sandbox's grammar.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.chaos.validate() {
            return Err(invalid(format!("sandbox.chaos.{}", e.field), "must be a probability between 0 and 1"));
        }
        self.agent_behaviours().map(drop)
    }

    /// The numbers under `[sandbox.agents]` and how each behaves.
    pub fn agent_behaviours(&self) -> Result<Vec<(String, PartyBehavior)>, ConfigError> {
        self.agents
            .iter()
            .map(|(number, behaviour)| {
                let key = || format!("sandbox.agents.{number:?}");
                if number.trim().is_empty() {
                    return Err(invalid(key(), "name the number, e.g. \"+18005550201\" = \"busy\""));
                }
                let b = behaviour.parse::<PartyBehavior>().map_err(|e| invalid(key(), e.0))?;
                Ok((number.trim().to_string(), b))
            })
            .collect()
    }
}

impl Default for EmbeddedSandboxConfig {
    fn default() -> Self {
        Self {
            agents: BTreeMap::new(),
            connection_id: "1684641123236054244".into(),
            chaos: Chaos::default(),
            clock_hold: true,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            telnyx: TelnyxConfig::default(),
            server: ServerConfig::default(),
            ivr: IvrConfig::default(),
            queues: default_queues(),
            transfer: TransferConfig::default(),
            engine: EngineConfig::default(),
            policy: PolicyConfig::default(),
            trackers: Vec::new(),
            storage: StorageConfig::default(),
            sandbox: EmbeddedSandboxConfig::default(),
            transcription: TranscriptionSettings::default(),
            notify: NotifyConfig::default(),
            queue: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for ivrx.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the TOML parser said, with the line.
        message: String,
    },
    /// A value is wrong.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `transfer.ring_timeout_secs`.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// True for a phone number in E.164 form (`+` and 8 to 15 digits).
pub fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

impl From<SettingError> for ConfigError {
    fn from(e: SettingError) -> Self {
        ConfigError::Invalid { key: e.key, message: e.message }
    }
}

/// Whether the server talks to Telnyx or to the embedded sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real Telnyx.
    Live,
    /// The embedded sandbox carrier.
    Sandbox,
}

impl Config {
    /// The default config file: `ivrx.toml` in the user's config directory.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("ivrx").join("ivrx.toml"))
    }

    /// The file [`Config::load`] reads: `path`, else the default file when it
    /// exists; `None` means the built-in defaults.
    pub fn file_for(path: Option<&Path>) -> Option<PathBuf> {
        match path {
            Some(p) => Some(p.to_path_buf()),
            None => Self::default_path().filter(|p| p.exists()),
        }
    }

    /// Loads the file (an explicit path must exist; the default path may not),
    /// then applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match Self::file_for(path) {
            Some(p) => Self::from_file(&p)?,
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    /// Keys set in the file that are accepted but no longer read, each with
    /// its fix (the commands print them as warnings).
    pub fn retired_keys(&self) -> Vec<crate::policy::RetiredKey> {
        self.policy.retired_keys()
    }

    /// Parses one file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.display().to_string(), source })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse { path: path.display().to_string(), message })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Applies environment overrides from `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let nonempty = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(v) = nonempty("TELNYX_API_KEY") {
            self.telnyx.api_key = Some(v);
        }
        if let Some(v) = nonempty("TELNYX_PUBLIC_KEY") {
            self.telnyx.public_key = Some(v);
        }
        if let Some(v) = nonempty("TELNYX_CONNECTION_ID") {
            self.telnyx.connection_id = Some(v);
        }
        if let Some(v) = nonempty("TELNYX_MESSAGING_PROFILE_ID") {
            self.telnyx.messaging_profile_id = Some(v);
        }
        if let Some(v) = nonempty("IVRX_CRM_URL") {
            self.notify.crm.url = Some(v);
        }
        if let Some(v) = nonempty("IVRX_CRM_SECRET") {
            self.notify.crm.secret = Some(v);
        }
        if let Some(v) = nonempty("TELNYX_API_BASE") {
            self.telnyx.api_base = v;
        }
        if let Some(v) = nonempty("IVRX_NUMBER") {
            self.ivr.number = v;
        }
        if let Some(v) = nonempty("IVRX_PUBLIC_URL") {
            self.server.public_url = Some(v);
        }
        if let Some(v) = nonempty("IVRX_ADMIN_TOKEN") {
            self.server.admin_token = Some(v);
        }
    }

    /// The database: `[storage] db` (or `--db`, `IVRX_DB`), else [`default_database`].
    pub fn database(&self) -> Result<Location, ConfigError> {
        self.storage.location()
    }

    /// The file a server keeps the admin token it generates in (when none is
    /// configured): beside its SQLite file; for a PostgreSQL database, in the
    /// data directory ([`default_token_file`]).
    pub fn token_file(&self) -> PathBuf {
        match self.database() {
            Ok(Location::Sqlite(path)) => token_file_beside(&path),
            _ => default_token_file(),
        }
    }

    /// Live when a Telnyx API key is configured and the sandbox was not asked for.
    pub fn mode(&self, force_sandbox: bool) -> Mode {
        if force_sandbox || self.telnyx.api_key.as_deref().is_none_or(str::is_empty) {
            Mode::Sandbox
        } else {
            Mode::Live
        }
    }

    /// Checks everything the server needs, for the given mode: each section,
    /// then what the sections say about each other.
    pub fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        self.telnyx.validate(mode)?;
        self.server.validate()?;
        self.storage.validate()?;
        self.ivr.validate(&self.queues, &self.policy.operator_digit)?;
        self.transcription()?;
        for (name, q) in &self.queues {
            q.validate(name)?;
        }
        // The queues the policy transfers to must exist.
        for q in [&self.policy.support_queue, &self.policy.sales_queue] {
            if !self.queues.contains_key(q) {
                return Err(invalid(
                    "queues",
                    format!("the policy routes to queue {q:?}: add [queues.{q}] with agents = [\"+1...\"]"),
                ));
            }
        }
        self.transfer.validate()?;
        if let Some(q) = &self.queue {
            q.validate()?;
            if let Some(cb) = &q.callback {
                cb.validate(&crate::keypad::Keypad::new(&self.ivr, &self.policy).valid_digits())?;
            }
        }
        self.engine.validate(mode, &self.ivr.number)?;
        self.policy.validate().map_err(|e| invalid(format!("policy.{}", e.key), e.message))?;
        validate_trackers(&self.trackers)?;
        self.notify.validate(&self.queues)?;
        if mode == Mode::Live && !self.notify.supervisors.is_empty() && self.telnyx.messaging_profile_id.is_none() {
            return Err(invalid(
                "telnyx.messaging_profile_id",
                "required in live mode to text [notify] supervisors: the id of the messaging profile the IVR's \
                 number belongs to ([telnyx] messaging_profile_id or TELNYX_MESSAGING_PROFILE_ID)",
            ));
        }
        self.sandbox.validate()
    }

    /// The transcription request of the configured engine, checked against
    /// the API's definition (the key and the fix when it would be refused).
    pub fn transcription(&self) -> Result<TranscriptionRequest, ConfigError> {
        self.transcription.resolve(&self.ivr.transcription_engine, &self.ivr.language)
    }

    /// What the call session reads, with the connection id in use and the
    /// webhook URL to give dialled legs.
    pub fn session_settings(&self, connection_id: String, webhook_url: Option<String>) -> SessionSettings {
        SessionSettings {
            ivr: self.ivr.clone(),
            queues: self.queues.clone(),
            transfer: self.transfer.clone(),
            policy: self.policy.clone(),
            connection_id,
            webhook_url,
            symbl_pstn: self.engine.is_symbl_pstn(),
            // `serve` checks the configuration first; a bad one falls back to the default.
            transcription: self.transcription().unwrap_or_default(),
            redact_pii: self.storage.redact_pii,
            wait_queue: self.queue.clone(),
        }
    }

    /// The configuration as TOML with every secret masked (`--print-config`).
    pub fn to_masked_toml(&self) -> String {
        let mut c = self.clone();
        c.telnyx.api_key = c.telnyx.api_key.as_deref().map(mask);
        c.server.admin_token = c.server.admin_token.as_deref().map(mask);
        c.notify.crm.secret = c.notify.crm.secret.as_deref().map(mask);
        // A database URL's password.
        if let Ok(Location::Postgres(url)) = self.database() {
            c.storage.db = Some(url.to_string().into());
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// Checks `[[trackers]]`: each named, with phrases, and compiling with the built-in ones.
fn validate_trackers(trackers: &[TrackerConfig]) -> Result<(), ConfigError> {
    for (i, t) in trackers.iter().enumerate() {
        if t.name.trim().is_empty() {
            return Err(invalid(format!("trackers[{i}].name"), "must not be empty"));
        }
        if t.phrases.iter().all(|p| p.trim().is_empty()) {
            return Err(invalid(format!("trackers[{i}].phrases"), "list at least one phrase"));
        }
    }
    crate::intel::TrackerSet::with_overrides(trackers.to_vec()).map_err(|e| invalid("trackers", format!("{e}")))?;
    Ok(())
}

/// Masks a secret, keeping only enough to recognise it.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        "********".into()
    } else {
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("********{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn a_retired_key_loads_and_is_reported_with_its_fix() {
        let c = Config::from_toml("[policy]\noperator_digit = \"0\"\nsales_digit = \"3\"\n").unwrap();
        c.validate(Mode::Sandbox).unwrap();
        let retired: Vec<String> = c.retired_keys().iter().map(ToString::to_string).collect();
        assert_eq!(retired.len(), 1);
        assert!(retired[0].starts_with("policy.sales_digit is no longer read"), "{retired:?}");
        assert!(Config::default().retired_keys().is_empty());
        let replayed = crate::analyze::replay::policy_from_toml("sales_digit = 5\n", &c.policy).unwrap();
        assert_eq!(replayed.retired_keys().len(), 1);
        assert!(Config::from_toml("[policy]\nsales_digits = \"3\"\n").unwrap_err().contains("sales_digits"));
    }

    #[test]
    fn defaults_are_valid_in_sandbox_mode() {
        Config::default().validate(Mode::Sandbox).unwrap();
        assert_eq!(Config::default().mode(false), Mode::Sandbox);
    }

    #[test]
    fn symbl_pstn_needs_its_own_dial_in_number_live() {
        let mut c = Config::default();
        c.engine.kind = EngineKind::Symbl;
        c.engine.symbl_mode = SymblMode::Pstn;
        c.validate(Mode::Sandbox).unwrap();
        assert_eq!(c.engine.dial_in_number(), SANDBOX_SYMBL_DIAL_IN, "the sandbox has one");
        c.telnyx.public_key = Some(crate::telnyx::WebhookSigner::generate().public_key_base64());
        c.telnyx.connection_id = Some("42".into());
        let e = c.validate(Mode::Live).unwrap_err().to_string();
        assert!(e.contains("engine.symbl_dial_in") && e.contains("required"), "{e}");
        c.engine.symbl_dial_in = Some(c.ivr.number.clone());
        let e = c.validate(Mode::Live).unwrap_err().to_string();
        assert!(e.contains("must differ from ivr.number"), "{e}");
        c.engine.symbl_dial_in = Some("555-0199".into());
        assert!(c.validate(Mode::Sandbox).unwrap_err().to_string().contains("E.164"));
        c.engine.symbl_dial_in = Some("+18005550199".into());
        c.validate(Mode::Live).unwrap();
    }

    #[test]
    fn symbl_pstn_timeouts_are_bounded_and_ordered() {
        let mut c = Config::default();
        c.engine.symbl_join_timeout_ms = 500;
        let e = c.validate(Mode::Sandbox).unwrap_err().to_string();
        assert!(e.contains("engine.symbl_join_timeout_ms") && e.contains("between 1000 and 600000"), "{e}");
        c.engine.symbl_join_timeout_ms = 10_000;
        c.engine.symbl_code_timeout_ms = 200_000;
        let e = c.validate(Mode::Sandbox).unwrap_err().to_string();
        assert!(e.contains("engine.symbl_code_timeout_ms") && e.contains("between 1000 and 120000"), "{e}");
        c.engine.symbl_code_timeout_ms = 12_000;
        let e = c.validate(Mode::Sandbox).unwrap_err().to_string();
        assert!(e.contains("must not exceed engine.symbl_join_timeout_ms"), "{e}");
        c.engine.symbl_code_timeout_ms = 10_000;
        c.validate(Mode::Sandbox).unwrap();
    }

    #[test]
    fn the_sandbox_clock_waits_for_a_slow_server_unless_turned_off() {
        assert!(Config::default().sandbox.clock_hold);
        let off = Config::from_toml("[sandbox]\nclock_hold = false\n").unwrap();
        assert!(!off.sandbox.clock_hold);
        off.validate(Mode::Sandbox).unwrap();
        assert!(off.to_masked_toml().contains("clock_hold = false"));
    }

    #[test]
    fn pii_redaction_is_on_unless_turned_off() {
        assert!(Config::default().storage.redact_pii);
        assert!(Config::from_toml("[storage]\ndb = \"x.db\"\n").unwrap().storage.redact_pii);
        let pg = Config::from_toml("[storage]\ndb = \"postgres://ivrx:s3cret@db:5432/ivrx\"\n").unwrap();
        assert!(matches!(pg.database().unwrap(), Location::Postgres(_)));
        assert_eq!(pg.token_file(), default_token_file(), "no directory beside a URL");
        let shown = pg.to_masked_toml();
        assert!(shown.contains("postgres://ivrx:***@db:5432/ivrx") && !shown.contains("s3cret"), "{shown}");
        let bad = Config::from_toml("[storage]\ndb = \"postgres://ivrx@db:port/ivrx\"\n").unwrap();
        let e = bad.storage.validate().unwrap_err().to_string();
        assert!(e.contains("storage.db") && e.contains("IVRX_DB"), "{e}");
        assert!(matches!(Config::default().database().unwrap(), Location::Sqlite(_)));
        let off = Config::from_toml("[storage]\nredact_pii = false\n").unwrap();
        assert!(!off.storage.redact_pii);
        off.validate(Mode::Sandbox).unwrap();
        assert!(off.to_masked_toml().contains("redact_pii = false"));
    }

    #[test]
    fn request_deadlines_and_lock_waits_are_bounded() {
        for (toml, key) in [
            ("[server]\nheader_timeout_ms = 0\n", "server.header_timeout_ms"),
            ("[server]\nbody_timeout_ms = 9999999\n", "server.body_timeout_ms"),
            ("[storage]\nbusy_timeout_ms = 1\n", "storage.busy_timeout_ms"),
            ("[storage]\nlease_ms = 10\n", "storage.lease_ms"),
            ("[sandbox.chaos]\napi_drop_rate = 1.5\n", "sandbox.chaos.api_drop_rate"),
        ] {
            let c = Config::from_toml(toml).unwrap();
            assert_eq!(key_of(c.validate(Mode::Sandbox).unwrap_err()), key);
        }
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let text = include_str!("../ivrx.example.toml");
        let c = Config::from_toml(text).unwrap();
        c.validate(Mode::Sandbox).unwrap();
    }

    #[test]
    fn environment_overrides_the_file_and_selects_live_mode() {
        let mut c = Config::default();
        let env = |k: &str| match k {
            "TELNYX_API_KEY" => Some("KEY0123456789".to_string()),
            "TELNYX_CONNECTION_ID" => Some("42".to_string()),
            "IVRX_NUMBER" => Some(" +15551234 ".to_string()),
            "TELNYX_PUBLIC_KEY" => Some(String::new()),
            _ => None,
        };
        c.apply_env(env);
        assert_eq!(c.mode(false), Mode::Live);
        assert_eq!(c.mode(true), Mode::Sandbox);
        assert_eq!(c.ivr.number, "+15551234");
        assert_eq!(c.telnyx.public_key, None, "empty variables are ignored");
        assert_eq!(key_of(c.validate(Mode::Live).unwrap_err()), "telnyx.public_key");
        c.telnyx.public_key = Some("not a key".into());
        assert_eq!(key_of(c.validate(Mode::Live).unwrap_err()), "telnyx.public_key");
        c.telnyx.public_key = Some(crate::telnyx::WebhookSigner::generate().public_key_base64());
        c.validate(Mode::Live).unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: Vec<(&str, &str)> = vec![
            ("[transfer]\nring_timeout_secs = 2\n", "transfer.ring_timeout_secs"),
            ("[ivr]\nvoice = \"robot\"\n", "ivr.voice"),
            ("[ivr]\ngreeting = \" \"\n", "ivr.greeting"),
            ("[server]\nwebhook_path = \"hooks\"\n", "server.webhook_path"),
            ("[[ivr.menu]]\ndigit = \"0\"\nlabel = \"x\"\nsay = \"y\"\n", "ivr.menu[0].digit"),
            ("[[ivr.menu]]\ndigit = \"4\"\nlabel = \"x\"\nqueue = \"nowhere\"\n", "ivr.menu[0].queue"),
            ("[[ivr.menu]]\ndigit = \"4\"\nlabel = \"x\"\n", "ivr.menu[0]"),
            ("[queues.support]\nagents = []\n[queues.sales]\nagents = [\"+1\"]\n", "queues.support.agents"),
            ("[queues.support]\nagents = [\"+1\"]\n", "ivr.menu[2].queue"),
            ("[sandbox.agents]\n\"+1\" = \"dance\"\n", "sandbox.agents.\"+1\""),
            ("[[trackers]]\nname = \"x\"\nphrases = []\n", "trackers[0].phrases"),
            ("[ivr]\nlanguage = \"en\"\n", "ivr.language"),
            ("[ivr]\ntranscription_engine = \"google\"\n", "ivr.transcription_engine"),
            ("[ivr]\ntranscription_engine = \"Deepgram\"\n", "transcription.deepgram.transcription_model"),
            ("[ivr]\ntranscription_engine = \"Azure\"\n", "transcription.azure.region"),
            ("[ivr]\nlanguage = \"cy-GB\"\n", "ivr.language"),
            ("[transcription.google]\nmodel = \"phone\"\n", "transcription.google.model"),
        ];
        for (text, key) in cases {
            let c = Config::from_toml(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(key_of(c.validate(Mode::Sandbox).unwrap_err()), key, "{text}");
        }
    }

    #[test]
    fn agents_take_every_spelling_of_the_sandbox_grammar() {
        let answer = |after_secs| PartyBehavior::Answer { after_secs, script: None };
        for (spelling, expected) in [
            // What the configuration took before it shared the sandbox's grammar …
            ("answer", answer(2.0)),
            ("answer:4", answer(4.0)),
            ("refuse", PartyBehavior::Refuse),
            ("busy", PartyBehavior::Busy),
            ("no-answer", PartyBehavior::NoAnswer),
            // … and what only the sandbox (`--agent`, the control API) took.
            ("reject", PartyBehavior::Refuse),
            ("no_answer", PartyBehavior::NoAnswer),
            (" Answer:0.5s ", answer(0.5)),
        ] {
            let c = Config::from_toml(&format!("[sandbox.agents]\n\"+18005550201\" = {spelling:?}\n")).unwrap();
            c.validate(Mode::Sandbox).unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(c.sandbox.agent_behaviours().unwrap(), [("+18005550201".to_string(), expected)], "{spelling}");
        }
        for (spelling, hint) in [("answer:700", "between 0 and 600"), ("dance", "unknown behaviour")] {
            let c = Config::from_toml(&format!("[sandbox.agents]\n\"+1\" = {spelling:?}\n")).unwrap();
            let e = c.validate(Mode::Sandbox).unwrap_err().to_string();
            assert!(e.contains("sandbox.agents.\"+1\"") && e.contains(hint), "{spelling}: {e}");
        }
    }

    #[test]
    fn each_engine_section_configures_its_engine() {
        let text = "[ivr]\ntranscription_engine = \"Deepgram\"\nlanguage = \"es-MX\"\n\
                    [transcription.deepgram]\ntranscription_model = \"deepgram/nova-2\"\n\
                    [transcription.azure]\nregion = \"mars\"\n";
        let c = Config::from_toml(text).unwrap();
        c.validate(Mode::Sandbox).expect("only the section of the engine in use is checked");
        let t = c.transcription().unwrap();
        assert_eq!(t.engine.as_str(), "Deepgram");
        assert_eq!(t.config["language"], "es-419", "nova-2's Spanish for es-MX");
        let e = Config::from_toml("[ivr]\nlanguage = \"en\"\n").unwrap().validate(Mode::Sandbox).unwrap_err();
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("\"en-US\"") && line.contains("ivr.language"), "{line}");
        let e = Config::from_toml("[transcription.deepgram]\nmodel = \"x\"\n").unwrap_err();
        assert!(e.contains("model"), "unknown keys in an engine section are refused: {e}");
    }

    #[test]
    fn unknown_keys_are_refused_with_the_line() {
        let e = Config::from_toml("[ivr]\ngreting = \"hi\"\n").unwrap_err();
        assert!(e.contains("greting"), "{e}");
        assert!(e.contains("line 2") || e.contains("2 |"), "{e}");
    }

    #[test]
    fn print_config_masks_secrets() {
        let mut c = Config::default();
        c.telnyx.api_key = Some("KEY01234567890SECRET".into());
        c.server.admin_token = Some("tok-abcdefghijklmnop".into());
        let out = c.to_masked_toml();
        assert!(!out.contains("KEY01234567890SECRET"));
        assert!(!out.contains("tok-abcdefghijklmnop"));
        assert!(out.contains("********CRET"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("KEY01234567890SECRET") && !dbg.contains("tok-abcdefghijklmnop"));
    }
}
