//! WAL checkpoints off the commit path.
//!
//! SQLite normally checkpoints inside the commit that pushes the WAL past
//! 1000 pages: that commit copies the WAL into the database file and syncs
//! it twice, a few milliseconds during which every webhook waiting for its
//! durable acknowledgement waits too. Here a background thread with its own
//! connection runs `PASSIVE` checkpoints (which never block the writer) every
//! [`INTERVAL`], repeating until a pass finds nothing new, so that the
//! writer's next commit starts the WAL over from its beginning (the WAL stays
//! small without the writer ever copying it). The writer's own automatic
//! checkpoint is raised to [`WRITER_SAFETY_PAGES`], a safety net for when the
//! background thread cannot keep up.
//!
//! Durability is unchanged: commits are still appended to the WAL before the
//! writer answers, and `synchronous = NORMAL` still syncs the WAL before each
//! checkpoint and the database after it.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How often the background thread checkpoints.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);

/// The writer checkpoints itself only past this many WAL pages (40 MiB with 4 KiB pages).
pub(super) const WRITER_SAFETY_PAGES: u32 = 10_000;

/// Passes one round may make to catch up with the writer.
const CATCH_UP_PASSES: usize = 8;

/// Checkpoints every [`INTERVAL`] until `stop` is disconnected (the writer
/// has ended), then once more.
pub(super) fn run(path: PathBuf, stop: Receiver<()>) {
    let conn = match super::connect(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoints stay on the commit path");
            return;
        }
    };
    loop {
        let last = matches!(stop.recv_timeout(INTERVAL), Err(RecvTimeoutError::Disconnected));
        round(&conn);
        if last {
            return;
        }
    }
}

/// Copies the WAL into the database until a pass finds nothing new (the
/// writer's next commit can then start the WAL over) or `CATCH_UP_PASSES`
/// pass. Each pass copies what the writer appended during the one before, so
/// the passes shrink and one of them usually finds the writer between commits.
fn round(conn: &rusqlite::Connection) {
    let mut seen = -1;
    for _ in 0..CATCH_UP_PASSES {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) if frames > 0 && frames != seen => seen = frames,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "background WAL checkpoint");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(conn: &rusqlite::Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).unwrap()
    }

    #[test]
    fn a_round_catches_up_so_the_writer_restarts_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = crate::sqlite::connect(&path).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)").unwrap();
        for i in 0..50 {
            writer.execute("INSERT INTO t (body) VALUES (?1)", [format!("{i:0>2000}")]).unwrap();
        }
        let checkpointer = crate::sqlite::connect(&path).unwrap();
        round(&checkpointer);
        // Everything was copied: the next commit writes from the start of the WAL.
        writer.execute("INSERT INTO t (body) VALUES ('x')", []).unwrap();
        let after = frames(&checkpointer);
        assert!(after <= 2, "the WAL restarted: {after} frames");
        let n: i64 = writer.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 51);
    }

    #[test]
    fn the_thread_ends_with_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        crate::sqlite::connect(&path).unwrap();
        let (stop_tx, stop) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || run(path, stop));
        drop(stop_tx);
        t.join().unwrap();
    }
}
