//! The command-line front end: clap definitions and one module per subcommand.
//!
//! The definitions live in the library so that completions and man pages are
//! generated from them (see [`docs`]) and checked for staleness by a test.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod admin;
mod analyze;
pub mod board;
mod demo;
mod dial;
pub mod docs;
pub mod engine;
mod eval;
pub mod exit;
mod load;
pub mod output;
mod sandbox;
mod score;
pub mod serve;
mod transfer;
pub mod view;
mod watch;

pub use output::Output;

const ABOUT: &str = "Conversation-intelligent call transfers on Telnyx Call Control";

const LONG_ABOUT: &str = "\
ivrx answers phone calls through the Telnyx Call Control API as an IVR, scores every caller
utterance for sentiment and escalation signals in real time, and transfers the caller to a live
agent the moment the conversation turns. Afterwards it explains, per call and across calls,
what happened.

With no Telnyx credentials configured, everything runs against the built-in sandbox carrier: a
local stand-in for Telnyx with scripted callers and agents, so the whole product works on a
fresh machine with no account, no phone and no network.";

/// The quick start `ivrx --help` ends with (and the man page's EXAMPLES).
pub const QUICK_START: &str = "\
Quick start (sandbox, no account needed):
  ivrx serve --demo                         bundled callers ring the IVR
  ivrx serve &                              the IVR; then, in other terminals:
  ivrx watch --latest                       follow the next call
  ivrx dial --sandbox --script frustrated   a bundled caller (or a script file)
  ivrx analyze                              tables over every stored conversation
  ivrx eval eval/corpus                     measure the escalation on labelled caller scripts";

/// What `ivrx --help` says about the environment (and the man page's ENVIRONMENT).
pub const ENVIRONMENT: &str = "\
TELNYX_API_KEY, TELNYX_PUBLIC_KEY, TELNYX_CONNECTION_ID switch `serve` to live
mode; TELNYX_API_BASE points it at another Call Control API (a standalone
`ivrx sandbox`: its URL plus /v2); IVRX_NUMBER is the IVR's number (the caller
id agents see); IVRX_ADMIN_TOKEN is the admin token `serve` requires and the
clients send; IVRX_PUBLIC_URL is where Telnyx reaches `serve`. NO_COLOR
disables colour; COLUMNS sets the width tables are fitted to.";

