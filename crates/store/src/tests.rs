use chrono::{TimeZone, Utc};
use ivrx_core::policy::{Decision, PolicySnapshot, Reason};
use ivrx_core::session::{DecisionSource, DomainEvent, Recorded, Role, Speaker, TransferStatus};
use ivrx_core::settings::TransferMode;
use ivrx_intel::{Label, TrackerHit};

use super::*;

fn rec(n: u64, offset_ms: u64, event: DomainEvent) -> Recorded {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    Recorded {
        conversation_id: "c1".into(),
        n,
        at: t0 + chrono::Duration::milliseconds(offset_ms as i64),
        offset_ms,
        event,
    }
}

fn call() -> Vec<Recorded> {
    let decision = Decision {
        reason: Reason::AskedForHuman,
        queue: "support".into(),
        trigger_index: 2,
        trigger_text: "get me a real person my card is 4111 1111 1111 1111".into(),
        trigger_phrase: Some("real person".into()),
        tracker: Some("asks_for_human".into()),
        numbers: PolicySnapshot::default(),
    };
    let transfer = |n, off, status| {
        rec(
            n,
            off,
            DomainEvent::Transfer {
                attempt: 1,
                queue: "support".into(),
                target: "+1201".into(),
                mode: TransferMode::Warm,
                status,
                detail: None,
                agent_call_control_id: Some("v3:agent".into()),
            },
        )
    };
    vec![
        rec(
            1,
            0,
            DomainEvent::CallStarted {
                call_control_id: "v3:a".into(),
                direction: "incoming".into(),
                from: Some("+1555".into()),
                to: Some("+1800".into()),
            },
        ),
        rec(
            2,
            0,
            DomainEvent::LegJoined {
                role: Role::Caller,
                call_control_id: "v3:a".into(),
                call_leg_id: None,
                call_session_id: None,
                from: None,
                to: None,
            },
        ),
        rec(
            3,
            4000,
            DomainEvent::Utterance {
                seq: 1,
                speaker: Speaker::Caller,
                text: "my bill is wrong".into(),
                confidence: Some(0.9),
                caller_index: Some(1),
            },
        ),
        rec(
            4,
            4001,
            DomainEvent::Scored {
                seq: 1,
                speaker: Speaker::Caller,
                score: -0.4,
                label: Label::Negative,
                trackers: vec![],
                engine: "local".into(),
                policy: None,
            },
        ),
        rec(
            5,
            9000,
            DomainEvent::Utterance {
                seq: 2,
                speaker: Speaker::Caller,
                text: "get me a real person my card is 4111 1111 1111 1111".into(),
                confidence: Some(0.9),
                caller_index: Some(2),
            },
        ),
        rec(
            6,
            9001,
            DomainEvent::Scored {
                seq: 2,
                speaker: Speaker::Caller,
                score: -0.2,
                label: Label::Neutral,
                trackers: vec![TrackerHit::new("asks_for_human", "real person")],
                engine: "local".into(),
                policy: None,
            },
        ),
        rec(7, 9001, DomainEvent::Decision { source: DecisionSource::Policy, decision }),
        transfer(8, 9001, TransferStatus::Dialing),
        transfer(9, 12000, TransferStatus::Answered),
        transfer(10, 15000, TransferStatus::Connected),
        rec(
            11,
            16000,
            DomainEvent::Utterance {
                seq: 3,
                speaker: Speaker::Agent,
                text: "hi this is alex".into(),
                confidence: None,
                caller_index: None,
            },
        ),
        rec(12, 60000, DomainEvent::CallEnded { reason: "completed_with_agent".into() }),
    ]
}

