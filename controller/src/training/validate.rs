//! PyTorchJob and TFJob specs checked field by field and turned into a [`Job`]. Every error
//! names the field (`spec.pytorchReplicaSpecs.Worker.replicas: ...`), as the Failed condition
//! and `osprey train run` report it.

use super::crd::{ElasticPolicy, PyTorchJob, ReplicaSpec, RunPolicy, TFJob};
use super::job::{CleanPodPolicy, Elastic, Framework, Job, Replica, RestartPolicy};
use crate::error::SpecError;
use kube::ResourceExt;
use std::collections::BTreeMap;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A PyTorchJob as a [`Job`].
pub fn pytorch(job: &PyTorchJob) -> Result<Job, SpecError> {
    let mut out = common(
        Framework::PyTorch,
        &job.name_any(),
        job.namespace().as_deref(),
        &job.spec.pytorch_replica_specs,
        &job.spec.run_policy,
    )?;
    if let Some(master) = out.replica("Master") {
        if master.count != 1 {
            return Err(invalid(
                "spec.pytorchReplicaSpecs.Master.replicas",
                format!("must be 1 (got {})", master.count),
            ));
        }
    }
    if let Some(n) = &job.spec.nproc_per_node {
        let ok = matches!(n.as_str(), "auto" | "cpu" | "gpu")
            || n.parse::<i32>().map(|v| v >= 1).unwrap_or(false);
        if !ok {
            return Err(invalid(
                "spec.nprocPerNode",
                format!("{n:?} is not a positive number, auto, cpu or gpu"),
            ));
        }
        out.nproc_per_node = Some(n.clone());
    }
    if let Some(e) = &job.spec.elastic_policy {
        let workers = out.replica("Worker").map(|r| r.count).unwrap_or(0);
        out.elastic = Some(elastic(e, workers)?);
    }
    Ok(out)
}

fn elastic(e: &ElasticPolicy, workers: i32) -> Result<Elastic, SpecError> {
    let min = e.min_replicas.or(e.max_replicas).unwrap_or(workers);
    let max = e.max_replicas.or(e.min_replicas).unwrap_or(workers);
    if min < 1 {
        return Err(invalid(
            "spec.elasticPolicy.minReplicas",
            format!("must be at least 1 (got {min})"),
        ));
    }
    if max < min {
        return Err(invalid(
            "spec.elasticPolicy.maxReplicas",
            format!("must not be below minReplicas {min} (got {max})"),
        ));
    }
    if let Some(r) = e.max_restarts {
        if r < 0 {
            return Err(invalid(
                "spec.elasticPolicy.maxRestarts",
                format!("must not be negative (got {r})"),
            ));
        }
    }
    let backend = e.rdzv_backend.clone().unwrap_or_else(|| "c10d".into());
    if !matches!(backend.as_str(), "c10d" | "etcd" | "etcd-v2") {
        return Err(invalid(
            "spec.elasticPolicy.rdzvBackend",
            format!("{backend:?} is not c10d, etcd or etcd-v2"),
        ));
    }
    Ok(Elastic {
        min_replicas: min,
        max_replicas: max,
        max_restarts: e.max_restarts,
        rdzv_backend: backend,
        rdzv_id: e.rdzv_id.clone(),
        rdzv_conf: e
            .rdzv_conf
            .iter()
            .map(|c| (c.key.clone(), c.value.clone()))
            .collect(),
    })
}

/// A TFJob as a [`Job`].
pub fn tf(job: &TFJob) -> Result<Job, SpecError> {
    let mut out = common(
        Framework::TensorFlow,
        &job.name_any(),
        job.namespace().as_deref(),
        &job.spec.tf_replica_specs,
        &job.spec.run_policy,
    )?;
    for role in ["Chief", "Master"] {
        if let Some(r) = out.replica(role) {
            if r.count > 1 {
                return Err(invalid(
                    format!("spec.tfReplicaSpecs.{role}.replicas"),
                    format!("must be 0 or 1 (got {})", r.count),
                ));
            }
        }
    }
    if out.replica("Chief").is_some() && out.replica("Master").is_some() {
        return Err(invalid(
            "spec.tfReplicaSpecs",
            "Chief and Master are the same role; give one of them",
        ));
    }
    out.all_workers = match job.spec.success_policy.as_deref() {
        None | Some("") => false,
        Some("AllWorkers") => true,
        Some(other) => {
            return Err(invalid(
                "spec.successPolicy",
                format!("{other:?} is not \"\" or AllWorkers"),
            ))
        }
    };
    Ok(out)
}

