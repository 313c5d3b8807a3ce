//! Generated gRPC code (`inference.GRPCInferenceService`, `grpc.health.v1`) and conversions
//! between its messages and our typed requests.

use crate::datatype::DataType;
use crate::error::ProtocolError;
use crate::parameters::{ParamValue, Parameters};
use crate::request::{InferRequest, InferResponse, RequestedOutput};
use crate::tensor::{Tensor, TensorData};
use std::collections::HashMap;

/// Generated from `proto/grpc_service.proto` and `proto/model_config.proto`.
#[allow(clippy::all, missing_docs)]
pub mod inference {
    tonic::include_proto!("inference");
}

/// Generated from `proto/health.proto`.
#[allow(clippy::all, missing_docs)]
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}

/// The encoded file descriptor set of every proto, for reflection (config.pbtxt parsing).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

use inference::infer_parameter::ParameterChoice;
use inference::{InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse};

/// Converts a gRPC parameter map.
pub fn params_from_grpc(map: HashMap<String, InferParameter>) -> Parameters {
    map.into_iter()
        .filter_map(|(k, v)| {
            let value = match v.parameter_choice? {
                ParameterChoice::BoolParam(b) => ParamValue::Bool(b),
                ParameterChoice::Int64Param(i) => ParamValue::Int(i),
                ParameterChoice::StringParam(s) => ParamValue::String(s),
                ParameterChoice::DoubleParam(d) => ParamValue::Double(d),
                ParameterChoice::Uint64Param(u) => ParamValue::Uint(u),
            };
            Some((k, value))
        })
        .collect()
}

/// Converts a parameter map to gRPC form.
pub fn params_to_grpc(params: &Parameters) -> HashMap<String, InferParameter> {
    params
        .iter()
        .map(|(k, v)| {
            let choice = match v {
                ParamValue::Bool(b) => ParameterChoice::BoolParam(*b),
                ParamValue::Int(i) => ParameterChoice::Int64Param(*i),
                ParamValue::Uint(u) => ParameterChoice::Uint64Param(*u),
                ParamValue::Double(d) => ParameterChoice::DoubleParam(*d),
                ParamValue::String(s) => ParameterChoice::StringParam(s.clone()),
            };
            (
                k.clone(),
                InferParameter {
                    parameter_choice: Some(choice),
                },
            )
        })
        .collect()
}

fn narrow<S: Copy + Into<i64>, T: TryFrom<S>>(
    values: Vec<S>,
    tensor: &str,
    datatype: DataType,
) -> Result<Vec<T>, ProtocolError> {
    values
        .into_iter()
        .map(|v| {
            T::try_from(v).map_err(|_| ProtocolError::ContentsRange {
                tensor: tensor.to_string(),
                value: v.into(),
                datatype,
            })
        })
        .collect()
}

/// Takes the typed `contents` field that belongs to the datatype.
fn data_from_contents(
    datatype: DataType,
    c: InferTensorContents,
    tensor: &str,
) -> Result<TensorData, ProtocolError> {
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::Int8 => TensorData::Int8(narrow(c.int_contents, tensor, datatype)?),
        DataType::Int16 => TensorData::Int16(narrow(c.int_contents, tensor, datatype)?),
        DataType::Int32 => TensorData::Int32(c.int_contents),
        DataType::Int64 => TensorData::Int64(c.int64_contents),
        DataType::Uint8 => TensorData::Uint8(narrow(c.uint_contents, tensor, datatype)?),
        DataType::Uint16 => TensorData::Uint16(narrow(c.uint_contents, tensor, datatype)?),
        DataType::Uint32 => TensorData::Uint32(c.uint_contents),
        DataType::Uint64 => TensorData::Uint64(c.uint64_contents),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents),
        DataType::Bytes => TensorData::Bytes(c.bytes_contents),
        DataType::Fp16 | DataType::Bf16 => {
            return Err(ProtocolError::NoTypedContents {
                tensor: tensor.to_string(),
                datatype,
            })
        }
    })
}

/// Checks that `raw` (raw_input_contents / raw_output_contents) is empty or has one entry per
/// tensor, and returns its entries in order.
pub(crate) fn raw_entries(
    raw: Vec<bytes::Bytes>,
    tensors: usize,
) -> Result<std::vec::IntoIter<bytes::Bytes>, ProtocolError> {
    if !raw.is_empty() && raw.len() != tensors {
        return Err(ProtocolError::RawCount {
            raw: raw.len(),
            inputs: tensors,
        });
    }
    Ok(raw.into_iter())
}

/// Whether typed contents carry no element.
fn contents_empty(c: &InferTensorContents) -> bool {
    c.bool_contents.is_empty()
        && c.int_contents.is_empty()
        && c.int64_contents.is_empty()
        && c.uint_contents.is_empty()
        && c.uint64_contents.is_empty()
        && c.fp32_contents.is_empty()
        && c.fp64_contents.is_empty()
        && c.bytes_contents.is_empty()
}

