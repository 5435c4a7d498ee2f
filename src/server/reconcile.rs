//! Reconciliation: ivrx asks Telnyx (`GET /v2/calls/{call_control_id}`) about
//! every leg its record shows as not ended, caller and agent alike — when it
//! starts, since calls may have ended while it was not listening, and
//! periodically, in case a webhook never came — and hands each answer to the
//! leg's conversation ([`Input::LegChecked`]): a leg that is gone is recorded
//! as ended while ivrx was not listening, and an agent leg that no caller
//! needs any more is hung up.
//!
//! At start every leg found gone is reported at once. Afterwards a leg is
//! reported gone only when two checks in a row find it gone and its end is
//! still not recorded: its `call.hangup` may be on its way.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

use super::calls::{Calls, WorkerMsg};
use crate::session::{Input, LegCheck, Role};
use crate::store::OpenLeg;
use crate::telnyx::TelnyxError;

/// Legs asked about at once.
const AT_ONCE: usize = 8;

/// What one pass found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Legs whose end the record does not show.
    pub open: usize,
    /// Of those, legs Telnyx says are gone, reported to their conversation.
    pub gone: usize,
    /// Legs Telnyx could not be asked about this time.
    pub unanswered: usize,
}

/// Runs a pass at once (what it found goes to `reconciled`), then one every
/// `every` (none when `None`).
pub async fn run(calls: Calls, every: Option<Duration>, reconciled: watch::Sender<Option<Pass>>) {
    let mut suspects = HashSet::new();
    let first = pass(&calls, &mut suspects, true).await;
    reconciled.send_replace(Some(first));
    if first.gone > 0 {
        tracing::info!(
            open = first.open,
            gone = first.gone,
            "legs that ended while ivrx was not listening recorded as ended"
        );
    }
    let Some(every) = every else { return };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let p = pass(&calls, &mut suspects, false).await;
        if p.gone > 0 {
            tracing::warn!(open = p.open, gone = p.gone, "legs whose hangup never came recorded as ended");
        }
    }
}

/// One pass. `suspects` holds the legs the last pass found gone; `at_start`
/// reports every leg found gone at once.
pub async fn pass(calls: &Calls, suspects: &mut HashSet<String>, at_start: bool) -> Pass {
    let open = match calls.shared().store.open_legs().await {
        Ok(legs) => legs,
        Err(e) => {
            tracing::warn!(error = %e, "reconciliation: cannot read the legs not ended");
            return Pass::default();
        }
    };
    let mut result = Pass { open: open.len(), ..Pass::default() };
    let client = calls.shared().client.clone();
    let answers: Vec<_> = stream::iter(open)
        .map(|leg| {
            let client = client.clone();
            let OpenLeg { call_control_id: ccid, conversation_id: conv, role } = leg;
            async move {
                let alive = match client.retrieve(&ccid).await {
                    Ok(info) => Some(info.is_alive),
                    // Telnyx forgets a call some time after it ended.
                    Err(TelnyxError::NotFound { .. }) => Some(false),
                    Err(e) => {
                        tracing::debug!(call_control_id = %ccid, error = %e, "reconciliation: no answer for a leg");
                        None
                    }
                };
                (ccid, conv, role, alive)
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut gone_now = HashSet::new();
    for (ccid, conv, role, alive) in answers {
        let Some(alive) = alive else {
            result.unanswered += 1;
            continue;
        };
        if alive {
            // Only an agent leg up can be one nobody needs.
            if role != Role::Agent {
                continue;
            }
        } else {
            gone_now.insert(ccid.clone());
            if !at_start && !suspects.contains(&ccid) {
                continue;
            }
            result.gone += 1;
        }
        let check = LegCheck { call_control_id: ccid, role, alive, at: Utc::now() };
        calls.deliver(&conv, WorkerMsg::Input(Input::LegChecked(check)));
    }
    *suspects = gone_now;
    result
}
