//! The PipelineRun custom resource (`pipelines.osprey.dev/v1alpha1`, namespaced): a compiled
//! KFP v2 pipeline (inline or from a ConfigMap), its parameters and where its files go; the
//! status the controller reports (the run's state and conditions, each task's state, pod,
//! attempts and outputs). `osprey crd` prints the CustomResourceDefinition generated from these
//! types.
//!
//! What the API server cannot check itself (one of `pipelineSpec` / `pipelineSpecRef`, an
//! absolute `pipelineRoot`) is checked by [`PipelineRunSpec::validate`], whose error names the
//! field: Kubernetes 1.20 (the test cluster) has no CEL validation rules, and kubectl 1.20
//! refuses a CRD that carries them.

use crate::crd::{free_form_object, Condition};
use crate::error::SpecError;
use crate::pipeline::executor::TaskOutputs;
use crate::pipeline::spec::{self, PipelineSpec};
use crate::pipeline::PipelineError;
use k8s_openapi::api::core::v1::Volume;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// API group of the pipeline resources.
pub const GROUP: &str = "pipelines.osprey.dev";

/// Where task files go inside the pods when `spec.pipelineRoot` is not given.
pub const DEFAULT_PIPELINE_ROOT: &str = "/pipeline-root";

/// Condition types of a PipelineRun.
pub const CONDITION_RUNNING: &str = "Running";
pub const CONDITION_SUCCEEDED: &str = "Succeeded";
pub const CONDITION_FAILED: &str = "Failed";

/// A run of a compiled Kubeflow Pipelines (KFP v2) pipeline on Kubernetes: each task a pod of
/// its component's image.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "pipelines.osprey.dev",
    version = "v1alpha1",
    kind = "PipelineRun",
    namespaced,
    status = "PipelineRunStatus",
    doc = "A run of a compiled Kubeflow Pipelines (KFP v2) pipeline, each task a pod of its component's image, run by Osprey's controller.",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunSpec {
    /// The compiled pipeline (the PipelineSpec the KFP SDK's compiler writes), inline. Exactly
    /// one of pipelineSpec and pipelineSpecRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub pipeline_spec: Option<Value>,
    /// A ConfigMap key holding the compiled pipeline (YAML or JSON), in the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_spec_ref: Option<PipelineSpecRef>,
    /// The pipeline's input parameters, name to value (any JSON value; read per the parameter's
    /// declared type, as `osprey pipeline run -p` reads them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub parameters: BTreeMap<String, Value>,
    /// Directory, as the task pods see it, under which each run keeps its task files (output
    /// parameters, artifacts, executor output). Default `/pipeline-root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_root: Option<String>,
    /// Volume mounted at pipelineRoot in every task pod (a PersistentVolumeClaim, hostPath, NFS,
    /// ...): without one each pod gets an emptyDir there, so artifacts do not reach other tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_root_volume: Option<VolumeSource>,
    /// Most task pods running at once (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallelism: Option<i32>,
    /// True: running task pods are deleted, no new task starts, the run ends CANCELED.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel: bool,
    /// Service account of the task pods (default: the namespace's `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Reuse the outputs of an earlier identical task execution (default true; a task's own
    /// caching option still applies).
    #[serde(default = "default_true")]
    pub enable_caching: bool,
}

fn default_true() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A run state or task state: a plain string enum (the generated schema of an enum with a
/// default is refused by the API server's structural-schema checks).
fn state_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["PENDING", "RUNNING", "SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"]
    })
}

/// A Kubernetes volume source: a pod Volume without its name (`persistentVolumeClaim`,
/// `hostPath`, `nfs`, `csi`, ...), with Kubernetes' own schema. Kubernetes' API has no
/// VolumeSource type of its own, so this is a [`Volume`] whose name is left out of the JSON.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeSource(pub Volume);

impl VolumeSource {
    /// The pod Volume of this source, named `name`.
    pub fn volume(&self, name: &str) -> Volume {
        Volume {
            name: name.to_string(),
            ..self.0.clone()
        }
    }
}

impl Serialize for VolumeSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        if let Some(m) = v.as_object_mut() {
            m.remove("name");
        }
        v.serialize(s)
    }
}

