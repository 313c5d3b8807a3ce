//! A client for a predictor that runs in another v2 server (KServe's split transformer /
//! predictor deployment): REST with binary tensors (`http://`) or gRPC (`grpc://`), a timeout per
//! attempt, and bounded retries with exponential backoff while the predictor cannot be reached.
//!
//! Only connection failures, timeouts and 503 / UNAVAILABLE are retried. A 4xx (INVALID_ARGUMENT
//! and the like) is the request's fault and comes back at once as [`ServerError::BadRequest`];
//! any other error answer is [`ServerError::Internal`]; when no attempt gets through the error is
//! [`ServerError::PredictorUnavailable`].

use crate::error::ServerError;
use bytes::Bytes;
use osprey_protocol::client::{
    decode_rest_response, encode_rest_request, request_to_grpc, response_from_grpc,
};
use osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use osprey_protocol::grpc::inference::{ModelInferRequest, RemotePredictor};
use osprey_protocol::rest::HEADER_LENGTH;
use osprey_protocol::Tensor;
use osprey_protocol::{InferRequest, InferResponse, Parameters, ProtocolError, RequestedOutput};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Per-attempt timeout when the configuration gives none.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Further attempts when the configuration gives none.
const DEFAULT_RETRIES: u32 = 2;
/// Wait before the first retry when the configuration gives none.
const DEFAULT_BACKOFF_MS: u64 = 50;
/// The largest gRPC response accepted (tonic's default, 4 MiB, is too small for tensors).
const MAX_GRPC_MESSAGE: usize = 1 << 30;
/// How much of a non-JSON error body is quoted in messages.
const MAX_QUOTED_BODY: usize = 512;

/// A remote predictor: where it is, which model there, and how hard to try. A handle: cloning
/// shares the connection.
#[derive(Clone)]
pub struct RemoteClient(Arc<Remote>);

/// What a [`RemoteClient`] shares between its clones.
struct Remote {
    url: String,
    model: String,
    version: String,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    transport: Transport,
}

/// The connection to the predictor. Both kinds connect on first use, so that a predictor that is
/// down while the model loads only fails requests.
enum Transport {
    Rest {
        client: reqwest::Client,
        /// `{url}/v2/models/{model}[/versions/{version}]/infer`.
        infer_url: String,
    },
    Grpc(GrpcInferenceServiceClient<Channel>),
}

/// A request encoded once for every attempt.
enum Prepared {
    Rest {
        body: Bytes,
        header_length: Option<usize>,
    },
    Grpc(ModelInferRequest),
}

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt: the predictor could not be reached or said it is unavailable.
    Retry(String),
    /// Final: the predictor answered with an error, or its answer cannot be used.
    Fatal(ServerError),
}

impl RemoteClient {
    /// Builds the client from a model's `RemotePredictor` configuration; `default_model` is the
    /// model name used there when the configuration names none. Never connects, and needs a
    /// Tokio runtime for gRPC (the channel's worker task).
    pub fn new(cfg: &RemotePredictor, default_model: &str) -> Result<RemoteClient, String> {
        let raw = cfg.url.trim();
        // Trailing slashes go, but not those of the scheme.
        let url = match raw.find("://") {
            Some(i) => format!("{}{}", &raw[..i + 3], raw[i + 3..].trim_end_matches('/')),
            None => raw.to_string(),
        };
        let model = if cfg.model.is_empty() {
            default_model.to_string()
        } else {
            cfg.model.clone()
        };
        let transport = if let Some(rest) = url.strip_prefix("grpc://") {
            grpc_transport(&url, rest, cfg)?
        } else if url.starts_with("http://") {
            rest_transport(&url, &model, &cfg.version)?
        } else if url.starts_with("https://") {
            return Err(format!(
                "url '{url}': https is not supported (this build has no TLS); use http:// or grpc://"
            ));
        } else {
            return Err(format!(
                "url '{url}': must start with http:// (REST) or grpc:// (gRPC)"
            ));
        };
        Ok(RemoteClient(Arc::new(Remote {
            url,
            model,
            version: cfg.version.clone(),
            timeout: Duration::from_millis(or_default(cfg.timeout_ms, DEFAULT_TIMEOUT_MS)),
            retries: if cfg.retries == 0 {
                DEFAULT_RETRIES
            } else {
                cfg.retries
            },
            backoff: Duration::from_millis(or_default(cfg.retry_backoff_ms, DEFAULT_BACKOFF_MS)),
            transport,
        })))
    }

