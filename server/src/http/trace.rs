//! Triton's trace extension: `GET`/`POST /v2/trace/setting` (the server's settings) and
//! `/v2/models/{m}/trace/setting` (one model's; a setting it does not give follows the
//! server's, and `null` clears it). Category `trace`.

use crate::error::ServerError;
use crate::state::AppState;
use crate::trace::settings::parse_update;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;
use std::sync::Arc;

pub async fn get_global(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(s.tracer.settings(None).to_json())
}

pub async fn post_global(
    State(s): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    let update = parse_update(&body_json(&body)?)?;
    Ok(Json(s.tracer.update(None, update).to_json()))
}

pub async fn get_model(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
) -> Result<Json<Value>, ServerError> {
    s.registry.get(&model, None)?;
    Ok(Json(s.tracer.settings(Some(&model)).to_json()))
}

pub async fn post_model(
    State(s): State<Arc<AppState>>,
    Path(model): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ServerError> {
    s.registry.get(&model, None)?;
    let update = parse_update(&body_json(&body)?)?;
    Ok(Json(s.tracer.update(Some(&model), update).to_json()))
}

/// The body's JSON; an empty body changes nothing.
fn body_json(body: &[u8]) -> Result<Value, ServerError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed JSON body: {e}")))
}
