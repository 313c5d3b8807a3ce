//! One prepared request for the chosen transport, built from the model's metadata, and how to
//! send it and classify what comes back.

use crate::args::{InputData, LoadtestArgs, Transport};
use crate::record::classify_http;
use anyhow::{anyhow, Context};
use bytes::Bytes;
use osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::{ModelInferRequest, ModelMetadataRequest};
use osprey_protocol::rest::decode_request;
use osprey_protocol::tensor::element_count;
use osprey_protocol::{DataType, Tensor, TensorData};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// An input as the model's metadata describes it.
#[derive(Debug, Clone)]
pub struct InputMeta {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<i64>,
}

/// Prepared requests (sent round-robin) and the client that sends them.
#[derive(Clone)]
pub enum Target {
    Rest {
        client: reqwest::Client,
        url: String,
        /// Bodies with their `Inference-Header-Content-Length` (binary tensors).
        bodies: Arc<Vec<(Bytes, Option<usize>)>>,
        next: Arc<AtomicUsize>,
    },
    Grpc {
        /// Several HTTP/2 connections: one connection serialises its streams' frames.
        clients: Vec<GrpcInferenceServiceClient<Channel>>,
        requests: Arc<Vec<ModelInferRequest>>,
        next: Arc<AtomicUsize>,
    },
}

fn base(url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", url.trim_end_matches('/'))
    }
}

fn model_path(args: &LoadtestArgs) -> String {
    if args.model_version.is_empty() {
        format!("/v2/models/{}", args.model)
    } else {
        format!("/v2/models/{}/versions/{}", args.model, args.model_version)
    }
}

