//! The compiled pipeline (KFP v2 IR, `PipelineSpec` as the SDK writes it to YAML), in the
//! proto's JSON field names. Only what the local runner reads is typed; fields it does not act
//! on are accepted and ignored, and fields that would change a run's meaning are kept (as raw
//! values) so that [`super::dag`] can refuse them by name.

use super::error::PipelineError;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpec {
    #[serde(default)]
    pub pipeline_info: PipelineInfo,
    pub root: ComponentSpec,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentSpec>,
    #[serde(default)]
    pub deployment_spec: DeploymentSpec,
    #[serde(default)]
    pub schema_version: Option<String>,
    #[serde(default)]
    pub sdk_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    #[serde(default)]
    pub input_definitions: Definitions,
    #[serde(default)]
    pub output_definitions: Definitions,
    /// A DAG component (the root, a nested pipeline, a condition or loop group).
    #[serde(default)]
    pub dag: Option<Dag>,
    /// A leaf component: its executor in `deploymentSpec.executors`.
    #[serde(default)]
    pub executor_label: Option<String>,
}

/// Input or output definitions of a component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definitions {
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterSpec>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterSpec {
    #[serde(default)]
    pub parameter_type: ParameterType,
    #[serde(default)]
    pub default_value: Option<Value>,
    #[serde(default)]
    pub is_optional: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParameterType {
    NumberInteger,
    NumberDouble,
    String,
    Boolean,
    List,
    Struct,
    TaskFinalStatus,
    #[default]
    #[serde(other)]
    Unspecified,
}

impl ParameterType {
    pub fn name(self) -> &'static str {
        match self {
            ParameterType::NumberInteger => "NUMBER_INTEGER",
            ParameterType::NumberDouble => "NUMBER_DOUBLE",
            ParameterType::String => "STRING",
            ParameterType::Boolean => "BOOLEAN",
            ParameterType::List => "LIST",
            ParameterType::Struct => "STRUCT",
            ParameterType::TaskFinalStatus => "TASK_FINAL_STATUS",
            ParameterType::Unspecified => "PARAMETER_TYPE_ENUM_UNSPECIFIED",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSpec {
    #[serde(default)]
    pub artifact_type: ArtifactType,
    #[serde(default)]
    pub is_artifact_list: bool,
    #[serde(default)]
    pub is_optional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactType {
    #[serde(default)]
    pub schema_title: Option<String>,
    #[serde(default)]
    pub schema_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dag {
    #[serde(default)]
    pub tasks: BTreeMap<String, Task>,
    #[serde(default)]
    pub outputs: DagOutputs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputs {
    #[serde(default)]
    pub parameters: BTreeMap<String, DagOutputParameter>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, DagOutputArtifact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputParameter {
    #[serde(default)]
    pub value_from_parameter: Option<ValueFromParameter>,
    /// `dsl.OneOf`: the first selector whose producer ran gives the value.
    #[serde(default)]
    pub value_from_oneof: Option<OneOfParameters>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OneOfParameters {
    #[serde(default)]
    pub parameter_selectors: Vec<ValueFromParameter>,
}

/// A DAG's output artifact: one selector, or several for `dsl.OneOf` (the first present wins).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DagOutputArtifact {
    #[serde(default)]
    pub artifact_selectors: Vec<ArtifactSelector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSelector {
    pub producer_subtask: String,
    pub output_artifact_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromParameter {
    pub producer_subtask: String,
    pub output_parameter_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(default)]
    pub task_info: TaskInfo,
    #[serde(default)]
    pub component_ref: ComponentRef,
    #[serde(default)]
    pub dependent_tasks: Vec<String>,
    #[serde(default)]
    pub inputs: TaskInputs,
    #[serde(default)]
    pub caching_options: Option<CachingOptions>,
    /// `dsl.If/Elif/Else` (a CEL condition) and `dsl.ExitHandler` (the strategy).
    #[serde(default)]
    pub trigger_policy: Option<TriggerPolicy>,
    /// `dsl.ParallelFor`.
    #[serde(default)]
    pub parameter_iterator: Option<ParameterIterator>,
    /// `dsl.ParallelFor` over a list of artifacts: refused by name.
    #[serde(default)]
    pub artifact_iterator: Option<Value>,
    #[serde(default)]
    pub iterator_policy: Option<IteratorPolicy>,
    /// `.set_retry(...)`.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachingOptions {
    #[serde(default)]
    pub enable_cache: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerPolicy {
    #[serde(default)]
    pub condition: Option<String>,
    /// `ALL_UPSTREAM_TASKS_SUCCEEDED` (default) or `ALL_UPSTREAM_TASKS_COMPLETED`.
    #[serde(default)]
    pub strategy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterIterator {
    #[serde(default)]
    pub items: IteratorItems,
    /// The loop DAG's input parameter that receives each item.
    #[serde(default)]
    pub item_input: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IteratorItems {
    /// A literal list, as JSON text.
    #[serde(default)]
    pub raw: Option<String>,
    /// The loop task's input parameter holding the list.
    #[serde(default)]
    pub input_parameter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IteratorPolicy {
    #[serde(default)]
    pub parallelism_limit: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    #[serde(default)]
    pub max_retry_count: Option<u32>,
    /// A protobuf Duration as JSON: `"3s"`, `"0.5s"`.
    #[serde(default)]
    pub backoff_duration: Option<String>,
    #[serde(default)]
    pub backoff_factor: Option<f64>,
    #[serde(default)]
    pub backoff_max_duration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentRef {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInputs {
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterBinding>,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactBinding>,
}

/// Where a task's input parameter comes from (exactly one field is set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterBinding {
    #[serde(default)]
    pub component_input_parameter: Option<String>,
    #[serde(default)]
    pub task_output_parameter: Option<TaskOutputParameter>,
    #[serde(default)]
    pub runtime_value: Option<RuntimeValue>,
    #[serde(default)]
    pub task_final_status: Option<TaskFinalStatusBinding>,
    #[serde(default)]
    pub parameter_expression_selector: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFinalStatusBinding {
    pub producer_task: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputParameter {
    pub producer_task: String,
    pub output_parameter_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeValue {
    #[serde(default)]
    pub constant: Option<Value>,
}

/// Where a task's input artifact comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactBinding {
    #[serde(default)]
    pub task_output_artifact: Option<TaskOutputArtifact>,
    #[serde(default)]
    pub component_input_artifact: Option<String>,
    #[serde(default)]
    pub runtime_value: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutputArtifact {
    pub producer_task: String,
    pub output_artifact_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    #[serde(default)]
    pub executors: BTreeMap<String, Executor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Executor {
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub importer: Option<Importer>,
    #[serde(default)]
    pub resolver: Option<Value>,
}

/// `dsl.importer`: an existing artifact brought into the pipeline by URI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Importer {
    #[serde(default)]
    pub artifact_uri: ImporterUri,
    #[serde(default)]
    pub type_schema: ArtifactType,
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// The importer's URI: a constant, or an input parameter of the importer component.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImporterUri {
    #[serde(default)]
    pub constant: Option<Value>,
    #[serde(default)]
    pub runtime_parameter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// Reads a compiled pipeline: the YAML the SDK writes (a `PipelineSpec`, optionally followed by
/// a platform-specific document), or the same as JSON. A `PipelineJob` wrapper
/// (`pipelineSpec: ...`) is accepted too.
pub fn parse(text: &str) -> Result<PipelineSpec, PipelineError> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| PipelineError::Read(format!("YAML: {e}")))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let mut docs = docs.into_iter();
    let first = docs
        .next()
        .ok_or_else(|| PipelineError::Read("empty file: no pipeline spec".into()))?;
    if docs.next().is_some() {
        return Err(PipelineError::PipelineUnsupported(
            "platform-specific configuration (a second YAML document, e.g. kfp-kubernetes \
             secrets, volumes or node selectors)"
                .into(),
        ));
    }
    let spec = match first.get("pipelineSpec") {
        Some(inner) => inner.clone(),
        None => first,
    };
    if spec.get("root").is_none() {
        return Err(PipelineError::Read(
            "not a compiled KFP v2 pipeline: no `root` (compile it with kfp.compiler.Compiler)"
                .into(),
        ));
    }
    serde_json::from_value(spec).map_err(|e| PipelineError::Read(format!("pipeline spec: {e}")))
}
