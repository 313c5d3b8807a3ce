//! Standard gRPC health checking (`grpc.health.v1.Health`), as Kubernetes gRPC probes use it.
//! Service "" and "inference.GRPCInferenceService" are SERVING while the server is ready.

use crate::access::Category;
use crate::state::AppState;
use osprey_protocol::grpc::health::health_check_response::ServingStatus;
use osprey_protocol::grpc::health::health_server::Health;
use osprey_protocol::grpc::health::{HealthCheckRequest, HealthCheckResponse};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub struct HealthService {
    state: Arc<AppState>,
}

impl HealthService {
    pub fn new(state: Arc<AppState>) -> HealthService {
        HealthService { state }
    }
}

fn status_of(state: &AppState, service: &str) -> Result<ServingStatus, Status> {
    match service {
        "" | "inference.GRPCInferenceService" => Ok(if state.ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }),
        other => Err(Status::not_found(format!("unknown service '{other}'"))),
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        r: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        super::allow(&self.state.grpc_access, Category::Health, r.metadata())?;
        let status = status_of(&self.state, &r.into_inner().service)?;
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        r: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        super::allow(&self.state.grpc_access, Category::Health, r.metadata())?;
        let service = r.into_inner().service;
        let state = self.state.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let status = match status_of(&state, &service) {
                    Ok(s) => s,
                    Err(_) => ServingStatus::ServiceUnknown,
                };
                if last != Some(status) {
                    last = Some(status);
                    if tx
                        .send(Ok(HealthCheckResponse {
                            status: status as i32,
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}
