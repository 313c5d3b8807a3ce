//! The transport-independent inference path: validate, execute, select outputs, account.

use crate::error::ServerError;
use crate::metrics;
use crate::model::LoadedModel;
use osprey_protocol::{InferRequest, InferResponse};
use std::time::Instant;

/// Runs a decoded request on a ready model version and records statistics and metrics.
pub async fn infer(
    model: &LoadedModel,
    req: InferRequest,
    protocol: &'static str,
) -> Result<InferResponse, ServerError> {
    let start = Instant::now();
    let result = run(model, req).await;
    let elapsed = start.elapsed();
    let version = model.version.to_string();
    match &result {
        Ok((resp, rows, queue)) => {
            model.stats.request_succeeded(elapsed, *queue, *rows);
            metrics::request_succeeded(&model.name, &version, protocol, elapsed, *queue, *rows);
            tracing::debug!(model = %model.name, outputs = resp.outputs.len(), "inference done");
        }
        Err(e) => {
            model.stats.request_failed(elapsed);
            metrics::request_failed(&model.name, &version, protocol, e.kind().label(), elapsed);
        }
    }
    result.map(|(resp, _, _)| resp)
}

async fn run(
    model: &LoadedModel,
    mut req: InferRequest,
) -> Result<(InferResponse, u64, std::time::Duration), ServerError> {
    model.signature.validate(&req)?;
    let rows = if model.signature.max_batch_size > 0 {
        req.inputs
            .first()
            .and_then(|t| t.shape.first())
            .map_or(1, |&b| b.max(0) as u64)
    } else {
        1
    };
    let inputs = std::mem::take(&mut req.inputs);
    let executed = model.executor.run(inputs, rows).await?;
    let mut outputs = executed.outputs;
    if !req.outputs.is_empty() {
        // Requested outputs come back in the order they were asked for.
        let mut picked = Vec::with_capacity(req.outputs.len());
        for o in &req.outputs {
            if let Some(i) = outputs.iter().position(|t| t.name == o.name) {
                picked.push(outputs.swap_remove(i));
            }
        }
        outputs = picked;
    }
    let resp = InferResponse {
        model_name: model.name.clone(),
        model_version: model.version.to_string(),
        id: req.id,
        parameters: Default::default(),
        outputs,
    };
    Ok((resp, rows, executed.queue))
}
