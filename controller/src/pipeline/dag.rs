//! Every DAG of a compiled pipeline checked before anything runs: the root and each DAG
//! component (nested pipelines, dsl.If/Elif/Else groups, dsl.ParallelFor bodies,
//! dsl.ExitHandler groups) has its tasks' components and executors, its bindings point at
//! declared inputs and outputs of sibling tasks, its conditions compile, and its tasks are
//! ordered without cycles. What the runner does not do is refused by task name.

use super::error::PipelineError;
use super::spec::{ComponentSpec, PipelineSpec, Task};
use std::collections::{BTreeMap, BTreeSet};

/// The component name of the root DAG in [`Checked::graphs`].
pub const ROOT: &str = "";

/// What a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A container (or importer) executor.
    Leaf,
    /// A DAG component run once (nested pipeline, condition group, exit handler group).
    Dag,
    /// A DAG component run once per item (`parameterIterator`).
    Loop,
}

/// One DAG's tasks: what each waits for and an order (dependencies first).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub deps: BTreeMap<String, BTreeSet<String>>,
    pub kinds: BTreeMap<String, TaskKind>,
    pub order: Vec<String>,
}

/// The checked pipeline: one graph per DAG component ([`ROOT`] for the root).
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub graphs: BTreeMap<String, Graph>,
}

/// The component a DAG name stands for ([`ROOT`] is the root).
pub fn component<'s>(spec: &'s PipelineSpec, name: &str) -> Option<&'s ComponentSpec> {
    if name == ROOT {
        Some(&spec.root)
    } else {
        spec.components.get(name)
    }
}

/// Checks the whole pipeline.
pub fn check(spec: &PipelineSpec) -> Result<Checked, PipelineError> {
    if spec.root.dag.is_none() {
        return Err(PipelineError::Read(
            "root has no dag: not a pipeline (a single component?)".into(),
        ));
    }
    if let Some(a) = spec.root.input_definitions.artifacts.keys().next() {
        return Err(PipelineError::PipelineUnsupported(format!(
            "pipeline input artifact '{a}' (use dsl.importer inside the pipeline)"
        )));
    }
    let mut checked = Checked::default();
    let mut stack = Vec::new();
    check_dag(spec, ROOT, &mut checked, &mut stack)?;
    check_producers(spec, &checked)?;
    Ok(checked)
}

fn valid_task_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn check_dag(
    spec: &PipelineSpec,
    cname: &str,
    checked: &mut Checked,
    stack: &mut Vec<String>,
) -> Result<(), PipelineError> {
    if checked.graphs.contains_key(cname) {
        return Ok(());
    }
    if stack.iter().any(|s| s == cname) {
        return Err(PipelineError::Read(format!(
            "component '{cname}' contains itself (through {})",
            stack.join(" -> ")
        )));
    }
    let comp = component(spec, cname)
        .ok_or_else(|| PipelineError::Read(format!("component '{cname}' not found")))?;
    let Some(dag) = &comp.dag else {
        return Ok(());
    };
    stack.push(cname.to_string());
    let mut graph = Graph::default();
    for (name, task) in &dag.tasks {
        if !valid_task_name(name) {
            return Err(PipelineError::task(
                name,
                "task names may hold only letters, digits, '-', '_' and '.' (and not start with '.')",
            ));
        }
        let kind = check_task(spec, comp, &dag.tasks, name, task)?;
        if kind != TaskKind::Leaf {
            check_dag(spec, &task.component_ref.name, checked, stack)?;
        }
        graph.kinds.insert(name.clone(), kind);
        graph.deps.insert(name.clone(), task_deps(task));
    }
    for (name, deps) in &graph.deps {
        if let Some(d) = deps.iter().find(|d| !dag.tasks.contains_key(*d)) {
            return Err(PipelineError::task(
                name,
                format!("depends on unknown task '{d}'"),
            ));
        }
    }
    for (out, p) in &dag.outputs.parameters {
        let selectors = p.value_from_parameter.iter().chain(
            p.value_from_oneof
                .iter()
                .flat_map(|o| o.parameter_selectors.iter()),
        );
        for s in selectors {
            if !dag.tasks.contains_key(&s.producer_subtask) {
                return Err(PipelineError::Read(format!(
                    "output '{out}' of {}: producer task '{}' not found",
                    dag_label(cname),
                    s.producer_subtask
                )));
            }
        }
    }
    for (out, a) in &dag.outputs.artifacts {
        for s in &a.artifact_selectors {
            if !dag.tasks.contains_key(&s.producer_subtask) {
                return Err(PipelineError::Read(format!(
                    "output artifact '{out}' of {}: producer task '{}' not found",
                    dag_label(cname),
                    s.producer_subtask
                )));
            }
        }
    }
    graph.order = topological(&graph.deps)?;
    stack.pop();
    checked.graphs.insert(cname.to_string(), graph);
    Ok(())
}

