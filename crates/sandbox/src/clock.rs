//! The sandbox clock: virtual time that runs `time_scale` times faster than
//! real time.
//!
//! Virtual time is `start + (real_elapsed − held) × time_scale`. Everything the
//! sandbox simulates (speech, ringing, gather timeouts, pauses) is measured on
//! this clock, and the `occurred_at` / `start_time` fields of webhooks carry
//! virtual time, so an application computes realistic offsets even at ×50.
//! Webhook signature timestamps are *real* Unix time: the 300 s tolerance is real.
//!
//! The time scale is the clock's top speed. While a webhook waits too long for
//! the application's answer (see [`DeliveryConfig::hold_after`](super::DeliveryConfig)),
//! delivery *holds* the clock: a busy machine slows the simulation down instead
//! of letting the calls run on ahead of an application that has not yet heard
//! what happened in them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use chrono::{DateTime, SecondsFormat, Utc};

/// A cheaply cloneable handle on the sandbox's virtual clock.
#[derive(Debug, Clone)]
pub struct SandboxClock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    real_start: Instant,
    virtual_start: DateTime<Utc>,
    scale: f64,
    hold: Mutex<Hold>,
    resumed: Notify,
}

/// Real time the clock stood still.
#[derive(Debug, Default, Clone, Copy)]
struct Hold {
    /// Every finished hold, summed.
    total: Duration,
    /// The hold in progress.
    since: Option<Instant>,
}

impl Hold {
    fn at(&self, now: Instant) -> Duration {
        self.total + self.since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// Multiplies a duration by a positive factor without panicking.
pub(crate) fn scale_duration(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

impl SandboxClock {
    /// A clock starting now. A `time_scale` that is not a positive finite number
    /// is treated as 1 (the configuration is validated before this point).
    pub fn new(time_scale: f64) -> Self {
        let scale = if time_scale.is_finite() && time_scale > 0.0 { time_scale } else { 1.0 };
        let inner = Inner {
            real_start: Instant::now(),
            virtual_start: Utc::now(),
            scale,
            hold: Mutex::default(),
            resumed: Notify::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    fn hold_state(&self) -> Hold {
        *self.inner.hold.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops virtual time until [`release`](Self::release) (no-op when held).
    pub(crate) fn hold(&self) {
        let mut h = self.inner.hold.lock().unwrap_or_else(|p| p.into_inner());
        h.since.get_or_insert_with(Instant::now);
    }

    /// Lets virtual time run again (no-op when not held).
    pub(crate) fn release(&self) {
        let mut h = self.inner.hold.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(since) = h.since.take() {
            h.total += since.elapsed();
            drop(h);
            self.inner.resumed.notify_waiters();
        }
    }

    /// True while the clock is held.
    pub fn is_held(&self) -> bool {
        self.hold_state().since.is_some()
    }

    /// Real time the clock has stood still since it started.
    pub fn held(&self) -> Duration {
        self.hold_state().at(Instant::now())
    }

    /// Completes when a hold ends (create it before checking [`is_held`](Self::is_held)).
    pub(crate) fn resumed(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.resumed.notified()
    }

    /// How many virtual seconds pass per real second.
    pub fn time_scale(&self) -> f64 {
        self.inner.scale
    }

    /// Virtual time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        let now = Instant::now();
        let running = now.saturating_duration_since(self.inner.real_start).saturating_sub(self.hold_state().at(now));
        scale_duration(running, self.inner.scale)
    }

    /// The current virtual wall-clock time.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(self.elapsed())
    }

    /// The virtual wall-clock time at `elapsed` virtual time after the start.
    pub fn at(&self, elapsed: Duration) -> DateTime<Utc> {
        let d = chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX);
        self.inner.virtual_start.checked_add_signed(d).unwrap_or(self.inner.virtual_start)
    }

    /// The virtual wall-clock time the clock started at.
    pub fn epoch(&self) -> DateTime<Utc> {
        self.inner.virtual_start
    }

    /// The real duration a virtual duration takes.
    pub fn to_real(&self, virtual_duration: Duration) -> Duration {
        scale_duration(virtual_duration, 1.0 / self.inner.scale)
    }

    /// The real instant at which `elapsed` virtual time will have passed if
    /// the clock is not held again (far in the future while it is held).
    pub fn real_deadline(&self, elapsed: Duration) -> tokio::time::Instant {
        // Far-future deadlines saturate at about 30 years rather than overflow.
        const FAR: Duration = Duration::from_secs(1 << 30);
        let hold = self.hold_state();
        if hold.since.is_some() {
            return tokio::time::Instant::from_std(Instant::now() + FAR);
        }
        let real = self.to_real(elapsed).saturating_add(hold.total).min(FAR);
        tokio::time::Instant::from_std(self.inner.real_start + real)
    }

    /// Sleeps for a virtual duration (real `d / time_scale`, plus any hold).
    pub async fn sleep(&self, d: Duration) {
        self.sleep_until(self.elapsed().saturating_add(d)).await;
    }

    /// Sleeps until `elapsed` virtual time has passed since the start.
    pub async fn sleep_until(&self, elapsed: Duration) {
        while self.elapsed() < elapsed {
            let resumed = self.resumed();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            tokio::select! {
                _ = tokio::time::sleep_until(self.real_deadline(elapsed)) => {}
                _ = resumed => {}
            }
        }
    }
}

/// RFC 3339 with microseconds and `Z`, as Telnyx writes times.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_time_runs_scaled() {
        let c = SandboxClock::new(50.0);
        assert_eq!(c.time_scale(), 50.0);
        assert_eq!(c.to_real(Duration::from_secs(5)), Duration::from_millis(100));
        let t0 = c.at(Duration::ZERO);
        assert_eq!(c.at(Duration::from_secs(90)) - t0, chrono::Duration::seconds(90));
        assert!(c.real_deadline(Duration::from_secs(50)) <= tokio::time::Instant::now() + Duration::from_secs(1));
    }

    #[test]
    fn bad_scales_fall_back_to_real_time() {
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(SandboxClock::new(s).time_scale(), 1.0);
        }
        assert_eq!(scale_duration(Duration::from_secs(1), f64::INFINITY), Duration::MAX);
    }

    #[tokio::test]
    async fn sleep_is_scaled() {
        let c = SandboxClock::new(100.0);
        let before = c.elapsed();
        let real = Instant::now();
        c.sleep(Duration::from_secs(2)).await;
        assert!(real.elapsed() < Duration::from_millis(500));
        assert!(c.elapsed() - before >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_held_clock_stands_still_and_sleepers_wait_for_it() {
        let c = SandboxClock::new(100.0);
        c.hold();
        c.hold();
        let at = c.elapsed();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.elapsed(), at, "no virtual time passes while held");
        assert!(c.is_held());
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep(Duration::from_secs(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sleeper.is_finished(), "a held clock does not wake sleepers");
        c.release();
        c.release();
        assert!(c.held() >= Duration::from_millis(80));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken once released").unwrap();
        assert!(c.elapsed() >= at + Duration::from_secs(1));
        assert!(c.real_deadline(c.elapsed()) <= tokio::time::Instant::now() + Duration::from_millis(1));
    }

    #[test]
    fn times_are_rfc3339_with_micros() {
        let t = DateTime::parse_from_rfc3339("2020-07-10T05:08:59.668179Z").unwrap().with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2020-07-10T05:08:59.668179Z");
    }
}
