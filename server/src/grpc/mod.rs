//! The gRPC front end: `inference.GRPCInferenceService` and `grpc.health.v1.Health` on tonic.

mod health;
pub mod incoming;
mod service;

pub use health::HealthService;
pub use service::InferenceService;

use crate::access::{Access, Category};
use tonic::metadata::MetadataMap;

/// Checks one call against the listener's restrictions and bearer tokens.
pub(crate) fn allow(
    access: &Access,
    category: Category,
    md: &MetadataMap,
) -> Result<(), tonic::Status> {
    if access.is_open() {
        return Ok(());
    }
    access
        .check(category, |n| md.get(n).and_then(|v| v.to_str().ok()))
        .map_err(|d| crate::error::ServerError::from(d).into())
}
