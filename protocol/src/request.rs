//! Transport-independent inference requests and responses.

use crate::parameters::{ParamValue, Parameters};
use crate::tensor::Tensor;

/// An inference request after decoding: typed tensors whose element counts match their shapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferRequest {
    pub id: Option<String>,
    pub parameters: Parameters,
    pub inputs: Vec<Tensor>,
    /// Outputs the client asked for; empty means every output.
    pub outputs: Vec<RequestedOutput>,
}

/// One requested output and its parameters (`binary_data`, `classification`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    pub name: String,
    pub parameters: Parameters,
}

impl RequestedOutput {
    /// The requested output's `binary_data` parameter, if set.
    pub fn binary_data(&self) -> Option<bool> {
        self.parameters
            .get("binary_data")
            .and_then(ParamValue::as_bool)
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    pub id: Option<String>,
    pub parameters: Parameters,
    pub outputs: Vec<Tensor>,
}
