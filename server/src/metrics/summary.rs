//! Prometheus summaries over a sliding time window, in fixed memory, rendered in Prometheus'
//! text format (Triton's `nv_inference_*_summary_us`).
//!
//! As prometheus-cpp's summaries (which Triton uses), `_count` and `_sum` count every
//! observation since start, and the quantiles cover a sliding window of `MAX_AGE` (60 s) made
//! of `AGE_BUCKETS` (5) age buckets: a ring of 5 [`Buckets`] arrays, each holding the samples
//! of one 12 s period. A sample is counted in the array of the current period; a scrape merges
//! the arrays of the current and the 4 previous periods, so the window spans 48–60 s, and the
//! array of a period older than that is cleared when its slot is reused.
//!
//! Quantiles are estimated from the merged counts with the relative error of [`sketch`]
//! (≤ 1/64 of the value of the sample at that rank), whatever error the configuration
//! requests. Recording is three relaxed atomic additions; the only lock is taken once per
//! period, by the first recording of the period, to clear the reused array.
//!
//! [`sketch`]: super::sketch

use super::sketch::{self, Buckets};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Length of the quantiles' sliding window (prometheus-cpp's default max_age).
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Age buckets of the window (prometheus-cpp's default).
pub const AGE_BUCKETS: u64 = 5;
/// Milliseconds one age bucket covers.
const PERIOD_MS: u64 = MAX_AGE.as_millis() as u64 / AGE_BUCKETS;

struct Slot {
    /// The period (since [`epoch`]) whose samples `buckets` holds, plus one; 0: none yet.
    period: AtomicU64,
    buckets: Buckets,
}

struct Inner {
    name: &'static str,
    /// Rendered labels without braces, e.g. `model="mlp",version="1"`.
    labels: String,
    quantiles: Arc<[(f64, f64)]>,
    count: AtomicU64,
    /// The sum of observations, in whole microseconds.
    sum: AtomicU64,
    ring: Box<[Slot]>,
    /// Held only while a reused slot is cleared.
    rotation: Mutex<()>,
}

/// One labelled summary of microsecond values.
#[derive(Clone)]
pub struct Summary(Arc<Inner>);

/// Every live summary, for rendering; dropped ones are pruned at the next render.
static ALL: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// The clock's origin: periods are counted from the first use.
fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Summary {
    /// A summary `name` with `labels` (label, value) reporting `quantiles` (quantile, error).
    pub fn register(
        name: &'static str,
        labels: &[(&str, &str)],
        quantiles: Arc<[(f64, f64)]>,
    ) -> Summary {
        let s = Summary::unregistered(name, labels, quantiles);
        ALL.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&s.0));
        s
    }

    fn unregistered(
        name: &'static str,
        labels: &[(&str, &str)],
        quantiles: Arc<[(f64, f64)]>,
    ) -> Summary {
        Summary(Arc::new(Inner {
            name,
            labels: super::histogram::render_labels(labels),
            quantiles,
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            ring: (0..AGE_BUCKETS)
                .map(|_| Slot {
                    period: AtomicU64::new(0),
                    buckets: Buckets::default(),
                })
                .collect(),
            rotation: Mutex::new(()),
        }))
    }

    /// Observes `n` samples of `us` microseconds now.
    pub fn record_n(&self, us: u64, n: u32) {
        self.record_at(us, n, now_ms());
    }

    /// Observes `n` samples of `us` microseconds at `now_ms` (milliseconds since any fixed
    /// origin, never decreasing by more than a period: the tests' virtual clock).
    pub fn record_at(&self, us: u64, n: u32, now_ms: u64) {
        let inner = &self.0;
        inner.count.fetch_add(u64::from(n), Ordering::Relaxed);
        inner
            .sum
            .fetch_add(us.saturating_mul(u64::from(n)), Ordering::Relaxed);
        let tag = now_ms / PERIOD_MS + 1;
        let Some(slot) = inner.ring.get((tag % AGE_BUCKETS) as usize) else {
            return;
        };
        let held = slot.period.load(Ordering::Acquire);
        if held != tag {
            if held > tag {
                return; // a sample from a period already out of the window
            }
            let _guard = inner.rotation.lock().unwrap_or_else(|p| p.into_inner());
            if slot.period.load(Ordering::Acquire) < tag {
                slot.buckets.clear();
                slot.period.store(tag, Ordering::Release);
            }
        }
        slot.buckets.add(us, n);
    }

    /// (quantile, value) pairs at `now_ms`, then the count and the sum.
    fn snapshot_at(&self, now_ms: u64) -> (Vec<(f64, f64)>, u64, u64) {
        let inner = &self.0;
        let tag = now_ms / PERIOD_MS + 1;
        let mut merged = vec![0u64; sketch::BUCKETS];
        for slot in inner.ring.iter() {
            let held = slot.period.load(Ordering::Acquire);
            if held != 0 && held <= tag && tag - held < AGE_BUCKETS {
                slot.buckets.merge_into(&mut merged);
            }
        }
        let total = merged.iter().sum();
        let quantiles = inner
            .quantiles
            .iter()
            .map(|(q, _)| (*q, sketch::quantile(&merged, total, *q)))
            .collect();
        (
            quantiles,
            inner.count.load(Ordering::Relaxed),
            inner.sum.load(Ordering::Relaxed),
        )
    }

    /// This summary's lines (no `# HELP`/`# TYPE`), at `now_ms`.
    fn render_at(&self, out: &mut String, now_ms: u64) {
        let (name, labels) = (self.0.name, &self.0.labels);
        let (quantiles, count, sum) = self.snapshot_at(now_ms);
        let sep = if labels.is_empty() { "" } else { "," };
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        for (q, v) in quantiles {
            let v = if v.is_nan() {
                "NaN".to_string()
            } else {
                v.to_string()
            };
            let _ = writeln!(out, "{name}{{{labels}{sep}quantile=\"{q}\"}} {v}");
        }
    }
}