    /// The predictor's url and model, for logs.
    pub fn describe(&self) -> String {
        if self.0.version.is_empty() {
            format!("{} model '{}'", self.0.url, self.0.model)
        } else {
            format!(
                "{} model '{}' version '{}'",
                self.0.url, self.0.model, self.0.version
            )
        }
    }

    /// Runs the predictor on `inputs` and returns its outputs: those named in `outputs`, or
    /// every output when it is empty. `parameters` travel with the request.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        outputs: &[crate::infer::Wanted],
        parameters: &Parameters,
    ) -> Result<Vec<Tensor>, ServerError> {
        let request = InferRequest {
            id: None,
            parameters: parameters.clone(),
            inputs,
            outputs: outputs
                .iter()
                .map(|o| RequestedOutput {
                    name: o.name.clone(),
                    parameters: Parameters::new(),
                })
                .collect(),
        };
        let prepared = self.prepare(&request)?;
        let attempts = self.0.retries.saturating_add(1);
        let mut backoff = self.0.backoff;
        let mut reason = String::new();
        for attempt in 1..=attempts {
            match tokio::time::timeout(self.0.timeout, self.attempt(&prepared)).await {
                Ok(Ok(resp)) => return Ok(resp.outputs),
                Ok(Err(Failure::Fatal(e))) => return Err(e),
                Ok(Err(Failure::Retry(why))) => reason = why,
                Err(_) => reason = format!("no answer within {} ms", self.0.timeout.as_millis()),
            }
            if attempt < attempts {
                tracing::debug!(predictor = %self.describe(), attempt, %reason, "retrying");
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(ServerError::PredictorUnavailable {
            url: self.0.url.clone(),
            attempts,
            reason,
        })
    }

    /// Encodes the request for the transport, once.
    fn prepare(&self, request: &InferRequest) -> Result<Prepared, ServerError> {
        Ok(match &self.0.transport {
            Transport::Rest { .. } => {
                let (body, header_length) = encode_rest_request(request, true)
                    .map_err(|e| ServerError::Internal(format!("encoding a request: {e}")))?;
                Prepared::Rest {
                    body,
                    header_length,
                }
            }
            Transport::Grpc(_) => {
                Prepared::Grpc(request_to_grpc(request, &self.0.model, &self.0.version))
            }
        })
    }

    /// One attempt, without its timeout.
    async fn attempt(&self, prepared: &Prepared) -> Result<InferResponse, Failure> {
        match (&self.0.transport, prepared) {
            (
                Transport::Rest { client, infer_url },
                Prepared::Rest {
                    body,
                    header_length,
                },
            ) => {
                self.rest_attempt(client, infer_url, body, *header_length)
                    .await
            }
            (Transport::Grpc(client), Prepared::Grpc(message)) => {
                self.grpc_attempt(client, message).await
            }
            _ => Err(Failure::Fatal(ServerError::Internal(
                "request prepared for the other transport".into(),
            ))),
        }
    }

    async fn rest_attempt(
        &self,
        client: &reqwest::Client,
        infer_url: &str,
        body: &Bytes,
        header_length: Option<usize>,
    ) -> Result<InferResponse, Failure> {
        let request = client.post(infer_url).body(body.clone());
        let request = match header_length {
            Some(len) => request
                .header(HEADER_LENGTH, len)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream"),
            None => request.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        let resp = request.send().await.map_err(|e| self.reqwest_failure(&e))?;
        let status = resp.status();
        let header_length =
            match resp.headers().get(HEADER_LENGTH) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .ok_or_else(|| {
                            Failure::Fatal(self.bad_answer(format!(
                                "{HEADER_LENGTH} header {v:?} is not a length"
                            )))
                        })?,
                ),
            };
        let body = resp.bytes().await.map_err(|e| self.reqwest_failure(&e))?;
        if status.is_success() {
            return decode_rest_response(body, header_length).map_err(|e| self.undecodable(e));
        }
        let message = error_message(&body);
        Err(if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            Failure::Retry(format!("HTTP 503: {message}"))
        } else if status.is_client_error() {
            Failure::Fatal(self.rejected(&message))
        } else {
            Failure::Fatal(self.bad_answer(format!("HTTP {}: {message}", status.as_u16())))
        })
    }

    async fn grpc_attempt(
        &self,
        client: &GrpcInferenceServiceClient<Channel>,
        message: &ModelInferRequest,
    ) -> Result<InferResponse, Failure> {
        let mut request = tonic::Request::new(message.clone());
        request.set_timeout(self.0.timeout);
        match client.clone().model_infer(request).await {
            Ok(resp) => response_from_grpc(resp.into_inner()).map_err(|e| self.undecodable(e)),
            Err(status) => Err(self.grpc_failure(&status)),
        }
    }

    /// Transport errors are retried; a request that cannot even be built is not.
    fn reqwest_failure(&self, e: &reqwest::Error) -> Failure {
        if e.is_builder() {
            Failure::Fatal(ServerError::Internal(format!(
                "building a request for remote predictor {}: {}",
                self.describe(),
                error_chain(e)
            )))
        } else {
            Failure::Retry(error_chain(e))
        }
    }

    /// UNAVAILABLE and DEADLINE_EXCEEDED are retried; codes that blame the request are the
    /// client's fault; the rest are internal errors.
    fn grpc_failure(&self, status: &tonic::Status) -> Failure {
        use tonic::Code;
        let mut message = format!("{:?}: {}", status.code(), status.message());
        if let Some(source) = std::error::Error::source(status) {
            message = format!("{message}: {}", error_chain(source));
        }
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => Failure::Retry(message),
            Code::InvalidArgument
            | Code::NotFound
            | Code::OutOfRange
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::PermissionDenied
            | Code::Unauthenticated => Failure::Fatal(self.rejected(status.message())),
            _ => Failure::Fatal(self.bad_answer(message)),
        }
    }

    /// The predictor refused the request: the client's fault, with the predictor's reason.
    fn rejected(&self, message: &str) -> ServerError {
        ServerError::BadRequest(format!("remote predictor {}: {message}", self.describe()))
    }

    /// The predictor answered with an error of its own.
    fn bad_answer(&self, message: String) -> ServerError {
        ServerError::Internal(format!("remote predictor {}: {message}", self.describe()))
    }

    fn undecodable(&self, e: ProtocolError) -> Failure {
        Failure::Fatal(self.bad_answer(format!("undecodable response: {e}")))
    }
}

