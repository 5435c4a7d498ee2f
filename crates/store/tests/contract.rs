//! The storage port's contract, one suite run against every backend: what is
//! written through the port reads back the same way, whatever holds it.

mod backends;
mod common;

use backends::{Fixture, Kind};
use chrono::{TimeZone, Utc};
use common::{call, rec, rec_in, transcription, write_events};
use futures_util::StreamExt;
use ivrx_core::policy::Reason;
use ivrx_core::session::{DecisionSource, DomainEvent, Speaker, TransferStatus};
use ivrx_intel::TrackerHit;
use ivrx_store::{ConversationStatus, Filters, Receipt, SessionState, StoreError, StoreOptions, Transition};

/// Runs each named test against each backend.
macro_rules! contract {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if super::Kind::Postgres.available() {
                        super::$test(super::Kind::Postgres).await
                    }
                }
            )*
        }
    };
}

contract!(
    a_call_becomes_a_report,
    pii_is_redacted_before_storage,
    replaying_events_changes_nothing,
    events_replay_in_order_after_a_point,
    stored_webhooks_keep_call_metadata_and_lose_spoken_pii,
    no_stored_text_keeps_pii_when_redaction_is_on,
    with_redaction_off_text_is_stored_as_said,
    a_webhook_is_stored_once_and_says_so,
    a_transition_commits_events_session_and_processed_webhooks_together,
    analytics_stream_the_matching_calls_oldest_first,
    audits_count_decisions_and_connected_agents,
    insights_are_kept_per_engine_and_replaced,
    a_read_only_store_refuses_writes,
    the_legs_whose_end_is_not_recorded_are_listed,
);

async fn fresh(kind: Kind) -> Fixture {
    Fixture::new(kind, StoreOptions::default()).await
}

async fn store_with(kind: Kind, events: &[ivrx_core::session::Recorded]) -> Fixture {
    let f = fresh(kind).await;
    write_events(&*f.store, events);
    f.store.flush().await.unwrap();
    f
}

async fn a_call_becomes_a_report(kind: Kind) {
    let f = store_with(kind, &call()).await;
    let r = f.store.report("c1").await.unwrap().unwrap();
    assert!(r.transferred);
    assert_eq!(r.queue.as_deref(), Some("support"));
    assert_eq!(r.reason, Some(Reason::AskedForHuman));
    assert_eq!(r.trigger_index, Some(2));
    assert_eq!(r.transfer_status, Some(TransferStatus::Connected));
    assert_eq!(r.decision_ms, Some(9001));
    assert_eq!(r.connected_ms, Some(15000));
    assert_eq!(r.duration_ms, Some(60000));
    let idx: Vec<_> = r.utterances.iter().map(|u| (u.speaker.as_str(), u.index)).collect();
    assert_eq!(idx, vec![("caller", 1), ("caller", 2), ("agent", 1)]);
    assert_eq!(r.utterances[1].trackers, vec!["asks_for_human".to_string()]);
    assert_eq!(r.utterances[0].score, Some(-0.4));
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].answered_ms, Some(12000));
    // The report's JSON is the wire format `ivrx dial --json` prints.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["reason"], "asked_for_human");
    assert_eq!(json["transfer_status"], "connected");
    assert_eq!(json["utterances"][2]["speaker"], "agent");
    assert_eq!(json["transfers"][0]["mode"], "warm");
    assert_eq!(json["transfers"][0]["status"], "connected");
    // The conversation row in domain types.
    let c = f.store.conversation("c1").await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::Ended);
    assert_eq!(c.started_at, Some(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()));
    assert_eq!(c.ended_at, Some(Utc.with_ymd_and_hms(2026, 3, 1, 9, 1, 0).unwrap()));
    assert_eq!((c.caller.as_deref(), c.callee.as_deref()), (Some("+1555"), Some("+1800")));
    assert_eq!(c.caller_call_control_id.as_deref(), Some("v3:a"));
    assert_eq!(c.end_reason.as_deref(), Some("completed_with_agent"));
    let d = c.decision.unwrap();
    assert_eq!(
        (d.reason, d.source, d.queue.as_deref()),
        (Reason::AskedForHuman, Some(DecisionSource::Policy), Some("support"))
    );
    assert_eq!(
        c.utterances.iter().map(|u| u.speaker).collect::<Vec<_>>(),
        [Speaker::Caller, Speaker::Caller, Speaker::Agent]
    );
    assert_eq!(c.utterances[1].trackers[0].tracker, "asks_for_human");
    assert_eq!(c.utterances[0].label, Some(ivrx_intel::Label::Negative));
    assert!(f.store.report("nope").await.unwrap().is_none());
}

