//! The process's CPU and memory, read from /proc at each scrape and written by hand, so that
//! each series has its proper type (`process_cpu_seconds_total` is a counter of fractional
//! seconds, which the exporter's integer counters cannot hold).

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// The previous scrape's CPU time, for the utilisation since then.
struct Sample {
    at: Instant,
    cpu_seconds: f64,
}

static LAST: Mutex<Option<Sample>> = Mutex::new(None);

/// Kernel clock ticks per second (`getconf CLK_TCK`: 100 on every Linux we run on).
const CLOCK_TICKS: f64 = 100.0;
const PAGE_BYTES: f64 = 4096.0;

/// Fields of /proc/self/stat after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default()
}

/// `MemTotal` and `MemAvailable` of /proc/meminfo, in bytes.
fn meminfo(text: &str) -> (f64, f64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb * 1024.0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

fn series(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Appends the process series to `out`.
pub fn render(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let fields = stat_fields(&stat);
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    let cpu_seconds = (num(11) + num(12)) / CLOCK_TICKS;
    let rss = num(21) * PAGE_BYTES;
    series(
        out,
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu_seconds,
    );
    series(
        out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss,
    );
    series(
        out,
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        num(20),
    );
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let util = last.as_ref().and_then(|prev| {
        let wall = now.duration_since(prev.at).as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        (wall > 0.0).then(|| ((cpu_seconds - prev.cpu_seconds) / wall / cores).clamp(0.0, 1.0))
    });
    *last = Some(Sample {
        at: now,
        cpu_seconds,
    });
    drop(last);
    if let Some(u) = util {
        for (name, help) in [
            (
                "osprey_cpu_utilization",
                "This process's share of all cores since the previous scrape (0 to 1).",
            ),
            (
                "nv_cpu_utilization",
                "CPU utilization rate [0.0 - 1.0] (this process, since the previous scrape)",
            ),
        ] {
            series(out, name, "gauge", help, u);
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        let (total, available) = meminfo(&text);
        series(
            out,
            "nv_cpu_memory_total_bytes",
            "gauge",
            "CPU total memory (RAM), in bytes",
            total,
        );
        series(
            out,
            "nv_cpu_memory_used_bytes",
            "gauge",
            "CPU used memory (RAM), in bytes",
            (total - available).max(0.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_formats() {
        let f = stat_fields("42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13");
        assert_eq!(f.first(), Some(&"S"));
        assert_eq!(f.get(11), Some(&"11"), "utime, the 14th field of the line");
        let (total, available) =
            meminfo("MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:   250 kB\n");
        assert_eq!((total, available), (1_024_000.0, 256_000.0));
    }

    #[test]
    fn every_series_has_help_and_type() {
        let mut out = String::new();
        render(&mut out);
        render(&mut out);
        assert!(
            out.contains("# TYPE process_cpu_seconds_total counter"),
            "{out}"
        );
        assert!(out.contains("# TYPE nv_cpu_utilization gauge"), "{out}");
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split([' ', '{']).next().unwrap_or_default();
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
