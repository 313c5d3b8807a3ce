//! Runtime errors.

use std::path::PathBuf;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found (looked in: {searched}). Install it with `pip install onnxruntime==1.31.1` (scripts/setup.sh does this into .venv) or set ORT_DYLIB_PATH to libonnxruntime.so")]
    LibraryNotFound { searched: String },
    #[error("failed to load ONNX Runtime from {path}: {message}")]
    LibraryLoad { path: PathBuf, message: String },
    #[error("failed to load model {path}: {message}")]
    ModelLoad { path: PathBuf, message: String },
    #[error("model {tensor} '{name}' has type {ty}, which Osprey does not serve")]
    UnsupportedType {
        tensor: &'static str,
        name: String,
        ty: String,
    },
    #[error("device {device} is unavailable: {message}")]
    DeviceUnavailable { device: String, message: String },
    #[error("input '{name}': {reason}")]
    BadInput { name: String, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),
}
