//! KServe's v1 data plane: `POST /v1/models/{m}:predict` (`{"instances": [...]}` or
//! `{"inputs": [...]}` in, `{"predictions": [...]}` out) and `POST /v1/models/{m}:explain`, on
//! models with one input. Each instance is one row: a number, a string, or a nested array of
//! the row's shape.

use super::read_body;
use crate::error::ServerError;
use crate::explain::explain as run_explain;
use crate::infer::{infer, Prepared};
use crate::metrics::Protocol;
use crate::model::LoadedModel;
use crate::state::AppState;
use crate::trace::RequestTrace;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use osprey_protocol::json::JsonData;
use osprey_protocol::{InferRequest, Parameters, Tensor, TensorData};
use serde_json::{json, Value};
use std::sync::Arc;

/// `/v1/models/{name}:{verb}`: the verb follows a colon in the last path segment.
pub async fn v1(State(s): State<Arc<AppState>>, Path(spec): Path<String>, body: Body) -> Response {
    let run = async {
        let (name, verb) = spec
            .rsplit_once(':')
            .ok_or_else(|| ServerError::NoEndpoint(format!("/v1/models/{spec}")))?;
        if verb != "predict" && verb != "explain" {
            return Err(ServerError::NoEndpoint(format!(
                "/v1/models/{spec} (v1 serves :predict and :explain)"
            )));
        }
        let model = s.registry.get(name, None)?;
        let bytes = read_body(body, s.http_max_body).await?;
        let req = v1_request(&model, &bytes)
            .map_err(|e| crate::infer::refused(&model, Protocol::Http, e))?;
        if verb == "explain" {
            return Ok(Json(run_explain(&model, req, s.explain_limits).await?).into_response());
        }
        let prepared = Prepared::new(&model, req)
            .map_err(|e| crate::infer::refused(&model, Protocol::Http, e))?;
        let (resp, _) = infer(&model, prepared, Protocol::Http, &mut RequestTrace::off()).await?;
        let first = resp.outputs.into_iter().next().ok_or_else(|| {
            ServerError::Internal(format!("model '{}' returned no output", model.name))
        })?;
        Ok(Json(json!({ "predictions": rows(first)? })).into_response())
    };
    match run.await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct V1Body {
    #[serde(default)]
    instances: Option<Vec<Value>>,
    /// KServe's alternative key for the same rows.
    #[serde(default)]
    inputs: Option<Vec<Value>>,
    #[serde(default)]
    parameters: Parameters,
}

/// The dimensions of one instance: a scalar has none, an array its length and its first
/// element's dimensions.
fn dims(v: &Value) -> Vec<i64> {
    match v {
        Value::Array(a) => {
            let mut d = vec![a.len() as i64];
            if let Some(first) = a.first() {
                d.extend(dims(first));
            }
            d
        }
        _ => Vec::new(),
    }
}

/// The model's one input from v1 instances (one instance per row).
pub fn v1_request(model: &LoadedModel, body: &[u8]) -> Result<InferRequest, ServerError> {
    let b: V1Body = serde_json::from_slice(body)
        .map_err(|e| ServerError::BadRequest(format!("malformed v1 body: {e}")))?;
    let instances = match (b.instances, b.inputs) {
        (Some(i), None) | (None, Some(i)) => i,
        (Some(_), Some(_)) => {
            return Err(ServerError::BadRequest(
                "v1 body: give 'instances' or 'inputs', not both".into(),
            ))
        }
        (None, None) => {
            return Err(ServerError::BadRequest(
                "v1 body: 'instances' (or 'inputs') is missing".into(),
            ))
        }
    };
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
    let row = instances.first().map(dims).unwrap_or_default();
    for (i, v) in instances.iter().enumerate() {
        if dims(v) != row {
            return Err(ServerError::BadRequest(format!(
                "instances[{i}] has shape {:?}, instances[0] {row:?}: every instance is one row of the same shape",
                dims(v)
            )));
        }
    }
    let mut shape = vec![instances.len() as i64];
    shape.extend(row);
    // A scalar instance for an input of rows of one element (`[-1, 1]`, as text models take
    // strings): the row's trailing dimensions of 1 are implied.
    while let Some(&d) = spec.shape.get(shape.len()) {
        if d != 1 && d != -1 {
            break;
        }
        shape.push(1);
    }
    let values: JsonData = serde_json::from_value(Value::Array(instances))
        .map_err(|e| ServerError::BadRequest(format!("v1 instances: {e}")))?;
    let data = TensorData::from_json(spec.datatype, values, &spec.name)?;
    Ok(InferRequest {
        id: None,
        parameters: b.parameters,
        inputs: vec![Tensor::new(&spec.name, shape, data)?],
        outputs: Vec::new(),
    })
}

/// An output as v1 predictions: one entry per row (its first dimension), nested to the row's
/// shape.
fn rows(t: Tensor) -> Result<Vec<Value>, ServerError> {
    let flat = match serde_json::to_value(&t.data) {
        Ok(Value::Array(a)) => a,
        _ => return Err(ServerError::Internal("output is not an array".into())),
    };
    let dims: Vec<usize> = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let Some((&n, row)) = dims.split_first() else {
        return Ok(flat);
    };
    let per_row: usize = row.iter().product();
    if per_row == 0 || flat.len() != n * per_row {
        return Ok(flat);
    }
    Ok(flat.chunks(per_row).map(|c| nest(c, row)).collect())
}

/// `values` (as many as `shape` holds) as nested arrays of `shape`.
fn nest(values: &[Value], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => values.first().cloned().unwrap_or(Value::Null),
        Some((_, inner)) => {
            let step: usize = inner.iter().product::<usize>().max(1);
            Value::Array(values.chunks(step).map(|c| nest(c, inner)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_back_one_nested_entry_per_row() {
        let t = Tensor::new("y", vec![2, 2, 2], TensorData::Int64((0..8).collect())).expect("t");
        assert_eq!(
            rows(t).expect("rows"),
            vec![json!([[0, 1], [2, 3]]), json!([[4, 5], [6, 7]])]
        );
        let t = Tensor::new("y", vec![3], TensorData::Fp32(vec![0.5, 1.5, 2.5])).expect("t");
        assert_eq!(
            rows(t).expect("rows"),
            vec![json!(0.5), json!(1.5), json!(2.5)]
        );
    }

    #[test]
    fn instance_shapes() {
        assert_eq!(dims(&json!(1.0)), Vec::<i64>::new());
        assert_eq!(dims(&json!([[1, 2, 3], [4, 5, 6]])), vec![2, 3]);
    }
}
