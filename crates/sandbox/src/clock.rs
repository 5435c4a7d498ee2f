//! The sandbox clock: virtual time that runs `time_scale` times faster than
//! real time.
//!
//! Virtual time is `start + real_elapsed × time_scale`. Everything the sandbox
//! simulates (speech, ringing, gather timeouts, pauses) is measured on this
//! clock. The `occurred_at` / `start_time` fields of webhooks give each call
//! session its real wall-clock start, and virtual time from there on (see
//! `World::wall`): an application computes realistic offsets even at ×50,
//! while calls are stored at the hour they really happened. Webhook signature
//! timestamps are *real* Unix time: the 300 s tolerance is real.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
        Self { inner: Arc::new(Inner { real_start: Instant::now(), virtual_start: Utc::now(), scale }) }
    }

    /// How many virtual seconds pass per real second.
    pub fn time_scale(&self) -> f64 {
        self.inner.scale
    }

    /// Virtual time elapsed since the clock started.
    pub fn elapsed(&self) -> Duration {
        scale_duration(self.inner.real_start.elapsed(), self.inner.scale)
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

    /// The real instant at which `elapsed` virtual time will have passed.
    pub fn real_deadline(&self, elapsed: Duration) -> tokio::time::Instant {
        let real = self.to_real(elapsed);
        // Far-future deadlines saturate at about 30 years rather than overflow.
        let real = real.min(Duration::from_secs(1 << 30));
        tokio::time::Instant::from_std(self.inner.real_start + real)
    }

    /// Sleeps for a virtual duration (real `d / time_scale`).
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.to_real(d)).await;
    }

    /// Sleeps until `elapsed` virtual time has passed since the start.
    pub async fn sleep_until(&self, elapsed: Duration) {
        tokio::time::sleep_until(self.real_deadline(elapsed)).await;
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

    #[test]
    fn times_are_rfc3339_with_micros() {
        let t = DateTime::parse_from_rfc3339("2020-07-10T05:08:59.668179Z").unwrap().with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2020-07-10T05:08:59.668179Z");
    }
}
