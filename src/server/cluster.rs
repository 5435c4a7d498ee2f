//! `serve` as one of several instances on one PostgreSQL database: any
//! instance may receive any webhook of any call (see
//! [`calls::worker`](super::calls) and [`crate::store::cluster`]).
//!
//! A webhook is acknowledged only once it is committed (its event id is
//! unique in the database, so a repeat reaching another instance is known
//! there); a webhook that could not be stored is answered 503, so the
//! carrier (or the load balancer) sends it again. The conversation's owner
//! is then told: the worker here when this instance owns the call, else a
//! new worker here that takes the lease if it is free, and every other
//! instance through `NOTIFY` (committed with the webhook, and left out when a
//! worker here holds the lease: the others have nothing to do with it). Each instance also sweeps, every half lease
//! term, for conversations whose owner stopped renewing, and takes them over.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use futures_util::StreamExt;

use super::calls::{Calls, Route, Webhook, WorkerMsg};
use super::webhook::reply;
use super::App;
use crate::store::{Receipt, WebhookOutcome, WebhookRecord};
use crate::telnyx::events::Event;

/// The longest wait for a webhook to be committed before it is refused (503).
const STORE_WAIT: Duration = Duration::from_secs(5);
/// How long a request is kept, answered or not: its asker waits far less
/// ([`ANSWER_WAIT`](super::calls::registry::ANSWER_WAIT)); an owner that has
/// not answered by then drops it rather than act on it late.
const FORGET_REQUESTS: Duration = Duration::from_secs(60);

/// The conversation a webhook belongs to when this instance's registry does
/// not know its leg: the one the store does (another instance recorded it).
pub(super) async fn route_stored(app: &App, event: &Event) -> Option<Route> {
    let ccid = event.call_control_id()?;
    match app.store.conversation_for_call(ccid).await {
        Ok(conv) => conv.map(|c| {
            app.calls.register_leg(ccid, &c);
            Route::To(c)
        }),
        Err(e) => {
            tracing::debug!(error = %e, "cannot look the leg up in the store");
            None
        }
    }
}

/// Stores a verified, routed webhook and acknowledges it once committed;
/// then tells its conversation's owner.
pub(super) async fn accept(app: &App, mut record: WebhookRecord, route: Route, webhook: Webhook) -> Response {
    // The owner here takes it without a wake-up (see [`Calls::wake_owner`]).
    if let (Route::To(conv) | Route::New(conv), Some(o)) = (&route, &app.calls.shared().ownership) {
        record.wake_others = !o.holds(conv);
    }
    let (event_id, outcome) = (record.event_id.clone(), record.outcome);
    let event_type = webhook.event.event_type().to_string();
    // While the database is failing, the webhook is refused soon rather than late.
    let wait = if app.store.health().is_failing() { app.ack_wait } else { STORE_WAIT };
    let began = std::time::Instant::now();
    let stored = tokio::time::timeout(wait, app.store.record_webhook(record)).await;
    tracing::debug!(target: "ivrx::latency", stage = "accept", event_type = %event_type, queued_ms = began.saturating_duration_since(webhook.received).as_secs_f64() * 1e3, store_ms = began.elapsed().as_secs_f64() * 1e3);
    let receipt = match stored {
        Ok(Ok(receipt)) => receipt,
        Ok(Err(e)) => return not_stored(app, &event_id, &event_type, &e.to_string()),
        Err(_) => return not_stored(app, &event_id, &event_type, "timed out"),
    };
    let repeat = receipt == Receipt::Repeat;
    app.metrics.webhook(&event_type, if repeat { "duplicate" } else { outcome.as_str() });
    match (route, outcome) {
        (Route::DialIn, WebhookOutcome::Accepted) if !repeat => app.calls.dial_in(&webhook.event),
        (Route::To(conv) | Route::New(conv), WebhookOutcome::Accepted) => {
            // Storing it woke an owner elsewhere (NOTIFY); one here is told
            // now. A repeat was stored by an earlier attempt, perhaps refused
            // here after all (503): the worker looks in the store.
            let msg = if repeat { WorkerMsg::Pending } else { WorkerMsg::Webhook(webhook) };
            app.calls.wake_owner(&conv, msg);
        }
        _ => {}
    }
    reply(StatusCode::OK, "status", if repeat { "duplicate" } else { outcome.as_str() })
}

fn not_stored(app: &App, event_id: &str, event_type: &str, why: &str) -> Response {
    // Not acknowledged, so not a repeat when it comes again.
    app.seen.remove(event_id);
    app.metrics.webhook(event_type, "not_stored");
    tracing::warn!(event_id, error = why, "webhook not stored; answered 503 so that it is sent again");
    reply(StatusCode::SERVICE_UNAVAILABLE, "error", format!("the webhook could not be stored ({why}); send it again"))
}

/// Wakes this instance's workers when another instance stored webhooks for
/// them, tells followers here of calls handled elsewhere that events were
/// committed, and takes over the conversations whose owner stopped renewing its
/// lease (at once at start, then every half term), forgetting then the
/// answered requests nobody took.
pub(super) async fn run(calls: Calls) {
    let shared = calls.shared().clone();
    let (Some(ownership), Some(cluster)) = (shared.ownership.clone(), shared.store.cluster()) else { return };
    let mut wake_ups = cluster.wake_ups();
    let mut committed = cluster.committed();
    let mut sweep = tokio::time::interval(ownership.term / 2);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            w = wake_ups.next() => match w {
                Some(Some(conv)) => {
                    calls.poke(&conv);
                }
                Some(None) => calls.poke_all(),
                None => return,
            },
            c = committed.next() => match c {
                Some(Some((conv, n))) => shared.live.committed(Some(&conv), n),
                Some(None) => shared.live.committed(None, 0),
                None => return,
            },
            _ = sweep.tick() => {
                match cluster.orphans().await {
                    Ok(orphans) => {
                        for conv in orphans {
                            if !calls.poke(&conv) {
                                calls.deliver(&conv, WorkerMsg::Pending);
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot look for conversations without an owner"),
                }
                if let Err(e) = cluster.forget_requests(FORGET_REQUESTS).await {
                    tracing::debug!(error = %e, "cannot forget the requests nobody waits for");
                }
            }
        }
    }
}

/// Gives up this instance's conversations (it is stopping), so the others
/// take them over at once instead of after the lease term.
pub(super) async fn step_down(calls: &Calls) {
    let shared = calls.shared();
    let (Some(ownership), Some(cluster)) = (&shared.ownership, shared.store.cluster()) else { return };
    match cluster.release_all(&ownership.instance).await {
        Ok(n) if n > 0 => tracing::info!(conversations = n, "gave this instance's calls up to the others"),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot give this instance's calls up; the others take them when their leases expire")
        }
    }
}