async fn rest_metadata(
    client: &reqwest::Client,
    args: &LoadtestArgs,
    url: &str,
) -> anyhow::Result<Vec<InputMeta>> {
    let v: serde_json::Value = client
        .get(format!("{}{}", base(url), model_path(args)))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    v["inputs"]
        .as_array()
        .ok_or_else(|| anyhow!("model metadata has no inputs: {v}"))?
        .iter()
        .map(|i| {
            Ok(InputMeta {
                name: i["name"].as_str().unwrap_or_default().to_string(),
                datatype: i["datatype"].as_str().unwrap_or_default().parse()?,
                shape: i["shape"]
                    .as_array()
                    .map(|s| s.iter().filter_map(|d| d.as_i64()).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// The concrete shape to send: a leading -1 becomes the batch size, `--shape name:d1,d2` gives
/// the other dimensions (perf_analyzer's spelling), remaining -1 become 1.
pub fn resolve_shape(
    meta: &InputMeta,
    batch: usize,
    overrides: &[String],
) -> anyhow::Result<Vec<i64>> {
    let batching = meta.shape.first() == Some(&-1);
    if let Some(spec) = overrides
        .iter()
        .find_map(|s| s.strip_prefix(&format!("{}:", meta.name)))
    {
        let dims: Vec<i64> = spec
            .split(',')
            .map(|d| {
                d.trim()
                    .parse::<i64>()
                    .map_err(|_| anyhow!("--shape {}: '{d}' is not a dimension", meta.name))
            })
            .collect::<anyhow::Result<_>>()?;
        if batching && dims.len() + 1 == meta.shape.len() {
            return Ok(std::iter::once(batch as i64).chain(dims).collect());
        }
        return Ok(dims);
    }
    Ok(meta
        .shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d >= 0 {
                d
            } else if i == 0 {
                batch as i64
            } else {
                1
            }
        })
        .collect())
}

/// Input values: zeros, or a fixed pseudo-random sequence (the same every run).
pub fn make_data(datatype: DataType, count: usize, kind: InputData) -> anyhow::Result<TensorData> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<f64> = (0..count)
        .map(|_| {
            if kind == InputData::Zeros {
                0.0
            } else {
                next()
            }
        })
        .collect();
    let scalars = values
        .iter()
        .map(|v| match datatype {
            DataType::Bool => osprey_protocol::json::JsonScalar::Bool(*v >= 0.5),
            DataType::Bytes => {
                osprey_protocol::json::JsonScalar::Str(format!("osprey {}", (v * 1000.0) as u32))
            }
            DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => {
                osprey_protocol::json::JsonScalar::F64(*v)
            }
            _ => osprey_protocol::json::JsonScalar::U64((v * 100.0) as u64),
        })
        .collect();
    Ok(TensorData::from_json(datatype, scalars, "input")?)
}

/// The input tensors to send: the requests of `--input-file` (a v2 JSON request or an array of
/// them), or one request generated from the metadata.
fn input_sets(args: &LoadtestArgs, metadata: &[InputMeta]) -> anyhow::Result<Vec<Vec<Tensor>>> {
    if let Some(path) = &args.input_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let requests = match value {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        return requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                decode_request(Bytes::from(r.to_string()), None)
                    .map(|req| req.inputs)
                    .map_err(|e| anyhow!("{} request {i}: {e}", path.display()))
            })
            .collect();
    }
    if metadata.is_empty() {
        return Err(anyhow!(
            "the model's metadata lists no inputs, so no request can be built from it; give --input-file"
        ));
    }
    let tensors = metadata
        .iter()
        .map(|meta| {
            let shape = resolve_shape(meta, args.batch_size, &args.shape)?;
            let count = element_count(&shape).ok_or_else(|| anyhow!("bad shape {shape:?}"))?;
            Ok(Tensor::new(
                meta.name.clone(),
                shape,
                make_data(meta.datatype, count, args.data)?,
            )?)
        })
        .collect::<anyhow::Result<Vec<Tensor>>>()?;
    Ok(vec![tensors])
}

/// A REST body for one set of inputs: JSON data, or binary tensors after the JSON header.
fn rest_body(inputs: &[Tensor], binary: bool) -> (Bytes, Option<usize>) {
    let mut tail = Vec::new();
    let tensors: Vec<serde_json::Value> = inputs
        .iter()
        .map(|t| {
            if binary {
                let before = tail.len();
                t.data.write_wire(&mut tail);
                json!({"name": t.name, "shape": t.shape, "datatype": t.datatype().as_str(),
                       "parameters": {"binary_data_size": tail.len() - before}})
            } else {
                json!({"name": t.name, "shape": t.shape, "datatype": t.datatype().as_str(), "data": t.data})
            }
        })
        .collect();
    let header =
        json!({"inputs": tensors, "parameters": {"binary_data_output": binary}}).to_string();
    let header_length = binary.then_some(header.len());
    let mut body = header.into_bytes();
    body.extend(tail);
    (Bytes::from(body), header_length)
}

fn grpc_request(args: &LoadtestArgs, inputs: &[Tensor]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: args.model.clone(),
        model_version: args.model_version.clone(),
        inputs: inputs
            .iter()
            .map(|t| InferInputTensor {
                name: t.name.clone(),
                datatype: t.datatype().as_str().to_string(),
                shape: t.shape.clone(),
                ..Default::default()
            })
            .collect(),
        raw_input_contents: inputs
            .iter()
            .map(|t| Bytes::from(t.data.to_wire()))
            .collect(),
        ..Default::default()
    }
}

