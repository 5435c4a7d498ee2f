//! `ivrx analyze`: post-call analytics over the store.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use indicatif::ProgressBar;

use super::{exit, AnalyzeArgs, AnalyzeFormat, ColorChoice, Output};
use crate::analyze::render::{chart, csv::CsvWriter, html, json::JsonWriter, table};
use crate::analyze::synthetic::{self, SyntheticOptions};
use crate::analyze::{self, import, query, replay, AnalyzeError, Bound, Filters, Options};
use crate::config::{Config, EngineKind, Mode};
use crate::store::{Location, SharedStore, StoreError, StoreOptions};

/// Runs `ivrx analyze`.
pub async fn run(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(args.config.as_deref())?;
    config.validate(Mode::Sandbox)?;
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
    if let (Some(path), Some(policy)) = (&args.replay_policy, &replay) {
        for retired in policy.retired_keys() {
            eprintln!("warning: {}: {retired}", path.display());
        }
    }
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
        AnalyzeFormat::Table => match analyze::analyze(&*store, &options, |_| Ok(()), &mut || bar.inc(1)).await {
            Ok(r) => {
                bar.finish_and_clear();
                let ids = table::listed_ids(&r, args.top);
                let short = store.short_ids(&ids).await.unwrap_or_default();
                let short_id = |id: &str| short.get(id).cloned().unwrap_or_else(|| id.to_string());
                let style = table::TableStyle { output, top: args.top, wide: args.wide, short_id: &short_id };
                let text = if r.aggregates.summary.calls == 0 {
                    no_calls(&args, &database) + "\n"
                } else {
                    table::render(&r, style)
                };
                out.write_all(text.as_bytes()).map(|()| ((), r)).map_err(AnalyzeError::Output)
            }
            Err(e) => Err(e),
        },
    };
    bar.finish_and_clear();
    let report = match result {
        Ok(((), report)) => report,
        Err(AnalyzeError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit::code(exit::OK)),
        Err(e) => return Err(e.into()),
    };
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(exit::code(exit::OK)),
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
    Ok(exit::code(exit::OK))
}

/// What the tables say when no stored call is left to report on.
fn no_calls(args: &AnalyzeArgs, database: &str) -> String {
    let mut filters = Vec::new();
    for (flag, value) in [("--since", &args.since), ("--until", &args.until), ("--queue", &args.queue)] {
        if let Some(v) = value {
            filters.push(format!("{flag} {v}"));
        }
    }
    if let Some(t) = args.transferred {
        filters.push(format!("--transferred={t}"));
    }
    if filters.is_empty() {
        format!("{database} holds no calls yet.")
    } else {
        format!("No call in {database} matches {}.", filters.join(" "))
    }
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
    let engine = super::engine::local_engine(config);
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
        let done = synthetic::generate(&**store, &options, &engine, config, &mut || bar.inc(1)).await?;
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
        super::output::progress_bar(visible, total, "{msg:>10} [{bar:32}] {pos}/{len} calls ({rate}, {eta} left)");
    bar.set_message(what);
    bar
}

fn write_file(path: &PathBuf, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
