//! Per-model endpoints: metadata, readiness, configuration, statistics.

use super::ModelPath;
use crate::config::{proto_to_json, to_json};
use crate::error::ServerError;
use crate::state::AppState;
use crate::views;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

fn json_err(e: crate::config::ConfigError) -> ServerError {
    ServerError::Internal(e.to_string())
}

pub async fn metadata(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
) -> Result<Json<Value>, ServerError> {
    let m = views::metadata(&s.registry, &p.model, p.version.as_deref())?;
    Ok(Json(
        proto_to_json(&m, "inference.ModelMetadataResponse").map_err(json_err)?,
    ))
}

pub async fn ready(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
) -> Result<(StatusCode, Json<Value>), ServerError> {
    match s.registry.get(&p.model, p.version.as_deref()) {
        Ok(_) => Ok((
            StatusCode::OK,
            Json(json!({ "name": p.model, "ready": true })),
        )),
        Err(ServerError::ModelNotReady { .. }) => Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "name": p.model, "ready": false })),
        )),
        Err(e) => Err(e),
    }
}

pub async fn config(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
) -> Result<Json<Value>, ServerError> {
    let m = s.registry.get(&p.model, p.version.as_deref())?;
    Ok(Json(to_json(&m.config).map_err(json_err)?))
}

pub async fn stats(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
) -> Result<Json<Value>, ServerError> {
    let r = views::statistics(&s.registry, Some(&p.model), p.version.as_deref())?;
    Ok(Json(
        proto_to_json(&r, "inference.ModelStatisticsResponse").map_err(json_err)?,
    ))
}

pub async fn all_stats(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ServerError> {
    let r = views::statistics(&s.registry, None, None)?;
    Ok(Json(
        proto_to_json(&r, "inference.ModelStatisticsResponse").map_err(json_err)?,
    ))
}
