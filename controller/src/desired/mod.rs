//! What an InferenceService should produce, computed without talking to the cluster: per
//! component a Deployment (two during a canary), a Service, and an autoscaler when
//! `maxReplicas > minReplicas`. [`build`] is pure; the reconciler applies its result.

pub mod labels;
pub mod pod;
pub mod storage;

use crate::crd::{ComponentExtension, InferenceService, ScaleMetric};
use crate::error::SpecError;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use labels::{selector, Component, MANAGER, REVISION_LABEL};
use pod::{ServerSpec, GRPC_PORT, HTTP_PORT, METRICS_PORT};
use serde_json::json;
use storage::Storage;

/// Controller-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Osprey image pods run (the same binary serves, pulls and controls).
    pub image: String,
    /// `apiVersion` of HorizontalPodAutoscalers: `autoscaling/v2`, or `autoscaling/v2beta2` on
    /// API servers before 1.23 (the reconciler asks the server).
    pub hpa_api_version: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            image: "ghcr.io/osprey/osprey:latest".into(),
            hpa_api_version: "autoscaling/v2".into(),
        }
    }
}

/// What the cluster already runs of a component: its stable Deployment's revision and pod
/// template (kept for the stable track while a canary runs).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub stable: Option<(String, PodTemplateSpec)>,
}

/// One component's objects.
#[derive(Debug, Clone)]
pub struct ComponentObjects {
    pub component: Component,
    pub revision: String,
    pub stable: Deployment,
    /// Present while `canaryTrafficPercent` sends a share to a new revision.
    pub canary: Option<Deployment>,
    pub service: Service,
    /// The autoscaler as JSON (its apiVersion depends on the server).
    pub hpa: Option<serde_json::Value>,
    /// Percent of replicas on the canary.
    pub canary_percent: i64,
}

const SERVED_FORMATS: [&str; 6] = ["onnx", "osprey", "triton", "candle", "huggingface", "bert"];

fn invalid(field: &str, message: String) -> SpecError {
    SpecError::Invalid {
        field: field.to_string(),
        message,
    }
}

fn replicas(ext: &ComponentExtension, path: &str) -> Result<(i32, i32), SpecError> {
    let min = ext.min_replicas.unwrap_or(1);
    let max = ext.max_replicas.unwrap_or(min).max(min.max(1));
    if min < 0 {
        return Err(invalid(
            &format!("{path}.minReplicas"),
            format!("{min} is negative"),
        ));
    }
    if let Some(m) = ext.max_replicas.filter(|&m| m != 0 && m < min) {
        return Err(invalid(
            &format!("{path}.maxReplicas"),
            format!("{m} is below minReplicas {min}"),
        ));
    }
    if let Some(p) = ext
        .canary_traffic_percent
        .filter(|p| !(0..=100).contains(p))
    {
        return Err(invalid(
            &format!("{path}.canaryTrafficPercent"),
            format!("{p} is not a percentage"),
        ));
    }
    Ok((min, max))
}

fn meta(name: String, isvc: &InferenceService, owner: &OwnerReference, c: Component) -> ObjectMeta {
    let mut l = selector(&isvc.metadata.name.clone().unwrap_or_default(), c);
    l.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
    ObjectMeta {
        name: Some(name),
        namespace: isvc.metadata.namespace.clone(),
        labels: Some(l),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn deployment(
    name: String,
    isvc: &InferenceService,
    owner: &OwnerReference,
    c: Component,
    replicas: i32,
    template: PodTemplateSpec,
    track: &str,
) -> Deployment {
    let isvc_name = isvc.metadata.name.clone().unwrap_or_default();
    let mut sel = selector(&isvc_name, c);
    sel.insert(labels::TRACK_LABEL.into(), track.into());
    Deployment {
        metadata: meta(name, isvc, owner, c),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(sel),
                ..Default::default()
            },
            template,
            ..Default::default()
        }),
        status: None,
    }
}