async fn store_with(events: &[Recorded]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("sub/ivrx.db"), StoreOptions::default()).unwrap();
    for e in events {
        store.write(WriteOp::Event(e.clone()));
    }
    store.flush().await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_call_becomes_a_report() {
    let (_dir, store) = store_with(&call()).await;
    let r = store.reader().report("c1").unwrap().unwrap();
    assert!(r.transferred);
    assert_eq!(r.queue.as_deref(), Some("support"));
    assert_eq!(r.reason.as_deref(), Some("asked_for_human"));
    assert_eq!(r.trigger_index, Some(2));
    assert_eq!(r.transfer_status.as_deref(), Some("connected"));
    assert_eq!(r.decision_ms, Some(9001));
    assert_eq!(r.connected_ms, Some(15000));
    assert_eq!(r.duration_ms, Some(60000));
    let idx: Vec<_> = r.utterances.iter().map(|u| (u.speaker.as_str(), u.index)).collect();
    assert_eq!(idx, vec![("caller", 1), ("caller", 2), ("agent", 1)]);
    assert_eq!(r.utterances[1].trackers, vec!["asks_for_human".to_string()]);
    assert_eq!(r.utterances[0].score, Some(-0.4));
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].answered_ms, Some(12000));
}

#[tokio::test]
async fn pii_is_redacted_before_storage() {
    let (_dir, store) = store_with(&call()).await;
    let r = store.reader().report("c1").unwrap().unwrap();
    assert_eq!(r.utterances[1].text, "get me a real person my card is [card]");
    let c = store.reader().conversation("c1").unwrap().unwrap();
    assert!(!c.trigger_text.unwrap().contains("4111"));
    let events = store.reader().events("c1", 0).unwrap();
    let body = serde_json::to_string(&events).unwrap();
    assert!(!body.contains("4111 1111"), "the event log is redacted too");
}

#[tokio::test]
async fn replaying_events_changes_nothing() {
    let mut twice = call();
    twice.extend(call());
    twice.reverse();
    let (_d1, once) = store_with(&call()).await;
    let (_d2, again) = store_with(&call()).await;
    for e in twice {
        again.write(WriteOp::Event(e));
    }
    again.flush().await.unwrap();
    assert_eq!(once.reader().report("c1").unwrap(), again.reader().report("c1").unwrap());
    assert_eq!(again.reader().events("c1", 0).unwrap().len(), 12);
}

#[tokio::test]
async fn events_replay_in_order_after_a_point() {
    let (_dir, store) = store_with(&call()).await;
    let ev = store.reader().events("c1", 9).unwrap();
    assert_eq!(ev.iter().map(|e| e.n).collect::<Vec<_>>(), vec![10, 11, 12]);
    assert_eq!(store.reader().conversation_for_call("v3:a").unwrap().as_deref(), Some("c1"));
    assert_eq!(store.reader().latest_conversation(false).unwrap().as_deref(), Some("c1"));
    assert_eq!(store.reader().latest_conversation(true).unwrap(), None);
    assert!(store.reader().report("nope").unwrap().is_none());
}

#[tokio::test]
async fn a_locked_database_is_reported_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivrx.db");
    let options = StoreOptions { busy_timeout: std::time::Duration::from_millis(100), ..StoreOptions::default() };
    let store = Store::open(&path, options).unwrap();
    // Another process holds the write lock.
    let blocker = connect(&path).unwrap();
    blocker.busy_timeout(std::time::Duration::from_millis(1)).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    for e in call() {
        store.write(WriteOp::Event(e));
    }
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
    assert_eq!(store.reader().events("c1", 0).unwrap().len(), 12);
}

#[test]
fn a_database_from_a_newer_ivrx_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivrx.db");
    drop(open_and_migrate(&path).unwrap());
    let conn = connect(&path).unwrap();
    conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 'x')", []).unwrap();
    drop(conn);
    assert!(matches!(open_and_migrate(&path), Err(StoreError::TooNew { found: 99, .. })));
}

#[tokio::test]
async fn stored_webhooks_keep_call_metadata_and_lose_spoken_pii() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ivrx.db"), StoreOptions::default()).unwrap();
    let body = serde_json::json!({"data": {"event_type": "call.transcription", "id": "w1", "payload": {
        "call_control_id": "v3:a", "from": "+15551234567",
        "transcription_data": {"transcript": "my card is 4111 1111 1111 1111", "is_final": true}}}});
    let record = |id: &str, body: String| WebhookRecord {
        event_id: id.into(),
        received_at: chrono::Utc::now(),
        event_type: "call.transcription".into(),
        call_control_id: Some("v3:a".into()),
        conversation_id: Some("c1".into()),
        attempt: Some(1),
        outcome: "accepted".into(),
        body,
    };
    store.write_webhook(record("w1", body.to_string())).await.unwrap();
    let stored = store.reader().unprocessed_webhooks("c1").unwrap();
    let v: serde_json::Value = serde_json::from_str(&stored[0].1).unwrap();
    assert_eq!(v["data"]["payload"]["from"], "+15551234567", "metadata is kept");
    assert_eq!(v["data"]["payload"]["transcription_data"]["transcript"], "my card is [card]");
}

