//! The run engine, independent of where tasks run: a pure state machine over one record per
//! task instance. [`Engine::step`] starts what is ready (returning the container tasks to
//! launch), [`Engine::complete`] takes a launched task's result. Nested DAGs, conditions
//! (CEL), loops with their parallelism limit and collected outputs, exit handlers
//! (`ALL_UPSTREAM_TASKS_COMPLETED` and `PipelineTaskFinalStatus`), retries with back-off,
//! importers and cache keys live here; processes (`local`) and pods (`kube`) do not.
//!
//! Records are keyed by path: `train` at the root, `exit-handler-1/train` inside a DAG task,
//! `for-loop-2/0/square` inside iteration 0 of a loop. The records are the whole state: an
//! engine rebuilt from them ([`Engine::restore`]) carries on where the last one stopped.

use super::cache;
use super::cel;
use super::dag::{self, Checked, TaskKind, ROOT};
use super::error::PipelineError;
use super::executor::{artifact_list, coerce, executor_input, TaskInputs, TaskOutputs};
use super::spec::{ComponentSpec, Container, Definitions, PipelineSpec, RetryPolicy, Task};
use super::time::{add_secs, parse_rfc3339, rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// A task's (and a run's) state, as KFP names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    #[default]
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Canceled,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Succeeded => "SUCCEEDED",
            TaskState::Skipped => "SKIPPED",
            TaskState::Failed => "FAILED",
            TaskState::Canceled => "CANCELED",
        }
    }
    pub fn finished(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Skipped | TaskState::Failed | TaskState::Canceled
        )
    }
}

/// What a record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    #[default]
    Task,
    Dag,
    Loop,
    Iteration,
}

/// One task instance's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub state: TaskState,
    pub kind: NodeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Container runs started (retries included).
    #[serde(default)]
    pub attempts: u32,
    /// A retry waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// DAG, loop and iteration records: the inputs their tasks read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<TaskInputs>,
    /// Loop records: how many iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    #[serde(default)]
    pub outputs: TaskOutputs,
    /// The outputs came from the cache.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// The fingerprint of the latest launch, when it may be cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Skipped because its condition was false (dependents still run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub condition_false: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Record {
    fn new(kind: NodeKind) -> Record {
        Record {
            kind,
            ..Record::default()
        }
    }
}

/// A container task to start.
#[derive(Debug, Clone)]
pub struct Launch {
    pub path: String,
    /// 1 for the first run, 2 for the first retry...
    pub attempt: u32,
    /// Where its outputs go (`<run dir>/<path>`).
    pub task_dir: PathBuf,
    pub executor_input: Value,
    pub container: Container,
    /// The component's output definitions, to read its outputs back.
    pub outputs: Definitions,
    /// Its fingerprint when it may be served from the cache.
    pub cache_key: Option<String>,
}

/// How a launched task ended.
#[derive(Debug, Clone)]
pub enum Completion {
    Succeeded(TaskOutputs),
    /// Outputs reused from the cache: nothing ran.
    Cached(TaskOutputs),
    Failed(String),
    Canceled(String),
}

/// What [`Engine::step`] asks of the runner.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub launches: Vec<Launch>,
    /// When to step again without any completion (a retry's back-off ends).
    pub wake_at: Option<SystemTime>,
}

/// Where a run's files go and what it is called.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The pipeline's name.
    pub job_name: String,
    /// This run's id.
    pub run_id: String,
    /// Directory of this run's task directories (as the tasks see it).
    pub run_dir: PathBuf,
    /// The pipeline root (as the tasks see it).
    pub pipeline_root: String,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most container tasks running at once.
    pub parallelism: usize,
    /// Compute cache keys for tasks with `cachingOptions.enableCache`.
    pub caching: bool,
}