fn or_default(value: u64, default: u64) -> u64 {
    if value == 0 {
        default
    } else {
        value
    }
}

/// A REST transport: the predictor's infer endpoint, checked to be a valid URL.
fn rest_transport(url: &str, model: &str, version: &str) -> Result<Transport, String> {
    let infer_url = if version.is_empty() {
        format!("{url}/v2/models/{model}/infer")
    } else {
        format!("{url}/v2/models/{model}/versions/{version}/infer")
    };
    let parsed = reqwest::Url::parse(&infer_url).map_err(|e| format!("url '{url}': {e}"))?;
    if parsed.host_str().unwrap_or_default().is_empty() {
        return Err(format!("url '{url}': no host"));
    }
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("url '{url}': cannot build an HTTP client: {e}"))?;
    Ok(Transport::Rest {
        client,
        infer_url: parsed.to_string(),
    })
}

/// A gRPC transport to `host:port` (the url after `grpc://`), connected lazily.
fn grpc_transport(url: &str, authority: &str, cfg: &RemotePredictor) -> Result<Transport, String> {
    if authority.is_empty() || authority.contains('/') {
        return Err(format!("url '{url}': expected grpc://host:port"));
    }
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("url '{url}': {}", error_chain(&e)))?
        .connect_timeout(Duration::from_millis(or_default(
            cfg.timeout_ms,
            DEFAULT_TIMEOUT_MS,
        )))
        .tcp_nodelay(true);
    // The channel's worker is a Tokio task: without a runtime, connect_lazy would panic.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(format!(
            "url '{url}': a gRPC predictor client must be created inside the Tokio runtime"
        ));
    }
    Ok(Transport::Grpc(
        GrpcInferenceServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(MAX_GRPC_MESSAGE)
            .max_encoding_message_size(MAX_GRPC_MESSAGE),
    ))
}