fn dag_label(cname: &str) -> String {
    if cname == ROOT {
        "the pipeline".into()
    } else {
        format!("component '{cname}'")
    }
}

/// `dependentTasks` plus the producers of the task's inputs.
fn task_deps(task: &Task) -> BTreeSet<String> {
    let mut deps: BTreeSet<String> = task.dependent_tasks.iter().cloned().collect();
    for b in task.inputs.parameters.values() {
        if let Some(t) = &b.task_output_parameter {
            deps.insert(t.producer_task.clone());
        }
        if let Some(t) = &b.task_final_status {
            deps.insert(t.producer_task.clone());
        }
    }
    for b in task.inputs.artifacts.values() {
        if let Some(t) = &b.task_output_artifact {
            deps.insert(t.producer_task.clone());
        }
    }
    deps
}

fn check_task(
    spec: &PipelineSpec,
    parent: &ComponentSpec,
    siblings: &BTreeMap<String, Task>,
    name: &str,
    task: &Task,
) -> Result<TaskKind, PipelineError> {
    let cname = &task.component_ref.name;
    let comp = spec.components.get(cname).ok_or_else(|| {
        PipelineError::task(name, format!("component '{cname}' not found in components"))
    })?;
    if task.artifact_iterator.is_some() {
        return Err(PipelineError::unsupported(
            name,
            "artifactIterator (dsl.ParallelFor over a list of artifacts)",
        ));
    }
    if let Some(tp) = &task.trigger_policy {
        if let Some(c) = &tp.condition {
            cel::Program::compile(c).map_err(|e| {
                PipelineError::task(name, format!("triggerPolicy.condition {c:?}: {e}"))
            })?;
        }
        match tp.strategy.as_deref() {
            None
            | Some("ALL_UPSTREAM_TASKS_SUCCEEDED")
            | Some("ALL_UPSTREAM_TASKS_COMPLETED")
            | Some("TRIGGER_STRATEGY_UNSPECIFIED") => {}
            Some(s) => {
                return Err(PipelineError::task(
                    name,
                    format!("triggerPolicy.strategy: unknown strategy {s:?}"),
                ))
            }
        }
    }
    let kind = match (&comp.dag, &task.parameter_iterator) {
        (Some(_), Some(it)) => {
            if !comp
                .input_definitions
                .parameters
                .contains_key(&it.item_input)
            {
                return Err(PipelineError::task(
                    name,
                    format!(
                        "parameterIterator.itemInput '{}' is not an input of component '{cname}'",
                        it.item_input
                    ),
                ));
            }
            match (&it.items.raw, &it.items.input_parameter) {
                (Some(raw), None) => {
                    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
                        PipelineError::task(
                            name,
                            format!("parameterIterator.items.raw is not JSON: {e}"),
                        )
                    })?;
                    if !v.is_array() {
                        return Err(PipelineError::task(
                            name,
                            "parameterIterator.items.raw is not a list",
                        ));
                    }
                }
                (None, Some(p)) => {
                    if !task.inputs.parameters.contains_key(p) {
                        return Err(PipelineError::task(
                            name,
                            format!(
                                "parameterIterator.items.inputParameter '{p}' is not bound in \
                                 the task's inputs"
                            ),
                        ));
                    }
                }
                _ => {
                    return Err(PipelineError::task(
                        name,
                        "parameterIterator.items needs exactly one of raw and inputParameter",
                    ))
                }
            }
            TaskKind::Loop
        }
        (None, Some(_)) => {
            return Err(PipelineError::task(
                name,
                format!("parameterIterator on component '{cname}', which has no dag"),
            ))
        }
        (Some(_), None) => TaskKind::Dag,
        (None, None) => {
            check_executor(spec, comp, name, cname)?;
            TaskKind::Leaf
        }
    };
    check_bindings(parent, comp, siblings, name, task)?;
    Ok(kind)
}

fn check_executor(
    spec: &PipelineSpec,
    comp: &ComponentSpec,
    name: &str,
    cname: &str,
) -> Result<(), PipelineError> {
    let label = comp.executor_label.as_deref().ok_or_else(|| {
        PipelineError::task(
            name,
            format!("component '{cname}' has neither a dag nor an executorLabel"),
        )
    })?;
    let exec = spec.deployment_spec.executors.get(label).ok_or_else(|| {
        PipelineError::task(
            name,
            format!("executor '{label}' not found in deploymentSpec.executors"),
        )
    })?;
    if exec.resolver.is_some() {
        return Err(PipelineError::unsupported(name, "resolver"));
    }
    if let Some(imp) = &exec.importer {
        if imp.artifact_uri.constant.is_none() && imp.artifact_uri.runtime_parameter.is_none() {
            return Err(PipelineError::task(
                name,
                format!("importer '{label}' has no artifactUri"),
            ));
        }
        return Ok(());
    }
    let container = exec
        .container
        .as_ref()
        .ok_or_else(|| PipelineError::task(name, format!("executor '{label}' has no container")))?;
    if container.command.is_empty() && container.args.is_empty() {
        return Err(PipelineError::task(
            name,
            format!(
                "executor '{label}' has neither command nor args (the image's entrypoint cannot \
                 be run as a local process)"
            ),
        ));
    }
    for (a, s) in &comp.output_definitions.artifacts {
        if s.is_artifact_list {
            return Err(PipelineError::unsupported(
                name,
                format!("output artifact list '{a}' of a container component"),
            ));
        }
    }
    Ok(())
}

