//! Where a model instance runs: the CPU or one CUDA GPU, for ONNX Runtime (its CUDA execution
//! provider) and candle alike.

use crate::error::RuntimeError;
use candle_core::Device;
use std::fmt;
use std::str::FromStr;

/// The device a model instance is loaded onto. Parses from and prints as `cpu`, `cuda` (GPU 0)
/// or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accelerator {
    /// The host CPU (candle's own multi-threaded kernels).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal: a GPU at run time, and for candle the crate's `cuda`
    /// feature.
    Cuda(usize),
}

impl Accelerator {
    /// Checks that the GPU exists before anything is loaded onto it (the CPU always does):
    /// [`RuntimeError::DeviceUnavailable`] says why not, from [`crate::gpu::devices`] (no
    /// driver, no GPU, an ordinal past the last GPU). NVML counts every GPU of the machine, so
    /// under `CUDA_VISIBLE_DEVICES` an ordinal that passes may still be refused by CUDA itself.
    pub fn check(&self) -> Result<(), RuntimeError> {
        let Accelerator::Cuda(ordinal) = *self else {
            return Ok(());
        };
        let unavailable = |message: String| RuntimeError::DeviceUnavailable {
            device: self.to_string(),
            message,
        };
        let gpus = crate::gpu::devices().map_err(|e| unavailable(e.to_string()))?;
        if gpus.iter().any(|g| g.index as usize == ordinal) {
            return Ok(());
        }
        let list: Vec<String> = gpus
            .iter()
            .map(|g| format!("{}: {}", g.index, g.name))
            .collect();
        Err(unavailable(format!(
            "GPU {ordinal} does not exist; this machine has {} GPU(s) ({})",
            gpus.len(),
            list.join(", ")
        )))
    }

    /// Opens the candle device. A CUDA accelerator fails with
    /// [`RuntimeError::DeviceUnavailable`] when this binary was built without the `cuda` feature
    /// or when the GPU cannot be opened (no GPU, no driver, bad ordinal).
    pub fn device(&self) -> Result<Device, RuntimeError> {
        match *self {
            Accelerator::Cpu => Ok(Device::Cpu),
            Accelerator::Cuda(ordinal) => {
                let unavailable = |message: String| RuntimeError::DeviceUnavailable {
                    device: self.to_string(),
                    message,
                };
                if !candle_core::utils::cuda_is_available() {
                    return Err(unavailable(
                        "this binary was built without the `cuda` feature of osprey-runtimes \
                         (rebuild with `--features cuda`, which needs the CUDA toolkit)"
                            .to_string(),
                    ));
                }
                self.check()?;
                Device::new_cuda(ordinal).map_err(|e| {
                    unavailable(format!("no usable CUDA GPU with ordinal {ordinal}: {e}"))
                })
            }
        }
    }
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accelerator::Cpu => f.write_str("cpu"),
            Accelerator::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// An accelerator name that is not `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown accelerator '{0}': expected cpu, cuda or cuda:N")]
pub struct ParseAcceleratorError(pub String);

impl FromStr for Accelerator {
    type Err = ParseAcceleratorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseAcceleratorError(s.to_string());
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Accelerator::Cpu),
            "cuda" | "gpu" => Ok(Accelerator::Cuda(0)),
            other => {
                let n = other
                    .strip_prefix("cuda:")
                    .or_else(|| other.strip_prefix("gpu:"))
                    .ok_or_else(bad)?;
                n.parse().map(Accelerator::Cuda).map_err(|_| bad())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, acc) in [
            ("cpu", Accelerator::Cpu),
            ("CUDA", Accelerator::Cuda(0)),
            ("cuda:1", Accelerator::Cuda(1)),
            ("gpu:2", Accelerator::Cuda(2)),
        ] {
            assert_eq!(text.parse::<Accelerator>(), Ok(acc), "{text}");
        }
        assert_eq!(Accelerator::Cuda(3).to_string(), "cuda:3");
        assert_eq!(
            "cuda:x".parse::<Accelerator>(),
            Err(ParseAcceleratorError("cuda:x".into()))
        );
        assert!("tpu".parse::<Accelerator>().is_err());
    }

    #[test]
    fn cpu_always_opens() {
        assert!(Accelerator::Cpu.device().is_ok());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        let e = Accelerator::Cuda(0).device().expect_err("no cuda feature");
        assert!(e.to_string().contains("`cuda` feature"), "{e}");
    }
}
