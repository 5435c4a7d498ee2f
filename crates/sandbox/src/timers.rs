//! The world's timer queue: per-leg timer slots (a newer timer in a slot
//! replaces the older one) and transcripts due at a given moment. Timers due at
//! the same moment fire in the order they were set.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::world::{Tick, VTime};

/// Timer slots a leg has; a newer timer in a slot replaces the older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Ring = 0,
    Media = 1,
    Gather = 2,
    GatherOverall = 3,
    Playback = 4,
    Party = 5,
    /// The `max_wait_time_secs` of the queue the leg waits in.
    Queue = 6,
}

/// A leg's slot generations: setting or cancelling a slot's timer moves its
/// generation on, so an older timer in the slot no longer fires.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SlotGens([u32; 7]);

impl SlotGens {
    /// Invalidates the slot's pending timer; the new generation.
    fn bump(&mut self, slot: Slot) -> u32 {
        let g = &mut self.0[slot as usize];
        *g = g.wrapping_add(1);
        *g
    }

    /// Cancels the slot's pending timer, if any.
    pub fn cancel(&mut self, slot: Slot) {
        self.bump(slot);
    }
}

/// What a timer that fired is for.
#[derive(Debug)]
pub(crate) enum Due {
    /// The leg's slot timer (still current).
    Slot(Slot),
    /// A transcript to send.
    Transcript(Box<Tick>),
}

#[derive(Debug)]
enum TimerKind {
    Slot(Slot),
    Transcript(Box<Tick>),
}

/// One pending timer.
#[derive(Debug)]
pub(crate) struct Timer {
    pub at: VTime,
    seq: u64,
    pub leg: u64,
    gen: u32,
    kind: TimerKind,
}

impl Timer {
    /// What the timer is for, or `None` when a newer timer replaced it (or it was cancelled).
    pub fn due(self, gens: &SlotGens) -> Option<Due> {
        match self.kind {
            TimerKind::Transcript(tick) => Some(Due::Transcript(tick)),
            TimerKind::Slot(slot) if gens.0[slot as usize] == self.gen => Some(Due::Slot(slot)),
            TimerKind::Slot(_) => None,
        }
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Every pending timer, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    queue: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Timers {
    /// Sets the leg's `slot` timer to `at`, replacing the one pending there.
    pub fn set(&mut self, leg: u64, gens: &mut SlotGens, slot: Slot, at: VTime) {
        let gen = gens.bump(slot);
        self.push(Timer { at, seq: 0, leg, gen, kind: TimerKind::Slot(slot) });
    }

    /// Sends `tick` at `at`.
    pub fn push_tick(&mut self, leg: u64, at: VTime, tick: Tick) {
        self.push(Timer { at, seq: 0, leg, gen: 0, kind: TimerKind::Transcript(Box::new(tick)) });
    }

    fn push(&mut self, mut t: Timer) {
        self.seq += 1;
        t.seq = self.seq;
        self.queue.push(Reverse(t));
    }

    /// The earliest timer due at or before `now`, taken off the queue.
    pub fn pop_due(&mut self, now: VTime) -> Option<Timer> {
        if self.queue.peek().is_some_and(|Reverse(t)| t.at <= now) {
            self.queue.pop().map(|Reverse(t)| t)
        } else {
            None
        }
    }

    /// When the next timer is due.
    pub fn next_deadline(&self) -> Option<VTime> {
        self.queue.peek().map(|Reverse(t)| t.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_newer_timer_in_a_slot_replaces_the_older_one_and_ties_keep_their_order() {
        let mut timers = Timers::default();
        let mut gens = SlotGens::default();
        let s = Duration::from_secs;
        timers.set(1, &mut gens, Slot::Party, s(5));
        timers.set(1, &mut gens, Slot::Party, s(3));
        timers.set(1, &mut gens, Slot::Ring, s(3));
        assert_eq!(timers.next_deadline(), Some(s(3)));
        assert!(timers.pop_due(s(2)).is_none());
        let due: Vec<_> = std::iter::from_fn(|| timers.pop_due(s(10))).map(|t| t.due(&gens)).collect();
        assert!(matches!(due[..], [Some(Due::Slot(Slot::Party)), Some(Due::Slot(Slot::Ring)), None]), "{due:?}");
        timers.set(2, &mut gens, Slot::Media, s(1));
        gens.cancel(Slot::Media);
        assert!(timers.pop_due(s(10)).and_then(|t| t.due(&gens)).is_none());
    }
}
