//! The root DAG checked into a plan: every task's component and executor found, its
//! dependencies (`dependentTasks` and data flow) known, an order without cycles, and every
//! feature the local runner does not do yet refused by task name.

use super::error::PipelineError;
use super::spec::{ComponentSpec, Container, ParameterType, PipelineSpec, Task};
use std::collections::{BTreeMap, BTreeSet};

/// One task of the root DAG, ready to run once its dependencies succeeded.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    pub name: String,
    pub task: Task,
    pub component_name: String,
    pub component: ComponentSpec,
    pub container: Container,
    /// Tasks that must succeed first.
    pub deps: BTreeSet<String>,
}

/// The checked root DAG.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tasks: BTreeMap<String, PlannedTask>,
    /// A topological order (dependencies first; ties by name).
    pub order: Vec<String>,
}

fn refuse_task_features(name: &str, task: &Task) -> Result<(), PipelineError> {
    if task.parameter_iterator.is_some() {
        return Err(PipelineError::unsupported(
            name,
            "parameterIterator (dsl.ParallelFor)",
        ));
    }
    if task.artifact_iterator.is_some() {
        return Err(PipelineError::unsupported(
            name,
            "artifactIterator (dsl.ParallelFor over artifacts)",
        ));
    }
    if task.iterator_policy.is_some() {
        return Err(PipelineError::unsupported(
            name,
            "iteratorPolicy (dsl.ParallelFor parallelism)",
        ));
    }
    if let Some(tp) = &task.trigger_policy {
        if tp.get("condition").is_some() {
            return Err(PipelineError::unsupported(
                name,
                "triggerPolicy.condition (dsl.If / dsl.Elif / dsl.Else / dsl.Condition)",
            ));
        }
        match tp.get("strategy").and_then(|s| s.as_str()) {
            None | Some("ALL_UPSTREAM_TASKS_SUCCEEDED") => {}
            Some(s) => {
                return Err(PipelineError::unsupported(
                    name,
                    format!("triggerPolicy.strategy {s} (dsl.ExitHandler exit task)"),
                ))
            }
        }
    }
    if let Some(rp) = &task.retry_policy {
        if rp
            .get("maxRetryCount")
            .and_then(|n| n.as_f64())
            .unwrap_or(0.0)
            > 0.0
        {
            return Err(PipelineError::unsupported(name, "retryPolicy (.set_retry)"));
        }
    }
    Ok(())
}

fn refuse_component_features(name: &str, comp: &ComponentSpec) -> Result<(), PipelineError> {
    for (p, spec) in comp.input_definitions.parameters.iter() {
        if spec.parameter_type == ParameterType::TaskFinalStatus {
            return Err(PipelineError::unsupported(
                name,
                format!("input '{p}' of type TASK_FINAL_STATUS (dsl.PipelineTaskFinalStatus)"),
            ));
        }
    }
    for (a, spec) in comp
        .input_definitions
        .artifacts
        .iter()
        .chain(comp.output_definitions.artifacts.iter())
    {
        if spec.is_artifact_list {
            return Err(PipelineError::unsupported(
                name,
                format!("artifact list '{a}' (List[Artifact] / dsl.Collected)"),
            ));
        }
    }
    Ok(())
}

