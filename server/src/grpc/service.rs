//! `inference.GRPCInferenceService`.

use crate::access::Category;
use crate::error::ServerError;
use crate::http::EXTENSIONS;
use crate::infer::{infer, Prepared};
use crate::state::AppState;
use crate::trace::RequestTrace;
use crate::views;
use osprey_protocol::grpc::inference::grpc_inference_service_server::GrpcInferenceService;
use osprey_protocol::grpc::inference::repository_index_response::ModelIndex;
use osprey_protocol::grpc::inference::*;
use osprey_protocol::grpc::{request_from_grpc, response_to_grpc};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Request, Response, Status, Streaming};

/// The inference service over the shared state.
pub struct InferenceService {
    state: Arc<AppState>,
}

impl InferenceService {
    pub fn new(state: Arc<AppState>) -> InferenceService {
        InferenceService { state }
    }
}

/// The W3C `traceparent` a call's metadata carries, if any (a reference-counted copy: nothing
/// is allocated for a request that is not traced).
fn traceparent(metadata: &tonic::metadata::MetadataMap) -> Option<AsciiMetadataValue> {
    metadata.get("traceparent").cloned()
}

async fn model_infer(
    state: &AppState,
    req: ModelInferRequest,
    parent: Option<&AsciiMetadataValue>,
) -> Result<ModelInferResponse, ServerError> {
    let grpc = crate::metrics::Protocol::Grpc;
    let parent = parent.and_then(|v| v.to_str().ok());
    let mut trace = state.tracer.sample(&req.model_name, grpc, parent);
    let result = model_infer_logged(state, req, &mut trace).await;
    trace.finish(
        result
            .as_ref()
            .err()
            .map(|e| (e.kind().label(), e.to_string())),
    );
    result
}

async fn model_infer_logged(
    state: &AppState,
    req: ModelInferRequest,
    trace: &mut RequestTrace,
) -> Result<ModelInferResponse, ServerError> {
    if !state.log_requests {
        return model_infer_once(state, req, trace).await;
    }
    let started = std::time::Instant::now();
    let (model, version, id) = (
        req.model_name.clone(),
        req.model_version.clone(),
        req.id.clone(),
    );
    let result = model_infer_once(state, req, trace).await;
    let code = result
        .as_ref()
        .err()
        .map_or(tonic::Code::Ok, ServerError::grpc_code);
    tracing::info!(
        target: "osprey::access",
        protocol = "grpc",
        model,
        version,
        status = ?code,
        duration_us = started.elapsed().as_micros() as u64,
        request_id = id,
        "request"
    );
    result
}

async fn model_infer_once(
    state: &AppState,
    req: ModelInferRequest,
    trace: &mut RequestTrace,
) -> Result<ModelInferResponse, ServerError> {
    let decoding = trace.now();
    let model = state
        .registry
        .get(&req.model_name, Some(&req.model_version))?;
    trace.request(model.version, None);
    let grpc = crate::metrics::Protocol::Grpc;
    let prepared = request_from_grpc(req)
        .map_err(ServerError::from)
        .and_then(|r| Prepared::new(&model, r))
        .map_err(|e| crate::infer::refused(&model, grpc, e))?;
    trace.request(model.version, prepared.id.as_deref());
    trace.decoded(decoding);
    let (resp, _) = infer(&model, prepared, grpc, trace).await?;
    let encoding = trace.now();
    let resp = response_to_grpc(resp);
    trace.encoded(encoding);
    Ok(resp)
}

/// Requests of one stream running at once.
const STREAM_IN_FLIGHT: usize = 64;