/// Every text column and JSON body of every table, as one string.
fn everything_stored(store: &Store) -> String {
    let conn = store.reader().connection().unwrap();
    let mut out = String::new();
    for table in ["conversations", "legs", "utterances", "decisions", "transfers", "events", "webhooks", "insights"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                if let Ok(s) = row.get::<_, String>(i) {
                    out.push_str(&s);
                    out.push('\n');
                }
            }
        }
    }
    out
}

async fn store_everything(redact_pii: bool) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(&dir.path().join("ivrx.db"), StoreOptions { redact_pii, ..StoreOptions::default() }).unwrap();
    let pii = "my card is 4111 1111 1111 1111 mail jane at example dot com";
    let mut events = call();
    for r in &mut events {
        match &mut r.event {
            DomainEvent::Decision { decision, .. } => decision.trigger_phrase = Some(pii.into()),
            DomainEvent::Scored { trackers, .. } => {
                trackers.push(TrackerHit { tracker: "t".into(), phrase: "card".into(), matched: pii.into() })
            }
            _ => {}
        }
    }
    events.push(rec(13, 1, DomainEvent::IvrSaid { text: format!("you said {pii}") }));
    for e in events {
        store.write(WriteOp::Event(e));
    }
    let body = serde_json::json!({"data": {"event_type": "call.transcription", "id": "w1", "payload": {
        "call_control_id": "v3:a", "transcription_data": {"transcript": pii, "is_final": true}}}});
    store.write(WriteOp::Webhook(
        WebhookRecord {
            event_id: "w1".into(),
            received_at: chrono::Utc::now(),
            event_type: "call.transcription".into(),
            call_control_id: Some("v3:a".into()),
            conversation_id: Some("c1".into()),
            attempt: Some(1),
            outcome: "accepted".into(),
            body: body.to_string(),
        },
        None,
    ));
    store.write(WriteOp::Insights {
        conversation_id: "c1".into(),
        source: "symbl".into(),
        insights: serde_json::json!({"topics": [{"text": pii}]}),
    });
    store.flush().await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn no_stored_text_keeps_pii_when_redaction_is_on() {
    let (_dir, store) = store_everything(true).await;
    let all = everything_stored(&store);
    assert!(!all.contains("4111"), "a card number was stored:\n{all}");
    assert!(!all.contains("jane at example"), "an e-mail address was stored:\n{all}");
    assert!(all.contains("[card]") && all.contains("[email]"));
}

#[tokio::test]
async fn with_redaction_off_text_is_stored_as_said() {
    let (_dir, store) = store_everything(false).await;
    let all = everything_stored(&store);
    assert!(all.contains("4111 1111 1111 1111") && all.contains("jane at example dot com"));
    assert!(!all.contains("[card]"));
}

#[tokio::test]
async fn the_legs_whose_end_is_not_recorded_are_listed() {
    let joined = |n, role, ccid: &str| {
        let e = DomainEvent::LegJoined {
            role,
            call_control_id: ccid.into(),
            call_leg_id: None,
            call_session_id: None,
            from: None,
            to: None,
        };
        rec(n, 0, e)
    };
    let ended = |n, role, ccid: &str| {
        rec(n, 5000, DomainEvent::LegEnded { role, call_control_id: ccid.into(), cause: None, source: None })
    };
    let events = [
        joined(1, Role::Caller, "v3:caller"),
        joined(2, Role::Agent, "v3:agent-1"),
        joined(3, Role::Agent, "v3:agent-2"),
        ended(4, Role::Agent, "v3:agent-1"),
    ];
    let (_dir, store) = store_with(&events).await;
    let mut open = store.reader().open_legs().unwrap();
    open.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        open,
        vec![("v3:agent-2".into(), "c1".into(), Role::Agent), ("v3:caller".into(), "c1".into(), Role::Caller)]
    );
}
