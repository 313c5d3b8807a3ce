//! The InferenceService custom resource (`serving.osprey.dev/v1beta1`), spelled with KServe's
//! v1beta1 field names so that a KServe manifest converts by changing its `apiVersion`.
//! `osprey crd` prints the CustomResourceDefinition generated from these types.

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// API group of Osprey's resources.
pub const GROUP: &str = "serving.osprey.dev";

/// An InferenceService: a predictor and optional transformer and explainer, each run as Osprey
/// servers by Kubernetes.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "serving.osprey.dev",
    version = "v1beta1",
    kind = "InferenceService",
    namespaced,
    status = "InferenceServiceStatus",
    shortname = "isvc",
    doc = "An InferenceService: a model served by Osprey servers (predictor, optional transformer and explainer), with KServe v1beta1's field names.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceServiceSpec {
    pub predictor: PredictorSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformer: Option<ComponentSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explainer: Option<ComponentSpec>,
}

/// The predictor: a model and how to run and scale it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    #[serde(flatten)]
    pub extension: ComponentExtension,
    #[serde(flatten)]
    pub pod: PodFields,
}

/// A transformer or explainer: an Osprey server whose model repository (from `storageUri`)
/// holds the stage configuration.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Where the component's model repository comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(flatten)]
    pub extension: ComponentExtension,
    #[serde(flatten)]
    pub pod: PodFields,
}

/// KServe's `modelFormat`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ModelFormat {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// KServe's `predictor.model`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    pub model_format: ModelFormat,
    /// `file://`, `pvc://<claim>/<path>`, `http(s)://`, `s3://<bucket>/<prefix>`, `gs://<bucket>/<path>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_uri: Option<String>,
    /// The serving runtime; Osprey serves `osprey` (or empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    /// `v2` or `grpc-v2` (Osprey serves both on every server); `v1` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// What KServe's components share: scaling, concurrency, batching, canary.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentExtension {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Target of `scaleMetric` per replica (CPU/memory: percent utilisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_target: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "scale_metric_schema")]
    pub scale_metric: Option<ScaleMetric>,
    /// Most requests in flight per replica (the server's queue bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// Request timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Share of the replicas (and so of the traffic) given to the newest revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_traffic_percent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batcher: Option<Batcher>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `scaleMetric`'s schema: a plain string enum (the generated one lists `null` among the values,
/// which the API server's structural-schema checks refuse).
fn scale_metric_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["cpu", "memory", "concurrency", "rps"]
    })
}

/// The metric the autoscaler follows.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMetric {
    Cpu,
    Memory,
    Concurrency,
    Rps,
}

/// KServe's batcher, applied as the server's dynamic batching defaults (`--batcher-*`) for models
/// whose configuration sets no `dynamic_batching`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Batcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_size: Option<i32>,
    /// Milliseconds a batch may wait for more requests (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
}

/// The pod fields users set on a component.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodFields {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// One condition, as Kubernetes spells them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Where a component answers.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Addressable {
    pub url: String,
}

/// One component's observed state.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_url: Option<String>,
    /// Replicas wanted, and ready, over the component's Deployments.
    pub replicas: i32,
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ready_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_created_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<TrafficTarget>,
}

/// A revision's share of the traffic.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTarget {
    pub revision_name: String,
    pub percent: i64,
    pub latest_revision: bool,
}

/// What the controller last observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceServiceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// An object of any shape, kept as given (`x-kubernetes-preserve-unknown-fields`).
pub fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    const KSERVE: &str = r#"
apiVersion: serving.osprey.dev/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 3
    scaleMetric: cpu
    scaleTarget: 70
    canaryTrafficPercent: 20
    batcher: { maxBatchSize: 32, maxLatency: 500 }
    nodeSelector: { pool: cpu }
    model:
      modelFormat: { name: onnx }
      protocolVersion: v2
      storageUri: s3://models/iris
      resources:
        limits: { cpu: "1", memory: 2Gi }
"#;

    #[test]
    fn a_kserve_manifest_parses() {
        let isvc: InferenceService = serde_yaml::from_str(KSERVE).expect("parses");
        let p = &isvc.spec.predictor;
        assert_eq!(p.extension.max_replicas, Some(3));
        assert_eq!(p.extension.scale_metric, Some(ScaleMetric::Cpu));
        assert_eq!(p.extension.canary_traffic_percent, Some(20));
        assert_eq!(p.pod.node_selector["pool"], "cpu");
        let m = p.model.as_ref().expect("model");
        assert_eq!(m.model_format.name, "onnx");
        assert_eq!(m.storage_uri.as_deref(), Some("s3://models/iris"));
        // Round trip keeps KServe's spelling.
        let back = serde_json::to_value(&isvc).expect("json");
        assert_eq!(back["spec"]["predictor"]["canaryTrafficPercent"], 20);
        assert_eq!(
            back["spec"]["predictor"]["model"]["modelFormat"]["name"],
            "onnx"
        );
    }

    #[test]
    fn the_crd_is_namespaced_with_status_and_schema() {
        let crd = InferenceService::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("inferenceservices.serving.osprey.dev")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1beta1");
        assert!(v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
        let schema = serde_json::to_value(v.schema.as_ref().expect("schema")).expect("json");
        let predictor = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"];
        for field in [
            "minReplicas",
            "maxReplicas",
            "canaryTrafficPercent",
            "model",
            "tolerations",
        ] {
            assert!(
                predictor["properties"][field].is_object(),
                "{field} missing: {predictor}"
            );
        }
    }
}
