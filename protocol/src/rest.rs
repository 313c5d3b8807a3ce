//! REST (JSON) bodies, with Triton's binary tensor extension in both directions.
//!
//! A body is a JSON header optionally followed by raw tensor bytes; the header's length comes from
//! the `Inference-Header-Content-Length` HTTP header ([`HEADER_LENGTH`]).

use crate::datatype::DataType;
use crate::error::ProtocolError;
use crate::json::JsonTensorData;
use crate::parameters::{ParamValue, Parameters};
use crate::request::{InferRequest, InferResponse, RequestedOutput};
use crate::signature::TensorSpec;
use crate::tensor::{element_count, Tensor, TensorData};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The HTTP header that carries the JSON part's length in a binary body.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

#[derive(Deserialize)]
struct RestRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    inputs: Vec<RestTensorIn>,
    #[serde(default)]
    outputs: Vec<RestRequestedOutput>,
}

/// One tensor of a REST body as parsed: a request's input or a response's output.
#[derive(Deserialize)]
pub(crate) struct RestTensorIn {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    data: Option<JsonTensorData>,
}

#[derive(Deserialize)]
struct RestRequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// Parses the JSON part of a body (the first `header_length` bytes, else all of it) and returns
/// it with the binary tensor bytes that follow.
pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Bytes,
    header_length: Option<usize>,
) -> Result<(T, Bytes), ProtocolError> {
    let json_len = header_length.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(ProtocolError::HeaderLength {
            header: json_len,
            body: body.len(),
        });
    }
    let parsed = serde_json::from_slice(&body[..json_len])
        .map_err(|e| ProtocolError::MalformedBody(e.to_string()))?;
    Ok((parsed, body.slice(json_len..)))
}

/// Builds typed tensors in order, each from its JSON `data` or from the next `binary_data_size`
/// bytes of `binary`; bytes no tensor claims are an error.
pub(crate) fn decode_tensors(
    tensors: Vec<RestTensorIn>,
    mut binary: Bytes,
) -> Result<Vec<Tensor>, ProtocolError> {
    let mut out = Vec::with_capacity(tensors.len());
    for t in tensors {
        let datatype = DataType::parse_for(&t.name, &t.datatype)?;
        let data = match (t.parameters.get("binary_data_size"), t.data) {
            (Some(_), Some(_)) => return Err(ProtocolError::DataTwice(t.name)),
            (Some(size), None) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| ProtocolError::BadBinarySize {
                        tensor: t.name.clone(),
                    })?;
                if size > binary.len() {
                    return Err(ProtocolError::BinaryTruncated {
                        tensor: t.name,
                        size,
                        left: binary.len(),
                    });
                }
                let raw = binary.split_to(size);
                TensorData::from_wire(datatype, &raw, &t.name)?
            }
            (None, Some(json)) => {
                json.grouping.check(&t.name, &t.shape)?;
                TensorData::from_json(datatype, json.data, &t.name)?
            }
            (None, None) => return Err(ProtocolError::MissingData(t.name)),
        };
        out.push(Tensor::new(t.name, t.shape, data)?);
    }
    if !binary.is_empty() {
        return Err(ProtocolError::BinaryTrailing(binary.len()));
    }
    Ok(out)
}

/// Decodes a REST inference body. `header_length` is the `Inference-Header-Content-Length` value
/// when the client sent one (binary tensors follow the JSON).
pub fn decode_request(
    body: Bytes,
    header_length: Option<usize>,
) -> Result<InferRequest, ProtocolError> {
    let (req, binary): (RestRequest, Bytes) = parse_body(body, header_length)?;
    Ok(InferRequest {
        id: req.id,
        parameters: req.parameters,
        inputs: decode_tensors(req.inputs, binary)?,
        outputs: req
            .outputs
            .into_iter()
            .map(|o| RequestedOutput {
                name: o.name,
                parameters: o.parameters,
            })
            .collect(),
    })
}

