//! The pod template of a component: `osprey serve` on the model repository, fetched by an init
//! container running the same binary (`osprey pull URI DIR`) or mounted from a PVC, with probes
//! on the health endpoints. The predictor is also told the InferenceService's name
//! (`--model-name`), under which the server serves a repository that is itself one model.

use super::labels::{Component, REVISION_LABEL, TRACK_LABEL};
use super::storage::Storage;
use super::Settings;
use crate::crd::{ComponentExtension, PodFields};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

pub const HTTP_PORT: i32 = 8000;
pub const GRPC_PORT: i32 = 8001;
pub const METRICS_PORT: i32 = 8002;
const MODELS_DIR: &str = "/mnt/models";

/// What a component's server runs.
pub struct ServerSpec<'a> {
    pub storage: Option<Storage>,
    pub image: Option<&'a str>,
    pub args: &'a [String],
    pub env: &'a [EnvVar],
    pub resources: Option<&'a ResourceRequirements>,
    pub extension: &'a ComponentExtension,
    pub pod: &'a PodFields,
}

/// A container that fails reports the end of its log as its termination message, which the
/// InferenceService's status then carries (a failed pull says why).
const LOGS_ON_ERROR: &str = "FallbackToLogsOnError";

fn probe(path: &str, initial: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial),
        period_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

fn port(name: &str, p: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: p,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// The pod template for one revision of a component.
pub fn template(
    isvc: &str,
    c: Component,
    revision: &str,
    track: &str,
    s: &ServerSpec<'_>,
    settings: &Settings,
) -> PodTemplateSpec {
    let image = s.image.unwrap_or(&settings.image).to_string();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut init = Vec::new();
    let repository = match &s.storage {
        None => MODELS_DIR.to_string(),
        Some(Storage::File(path)) => path.clone(),
        Some(Storage::Pvc { claim, path }) => {
            volumes.push(Volume {
                name: "models".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: Some(true),
                }),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "models".into(),
                mount_path: "/mnt/pvc".into(),
                read_only: Some(true),
                ..Default::default()
            });
            if path.is_empty() {
                "/mnt/pvc".to_string()
            } else {
                format!("/mnt/pvc/{path}")
            }
        }
        Some(Storage::Remote(uri)) => {
            volumes.push(Volume {
                name: "models".into(),
                empty_dir: Some(Default::default()),
                ..Default::default()
            });
            let mount = VolumeMount {
                name: "models".into(),
                mount_path: MODELS_DIR.into(),
                ..Default::default()
            };
            init.push(Container {
                name: "storage-initializer".into(),
                image: Some(image.clone()),
                args: Some(vec!["pull".into(), uri.clone(), MODELS_DIR.into()]),
                volume_mounts: Some(vec![mount.clone()]),
                termination_message_policy: Some(LOGS_ON_ERROR.into()),
                ..Default::default()
            });
            mounts.push(mount);
            MODELS_DIR.to_string()
        }
    };
    let mut args = vec![
        "serve".to_string(),
        "--model-repository".into(),
        repository,
        "--http-port".into(),
        HTTP_PORT.to_string(),
        "--grpc-port".into(),
        GRPC_PORT.to_string(),
        "--metrics-port".into(),
        METRICS_PORT.to_string(),
        "--log-format".into(),
        "json".into(),
    ];
    if c == Component::Predictor {
        // KServe's layout: storageUri is one model's directory (e.g. holding model.onnx), served
        // under the InferenceService's name; a model repository is served as before.
        args.extend(["--model-name".to_string(), isvc.to_string()]);
    }
    if let Some(n) = s.extension.container_concurrency.filter(|&n| n > 0) {
        args.extend(["--queue-per-instance".to_string(), n.to_string()]);
    }
    if let Some(t) = s.extension.timeout.filter(|&t| t > 0) {
        // KServe's per-component request timeout, in seconds.
        args.extend(["--request-timeout-secs".to_string(), t.to_string()]);
    }
    if let Some(b) = &s.extension.batcher {
        // KServe's batcher: maxLatency in milliseconds (default 5), maxBatchSize caps the batch.
        args.extend([
            "--batcher-max-latency-ms".to_string(),
            b.max_latency.unwrap_or(5).max(0).to_string(),
        ]);
        if let Some(n) = b.max_batch_size {
            args.extend(["--batcher-max-batch-size".to_string(), n.to_string()]);
        }
    }
    args.extend(s.args.iter().cloned());
    let server = Container {
        name: "osprey".into(),
        image: Some(image),
        args: Some(args),
        env: (!s.env.is_empty()).then(|| s.env.to_vec()),
        ports: Some(vec![
            port("http", HTTP_PORT),
            port("grpc", GRPC_PORT),
            port("metrics", METRICS_PORT),
        ]),
        readiness_probe: Some(probe("/v2/health/ready", 1)),
        liveness_probe: Some(probe("/v2/health/live", 10)),
        resources: s.resources.cloned(),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        termination_message_policy: Some(LOGS_ON_ERROR.into()),
        ..Default::default()
    };
    let mut labels: BTreeMap<String, String> = s.extension.labels.clone();
    labels.extend(super::labels::selector(isvc, c));
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    labels.insert(TRACK_LABEL.into(), track.to_string());
    let p = s.pod;
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: (!s.extension.annotations.is_empty())
                .then(|| s.extension.annotations.clone()),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![server],
            init_containers: (!init.is_empty()).then_some(init),
            volumes: (!volumes.is_empty()).then_some(volumes),
            node_selector: (!p.node_selector.is_empty()).then(|| p.node_selector.clone()),
            tolerations: (!p.tolerations.is_empty()).then(|| p.tolerations.clone()),
            affinity: p.affinity.clone(),
            service_account_name: p.service_account_name.clone(),
            image_pull_secrets: (!p.image_pull_secrets.is_empty())
                .then(|| p.image_pull_secrets.clone()),
            priority_class_name: p.priority_class_name.clone(),
            ..Default::default()
        }),
    }
}