/// A run in progress.
#[derive(Debug, Clone)]
pub struct Engine {
    spec: Arc<PipelineSpec>,
    checked: Arc<Checked>,
    pub info: RunInfo,
    pub options: Options,
    /// The pipeline's input parameters.
    pub inputs: BTreeMap<String, Value>,
    pub records: BTreeMap<String, Record>,
    pub canceled: bool,
}

/// One DAG instance being walked: its component and the inputs its tasks read.
struct Frame {
    prefix: String,
    component: String,
    inputs: TaskInputs,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// A protobuf Duration in JSON (`"3s"`, `"1.5s"`; `m`/`h` accepted) in seconds.
pub fn duration_secs(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * unit)
}

/// The back-off before retry `n` (1 = the first retry), KFP's way: `backoffDuration ×
/// backoffFactor^(n-1)`, at most `backoffMaxDuration` (defaults 0 s, 2, 3600 s).
pub fn backoff_secs(policy: &RetryPolicy, n: u32) -> f64 {
    let base = policy
        .backoff_duration
        .as_deref()
        .and_then(duration_secs)
        .unwrap_or(0.0);
    let factor = policy
        .backoff_factor
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(2.0);
    let max = policy
        .backoff_max_duration
        .as_deref()
        .and_then(duration_secs)
        .unwrap_or(3600.0);
    let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
    (base * factor.powi(exp)).min(max)
}

impl Engine {
    /// Checks `spec` and starts an empty run.
    pub fn new(
        spec: PipelineSpec,
        inputs: BTreeMap<String, Value>,
        info: RunInfo,
        options: Options,
    ) -> Result<Engine, PipelineError> {
        Engine::restore(spec, inputs, info, options, BTreeMap::new())
    }