async fn pii_is_redacted_before_storage(kind: Kind) {
    let f = store_with(kind, &call()).await;
    let r = f.store.report("c1").await.unwrap().unwrap();
    assert_eq!(r.utterances[1].text, "get me a real person my card is [card]");
    let c = f.store.conversation("c1").await.unwrap().unwrap();
    assert!(!c.decision.unwrap().trigger_text.unwrap().contains("4111"));
    let events = f.store.events("c1", 0).await.unwrap();
    let body = serde_json::to_string(&events).unwrap();
    assert!(!body.contains("4111 1111"), "the event log is redacted too");
}

async fn replaying_events_changes_nothing(kind: Kind) {
    let mut twice = call();
    twice.extend(call());
    twice.reverse();
    let once = store_with(kind, &call()).await;
    let again = store_with(kind, &call()).await;
    write_events(&*again.store, &twice);
    again.store.flush().await.unwrap();
    assert_eq!(once.store.report("c1").await.unwrap(), again.store.report("c1").await.unwrap());
    assert_eq!(again.store.events("c1", 0).await.unwrap().len(), 12);
}

async fn events_replay_in_order_after_a_point(kind: Kind) {
    let f = store_with(kind, &call()).await;
    let ev = f.store.events("c1", 9).await.unwrap();
    assert_eq!(ev.iter().map(|e| e.n).collect::<Vec<_>>(), vec![10, 11, 12]);
    assert_eq!(ev[0].at, Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 15).unwrap());
    assert_eq!(ev[0].offset_ms, 15000);
    assert_eq!(ev, call()[9..].to_vec(), "events read back as they were recorded");
    assert_eq!(f.store.conversation_for_call("v3:a").await.unwrap().as_deref(), Some("c1"));
    assert_eq!(f.store.latest_conversation(false).await.unwrap().as_deref(), Some("c1"));
    assert_eq!(f.store.latest_conversation(true).await.unwrap(), None);
    assert!(f.store.report("nope").await.unwrap().is_none());
}

async fn stored_webhooks_keep_call_metadata_and_lose_spoken_pii(kind: Kind) {
    let f = fresh(kind).await;
    f.store.record_webhook(transcription("w1", "my card is 4111 1111 1111 1111")).await.unwrap();
    let stored = f.store.unprocessed_webhooks("c1").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&stored[0].body).unwrap();
    assert_eq!(v["data"]["payload"]["from"], "+15551234567", "metadata is kept");
    assert_eq!(v["data"]["payload"]["transcription_data"]["transcript"], "my card is [card]");
}

/// Writes PII into every place text is stored.
async fn store_everything(kind: Kind, redact_pii: bool) -> Fixture {
    let f = Fixture::new(kind, StoreOptions { redact_pii, ..StoreOptions::default() }).await;
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
    write_events(&*f.store, &events);
    drop(f.store.record_webhook(transcription("w1", pii)));
    drop(f.store.commit(Transition {
        conversation_id: "c1".into(),
        events: vec![],
        session: Some(SessionState { state: serde_json::json!({"text": pii, "id": "v3:a"}).to_string(), ended: false }),
        processed: vec![],
    }));
    drop(f.store.record_insights("c1", "symbl", serde_json::json!({"topics": [{"text": pii}]})));
    f.store.flush().await.unwrap();
    f
}

async fn no_stored_text_keeps_pii_when_redaction_is_on(kind: Kind) {
    let f = store_everything(kind, true).await;
    let all = f.everything_stored().await;
    // Its groups, not one of them alone: a stored time's nanoseconds may hold "4111".
    assert!(!all.contains("4111 1111") && !all.contains("1111 1111"), "a card number was stored:\n{all}");
    assert!(!all.contains("jane at example"), "an e-mail address was stored:\n{all}");
    assert!(all.contains("[card]") && all.contains("[email]"));
}

async fn with_redaction_off_text_is_stored_as_said(kind: Kind) {
    let f = store_everything(kind, false).await;
    let all = f.everything_stored().await;
    assert!(all.contains("4111 1111 1111 1111") && all.contains("jane at example dot com"));
    assert!(!all.contains("[card]"));
}

