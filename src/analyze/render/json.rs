//! `--format json` / `--json`: one JSON document, written as the calls are
//! read (the per-call array is streamed, then the aggregates follow):
//!
//! ```text
//! {"ivrx_analyze": 1, "database": "...", "filters": {...},
//!  "calls": [{per-call metrics, as the CSV columns; "trackers" is a list;
//!             "replay": {...} with --replay-policy}, ...],
//!  "summary": {...}, "reasons": [...], "sources": {...},
//!  "time_to_transfer": {"decision": {...}, "connected": {...},
//!                       "decision_histogram": [...], "connected_histogram": [...]},
//!  "callbacks": {"requested", "placed", "answered", "wait": {...}} (when a call had one),
//!  "hours": [...], "trackers": [...], "topics": {..., "terms": [...]},
//!  "samples": [...], "replay": {...} (with --replay-policy)}
//! ```

use std::io::{self, Write};

use crate::analyze::{CallMetrics, Filters, Report};

/// Format version of the document.
pub const VERSION: u32 = 1;

/// Streams the document to a writer.
pub struct JsonWriter<W: Write> {
    out: W,
    first: bool,
}

fn io_err(e: serde_json::Error) -> io::Error {
    io::Error::other(e)
}

impl<W: Write> JsonWriter<W> {
    /// Opens the document and the `calls` array.
    pub fn new(mut out: W, database: &str, filters: &Filters) -> io::Result<Self> {
        write!(out, "{{\"ivrx_analyze\":{VERSION},\"database\":")?;
        serde_json::to_writer(&mut out, database).map_err(io_err)?;
        out.write_all(b",\"filters\":")?;
        serde_json::to_writer(&mut out, filters).map_err(io_err)?;
        out.write_all(b",\"calls\":[")?;
        Ok(Self { out, first: true })
    }

    /// Writes one call.
    pub fn row(&mut self, m: &CallMetrics) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        self.out.write_all(b"\n")?;
        serde_json::to_writer(&mut self.out, m).map_err(io_err)
    }

    /// Closes the array, writes the aggregates and closes the document.
    pub fn finish(mut self, report: &Report) -> io::Result<W> {
        self.out.write_all(b"\n]")?;
        let value = serde_json::to_value(report).map_err(io_err)?;
        if let serde_json::Value::Object(map) = value {
            for (key, v) in map {
                // The filters are already written; the recent calls repeat `calls`.
                if key == "filters" || key == "recent_calls" {
                    continue;
                }
                write!(self.out, ",\n{}:", serde_json::to_string(&key).map_err(io_err)?)?;
                serde_json::to_writer(&mut self.out, &v).map_err(io_err)?;
            }
        }
        self.out.write_all(b"\n}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}
