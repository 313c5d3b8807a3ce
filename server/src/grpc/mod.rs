//! The gRPC front end: `inference.GRPCInferenceService` and `grpc.health.v1.Health` on tonic.

mod health;
mod service;

pub use health::HealthService;
pub use service::InferenceService;