fn check_bindings(
    parent: &ComponentSpec,
    comp: &ComponentSpec,
    siblings: &BTreeMap<String, Task>,
    name: &str,
    task: &Task,
) -> Result<(), PipelineError> {
    let sibling_comp = |producer: &str| -> Result<&str, PipelineError> {
        siblings
            .get(producer)
            .map(|t| t.component_ref.name.as_str())
            .ok_or_else(|| {
                PipelineError::task(name, format!("depends on unknown task '{producer}'"))
            })
    };
    for (input, b) in &task.inputs.parameters {
        if let Some(p) = &b.component_input_parameter {
            if !parent.input_definitions.parameters.contains_key(p) {
                return Err(PipelineError::task(
                    name,
                    format!(
                        "input '{input}': parameter '{p}' is not an input of the enclosing DAG"
                    ),
                ));
            }
        } else if let Some(t) = &b.task_output_parameter {
            sibling_comp(&t.producer_task)?;
        } else if let Some(t) = &b.task_final_status {
            sibling_comp(&t.producer_task)?;
        } else if b.runtime_value.is_none() {
            return Err(PipelineError::unsupported(
                name,
                format!("input '{input}': a parameter binding of an unknown kind"),
            ));
        }
        if let Some(sel) = &b.parameter_expression_selector {
            cel::Program::compile(sel).map_err(|e| {
                PipelineError::task(
                    name,
                    format!("input '{input}': parameterExpressionSelector {sel:?}: {e}"),
                )
            })?;
        }
        if !comp.input_definitions.parameters.contains_key(input) {
            return Err(PipelineError::task(
                name,
                format!(
                    "input '{input}' is not an input of component '{}'",
                    task.component_ref.name
                ),
            ));
        }
    }
    for (input, b) in &task.inputs.artifacts {
        if let Some(a) = &b.component_input_artifact {
            if !parent.input_definitions.artifacts.contains_key(a) {
                return Err(PipelineError::task(
                    name,
                    format!(
                        "input artifact '{input}': artifact '{a}' is not an input of the \
                         enclosing DAG"
                    ),
                ));
            }
        } else if b.task_output_artifact.is_none() {
            return Err(PipelineError::unsupported(
                name,
                format!("input artifact '{input}' bound to neither a task output nor a DAG input"),
            ));
        }
    }
    Ok(())
}

/// Checks that each producer declares the output a binding reads (run after all components
/// are known, so that DAG producers' outputs count too).
fn check_producers(spec: &PipelineSpec, checked: &Checked) -> Result<(), PipelineError> {
    for cname in checked.graphs.keys() {
        let Some(dag) = component(spec, cname).and_then(|c| c.dag.as_ref()) else {
            continue;
        };
        let outputs_of = |producer: &str| {
            dag.tasks
                .get(producer)
                .and_then(|t| spec.components.get(&t.component_ref.name))
                .map(|c| &c.output_definitions)
        };
        for (name, task) in &dag.tasks {
            for (input, b) in &task.inputs.parameters {
                if let Some(p) = &b.task_output_parameter {
                    if !outputs_of(&p.producer_task)
                        .is_some_and(|o| o.parameters.contains_key(&p.output_parameter_key))
                    {
                        return Err(PipelineError::task(
                            name,
                            format!(
                                "input '{input}': task '{}' has no output parameter '{}'",
                                p.producer_task, p.output_parameter_key
                            ),
                        ));
                    }
                }
            }
            for (input, b) in &task.inputs.artifacts {
                if let Some(a) = &b.task_output_artifact {
                    if !outputs_of(&a.producer_task)
                        .is_some_and(|o| o.artifacts.contains_key(&a.output_artifact_key))
                    {
                        return Err(PipelineError::task(
                            name,
                            format!(
                                "input artifact '{input}': task '{}' has no output artifact '{}'",
                                a.producer_task, a.output_artifact_key
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Kahn's algorithm (ties by name); the tasks left over name the cycle.
fn topological(deps: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<String>, PipelineError> {
    let mut waiting: BTreeMap<&str, usize> =
        deps.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
    let mut order = Vec::with_capacity(deps.len());
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
            for (n, d) in deps {
                if d.contains(r) {
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
