//! Model runtimes: synchronous, batch-in/batch-out, no async.
//!
//! [`Runtime`] is the contract the server drives from one OS thread per model instance. The
//! ONNX Runtime implementation lives in [`onnx`]: [`onnx::OnnxEnvironment`] loads the shared
//! library once (see [`onnx::library`] for where it is looked for), then
//! [`onnx::OnnxEnvironment::load`] makes one session per instance. The [`candle`] module runs
//! BERT-family sentence encoders in pure Rust with Hugging Face's candle:
//! [`candle::BertEncoder::load`] reads a sentence-transformers directory onto a
//! [`Accelerator`] (the CPU, or a CUDA GPU with the `cuda` feature).
//!
//! Modules: [`onnx`] ONNX Runtime (the CPU provider, or its CUDA execution provider when the
//! library is `onnxruntime-gpu`'s); [`candle`] candle's BERT encoders; [`device`] where an
//! instance runs ([`Accelerator`]); [`gpu`] the machine's GPUs through NVML, loaded at run time;
//! [`error`] the crate's error.

pub mod candle;
pub mod device;
pub mod error;
pub mod gpu;
pub mod onnx;

pub use device::Accelerator;
pub use error::RuntimeError;
use osprey_protocol::{Tensor, TensorSpec};

/// One loaded copy of a model. `run` is called with a whole batch and returns every output.
pub trait Runtime: Send + 'static {
    /// Inputs as the model declares them (full shapes, `-1` for variable dimensions).
    fn inputs(&self) -> &[TensorSpec];
    /// Outputs as the model declares them.
    fn outputs(&self) -> &[TensorSpec];
    /// Runs the model once. Inputs have been validated against [`Runtime::inputs`].
    fn run(&mut self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RuntimeError>;
}

/// Settings that apply when a model is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Intra-op threads per instance; 0 lets the runtime choose.
    pub intra_op_threads: usize,
    /// Whether idle intra-op threads spin waiting for work (lower latency for the model, a core
    /// burnt per thread while the request path needs it); off unless asked for.
    pub intra_op_spinning: bool,
    /// Where the instance runs. A GPU is checked with [`Accelerator::check`] first; ONNX models
    /// then run on ONNX Runtime's CUDA execution provider.
    pub device: Accelerator,
}