async fn a_webhook_is_stored_once_and_says_so(kind: Kind) {
    let f = fresh(kind).await;
    assert_eq!(f.store.record_webhook(transcription("w1", "hello")).await.unwrap(), Receipt::New);
    assert_eq!(f.store.record_webhook(transcription("w1", "hello again")).await.unwrap(), Receipt::Repeat);
    assert_eq!(f.store.record_webhook(transcription("w2", "hi")).await.unwrap(), Receipt::New);
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(f.store.missing_webhooks(&ids(&["w1", "w3", "w2", "w4"])).await.unwrap(), ids(&["w3", "w4"]));
    let since = Utc::now() - chrono::Duration::minutes(1);
    let mut recent = f.store.recent_event_ids(since).await.unwrap();
    recent.sort();
    assert_eq!(recent, ids(&["w1", "w2"]));
    assert!(f.store.recent_event_ids(Utc::now() + chrono::Duration::minutes(1)).await.unwrap().is_empty());
    // The first body is the one kept.
    let pending = f.store.unprocessed_webhooks("c1").await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending[0].body.contains("\"hello\""));
}

async fn a_transition_commits_events_session_and_processed_webhooks_together(kind: Kind) {
    let f = fresh(kind).await;
    for id in ["w1", "w2", "w3"] {
        drop(f.store.record_webhook(transcription(id, "hello")));
    }
    let events = call();
    f.store
        .commit(Transition {
            conversation_id: "c1".into(),
            events: events[..4].to_vec(),
            session: Some(SessionState { state: "{\"phase\":\"ivr\"}".into(), ended: false }),
            processed: vec!["w1".into(), "w2".into()],
        })
        .await
        .unwrap();
    assert_eq!(f.store.active_sessions().await.unwrap(), vec!["c1".to_string()]);
    assert_eq!(f.store.session("c1").await.unwrap().as_deref(), Some("{\"phase\":\"ivr\"}"));
    let pending = f.store.unprocessed_webhooks("c1").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].body.contains("\"w3\""));
    assert_eq!(f.store.events("c1", 0).await.unwrap().len(), 4);
    f.store
        .commit(Transition {
            conversation_id: "c1".into(),
            events: events[4..].to_vec(),
            session: Some(SessionState { state: "{\"phase\":\"ended\"}".into(), ended: true }),
            processed: vec!["w3".into()],
        })
        .await
        .unwrap();
    assert!(f.store.active_sessions().await.unwrap().is_empty());
    assert_eq!(f.store.session("c1").await.unwrap().as_deref(), Some("{\"phase\":\"ended\"}"));
    assert!(f.store.unprocessed_webhooks("c1").await.unwrap().is_empty());
    assert_eq!(f.store.session("nope").await.unwrap(), None);
}

/// A short call of its own: started at `minute` past nine, with one caller
/// utterance, optionally decided for `queue` and connected.
fn short_call(id: &str, minute: u64, queue: Option<&str>, connected: bool) -> Vec<ivrx_core::session::Recorded> {
    let mut all = call();
    all.retain(|r| match &r.event {
        DomainEvent::Decision { .. } => queue.is_some(),
        DomainEvent::Transfer { status, .. } => queue.is_some() && (connected || *status != TransferStatus::Connected),
        _ => true,
    });
    for r in &mut all {
        *r = rec_in(id, r.n, r.offset_ms, r.event.clone());
        r.at += chrono::Duration::minutes(minute as i64);
        if let DomainEvent::Decision { decision, .. } = &mut r.event {
            decision.queue = queue.unwrap_or_default().into();
        }
        if let DomainEvent::CallStarted { call_control_id, .. } | DomainEvent::LegJoined { call_control_id, .. } =
            &mut r.event
        {
            *call_control_id = format!("v3:{id}");
        }
    }
    all
}

