//! Responses that REST and gRPC share, built once as protobuf messages (REST serves their JSON
//! form, which Triton's REST API mirrors field for field).

use crate::error::ServerError;
use crate::model::Registry;
use osprey_protocol::grpc::inference::model_metadata_response::TensorMetadata;
use osprey_protocol::grpc::inference::{ModelMetadataResponse, ModelStatisticsResponse};
use osprey_protocol::TensorSpec;

fn tensor_metadata(specs: &[TensorSpec]) -> Vec<TensorMetadata> {
    specs
        .iter()
        .map(|s| TensorMetadata {
            name: s.name.clone(),
            datatype: s.datatype.as_str().to_string(),
            shape: s.shape.clone(),
        })
        .collect()
}

/// Model metadata: the chosen version's inputs and outputs, and every ready version.
pub fn metadata(
    registry: &Registry,
    name: &str,
    version: Option<&str>,
) -> Result<ModelMetadataResponse, ServerError> {
    let m = registry.get(name, version)?;
    let mut versions: Vec<u64> = registry
        .ready_models()
        .iter()
        .filter(|r| r.name == name)
        .map(|r| r.version)
        .collect();
    versions.sort_unstable();
    Ok(ModelMetadataResponse {
        name: m.name.clone(),
        versions: versions.iter().map(u64::to_string).collect(),
        // Triton reports the backend when a model has no platform (candle, remote).
        platform: if m.config.platform.is_empty() {
            m.config.backend.clone()
        } else {
            m.config.platform.clone()
        },
        inputs: tensor_metadata(&m.signature.inputs),
        outputs: tensor_metadata(&m.signature.outputs),
    })
}

/// Statistics of every ready model, of one model's ready versions, or of one version.
pub fn statistics(
    registry: &Registry,
    name: Option<&str>,
    version: Option<&str>,
) -> Result<ModelStatisticsResponse, ServerError> {
    let mut models = match (
        name.filter(|n| !n.is_empty()),
        version.filter(|v| !v.is_empty()),
    ) {
        (Some(n), Some(v)) => vec![registry.get(n, Some(v))?],
        (Some(n), None) => {
            registry.get(n, None)?;
            registry
                .ready_models()
                .into_iter()
                .filter(|m| m.name == n)
                .collect()
        }
        _ => registry.ready_models(),
    };
    models.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    Ok(ModelStatisticsResponse {
        model_stats: models
            .iter()
            .map(|m| m.stats.to_proto(&m.name, &m.version.to_string()))
            .collect(),
    })
}
