//! A PostgreSQL server that goes away and comes back: the store reports it
//! (what `/readyz` shows) and keeps every accepted write until the server
//! is back. A test binary of its own: it stops the process's test cluster.

mod common;

use std::time::{Duration, Instant};

use common::{call, write_events};
use ivrx_store::{Location, StoreOptions};

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_restarted_server_and_none_is_lost() {
    let Some(pg) = ivrx_testkit::postgres::cluster() else { return };
    let store =
        ivrx_store::open(&Location::parse(pg.fresh_database()).unwrap(), StoreOptions::default()).await.unwrap();
    let events = call();
    write_events(&*store, &events[..6]);
    store.flush().await.unwrap();
    assert!(!store.health().is_failing());

    pg.stop();
    // Idle, the store notices within its check interval.
    wait_until("the store reports the database unreachable", || store.health().is_failing()).await;
    assert!(store.health().last_error().unwrap().contains("cannot reach the database"));
    // Writes are accepted meanwhile and kept.
    write_events(&*store, &events[6..]);
    let flushed = store.flush();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store.health().is_failing());

    pg.restart();
    tokio::time::timeout(Duration::from_secs(30), flushed).await.expect("flushed after the restart").unwrap();
    assert!(!store.health().is_failing());
    assert_eq!(store.events("c1", 0).await.unwrap().len(), events.len());
    let report = store.report("c1").await.unwrap().unwrap();
    assert!(report.transferred);
}