/// Appends every live summary to `out`, grouped by name, with one `# HELP` (from `help`) and
/// one `# TYPE` line per name.
pub fn render(out: &mut String, help: impl Fn(&str) -> &'static str) {
    let live: Vec<Arc<Inner>> = {
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    let mut names: Vec<&'static str> = live.iter().map(|s| s.name).collect();
    names.sort_unstable();
    names.dedup();
    let now = now_ms();
    for name in names {
        let _ = writeln!(out, "# HELP {name} {}", help(name));
        let _ = writeln!(out, "# TYPE {name} summary");
        for s in live.iter().filter(|s| s.name == name) {
            Summary(s.clone()).render_at(out, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs() -> Arc<[(f64, f64)]> {
        super::super::config::DEFAULT_QUANTILES.into()
    }

    fn quantile(s: &Summary, now: u64, q: f64) -> f64 {
        let (quantiles, _, _) = s.snapshot_at(now);
        quantiles
            .iter()
            .find(|(x, _)| *x == q)
            .map_or(f64::NAN, |(_, v)| *v)
    }

    /// The exact `q` quantile (rank `ceil(q n)`) of sorted `values`.
    fn exact(sorted: &[u64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64
    }

    fn assert_close(s: &Summary, now: u64, values: &mut [u64]) {
        values.sort_unstable();
        for (q, _) in qs().iter() {
            let (got, want) = (quantile(s, now, *q), exact(values, *q));
            assert!(
                (got - want).abs() <= want * sketch::RELATIVE_ERROR,
                "q{q}: got {got}, want {want} ± {:.2} %",
                sketch::RELATIVE_ERROR * 100.0
            );
        }
    }

    #[test]
    fn quantiles_of_known_distributions_are_within_the_error() {
        // Uniform 1..=100_000 µs.
        let s = Summary::unregistered("t", &[], qs());
        let mut uniform: Vec<u64> = (1..=100_000).collect();
        for v in &uniform {
            s.record_at(*v, 1, 1_000);
        }
        assert_close(&s, 2_000, &mut uniform);
        // A long-tailed (exponential-ish) distribution, from a fixed LCG.
        let s = Summary::unregistered("t", &[], qs());
        let mut x: u64 = 42;
        let mut tailed = Vec::new();
        for _ in 0..50_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
            let v = (-u.ln() * 2_000.0) as u64 + 1;
            tailed.push(v);
            s.record_at(v, 1, 5_000);
        }
        assert_close(&s, 5_000, &mut tailed);
        let (_, count, sum) = s.snapshot_at(5_000);
        assert_eq!(count, 50_000);
        assert_eq!(sum, tailed.iter().sum::<u64>());
    }

    #[test]
    fn old_samples_age_out_of_the_window() {
        let s = Summary::unregistered("t", &[], qs());
        // t = 0 s: slow samples.
        for _ in 0..100 {
            s.record_at(50_000, 1, 0);
        }
        assert_eq!(quantile(&s, 0, 0.5), sketch::value(sketch::index(50_000)));
        // t = 30 s: fast samples; the slow ones are still in the window.
        let fast = sketch::value(sketch::index(100));
        s.record_at(100, 300, 30_000);
        assert_eq!(quantile(&s, 30_000, 0.5), fast);
        assert!(
            quantile(&s, 30_000, 0.9) > 40_000.0,
            "slow ones still count"
        );
        // t = 59.9 s: the first period (0–12 s) is still within the 60 s window.
        assert!(quantile(&s, 59_999, 0.9) > 40_000.0);
        // t = 60 s: it has aged out.
        assert_eq!(quantile(&s, 60_000, 0.99), fast, "slow samples aged out");
        // t = 100 s: everything has; _count and _sum are cumulative.
        assert!(quantile(&s, 100_000, 0.5).is_nan());
        let (_, count, sum) = s.snapshot_at(100_000);
        assert_eq!((count, sum), (400, 100 * 50_000 + 300 * 100));
        // A slot reused 60 s later holds only the new period's samples.
        s.record_at(7, 1, 120_000);
        assert_eq!(quantile(&s, 120_000, 0.999), 7.0);
        // A sample stamped with a period already out of the window is not counted in it.
        s.record_at(9_999, 1, 60_000);
        assert_eq!(quantile(&s, 120_000, 0.999), 7.0);
    }

    #[test]
    fn memory_does_not_grow_with_samples() {
        let s = Summary::unregistered("t", &[], qs());
        let size = |s: &Summary| s.0.ring.len() * sketch::BUCKETS;
        let before = size(&s);
        for i in 0..1_000_000u64 {
            s.record_at(i % 10_000 + i, 1, i / 10);
        }
        assert_eq!(size(&s), before);
        assert_eq!(s.0.ring.len() as u64, AGE_BUCKETS);
        assert_eq!(s.snapshot_at(100_000).1, 1_000_000);
    }

    #[test]
    fn renders_prometheus_summary_lines() {
        let s = Summary::register(
            "test_summary_a",
            &[("model", "m"), ("version", "1")],
            vec![(0.5, 0.05), (0.99, 0.001)].into(),
        );
        s.record_n(10, 3);
        s.record_n(20, 1);
        let mut out = String::new();
        render(&mut out, |_| "a test");
        assert!(out.contains("# HELP test_summary_a a test\n"), "{out}");
        assert!(out.contains("# TYPE test_summary_a summary\n"), "{out}");
        assert!(out.contains("test_summary_a_count{model=\"m\",version=\"1\"} 4\n"));
        assert!(out.contains("test_summary_a_sum{model=\"m\",version=\"1\"} 50\n"));
        assert!(
            out.contains("test_summary_a{model=\"m\",version=\"1\",quantile=\"0.5\"} 10\n"),
            "{out}"
        );
        assert!(out.contains("test_summary_a{model=\"m\",version=\"1\",quantile=\"0.99\"} 20\n"));
        drop(s);
        let mut after = String::new();
        render(&mut after, |_| "");
        assert!(!after.contains("test_summary_a"), "dropped summaries go");
    }
}
