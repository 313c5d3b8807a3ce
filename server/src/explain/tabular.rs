//! KernelSHAP over the features of a numeric input, row by row.

use super::values::{from_f64, to_f64};
use super::{evaluate, shap, Explanation, Settings};
use crate::error::ServerError;
use crate::model::LoadedModel;
use osprey_protocol::Tensor;

/// Explains every row of `input` (shape `[rows, features...]`). Returns the explanations and
/// how many rows the model evaluated.
pub async fn explain(
    model: &LoadedModel,
    input: &Tensor,
    s: &Settings,
) -> Result<(Vec<Explanation>, usize), ServerError> {
    let values = to_f64(&input.data).ok_or_else(|| {
        ServerError::BadRequest(format!(
            "input '{}' is BYTES: use method \"occlusion\" for text",
            input.name
        ))
    })?;
    let (rows, rest) = match input.shape.split_first() {
        Some((&r, rest)) if !rest.is_empty() => (r.max(0) as usize, rest.to_vec()),
        _ => {
            return Err(ServerError::BadRequest(format!(
                "input '{}' has shape {:?}: KernelSHAP needs [rows, features...]",
                input.name, input.shape
            )))
        }
    };
    let m = rest
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?))
        .unwrap_or(usize::MAX);
    s.limits.features(&input.name, m, "features")?;
    // Each row: itself, the baseline and one evaluation per coalition.
    s.limits
        .rows(rows.saturating_mul(s.samples.saturating_add(2)))?;
    let baseline: Vec<f64> = match s.baseline.as_slice() {
        [one] => vec![*one; m],
        many if many.len() == m => many.to_vec(),
        many => {
            return Err(ServerError::BadRequest(format!(
                "parameter 'baseline' has {} values but input '{}' has {m} features per row",
                many.len(),
                input.name
            )))
        }
    };
    let mut out = Vec::with_capacity(rows);
    let mut evaluated = 0;
    for (row, x) in values.chunks(m.max(1)).enumerate().take(rows) {
        // Features equal to the baseline get 0 and stay out of the regression.
        let varying: Vec<usize> = (0..m).filter(|&j| x[j] != baseline[j]).collect();
        let plan = shap::plan(varying.len(), s.samples, s.seed);
        let mut batch = Vec::with_capacity((plan.coalitions.len() + 2) * m);
        batch.extend_from_slice(x);
        batch.extend_from_slice(&baseline);
        for c in &plan.coalitions {
            let mut z = baseline.clone();
            for (k, &j) in varying.iter().enumerate() {
                if c[k] {
                    z[j] = x[j];
                }
            }
            batch.extend(z);
        }
        let n = plan.coalitions.len() + 2;
        let mut shape = vec![n as i64];
        shape.extend(&rest);
        let t = from_f64(&input.name, input.datatype(), shape, batch)?;
        let y = evaluate(model, vec![t], n, &s.output, true).await?;
        evaluated += n;
        let y = to_f64(&y.data).ok_or_else(|| {
            ServerError::BadRequest(format!("output '{}' is not numeric", s.output))
        })?;
        let per = y.len() / n;
        let rows_out: Vec<&[f64]> = y.chunks(per.max(1)).collect();
        let reference = rows_out.first().copied().unwrap_or_default();
        let target = s.target.resolve(reference)?;
        let scores: Vec<f64> = rows_out
            .iter()
            .map(|r| target.score(r, reference))
            .collect();
        let (fx, fb) = (scores[0], scores[1]);
        let phi_varying = shap::solve(&plan, &scores[2..], fx, fb);
        let mut attributions = vec![0.0; m];
        for (k, &j) in varying.iter().enumerate() {
            attributions[j] = phi_varying.get(k).copied().unwrap_or(0.0);
        }
        out.push(Explanation {
            input: input.name.clone(),
            row,
            target: target.describe(),
            features: (0..m).map(|j| j.to_string()).collect(),
            baseline: serde_json::json!(baseline),
            base_value: Some(fb),
            prediction: fx,
            attributions,
        });
    }
    Ok((out, evaluated))
}
