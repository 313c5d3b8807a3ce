//! Triton's model repository extension: index, load, unload.

use super::{optional_json, read_body};
use crate::error::ServerError;
use crate::model::IndexEntry;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const CONTROL_BODY_LIMIT: usize = 1 << 20;

#[derive(Default, Deserialize)]
struct IndexRequest {
    #[serde(default)]
    ready: bool,
}

pub async fn index(
    State(s): State<Arc<AppState>>,
    body: Body,
) -> Result<Json<Vec<IndexEntry>>, ServerError> {
    let req: IndexRequest = optional_json(&read_body(body, CONTROL_BODY_LIMIT).await?)?;
    Ok(Json(s.registry.index(req.ready)))
}

#[derive(Default, Deserialize)]
struct ControlRequest {
    #[serde(default)]
    #[allow(dead_code)]
    parameters: serde_json::Map<String, Value>,
}

pub async fn load(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Body,
) -> Result<Json<Value>, ServerError> {
    let _req: ControlRequest = optional_json(&read_body(body, CONTROL_BODY_LIMIT).await?)?;
    s.registry.load(&model).await?;
    Ok(Json(json!({})))
}

pub async fn unload(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Body,
) -> Result<Json<Value>, ServerError> {
    let _req: ControlRequest = optional_json(&read_body(body, CONTROL_BODY_LIMIT).await?)?;
    s.registry.unload(&model).await?;
    Ok(Json(json!({})))
}
