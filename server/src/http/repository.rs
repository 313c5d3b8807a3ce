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
    parameters: serde_json::Map<String, Value>,
}

pub async fn load(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Body,
) -> Result<Json<Value>, ServerError> {
    let req: ControlRequest = optional_json(&read_body(body, CONTROL_BODY_LIMIT).await?)?;
    s.model_control.check_api()?;
    let mut config = None;
    for (key, value) in &req.parameters {
        match (key.as_str(), value) {
            ("config", Value::String(text)) => config = Some(load_config(text)?),
            ("config", _) => {
                return Err(ServerError::BadRequest(
                    "parameter 'config' must be a string holding the model configuration as JSON"
                        .into(),
                ))
            }
            (other, _) => return Err(unknown_load_parameter(other)),
        }
    }
    s.registry.load_with(&model, config).await?;
    Ok(Json(json!({})))
}

/// A load request's `config` parameter: the model configuration as JSON (Triton's form).
pub(crate) fn load_config(text: &str) -> Result<crate::config::ModelConfig, ServerError> {
    crate::config::parse_json(text).map_err(|e| ServerError::BadRequest(e.to_string()))
}

/// A load parameter Osprey does not take (Triton's `file:<path>` overrides among them).
pub(crate) fn unknown_load_parameter(key: &str) -> ServerError {
    ServerError::BadRequest(format!(
        "load parameter '{key}' is not supported; the only one is 'config' (the model \
         configuration as JSON)"
    ))
}

pub async fn unload(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Body,
) -> Result<Json<Value>, ServerError> {
    let _req: ControlRequest = optional_json(&read_body(body, CONTROL_BODY_LIMIT).await?)?;
    s.model_control.check_api()?;
    s.registry.unload(&model).await?;
    Ok(Json(json!({})))
}
