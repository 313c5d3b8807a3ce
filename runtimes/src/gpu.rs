//! The machine's NVIDIA GPUs, read through NVML (`libnvidia-ml.so.1`, the driver's management
//! library), which is loaded when first asked for: a machine without the driver or without a
//! GPU gets [`NoGpu`] with the reason, never a panic, in every build (the CPU build included).
//!
//! [`devices`] lists the GPUs once per process (their index, UUID, name and memory), which is
//! what model loading checks an `instance_group { kind: KIND_GPU gpus: [...] }` against;
//! [`sample`] reads each GPU's utilisation, memory and power now, for the metrics endpoint.
//! NVML numbers every GPU of the machine, whatever `CUDA_VISIBLE_DEVICES` says.

use nvml_wrapper::Nvml;
use std::sync::OnceLock;

/// One GPU as NVML names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// NVML's index, the ordinal `instance_group.gpus` names.
    pub index: u32,
    /// `GPU-xxxxxxxx-...`, the label Triton's GPU metrics carry.
    pub uuid: String,
    /// The product name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Installed memory in bytes.
    pub memory_total_bytes: u64,
}

/// One reading of one GPU. A field NVML could not read on this GPU is `None` (and its series
/// is left out, not written as zero).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuSample {
    pub gpu: GpuInfo,
    /// Share of the last sample period in which a kernel ran, 0.0 to 1.0.
    pub utilization: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    /// Power draw in watts.
    pub power_watts: Option<f64>,
    /// The enforced power limit in watts.
    pub power_limit_watts: Option<f64>,
    /// Energy used since the driver was loaded, in joules.
    pub energy_joules: Option<f64>,
}

/// Why there is no GPU to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no GPU: {0}")]
pub struct NoGpu(pub String);

/// The NVML handle, opened once: its error is kept too, so a machine without the driver pays
/// for one failed `dlopen`.
fn nvml() -> Result<&'static Nvml, NoGpu> {
    static NVML: OnceLock<Result<Nvml, NoGpu>> = OnceLock::new();
    NVML.get_or_init(|| {
        Nvml::init().map_err(|e| {
            NoGpu(format!(
                "NVIDIA's management library (libnvidia-ml.so.1, part of the driver) could not \
                 be opened: {e}"
            ))
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn read_devices(nvml: &Nvml) -> Result<Vec<GpuInfo>, NoGpu> {
    let nvml_err =
        |what: &str, e: nvml_wrapper::error::NvmlError| NoGpu(format!("NVML {what}: {e}"));
    let count = nvml
        .device_count()
        .map_err(|e| nvml_err("device count", e))?;
    let mut out = Vec::new();
    for index in 0..count {
        let d = nvml
            .device_by_index(index)
            .map_err(|e| nvml_err(&format!("GPU {index}"), e))?;
        out.push(GpuInfo {
            index,
            uuid: d.uuid().unwrap_or_else(|_| format!("GPU-{index}")),
            name: d.name().unwrap_or_else(|_| "unknown".into()),
            memory_total_bytes: d.memory_info().map_or(0, |m| m.total),
        });
    }
    if out.is_empty() {
        return Err(NoGpu(
            "the NVIDIA driver is loaded but reports no GPU".into(),
        ));
    }
    Ok(out)
}

/// The machine's GPUs, read once per process.
pub fn devices() -> Result<Vec<GpuInfo>, NoGpu> {
    static DEVICES: OnceLock<Result<Vec<GpuInfo>, NoGpu>> = OnceLock::new();
    DEVICES
        .get_or_init(|| nvml().and_then(read_devices))
        .clone()
}

/// Reads every GPU now.
pub fn sample() -> Result<Vec<GpuSample>, NoGpu> {
    let nvml = nvml()?;
    let gpus = devices()?;
    let mut out = Vec::with_capacity(gpus.len());
    for gpu in gpus {
        let Ok(d) = nvml.device_by_index(gpu.index) else {
            continue;
        };
        out.push(GpuSample {
            utilization: d.utilization_rates().ok().map(|u| f64::from(u.gpu) / 100.0),
            memory_used_bytes: d.memory_info().ok().map(|m| m.used),
            power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
            power_limit_watts: d
                .enforced_power_limit()
                .ok()
                .map(|mw| f64::from(mw) / 1000.0),
            energy_joules: d
                .total_energy_consumption()
                .ok()
                .map(|mj| mj as f64 / 1000.0),
            gpu,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both answers are checked: a GPU machine lists named GPUs with memory, any other machine
    /// says why there is none.
    #[test]
    fn lists_gpus_or_says_why_not() {
        match devices() {
            Ok(gpus) => {
                for (i, g) in gpus.iter().enumerate() {
                    assert_eq!(g.index as usize, i);
                    assert!(g.uuid.starts_with("GPU-"), "{g:?}");
                    assert!(g.memory_total_bytes > 0, "{g:?}");
                }
                let samples = sample().expect("sample after devices");
                assert_eq!(samples.len(), gpus.len());
            }
            Err(NoGpu(why)) => {
                assert!(!why.is_empty());
                assert!(sample().is_err(), "sample must agree with devices");
                eprintln!("no GPU on this machine: {why}");
            }
        }
    }
}