impl<'de> Deserialize<'de> for VolumeSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut v = Value::deserialize(d)?;
        let m = v
            .as_object_mut()
            .ok_or_else(|| serde::de::Error::custom("expected a volume source (an object)"))?;
        m.insert("name".into(), Value::String(String::new()));
        Volume::deserialize(v)
            .map(VolumeSource)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for VolumeSource {
    fn schema_name() -> Cow<'static, str> {
        "VolumeSource".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = Volume::json_schema(generator);
        if let Some(obj) = schema.as_object_mut() {
            obj.insert(
                "description".into(),
                Value::String(
                    "A volume source, as in a pod's volumes (without a name): \
                     persistentVolumeClaim, hostPath, nfs, csi, ..."
                        .into(),
                ),
            );
            if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
                props.remove("name");
            }
            if let Some(req) = obj.get_mut("required").and_then(Value::as_array_mut) {
                req.retain(|r| r != "name");
                if req.is_empty() {
                    obj.remove("required");
                }
            }
        }
        schema
    }
}

/// Where the compiled pipeline is: `data[key]` of a ConfigMap in the run's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSpecRef {
    pub config_map_name: String,
    pub key: String,
}

/// Where [`PipelineRunSpec`] says the compiled pipeline is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PipelineSource<'a> {
    /// `spec.pipelineSpec`: parse it with [`parse_inline`].
    Inline(&'a Value),
    /// `spec.pipelineSpecRef`: read `data[key]` of this ConfigMap and parse it with
    /// [`spec::parse`].
    ConfigMap { name: &'a str, key: &'a str },
}

fn invalid(field: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

impl PipelineRunSpec {
    /// Where the compiled pipeline is; exactly one of `pipelineSpec` and `pipelineSpecRef`
    /// must be given (the error names the field).
    pub fn source(&self) -> Result<PipelineSource<'_>, SpecError> {
        match (&self.pipeline_spec, &self.pipeline_spec_ref) {
            (Some(_), Some(_)) => Err(invalid(
                "spec.pipelineSpecRef",
                "give either spec.pipelineSpec (the compiled pipeline inline) or \
                 spec.pipelineSpecRef (a ConfigMap key holding it), not both",
            )),
            (None, None) => Err(invalid(
                "spec.pipelineSpec",
                "missing: give spec.pipelineSpec (the compiled pipeline inline) or \
                 spec.pipelineSpecRef {configMapName, key}",
            )),
            (Some(v), None) if !v.is_object() => Err(invalid(
                "spec.pipelineSpec",
                "must be an object (the compiled pipeline spec)",
            )),
            (Some(v), None) => Ok(PipelineSource::Inline(v)),
            (None, Some(r)) => {
                if r.config_map_name.trim().is_empty() {
                    return Err(invalid(
                        "spec.pipelineSpecRef.configMapName",
                        "must not be empty",
                    ));
                }
                if r.key.trim().is_empty() {
                    return Err(invalid("spec.pipelineSpecRef.key", "must not be empty"));
                }
                Ok(PipelineSource::ConfigMap {
                    name: &r.config_map_name,
                    key: &r.key,
                })
            }
        }
    }

    /// The pipeline root as the task pods see it.
    pub fn pipeline_root(&self) -> &str {
        self.pipeline_root
            .as_deref()
            .unwrap_or(DEFAULT_PIPELINE_ROOT)
    }

    /// Checks what the CRD's schema cannot: the pipeline's source, the pipeline root (an
    /// absolute, normalised path), parallelism and the service account name. The error names
    /// the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.source()?;
        let root = self.pipeline_root();
        if !root.starts_with('/') {
            return Err(invalid(
                "spec.pipelineRoot",
                format!("must be an absolute path inside the task pods (got {root:?})"),
            ));
        }
        if root == "/" || root.split('/').any(|part| part == ".." || part == ".") {
            return Err(invalid(
                "spec.pipelineRoot",
                format!("must be a directory below / without . or .. parts (got {root:?})"),
            ));
        }
        if let Some(v) = &self.pipeline_root_volume {
            let sources = serde_json::to_value(v)
                .ok()
                .and_then(|j| j.as_object().map(|m| m.len()))
                .unwrap_or(0);
            if sources != 1 {
                return Err(invalid(
                    "spec.pipelineRootVolume",
                    format!(
                        "must give exactly one volume source (persistentVolumeClaim, hostPath, \
                         nfs, ...), got {sources}"
                    ),
                ));
            }
        }
        if let Some(p) = self.parallelism {
            if p < 1 {
                return Err(invalid(
                    "spec.parallelism",
                    format!("must be at least 1 (got {p})"),
                ));
            }
        }
        if let Some(sa) = &self.service_account_name {
            if sa.trim().is_empty() {
                return Err(invalid(
                    "spec.serviceAccountName",
                    "must not be empty when given",
                ));
            }
        }
        Ok(())
    }

    /// The parameters as `NAME=VALUE` texts, the form
    /// [`crate::pipeline::executor::pipeline_inputs`] reads per declared type: strings as
    /// they are, other values as JSON.
    pub fn parameter_texts(&self) -> Vec<(String, String)> {
        self.parameters
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

/// The inline `spec.pipelineSpec` read as a compiled pipeline (a `PipelineJob` wrapper with
/// its own `pipelineSpec` is accepted too, as [`spec::parse`] does).
pub fn parse_inline(value: &Value) -> Result<PipelineSpec, PipelineError> {
    spec::parse(&value.to_string())
}

/// A run's state, as KFP names them.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl RunState {
    /// True once the run can change no more.
    pub fn finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Canceled
        )
    }
}

