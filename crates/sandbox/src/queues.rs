//! Telnyx call queues, as the Call Control API documents them: `enqueue` puts
//! a call at the end of a named queue (created on first use, with the
//! `max_size` of that first command; default 100), `call.enqueued` tells its
//! position; it leaves with `call.dequeued` when `leave_queue` takes it out
//! (`leave`), when it has waited `max_wait_time_secs` (`timeout`), when it
//! hangs up (`hangup`), or when another call is bridged with the queue's head
//! (`bridge` with `queue`: `bridged`). Calls are served first in, first out.
//!
//! Plain data: the world (`world/queue.rs`) sends the webhooks and keeps the
//! timers.

use std::collections::{HashMap, VecDeque};

use super::world::VTime;

/// `max_size` when the first `enqueue` gives none (Telnyx's default).
pub(crate) const DEFAULT_MAX_SIZE: usize = 100;

/// One queue: its calls in order, and how many it may hold.
#[derive(Debug, Default)]
struct Queue {
    max_size: usize,
    calls: VecDeque<Waiting>,
    /// Waits of the calls that left, summed, and how many: the average wait.
    waited: VTime,
    left: u32,
}

/// A call in a queue.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    leg: u64,
    since: VTime,
}

/// Why `enqueue` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnqueueError {
    #[error("the call is already in queue {0:?}")]
    AlreadyQueued(String),
    #[error("queue {0:?} is full")]
    Full(String),
}

/// A call that left a queue: the fields of its `call.dequeued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Left {
    pub leg: u64,
    pub queue: String,
    /// Its position when it left (1: the head).
    pub position: u32,
    pub waited: VTime,
}

/// Every queue of the sandbox.
#[derive(Debug, Default)]
pub(crate) struct Queues {
    queues: HashMap<String, Queue>,
}

impl Queues {
    /// Puts `leg` at the end of `name`; its position and the queue's average wait.
    pub fn enqueue(
        &mut self,
        name: &str,
        leg: u64,
        max_size: Option<usize>,
        at: VTime,
    ) -> Result<(u32, VTime), EnqueueError> {
        if let Some(q) = self.queue_of(leg) {
            return Err(EnqueueError::AlreadyQueued(q.to_string()));
        }
        let q = self
            .queues
            .entry(name.to_string())
            .or_insert_with(|| Queue { max_size: max_size.unwrap_or(DEFAULT_MAX_SIZE), ..Queue::default() });
        if q.calls.len() >= q.max_size {
            return Err(EnqueueError::Full(name.to_string()));
        }
        q.calls.push_back(Waiting { leg, since: at });
        let avg = if q.left == 0 { VTime::ZERO } else { q.waited / q.left };
        Ok((q.calls.len() as u32, avg))
    }

    /// The queue `leg` waits in.
    pub fn queue_of(&self, leg: u64) -> Option<&str> {
        self.queues.iter().find(|(_, q)| q.calls.iter().any(|w| w.leg == leg)).map(|(n, _)| n.as_str())
    }

    /// Takes `leg` out of its queue, if it is in one.
    pub fn remove(&mut self, leg: u64, at: VTime) -> Option<Left> {
        let (name, q) = self.queues.iter_mut().find(|(_, q)| q.calls.iter().any(|w| w.leg == leg))?;
        let i = q.calls.iter().position(|w| w.leg == leg)?;
        let w = q.calls.remove(i)?;
        Some(Self::left(name, q, w, i, at))
    }

    /// The call at the head of `name`.
    pub fn head(&self, name: &str) -> Option<u64> {
        self.queues.get(name)?.calls.front().map(|w| w.leg)
    }

    /// Takes the call at the head of `name`, if any.
    pub fn pop_head(&mut self, name: &str, at: VTime) -> Option<Left> {
        let q = self.queues.get_mut(name)?;
        let w = q.calls.pop_front()?;
        Some(Self::left(name, q, w, 0, at))
    }

    fn left(name: &str, q: &mut Queue, w: Waiting, index: usize, at: VTime) -> Left {
        let waited = at.saturating_sub(w.since);
        q.waited = q.waited.saturating_add(waited);
        q.left = q.left.saturating_add(1);
        Left { leg: w.leg, queue: name.to_string(), position: index as u32 + 1, waited }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn calls_are_served_first_in_first_out_and_positions_count_from_one() {
        let mut q = Queues::default();
        assert_eq!(q.enqueue("support", 1, Some(2), S), Ok((1, VTime::ZERO)));
        assert_eq!(q.enqueue("support", 2, None, 2 * S), Ok((2, VTime::ZERO)));
        assert_eq!(q.enqueue("support", 3, None, 2 * S), Err(EnqueueError::Full("support".into())));
        assert_eq!(q.enqueue("support", 1, None, 2 * S), Err(EnqueueError::AlreadyQueued("support".into())));
        let head = q.pop_head("support", 5 * S).unwrap();
        assert_eq!((head.leg, head.position, head.waited), (1, 1, 4 * S));
        assert_eq!(q.queue_of(2), Some("support"));
        assert_eq!(q.enqueue("support", 3, None, 6 * S), Ok((2, 4 * S)), "the average wait of those who left");
        let gone = q.remove(3, 7 * S).unwrap();
        assert_eq!((gone.position, gone.waited), (2, S));
        assert!(q.remove(3, 7 * S).is_none());
        assert!(q.pop_head("sales", 7 * S).is_none());
    }
}
