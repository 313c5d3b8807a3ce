//! `POST /v2/models/{m}[/versions/{v}]/explain` (a v2 inference request in, attributions out)
//! and KServe v1's `POST /v1/models/{m}:explain` (`{"instances": [...]}`).

use super::{read_body, ModelPath};
use crate::error::ServerError;
use crate::explain::explain as run_explain;
use crate::model::LoadedModel;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use osprey_protocol::{DataType, InferRequest, Parameters, Tensor, TensorData};
use std::sync::Arc;

pub async fn explain_v2(
    State(s): State<Arc<AppState>>,
    Path(p): Path<ModelPath>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let model = s.registry.get(&p.model, p.version.as_deref())?;
        let header_len = super::infer::header_length(&headers)?;
        let bytes = read_body(body, s.http_max_body).await?;
        let req = super::infer::decode(&model, bytes, header_len)?;
        run_explain(&model, req, s.explain_limits).await
    };
    match run.await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `/v1/models/{name}:explain`: the verb follows a colon in the last path segment.
pub async fn v1(State(s): State<Arc<AppState>>, Path(spec): Path<String>, body: Body) -> Response {
    let run = async {
        let (name, verb) = spec
            .rsplit_once(':')
            .ok_or_else(|| ServerError::NoEndpoint(format!("/v1/models/{spec}")))?;
        if verb != "explain" {
            return Err(ServerError::NoEndpoint(format!(
                "/v1/models/{spec} (v1 serves :explain; use /v2/models/{name}/infer to predict)"
            )));
        }
        let model = s.registry.get(name, None)?;
        let bytes = read_body(body, s.http_max_body).await?;
        let req = v1_request(&model, &bytes)?;
        run_explain(&model, req, s.explain_limits).await
    };
    match run.await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct V1Body {
    instances: Vec<serde_json::Value>,
    #[serde(default)]
    parameters: Parameters,
}

fn flatten(v: &serde_json::Value, out: &mut Vec<f64>) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().map(|x| out.push(x)).is_some(),
        serde_json::Value::Array(a) => a.iter().all(|x| flatten(x, out)),
        _ => false,
    }
}

/// The model's one input from v1 `instances` (one instance per row).
fn v1_request(model: &LoadedModel, body: &[u8]) -> Result<InferRequest, ServerError> {
    let b: V1Body = serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed v1 body: {e}")))?;
    let spec = match model.signature.inputs.as_slice() {
        [only] => only,
        _ => {
            return Err(ServerError::BadRequest(format!(
                "v1 instances need a model with one input; '{}' has {}",
                model.name,
                model.signature.inputs.len()
            )))
        }
    };
    let n = b.instances.len();
    let (data, per_row) = if spec.datatype == DataType::Bytes {
        let strings = b
            .instances
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(|s| Bytes::from(s.to_string()))
                    .ok_or_else(|| {
                        ServerError::BadRequest(format!("instances[{i}] must be a string"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        (TensorData::Bytes(strings), 1)
    } else {
        let mut flat = Vec::new();
        for (i, v) in b.instances.iter().enumerate() {
            if !flatten(v, &mut flat) {
                return Err(ServerError::BadRequest(format!(
                    "instances[{i}] must be a number or an array of numbers"
                )));
            }
        }
        let per_row = flat.len() / n.max(1);
        let data = match spec.datatype {
            DataType::Fp64 => TensorData::Fp64(flat),
            _ => TensorData::Fp32(flat.into_iter().map(|x| x as f32).collect()),
        };
        (data, per_row)
    };
    let mut shape = vec![n as i64];
    match spec.shape.len() {
        0 | 1 => {}
        2 => shape.push(per_row as i64),
        _ => {
            return Err(ServerError::BadRequest(format!(
                "v1 instances: input '{}' has rank {}; send a v2 request to /v2/models/{}/explain",
                spec.name,
                spec.shape.len(),
                model.name
            )))
        }
    }
    Ok(InferRequest {
        id: None,
        parameters: b.parameters,
        inputs: vec![Tensor::new(&spec.name, shape, data)?],
        outputs: Vec::new(),
    })
}
