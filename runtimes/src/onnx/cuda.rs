//! ONNX Runtime's CUDA execution provider for one session. It is part of the library, not of
//! this binary: `onnxruntime-gpu`'s `libonnxruntime.so` has it (with the CUDA and cuDNN
//! libraries of its `nvidia-*` wheels on the library path), the CPU wheel's does not. The
//! session is refused, with the reason, whenever the provider cannot be had: it never falls
//! back to the CPU behind the user's back.

use ort::ep::{ExecutionProvider, CUDA};
use ort::session::builder::SessionBuilder;
use std::path::Path;

/// Registers the CUDA execution provider on GPU `ordinal` (checked to exist beforehand).
pub(super) fn register(
    builder: &mut SessionBuilder,
    ordinal: usize,
    library: &Path,
) -> Result<(), String> {
    let device_id = i32::try_from(ordinal).map_err(|_| format!("GPU {ordinal} is out of range"))?;
    match CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "the ONNX Runtime library {} has no CUDA execution provider: install \
                 onnxruntime-gpu==1.31.1 (scripts/setup-gpu.sh) and point ORT_DYLIB_PATH or \
                 --onnxruntime-library at its libonnxruntime.so",
                library.display()
            ))
        }
        Err(e) => return Err(format!("asking ONNX Runtime for its providers failed: {e}")),
    }
    CUDA::default()
        .with_device_id(device_id)
        .register(builder)
        .map_err(|e| format!("CUDA execution provider on GPU {ordinal}: {e}"))
}