/// Builds one typed tensor from its raw bytes when there are some, else its typed `contents`.
pub(crate) fn tensor_from_grpc(
    name: String,
    datatype: &str,
    shape: Vec<i64>,
    raw: Option<bytes::Bytes>,
    contents: Option<InferTensorContents>,
) -> Result<Tensor, ProtocolError> {
    let datatype = DataType::parse_for(&name, datatype)?;
    let data = match (raw, contents) {
        (Some(_), Some(c)) if !contents_empty(&c) => {
            return Err(ProtocolError::RawAndContents(name))
        }
        (Some(bytes), _) => TensorData::from_wire(datatype, &bytes, &name)?,
        (None, Some(contents)) => data_from_contents(datatype, contents, &name)?,
        (None, None) => return Err(ProtocolError::MissingData(name)),
    };
    Tensor::new(name, shape, data)
}

/// Decodes a `ModelInferRequest` (typed `contents` or `raw_input_contents`) into a request.
pub fn request_from_grpc(req: ModelInferRequest) -> Result<InferRequest, ProtocolError> {
    let mut raw = raw_entries(req.raw_input_contents, req.inputs.len())?;
    let inputs = req
        .inputs
        .into_iter()
        .map(|i| tensor_from_grpc(i.name, &i.datatype, i.shape, raw.next(), i.contents))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InferRequest {
        id: (!req.id.is_empty()).then_some(req.id),
        parameters: params_from_grpc(req.parameters),
        inputs,
        outputs: req
            .outputs
            .into_iter()
            .map(|o| RequestedOutput {
                name: o.name,
                parameters: params_from_grpc(o.parameters),
            })
            .collect(),
    })
}

/// Encodes a response with every output in `raw_output_contents`, as Triton does.
pub fn response_to_grpc(resp: InferResponse) -> ModelInferResponse {
    let mut outputs = Vec::with_capacity(resp.outputs.len());
    let mut raw = Vec::with_capacity(resp.outputs.len());
    for t in resp.outputs {
        raw.push(bytes::Bytes::from(t.data.to_wire()));
        outputs.push(inference::model_infer_response::InferOutputTensor {
            datatype: t.datatype().as_str().to_string(),
            name: t.name,
            shape: t.shape,
            parameters: HashMap::new(),
            contents: None,
        });
    }
    ModelInferResponse {
        model_name: resp.model_name,
        model_version: resp.model_version,
        id: resp.id.unwrap_or_default(),
        parameters: params_to_grpc(&resp.parameters),
        outputs,
        raw_output_contents: raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inference::model_infer_request::InferInputTensor;

    fn input(
        name: &str,
        datatype: &str,
        shape: Vec<i64>,
        contents: Option<InferTensorContents>,
    ) -> InferInputTensor {
        InferInputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            parameters: HashMap::new(),
            contents,
        }
    }

    #[test]
    fn typed_and_raw_contents_decode() {
        let req = ModelInferRequest {
            inputs: vec![input(
                "a",
                "INT8",
                vec![2],
                Some(InferTensorContents {
                    int_contents: vec![1, -1],
                    ..Default::default()
                }),
            )],
            ..Default::default()
        };
        assert_eq!(
            request_from_grpc(req).expect("ok").inputs[0].data,
            TensorData::Int8(vec![1, -1])
        );
        let req = ModelInferRequest {
            inputs: vec![input("a", "FP32", vec![1], None)],
            raw_input_contents: vec![bytes::Bytes::from(2.5f32.to_le_bytes().to_vec())],
            ..Default::default()
        };
        assert_eq!(
            request_from_grpc(req).expect("ok").inputs[0].data,
            TensorData::Fp32(vec![2.5])
        );
    }

    #[test]
    fn raw_and_typed_contents_together_are_refused() {
        let req = ModelInferRequest {
            inputs: vec![input(
                "a",
                "FP32",
                vec![1],
                Some(InferTensorContents {
                    fp32_contents: vec![1.0],
                    ..Default::default()
                }),
            )],
            raw_input_contents: vec![bytes::Bytes::from(2.5f32.to_le_bytes().to_vec())],
            ..Default::default()
        };
        assert_eq!(
            request_from_grpc(req).unwrap_err().to_string(),
            "input 'a': both raw_input_contents and typed contents are set; send one of them"
        );
    }

    #[test]
    fn bad_contents_are_named() {
        let req = ModelInferRequest {
            inputs: vec![input(
                "a",
                "INT8",
                vec![1],
                Some(InferTensorContents {
                    int_contents: vec![300],
                    ..Default::default()
                }),
            )],
            ..Default::default()
        };
        assert_eq!(
            request_from_grpc(req).unwrap_err().to_string(),
            "input 'a': value 300 does not fit INT8"
        );
        let req = ModelInferRequest {
            inputs: vec![
                input("a", "FP32", vec![1], None),
                input("b", "FP32", vec![1], None),
            ],
            raw_input_contents: vec![bytes::Bytes::new()],
            ..Default::default()
        };
        assert!(matches!(
            request_from_grpc(req),
            Err(ProtocolError::RawCount { raw: 1, inputs: 2 })
        ));
    }

    #[test]
    fn parameters_round_trip() {
        let mut p = Parameters::new();
        p.insert("a".into(), ParamValue::Bool(true));
        p.insert("b".into(), ParamValue::Int(-3));
        p.insert("c".into(), ParamValue::String("x".into()));
        assert_eq!(params_from_grpc(params_to_grpc(&p)), p);
    }
}