/// An error and its sources, `outer: inner: ...`, skipping repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = inner.source();
    }
    out
}

/// The message of an error body: the v2 `{"error": "..."}`, else the (shortened) text.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return e.to_string();
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use osprey_protocol::rest;
    use osprey_protocol::TensorData;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn config(url: String) -> RemotePredictor {
        RemotePredictor {
            url,
            model: String::new(),
            version: String::new(),
            timeout_ms: 2_000,
            retries: 2,
            retry_backoff_ms: 10,
        }
    }

    /// A loopback port with nothing listening on it.
    fn dead_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }

    fn input() -> Vec<Tensor> {
        vec![Tensor::new("x", vec![2], TensorData::Fp32(vec![1.0, 2.0])).expect("tensor")]
    }

    async fn expect_unavailable(url: String) {
        let client = RemoteClient::new(&config(url.clone()), "m").expect("client");
        let start = Instant::now();
        let err = client
            .infer(input(), &[], &Parameters::new())
            .await
            .expect_err("nothing listens");
        assert!(start.elapsed() < Duration::from_secs(5), "{err}");
        match &err {
            ServerError::PredictorUnavailable {
                url: u, attempts, ..
            } => {
                assert_eq!(u, &url);
                assert_eq!(*attempts, 3);
            }
            other => panic!("expected PredictorUnavailable, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "remote predictor at {url} unavailable after 3 attempts: "
            )),
            "{text}"
        );
        assert_eq!(err.http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(tonic::Status::from(err).code(), tonic::Code::Unavailable);
    }

    #[tokio::test]
    async fn rest_predictor_down_is_unavailable() {
        expect_unavailable(format!("http://127.0.0.1:{}", dead_port())).await;
    }

    #[tokio::test]
    async fn grpc_predictor_down_is_unavailable() {
        expect_unavailable(format!("grpc://127.0.0.1:{}", dead_port())).await;
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in [
            "ftp://x:1",
            "localhost:8000",
            "",
            "grpc://",
            "grpc://h:1/path",
        ] {
            let err = RemoteClient::new(&config(url.into()), "m")
                .err()
                .expect("refused");
            assert!(err.starts_with("url '"), "{url}: {err}");
        }
        let err = RemoteClient::new(&config("https://h:1".into()), "m")
            .err()
            .expect("refused");
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn defaults_and_describe() {
        let cfg = RemotePredictor {
            url: "http://h:8000/".into(),
            ..Default::default()
        };
        let client = RemoteClient::new(&cfg, "bert").expect("client");
        assert_eq!(client.0.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert_eq!(client.0.retries, DEFAULT_RETRIES);
        assert_eq!(client.0.backoff, Duration::from_millis(DEFAULT_BACKOFF_MS));
        assert_eq!(client.describe(), "http://h:8000 model 'bert'");
        match &client.0.transport {
            Transport::Rest { infer_url, .. } => {
                assert_eq!(infer_url, "http://h:8000/v2/models/bert/infer")
            }
            Transport::Grpc(_) => panic!("expected REST"),
        }
    }

    /// Serves `/v2/models/m/infer` with `answer`, counting calls.
    async fn fake_predictor(
        answer: fn(HeaderMap, Bytes) -> axum::response::Response,
    ) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let app = axum::Router::new().route(
            "/v2/models/m/infer",
            post(move |headers: HeaderMap, body: Bytes| async move {
                counted.fetch_add(1, Ordering::SeqCst);
                answer(headers, body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, calls)
    }

    #[tokio::test]
    async fn rest_answers_are_decoded_and_classified() {
        // An echo predictor: the request's inputs come back as outputs, binary when asked.
        let (url, calls) = fake_predictor(|headers, body| {
            let header_length = headers
                .get(HEADER_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let req = rest::decode_request(body, header_length).expect("request decodes");
            let resp = InferResponse {
                model_name: "m".into(),
                outputs: req.inputs.clone(),
                ..Default::default()
            };
            let enc =
                rest::encode_response(&resp, |n| rest::wants_binary(&req, n)).expect("encodes");
            let mut headers = HeaderMap::new();
            if let Some(len) = enc.header_length {
                headers.insert(HEADER_LENGTH, len.into());
            }
            (headers, enc.body).into_response()
        })
        .await;
        let client = RemoteClient::new(&config(url), "m").expect("client");
        let out = client
            .infer(input(), &[], &Parameters::new())
            .await
            .expect("echo");
        assert_eq!(out, input());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let (url, calls) = fake_predictor(|_, _| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "input 'x': wrong shape"})),
            )
                .into_response()
        })
        .await;
        let client = RemoteClient::new(&config(url.clone()), "m").expect("client");
        let err = client
            .infer(input(), &[], &Parameters::new())
            .await
            .expect_err("400");
        assert!(matches!(err, ServerError::BadRequest(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("remote predictor {url} model 'm': input 'x': wrong shape")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 400 is not retried");

        let (url, calls) =
            fake_predictor(|_, _| (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()).await;
        let client = RemoteClient::new(&config(url), "m").expect("client");
        let err = client
            .infer(input(), &[], &Parameters::new())
            .await
            .expect_err("503");
        assert!(err.to_string().ends_with("HTTP 503: busy"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "a 503 is retried");

        let (url, calls) =
            fake_predictor(|_, _| (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response())
                .await;
        let client = RemoteClient::new(&config(url), "m").expect("client");
        let err = client
            .infer(input(), &[], &Parameters::new())
            .await
            .expect_err("500");
        assert!(matches!(err, ServerError::Internal(_)), "{err:?}");
        assert!(err.to_string().ends_with("HTTP 500: boom"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 500 is not retried");
    }

    #[tokio::test]
    async fn grpc_codes_are_classified() {
        let client = RemoteClient::new(&config("grpc://127.0.0.1:1".into()), "m").expect("client");
        let invalid = tonic::Status::invalid_argument("input 'x': bad");
        match client.grpc_failure(&invalid) {
            Failure::Fatal(ServerError::BadRequest(m)) => {
                assert_eq!(
                    m,
                    "remote predictor grpc://127.0.0.1:1 model 'm': input 'x': bad"
                )
            }
            _ => panic!("INVALID_ARGUMENT is the client's fault"),
        }
        assert!(matches!(
            client.grpc_failure(&tonic::Status::unavailable("down")),
            Failure::Retry(_)
        ));
        assert!(matches!(
            client.grpc_failure(&tonic::Status::internal("boom")),
            Failure::Fatal(ServerError::Internal(_))
        ));
    }

    #[test]
    fn error_bodies_are_quoted() {
        assert_eq!(error_message(br#"{"error":"no"}"#), "no");
        assert_eq!(error_message(b""), "(empty body)");
        let long = "a".repeat(MAX_QUOTED_BODY + 10);
        assert_eq!(error_message(long.as_bytes()).len(), MAX_QUOTED_BODY + 3);
    }
}
