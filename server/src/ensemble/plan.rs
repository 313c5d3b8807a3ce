//! An ensemble's steps, checked and put in an order that runs: every tensor a step reads is an
//! ensemble input or the output of a step before it, every tensor is produced once, every
//! ensemble output is produced, and the steps form no cycle.

use crate::config::ModelConfig;
use osprey_protocol::grpc::inference::model_config::SchedulingChoice;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One step: a model, the version it asks for, and its tensor maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's position in `ensemble_scheduling.step`, for messages.
    pub index: usize,
    pub model: String,
    /// `None`: the model's latest ready version (`model_version: -1`).
    pub version: Option<String>,
    /// The step model's input name → the ensemble tensor it reads (`input_map`).
    pub inputs: BTreeMap<String, String>,
    /// The step model's output name → the ensemble tensor it writes (`output_map`).
    pub outputs: BTreeMap<String, String>,
}

impl Step {
    /// How messages name the step: `step 1 (model 'encoder')`.
    pub fn label(&self) -> String {
        format!("step {} (model '{}')", self.index, self.model)
    }
}

/// The steps of an ensemble, in an order in which each step's inputs exist when it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The ensemble's outputs, as its configuration lists them.
    pub outputs: Vec<String>,
}

fn invalid(msg: String) -> String {
    format!("ensemble_scheduling: {msg}")
}

impl Plan {
    /// Reads and checks `cfg.ensemble_scheduling` against the ensemble's own inputs and
    /// outputs. `exists` says whether a model is in the repository.
    pub fn of(cfg: &ModelConfig, exists: impl Fn(&str) -> bool) -> Result<Plan, String> {
        let Some(SchedulingChoice::EnsembleScheduling(sched)) = &cfg.scheduling_choice else {
            return Err(invalid(
                "platform \"ensemble\" needs ensemble_scheduling".into(),
            ));
        };
        if sched.step.is_empty() {
            return Err(invalid("no step".into()));
        }
        if cfg.input.is_empty() || cfg.output.is_empty() {
            return Err(invalid(
                "an ensemble needs its `input` and `output` in config.pbtxt".into(),
            ));
        }
        let mut steps = Vec::with_capacity(sched.step.len());
        for (index, s) in sched.step.iter().enumerate() {
            let step = Step {
                index,
                model: s.model_name.clone(),
                version: (s.model_version >= 0).then(|| s.model_version.to_string()),
                inputs: s
                    .input_map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                outputs: s
                    .output_map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            if step.model.is_empty() {
                return Err(invalid(format!("step {index}: model_name is empty")));
            }
            if step.model == cfg.name {
                return Err(invalid(format!(
                    "{}: an ensemble cannot run itself",
                    step.label()
                )));
            }
            if !exists(&step.model) {
                return Err(invalid(format!(
                    "{}: no such model in the repository",
                    step.label()
                )));
            }
            if step.inputs.is_empty() || step.outputs.is_empty() {
                return Err(invalid(format!(
                    "{}: input_map and output_map must each map at least one tensor",
                    step.label()
                )));
            }
            steps.push(step);
        }
        // Who writes each tensor: the ensemble's inputs, then each step's outputs, once.
        let mut writer: HashMap<&str, Option<usize>> = HashMap::new();
        for i in &cfg.input {
            writer.insert(i.name.as_str(), None);
        }
        for (n, step) in steps.iter().enumerate() {
            for t in step.outputs.values() {
                if writer.insert(t.as_str(), Some(n)).is_some() {
                    return Err(invalid(format!(
                        "{}: tensor '{t}' is already an ensemble input or another step's output",
                        step.label()
                    )));
                }
            }
        }
        for step in &steps {
            if let Some(t) = step
                .inputs
                .values()
                .find(|t| !writer.contains_key(t.as_str()))
            {
                return Err(invalid(format!(
                    "{}: tensor '{t}' is neither an ensemble input nor any step's output",
                    step.label()
                )));
            }
        }
        // Kahn's order: a step runs once every step it reads from has run.
        let deps: Vec<HashSet<usize>> = steps
            .iter()
            .map(|s| {
                s.inputs
                    .values()
                    .filter_map(|t| writer.get(t.as_str()).copied().flatten())
                    .collect()
            })
            .collect();
        let mut done = vec![false; steps.len()];
        let mut order = Vec::with_capacity(steps.len());
        while order.len() < steps.len() {
            let ready = (0..steps.len())
                .find(|&n| !done[n] && deps[n].iter().all(|d| done[*d]))
                .ok_or_else(|| {
                    let stuck = (0..steps.len()).find(|&n| !done[n]).unwrap_or(0);
                    invalid(format!(
                        "the steps form a cycle through {}",
                        steps.get(stuck).map_or_else(String::new, Step::label)
                    ))
                })?;
            done[ready] = true;
            order.push(ready);
        }
        if let Some(o) = cfg
            .output
            .iter()
            .find(|o| !matches!(writer.get(o.name.as_str()), Some(Some(_))))
        {
            return Err(invalid(format!(
                "ensemble output '{}' is not written by any step",
                o.name
            )));
        }
        Ok(Plan {
            steps: order.into_iter().map(|n| steps[n].clone()).collect(),
            outputs: cfg.output.iter().map(|o| o.name.clone()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    const IO: &str = r#"
        name: "chain"
        platform: "ensemble"
        input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] } ]"#;

    fn step(model: &str, from: &str, to: &str) -> String {
        format!(
            r#"step [ {{ model_name: "{model}" model_version: -1
                input_map {{ key: "x" value: "{from}" }} output_map {{ key: "y" value: "{to}" }} }} ]"#
        )
    }

    fn plan(steps: &[String]) -> Result<Plan, String> {
        let text = format!("{IO}\nensemble_scheduling {{ {} }}", steps.join("\n"));
        Plan::of(&parse_pbtxt(&text).expect("parses"), |m| m != "missing")
    }

    #[test]
    fn steps_run_in_dependency_order() {
        let p = plan(&[step("b", "MID", "OUT"), step("a", "IN", "MID")]).expect("plan");
        let order: Vec<&str> = p.steps.iter().map(|s| s.model.as_str()).collect();
        assert_eq!(order, ["a", "b"]);
        assert_eq!(p.steps[0].index, 1);
        assert_eq!(p.steps[0].version, None);
    }

    #[test]
    fn bad_graphs_are_refused_naming_the_step() {
        for (steps, says) in [
            (
                vec![
                    step("a", "IN", "B"),
                    step("b", "B", "A"),
                    step("c", "A", "B"),
                ],
                "step 2 (model 'c'): tensor 'B' is already",
            ),
            (
                vec![
                    step("a", "C", "B"),
                    step("b", "B", "C"),
                    step("c", "C", "OUT"),
                ],
                "cycle through step 0 (model 'a')",
            ),
            (
                vec![step("missing", "IN", "OUT")],
                "step 0 (model 'missing'): no such model",
            ),
            (vec![step("a", "NOPE", "OUT")], "tensor 'NOPE' is neither"),
            (
                vec![step("a", "IN", "MID")],
                "ensemble output 'OUT' is not written",
            ),
            (vec![step("chain", "IN", "OUT")], "cannot run itself"),
            (vec![], "no step"),
        ] {
            let e = plan(&steps).expect_err("refused");
            assert!(e.starts_with("ensemble_scheduling: "), "{e}");
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}
