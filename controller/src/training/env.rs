//! The environment each framework expects in a replica, as the training operator sets it:
//! PyTorch's `MASTER_ADDR`/`MASTER_PORT`/`WORLD_SIZE`/`RANK` and torchrun's `PET_*`, and
//! TensorFlow's `TF_CONFIG`. Where replicas are found is the runner's business ([`Addresses`]):
//! Service names on Kubernetes, loopback ports on one machine.

use super::job::{Framework, Job};
use serde_json::json;
use std::collections::BTreeMap;

/// Where replicas answer.
pub trait Addresses {
    /// The host name other replicas reach `role`/`index` at.
    fn host(&self, job: &Job, role: &str, index: i32) -> String;
    /// The port `role`/`index` listens on.
    fn port(&self, job: &Job, role: &str, index: i32) -> i32;
}

/// On Kubernetes: each replica's headless Service. PyTorch uses the bare Service name (as the
/// training operator does); TF_CONFIG uses `<name>.<namespace>.svc`.
pub struct ClusterAddresses;

impl Addresses for ClusterAddresses {
    fn host(&self, job: &Job, role: &str, index: i32) -> String {
        let name = job.pod_name(role, index);
        match job.framework {
            Framework::PyTorch => name,
            Framework::TensorFlow => format!("{name}.{}.svc", job.namespace),
        }
    }

    fn port(&self, job: &Job, role: &str, _index: i32) -> i32 {
        job.replica(role)
            .map(|r| r.port)
            .unwrap_or(job.framework.default_port())
    }
}

/// The rank-0 replica: PyTorch's Master, else worker 0.
fn coordinator(job: &Job) -> Option<(&'static str, i32)> {
    ["Master", "Worker"]
        .into_iter()
        .find(|r| job.replica(r).map(|x| x.count > 0).unwrap_or(false))
        .map(|r| (r, 0))
}

/// The variables for one replica, in the order they are added to its containers.
pub fn replica_env(
    job: &Job,
    role: &str,
    index: i32,
    addr: &dyn Addresses,
) -> Vec<(String, String)> {
    match job.framework {
        Framework::PyTorch => pytorch(job, role, index, addr),
        Framework::TensorFlow => vec![("TF_CONFIG".into(), tf_config(job, role, index, addr))],
    }
}

fn pytorch(job: &Job, role: &str, index: i32, addr: &dyn Addresses) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![("PYTHONUNBUFFERED".into(), "1".into())];
    let total = job.total_replicas();
    let nproc = job
        .nproc_per_node
        .as_deref()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(1);
    if let Some((crole, cindex)) = coordinator(job) {
        let host = addr.host(job, crole, cindex);
        let port = addr.port(job, crole, cindex).to_string();
        env.push(("MASTER_PORT".into(), port.clone()));
        env.push(("PET_MASTER_PORT".into(), port));
        env.push(("MASTER_ADDR".into(), host.clone()));
        env.push(("PET_MASTER_ADDR".into(), host));
        let has_master = job.replica("Master").is_some();
        let rank = if role == "Worker" && has_master {
            index + 1
        } else {
            index
        };
        env.push(("WORLD_SIZE".into(), (total * nproc).to_string()));
        env.push(("RANK".into(), rank.to_string()));
        env.push(("PET_NODE_RANK".into(), rank.to_string()));
    }
    if let Some(n) = &job.nproc_per_node {
        env.push(("PET_NPROC_PER_NODE".into(), n.clone()));
    }
    match &job.elastic {
        Some(e) => {
            env.push((
                "PET_NNODES".into(),
                format!("{}:{}", e.min_replicas, e.max_replicas),
            ));
            env.push(("PET_RDZV_BACKEND".into(), e.rdzv_backend.clone()));
            if let Some((crole, cindex)) = coordinator(job) {
                env.push((
                    "PET_RDZV_ENDPOINT".into(),
                    format!(
                        "{}:{}",
                        addr.host(job, crole, cindex),
                        addr.port(job, crole, cindex)
                    ),
                ));
            }
            if let Some(id) = &e.rdzv_id {
                env.push(("PET_RDZV_ID".into(), id.clone()));
            }
            if let Some(r) = e.max_restarts {
                env.push(("PET_MAX_RESTARTS".into(), r.to_string()));
            }
            if !e.rdzv_conf.is_empty() {
                let conf: Vec<String> = e
                    .rdzv_conf
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                env.push(("PET_RDZV_CONF".into(), conf.join(",")));
            }
        }
        None => env.push(("PET_NNODES".into(), total.to_string())),
    }
    env
}

/// `{"cluster": {type: ["host:port", ...]}, "task": {"type", "index"}, "environment": "cloud"}`
/// with every replica type in the cluster, as the training operator writes it.
pub fn tf_config(job: &Job, role: &str, index: i32, addr: &dyn Addresses) -> String {
    let mut cluster: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &job.replicas {
        let hosts = (0..r.count)
            .map(|i| {
                format!(
                    "{}:{}",
                    addr.host(job, r.role, i),
                    addr.port(job, r.role, i)
                )
            })
            .collect();
        cluster.insert(r.role.to_lowercase(), hosts);
    }
    json!({
        "cluster": cluster,
        "task": {"type": role.to_lowercase(), "index": index},
        "environment": "cloud",
    })
    .to_string()
}