async fn analytics_stream_the_matching_calls_oldest_first(kind: Kind) {
    let f = fresh(kind).await;
    // Written out of order; read oldest first.
    write_events(&*f.store, &short_call("late", 30, Some("sales"), false));
    write_events(&*f.store, &short_call("early", 0, Some("support"), true));
    write_events(&*f.store, &short_call("middle", 10, None, false));
    f.store.flush().await.unwrap();
    let read = |filters: Filters| {
        let store = f.store.clone();
        async move {
            let calls: Vec<_> = store.calls(filters).collect().await;
            calls.into_iter().map(|c| c.unwrap()).collect::<Vec<_>>()
        }
    };
    let all = read(Filters::default()).await;
    assert_eq!(all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["early", "middle", "late"]);
    assert_eq!(all[0].utterances.len(), 3, "each call comes with its utterances");
    assert_eq!(all[0].caller_utterances().count(), 2);
    assert!(all[0].transferred && !all[2].transferred);
    assert_eq!(all[1].decision, None);
    assert_eq!(f.store.count(&Filters::default()).await.unwrap(), 3);
    let t = |m: u32| Some(Utc.with_ymd_and_hms(2026, 3, 1, 9, m, 0).unwrap());
    let cases = [
        (Filters { since: t(10), ..Filters::default() }, vec!["middle", "late"]),
        (Filters { until: t(10), ..Filters::default() }, vec!["early"]),
        (Filters { queue: Some("sales".into()), ..Filters::default() }, vec!["late"]),
        (Filters { transferred: Some(true), ..Filters::default() }, vec!["early"]),
        (Filters { transferred: Some(false), since: t(5), ..Filters::default() }, vec!["middle", "late"]),
    ];
    for (filters, want) in cases {
        let got = read(filters.clone()).await;
        assert_eq!(got.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), want, "{filters:?}");
        assert_eq!(f.store.count(&filters).await.unwrap(), want.len() as u64, "{filters:?}");
    }
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(f.store.existing(&ids(&["x", "late", "early"])).await.unwrap(), ids(&["late", "early"]));
    // A consumer may stop early.
    let first = f.store.calls(Filters::default()).next().await.unwrap().unwrap();
    assert_eq!(first.id, "early");
}

async fn audits_count_decisions_and_connected_agents(kind: Kind) {
    let f = fresh(kind).await;
    let mut events = call();
    events.push(rec(
        13,
        15000,
        DomainEvent::LegJoined {
            role: ivrx_core::session::Role::Agent,
            call_control_id: "v3:agent".into(),
            call_leg_id: None,
            call_session_id: None,
            from: None,
            to: None,
        },
    ));
    events.push(rec(
        14,
        15001,
        DomainEvent::LegAnswered { role: ivrx_core::session::Role::Agent, call_control_id: "v3:agent".into() },
    ));
    write_events(&*f.store, &events);
    f.store.flush().await.unwrap();
    let audits = f.store.audit_calls(&["v3:a".to_string(), "v3:unknown".to_string()]).await.unwrap();
    let a = &audits[0];
    assert_eq!(a.conversation_id.as_deref(), Some("c1"));
    assert!(a.ended);
    assert_eq!((a.decisions, a.queue.as_deref(), a.trigger_index), (1, Some("support"), Some(2)));
    assert_eq!((a.connected_transfers, a.agent_legs_answered, a.agent_legs_not_ended), (1, 1, 1));
    assert!(!a.double_transfer());
    assert_eq!(audits[1].call_control_id, "v3:unknown");
    assert_eq!(audits[1].conversation_id, None);
}

async fn insights_are_kept_per_engine_and_replaced(kind: Kind) {
    let f = store_with(kind, &call()).await;
    drop(f.store.record_insights("c1", "symbl", serde_json::json!({"topics": ["billing"]})));
    drop(f.store.record_insights("c1", "other", serde_json::json!([1, 2])));
    f.store.record_insights("c1", "symbl", serde_json::json!({"topics": ["refund"]})).await.unwrap();
    let r = f.store.report("c1").await.unwrap().unwrap();
    assert_eq!(r.insights.len(), 2);
    assert_eq!(r.insights["symbl"], serde_json::json!({"topics": ["refund"]}));
    assert_eq!(r.insights["other"], serde_json::json!([1, 2]));
}

async fn a_read_only_store_refuses_writes(kind: Kind) {
    let f = store_with(kind, &call()).await;
    let ro = f.read_only().await;
    assert!(ro.report("c1").await.unwrap().is_some());
    let refused = ro.commit(Transition::events("c1", vec![])).await.unwrap_err();
    assert!(matches!(refused, StoreError::ReadOnly { .. }), "{refused}");
    assert!(!ro.health().is_failing());
}

async fn the_legs_whose_end_is_not_recorded_are_listed(kind: Kind) {
    use ivrx_core::session::Role;
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
    let f = store_with(kind, &events).await;
    let mut open: Vec<(String, String, Role)> = f
        .store
        .open_legs()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.call_control_id, l.conversation_id, l.role))
        .collect();
    open.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        open,
        vec![("v3:agent-2".into(), "c1".into(), Role::Agent), ("v3:caller".into(), "c1".into(), Role::Caller)]
    );
}
