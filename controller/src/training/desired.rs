//! The pod and headless Service of each replica, as the training operator makes them: named
//! `<job>-<type>-<index>`, labelled for the SDK, with the framework's environment, the replica
//! type's restart policy and an owner reference to the job.

use super::env::{replica_env, ClusterAddresses};
use super::job::Job;
use super::labels::{JOB_NAME, JOB_ROLE, OPERATOR_NAME, RECREATIONS, REPLICA_INDEX, REPLICA_TYPE};
use k8s_openapi::api::core::v1::{EnvVar, Pod, PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Labels of one replica's pod and Service.
pub fn labels(job: &Job, role: &str, index: i32) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (JOB_NAME.to_string(), job.name.clone()),
        (
            OPERATOR_NAME.to_string(),
            job.framework.operator_name().to_string(),
        ),
        (REPLICA_TYPE.to_string(), role.to_lowercase()),
        (REPLICA_INDEX.to_string(), index.to_string()),
    ]);
    if job.is_master_role(role, index) {
        l.insert(JOB_ROLE.to_string(), "master".to_string());
    }
    l
}

/// The selector of every pod of the job.
pub fn job_selector(job: &Job) -> String {
    format!(
        "{JOB_NAME}={},{OPERATOR_NAME}={}",
        job.name,
        job.framework.operator_name()
    )
}

/// The pod of `role`/`index`; `recreations` is carried in an annotation.
pub fn pod(
    job: &Job,
    role: &str,
    index: i32,
    owner: &OwnerReference,
    recreations: i32,
) -> Option<Pod> {
    let replica = job.replica(role)?;
    let template = &replica.template;
    let mut meta = template.metadata.clone().unwrap_or_default();
    let mut spec: PodSpec = template.spec.clone().unwrap_or_default();
    let name = job.pod_name(role, index);
    meta.name = Some(name);
    meta.namespace = Some(job.namespace.clone());
    meta.generate_name = None;
    meta.owner_references = Some(vec![owner.clone()]);
    let mut l = meta.labels.take().unwrap_or_default();
    l.extend(labels(job, role, index));
    meta.labels = Some(l);
    if recreations > 0 {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(RECREATIONS.to_string(), recreations.to_string());
    }
    let env = replica_env(job, role, index, &ClusterAddresses);
    let main = job.framework.container();
    for c in spec.containers.iter_mut() {
        // PyTorch's variables go to every container (as the operator does); TF_CONFIG to the
        // tensorflow container.
        if c.name != main && job.framework == super::job::Framework::TensorFlow {
            continue;
        }
        let vars = c.env.get_or_insert_with(Vec::new);
        for (k, v) in &env {
            if !vars.iter().any(|e| &e.name == k) {
                vars.push(EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                });
            }
        }
    }
    spec.restart_policy = Some(replica.restart.pod_policy().to_string());
    Some(Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    })
}

/// The headless Service giving `role`/`index` its stable host name.
pub fn service(job: &Job, role: &str, index: i32, owner: &OwnerReference) -> Option<Service> {
    let replica = job.replica(role)?;
    let mut selector = labels(job, role, index);
    selector.remove(JOB_ROLE);
    Some(Service {
        metadata: ObjectMeta {
            name: Some(job.pod_name(role, index)),
            namespace: Some(job.namespace.clone()),
            labels: Some(labels(job, role, index)),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector),
            // Workers look the master up before it is ready.
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![ServicePort {
                name: Some(job.framework.port_name().to_string()),
                port: replica.port,
                target_port: Some(IntOrString::Int(replica.port)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    })
}
