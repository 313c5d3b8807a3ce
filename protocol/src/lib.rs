//! Osprey's wire protocol: the Open Inference Protocol (KServe v2) with Triton's extensions.
//!
//! No I/O lives here. Start with [`tensor`] (typed tensors), then [`rest`] (JSON and binary
//! bodies) and [`grpc`] (generated messages and conversions); [`signature`] validates a decoded
//! [`InferRequest`] against what a model declares. Every error is a [`ProtocolError`] that names
//! the tensor or field at fault. [`pbtxt`] reads Triton's `config.pbtxt` text format.

pub mod batch;
pub mod client;
pub mod codec;
pub mod datatype;
pub mod element;
pub mod error;
pub mod grpc;
pub mod json;
pub mod pad;
pub mod parameters;
pub mod pbtxt;
pub mod request;
pub mod rest;
pub mod signature;
pub mod tensor;

pub use datatype::DataType;
pub use error::ProtocolError;
pub use parameters::{ParamValue, Parameters};
pub use request::{InferRequest, InferResponse, RequestedOutput};
pub use signature::{ModelSignature, TensorSpec};
pub use tensor::{Tensor, TensorData};