fn common(
    framework: Framework,
    name: &str,
    namespace: Option<&str>,
    specs: &BTreeMap<String, ReplicaSpec>,
    run: &RunPolicy,
) -> Result<Job, SpecError> {
    let field = format!("spec.{}", framework.specs_field());
    if specs.is_empty() {
        return Err(invalid(&field, "no replica types"));
    }
    // The longest name a replica gets: Services are DNS labels (63 characters at most).
    let longest = framework
        .roles()
        .iter()
        .map(|r| super::job::pod_name(name, r, 99).len())
        .max()
        .unwrap_or(0);
    if longest > 63 {
        return Err(invalid(
            "metadata.name",
            format!("{name:?} is too long: replica names <name>-<type>-<index> must fit in 63 characters"),
        ));
    }
    let mut replicas: Vec<Replica> = Vec::new();
    for (key, spec) in specs {
        let role = framework
            .roles()
            .iter()
            .find(|r| r.eq_ignore_ascii_case(key))
            .copied()
            .ok_or_else(|| {
                invalid(
                    format!("{field}.{key}"),
                    format!(
                        "unknown replica type; {} has {}",
                        framework.kind(),
                        framework.roles().join(", ")
                    ),
                )
            })?;
        if replicas.iter().any(|r| r.role == role) {
            return Err(invalid(
                format!("{field}.{key}"),
                format!("replica type {role} is given twice"),
            ));
        }
        replicas.push(replica(framework, &format!("{field}.{key}"), role, spec)?);
    }
    replicas.sort_by_key(|r| framework.roles().iter().position(|x| *x == r.role));
    if replicas.iter().all(|r| r.count == 0) {
        return Err(invalid(&field, "every replica type has 0 replicas"));
    }
    let clean_pod_policy = match run.clean_pod_policy.as_deref() {
        None | Some("") | Some("None") => CleanPodPolicy::None,
        Some("All") => CleanPodPolicy::All,
        Some("Running") => CleanPodPolicy::Running,
        Some(other) => {
            return Err(invalid(
                "spec.runPolicy.cleanPodPolicy",
                format!("{other:?} is not All, Running or None"),
            ))
        }
    };
    let non_negative = |v: Option<i64>, f: &str| -> Result<Option<i64>, SpecError> {
        match v {
            Some(n) if n < 0 => Err(invalid(
                format!("spec.runPolicy.{f}"),
                format!("must not be negative (got {n})"),
            )),
            _ => Ok(v),
        }
    };
    let ttl = non_negative(
        run.ttl_seconds_after_finished.map(i64::from),
        "ttlSecondsAfterFinished",
    )?;
    let deadline = non_negative(run.active_deadline_seconds, "activeDeadlineSeconds")?;
    if deadline == Some(0) {
        return Err(invalid(
            "spec.runPolicy.activeDeadlineSeconds",
            "must be positive (got 0)",
        ));
    }
    let backoff = non_negative(run.backoff_limit.map(i64::from), "backoffLimit")?;
    if let Some(m) = run.scheduling_policy.as_ref().and_then(|s| s.min_available) {
        if m < 0 {
            return Err(invalid(
                "spec.runPolicy.schedulingPolicy.minAvailable",
                format!("must not be negative (got {m})"),
            ));
        }
    }
    Ok(Job {
        framework,
        name: name.to_string(),
        namespace: namespace.unwrap_or("default").to_string(),
        replicas,
        clean_pod_policy,
        ttl_seconds_after_finished: ttl,
        active_deadline_seconds: deadline,
        backoff_limit: backoff.map(|b| b as i32),
        suspend: run.suspend.unwrap_or(false),
        all_workers: false,
        elastic: None,
        nproc_per_node: None,
    })
}

fn replica(
    framework: Framework,
    field: &str,
    role: &'static str,
    spec: &ReplicaSpec,
) -> Result<Replica, SpecError> {
    let count = spec.replicas.unwrap_or(1);
    if count < 0 {
        return Err(invalid(
            format!("{field}.replicas"),
            format!("must not be negative (got {count})"),
        ));
    }
    let restart = match spec.restart_policy.as_deref() {
        None | Some("") => framework.default_restart(),
        Some(p) => RestartPolicy::parse(p).ok_or_else(|| {
            invalid(
                format!("{field}.restartPolicy"),
                format!("{p:?} is not Always, OnFailure, Never or ExitCode"),
            )
        })?,
    };
    let containers = spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    if containers.is_empty() {
        return Err(invalid(
            format!("{field}.template.spec.containers"),
            "at least one container is needed",
        ));
    }
    let Some(main) = containers.iter().find(|c| c.name == framework.container()) else {
        return Err(invalid(
            format!("{field}.template.spec.containers"),
            format!(
                "no container named {:?} (the {} container the training operator configures)",
                framework.container(),
                framework.kind()
            ),
        ));
    };
    for c in containers {
        if c.image.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(
                format!("{field}.template.spec.containers[{}].image", c.name),
                "is empty",
            ));
        }
    }
    let port = main
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(framework.port_name()))
        .map(|p| p.container_port)
        .unwrap_or(framework.default_port());
    if !(1..=65535).contains(&port) {
        return Err(invalid(
            format!(
                "{field}.template.spec.containers[{}].ports[{}].containerPort",
                framework.container(),
                framework.port_name()
            ),
            format!("{port} is not a port number"),
        ));
    }
    Ok(Replica {
        role,
        count,
        template: spec.template.clone(),
        restart,
        port,
    })
}