/// Decodes a raw binary request (`Inference-Header-Content-Length: 0`): the whole body is the
/// one input's tensor, batch 1; every output comes back binary.
pub fn decode_raw_request(
    body: Bytes,
    input: &TensorSpec,
    batching: bool,
) -> Result<InferRequest, ProtocolError> {
    let data = TensorData::from_wire(input.datatype, &body, &input.name)?;
    let mut shape = input.shape.clone();
    if batching {
        if let Some(first) = shape.first_mut() {
            *first = 1;
        }
    }
    // One remaining variable dimension can be recovered from the element count.
    let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] < 0).collect();
    if let [i] = unknown[..] {
        shape[i] = 1;
        let rest = element_count(&shape).unwrap_or(1).max(1);
        shape[i] = i64::try_from(data.len() / rest).unwrap_or(i64::MAX);
    }
    let tensor = Tensor::new(input.name.clone(), shape, data)?;
    let mut parameters = Parameters::new();
    parameters.insert("binary_data_output".into(), ParamValue::Bool(true));
    Ok(InferRequest {
        id: None,
        parameters,
        inputs: vec![tensor],
        outputs: Vec::new(),
    })
}

#[derive(Serialize)]
struct RestResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Parameters::is_empty")]
    parameters: &'a Parameters,
    outputs: Vec<RestTensorOut<'a>>,
}

/// One tensor of a REST body as written: a response's output or a request's input.
#[derive(Serialize)]
pub(crate) struct RestTensorOut<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// Describes tensors for a JSON header: JSON `data`, or for those `binary(name)` picks, a
/// `binary_data_size` with the wire bytes appended to `tail`.
pub(crate) fn encode_tensors<'a>(
    tensors: &'a [Tensor],
    binary: impl Fn(&str) -> bool,
    tail: &mut Vec<u8>,
) -> Vec<RestTensorOut<'a>> {
    tensors
        .iter()
        .map(|t| {
            let (parameters, data) = if binary(&t.name) {
                let before = tail.len();
                t.data.write_wire(tail);
                (
                    Some(BinarySize {
                        binary_data_size: tail.len() - before,
                    }),
                    None,
                )
            } else {
                (None, Some(&t.data))
            };
            RestTensorOut {
                name: &t.name,
                datatype: t.datatype().as_str(),
                shape: &t.shape,
                parameters,
                data,
            }
        })
        .collect()
}

/// A REST body: the JSON header followed by `tail`, with the header's length when there is a
/// tail (the `Inference-Header-Content-Length` value).
pub(crate) fn finish_body(
    header: &impl Serialize,
    tail: &[u8],
) -> Result<(Vec<u8>, Option<usize>), ProtocolError> {
    let mut body =
        serde_json::to_vec(header).map_err(|e| ProtocolError::MalformedBody(e.to_string()))?;
    if tail.is_empty() {
        return Ok((body, None));
    }
    let header_length = body.len();
    body.extend_from_slice(tail);
    Ok((body, Some(header_length)))
}

/// An encoded REST response: the body and, when binary tensors follow the JSON, its length for
/// the `Inference-Header-Content-Length` header.
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub header_length: Option<usize>,
}

/// Whether an output goes back as binary: the output's own `binary_data`, else the request-wide
/// `binary_data_output`, else JSON.
pub fn wants_binary(request: &InferRequest, output: &str) -> bool {
    request
        .outputs
        .iter()
        .find(|o| o.name == output)
        .and_then(RequestedOutput::binary_data)
        .or_else(|| {
            request
                .parameters
                .get("binary_data_output")
                .and_then(ParamValue::as_bool)
        })
        .unwrap_or(false)
}