    /// An engine carrying on from `records` (a run's saved state). Pipeline inputs not given
    /// take their declared defaults.
    pub fn restore(
        spec: PipelineSpec,
        mut inputs: BTreeMap<String, Value>,
        info: RunInfo,
        options: Options,
        records: BTreeMap<String, Record>,
    ) -> Result<Engine, PipelineError> {
        let checked = dag::check(&spec)?;
        for (name, p) in &spec.root.input_definitions.parameters {
            if inputs.contains_key(name) {
                continue;
            }
            if let Some(d) = &p.default_value {
                let v =
                    coerce(d, p.parameter_type).map_err(|message| PipelineError::Parameter {
                        name: name.clone(),
                        message: format!("default value: {message}"),
                    })?;
                inputs.insert(name.clone(), v);
            }
        }
        Ok(Engine {
            spec: Arc::new(spec),
            checked: Arc::new(checked),
            info,
            options,
            inputs,
            records,
            canceled: false,
        })
    }

    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// Container tasks running now.
    pub fn running(&self) -> Vec<String> {
        self.records
            .iter()
            .filter(|(_, r)| r.kind == NodeKind::Task && r.state == TaskState::Running)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Stops starting tasks: what has not started is CANCELED; the runner stops the running
    /// ones and reports them with [`Completion::Canceled`].
    pub fn cancel(&mut self) {
        self.canceled = true;
    }

    /// Starts what is ready. Call again after every completion, and at `wake_at`.
    pub fn step(&mut self, now: SystemTime) -> Step {
        let mut step = Step::default();
        // Every pass either changes a record or stops; a record changes state a bounded number
        // of times, so this ends.
        for _ in 0..10_000 {
            let frame = Frame {
                prefix: String::new(),
                component: ROOT.to_string(),
                inputs: TaskInputs {
                    parameters: self.inputs.clone(),
                    artifacts: BTreeMap::new(),
                },
            };
            if !self.visit(&frame, now, &mut step) {
                break;
            }
        }
        step
    }

    /// Walks one DAG instance; true when a record changed.
    fn visit(&mut self, frame: &Frame, now: SystemTime, step: &mut Step) -> bool {
        let checked = self.checked.clone();
        let spec = self.spec.clone();
        let (Some(graph), Some(dag)) = (
            checked.graphs.get(&frame.component),
            dag::component(&spec, &frame.component).and_then(|c| c.dag.as_ref()),
        ) else {
            return false;
        };
        let mut changed = false;
        for name in &graph.order {
            let (Some(task), Some(kind)) = (dag.tasks.get(name), graph.kinds.get(name)) else {
                continue;
            };
            let path = join(&frame.prefix, name);
            let node = match kind {
                TaskKind::Leaf => NodeKind::Task,
                TaskKind::Dag => NodeKind::Dag,
                TaskKind::Loop => NodeKind::Loop,
            };
            let state = self
                .records
                .entry(path.clone())
                .or_insert_with(|| Record::new(node))
                .state;
            match state {
                TaskState::Pending => {
                    let deps = graph.deps.get(name).cloned().unwrap_or_default();
                    changed |= self.try_start(frame, name, task, &deps, *kind, now, step);
                }
                TaskState::Running if *kind == TaskKind::Dag => {
                    changed |= self.advance_dag(&path, &task.component_ref.name, now, step);
                }
                TaskState::Running if *kind == TaskKind::Loop => {
                    changed |= self.advance_loop(&path, task, now, step);
                }
                _ => {}
            }
        }
        changed
    }

    fn set(&mut self, path: &str, f: impl FnOnce(&mut Record)) {
        if let Some(r) = self.records.get_mut(path) {
            f(r);
        }
    }

    fn finish(&mut self, path: &str, state: TaskState, message: Option<String>, now: SystemTime) {
        self.set(path, |r| {
            r.state = state;
            r.end_time = Some(rfc3339(now));
            if r.start_time.is_none() && state != TaskState::Skipped {
                r.start_time = r.end_time.clone();
            }
            r.message = message;
            r.retry_at = None;
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn try_start(
        &mut self,
        frame: &Frame,
        name: &str,
        task: &Task,
        deps: &std::collections::BTreeSet<String>,
        kind: TaskKind,
        now: SystemTime,
        step: &mut Step,
    ) -> bool {
        let path = join(&frame.prefix, name);
        let on_completed = task
            .trigger_policy
            .as_ref()
            .and_then(|t| t.strategy.as_deref())
            == Some("ALL_UPSTREAM_TASKS_COMPLETED");
        let mut blocker = None;
        for d in deps {
            let Some(r) = self.records.get(&join(&frame.prefix, d)) else {
                return false;
            };
            if !r.state.finished() {
                if on_completed {
                    return false;
                }
                continue;
            }
            let blocks = match r.state {
                TaskState::Failed | TaskState::Canceled => true,
                TaskState::Skipped => !r.condition_false,
                _ => false,
            };
            if blocks && !on_completed && blocker.is_none() {
                blocker = Some((d.clone(), r.state));
            }
        }
        if let Some((d, s)) = blocker {
            self.finish(
                &path,
                TaskState::Skipped,
                Some(format!("not run: upstream task '{d}' {}", s.name())),
                now,
            );
            return true;
        }
        let all_done = deps.iter().all(|d| {
            self.records
                .get(&join(&frame.prefix, d))
                .is_some_and(|r| r.state.finished())
        });
        if !all_done {
            return false;
        }
        if self.canceled {
            self.finish(
                &path,
                TaskState::Canceled,
                Some("not run: the run was canceled".into()),
                now,
            );
            return true;
        }
        let spec = self.spec.clone();
        let Some(comp) = spec.components.get(&task.component_ref.name) else {
            return false;
        };
        let skip = task
            .parameter_iterator
            .as_ref()
            .map(|it| it.item_input.as_str());
        let inputs = match self.resolve(frame, task, comp, skip) {
            Ok(i) => i,
            Err(e) => {
                self.finish(&path, TaskState::Failed, Some(e), now);
                return true;
            }
        };
        if let Some(cond) = task
            .trigger_policy
            .as_ref()
            .and_then(|t| t.condition.as_ref())
        {
            match cel::condition(cond, &inputs.parameters) {
                Ok(true) => {}
                Ok(false) => {
                    self.finish(
                        &path,
                        TaskState::Skipped,
                        Some(format!("condition is false: {cond}")),
                        now,
                    );
                    self.set(&path, |r| r.condition_false = true);
                    return true;
                }
                Err(e) => {
                    self.finish(
                        &path,
                        TaskState::Failed,
                        Some(format!("condition: {e}")),
                        now,
                    );
                    return true;
                }
            }
        }
        match kind {
            TaskKind::Dag => {
                self.set(&path, |r| {
                    r.state = TaskState::Running;
                    r.start_time = Some(rfc3339(now));
                    r.inputs = Some(inputs);
                });
                true
            }
            TaskKind::Loop => {
                let items = match loop_items(task, &inputs) {
                    Ok(items) => items,
                    Err(e) => {
                        self.finish(&path, TaskState::Failed, Some(e), now);
                        return true;
                    }
                };
                self.set(&path, |r| {
                    r.state = TaskState::Running;
                    r.start_time = Some(rfc3339(now));
                    r.iterations = Some(items.len());
                    r.inputs = Some(inputs);
                });
                true
            }
            TaskKind::Leaf => self.start_leaf(&path, task, comp, inputs, now, step),
        }
    }

    fn start_leaf(
        &mut self,
        path: &str,
        task: &Task,
        comp: &ComponentSpec,
        inputs: TaskInputs,
        now: SystemTime,
        step: &mut Step,
    ) -> bool {
        let spec = self.spec.clone();
        let executor = comp
            .executor_label
            .as_ref()
            .and_then(|l| spec.deployment_spec.executors.get(l));
        let Some(executor) = executor else {
            return false;
        };
        if let Some(imp) = &executor.importer {
            return match import(imp, &inputs, comp) {
                Ok(outputs) => {
                    self.set(path, |r| {
                        r.outputs = outputs;
                        r.start_time = Some(rfc3339(now));
                    });
                    self.finish(path, TaskState::Succeeded, None, now);
                    true
                }
                Err(e) => {
                    self.finish(path, TaskState::Failed, Some(e), now);
                    true
                }
            };
        }
        let Some(container) = executor.container.clone() else {
            return false;
        };
        if let Some(at) = self
            .records
            .get(path)
            .and_then(|r| r.retry_at.as_deref())
            .and_then(parse_rfc3339)
        {
            if at > now {
                step.wake_at = Some(step.wake_at.map_or(at, |w| w.min(at)));
                return false;
            }
        }
        if self.running().len() >= self.options.parallelism.max(1) {
            return false;
        }
        let task_dir = self.info.run_dir.join(path);
        let ei = executor_input(&comp.output_definitions, &inputs, &task_dir);
        let enabled = task
            .caching_options
            .as_ref()
            .is_some_and(|c| c.enable_cache);
        let cache_key = (self.options.caching && enabled)
            .then(|| cache::fingerprint(&inputs, &comp.output_definitions, &container));
        let mut attempt = 0;
        let key = cache_key.clone();
        self.set(path, |r| {
            r.cache_key = key;
            r.state = TaskState::Running;
            r.attempts += 1;
            attempt = r.attempts;
            if r.start_time.is_none() {
                r.start_time = Some(rfc3339(now));
            }
            r.retry_at = None;
        });
        step.launches.push(Launch {
            path: path.to_string(),
            attempt,
            task_dir,
            executor_input: ei,
            container,
            outputs: comp.output_definitions.clone(),
            cache_key,
        });
        true
    }

    /// A task's input values: the enclosing DAG's inputs, constants, sibling outputs, final
    /// statuses and defaults, each checked against its declared type.
    fn resolve(
        &self,
        frame: &Frame,
        task: &Task,
        comp: &ComponentSpec,
        skip: Option<&str>,
    ) -> Result<TaskInputs, String> {
        let mut inputs = TaskInputs::default();
        for (name, spec) in &comp.input_definitions.parameters {
            if Some(name.as_str()) == skip {
                continue;
            }
            let mut value = None;
            if let Some(b) = task.inputs.parameters.get(name) {
                if let Some(p) = &b.component_input_parameter {
                    value = frame.inputs.parameters.get(p).cloned();
                } else if let Some(o) = &b.task_output_parameter {
                    let producer = self.records.get(&join(&frame.prefix, &o.producer_task));
                    value = producer
                        .and_then(|r| r.outputs.parameters.get(&o.output_parameter_key))
                        .cloned();
                    if value.is_none() {
                        return Err(format!(
                            "input '{name}': task '{}' produced no output '{}'",
                            o.producer_task, o.output_parameter_key
                        ));
                    }
                } else if let Some(s) = &b.task_final_status {
                    value = Some(self.final_status(frame, &s.producer_task));
                } else if let Some(c) = b.runtime_value.as_ref().and_then(|r| r.constant.clone()) {
                    value = Some(c);
                }
                if let (Some(sel), Some(v)) = (&b.parameter_expression_selector, &value) {
                    value = Some(
                        cel::select(v, sel)
                            .map_err(|e| format!("input '{name}': selector: {e}"))?,
                    );
                }
            }
            let Some(v) = value.or_else(|| spec.default_value.clone()) else {
                if spec.is_optional {
                    continue;
                }
                return Err(format!("input '{name}' has no value"));
            };
            let v = coerce(&v, spec.parameter_type).map_err(|m| format!("input '{name}': {m}"))?;
            inputs.parameters.insert(name.clone(), v);
        }
        for (name, spec) in &comp.input_definitions.artifacts {
            let mut value = None;
            if let Some(b) = task.inputs.artifacts.get(name) {
                if let Some(o) = &b.task_output_artifact {
                    value = self
                        .records
                        .get(&join(&frame.prefix, &o.producer_task))
                        .and_then(|r| r.outputs.artifacts.get(&o.output_artifact_key))
                        .cloned();
                    if value.is_none() {
                        return Err(format!(
                            "input artifact '{name}': task '{}' produced no artifact '{}'",
                            o.producer_task, o.output_artifact_key
                        ));
                    }
                } else if let Some(a) = &b.component_input_artifact {
                    value = frame.inputs.artifacts.get(a).cloned();
                }
            }
            match value {
                Some(v) => {
                    inputs.artifacts.insert(name.clone(), v);
                }
                None if spec.is_optional => {}
                None => return Err(format!("input artifact '{name}' has no value")),
            }
        }
        Ok(inputs)
    }

    /// `PipelineTaskFinalStatus` of a finished sibling, as KFP's executor reads it.
    fn final_status(&self, frame: &Frame, producer: &str) -> Value {
        let r = self.records.get(&join(&frame.prefix, producer));
        let state = r.map_or(TaskState::Pending, |r| r.state);
        let error = match (state, r.and_then(|r| r.message.clone())) {
            (TaskState::Failed | TaskState::Canceled, m) => {
                json!({ "code": 2, "message": m.unwrap_or_default() })
            }
            _ => json!({}),
        };
        json!({
            "state": state.name(),
            "pipelineJobResourceName": self.info.run_id,
            "pipelineTaskName": producer,
            "error": error,
        })
    }

    /// Walks a running DAG task's children; finishes it when they all have.
    fn advance_dag(
        &mut self,
        path: &str,
        component: &str,
        now: SystemTime,
        step: &mut Step,
    ) -> bool {
        let inputs = self
            .records
            .get(path)
            .and_then(|r| r.inputs.clone())
            .unwrap_or_default();
        let frame = Frame {
            prefix: path.to_string(),
            component: component.to_string(),
            inputs,
        };
        let changed = self.visit(&frame, now, step);
        if let Some((state, message)) = self.dag_outcome(path, component) {
            let outputs = self.dag_outputs(path, component);
            self.set(path, |r| r.outputs = outputs);
            self.finish(path, state, message, now);
            return true;
        }
        changed
    }

    /// The state of a DAG instance whose children all finished (None while one runs).
    fn dag_outcome(&self, prefix: &str, component: &str) -> Option<(TaskState, Option<String>)> {
        let dag = dag::component(&self.spec, component)?.dag.as_ref()?;
        let mut failed = Vec::new();
        let mut canceled = false;
        for name in dag.tasks.keys() {
            let r = self.records.get(&join(prefix, name))?;
            match r.state {
                s if !s.finished() => return None,
                TaskState::Failed => failed.push(name.clone()),
                TaskState::Canceled => canceled = true,
                _ => {}
            }
        }
        if !failed.is_empty() {
            let names: Vec<String> = failed.iter().map(|n| format!("'{n}'")).collect();
            Some((
                TaskState::Failed,
                Some(format!("task(s) {} failed", names.join(", "))),
            ))
        } else if canceled {
            Some((TaskState::Canceled, Some("canceled".into())))
        } else {
            Some((TaskState::Succeeded, None))
        }
    }

    /// A finished DAG instance's outputs (`dag.outputs`), from its children's.
    fn dag_outputs(&self, prefix: &str, component: &str) -> TaskOutputs {
        let mut out = TaskOutputs::default();
        let Some(dag) = dag::component(&self.spec, component).and_then(|c| c.dag.as_ref()) else {
            return out;
        };
        let param = |producer: &str, key: &str| {
            self.records
                .get(&join(prefix, producer))
                .filter(|r| r.state == TaskState::Succeeded)
                .and_then(|r| r.outputs.parameters.get(key))
                .cloned()
        };
        for (name, p) in &dag.outputs.parameters {
            let selectors = p.value_from_parameter.iter().chain(
                p.value_from_oneof
                    .iter()
                    .flat_map(|o| o.parameter_selectors.iter()),
            );
            if let Some(v) = selectors
                .filter_map(|s| param(&s.producer_subtask, &s.output_parameter_key))
                .next()
            {
                out.parameters.insert(name.clone(), v);
            }
        }
        for (name, a) in &dag.outputs.artifacts {
            let found = a.artifact_selectors.iter().find_map(|s| {
                self.records
                    .get(&join(prefix, &s.producer_subtask))
                    .filter(|r| r.state == TaskState::Succeeded)
                    .and_then(|r| r.outputs.artifacts.get(&s.output_artifact_key))
                    .cloned()
            });
            if let Some(v) = found {
                out.artifacts.insert(name.clone(), v);
            }
        }
        out
    }

    /// Starts iterations up to the loop's parallelism limit, walks the running ones, and
    /// finishes the loop (outputs collected in item order) when they all have.
    fn advance_loop(&mut self, path: &str, task: &Task, now: SystemTime, step: &mut Step) -> bool {
        let Some(rec) = self.records.get(path) else {
            return false;
        };
        let n = rec.iterations.unwrap_or(0);
        let loop_inputs = rec.inputs.clone().unwrap_or_default();
        let limit = task
            .iterator_policy
            .as_ref()
            .and_then(|p| p.parallelism_limit)
            .unwrap_or(0) as usize;
        let items = loop_items(task, &loop_inputs).unwrap_or_default();
        let item_input = task
            .parameter_iterator
            .as_ref()
            .map(|it| it.item_input.clone())
            .unwrap_or_default();
        let component = task.component_ref.name.clone();
        let mut changed = false;
        let mut active = (0..n)
            .filter(|i| {
                self.records
                    .get(&join(path, &i.to_string()))
                    .is_some_and(|r| r.state == TaskState::Running)
            })
            .count();
        for i in 0..n {
            let ipath = join(path, &i.to_string());
            let state = self
                .records
                .entry(ipath.clone())
                .or_insert_with(|| Record::new(NodeKind::Iteration))
                .state;
            if state == TaskState::Pending {
                if self.canceled {
                    self.finish(
                        &ipath,
                        TaskState::Canceled,
                        Some("not run: the run was canceled".into()),
                        now,
                    );
                    changed = true;
                    continue;
                }
                if limit > 0 && active >= limit {
                    continue;
                }
                let mut inputs = loop_inputs.clone();
                if let Some(item) = items.get(i) {
                    inputs.parameters.insert(item_input.clone(), item.clone());
                }
                self.set(&ipath, |r| {
                    r.state = TaskState::Running;
                    r.start_time = Some(rfc3339(now));
                    r.inputs = Some(inputs);
                });
                active += 1;
                changed = true;
            }
            if self.records.get(&ipath).map(|r| r.state) == Some(TaskState::Running)
                && self.advance_dag(&ipath, &component, now, step)
            {
                changed = true;
                if self.records.get(&ipath).is_some_and(|r| r.state.finished()) {
                    active = active.saturating_sub(1);
                }
            }
        }
        let states: Vec<TaskState> = (0..n)
            .filter_map(|i| {
                self.records
                    .get(&join(path, &i.to_string()))
                    .map(|r| r.state)
            })
            .collect();
        if states.len() == n && states.iter().all(|s| s.finished()) {
            let mut out = TaskOutputs::default();
            if let Some(dag) = dag::component(&self.spec, &component).and_then(|c| c.dag.as_ref()) {
                for name in dag.outputs.parameters.keys() {
                    let values: Vec<Value> = (0..n)
                        .filter_map(|i| {
                            self.records
                                .get(&join(path, &i.to_string()))
                                .and_then(|r| r.outputs.parameters.get(name))
                                .cloned()
                        })
                        .collect();
                    out.parameters.insert(name.clone(), Value::Array(values));
                }
                for name in dag.outputs.artifacts.keys() {
                    let values: Vec<Value> = (0..n)
                        .filter_map(|i| {
                            self.records
                                .get(&join(path, &i.to_string()))
                                .and_then(|r| r.outputs.artifacts.get(name))
                        })
                        .flat_map(|a| artifact_list(a).iter().cloned())
                        .collect();
                    out.artifacts.insert(name.clone(), Value::Array(values));
                }
            }
            let failed = states.iter().filter(|s| **s == TaskState::Failed).count();
            let (state, message) = if failed > 0 {
                (
                    TaskState::Failed,
                    Some(format!("{failed} of {n} iteration(s) failed")),
                )
            } else if states.contains(&TaskState::Canceled) {
                (TaskState::Canceled, Some("canceled".into()))
            } else {
                (TaskState::Succeeded, None)
            };
            self.set(path, |r| r.outputs = out);
            self.finish(path, state, message, now);
            return true;
        }
        changed
    }

    /// Takes a launched task's result. A failure with retries left waits for its back-off
    /// and runs again.
    pub fn complete(&mut self, path: &str, completion: Completion, now: SystemTime) {
        let cached = matches!(completion, Completion::Cached(_));
        match completion {
            Completion::Succeeded(outputs) | Completion::Cached(outputs) => {
                self.set(path, |r| {
                    r.outputs = outputs;
                    r.cached = cached;
                });
                self.finish(path, TaskState::Succeeded, None, now);
            }
            Completion::Canceled(m) => self.finish(path, TaskState::Canceled, Some(m), now),
            Completion::Failed(m) => {
                let attempts = self.records.get(path).map_or(0, |r| r.attempts);
                let policy = self.task_at(path).and_then(|t| t.retry_policy.clone());
                let max = policy.as_ref().and_then(|p| p.max_retry_count).unwrap_or(0);
                match policy {
                    Some(p) if !self.canceled && attempts <= max => {
                        let wait = backoff_secs(&p, attempts);
                        self.set(path, |r| {
                            r.state = TaskState::Pending;
                            r.retry_at = Some(rfc3339(add_secs(now, wait)));
                            r.message = Some(format!(
                                "attempt {attempts} of {} failed: {m}; retrying in {wait:.1} s",
                                max + 1
                            ));
                        });
                    }
                    _ => self.finish(path, TaskState::Failed, Some(m), now),
                }
            }
        }
    }

    /// The task a record path names (iteration indexes skipped).
    pub fn task_at(&self, path: &str) -> Option<&Task> {
        let mut component = ROOT.to_string();
        let mut found = None;
        let mut expect_index = false;
        for seg in path.split('/') {
            if expect_index {
                expect_index = false;
                continue;
            }
            let dag = dag::component(&self.spec, &component)?.dag.as_ref()?;
            let task = dag.tasks.get(seg)?;
            expect_index = task.parameter_iterator.is_some();
            component = task.component_ref.name.clone();
            found = Some(task);
        }
        found
    }

    /// The run's state: RUNNING until every root task finished, then FAILED if one failed,
    /// CANCELED if canceled, else SUCCEEDED.
    pub fn state(&self) -> TaskState {
        match self.dag_outcome("", ROOT) {
            None if self.records.is_empty() => TaskState::Pending,
            None => TaskState::Running,
            Some((s, _)) => s,
        }
    }

    /// The pipeline's outputs (root `dag.outputs`), from what finished.
    pub fn outputs(&self) -> BTreeMap<String, Value> {
        let o = self.dag_outputs("", ROOT);
        o.parameters.into_iter().chain(o.artifacts).collect()
    }
}

/// A loop's items: its literal list, or the list input it iterates over.
fn loop_items(task: &Task, inputs: &TaskInputs) -> Result<Vec<Value>, String> {
    let Some(it) = &task.parameter_iterator else {
        return Ok(Vec::new());
    };
    let v =
        match (&it.items.raw, &it.items.input_parameter) {
            (Some(raw), _) => serde_json::from_str::<Value>(raw)
                .map_err(|e| format!("parameterIterator.items.raw: {e}"))?,
            (None, Some(p)) => inputs.parameters.get(p).cloned().ok_or_else(|| {
                format!("parameterIterator.items.inputParameter '{p}' has no value")
            })?,
            (None, None) => return Err("parameterIterator has no items".into()),
        };
    match v {
        Value::Array(items) => Ok(items),
        // A list passed as JSON text.
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Array(items)) => Ok(items),
            _ => Err(format!("ParallelFor items: expected a list, got {s:?}")),
        },
        other => Err(format!("ParallelFor items: expected a list, got {other}")),
    }
}

/// An importer's output: the artifact at its URI, with the importer's type and metadata.
fn import(
    imp: &super::spec::Importer,
    inputs: &TaskInputs,
    comp: &ComponentSpec,
) -> Result<TaskOutputs, String> {
    let uri = match (
        &imp.artifact_uri.constant,
        &imp.artifact_uri.runtime_parameter,
    ) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => inputs
            .parameters
            .get(p)
            .cloned()
            .ok_or_else(|| format!("importer: input '{p}' has no value"))?,
        (None, None) => return Err("importer has no artifactUri".into()),
    };
    let Value::String(uri) = uri else {
        return Err(format!("importer: artifactUri must be a string, got {uri}"));
    };
    let mut ty = serde_json::Map::new();
    if let Some(t) = &imp.type_schema.schema_title {
        ty.insert("schemaTitle".into(), json!(t));
    }
    if let Some(v) = &imp.type_schema.schema_version {
        ty.insert("schemaVersion".into(), json!(v));
    }
    let key = comp
        .output_definitions
        .artifacts
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "artifact".into());
    let mut out = TaskOutputs::default();
    out.artifacts.insert(
        key.clone(),
        json!({
            "name": key,
            "type": ty,
            "uri": uri,
            "metadata": imp.metadata.clone().unwrap_or_else(|| json!({})),
        }),
    );
    Ok(out)
}
