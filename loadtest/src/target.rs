//! One prepared request for the chosen transport, built from the model's metadata, and how to
//! send it and classify what comes back.

use crate::args::{LoadtestArgs, Transport};
use crate::inputs::{input_sets, InputMeta};
use crate::record::{classify_http, Failure};
use anyhow::{anyhow, Context};
use bytes::Bytes;
use osprey_protocol::client::{encode_rest_request, request_to_grpc};
use osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use osprey_protocol::grpc::inference::{ModelInferRequest, ModelMetadataRequest};
use osprey_protocol::{InferRequest, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

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

/// `host:port` or a URL, as a URL without a trailing slash.
pub fn base(url: &str) -> String {
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
    let at = format!("{}{}", base(url), model_path(args));
    let resp = client
        .get(&at)
        .send()
        .await
        .with_context(|| format!("GET {at}"))?;
    let status = resp.status();
    let text = resp.text().await.with_context(|| format!("GET {at}"))?;
    if !status.is_success() {
        return Err(anyhow!(
            "GET {at}: the server answered {status}: {}",
            text.trim()
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("GET {at}: the answer is not JSON"))?;
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

/// A request carrying one set of inputs.
fn request(inputs: &[Tensor]) -> InferRequest {
    InferRequest {
        inputs: inputs.to_vec(),
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
                    .map(|set| encode_rest_request(&request(set), binary))
                    .collect::<Result<Vec<_>, _>>()?;
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
                    .map(|set| request_to_grpc(&request(set), &args.model, &args.model_version))
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
    /// `grpc_unavailable`, `timeout`, `connect`, `transport`) and message.
    pub async fn send(&self, timeout: Duration) -> Result<(), Failure> {
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
                let resp = req.send().await.map_err(|e| reqwest_failure(&e))?;
                let status = resp.status().as_u16();
                // Read the whole answer, as a client must.
                let body = resp.bytes().await.map_err(|e| reqwest_failure(&e))?;
                if status == 200 {
                    Ok(())
                } else {
                    Err(Failure::new(
                        classify_http(status),
                        String::from_utf8_lossy(&body),
                    ))
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
                    Err(status) => Err(Failure::new(grpc_kind(&status), status.message())),
                }
            }
        }
    }
}

fn reqwest_failure(e: &reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    // The source chain says why (connection refused, reset, ...).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    Failure::new(kind, message)
}

fn grpc_kind(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::DeadlineExceeded => "timeout".into(),
        tonic::Code::Unavailable if status.message().contains("connect") => "connect".into(),
        code => format!("grpc_{}", format!("{code:?}").to_lowercase()),
    }
}
