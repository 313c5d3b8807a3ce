//! The client side of the protocol: encoding requests for, and decoding responses from, another
//! v2 server (a remote predictor). The server side lives in [`crate::rest`] and [`crate::grpc`];
//! both directions share their tensor codecs.

use crate::error::ProtocolError;
use crate::grpc::inference::model_infer_request::{InferInputTensor, InferRequestedOutputTensor};
use crate::grpc::inference::{ModelInferRequest, ModelInferResponse};
use crate::grpc::{params_from_grpc, params_to_grpc, raw_entries, tensor_from_grpc};
use crate::parameters::{ParamValue, Parameters};
use crate::request::{InferRequest, InferResponse, RequestedOutput};
use crate::rest::{decode_tensors, encode_tensors, finish_body, parse_body};
use crate::rest::{RestTensorIn, RestTensorOut};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize)]
struct RestRequestOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Parameters::is_empty")]
    parameters: &'a Parameters,
    inputs: Vec<RestTensorOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<RestRequestedOutputOut<'a>>,
}

#[derive(Serialize)]
struct RestRequestedOutputOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Parameters::is_empty")]
    parameters: &'a Parameters,
}

#[derive(Deserialize)]
struct RestResponseIn {
    #[serde(default)]
    model_name: String,
    #[serde(default)]
    model_version: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    #[serde(default)]
    outputs: Vec<RestTensorIn>,
}

/// Encodes a REST inference body. With `binary`, every input travels as binary after the JSON
/// header and the outputs are asked for in binary too (`binary_data_output`); the second value is
/// then the `Inference-Header-Content-Length` to send. Without, tensors are JSON `data` and the
/// request's own parameters decide how outputs come back.
pub fn encode_rest_request(
    req: &InferRequest,
    binary: bool,
) -> Result<(Bytes, Option<usize>), ProtocolError> {
    let mut parameters = req.parameters.clone();
    if binary {
        parameters.insert("binary_data_output".into(), ParamValue::Bool(true));
    }
    let mut tail = Vec::new();
    let header = RestRequestOut {
        id: req.id.as_deref(),
        parameters: &parameters,
        inputs: encode_tensors(&req.inputs, |_| binary, &mut tail),
        outputs: req
            .outputs
            .iter()
            .map(|o| RestRequestedOutputOut {
                name: &o.name,
                parameters: &o.parameters,
            })
            .collect(),
    };
    let (body, header_length) = finish_body(&header, &tail)?;
    Ok((Bytes::from(body), header_length))
}

/// Decodes a REST inference response: outputs as JSON `data` or, with `header_length` (the
/// response's `Inference-Header-Content-Length`), binary after the JSON header.
pub fn decode_rest_response(
    body: Bytes,
    header_length: Option<usize>,
) -> Result<InferResponse, ProtocolError> {
    let (resp, binary): (RestResponseIn, Bytes) = parse_body(body, header_length)?;
    Ok(InferResponse {
        model_name: resp.model_name,
        model_version: resp.model_version,
        id: resp.id,
        parameters: resp.parameters,
        outputs: decode_tensors(resp.outputs, binary)?,
    })
}

/// Builds a `ModelInferRequest` for `model` (and `version`; empty lets the server choose) with
/// every input in `raw_input_contents`.
pub fn request_to_grpc(req: &InferRequest, model: &str, version: &str) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_string(),
        model_version: version.to_string(),
        id: req.id.clone().unwrap_or_default(),
        parameters: params_to_grpc(&req.parameters),
        inputs: req
            .inputs
            .iter()
            .map(|t| InferInputTensor {
                name: t.name.clone(),
                datatype: t.datatype().as_str().to_string(),
                shape: t.shape.clone(),
                parameters: HashMap::new(),
                contents: None,
            })
            .collect(),
        outputs: req
            .outputs
            .iter()
            .map(|o: &RequestedOutput| InferRequestedOutputTensor {
                name: o.name.clone(),
                parameters: params_to_grpc(&o.parameters),
            })
            .collect(),
        raw_input_contents: req
            .inputs
            .iter()
            .map(|t| Bytes::from(t.data.to_wire()))
            .collect(),
    }
}