/// Encodes a response; `binary(name)` says which outputs travel as binary.
pub fn encode_response(
    resp: &InferResponse,
    binary: impl Fn(&str) -> bool,
) -> Result<EncodedResponse, ProtocolError> {
    let mut tail = Vec::new();
    let outputs = encode_tensors(&resp.outputs, binary, &mut tail);
    let json = RestResponse {
        model_name: &resp.model_name,
        model_version: &resp.model_version,
        id: resp.id.as_deref(),
        parameters: &resp.parameters,
        outputs,
    };
    let (body, header_length) = finish_body(&json, &tail)?;
    Ok(EncodedResponse {
        body,
        header_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_binary_inputs_in_order() {
        let json = br#"{"id":"7","inputs":[
            {"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}},
            {"name":"b","shape":[1,2],"datatype":"FP32","data":[[1.5,2]]},
            {"name":"c","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":7}}],
            "outputs":[{"name":"o","parameters":{"binary_data":true}}]}"#;
        let mut body = json.to_vec();
        body.extend_from_slice(&1i32.to_le_bytes());
        body.extend_from_slice(&(-2i32).to_le_bytes());
        body.extend_from_slice(&3u32.to_le_bytes());
        body.extend_from_slice(b"abc");
        let req = decode_request(Bytes::from(body), Some(json.len())).expect("decodes");
        assert_eq!(req.id.as_deref(), Some("7"));
        assert_eq!(req.inputs[0].data, TensorData::Int32(vec![1, -2]));
        assert_eq!(req.inputs[1].data, TensorData::Fp32(vec![1.5, 2.0]));
        assert_eq!(
            req.inputs[2].data,
            TensorData::Bytes(vec![Bytes::from_static(b"abc")])
        );
        assert!(wants_binary(&req, "o"));
        assert!(!wants_binary(&req, "p"));
    }

    #[test]
    fn rejects_bad_bodies_with_named_errors() {
        let e = decode_request(Bytes::from_static(b"{\"inputs\":[}"), None).unwrap_err();
        assert!(matches!(e, ProtocolError::MalformedBody(_)));
        let e = decode_request(Bytes::from_static(b"{}"), Some(10)).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::HeaderLength {
                header: 10,
                body: 2
            }
        );
        let json = br#"{"inputs":[{"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}]}"#;
        let mut body = json.to_vec();
        body.extend_from_slice(&[0; 5]);
        let e = decode_request(Bytes::from(body), Some(json.len())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input 'a': binary_data_size 8 runs past the end of the body (5 bytes left)"
        );
        let e = decode_request(
            Bytes::from_static(
                br#"{"inputs":[{"name":"a","shape":[1],"datatype":"F32","data":[1]}]}"#,
            ),
            None,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "input 'a': unknown datatype 'F32'");
        let e = decode_request(
            Bytes::from_static(br#"{"inputs":[{"name":"a","shape":[1],"datatype":"FP32"}]}"#),
            None,
        )
        .unwrap_err();
        assert!(matches!(e, ProtocolError::MissingData(_)));
    }

    #[test]
    fn encodes_binary_outputs_after_the_json() {
        let resp = InferResponse {
            model_name: "m".into(),
            model_version: "1".into(),
            outputs: vec![
                Tensor::new("x", vec![2], TensorData::Fp32(vec![1.0, 2.0])).expect("tensor"),
                Tensor::new("y", vec![1], TensorData::Int64(vec![5])).expect("tensor"),
            ],
            ..Default::default()
        };
        let enc = encode_response(&resp, |n| n == "x").expect("encodes");
        let len = enc.header_length.expect("binary");
        let v: serde_json::Value = serde_json::from_slice(&enc.body[..len]).expect("json");
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["outputs"][1]["data"], serde_json::json!([5]));
        assert!(v["outputs"][1].get("parameters").is_none());
        assert_eq!(&enc.body[len..], &[0, 0, 128, 63, 0, 0, 0, 64]);
    }

    #[test]
    fn raw_request_fills_batch_and_variable_dims() {
        let spec = TensorSpec {
            name: "in".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, -1],
            optional: false,
        };
        let body: Vec<u8> = [1.0f32, 2.0, 3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let req = decode_raw_request(Bytes::from(body), &spec, true).expect("decodes");
        assert_eq!(req.inputs[0].shape, vec![1, 3]);
    }
}
