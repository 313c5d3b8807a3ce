//! Errors found while decoding or validating a request. Every message names the tensor or field.

use crate::datatype::DataType;
use crate::tensor::fmt_shape;

/// A request that cannot be served as sent. All variants are the client's fault (HTTP 400 /
/// gRPC INVALID_ARGUMENT) except where [`ProtocolError::is_not_found`] says otherwise.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    #[error("input '{tensor}': unknown datatype '{given}'")]
    UnknownDatatype { tensor: String, given: String },
    #[error(
        "input '{tensor}': {len} bytes of binary data is not a whole number of {datatype} elements"
    )]
    RawSize {
        tensor: String,
        datatype: DataType,
        len: usize,
    },
    #[error("input '{0}': BYTES data is not a sequence of 4-byte length-prefixed elements")]
    BadBytesEncoding(String),
    #[error("input '{tensor}': invalid shape {}: dimensions must be non-negative and their product must not overflow 64 bits", fmt_shape(.shape))]
    BadShape { tensor: String, shape: Vec<i64> },
    #[error("input '{tensor}': shape {} needs {expected} elements, got {got}", fmt_shape(.shape))]
    ElementCount {
        tensor: String,
        shape: Vec<i64>,
        expected: usize,
        got: usize,
    },
    #[error("input '{tensor}': element {index}: expected an {datatype} value, got {got}")]
    JsonElement {
        tensor: String,
        index: usize,
        datatype: DataType,
        got: String,
    },
    #[error("input '{0}': no data: give 'data' or the 'binary_data_size' parameter")]
    MissingData(String),
    #[error("input '{0}': has both 'data' and 'binary_data_size'")]
    DataTwice(String),
    #[error("input '{tensor}': parameter 'binary_data_size' must be a non-negative integer")]
    BadBinarySize { tensor: String },
    #[error("input '{tensor}': binary_data_size {size} runs past the end of the body ({left} bytes left)")]
    BinaryTruncated {
        tensor: String,
        size: usize,
        left: usize,
    },
    #[error("binary body has {0} bytes after the last tensor that no input claims")]
    BinaryTrailing(usize),
    #[error("Inference-Header-Content-Length {header} is larger than the body ({body} bytes)")]
    HeaderLength { header: usize, body: usize },
    #[error(
        "input '{tensor}': {datatype} data cannot be sent in 'contents'; use raw_input_contents"
    )]
    NoTypedContents { tensor: String, datatype: DataType },
    #[error("raw_input_contents has {raw} entries but the request has {inputs} inputs")]
    RawCount { raw: usize, inputs: usize },
    #[error("input '{tensor}': nested data does not nest as shape {} says: send one flat array, or arrays nested exactly as the shape", fmt_shape(.shape))]
    Grouping { tensor: String, shape: Vec<i64> },
    #[error("input '{0}': both raw_input_contents and typed contents are set; send one of them")]
    RawAndContents(String),
    #[error("input '{tensor}': value {value} does not fit {datatype}")]
    ContentsRange {
        tensor: String,
        value: i64,
        datatype: DataType,
    },
    #[error("input '{0}' appears more than once")]
    DuplicateInput(String),
    #[error("unexpected input '{tensor}': model '{model}' has inputs {expected}")]
    UnknownInput {
        tensor: String,
        model: String,
        expected: String,
    },
    #[error("missing input '{tensor}': model '{model}' needs inputs {expected}")]
    MissingInput {
        tensor: String,
        model: String,
        expected: String,
    },
    #[error("input '{tensor}': expected datatype {expected}, got {got}")]
    WrongDatatype {
        tensor: String,
        expected: DataType,
        got: DataType,
    },
    #[error("input '{tensor}': expected shape {}, got {}", fmt_shape(.expected), fmt_shape(.got))]
    WrongShape {
        tensor: String,
        expected: Vec<i64>,
        got: Vec<i64>,
    },
    #[error("input '{tensor}': batch size {got} exceeds the model's max_batch_size {max}")]
    BatchTooLarge { tensor: String, got: i64, max: i64 },
    #[error(
        "input '{tensor}': batch size {got} differs from input '{first}' (batch size {expected})"
    )]
    BatchMismatch {
        tensor: String,
        first: String,
        expected: i64,
        got: i64,
    },
    #[error("unknown output '{tensor}': model '{model}' has outputs {expected}")]
    UnknownOutput {
        tensor: String,
        model: String,
        expected: String,
    },
    #[error("parameter '{name}': {reason}")]
    BadParameter { name: String, reason: String },
    #[error("a raw binary request (Inference-Header-Content-Length: 0) needs a model with exactly one input; model '{model}' has {inputs}")]
    RawRequestInputs { model: String, inputs: usize },
}
