//! Fixed-bucket histograms on atomics, rendered in Prometheus' text format. Their memory is
//! fixed whatever the request rate: the Prometheus exporter's own histograms keep every sample
//! in a growing buffer until a scrape or an upkeep drains it, which made a server that nobody
//! scraped grow by ~60–130 bytes per request.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

struct Inner {
    name: &'static str,
    /// Rendered labels without braces, e.g. `model="mlp",version="1"`.
    labels: String,
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of observations, as f64 bits.
    sum: AtomicU64,
}

/// One labelled histogram; recording is a few relaxed atomic operations.
#[derive(Clone)]
pub struct Histogram(Arc<Inner>);

/// Every live histogram, for rendering; dropped ones are pruned at the next render.
static ALL: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

impl Histogram {
    /// A histogram `name` with `labels` (label, value) and bucket upper bounds `bounds`
    /// (ascending).
    pub fn register(
        name: &'static str,
        labels: &[(&str, &str)],
        bounds: &'static [f64],
    ) -> Histogram {
        let inner = Arc::new(Inner {
            name,
            labels: render_labels(labels),
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        });
        ALL.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&inner));
        Histogram(inner)
    }

    pub fn record(&self, v: f64) {
        let i = self.0.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.0.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .0
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
}

/// `labels` as Prometheus writes them between braces: `model="mlp",version="1"`.
pub(super) fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut rendered = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            rendered.push(',');
        }
        let _ = write!(rendered, "{k}=\"{}\"", escape(v));
    }
    rendered
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends every live histogram to `out`, grouped by name, with one `# HELP` (from `help`) and
/// one `# TYPE` line per name.
pub fn render(out: &mut String, help: impl Fn(&str) -> &'static str) {
    let live: Vec<Arc<Inner>> = {
        let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    let mut names: Vec<&'static str> = live.iter().map(|h| h.name).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let _ = writeln!(out, "# HELP {name} {}", help(name));
        let _ = writeln!(out, "# TYPE {name} histogram");
        for h in live.iter().filter(|h| h.name == name) {
            let sep = if h.labels.is_empty() { "" } else { "," };
            let mut cumulative = 0u64;
            for (i, c) in h.counts.iter().enumerate() {
                cumulative += c.load(Ordering::Relaxed);
                let le = h
                    .bounds
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{}{sep}le=\"{le}\"}} {cumulative}",
                    h.labels
                );
            }
            let sum = f64::from_bits(h.sum.load(Ordering::Relaxed));
            let _ = writeln!(out, "{name}_sum{{{}}} {sum}", h.labels);
            let _ = writeln!(out, "{name}_count{{{}}} {cumulative}", h.labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_memory_does_not_grow() {
        static BOUNDS: &[f64] = &[1.0, 2.0, 8.0];
        let h = Histogram::register("test_hist_a", &[("model", "m\"x")], BOUNDS);
        for v in [0.5, 1.0, 1.5, 8.0, 100.0] {
            h.record(v);
        }
        let mut out = String::new();
        render(&mut out, |_| "a test");
        assert!(out.contains("# HELP test_hist_a a test"), "{out}");
        assert!(out.contains("# TYPE test_hist_a histogram"), "{out}");
        assert!(
            out.contains("test_hist_a_bucket{model=\"m\\\"x\",le=\"1\"} 2"),
            "{out}"
        );
        assert!(out.contains("test_hist_a_bucket{model=\"m\\\"x\",le=\"2\"} 3"));
        assert!(out.contains("test_hist_a_bucket{model=\"m\\\"x\",le=\"8\"} 4"));
        assert!(out.contains("test_hist_a_bucket{model=\"m\\\"x\",le=\"+Inf\"} 5"));
        assert!(out.contains("test_hist_a_sum{model=\"m\\\"x\"} 111"));
        assert!(out.contains("test_hist_a_count{model=\"m\\\"x\"} 5"));
        // A million more observations change counts, not the size of what is kept.
        for i in 0..1_000_000 {
            h.record(f64::from(i % 10));
        }
        assert_eq!(h.0.counts.len(), BOUNDS.len() + 1);
        drop(h);
        let mut after = String::new();
        render(&mut after, |_| "");
        assert!(
            !after.contains("test_hist_a"),
            "dropped histograms are not rendered"
        );
    }
}