type StreamOut = Pin<Box<dyn Stream<Item = Result<ModelStreamInferResponse, Status>> + Send>>;

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        r: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Health, r.metadata())?;
        Ok(Response::new(ServerLiveResponse {
            live: self.state.live(),
        }))
    }

    async fn server_ready(
        &self,
        r: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Health, r.metadata())?;
        Ok(Response::new(ServerReadyResponse {
            ready: self.state.ready(),
        }))
    }

    async fn model_ready(
        &self,
        r: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Health, r.metadata())?;
        let r = r.into_inner();
        match self.state.registry.get(&r.name, Some(&r.version)) {
            Ok(_) => Ok(Response::new(ModelReadyResponse { ready: true })),
            // Like Triton: an unknown model or version is simply not ready.
            Err(
                ServerError::ModelNotReady { .. }
                | ServerError::ModelNotFound(_)
                | ServerError::VersionNotFound { .. },
            ) => Ok(Response::new(ModelReadyResponse { ready: false })),
            Err(e) => Err(e.into()),
        }
    }

    async fn server_metadata(
        &self,
        r: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Metadata, r.metadata())?;
        Ok(Response::new(ServerMetadataResponse {
            name: "osprey".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: EXTENSIONS.iter().map(|e| e.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        r: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Metadata, r.metadata())?;
        let r = r.into_inner();
        Ok(Response::new(views::metadata(
            &self.state.registry,
            &r.name,
            Some(&r.version),
        )?))
    }

    async fn model_infer(
        &self,
        r: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Inference, r.metadata())?;
        let parent = traceparent(r.metadata());
        Ok(Response::new(
            model_infer(&self.state, r.into_inner(), parent.as_ref()).await?,
        ))
    }

    type ModelStreamInferStream = StreamOut;

    async fn model_stream_infer(
        &self,
        r: Request<Streaming<ModelInferRequest>>,
    ) -> Result<Response<Self::ModelStreamInferStream>, Status> {
        super::allow(&self.state.grpc_access, Category::Inference, r.metadata())?;
        // The stream's trace context is every message's parent.
        let parent = traceparent(r.metadata());
        let incoming = r.into_inner();
        let state = self.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_IN_FLIGHT);
        tokio::spawn(async move {
            // Requests are read ahead and run concurrently (up to STREAM_IN_FLIGHT), so one
            // stream can fill a batch; answers go back in request order.
            let answers = futures::StreamExt::buffered(
                futures::StreamExt::map(incoming, |msg| {
                    let (state, parent) = (state.clone(), parent.clone());
                    async move {
                        let req = msg?;
                        Ok::<_, Status>(match model_infer(&state, req, parent.as_ref()).await {
                            Ok(resp) => ModelStreamInferResponse {
                                error_message: String::new(),
                                infer_response: Some(resp),
                            },
                            Err(e) => ModelStreamInferResponse {
                                error_message: e.to_string(),
                                infer_response: None,
                            },
                        })
                    }
                }),
                STREAM_IN_FLIGHT,
            );
            futures::pin_mut!(answers);
            while let Some(out) = futures::StreamExt::next(&mut answers).await {
                let failed = out.is_err();
                if tx.send(out).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn model_config(
        &self,
        r: Request<ModelConfigRequest>,
    ) -> Result<Response<ModelConfigResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::ModelConfig, r.metadata())?;
        let r = r.into_inner();
        let m = self
            .state
            .registry
            .get(&r.name, Some(&r.version))
            .map_err(Status::from)?;
        Ok(Response::new(ModelConfigResponse {
            config: Some(m.config.clone()),
        }))
    }

    async fn model_statistics(
        &self,
        r: Request<ModelStatisticsRequest>,
    ) -> Result<Response<ModelStatisticsResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Statistics, r.metadata())?;
        let r = r.into_inner();
        Ok(Response::new(views::statistics(
            &self.state.registry,
            Some(&r.name),
            Some(&r.version),
        )?))
    }

    async fn repository_index(
        &self,
        r: Request<RepositoryIndexRequest>,
    ) -> Result<Response<RepositoryIndexResponse>, Status> {
        super::allow(
            &self.state.grpc_access,
            Category::ModelRepository,
            r.metadata(),
        )?;
        let r = r.into_inner();
        let models = self
            .state
            .registry
            .index(r.ready)
            .into_iter()
            .map(|e| ModelIndex {
                name: e.name,
                version: e.version,
                state: e.state,
                reason: e.reason,
            })
            .collect();
        Ok(Response::new(RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        r: Request<RepositoryModelLoadRequest>,
    ) -> Result<Response<RepositoryModelLoadResponse>, Status> {
        super::allow(
            &self.state.grpc_access,
            Category::ModelRepository,
            r.metadata(),
        )?;
        self.state.model_control.check_api()?;
        let r = r.into_inner();
        let mut config = None;
        for (key, p) in &r.parameters {
            use osprey_protocol::grpc::inference::model_repository_parameter::ParameterChoice;
            match (key.as_str(), &p.parameter_choice) {
                ("config", Some(ParameterChoice::StringParam(text))) => {
                    config = Some(crate::model::control::load_config(text)?)
                }
                ("config", _) => {
                    return Err(ServerError::BadRequest(
                        "parameter 'config' must be a string_param holding the model \
                         configuration as JSON"
                            .into(),
                    )
                    .into())
                }
                (other, _) => {
                    return Err(crate::model::control::unknown_load_parameter(other).into())
                }
            }
        }
        self.state.registry.load_with(&r.model_name, config).await?;
        Ok(Response::new(RepositoryModelLoadResponse {}))
    }

    async fn repository_model_unload(
        &self,
        r: Request<RepositoryModelUnloadRequest>,
    ) -> Result<Response<RepositoryModelUnloadResponse>, Status> {
        super::allow(
            &self.state.grpc_access,
            Category::ModelRepository,
            r.metadata(),
        )?;
        self.state.model_control.check_api()?;
        self.state
            .registry
            .unload(&r.into_inner().model_name)
            .await?;
        Ok(Response::new(RepositoryModelUnloadResponse {}))
    }
}