fn service(isvc: &InferenceService, owner: &OwnerReference, c: Component) -> Service {
    let isvc_name = isvc.metadata.name.clone().unwrap_or_default();
    let port = |name: &str, p: i32| ServicePort {
        name: Some(name.into()),
        port: p,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    Service {
        metadata: meta(c.object_name(&isvc_name), isvc, owner, c),
        spec: Some(ServiceSpec {
            selector: Some(selector(&isvc_name, c)),
            ports: Some(vec![
                port("http", HTTP_PORT),
                port("grpc", GRPC_PORT),
                port("metrics", METRICS_PORT),
            ]),
            ..Default::default()
        }),
        status: None,
    }
}

fn hpa(
    isvc: &InferenceService,
    owner: &OwnerReference,
    c: Component,
    ext: &ComponentExtension,
    min: i32,
    max: i32,
    settings: &Settings,
) -> serde_json::Value {
    let isvc_name = isvc.metadata.name.clone().unwrap_or_default();
    let target = ext.scale_target.unwrap_or(80);
    let metric = match ext.scale_metric.unwrap_or(ScaleMetric::Cpu) {
        m @ (ScaleMetric::Cpu | ScaleMetric::Memory) => json!({
            "type": "Resource",
            "resource": {
                "name": if m == ScaleMetric::Cpu { "cpu" } else { "memory" },
                "target": {"type": "Utilization", "averageUtilization": target}
            }
        }),
        // Per-pod metrics from the server's Prometheus endpoint (through a metrics adapter).
        m => json!({
            "type": "Pods",
            "pods": {
                "metric": {"name": if m == ScaleMetric::Concurrency {
                    "osprey_inference_pending_request_count"
                } else {
                    "osprey_inference_request_success_per_second"
                }},
                "target": {"type": "AverageValue", "averageValue": target.to_string()}
            }
        }),
    };
    json!({
        "apiVersion": settings.hpa_api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(c.object_name(&isvc_name), isvc, owner, c),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": c.object_name(&isvc_name)},
            "minReplicas": min.max(1),
            "maxReplicas": max,
            "metrics": [metric]
        }
    })
}

/// The objects of one component.
fn component(
    isvc: &InferenceService,
    owner: &OwnerReference,
    c: Component,
    server: ServerSpec<'_>,
    observed: &Observed,
    settings: &Settings,
) -> Result<ComponentObjects, SpecError> {
    let path = format!("spec.{}", c.as_str());
    let (min, max) = replicas(server.extension, &path)?;
    let isvc_name = isvc.metadata.name.clone().unwrap_or_default();
    // The revision names what the pods run: the spec of this component.
    let spec_json = serde_json::json!({
        "storage": format!("{:?}", server.storage),
        "image": server.image,
        "args": server.args,
        "env": server.env,
        "resources": server.resources,
        "pod": server.pod,
        "labels": server.extension.labels,
        "annotations": server.extension.annotations,
        "concurrency": server.extension.container_concurrency,
        "settings_image": settings.image,
    });
    let revision = labels::revision_of(&spec_json);
    let new_template = pod::template(&isvc_name, c, &revision, "stable", &server, settings);
    let percent = server.extension.canary_traffic_percent.unwrap_or(100);
    // A canary runs while a percentage below 100 is set and the cluster runs an older revision.
    let canary_from = observed
        .stable
        .as_ref()
        .filter(|(rev, _)| *rev != revision && percent < 100);
    let (stable, canary) = match canary_from {
        Some((_, old_template)) => {
            let canary_replicas = ((i64::from(min.max(1)) * percent + 99) / 100).max(1) as i32;
            let stable_replicas = (min - canary_replicas).max(1);
            let canary_template =
                pod::template(&isvc_name, c, &revision, "canary", &server, settings);
            (
                deployment(
                    c.object_name(&isvc_name),
                    isvc,
                    owner,
                    c,
                    stable_replicas,
                    old_template.clone(),
                    "stable",
                ),
                (percent > 0).then(|| {
                    deployment(
                        c.canary_name(&isvc_name),
                        isvc,
                        owner,
                        c,
                        canary_replicas,
                        canary_template,
                        "canary",
                    )
                }),
            )
        }
        None => (
            deployment(
                c.object_name(&isvc_name),
                isvc,
                owner,
                c,
                min.max(1),
                new_template,
                "stable",
            ),
            None,
        ),
    };
    let canary_running = canary_from.is_some();
    let autoscale = max > min.max(1);
    Ok(ComponentObjects {
        component: c,
        revision,
        stable,
        canary,
        service: service(isvc, owner, c),
        hpa: autoscale.then(|| hpa(isvc, owner, c, server.extension, min, max, settings)),
        canary_percent: if canary_running { percent } else { 0 },
    })
}

