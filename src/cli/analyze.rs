//! `ivrx analyze`: post-call analytics over the store.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::ProgressBar;

use super::{AnalyzeArgs, AnalyzeFormat, ColorChoice, Output};
use crate::analyze::render::{chart, csv::CsvWriter, html, json::JsonWriter, table};
use crate::analyze::synthetic::{self, SyntheticOptions};
use crate::analyze::{self, import, query, replay, AnalyzeError, Bound, Filters, Options};
use crate::config::{Config, EngineKind};
use crate::intel::LocalEngine;
use crate::store::{Location, SharedStore, StoreError, StoreOptions};

/// Runs `ivrx analyze`.
pub async fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    let db = Location::sqlite(args.db.clone().unwrap_or_else(|| config.database_file()));
    let json = args.json || args.format == AnalyzeFormat::Json;
    let format = if json { AnalyzeFormat::Json } else { args.format };
    let output = Output::detect(ColorChoice::Auto);
    let progress = !json && output.tty && std::io::stderr().is_terminal();

    // Read and check every input before anything is written.
    let filters = Filters {
        since: args.since.as_deref().map(|v| query::parse_time(v, Bound::Since)).transpose()?,
        until: args.until.as_deref().map(|v| query::parse_time(v, Bound::Until)).transpose()?,
        queue: args.queue.clone(),
        transferred: args.transferred,
    };
    let replay = args.replay_policy.as_deref().map(|p| replay::load_policy(p, &config.policy)).transpose()?;
    let imports = args.import.as_deref().map(import::read).transpose()?;

    let store = if imports.is_some() || args.synthetic.is_some() {
        let options = StoreOptions { redact_pii: config.storage.redact_pii, ..StoreOptions::default() };
        let store = crate::store::open(&db, options).await?;
        write_calls(&args, &config, &store, imports.as_deref(), progress).await?;
        store
    } else {
        match crate::store::open_read_only(&db).await {
            Err(StoreError::Missing { .. }) => {
                bail!("no database at {db}: run `ivrx serve` first, or create one with --import FILE or --synthetic N")
            }
            other => other?,
        }
    };

    let options = Options {
        filters,
        window: args.decline_window as usize,
        min_count: args.min_count,
        top: args.top,
        replay,
        ..Options::default()
    };
    let total = if progress { analyze::count(&*store, &options.filters).await? } else { 0 };
    let bar = progress_bar(progress, total, "analysing");
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let database = db.to_string();
    let result = match format {
        AnalyzeFormat::Json => {
            let mut w = JsonWriter::new(&mut out, &database, &options.filters)?;
            let report = analyze::analyze(&*store, &options, |m| Ok(w.row(m)?), &mut || bar.inc(1)).await;
            report.and_then(|r| Ok((w.finish(&r).map(drop)?, r)))
        }
        AnalyzeFormat::Csv => {
            let mut w = CsvWriter::new(&mut out, options.replay.is_some())?;
            let report = analyze::analyze(&*store, &options, |m| Ok(w.row(m)?), &mut || bar.inc(1)).await;
            report.and_then(|r| Ok((w.finish().map(drop)?, r)))
        }
        AnalyzeFormat::Table => {
            analyze::analyze(&*store, &options, |_| Ok(()), &mut || bar.inc(1)).await.and_then(|r| {
                bar.finish_and_clear();
                let style = table::TableStyle { color: output.color, tty: output.tty, top: args.top };
                out.write_all(table::render(&r, style).as_bytes())?;
                Ok(((), r))
            })
        }
    };
    bar.finish_and_clear();
    let report = match result {
        Ok(((), report)) => report,
        Err(AnalyzeError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e.into()),
    };
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        other => other?,
    }
    drop(out);

    if args.chart.is_some() || args.html.is_some() {
        let svg = chart::render(&report)?;
        if let Some(path) = &args.chart {
            write_file(path, &svg)?;
            eprintln!("chart written to {}", path.display());
        }
        if let Some(path) = &args.html {
            write_file(path, &html::render(&report, &svg, args.top))?;
            eprintln!("report written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Imports and/or generates conversations into the database.
async fn write_calls(
    args: &AnalyzeArgs,
    config: &Config,
    store: &SharedStore,
    imports: Option<&[import::ImportedCall]>,
    progress: bool,
) -> anyhow::Result<()> {
    if config.engine.kind != EngineKind::Local {
        eprintln!("note: imported and synthetic calls are scored with the local engine");
    }
    let engine = LocalEngine::default();
    let db = store.describe();
    if let (Some(calls), Some(path)) = (imports, args.import.as_deref()) {
        let bar = progress_bar(progress, calls.len() as u64, "importing");
        let done = import::store_calls(
            &**store,
            calls,
            &path.display().to_string(),
            &engine,
            &config.policy,
            chrono::Utc::now(),
            &mut || bar.inc(1),
        )
        .await?;
        bar.finish_and_clear();
        eprintln!(
            "imported {} conversations ({} utterances; the policy decided to transfer {}) into {}",
            done.calls, done.utterances, done.decided, db
        );
    }
    if let Some(n) = args.synthetic {
        let options = SyntheticOptions { calls: n, seed: args.seed, ..SyntheticOptions::default() };
        let bar = progress_bar(progress, n, "generating");
        let done = synthetic::generate(&**store, &options, &engine, &config.policy, &config.queues, &mut || bar.inc(1))
            .await?;
        bar.finish_and_clear();
        eprintln!(
            "generated {} synthetic conversations (seed {}; {} transfer decisions, {} connected) into {}",
            done.calls, args.seed, done.decided, done.transferred, db
        );
    }
    Ok(())
}

/// A progress bar on stderr, or a hidden one.
fn progress_bar(visible: bool, total: u64, what: &'static str) -> ProgressBar {
    let bar =
        super::output::progress_bar(visible, total, "{msg:>10} [{bar:32}] {pos}/{len} calls ({per_sec}, {eta} left)");
    bar.set_message(what);
    bar
}

fn write_file(path: &PathBuf, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