/// `ivrx`: the command line.
#[derive(Debug, Parser)]
#[command(name = "ivrx", version, about = ABOUT, long_about = LONG_ABOUT, after_help = QUICK_START)]
#[command(after_long_help = format!("{QUICK_START}\n\nEnvironment:\n{ENVIRONMENT}\n\n{}", exit::help_section()))]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server: IVR flow, live scoring, escalation, transfers, storage
    #[command(
        long_about = "Run the webhook server.\n\nTelnyx (or the embedded sandbox carrier) posts signed webhooks to it; ivrx answers the call, runs the IVR menu, transcribes and scores every caller utterance, and transfers the caller to a live agent when the escalation policy says so. Every conversation is stored in SQLite.\n\nWith no TELNYX_API_KEY configured, serve runs in sandbox mode: the sandbox carrier is embedded in the same process and announced at start.\n\nLive mode reads TELNYX_API_KEY, TELNYX_PUBLIC_KEY, TELNYX_CONNECTION_ID, TELNYX_API_BASE (default https://api.telnyx.com/v2), IVRX_NUMBER (the IVR's number, the caller id agents see), IVRX_PUBLIC_URL and IVRX_ADMIN_TOKEN (generated and kept beside the database when unset). Pointed at a standalone `ivrx sandbox` (TELNYX_API_BASE=http://HOST:PORT/v2, TELNYX_API_KEY its --api-key, TELNYX_PUBLIC_KEY from its GET /sandbox/v1/public-key, TELNYX_CONNECTION_ID its connection id), several live instances can run behind it as behind a load balancer."
    )]
    Serve(ServeArgs),
    /// Place a call: a real one through Telnyx, or a simulated caller in the sandbox
    #[command(
        long_about = "Place a call.\n\nLive: asks Telnyx (POST /v2/calls) to call a number; the running `ivrx serve` handles the call.\n\nSandbox: `ivrx dial --sandbox --script FILE` places a simulated inbound call into a running `ivrx serve --sandbox`, waits for it to end and prints the transcript with scores and the transfer with its reason.\n\nLoad test: `ivrx dial --sandbox --load --calls N --concurrency C` keeps C simulated calls in flight until N have been played (the bundled example callers in --mix proportions, or the scripts of --script-dir), then checks the server's store and reports: calls completed, webhooks per second, webhook acknowledgement latency measured by the sandbox (p50, p99, max), the server's decision latency from final transcript to transfer command (p50, p99), transfers expected (each script's `# expect:` line) and issued, lost events (webhooks acknowledged but not stored), double transfers, agent legs left on the line (answered and never ended in the store; still up at the sandbox after their caller hung up), duplicate deliveries the server refused, and the server's memory (peak RSS, per active call). Exits 1 when a check fails. The sandbox's logs are switched off for the run; only event ids (16 bytes each) and latencies are kept."
    )]
    Dial(DialArgs),
    /// Follow a live conversation: transcript, sentiment trend, the transfer moment
    Watch(WatchArgs),
    /// Transfer a call to an agent now (manual override, exactly once)
    Transfer(TransferArgs),
    /// Post-call analytics over stored conversations: tables, CSV, JSON, charts
    #[command(
        long_about = "Post-call analytics over stored conversations.\n\nPer call: duration, caller sentiment (min, mean, final, slope per minute), the transfer decision, its reason and trigger, and the time to the decision and to the agent. Across calls: transfer rate, reasons, time-to-transfer median, p90 and histogram, calls by hour (UTC), trackers, and topics near the decline: words and phrases over-represented in the caller utterances just before each call's decline (the policy's trigger, or the steepest drop of a call the policy did not escalate), ranked by a log-odds ratio with an informative Dirichlet prior, with the counts.\n\n--replay-policy re-runs the escalation policy over the stored scores with other thresholds and shows the decisions gained and lost. --import stores conversations recorded elsewhere (JSON lines or a Symbl messages export) after scoring them; given a SQLite ivrx database, it copies its conversations (event logs, session snapshots, insights) into --db, e.g. a PostgreSQL database, and copying again adds only what is missing. Rows are streamed: memory stays bounded on large databases."
    )]
    Analyze(AnalyzeArgs),
    /// Score text with the configured engine (calibrate what the engine thinks)
    Score(ScoreArgs),
    /// Play labelled caller scripts through the production session and policy; report precision, recall, misses
    #[command(
        long_about = "Play a directory of labelled caller scripts through the production session, engine and policy, and measure the escalation decisions against the labels.\n\nEvery *.ivrx file of DIR is a caller script (say, press, pause, hangup: the format of `ivrx dial --sandbox --script`) labelled with what a good supervisor would do:\n\n  # expect: no-transfer\n  # expect: transfer support at 3      (at the caller's 3rd `say` line)\n  # expect: transfer sales by dtmf     (by a key press)\n  # difficulty: hard                   (optional: reported apart)\n  # category: decline                  (optional: reported per category)\n\nEach script is played in process, with no sockets: the sandbox carrier plays the caller and the agents, and the call session that `serve` runs answers with the configuration's menu, queues, trackers and policy, scored by the local engine. The first decision is the outcome.\n\nPrinted: precision (of the transfers made, the share expected), recall (of the transfers expected, the share made), false-transfer rate (of the calls that should stay with the IVR, the share transferred), queue accuracy, exact-trigger rate (transfers at exactly the expected line, or by key when expected), utterances to transfer (mean index of the triggering line), overall, for regular and hard scripts and per category; then every miss. --compare plays the same scripts with a second configuration and shows both side by side, with the scripts whose outcome differs. A script or label that cannot be used is an error naming the file and line.\n\nBuild a set from your own calls, then check a configuration change before it goes live:\n\n  ivrx eval calls/ --config ivrx.toml --compare candidate.toml"
    )]
    Eval(EvalArgs),
    /// Run the sandbox carrier alone: a local Telnyx Call Control stand-in
    #[command(
        long_about = "Run the sandbox carrier alone.\n\nThe sandbox serves the Telnyx Call Control REST API under /v2 (same paths, bodies, answers and error codes), delivers Ed25519-signed webhooks in the real envelope and order, and simulates callers (scripts) and agents (answer, refuse, no answer). `ivrx serve --sandbox` embeds it; run it alone to test another Telnyx application against it.\n\nWith --webhook-url repeated it plays the load balancer in front of several instances of the application: webhooks go round-robin over the URLs (consecutive webhooks of one call to different instances, each call's in order), a URL that refuses the connection, times out or answers 5xx is passed over for the next one within the same attempt, and only when every URL fails does the carrier retry (meta.attempt + 1, after backoff, to --failover-url when given). GET /sandbox/v1/deliveries counts the attempts per URL.\n\nLive-mode `ivrx serve` instances point at it with TELNYX_API_BASE=<its URL>/v2, TELNYX_API_KEY=<--api-key>, TELNYX_PUBLIC_KEY=<GET /sandbox/v1/public-key>, TELNYX_CONNECTION_ID=<the connection id printed at start>, IVRX_NUMBER and IVRX_ADMIN_TOKEN; `ivrx dial --sandbox --sandbox-url URL --server INSTANCE --load` then plays a load run and audits the store through that instance."
    )]
    Sandbox(SandboxArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

/// Where output goes and how it looks.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Machine-readable output (JSON / NDJSON) for scripts
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colour
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset
    Auto,
    /// Always colour
    Always,
    /// Never colour
    Never,
}

