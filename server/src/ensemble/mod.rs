//! Triton's ensembles: `platform: "ensemble"` with `ensemble_scheduling { step [...] }`.
//!
//! - [`plan`]: the steps, checked (maps, missing models, cycles) and ordered.
//!
//! A request's tensors live in one map for its whole walk. Each step takes its inputs from the
//! map (`input_map`: step input ← ensemble tensor), runs as an ordinary request of its model —
//! validated against that model's signature and queued in that model's own batcher, so the
//! steps of concurrent ensemble requests batch together — and puts its outputs back
//! (`output_map`). Tensors pass between steps in process, never re-encoded. Steps run one after
//! another in dependency order. The step models are looked up when a request runs, so a step
//! model reloaded under the ensemble is picked up; one that is not ready fails the request
//! naming the step.

pub mod plan;

use crate::infer::{infer, Prepared};
use crate::metrics::Protocol;
use crate::model::Registry;
use crate::ServerError;
use osprey_protocol::{InferRequest, Tensor};
use plan::{Plan, Step};
use std::collections::HashMap;
use std::sync::Weak;

/// An ensemble's runner.
pub struct Ensemble {
    plan: Plan,
    /// The registry the step models are found in (weak: the registry holds the ensemble).
    models: Weak<Registry>,
}

impl Ensemble {
    pub fn new(plan: Plan, models: Weak<Registry>) -> Ensemble {
        Ensemble { plan, models }
    }

    /// The steps, in the order they run.
    pub fn steps(&self) -> &[Step] {
        &self.plan.steps
    }

    /// Runs validated ensemble inputs through every step; returns the ensemble's outputs.
    pub async fn run(
        &self,
        inputs: Vec<Tensor>,
        protocol: Protocol,
    ) -> Result<Vec<Tensor>, ServerError> {
        let registry = self
            .models
            .upgrade()
            .ok_or_else(|| ServerError::Internal("the model registry is gone".into()))?;
        let mut tensors: HashMap<String, Tensor> =
            inputs.into_iter().map(|t| (t.name.clone(), t)).collect();
        for step in &self.plan.steps {
            let in_step = |e: ServerError| ServerError::Step {
                step: step.label(),
                source: Box::new(e),
            };
            let model = registry
                .get(&step.model, step.version.as_deref())
                .map_err(in_step)?;
            let mut step_inputs = Vec::with_capacity(step.inputs.len());
            for (name, tensor) in &step.inputs {
                let t = tensors.get(tensor).ok_or_else(|| {
                    in_step(ServerError::BadRequest(format!(
                        "tensor '{tensor}' was not given (an optional ensemble input left out?)"
                    )))
                })?;
                let mut t = t.clone();
                t.name.clone_from(name);
                step_inputs.push(t);
            }
            let req = InferRequest {
                id: None,
                parameters: Default::default(),
                inputs: step_inputs,
                outputs: Vec::new(),
            };
            let prepared = Prepared::new(&model, req).map_err(in_step)?;
            // Boxed: an ensemble may call an ensemble.
            let mut untraced = crate::trace::RequestTrace::off();
            let (resp, _) = Box::pin(infer(&model, prepared, protocol, &mut untraced))
                .await
                .map_err(in_step)?;
            for mut t in resp.outputs {
                if let Some(to) = step.outputs.get(&t.name) {
                    t.name.clone_from(to);
                    tensors.insert(t.name.clone(), t);
                }
            }
        }
        Ok(self
            .plan
            .outputs
            .iter()
            .filter_map(|n| tensors.remove(n))
            .collect())
    }
}
