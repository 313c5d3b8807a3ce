//! The explainer: feature attributions for any served model. Numeric inputs get KernelSHAP
//! ([`shap`]), text gets token occlusion ([`occlusion`]). Every perturbed input goes through
//! the model's own stages and batcher, many rows per request.

mod occlusion;
pub mod settings;
pub mod shap;
mod tabular;
pub mod values;

use crate::error::ServerError;
use crate::infer::{predict, Call};
use crate::model::LoadedModel;
use futures::{StreamExt, TryStreamExt};
use osprey_protocol::batch::{concat_inputs, split_outputs};
use osprey_protocol::{InferRequest, Parameters, Tensor};
use serde::Serialize;
pub use settings::{ExplainLimits, Method, Settings};

/// The explanation of one row.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The explained input.
    pub input: String,
    /// Row of the request.
    pub row: usize,
    /// What of the output is explained ("element 2", "cosine similarity ...").
    pub target: String,
    /// Feature names (`"0"`, `"1"`, ...) or tokens, one per attribution.
    pub features: Vec<String>,
    /// The baseline each feature was replaced by (KernelSHAP) or how tokens were removed.
    pub baseline: serde_json::Value,
    /// The explained value with every feature at the baseline (all tokens occluded: null).
    pub base_value: Option<f64>,
    /// The explained value for the row itself.
    pub prediction: f64,
    pub attributions: Vec<f64>,
}

/// The answer of `/explain`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub method: &'static str,
    /// The explained output.
    pub output: String,
    /// Settings used (samples, seed) and how many rows the model evaluated.
    pub parameters: serde_json::Value,
    pub explanations: Vec<Explanation>,
}

/// Runs `inputs` (many rows) through the model and returns output `output` for every row.
/// With `stages` the steps before the predictor run first; without, `inputs` are the
/// predictor's. Rows go in requests of at most the model's batch size, all queued at once so
/// that the batcher can merge them and every instance can work.
pub(crate) async fn evaluate(
    model: &LoadedModel,
    inputs: Vec<Tensor>,
    rows: usize,
    output: &str,
    stages: bool,
) -> Result<Tensor, ServerError> {
    let chunk = match model.predictor_signature.max_batch_size {
        n if n > 0 => n as usize,
        _ => 256,
    };
    let mut sizes = vec![chunk; rows / chunk];
    if !rows.is_multiple_of(chunk) {
        sizes.push(rows % chunk);
    }
    let parts = split_outputs(inputs, &sizes).map_err(|e| ServerError::Internal(e.to_string()))?;
    let wanted = [crate::infer::Wanted {
        name: output.to_string(),
        binary: false,
        classes: None,
    }];
    let params = Parameters::new();
    let placement = model.predictor.placement(&params)?;
    let calls = parts
        .into_iter()
        .zip(sizes.iter().copied())
        .map(|(part, n)| {
            let call = Call {
                params: &params,
                protocol: crate::metrics::Protocol::Http,
                placement,
                wanted: &wanted,
            };
            async move {
                let outs = if stages {
                    predict(model, part, n, call).await?.0
                } else {
                    model.predictor.predict(part, n, call).await?.outputs
                };
                outs.into_iter()
                    .find(|t| t.name == output)
                    .map(|t| vec![t])
                    .ok_or_else(|| {
                        ServerError::Internal(format!("the model did not return output '{output}'"))
                    })
            }
        });
    // A few requests in the queue at a time: an explanation takes its turn beside other clients'
    // requests instead of filling the queue with its perturbations.
    let results: Vec<Vec<Tensor>> = futures::stream::iter(calls)
        .buffered(EXPLAIN_IN_FLIGHT)
        .try_collect()
        .await?;
    concat_inputs(results)
        .map_err(|e| ServerError::Internal(e.to_string()))?
        .pop()
        .ok_or_else(|| ServerError::Internal("no output rows".into()))
}

/// Requests of one explanation waiting in the model's queue at once.
const EXPLAIN_IN_FLIGHT: usize = 2;

/// Explains every row of a request's (only) input, within `limits` (past its deadline the
/// work stops and its queued evaluations are dropped).
pub async fn explain(
    model: &LoadedModel,
    req: InferRequest,
    limits: ExplainLimits,
) -> Result<ExplainResponse, ServerError> {
    match tokio::time::timeout(limits.timeout, explain_within(model, req, limits)).await {
        Ok(r) => r,
        Err(_) => Err(ServerError::Timeout(format!(
            "explain ran past {} s (--explain-timeout-secs) and was stopped",
            limits.timeout.as_secs()
        ))),
    }
}

async fn explain_within(
    model: &LoadedModel,
    req: InferRequest,
    limits: ExplainLimits,
) -> Result<ExplainResponse, ServerError> {
    model.signature.validate(&req)?;
    crate::infer::prepared::check_bytes(model, &req.inputs)?;
    let settings = Settings::resolve(model, &req.parameters, limits)?;
    let input = match req.inputs.as_slice() {
        [only] => only.clone(),
        other => {
            return Err(ServerError::BadRequest(format!(
                "explain: model '{}' has {} inputs; the explainer handles models with one input",
                model.name,
                other.len()
            )))
        }
    };
    let (explanations, evaluated) = match settings.method {
        Method::KernelShap => tabular::explain(model, &input, &settings).await?,
        Method::Occlusion => occlusion::explain(model, &input, &settings).await?,
    };
    Ok(ExplainResponse {
        model_name: model.name.clone(),
        model_version: model.version.to_string(),
        id: req.id,
        method: settings.method.label(),
        output: settings.output.clone(),
        parameters: serde_json::json!({
            "samples": settings.samples,
            "seed": settings.seed,
            "evaluated_rows": evaluated,
        }),
        explanations,
    })
}