/// `ivrx serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the webhook server listens on, HOST:PORT
    #[arg(long, default_value = "127.0.0.1:8080", env = "IVRX_LISTEN", value_parser = listen_address)]
    pub listen: String,
    /// Use the embedded sandbox carrier even when Telnyx credentials are set
    #[arg(long)]
    pub sandbox: bool,
    /// Address of the embedded sandbox carrier, HOST:PORT
    #[arg(long, default_value = "127.0.0.1:8090", env = "IVRX_SANDBOX_LISTEN", value_parser = listen_address)]
    pub sandbox_listen: String,
    /// Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user's data directory]
    #[arg(long, env = "IVRX_DB", value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    /// Configuration file [default: ivrx.toml in the user's config directory]
    #[arg(long, env = "IVRX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Run the sandbox clock this many times faster than real time [default: 1, 5 with --demo]
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Let the sandbox clock run on while the server is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded server, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer) [config: sandbox.clock_hold = false]
    #[arg(long)]
    pub no_clock_hold: bool,
    /// Log as JSON lines instead of text
    #[arg(long)]
    pub json: bool,
    /// Log level filter, e.g. `info`, `ivrx=debug` (RUST_LOG works too)
    #[arg(long, default_value = "info", env = "IVRX_LOG")]
    pub log: String,
    /// Print the effective configuration (secrets masked) and exit
    #[arg(long)]
    pub print_config: bool,
    /// Run a demo: bundled callers go through the IVR and the terminal shows each conversation (on free ports when the default ones are taken)
    #[arg(long)]
    pub demo: bool,
}

/// Checks a listen address: `HOST:PORT`. A bare port gets a suggestion.
fn listen_address(s: &str) -> Result<String, String> {
    let s = s.trim();
    let port_ok = |p: &str| p.parse::<u16>().is_ok();
    if port_ok(s) {
        return Err(format!(
            "{s} is a port, not an address: did you mean 127.0.0.1:{s} (or 0.0.0.0:{s} for every interface)?"
        ));
    }
    if let Some(port) = s.strip_prefix(':').filter(|p| port_ok(p)) {
        return Err(format!(
            "give the host too: did you mean 127.0.0.1:{port} (or 0.0.0.0:{port} for every interface)?"
        ));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port_ok(port) => Ok(s.to_string()),
        _ => Err(format!("{s:?} is not HOST:PORT, e.g. 127.0.0.1:8080")),
    }
}

/// Where `ivrx serve` listens unless told otherwise, and where clients look for it.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// How `dial`, `watch` and `transfer` reach a running `ivrx serve` and its admin API.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the running `ivrx serve`
    #[arg(long, default_value = DEFAULT_SERVER, env = "IVRX_SERVER")]
    pub server: String,
    /// Admin token of the server [default: read from --token-file]
    // A token may begin with '-' (URL-safe base64): it is still the value.
    #[arg(long, env = "IVRX_ADMIN_TOKEN", hide_env_values = true, allow_hyphen_values = true)]
    pub token: Option<String>,
    /// File holding the admin token, as `ivrx serve` writes it beside its --db (--token wins) [default: admin-token beside the default database]
    #[arg(long, value_name = "FILE", env = "IVRX_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// `ivrx dial`
