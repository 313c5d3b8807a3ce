//! The transport-independent inference path: validate, schedule, select outputs, account.

use crate::error::ServerError;
use crate::metrics::Protocol;
use crate::model::LoadedModel;
use osprey_protocol::{InferRequest, InferResponse};
use std::time::{Duration, Instant};

/// Runs a decoded request on a ready model version and records statistics and metrics.
pub async fn infer(
    model: &LoadedModel,
    req: InferRequest,
    protocol: Protocol,
) -> Result<InferResponse, ServerError> {
    let start = Instant::now();
    let result = run(model, req).await;
    let elapsed = start.elapsed();
    let metrics = model.scheduler.metrics();
    match &result {
        Ok((_, rows, queue)) => {
            model.stats.request_succeeded(elapsed, *queue, *rows);
            metrics.request_succeeded(protocol, elapsed, *rows);
        }
        Err(e) => {
            model.stats.request_failed(elapsed);
            metrics.request_failed(protocol, e.kind().label(), elapsed);
        }
    }
    result.map(|(resp, _, _)| resp)
}

async fn run(
    model: &LoadedModel,
    mut req: InferRequest,
) -> Result<(InferResponse, u64, Duration), ServerError> {
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
    let executed = model
        .scheduler
        .submit(inputs, &req.parameters, rows as usize)
        .await?;
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