/// A task's state, as KFP names them.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    #[default]
    Pending,
    Running,
    Succeeded,
    /// Not run: an upstream task failed, its condition was false, or the run ended first.
    Skipped,
    Failed,
    Canceled,
}

impl TaskState {
    /// True once the task can change no more (a retry is a new attempt of a RUNNING task).
    pub fn finished(self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Skipped | TaskState::Failed | TaskState::Canceled
        )
    }
}

/// What the controller last observed of a run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunStatus {
    /// PENDING, RUNNING, SUCCEEDED, FAILED or CANCELED.
    #[serde(default)]
    #[schemars(schema_with = "state_schema")]
    pub state: RunState,
    /// `Running`, `Succeeded`, `Failed` (status "True"/"False", with reason and message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Each task by its path (`train`, `for-loop-2[1]/square`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, TaskStatus>,
    /// The pipeline's outputs (the root DAG's outputs) once it succeeded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub outputs: BTreeMap<String, Value>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl PipelineRunStatus {
    /// The condition of this type, if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Sets a condition; its `lastTransitionTime` changes only when its status does.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: &str,
    ) {
        let status_text = if status { "True" } else { "False" };
        let reason = (!reason.is_empty()).then(|| reason.to_string());
        let message = (!message.is_empty()).then(|| message.to_string());
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status_text {
                    c.status = status_text.to_string();
                    c.last_transition_time = Some(now.to_string());
                }
                c.reason = reason;
                c.message = message;
            }
            None => self.conditions.push(Condition {
                type_: type_.to_string(),
                status: status_text.to_string(),
                reason,
                message,
                last_transition_time: Some(now.to_string()),
            }),
        }
    }
}

/// One task's observed state: the engine's record of a container task, a DAG (condition,
/// exit handler or nested pipeline), a loop or one loop iteration.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    #[serde(default)]
    #[schemars(schema_with = "state_schema")]
    pub state: TaskState,
    /// `task` (a pod), `dag`, `loop` or `iteration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Pods started for this task so far (retries included).
    #[serde(default)]
    pub attempts: i32,
    /// A retry waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<String>,
    /// The pod of the latest attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(default, skip_serializing_if = "TaskOutputsStatus::is_empty")]
    pub outputs: TaskOutputsStatus,
    /// DAGs, loops and iterations: the inputs their tasks read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub inputs: Option<Value>,
    /// Loops: how many iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<i64>,
    /// Why it failed, was skipped or was canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// True when the outputs were taken from an earlier identical execution (no pod ran).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cached: bool,
    /// The task's cache fingerprint (sha256), when it may be cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Skipped because its condition (dsl.If/Elif/Else) was false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub condition_false: bool,
}

/// A task's outputs: parameters by name (JSON values) and artifacts by name (KFP
/// RuntimeArtifacts: `name`, `type`, `uri`, `metadata`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TaskOutputsStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub parameters: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub artifacts: BTreeMap<String, Value>,
}

impl TaskOutputsStatus {
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.artifacts.is_empty()
    }
}

impl From<&TaskOutputs> for TaskOutputsStatus {
    fn from(o: &TaskOutputs) -> Self {
        TaskOutputsStatus {
            parameters: o.parameters.clone(),
            artifacts: o.artifacts.clone(),
        }
    }
}

impl From<&TaskOutputsStatus> for TaskOutputs {
    fn from(o: &TaskOutputsStatus) -> Self {
        TaskOutputs {
            parameters: o.parameters.clone(),
            artifacts: o.artifacts.clone(),
        }
    }
}
