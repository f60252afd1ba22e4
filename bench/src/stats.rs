//! Order statistics over samples, and how they are printed.

use std::time::Duration;

/// Median and tail of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub median: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// The summary of `samples`; `None` when there are none.
pub fn summarize(samples: &[Duration]) -> Option<Summary> {
    let mut secs: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    let at = |q| quantile_sorted(&secs, q).map(Duration::from_secs_f64);
    Some(Summary { n: secs.len(), median: at(0.5)?, p90: at(0.9)?, p99: at(0.99)?, max: at(1.0)? })
}

/// The `q` quantile of ascending `sorted`, interpolating linearly between closest ranks
/// (R's type 7, numpy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// The median of unsorted values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// The median of durations.
pub fn median_duration(samples: &[Duration]) -> Option<Duration> {
    summarize(samples).map(|s| s.median)
}

/// `3.21 ms`.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

/// `reference / twill` as `4.2x`, or `—` when either side is missing or zero.
pub fn ratio(reference: Option<f64>, twill: Option<f64>) -> String {
    match ratio_value(reference, twill) {
        Some(r) => format!("{r:.2}x"),
        None => "—".into(),
    }
}

/// `a / b` when both exist and `b` is positive.
pub fn ratio_value(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&v, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn summary_of_hundred() {
        let samples: Vec<Duration> = (1..=100).rev().map(d).collect();
        let s = summarize(&samples).unwrap();
        assert_eq!(s.n, 100);
        assert!((s.median.as_secs_f64() - 0.0505).abs() < 1e-9);
        assert!((s.p99.as_secs_f64() - 0.09901).abs() < 1e-9);
        assert_eq!(s.max, d(100));
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn formatting() {
        assert_eq!(ms(Duration::from_micros(3210)), "3.21 ms");
        assert_eq!(ms(d(123)), "123.0 ms");
        assert_eq!(ratio(Some(10.0), Some(2.0)), "5.00x");
        assert_eq!(ratio(None, Some(2.0)), "—");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "—");
    }
}
