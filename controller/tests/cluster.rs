//! The full test control plane (scripts/k8s/start-cluster.sh: kube-apiserver, kube-controller-manager,
//! kube-scheduler v1.20, no kubelet) does a cluster's work: a Deployment gets a ReplicaSet and
//! Pods, the scheduler binds them to a Node (created here, heart-beaten by the test in place of a
//! kubelet), the garbage collector removes them with the Deployment, and a Job gets a Pod.
//!
//! Each test has its own namespace and Node; a node selector keeps each test's Pods on its own Node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cluster_client, eventually_within};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{json, Value};
use std::time::Duration;

/// Generous: two cores, shared with the build; the controllers' and scheduler's back-offs.
const LIMIT: Duration = Duration::from_secs(90);
const NODE_LABEL: &str = "osprey.dev/test-node";

async fn namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("namespace {name}: {e}"),
    }
}

fn now() -> Value {
    serde_json::to_value(Time(k8s_openapi::jiff::Timestamp::now())).unwrap()
}

/// The status a kubelet would report: Ready, with room for a few Pods.
fn node_status(name: &str, since: &Value) -> Value {
    let room = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    json!({
        "capacity": room,
        "allocatable": room,
        "conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "OspreyTestNode",
            "message": "heart-beaten by the test",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": since,
        }],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ],
    })
}

/// A Node object (no kubelet behind it) whose Ready heartbeat the test keeps fresh, as a kubelet
/// would, until dropped; then it is deleted.
struct FakeNode {
    name: String,
    heartbeat: tokio::task::JoinHandle<()>,
    nodes: Api<Node>,
}

impl FakeNode {
    async fn start(client: &Client, name: &str, label: &str) -> Self {
        let nodes: Api<Node> = Api::all(client.clone());
        let since = now();
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {NODE_LABEL: label}},
            "status": node_status(name, &since),
        }))
        .unwrap();
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
        // Node creation keeps the status on 1.20, but patch it anyway so the test does not rest on
        // that; then beat every 3 s (the controller-manager's grace period is 20 s).
        let beat = {
            let nodes = nodes.clone();
            let name = name.to_string();
            move || {
                let nodes = nodes.clone();
                let status = json!({"status": node_status(&name, &since)});
                let name = name.clone();
                async move {
                    nodes
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                }
            }
        };
        beat().await.expect("node status");
        let heartbeat = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3));
            loop {
                every.tick().await;
                if let Err(e) = beat().await {
                    eprintln!("node heartbeat: {e}");
                }
            }
        });
        FakeNode {
            name: name.to_string(),
            heartbeat,
            nodes,
        }
    }

    /// Waits until the Node carries no taint (the node lifecycle controller taints Nodes that are
    /// not Ready or whose heartbeat is stale; the scheduler skips tainted Nodes).
    async fn schedulable(&self) {
        eventually_within(LIMIT, "the node is untainted", || async {
            let n = self.nodes.get(&self.name).await.ok()?;
            let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
            taints.is_empty().then_some(())
        })
        .await;
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Pods whose controller (owner reference with controller: true) has this uid.
async fn pods_of(pods: &Api<Pod>, owner_uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter(|p| controlled_by(p, owner_uid))
        .collect()
}

fn controlled_by<K: Resource>(o: &K, uid: &str) -> bool {
    o.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid && r.controller == Some(true))
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec.as_ref()?.node_name.as_deref()
}

