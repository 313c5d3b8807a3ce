//! The GPUs' series under Triton's names, read through NVML at each scrape
//! ([`osprey_runtimes::gpu::sample`]), one per GPU labelled `gpu_uuid`. A machine without a GPU
//! (or without the driver) has none of them: absent, not zero. A reading NVML cannot give on
//! some GPU (power on some boards) leaves that GPU's series out.

use osprey_runtimes::gpu::GpuSample;
use std::fmt::Write;

/// (name, type, help, value of one sample).
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&GpuSample) -> Option<f64>,
);

const SERIES: &[Series] = &[
    (
        "nv_gpu_utilization",
        "gauge",
        "GPU utilization rate [0.0 - 1.0)",
        |s| s.utilization,
    ),
    (
        "nv_gpu_memory_total_bytes",
        "gauge",
        "GPU total memory, in bytes",
        |s| Some(s.gpu.memory_total_bytes as f64),
    ),
    (
        "nv_gpu_memory_used_bytes",
        "gauge",
        "GPU used memory, in bytes",
        |s| s.memory_used_bytes.map(|b| b as f64),
    ),
    (
        "nv_gpu_power_usage",
        "gauge",
        "GPU power usage in watts",
        |s| s.power_watts,
    ),
    (
        "nv_gpu_power_limit",
        "gauge",
        "GPU power management limit in watts",
        |s| s.power_limit_watts,
    ),
    (
        "nv_energy_consumption",
        "counter",
        "GPU energy consumption in joules since the Triton Server started",
        |s| s.energy_joules,
    ),
];

/// Appends the series of `samples` to `out`.
pub fn write(out: &mut String, samples: &[GpuSample]) {
    for (name, kind, help, value) in SERIES {
        let values: Vec<(&str, f64)> = samples
            .iter()
            .filter_map(|s| value(s).map(|v| (s.gpu.uuid.as_str(), v)))
            .collect();
        if values.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (uuid, v) in values {
            let _ = writeln!(out, "{name}{{gpu_uuid=\"{uuid}\"}} {v}");
        }
    }
}

/// Appends the machine's GPU series, if it has GPUs.
pub fn render(out: &mut String) {
    if let Ok(samples) = osprey_runtimes::gpu::sample() {
        write(out, &samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osprey_runtimes::gpu::GpuInfo;

    fn sample(uuid: &str, power: Option<f64>) -> GpuSample {
        GpuSample {
            gpu: GpuInfo {
                index: 0,
                uuid: uuid.into(),
                name: "NVIDIA H200".into(),
                memory_total_bytes: 150_000_000_000,
            },
            utilization: Some(0.25),
            memory_used_bytes: Some(1_000),
            power_watts: power,
            power_limit_watts: power.map(|_| 700.0),
            energy_joules: None,
        }
    }

    #[test]
    fn writes_one_line_per_gpu_and_leaves_unread_values_out() {
        let mut out = String::new();
        write(
            &mut out,
            &[sample("GPU-a", Some(120.5)), sample("GPU-b", None)],
        );
        assert!(
            out.contains("nv_gpu_utilization{gpu_uuid=\"GPU-a\"} 0.25\n"),
            "{out}"
        );
        assert!(
            out.contains("nv_gpu_utilization{gpu_uuid=\"GPU-b\"} 0.25\n"),
            "{out}"
        );
        assert!(out.contains("nv_gpu_memory_total_bytes{gpu_uuid=\"GPU-b\"} 150000000000\n"));
        assert!(
            out.contains("nv_gpu_power_usage{gpu_uuid=\"GPU-a\"} 120.5\n"),
            "{out}"
        );
        assert!(
            !out.contains("nv_gpu_power_usage{gpu_uuid=\"GPU-b\"}"),
            "{out}"
        );
        assert!(
            !out.contains("nv_energy_consumption"),
            "no GPU read energy: {out}"
        );
        assert_eq!(
            out.matches("# TYPE nv_gpu_memory_used_bytes gauge").count(),
            1
        );
    }

    #[test]
    fn no_gpu_no_series() {
        let mut out = String::new();
        write(&mut out, &[]);
        assert!(out.is_empty(), "{out}");
    }
}
