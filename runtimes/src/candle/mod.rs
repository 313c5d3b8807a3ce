//! Models run with Hugging Face's candle, in-process and without a shared library: for now
//! BERT-family sentence encoders ([`BertEncoder`]) such as all-MiniLM-L6-v2.
//!
//! A model directory holds `config.json` (the Hugging Face BERT config) and `model.safetensors`;
//! sentence-transformers' `1_Pooling/config.json` (mean or cls pooling) and `modules.json`
//! (whether a `Normalize` module ends the pipeline) are read when present. Tokenisation is not
//! part of the runtime: it takes `input_ids`, `attention_mask` and `token_type_ids`.
//!
//! The CPU build needs nothing beyond Rust. [`Accelerator::Cuda`] needs the crate's `cuda`
//! feature (and so the CUDA toolkit at build time); without it, loading fails with
//! [`crate::RuntimeError::DeviceUnavailable`].

mod bert;
mod inputs;
mod pooling;

pub use crate::device::{Accelerator, ParseAcceleratorError};
pub use bert::{BertEncoder, EMBEDDING};
pub use inputs::{ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS};
pub use pooling::{EncoderOptions, Pooling};
