//! Small statistics: least-squares slope, percentiles, distributions and
//! histograms with round bin widths.

use serde::Serialize;

/// Least-squares slope of `y` against `x`; `None` with fewer than two
/// points or when every `x` is the same.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= f64::EPSILON * n {
        return None;
    }
    let s = sxy / sxx;
    s.is_finite().then_some(s)
}

/// The `q`-quantile (0..=1) of sorted values, interpolating linearly between
/// the closest ranks (the default of numpy and pandas). `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Summary of a set of durations (milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// How many values.
    pub count: u64,
    /// Smallest.
    pub min_ms: Option<f64>,
    /// Median.
    pub median_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// Mean.
    pub mean_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
}

impl Distribution {
    /// Summarises values (sorted in place).
    pub fn of(values: &mut [f64]) -> Self {
        values.sort_by(f64::total_cmp);
        let count = values.len() as u64;
        let mean = (count > 0).then(|| values.iter().sum::<f64>() / count as f64);
        Self {
            count,
            min_ms: values.first().copied(),
            median_ms: quantile(values, 0.5),
            p90_ms: quantile(values, 0.9),
            mean_ms: mean,
            max_ms: values.last().copied(),
        }
    }
}

/// One histogram bar: values in `[from_s, to_s)` seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge, seconds (inclusive).
    pub from_s: f64,
    /// Upper edge, seconds (exclusive; the last bin includes it).
    pub to_s: f64,
    /// Values in the bin.
    pub count: u64,
}

/// A 1-2-5 round width that splits `0..max` into about `target` bins.
fn round_width(max: f64, target: usize) -> f64 {
    let raw = (max / target.max(1) as f64).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|w| *w >= raw).unwrap_or(10.0 * magnitude)
}

/// Histogram of millisecond values in seconds, starting at 0 with a round
/// bin width (about `target` bins). Empty when there are no values.
pub fn histogram_seconds(values_ms: &[f64], target: usize) -> Vec<Bin> {
    let Some(max) = values_ms.iter().copied().map(|v| v / 1000.0).reduce(f64::max) else { return Vec::new() };
    let max = max.max(0.0);
    let width = round_width(if max > 0.0 { max } else { 1.0 }, target);
    let n = ((max / width).floor() as usize + 1).clamp(1, 1000);
    let mut bins: Vec<Bin> =
        (0..n).map(|i| Bin { from_s: i as f64 * width, to_s: (i + 1) as f64 * width, count: 0 }).collect();
    for v in values_ms {
        let i = ((v / 1000.0).max(0.0) / width).floor() as usize;
        bins[i.min(n - 1)].count += 1;
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_the_least_squares_fit() {
        assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
        // y = -0.5x + 1 with symmetric noise keeps the slope.
        let s = slope(&[(0.0, 1.1), (1.0, 0.4), (2.0, 0.1), (3.0, -0.6)]).unwrap();
        assert!((s - (-0.54)).abs() < 1e-9, "{s}");
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(2.0, 1.0), (2.0, -1.0)]), None);
        assert_eq!(slope(&[]), None);
    }

    #[test]
    fn quantiles_interpolate_like_pandas() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn distributions_sort_and_summarise() {
        let mut v = vec![9000.0, 1000.0, 5000.0];
        let d = Distribution::of(&mut v);
        assert_eq!((d.count, d.min_ms, d.median_ms, d.max_ms), (3, Some(1000.0), Some(5000.0), Some(9000.0)));
        assert_eq!(d.mean_ms, Some(5000.0));
        assert_eq!(Distribution::of(&mut []), Distribution::default());
    }

    #[test]
    fn histograms_use_round_widths_and_keep_every_value() {
        let values = [0.0, 1500.0, 2500.0, 9999.0, 10000.0, 47000.0];
        let bins = histogram_seconds(&values, 10);
        assert_eq!(bins[0].to_s - bins[0].from_s, 5.0);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), values.len() as u64);
        assert_eq!(bins[0].count, 3);
        assert_eq!(bins.last().unwrap().count, 1);
        assert!(histogram_seconds(&[], 10).is_empty());
        assert_eq!(histogram_seconds(&[0.0, 0.0], 10).iter().map(|b| b.count).sum::<u64>(), 2);
    }
}
