//! Post-call analytics (`ivrx analyze`): per-call metrics, aggregates across
//! calls, topics near the decline, policy replay, imports and synthetic data,
//! rendered as tables, CSV, JSON, an SVG chart or an HTML report.
//!
//! The store is read through the storage port, one call at a time
//! ([`Analytics::calls`]): memory holds a few calls' utterances, fixed-size
//! accumulators, the decision times needed for exact percentiles, and bounded
//! samples for the charts.
//!
//! ```no_run
//! # async fn run() -> Result<(), ivrx::analyze::AnalyzeError> {
//! use ivrx::analyze::{analyze, Options};
//! use ivrx::store::Location;
//! let store = ivrx::store::open_read_only(&Location::sqlite("ivrx.db")).await?;
//! let report = analyze(&*store, &Options::default(), |_call| Ok(()), &mut || {}).await?;
//! println!("{} calls, {} transferred", report.aggregates.summary.calls, report.aggregates.summary.transferred);
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod import;
pub mod per_call;
pub mod query;
pub mod record;
pub mod render;
pub mod replay;
pub mod rng;
pub mod stats;
pub mod synthetic;
pub mod topics;

use futures_util::StreamExt;
use serde::Serialize;

pub use aggregate::{AggregateOptions, Aggregates, Aggregator};
pub use per_call::CallMetrics;
pub use query::{Bound, Filters};
pub use replay::{ReplayAccumulator, ReplayReport};

use crate::policy::PolicyConfig;
use crate::store::{Analytics, StoreError};

/// Something that stopped the analysis.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `--since` / `--until` could not be read.
    #[error("--{flag} {value:?}: {message}")]
    Time {
        /// `since` or `until`.
        flag: &'static str,
        /// What was given.
        value: String,
        /// The formats accepted.
        message: String,
    },
    /// The policy file for `--replay-policy`.
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
    /// The file for `--import`.
    #[error(transparent)]
    Import(#[from] import::ImportError),
    /// The chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// What to analyse and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which calls.
    pub filters: Filters,
    /// Caller utterances in a decline window (see [`topics`]).
    pub window: usize,
    /// Least decline-window utterances a topic must appear in.
    pub min_count: u32,
    /// Topics listed and recent calls kept for tables.
    pub top: usize,
    /// Timelines sampled for the chart.
    pub samples: usize,
    /// Replay the escalation policy with this configuration.
    pub replay: Option<PolicyConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self { filters: Filters::default(), window: 2, min_count: 3, top: 15, samples: 12, replay: None }
    }
}

/// The result of an analysis (the per-call rows were streamed to the caller).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The filters used.
    pub filters: Filters,
    /// Everything across calls.
    #[serde(flatten)]
    pub aggregates: Aggregates,
    /// The policy replay, with `--replay-policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayReport>,
}

/// How many calls match the filters.
pub async fn count(store: &(impl Analytics + ?Sized), filters: &Filters) -> Result<u64, AnalyzeError> {
    Ok(store.count(filters).await?)
}

/// Analyses the calls matching `options.filters`, oldest first: `on_call`
/// receives every call's metrics as it is computed (for streaming output),
/// `tick` is called once per call (for a progress bar).
pub async fn analyze(
    store: &(impl Analytics + ?Sized),
    options: &Options,
    mut on_call: impl FnMut(&CallMetrics) -> Result<(), AnalyzeError>,
    tick: &mut dyn FnMut(),
) -> Result<Report, AnalyzeError> {
    let mut aggregator = Aggregator::new(AggregateOptions {
        window: options.window,
        min_count: options.min_count,
        top: options.top,
        samples: options.samples,
    });
    let mut replay = options.replay.clone().map(ReplayAccumulator::new);
    let mut calls = store.calls(options.filters.clone());
    while let Some(call) = calls.next().await {
        let call = call?;
        let decline = topics::find_decline(&call);
        let mut m = per_call::metrics(&call, decline.as_ref());
        if let Some(acc) = replay.as_mut() {
            let r = replay::replay_call(&call, acc.policy());
            acc.add(&call, &r);
            m.replay = Some(r);
        }
        on_call(&m)?;
        aggregator.add(&call, &m, decline.as_ref());
        tick();
    }
    Ok(Report {
        filters: options.filters.clone(),
        aggregates: aggregator.finish(),
        replay: replay.map(ReplayAccumulator::finish),
    })
}
