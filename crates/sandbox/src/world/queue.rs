//! How the world runs Telnyx call queues ([`Queues`](crate::queues::Queues)):
//! `enqueue`, `leave_queue`, `bridge` with `queue`, the `max_wait_time_secs`
//! timer and a queued call hanging up, each with its `call.enqueued` or
//! `call.dequeued`.

use std::time::Duration;

use ivrx_telnyx::commands::Enqueue;
use ivrx_telnyx::events::EventType;
use serde_json::json;

use super::{CommandError, Slot, VTime, World};
use crate::queues::Left;

impl World {
    /// `enqueue`: the call goes to the end of the queue (a bridged call is
    /// unbridged first); `call.enqueued` tells its position.
    pub(crate) fn enqueue(&mut self, id: u64, at: VTime, b: &Enqueue) -> Result<(), CommandError> {
        let name = b.queue_name.clone().unwrap_or_default();
        let max_size = b.max_size.map(|n| n as usize);
        let (position, avg) =
            self.queues.enqueue(&name, id, max_size, at).map_err(|e| CommandError::Unprocessable(e.to_string()))?;
        self.unlink(id);
        if let Some(secs) = b.max_wait_time_secs {
            self.set_timer(id, Slot::Queue, at.saturating_add(Duration::from_secs(u64::from(secs))));
        }
        let fields = json!({
            "queue": name,
            "current_position": position,
            "queue_avg_wait_time_secs": avg.as_secs(),
        });
        self.emit(id, at, EventType::CallEnqueued, false, fields);
        Ok(())
    }

    /// `leave_queue`: `call.dequeued` with reason `leave`.
    pub(crate) fn leave_queue(&mut self, id: u64, at: VTime) -> Result<(), CommandError> {
        let left = self
            .queues
            .remove(id, at)
            .ok_or_else(|| CommandError::Unprocessable("the call is not in a queue".into()))?;
        self.dequeued(left, "leave", at);
        Ok(())
    }

    /// The queue's head, for a `bridge` with `queue` from `id` (refused when
    /// the queue is empty).
    pub(crate) fn queue_head(&self, id: u64, queue: &str) -> Result<(), CommandError> {
        match self.queues.head(queue) {
            Some(head) if head != id => Ok(()),
            _ => Err(CommandError::Unprocessable(format!("queue {queue:?} is empty"))),
        }
    }

    /// Takes the head of `queue` out of it for a bridge (`call.dequeued`
    /// with reason `bridged`): the leg to bridge with.
    pub(crate) fn take_queue_head(&mut self, queue: &str, at: VTime) -> Option<u64> {
        let left = self.queues.pop_head(queue, at)?;
        let leg = left.leg;
        self.dequeued(left, "bridged", at);
        Some(leg)
    }

    /// The leg waited `max_wait_time_secs`: out of the queue (`timeout`).
    pub(crate) fn queue_wait_due(&mut self, id: u64, at: VTime) {
        if let Some(left) = self.queues.remove(id, at) {
            self.dequeued(left, "timeout", at);
        }
    }

    /// A queued leg hangs up: out of the queue (`hangup`).
    pub(crate) fn leave_queue_on_hangup(&mut self, id: u64, at: VTime) {
        if let Some(left) = self.queues.remove(id, at) {
            self.dequeued(left, "hangup", at);
        }
    }

    fn dequeued(&mut self, left: Left, reason: &str, at: VTime) {
        self.cancel_timer(left.leg, Slot::Queue);
        let fields = json!({
            "queue": left.queue,
            "queue_position": left.position,
            "reason": reason,
            "wait_time_secs": left.waited.as_secs(),
        });
        self.emit(left.leg, at, EventType::CallDequeued, false, fields);
    }
}
