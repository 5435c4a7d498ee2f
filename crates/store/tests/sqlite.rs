//! What only the SQLite backend does: another process's lock, a file from a
//! newer ivrx, and files written by other tools.

mod common;

use common::{call, write_events};
use ivrx_core::session::Speaker;
use ivrx_store::{Analytics, Conversations, Filters, Journal, SqliteStore, StoreError, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_is_reported_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivrx.db");
    let options = StoreOptions { lock_timeout: std::time::Duration::from_millis(100), ..StoreOptions::default() };
    let store = SqliteStore::open(&path, options).unwrap();
    // Another process holds the write lock.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.busy_timeout(std::time::Duration::from_millis(1)).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    write_events(&store, &call());
    // The writer waits on the lock (busy timeout), fails, reports and retries.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !store.health().is_failing() {
        assert!(std::time::Instant::now() < deadline, "the failure was never reported");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(store.health().last_error().unwrap().contains("locked"));
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    store.flush().await.unwrap();
    assert!(!store.health().is_failing());
    assert_eq!(store.events("c1", 0).await.unwrap().len(), 12);
}

#[tokio::test]
async fn a_database_from_a_newer_ivrx_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivrx.db");
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    store.flush().await.unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')", []).unwrap();
    drop(conn);
    let e = SqliteStore::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("upgrade ivrx"), "{e}");
}

#[tokio::test]
async fn reading_a_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here.db");
    let e = SqliteStore::open_read_only(&path).unwrap_err();
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
    assert!(!path.exists());
}

/// A store written or edited by other tools: numbers stored as text, text as
/// numbers, names this build does not know. Each odd value reads as absent;
/// the rows still read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_values_in_a_foreign_store_read_leniently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivrx.db");
    let store = SqliteStore::open(&path, StoreOptions { redact_pii: false, ..StoreOptions::default() }).unwrap();
    write_events(&store, &call());
    store.flush().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE conversations SET decision_ms = '9001', duration_ms = 60000.0, trigger_index = 'two',
                transfer_status = 'teleported', started_at = 'not a time';
         UPDATE utterances SET score = '-0.4', label = 'furious' WHERE seq = 1;
         UPDATE utterances SET speaker = 'narrator', text = 42 WHERE seq = 3;
         UPDATE utterances SET trackers = 'not json', offset_ms = -5 WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let c = store.conversation("c1").await.unwrap().unwrap();
    assert_eq!(c.started_at, None);
    assert_eq!(c.duration_ms, Some(60000));
    let d = c.decision.as_ref().unwrap();
    assert_eq!((d.decision_ms, d.trigger_index), (Some(9001), None));
    assert_eq!(c.transfer_status, None);
    assert_eq!(c.utterances.len(), 2, "an utterance by an unknown speaker is left out");
    assert_eq!((c.utterances[0].score, c.utterances[0].label), (Some(-0.4), None));
    assert_eq!((c.utterances[1].offset_ms, c.utterances[1].trackers.len()), (0, 0));
    assert!(c.utterances.iter().all(|u| u.speaker == Speaker::Caller));
    let streamed: Vec<_> = futures_util::StreamExt::collect::<Vec<_>>(store.calls(Filters::default())).await;
    assert_eq!(streamed.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![c]);
}
