//! Liveness, readiness and server metadata.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Protocol extensions this server implements.
pub const EXTENSIONS: &[&str] = &[
    "binary_tensor_data",
    "classification",
    "model_repository",
    "model_configuration",
    "parameters",
    "schedule_policy",
    "statistics",
];

pub async fn live(State(s): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let live = s.live();
    let code = if live {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({ "live": live })))
}

pub async fn ready(State(s): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let ready = s.ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({ "ready": ready })))
}

pub async fn server_metadata() -> Json<Value> {
    Json(
        json!({ "name": "osprey", "version": env!("CARGO_PKG_VERSION"), "extensions": EXTENSIONS }),
    )
}
