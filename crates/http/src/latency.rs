//! Exact latency percentiles over samples kept in microseconds.

use serde::{Deserialize, Serialize};

/// Percentiles of a latency, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples summarised.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

/// Percentiles (nearest rank) of samples in microseconds; sorts `micros`.
pub fn summarize(micros: &mut [u32]) -> LatencySummary {
    if micros.is_empty() {
        return LatencySummary::default();
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        micros[rank - 1] as f64 / 1000.0
    };
    LatencySummary {
        count: micros.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: micros[micros.len() - 1] as f64 / 1000.0,
    }
}

/// A duration in whole microseconds, saturating at `u32::MAX` (71 minutes).
pub fn micros(d: std::time::Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().map(|i| i * 1000).collect();
        let s = summarize(&mut v);
        assert_eq!((s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms), (100, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(summarize(&mut []).count, 0);
        assert_eq!(micros(std::time::Duration::from_secs(1 << 40)), u32::MAX);
    }
}
