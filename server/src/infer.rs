//! The transport-independent inference path: validate, transform, schedule, transform back,
//! select and classify outputs, account.

use crate::classify::{classify, requested_count};
use crate::error::ServerError;
use crate::metrics::Protocol;
use crate::model::LoadedModel;
use osprey_protocol::{InferRequest, InferResponse, RequestedOutput, Tensor};
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
    let metrics = model.predictor.metrics();
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

/// Rows in a validated request: its first dimension when the model batches, else 1.
pub fn request_rows(model: &LoadedModel, inputs: &[Tensor]) -> u64 {
    if model.signature.max_batch_size > 0 {
        inputs
            .first()
            .and_then(|t| t.shape.first())
            .map_or(1, |&b| b.max(0) as u64)
    } else {
        1
    }
}

/// Runs client-facing inputs through the steps before the predictor and the predictor; returns
/// the predictor's outputs (before any step after it) and the time queued.
pub async fn predict(
    model: &LoadedModel,
    mut inputs: Vec<Tensor>,
    params: &osprey_protocol::Parameters,
    rows: usize,
    outputs: &[RequestedOutput],
) -> Result<(Vec<Tensor>, Duration), ServerError> {
    model.stages.preprocess(&mut inputs)?;
    let executed = model
        .predictor
        .predict(inputs, params, rows, outputs)
        .await?;
    Ok((executed.outputs, executed.queue))
}

async fn run(
    model: &LoadedModel,
    mut req: InferRequest,
) -> Result<(InferResponse, u64, Duration), ServerError> {
    model.signature.validate(&req)?;
    let mut counts = Vec::with_capacity(req.outputs.len());
    for o in &req.outputs {
        counts.push(requested_count(o)?);
    }
    let rows = request_rows(model, &req.inputs);
    let inputs = std::mem::take(&mut req.inputs);
    let (mut outputs, queue) =
        predict(model, inputs, &req.parameters, rows as usize, &req.outputs).await?;
    model.stages.postprocess(&mut outputs)?;
    if !req.outputs.is_empty() {
        // Requested outputs come back in the order they were asked for.
        let mut picked = Vec::with_capacity(req.outputs.len());
        for (o, count) in req.outputs.iter().zip(counts) {
            if let Some(i) = outputs.iter().position(|t| t.name == o.name) {
                let t = outputs.swap_remove(i);
                picked.push(match count {
                    Some(n) => classify(t, n, model.labels.get(&o.name).map(Vec::as_slice))?,
                    None => t,
                });
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
    Ok((resp, rows, queue))
}
