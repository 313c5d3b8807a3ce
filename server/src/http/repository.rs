//! Triton's model repository extension: index, load, unload.

use super::{optional_json, read_body};
use crate::error::ServerError;
use crate::model::{control, IndexEntry};
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
            ("config", Value::String(text)) => config = Some(control::load_config(text)?),
            ("config", _) => {
                return Err(ServerError::BadRequest(
                    "parameter 'config' must be a string holding the model configuration as JSON"
                        .into(),
                ))
            }
            (other, _) => return Err(control::unknown_load_parameter(other)),
        }
    }
    s.registry.load_with(&model, config).await?;
    Ok(Json(json!({})))
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