/// Checks the root DAG of `spec` and orders its tasks.
pub fn plan(spec: &PipelineSpec) -> Result<Plan, PipelineError> {
    let dag = spec.root.dag.as_ref().ok_or_else(|| {
        PipelineError::Read("root has no dag: not a pipeline (a single component?)".into())
    })?;
    if let Some(a) = spec.root.input_definitions.artifacts.keys().next() {
        return Err(PipelineError::PipelineUnsupported(format!(
            "pipeline input artifact '{a}'"
        )));
    }
    for (out, p) in &dag.outputs.parameters {
        if p.value_from_oneof.is_some() {
            return Err(PipelineError::PipelineUnsupported(format!(
                "pipeline output '{out}' from dsl.OneOf"
            )));
        }
        if let Some(v) = &p.value_from_parameter {
            if !dag.tasks.contains_key(&v.producer_subtask) {
                return Err(PipelineError::Read(format!(
                    "pipeline output '{out}': producer task '{}' not found",
                    v.producer_subtask
                )));
            }
        }
    }
    let root_inputs = &spec.root.input_definitions.parameters;
    let mut tasks = BTreeMap::new();
    for (name, task) in &dag.tasks {
        refuse_task_features(name, task)?;
        let cname = &task.component_ref.name;
        let comp = spec.components.get(cname).ok_or_else(|| {
            PipelineError::task(name, format!("component '{cname}' not found in components"))
        })?;
        if comp.dag.is_some() {
            return Err(PipelineError::unsupported(
                name,
                format!(
                    "nested DAG (component '{cname}': a pipeline used as a component, or a \
                     dsl.If / dsl.ParallelFor / dsl.ExitHandler group)"
                ),
            ));
        }
        refuse_component_features(name, comp)?;
        let label = comp.executor_label.as_deref().ok_or_else(|| {
            PipelineError::task(name, format!("component '{cname}' has no executorLabel"))
        })?;
        let exec = spec.deployment_spec.executors.get(label).ok_or_else(|| {
            PipelineError::task(
                name,
                format!("executor '{label}' not found in deploymentSpec.executors"),
            )
        })?;
        if exec.importer.is_some() {
            return Err(PipelineError::unsupported(name, "importer (dsl.importer)"));
        }
        if exec.resolver.is_some() {
            return Err(PipelineError::unsupported(name, "resolver"));
        }
        let container = exec.container.clone().ok_or_else(|| {
            PipelineError::task(name, format!("executor '{label}' has no container"))
        })?;
        if container.command.is_empty() && container.args.is_empty() {
            return Err(PipelineError::task(
                name,
                format!(
                    "executor '{label}' has neither command nor args (the image's entrypoint \
                     cannot run locally)"
                ),
            ));
        }
        let mut deps: BTreeSet<String> = task.dependent_tasks.iter().cloned().collect();
        for (input, b) in &task.inputs.parameters {
            if b.task_final_status.is_some() {
                return Err(PipelineError::unsupported(
                    name,
                    format!("input '{input}' from taskFinalStatus (dsl.PipelineTaskFinalStatus)"),
                ));
            }
            if b.parameter_expression_selector.is_some() {
                return Err(PipelineError::unsupported(
                    name,
                    format!("input '{input}' with parameterExpressionSelector"),
                ));
            }
            if let Some(p) = &b.component_input_parameter {
                if !root_inputs.contains_key(p) {
                    return Err(PipelineError::task(
                        name,
                        format!("input '{input}': pipeline parameter '{p}' is not declared"),
                    ));
                }
            }
            if let Some(t) = &b.task_output_parameter {
                deps.insert(t.producer_task.clone());
            }
            if b.component_input_parameter.is_none()
                && b.task_output_parameter.is_none()
                && b.runtime_value.is_none()
            {
                return Err(PipelineError::unsupported(
                    name,
                    format!("input '{input}': a parameter binding of an unknown kind"),
                ));
            }
        }
        for (input, b) in &task.inputs.artifacts {
            if b.component_input_artifact.is_some() {
                return Err(PipelineError::unsupported(
                    name,
                    format!("input artifact '{input}' from a pipeline input artifact"),
                ));
            }
            match &b.task_output_artifact {
                Some(t) => {
                    deps.insert(t.producer_task.clone());
                }
                None => {
                    return Err(PipelineError::unsupported(
                        name,
                        format!("input artifact '{input}' not from an upstream task's output"),
                    ))
                }
            }
        }
        for d in &deps {
            if !dag.tasks.contains_key(d) {
                return Err(PipelineError::task(
                    name,
                    format!("depends on unknown task '{d}'"),
                ));
            }
        }
        tasks.insert(
            name.clone(),
            PlannedTask {
                name: name.clone(),
                task: task.clone(),
                component_name: cname.clone(),
                component: comp.clone(),
                container,
                deps,
            },
        );
    }
    // Producers' outputs must exist.
    for t in tasks.values() {
        for (input, b) in &t.task.inputs.parameters {
            if let Some(p) = &b.task_output_parameter {
                let declared = tasks.get(&p.producer_task).is_some_and(|prod| {
                    prod.component
                        .output_definitions
                        .parameters
                        .contains_key(&p.output_parameter_key)
                });
                if !declared {
                    return Err(PipelineError::task(
                        &t.name,
                        format!(
                            "input '{input}': task '{}' has no output parameter '{}'",
                            p.producer_task, p.output_parameter_key
                        ),
                    ));
                }
            }
        }
        for (input, b) in &t.task.inputs.artifacts {
            if let Some(a) = &b.task_output_artifact {
                let declared = tasks.get(&a.producer_task).is_some_and(|prod| {
                    prod.component
                        .output_definitions
                        .artifacts
                        .contains_key(&a.output_artifact_key)
                });
                if !declared {
                    return Err(PipelineError::task(
                        &t.name,
                        format!(
                            "input artifact '{input}': task '{}' has no output artifact '{}'",
                            a.producer_task, a.output_artifact_key
                        ),
                    ));
                }
            }
        }
    }
    let order = topological(&tasks)?;
    Ok(Plan { tasks, order })
}

/// Kahn's algorithm; the tasks left over name the cycle.
fn topological(tasks: &BTreeMap<String, PlannedTask>) -> Result<Vec<String>, PipelineError> {
    let mut waiting: BTreeMap<&str, usize> = tasks
        .iter()
        .map(|(n, t)| (n.as_str(), t.deps.len()))
        .collect();
    let mut order = Vec::with_capacity(tasks.len());
    loop {
        let ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(t, _)| *t)
            .collect();
        if ready.is_empty() {
            break;
        }
        for r in ready {
            waiting.remove(r);
            order.push(r.to_string());
            for (n, t) in tasks {
                if t.deps.contains(r) {
                    if let Some(c) = waiting.get_mut(n.as_str()) {
                        *c = c.saturating_sub(1);
                    }
                }
            }
        }
    }
    if waiting.is_empty() {
        Ok(order)
    } else {
        Err(PipelineError::Cycle(
            waiting.keys().map(|s| s.to_string()).collect(),
        ))
    }
}