impl Target {
    /// Reads the model's metadata and prepares the requests once.
    pub async fn connect(args: &LoadtestArgs) -> anyhow::Result<Target> {
        let timeout = args.timeout();
        match args.transport {
            Transport::RestJson | Transport::RestBinary => {
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_max_idle_per_host(usize::MAX)
                    .tcp_nodelay(true)
                    .build()?;
                let metadata = if args.input_file.is_some() {
                    Vec::new()
                } else {
                    rest_metadata(&client, args, &args.url)
                        .await
                        .context("reading model metadata")?
                };
                let binary = args.transport == Transport::RestBinary;
                let bodies = input_sets(args, &metadata)?
                    .iter()
                    .map(|set| rest_body(set, binary))
                    .collect();
                Ok(Target::Rest {
                    client,
                    url: format!("{}{}/infer", base(&args.url), model_path(args)),
                    bodies: Arc::new(bodies),
                    next: Default::default(),
                })
            }
            Transport::Grpc => {
                let mut clients = Vec::new();
                for _ in 0..args.grpc_connections.max(1) {
                    let channel = tonic::transport::Endpoint::from_shared(base(&args.url))?
                        .timeout(timeout)
                        .tcp_nodelay(true)
                        .connect()
                        .await
                        .context("connecting over gRPC")?;
                    clients.push(
                        GrpcInferenceServiceClient::new(channel)
                            .max_decoding_message_size(256 << 20)
                            .max_encoding_message_size(256 << 20),
                    );
                }
                let metadata = if args.input_file.is_some() {
                    Vec::new()
                } else {
                    let meta = clients[0]
                        .model_metadata(ModelMetadataRequest {
                            name: args.model.clone(),
                            version: args.model_version.clone(),
                        })
                        .await
                        .context("reading model metadata")?
                        .into_inner();
                    meta.inputs
                        .into_iter()
                        .map(|t| {
                            Ok(InputMeta {
                                name: t.name,
                                datatype: t.datatype.parse()?,
                                shape: t.shape,
                            })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?
                };
                let requests = input_sets(args, &metadata)?
                    .iter()
                    .map(|set| grpc_request(args, set))
                    .collect();
                Ok(Target::Grpc {
                    clients,
                    requests: Arc::new(requests),
                    next: Default::default(),
                })
            }
        }
    }

    /// Sends the next prepared request once; `Err` carries the error's kind (`http_503`,
    /// `grpc_unavailable`, `timeout`, `connect`, `transport`).
    pub async fn send(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Target::Rest {
                client,
                url,
                bodies,
                next,
            } => {
                let (body, header_length) =
                    &bodies[next.fetch_add(1, Ordering::Relaxed) % bodies.len()];
                let mut req = client.post(url).body(body.clone());
                req = match header_length {
                    Some(len) => req
                        .header("Inference-Header-Content-Length", *len)
                        .header("Content-Type", "application/octet-stream"),
                    // Some servers (KServe) refuse JSON without its content type.
                    None => req.header("Content-Type", "application/json"),
                };
                let resp = req.send().await.map_err(|e| reqwest_kind(&e))?;
                let status = resp.status().as_u16();
                // Read the whole answer, as a client must.
                resp.bytes().await.map_err(|e| reqwest_kind(&e))?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(classify_http(status))
                }
            }
            Target::Grpc {
                clients,
                requests,
                next,
            } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let mut client = clients[n % clients.len()].clone();
                let mut req = tonic::Request::new(requests[n % requests.len()].clone());
                req.set_timeout(timeout);
                match client.model_infer(req).await {
                    Ok(_) => Ok(()),
                    Err(status) => Err(grpc_kind(&status)),
                }
            }
        }
    }
}

fn reqwest_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

fn grpc_kind(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::DeadlineExceeded => "timeout".into(),
        tonic::Code::Unavailable if status.message().contains("connect") => "connect".into(),
        code => format!("grpc_{}", format!("{code:?}").to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_perf_analyzer_spelling() {
        let m = InputMeta {
            name: "input".into(),
            datatype: DataType::Fp32,
            shape: vec![-1, 64],
        };
        assert_eq!(resolve_shape(&m, 4, &[]).unwrap(), vec![4, 64]);
        let v = InputMeta {
            name: "text".into(),
            datatype: DataType::Bytes,
            shape: vec![-1, -1],
        };
        assert_eq!(
            resolve_shape(&v, 2, &["text:3".into()]).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            resolve_shape(&v, 2, &["text:5,1".into()]).unwrap(),
            vec![5, 1]
        );
        assert!(resolve_shape(&v, 2, &["text:x".into()]).is_err());
    }

    #[test]
    fn data_is_deterministic() {
        let a = make_data(DataType::Fp32, 8, InputData::Random).unwrap();
        assert_eq!(a, make_data(DataType::Fp32, 8, InputData::Random).unwrap());
        assert_eq!(
            make_data(DataType::Int32, 2, InputData::Zeros).unwrap(),
            TensorData::Int32(vec![0, 0])
        );
        assert_eq!(
            make_data(DataType::Bytes, 3, InputData::Random)
                .unwrap()
                .len(),
            3
        );
    }
}