/// Every component's objects for `isvc`, given what the cluster runs now.
pub fn build(
    isvc: &InferenceService,
    owner: &OwnerReference,
    observed: &dyn Fn(Component) -> Observed,
    settings: &Settings,
) -> Result<Vec<ComponentObjects>, SpecError> {
    let p = &isvc.spec.predictor;
    let model = p.model.as_ref().ok_or_else(|| {
        invalid(
            "spec.predictor.model",
            "is required (modelFormat and storageUri)".into(),
        )
    })?;
    let format = model.model_format.name.to_ascii_lowercase();
    if !SERVED_FORMATS.contains(&format.as_str()) {
        return Err(invalid(
            "spec.predictor.model.modelFormat.name",
            format!(
                "'{}' is not served by Osprey (served: {})",
                model.model_format.name,
                SERVED_FORMATS.join(", ")
            ),
        ));
    }
    if let Some(r) = model
        .runtime
        .as_deref()
        .filter(|r| !r.is_empty() && !r.starts_with("osprey"))
    {
        return Err(invalid(
            "spec.predictor.model.runtime",
            format!("'{r}' is not an Osprey runtime (leave it empty or use \"osprey\")"),
        ));
    }
    if let Some(v) = model
        .protocol_version
        .as_deref()
        .filter(|v| !matches!(*v, "v1" | "v2" | "grpc-v2"))
    {
        return Err(invalid(
            "spec.predictor.model.protocolVersion",
            format!("'{v}': Osprey serves v1 (:predict, :explain), v2 and grpc-v2"),
        ));
    }
    let storage = model
        .storage_uri
        .as_deref()
        .map(|u| Storage::parse("spec.predictor.model.storageUri", u))
        .transpose()?;
    let mut out = vec![component(
        isvc,
        owner,
        Component::Predictor,
        ServerSpec {
            storage,
            image: model.image.as_deref(),
            args: &model.args,
            env: &model.env,
            resources: model.resources.as_ref(),
            extension: &p.extension,
            pod: &p.pod,
        },
        &observed(Component::Predictor),
        settings,
    )?];
    for (c, spec) in [
        (Component::Transformer, &isvc.spec.transformer),
        (Component::Explainer, &isvc.spec.explainer),
    ] {
        let Some(s) = spec else { continue };
        let storage = s
            .storage_uri
            .as_deref()
            .map(|u| Storage::parse(&format!("spec.{}.storageUri", c.as_str()), u))
            .transpose()?;
        out.push(component(
            isvc,
            owner,
            c,
            ServerSpec {
                storage,
                image: s.image.as_deref(),
                args: &s.args,
                env: &s.env,
                resources: s.resources.as_ref(),
                extension: &s.extension,
                pod: &s.pod,
            },
            &observed(c),
            settings,
        )?);
    }
    Ok(out)
}

/// The revision a Deployment's pods run.
pub fn revision_of_deployment(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .cloned()
}

#[cfg(test)]
mod tests;
