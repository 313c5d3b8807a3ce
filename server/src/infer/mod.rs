//! The transport-independent inference path: validate and parse once into a [`Prepared`]
//! request, look it up in the response cache, transform, schedule, transform back, select and
//! classify outputs, store in the cache, account.
//!
//! - [`prepared`]: the typed request made at the edge.

pub mod prepared;

use crate::classify::classify;
use crate::error::ServerError;
use crate::metrics::Protocol;
use crate::model::LoadedModel;
use crate::scheduler::{Placement, Times};
use crate::trace::RequestTrace;
use osprey_protocol::{InferResponse, Parameters, Tensor};
pub use prepared::{Outputs, Prepared, Wanted};
use std::time::{Duration, Instant};

/// Runs a prepared request on a ready model version and records statistics and metrics.
/// Returns the answer and the request's output choices (the REST encoder needs them).
/// A model with a response cache answers a request it has answered before from the cache,
/// without the scheduler or the runtime; a miss runs and its answer is stored. A traced request
/// gets the scheduler's queue and compute times in `trace`.
pub async fn infer(
    model: &LoadedModel,
    req: Prepared,
    protocol: Protocol,
    trace: &mut RequestTrace,
) -> Result<(InferResponse, Outputs), ServerError> {
    let start = Instant::now();
    let cached = model
        .cache
        .as_ref()
        .and_then(|c| Some((c, c.key(&model.name, model.version, &req)?)));
    if let Some((cache, key)) = &cached {
        if let Some(outputs) = cache.get(key) {
            let elapsed = start.elapsed();
            model.stats.request_cached(elapsed, elapsed);
            cache.hit(elapsed);
            // Rows count only what the model inferred (Triton's inference_count).
            model
                .predictor
                .metrics()
                .request_succeeded(protocol, elapsed, 0);
            return Ok((response(model, req.id, outputs), req.outputs));
        }
    }
    let lookup = start.elapsed();
    let rows = req.rows;
    let result = match model.limits.timeout {
        None => run(model, req, protocol).await,
        // Past the deadline the request is dropped: if still queued, no instance runs it.
        Some(t) => tokio::time::timeout(t, run(model, req, protocol))
            .await
            .unwrap_or_else(|_| {
                Err(ServerError::Timeout(format!(
                    "no answer within {} ms (--request-timeout-secs)",
                    t.as_millis()
                )))
            }),
    };
    if let Some((cache, key)) = cached {
        let insert = Instant::now();
        if let Ok((resp, _, _)) = &result {
            cache.put(key, &resp.outputs);
        }
        let d = lookup + insert.elapsed();
        model.stats.cache_missed(d);
        cache.miss(d);
    }
    let elapsed = start.elapsed();
    let metrics = model.predictor.metrics();
    match &result {
        Ok((_, _, times)) => {
            trace.executed(times);
            model
                .stats
                .request_succeeded(elapsed, times.queue, rows as u64);
            metrics.request_succeeded(protocol, elapsed, rows as u64);
        }
        Err(e) => {
            model.stats.request_failed(elapsed);
            metrics.request_failed(protocol, e.kind().label(), elapsed);
        }
    }
    result.map(|(resp, outputs, _)| (resp, outputs))
}

fn response(model: &LoadedModel, id: Option<String>, outputs: Vec<Tensor>) -> InferResponse {
    InferResponse {
        model_name: model.name.clone(),
        model_version: model.version.to_string(),
        id,
        parameters: Default::default(),
        outputs,
    }
}

/// Counts a request for a known model that was refused before it ran (it could not be decoded
/// or validated) as a failure in the statistics and metrics, as Triton counts it; returns the
/// error.
pub fn refused(model: &LoadedModel, protocol: Protocol, e: ServerError) -> ServerError {
    model.stats.request_failed(Duration::ZERO);
    model
        .predictor
        .metrics()
        .request_failed(protocol, e.kind().label(), Duration::ZERO);
    e
}

/// How the predictor is called: the request's parameters (a remote predictor gets them), where
/// it queues, and the outputs wanted (a remote predictor sends back only these; empty: all).
pub struct Call<'a> {
    pub params: &'a Parameters,
    /// The transport the request came in on (an ensemble's steps count under it).
    pub protocol: Protocol,
    pub placement: Placement,
    pub wanted: &'a [Wanted],
}

/// Runs client-facing inputs of `rows` rows through the steps before the predictor and the
/// predictor; returns the predictor's outputs (before any step after it) and its times.
pub async fn predict(
    model: &LoadedModel,
    mut inputs: Vec<Tensor>,
    rows: usize,
    call: Call<'_>,
) -> Result<(Vec<Tensor>, Times), ServerError> {
    model.stages.preprocess(&mut inputs)?;
    let executed = model.predictor.predict(inputs, rows, call).await?;
    Ok((executed.outputs, executed.times))
}

async fn run(
    model: &LoadedModel,
    mut req: Prepared,
    protocol: Protocol,
) -> Result<(InferResponse, Outputs, Times), ServerError> {
    let inputs = std::mem::take(&mut req.inputs);
    let call = Call {
        params: &req.params,
        protocol,
        placement: req.placement,
        wanted: &req.outputs.wanted,
    };
    let (mut outputs, times) = predict(model, inputs, req.rows, call).await?;
    model.stages.postprocess(&mut outputs)?;
    if !req.outputs.wanted.is_empty() {
        // Requested outputs come back in the order they were asked for.
        let mut picked = Vec::with_capacity(req.outputs.wanted.len());
        for w in &req.outputs.wanted {
            if let Some(i) = outputs.iter().position(|t| t.name == w.name) {
                let t = outputs.swap_remove(i);
                picked.push(match w.classes {
                    Some(n) => classify(t, n, model.labels.get(&w.name).map(Vec::as_slice))?,
                    None => t,
                });
            }
        }
        outputs = picked;
    }
    Ok((response(model, req.id, outputs), req.outputs, times))
}