#[derive(Debug, Clone, Args)]
pub struct DialArgs {
    /// Number to call (live), or the IVR number the simulated caller dials (sandbox); same as --to
    #[arg(value_name = "NUMBER", conflicts_with = "to")]
    pub number: Option<String>,
    /// Number to call (live), or the IVR number the simulated caller dials (sandbox)
    #[arg(long)]
    pub to: Option<String>,
    /// Caller id (live) [default: the IVR number], or the simulated caller's number (sandbox)
    #[arg(long)]
    pub from: Option<String>,
    /// Place a simulated inbound call into a running `ivrx serve --sandbox`, or into a standalone `ivrx sandbox` (the report then comes from the --server it delivers to)
    #[arg(long)]
    pub sandbox: bool,
    /// Base URL of the sandbox carrier
    #[arg(long, default_value = serve::DEFAULT_SANDBOX_URL, env = "IVRX_SANDBOX_URL")]
    pub sandbox_url: String,
    /// API key of the sandbox carrier
    #[arg(long, default_value = "sandbox", env = "IVRX_SANDBOX_API_KEY", hide_env_values = true)]
    pub sandbox_api_key: String,
    // The running `ivrx serve` (live mode and load tests).
    #[command(flatten)]
    pub target: ServerArgs,
    /// Caller script: a file (say/press/pause/hangup, one step per line) or a bundled caller's name (calm, frustrated, asks_for_human, interested_buyer, dtmf, hangs_up_during_transfer, waits_in_line)
    #[arg(long, value_name = "FILE|NAME")]
    pub script: Option<PathBuf>,
    /// Type the caller's lines yourself
    #[arg(long, conflicts_with = "script")]
    pub interactive: bool,
    /// Give up waiting for the call to end after this many seconds (sandbox time)
    #[arg(long, default_value_t = 600.0)]
    pub timeout: f64,
    /// Print one JSON object (the last line of stdout) instead of the transcript
    #[arg(long)]
    pub json: bool,
    /// Load test: keep --concurrency simulated calls in flight until --calls have been played
    #[arg(long, requires = "sandbox", conflicts_with_all = ["script", "interactive"], help_heading = "Load testing")]
    pub load: bool,
    /// Calls to play in a load test
    #[arg(long, value_name = "N", default_value_t = 100, requires = "load", help_heading = "Load testing",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub calls: u64,
    /// Calls in flight at once in a load test
    #[arg(long, value_name = "C", default_value_t = 20, requires = "load", help_heading = "Load testing",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Scripts and weights, NAME=WEIGHT,… [default: calm=40,frustrated=30,asks_for_human=15,interested_buyer=15 over the bundled callers; every script of --script-dir equally]
    #[arg(long, value_name = "SPEC", requires = "load", help_heading = "Load testing")]
    pub mix: Option<String>,
    /// Play the *.ivrx scripts of this directory (named by file stem) instead of the bundled callers
    #[arg(long, value_name = "DIR", requires = "load", help_heading = "Load testing")]
    pub script_dir: Option<PathBuf>,
    /// Spread the start of the first --concurrency calls over this many seconds (real time)
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, requires = "load", help_heading = "Load testing")]
    pub ramp: f64,
}

/// `ivrx watch`
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("which").args(["conversation_id", "latest", "all"])))]
pub struct WatchArgs {
    /// Conversation to follow: its id, a unique prefix of it (as `ivrx analyze` prints), or a call_control_id; without one (or with --all), the board of every call in progress
    pub conversation_id: Option<String>,
    /// Follow the newest active conversation (waits for one to start)
    #[arg(long)]
    pub latest: bool,
    /// The board: every call in progress, riskiest first (the default without an id)
    #[arg(long, conflicts_with = "db")]
    pub all: bool,
    // The running `ivrx serve`.
    #[command(flatten)]
    pub target: ServerArgs,
    /// Replay an ended conversation from this database (a SQLite file or a postgres:// URL), without a server
    #[arg(long, value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    /// Print NDJSON events for scripts
    #[arg(long)]
    pub json: bool,
}

