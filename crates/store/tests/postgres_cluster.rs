//! Conversation leases on PostgreSQL, as several instances use them: one
//! owner at a time, an epoch raised at each change of hands, checkpoints
//! refused to a worker whose lease is no longer current, wake-ups through
//! `LISTEN`/`NOTIFY`, and the conversations a dead instance left behind.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use ivrx_store::cluster::{Acquired, Answer, Fence, Lease};
use ivrx_store::{
    Conversations, Journal, Location, PostgresStore, Recovery, SessionState, Store, StoreOptions, Transition,
};
use ivrx_testkit::postgres::cluster;

const TERM: Duration = Duration::from_secs(30);

async fn open(url: &str) -> PostgresStore {
    let Location::Postgres(u) = Location::parse(url).unwrap() else { panic!("not PostgreSQL") };
    PostgresStore::open(&u, StoreOptions::default()).await.unwrap()
}

fn owned(a: Acquired) -> Lease {
    match a {
        Acquired::Owned(l) => l,
        other => panic!("not owned: {other:?}"),
    }
}

/// A transition of one event and a session state that has not ended.
fn step(n: u64, processed: &[&str]) -> Transition {
    let events = common::call().into_iter().filter(|r| r.n == n).collect();
    Transition {
        conversation_id: "c1".into(),
        events,
        session: Some(SessionState { state: format!("{{\"n\":{n}}}"), ended: false }),
        processed: processed.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_has_one_owner_and_a_stale_owner_cannot_commit() {
    let Some(pg) = cluster() else { return };
    let url = pg.fresh_database();
    let (a, b) = (open(&url).await, open(&url).await);
    let (ca, cb) = (a.cluster().unwrap(), b.cluster().unwrap());

    let la = owned(ca.acquire("c1", "a", TERM).await.unwrap());
    assert_eq!(la.epoch, 1);
    assert_eq!(cb.acquire("c1", "b", TERM).await.unwrap(), Acquired::Held { owner: "a".into() });
    assert_eq!(ca.checkpoint(&la, Some(step(1, &[])), &[], TERM).await.unwrap(), Fence::Committed);
    assert!(ca.renew(&la, TERM).await.unwrap());

    // Instance a is presumed dead (its lease expired): b takes over at the next epoch.
    ca.release(&la).await.unwrap();
    let lb = owned(cb.acquire("c1", "b", TERM).await.unwrap());
    assert_eq!(lb.epoch, 2);
    // a wakes up and tries to go on: refused, whatever the timing.
    assert_eq!(ca.checkpoint(&la, Some(step(2, &[])), &[], TERM).await.unwrap(), Fence::Lost);
    assert!(!ca.renew(&la, TERM).await.unwrap());
    assert_eq!(owned(cb.acquire("c1", "b", TERM).await.unwrap()).epoch, 3, "even its own owner raises the epoch");
    assert_eq!(cb.checkpoint(&lb, Some(step(2, &[])), &[], TERM).await.unwrap(), Fence::Lost, "epoch 2 is stale now");

    let events = b.events("c1", 0).await.unwrap();
    assert_eq!(events.iter().map(|r| r.n).collect::<Vec<_>>(), [1], "nothing of a fenced checkpoint is stored");
    assert_eq!(b.session("c1").await.unwrap().as_deref(), Some("{\"n\":1}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_instances_racing_for_a_free_conversation_one_wins() {
    let Some(pg) = cluster() else { return };
    let url = pg.fresh_database();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(std::sync::Arc::new(open(&url).await));
    }
    for round in 0..20 {
        let conv = format!("race-{round}");
        let tries: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (s, conv) = (s.clone(), conv.clone());
                tokio::spawn(async move { s.cluster().unwrap().acquire(&conv, &format!("i{i}"), TERM).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tries {
            winners += matches!(t.await.unwrap(), Acquired::Owned(_)) as usize;
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_left_without_a_live_owner_is_found_and_owners_are_woken() {
    let Some(pg) = cluster() else { return };
    let url = pg.fresh_database();
    let (a, b) = (open(&url).await, open(&url).await);
    let (ca, cb) = (a.cluster().unwrap(), b.cluster().unwrap());
    let mut wake_ups = cb.wake_ups();

    // A webhook stored for c1, nobody owns it yet.
    a.record_webhook(common::transcription("ev-1", "hello")).await.unwrap();
    assert_eq!(cb.orphans().await.unwrap(), ["c1"]);
    let la = owned(ca.acquire("c1", "a", TERM).await.unwrap());
    assert!(cb.orphans().await.unwrap().is_empty(), "owned by a live instance");
    assert_eq!(ca.checkpoint(&la, Some(step(1, &["ev-1"])), &[], TERM).await.unwrap(), Fence::Committed);
    assert!(a.unprocessed_webhooks("c1").await.unwrap().is_empty(), "consumed in the checkpoint");
    ca.release(&la).await.unwrap();
    assert_eq!(cb.orphans().await.unwrap(), ["c1"], "its session has not ended and its owner is gone");

    // Wake-ups reach the other instance.
    let mut woken = None;
    for _ in 0..50 {
        ca.wake("c1").await.unwrap();
        if let Ok(Some(w)) = tokio::time::timeout(Duration::from_millis(200), wake_ups.next()).await {
            woken = w;
            break;
        }
    }
    assert_eq!(woken.as_deref(), Some("c1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stored_anywhere_is_answered_once_under_the_current_lease() {
    let Some(pg) = cluster() else { return };
    let url = pg.fresh_database();
    let (a, b) = (open(&url).await, open(&url).await);
    let (ca, cb) = (a.cluster().unwrap(), b.cluster().unwrap());
    let la = owned(ca.acquire("c1", "a", TERM).await.unwrap());
    ca.checkpoint(&la, Some(step(1, &[])), &[], TERM).await.unwrap();

    // Stored through b, for a's conversation.
    let id = cb.request("c1", "{\"queue\":\"sales\"}").await.unwrap();
    let pending = ca.requests("c1").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id, pending[0].body.as_str()), (id, "{\"queue\":\"sales\"}"));
    assert_eq!(cb.take_answer(id).await.unwrap(), None);

    // A stale owner's answer is refused with its checkpoint.
    ca.release(&la).await.unwrap();
    let lb = owned(cb.acquire("c1", "b", TERM).await.unwrap());
    let stale = [Answer { request_id: id, body: "stale".into() }];
    assert_eq!(ca.checkpoint(&la, None, &stale, TERM).await.unwrap(), Fence::Lost);
    assert_eq!(cb.take_answer(id).await.unwrap(), None);

    let answer = [Answer { request_id: id, body: "done".into() }];
    assert_eq!(cb.checkpoint(&lb, None, &answer, TERM).await.unwrap(), Fence::Committed);
    let again = [Answer { request_id: id, body: "again".into() }];
    cb.checkpoint(&lb, None, &again, TERM).await.unwrap();
    assert!(ca.requests("c1").await.unwrap().is_empty());
    assert_eq!(ca.take_answer(id).await.unwrap().as_deref(), Some("done"), "answered once");
    assert_eq!(ca.take_answer(id).await.unwrap(), None, "taken once, then forgotten");

    // An answer nobody took, and a request nobody answered (its
    // conversation ended), are forgotten once old enough.
    let id = cb.request("c1", "{}").await.unwrap();
    let answer = [Answer { request_id: id, body: "late".into() }];
    cb.checkpoint(&lb, None, &answer, TERM).await.unwrap();
    cb.request("c2", "{}").await.unwrap();
    assert_eq!(cb.forget_requests(Duration::from_secs(60)).await.unwrap(), 0, "too young");
    assert_eq!(cb.forget_requests(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(ca.take_answer(id).await.unwrap(), None);
    assert!(ca.requests("c2").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_announces_its_last_event_to_every_instance() {
    let Some(pg) = cluster() else { return };
    let url = pg.fresh_database();
    let (a, b) = (open(&url).await, open(&url).await);
    let (ca, cb) = (a.cluster().unwrap(), b.cluster().unwrap());
    let mut committed = cb.committed();
    let la = owned(ca.acquire("c1", "a", TERM).await.unwrap());
    // The listener may not be listening yet: commit until it hears one.
    let mut heard = None;
    for n in 1..=5 {
        assert_eq!(ca.checkpoint(&la, Some(step(n, &[])), &[], TERM).await.unwrap(), Fence::Committed);
        if let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(500), committed.next()).await {
            heard = c.map(|(conv, last)| (conv, last, n));
            break;
        }
    }
    let (conv, last, n) = heard.expect("a checkpoint was announced");
    assert_eq!(conv, "c1");
    assert_eq!(last, n, "the last event committed");
}
