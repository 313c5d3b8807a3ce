//! ONNX Runtime through the `ort` crate, loaded dynamically from the `onnxruntime` wheel (or
//! `onnxruntime-gpu`'s, whose CUDA execution provider [`cuda`] registers for GPU instances).

pub mod convert;
mod cuda;
pub mod library;
mod session;

pub use library::locate_library;
pub use session::{OnnxEnvironment, OnnxModel};
