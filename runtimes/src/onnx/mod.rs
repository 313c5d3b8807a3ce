//! ONNX Runtime through the `ort` crate, loaded dynamically from the `onnxruntime` wheel.

pub mod convert;
pub mod library;
mod session;

pub use library::locate_library;
pub use session::{OnnxEnvironment, OnnxModel};