/// Decodes a `ModelInferResponse` whose outputs are in `raw_output_contents` or typed `contents`.
pub fn response_from_grpc(resp: ModelInferResponse) -> Result<InferResponse, ProtocolError> {
    let mut raw = raw_entries(resp.raw_output_contents, resp.outputs.len())?;
    let outputs = resp
        .outputs
        .into_iter()
        .map(|o| tensor_from_grpc(o.name, &o.datatype, o.shape, raw.next(), o.contents))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InferResponse {
        model_name: resp.model_name,
        model_version: resp.model_version,
        id: (!resp.id.is_empty()).then_some(resp.id),
        parameters: params_from_grpc(resp.parameters),
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::inference::model_infer_response::InferOutputTensor;
    use crate::grpc::inference::InferTensorContents;
    use crate::grpc::{request_from_grpc, response_to_grpc};
    use crate::rest::{decode_request, encode_response, wants_binary};
    use crate::tensor::{Tensor, TensorData};

    fn tensors() -> Vec<Tensor> {
        vec![
            Tensor::new(
                "f",
                vec![2, 2],
                TensorData::Fp32(vec![0.5, -1.0, 3.25, 0.0]),
            )
            .expect("tensor"),
            Tensor::new("i", vec![3], TensorData::Int64(vec![i64::MIN, 0, i64::MAX]))
                .expect("tensor"),
            Tensor::new(
                "s",
                vec![1, 2],
                TensorData::Bytes(vec![Bytes::from_static(b"hello"), Bytes::new()]),
            )
            .expect("tensor"),
        ]
    }

    fn request() -> InferRequest {
        let mut parameters = Parameters::new();
        parameters.insert("priority".into(), ParamValue::Int(2));
        InferRequest {
            id: Some("r1".into()),
            parameters,
            inputs: tensors(),
            outputs: vec![RequestedOutput {
                name: "f".into(),
                parameters: Parameters::new(),
            }],
        }
    }

    fn response() -> InferResponse {
        InferResponse {
            model_name: "m".into(),
            model_version: "3".into(),
            id: Some("r1".into()),
            parameters: Parameters::new(),
            outputs: tensors(),
        }
    }

    #[test]
    fn rest_request_round_trips_json_and_binary() {
        for binary in [false, true] {
            let req = request();
            let (body, header_length) = encode_rest_request(&req, binary).expect("encodes");
            assert_eq!(header_length.is_some(), binary);
            let back = decode_request(body, header_length).expect("decodes");
            assert_eq!(back.inputs, req.inputs, "binary={binary}");
            assert_eq!(back.outputs, req.outputs);
            assert_eq!(back.id, req.id);
            assert_eq!(back.parameters.get("priority"), Some(&ParamValue::Int(2)));
            assert_eq!(wants_binary(&back, "f"), binary);
        }
    }

    #[test]
    fn rest_response_round_trips_json_and_binary() {
        for binary in [false, true] {
            let resp = response();
            let enc = encode_response(&resp, |_| binary).expect("encodes");
            assert_eq!(enc.header_length.is_some(), binary);
            let back =
                decode_rest_response(Bytes::from(enc.body), enc.header_length).expect("decodes");
            assert_eq!(back, resp, "binary={binary}");
        }
        // Mixed: one output binary, the others JSON.
        let resp = response();
        let enc = encode_response(&resp, |n| n == "s").expect("encodes");
        let back = decode_rest_response(Bytes::from(enc.body), enc.header_length).expect("mixed");
        assert_eq!(back, resp);
    }

    #[test]
    fn rest_response_errors_are_named() {
        let e = decode_rest_response(Bytes::from_static(b"{\"outputs\":["), None).unwrap_err();
        assert!(matches!(e, ProtocolError::MalformedBody(_)), "{e}");
        let json = br#"{"outputs":[{"name":"o","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#;
        let mut body = json.to_vec();
        body.extend_from_slice(&[0; 4]);
        let e = decode_rest_response(Bytes::from(body), Some(json.len())).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::BinaryTruncated {
                tensor: "o".into(),
                size: 8,
                left: 4
            }
        );
    }

    #[test]
    fn grpc_request_round_trips() {
        let req = request();
        let msg = request_to_grpc(&req, "remote", "2");
        assert_eq!(msg.model_name, "remote");
        assert_eq!(msg.model_version, "2");
        assert_eq!(msg.raw_input_contents.len(), req.inputs.len());
        assert_eq!(request_from_grpc(msg).expect("decodes"), req);
    }

    #[test]
    fn grpc_response_round_trips_raw_and_typed() {
        let resp = response();
        let back = response_from_grpc(response_to_grpc(resp.clone())).expect("decodes");
        assert_eq!(back, resp);
        // KServe's Python server answers with typed contents instead of raw bytes.
        let typed = ModelInferResponse {
            model_name: "m".into(),
            outputs: vec![InferOutputTensor {
                name: "i".into(),
                datatype: "INT64".into(),
                shape: vec![2],
                parameters: HashMap::new(),
                contents: Some(InferTensorContents {
                    int64_contents: vec![4, -5],
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let back = response_from_grpc(typed).expect("decodes");
        assert_eq!(back.outputs[0].data, TensorData::Int64(vec![4, -5]));
        assert_eq!(back.id, None);
    }

    #[test]
    fn grpc_response_with_wrong_raw_count_is_refused() {
        let mut msg = response_to_grpc(response());
        msg.raw_output_contents.pop();
        assert!(matches!(
            response_from_grpc(msg),
            Err(ProtocolError::RawCount { raw: 2, inputs: 3 })
        ));
    }
}