/// The scheduler's verdict, as it records it: PodScheduled's status and reason.
fn scheduled_condition(p: &Pod) -> Option<(String, Option<String>)> {
    p.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// A Pod template for `node_label`'s Node. terminationGracePeriodSeconds 0: with no kubelet to
/// confirm a bound Pod's termination, a graceful delete would leave it Terminating for ever; with 0
/// the API server removes it as soon as the garbage collector deletes it.
fn template(app: &str, node_label: &str, restart: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {
            "nodeSelector": {NODE_LABEL: node_label},
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "main",
                "image": "osprey:test",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }],
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_gets_scheduled_pods_and_garbage_collection() {
    let client = cluster_client().await;
    let ns = "cluster-deployment";
    namespace(&client, ns).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);

    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template("web", "deployment", "Always"),
        },
    }))
    .unwrap();
    let d = deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment created");
    let d_uid = d.uid().expect("uid");

    // The deployment controller creates a ReplicaSet, the replicaset controller two Pods.
    let rs = eventually_within(LIMIT, "the Deployment has a ReplicaSet", || async {
        let list = replicasets.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|r| controlled_by(r, &d_uid))
    })
    .await;
    assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let rs_uid = rs.uid().expect("uid");

    // No Node matches yet: the scheduler tries and reports the Pods unschedulable.
    eventually_within(LIMIT, "2 Pods, found unschedulable", || async {
        let ps = pods_of(&pods, &rs_uid).await;
        (ps.len() == 2
            && ps.iter().all(|p| {
                node_name(p).is_none()
                    && scheduled_condition(p)
                        == Some(("False".into(), Some("Unschedulable".into())))
            }))
        .then_some(())
    })
    .await;

    // A Ready Node with the right label appears: both Pods get bound to it.
    let node = FakeNode::start(&client, "osprey-node-deployment", "deployment").await;
    node.schedulable().await;
    let bound = eventually_within(LIMIT, "both Pods are bound to the Node", || async {
        let ps = pods_of(&pods, &rs_uid).await;
        (ps.len() == 2 && ps.iter().all(|p| node_name(p) == Some(node.name.as_str()))).then_some(ps)
    })
    .await;
    for p in &bound {
        let (status, _) = scheduled_condition(p).expect("PodScheduled");
        assert_eq!(status, "True", "{}", p.name_any());
    }

    // Deleting the Deployment (background propagation): the garbage collector removes the
    // ReplicaSet, then its Pods.
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .expect("deployment deleted");
    eventually_within(LIMIT, "the ReplicaSet is gone", || async {
        match replicasets.get_opt(&rs.name_any()).await {
            Ok(None) => Some(()),
            _ => None,
        }
    })
    .await;
    eventually_within(LIMIT, "the Pods are gone", || async {
        let left = pods_of(&pods, &rs_uid).await;
        left.is_empty().then_some(())
    })
    .await;
    for p in &bound {
        assert!(
            pods.get_opt(&p.name_any()).await.expect("get").is_none(),
            "{} still exists",
            p.name_any()
        );
    }

    Api::<Node>::all(client.clone())
        .delete(&node.name, &DeleteParams::default())
        .await
        .expect("node deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_gets_a_scheduled_pod() {
    let client = cluster_client().await;
    let ns = "cluster-job";
    namespace(&client, ns).await;
    let node = FakeNode::start(&client, "osprey-node-job", "job").await;
    node.schedulable().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);

    let mut t = template("once", "job", "Never");
    t["spec"]["containers"][0]["command"] = json!(["true"]);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {"backoffLimit": 0, "template": t},
    }))
    .unwrap();
    let job = jobs
        .create(&PostParams::default(), &job)
        .await
        .expect("job created");
    let job_uid = job.uid().expect("uid");

    let pod = eventually_within(LIMIT, "the Job's Pod is bound to the Node", || async {
        let ps = pods_of(&pods, &job_uid).await;
        (ps.len() == 1 && node_name(&ps[0]) == Some(node.name.as_str())).then(|| ps[0].clone())
    })
    .await;
    assert_eq!(
        pod.labels().get("job-name").map(String::as_str),
        Some("once"),
        "the job controller labels its Pods"
    );
    eventually_within(LIMIT, "the Job counts one active Pod", || async {
        let j = jobs.get("once").await.ok()?;
        (j.status?.active == Some(1)).then_some(())
    })
    .await;

    jobs.delete(
        "once",
        &DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
            ..Default::default()
        },
    )
    .await
    .expect("job deleted");
    eventually_within(LIMIT, "the Job's Pod is gone", || async {
        pods_of(&pods, &job_uid).await.is_empty().then_some(())
    })
    .await;
    Api::<Node>::all(client.clone())
        .delete(&node.name, &DeleteParams::default())
        .await
        .expect("node deleted");
}