/// `ivrx transfer`
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// The call: a conversation id, a unique prefix of it (as `ivrx analyze` prints), or a call_control_id
    pub call: String,
    /// Transfer to this number
    #[arg(long, conflicts_with = "queue")]
    pub to: Option<String>,
    /// Transfer to this queue's agents
    #[arg(long)]
    pub queue: Option<String>,
    // The running `ivrx serve`.
    #[command(flatten)]
    pub target: ServerArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `ivrx analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnalyzeFormat {
    /// Tables for people
    Table,
    /// CSV (one row per call) for spreadsheets and pandas
    Csv,
    /// One JSON document
    Json,
}

/// `ivrx analyze`
#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// Database: a SQLite file, or postgres://USER:PASSWORD@HOST:PORT/DATABASE [default: ivrx.db in the user's data directory]
    #[arg(long, env = "IVRX_DB", value_name = "FILE|URL")]
    pub db: Option<PathBuf>,
    /// Only calls that started at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long)]
    pub since: Option<String>,
    /// Only calls that started before this time (RFC 3339, or YYYY-MM-DD to include that whole day)
    #[arg(long)]
    pub until: Option<String>,
    /// Only calls transferred to this queue
    #[arg(long)]
    pub queue: Option<String>,
    /// Only transferred calls (`--transferred=false`: only calls that were not)
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub transferred: Option<bool>,
    /// Output format
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Table)]
    pub format: AnalyzeFormat,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
    /// Write an SVG chart (sentiment timelines, time-to-transfer histogram)
    #[arg(long, value_name = "FILE.svg")]
    pub chart: Option<PathBuf>,
    /// Write a self-contained HTML report
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Re-run the escalation policy with other thresholds and show what would change
    #[arg(long, value_name = "FILE.toml")]
    pub replay_policy: Option<PathBuf>,
    /// Import conversations (JSON lines or a Symbl messages export) and score them; a SQLite ivrx database is copied as it is (e.g. into PostgreSQL: --import ivrx.db --db postgres://…)
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
    /// Generate this many synthetic conversations into the database first (for demos and benchmarks)
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u64>,
    /// Seed for --synthetic (the same seed gives the same calls)
    #[arg(long, default_value_t = 7, requires = "synthetic")]
    pub seed: u64,
    /// Every column of the call lists in the tables, however wide (the default columns fit 100)
    #[arg(long)]
    pub wide: bool,
    /// Topics listed (every format), and rows of the other lists in the table and HTML outputs (recent calls, trackers, replay changes)
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub top: usize,
    /// Caller utterances in the window that ends at each call's decline (topics near the decline)
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub decline_window: u32,
    /// Least window utterances a topic must appear in to be listed
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub min_count: u32,
    /// Configuration file (engine and policy)
    #[arg(long, env = "IVRX_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Intelligence engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineChoice {
    /// Offline lexicon and rule scorer with trackers (default)
    Local,
    /// Symbl.ai Conversation API
    Symbl,
}

/// `ivrx score`
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Utterances to score; with none, one utterance per line of stdin
    pub text: Vec<String>,
    /// Engine to score with [default: local]
    #[arg(long, value_enum)]
    pub engine: Option<EngineChoice>,
    /// Print NDJSON: {"text", "score", "label", "trackers": [{"tracker", "phrase"}]}
    #[arg(long)]
    pub json: bool,
    /// Configuration file (trackers, engine)
    #[arg(long, env = "IVRX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Symbl credentials file [default: ./symbl.conf, then the config and home directories]
    #[arg(long, value_name = "FILE")]
    pub symbl_conf: Option<PathBuf>,
}

/// `ivrx eval`
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Directory of labelled caller scripts (*.ivrx with `# expect:` lines)
    pub dir: PathBuf,
    /// Configuration file (menu, queues, trackers, policy) [default: ivrx.toml in the user's config directory]
    #[arg(long, env = "IVRX_CONFIG")]
    pub config: Option<PathBuf>,
    /// A second configuration: play the same scripts with it and show both side by side
    #[arg(long, value_name = "OTHER.toml")]
    pub compare: Option<PathBuf>,
    /// Print one JSON document: {"dir", "runs": [{"config", "report"}]}
    #[arg(long)]
    pub json: bool,
}

/// `ivrx sandbox`
#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address the sandbox API listens on
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Where webhooks are delivered. Repeat it for several instances of the application: webhooks then go round-robin over the URLs like a load balancer's (consecutive webhooks of one call reach different instances), and a URL that refuses the connection, times out or answers 5xx is passed over for the next one
    #[arg(long = "webhook-url", value_name = "URL", required = true)]
    pub webhook_urls: Vec<String>,
    /// Where webhooks go when the webhook URL fails: Telnyx's retries (attempt 2 onwards) go there
    #[arg(long, value_name = "URL")]
    pub failover_url: Option<String>,
    /// API key clients must send as `Authorization: Bearer KEY`
    #[arg(long, default_value = "sandbox", env = "IVRX_SANDBOX_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Ed25519 signing key file (base64 of 32 secret bytes) [default: a fresh key]
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// Run the sandbox clock this many times faster than real time
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Let the sandbox clock run on while the application is slow to answer webhooks, as a real carrier does: calls then outrun an overloaded application, which loses webhooks and caller speech (by default the clock stands still once a webhook has waited 100 ms for its answer)
    #[arg(long)]
    pub no_clock_hold: bool,
    /// How a number behaves when called: NUMBER=answer[:SECONDS], refuse, busy[:SECONDS] or no-answer (repeatable)
    #[arg(long = "agent", value_name = "NUMBER=BEHAVIOUR")]
    pub agents: Vec<String>,
    /// Chaos: fraction of webhooks delivered twice (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Chaos: fraction of webhooks delivered out of order (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub reorder_rate: f64,
    /// Chaos: up to this many milliseconds of added delivery delay
    #[arg(long, default_value_t = 0)]
    pub max_delay_ms: u64,
    /// Chaos: fraction of REST requests answered 500 without being executed (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub api_error_rate: f64,
    /// Chaos: fraction of REST requests answered 429 with Retry-After (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub api_rate_limit_rate: f64,
    /// Chaos: fraction of REST requests executed but answered late, as if timed out (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub api_timeout_rate: f64,
    /// Chaos: fraction of REST requests whose connection is dropped before they run, with no answer (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub api_drop_rate: f64,
    /// Chaos: fraction of REST requests that run, then their connection is dropped with no answer (0..1)
    #[arg(long, default_value_t = 0.0)]
    pub api_drop_after_rate: f64,
    /// Seed for the chaos knobs, for reproducible runs
    #[arg(long)]
    pub seed: Option<u64>,
    /// Log as JSON lines instead of text
    #[arg(long)]
    pub json: bool,
}

/// `ivrx completions`
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The command-line definition: [`Cli`], with the exit codes in every
/// subcommand's `--help`. Parsing, the man pages and completions use it.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommands(|sub| sub.after_long_help(exit::help_section()))
}

/// Loads the configuration (see [`Config::load`](crate::config::Config::load))
/// and warns on stderr about keys it no longer reads.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<crate::config::Config> {
    let config = crate::config::Config::load(path)?;
    for retired in config.retired_keys() {
        eprintln!("warning: {retired}");
    }
    Ok(config)
}

/// Parses the command line and runs it. The binary's `main`.
pub fn main() -> ExitCode {
    let cli = match command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m)) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::code(exit::ERROR);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Score(args) => score::run(args).await,
        Command::Eval(args) => eval::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Dial(args) => dial::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Transfer(args) => transfer::run(args).await,
        Command::Analyze(args) => analyze::run(args).await,
        Command::Completions(args) => {
            docs::write_completion(args.shell, &mut std::io::stdout())?;
            Ok(exit::code(exit::OK))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_token_that_begins_with_a_hyphen_is_the_tokens_value() {
        let cli = Cli::try_parse_from(["ivrx", "watch", "abc", "--token", "-5qK_x", "--json"]).unwrap();
        let Command::Watch(args) = cli.command else { panic!("not watch") };
        assert_eq!(args.target.token.as_deref(), Some("-5qK_x"));
        assert!(args.json);
    }
}
